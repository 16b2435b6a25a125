//! What became of an accepted lead: the pipeline's result, which `answer` words for the
//! partner and `http` logs.

use crate::error::StoreError;
use crate::store::Stored;

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
