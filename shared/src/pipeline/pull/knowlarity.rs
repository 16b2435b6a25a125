//! Knowlarity's scheduled pull: every run reads the account's call log from its watermark
//! less an overlap up to when the listing began, page by page to the end, and keeps every
//! call as a lead through the same declaration and dedup as the push (the call's `uuid`),
//! so a call no push reported lands within one period and a call that came both ways is
//! stored once.
//!
//! Each call's fate is its own (stored or found stored, queued while the database is
//! unavailable, or dead-lettered when it can never be a row as it is, by the source
//! functions' [`Keeper`]). Progress is kept in the database page by page
//! (`store::Pass`: the window and the offset of the next page), so a window too long for
//! one run (a backlog after an outage) is finished over several, each going on where the
//! last stopped; the window's bounds stay fixed until it is done, so offsets keep meaning
//! the same calls. The watermark moves to the window's end only when the whole window was
//! listed and every call in it kept; a page with a call neither stored nor kept is never
//! passed, and the next run reads it again (what it stored comes back as duplicates).

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value};

use crate::domain::lead;
use crate::domain::lead::dedup::Identity;
use crate::domain::lead::record::{self, LeadRecord};
use crate::domain::mask;
use crate::domain::source::{Source, KNOWLARITY};
use crate::error::ConfigError;
use crate::infra::buffer::Buffer;
use crate::infra::config::intake::KnowlarityPullConfig;
use crate::infra::config::DEFAULT_REQUEST_BUDGET;
use crate::infra::knowlarity::{CallLog, Knowlarity, KnowlarityError, KnowlarityKeys, MAX_PAGES};
use crate::infra::parts::Parts;
use crate::infra::store::{Pass, Store, Stored};
use crate::pipeline::keep::Keeper;
use crate::pipeline::outcome::{Accepted, Outcome, Postponed};
use crate::pipeline::pull::{Pull, PullError, Report};

/// How much of the invocation's time a run keeps for the page it is on: it starts no new
/// page with less left.
pub const DEFAULT_RESERVE: Duration = Duration::from_secs(15);

/// The log label of a run whose keys Knowlarity refused (401/403): a revoked or wrong
/// key, which no retry mends, so its metric filter alarms at once.
pub const KEY_REFUSED: &str = "key_refused";

/// What became of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Stored,
    Duplicate,
    Queued,
    DeadLettered,
    /// Not a lead: no customer number.
    Skipped,
    Unkept,
}

fn count(report: &mut Report, fate: Fate) {
    report.leads += 1;
    match fate {
        Fate::Stored => report.stored += 1,
        Fate::Duplicate => report.duplicates += 1,
        Fate::Queued => report.queued += 1,
        Fate::DeadLettered => report.dead_lettered += 1,
        Fate::Skipped => {}
        Fate::Unkept => report.unkept += 1,
    }
}

/// The pull's state, built once per container.
#[derive(Debug)]
pub struct KnowlarityPull {
    knowlarity: Knowlarity,
    keeper: Keeper,
    overlap: Duration,
    reserve: Duration,
}

impl KnowlarityPull {
    pub fn new(
        source: &'static Source,
        knowlarity: Knowlarity,
        store: Store,
        overlap: Duration,
    ) -> Self {
        Self {
            knowlarity,
            keeper: Keeper {
                source,
                store,
                buffer: None,
                budget: DEFAULT_REQUEST_BUDGET,
            },
            overlap,
            reserve: DEFAULT_RESERVE,
        }
    }

    /// Queues a call on `buffer` while the database is unavailable, and sends one that
    /// can never be stored as it is to its dead-letter queue.
    pub fn with_buffer(mut self, buffer: Buffer) -> Self {
        self.keeper.buffer = Some(buffer);
        self
    }

    /// Starts no new page with less than `reserve` left before the deadline.
    pub fn with_reserve(mut self, reserve: Duration) -> Self {
        self.reserve = reserve;
        self
    }

