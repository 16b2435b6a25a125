//! Lead → row. The only module that speaks SQL, and so the one that decides which
//! database errors mean "unavailable" (see [`classify`]).
//!
//! A container holds one connection: Lambda hands it one request at a time, and a pool
//! would add a round trip per request (sqlx pings a connection returned to its pool).
//! Partners give up after 10 s, so every wait is bounded: connecting by
//! `connect_timeout`, each statement by the server's `statement_timeout`, and the whole
//! operation by `operation_timeout` (which also covers a database host that silently
//! drops packets, where no server-side timeout can fire).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection};
use sqlx::query::QueryScalar;
use sqlx::{ConnectOptions, Executor, Postgres};
use tokio::sync::Mutex;

use crate::error::StoreError;
use crate::record::LeadRecord;
use crate::secrets::{DbCredentials, Refreshing};

/// The migrations in `migrations/`, embedded so a binary can apply them anywhere.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// How the store waits; see `config` for the variables that set these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    pub connect_timeout: Duration,
    /// The server-side bound on each statement; zero for none (migrations).
    pub statement_timeout: Duration,
    pub operation_timeout: Duration,
    /// How long a byte-identical body from the same source counts as a retry.
    pub dedup_window: Duration,
    /// How long the store rests after the database proved unavailable (zero: never).
    pub breaker: Duration,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(3),
            operation_timeout: Duration::from_secs(5),
            dedup_window: Duration::from_secs(15 * 60),
            breaker: Duration::from_secs(5),
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

/// The insert of every lead. `ON CONFLICT DO NOTHING` covers the unique deduplication
/// indexes (see the migrations): a repeat inserts nothing and returns no row,
/// race-free, in the same single round trip as a new lead.
const INSERT_LEAD: &str = r#"
INSERT INTO public."mg-digital-leads"
    (platform, name, phone_number, car_model, lead_url, campaign, payload,
     created_at, request_id, partner_lead_id, idempotency_key, body_sha256, body_hash,
     phone_e164, meta_created_at, status)
VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb,
        to_timestamp($8::float8 / 1000), $9, $10, $11, $12, $13,
        $14, to_timestamp($15::float8), coalesce($16, 'new'))
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
        .bind(record.source.platform)
        .bind(&lead.name)
        .bind(&lead.phone_number)
        .bind(&lead.car_model)
        .bind(&lead.lead_url)
        .bind(&lead.campaign)
        .bind(&record.payload)
        .bind(record.received_at_ms() as f64)
        .bind(&record.request_id)
        .bind(&record.identity.partner_lead_id)
        .bind(&record.identity.idempotency_key)
        .bind(body_claim)
        .bind(&record.identity.body_sha256)
        .bind(crate::phone::e164(&lead.phone_number))
        .bind(lead.submitted_at.map(|seconds| seconds as f64))
        .bind(lead.test.then_some("test"))
}

/// The row a repeat collided with. An id match is always a duplicate, and so is the same
/// body with the same arrival (the same request, stored or drained before); a claimed
/// body only within the retry window, so `age_ms` is the stored row's age at the new
/// lead's arrival.
const FIND_EXISTING: &str = r#"
SELECT id::text,
       coalesce(partner_lead_id = $2 OR idempotency_key = $3
                OR (body_hash = $6 AND created_at = to_timestamp($5::float8 / 1000)),
                false) AS same,
       (extract(epoch FROM to_timestamp($5::float8 / 1000) - created_at) * 1000)::float8
FROM public."mg-digital-leads"
WHERE platform = $1
  AND (partner_lead_id = $2 OR idempotency_key = $3 OR body_sha256 = $4
       OR (body_hash = $6 AND created_at = to_timestamp($5::float8 / 1000)))
ORDER BY 2 DESC
LIMIT 1"#;

const GET_WATERMARK: &str = r#"
SELECT extract(epoch FROM synced_until)::int8
FROM public.lead_sync_watermarks WHERE source = $1"#;

