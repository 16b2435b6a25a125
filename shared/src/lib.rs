//! The lead-ingestion library every function runs, in four layers. Imports run one way,
//! down them; `error` is the leaf every layer may use.
//!
//! - [`edge`]: Lambda's events (API Gateway, SQS, a schedule, a direct invocation) to
//!   plain inputs, and a pipeline's result to the response and the one log line; the
//!   contract's words ([`edge::answer`]).
//! - [`pipeline`]: what a function does, by the source's proof kind: a keyed lead
//!   (partners, Google), a signed notification (Meta), the drain of the buffer queue, a
//!   scheduled pull, a migration; and what became of each lead ([`pipeline::outcome`]).
//! - [`infra`]: the store, the buffer queue, the platforms' APIs, secrets, and the
//!   configuration a container is built from, once per cold start.
//! - [`domain`]: the lead's pure core, driven by the source's declaration: bytes to
//!   fields to a lead, its identity, its proof; no I/O.
//!
//! docs/architecture.md walks a request through them and keeps the glossary.

// The runtime's futures over the pipelines, built here (each edge's `serve` boxes its
// own), are deeper than rustc's default limit.
#![recursion_limit = "256"]

pub mod domain;
pub mod edge;
pub mod error;
pub mod infra;
pub mod pipeline;
#[cfg(feature = "tools")]
pub mod tools;

pub use domain::source::Source;
pub use pipeline::app::App;
