//! Meta's Graph API for Lead Ads: one lead by the id a webhook names, and the recent
//! leads of a page's forms, page by page, for catching up on webhooks that never came.
//!
//! Meta answers errors with a JSON body whose `error.code` says what went wrong, under
//! an HTTP status that says little (a rate limit is a 400), so every failure is sorted by
//! its code into [`GraphError::Unavailable`] (try again later) or [`GraphError::Refused`]
//! (trying again will not help). The page token is a credential: it travels only to the
//! configured Graph URL and never into an error's text.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::Url;
use serde_json::{Map, Value};

use crate::domain::lead::record::LeadRecord;
use crate::domain::meta::{self, MetaSecrets, PageToken, Reference};
use crate::domain::source::Source;
use crate::error::{Refusal, SecretError};
use crate::infra::secrets::Setting;

mod answer;

pub use answer::LeadPage;
use answer::{answer_of, describe, page_parts, Page};

pub const DEFAULT_GRAPH_URL: &str = "https://graph.facebook.com";
pub const DEFAULT_GRAPH_VERSION: &str = "v25.0";

/// What the pipeline reads of a lead, asked of both the lead and the form's leads.
pub const LEAD_FIELDS: &str = "id,created_time,form_id,ad_id,ad_name,adset_id,adset_name,campaign_id,campaign_name,is_organic,platform,field_data";

/// Items per page; the most Meta serves for these edges.
const PAGE_LIMIT: &str = "100";

/// A paging loop stops here even if Meta keeps answering with a `next`: far beyond any
/// real page's forms or a day's leads, and a bound on a loop that would never end.
pub const MAX_PAGES: usize = 1000;

/// Where the Graph API is and how long a call may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphSettings {
    pub base_url: String,
    pub version: String,
    /// For each HTTP request, from connecting to the last byte of the body.
    pub timeout: Duration,
}

impl Default for GraphSettings {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_GRAPH_URL.into(),
            version: DEFAULT_GRAPH_VERSION.into(),
            timeout: Duration::from_secs(3),
        }
    }
}

/// Why a Graph API call gave no answer. Never carries the token or its proof.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// Worth retrying later: timeout, connection failure, HTTP 5xx, a rate limit or
    /// transient error code.
    #[error("Graph API unavailable: {0}")]
    Unavailable(String),
    /// Will not succeed on retry: the object is gone or the token/permission is wrong.
    #[error("Graph API refused: {0}")]
    Refused(String),
}

impl GraphError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    /// The same error with every occurrence of the token's secrets blanked out, for
    /// text that came from elsewhere (a transport error, Meta's message).
    fn redacted(self, token: &PageToken) -> Self {
        let clean = |text: String| {
            token
                .query()
                .into_iter()
                .map(|(_, secret)| secret)
                .filter(|secret| !secret.is_empty())
                .fold(text, |text, secret| text.replace(secret, "<redacted>"))
        };
        match self {
            Self::Unavailable(text) => Self::Unavailable(clean(text)),
            Self::Refused(text) => Self::Refused(clean(text)),
        }
    }
}

/// A Graph API client, built once per container so connections are reused.
#[derive(Debug, Clone)]
pub struct Graph {
    /// The building error's text when there is no client; every call reports it.
    client: Result<reqwest::Client, String>,
    base_url: String,
    version: String,
}

