//! What the pipelines reach beyond the process: the lead table ([`store`]), the buffer
//! queue and its dead-letter queue ([`buffer`]), Meta's Graph API ([`graph`]), secrets,
//! the AWS SDK's settings; and the [`config`] a [`container`] is built from once per
//! cold start.

pub mod aws;
pub mod buffer;
pub mod config;
pub mod container;
pub mod crm;
pub mod events;
pub mod graph;
pub mod knowlarity;
pub mod metrics;
pub mod notices;
pub mod outbox;
pub mod reader;
pub mod scram;
pub mod secrets;
pub mod sms;
pub mod store;
pub mod topic;
