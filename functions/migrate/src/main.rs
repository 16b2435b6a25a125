//! Applies the embedded migrations to the configured database: once when run by hand,
//! on every invocation as a Lambda function inside the VPC.

use shared::{migrate, runtime};

fn main() -> std::process::ExitCode {
    runtime::run(async {
        let store = migrate::store().await?;
        migrate::serve(&store).await
    })
}
