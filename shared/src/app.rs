//! The pipeline of one source, free of Lambda types: proof → body → lead(s) → row, or the
//! buffer queue while the database (or the platform a lead is read from) is unavailable.
//! What differs between sources (how they prove themselves, how their body becomes
//! fields, what success looks like) is their declaration's (`source`), not code here.

use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value};

use crate::answer::{Answer, Answers};
use crate::auth::{self, ApiKeys, Fingerprint};
use crate::buffer::{Buffer, Unread};
use crate::config::DEFAULT_REQUEST_BUDGET;
use crate::container::Container;
use crate::dedup::Identity;
use crate::error::{BufferError, ConfigError, Error, Failure, Refusal};
use crate::lead;
use crate::meta::{self, Meta, ReadError, Reference};
use crate::outcome::{Accepted, Ingested, Kept, Outcome, Postponed, Summary};
use crate::payload::{self, Payload};
use crate::record::LeadRecord;
use crate::secrets::Setting;
use crate::shape;
use crate::source::{Auth, Shape, Source};
use crate::store::{Store, Stored};

/// What a request brings, already taken out of its transport.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub api_key: Option<&'a [u8]>,
    /// The `X-Hub-Signature-256` header.
    pub signature: Option<&'a [u8]>,
    pub content_type: Option<&'a str>,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<&'a [u8]>,
    pub body: &'a [u8],
    /// The Lambda request id, kept with the lead.
    pub request_id: &'a str,
    pub received_at: SystemTime,
}

/// The query of Meta's subscription handshake (`hub.mode`, `hub.verify_token`,
/// `hub.challenge`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Handshake<'a> {
    pub mode: Option<&'a str>,
    pub verify_token: Option<&'a str>,
    pub challenge: Option<&'a str>,
}

/// How long reading one lead from its platform, then storing or queueing it, may take:
/// a notification's leads still unread when less than this is left of the budget are
/// queued unread, so the platform hears back in time.
const PER_LEAD_RESERVE: Duration = Duration::from_secs(3);

/// A source function's state, built once per container.
#[derive(Debug)]
pub struct App {
    source: &'static Source,
    api_keys: Option<Setting<ApiKeys>>,
    meta: Option<Meta>,
    store: Store,
    buffer: Option<Buffer>,
    answers: Answers,
    budget: Duration,
}

impl App {
    /// A source that proves itself with a key (in a header or in its body).
    pub fn new(source: &'static Source, api_keys: ApiKeys, store: Store) -> Self {
        Self::with(source, Some(Setting::fixed(api_keys)), None, store, None)
    }

    /// A source whose notifications are signed and whose leads are read from the Graph
    /// API (Meta).
    pub fn signed(source: &'static Source, meta: Meta, store: Store) -> Self {
        Self::with(source, None, Some(meta), store, None)
    }

