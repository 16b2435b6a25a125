//! Every way a request can fail, and the one place that turns each into the contract's
//! status code and exact message.

use std::time::Duration;

/// Why a lead was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("no X-API-Key header, or a blank one")]
    MissingApiKey,
    #[error("X-API-Key is not an active key of this source")]
    InvalidApiKey,
    #[error("body is larger than {limit} bytes ({size})")]
    PayloadTooLarge { size: usize, limit: usize },
    #[error("body is not a JSON object: {0}")]
    InvalidJson(String),
    #[error("missing required fields: {}", .0.join(", "))]
    MissingFields(Vec<&'static str>),
    #[error("no API keys are configured for this source")]
    NoKeysConfigured,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database did not answer within {0:?}")]
    DatabaseTimeout(Duration),
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
    #[error("a duplicate kept conflicting with a changing row")]
    DedupUnsettled,
    #[error("{store}; and the buffer queue failed too: {queue}")]
    Unqueued {
        store: Box<IngestError>,
        queue: crate::buffer::BufferError,
    },
}

impl IngestError {
    /// The HTTP status the contract gives this failure.
    pub fn status(&self) -> u16 {
        match self {
            Self::MissingApiKey => 401,
            Self::InvalidApiKey => 403,
            Self::PayloadTooLarge { .. } => 413,
            Self::InvalidJson(_) | Self::MissingFields(_) => 400,
            Self::NoKeysConfigured
            | Self::Database(_)
            | Self::DatabaseTimeout(_)
            | Self::Secret(_)
            | Self::DedupUnsettled
            | Self::Unqueued { .. } => 500,
        }
    }

    /// The `error` text partners see. Server-side failures say nothing of their cause;
    /// the cause goes to the log.
    pub fn public_message(&self) -> String {
        match self {
            Self::MissingApiKey => "Missing API key".into(),
            Self::InvalidApiKey => "Invalid API key".into(),
            Self::PayloadTooLarge { .. } => "Payload too large".into(),
            Self::InvalidJson(_) => "Invalid JSON payload".into(),
            Self::MissingFields(fields) => {
                format!("Missing required fields: {}", fields.join(", "))
            }
            Self::NoKeysConfigured
            | Self::Database(_)
            | Self::DatabaseTimeout(_)
            | Self::Secret(_)
            | Self::DedupUnsettled
            | Self::Unqueued { .. } => "Internal server error".into(),
        }
    }

    /// A short stable label for the log line's `outcome`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::MissingApiKey => "missing_api_key",
            Self::InvalidApiKey => "invalid_api_key",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::InvalidJson(_) => "invalid_json",
            Self::MissingFields(_) => "missing_fields",
            Self::NoKeysConfigured => "no_keys_configured",
            Self::Database(_) => "database_error",
            Self::DatabaseTimeout(_) => "database_timeout",
            Self::Secret(_) => "secret_unavailable",
            Self::DedupUnsettled => "dedup_unsettled",
            Self::Unqueued { .. } => "queue_unavailable",
        }
    }

    /// Whether a lead that failed to store with this error should be queued for later:
    /// the database was unreachable, timed out, refused the credentials, or is otherwise
    /// unwell. A lead the database refused *as data* (SQLSTATE classes 22 and 23) is not:
    /// it would fail again from the queue, so the partner hears of it instead.
    pub fn store_unavailable(&self) -> bool {
        match self {
            Self::DatabaseTimeout(_) | Self::Secret(_) | Self::DedupUnsettled => true,
            Self::Database(sqlx::Error::Database(error)) => !matches!(
                error.code().as_deref().map(|code| code.get(..2)),
                Some(Some("22" | "23"))
            ),
            Self::Database(_) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_messages_follow_the_contract() {
        let cases = [
            (IngestError::MissingApiKey, 401, "Missing API key"),
            (IngestError::InvalidApiKey, 403, "Invalid API key"),
            (
                IngestError::PayloadTooLarge {
                    size: 70000,
                    limit: 65536,
                },
                413,
                "Payload too large",
            ),
            (
                IngestError::InvalidJson("x".into()),
                400,
                "Invalid JSON payload",
            ),
            (
                IngestError::MissingFields(vec!["name", "phone_number"]),
                400,
                "Missing required fields: name, phone_number",
            ),
            (IngestError::NoKeysConfigured, 500, "Internal server error"),
            (
                IngestError::Database(sqlx::Error::PoolTimedOut),
                500,
                "Internal server error",
            ),
            (
                IngestError::DatabaseTimeout(Duration::from_secs(5)),
                500,
                "Internal server error",
            ),
            (
                IngestError::Secret(crate::secrets::SecretError::Parse {
                    arn: "arn".into(),
                    reason: "holds no key",
                }),
                500,
                "Internal server error",
            ),
        ];
        for (error, status, message) in cases {
            assert_eq!(error.status(), status, "{error}");
            assert_eq!(error.public_message(), message, "{error}");
        }
    }

    #[test]
    fn only_server_side_store_failures_are_queued() {
        assert!(IngestError::DatabaseTimeout(Duration::from_secs(5)).store_unavailable());
        assert!(IngestError::Database(sqlx::Error::PoolTimedOut).store_unavailable());
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(IngestError::Database(sqlx::Error::Io(io)).store_unavailable());
        assert!(!IngestError::MissingFields(vec!["name"]).store_unavailable());
        assert!(!IngestError::InvalidJson("x".into()).store_unavailable());
        assert!(!IngestError::InvalidApiKey.store_unavailable());
    }
}
