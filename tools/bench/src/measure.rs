//! The measurements: cold starts, warm runs of the function, and the database floors (the
//! same INSERT on one loopback connection, no function, committed durably or not).

use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection;
use stats::Latencies;

use product::Leads;

use crate::function::{self, EventTemplate, Function, Spec};
use crate::runtime_api::RuntimeApi;
use crate::Error;

/// How many invocations (or INSERTs) one latency run makes.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RunSize {
    pub warmup: usize,
    pub measured: usize,
}

/// One cold start: a fresh process with a request already waiting.
#[derive(Debug, Clone, Serialize)]
pub struct ColdStart {
    /// Spawn → first `GET /next`.
    pub ready_ms: f64,
    /// Spawn → the first response received (includes the first database connection).
    pub first_response_ms: f64,
    /// `VmHWM` right after the first response.
    pub peak_rss_bytes: u64,
    #[serde(skip)]
    pub id: String,
}

/// One run of many invocations (function) or INSERTs (floor).
#[derive(Debug, Clone, Serialize)]
pub struct LatencyRun {
    pub p50_us: f64,
    pub p99_us: f64,
    pub mean_us: f64,
    pub max_us: f64,
    pub samples: usize,
    /// The function's `VmHWM` after the run; none for the floor.
    pub peak_rss_bytes: Option<u64>,
    /// Every row the run inserted (warm-up included), for the final check.
    #[serde(skip)]
    pub ids: Vec<String>,
}

impl LatencyRun {
    fn from_samples(samples: Vec<Duration>, ids: Vec<String>, rss: Option<u64>) -> Self {
        let micros = |d: Duration| d.as_secs_f64() * 1e6;
        let summary = Latencies::of(samples);
        Self {
            p50_us: micros(summary.p50),
            p99_us: micros(summary.p99),
            mean_us: micros(summary.mean),
            max_us: micros(summary.max),
            samples: summary.count,
            peak_rss_bytes: rss,
            ids,
        }
    }
}

/// Spawns the function with one event waiting, times it to ready and to the first
/// response, checks the response, and kills it.
pub async fn cold_start(
    spec: &Spec,
    events: &EventTemplate,
    message: &str,
) -> Result<ColdStart, Error> {
    let api = RuntimeApi::start(&spec.name).await?;
    let ticket = api.submit(events.event(function::next_sequence()));
    let mut function = Function::spawn(spec, api)?;
    let ready = function.ready().await?;
    let completion = function.wait(ticket).await?;
    let id = function::created_id(&completion.outcome, message)?;
    let peak_rss_bytes = function.peak_rss()?;
    let spawned = function.spawned;
    function.stop().await?;
    Ok(ColdStart {
        ready_ms: ms(ready.duration_since(spawned)),
        first_response_ms: ms(completion.completed.duration_since(spawned)),
        peak_rss_bytes,
        id,
    })
}

/// One warm process: `size.warmup` invocations, then `size.measured` timed ones, each from
/// the event handed out to the response received. Every response must be the 201.
///
/// Each invocation is followed by one of `floor`'s INSERTs, timed alike, so that the
/// function and its floor meet the disk in the same state: a virtual disk's flush time
/// can change many-fold from one minute to the next, which would make a ratio of two runs
/// taken one after the other mean nothing. (It also spaces the invocations as a floor's
/// INSERT spaces them in every run, rather than back to back.)
pub async fn warm_run(
    spec: &Spec,
    events: &EventTemplate,
    message: &str,
    size: RunSize,
    floor: &mut Floor<'_>,
) -> Result<LatencyRun, Error> {
    let api = RuntimeApi::start(&spec.name).await?;
    let mut function = Function::spawn(spec, api)?;
    function.ready().await?;
    let mut ids = Vec::with_capacity(size.warmup + size.measured);
    let mut samples = Vec::with_capacity(size.measured);
    for n in 0..size.warmup + size.measured {
        let timed = n >= size.warmup;
        let completion = function
            .invoke(events.event(function::next_sequence()))
            .await?;
        let id = function::created_id(&completion.outcome, message)
            .map_err(|error| format!("invocation {n} ({}): {error}", completion.request_id))?;
        ids.push(id);
        if timed {
            samples.push(completion.latency());
        }
        floor.insert(timed).await?;
    }
    let rss = function.peak_rss()?;
    function.stop().await?;
    Ok(LatencyRun::from_samples(samples, ids, Some(rss)))
}

