//! `bench-baseline`: a bootstrap that does no work, for the cost of the Lambda plumbing
//! itself. It starts and logs as the source functions do (their logging, the same
//! current-thread runtime) and answers every invocation with the function's 201, without
//! a database:
//!
//! - `BENCH_BASELINE=runtime`: `lambda_runtime` alone (the event is skimmed, not decoded):
//!   the two Runtime API hops every Lambda function pays, `/next` and `/response`;
//! - `BENCH_BASELINE=http` (default): through `lambda_http`, as the functions are: adds
//!   decoding the API Gateway event into an `http::Request` and encoding the response.

use std::process::ExitCode;

use lambda_http::http::header::{HeaderValue, CONTENT_TYPE};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use lambda_runtime::LambdaEvent;
use serde::de::IgnoredAny;
use serde::Serialize;

const CREATED: &str = r#"{"message":"Knowlarity lead inserted successfully","id":1}"#;
const JSON_UTF8: &str = "application/json; charset=utf-8";

/// The API Gateway v2 response the functions send, spelled out.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GatewayResponse {
    status_code: u16,
    headers: Headers,
    body: &'static str,
    is_base64_encoded: bool,
}

#[derive(Serialize)]
struct Headers {
    #[serde(rename = "content-type")]
    content_type: &'static str,
}

type Error = lambda_runtime::Error;

async fn runtime_only() -> Result<(), Error> {
    lambda_runtime::run(lambda_runtime::service_fn(
        |_: LambdaEvent<IgnoredAny>| async {
            Ok::<_, Error>(GatewayResponse {
                status_code: 201,
                headers: Headers {
                    content_type: JSON_UTF8,
                },
                body: CREATED,
                is_base64_encoded: false,
            })
        },
    ))
    .await
}

async fn through_lambda_http() -> Result<(), Error> {
    lambda_http::run(lambda_http::service_fn(|_: Request| async {
        let mut response = Response::new(Body::Text(CREATED.to_owned()));
        *response.status_mut() = StatusCode::CREATED;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
        Ok::<_, Error>(response)
    }))
    .await
}

fn main() -> ExitCode {
    match std::env::var("BENCH_BASELINE").as_deref() {
        Ok("runtime") => product::run_as_a_function(runtime_only()),
        Ok("http") | Err(_) => product::run_as_a_function(through_lambda_http()),
        Ok(other) => {
            eprintln!("bench-baseline: BENCH_BASELINE={other:?}: expected runtime or http");
            ExitCode::from(2)
        }
    }
}
