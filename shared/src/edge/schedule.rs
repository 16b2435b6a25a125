//! The schedule's edge: an EventBridge Scheduler invocation to one run of a scheduled
//! pull or of the outbox relay, bounded by the invocation's deadline, and one log line of
//! what it did (the metric filters read its counts and, the relay's, the oldest row's age).

use std::time::{Duration, Instant, SystemTime};

use futures_util::future::LocalBoxFuture;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

use crate::domain::lead::record;
use crate::pipeline::pull::{Pull, PullError, Report};
use crate::pipeline::relay::Relay;

/// Kept back from the invocation's deadline for the relay's last delete and commit.
const RESERVE: Duration = Duration::from_secs(2);

/// The invocation's deadline (Unix milliseconds, as Lambda gives it).
fn deadline_of(deadline_ms: u64) -> SystemTime {
    record::from_unix_ms(deadline_ms)
}

/// Pulls once per invocation (the schedule's), one log line each.
pub fn serve(pull: &dyn Pull) -> LocalBoxFuture<'_, Result<(), lambda_runtime::Error>> {
    Box::pin(serve_unboxed(pull))
}

async fn serve_unboxed(pull: &dyn Pull) -> Result<(), lambda_runtime::Error> {
    tracing::info!(source = pull.source().slug, "scheduled pull ready");
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let deadline = deadline_of(event.context.deadline);
        let result = pull.run(&event.context.request_id, deadline).await;
        let log = |outcome: &str, report: &Report| {
            tracing::info!(
                source = pull.source().slug,
                outcome,
                since = report.since,
                lists = report.lists,
                pages = report.pages,
                leads = report.leads,
                stored = report.stored,
                duplicates = report.duplicates,
                queued = report.queued,
                dead_lettered = report.dead_lettered,
                unkept = report.unkept,
                failed_lists = report.failed_lists,
                unfinished_lists = report.unfinished_lists,
                "scheduled pull run"
            )
        };
        match &result {
            Ok(report) => log("synced", report),
            Err(PullError::Incomplete(report)) => {
                log("incomplete", report);
                tracing::error!(
                    source = pull.source().slug,
                    outcome = "failed",
                    error = %PullError::Incomplete(report.clone()),
                    "scheduled pull left leads or lists; the next run tries them again"
                );
            }
            Err(error) => tracing::error!(
                source = pull.source().slug,
                outcome = "failed",
                error = %error,
                "scheduled pull failed; the next run covers it"
            ),
        }
        result.map_err(lambda_runtime::Error::from)
    }))
    .await
}

/// Relays once per invocation (the schedule's), one log line each.
pub fn serve_relay(relay: &Relay) -> LocalBoxFuture<'_, Result<(), lambda_runtime::Error>> {
    Box::pin(relay_unboxed(relay))
}

async fn relay_unboxed(relay: &Relay) -> Result<(), lambda_runtime::Error> {
    tracing::info!("outbox relay ready");
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let left = deadline_of(event.context.deadline)
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
            .saturating_sub(RESERVE);
        let result = relay.run(Instant::now() + left).await;
        match &result {
            Ok(relayed) => {
                let oldest_age_s = relayed.oldest_age.map_or(0.0, |age| age.as_secs_f64());
                if relayed.failed > 0 || relayed.set_aside > 0 || relayed.error.is_some() {
                    tracing::warn!(
                        outcome = "incomplete",
                        published = relayed.published,
                        failed = relayed.failed,
                        set_aside = relayed.set_aside,
                        backlog = relayed.backlog,
                        oldest_age_s,
                        error = relayed.error.as_deref().unwrap_or_default(),
                        "outbox relay run"
                    );
                } else {
                    tracing::info!(
                        outcome = "relayed",
                        published = relayed.published,
                        failed = relayed.failed,
                        set_aside = relayed.set_aside,
                        backlog = relayed.backlog,
                        oldest_age_s,
                        "outbox relay run"
                    );
                }
            }
            Err(error) => tracing::error!(
                outcome = "failed",
                error = %error,
                "outbox relay failed; the next run tries again"
            ),
        }
        result.map(drop).map_err(lambda_runtime::Error::from)
    }))
    .await
}
