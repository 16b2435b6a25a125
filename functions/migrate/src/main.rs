//! Applies the embedded migrations to the configured database: once when run by hand,
//! on every invocation as a Lambda function inside the VPC.

use shared::edge::{invoke, runtime};
use shared::pipeline::migrate::Migration;

fn main() -> std::process::ExitCode {
    runtime::run(async {
        let migration = Migration::from_env().await?;
        invoke::serve(&migration).await
    })
}
