//! What a database error means: refused data, a misconfiguration, an outage, a lost
//! connection.

use crate::error::StoreError;

/// What a database error means for the lead:
///
/// - SQLSTATE classes 22 (data exception) and 23 (integrity violation): the database
///   refused the lead itself, which would fail again from the queue;
/// - class 42 (insufficient privilege, an undefined table or column) and 28000 (a role
///   that may not log in): this function is misconfigured, which no retry mends;
/// - anything else (connection failures, timeouts, a server shutting down, a rotated
///   password): the database is unavailable, and the lead is worth queueing.
pub fn classify(error: sqlx::Error) -> StoreError {
    let code = match &error {
        sqlx::Error::Database(database) => database.code().map(|code| code.into_owned()),
        _ => None,
    };
    match code.as_deref() {
        Some(code) if code.starts_with("22") || code.starts_with("23") => {
            StoreError::Rejected(error)
        }
        Some(code) if code.starts_with("42") || code == "28000" => StoreError::Denied(error),
        _ => StoreError::Unavailable(error),
    }
}

/// PostgreSQL's `invalid_password`.
pub(super) fn is_bad_password(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("28P01"))
}

/// The connection itself failed, or the server ended it (rather than refusing a
/// statement): SQLSTATE class 08 (connection exception), and 57P01 to 57P03, which a
/// server shutting down, restarting or terminating the backend sends on the way out.
pub(super) fn is_connection_lost(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(_) => sqlstate(error).is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_str(), "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

/// The SQLSTATE of a database error.
pub(super) fn sqlstate(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(database) => database.code().map(|code| code.into_owned()),
        _ => None,
    }
}
