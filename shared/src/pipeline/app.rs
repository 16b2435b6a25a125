//! A source function's state, built once per container, and the request it is handed
//! once its edge has taken it out of its transport. Which path a request takes is the
//! source's proof kind: [`keyed`](super::keyed) for a key in a header or the body
//! (partners, Google), [`notification`](super::notification) for a signed notification
//! of leads to fetch (Meta). What else differs between sources is their declaration's,
//! not code here.

use std::time::{Duration, Instant, SystemTime};

use crate::domain::auth::ApiKeys;
use crate::domain::record::LeadRecord;
use crate::domain::source::{Auth, Source};
use crate::error::{BufferError, ConfigError, Error, Failure, StoreError};
use crate::infra::buffer::Buffer;
use crate::infra::config::DEFAULT_REQUEST_BUDGET;
use crate::infra::container::Container;
use crate::infra::graph::Meta;
use crate::infra::secrets::Setting;
use crate::infra::store::Store;
use crate::pipeline::outcome::{Ingested, Kept, Outcome, Postponed};
use crate::pipeline::{keyed, notification};

/// What a request brings, already taken out of its transport.
#[derive(Clone, Copy)]
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
#[derive(Clone, Copy, Default)]
pub struct Handshake<'a> {
    pub mode: Option<&'a str>,
    pub verify_token: Option<&'a str>,
    pub challenge: Option<&'a str>,
}

// A key, a signature, a body (a customer's name and phone) and a verify token are never
// printed, whatever logs a request later: only whether they came, and how large.
impl std::fmt::Debug for Incoming<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("api_key", &self.api_key.map(|_| "<redacted>"))
            .field("signature", &self.signature.map(|_| "<redacted>"))
            .field("content_type", &self.content_type)
            .field(
                "idempotency_key",
                &self.idempotency_key.map(|_| "<redacted>"),
            )
            .field("body_bytes", &self.body.len())
            .field("request_id", &self.request_id)
            .field("received_at", &self.received_at)
            .finish()
    }
}

impl std::fmt::Debug for Handshake<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake")
            .field("mode", &self.mode)
            .field("verify_token", &self.verify_token.map(|_| "<redacted>"))
            .field("challenge", &self.challenge)
            .finish()
    }
}

/// How a source's requests prove they come from it, with what checks the proof.
#[derive(Debug)]
pub(super) enum Proof {
    /// A key, in a header or in the body: partners, Google.
    Keys(Setting<ApiKeys>),
    /// A signature over the body, and the platform the leads are fetched from: Meta.
    Signature(Meta),
}

/// A source function's state, built once per container.
#[derive(Debug)]
pub struct App {
    pub(super) source: &'static Source,
    pub(super) proof: Proof,
    pub(super) store: Store,
    pub(super) buffer: Option<Buffer>,
    pub(super) budget: Duration,
}

impl App {
    /// A source that proves itself with a key (in a header or in its body).
    pub fn new(source: &'static Source, api_keys: ApiKeys, store: Store) -> Self {
        Self::with(source, Proof::Keys(Setting::fixed(api_keys)), store)
    }

    /// A source whose notifications are signed and whose leads are fetched from the
    /// Graph API (Meta).
    pub fn signed(source: &'static Source, meta: Meta, store: Store) -> Self {
        Self::with(source, Proof::Signature(meta), store)
    }

    fn with(source: &'static Source, proof: Proof, store: Store) -> Self {
        Self {
            source,
            proof,
            store,
            buffer: None,
            budget: DEFAULT_REQUEST_BUDGET,
        }
    }

    /// Keeps leads on `buffer` (and its dead-letter queue) when the store does not take
    /// them.
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

    /// A source function's state from its container's parts: what its declaration says
    /// it proves itself with is required.
    pub fn from_container(
        source: &'static Source,
        container: Container,
    ) -> Result<Self, ConfigError> {
        let proof = match source.auth {
            Auth::Header | Auth::Body(_) => Proof::Keys(
                container
                    .api_keys
                    .ok_or(ConfigError::Missing("API_KEYS or API_KEYS_SECRET_ARN"))?,
            ),
            Auth::Signature => Proof::Signature(
                container
                    .meta
                    .ok_or(ConfigError::Missing("META_SECRET_ARN or META_APP_SECRETS"))?,
            ),
        };
        let app = Self::with(source, proof, container.store).with_budget(container.request_budget);
        Ok(match container.buffer {
            Some(buffer) => app.with_buffer(buffer),
            None => app,
        })
    }

