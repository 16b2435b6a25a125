//! The `drain` function: stores the leads the source functions queued while the database
//! was unavailable, through the same deduplicating insert, so a lead that was both stored
//! and queued (a timeout after the commit) lands once. A lead queued unread (its platform
//! could not give it yet) is read first, as the webhook would have.
//!
//! It reports partial batch failures, and decides what becomes of each lead it could not
//! store ([`Verdict`]):
//! - one that will store once the database (or the Graph API) is back, or once an
//!   operator mends the configuration, is handed back and kept out of sight for a delay
//!   that grows with its receives to a few minutes ([`Backoff`], which template.yaml's
//!   `maxReceiveCount` is checked against), so an outage of days passes without it;
//! - one that can never be stored as it is (a message it cannot read, a lead the database
//!   refuses as data, a Meta lead the Graph API says is gone or forbidden) goes to the
//!   dead-letter queue at once, with its reason, where the queue's alarm fires.

use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};

use crate::domain::lead::record::LeadRecord;
use crate::domain::mask;
use crate::error::{BufferError, ConfigError, SecretError, StoreError};
use crate::infra::buffer::{self, Buffer, Queued, Unfetched, VisibilityError};
use crate::infra::config::intake::DrainConfig;
use crate::infra::graph::{FetchError, GraphError, Meta};
use crate::infra::parts::Parts;
use crate::infra::store::{Store, Stored};

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
    /// A lead the platform says is gone or forbidden goes to the dead-letter queue, whose
    /// alarm fires: never dropped silently.
    #[error("lead {leadgen_id} not read: {error}")]
    Unfetched {
        leadgen_id: String,
        error: FetchError,
    },
}

/// What becomes of a message that was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It will store once the database or the Graph API is back: retried with the backoff.
    Later,
    /// It will store once an operator mends the configuration (the role's grants, a
    /// migration not applied, Meta's settings): retried with the backoff, logged as an
    /// error that names the fix.
    AfterFix,
    /// It can never be stored as it is: to the dead-letter queue, with its reason.
    Never,
}

impl DrainError {
    pub fn verdict(&self) -> Verdict {
        match self {
            Self::Message(_) => Verdict::Never,
            Self::Store(StoreError::Rejected(_)) => Verdict::Never,
            Self::Store(StoreError::Denied(_)) => Verdict::AfterFix,
            Self::Store(_) | Self::Skipped => Verdict::Later,
            Self::NoMeta => Verdict::AfterFix,
            Self::Unfetched { error, .. } => match error {
                FetchError::Graph(GraphError::Refused(_)) | FetchError::Unusable(_) => {
                    Verdict::Never
                }
                FetchError::Graph(GraphError::Unavailable(_)) => Verdict::Later,
                FetchError::Secret(SecretError::Fetch { .. }) => Verdict::Later,
                FetchError::Secret(SecretError::Parse { .. }) => Verdict::AfterFix,
            },
        }
    }
}

/// How long a message that will store later is kept out of sight after its `n`th
/// receive failed: `first`, doubling with each receive, at most `cap`. The queue counts
/// a receive towards its `maxReceiveCount` however long the message then waits, so
/// waiting longer is what lets a long outage pass without the dead-letter queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// At the latest, how soon after the database's return a lead queued meanwhile is stored.
    pub const RECOVERY: Duration = Duration::from_secs(5 * 60);
    /// The longest outage a queued lead waits through before the queue dead-letters it.
    pub const OUTAGE: Duration = Duration::from_secs(3 * 24 * 3600);
    /// The drain's schedule: a blip costs a minute; no wait outgrows `RECOVERY` less half a
    /// minute for the try, and SQS's thousand receives still span `OUTAGE`.
    pub const SCHEDULE: Self = Self {
        first: Duration::from_secs(60),
        cap: Duration::from_secs(270),
    };

    /// The delay after the `receive`th receive (1 for the first) failed; never more than
    /// SQS allows.
    pub fn delay(&self, receive: u32) -> Duration {
        let doublings = receive.saturating_sub(1).min(31);
        self.first
            .saturating_mul(1 << doublings)
            .min(self.cap)
            .min(buffer::MAX_VISIBILITY)
    }

    /// How long a lead that keeps failing for a passing reason is still tried, from its
    /// first receive, on a queue that dead-letters it after `max_receive_count`
    /// receives: the time of its last receive. An outage shorter than this drains by
    /// itself (the time each failed try takes comes on top).
    pub fn horizon(&self, max_receive_count: u32) -> Duration {
        (1..max_receive_count)
            .map(|receive| self.delay(receive))
            .sum()
    }

    /// When the queue dead-letters such a lead, from its first receive: after the delay
    /// of its last receive.
    pub fn dead_lettered_after(&self, max_receive_count: u32) -> Duration {
        self.horizon(max_receive_count) + self.delay(max_receive_count)
    }
}

