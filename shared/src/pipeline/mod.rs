//! What each function does with what its edge hands it, free of Lambda's types: a source
//! function's request ([`app`], by the source's proof kind: [`keyed`] or
//! [`notification`]), the [`drain`] of the buffer queue, Meta's scheduled [`pull`], a
//! [`migrate`] run; and what became of each lead ([`outcome`]).

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
pub mod sla;
