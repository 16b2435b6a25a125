//! Lead → row. The only module that speaks SQL, and so the one that decides which
//! database errors mean "unavailable" (see [`classify`]).
//!
//! A container holds one connection: Lambda hands it one request at a time, and a pool
//! would add a round trip per request (sqlx pings a connection returned to its pool).
//! Partners give up after 10 s, so every wait is bounded: connecting by
//! `connect_timeout`, each statement by the server's `statement_timeout`, and the whole
//! operation by `operation_timeout` (which also covers a database host that silently
//! drops packets, where no server-side timeout can fire).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection};
use sqlx::query::QueryScalar;
use sqlx::{ConnectOptions, Executor, Postgres};
use tokio::sync::Mutex;

use crate::domain::event;
use crate::domain::record::LeadRecord;
pub use crate::domain::record::RowId;
use crate::error::StoreError;
use crate::infra::events::{Events, Recorded};
use crate::infra::secrets::{DbCredentials, Refreshing};

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

/// [`INSERT_LEAD`] that also records the lead's `Lead stored` event in the outbox, in the
/// same statement (so in the same transaction): a lead is stored with its event or not
/// at all, and a repeat, which inserts no lead, records none. The detail is built from
/// the values being inserted, not read back: the functions' role may not read a lead's
/// personal columns, nor any column of the outbox, so the row's id and token are drawn
/// here and returned from the statement, not from the table. `now()` is the
/// transaction's time, the row's `stored_at`. Each field is cut to what an event
/// carries ([`event::field_chars`]); the lead's row keeps it whole.
static INSERT_LEAD_RECORDING_EVENT: LazyLock<String> = LazyLock::new(|| {
    let cut = |field: &str, value: &str| format!("left({value}, {})", event::field_chars(field));
    format!(
        r#"
WITH stored AS (
    INSERT INTO public."mg-digital-leads"
        (platform, name, phone_number, car_model, lead_url, campaign, payload,
         created_at, request_id, partner_lead_id, idempotency_key, body_sha256, body_hash,
         phone_e164, meta_created_at, status)
    VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb,
            to_timestamp($8::float8 / 1000), $9, $10, $11, $12, $13,
            $14, to_timestamp($15::float8), coalesce($16, 'new'))
    ON CONFLICT DO NOTHING
    RETURNING id
), recorded AS (
    SELECT stored.id,
           nextval('public.lead_outbox_id_seq') AS outbox_id,
           gen_random_uuid() AS token,
           jsonb_build_object(
               'id', to_jsonb(stored.id),
               'platform', {platform},
               'name', {name},
               'phone_number', {phone_number},
               'phone_e164', {phone_e164},
               'car_model', {car_model},
               'lead_url', {lead_url},
               'campaign', {campaign},
               'status', coalesce($16, 'new'),
               'created_at', to_jsonb(to_timestamp($8::float8 / 1000)),
               'stored_at', to_jsonb(now()),
               'summary', {summary}) AS detail
    FROM stored
), event AS (
    INSERT INTO public.lead_outbox (id, lead_id, detail, token)
    SELECT outbox_id, id::text, detail, token FROM recorded
)
SELECT id::text, outbox_id, token::text, detail::text FROM recorded"#,
        platform = cut("platform", "$1::text"),
        name = cut("name", "$2::text"),
        phone_number = cut("phone_number", "$3::text"),
        phone_e164 = cut("phone_e164", "$14::text"),
        car_model = cut("car_model", "$4::text"),
        lead_url = cut("lead_url", "$5::text"),
        campaign = cut("campaign", "$6::text"),
        summary = cut("summary", "$17::text"),
    )
});

/// Binds a record's columns, `$1` to `$16` of both insert statements, to `$query`: one
/// list for both, whose queries differ in what they return (and so in type).
macro_rules! bind_lead {
    ($query:expr, $record:expr, $body_claim:expr) => {{
        let record: &LeadRecord = $record;
        let lead = &record.lead;
        $query
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
            .bind($body_claim)
            .bind(&record.identity.body_hash)
            .bind(crate::domain::phone::e164(&lead.phone_number))
            // A queued lead from before times were checked is held to the same range.
            .bind(
                lead.submitted_at
                    .and_then(crate::domain::lead::plausible)
                    .map(|seconds| seconds as f64),
            )
            .bind(lead.test.then_some("test"))
    }};
}

