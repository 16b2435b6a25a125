//! The SQS edge: Lambda's batches of the buffer queue to the drain, and its report of
//! the messages it could not store back to Lambda.

use aws_lambda_events::event::sqs::SqsEvent;
use futures_util::future::LocalBoxFuture;
use lambda_runtime::{service_fn, LambdaEvent};

use crate::pipeline::drain::Drain;

/// Serves SQS batches with `drain` until Lambda stops the container.
pub fn serve(drain: &Drain) -> LocalBoxFuture<'_, Result<(), lambda_runtime::Error>> {
    Box::pin(serve_unboxed(drain))
}

async fn serve_unboxed(drain: &Drain) -> Result<(), lambda_runtime::Error> {
    tracing::info!("drain ready");
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, lambda_runtime::Error>(drain.handle(event.payload).await)
    }))
    .await
}
