//! Lambda's side: each kind of event to a pipeline's inputs, its result to the response
//! and the one log line per request. [`http`] for API Gateway, [`queue`] for SQS,
//! [`schedule`] for a scheduled pull, [`invoke`] for a direct invocation; [`answer`]
//! words every status and message of the contract; [`runtime`] and [`telemetry`] are
//! what every `main` shares.

pub mod answer;
pub mod crm;
pub mod desk;
pub mod feed;
pub mod http;
pub mod invoke;
pub mod queue;
pub mod relay;
pub mod runtime;
pub mod schedule;
pub mod sla;
pub mod telemetry;