    fn with(
        source: &'static Source,
        api_keys: Option<Setting<ApiKeys>>,
        meta: Option<Meta>,
        store: Store,
        buffer: Option<Buffer>,
    ) -> Self {
        Self {
            source,
            api_keys,
            meta,
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

    /// A source function's state from its container's parts: the keys its declaration
    /// says it proves itself with are required.
    pub fn from_container(
        source: &'static Source,
        container: Container,
    ) -> Result<Self, ConfigError> {
        let (api_keys, meta) = match source.auth {
            Auth::Header | Auth::Body(_) => {
                let keys = container
                    .api_keys
                    .ok_or(ConfigError::Missing("API_KEYS or API_KEYS_SECRET_ARN"))?;
                (Some(keys), None)
            }
            Auth::Signature => {
                let meta = container
                    .meta
                    .ok_or(ConfigError::Missing("META_SECRET_ARN or META_APP_SECRETS"))?;
                (None, Some(meta))
            }
        };
        Ok(
            Self::with(source, api_keys, meta, container.store, container.buffer)
                .with_budget(container.request_budget),
        )
    }

    /// Reads the secrets now, so the first request does not wait for them. A failure is
    /// logged and retried by the first request instead of failing the container.
    pub async fn warm_up(&self) {
        if let Some(keys) = &self.api_keys {
            if let Err(error) = keys.get().await {
                tracing::error!(source = self.source.slug, error = %error, "API keys unavailable at start");
            }
        }
        if let Some(meta) = &self.meta {
            if let Err(error) = meta.secrets().await {
                tracing::error!(source = self.source.slug, error = %error, "Meta secrets unavailable at start");
            }
        }
        // The phone library loads its metadata on first use: here, not in a request.
        let _ = crate::phone::e164("+919876543210");
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

    /// Answers Meta's subscription handshake (a `GET`): the challenge when the token is
    /// the verify token, else a 403. A source without one refuses every handshake.
    pub async fn handshake(&self, query: Handshake<'_>) -> Answer {
        let challenge = match &self.meta {
            Some(meta) => match meta.secrets().await {
                Ok(secrets) => secrets
                    .handshake(query.mode, query.verify_token, query.challenge)
                    .map(str::to_owned),
                Err(error) => {
                    tracing::error!(source = self.source.slug, error = %error, "Meta secrets unavailable for the handshake");
                    return self.answers.to(&Err(error.into()));
                }
            },
            None => None,
        };
        Answers::handshake(challenge.as_deref())
    }

    /// Runs the checks in the order the source's declaration gives, then stores each
    /// lead once, or queues it while the database is unavailable. Names the key that
    /// passed, for the log.
    ///
    /// The whole takes at most the budget: a slow secret read shortens the insert's
    /// limit, and the queue's own bound is kept back for a lead the database did not take.
    pub async fn ingest(&self, incoming: Incoming<'_>) -> Ingested {
        let started = Instant::now();
        let (key, payload) = match self.admit(&incoming).await {
            Ok(admitted) => admitted,
            Err(error) => {
                return Ingested {
                    key: None,
                    result: Err(error),
                }
            }
        };
        let result = match self.source.shape {
            Shape::Notification => self.notification(&payload.fields, &incoming, started).await,
            Shape::Object | Shape::Columns { .. } => match read(self.source, payload, &incoming) {
                Ok(record) => self.keep(record, started).await.map(Accepted::Lead),
                Err(refusal) => Err(refusal.into()),
            },
        };
        Ingested {
            key: Some(key),
            result,
        }
    }

    /// The proof and the body, in the order the source's proof allows: a header's key
    /// before anything of the body is read, a body's key once the body is parsed.
    async fn admit(&self, incoming: &Incoming<'_>) -> Result<(Fingerprint, Payload), Error> {
        match (&self.source.auth, &self.api_keys, &self.meta) {
            (Auth::Header, Some(keys), _) => {
                // A missing key is the partner's mistake whatever state the secrets are in.
                auth::require_present(incoming.api_key)?;
                let key = keys.get().await?.check(incoming.api_key)?;
                Ok((key, decode(incoming)?))
            }
            (Auth::Body(names), Some(keys), _) => {
                let (key, payload) = take_key(incoming, names)?;
                let key = keys.get().await?.check(key.as_deref().map(str::as_bytes))?;
                Ok((key, payload))
            }
            (Auth::Signature, _, Some(meta)) => {
                // A missing signature is the sender's mistake whatever state the secrets are in.
                auth::require_signature(incoming.signature)?;
                let key = meta
                    .secrets()
                    .await?
                    .check(incoming.signature, incoming.body)?;
                Ok((key, decode(incoming)?))
            }
            _ => Err(Failure::NoApiKeys.into()),
        }
    }

    /// Stores the record, or queues it while the database is unavailable.
    async fn keep(&self, record: LeadRecord, started: Instant) -> Result<Kept, Error> {
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
                    Ok(()) => Outcome::Queued(Postponed::Store(store)),
                    Err(buffer) => return Err(Failure::Unqueued { store, buffer }.into()),
                },
                None => return Err(store.into()),
            },
            Err(store) => return Err(store.into()),
        };
        Ok(Kept {
            outcome,
            phone_number: record.lead.phone_number,
        })
    }

    /// Every lead a notification names: read from the platform and kept, or queued to be
    /// read later. One lead that can be neither fails the whole notification, which the
    /// platform then sends again (its stored leads are found as duplicates).
    async fn notification(
        &self,
        notification: &Map<String, Value>,
        incoming: &Incoming<'_>,
        started: Instant,
    ) -> Result<Accepted, Error> {
        let mut summary = Summary::default();
        for reference in meta::references(notification) {
            let outcome = self.referenced(reference, incoming, started).await?;
            summary.count(&outcome);
        }
        Ok(Accepted::Batch(summary))
    }

