//! A lead ready to store: its columns, its archived payload, its identity, and
//! where and when it arrived. The same record is inserted at once, or queued while the
//! database is unavailable and inserted later by the drain (see `buffer`, `drain`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::domain::lead::dedup::Identity;
use crate::domain::lead::Lead;
use crate::domain::source::Source;

#[derive(Debug, Clone, PartialEq)]
pub struct LeadRecord {
    pub source: &'static Source,
    pub lead: Lead,
    /// The JSON text stored as `payload`.
    pub payload: String,
    pub identity: Identity,
    /// The Lambda request id of the request that brought the lead.
    pub request_id: String,
    /// When the request arrived: stored as `created_at`, so a lead drained from the queue
    /// keeps its place in the CRM's timeline, and the retry window is measured from it.
    pub received_at: SystemTime,
}

impl LeadRecord {
    /// `received_at` as Unix milliseconds (the queue's and the log's unit).
    pub fn received_at_ms(&self) -> u64 {
        unix_ms(self.received_at)
    }
}

/// Milliseconds since the Unix epoch (zero before it).
pub fn unix_ms(time: SystemTime) -> u64 {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

/// Unix milliseconds back to a time.
pub fn from_unix_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// The id of a stored row: a number for the table this project creates, text for a
/// legacy table whose `id` is of another type.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum RowId {
    Number(i64),
    Text(String),
}

impl RowId {
    pub fn from_text(text: String) -> Self {
        text.parse().map_or(Self::Text(text), Self::Number)
    }
}

impl std::fmt::Display for RowId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(number) => number.fmt(f),
            Self::Text(text) => text.fmt(f),
        }
    }
}
