//! The `migrate` tool: applies `migrations/` (embedded at build time) to `DATABASE_URL`.

use std::process::ExitCode;
use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;

use crate::store::{Store, StoreSettings};
use crate::telemetry;

pub fn main() -> ExitCode {
    telemetry::init();
    let Some(url) = std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
    else {
        tracing::error!("set DATABASE_URL to the database to migrate");
        return ExitCode::FAILURE;
    };
    let options = match PgConnectOptions::from_str(&url) {
        Ok(options) => options,
        Err(error) => {
            tracing::error!(error = %error, "DATABASE_URL is invalid");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(error = %error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let settings = StoreSettings {
        // Migrations may rewrite a large table: no statement limit.
        statement_timeout: std::time::Duration::ZERO,
        ..StoreSettings::default()
    };
    // The pool spawns its maintenance task, so it is built inside the runtime.
    let migrated =
        runtime.block_on(async { Store::connect_lazy(options, &settings).migrate().await });
    match migrated {
        Ok(()) => {
            tracing::info!(
                applied = crate::store::MIGRATOR.iter().count(),
                "migrations applied"
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(error = %error, "migration failed");
            ExitCode::FAILURE
        }
    }
}
