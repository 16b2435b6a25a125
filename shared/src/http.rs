//! The lambda_http edge: a Request becomes an [`Incoming`], an outcome becomes a JSON
//! Response, and each request leaves exactly one log line.

use std::time::{Instant, SystemTime};

use lambda_http::http::header::{HeaderValue, CONTENT_TYPE};
use lambda_http::http::StatusCode;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;

use crate::app::{Accepted, App, Incoming, Outcome};
use crate::error::IngestError;
use crate::mask;
use crate::store::LeadId;

const JSON_UTF8: &str = "application/json; charset=utf-8";

/// The message of a repeat, as the system this replaces words it.
pub const DUPLICATE_MESSAGE: &str = "Duplicate ignored";

/// The bodies this function answers with.
#[derive(Serialize)]
#[serde(untagged)]
enum Answer<'a> {
    Stored { message: &'a str, id: &'a LeadId },
    Queued { message: &'a str, queued: bool },
    Failure { error: &'a str },
}

/// Handles one API Gateway request (HTTP API v2 or REST v1; lambda_http has already
/// undone any base64 encoding of the body).
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    let started = Instant::now();
    let received_at = SystemTime::now();
    let request_id = request
        .lambda_context_ref()
        .map(|context| context.request_id.as_str())
        .unwrap_or_default();
    let headers = request.headers();
    let incoming = Incoming {
        api_key: headers.get("x-api-key").map(HeaderValue::as_bytes),
        content_type: headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        idempotency_key: headers.get("idempotency-key").map(HeaderValue::as_bytes),
        body: request.body().as_ref(),
        request_id,
        received_at,
    };
    let outcome = app.ingest(incoming).await;
    let response = respond(app, &outcome);
    log(
        app,
        &request,
        request_id,
        &outcome,
        response.status(),
        started,
    );
    response
}

/// The contract's response for an outcome.
pub fn respond(app: &App, outcome: &Result<Accepted, IngestError>) -> Response<Body> {
    let source = app.source();
    let (status, body) = match outcome {
        Ok(Accepted { outcome, .. }) => match outcome {
            Outcome::Created(id) => (
                StatusCode::CREATED,
                json(&Answer::Stored {
                    message: &source.inserted_message(),
                    id,
                }),
            ),
            Outcome::Duplicate(id) => (
                StatusCode::OK,
                json(&Answer::Stored {
                    message: DUPLICATE_MESSAGE,
                    id,
                }),
            ),
            Outcome::Queued { .. } => (
                StatusCode::ACCEPTED,
                json(&Answer::Queued {
                    message: &source.accepted_message(),
                    queued: true,
                }),
            ),
        },
        Err(error) => (
            StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            json(&Answer::Failure {
                error: &error.public_message(),
            }),
        ),
    };
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
    response
}

fn json(answer: &Answer<'_>) -> String {
    // Serialising strings, a bool and an id cannot fail; the fallback keeps that
    // unwrap-free.
    serde_json::to_string(answer)
        .unwrap_or_else(|_| r#"{"error":"Internal server error"}"#.to_owned())
}

fn gateway_request_id(request: &Request) -> Option<String> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.request_id.clone(),
        RequestContext::ApiGatewayV1(context) => context.request_id.clone(),
        _ => None,
    }
}

/// The one line per request. Never the key; the phone only masked.
fn log(
    app: &App,
    request: &Request,
    request_id: &str,
    outcome: &Result<Accepted, IngestError>,
    status: StatusCode,
    started: Instant,
) {
    let source = app.source().slug;
    let gateway_request_id = gateway_request_id(request).unwrap_or_default();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let status = status.as_u16();
    match outcome {
        Ok(accepted) => {
            let phone = mask::phone(&accepted.phone_number);
            match &accepted.outcome {
                Outcome::Created(id) | Outcome::Duplicate(id) => {
                    let outcome = match accepted.outcome {
                        Outcome::Created(_) => "stored",
                        _ => "duplicate",
                    };
                    tracing::info!(
                        source,
                        request_id,
                        gateway_request_id,
                        outcome,
                        status,
                        latency_ms,
                        lead_id = %id,
                        phone,
                        "lead accepted"
                    );
                }
                // Accepted, but the database is unwell: the cause is worth a warning.
                Outcome::Queued { cause } => tracing::warn!(
                    source,
                    request_id,
                    gateway_request_id,
                    outcome = "queued",
                    status,
                    latency_ms,
                    phone,
                    cause = %cause,
                    "lead queued"
                ),
            }
        }
        Err(error) if status >= 500 => tracing::error!(
            source,
            request_id,
            gateway_request_id,
            outcome = error.outcome(),
            status,
            latency_ms,
            error = %error,
            "lead not stored"
        ),
        Err(error) => tracing::warn!(
            source,
            request_id,
            gateway_request_id,
            outcome = error.outcome(),
            status,
            latency_ms,
            error = %error,
            "lead rejected"
        ),
    }
}
