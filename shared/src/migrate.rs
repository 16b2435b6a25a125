//! The `migrate` function: applies `migrations/` (embedded at build time) to the
//! configured database. On Lambda (inside the VPC, next to a private database) each
//! invocation applies what is pending and answers with the applied versions; run by
//! hand it does the same once and exits. Configuration is the functions' database part:
//! `DATABASE_URL`, or `DB_SECRET_ARN` with `DB_HOST`/`DB_PORT`/`DB_NAME`.

use std::process::ExitCode;
use std::time::Duration;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};

use crate::config::{ConfigError, DatabaseConfig, DatabaseSource};
use crate::database::Database;
use crate::secrets::SecretsClient;
use crate::store::{StoreSettings, MIGRATOR};
use crate::telemetry;

/// Why migrating failed; printed to the log, never a credential.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Connect(#[from] crate::IngestError),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("Lambda runtime: {0}")]
    Runtime(String),
}

/// The database to migrate, with no statement limit (a migration may rewrite a table).
pub async fn database(config: DatabaseConfig) -> Result<Database, MigrateError> {
    let client = match config.source {
        DatabaseSource::Secret { .. } => Some(SecretsClient::from_env().await),
        DatabaseSource::Url(_) => None,
    };
    let settings = StoreSettings {
        statement_timeout: Duration::ZERO,
        ..config.store
    };
    Ok(Database::new(
        config.source,
        settings,
        config.secrets_ttl,
        client,
    )?)
}

/// Applies pending migrations; returns every version now applied.
pub async fn run(database: &Database) -> Result<Vec<i64>, MigrateError> {
    let store = database.store().await?;
    MIGRATOR.run(store.pool()).await?;
    Ok(MIGRATOR.iter().map(|migration| migration.version).collect())
}

pub fn main() -> ExitCode {
    telemetry::init();
    crate::lambda::block_on(async {
        let database = database(DatabaseConfig::from_env()?).await?;
        if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
            let versions = run(&database).await?;
            tracing::info!(?versions, "migrations applied");
            return Ok(());
        }
        let database = &database;
        lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| async move {
            let versions = run(database).await.inspect_err(|error| {
                tracing::error!(error = %error, "migration failed");
            })?;
            tracing::info!(?versions, "migrations applied");
            Ok::<_, lambda_runtime::Error>(json!({ "applied": versions }))
        }))
        .await
        .map_err(|error| MigrateError::Runtime(error.to_string()))
    })
}
