//! The `migrate` function: applies `migrations/` (embedded at build time) to the
//! configured database, then lets the functions' own role log in with the password of
//! its secret. On Lambda (inside the VPC, next to a private database) each invocation
//! does both and answers with the applied versions; run by hand it does the same once
//! and exits. Configuration is the functions' database part — `DATABASE_URL`, or
//! `DB_SECRET_ARN` (the master user) with `DB_HOST`/`DB_PORT`/`DB_NAME` — and
//! `DB_WRITER_SECRET_ARN` for the functions' role, `DB_READER_SECRET_ARN` for the feed's.

use std::time::Duration;

use crate::error::ConfigError;
use crate::infra::config::Config;
use crate::infra::container::Container;
use crate::infra::secrets::{DbCredentials, Refreshing};
use crate::infra::store::Store;

/// What `migrate` works with: the database as the master user, and the functions' role.
#[derive(Debug)]
pub struct Migration {
    store: Store,
    writer: Option<Refreshing<DbCredentials>>,
    /// The feed's role (`lead_reader`), from `DB_READER_SECRET_ARN`.
    reader: Option<Refreshing<DbCredentials>>,
}

impl Migration {
    /// The migration the environment configures, with no statement limit (a migration
    /// may rewrite a table).
    pub async fn from_env() -> Result<Self, ConfigError> {
        let mut config = Config::from_env()?;
        config.database.settings.statement_timeout = Duration::ZERO;
        let container = Container::from_config(config).await?;
        Ok(Self {
            store: container.store,
            writer: container.writer,
            reader: container.reader,
        })
    }

    /// Applies what is pending, then sets the functions' role's password; returns every
    /// version now applied.
    pub async fn run(&self) -> Result<Vec<i64>, lambda_runtime::Error> {
        let versions = self.store.migrate().await?;
        if let Some(writer) = &self.writer {
            let credentials = writer.get().await?;
            self.store.grant_login(&credentials).await?;
            tracing::info!(
                role = credentials.username,
                "the functions' role may log in"
            );
        }
        if let Some(reader) = &self.reader {
            let credentials = reader.get().await?;
            self.store.grant_login(&credentials).await?;
            tracing::info!(role = credentials.username, "the feed's role may log in");
        }
        Ok(versions)
    }
}