/// [`INSERT_LEAD`] bound to a record, claiming its body only when `body_claim` says so.
/// The one place its parameters are bound (the store runs it; `tools` hands it to the
/// benchmark's floor).
pub(crate) fn insert_query<'q>(
    record: &'q LeadRecord,
    body_claim: Option<&'q str>,
) -> QueryScalar<'q, Postgres, String, PgArguments> {
    bind_lead!(sqlx::query_scalar(INSERT_LEAD), record, body_claim)
}

/// [`INSERT_LEAD_RECORDING_EVENT`] bound to a record: the lead's row id, and its event's
/// outbox row (id, token, detail).
fn insert_recording_event_query<'q>(
    record: &'q LeadRecord,
    body_claim: Option<&'q str>,
    summary: &'q str,
) -> sqlx::query::QueryAs<'q, Postgres, (String, i64, String, String), PgArguments> {
    bind_lead!(
        sqlx::query_as(INSERT_LEAD_RECORDING_EVENT.as_str()),
        record,
        body_claim
    )
    .bind(summary)
}

/// A function's own outbox row, once EventBridge took it (the functions' role may not
/// delete any other).
const DELETE_PUBLISHED: &str = "SELECT public.lead_outbox_published($1, $2::uuid)";

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

/// The rows holding a source's own ids of leads (the unique key of the dedup migrations).
const FIND_BY_PARTNER_IDS: &str = r#"
SELECT partner_lead_id, id::text FROM public."mg-digital-leads"
WHERE platform = $1 AND partner_lead_id = ANY($2)"#;

/// A row for each key that has none, covered up to `$2`.
const ADD_CHECKPOINTS: &str = r#"
INSERT INTO public.lead_sync_watermarks (source, synced_until)
SELECT key, to_timestamp($2::float8) FROM unnest($1::text[]) AS key
ON CONFLICT (source) DO NOTHING"#;

/// The keys' rows, the one worked on longest ago first (ties in the keys' order).
const GET_CHECKPOINTS: &str = r#"
SELECT w.source,
       extract(epoch FROM w.synced_until)::int8,
       extract(epoch FROM w.pass_since)::int8,
       extract(epoch FROM w.pass_started)::int8,
       w.pass_after
FROM unnest($1::text[]) WITH ORDINALITY AS k(source, position)
JOIN public.lead_sync_watermarks w ON w.source = k.source
ORDER BY w.updated_at, k.position"#;

/// A listing's progress: the next page to store (or none: none in progress).
const SET_PASS: &str = r#"
UPDATE public.lead_sync_watermarks
SET pass_since = to_timestamp($2::float8), pass_started = to_timestamp($3::float8),
    pass_after = $4, updated_at = clock_timestamp()
WHERE source = $1"#;

/// A listing done: covered up to when it began, and none in progress.
const FINISH_PASS: &str = r#"
UPDATE public.lead_sync_watermarks
SET synced_until = greatest(synced_until, to_timestamp($2::float8)),
    pass_since = NULL, pass_started = NULL, pass_after = NULL,
    updated_at = clock_timestamp()
WHERE source = $1"#;

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
    Created(RowId),
    Duplicate(RowId),
}

impl Stored {
    pub fn id(&self) -> &RowId {
        match self {
            Self::Created(id) | Self::Duplicate(id) => id,
        }
    }
}

/// Where a scheduled pull is in one list (a form's leads), under its own key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub key: String,
    /// Unix time up to which the list is covered: the start of its last whole listing.
    pub synced_until: i64,
    /// A listing not finished yet.
    pub pass: Option<Pass>,
}

