//! What every function's `main` shares: JSON logs, the async runtime, a logged exit.

use std::future::Future;
use std::process::ExitCode;

use crate::edge::telemetry;

/// Runs a function's async `main` to its exit code, logging why it stopped.
///
/// The runtime is single-threaded: Lambda gives a container one request at a time, and a
/// current-thread runtime starts faster and uses less memory than a worker pool.
pub fn run<E: std::fmt::Display>(main: impl Future<Output = Result<(), E>>) -> ExitCode {
    telemetry::init();
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
    match runtime.block_on(main) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "stopped");
            ExitCode::FAILURE
        }
    }
}