    /// Reads the secrets now, so the first request does not wait for them. A failure is
    /// logged and retried by the first request instead of failing the container.
    pub async fn warm_up(&self) {
        let read = match &self.proof {
            Proof::Keys(keys) => keys.get().await.map(drop),
            Proof::Signature(meta) => meta.secrets().await.map(drop),
        };
        if let Err(error) = read {
            tracing::error!(source = self.source.slug, error = %error, "secrets unavailable at start");
        }
        // The phone library loads its metadata on first use: here, not in a request.
        let _ = crate::domain::phone::e164("+919876543210");
        if let Err(error) = self.store.read_credentials().await {
            tracing::error!(source = self.source.slug, error = %error, "database credentials unavailable at start");
        }
    }

    pub fn source(&self) -> &'static Source {
        self.source
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs the checks in the order the source's declaration gives, then stores each
    /// lead once, or keeps it on a queue. Names the key that passed, for the log.
    ///
    /// The whole takes at most the budget: a slow secret read shortens the insert's
    /// limit, and the queue's own bound is kept back for a lead the database did not take.
    pub async fn ingest(&self, incoming: Incoming<'_>) -> Ingested {
        let started = Instant::now();
        match &self.proof {
            Proof::Keys(keys) => keyed::ingest(self, keys, &incoming, started).await,
            Proof::Signature(meta) => notification::ingest(self, meta, &incoming, started).await,
        }
    }

    /// Meta's subscription handshake (a `GET`): the challenge to echo when the token is
    /// the verify token, else `None`. A source without one refuses every handshake.
    pub async fn handshake(&self, query: Handshake<'_>) -> Result<Option<String>, Error> {
        match &self.proof {
            Proof::Signature(meta) => notification::handshake(self, meta, query).await,
            Proof::Keys(_) => Ok(None),
        }
    }

    /// Stores the record, or keeps it: on the buffer queue while the database is
    /// unavailable or refuses this function (the drain stores it once that is mended), on
    /// the dead-letter queue when the database refuses the row itself.
    pub(super) async fn keep(&self, record: LeadRecord, started: Instant) -> Result<Kept, Error> {
        let queueing = match self.buffer {
            Some(_) => crate::infra::aws::OPERATION_TIMEOUT,
            None => Duration::ZERO,
        };
        let limit = self
            .budget
            .saturating_sub(started.elapsed())
            .saturating_sub(queueing);
        let outcome = match self.store.insert_within(&record, limit).await {
            Ok(stored) => Outcome::Stored(stored),
            Err(store) => {
                let Some(buffer) = &self.buffer else {
                    return Err(store.into());
                };
                match postpone(buffer, &record, store).await {
                    Ok(postponed) => Outcome::Queued(postponed),
                    Err(failure) => return Err(failure.into()),
                }
            }
        };
        Ok(Kept {
            outcome,
            phone_number: record.lead.phone_number,
        })
    }
}

/// Keeps a record the store did not take: a refused row on the dead-letter queue (or, if
/// that is not configured, the buffer, whose drain dead-letters it), anything else on
/// the buffer.
async fn postpone(
    buffer: &Buffer,
    record: &LeadRecord,
    store: StoreError,
) -> Result<Postponed, Failure> {
    let sent = match &store {
        StoreError::Rejected(_) => {
            let body = crate::infra::buffer::encode(record);
            match body {
                Ok(body) => match buffer.send_dead_letter(body, &store.to_string()).await {
                    Err(BufferError::NoDeadLetter) => buffer.send(record).await,
                    sent => sent,
                },
                Err(error) => Err(error),
            }
        }
        _ => buffer.send(record).await,
    };
    match sent {
        Ok(()) if matches!(store, StoreError::Rejected(_)) => Ok(Postponed::Refused(store)),
        Ok(()) => Ok(Postponed::Store(store)),
        Err(buffer) => Err(Failure::Unqueued { store, buffer }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_never_prints_its_key_signature_body_or_token() {
        let incoming = Incoming {
            api_key: Some(b"the-partner-key"),
            signature: Some(b"sha256=the-signature"),
            content_type: Some("application/json"),
            idempotency_key: Some(b"the-idempotency-key"),
            body: br#"{"name":"Asha Rao","phone":"9876543210"}"#,
            request_id: "r-1",
            received_at: SystemTime::UNIX_EPOCH,
        };
        let printed = format!("{incoming:?}");
        for secret in [
            "the-partner-key",
            "the-signature",
            "the-idempotency-key",
            "Asha",
            "98765",
        ] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(
            printed.contains("r-1") && printed.contains("body_bytes"),
            "{printed}"
        );
        let handshake = Handshake {
            mode: Some("subscribe"),
            verify_token: Some("the-verify-token"),
            challenge: Some("1158201444"),
        };
        let printed = format!("{handshake:?}");
        assert!(!printed.contains("the-verify-token"), "{printed}");
        assert!(printed.contains("1158201444"), "{printed}");
    }
}
