//! What the tools under `tools/` need of the product beyond its public API, behind the
//! `tools` feature so that none of it is public in the functions' build.

use sqlx::postgres::PgArguments;
use sqlx::query::QueryScalar;
use sqlx::Postgres;

use crate::domain::lead::record::LeadRecord;

/// The first statement [`Store::insert`](crate::infra::store::Store::insert) runs for a new
/// `record`: the store-once INSERT with the record's identity bound (its body
/// claimed when it has neither a partner id nor an `Idempotency-Key`), `ON CONFLICT DO
/// NOTHING RETURNING id`. It yields the new row's id, or nothing for a repeat. The
/// benchmark's floor runs it so that the floor cannot drift from what the function runs.
pub fn insert_query(record: &LeadRecord) -> QueryScalar<'_, Postgres, String, PgArguments> {
    crate::infra::store::insert_query(record, record.identity.body_hash.as_deref())
}
