//! The edge of a function run by hand or invoked directly (`migrate`): one run, and an
//! answer of what it did.

use futures_util::future::LocalBoxFuture;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};

use crate::pipeline::migrate::Migration;

/// Migrates once when run by hand, once per invocation on Lambda.
pub fn serve(migration: &Migration) -> LocalBoxFuture<'_, Result<(), lambda_runtime::Error>> {
    Box::pin(serve_unboxed(migration))
}

async fn serve_unboxed(migration: &Migration) -> Result<(), lambda_runtime::Error> {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        let versions = migration.run().await?;
        tracing::info!(?versions, "migrations applied");
        return Ok(());
    }
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async move {
        let versions = migration.run().await.inspect_err(|error| {
            tracing::error!(error = %error, "migration failed");
        })?;
        tracing::info!(?versions, "migrations applied");
        Ok::<_, lambda_runtime::Error>(json!({ "applied": versions }))
    }))
    .await
}