/// A row of [`GET_CHECKPOINTS`]: the key, `synced_until`, and the pass's since, started
/// and after.
type CheckpointRow = (String, i64, Option<i64>, Option<i64>, Option<String>);

/// A listing in progress: every page before `after` is stored or kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    /// The filter it lists with (Unix time), the same on every page.
    pub since: i64,
    /// When it began (Unix time): how far the list is covered once it is done.
    pub started: i64,
    /// The cursor of the next page to store.
    pub after: String,
}

/// The lead table, over the container's one connection, opened on first use.
pub struct Store {
    /// Where and how to connect; without credentials when they come from a secret.
    options: PgConnectOptions,
    /// The RDS-managed credentials secret, which RDS rotates.
    credentials: Option<Refreshing<DbCredentials>>,
    settings: StoreSettings,
    /// Where `Lead stored` events go; none: the outbox is not written.
    events: Option<Events>,
    slot: Mutex<Slot>,
}

// The connect options may carry a password: only where the store connects is printed.
impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("host", &self.options.get_host())
            .field("port", &self.options.get_port())
            .field("database", &self.options.get_database())
            .field("credentials", &self.credentials.is_some())
            .field("settings", &self.settings)
            .field("events", &self.events.as_ref().map(Events::bus))
            .finish_non_exhaustive()
    }
}