/// The drain's state: the store, Meta's side when configured, and the buffer queue (to
/// back off and to dead-letter), built once per container.
#[derive(Debug)]
pub struct Drain {
    store: Store,
    meta: Option<Meta>,
    buffer: Option<Buffer>,
    backoff: Backoff,
}

impl Drain {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            meta: None,
            buffer: None,
            backoff: Backoff::SCHEDULE,
        }
    }

    /// Reads the leads queued unread through `meta`.
    pub fn with_meta(mut self, meta: Meta) -> Self {
        self.meta = Some(meta);
        self
    }

    /// Backs off on `buffer`'s queue (the one that feeds the drain), and dead-letters to
    /// its dead-letter queue. Without it a failed lead comes back after the queue's
    /// visibility timeout, and one that can never be stored stays until the queue
    /// dead-letters it without a reason.
    pub fn with_buffer(mut self, buffer: Buffer) -> Self {
        self.buffer = Some(buffer);
        self
    }

    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The drain the environment configures (`DATABASE_URL`, or `DB_SECRET_ARN` and
    /// its companions; `BUFFER_QUEUE_URL` and `DEAD_LETTER_QUEUE_URL`). Its store never
    /// rests after a failure (see `store`): the drain hands the rest of a batch back
    /// itself, and must store again as soon as the database answers.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let mut config = DrainConfig::from_env()?;
        config.base.database.settings.breaker = Duration::ZERO;
        let parts = Parts::load(config.needs_aws(), config.base.secrets_ttl).await;
        let (store, buffer) = parts.keeping(config.base.database, config.keeping)?;
        let mut drain = Self::new(store);
        if let Some(meta) = config.meta {
            drain = drain.with_meta(parts.meta(meta)?);
        }
        match buffer {
            Some(buffer) => drain = drain.with_buffer(buffer),
            None => tracing::warn!(
                "no BUFFER_QUEUE_URL: failed leads come back after the queue's visibility \
                 timeout, and none is dead-lettered with its reason"
            ),
        }
        Ok(drain)
    }

    /// Stores every message of a batch it can, dead-letters those that can never be
    /// stored, and names the others (kept out of sight for their backoff).
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut settled = Vec::with_capacity(event.records.len());
        let mut database_failed = false;
        for message in event.records {
            let started = Instant::now();
            // Once the database is unavailable, the rest of the batch would only wait for
            // the same timeout: hand it back at once.
            let result = if database_failed {
                Err(DrainError::Skipped)
            } else {
                self.store(&message).await
            };
            let outcome = match result {
                Ok((record, stored)) => Outcome::Stored(Box::new(record), stored),
                Err(error) => {
                    if let DrainError::Store(error) = &error {
                        database_failed |= error.is_unavailable();
                    }
                    self.settle(&message, error).await
                }
            };
            settled.push((message, outcome, started));
        }
        self.back_off(&mut settled).await;

        let mut response = SqsBatchResponse::default();
        for (message, outcome, started) in settled {
            let message_id = message.message_id.unwrap_or_default();
            log(&message_id, &outcome, started);
            if outcome.stays_queued() {
                response.add_failure(message_id);
            }
        }
        response
    }

    async fn store(&self, message: &SqsMessage) -> Result<(LeadRecord, Stored), DrainError> {
        let record = match buffer::decode(message.body.as_deref().unwrap_or_default())? {
            Queued::Record(record) => record,
            Queued::Unfetched(unread) => self.fetch(unread).await?,
        };
        let stored = self.store.insert(&record).await?;
        Ok((record, stored))
    }

    /// The record of a lead queued unread, read from its platform now.
    async fn fetch(&self, unread: Unfetched) -> Result<LeadRecord, DrainError> {
        let meta = self.meta.as_ref().ok_or(DrainError::NoMeta)?;
        let reference = &unread.reference;
        meta.fetch(
            unread.source,
            reference,
            &unread.request_id,
            unread.received_at,
        )
        .await
        .map_err(|error| DrainError::Unfetched {
            leadgen_id: reference.leadgen_id.clone(),
            error,
        })
    }

    /// A message that can never be stored goes to the dead-letter queue now (it is then
    /// done with); any other waits for its backoff.
    async fn settle(&self, message: &SqsMessage, error: DrainError) -> Outcome {
        let verdict = error.verdict();
        if verdict != Verdict::Never {
            return Outcome::Retried {
                error,
                verdict,
                // Until `back_off` hides it.
                delay: Err(Unhidden::NoReceiptHandle),
            };
        }
        let sent = match &self.buffer {
            Some(buffer) => {
                let body = message.body.clone().unwrap_or_default();
                buffer.send_dead_letter(body, &reason(&error)).await
            }
            None => Err(BufferError::Missing),
        };
        match sent {
            Ok(()) => Outcome::DeadLettered(error),
            Err(unsent) => Outcome::NotDeadLettered { error, unsent },
        }
    }

    /// Keeps every message to retry out of sight for its backoff, by its receive count.
    async fn back_off(&self, settled: &mut [(SqsMessage, Outcome, Instant)]) {
        let mut requests = Vec::new();
        let mut hidden = Vec::new();
        for (index, (message, outcome, _)) in settled.iter().enumerate() {
            if !matches!(outcome, Outcome::Retried { .. }) {
                continue;
            }
            if let Some(receipt_handle) = message.receipt_handle.as_deref() {
                let receives = message
                    .attributes
                    .get("ApproximateReceiveCount")
                    .and_then(|count| count.parse::<u32>().ok())
                    .unwrap_or(1);
                requests.push((receipt_handle, self.backoff.delay(receives)));
                hidden.push(index);
            }
        }
        let answers: Vec<Result<Duration, Unhidden>> = match &self.buffer {
            Some(buffer) => buffer
                .hide(&requests)
                .await
                .into_iter()
                .zip(&requests)
                .map(|(answer, (_, delay))| answer.map(|()| *delay).map_err(Unhidden::Failed))
                .collect(),
            None => requests.iter().map(|_| Err(Unhidden::NoBuffer)).collect(),
        };
        for (index, answer) in hidden.into_iter().zip(answers) {
            if let Outcome::Retried { delay, .. } = &mut settled[index].1 {
                *delay = answer;
            }
        }
    }
}

