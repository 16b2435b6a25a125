//! The lambda_http edge: a Request becomes an [`Incoming`], the pipeline's result becomes
//! the contract's JSON Response, and each request leaves exactly one log line.

use std::time::{Instant, SystemTime};

use futures_util::future::LocalBoxFuture;
use lambda_http::http::header::{HeaderValue, CONTENT_TYPE};
use lambda_http::http::{Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{service_fn, Body, Request, RequestExt, Response};

use crate::domain::mask;
use crate::edge::answer::{self, Answer, Answers};
use crate::error::Error;
use crate::pipeline::app::App;
use crate::pipeline::outcome::{Accepted, Ingested, Outcome};
use crate::pipeline::request::{Handshake, Incoming};

/// Serves API Gateway requests with `app` until Lambda stops the container.
///
/// The database is connected by the first request, not here: a cold start's request is
/// already waiting when the start ends, so connecting earlier answers it no sooner (see
/// docs/performance.md, Tuning), while a database that is down stays out of the
/// start and an environment Lambda never invokes opens no connection.
pub fn serve(app: &App) -> LocalBoxFuture<'_, Result<(), lambda_http::Error>> {
    Box::pin(serve_unboxed(app))
}

async fn serve_unboxed(app: &App) -> Result<(), lambda_http::Error> {
    tracing::info!(source = app.source().slug, "function ready");
    let answers = &Answers::new(app.source());
    lambda_http::run(service_fn(|request: Request| async move {
        Ok::<_, lambda_http::Error>(answer(app, answers, request).await)
    }))
    .await
}

/// Handles one API Gateway request (HTTP API v2 or REST v1; lambda_http has already
/// undone any base64 encoding of the body).
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    answer(app, &Answers::new(app.source()), request).await
}

/// [`handle`], with the source's answers worded once for the container.
async fn answer(app: &App, answers: &Answers, request: Request) -> Response<Body> {
    let started = Instant::now();
    let request_id = request
        .lambda_context_ref()
        .map(|context| context.request_id.as_str())
        .unwrap_or_default();
    let query = request.uri().query().filter(|query| !query.is_empty());
    let query_push = request.method() == Method::GET && app.source().query_push;
    if request.method() == Method::GET && !query_push {
        return handshake(app, answers, &request, request_id, started).await;
    }
    let headers = request.headers();
    let (body, content_type) = if query_push {
        // A GET push's fields are its query string, read as the form it is.
        (
            query.unwrap_or_default().as_bytes(),
            Some("application/x-www-form-urlencoded"),
        )
    } else {
        (
            request.body().as_ref(),
            headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        )
    };
    let incoming = Incoming {
        api_key: headers.get("x-api-key").map(HeaderValue::as_bytes),
        signature: headers
            .get("x-hub-signature-256")
            .map(HeaderValue::as_bytes),
        content_type,
        idempotency_key: headers.get("idempotency-key").map(HeaderValue::as_bytes),
        body,
        query,
        request_id,
        received_at: SystemTime::now(),
    };
    let ingested = app.ingest(incoming).await;
    let answer = answers.to(&ingested.result);
    log(app, &request, request_id, &ingested, answer.status, started);
    response(answer)
}

/// Meta's subscription handshake, logged like any request (the challenge and the token
/// are not).
async fn handshake(
    app: &App,
    answers: &Answers,
    request: &Request,
    request_id: &str,
    started: Instant,
) -> Response<Body> {
    let query = request.query_string_parameters_ref();
    let get = |name: &str| query.and_then(|query| query.first(name));
    let challenge = app
        .handshake(Handshake {
            mode: get("hub.mode"),
            verify_token: get("hub.verify_token"),
            challenge: get("hub.challenge"),
        })
        .await;
    let answer = match challenge {
        Ok(challenge) => Answers::handshake(challenge.as_deref()),
        Err(error) => answers.to(&Err(error)),
    };
    let outcome = if answer.status == 200 {
        "subscribed"
    } else {
        "handshake_refused"
    };
    tracing::info!(
        source = app.source().slug,
        request_id,
        gateway_request_id = gateway_request_id(request).unwrap_or_default(),
        outcome,
        status = answer.status,
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "handshake"
    );
    response(answer)
}

fn response(answer: Answer) -> Response<Body> {
    let mut response = Response::new(Body::Text(answer.body));
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(answer.content_type));
    response
}

fn gateway_request_id(request: &Request) -> Option<&str> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.request_id.as_deref(),
        RequestContext::ApiGatewayV1(context) => context.request_id.as_deref(),
        _ => None,
    }
}

/// The one line per request: an accepted lead at info, a queued one at warn (the
/// database is unwell), a refusal at warn and a failure at error. Never the key, only
/// the fingerprint of the one that passed; the phone only masked.
fn log(
    app: &App,
    request: &Request,
    request_id: &str,
    ingested: &Ingested,
    status: u16,
    started: Instant,
) {
    let source = app.source().slug;
    let gateway_request_id = gateway_request_id(request).unwrap_or_default();
    let result = &ingested.result;
    let outcome = answer::label(result);
    let key = ingested.key.map(tracing::field::display);
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    macro_rules! line {
        ($level:ident, $message:literal $(, $($field:tt)+)?) => {
            tracing::$level!(
                source, request_id, gateway_request_id, outcome, status, latency_ms, key,
                $($($field)+,)? $message
            )
        };
    }
    match result {
        Ok(Accepted::Batch(summary)) => line!(
            info,
            "notification accepted",
            stored = summary.stored,
            duplicates = summary.duplicates,
            queued = summary.queued
        ),
        Ok(Accepted::Lead {
            outcome,
            phone_number,
        }) => {
            let phone = mask::phone(phone_number);
            match outcome {
                Outcome::Stored(stored) => {
                    line!(info, "lead accepted", lead_id = %stored.id(), phone)
                }
                Outcome::Queued(cause) => line!(warn, "lead queued", phone, cause = %cause),
            }
        }
        Err(error @ Error::Failed(_)) => line!(error, "lead not stored", error = %error),
        Err(error @ Error::Refused(_)) => line!(warn, "lead rejected", error = %error),
    }
}