impl Graph {
    pub fn new(settings: GraphSettings) -> Self {
        // `Client::new` panics where the builder fails (no TLS backend), so there is no
        // default client to fall back to: the failure is kept and answered per call.
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            // Graph API calls are not redirected; a redirect would be a misconfigured
            // URL, and following it would send the query (the token) somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| {
                let reason = describe(error);
                tracing::error!(%reason, "cannot build the Graph API client");
                reason
            });
        Self {
            client,
            base_url: settings.base_url.trim_end_matches('/').to_owned(),
            version: settings.version,
        }
    }

    /// One lead, with [`LEAD_FIELDS`].
    pub async fn lead(
        &self,
        token: &PageToken,
        leadgen_id: &str,
    ) -> Result<Map<String, Value>, GraphError> {
        let url = self.url(&[leadgen_id])?;
        self.get(token, url, &[("fields", LEAD_FIELDS)]).await
    }

    /// The ids of every lead form of the page.
    pub async fn forms(&self, token: &PageToken, page_id: &str) -> Result<Vec<String>, GraphError> {
        let url = self.url(&[page_id, "leadgen_forms"])?;
        let forms = self
            .pages(token, url, &[("fields", "id"), ("limit", PAGE_LIMIT)])
            .await?;
        forms
            .into_iter()
            .map(|form| match form.get("id") {
                Some(Value::String(id)) => Ok(id.clone()),
                _ => Err(GraphError::Unavailable(
                    "a lead form without an id in the answer".into(),
                )),
            })
            .collect()
    }

    /// One page of the form's leads created after `since` (unix seconds), with
    /// [`LEAD_FIELDS`]: the first page, or the one `after` (a [`LeadPage::after`] of an
    /// earlier page of the same listing) names. A caller stores each page before asking
    /// for the next, and may keep the cursor to go on in a later run.
    pub async fn leads_page(
        &self,
        token: &PageToken,
        form_id: &str,
        since: i64,
        after: Option<&str>,
    ) -> Result<LeadPage, GraphError> {
        let url = self.url(&[form_id, "leads"])?;
        let filtering = serde_json::json!([
            {"field": "time_created", "operator": "GREATER_THAN", "value": since}
        ])
        .to_string();
        let mut query = vec![
            ("fields", LEAD_FIELDS),
            ("filtering", filtering.as_str()),
            ("limit", PAGE_LIMIT),
        ];
        if let Some(after) = after {
            query.push(("after", after));
        }
        let Page { data, next } = page_parts(self.get(token, url, &query).await?)?;
        let after = match next {
            // A page may be empty and still have a `next` (Meta filters after paging):
            // only a missing `next` ends the edge.
            None => None,
            Some(next) => {
                let next = self.next_url(&next)?;
                let cursor = next
                    .query_pairs()
                    .find(|(name, _)| name == "after")
                    .map(|(_, cursor)| cursor.into_owned())
                    .filter(|cursor| !cursor.is_empty())
                    .ok_or_else(|| {
                        GraphError::Unavailable("a next page without an after cursor".into())
                    })?;
                // A cursor that does not move would list the same page for ever.
                if after == Some(cursor.as_str()) {
                    return Err(GraphError::Unavailable(
                        "the next page is the same page again".into(),
                    ));
                }
                Some(cursor)
            }
        };
        Ok(LeadPage { leads: data, after })
    }

    /// `{base}/{version}/{segments}`. Graph ids are digits and underscores (or an alias
    /// such as `me`); anything else could name another object or edge (`../me`,
    /// `1/feed`), so it is refused unsent.
    fn url(&self, segments: &[&str]) -> Result<String, GraphError> {
        let id = segments.first().copied().unwrap_or_default();
        let is_id = !id.is_empty()
            && id
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
        if !is_id {
            return Err(GraphError::Refused(format!("{id:?} is not a Graph API id")));
        }
        Ok(format!(
            "{}/{}/{}",
            self.base_url,
            self.version,
            segments.join("/")
        ))
    }

    /// Every item of an edge: the first page, then each `paging.next` to the end.
    async fn pages(
        &self,
        token: &PageToken,
        url: String,
        query: &[(&str, &str)],
    ) -> Result<Vec<Map<String, Value>>, GraphError> {
        let mut items = Vec::new();
        let mut page = self.get(token, url, query).await?;
        let mut fetched = 1;
        loop {
            let Page { data, next } = page_parts(page)?;
            items.extend(data);
            // A page may be empty and still have a `next` (Meta filters after paging):
            // only a missing `next` ends the edge.
            let Some(next) = next else {
                return Ok(items);
            };
            if fetched >= MAX_PAGES {
                return Err(GraphError::Unavailable(format!(
                    "still a next page after {MAX_PAGES} pages"
                )));
            }
            page = self.get(token, self.next_url(&next)?, &[]).await?;
            fetched += 1;
        }
    }

    /// `paging.next` without the token and proof it may carry (Meta's carries the token
    /// but not the proof, which an app requiring proofs then refuses), so that
    /// [`Self::get`] adds both once. Refused unless it is under the configured URL, so
    /// the token never goes elsewhere.
    fn next_url(&self, next: &str) -> Result<Url, GraphError> {
        let leads_away = || {
            let place = Url::parse(next)
                .ok()
                .map(|url| url.origin().ascii_serialization())
                .unwrap_or_else(|| "an unparseable URL".into());
            GraphError::Refused(format!(
                "the next page is at {place}, not under {}",
                self.base_url
            ))
        };
        // The character after the prefix must end the base, so that neither
        // `graph.facebook.com.example` nor another port's `:4431` passes for `:443`.
        let under_base = next
            .strip_prefix(self.base_url.as_str())
            .is_some_and(|rest| rest.starts_with('/'));
        let url = Url::parse(next).map_err(|_| leads_away())?;
        let same_origin =
            Url::parse(&self.base_url).is_ok_and(|base| base.origin() == url.origin());
        if !under_base || !same_origin {
            return Err(leads_away());
        }
        let mut clean = url.clone();
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(name, _)| name != "access_token" && name != "appsecret_proof")
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        clean.set_query(None);
        if !kept.is_empty() {
            clean.query_pairs_mut().extend_pairs(&kept);
        }
        Ok(clean)
    }

    /// One GET with the token and proof added to `query`, its answer a JSON object.
    async fn get(
        &self,
        token: &PageToken,
        url: impl reqwest::IntoUrl,
        query: &[(&str, &str)],
    ) -> Result<Map<String, Value>, GraphError> {
        let client = self
            .client
            .as_ref()
            .map_err(|reason| GraphError::Unavailable(format!("no HTTP client: {reason}")))?;
        let answer = async {
            let response = client
                .get(url)
                .query(query)
                .query(&token.query())
                .send()
                .await?;
            let status = response.status();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        }
        .await;
        let result = match answer {
            Ok((status, body)) => answer_of(status, &body),
            Err(error) => Err(GraphError::Unavailable(describe(error))),
        };
        result.map_err(|error| error.redacted(token))
    }
}

