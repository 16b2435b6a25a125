//! What the pipelines reach beyond the process (databases, queues, buses, topics, the
//! partners' APIs, secrets), one room per thing reached; and each function's
//! [`config`], which [`parts`] builds once per cold start.

pub mod aws;
pub mod buffer;
pub mod config;
pub mod crm;
pub mod graph;
pub mod knowlarity;
pub mod metrics;
pub mod parts;
pub mod secrets;
pub mod store;
