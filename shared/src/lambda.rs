//! The `main` of every source function.

use std::future::Future;
use std::process::ExitCode;

use lambda_http::{service_fn, Request};

use crate::app::App;
use crate::config::Config;
use crate::http;
use crate::source::Source;
use crate::telemetry;

/// Builds the container's state once, then serves invocations until Lambda stops it.
pub fn main(source: &'static Source) -> ExitCode {
    telemetry::init();
    block_on(serve(source))
}

/// Runs a binary's async `main` to its exit code, logging why it failed.
///
/// The runtime is single-threaded: Lambda gives a container one request at a time, and a
/// current-thread runtime starts faster and uses less memory than a worker pool.
pub fn block_on<E: std::fmt::Display>(work: impl Future<Output = Result<(), E>>) -> ExitCode {
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
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "stopped");
            ExitCode::FAILURE
        }
    }
}

async fn serve(source: &'static Source) -> Result<(), lambda_http::Error> {
    let config =
        Config::from_env().map_err(|error| format!("{} cannot start: {error}", source.slug))?;
    // The state lives as long as the container; leaking it gives every invocation a
    // plain `&App` without reference counting.
    let app: &'static App = Box::leak(Box::new(App::from_config(source, config).await?));
    // The database is connected lazily, by the first request, not here. `make bench`
    // measured both (README, Performance): connecting here made the start ~4.5 ms later
    // (spawn → first `/next` 2.5 → 7.1 ms, medians) and the first response no sooner
    // (10.8 vs 10.2 ms, within the noise), because a cold start's request is already
    // waiting when the start ends. Lazy also keeps a database that is down out of the
    // start (that request gets the contract's answer, the container lives) and opens no
    // connection for an environment Lambda initialises but never invokes.
    tracing::info!(source = source.slug, "function ready");
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, lambda_http::Error>(http::handle(app, request).await)
    }))
    .await
}
