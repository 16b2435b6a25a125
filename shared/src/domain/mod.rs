//! The lead's pure core: a source's declaration, and what it makes of a body — its
//! fields, the lead, its identity, the record to store — and of a proof. No I/O here:
//! plain unit tests cover it.

pub mod assignment;
pub mod auth;
pub mod crm;
pub mod csv;
pub mod cursor;
pub mod dedup;
pub mod event;
pub mod feed;
pub mod ist;
pub mod lead;
pub mod mask;
pub mod meta;
pub mod payload;
pub mod phone;
pub mod record;
pub mod shape;
pub mod sla;
pub mod source;