const SET_WATERMARK: &str = r#"
INSERT INTO public.lead_sync_watermarks (source, synced_until)
VALUES ($1, to_timestamp($2::float8))
ON CONFLICT (source) DO UPDATE
SET synced_until = greatest(lead_sync_watermarks.synced_until, excluded.synced_until),
    updated_at = now()"#;

/// The row holding a source's own id of a lead (the unique key of the dedup migrations).
const FIND_BY_PARTNER_ID: &str = r#"
SELECT id::text FROM public."mg-digital-leads"
WHERE platform = $1 AND partner_lead_id = $2"#;

/// How long a migration waits for a lock on the CRM's live table.
const MIGRATION_LOCK_TIMEOUT: &str = "SET lock_timeout = '5s'";

/// The lead table's indexes that an interrupted `CREATE INDEX CONCURRENTLY` left invalid.
const INVALID_INDEXES: &str = r#"
SELECT indexrelid::regclass::text
FROM pg_index
WHERE indrelid = to_regclass('public."mg-digital-leads"') AND NOT indisvalid"#;

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

/// The lead table, over the container's one connection, opened on first use.
#[derive(Debug)]
pub struct Store {
    /// Where and how to connect; without credentials when they come from a secret.
    options: PgConnectOptions,
    /// The RDS-managed credentials secret, which RDS rotates.
    credentials: Option<Refreshing<DbCredentials>>,
    settings: StoreSettings,
    slot: Mutex<Slot>,
}

/// What a store keeps between requests.
#[derive(Debug, Default)]
struct Slot {
    open: Option<Open>,
    /// Set after the database proved unavailable: until then, leads go straight to the
    /// queue instead of each waiting out its timeout (a circuit breaker).
    resting_until: Option<Instant>,
}

impl Slot {
    /// Fails at once while resting; otherwise the rest, if any, is over.
    fn awake(&mut self) -> Result<(), StoreError> {
        if let Some(until) = self.resting_until {
            if Instant::now() < until {
                return Err(StoreError::Resting);
            }
            self.resting_until = None;
        }
        Ok(())
    }

    /// Rests for `breaker` after a failure that shows the database down (zero: never).
    fn rest_after<T>(&mut self, result: &Result<T, StoreError>, breaker: Duration) {
        if result.as_ref().is_err_and(StoreError::is_outage) && !breaker.is_zero() {
            self.resting_until = Some(Instant::now() + breaker);
        }
    }
}

/// An open connection and the credentials it was opened with.
#[derive(Debug)]
struct Open {
    connection: PgConnection,
    credentials: Option<Arc<DbCredentials>>,
}

impl Store {
    /// A store that connects with `options` as given. Connects nothing yet: a cold start
    /// does not wait for the database, and a database that is down at start-up costs a
    /// request its contract answer, not the container.
    pub fn new(options: PgConnectOptions, settings: StoreSettings) -> Self {
        let options = options
            .application_name("lead-ingestion")
            // Statements are the same few every time; logging each would cost every
            // request for nothing an operator reads, and at debug it would print them.
            .disable_statement_logging();
        Self {
            options,
            credentials: None,
            settings,
            slot: Mutex::new(Slot::default()),
        }
    }

    /// Takes the username and password from `credentials`, read again when it changes.
    pub fn with_credentials(mut self, credentials: Refreshing<DbCredentials>) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Reads the credentials secret now (cold start), so a request need not.
    pub async fn read_credentials(&self) -> Result<(), StoreError> {
        self.current_credentials().await.map(drop)
    }

    /// Opens the connection now, if it is not open (a caller that wants it ready before
    /// the first lead).
    pub async fn open(&self) -> Result<(), StoreError> {
        let mut slot = self.slot.lock().await;
        self.connection(&mut slot.open).await.map(drop)
    }

