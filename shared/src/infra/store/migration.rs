//! The database's shape and who may log in: the embedded migrations, and the functions'
//! roles given their passwords.

use std::time::Duration;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::Executor;

use super::{classify, Store};
use crate::error::StoreError;
use crate::infra::secrets::DbCredentials;

/// The migrations in `migrations/`, embedded so a binary can apply them anywhere.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// How long a migration waits for a lock on the CRM's live table.
const MIGRATION_LOCK_TIMEOUT: &str = "SET lock_timeout = '5s'";

/// The lead table's indexes that an interrupted `CREATE INDEX CONCURRENTLY` left invalid.
const INVALID_INDEXES: &str = r#"
SELECT indexrelid::regclass::text
FROM pg_index
WHERE indrelid = to_regclass('public."mg-digital-leads"') AND NOT indisvalid"#;

/// How often a role change the server refused as concurrently updated is tried again.
const GRANT_ATTEMPTS: u64 = 10;

/// The server's refusal of a catalog row another session was changing at the same time
/// (internal error XX000).
fn concurrently_updated(error: &sqlx::Error) -> bool {
    error.as_database_error().is_some_and(|error| {
        error.code().as_deref() == Some("XX000") && error.message().contains("concurrently updated")
    })
}

impl Store {
    /// Lets the role `credentials` names log in with its password (`migrate` does this for
    /// the functions' own role, from that role's secret, after every run).
    pub async fn grant_login(
        &self,
        credentials: &DbCredentials,
    ) -> Result<(), crate::error::GrantError> {
        // The password's verifier, never the password: statements may be written to the
        // server's log and shown in its statistics views.
        let verifier = crate::infra::store::scram::verifier(&credentials.password)?;
        let mut slot = self.slot.lock().await;
        let connection = self.connection(&mut slot.open).await?;
        // ALTER ROLE takes no parameters: the server quotes the name and verifier itself.
        let statement: String =
            sqlx::query_scalar("SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', $1, $2)")
                .bind(&credentials.username)
                .bind(&verifier)
                .fetch_one(&mut *connection)
                .await
                .map_err(classify)?;
        // Roles belong to the whole server: another session changing the same role at the
        // same moment (a second migrate) makes the server refuse one of the two with
        // "tuple concurrently updated"; that one is simply tried again.
        let mut attempt = 0;
        loop {
            match connection.execute(statement.as_str()).await {
                Ok(_) => return Ok(()),
                Err(error) if attempt < GRANT_ATTEMPTS && concurrently_updated(&error) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
                }
                Err(error) => return Err(classify(error).into()),
            }
        }
    }

    /// Applies the embedded migrations; returns every version now applied.
    pub async fn migrate(&self) -> Result<Vec<i64>, MigrateError> {
        let source = |error: StoreError| MigrateError::Source(Box::new(error));
        let mut slot = self.slot.lock().await;
        let connection = self.connection(&mut slot.open).await.map_err(source)?;
        // The CRM writes to the table meanwhile: a lock not had within this fails the
        // migration (run it again) rather than queueing the CRM's writes behind it.
        connection.execute(MIGRATION_LOCK_TIMEOUT).await?;
        // An index build that was interrupted leaves an invalid index, which
        // `CREATE INDEX CONCURRENTLY IF NOT EXISTS` would keep: drop it to build anew.
        let invalid: Vec<String> = sqlx::query_scalar(INVALID_INDEXES)
            .fetch_all(&mut *connection)
            .await?;
        for index in invalid {
            tracing::warn!(
                index,
                "dropping an invalid index left by an interrupted build"
            );
            let statement: String = sqlx::query_scalar(
                "SELECT format('DROP INDEX CONCURRENTLY IF EXISTS %s', $1::regclass)",
            )
            .bind(&index)
            .fetch_one(&mut *connection)
            .await?;
            connection.execute(statement.as_str()).await?;
        }
        MIGRATOR.run(&mut *connection).await?;
        Ok(MIGRATOR.iter().map(|migration| migration.version).collect())
    }
}
