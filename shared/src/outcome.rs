//! What became of an accepted lead: the pipeline's result, which `answer` words for the
//! partner and `http` logs.

use crate::auth::Fingerprint;
use crate::error::{Error, StoreError};
use crate::store::Stored;

/// What the pipeline made of a request, with the key that passed (for the log line;
/// `None` when none did).
#[derive(Debug)]
pub struct Ingested {
    pub key: Option<Fingerprint>,
    pub result: Result<Accepted, Error>,
}

/// An accepted lead: stored (new or a repeat), or queued.
#[derive(Debug)]
pub struct Accepted {
    pub outcome: Outcome,
    /// Kept for the log line, which masks it.
    pub phone_number: String,
}

#[derive(Debug)]
pub enum Outcome {
    Stored(Stored),
    /// The database was unavailable (the error says how); the lead waits in the buffer
    /// queue.
    Queued(StoreError),
}