    /// The open connection, opened now if there is none.
    async fn connection<'s>(
        &self,
        open: &'s mut Option<Open>,
    ) -> Result<&'s mut PgConnection, StoreError> {
        let open = match open.take() {
            Some(existing) => open.insert(existing),
            None => open.insert(self.connect(self.current_credentials().await?).await?),
        };
        Ok(&mut open.connection)
    }

    async fn current_credentials(&self) -> Result<Option<Arc<DbCredentials>>, StoreError> {
        match &self.credentials {
            Some(secret) => Ok(Some(secret.get().await.map_err(StoreError::Credentials)?)),
            None => Ok(None),
        }
    }

    /// Stores a lead once: inserts it, or finds the row it repeats, within
    /// `operation_timeout` (see [`Store::insert_within`]).
    pub async fn insert(&self, record: &LeadRecord) -> Result<Stored, StoreError> {
        self.insert_within(record, self.settings.operation_timeout)
            .await
    }

    /// Stores a lead once within `limit` (at most `operation_timeout`). A lead is never
    /// half-stored, so any failure may be retried.
    ///
    /// After a failure that shows the database unavailable, the store rests for
    /// `breaker`: leads fail at once with [`StoreError::Resting`] (and are queued by the
    /// caller) instead of each waiting out a timeout; the first lead after the rest
    /// probes the database again.
    ///
    /// A connection the server closed while the container was idle (a restart, a
    /// failover) is only noticed when used: the lead is tried once more on a new one.
    /// That is safe because a lead is stored once per id: a repeat of an insert that did
    /// commit finds its row.
    pub async fn insert_within(
        &self,
        record: &LeadRecord,
        limit: Duration,
    ) -> Result<Stored, StoreError> {
        let limit = limit.min(self.settings.operation_timeout);
        let mut slot = self.slot.lock().await;
        slot.awake()?;
        let result = tokio::time::timeout(limit, self.attempt(&mut slot.open, record))
            .await
            .unwrap_or(Err(StoreError::Timeout(limit)));
        slot.rest_after(&result, self.settings.breaker);
        result
    }

    /// The row a source's own lead id is stored in, if any, within `limit` (at most
    /// `operation_timeout`; resting like [`Store::insert_within`]). Lets a lead that must
    /// be read from its platform first skip that read when it is stored already.
    pub async fn find(
        &self,
        platform: &str,
        partner_lead_id: &str,
        limit: Duration,
    ) -> Result<Option<LeadId>, StoreError> {
        let limit = limit.min(self.settings.operation_timeout);
        let mut slot = self.slot.lock().await;
        slot.awake()?;
        let open = &mut slot.open;
        let find = async {
            let connection = self.connection(open).await?;
            sqlx::query_scalar::<_, String>(FIND_BY_PARTNER_ID)
                .bind(platform)
                .bind(partner_lead_id)
                .fetch_optional(&mut *connection)
                .await
                .map_err(classify)
        };
        let result = tokio::time::timeout(limit, find)
            .await
            .unwrap_or(Err(StoreError::Timeout(limit)));
        slot.rest_after(&result, self.settings.breaker);
        result.map(|id| id.map(LeadId::from_text))
    }

    /// One store of a lead on the open connection, or a new one. A timed-out call is
    /// dropped mid-query, and the connection it had taken with it.
    async fn attempt(
        &self,
        slot: &mut Option<Open>,
        record: &LeadRecord,
    ) -> Result<Stored, StoreError> {
        let credentials = self.current_credentials().await?;
        // Opened with credentials since rotated: replaced.
        if slot
            .as_ref()
            .is_some_and(|open| open.credentials != credentials)
        {
            *slot = None;
        }
        let reused = slot.is_some();
        for retry in [reused, false] {
            let mut open = match slot.take() {
                Some(open) => open,
                None => self.connect(credentials.clone()).await?,
            };
            match insert_once(&mut open.connection, record, self.settings.dedup_window).await {
                Ok(stored) => {
                    *slot = Some(open);
                    return stored.ok_or(StoreError::Unsettled);
                }
                // The server answered: the connection is sound.
                Err(error @ sqlx::Error::Database(_)) => {
                    *slot = Some(open);
                    return Err(classify(error));
                }
                Err(error) if retry && is_connection_lost(&error) => {
                    tracing::info!(error = %error, "database connection closed while idle; reconnecting");
                }
                Err(error) => return Err(classify(error)),
            }
        }
        Err(StoreError::Unsettled)
    }

    /// Lets the role `credentials` names log in with its password (`migrate` does this for
    /// the functions' own role, from that role's secret, after every run).
    pub async fn grant_login(
        &self,
        credentials: &DbCredentials,
    ) -> Result<(), crate::error::GrantError> {
        // The password's verifier, never the password: statements may be written to the
        // server's log and shown in its statistics views.
        let verifier = crate::scram::verifier(&credentials.password)?;
        let mut slot = self.slot.lock().await;
        let connection = self.connection(&mut slot.open).await?;
        // ALTER ROLE takes no parameters: the server quotes the name and verifier itself.
        let statement: String =
            sqlx::query_scalar("SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', $1, $2)")
                .bind(&credentials.username)
                .bind(&verifier)
                .fetch_one(&mut *connection)
                .await
                .map_err(classify)?;
        connection
            .execute(statement.as_str())
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// The Unix time a scheduled pull named `key` last covered, if it ever ran.
    pub async fn watermark(&self, key: &str) -> Result<Option<i64>, StoreError> {
        let mut slot = self.slot.lock().await;
        let connection = self.connection(&mut slot.open).await?;
        sqlx::query_scalar(GET_WATERMARK)
            .bind(key)
            .fetch_optional(&mut *connection)
            .await
            .map_err(classify)
    }

    /// Records that the pull named `key` covered everything up to `until` (Unix time).
    /// A watermark never moves back, so a slow run finishing after a newer one cannot
    /// undo it.
    pub async fn set_watermark(&self, key: &str, until: i64) -> Result<(), StoreError> {
        let mut slot = self.slot.lock().await;
        let connection = self.connection(&mut slot.open).await?;
        sqlx::query(SET_WATERMARK)
            .bind(key)
            .bind(until as f64)
            .execute(&mut *connection)
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Applies the embedded migrations; returns every version now applied.
    pub async fn migrate(&self) -> Result<Vec<i64>, MigrateError> {
        let source = |error: StoreError| MigrateError::Source(Box::new(error));
        let mut slot = self.slot.lock().await;
        let connection = self.connection(&mut slot.open).await.map_err(source)?;
        // The CRM writes to the table meanwhile: a lock not had within this fails the
        // migration (run it again) rather than queueing the CRM's writes behind it.
        connection.execute(MIGRATION_LOCK_TIMEOUT).await?;
        // An index build that was interrupted leaves an invalid index, which
        // `CREATE INDEX CONCURRENTLY IF NOT EXISTS` would keep: drop it to build anew.
        let invalid: Vec<String> = sqlx::query_scalar(INVALID_INDEXES)
            .fetch_all(&mut *connection)
            .await?;
        for index in invalid {
            tracing::warn!(
                index,
                "dropping an invalid index left by an interrupted build"
            );
            let statement: String = sqlx::query_scalar(
                "SELECT format('DROP INDEX CONCURRENTLY IF EXISTS %s', $1::regclass)",
            )
            .bind(&index)
            .fetch_one(&mut *connection)
            .await?;
            connection.execute(statement.as_str()).await?;
        }
        MIGRATOR.run(&mut *connection).await?;
        Ok(MIGRATOR.iter().map(|migration| migration.version).collect())
    }

    async fn connect(&self, credentials: Option<Arc<DbCredentials>>) -> Result<Open, StoreError> {
        let mut options = self.options.clone();
        if let Some(credentials) = &credentials {
            options = options
                .username(&credentials.username)
                .password(&credentials.password);
        }
        let limit = self.settings.connect_timeout;
        let connect = async {
            let mut connection = options.connect().await?;
            // Set in the session, not as a startup `options` parameter, which RDS Proxy
            // refuses. (The proxy pins the session for it, as it does for the named
            // prepared statements sqlx uses: see the README on RDS Proxy.)
            let statement_timeout = self.settings.statement_timeout.as_millis();
            connection
                .execute(format!("SET statement_timeout = {statement_timeout}").as_str())
                .await?;
            Ok::<_, sqlx::Error>(connection)
        };
        match tokio::time::timeout(limit, connect).await {
            Ok(Ok(connection)) => Ok(Open {
                connection,
                credentials,
            }),
            Ok(Err(error)) => {
                // A refused password means RDS rotated it since it was read.
                if is_bad_password(&error) {
                    if let Some(secret) = &self.credentials {
                        secret.invalidate().await;
                    }
                }
                Err(classify(error))
            }
            Err(_) => Err(StoreError::Timeout(limit)),
        }
    }
}

/// What a database error means for the lead:
///
/// - SQLSTATE classes 22 (data exception) and 23 (integrity violation): the database
///   refused the lead itself, which would fail again from the queue;
/// - class 42 (insufficient privilege, an undefined table or column) and 28000 (a role
///   that may not log in): this function is misconfigured, which no retry mends;
/// - anything else (connection failures, timeouts, a server shutting down, a rotated
///   password): the database is unavailable, and the lead is worth queueing.
pub fn classify(error: sqlx::Error) -> StoreError {
    let code = match &error {
        sqlx::Error::Database(database) => database.code().map(|code| code.into_owned()),
        _ => None,
    };
    match code.as_deref() {
        Some(code) if code.starts_with("22") || code.starts_with("23") => {
            StoreError::Rejected(error)
        }
        Some(code) if code.starts_with("42") || code == "28000" => StoreError::Denied(error),
        _ => StoreError::Unavailable(error),
    }
}

/// PostgreSQL's `invalid_password`.
fn is_bad_password(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("28P01"))
}