/// What a store keeps between requests.
#[derive(Default)]
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
            events: None,
            slot: Mutex::new(Slot::default()),
        }
    }

    /// Takes the username and password from `credentials`, read again when it changes.
    pub fn with_credentials(mut self, credentials: Refreshing<DbCredentials>) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Records every stored lead's `Lead stored` event in the outbox with its row, and
    /// publishes it to `events` right after (see [`Store::insert_within`]).
    pub fn with_events(mut self, events: Events) -> Self {
        self.events = Some(events);
        self
    }

    pub fn events(&self) -> Option<&Events> {
        self.events.as_ref()
    }

    /// The user this store logs in as: its secret's, else the connection options'.
    pub async fn user(&self) -> Result<String, StoreError> {
        Ok(match self.current_credentials().await? {
            Some(credentials) => credentials.username.clone(),
            None => self.options.get_username().to_owned(),
        })
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
    ///
    /// With events configured, a new lead's `Lead stored` event is recorded by the same
    /// statement, then published within [`PUBLISH_WAIT`](crate::infra::events::PUBLISH_WAIT) more and its outbox row
    /// deleted, when `limit` leaves time for that; an event EventBridge did not take
    /// (and, for a while after, every event: see
    /// [`REST_AFTER_FAILURE`](crate::infra::events::REST_AFTER_FAILURE)) only waits for
    /// the relay, and never fails the lead.
    pub async fn insert_within(
        &self,
        record: &LeadRecord,
        limit: Duration,
    ) -> Result<Stored, StoreError> {
        let started = Instant::now();
        let limit = limit.min(self.settings.operation_timeout);
        let mut slot = self.slot.lock().await;
        slot.awake()?;
        let result = tokio::time::timeout(limit, self.attempt(&mut slot.open, record))
            .await
            .unwrap_or_else(|_| Err(self.timed_out(limit)));
        slot.rest_after(&result, self.settings.breaker);
        let (stored, recorded) = result?;
        if let (Some(events), Some(recorded)) = (&self.events, recorded) {
            // The publish and the delete after it must fit in what the caller has left;
            // otherwise, or while EventBridge is failing, the relay publishes the event.
            let left = limit.saturating_sub(started.elapsed());
            if left >= events.wait() * 2 && !events.resting() {
                publish_now(&mut slot.open, events, recorded).await;
            }
        }
        Ok(stored)
    }

    /// Runs `work` on the open connection (opened now if there is none), holding it
    /// throughout: the relay's transactions, which wait on EventBridge between their
    /// statements.
    pub(crate) async fn with_connection<T>(
        &self,
        work: impl for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let mut slot = self.slot.lock().await;
        let connection = self.connection(&mut slot.open).await?;
        let result = work(connection).await;
        // A connection that failed without the server's answer (lost, timed out) is
        // not used again: the next call opens another.
        if let Err(StoreError::Unavailable(error)) = &result {
            if !matches!(error, sqlx::Error::Database(_)) {
                slot.open = None;
            }
        }
        result
    }

    /// The rows a source's own lead ids are stored in, by id, within `limit` (at most
    /// `operation_timeout`; resting like [`Store::insert_within`]). Lets leads that must
    /// be read from their platform first skip that read when they are stored already.
    pub async fn find_all(
        &self,
        platform: &str,
        partner_lead_ids: &[&str],
        limit: Duration,
    ) -> Result<HashMap<String, RowId>, StoreError> {
        if partner_lead_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let limit = limit.min(self.settings.operation_timeout);
        let mut slot = self.slot.lock().await;
        slot.awake()?;
        let find = Operation::Find {
            platform,
            partner_lead_ids,
        };
        let find = async {
            match self.on_connection(&mut slot.open, &find).await? {
                Done::Found(rows) => Ok(rows),
                Done::Stored(_) => Err(StoreError::Unsettled),
            }
        };
        let result = tokio::time::timeout(limit, find)
            .await
            .unwrap_or_else(|_| Err(self.timed_out(limit)));
        slot.rest_after(&result, self.settings.breaker);
        Ok(result?
            .into_iter()
            .map(|(partner_lead_id, id)| (partner_lead_id, RowId::from_text(id)))
            .collect())
    }

    /// One store of a lead on the open connection, or a new one. A timed-out call is
    /// dropped mid-query, and the connection it had taken with it.
    async fn attempt(
        &self,
        slot: &mut Option<Open>,
        record: &LeadRecord,
    ) -> Result<(Stored, Option<Recorded>), StoreError> {
        let insert = Operation::Insert {
            record,
            window: self.settings.dedup_window,
            record_event: self.events.is_some(),
        };
        match self.on_connection(slot, &insert).await? {
            Done::Stored(stored) => stored.ok_or(StoreError::Unsettled),
            Done::Found(_) => Err(StoreError::Unsettled),
        }
    }

    /// Runs `operation` on the open connection, or a new one. A connection the server
    /// closed while the container was idle (a restart, a failover, a terminated backend)
    /// is only noticed when used: the operation is tried once more on a new one. That is
    /// safe because a lead is stored once per id: a repeat of an insert that did commit
    /// finds its row.
    async fn on_connection(
        &self,
        slot: &mut Option<Open>,
        operation: &Operation<'_>,
    ) -> Result<Done, StoreError> {
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
            match operation.run(&mut open.connection).await {
                Ok(value) => {
                    *slot = Some(open);
                    return Ok(value);
                }
                Err(error) if is_connection_lost(&error) => {
                    if !retry {
                        return Err(classify(error));
                    }
                    tracing::info!(error = %error, "database connection closed while idle; reconnecting");
                }
                // The server answered: the connection is sound.
                Err(error @ sqlx::Error::Database(_)) => {
                    *slot = Some(open);
                    return Err(classify(error));
                }
                Err(error) => return Err(classify(error)),
            }
        }
        Err(StoreError::Unsettled)
    }

    /// What a wait of `limit` that ran out says: the database is unavailable only when
    /// `limit` was long enough for a healthy server to answer (its own statement bound,
    /// or the store's whole operation bound where that is shorter); a request whose
    /// budget left less has only run out of time.
    fn timed_out(&self, limit: Duration) -> StoreError {
        let enough = self
            .settings
            .statement_timeout
            .min(self.settings.operation_timeout);
        if limit >= enough {
            StoreError::Timeout(limit)
        } else {
            StoreError::OutOfTime(limit)
        }
    }

    /// Runs `read` on the open connection (opened now if there is none) within
    /// `operation_timeout`: the leads feed's reads, over the reader role's connection. A
    /// connection the server closed while idle is replaced and the read tried once more,
    /// which a read may be.
    pub(crate) async fn read<T>(
        &self,
        read: impl for<'c> Fn(&'c mut PgConnection) -> BoxFuture<'c, Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        let limit = self.settings.operation_timeout;
        let mut slot = self.slot.lock().await;
        let slot = &mut slot.open;
        let work = async {
            let credentials = self.current_credentials().await?;
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
                match read(&mut open.connection).await {
                    Ok(value) => {
                        *slot = Some(open);
                        return Ok(value);
                    }
                    Err(error) if is_connection_lost(&error) => {
                        if !retry {
                            return Err(classify(error));
                        }
                        tracing::info!(error = %error, "database connection closed while idle; reconnecting");
                    }
                    Err(error @ sqlx::Error::Database(_)) => {
                        *slot = Some(open);
                        return Err(classify(error));
                    }
                    Err(error) => return Err(classify(error)),
                }
            }
            Err(StoreError::Unsettled)
        };
        tokio::time::timeout(limit, work)
            .await
            .unwrap_or_else(|_| Err(self.timed_out(limit)))
    }

    /// Lets the role `credentials` names log in with its password (`migrate` does this for
    /// the functions' own role, from that role's secret, after every run).
    pub async fn grant_login(
        &self,
        credentials: &DbCredentials,
    ) -> Result<(), crate::error::GrantError> {
        // The password's verifier, never the password: statements may be written to the
        // server's log and shown in its statistics views.
        let verifier = crate::infra::scram::verifier(&credentials.password)?;
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
        // Roles belong to the whole server: another session changing the same role at the
        // same moment (a second migrate) makes the server refuse one of the two with
        // "tuple concurrently updated"; that one is simply tried again.
        let mut attempt = 0;
        loop {
            match connection.execute(statement.as_str()).await {
                Ok(_) => return Ok(()),
                Err(error) if attempt < GRANT_ATTEMPTS && concurrently_updated(&error) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
                }
                Err(error) => return Err(classify(error).into()),
            }
        }
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

    /// The checkpoints of `keys`, each added covered up to `default_until` (Unix time)
    /// if it has none yet; the one worked on longest ago first, so that a run short of
    /// time starts where the last one did not get to.
    pub async fn checkpoints(
        &self,
        keys: &[String],
        default_until: i64,
    ) -> Result<Vec<Checkpoint>, StoreError> {
        let mut slot = self.slot.lock().await;
        let connection = self.connection(&mut slot.open).await?;
        sqlx::query(ADD_CHECKPOINTS)
            .bind(keys)
            .bind(default_until as f64)
            .execute(&mut *connection)
            .await
            .map_err(classify)?;
        let rows: Vec<CheckpointRow> = sqlx::query_as(GET_CHECKPOINTS)
            .bind(keys)
            .fetch_all(&mut *connection)
            .await
            .map_err(classify)?;
        Ok(rows
            .into_iter()
            .map(|(key, synced_until, since, started, after)| {
                let pass = match (since, started, after) {
                    (Some(since), Some(started), Some(after)) => Some(Pass {
                        since,
                        started,
                        after,
                    }),
                    _ => None,
                };
                Checkpoint {
                    key,
                    synced_until,
                    pass,
                }
            })
            .collect())
    }

    /// Records a listing's progress under `key` (`None`: none in progress), and that the
    /// key was worked on now.
    pub async fn set_pass(&self, key: &str, pass: Option<&Pass>) -> Result<(), StoreError> {
        let mut slot = self.slot.lock().await;
        let connection = self.connection(&mut slot.open).await?;
        sqlx::query(SET_PASS)
            .bind(key)
            .bind(pass.map(|pass| pass.since as f64))
            .bind(pass.map(|pass| pass.started as f64))
            .bind(pass.map(|pass| pass.after.as_str()))
            .execute(&mut *connection)
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Records that a listing under `key` that began at `started` (Unix time) is done:
    /// the key is covered up to then (never moving back), and no listing is in progress.
    pub async fn finish_pass(&self, key: &str, started: i64) -> Result<(), StoreError> {
        let mut slot = self.slot.lock().await;
        let connection = self.connection(&mut slot.open).await?;
        sqlx::query(FINISH_PASS)
            .bind(key)
            .bind(started as f64)
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
            // prepared statements sqlx uses: see docs/operations.md, RDS Proxy.)
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

/// Publishes a lead's event right after its commit, within the events' wait
/// ([`PUBLISH_WAIT`](crate::infra::events::PUBLISH_WAIT) unless a test sets another), and
/// deletes its outbox row once EventBridge took it, within as long again. Anything short of that only
/// logs: the row stays, and the relay publishes it.
async fn publish_now(slot: &mut Option<Open>, events: &Events, recorded: Recorded) {
    let published = events
        .publish(std::slice::from_ref(&recorded), events.wait())
        .await;
    if let Some(error) = published.error {
        events.rest();
        tracing::warn!(error = %error, outbox = recorded.id, "lead event not published; the relay publishes it, and the next ones");
        return;
    }
    if published.taken.is_empty() {
        // Refused (the relay sets it aside) or not answered: the row stays for the relay.
        return;
    }
    // The connection goes with a delete that runs out of time, as with an insert.
    let Some(mut open) = slot.take() else {
        return;
    };
    // The writer deletes only its own row, by the token its insert drew.
    let delete = sqlx::query(DELETE_PUBLISHED)
        .bind(recorded.id)
        .bind(&recorded.token)
        .execute(&mut open.connection);
    match tokio::time::timeout(events.wait(), delete).await {
        Ok(Ok(_)) => *slot = Some(open),
        Ok(Err(error)) => {
            if !is_connection_lost(&error) {
                *slot = Some(open);
            }
            tracing::warn!(error = %error, outbox = recorded.id, "published lead event not deleted; the relay publishes it again");
        }
        Err(_) => tracing::warn!(
            outbox = recorded.id,
            "published lead event not deleted in time; the relay publishes it again"
        ),
    }
}

/// What the store does on its connection (see [`Store::on_connection`]).
enum Operation<'a> {
    /// Stores a lead once, within the retry window of its body.
    Insert {
        record: &'a LeadRecord,
        window: Duration,
        /// Whether a new lead's event is recorded in the outbox.
        record_event: bool,
    },
    /// The rows of a source's own lead ids.
    Find {
        platform: &'a str,
        partner_lead_ids: &'a [&'a str],
    },
}

