//! Lead → row. The only module that speaks SQL.
//!
//! Partners give up after 10 s, so every database wait is bounded: connecting and
//! acquiring by `acquire_timeout`, each statement by the server's `statement_timeout`,
//! and the whole operation by `operation_timeout` (which also covers a database host
//! that silently drops packets, where no server-side timeout can fire).

use std::time::Duration;

use serde::Serialize;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::query::QueryScalar;
use sqlx::Postgres;

use crate::error::IngestError;
use crate::record::LeadRecord;

/// The migrations in `migrations/`, embedded so a binary can apply them anywhere.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// How the pool behaves; see `config` for the variables that set these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    /// One connection per container is right for Lambda, which hands a container one
    /// request at a time; more only for tools that share a pool.
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    pub statement_timeout: Duration,
    pub operation_timeout: Duration,
    /// How long a byte-identical body from the same source counts as a retry.
    pub dedup_window: Duration,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            max_connections: 1,
            acquire_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(3),
            operation_timeout: Duration::from_secs(5),
            dedup_window: Duration::from_secs(15 * 60),
        }
    }
}

/// The id of a stored row: a number for the table this project creates, text for a
/// legacy table whose `id` is of another type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum LeadId {
    Number(i64),
    Text(String),
}

impl LeadId {
    pub fn from_text(text: String) -> Self {
        text.parse().map_or(Self::Text(text), Self::Number)
    }
}

impl std::fmt::Display for LeadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(number) => number.fmt(f),
            Self::Text(text) => text.fmt(f),
        }
    }
}

/// The insert of every lead. `ON CONFLICT DO NOTHING` covers the three unique
/// deduplication indexes (see the migrations): a repeat inserts nothing and returns no
/// row, race-free, in the same single round trip as a new lead.
pub const INSERT_LEAD: &str = r#"
INSERT INTO public."mg-digital-leads"
    (platform, name, phone_number, car_model, lead_url, campaign, payload,
     created_at, request_id, partner_lead_id, idempotency_key, body_sha256)
VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb,
        to_timestamp($8::float8 / 1000), $9, $10, $11, $12)
ON CONFLICT DO NOTHING
RETURNING id::text"#;

/// [`INSERT_LEAD`] bound to a record, claiming its body only when `body_claim` says so.
/// The one place its parameters are bound (the store runs it; `tools` hands it to the
/// benchmark's floor).
pub(crate) fn insert_query<'q>(
    record: &'q LeadRecord,
    body_claim: Option<&'q str>,
) -> QueryScalar<'q, Postgres, String, PgArguments> {
    let lead = &record.lead;
    sqlx::query_scalar(INSERT_LEAD)
        .bind(lead.platform)
        .bind(&lead.name)
        .bind(&lead.phone_number)
        .bind(&lead.car_model)
        .bind(&lead.lead_url)
        .bind(&lead.campaign)
        .bind(&record.payload)
        .bind(record.received_at_ms() as f64)
        .bind(&record.request_id)
        .bind(&record.keys.partner_lead_id)
        .bind(&record.keys.idempotency_key)
        .bind(body_claim)
}

/// The row a repeat collided with. A key match is always a duplicate; a body match only
/// within the retry window, so `age_ms` is the stored row's age at the new lead's arrival.
const FIND_EXISTING: &str = r#"
SELECT id::text,
       coalesce(partner_lead_id = $2 OR idempotency_key = $3, false) AS keyed,
       (extract(epoch FROM to_timestamp($5::float8 / 1000) - created_at) * 1000)::float8
FROM public."mg-digital-leads"
WHERE platform = $1
  AND (partner_lead_id = $2 OR idempotency_key = $3 OR body_sha256 = $4)
ORDER BY 2 DESC
LIMIT 1"#;

/// Frees an expired body claim, so the same body may be stored again as a new lead.
const RELEASE_BODY_CLAIM: &str = r#"
UPDATE public."mg-digital-leads" SET body_sha256 = NULL
WHERE platform = $1 AND body_sha256 = $2 AND id::text = $3"#;

/// A stored lead: new, or the row it repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    Created(LeadId),
    Duplicate(LeadId),
}

impl Stored {
    pub fn id(&self) -> &LeadId {
        match self {
            Self::Created(id) | Self::Duplicate(id) => id,
        }
    }
}