/// The dead-letter reason: the error's text, bounded (a message attribute counts
/// towards the message's size).
fn reason(error: &DrainError) -> String {
    const MAX_CHARS: usize = 1000;
    let text = error.to_string();
    match text.char_indices().nth(MAX_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
}

/// What the drain did with one message.
#[derive(Debug)]
enum Outcome {
    Stored(Box<LeadRecord>, Stored),
    /// Handed back, out of sight for the delay (or, when it could not be hidden, for the
    /// queue's visibility timeout).
    Retried {
        error: DrainError,
        verdict: Verdict,
        delay: Result<Duration, Unhidden>,
    },
    /// On the dead-letter queue: done with here.
    DeadLettered(DrainError),
    /// Can never be stored, and the dead-letter queue did not take it: it stays queued.
    NotDeadLettered {
        error: DrainError,
        unsent: BufferError,
    },
}

impl Outcome {
    /// Whether the message must stay on the buffer queue (a batch item failure).
    fn stays_queued(&self) -> bool {
        !matches!(self, Self::Stored(..) | Self::DeadLettered(_))
    }
}

/// Why a message to retry comes back after the queue's visibility timeout instead.
#[derive(Debug)]
enum Unhidden {
    NoReceiptHandle,
    NoBuffer,
    Failed(VisibilityError),
}

impl std::fmt::Display for Unhidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoReceiptHandle => f.write_str("no receipt handle"),
            Self::NoBuffer => f.write_str("no BUFFER_QUEUE_URL"),
            Self::Failed(error) => error.fmt(f),
        }
    }
}

