//! The lead-ingestion pipeline shared by every source function.
//!
//! A request travels one way: [`http`] turns the Lambda event into headers and body
//! bytes, [`auth`] checks the `X-API-Key`, [`payload`] decodes the body into a JSON
//! object, [`lead`] maps it through the [`source`] declaration, [`dedup`] names what makes
//! it a repeat, and [`store`] inserts the row once — or, while the database is
//! unavailable, [`buffer`] queues the [`record`] for the [`drain`] function. Every
//! failure is an [`error::IngestError`], turned into the contract's status and message in
//! one place.

pub mod app;
pub mod auth;
pub mod aws;
pub mod buffer;
pub mod config;
pub mod database;
pub mod dedup;
pub mod drain;
pub mod error;
pub mod http;
pub mod lambda;
pub mod lead;
pub mod mask;
pub mod migrate;
pub mod payload;
pub mod record;
pub mod secrets;
pub mod source;
pub mod store;
pub mod telemetry;
#[cfg(feature = "tools")]
pub mod tools;

pub use app::{Accepted, App, Outcome};
pub use error::IngestError;
pub use source::Source;