    /// One lead a notification names, read and kept; queued unread when it cannot be
    /// read now, or when too little of the budget is left to try.
    async fn referenced(
        &self,
        reference: Reference,
        incoming: &Incoming<'_>,
        started: Instant,
    ) -> Result<Outcome, Error> {
        let Some(meta) = &self.meta else {
            return Err(Failure::NoApiKeys.into());
        };
        let left = self.budget.saturating_sub(started.elapsed());
        let reason = if left < PER_LEAD_RESERVE {
            "too little time left for this notification".to_owned()
        } else {
            // A platform sends a notification again until it hears 200: its stored leads
            // are not read again. A database that cannot say is asked again by `keep`.
            let platform = self.source.platform;
            let limit = left - PER_LEAD_RESERVE;
            if let Ok(Some(id)) = self
                .store
                .find(platform, &reference.leadgen_id, limit)
                .await
            {
                return Ok(Outcome::Stored(Stored::Duplicate(id)));
            }
            let read = meta
                .read(
                    self.source,
                    &reference,
                    incoming.request_id,
                    incoming.received_at,
                )
                .await;
            match read {
                Ok(record) => return Ok(self.keep(record, started).await?.outcome),
                Err(ReadError::Secret(error)) => return Err(error.into()),
                Err(error) => error.to_string(),
            }
        };
        let unread = Unread {
            source: self.source,
            reference,
            request_id: incoming.request_id.to_owned(),
            received_at: incoming.received_at,
        };
        let sent = match &self.buffer {
            Some(buffer) => buffer.send_unread(&unread).await,
            None => Err(BufferError::Missing),
        };
        match sent {
            Ok(()) => {
                tracing::warn!(
                    source = self.source.slug,
                    leadgen_id = unread.reference.leadgen_id,
                    reason,
                    "lead queued unread"
                );
                Ok(Outcome::Queued(Postponed::Unread(reason)))
            }
            Err(buffer) => Err(Failure::Unread {
                leadgen_id: unread.reference.leadgen_id,
                reason,
                buffer,
            }
            .into()),
        }
    }
}

/// The contract's checks 1 to 3, without I/O, for a source that proves itself with a
/// key: the key, the body, the required fields. Returns the record to store, or why the
/// request is refused.
pub fn prepare(
    source: &'static Source,
    api_keys: &ApiKeys,
    incoming: &Incoming<'_>,
) -> Result<LeadRecord, Error> {
    let payload = match source.auth {
        Auth::Body(names) => {
            let (key, payload) = take_key(incoming, names)?;
            api_keys.check(key.as_deref().map(str::as_bytes))?;
            payload
        }
        Auth::Header | Auth::Signature => {
            api_keys.check(incoming.api_key)?;
            decode(incoming)?
        }
    };
    Ok(read(source, payload, incoming)?)
}

fn decode(incoming: &Incoming<'_>) -> Result<Payload, Refusal> {
    payload::decode(incoming.content_type, incoming.body)
}

/// The body, and the key it carries under the first of `names` it has, taken out of it
/// so that it is never stored or queued with the lead.
fn take_key(incoming: &Incoming<'_>, names: &[&str]) -> Result<(Option<String>, Payload), Refusal> {
    let mut payload = decode(incoming)?;
    let key = lead::first_value(&payload.fields, names);
    let mut dropped = false;
    for name in names {
        dropped |= payload.fields.remove(*name).is_some();
    }
    if dropped {
        payload.archived = Value::Object(payload.fields.clone()).to_string();
    }
    Ok((key, payload))
}

/// Checks 2 and 3, once the proof has passed: the body's fields and the required ones.
fn read(
    source: &'static Source,
    payload: Payload,
    incoming: &Incoming<'_>,
) -> Result<LeadRecord, Refusal> {
    let fields = shape::fields(&source.shape, payload.fields);
    let lead = lead::map(source, &fields)?;
    Ok(LeadRecord {
        source,
        identity: Identity::of(source, &fields, incoming.idempotency_key, incoming.body),
        lead,
        payload: payload.archived,
        request_id: incoming.request_id.to_owned(),
        received_at: incoming.received_at,
    })
}
