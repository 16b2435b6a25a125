//! The open-loop driver: every request starts at its scheduled time whatever the earlier
//! ones are doing (at most `max_in_flight` at once), and its latency is counted from that
//! scheduled time, so a slow server cannot hide its queueing by slowing the sender.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::plan::{Plan, PARTNERS};

/// What one request got.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `None` when no answer came (connection error or the client timeout).
    pub status: Option<u16>,
    /// The `id` of a 201 or a 200, as text.
    pub id: Option<String>,
    pub message: Option<String>,
    /// From the scheduled start to the end of the answer's body.
    pub latency: Duration,
    /// How late the request started (waiting for an in-flight slot, or a busy sender).
    pub start_lag: Duration,
    /// When it started, from the start of the run.
    pub started: Duration,
    pub error: Option<String>,
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub struct Driver {
    pub base_url: String,
    pub max_in_flight: usize,
    pub timeout: Duration,
}

impl Driver {
    fn client(&self) -> HttpClient {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(self.max_in_flight)
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector)
    }

    /// Posts `body` once and waits for the answer (used to wait for the server and to
    /// warm each function before the clock starts).
    pub async fn post_once(
        &self,
        route: &str,
        key: Option<&str>,
        body: &[u8],
    ) -> Result<(u16, String), String> {
        let client = self.client();
        let request = build_request(&self.base_url, route, key, None, body.to_vec())?;
        let response = tokio::time::timeout(self.timeout, client.request(request))
            .await
            .map_err(|_| format!("no answer in {:?}", self.timeout))?
            .map_err(|error| error_chain(&error))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|error| error.to_string())?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Runs the plan; the outcomes are in the plan's request order.
    pub async fn run(&self, plan: &Plan) -> Result<Vec<Outcome>, String> {
        let client = self.client();
        let slots = Arc::new(Semaphore::new(self.max_in_flight));
        let mut tasks = Vec::with_capacity(plan.requests.len());
        // A moment to spare, so the first request is not already late.
        let start = Instant::now() + Duration::from_millis(100);
        for request in &plan.requests {
            let scheduled = start + request.at;
            tokio::time::sleep_until(scheduled).await;
            let permit = slots
                .clone()
                .acquire_owned()
                .await
                .map_err(|error| error.to_string())?;
            let started = Instant::now();
            let partner = &PARTNERS[request.partner];
            let http = build_request(
                &self.base_url,
                &partner.route(),
                Some(partner.key),
                request.idempotency_key.as_deref(),
                request.body.clone(),
            )?;
            let client = client.clone();
            let timeout = self.timeout;
            tasks.push(tokio::spawn(async move {
                let answer = tokio::time::timeout(timeout, async {
                    let response = client
                        .request(http)
                        .await
                        .map_err(|error| error_chain(&error))?;
                    let status = response.status().as_u16();
                    let body = response
                        .into_body()
                        .collect()
                        .await
                        .map_err(|error| error.to_string())?
                        .to_bytes();
                    Ok::<_, String>((status, body))
                })
                .await;
                let latency = scheduled.elapsed();
                drop(permit);
                let mut outcome = Outcome {
                    status: None,
                    id: None,
                    message: None,
                    latency,
                    start_lag: started - scheduled,
                    started: started - start,
                    error: None,
                };
                match answer {
                    Ok(Ok((status, body))) => {
                        outcome.status = Some(status);
                        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        outcome.id = json.get("id").map(|id| match id {
                            Value::String(text) => text.clone(),
                            other => other.to_string(),
                        });
                        outcome.message = json
                            .get("message")
                            .or_else(|| json.get("error"))
                            .and_then(Value::as_str)
                            .map(str::to_owned);
                    }
                    Ok(Err(error)) => outcome.error = Some(error),
                    Err(_) => outcome.error = Some(format!("no answer in {timeout:?}")),
                }
                outcome
            }));
        }
        let mut outcomes = Vec::with_capacity(tasks.len());
        for task in tasks {
            outcomes.push(task.await.map_err(|error| error.to_string())?);
        }
        Ok(outcomes)
    }
}

fn build_request(
    base_url: &str,
    route: &str,
    key: Option<&str>,
    idempotency_key: Option<&str>,
    body: Vec<u8>,
) -> Result<hyper::Request<Full<Bytes>>, String> {
    let uri: Uri = format!("{}{route}", base_url.trim_end_matches('/'))
        .parse()
        .map_err(|error| format!("bad URL {base_url}{route}: {error}"))?;
    let mut builder = hyper::Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
    if let Some(key) = key {
        builder = builder.header("x-api-key", key);
    }
    if let Some(idempotency_key) = idempotency_key {
        builder = builder.header("idempotency-key", idempotency_key);
    }
    builder
        .body(Full::new(Bytes::from(body)))
        .map_err(|error| error.to_string())
}

/// An error with its causes ("client error (Connect): tcp connect error: Connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
