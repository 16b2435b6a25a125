//! `Lead stored` events onto the stack's EventBridge bus (`EVENT_BUS_NAME`).
//!
//! Each event is first an outbox row, written by the statement that stores its lead
//! (see `store`); this module only puts rows' details on the bus and says which ones
//! EventBridge took, so that only those are deleted. Delivery is at least once: a row
//! published but not deleted (a lost answer, a failed delete) is published again by the
//! relay, and subscribers deduplicate on the detail's `id`.
//!
//! The endpoint comes from the SDK configuration: `AWS_ENDPOINT_URL_EVENTBRIDGE` (or
//! `AWS_ENDPOINT_URL`) points it elsewhere, for local runs and tests.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::error::EventsError;

/// The events' `source`: this stack.
pub const SOURCE: &str = "mg-digital-leads";
/// The events' `detail-type`.
pub const DETAIL_TYPE: &str = "Lead stored";
/// How long a function waits for EventBridge after storing its lead, before answering
/// anyway (the relay publishes what it did not); the outbox row's delete after a publish
/// has as long again.
pub const PUBLISH_WAIT: Duration = Duration::from_millis(400);
/// How long a function leaves its events to the relay after EventBridge failed or was
/// slow, instead of each lead waiting out [`PUBLISH_WAIT`] again (a notification of many
/// leads would otherwise spend its whole budget on them).
pub const REST_AFTER_FAILURE: Duration = Duration::from_secs(30);
/// The most entries one PutEvents call takes.
pub const MAX_ENTRIES: usize = 10;

/// An outbox row: a recorded event not yet taken by EventBridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The outbox row's id.
    pub id: i64,
    /// The event's detail, JSON text, as recorded with the lead.
    pub detail: String,
}

/// The bus events go to.
#[derive(Debug, Clone)]
pub struct Events {
    client: aws_sdk_eventbridge::Client,
    bus: String,
    wait: Duration,
    /// Set after a publish right after a commit failed: until then, such publishes are
    /// not tried (a circuit breaker; the relay is not affected).
    resting_until: Arc<Mutex<Option<Instant>>>,
}

impl Events {
    pub fn new(config: &aws_config::SdkConfig, bus: String) -> Self {
        Self {
            client: aws_sdk_eventbridge::Client::new(config),
            bus,
            wait: PUBLISH_WAIT,
            resting_until: Arc::default(),
        }
    }

    /// Whether a publish right after a commit should be skipped: one failed less than
    /// [`REST_AFTER_FAILURE`] ago.
    pub fn resting(&self) -> bool {
        let mut until = self
            .resting_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match *until {
            Some(at) if Instant::now() < at => true,
            Some(_) => {
                *until = None;
                false
            }
            None => false,
        }
    }

    /// Rests for [`REST_AFTER_FAILURE`] after a publish right after a commit failed.
    pub fn rest(&self) {
        *self
            .resting_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) =
            Some(Instant::now() + REST_AFTER_FAILURE);
    }

    /// Waits `wait` rather than [`PUBLISH_WAIT`] after storing a lead (a local stand-in
    /// for EventBridge may answer slower than EventBridge does).
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// How long a function waits for EventBridge after storing a lead.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    pub fn bus(&self) -> &str {
        &self.bus
    }

    /// Puts `recorded` on the bus, [`MAX_ENTRIES`] per call, within `limit` in all.
    /// Returns the ids of the rows EventBridge took: a call EventBridge answered with
    /// some entries failed (`FailedEntryCount`) takes only the others. An error means
    /// none was taken after the last whole call that succeeded; the ids taken before it
    /// are in the error's place in `taken`.
    pub async fn publish(
        &self,
        recorded: &[Recorded],
        limit: Duration,
        taken: &mut Vec<i64>,
    ) -> Result<(), EventsError> {
        let all = async {
            for batch in recorded.chunks(MAX_ENTRIES) {
                self.put(batch, taken).await?;
            }
            Ok(())
        };
        tokio::time::timeout(limit, all)
            .await
            .unwrap_or(Err(EventsError::Timeout(limit)))
    }

    /// One PutEvents call of at most [`MAX_ENTRIES`] rows.
    async fn put(&self, batch: &[Recorded], taken: &mut Vec<i64>) -> Result<(), EventsError> {
        let entries = batch
            .iter()
            .map(|recorded| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus)
                    .source(SOURCE)
                    .detail_type(DETAIL_TYPE)
                    .detail(&recorded.detail)
                    .build()
            })
            .collect();
        let output = self
            .client
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|error| EventsError::Put(DisplayErrorContext(&error).to_string()))?;
        // The answer's entries are in the request's order; one with an error code
        // was not taken.
        let results = output.entries();
        for (index, recorded) in batch.iter().enumerate() {
            let accepted = results
                .get(index)
                .is_some_and(|result| result.error_code().is_none() && result.event_id().is_some());
            if accepted {
                taken.push(recorded.id);
            }
        }
        if output.failed_entry_count() > 0 {
            let reason = results
                .iter()
                .find_map(|result| result.error_code())
                .unwrap_or("unknown");
            tracing::warn!(
                failed = output.failed_entry_count(),
                of = batch.len(),
                reason,
                "EventBridge refused some events; the relay tries them again"
            );
        }
        Ok(())
    }
}