/// How a floor's session commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// As the server commits, which the bench requires to be durable (as in production):
    /// each commit waits for its WAL to be flushed to disk.
    Durable,
    /// `synchronous_commit = off` for the floor's session alone: the commit returns before
    /// its WAL is flushed.
    NonDurable,
}

/// A floor: the store's first INSERT for a lead (`product::Lead::insert`) on one
/// connection, no function. Each insert is a distinct new lead with a deduplication key of
/// its own, as each invocation is, made by the function's own steps before the clock
/// starts.
pub struct Floor<'a> {
    connection: PgConnection,
    leads: &'a Leads,
    events: &'a EventTemplate,
    ids: Vec<String>,
    samples: Vec<Duration>,
}

impl<'a> Floor<'a> {
    pub async fn connect(
        options: &PgConnectOptions,
        commit: Commit,
        leads: &'a Leads,
        events: &'a EventTemplate,
    ) -> Result<Self, Error> {
        let options = match commit {
            Commit::Durable => options.clone(),
            Commit::NonDurable => options.clone().options([("synchronous_commit", "off")]),
        };
        let mut connection = PgConnection::connect_with(&options).await?;
        // A floor measured with another commit than it claims would be worse than none.
        let setting = synchronous_commit(&mut connection).await?;
        if (setting == "off") != (commit == Commit::NonDurable) {
            return Err(format!(
                "the {commit:?} floor's session has synchronous_commit = {setting}"
            )
            .into());
        }
        Ok(Self {
            connection,
            leads,
            events,
            ids: Vec::new(),
            samples: Vec::new(),
        })
    }

    /// One INSERT of a new lead; its time is kept when `timed`.
    async fn insert(&mut self, timed: bool) -> Result<(), Error> {
        let sequence = function::next_sequence();
        let request_id = format!("bench-floor-{sequence:012}");
        let lead = self
            .leads
            .lead(&self.events.body(sequence), &request_id)
            .map_err(|error| format!("the floor's {error}"))?;
        if lead.dedup_key().is_none() {
            return Err("the floor's lead has no deduplication key: its insert would not be the store-once one".into());
        }
        let started = Instant::now();
        let id = lead.insert(&mut self.connection).await?;
        let elapsed = started.elapsed();
        let id =
            id.ok_or("the floor's lead was taken for a duplicate: rows left from an earlier run?")?;
        self.ids.push(id);
        if timed {
            self.samples.push(elapsed);
        }
        Ok(())
    }

    /// Closes the connection; the INSERTs' figures.
    pub async fn finish(self) -> Result<LatencyRun, Error> {
        self.connection.close().await?;
        Ok(LatencyRun::from_samples(self.samples, self.ids, None))
    }
}

/// `url` with its sessions at `synchronous_commit = off`, checked on a session opened
/// from it by the parser the function uses.
pub async fn non_durable_url(url: &str) -> Result<String, Error> {
    let separator = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{separator}options=-c%20synchronous_commit%3Doff");
    let mut connection = PgConnection::connect_with(&PgConnectOptions::from_str(&url)?).await?;
    let setting = synchronous_commit(&mut connection).await?;
    connection.close().await?;
    if setting != "off" {
        // The URL may hold a password: not in the message.
        return Err(format!(
            "DATABASE_URL with synchronous_commit=off in its options gave a session with \
             synchronous_commit = {setting}"
        )
        .into());
    }
    Ok(url)
}

async fn synchronous_commit(connection: &mut PgConnection) -> Result<String, sqlx::Error> {
    sqlx::query_scalar("SELECT current_setting('synchronous_commit')")
        .fetch_one(connection)
        .await
}

/// The server's version and how it commits, as a session opened with `options` (the
/// function's database URL) sees them.
#[derive(Debug, Clone, Serialize)]
pub struct Server {
    pub version: String,
    pub fsync: String,
    pub synchronous_commit: String,
    pub full_page_writes: String,
    pub wal_sync_method: String,
}

