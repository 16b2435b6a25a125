//! The scheduled pulls: each run lists a platform's leads since its last whole listing
//! (less an overlap), page by page from a checkpoint, and keeps each lead on its own —
//! stored, queued, or dead-lettered — so that leads no webhook brought still land once.
//! Every pull has the same shape to its edge ([`Pull`]): one run per scheduled
//! invocation, until the invocation's deadline, and a [`Report`] of what it did.

pub mod knowlarity;
pub mod meta;

use futures_util::future::BoxFuture;
use std::time::SystemTime;

use serde::Serialize;

use crate::domain::source::Source;
use crate::error::{SecretError, StoreError};
use crate::infra::graph::GraphError;
use crate::infra::knowlarity::KnowlarityError;

pub use knowlarity::KnowlarityPull;
pub use meta::MetaPull;

/// What a scheduled pull is to the schedule's edge.
pub trait Pull: Sync {
    /// The source whose leads it pulls.
    fn source(&self) -> &'static Source;

    /// One run, until `deadline`; fails with [`PullError::Incomplete`] only after
    /// everything else it could do.
    /// Boxed, so a pull can be served as `dyn Pull` and its deep future is built here.
    fn run<'a>(
        &'a self,
        request_id: &'a str,
        deadline: SystemTime,
    ) -> BoxFuture<'a, Result<Report, PullError>>;
}

/// Why a run did not cover everything it was due to.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Knowlarity(#[from] KnowlarityError),
    /// The run did all it could, but left leads neither stored nor kept, or lists it
    /// could not read: their progress stays, and the next run tries them again.
    #[error(
        "{} leads neither stored nor kept, {} lists not listed",
        .0.unkept,
        .0.failed_lists
    )]
    Incomplete(Report),
}

/// What one run found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The earliest Unix time a listing looked back to.
    pub since: i64,
    /// The platform's lists of leads it went through (Meta: the page's lead forms).
    pub lists: usize,
    /// Pages of leads listed.
    pub pages: usize,
    pub leads: usize,
    pub stored: usize,
    pub duplicates: usize,
    /// Queued on the buffer while the database was unavailable (the drain stores them).
    pub queued: usize,
    /// Sent to the dead-letter queue with their reason: the database refuses them as
    /// they are, or they cannot become a row (no phone).
    pub dead_lettered: usize,
    /// Neither stored nor kept: their list's progress stays before them.
    pub unkept: usize,
    /// Lists the platform would not give, or whose progress could not be recorded.
    pub failed_lists: usize,
    /// Lists whose listing is left for a later run, short of time.
    pub unfinished_lists: usize,
}