/// One line per message. The phone only masked.
fn log(message_id: &str, outcome: &Outcome, started: Instant) {
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    match outcome {
        Outcome::Stored(record, stored) => {
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
        Outcome::Retried {
            error,
            verdict,
            delay,
        } => {
            let retry_in_s = delay.as_ref().ok().map(Duration::as_secs);
            let unhidden = delay.as_ref().err().map(ToString::to_string);
            if *verdict == Verdict::AfterFix {
                tracing::error!(
                    message_id,
                    outcome = "retried",
                    latency_ms,
                    error = %error,
                    retry_in_s,
                    unhidden,
                    "queued lead not stored until an operator fixes the configuration \
                     (the database role's grants, `make migrate`, Meta's settings); it \
                     will be retried"
                );
            } else {
                tracing::warn!(
                    message_id,
                    outcome = "retried",
                    latency_ms,
                    error = %error,
                    retry_in_s,
                    unhidden,
                    "queued lead not stored yet; it will be retried"
                );
            }
        }
        Outcome::DeadLettered(error) => tracing::error!(
            message_id,
            outcome = "dead_lettered",
            latency_ms,
            error = %error,
            "queued lead can never be stored as it is; moved to the dead-letter queue with \
             its reason"
        ),
        Outcome::NotDeadLettered { error, unsent } => tracing::error!(
            message_id,
            outcome = "failed",
            latency_ms,
            error = %error,
            unsent = %unsent,
            "queued lead can never be stored as it is, and the dead-letter queue did not \
             take it; it stays queued"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_cap() {
        let delays: Vec<u64> = (1..=8)
            .map(|receive| Backoff::SCHEDULE.delay(receive).as_secs())
            .collect();
        assert_eq!(delays, [60, 120, 240, 270, 270, 270, 270, 270]);
        assert_eq!(Backoff::SCHEDULE.delay(0).as_secs(), 60);
        assert_eq!(Backoff::SCHEDULE.delay(u32::MAX).as_secs(), 270);
        let unbounded = Backoff {
            first: Duration::from_secs(60),
            cap: Duration::MAX,
        };
        assert_eq!(unbounded.delay(40), buffer::MAX_VISIBILITY);
        assert_eq!(Backoff::SCHEDULE.horizon(3).as_secs(), 180);
        assert_eq!(Backoff::SCHEDULE.dead_lettered_after(3).as_secs(), 420);
    }

    /// A lead waits through three days of outage on SQS's thousand receives, and is
    /// tried again within five minutes of the database's return, whenever that is.
    #[test]
    fn a_lead_outlasts_a_long_outage_and_is_stored_soon_after_it() {
        let backoff = Backoff::SCHEDULE;
        assert!(
            backoff.horizon(1000) >= Backoff::OUTAGE,
            "{:?}",
            backoff.horizon(1000)
        );
        let try_time = Duration::from_secs(30);
        for receive in 0..=1000 {
            assert!(
                backoff.delay(receive) + try_time <= Backoff::RECOVERY,
                "receive {receive}"
            );
        }
    }

    #[test]
    fn only_what_can_never_be_stored_is_dead_lettered() {
        let refused = |text: &str| DrainError::Unfetched {
            leadgen_id: "1".into(),
            error: FetchError::Graph(GraphError::Refused(text.into())),
        };
        let unavailable = DrainError::Unfetched {
            leadgen_id: "1".into(),
            error: FetchError::Graph(GraphError::Unavailable("rate limit".into())),
        };
        for (error, verdict) in [
            (
                DrainError::Message(BufferError::Message("not JSON".into())),
                Verdict::Never,
            ),
            (
                DrainError::Store(StoreError::Rejected(sqlx::Error::RowNotFound)),
                Verdict::Never,
            ),
            (refused("code 100"), Verdict::Never),
            (
                DrainError::Store(StoreError::Denied(sqlx::Error::RowNotFound)),
                Verdict::AfterFix,
            ),
            (DrainError::NoMeta, Verdict::AfterFix),
            (
                DrainError::Store(StoreError::Timeout(Duration::from_secs(5))),
                Verdict::Later,
            ),
            (DrainError::Store(StoreError::Resting), Verdict::Later),
            (DrainError::Skipped, Verdict::Later),
            (unavailable, Verdict::Later),
        ] {
            assert_eq!(error.verdict(), verdict, "{error}");
        }
    }
}
