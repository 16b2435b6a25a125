//! The notification path: a platform's signed notification of lead ids (Meta). The size
//! and the signature over the exact bytes first; then each lead it names is fetched from
//! the platform and stored or kept, each to its own fate.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt};
use serde_json::{Map, Value};

use crate::domain::auth;
use crate::domain::lead::payload;
use crate::domain::lead::record::LeadRecord;
use crate::domain::meta::{self, Reference};
use crate::domain::source::Source;
use crate::error::{BufferError, Error, Failure, StoreError};
use crate::infra::buffer::Unfetched;
use crate::infra::graph::{FetchError, Meta};
use crate::infra::store::Stored;
use crate::pipeline::keep::Keeper;
use crate::pipeline::keyed::decode;
use crate::pipeline::outcome::{Accepted, Ingested, Outcome, Summary};
use crate::pipeline::request::{Handshake, Incoming};

/// How long reading one lead from its platform (the Graph API's timeout), then storing
/// or queueing it, may take: a notification's leads still unread when less than this is
/// left of the budget are queued unread, so the platform hears back in time.
const READ_RESERVE: Duration = Duration::from_secs(4);

/// How many of a notification's leads are read from the platform at once: a large batch
/// is read within the budget, without opening more connections than the platform's
/// rate limits welcome.
const CONCURRENT_READS: usize = 16;

/// One notification: proved, then each lead it names fetched and kept.
pub(super) async fn ingest(
    keeper: &Keeper,
    meta: &Meta,
    incoming: &Incoming<'_>,
    started: Instant,
) -> Ingested {
    let key = match admit(keeper.source, meta, incoming).await {
        Ok(key) => key,
        Err(error) => {
            return Ingested {
                key: None,
                result: Err(error),
            }
        }
    };
    let result = match decode(keeper.source, incoming) {
        Ok(payload) => {
            keeper
                .notification(meta, &payload.fields, incoming, started)
                .await
        }
        Err(refusal) => Err(refusal.into()),
    };
    Ingested {
        key: Some(key),
        result,
    }
}

/// The signature, whatever state the secrets are in for a missing one, and an oversized
/// body refused before its HMAC is computed.
async fn admit(
    source: &Source,
    meta: &Meta,
    incoming: &Incoming<'_>,
) -> Result<auth::Fingerprint, Error> {
    auth::require_signature(incoming.signature)?;
    payload::check_size(incoming.body, source.max_body)?;
    meta.secrets()
        .await?
        .check(incoming.signature, incoming.body)
}

/// Meta's subscription handshake: the challenge when the token is the verify token.
pub(super) async fn handshake(
    source: &Source,
    meta: &Meta,
    query: Handshake<'_>,
) -> Result<Option<String>, Error> {
    let secrets = meta.secrets().await.inspect_err(|error| {
        tracing::error!(source = source.slug, error = %error, "Meta secrets unavailable for the handshake");
    })?;
    Ok(secrets
        .handshake(query.mode, query.verify_token, query.challenge)
        .map(str::to_owned))
}

/// The notification path's steps, on the keeper of its function's leads.
impl Keeper {
    /// Every lead a notification names, each to its own fate: read from the platform and
    /// kept (stored, or queued), or queued unread to be read later (the platform could
    /// not give it, or too little of the budget was left), or kept on the dead-letter
    /// queue (it can never become a row). Leads already stored (the platform resending a
    /// notification) are not read again. Reads run a few at a time; what the budget
    /// cannot read is queued unread in batches. Only a lead that ends neither stored nor
    /// kept fails the notification, which the platform then sends again.
    async fn notification(
        &self,
        meta: &Meta,
        notification: &Map<String, Value>,
        incoming: &Incoming<'_>,
        started: Instant,
    ) -> Result<Accepted, Error> {
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
            .map(|reference| self.fetch(meta, reference, incoming, started))
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
                        .saturating_sub(crate::infra::aws::OPERATION_TIMEOUT);
                    match self.store.insert_within(&record, limit).await {
                        Ok(stored) => summary.count(&Outcome::Stored(stored)),
                        Err(error @ StoreError::Rejected(_)) => {
                            let reason = error.to_string();
                            let body = crate::infra::buffer::encode(&record);
                            match self.dead_letter(&leadgen_id, body, &reason).await {
                                Ok(()) => summary.queued += 1,
                                Err(error) => unkept.push((leadgen_id, error.to_string())),
                            }
                        }
                        Err(error) => {
                            tracing::warn!(source = self.source.slug, leadgen_id, error = %error, "lead queued");
                            queueing.push((leadgen_id, crate::infra::buffer::encode(&record)));
                        }
                    }
                }
                // Read, and never a row: kept where an operator sees it.
                Err(NotFetched::Read(FetchError::Unusable(refusal))) => {
                    let body = self.unfetched_body(reference, incoming);
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
                    queueing.push((leadgen_id, self.unfetched_body(reference, incoming)));
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
    async fn fetch(
        &self,
        meta: &Meta,
        reference: Reference,
        incoming: &Incoming<'_>,
        started: Instant,
    ) -> (Reference, Result<LeadRecord, NotFetched>) {
        if self.budget.saturating_sub(started.elapsed()) < READ_RESERVE {
            return (reference, Err(NotFetched::NoTime));
        }
        let read = meta
            .fetch(
                self.source,
                &reference,
                incoming.request_id,
                incoming.received_at,
            )
            .await;
        (reference, read.map_err(NotFetched::Read))
    }

    /// The queue message of a notification's lead that is to be read later.
    fn unfetched_body(
        &self,
        reference: Reference,
        incoming: &Incoming<'_>,
    ) -> Result<String, BufferError> {
        crate::infra::buffer::encode_unfetched(&Unfetched {
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
enum NotFetched {
    #[error("too little time left for this notification")]
    NoTime,
    #[error(transparent)]
    Read(FetchError),
}
