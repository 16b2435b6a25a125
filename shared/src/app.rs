//! The pipeline of one source, free of Lambda types: key → body → lead → row, or the
//! buffer queue while the database is unavailable.

use std::time::{Duration, Instant, SystemTime};

use crate::answer::Answers;
use crate::auth::{self, ApiKeys, Fingerprint};
use crate::buffer::Buffer;
use crate::config::DEFAULT_REQUEST_BUDGET;
use crate::container::Container;
use crate::dedup::Identity;
use crate::error::{ConfigError, Error, Failure, Refusal};
use crate::lead;
use crate::outcome::{Accepted, Ingested, Outcome};
use crate::payload;
use crate::record::LeadRecord;
use crate::secrets::Setting;
use crate::source::Source;
use crate::store::Store;

/// What a request brings, already taken out of its transport.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub api_key: Option<&'a [u8]>,
    pub content_type: Option<&'a str>,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<&'a [u8]>,
    pub body: &'a [u8],
    /// The Lambda request id, kept with the lead.
    pub request_id: &'a str,
    pub received_at: SystemTime,
}

/// A source function's state, built once per container.
#[derive(Debug)]
pub struct App {
    source: &'static Source,
    api_keys: Setting<ApiKeys>,
    store: Store,
    buffer: Option<Buffer>,
    answers: Answers,
    budget: Duration,
}

impl App {
    pub fn new(source: &'static Source, api_keys: ApiKeys, store: Store) -> Self {
        Self::with(source, Setting::fixed(api_keys), store, None)
    }

    fn with(
        source: &'static Source,
        api_keys: Setting<ApiKeys>,
        store: Store,
        buffer: Option<Buffer>,
    ) -> Self {
        Self {
            source,
            api_keys,
            store,
            buffer,
            answers: Answers::new(source),
            budget: DEFAULT_REQUEST_BUDGET,
        }
    }

    /// Queues leads on `buffer` while the database is unavailable.
    pub fn with_buffer(mut self, buffer: Buffer) -> Self {
        self.buffer = Some(buffer);
        self
    }

    /// Bounds each request to `budget` (see [`App::ingest`]).
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// The state the environment configures (see `config`), with its secrets read.
    pub async fn from_env(source: &'static Source) -> Result<Self, ConfigError> {
        let app = Self::from_container(source, Container::from_env().await?)?;
        app.warm_up().await;
        Ok(app)
    }

    /// A source function's state from its container's parts; its API keys are required.
    pub fn from_container(
        source: &'static Source,
        container: Container,
    ) -> Result<Self, ConfigError> {
        let api_keys = container
            .api_keys
            .ok_or(ConfigError::Missing("API_KEYS or API_KEYS_SECRET_ARN"))?;
        Ok(
            Self::with(source, api_keys, container.store, container.buffer)
                .with_budget(container.request_budget),
        )
    }

    /// Reads the secrets now, so the first request does not wait for them. A failure is
    /// logged and retried by the first request instead of failing the container.
    pub async fn warm_up(&self) {
        if let Err(error) = self.api_keys.get().await {
            tracing::error!(source = self.source.slug, error = %error, "API keys unavailable at start");
        }
        if let Err(error) = self.store.read_credentials().await {
            tracing::error!(source = self.source.slug, error = %error, "database credentials unavailable at start");
        }
    }

    pub fn source(&self) -> &'static Source {
        self.source
    }

    pub fn answers(&self) -> &Answers {
        &self.answers
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs the contract's checks in order and stores the lead once, or queues it while
    /// the database is unavailable. Names the key that passed, for the log.
    ///
    /// The whole takes at most the budget: a slow secret read shortens the insert's
    /// limit, and the queue's own bound is kept back for a lead the database did not take.
    pub async fn ingest(&self, incoming: Incoming<'_>) -> Ingested {
        let started = Instant::now();
        let key = match self.authenticate(incoming.api_key).await {
            Ok(key) => key,
            Err(error) => {
                return Ingested {
                    key: None,
                    result: Err(error),
                }
            }
        };
        let result = match read(self.source, &incoming) {
            Ok(record) => self.keep(record, started).await,
            Err(refusal) => Err(refusal.into()),
        };
        Ingested {
            key: Some(key),
            result,
        }
    }

    async fn authenticate(&self, header: Option<&[u8]>) -> Result<Fingerprint, Error> {
        // A missing key is the partner's mistake whatever state the secrets are in.
        auth::require_present(header)?;
        self.api_keys.get().await?.check(header)
    }

    /// Stores the record, or queues it while the database is unavailable.
    async fn keep(&self, record: LeadRecord, started: Instant) -> Result<Accepted, Error> {
        let queueing = match self.buffer {
            Some(_) => crate::aws::OPERATION_TIMEOUT,
            None => Duration::ZERO,
        };
        let limit = self
            .budget
            .saturating_sub(started.elapsed())
            .saturating_sub(queueing);
        let outcome = match self.store.insert_within(&record, limit).await {
            Ok(stored) => Outcome::Stored(stored),
            Err(store) if store.is_unavailable() => match &self.buffer {
                Some(buffer) => match buffer.send(&record).await {
                    Ok(()) => Outcome::Queued(store),
                    Err(buffer) => return Err(Failure::Unqueued { store, buffer }.into()),
                },
                None => return Err(store.into()),
            },
            Err(store) => return Err(store.into()),
        };
        Ok(Accepted {
            outcome,
            phone_number: record.lead.phone_number,
        })
    }
}

/// The contract's checks 1 to 3, without I/O: the key, the body, the required fields.
/// Returns the record to store, or why the request is refused. Nothing of the body is
/// looked at before the key passes.
pub fn prepare(
    source: &'static Source,
    api_keys: &ApiKeys,
    incoming: &Incoming<'_>,
) -> Result<LeadRecord, Error> {
    api_keys.check(incoming.api_key)?;
    Ok(read(source, incoming)?)
}

/// Checks 2 and 3, once the key has passed: the body and the required fields.
fn read(source: &'static Source, incoming: &Incoming<'_>) -> Result<LeadRecord, Refusal> {
    let payload = payload::decode(incoming.content_type, incoming.body)?;
    let lead = lead::map(source, &payload.fields)?;
    Ok(LeadRecord {
        source,
        identity: Identity::of(
            source,
            &payload.fields,
            incoming.idempotency_key,
            incoming.body,
        ),
        lead,
        payload: payload.archived,
        request_id: incoming.request_id.to_owned(),
        received_at: incoming.received_at,
    })
}