/// The lead table behind a lazily connected pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
    operation_timeout: Duration,
    dedup_window: Duration,
}

impl Store {
    /// Builds the pool without connecting: a cold start does not wait for the database,
    /// and a database that is down at start-up costs a 500, not a crashed container.
    pub fn connect_lazy(options: PgConnectOptions, settings: &StoreSettings) -> Self {
        let statement_timeout = settings.statement_timeout.as_millis().to_string();
        let options = options
            .application_name("lead-ingestion")
            .options([("statement_timeout", statement_timeout.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .min_connections(0)
            .acquire_timeout(settings.acquire_timeout)
            // No ping before every use: it would double the round trips of a request.
            // A connection the server closed (restart, failover) is noticed and replaced
            // by the pool on its own; tests/outage.rs proves a warm container recovers.
            .test_before_acquire(false)
            .connect_lazy_with(options);
        Self {
            pool,
            operation_timeout: settings.operation_timeout,
            dedup_window: settings.dedup_window,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the embedded migrations.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        MIGRATOR.run(&self.pool).await
    }

    /// Stores a lead once: inserts it, or finds the row it repeats. Bounded as a whole
    /// by `operation_timeout`.
    pub async fn insert(&self, record: &LeadRecord) -> Result<Stored, IngestError> {
        match tokio::time::timeout(self.operation_timeout, self.store_once(record)).await {
            Ok(result) => result,
            // The connection is dropped mid-query; sqlx closes it rather than reuse it.
            Err(_) => Err(IngestError::DatabaseTimeout(self.operation_timeout)),
        }
    }

    async fn store_once(&self, record: &LeadRecord) -> Result<Stored, IngestError> {
        let received_ms = record.received_at_ms() as f64;
        let window_ms = self.dedup_window.as_millis() as f64;
        let mut body_claim = record.keys.body_sha256.as_deref();
        // A conflict is settled in at most two more rounds: an expired claim released (or
        // a newer one stepped around), then the insert again.
        for _ in 0..3 {
            if let Some(id) = self.try_insert(record, body_claim).await? {
                return Ok(Stored::Created(id));
            }
            let existing: Option<(String, bool, f64)> = sqlx::query_as(FIND_EXISTING)
                .bind(record.lead.platform)
                .bind(&record.keys.partner_lead_id)
                .bind(&record.keys.idempotency_key)
                .bind(body_claim)
                .bind(received_ms)
                .fetch_optional(&self.pool)
                .await?;
            match existing {
                // Deleted since the conflict: try again.
                None => {}
                Some((id, keyed, age_ms)) if keyed || age_ms.abs() < window_ms => {
                    return Ok(Stored::Duplicate(LeadId::from_text(id)));
                }
                // The same body, accepted longer ago than the window: a new lead. It takes
                // the claim over, so its own retries are recognised.
                Some((id, _, age_ms)) if age_ms > 0.0 => {
                    sqlx::query(RELEASE_BODY_CLAIM)
                        .bind(record.lead.platform)
                        .bind(body_claim)
                        .bind(id)
                        .execute(&self.pool)
                        .await?;
                }
                // The claim belongs to a lead that arrived more than a window *after* this
                // one (a late drain of the queue): a different lead, stored unclaimed.
                Some(_) => body_claim = None,
            }
        }
        Err(IngestError::DedupUnsettled)
    }

    async fn try_insert(
        &self,
        record: &LeadRecord,
        body_claim: Option<&str>,
    ) -> Result<Option<LeadId>, sqlx::Error> {
        let id = insert_query(record, body_claim)
            .fetch_optional(&self.pool)
            .await?;
        Ok(id.map(LeadId::from_text))
    }
}

#[cfg(test)]
mod tests {
    use super::LeadId;

    #[test]
    fn ids_render_as_numbers_when_numeric() {
        assert_eq!(LeadId::from_text("42".into()), LeadId::Number(42));
        let uuid = "0b6c9f2e-0000-4000-8000-000000000000".to_owned();
        assert_eq!(LeadId::from_text(uuid.clone()), LeadId::Text(uuid));
        assert_eq!(serde_json::to_string(&LeadId::Number(7)).unwrap(), "7");
    }
}
