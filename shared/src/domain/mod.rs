//! The lead's pure core: a source's declaration, and what it makes of a body — its
//! fields, the lead, its identity, the record to store — and of a proof. No I/O here:
//! plain unit tests cover it.

pub mod auth;
pub mod crm;
pub mod event;
pub mod ist;
pub mod lead;
pub mod listing;
pub mod mask;
pub mod meta;
pub mod source;
