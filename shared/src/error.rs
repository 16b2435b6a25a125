//! Every way a request can fail, as types, in two kinds:
//!
//! - a [`Refusal`] is the partner's request breaking the contract (a 4xx: the partner
//!   must change something, so it does not retry);
//! - a [`Failure`] is this side's (a 500: the partner retries), and never shows its cause.
//!
//! This module is a leaf: it imports nothing of the crate, so every module can use it.
//! The status codes and texts partners read are given in one place, `answer`; which
//! database errors mean "unavailable" is decided beside the SQL, in `store`.

use std::time::Duration;

/// Any reason a lead was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Failed(#[from] Failure),
}

/// The partner's request breaks the contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no X-API-Key header, or a blank one")]
    MissingApiKey,
    #[error("X-API-Key is not an active key of this source")]
    InvalidApiKey,
    #[error("no X-Hub-Signature-256 header, or a blank one")]
    MissingSignature,
    #[error("X-Hub-Signature-256 is not the body's signature with an active app secret")]
    InvalidSignature,
    #[error("body is larger than {limit} bytes ({size})")]
    PayloadTooLarge { size: usize, limit: usize },
    #[error("body is not a JSON object: {0}")]
    InvalidJson(String),
    #[error("missing required fields: {}", .0.join(", "))]
    MissingFields(Vec<&'static str>),
}

/// Something on this side failed; the lead was neither stored nor queued.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("no keys or app secrets are configured for this source")]
    NoApiKeys,
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{store}; and the buffer queue failed too: {buffer}")]
    Unqueued {
        store: StoreError,
        buffer: BufferError,
    },
    /// Some of a notification's leads ended neither stored nor kept on a queue: the
    /// notification is answered 500, and the platform sends it again (the others are
    /// then found stored).
    #[error("{leads} of the notification's {of} leads neither stored nor kept")]
    Unkept { leads: usize, of: usize },
}

/// Why the lead table could not take a lead.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Down, unreachable, refusing the credentials or otherwise unwell: worth queueing,
    /// the same lead will store once it is back.
    #[error("database unavailable: {0}")]
    Unavailable(sqlx::Error),
    #[error("database did not answer within {0:?}")]
    Timeout(Duration),
    /// The request's own budget left too little to wait for an answer: not a sign of an
    /// outage, but the lead is still worth queueing.
    #[error("database did not answer within the {0:?} the request had left")]
    OutOfTime(Duration),
    #[error("database credentials unavailable: {0}")]
    Credentials(SecretError),
    /// Resting after an outage (see `store`): not tried.
    #[error("database resting after a failure; not tried")]
    Resting,
    #[error("a duplicate kept conflicting with a changing row")]
    Unsettled,
    /// The database refused the lead itself: queueing it would only fail again.
    #[error("database refused the lead: {0}")]
    Rejected(sqlx::Error),
    /// The database refused this function (its grants, its role, a missing table): a
    /// configuration fault for an operator, not an outage that passes.
    #[error("database refuses this function (check its role and grants): {0}")]
    Denied(sqlx::Error),
}

impl StoreError {
    /// Whether a lead that failed with this should be queued and stored later.
    pub fn is_unavailable(&self) -> bool {
        !matches!(self, Self::Rejected(_) | Self::Denied(_))
    }

    /// Whether this shows the database down or unreachable, so that the next leads had
    /// better not wait for it.
    pub fn is_outage(&self) -> bool {
        matches!(
            self,
            Self::Unavailable(_) | Self::Timeout(_) | Self::Credentials(_)
        )
    }
}

/// Why `migrate` could not let a role log in with its password.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error(transparent)]
    Verifier(#[from] SaltError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The secret would let a function log in as the master user.
    #[error("{secret} names the master user {named}; it must name {expected}, the role its function logs in as")]
    MasterUser {
        secret: &'static str,
        named: String,
        expected: &'static str,
    },
    /// The secret names another role than its function's (another function's, or one no
    /// migration creates).
    #[error("{secret} names the role {named}; it must name {expected}, the role its function logs in as")]
    OtherRole {
        secret: &'static str,
        named: String,
        expected: &'static str,
    },
}