/// What an [`Operation`] gave.
enum Done {
    /// The lead, and its event's outbox row when it was new and events are recorded.
    Stored(Option<(Stored, Option<Recorded>)>),
    /// Pairs of a source's own lead id and the row's id.
    Found(Vec<(String, String)>),
}

impl Operation<'_> {
    async fn run(&self, connection: &mut PgConnection) -> Result<Done, sqlx::Error> {
        match *self {
            Self::Insert {
                record,
                window,
                record_event,
            } => insert_fitting(connection, record, window, record_event)
                .await
                .map(Done::Stored),
            Self::Find {
                platform,
                partner_lead_ids,
            } => sqlx::query_as(FIND_BY_PARTNER_IDS)
                .bind(platform)
                .bind(partner_lead_ids)
                .fetch_all(connection)
                .await
                .map(Done::Found),
        }
    }
}

/// Stores a lead once, made to fit when the table cannot hold a value as it is, rather
/// than the lead refused.
async fn insert_fitting(
    connection: &mut PgConnection,
    record: &LeadRecord,
    window: Duration,
    record_event: bool,
) -> Result<Option<(Stored, Option<Recorded>)>, sqlx::Error> {
    let error = match insert_once(connection, record, window, record_event).await {
        Err(error) => error,
        stored => return stored,
    };
    let fitted = match sqlstate(&error).as_deref() {
        Some(STRING_TOO_LONG) => fit(record, &column_widths(connection).await?),
        Some(UNTRANSLATABLE | NOT_IN_REPERTOIRE) => without_nul(record),
        _ => None,
    };
    match fitted {
        Some(fitted) => insert_once(connection, &fitted, window, record_event).await,
        None => Err(error),
    }
}

