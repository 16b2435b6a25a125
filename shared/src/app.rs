//! The pipeline of one source, free of Lambda types: proof → body → lead(s) → row, or the
//! buffer queue while the database (or the platform a lead is read from) is unavailable.
//! What differs between sources (how they prove themselves, how their body becomes
//! fields, what success looks like) is their declaration's (`source`), not code here.

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime};

use futures_util::{stream, StreamExt};

use serde_json::{Map, Value};

use crate::answer::{Answer, Answers};
use crate::auth::{self, ApiKeys, Fingerprint};
use crate::buffer::{Buffer, Unread};
use crate::config::DEFAULT_REQUEST_BUDGET;
use crate::container::Container;
use crate::dedup::Identity;
use crate::error::{BufferError, ConfigError, Error, Failure, Refusal, StoreError};
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

/// How long reading one lead from its platform (the Graph API's timeout), then storing
/// or queueing it, may take: a notification's leads still unread when less than this is
/// left of the budget are queued unread, so the platform hears back in time.
const READ_RESERVE: Duration = Duration::from_secs(4);

/// How many of a notification's leads are read from the platform at once: a large batch
/// is read within the budget, without opening more connections than the platform's
/// rate limits welcome.
const CONCURRENT_READS: usize = 16;

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
                Ok((key, decode(self.source, incoming)?))
            }
            (Auth::Body(names), Some(keys), _) => {
                let (key, payload) = take_key(self.source, incoming, names)?;
                let key = key.as_deref().map(str::as_bytes);
                // As with a header's key: missing is the sender's mistake, secrets or not.
                auth::require_present(key)?;
                let key = keys.get().await?.check(key)?;
                Ok((key, payload))
            }
            (Auth::Signature, _, Some(meta)) => {
                // A missing signature is the sender's mistake whatever state the secrets are
                // in; an oversized body is refused before its HMAC is computed.
                auth::require_signature(incoming.signature)?;
                payload::check_size(incoming.body, self.source.max_body)?;
                let key = meta
                    .secrets()
                    .await?
                    .check(incoming.signature, incoming.body)?;
                Ok((key, decode(self.source, incoming)?))
            }
            _ => Err(Failure::NoApiKeys.into()),
        }
    }

    /// Stores the record, or keeps it: on the buffer queue while the database is
    /// unavailable or refuses this function (the drain stores it once that is mended), on
    /// the dead-letter queue when the database refuses the row itself.
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

    /// Every lead a notification names, each to its own fate: read from the platform and
    /// kept (stored, or queued), or queued unread to be read later (the platform could
    /// not give it, or too little of the budget was left), or kept on the dead-letter
    /// queue (it can never become a row). Leads already stored (the platform resending a
    /// notification) are not read again. Reads run a few at a time; what the budget
    /// cannot read is queued unread in batches. Only a lead that ends neither stored nor
    /// kept fails the notification, which the platform then sends again.
    async fn notification(
        &self,
        notification: &Map<String, Value>,
        incoming: &Incoming<'_>,
        started: Instant,
    ) -> Result<Accepted, Error> {
        let Some(meta) = &self.meta else {
            return Err(Failure::NoApiKeys.into());
        };
        let references = meta::references(notification);
        let mut summary = Summary::default();
        let left = self.budget.saturating_sub(started.elapsed());
        let ids: Vec<&str> = references.iter().map(|r| r.leadgen_id.as_str()).collect();
        // A database that cannot say is asked again by `keep`.
        let stored = self
            .store
            .find_all(
                self.source.platform,
                &ids,
                left.saturating_sub(READ_RESERVE),
            )
            .await
            .unwrap_or_default();
        let mut seen = HashSet::new();
        let mut pending = Vec::new();
        for reference in references {
            if let Some(id) = stored.get(&reference.leadgen_id) {
                summary.count(&Outcome::Stored(Stored::Duplicate(id.clone())));
            } else if seen.insert(reference.leadgen_id.clone()) {
                pending.push(reference);
            } else {
                // Named twice in one notification: one read, one row.
                summary.duplicates += 1;
            }
        }

        // What the store did not take and what could not be read, queued together.
        let mut queueing: Vec<(String, Result<String, BufferError>)> = Vec::new();
        let mut unkept: Vec<(String, String)> = Vec::new();
        let reads: Vec<_> = pending
            .into_iter()
            .map(|reference| self.read(meta, reference, incoming, started))
            .collect();
        let reads = stream::iter(reads).buffer_unordered(CONCURRENT_READS);
        futures_util::pin_mut!(reads);
        while let Some((reference, read)) = reads.next().await {
            let leadgen_id = reference.leadgen_id.clone();
            match read {
                Ok(record) => {
                    let limit = self
                        .budget
                        .saturating_sub(started.elapsed())
                        .saturating_sub(crate::aws::OPERATION_TIMEOUT);
                    match self.store.insert_within(&record, limit).await {
                        Ok(stored) => summary.count(&Outcome::Stored(stored)),
                        Err(error @ StoreError::Rejected(_)) => {
                            let reason = error.to_string();
                            let body = crate::buffer::encode(&record);
                            match self.dead_letter(&leadgen_id, body, &reason).await {
                                Ok(()) => summary.queued += 1,
                                Err(error) => unkept.push((leadgen_id, error.to_string())),
                            }
                        }
                        Err(error) => {
                            tracing::warn!(source = self.source.slug, leadgen_id, error = %error, "lead queued");
                            queueing.push((leadgen_id, crate::buffer::encode(&record)));
                        }
                    }
                }
                // Read, and never a row: kept where an operator sees it.
                Err(Unreadable::Read(ReadError::Unusable(refusal))) => {
                    let body = self.unread_body(reference, incoming);
                    match self
                        .dead_letter(&leadgen_id, body, &refusal.to_string())
                        .await
                    {
                        Ok(()) => summary.queued += 1,
                        Err(error) => unkept.push((leadgen_id, error.to_string())),
                    }
                }
                Err(reason) => {
                    tracing::warn!(source = self.source.slug, leadgen_id, reason = %reason, "lead queued unread");
                    queueing.push((leadgen_id, self.unread_body(reference, incoming)));
                }
            }
        }

        let mut messages = Vec::new();
        for (leadgen_id, body) in queueing {
            match body {
                Ok(body) => messages.push((leadgen_id, body)),
                Err(error) => unkept.push((leadgen_id, error.to_string())),
            }
        }
        let count = messages.len();
        let failed = match &self.buffer {
            Some(buffer) => {
                let left = self.budget.saturating_sub(started.elapsed());
                let labels: Vec<String> = messages.iter().map(|(id, _)| id.clone()).collect();
                match tokio::time::timeout(left, buffer.send_all(messages)).await {
                    Ok(failed) => failed,
                    Err(_) => labels
                        .into_iter()
                        .map(|id| (id, BufferError::Send("out of time".into())))
                        .collect(),
                }
            }
            None => messages
                .into_iter()
                .map(|(id, _)| (id, BufferError::Missing))
                .collect(),
        };
        summary.queued += count - failed.len();
        unkept.extend(
            failed
                .into_iter()
                .map(|(id, error)| (id, error.to_string())),
        );

        if unkept.is_empty() {
            return Ok(Accepted::Batch(summary));
        }
        for (leadgen_id, error) in &unkept {
            tracing::error!(
                source = self.source.slug,
                leadgen_id,
                error,
                "lead neither stored nor kept"
            );
        }
        Err(Failure::Unkept {
            leads: unkept.len(),
            of: summary.stored + summary.duplicates + summary.queued + unkept.len(),
        }
        .into())
    }

    /// One lead a notification names, read from its platform while enough of the budget
    /// is left.
    async fn read(
        &self,
        meta: &Meta,
        reference: Reference,
        incoming: &Incoming<'_>,
        started: Instant,
    ) -> (Reference, Result<LeadRecord, Unreadable>) {
        if self.budget.saturating_sub(started.elapsed()) < READ_RESERVE {
            return (reference, Err(Unreadable::NoTime));
        }
        let read = meta
            .read(
                self.source,
                &reference,
                incoming.request_id,
                incoming.received_at,
            )
            .await;
        (reference, read.map_err(Unreadable::Read))
    }

    /// The queue message of a notification's lead that is to be read later.
    fn unread_body(
        &self,
        reference: Reference,
        incoming: &Incoming<'_>,
    ) -> Result<String, BufferError> {
        crate::buffer::encode_unread(&Unread {
            source: self.source,
            reference,
            request_id: incoming.request_id.to_owned(),
            received_at: incoming.received_at,
        })
    }

    /// Keeps a notification's lead that can never become a row (its message `body`) on
    /// the dead-letter queue.
    async fn dead_letter(
        &self,
        leadgen_id: &str,
        body: Result<String, BufferError>,
        reason: &str,
    ) -> Result<(), BufferError> {
        let buffer = self.buffer.as_ref().ok_or(BufferError::Missing)?;
        tracing::error!(
            source = self.source.slug,
            leadgen_id,
            reason,
            "lead kept on the dead-letter queue"
        );
        buffer.send_dead_letter(body?, reason).await
    }
}

/// Why a notification's lead was not read now.
#[derive(Debug, thiserror::Error)]
enum Unreadable {
    #[error("too little time left for this notification")]
    NoTime,
    #[error(transparent)]
    Read(ReadError),
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
            let body = crate::buffer::encode(record);
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
            let (key, payload) = take_key(source, incoming, names)?;
            api_keys.check(key.as_deref().map(str::as_bytes))?;
            payload
        }
        Auth::Header | Auth::Signature => {
            api_keys.check(incoming.api_key)?;
            decode(source, incoming)?
        }
    };
    Ok(read(source, payload, incoming)?)
}

fn decode(source: &Source, incoming: &Incoming<'_>) -> Result<Payload, Refusal> {
    payload::decode(incoming.content_type, incoming.body, source.max_body)
}

/// The body, and the key it carries under the first of `names` it has, taken out of it
/// so that it is never stored or queued with the lead.
fn take_key(
    source: &Source,
    incoming: &Incoming<'_>,
    names: &[&str],
) -> Result<(Option<String>, Payload), Refusal> {
    let mut payload = decode(source, incoming)?;
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