    /// The pull the environment configures: Knowlarity's keys and call log, the
    /// database, the buffer and its dead-letter queue, `KNOWLARITY_SYNC_OVERLAP_SECONDS`.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = KnowlarityPullConfig::from_env()?;
        let parts = Parts::load(config.needs_aws(), config.base.secrets_ttl).await;
        let keys = parts.setting(
            config.keys,
            "KNOWLARITY_SECRET_ARN",
            KnowlarityKeys::from_secret,
        )?;
        let knowlarity = Knowlarity::new(keys, CallLog::new(config.api));
        let (store, buffer) = parts.keeping(config.base.database, config.keeping)?;
        let pull = Self::new(&KNOWLARITY, knowlarity, store, config.overlap)
            .with_budget(config.request_budget);
        Ok(match buffer {
            Some(buffer) => pull.with_buffer(buffer),
            None => pull,
        })
    }

    /// Bounds the keeping of each call to `budget` (insert and queueing together).
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.keeper.budget = budget;
        self
    }

    /// The watermark's key in the database.
    fn watermark_key(&self) -> &'static str {
        self.keeper.source.platform
    }

    /// One run: the listing in progress from where the last run left it, or a new one of
    /// the window from the watermark less the overlap (the first time, from the overlap
    /// before now) to now; until `deadline` less the reserve.
    ///
    /// A listing short of time is left for the next run (`unfinished_lists`). Fails with
    /// [`PullError::Incomplete`] when a call was neither stored nor kept, and with the call
    /// log's error when it gave no page; in both cases after keeping what it could, with
    /// its progress recorded up to the last page whose calls were all kept, and the
    /// watermark where it was.
    pub async fn run(&self, request_id: &str, deadline: SystemTime) -> Result<Report, PullError> {
        let slug = self.keeper.source.slug;
        let started = SystemTime::now();
        let now = (record::unix_ms(started) / 1000) as i64;
        let keys = self.knowlarity.keys().await?;
        let key = self.watermark_key();
        let checkpoint = self
            .keeper
            .store
            .checkpoints(&[key.to_owned()], now)
            .await?
            .into_iter()
            .next();
        let pass = match checkpoint {
            Some(checkpoint) => match checkpoint.pass {
                Some(pass) => pass,
                None => Pass {
                    since: checkpoint.synced_until - self.overlap.as_secs() as i64,
                    started: now,
                    after: String::from("0"),
                },
            },
            None => Pass {
                since: now - self.overlap.as_secs() as i64,
                started: now,
                after: String::from("0"),
            },
        };
        let mut offset: usize = pass.after.parse().unwrap_or(0);
        let mut report = Report {
            since: pass.since,
            lists: 1,
            ..Report::default()
        };
        let call_log = self.knowlarity.call_log();
        // Progress is recorded only while every call before it is kept.
        let mut kept_so_far = true;
        loop {
            if report.pages > 0 && !self.time_left(deadline) {
                tracing::warn!(
                    source = slug,
                    offset,
                    "out of time; the next run goes on from the last page whose calls were all kept"
                );
                report.unfinished_lists += 1;
                break;
            }
            if report.pages >= MAX_PAGES {
                tracing::warn!(
                    source = slug,
                    offset,
                    "{MAX_PAGES} pages in one run; the next run goes on from here"
                );
                report.unfinished_lists += 1;
                break;
            }
            let page = match call_log.page(&keys, pass.since, pass.started, offset).await {
                Ok(page) => page,
                Err(error) => {
                    self.log_failure(&error, &report);
                    return Err(error.into());
                }
            };
            report.pages += 1;
            let listed = page.calls.len();
            let unkept_before = report.unkept;
            let stored = self.stored(&page.calls).await;
            for call in page.calls {
                let fate = match lead::first_value(&call, self.keeper.source.partner_lead_id) {
                    Some(uuid) if stored.contains(&uuid) => Fate::Duplicate,
                    _ => self.keep(request_id, started, call).await,
                };
                count(&mut report, fate);
            }
            offset += listed;
            kept_so_far &= report.unkept == unkept_before;
            let done = listed == 0 || offset >= page.total_count;
            if kept_so_far && !done {
                let progress = Pass {
                    after: offset.to_string(),
                    ..pass.clone()
                };
                self.keeper.store.set_pass(key, Some(&progress)).await?;
            }
            if done {
                break;
            }
        }
        if report.unkept > 0 {
            return Err(PullError::Incomplete(report));
        }
        if report.unfinished_lists == 0 {
            self.keeper.store.finish_pass(key, pass.started).await?;
        }
        Ok(report)
    }

    /// The uuids of a page's calls already stored, in one query: the overlap re-reads
    /// hours of calls every run, and those cost no insert. A database that cannot say is
    /// asked again, call by call, by `keep`.
    async fn stored(&self, calls: &[Map<String, Value>]) -> HashSet<String> {
        let source = self.keeper.source;
        let uuids: Vec<String> = calls
            .iter()
            .filter_map(|call| lead::first_value(call, source.partner_lead_id))
            .collect();
        let uuids: Vec<&str> = uuids.iter().map(String::as_str).collect();
        self.keeper
            .store
            .find_all(source.platform, &uuids, self.keeper.budget)
            .await
            .map(|found| found.into_keys().collect())
            .unwrap_or_default()
    }

    /// Whether more than the reserve is left before the deadline.
    fn time_left(&self, deadline: SystemTime) -> bool {
        deadline
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
            > self.reserve
    }

    /// A call log that gave no page: refused keys under their own label (an alarm at
    /// once), anything else as the run's failure (the schedule's edge logs it).
    fn log_failure(&self, error: &KnowlarityError, report: &Report) {
        let slug = self.keeper.source.slug;
        if error.is_refused() {
            tracing::error!(
                source = slug,
                outcome = KEY_REFUSED,
                error = %error,
                "Knowlarity refused the call log's keys; replace them in the secret"
            );
        } else {
            tracing::warn!(
                source = slug,
                pages = report.pages,
                error = %error,
                "the call log could not be read; the watermark stays"
            );
        }
    }

    /// One call mapped through the source's declaration, then stored or kept. Logged by
    /// its uuid and masked phone only.
    async fn keep(&self, request_id: &str, started: SystemTime, call: Map<String, Value>) -> Fate {
        let source = self.keeper.source;
        let uuid = lead::first_value(&call, source.partner_lead_id).unwrap_or_default();
        let payload = Value::Object(call.clone()).to_string();
        let lead = match lead::map(source, &call) {
            Ok(lead) => lead,
            Err(refusal) => {
                tracing::warn!(
                    source = source.slug,
                    uuid,
                    reason = %refusal,
                    "a call without a customer number is not a lead; skipped"
                );
                return Fate::Skipped;
            }
        };
        let phone = mask::phone(&lead.phone_number);
        let record = LeadRecord {
            source,
            identity: Identity::of(source, &call, None, payload.as_bytes()),
            lead,
            payload,
            request_id: request_id.to_owned(),
            received_at: started,
        };
        match self.keeper.keep(record, Instant::now()).await {
            Ok(Accepted::Lead { outcome, .. }) => match outcome {
                Outcome::Stored(Stored::Created(_)) => Fate::Stored,
                Outcome::Stored(Stored::Duplicate(_)) => Fate::Duplicate,
                Outcome::Queued(Postponed::Refused(error)) => {
                    tracing::error!(source = source.slug, uuid, phone, error = %error, "call from Knowlarity sent to the dead-letter queue");
                    Fate::DeadLettered
                }
                Outcome::Queued(cause) => {
                    tracing::warn!(source = source.slug, uuid, phone, cause = %cause, "call from Knowlarity queued");
                    Fate::Queued
                }
            },
            Ok(Accepted::Batch(_)) => Fate::Unkept,
            Err(error) => {
                tracing::error!(source = source.slug, uuid, phone, error = %error, "call from Knowlarity neither stored nor kept; the watermark stays");
                Fate::Unkept
            }
        }
    }
}

impl Pull for KnowlarityPull {
    fn source(&self) -> &'static Source {
        self.keeper.source
    }

    fn run<'a>(
        &'a self,
        request_id: &'a str,
        deadline: SystemTime,
    ) -> futures_util::future::BoxFuture<'a, Result<Report, PullError>> {
        Box::pin(KnowlarityPull::run(self, request_id, deadline))
    }
}
