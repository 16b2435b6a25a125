//! Structured JSON logs: one line per request (written by `http`), plus start-up and
//! failure details. CloudWatch stores each line as one event.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The JSON subscriber every function uses, writing to `writer`.
pub fn json_subscriber<W>(level: LevelFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_max_level(level)
        .with_writer(writer)
        .finish()
}

/// Installs the JSON subscriber on stdout. The level comes from `LOG_LEVEL` (Lambda's own
/// `AWS_LAMBDA_LOG_LEVEL` when set), `info` by default.
pub fn init() {
    let level = ["AWS_LAMBDA_LOG_LEVEL", "LOG_LEVEL"]
        .iter()
        .find_map(|name| std::env::var(name).ok()?.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    // A second init (tests, tools) keeps the first subscriber; nothing to report.
    let _ = tracing::subscriber::set_global_default(json_subscriber(level, std::io::stdout));
}
