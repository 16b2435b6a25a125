//! The schedule's edge: an EventBridge Scheduler invocation to one run of a scheduled
//! pull, bounded by the invocation's deadline, and one log line of what it did.

use std::time::SystemTime;

use futures_util::future::LocalBoxFuture;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

use crate::domain::record;
use crate::pipeline::pull::{Pull, PullError, Report};

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
