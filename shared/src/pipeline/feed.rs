//! The leads feed: a reader key, a query, a page. The key is checked before anything
//! else of the request is looked at, against the feed's own keys (a partner's key writes,
//! never reads); the page is read as `lead_reader`, and written (JSON or CSV) so that the
//! answer stays inside Lambda's response limit, stopping early with a `next` cursor when
//! the rows would not fit.

use std::time::Duration;

use crate::domain::auth::{require_present, ApiKeys, Fingerprint};
use crate::domain::listing::csv;
use crate::domain::listing::{self, Format, Query};
use crate::error::{ConfigError, FeedError};
use crate::infra::config::readers::FeedConfig;
use crate::infra::parts::Parts;
use crate::infra::secrets::Setting;
use crate::infra::store::reader::Reader;
use crate::infra::store::Store;

/// Lambda's limit on a synchronous function's answer (the whole of its JSON, in which
/// the body travels as a string).
pub const RESPONSE_LIMIT: usize = 6 * 1024 * 1024;

/// Kept back from [`RESPONSE_LIMIT`] for the answer's status, headers and envelope.
const HEADROOM: usize = 64 * 1024;

/// The feed's state, built once per container.
#[derive(Debug)]
pub struct Feed {
    keys: Setting<ApiKeys>,
    reader: Reader,
    allowed_origins: Vec<String>,
    /// The most the body may take once written as a JSON string.
    body_budget: usize,
}

/// A written page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub format: Format,
    pub body: String,
    /// The next page's cursor, when there are more rows.
    pub next: Option<String>,
    pub rows: usize,
}

/// What became of one request: who asked, what, and the page or why not.
#[derive(Debug)]
pub struct Listed {
    pub key: Option<Fingerprint>,
    pub query: Option<Query>,
    pub result: Result<Page, FeedError>,
}

impl Feed {
    pub fn new(keys: ApiKeys, store: Store) -> Self {
        Self {
            keys: Setting::fixed(keys),
            reader: Reader::new(store),
            allowed_origins: Vec::new(),
            body_budget: RESPONSE_LIMIT - HEADROOM,
        }
    }

    /// Answers CORS requests from these origins (lower-case, as `config` gives them).
    pub fn with_allowed_origins(mut self, origins: Vec<String>) -> Self {
        self.allowed_origins = origins;
        self
    }

    /// Bounds each body to `bytes` once written as a JSON string (tests use a small one).
    pub fn with_body_budget(mut self, bytes: usize) -> Self {
        self.body_budget = bytes;
        self
    }

