//! A stand-in for Knowlarity's call-log API on 127.0.0.1: `GET /{channel}/v1/account/calllog`
//! answering the documented `{"meta":{…},"objects":[…]}`, paging by `offset` and `limit`,
//! only with both [`APP_KEY`] and [`SR_KEY`] (else 403, as Knowlarity does), listing the
//! calls that started between `start_time` and `end_time`. A test can
//! script failures and read back what was asked.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// The keys the stand-in accepts; distinctive, so a test can look for them in text.
pub const APP_KEY: &str = "local-dev-knowlarity-app-key-7f3a";
pub const SR_KEY: &str = "local-dev-knowlarity-sr-key-91c2";
pub const CHANNEL: &str = "Basic";

/// A call object as the call log lists it.
pub fn call(uuid: &str, customer_number: &str, start_time: &str) -> Value {
    json!({
        "uuid": uuid,
        "customer_number": customer_number,
        "knowlarity_number": "+918047112233",
        "agent_number": "NA",
        "business_call_type": "Missed Call",
        "call_duration": 0,
        "start_time": start_time,
        "call_recording": null
    })
}

/// One request the stand-in received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    /// The query as sent, still encoded.
    pub raw_query: String,
    pub query: Vec<(String, String)>,
    pub app_key: Option<String>,
    pub authorization: Option<String>,
}

impl Recorded {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

struct State {
    calls: Vec<Value>,
    /// The next requests' answers: a status to fail with, or `None` to serve.
    script: VecDeque<Option<u16>>,
    requests: Vec<Recorded>,
}

pub struct KnowlarityStandIn {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    server: JoinHandle<()>,
}

impl KnowlarityStandIn {
    /// Serves on 127.0.0.1, on a port of the system's choosing, until dropped.
    pub async fn start() -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind the Knowlarity stand-in");
        let addr = listener.local_addr().expect("stand-in address");
        let state = Arc::new(Mutex::new(State {
            calls: Vec::new(),
            script: VecDeque::new(),
            requests: Vec::new(),
        }));
        let server = tokio::spawn(serve(listener, state.clone()));
        Self {
            addr,
            state,
            server,
        }
    }

    /// The base URL, as `KNOWLARITY_API_URL` takes it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn add_call(&self, call: Value) {
        self.state().calls.push(call);
    }

    /// The next `times` requests (after those already scripted) answer `status`.
    pub fn fail_next(&self, times: usize, status: u16) {
        let mut state = self.state();
        for _ in 0..times {
            state.script.push_back(Some(status));
        }
    }

    /// The next `times` requests (after those already scripted) are served.
    pub fn pass_next(&self, times: usize) {
        let mut state = self.state();
        for _ in 0..times {
            state.script.push_back(None);
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
    }
}

impl Drop for KnowlarityStandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(listener: TcpListener, state: Arc<Mutex<State>>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let state = state.clone();
                connections.spawn(async move {
                    let service = service_fn(move |request| answer(state.clone(), request));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next() => {}
        }
    }
}

fn json_answer(status: u16, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = StatusCode::from_u16(status).expect("a valid status");
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        "application/json".parse().expect("a valid content type"),
    );
    response
}

async fn answer(
    state: Arc<Mutex<State>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let raw_query = request.uri().query().unwrap_or_default().to_owned();
    let recorded = Recorded {
        path: request.uri().path().to_owned(),
        query: form_urlencoded::parse(raw_query.as_bytes())
            .into_owned()
            .collect(),
        raw_query,
        app_key: header("x-api-key"),
        authorization: header("authorization"),
    };
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    state.requests.push(recorded.clone());
    if let Some(Some(status)) = state.script.pop_front() {
        return Ok(json_answer(status, &json!({"error": "scripted failure"})));
    }
    if recorded.path != format!("/{CHANNEL}/v1/account/calllog") {
        return Ok(json_answer(404, &json!({"error": "not found"})));
    }
    if recorded.app_key.as_deref() != Some(APP_KEY)
        || recorded.authorization.as_deref() != Some(SR_KEY)
    {
        return Ok(json_answer(
            403,
            &json!({"message": "Forbidden", "error": "invalid credentials"}),
        ));
    }
    let number = |name: &str, default: usize| {
        recorded
            .param(name)
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    let (limit, offset) = (number("limit", 10), number("offset", 0));
    // The window bounds a call's start, as Knowlarity's does. Every time here is IST wall
    // time with its offset, so the text orders as the times do.
    let within = |call: &&Value| {
        let start = call["start_time"].as_str().unwrap_or_default();
        recorded
            .param("start_time")
            .is_none_or(|from| start >= from)
            && recorded.param("end_time").is_none_or(|to| start <= to)
    };
    let listed: Vec<&Value> = state.calls.iter().filter(within).collect();
    let total = listed.len();
    let objects: Vec<Value> = listed
        .into_iter()
        .skip(offset)
        .take(limit)
        .cloned()
        .collect();
    Ok(json_answer(
        200,
        &json!({
            "meta": {
                "limit": limit,
                "offset": offset,
                "next": null,
                "previous": null,
                "total_count": total
            },
            "objects": objects
        }),
    ))
}