/// Meta's side of a function: its secrets and the Graph API, built once per container.
#[derive(Debug)]
pub struct Meta {
    secrets: Setting<MetaSecrets>,
    graph: Graph,
}

impl Meta {
    pub fn new(secrets: Setting<MetaSecrets>, graph: Graph) -> Self {
        Self { secrets, graph }
    }

    pub async fn secrets(&self) -> Result<Arc<MetaSecrets>, SecretError> {
        self.secrets.get().await
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The record of the lead `reference` names, read from the Graph API: what the
    /// webhook and the drain both make of a notification's lead.
    pub async fn fetch(
        &self,
        source: &'static Source,
        reference: &Reference,
        request_id: &str,
        received_at: SystemTime,
    ) -> Result<LeadRecord, FetchError> {
        let secrets = self.secrets().await?;
        let lead = self
            .graph
            .lead(secrets.token(), &reference.leadgen_id)
            .await?;
        let change = Some(&reference.change);
        Ok(meta::record(
            source,
            &lead,
            change,
            request_id,
            received_at,
        )?)
    }
}

/// Why a lead a notification named did not become a record now.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error("read but not usable: {0}")]
    Unusable(#[from] Refusal),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::meta::appsecret_proof;
    use reqwest::StatusCode;

    fn sorted(status: u16, body: &str) -> Result<Map<String, Value>, GraphError> {
        answer_of(StatusCode::from_u16(status).unwrap(), body.as_bytes())
    }

    fn error(status: u16, code: i64) -> GraphError {
        sorted(
            status,
            &format!(r#"{{"error":{{"message":"m","type":"OAuthException","code":{code}}}}}"#),
        )
        .unwrap_err()
    }

    #[test]
    fn codes_decide_over_the_status() {
        for code in [
            1, 2, 4, 17, 32, 341, 368, 613, 80_000, 80_001, 80_005, 80_099,
        ] {
            assert!(error(400, code).is_unavailable(), "code {code}");
        }
        for code in [10, 100, 190, 200, 250, 299] {
            assert!(!error(400, code).is_unavailable(), "code {code}");
            assert!(
                !error(500, code).is_unavailable(),
                "code {code} under a 500"
            );
        }
        // A code not listed goes by the status.
        assert!(!error(400, 12345).is_unavailable());
        assert!(error(503, 12345).is_unavailable());
        let transient = sorted(
            400,
            r#"{"error":{"message":"m","code":12345,"is_transient":true}}"#,
        );
        assert!(transient.unwrap_err().is_unavailable());
    }

    #[test]
    fn a_message_is_kept_with_its_codes() {
        let text = sorted(
            400,
            r#"{"error":{"message":"Unsupported get request.","type":"GraphMethodException","code":100,"error_subcode":33,"fbtrace_id":"AbC"}}"#,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            text,
            "Graph API refused: code 100, subcode 33: Unsupported get request. (HTTP 400, fbtrace_id AbC)"
        );
    }

    #[test]
    fn bodies_without_an_error_code_go_by_the_status() {
        assert_eq!(sorted(200, r#"{"id":"1"}"#).unwrap()["id"], "1");
        assert!(sorted(200, "<html>").unwrap_err().is_unavailable());
        assert!(sorted(200, "[1]").unwrap_err().is_unavailable());
        assert!(sorted(502, "<html>").unwrap_err().is_unavailable());
        assert!(sorted(429, "").unwrap_err().is_unavailable());
        assert!(!sorted(404, "<html>").unwrap_err().is_unavailable());
        assert!(!sorted(403, "{}").unwrap_err().is_unavailable());
    }

    #[test]
    fn secrets_are_blanked_out_of_errors() {
        let token = PageToken::new("EAAtoken", "secret");
        let proof = appsecret_proof("EAAtoken", "secret");
        let error = GraphError::Refused(format!("bad EAAtoken and {proof}")).redacted(&token);
        assert_eq!(
            error.to_string(),
            "Graph API refused: bad <redacted> and <redacted>"
        );
    }

    #[test]
    fn ids_are_word_characters() {
        let graph = Graph::new(GraphSettings::default());
        assert_eq!(
            graph.url(&["123_456", "leads"]).unwrap(),
            "https://graph.facebook.com/v25.0/123_456/leads"
        );
        for bad in ["", "../me", "1/leads", "1?x=y", "1%2F"] {
            assert!(!graph.url(&[bad]).unwrap_err().is_unavailable(), "{bad:?}");
        }
    }

    #[test]
    fn next_stays_under_the_base() {
        let graph = Graph::new(GraphSettings {
            base_url: "http://127.0.0.1:4000/".into(),
            ..GraphSettings::default()
        });
        let next = graph
            .next_url("http://127.0.0.1:4000/v25.0/1/leads?access_token=T&limit=2&after=QQ%3D%3D")
            .unwrap();
        assert_eq!(
            next.as_str(),
            "http://127.0.0.1:4000/v25.0/1/leads?limit=2&after=QQ%3D%3D"
        );
        for away in [
            "http://127.0.0.1:40001/v25.0/1/leads",
            "http://127.0.0.1:4000.example.com/v25.0/1/leads",
            "http://127.0.0.1:4000@example.com/v25.0/1/leads",
            "https://127.0.0.1:4000/v25.0/1/leads",
            "http://example.com/v25.0/1/leads",
            "/v25.0/1/leads",
        ] {
            let error = graph.next_url(away).unwrap_err();
            assert!(!error.is_unavailable(), "{away}");
        }
    }
}