/// The system's random source gave no salt for a password's verifier.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw a random salt for the password's verifier: {0}")]
pub struct SaltError(pub getrandom::Error);

/// Why a secret could not be used. Never carries the secret's value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read secret {arn}: {reason}")]
    Fetch { arn: String, reason: String },
    #[error("secret {arn} is not usable: {reason}")]
    Parse { arn: String, reason: &'static str },
}

/// Why the buffer queue did not take, or give back, a lead.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    #[error("cannot send the lead to the buffer queue: {0}")]
    Send(String),
    #[error("not a queued lead: {0}")]
    Message(String),
    #[error("no buffer queue is configured (BUFFER_QUEUE_URL)")]
    Missing,
    #[error("no dead-letter queue is configured (DEAD_LETTER_QUEUE_URL)")]
    NoDeadLetter,
}

/// A configuration that cannot work, named precisely so the cold-start log says what to fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("set {0}")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        Self::Failed(Failure::Store(error))
    }
}

impl From<SecretError> for Error {
    fn from(error: SecretError) -> Self {
        Self::Failed(Failure::Secret(error))
    }
}

/// Why an SNS topic did not take a message.
#[derive(Debug, thiserror::Error)]
#[error("cannot publish to SNS: {0}")]
pub struct TopicError(pub String);

/// Why the sales desk was not told of a lead (the invocation fails, to be delivered
/// again).
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    /// Not a `Lead stored` event this code can read: retrying cannot help.
    #[error("not a Lead stored event: {0}")]
    Event(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Topic(#[from] TopicError),
    /// Another invocation is telling the desk of this lead right now.
    #[error("lead {0} is being told by another invocation; delivered again later")]
    InFlight(String),
}

/// Why a lead was not handed off to the CRM.
#[derive(Debug, thiserror::Error)]
pub enum CrmError {
    /// Not a `Lead stored` event this code can read.
    #[error("not a Lead stored event: {0}")]
    Event(String),
    /// The event names a row the lead table does not hold (yet): delivered again.
    #[error("lead {0} is not in the lead table")]
    Missing(String),
    /// The lead's data is not what the CRM can take.
    #[error("the CRM cannot take the lead: {0}")]
    Refused(String),
    /// Our database or the CRM's (down, a lock that timed out, a refusal).
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Text(#[from] TopicError),
    /// Another invocation is texting this lead's salesperson right now.
    #[error("lead {0} is being texted by another invocation; delivered again later")]
    InFlight(String),
}

impl CrmError {
    /// Whether delivering the event again cannot help: kept at once, with the reason.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Event(_) | Self::Refused(_) | Self::Store(StoreError::Rejected(_))
        )
    }
}

/// Why EventBridge did not take a lead's events (they stay in the outbox for the relay).
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("cannot publish to EventBridge: {0}")]
    Put(String),
    #[error("EventBridge did not answer within {0:?}")]
    Timeout(Duration),
}

/// Why the leads feed did not answer with a page.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// No reader key, or not one (a partner's key included).
    #[error(transparent)]
    Refused(Refusal),
    /// A parameter the feed cannot use, named as the request names it.
    #[error("{parameter} {reason}")]
    Parameter { parameter: String, reason: String },
    #[error(transparent)]
    Failed(Failure),
}

impl From<Error> for FeedError {
    fn from(error: Error) -> Self {
        match error {
            Error::Refused(refusal) => Self::Refused(refusal),
            Error::Failed(failure) => Self::Failed(failure),
        }
    }
}

impl From<StoreError> for FeedError {
    fn from(error: StoreError) -> Self {
        Self::Failed(Failure::Store(error))
    }
}

impl From<SecretError> for FeedError {
    fn from(error: SecretError) -> Self {
        Self::Failed(Failure::Secret(error))
    }
}
