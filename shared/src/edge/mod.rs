//! Lambda's side: each kind of event a function is handed, to its pipeline's inputs, and
//! the result to the answer and the one log line per request or run. [`answer`] words
//! every status and message of the contract; [`runtime`] and [`telemetry`] are what every
//! `main` shares.

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
