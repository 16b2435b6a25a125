//! Lambda's side: each kind of event a function is handed, to its pipeline's inputs, and
//! the result to the answer and the one log line per request or run. [`answer`] words
//! every status and message of the contract; [`runtime`] and [`telemetry`] are what every
//! `main` shares. Each `serve` returns its future boxed: the runtime's future over a
//! pipeline is deep, and so is built and checked here, once, not in every `main`.

pub mod answer;
pub mod crm;
pub mod dashboard;
pub mod desk;
pub mod http;
pub mod invoke;
pub mod queue;
pub mod runtime;
pub mod schedule;
pub mod sla;
pub mod telemetry;
