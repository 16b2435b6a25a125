//! The bench's one door into the product: every use of the `shared` crate by the bench
//! and its no-op bootstrap is in this file, so a change to `shared`'s API is adapted here
//! and nowhere else.

use std::future::Future;
use std::process::ExitCode;
use std::time::SystemTime;

use shared::domain::auth::ApiKeys;
use shared::domain::lead::record::LeadRecord;
use shared::domain::source::Source;
use shared::pipeline::request::Incoming;
use sqlx::PgConnection;

/// Runs `work` as a source function's `main` does: the functions' logging, on their
/// current-thread runtime.
pub fn run_as_a_function<E: std::fmt::Display>(
    work: impl Future<Output = Result<(), E>>,
) -> ExitCode {
    shared::edge::runtime::run(work)
}

/// Makes the leads a source's function would store, by the function's own pure steps
/// (key check, body decoding, field mapping, deduplication keys).
pub struct Leads {
    source: &'static Source,
    keys: ApiKeys,
    api_key: String,
    content_type: Option<String>,
}

impl Leads {
    /// For the source `slug`, whose requests carry `api_key` and `content_type`.
    pub fn new(slug: &str, api_key: &str, content_type: Option<&str>) -> Result<Self, String> {
        Ok(Self {
            source: shared::domain::source::by_slug(slug)
                .ok_or_else(|| format!("no source {slug:?}"))?,
            keys: ApiKeys::from_csv(api_key),
            api_key: api_key.to_owned(),
            content_type: content_type.map(str::to_owned),
        })
    }

    /// The platform its rows are stored under.
    pub fn platform(&self) -> &'static str {
        self.source.platform
    }

    /// The lead the function would store for a request with `body`, arriving now.
    pub fn lead(&self, body: &str, request_id: &str) -> Result<Lead, String> {
        let incoming = Incoming {
            signature: None,
            api_key: Some(self.api_key.as_bytes()),
            content_type: self.content_type.as_deref(),
            idempotency_key: None,
            body: body.as_bytes(),
            query: None,
            request_id,
            received_at: SystemTime::now(),
        };
        shared::pipeline::keyed::prepare(self.source, &self.keys, &incoming)
            .map(Lead)
            .map_err(|error| format!("the lead is refused: {error}"))
    }
}

/// A lead ready to store.
pub struct Lead(LeadRecord);

impl Lead {
    /// The id the unique indexes hold it by: the partner's id, the `Idempotency-Key`, or
    /// the body's digest. `None` would make its insert no test of the indexes.
    pub fn dedup_key(&self) -> Option<&str> {
        let identity = &self.0.identity;
        identity
            .partner_lead_id
            .as_deref()
            .or(identity.idempotency_key.as_deref())
            .or(identity.body_hash.as_deref())
    }

    /// Runs the store's own first INSERT for this lead on `connection` (prepared once per
    /// connection, as sqlx caches it): the new row's id, or `None` for a repeat.
    pub async fn insert(
        &self,
        connection: &mut PgConnection,
    ) -> Result<Option<String>, sqlx::Error> {
        shared::tools::insert_query(&self.0)
            .fetch_optional(connection)
            .await
    }
}
