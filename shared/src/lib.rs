//! The lead-ingestion pipeline shared by every source function.
//!
//! A request travels one way: [`http`] turns the Lambda event into an
//! [`app::Incoming`], [`app`] runs the checks its [`source`] declares — [`auth`] the
//! `X-API-Key`, a key in the body or a signature, [`payload`] the body, [`shape`] its
//! fields, [`lead`] the mapping through the declaration (for Meta, [`meta`] names the
//! leads a notification carries and [`graph`] reads each) — and
//! [`dedup`] names what makes the lead a repeat; [`store`] inserts the [`record`] once,
//! or, while the database is unavailable, [`buffer`] queues it for the [`drain`]
//! function; the [`outcome`] says which. Every failure is an [`error::Error`] (a partner's [`error::Refusal`] or our
//! [`error::Failure`]); [`answer`] words every status and message of the contract.
//!
//! Each function's state is built once per container by [`container`] from its
//! [`config`]; [`runtime`] is the glue every `main` shares. [`sync`] is Meta's scheduled
//! pull, which stores the leads no notification brought.

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
pub mod graph;
pub mod http;
pub mod lead;
pub mod mask;
pub mod meta;
pub mod migrate;
pub mod outcome;
pub mod payload;
pub mod phone;
pub mod record;
pub mod runtime;
pub mod scram;
pub mod secrets;
pub mod shape;
pub mod source;
pub mod store;
pub mod sync;
pub mod telemetry;
#[cfg(feature = "tools")]
pub mod tools;

pub use app::App;
pub use source::Source;
