//! Applies the embedded migrations to the configured database: once when run by hand,
//! on every invocation as a Lambda function inside the VPC.

use shared::migrate::{self, Migration};
use shared::runtime;

fn main() -> std::process::ExitCode {
    runtime::run(async {
        let migration = Migration::from_env().await?;
        migrate::serve(&migration).await
    })
}
