//! The leads feed's lambda_http edge: a `GET` becomes the feed's key, query pairs and
//! `Accept`; its page becomes JSON or CSV with the next cursor (in the body, and in a
//! `Link` header for CSV); an `OPTIONS` is a CORS preflight. CORS headers go only to an
//! origin the feed lists, echoed, never `*`. One log line per request, with nothing
//! personal: the key's fingerprint, the filters (a searched phone or text masked), the
//! row count and the latency.

use std::time::Instant;

use futures_util::future::LocalBoxFuture;
use lambda_http::http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{service_fn, Body, Request, RequestExt, Response};

use crate::domain::listing::Format;
use crate::domain::mask;
use crate::edge::answer::{self, JSON};
use crate::pipeline::feed::{Feed, Listed, PREFLIGHT_MAX_AGE};

/// The content type of a CSV page.
pub const CSV: &str = "text/csv; charset=utf-8";

/// Serves API Gateway requests with `feed` until Lambda stops the container.
pub fn serve(feed: &Feed) -> LocalBoxFuture<'_, Result<(), lambda_http::Error>> {
    Box::pin(serve_unboxed(feed))
}

async fn serve_unboxed(feed: &Feed) -> Result<(), lambda_http::Error> {
    tracing::info!(source = "feed", "function ready");
    lambda_http::run(service_fn(|request: Request| async move {
        Ok::<_, lambda_http::Error>(handle(feed, request).await)
    }))
    .await
}

/// Handles one API Gateway request (REST v1 or HTTP API v2).
pub async fn handle(feed: &Feed, request: Request) -> Response<Body> {
    let started = Instant::now();
    let origin = request
        .headers()
        .get("origin")
        .and_then(|value| value.to_str().ok())
        .filter(|origin| feed.allows_origin(origin))
        .map(str::to_owned);
    let mut response = if request.method() == Method::OPTIONS {
        preflight(origin.is_some())
    } else if request.method() == Method::GET {
        list(feed, &request, started).await
    } else {
        let mut response = text(405, JSON, r#"{"error":"Method not allowed"}"#.into());
        response
            .headers_mut()
            .insert("allow", HeaderValue::from_static("GET, OPTIONS"));
        response
    };
    let headers = response.headers_mut();
    // Caches must not give one origin's answer to another.
    headers.insert("vary", HeaderValue::from_static("Origin"));
    if let Some(origin) = origin.and_then(|origin| HeaderValue::from_str(&origin).ok()) {
        headers.insert("access-control-allow-origin", origin);
        headers.insert(
            "access-control-expose-headers",
            HeaderValue::from_static("Link"),
        );
    }
    response
}

/// A preflight's answer: the methods and headers the dashboard may use, to a listed
/// origin only (the allow-origin header is added by [`handle`]).
fn preflight(allowed: bool) -> Response<Body> {
    let mut response = text(204, JSON, String::new());
    if allowed {
        let headers = response.headers_mut();
        headers.insert(
            "access-control-allow-methods",
            HeaderValue::from_static("GET, OPTIONS"),
        );
        headers.insert(
            "access-control-allow-headers",
            HeaderValue::from_static("X-API-Key, Accept"),
        );
        if let Ok(age) = HeaderValue::from_str(&PREFLIGHT_MAX_AGE.as_secs().to_string()) {
            headers.insert("access-control-max-age", age);
        }
    }
    response
}

async fn list(feed: &Feed, request: &Request, started: Instant) -> Response<Body> {
    let headers = request.headers();
    let api_key = headers.get("x-api-key").map(HeaderValue::as_bytes);
    let accept = headers.get("accept").and_then(|value| value.to_str().ok());
    let pairs = query_pairs(request);
    let listed = feed
        .list(
            api_key,
            pairs
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
            accept,
        )
        .await;
    let response = match &listed.result {
        Ok(page) => {
            let content_type = match page.format {
                Format::Json => JSON,
                Format::Csv => CSV,
            };
            let mut response = text(200, content_type, page.body.clone());
            if let (Format::Csv, Some(next)) = (page.format, &page.next) {
                let link = format!("<{}>; rel=\"next\"", next_url(&pairs, next));
                if let Ok(link) = HeaderValue::from_str(&link) {
                    response
                        .headers_mut()
                        .insert(HeaderName::from_static("link"), link);
                }
            }
            response
        }
        Err(error) => {
            let answer = answer::feed_failed(error);
            text(answer.status, answer.content_type, answer.body)
        }
    };
    log(request, &listed, response.status().as_u16(), started);
    response
}

/// The query's pairs as API Gateway decoded them; a request built by hand (tests, local
/// tools) has them only in its URI.
fn query_pairs(request: &Request) -> Vec<(String, String)> {
    let map = request.query_string_parameters_ref();
    match map {
        Some(map) if !map.is_empty() => map
            .iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect(),
        _ => form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect(),
    }
}

/// The request's own parameters with `cursor` set to `next`, as a reference relative to
/// the request's URL (`?…`), so it holds behind any stage, base path or custom domain.
fn next_url(pairs: &[(String, String)], next: &str) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs.iter().filter(|(name, _)| name != "cursor") {
        query.append_pair(name, value);
    }
    query.append_pair("cursor", next);
    format!("?{}", query.finish())
}

fn text(status: u16, content_type: &'static str, body: String) -> Response<Body> {
    let mut response = Response::new(if body.is_empty() {
        Body::Empty
    } else {
        Body::Text(body)
    });
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status != 204 {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    response
}

/// The one line per request: a page at info, a refusal at warn, a failure at error.
fn log(request: &Request, listed: &Listed, status: u16, started: Instant) {
    let request_id = request
        .lambda_context_ref()
        .map(|context| context.request_id.as_str())
        .unwrap_or_default();
    let key = listed.key.map(tracing::field::display);
    let outcome = answer::feed_label(listed.result.as_ref().err());
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let filter = listed.query.as_ref().map(|query| &query.filter);
    let platforms = filter.map(|filter| filter.platforms.join(","));
    let statuses = filter.map(|filter| filter.statuses.join(","));
    let phone = listed
        .query
        .as_ref()
        .and_then(|query| query.phone_given.as_deref())
        .map(mask::phone);
    let search = filter
        .and_then(|filter| filter.search.as_deref())
        .map(mask::phone);
    let from = filter.and_then(|filter| filter.from_us);
    let until = filter.and_then(|filter| filter.until_us);
    let limit = filter.map(|filter| filter.limit);
    let paged = filter.map(|filter| filter.after.is_some());
    let format = listed.query.as_ref().map(|query| match query.format {
        Format::Json => "json",
        Format::Csv => "csv",
    });
    let rows = listed.result.as_ref().map_or(0, |page| page.rows);
    let more = listed.result.as_ref().is_ok_and(|page| page.next.is_some());
    macro_rules! line {
        ($level:ident, $message:literal $(, $($field:tt)+)?) => {
            tracing::$level!(
                source = "feed", request_id, outcome, status, latency_ms, key, platforms,
                statuses, from_us = from, until_us = until, phone, search, limit, paged,
                format, rows, more, $($($field)+,)? $message
            )
        };
    }
    match &listed.result {
        Ok(_) => line!(info, "leads listed"),
        Err(error @ crate::error::FeedError::Failed(_)) => {
            line!(error, "leads not listed", error = %error)
        }
        Err(error) => line!(warn, "leads request refused", error = %error),
    }
}
