//! Where a source function's leads go: the store, or, when it does not take one, the
//! buffer queue (the drain stores it later) or the dead-letter queue (it can never be a
//! row as it is), within the request's budget.

use std::time::{Duration, Instant};

use crate::domain::lead::record::LeadRecord;
use crate::domain::source::Source;
use crate::error::{BufferError, Error, Failure, StoreError};
use crate::infra::buffer::Buffer;
use crate::infra::store::Store;
use crate::pipeline::outcome::{Accepted, Outcome, Postponed};

/// A source function's store, queues and budget, built once per container.
#[derive(Debug)]
pub struct Keeper {
    pub(super) source: &'static Source,
    pub(super) store: Store,
    pub(super) buffer: Option<Buffer>,
    /// The most one request may take, secret reads, insert and queueing together.
    pub(super) budget: Duration,
}

impl Keeper {
    /// Stores the record, or keeps it: on the buffer queue while the database is
    /// unavailable or refuses this function (the drain stores it once that is mended), on
    /// the dead-letter queue when the database refuses the row itself.
    pub(super) async fn keep(
        &self,
        record: LeadRecord,
        started: Instant,
    ) -> Result<Accepted, Error> {
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
        Ok(Accepted::Lead {
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
