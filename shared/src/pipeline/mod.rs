//! What each function does with what its edge hands it, free of Lambda's types: one room
//! per kind of work a function does (take a lead in, keep it, pull, relay, tell, hand
//! off, escalate), each deciding what happens and asking `infra` to do it.

pub mod app;
pub mod crm;
pub mod desk;
pub mod drain;
pub mod feed;
pub mod keep;
pub mod keyed;
pub mod migrate;
pub mod notification;
pub mod outcome;
pub mod pull;
pub mod relay;
pub mod request;
