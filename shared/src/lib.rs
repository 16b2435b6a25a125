//! The lead-ingestion pipeline shared by every source function.
//!
//! A request travels one way: [`http`] turns the Lambda event into an
//! [`app::Incoming`], [`app`] runs the contract's checks — [`auth`] the `X-API-Key`,
//! [`payload`] the body, [`lead`] the mapping through the [`source`] declaration — and
//! [`dedup`] names what makes the lead a repeat; [`store`] inserts the [`record`] once,
//! or, while the database is unavailable, [`buffer`] queues it for the [`drain`]
//! function; the [`outcome`] says which. Every failure is an [`error::Error`] (a partner's [`error::Refusal`] or our
//! [`error::Failure`]); [`answer`] words every status and message of the contract.
//!
//! Each function's state is built once per container by [`container`] from its
//! [`config`]; [`runtime`] is the glue every `main` shares.

pub mod answer;
pub mod app;
pub mod auth;
pub mod aws;
pub mod buffer;
pub mod config;
pub mod container;
pub mod dedup;
pub mod drain;
pub mod error;
pub mod http;
pub mod lead;
pub mod mask;
pub mod migrate;
pub mod outcome;
pub mod payload;
pub mod record;
pub mod runtime;
pub mod secrets;
pub mod source;
pub mod store;
pub mod telemetry;
#[cfg(feature = "tools")]
pub mod tools;

pub use app::App;
pub use source::Source;
