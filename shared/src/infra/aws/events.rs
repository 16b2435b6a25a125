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
use futures_util::StreamExt;

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
/// The most bytes of entries one PutEvents call takes (EventBridge refuses a larger
/// request whole).
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// How many PutEvents calls the relay has in flight at once.
pub const CONCURRENT_CALLS: usize = 4;

/// An outbox row: a recorded event not yet taken by EventBridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The outbox row's id.
    pub id: i64,
    /// The event's detail, JSON text, as recorded with the lead.
    pub detail: String,
    /// The token the storing statement drew, by which that function deletes its own row
    /// (the relay, which deletes by id, has none).
    pub token: Option<String>,
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

    /// Puts `recorded` on the bus within `limit` in all: in calls of at most
    /// [`MAX_ENTRIES`] entries and [`MAX_REQUEST_BYTES`], [`CONCURRENT_CALLS`] at a
    /// time. Says which rows EventBridge took, which it refused for themselves (never to
    /// be offered again), and why the others were not taken, if a call failed whole.
    pub async fn publish(&self, recorded: &[Recorded], limit: Duration) -> Published {
        let mut published = Published::default();
        let mut offered = Vec::with_capacity(recorded.len());
        for row in recorded {
            let size = entry_size(&row.detail);
            if size > MAX_REQUEST_BYTES {
                published.refused.push((
                    row.id,
                    format!("an event of {size} bytes is over EventBridge's limit"),
                ));
            } else {
                offered.push((row, size));
            }
        }
        let calls = batches(&offered);
        // The calls built first, so the stream holds futures only (no closure over
        // borrowed rows, which a Send future cannot name the lifetimes of).
        let mut puts = Vec::with_capacity(calls.len());
        for batch in &calls {
            puts.push(self.put(batch.as_slice()));
        }
        let results = futures_util::stream::iter(puts)
            .buffered(CONCURRENT_CALLS)
            .collect::<Vec<_>>();
        match tokio::time::timeout(limit, results).await {
            Ok(results) => {
                for result in results {
                    match result {
                        Ok(put) => {
                            published.taken.extend(put.taken);
                            published.refused.extend(put.refused);
                        }
                        Err(error) => published.error = Some(error),
                    }
                }
            }
            Err(_) => published.error = Some(EventsError::Timeout(limit)),
        }
        published
    }

    /// One PutEvents call.
    async fn put(&self, batch: &[&Recorded]) -> Result<Published, EventsError> {
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
        let mut put = Published::default();
        for (index, recorded) in batch.iter().enumerate() {
            match results.get(index) {
                Some(result) if result.error_code().is_none() && result.event_id().is_some() => {
                    put.taken.push(recorded.id)
                }
                Some(result) => {
                    let code = result.error_code().unwrap_or("unknown");
                    if refused_for_itself(code) {
                        let message = result.error_message().unwrap_or_default();
                        put.refused
                            .push((recorded.id, format!("{code}: {message}")));
                    }
                }
                None => {}
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
                "EventBridge refused some events"
            );
        }
        Ok(put)
    }
}

/// What EventBridge did with the rows offered to it.
#[derive(Debug, Default)]
pub struct Published {
    /// The rows whose events it took.
    pub taken: Vec<i64>,
    /// The rows it refused for themselves (malformed, too large), with the reason: kept
    /// aside, never offered again.
    pub refused: Vec<(i64, String)>,
    /// Why some rows were not taken (EventBridge unreachable or slow): they stay.
    pub error: Option<EventsError>,
}

/// An entry error that is the event's own, so offering it again cannot help (a
/// throttle or an internal failure is EventBridge's, and passes).
fn refused_for_itself(code: &str) -> bool {
    matches!(
        code,
        "MalformedDetail"
            | "InvalidArgument"
            | "ValidationException"
            | "InvalidEventPatternException"
    )
}

/// An entry's size as EventBridge counts it against [`MAX_REQUEST_BYTES`]: its source,
/// detail type and detail, in UTF-8 bytes.
pub fn entry_size(detail: &str) -> usize {
    SOURCE.len() + DETAIL_TYPE.len() + detail.len()
}

/// The offered rows in calls of at most [`MAX_ENTRIES`] entries and
/// [`MAX_REQUEST_BYTES`], in their order.
fn batches<'r>(offered: &[(&'r Recorded, usize)]) -> Vec<Vec<&'r Recorded>> {
    let mut calls: Vec<Vec<&Recorded>> = Vec::new();
    let mut size = 0;
    for &(row, bytes) in offered {
        match calls.last_mut() {
            Some(call) if call.len() < MAX_ENTRIES && size + bytes <= MAX_REQUEST_BYTES => {
                call.push(row);
                size += bytes;
            }
            _ => {
                calls.push(vec![row]);
                size = bytes;
            }
        }
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, bytes: usize) -> Recorded {
        Recorded {
            id,
            detail: "x".repeat(bytes),
            token: None,
        }
    }

    #[test]
    fn calls_are_bounded_by_count_and_size() {
        let rows: Vec<Recorded> = (0..25).map(|id| row(id, 100)).collect();
        let offered: Vec<(&Recorded, usize)> = rows
            .iter()
            .map(|row| (row, entry_size(&row.detail)))
            .collect();
        let sizes: Vec<usize> = batches(&offered).iter().map(Vec::len).collect();
        assert_eq!(sizes, [10, 10, 5]);

        let big = MAX_REQUEST_BYTES / 3;
        let rows: Vec<Recorded> = (0..5).map(|id| row(id, big)).collect();
        let offered: Vec<(&Recorded, usize)> = rows
            .iter()
            .map(|row| (row, entry_size(&row.detail)))
            .collect();
        for call in batches(&offered) {
            let total: usize = call.iter().map(|row| entry_size(&row.detail)).sum();
            assert!(total <= MAX_REQUEST_BYTES, "{total}");
        }
        assert_eq!(batches(&offered).len(), 3);
    }
}
