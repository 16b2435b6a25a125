//! Lead → row. The only module that speaks SQL.
//!
//! Partners give up after 10 s, so every database wait is bounded: connecting and
//! acquiring by `acquire_timeout`, each statement by the server's `statement_timeout`,
//! and the whole operation by `operation_timeout` (which also covers a database host
//! that silently drops packets, where no server-side timeout can fire).

use std::time::Duration;

use serde::Serialize;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::error::IngestError;
use crate::lead::Lead;

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
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            max_connections: 1,
            acquire_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(3),
            operation_timeout: Duration::from_secs(5),
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
    fn from_text(text: String) -> Self {
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

const INSERT_LEAD: &str = r#"
INSERT INTO public."mg-digital-leads"
    (platform, name, phone_number, car_model, lead_url, campaign, payload)
VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb)
RETURNING id::text"#;

/// The lead table behind a lazily connected pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
    operation_timeout: Duration,
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
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the embedded migrations.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        MIGRATOR.run(&self.pool).await
    }

    /// Inserts one lead with its archived payload and returns the new row's id.
    pub async fn insert(&self, lead: &Lead, payload: &str) -> Result<LeadId, IngestError> {
        let attempt = async {
            sqlx::query_scalar::<_, String>(INSERT_LEAD)
                .bind(lead.platform)
                .bind(&lead.name)
                .bind(&lead.phone_number)
                .bind(&lead.car_model)
                .bind(&lead.lead_url)
                .bind(&lead.campaign)
                .bind(payload)
                .fetch_one(&self.pool)
                .await
        };
        match tokio::time::timeout(self.operation_timeout, attempt).await {
            Ok(result) => Ok(LeadId::from_text(result?)),
            // The connection is dropped mid-query; sqlx closes it rather than reuse it.
            Err(_) => Err(IngestError::DatabaseTimeout(self.operation_timeout)),
        }
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
