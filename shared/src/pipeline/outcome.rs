//! What became of a request that passed its checks: each lead stored, found to repeat a
//! stored one, or queued to be stored (or read) later.

use serde::Serialize;

use crate::domain::auth::Fingerprint;
use crate::error::{Error, StoreError};
use crate::infra::store::Stored;

/// The pipeline's result for one request, with the fingerprint of the key or secret that
/// passed (for the log).
#[derive(Debug)]
pub struct Ingested {
    pub key: Option<Fingerprint>,
    pub result: Result<Accepted, Error>,
}

/// An accepted request: one lead (with its phone, for the log line to mask), or a
/// notification of several.
#[derive(Debug)]
pub enum Accepted {
    Lead {
        outcome: Outcome,
        phone_number: String,
    },
    Batch(Summary),
}

#[derive(Debug)]
pub enum Outcome {
    Stored(Stored),
    /// On the buffer queue, for the drain.
    Queued(Postponed),
}

/// Why a lead was queued rather than stored now.
#[derive(Debug, thiserror::Error)]
pub enum Postponed {
    /// On the buffer queue: the database is unavailable, or refuses this function until
    /// an operator mends its grants or migrations; the drain stores it then.
    #[error(transparent)]
    Store(StoreError),
    /// On the dead-letter queue: the database refuses the row itself, which no retry
    /// mends. Kept there, and alarmed on, until an operator replays it.
    #[error("kept on the dead-letter queue: {0}")]
    Refused(StoreError),
    /// The lead could not be read from its platform yet (see `meta`).
    #[error("lead not read yet: {0}")]
    Unfetched(String),
}

/// What became of a notification's leads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub stored: usize,
    pub duplicates: usize,
    pub queued: usize,
}

impl Summary {
    pub fn count(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Stored(Stored::Created(_)) => self.stored += 1,
            Outcome::Stored(Stored::Duplicate(_)) => self.duplicates += 1,
            Outcome::Queued(_) => self.queued += 1,
        }
    }
}
