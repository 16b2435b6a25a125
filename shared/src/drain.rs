//! The `drain` function: stores the leads the source functions queued while the database
//! was unavailable, through the same deduplicating insert, so a lead that was both stored
//! and queued (a timeout after the commit) lands once. A lead queued unread (its platform
//! could not give it yet) is read first, as the webhook would have.
//!
//! It reports partial batch failures: a stored message is deleted by Lambda, a failed one
//! comes back after the visibility timeout, and one that keeps failing moves to the
//! dead-letter queue (see template.yaml), where nothing is lost and an alarm fires.

use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{service_fn, LambdaEvent};

use crate::buffer::{self, Queued, Unread};
use crate::config::Config;
use crate::container::Container;
use crate::error::{BufferError, ConfigError, StoreError};
use crate::mask;
use crate::meta::{Meta, ReadError};
use crate::record::LeadRecord;
use crate::store::{Store, Stored};

/// Why one queued message was not stored.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    #[error(transparent)]
    Message(#[from] BufferError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("not tried: the database failed on an earlier message of the batch")]
    Skipped,
    #[error("a lead queued unread, and no Meta configuration to read it (META_SECRET_ARN)")]
    NoMeta,
    /// Retried until the queue moves it to the dead-letter queue, whose alarm fires: a
    /// lead the platform says is gone or forbidden is never dropped silently.
    #[error("lead {leadgen_id} not read: {error}")]
    Unread {
        leadgen_id: String,
        error: ReadError,
    },
}

/// The drain's state: the store, and Meta's side when configured, built once per
/// container.
#[derive(Debug)]
pub struct Drain {
    store: Store,
    meta: Option<Meta>,
}

impl Drain {
    pub fn new(store: Store) -> Self {
        Self { store, meta: None }
    }

    /// Reads the leads queued unread through `meta`.
    pub fn with_meta(mut self, meta: Meta) -> Self {
        self.meta = Some(meta);
        self
    }

    /// The drain the environment configures (`DATABASE_URL`, or `DB_SECRET_ARN` and
    /// its companions). Its store never rests after a failure (see `store`): the drain
    /// hands the rest of a batch back itself, and must store again as soon as the
    /// database answers.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let mut config = Config::from_env()?;
        config.database.settings.breaker = Duration::ZERO;
        let container = Container::from_config(config).await?;
        let drain = Self::new(container.store);
        Ok(match container.meta {
            Some(meta) => drain.with_meta(meta),
            None => drain,
        })
    }

    /// Stores every message of a batch it can, and names the others.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        let mut database_failed = false;
        for message in event.records {
            let started = Instant::now();
            let message_id = message.message_id.clone().unwrap_or_default();
            // Once the database is unavailable, the rest of the batch would only wait for
            // the same timeout: hand it back at once.
            let result = if database_failed {
                Err(DrainError::Skipped)
            } else {
                self.store(&message).await
            };
            if let Err(DrainError::Store(error)) = &result {
                database_failed |= error.is_unavailable();
            }
            log(&message_id, &result, started);
            if result.is_err() {
                response.add_failure(message_id);
            }
        }
        response
    }

    async fn store(&self, message: &SqsMessage) -> Result<(LeadRecord, Stored), DrainError> {
        let record = match buffer::read(message.body.as_deref().unwrap_or_default())? {
            Queued::Record(record) => record,
            Queued::Unread(unread) => self.read(unread).await?,
        };
        let stored = self.store.insert(&record).await?;
        Ok((record, stored))
    }

    /// The record of a lead queued unread, read from its platform now.
    async fn read(&self, unread: Unread) -> Result<LeadRecord, DrainError> {
        let meta = self.meta.as_ref().ok_or(DrainError::NoMeta)?;
        let reference = &unread.reference;
        meta.read(
            unread.source,
            reference,
            &unread.request_id,
            unread.received_at,
        )
        .await
        .map_err(|error| DrainError::Unread {
            leadgen_id: reference.leadgen_id.clone(),
            error,
        })
    }
}

/// One line per message. The phone only masked.
fn log(message_id: &str, result: &Result<(LeadRecord, Stored), DrainError>, started: Instant) {
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok((record, stored)) => {
            let outcome = match stored {
                Stored::Created(_) => "stored",
                Stored::Duplicate(_) => "duplicate",
            };
            let queued_ms = SystemTime::now()
                .duration_since(record.received_at)
                .map_or(0, |waited| waited.as_millis());
            tracing::info!(
                source = record.source.slug,
                message_id,
                request_id = record.request_id,
                outcome,
                latency_ms,
                queued_ms,
                lead_id = %stored.id(),
                phone = mask::phone(&record.lead.phone_number),
                "queued lead drained"
            );
        }
        Err(error) => tracing::error!(
            message_id,
            outcome = "failed",
            latency_ms,
            error = %error,
            "queued lead not stored; it will be retried"
        ),
    }
}

/// Serves SQS batches with `drain` until Lambda stops the container.
pub async fn serve(drain: &Drain) -> Result<(), lambda_runtime::Error> {
    tracing::info!("drain ready");
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, lambda_runtime::Error>(drain.handle(event.payload).await)
    }))
    .await
}
