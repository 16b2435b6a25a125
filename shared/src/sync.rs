//! The `meta-sync` function: Meta's scheduled pull. Every run lists the page's lead forms
//! and the leads each received since the last successful run (less an overlap, for leads
//! Meta makes visible late), and stores them through the same deduplicating insert as
//! the webhook, so a lead whose notification never came lands within one period and a
//! lead that came both ways is stored once. The watermark lives in the database, and
//! moves only after a run that stored everything it found.

use std::time::{Duration, SystemTime};

use lambda_runtime::{service_fn, LambdaEvent};
use serde::Serialize;
use serde_json::Value;

use crate::config::Config;
use crate::container::Container;
use crate::error::{ConfigError, SecretError, StoreError};
use crate::graph::GraphError;
use crate::meta::{self, Meta};
use crate::record;
use crate::source::{Source, META};
use crate::store::{Store, Stored};

/// `META_SYNC_OVERLAP_SECONDS` by default: how far before the watermark each run looks
/// again (and how far back the first run looks).
pub const DEFAULT_OVERLAP: Duration = Duration::from_secs(3600);

/// Why a run stored less than it found; the watermark stays, so the next run covers it.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one run found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The Unix time the run looked back to.
    pub since: i64,
    pub forms: usize,
    pub leads: usize,
    pub stored: usize,
    pub duplicates: usize,
    /// Leads Meta gave that cannot become a row (no phone): logged with their id.
    pub unusable: usize,
}

/// The pull's state, built once per container.
#[derive(Debug)]
pub struct Sync {
    source: &'static Source,
    meta: Meta,
    store: Store,
    overlap: Duration,
}

impl Sync {
    pub fn new(source: &'static Source, meta: Meta, store: Store, overlap: Duration) -> Self {
        Self {
            source,
            meta,
            store,
            overlap,
        }
    }

    /// The pull the environment configures: Meta's settings, the database, and
    /// `META_SYNC_OVERLAP_SECONDS`.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        let overlap = config.sync_overlap;
        let container = Container::from_config(config).await?;
        let meta = container
            .meta
            .ok_or(ConfigError::Missing("META_SECRET_ARN or META_APP_SECRETS"))?;
        Ok(Self::new(&META, meta, container.store, overlap))
    }

    /// One pull: every form's leads since the watermark less the overlap, stored once;
    /// then the watermark moves to this run's start.
    pub async fn run(&self, request_id: &str) -> Result<Report, SyncError> {
        let started = SystemTime::now();
        let now = (record::unix_ms(started) / 1000) as i64;
        let secrets = self.meta.secrets().await?;
        let watermark_key = format!("{}:{}", self.source.slug, secrets.page_id());
        let watermark = self.store.watermark(&watermark_key).await?;
        let since = watermark.unwrap_or(now) - self.overlap.as_secs() as i64;
        let mut report = Report {
            since,
            ..Report::default()
        };
        let graph = self.meta.graph();
        let forms = graph.forms(secrets.token(), secrets.page_id()).await?;
        report.forms = forms.len();
        for form in &forms {
            for lead in graph.leads_since(secrets.token(), form, since).await? {
                report.leads += 1;
                match meta::record(self.source, &lead, None, request_id, started) {
                    Ok(record) => match self.store.insert(&record).await? {
                        Stored::Created(_) => report.stored += 1,
                        Stored::Duplicate(_) => report.duplicates += 1,
                    },
                    Err(refusal) => {
                        report.unusable += 1;
                        let leadgen_id = lead.get("id").and_then(Value::as_str).unwrap_or_default();
                        tracing::error!(source = self.source.slug, leadgen_id, form, error = %refusal, "lead from Meta cannot be stored");
                    }
                }
            }
        }
        self.store.set_watermark(&watermark_key, now).await?;
        Ok(report)
    }
}

/// Pulls once per invocation (the schedule's), one log line each.
pub async fn serve(sync: &Sync) -> Result<(), lambda_runtime::Error> {
    tracing::info!(source = sync.source.slug, "meta-sync ready");
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let result = sync.run(&event.context.request_id).await;
        match &result {
            Ok(report) => tracing::info!(
                source = sync.source.slug,
                outcome = "synced",
                since = report.since,
                forms = report.forms,
                leads = report.leads,
                stored = report.stored,
                duplicates = report.duplicates,
                unusable = report.unusable,
                "meta-sync run"
            ),
            Err(error) => tracing::error!(
                source = sync.source.slug,
                outcome = "failed",
                error = %error,
                "meta-sync run failed; the next run covers it"
            ),
        }
        result.map_err(lambda_runtime::Error::from)
    }))
    .await
}
