//! Knowlarity's call log: the calls of an account between two times, page by page, for
//! the scheduled pull that stores the calls no push brought.
//!
//! `GET {base}/{channel}/v1/account/calllog?start_time=…&end_time=…&limit=…&offset=…`,
//! with the application's access key in `x-api-key` and the SR API key in
//! `Authorization`; the answer is `{"meta":{…,"total_count":…},"objects":[…]}`. Both keys
//! are credentials: they travel only in those headers to the configured URL, and never
//! into an error's text, a log line or a `Debug`.

use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use reqwest::StatusCode;
use serde_json::{Map, Value};

use crate::domain::ist::IST;
use crate::error::SecretError;
use crate::infra::secrets::Setting;

pub const DEFAULT_KNOWLARITY_URL: &str = "https://kpi.knowlarity.com";
pub const DEFAULT_CHANNEL: &str = "Basic";

/// Calls asked for per page.
pub const DEFAULT_PAGE_LIMIT: usize = 100;

/// A paging loop stops here even if the total keeps growing: far beyond a window's
/// calls, and a bound on a loop that would never end.
pub const MAX_PAGES: usize = 1000;

/// Where the call log is and how long a call may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnowlaritySettings {
    /// `KNOWLARITY_API_URL`.
    pub base_url: String,
    /// `KNOWLARITY_CHANNEL`: the path's first segment.
    pub channel: String,
    /// For each HTTP request, from connecting to the last byte of the body.
    pub timeout: Duration,
    pub page_limit: usize,
}

impl Default for KnowlaritySettings {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_KNOWLARITY_URL.into(),
            channel: DEFAULT_CHANNEL.into(),
            timeout: Duration::from_secs(10),
            page_limit: DEFAULT_PAGE_LIMIT,
        }
    }
}

/// The two keys Knowlarity's API takes.
#[derive(Clone, PartialEq, Eq)]
pub struct KnowlarityKeys {
    /// The application's access key, sent as `x-api-key`.
    app_key: String,
    /// The SR API key, sent as `Authorization`.
    sr_key: String,
}

// Credentials: only whether they are there.
impl std::fmt::Debug for KnowlarityKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnowlarityKeys")
            .field("app_key", &"<redacted>")
            .field("sr_key", &"<redacted>")
            .finish()
    }
}

impl KnowlarityKeys {
    pub fn new(app_key: impl Into<String>, sr_key: impl Into<String>) -> Self {
        Self {
            app_key: app_key.into().trim().to_owned(),
            sr_key: sr_key.into().trim().to_owned(),
        }
    }

    /// The secret's JSON object `{"app_key": "…", "sr_key": "…"}`; the reason it is
    /// refused, never a value.
    pub fn from_secret(text: &str) -> Result<Self, &'static str> {
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(text) else {
            return Err("is not a JSON object with app_key and sr_key");
        };
        let field = |name: &str| {
            fields
                .get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|value| !value.is_empty())
        };
        match (field("app_key"), field("sr_key")) {
            (Some(app_key), Some(sr_key)) => Ok(Self::new(app_key, sr_key)),
            _ => Err("lacks app_key or sr_key (non-blank strings)"),
        }
    }

    /// `text` with either key blanked out, for text that came from elsewhere.
    fn redact(&self, text: String) -> String {
        [&self.app_key, &self.sr_key]
            .into_iter()
            .filter(|key| !key.is_empty())
            .fold(text, |text, key| text.replace(key.as_str(), "<redacted>"))
    }
}

/// Why the call log gave no page. Never carries a key.
#[derive(Debug, thiserror::Error)]
pub enum KnowlarityError {
    /// Worth retrying later: timeout, connection failure, HTTP 5xx or 429.
    #[error("Knowlarity unavailable: {0}")]
    Unavailable(String),
    /// The keys were refused (401/403): revoked or wrong, until someone replaces them.
    #[error("Knowlarity refused the keys: HTTP {0}")]
    Refused(u16),
    /// An answer that is not the documented one (another status, or not the shape).
    #[error("Knowlarity answered unexpectedly: {0}")]
    Malformed(String),
}

impl KnowlarityError {
    pub fn is_refused(&self) -> bool {
        matches!(self, Self::Refused(_))
    }

    fn redacted(self, keys: &KnowlarityKeys) -> Self {
        match self {
            Self::Unavailable(text) => Self::Unavailable(keys.redact(text)),
            Self::Malformed(text) => Self::Malformed(keys.redact(text)),
            refused @ Self::Refused(_) => refused,
        }
    }
}

/// One page of the call log.
#[derive(Debug, Clone, PartialEq)]
pub struct CallPage {
    pub calls: Vec<Map<String, Value>>,
    /// How many calls the whole listing holds.
    pub total_count: usize,
}

/// A call-log client, built once per container so connections are reused.
#[derive(Debug, Clone)]
pub struct CallLog {
    /// The building error's text when there is no client; every call reports it.
    client: Result<reqwest::Client, String>,
    url: String,
    page_limit: usize,
}

