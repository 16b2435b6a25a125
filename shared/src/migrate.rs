//! The `migrate` function: applies `migrations/` (embedded at build time) to the
//! configured database. On Lambda (inside the VPC, next to a private database) each
//! invocation applies what is pending and answers with the applied versions; run by
//! hand it does the same once and exits. Configuration is the functions' database part:
//! `DATABASE_URL`, or `DB_SECRET_ARN` with `DB_HOST`/`DB_PORT`/`DB_NAME`.

use std::time::Duration;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};

use crate::config::Config;
use crate::container::Container;
use crate::error::ConfigError;
use crate::store::Store;

/// The store to migrate, with no statement limit (a migration may rewrite a table).
pub async fn store() -> Result<Store, ConfigError> {
    let mut config = Config::from_env()?;
    config.database.settings.statement_timeout = Duration::ZERO;
    Ok(Container::from_config(config).await?.store)
}

/// Applies what is pending: once when run by hand, once per invocation on Lambda.
pub async fn serve(store: &Store) -> Result<(), lambda_runtime::Error> {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        let versions = store.migrate().await?;
        tracing::info!(?versions, "migrations applied");
        return Ok(());
    }
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async move {
        let versions = store.migrate().await.inspect_err(|error| {
            tracing::error!(error = %error, "migration failed");
        })?;
        tracing::info!(?versions, "migrations applied");
        Ok::<_, lambda_runtime::Error>(json!({ "applied": versions }))
    }))
    .await
}