/// How often a role change the server refused as concurrently updated is tried again.
const GRANT_ATTEMPTS: u64 = 10;

/// The server's refusal of a catalog row another session was changing at the same time
/// (internal error XX000).
fn concurrently_updated(error: &sqlx::Error) -> bool {
    error.as_database_error().is_some_and(|error| {
        error.code().as_deref() == Some("XX000") && error.message().contains("concurrently updated")
    })
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

/// The connection itself failed, or the server ended it (rather than refusing a
/// statement): SQLSTATE class 08 (connection exception), and 57P01 to 57P03, which a
/// server shutting down, restarting or terminating the backend sends on the way out.
fn is_connection_lost(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(_) => sqlstate(error).is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_str(), "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

/// The SQLSTATE of a database error.
fn sqlstate(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(database) => database.code().map(|code| code.into_owned()),
        _ => None,
    }
}

/// PostgreSQL's `string_data_right_truncation`: a value longer than its column.
const STRING_TOO_LONG: &str = "22001";

/// PostgreSQL's `untranslatable_character` and `character_not_in_repertoire`: what
/// text and jsonb answer to U+0000, which neither can hold.
const UNTRANSLATABLE: &str = "22P05";
const NOT_IN_REPERTOIRE: &str = "22021";

/// The record with every U+0000 in its values and its payload replaced by U+FFFD (the
/// replacement character), or `None` when it holds none. A partner's body never gets
/// here with one (it is refused as invalid JSON); a platform's lead read from its API may.
fn without_nul(record: &LeadRecord) -> Option<LeadRecord> {
    fn clean(text: &mut String) -> bool {
        let found = text.contains('\0');
        if found {
            *text = text.replace('\0', "\u{FFFD}");
        }
        found
    }
    fn clean_value(value: &mut serde_json::Value) -> bool {
        match value {
            serde_json::Value::String(text) => clean(text),
            serde_json::Value::Array(items) => items
                .iter_mut()
                .fold(false, |found, item| clean_value(item) | found),
            serde_json::Value::Object(fields) => {
                let keys: Vec<String> = fields
                    .keys()
                    .filter(|key| key.contains('\0'))
                    .cloned()
                    .collect();
                let mut found = !keys.is_empty();
                for key in keys {
                    if let Some(item) = fields.remove(&key) {
                        fields.insert(key.replace('\0', "\u{FFFD}"), item);
                    }
                }
                for item in fields.values_mut() {
                    found |= clean_value(item);
                }
                found
            }
            _ => false,
        }
    }
    let mut cleaned = record.clone();
    let lead = &mut cleaned.lead;
    let mut found = clean(&mut lead.name) | clean(&mut lead.phone_number);
    for value in [&mut lead.car_model, &mut lead.lead_url, &mut lead.campaign]
        .into_iter()
        .flatten()
    {
        found |= clean(value);
    }
    if let Ok(mut payload) = serde_json::from_str::<serde_json::Value>(&record.payload) {
        if clean_value(&mut payload) {
            cleaned.payload = payload.to_string();
            found = true;
        }
    }
    found.then_some(cleaned)
}

/// The character widths of the lead table's bounded text columns (`varchar(n)`,
/// `char(n)`), from the catalog. Only read after a value did not fit, so the insert of
/// every other lead costs nothing for it.
const COLUMN_WIDTHS: &str = r#"
SELECT attname::text, (atttypmod - 4)::int4
FROM pg_attribute
WHERE attrelid = to_regclass('public."mg-digital-leads"')
  AND attnum > 0 AND NOT attisdropped
  AND atttypid IN ('varchar'::regtype, 'bpchar'::regtype) AND atttypmod > 4"#;

async fn column_widths(connection: &mut PgConnection) -> Result<Vec<(String, usize)>, sqlx::Error> {
    let widths: Vec<(String, i32)> = sqlx::query_as(COLUMN_WIDTHS).fetch_all(connection).await?;
    Ok(widths
        .into_iter()
        .map(|(column, width)| (column, usize::try_from(width).unwrap_or(0)))
        .collect())
}

/// The record with each mapped value cut to its column's width, or `None` when every
/// value already fits (the refusal was not this record's values). The payload is not
/// cut: it keeps every value whole.
fn fit(record: &LeadRecord, widths: &[(String, usize)]) -> Option<LeadRecord> {
    let mut fitted = record.clone();
    let mut cut = false;
    let mut fit_to = |value: &mut String, column: &str| {
        let Some((_, width)) = widths.iter().find(|(name, _)| name == column) else {
            return;
        };
        if let Some((end, _)) = value.char_indices().nth(*width) {
            value.truncate(end);
            cut = true;
        }
    };
    let lead = &mut fitted.lead;
    fit_to(&mut lead.name, "name");
    fit_to(&mut lead.phone_number, "phone_number");
    for (value, column) in [
        (&mut lead.car_model, "car_model"),
        (&mut lead.lead_url, "lead_url"),
        (&mut lead.campaign, "campaign"),
    ] {
        if let Some(value) = value {
            fit_to(value, column);
        }
    }
    fit_to(&mut fitted.request_id, "request_id");
    cut.then_some(fitted)
}

/// Stores a lead once on `connection`: inserts it, or finds the row it repeats; `None`
/// when a conflicting row kept changing under it.
async fn insert_once(
    connection: &mut PgConnection,
    record: &LeadRecord,
    window: Duration,
    record_event: bool,
) -> Result<Option<(Stored, Option<Recorded>)>, sqlx::Error> {
    let received_ms = record.received_at_ms() as f64;
    let window_ms = window.as_millis() as f64;
    let platform = record.source.platform;
    let mut body_claim = record.identity.body_hash.as_deref();
    let summary = record_event.then(|| crate::domain::event::summary(record));
    // A conflict is settled in at most two more rounds: an expired claim released (or
    // a newer one stepped around), then the insert again.
    for _ in 0..3 {
        let inserted = match &summary {
            Some(summary) => insert_recording_event_query(record, body_claim, summary)
                .fetch_optional(&mut *connection)
                .await?
                .map(|(id, event, token, detail)| {
                    (
                        id,
                        Some(Recorded {
                            id: event,
                            detail,
                            token: Some(token),
                        }),
                    )
                }),
            None => insert_query(record, body_claim)
                .fetch_optional(&mut *connection)
                .await?
                .map(|id| (id, None)),
        };
        if let Some((id, recorded)) = inserted {
            return Ok(Some((Stored::Created(RowId::from_text(id)), recorded)));
        }
        let existing: Option<(String, bool, f64)> = sqlx::query_as(FIND_EXISTING)
            .bind(platform)
            .bind(&record.identity.partner_lead_id)
            .bind(&record.identity.idempotency_key)
            .bind(body_claim)
            .bind(received_ms)
            .bind(&record.identity.body_hash)
            .fetch_optional(&mut *connection)
            .await?;
        match existing {
            // Deleted since the conflict: try again.
            None => {}
            Some((id, same, age_ms)) if same || age_ms.abs() < window_ms => {
                return Ok(Some((Stored::Duplicate(RowId::from_text(id)), None)));
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
    use super::*;

    #[test]
    fn a_store_never_prints_its_password() {
        let options: PgConnectOptions =
            "postgres://lead_writer:the-db-password@db.internal:5432/crm"
                .parse()
                .unwrap();
        let printed = format!("{:?}", Store::new(options, StoreSettings::default()));
        assert!(!printed.contains("the-db-password"), "{printed}");
        assert!(printed.contains("db.internal"), "{printed}");
    }

    #[test]
    fn ids_render_as_numbers_when_numeric() {
        assert_eq!(RowId::from_text("42".into()), RowId::Number(42));
        let uuid = "0b6c9f2e-0000-4000-8000-000000000000".to_owned();
        assert_eq!(RowId::from_text(uuid.clone()), RowId::Text(uuid));
        assert_eq!(serde_json::to_string(&RowId::Number(7)).unwrap(), "7");
    }
}
