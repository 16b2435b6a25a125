//! Structured JSON logs: one line per request (written by `http`), plus start-up and
//! failure details. CloudWatch stores each line as one event.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::Layer as _;

/// The most any dependency may log, whatever `LOG_LEVEL` says: below it, the Lambda
/// runtime prints whole events (the `X-API-Key` header, the lead) and the AWS SDK prints
/// request bodies (a queued lead). `LOG_LEVEL` only makes this crate more verbose.
pub const DEPENDENCY_LEVEL: LevelFilter = LevelFilter::WARN;

/// Whether an event comes from this project's own code.
fn ours(target: &str) -> bool {
    target == "shared" || target.starts_with("shared::")
}

/// The JSON subscriber every function uses, writing to `writer`.
pub fn json_subscriber<W>(level: LevelFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let dependencies = level.min(DEPENDENCY_LEVEL);
    let lines = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_writer(writer)
        // Events only. No line shows a span, yet an enabled span is still recorded:
        // lambda_runtime opens an info span around every invocation, and recording it is
        // work on every request at `info` that no log line ever shows. A filtered-out span
        // costs nothing.
        .with_filter(
            filter_fn(move |metadata| {
                let cap = if ours(metadata.target()) {
                    level
                } else {
                    dependencies
                };
                metadata.is_event() && *metadata.level() <= cap
            })
            .with_max_level_hint(level),
        );
    tracing_subscriber::registry().with(lines)
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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex, PoisonError};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let mut buffer = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            buffer.extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines_at(level: LevelFilter, emit: impl FnOnce()) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = json_subscriber(level, move || writer.clone());
        tracing::subscriber::with_default(subscriber, emit);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text
    }

    #[test]
    fn dependencies_stay_at_warn_at_the_most_verbose_level() {
        let text = lines_at(LevelFilter::TRACE, || {
            tracing::trace!(target: "lambda_runtime::layers::api_response", "event secret-from-runtime");
            tracing::debug!(target: "aws_smithy_runtime::client", "body secret-from-sdk");
            tracing::info!(target: "sqlx::query", "secret-from-sqlx");
            tracing::warn!(target: "hyper", "warning-from-hyper");
            tracing::trace!(target: "shared::infra::store", "trace-from-shared");
        });
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("warning-from-hyper"), "{text}");
        assert!(text.contains("trace-from-shared"), "{text}");
        // The capped target names nothing that merely starts like this crate.
        assert!(!ours("shared_memory") && ours("shared") && ours("shared::edge::http"));
    }

    #[test]
    fn one_json_line_per_event_at_the_level_and_no_spans() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = json_subscriber(LevelFilter::INFO, move || writer.clone());
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("Lambda runtime invoke", requestId = "span-field");
            assert!(span.is_disabled());
            let _entered = span.enter();
            tracing::debug!("below the level");
            tracing::info!(status = 201, "lead stored");
            tracing::error!("stopped");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["message"], "lead stored");
        assert_eq!(lines[0]["status"], 201);
        assert!(lines[0]["timestamp"].is_string());
        assert_eq!(lines[1]["level"], "ERROR");
        assert!(!text.contains("span-field"), "{text}");
    }
}
