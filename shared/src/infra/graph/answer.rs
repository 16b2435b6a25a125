//! What the Graph API answers: a JSON object, or an error sorted by Meta's code; a page of
//! an edge and its cursor.

use reqwest::StatusCode;
use serde_json::{Map, Value};

use super::GraphError;

/// A transport error's text without its URL, whose query holds the token.
pub(super) fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What an HTTP answer means, by Meta's error code when the body has one.
pub(super) fn answer_of(status: StatusCode, body: &[u8]) -> Result<Map<String, Value>, GraphError> {
    let json = serde_json::from_slice::<Value>(body).ok();
    if let Some(Value::Object(error)) = json.as_ref().and_then(|json| json.get("error")) {
        return Err(meta_error(status, error));
    }
    if status.is_success() {
        return match json {
            Some(Value::Object(object)) => Ok(object),
            // Graph API answers are JSON objects; anything else comes from something in
            // between (a proxy's or load balancer's page), which is usually passing.
            _ => Err(GraphError::Unavailable(format!(
                "HTTP {status} with a body that is not a JSON object"
            ))),
        };
    }
    // No error code to go by: the status alone says whether to retry.
    let retry = status.is_server_error()
        || status.is_redirection()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT;
    let text = format!("HTTP {status} without a Graph API error");
    Err(if retry {
        GraphError::Unavailable(text)
    } else {
        GraphError::Refused(text)
    })
}

/// Sorts Meta's `{"error":{...}}` by its code; the status only decides codes not listed.
pub(super) fn meta_error(status: StatusCode, error: &Map<String, Value>) -> GraphError {
    let code = error.get("code").and_then(Value::as_i64);
    let subcode = error.get("error_subcode").and_then(Value::as_i64);
    let transient = error.get("is_transient").and_then(Value::as_bool) == Some(true);
    let mut text = match code {
        Some(code) => format!("code {code}"),
        None => "no code".to_owned(),
    };
    if let Some(subcode) = subcode {
        text.push_str(&format!(", subcode {subcode}"));
    }
    if let Some(message) = error.get("message").and_then(Value::as_str) {
        text.push_str(&format!(": {message}"));
    }
    text.push_str(&format!(" (HTTP {}", status.as_u16()));
    if let Some(trace) = error.get("fbtrace_id").and_then(Value::as_str) {
        text.push_str(&format!(", fbtrace_id {trace}"));
    }
    text.push(')');

    let retry = match code {
        _ if transient => true,
        // 1, 2: unknown and service errors; 4, 17, 32, 613 and 800xx: application,
        // user, page and business rate limits; 341: application limit; 368: a
        // temporary block.
        Some(1 | 2 | 4 | 17 | 32 | 341 | 368 | 613 | 80_000..=80_099) => true,
        // 100: a bad parameter or an object that does not exist or is not ours;
        // 10, 200-299: permissions; 190: the token is expired or invalid.
        Some(10 | 100 | 190 | 200..=299) => false,
        _ => status.is_server_error(),
    };
    if retry {
        GraphError::Unavailable(text)
    } else {
        GraphError::Refused(text)
    }
}

/// One page of a form's leads.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadPage {
    pub leads: Vec<Map<String, Value>>,
    /// The cursor of the next page (the `after` of Meta's `paging.next`, which must be
    /// under the configured URL); `None` on the last page.
    pub after: Option<String>,
}

/// One page of an edge.
pub(super) struct Page {
    pub(super) data: Vec<Map<String, Value>>,
    pub(super) next: Option<String>,
}

/// A page's `data` objects and its `paging.next`.
pub(super) fn page_parts(mut page: Map<String, Value>) -> Result<Page, GraphError> {
    let not_a_page = |what: &str| GraphError::Unavailable(format!("not a Graph API page: {what}"));
    let data = match page.remove("data") {
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::Object(object) => Ok(object),
                _ => Err(not_a_page("an item that is not an object")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(not_a_page("no data array")),
    };
    let next = match page.get("paging").and_then(|paging| paging.get("next")) {
        Some(Value::String(next)) => Some(next.clone()),
        _ => None,
    };
    Ok(Page { data, next })
}
