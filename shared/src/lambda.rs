//! The `main` of every source function.

use std::process::ExitCode;

use lambda_http::{service_fn, Request};

use crate::app::App;
use crate::config::Config;
use crate::http;
use crate::source::Source;
use crate::telemetry;

/// Builds the container's state once, then serves invocations until Lambda stops it.
///
/// The runtime is single-threaded: Lambda gives a container one request at a time, and a
/// current-thread runtime starts faster and uses less memory than a worker pool.
pub fn main(source: &'static Source) -> ExitCode {
    telemetry::init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(source = source.slug, error = %error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(source)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(source = source.slug, error = %error, "function stopped");
            ExitCode::FAILURE
        }
    }
}

async fn serve(source: &'static Source) -> Result<(), lambda_http::Error> {
    let config = Config::from_env()?;
    // The state lives as long as the container; leaking it gives every invocation a
    // plain `&App` without reference counting.
    let app: &'static App = Box::leak(Box::new(App::from_config(source, config).await?));
    tracing::info!(source = source.slug, "function ready");
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, lambda_http::Error>(http::handle(app, request).await)
    }))
    .await
}