/// The connection itself failed (rather than the server refusing a statement).
fn is_connection_lost(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::Tls(_)
    )
}

/// Stores a lead once on `connection`: inserts it, or finds the row it repeats; `None`
/// when a conflicting row kept changing under it.
async fn insert_once(
    connection: &mut PgConnection,
    record: &LeadRecord,
    window: Duration,
) -> Result<Option<Stored>, sqlx::Error> {
    let received_ms = record.received_at_ms() as f64;
    let window_ms = window.as_millis() as f64;
    let platform = record.source.platform;
    let mut body_claim = record.identity.body_sha256.as_deref();
    // A conflict is settled in at most two more rounds: an expired claim released (or
    // a newer one stepped around), then the insert again.
    for _ in 0..3 {
        if let Some(id) = insert_query(record, body_claim)
            .fetch_optional(&mut *connection)
            .await?
        {
            return Ok(Some(Stored::Created(LeadId::from_text(id))));
        }
        let existing: Option<(String, bool, f64)> = sqlx::query_as(FIND_EXISTING)
            .bind(platform)
            .bind(&record.identity.partner_lead_id)
            .bind(&record.identity.idempotency_key)
            .bind(body_claim)
            .bind(received_ms)
            .bind(&record.identity.body_sha256)
            .fetch_optional(&mut *connection)
            .await?;
        match existing {
            // Deleted since the conflict: try again.
            None => {}
            Some((id, same, age_ms)) if same || age_ms.abs() < window_ms => {
                return Ok(Some(Stored::Duplicate(LeadId::from_text(id))));
            }
            // The same body, accepted longer ago than the window: a new lead. It takes
            // the claim over, so its own retries are recognised.
            Some((id, _, age_ms)) if age_ms > 0.0 => {
                sqlx::query(RELEASE_BODY_CLAIM)
                    .bind(platform)
                    .bind(body_claim)
                    .bind(id)
                    .execute(&mut *connection)
                    .await?;
            }
            // The claim belongs to a lead that arrived more than a window *after* this
            // one (a late drain of the queue), and no row holds this request: a
            // different lead, stored unclaimed (its body and arrival still unique).
            Some(_) => body_claim = None,
        }
    }
    Ok(None)
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
