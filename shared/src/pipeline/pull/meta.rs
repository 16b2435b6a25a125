//! The `meta-sync` function: Meta's scheduled pull. Every run lists the page's lead forms
//! and, for each, the leads it received since the form was last listed whole (less an
//! overlap, for leads Meta makes visible late), and stores them through the same
//! deduplicating insert as the webhook, so a lead whose notification never came lands
//! within one period and a lead that came both ways is stored once.
//!
//! Each lead's fate is its own: stored (or found stored), queued on the buffer while the
//! database is unavailable, or, when it can never be stored as it is, kept on the
//! dead-letter queue with its reason (where the queue's alarm fires). Only a lead that
//! could be none of these holds its form's progress back, and fails the run once all else
//! is done.
//!
//! Progress is kept per form, page by page, in the database (`store::Checkpoint`): Meta
//! lists a form's leads newest first, and a lead created while a listing goes on comes
//! before its cursor, so a listing goes on from its cursor in the next run when this one
//! runs short of time, and the form counts as covered only up to when its listing began,
//! once the listing is done. A cursor never passes a page with a lead that was neither
//! stored nor kept.

use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};

use crate::domain::lead::record::{self, LeadRecord};
use crate::domain::meta::{self, PageToken, Reference};
use crate::domain::source::{Source, META};
use crate::error::{ConfigError, StoreError};
use crate::infra::buffer::{self, Buffer, Unfetched};
use crate::infra::config::intake::MetaPullConfig;
use crate::infra::graph::Meta;
use crate::infra::graph::MAX_PAGES;
use crate::infra::parts::Parts;
use crate::infra::store::{Checkpoint, Pass, Store, Stored};
use crate::pipeline::pull::{Pull, PullError, Report};

/// How much of the invocation's time a run keeps for the page it is on and its
/// checkpoint: it starts no new page with less left.
pub const DEFAULT_RESERVE: Duration = Duration::from_secs(60);

/// What became of one lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Stored,
    Duplicate,
    Queued,
    DeadLettered,
    Unkept,
}

impl Report {
    fn count(&mut self, fate: Fate) {
        self.leads += 1;
        match fate {
            Fate::Stored => self.stored += 1,
            Fate::Duplicate => self.duplicates += 1,
            Fate::Queued => self.queued += 1,
            Fate::DeadLettered => self.dead_lettered += 1,
            Fate::Unkept => self.unkept += 1,
        }
    }
}

/// What became of one form's listing in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listed {
    /// Listed to its end (its progress moved only if every lead was kept).
    Done,
    /// Stopped short of time; goes on from its checkpoint next run.
    Unfinished,
    Failed,
}

/// The pull's state, built once per container.
#[derive(Debug)]
pub struct MetaPull {
    source: &'static Source,
    meta: Meta,
    store: Store,
    overlap: Duration,
    buffer: Option<Buffer>,
    reserve: Duration,
}

/// One run's fixed facts, handed to each form.
struct Run<'a> {
    token: &'a PageToken,
    page_id: &'a str,
    request_id: &'a str,
    started: SystemTime,
    now: i64,
    deadline: SystemTime,
}

impl MetaPull {
    pub fn new(source: &'static Source, meta: Meta, store: Store, overlap: Duration) -> Self {
        Self {
            source,
            meta,
            store,
            overlap,
            buffer: None,
            reserve: DEFAULT_RESERVE,
        }
    }

    /// Queues a lead on `buffer` while the database is unavailable, and sends one that
    /// can never be stored as it is to its dead-letter queue.
    pub fn with_buffer(mut self, buffer: Buffer) -> Self {
        self.buffer = Some(buffer);
        self
    }

    /// Starts no new page with less than `reserve` left before the deadline.
    pub fn with_reserve(mut self, reserve: Duration) -> Self {
        self.reserve = reserve;
        self
    }