    /// The feed the environment configures, with its secrets read.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = FeedConfig::from_env()?;
        let parts = Parts::load(config.needs_aws(), config.base.secrets_ttl).await;
        let feed = Self::build(config, &parts)?;
        feed.warm_up().await;
        Ok(feed)
    }

    /// The feed of `config`, built with `parts`.
    pub fn build(config: FeedConfig, parts: &Parts) -> Result<Self, ConfigError> {
        Ok(Self {
            keys: parts.setting(
                config.api_keys,
                "FEED_API_KEYS_SECRET_ARN",
                ApiKeys::from_secret,
            )?,
            reader: Reader::new(parts.store(config.base.database)?),
            allowed_origins: config.allowed_origins,
            body_budget: RESPONSE_LIMIT - HEADROOM,
        })
    }

    /// Reads the keys and the database credentials now, so the first request need not;
    /// a failure is logged and left to the first request.
    pub async fn warm_up(&self) {
        if let Err(error) = self.keys.get().await {
            tracing::error!(error = %error, "reader keys unavailable at start");
        }
        let _ = crate::domain::lead::phone::e164("+919876543210");
        if let Err(error) = self.reader.store().read_credentials().await {
            tracing::error!(error = %error, "database credentials unavailable at start");
        }
    }

    /// Whether a browser on `origin` may read the answers.
    pub fn allows_origin(&self, origin: &str) -> bool {
        let origin = origin.trim().trim_end_matches('/');
        self.allowed_origins
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin))
    }

    /// Checks the key, then parses and runs the query.
    pub async fn list<'a>(
        &self,
        api_key: Option<&[u8]>,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        accept: Option<&str>,
    ) -> Listed {
        let key = match self.authenticate(api_key).await {
            Ok(key) => key,
            Err(error) => {
                return Listed {
                    key: None,
                    query: None,
                    result: Err(error),
                }
            }
        };
        let query = match listing::parse(pairs, accept) {
            Ok(query) => query,
            Err(error) => {
                return Listed {
                    key: Some(key),
                    query: None,
                    result: Err(error.into()),
                }
            }
        };
        let result = self.page(&query).await;
        Listed {
            key: Some(key),
            query: Some(query),
            result,
        }
    }

    /// The reader key that was presented, by its fingerprint. A missing key is the
    /// caller's 401 even while the keys' secret cannot be read.
    async fn authenticate(&self, api_key: Option<&[u8]>) -> Result<Fingerprint, FeedError> {
        require_present(api_key).map_err(FeedError::Refused)?;
        let keys = self.keys.get().await?;
        Ok(keys.check(api_key)?)
    }

    /// One page of `query`, written.
    async fn page(&self, query: &Query) -> Result<Page, FeedError> {
        let filter = &query.filter;
        let rows = self.reader.page(filter).await?;
        let limit = usize::from(filter.limit);
        let more = rows.len() > limit;
        let mut writer = Writer::new(query.format, filter.payload, self.body_budget);
        let mut last = None;
        let mut cut = false;
        for row in rows.iter().take(limit) {
            if !writer.push(&row.lead) {
                cut = true;
                break;
            }
            last = Some(&row.cursor);
        }
        let next = if more || cut {
            last.map(|cursor| cursor.encode())
        } else {
            None
        };
        Ok(writer.finish(next))
    }
}

/// A page being written, row by row, within its budget.
struct Writer {
    format: Format,
    payload: bool,
    budget: usize,
    body: String,
    /// What the body takes written as a JSON string, so far.
    escaped: usize,
    rows: usize,
}

/// What a JSON page's closing (`],"next":"<cursor>"}`) may take at most.
const JSON_CLOSING: usize = 64;

impl Writer {
    fn new(format: Format, payload: bool, budget: usize) -> Self {
        let body = match format {
            Format::Json => String::from(r#"{"leads":["#),
            Format::Csv => csv::csv_header(payload),
        };
        Self {
            format,
            payload,
            budget,
            escaped: csv::escaped_len(&body) + JSON_CLOSING,
            body,
            rows: 0,
        }
    }

    /// Adds a lead if it fits; the first always does, so a page never comes back empty
    /// while rows remain.
    fn push(&mut self, lead: &listing::FeedLead) -> bool {
        let text = match self.format {
            Format::Json => {
                // A lead of strings, numbers and stored JSON always serialises.
                let json = serde_json::to_string(lead).unwrap_or_default();
                if self.rows > 0 {
                    format!(",{json}")
                } else {
                    json
                }
            }
            Format::Csv => csv::csv_line(lead, self.payload),
        };
        let size = csv::escaped_len(&text);
        if self.rows > 0 && self.escaped + size > self.budget {
            return false;
        }
        self.escaped += size;
        self.body.push_str(&text);
        self.rows += 1;
        true
    }

    fn finish(mut self, next: Option<String>) -> Page {
        if self.format == Format::Json {
            let next_json = serde_json::to_string(&next).unwrap_or_else(|_| "null".into());
            self.body.push_str(r#"],"next":"#);
            self.body.push_str(&next_json);
            self.body.push('}');
        }
        Page {
            format: self.format,
            body: self.body,
            next,
            rows: self.rows,
        }
    }
}

/// How long a browser may keep a preflight's answer.
pub const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);
