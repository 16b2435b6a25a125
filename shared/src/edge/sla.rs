//! Speed to lead's edge. On Lambda: each invocation (the schedule's, every minute) is one
//! run, one log line of what it did; a run that failed is an error of the function (its
//! alarm), the next run covering it. Run by hand: `crm-sla run` once, its report printed;
//! `crm-sla follow` a run every few seconds, those that did something logged (`make dev`).

use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

use crate::error::CrmError;
use crate::pipeline::crm::sla::{Report, Sla};

/// How often `crm-sla follow` runs.
const FOLLOW_EVERY: Duration = Duration::from_secs(10);

/// Serves speed to lead on Lambda, or runs what `args` ask for by hand.
pub fn serve<'a>(
    sla: &'a Sla,
    args: &'a [String],
) -> LocalBoxFuture<'a, Result<(), lambda_runtime::Error>> {
    Box::pin(serve_unboxed(sla, args))
}

async fn serve_unboxed(sla: &Sla, args: &[String]) -> Result<(), lambda_runtime::Error> {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        return by_hand(sla, args).await;
    }
    tracing::info!(source = "crm-sla", "speed to lead ready");
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async move {
        let report = logged(sla.run_now().await)?;
        Ok::<_, lambda_runtime::Error>(serde_json::to_value(report)?)
    }))
    .await
}

/// The run's one log line: its counts, or why it failed.
fn logged(result: Result<Report, CrmError>) -> Result<Report, CrmError> {
    match &result {
        Ok(report) => tracing::info!(
            source = "crm-sla",
            outcome = if report.failed == 0 {
                "ran"
            } else {
                "incomplete"
            },
            assigned = report.assigned,
            untouched = report.untouched,
            reminded = report.reminded,
            reassigned = report.reassigned,
            gave_up = report.gave_up,
            texts = report.texts,
            first_touches = report.first_touches,
            stale = report.stale,
            failed = report.failed,
            "speed to lead run"
        ),
        Err(error) => tracing::error!(
            source = "crm-sla",
            outcome = "failed",
            error = %error,
            "speed to lead run failed; the next run covers it"
        ),
    }
    result
}

async fn by_hand(sla: &Sla, args: &[String]) -> Result<(), lambda_runtime::Error> {
    match args.first().map(String::as_str) {
        Some("run") => {
            let report = logged(sla.run_now().await)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Some("follow") => {
            tracing::info!(source = "crm-sla", "speed to lead following the CRM");
            loop {
                // Only runs that did something are logged; a failed one is, and the next
                // covers it.
                match sla.run_now().await {
                    Ok(report) if report.is_idle() => {}
                    result => {
                        let _ = logged(result);
                    }
                }
                tokio::time::sleep(FOLLOW_EVERY).await;
            }
        }
        _ => Err("run by hand: crm-sla run (once, its report printed), or crm-sla follow".into()),
    }
}