impl CallLog {
    pub fn new(settings: KnowlaritySettings) -> Self {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            // A redirect would be a misconfigured URL, and following it would send the
            // keys somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| {
                let reason = error.to_string();
                tracing::error!(%reason, "cannot build the Knowlarity client");
                reason
            });
        let url = format!(
            "{}/{}/v1/account/calllog",
            settings.base_url.trim().trim_end_matches('/'),
            settings.channel.trim().trim_matches('/')
        );
        Self {
            client,
            url,
            page_limit: settings.page_limit.max(1),
        }
    }

    pub fn page_limit(&self) -> usize {
        self.page_limit
    }

    /// The calls that started between `start` and `end` (Unix times), from `offset` on.
    pub async fn page(
        &self,
        keys: &KnowlarityKeys,
        start: i64,
        end: i64,
        offset: usize,
    ) -> Result<CallPage, KnowlarityError> {
        self.fetch(keys, start, end, offset)
            .await
            .map_err(|error| error.redacted(keys))
    }

    async fn fetch(
        &self,
        keys: &KnowlarityKeys,
        start: i64,
        end: i64,
        offset: usize,
    ) -> Result<CallPage, KnowlarityError> {
        let client = self
            .client
            .as_ref()
            .map_err(|reason| KnowlarityError::Unavailable(reason.clone()))?;
        let response = client
            .get(&self.url)
            .query(&[
                ("start_time", ist_time(start)),
                ("end_time", ist_time(end)),
                ("limit", self.page_limit.to_string()),
                ("offset", offset.to_string()),
            ])
            .header("x-api-key", &keys.app_key)
            .header(reqwest::header::AUTHORIZATION, &keys.sr_key)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|error| KnowlarityError::Unavailable(describe(&error)))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(KnowlarityError::Refused(status.as_u16()));
        }
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(KnowlarityError::Unavailable(format!("HTTP {status}")));
        }
        if !status.is_success() {
            return Err(KnowlarityError::Malformed(format!("HTTP {status}")));
        }
        let body = response
            .bytes()
            .await
            .map_err(|error| KnowlarityError::Unavailable(describe(&error)))?;
        parse_page(&body)
    }
}

/// The documented answer: `meta.total_count` and `objects`, a list of call objects.
fn parse_page(body: &[u8]) -> Result<CallPage, KnowlarityError> {
    let malformed = |what: &str| KnowlarityError::Malformed(what.to_owned());
    let Ok(Value::Object(mut answer)) = serde_json::from_slice::<Value>(body) else {
        return Err(malformed("not a JSON object"));
    };
    let total_count = answer
        .get("meta")
        .and_then(|meta| meta.get("total_count"))
        .and_then(Value::as_u64)
        .ok_or_else(|| malformed("no meta.total_count"))?;
    let Some(Value::Array(objects)) = answer.remove("objects") else {
        return Err(malformed("no objects list"));
    };
    let calls = objects
        .into_iter()
        .map(|object| match object {
            Value::Object(call) => Ok(call),
            _ => Err(malformed("a call that is not an object")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CallPage {
        calls,
        total_count: usize::try_from(total_count).unwrap_or(usize::MAX),
    })
}

/// A transport error's text without its URL (which carries only times, but a proxy's
/// error page need not be repeated either).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "the answer broke off"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A Unix time as Knowlarity takes it: IST wall time with its offset,
/// `2026-12-02 10:00:00+05:30`.
pub fn ist_time(unix: i64) -> String {
    DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .with_timezone(&IST)
        .format("%Y-%m-%d %H:%M:%S%:z")
        .to_string()
}

/// Knowlarity's keys and its call log, as the scheduled pull holds them.
#[derive(Debug)]
pub struct Knowlarity {
    keys: Setting<KnowlarityKeys>,
    call_log: CallLog,
}

impl Knowlarity {
    pub fn new(keys: Setting<KnowlarityKeys>, call_log: CallLog) -> Self {
        Self { keys, call_log }
    }

    pub async fn keys(&self) -> Result<Arc<KnowlarityKeys>, SecretError> {
        self.keys.get().await
    }

    pub fn call_log(&self) -> &CallLog {
        &self.call_log
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_ist_wall_time_with_the_offset() {
        // 04:30 UTC on 2 December 2026.
        assert_eq!(ist_time(1_796_185_800), "2026-12-02 10:00:00+05:30");
        assert_eq!(
            crate::domain::lead::unix_seconds(&ist_time(1_796_185_800)),
            Some(1_796_185_800)
        );
    }

    #[test]
    fn keys_never_print_and_come_from_one_json_secret() {
        let keys = KnowlarityKeys::from_secret(r#"{"app_key":" app-123 ","sr_key":"sr-456"}"#)
            .expect("a valid secret");
        assert_eq!(keys, KnowlarityKeys::new("app-123", "sr-456"));
        let printed = format!("{keys:?}");
        assert!(!printed.contains("app-123") && !printed.contains("sr-456"));
        for bad in [
            "",
            "app-123",
            r#"{"app_key":"a"}"#,
            r#"{"app_key":"a","sr_key":" "}"#,
        ] {
            let reason = KnowlarityKeys::from_secret(bad).expect_err(bad);
            assert!(!reason.contains("app-123"), "{reason}");
        }
        let error = KnowlarityError::Unavailable("proxy said app-123 and sr-456".into());
        let text = error.redacted(&keys).to_string();
        assert!(
            !text.contains("app-123") && !text.contains("sr-456"),
            "{text}"
        );
    }

    #[test]
    fn pages_are_the_documented_shape() {
        let page = parse_page(
            br#"{"meta":{"limit":2,"offset":0,"next":null,"previous":null,"total_count":3},
                 "objects":[{"uuid":"a"},{"uuid":"b"}]}"#,
        )
        .expect("a page");
        assert_eq!((page.calls.len(), page.total_count), (2, 3));
        for bad in [
            &b"[]"[..],
            b"{}",
            br#"{"meta":{"total_count":1},"objects":[1]}"#,
        ] {
            assert!(matches!(
                parse_page(bad),
                Err(KnowlarityError::Malformed(_))
            ));
        }
    }
}
