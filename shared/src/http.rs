//! The lambda_http edge: a Request becomes an [`Incoming`], an outcome becomes a JSON
//! Response, and each request leaves exactly one log line.

use std::time::Instant;

use lambda_http::http::header::{HeaderValue, CONTENT_TYPE};
use lambda_http::http::StatusCode;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;

use crate::app::{Accepted, App, Incoming};
use crate::error::IngestError;
use crate::mask;
use crate::store::LeadId;

const JSON_UTF8: &str = "application/json; charset=utf-8";

#[derive(Serialize)]
struct Created<'a> {
    message: &'a str,
    id: &'a LeadId,
}

#[derive(Serialize)]
struct Failure<'a> {
    error: &'a str,
}

/// Handles one API Gateway request (HTTP API v2 or REST v1; lambda_http has already
/// undone any base64 encoding of the body).
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    let started = Instant::now();
    let headers = request.headers();
    let incoming = Incoming {
        api_key: headers.get("x-api-key").map(HeaderValue::as_bytes),
        content_type: headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        body: request.body().as_ref(),
    };
    let outcome = app.ingest(incoming).await;
    let response = respond(app, &outcome);
    log(app, &request, &outcome, response.status(), started);
    response
}

/// The contract's response for an outcome.
pub fn respond(app: &App, outcome: &Result<Accepted, IngestError>) -> Response<Body> {
    let (status, body) = match outcome {
        Ok(accepted) => (
            StatusCode::CREATED,
            serde_json::to_string(&Created {
                message: &app.source().inserted_message(),
                id: &accepted.id,
            }),
        ),
        Err(error) => (
            StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            serde_json::to_string(&Failure {
                error: &error.public_message(),
            }),
        ),
    };
    // Serialising two string fields cannot fail; the fallback keeps that unwrap-free.
    let body = body.unwrap_or_else(|_| r#"{"error":"Internal server error"}"#.to_owned());
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
    response
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
    outcome: &Result<Accepted, IngestError>,
    status: StatusCode,
    started: Instant,
) {
    let source = app.source().slug;
    let request_id = request
        .lambda_context_ref()
        .map(|context| context.request_id.clone())
        .unwrap_or_default();
    let gateway_request_id = gateway_request_id(request).unwrap_or_default();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let status = status.as_u16();
    match outcome {
        Ok(accepted) => tracing::info!(
            source,
            request_id,
            gateway_request_id,
            outcome = "stored",
            status,
            latency_ms,
            lead_id = %accepted.id,
            phone = mask::phone(&accepted.phone_number),
            "lead stored"
        ),
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
