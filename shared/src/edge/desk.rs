//! The sales desk's edge: an EventBridge `Lead stored` event (delivered asynchronously:
//! a failed invocation is retried by Lambda, then kept on the desk's dead-letter queue)
//! to one telling, and one log line of what it did.

use std::time::Instant;

use futures_util::future::LocalBoxFuture;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

use crate::pipeline::desk::{Desk, Told};

/// Tells the desk once per event, one log line each (the lead's id, never its summary).
pub fn serve(desk: &Desk) -> LocalBoxFuture<'_, Result<(), lambda_runtime::Error>> {
    Box::pin(serve_unboxed(desk))
}

async fn serve_unboxed(desk: &Desk) -> Result<(), lambda_runtime::Error> {
    tracing::info!("sales desk ready");
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let started = Instant::now();
        let result = desk.tell(&event.payload["detail"]).await;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        match &result {
            Ok(Told::Sent {
                lead_id,
                message_id,
            }) => tracing::info!(
                outcome = "sent",
                lead = lead_id,
                message_id,
                latency_ms,
                "sales desk told"
            ),
            Ok(Told::Repeat { lead_id }) => tracing::info!(
                outcome = "repeat",
                lead = lead_id,
                latency_ms,
                "sales desk told before; nothing sent"
            ),
            Err(error) => tracing::error!(
                outcome = "failed",
                error = %error,
                latency_ms,
                "sales desk not told; the event is delivered again"
            ),
        }
        result.map(drop).map_err(lambda_runtime::Error::from)
    }))
    .await
}