impl Server {
    pub async fn read(options: &PgConnectOptions) -> Result<Self, Error> {
        let mut connection = PgConnection::connect_with(options)
            .await
            .map_err(|error| format!("cannot reach the database: {error}"))?;
        let (version, fsync, synchronous_commit, full_page_writes, wal_sync_method) =
            sqlx::query_as(
                "SELECT current_setting('server_version'), current_setting('fsync'), \
                        current_setting('synchronous_commit'), current_setting('full_page_writes'), \
                        current_setting('wal_sync_method')",
            )
            .fetch_one(&mut connection)
            .await?;
        connection.close().await?;
        Ok(Self {
            version,
            fsync,
            synchronous_commit,
            full_page_writes,
            wal_sync_method,
        })
    }

    /// Whether a commit of the function's session survives a crash of the server: its WAL
    /// is flushed before the commit returns. (`remote_write` and the like also flush
    /// locally first; only `off` does not.)
    pub fn commits_durably(&self) -> bool {
        self.fsync == "on" && self.synchronous_commit != "off"
    }

    /// `fsync on, synchronous_commit on, …`.
    pub fn commits(&self) -> String {
        format!(
            "fsync {}, synchronous_commit {}, full_page_writes {}, wal_sync_method {}",
            self.fsync, self.synchronous_commit, self.full_page_writes, self.wal_sync_method
        )
    }
}

/// Checks that rows `a` and `b` hold the same mapped columns and the same kinds of
/// deduplication keys (their ids and bodies differ by design).
pub async fn same_lead_columns(options: &PgConnectOptions, a: &str, b: &str) -> Result<(), Error> {
    let mut connection = PgConnection::connect_with(options).await?;
    let rows: Vec<(String, Vec<Option<String>>)> = sqlx::query_as(
        r#"SELECT id::text, ARRAY[platform, name, phone_number, car_model, lead_url, campaign,
                  (partner_lead_id IS NULL)::text, (idempotency_key IS NULL)::text,
                  (body_sha256 IS NULL)::text, (request_id IS NULL)::text]
           FROM public."mg-digital-leads" WHERE id::text IN ($1, $2)"#,
    )
    .bind(a)
    .bind(b)
    .fetch_all(&mut connection)
    .await?;
    connection.close().await?;
    match rows.as_slice() {
        [(_, first), (_, second)] if first == second => Ok(()),
        _ => Err(format!(
            "the floor's row does not hold what the function's row holds (ids {a}, {b}): {rows:?}"
        )
        .into()),
    }
}

/// How many of `ids` are rows of `platform`.
pub async fn count_rows(
    options: &PgConnectOptions,
    ids: &[String],
    platform: &str,
) -> Result<i64, Error> {
    let mut connection = PgConnection::connect_with(options).await?;
    let count: i64 = sqlx::query_scalar(
        r#"SELECT count(*) FROM public."mg-digital-leads" WHERE id::text = ANY($1) AND platform = $2"#,
    )
    .bind(ids)
    .bind(platform)
    .fetch_one(&mut connection)
    .await?;
    connection.close().await?;
    Ok(count)
}

/// Removes the bench's rows.
pub async fn delete_rows(options: &PgConnectOptions, ids: &[String]) -> Result<u64, Error> {
    let mut connection = PgConnection::connect_with(options).await?;
    let deleted = sqlx::query(r#"DELETE FROM public."mg-digital-leads" WHERE id::text = ANY($1)"#)
        .bind(ids)
        .execute(&mut connection)
        .await?
        .rows_affected();
    connection.close().await?;
    Ok(deleted)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_summarise_their_samples() {
        let samples = (1..=200).rev().map(Duration::from_micros).collect();
        let run = LatencyRun::from_samples(samples, vec![], None);
        assert_eq!((run.p50_us, run.p99_us, run.max_us), (100.0, 198.0, 200.0));
        assert_eq!(run.samples, 200);
        assert!((run.mean_us - 100.5).abs() < 1e-9);
    }
}
