//! What every function's `main` shares: JSON logs, the async runtime, a logged exit.

use std::future::Future;
use std::process::ExitCode;

use crate::edge::telemetry;

/// Runs a function's async `main` to its exit code, logging why it stopped.
///
/// The runtime is single-threaded: Lambda gives a container one request at a time, and a
/// current-thread runtime starts faster and uses less memory than a worker pool.
pub fn run<E: std::fmt::Display>(main: impl Future<Output = Result<(), E>>) -> ExitCode {
    drop_sequential_concurrency_request();
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

/// Asks a Lambda runtime to serve that many requests at once.
const MAX_CONCURRENCY: &str = "AWS_LAMBDA_MAX_CONCURRENCY";

/// The functions serve one request at a time (lambda_runtime without its concurrent mode).
/// `cargo lambda watch` sets `AWS_LAMBDA_MAX_CONCURRENCY` to 1 for every function it
/// starts, and lambda_runtime warns at each start that the variable is set but ignored:
/// a request for what the functions do anyway, so it is dropped. Any other value is left,
/// and its warning with it: it asks for something these functions do not do. Called
/// first in `main`, while the process has a single thread.
fn drop_sequential_concurrency_request() {
    let sequential = std::env::var(MAX_CONCURRENCY)
        .ok()
        .and_then(|value| value.trim().parse::<u32>().ok())
        .is_some_and(|requests| requests <= 1);
    if sequential {
        std::env::remove_var(MAX_CONCURRENCY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The only test that touches this variable.
    #[test]
    fn a_request_for_one_at_a_time_is_dropped_and_any_other_kept() {
        for (value, kept) in [
            ("1", false),
            (" 1", false),
            ("0", false),
            ("4", true),
            ("x", true),
        ] {
            std::env::set_var(MAX_CONCURRENCY, value);
            drop_sequential_concurrency_request();
            assert_eq!(
                std::env::var(MAX_CONCURRENCY).ok().as_deref(),
                kept.then_some(value)
            );
        }
        std::env::remove_var(MAX_CONCURRENCY);
        drop_sequential_concurrency_request();
        assert_eq!(std::env::var(MAX_CONCURRENCY).ok(), None);
    }
}
