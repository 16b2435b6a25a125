//! The relay's edge: an EventBridge Scheduler invocation to one run of the outbox relay,
//! bounded by the invocation's deadline, and one log line of what it did (the metric
//! filters read its counts and the oldest row's age).

use std::time::{Duration, Instant, SystemTime};

use futures_util::future::LocalBoxFuture;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

use crate::domain::record;
use crate::pipeline::relay::Relay;

/// Kept back from the invocation's deadline for the last batch's delete and commit.
const RESERVE: Duration = Duration::from_secs(2);

/// Relays once per invocation (the schedule's), one log line each.
pub fn serve(relay: &Relay) -> LocalBoxFuture<'_, Result<(), lambda_runtime::Error>> {
    Box::pin(serve_unboxed(relay))
}

async fn serve_unboxed(relay: &Relay) -> Result<(), lambda_runtime::Error> {
    tracing::info!("outbox relay ready");
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let left = record::from_unix_ms(event.context.deadline)
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