    /// The pull the environment configures: Meta's settings, the database, the buffer
    /// and its dead-letter queue, and `META_SYNC_OVERLAP_SECONDS`.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = MetaPullConfig::from_env()?;
        let parts = Parts::load(config.needs_aws(), config.base.secrets_ttl).await;
        let meta = parts.meta(config.meta)?;
        let (store, buffer) = parts.keeping(config.base.database, config.keeping)?;
        let sync = Self::new(&META, meta, store, config.overlap);
        Ok(match buffer {
            Some(buffer) => sync.with_buffer(buffer),
            None => sync,
        })
    }

    /// One pull, until `deadline` less the reserve: each form's listing goes on from
    /// its checkpoint, or starts from the form's watermark less the overlap. A run always
    /// lists at least one page, so a backlog moves however short the time.
    ///
    /// Fails with [`PullError::Incomplete`] only after everything else it could do.
    pub async fn run(&self, request_id: &str, deadline: SystemTime) -> Result<Report, PullError> {
        let started = SystemTime::now();
        let now = (record::unix_ms(started) / 1000) as i64;
        let secrets = self.meta.secrets().await?;
        let page_key = format!("{}:{}", self.source.slug, secrets.page_id());
        // The page's watermark: where a form not seen before starts from.
        let page_watermark = self.store.watermark(&page_key).await?;
        let forms = self
            .meta
            .graph()
            .forms(secrets.token(), secrets.page_id())
            .await?;
        let keys: Vec<String> = forms.iter().map(|form| form_key(&page_key, form)).collect();
        let checkpoints = self
            .store
            .checkpoints(&keys, page_watermark.unwrap_or(now))
            .await?;
        // Every form listed now has its own checkpoint: a form that appears later was
        // created after this.
        self.store.set_watermark(&page_key, now).await?;

        let run = Run {
            token: secrets.token(),
            page_id: secrets.page_id(),
            request_id,
            started,
            now,
            deadline,
        };
        let mut report = Report {
            lists: forms.len(),
            since: now - self.overlap.as_secs() as i64,
            ..Report::default()
        };
        for checkpoint in &checkpoints {
            let Some(form) = checkpoint
                .key
                .strip_prefix(&page_key)
                .and_then(|rest| rest.strip_prefix(':'))
            else {
                continue;
            };
            let since = match &checkpoint.pass {
                Some(pass) => pass.since,
                None => self.since(checkpoint),
            };
            report.since = report.since.min(since);
            match self.form(&run, form, checkpoint, &mut report).await {
                Listed::Done => {}
                Listed::Unfinished => report.unfinished_lists += 1,
                Listed::Failed => report.failed_lists += 1,
            }
        }
        if report.unkept > 0 || report.failed_lists > 0 {
            return Err(PullError::Incomplete(report));
        }
        Ok(report)
    }

    /// A new listing's filter: the form's watermark less the overlap.
    fn since(&self, checkpoint: &Checkpoint) -> i64 {
        checkpoint.synced_until - self.overlap.as_secs() as i64
    }

    /// Whether a new page may start: always the run's first, then while more than the
    /// reserve is left.
    fn may_start_page(&self, run: &Run<'_>, report: &Report) -> bool {
        let left = run
            .deadline
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        report.pages == 0 || left > self.reserve
    }

    /// One form's listing, page by page, each page's leads kept before the next is
    /// asked for, and its checkpoint moved past a page only when all that page's leads
    /// (and all before) were kept.
    async fn form(
        &self,
        run: &Run<'_>,
        form: &str,
        checkpoint: &Checkpoint,
        report: &mut Report,
    ) -> Listed {
        let key = checkpoint.key.as_str();
        let fresh = || Pass {
            since: self.since(checkpoint),
            started: run.now,
            after: String::new(),
        };
        // `after` is empty for the first page of a listing.
        let mut pass = checkpoint.pass.clone().unwrap_or_else(fresh);
        let mut resuming = checkpoint.pass.is_some();
        // The progress as the database holds it.
        let mut saved = checkpoint.pass.clone();
        // Set once a lead is neither stored nor kept: the checkpoint stays where it is.
        let mut held = false;
        let mut pages = 0;
        loop {
            if !self.may_start_page(run, report) {
                tracing::info!(
                    source = self.source.slug,
                    form,
                    "out of time; the form's listing goes on next run"
                );
                return Listed::Unfinished;
            }
            if pages >= MAX_PAGES {
                tracing::error!(source = self.source.slug, form, "still a next page after {MAX_PAGES} pages; the form's listing goes on next run");
                return Listed::Failed;
            }
            let after = Some(pass.after.as_str()).filter(|after| !after.is_empty());
            let page = self
                .meta
                .graph()
                .leads_page(run.token, form, pass.since, after)
                .await;
            let page = match page {
                Ok(page) => page,
                // A cursor kept from an earlier run that Meta no longer takes: the
                // listing starts again from the top (what it stored comes back as
                // duplicates).
                Err(error) if resuming && !error.is_unavailable() => {
                    tracing::warn!(source = self.source.slug, form, error = %error, "the form's cursor was refused; listing it from the start");
                    resuming = false;
                    pass = fresh();
                    continue;
                }
                Err(error) => {
                    tracing::error!(source = self.source.slug, form, error = %error, "the form's leads could not be listed; its progress stays");
                    return Listed::Failed;
                }
            };
            resuming = false;
            pages += 1;
            report.pages += 1;
            for lead in &page.leads {
                let fate = self.keep(run, form, lead).await;
                held |= fate == Fate::Unkept;
                report.count(fate);
            }
            let recorded = if held {
                // The progress stays where the first unkept lead's page begins; the form
                // is only marked as worked on, so that the others get their turn first.
                self.store.set_pass(key, saved.as_ref()).await
            } else if let Some(after) = &page.after {
                let next = Pass {
                    after: after.clone(),
                    ..pass.clone()
                };
                let recorded = self.store.set_pass(key, Some(&next)).await;
                saved = Some(next);
                recorded
            } else {
                self.store.finish_pass(key, pass.started).await
            };
            if let Err(error) = recorded {
                tracing::error!(source = self.source.slug, form, error = %error, "the form's progress could not be recorded");
                return Listed::Failed;
            }
            match page.after {
                Some(after) => pass.after = after,
                None => return Listed::Done,
            }
        }
    }

    /// One lead stored, or queued, or kept on the dead-letter queue; logged with its
    /// leadgen id only (never its name or phone) when it is not stored.
    async fn keep(&self, run: &Run<'_>, form: &str, lead: &Map<String, Value>) -> Fate {
        let slug = self.source.slug;
        let leadgen_id = lead.get("id").and_then(Value::as_str).unwrap_or_default();
        let record = match meta::record(self.source, lead, None, run.request_id, run.started) {
            Ok(record) => record,
            Err(refusal) => {
                let reason = format!("cannot be stored: {refusal}");
                if leadgen_id.is_empty() {
                    tracing::error!(
                        source = slug,
                        form,
                        reason,
                        "a lead from Meta without an id cannot be kept"
                    );
                    return Fate::Unkept;
                }
                let unread = Unfetched {
                    source: self.source,
                    reference: Reference {
                        leadgen_id: leadgen_id.to_owned(),
                        // The pull has no notification: the change says where the
                        // lead was found, in the shape of a notification's.
                        change: json!({
                            "leadgen_id": leadgen_id,
                            "form_id": form,
                            "page_id": run.page_id,
                        }),
                    },
                    request_id: run.request_id.to_owned(),
                    received_at: run.started,
                };
                return self
                    .dead_letter(form, leadgen_id, buffer::encode_unfetched(&unread), &reason)
                    .await;
            }
        };
        match self.store.insert(&record).await {
            Ok(Stored::Created(_)) => Fate::Stored,
            Ok(Stored::Duplicate(_)) => Fate::Duplicate,
            Err(store) if store.is_unavailable() => {
                self.queue(form, leadgen_id, &record, &store).await
            }
            Err(store @ StoreError::Rejected(_)) => {
                let reason = store.to_string();
                self.dead_letter(form, leadgen_id, buffer::encode(&record), &reason)
                    .await
            }
            Err(store) => {
                tracing::error!(source = slug, form, leadgen_id, error = %store, "lead from Meta neither stored nor kept; its form's progress stays");
                Fate::Unkept
            }
        }
    }

    /// A lead the database could not take now, queued for the drain.
    async fn queue(
        &self,
        form: &str,
        leadgen_id: &str,
        record: &LeadRecord,
        store: &StoreError,
    ) -> Fate {
        let slug = self.source.slug;
        let sent = match &self.buffer {
            Some(buffer) => buffer.send(record).await,
            None => Err(crate::error::BufferError::Missing),
        };
        match sent {
            Ok(()) => {
                tracing::warn!(source = slug, form, leadgen_id, error = %store, "lead from Meta queued");
                Fate::Queued
            }
            Err(buffer) => {
                tracing::error!(source = slug, form, leadgen_id, error = %store, buffer = %buffer, "lead from Meta neither stored nor queued; its form's progress stays");
                Fate::Unkept
            }
        }
    }

    /// A lead that can never be stored as it is, kept on the dead-letter queue with
    /// `reason` (its alarm fires).
    async fn dead_letter(
        &self,
        form: &str,
        leadgen_id: &str,
        body: Result<String, crate::error::BufferError>,
        reason: &str,
    ) -> Fate {
        let slug = self.source.slug;
        let sent = match (&self.buffer, body) {
            (Some(buffer), Ok(body)) => buffer.send_dead_letter(body, reason).await,
            (None, _) => Err(crate::error::BufferError::NoDeadLetter),
            (_, Err(error)) => Err(error),
        };
        match sent {
            Ok(()) => {
                tracing::error!(
                    source = slug,
                    form,
                    leadgen_id,
                    reason,
                    "lead from Meta sent to the dead-letter queue"
                );
                Fate::DeadLettered
            }
            Err(buffer) => {
                tracing::error!(source = slug, form, leadgen_id, reason, buffer = %buffer, "lead from Meta neither stored nor kept; its form's progress stays");
                Fate::Unkept
            }
        }
    }
}

/// A form's checkpoint key: the page's, and the form.
fn form_key(page_key: &str, form: &str) -> String {
    format!("{page_key}:{form}")
}

impl Pull for MetaPull {
    fn source(&self) -> &'static Source {
        self.source
    }

    fn run<'a>(
        &'a self,
        request_id: &'a str,
        deadline: SystemTime,
    ) -> futures_util::future::BoxFuture<'a, Result<Report, PullError>> {
        Box::pin(MetaPull::run(self, request_id, deadline))
    }
}
