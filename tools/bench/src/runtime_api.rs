//! A local Lambda Runtime API (version 2018-06-01): the HTTP interface a custom runtime's
//! `bootstrap` polls for work. Enough of it to drive a real bootstrap exactly as Lambda
//! does, and to time each invocation from the moment its event is handed out.
//!
//! | request                                             | answer                          |
//! |-----------------------------------------------------|---------------------------------|
//! | `GET  /2018-06-01/runtime/invocation/next`          | waits for an event; 200 + event |
//! | `POST /2018-06-01/runtime/invocation/{id}/response` | completes `id`; 202             |
//! | `POST /2018-06-01/runtime/invocation/{id}/error`    | fails `id`; 202                 |
//! | `POST /2018-06-01/runtime/init/error`               | records an init failure; 202    |
//!
//! An unknown request id is a 400, an unknown path a 404, as Lambda answers them.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

const PREFIX: &str = "/2018-06-01/runtime";

/// The functions' configured timeout (template.yaml): the deadline each event carries.
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(8);

/// How an invocation ended, as the function reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `POST …/{id}/response`: the handler's result.
    Response(Bytes),
    /// `POST …/{id}/error`: the handler failed.
    Error {
        error_type: Option<String>,
        body: Bytes,
    },
}

/// One finished invocation, timed by the server.
#[derive(Debug)]
pub struct Completion {
    pub request_id: String,
    /// When the `/next` answer carrying the event was handed to the connection.
    pub handed_out: Instant,
    /// When the function's response (or error) had fully arrived.
    pub completed: Instant,
    pub outcome: Outcome,
}

impl Completion {
    /// The function's share of the invocation: event handed out → response received.
    pub fn latency(&self) -> Duration {
        self.completed.duration_since(self.handed_out)
    }
}

/// The promise of an invocation queued with [`RuntimeApi::submit`].
pub type Ticket = oneshot::Receiver<Completion>;

/// A Runtime API server on 127.0.0.1, for one function process.
pub struct RuntimeApi {
    addr: SocketAddr,
    queue: mpsc::UnboundedSender<Pending>,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

struct Shared {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>,
    in_flight: Mutex<HashMap<String, InFlight>>,
    first_poll: watch::Sender<Option<Instant>>,
    init_error: watch::Sender<Option<String>>,
    next_id: AtomicU64,
    function_arn: String,
}

struct Pending {
    event: Bytes,
    done: oneshot::Sender<Completion>,
}

struct InFlight {
    handed_out: Instant,
    done: oneshot::Sender<Completion>,
}

impl RuntimeApi {
    /// Listens on a free loopback port for the function named `function_name`.
    pub async fn start(function_name: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (queue, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(receiver),
            in_flight: Mutex::new(HashMap::new()),
            first_poll: watch::Sender::new(None),
            init_error: watch::Sender::new(None),
            next_id: AtomicU64::new(1),
            function_arn: format!(
                "arn:aws:lambda:ap-south-1:123456789012:function:{function_name}"
            ),
        });
        let server = tokio::spawn(serve(listener, shared.clone()));
        Ok(Self {
            addr,
            queue,
            shared,
            server,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues an event for the next `/next`; the ticket resolves when it completes.
    pub fn submit(&self, event: Bytes) -> Ticket {
        let (done, ticket) = oneshot::channel();
        // The receiver lives in `shared`, which `self` keeps alive: sending cannot fail.
        let _ = self.queue.send(Pending { event, done });
        ticket
    }

    /// When the function first asked for work (waits for it).
    pub async fn first_poll(&self) -> Instant {
        let mut first = self.shared.first_poll.subscribe();
        let polled = first.wait_for(Option::is_some).await.map(|polled| *polled);
        match polled {
            Ok(Some(instant)) => instant,
            // The sender lives in `shared`, as long as `self`.
            _ => std::future::pending().await,
        }
    }

    /// Resolves with the reason once the function reports `/init/error`.
    pub async fn init_failure(&self) -> String {
        let mut failure = self.shared.init_error.subscribe();
        let reason = failure
            .wait_for(Option::is_some)
            .await
            .map(|reason| reason.clone());
        match reason {
            Ok(Some(reason)) => reason,
            _ => std::future::pending().await,
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        // Dropping the accept loop drops its JoinSet, which aborts every connection.
        self.server.abort();
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // Small request/response pairs: never wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |request| route(shared.clone(), request));
                        // A connection ends when the function exits; nothing to report.
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                Err(error) => {
                    eprintln!("runtime API: accept failed: {error}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next() => {}
        }
    }
}

type Answer = Response<Full<Bytes>>;

/// What a request path under the prefix asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Next,
    Response(&'a str),
    Error(&'a str),
    InitError,
    Unknown,
}

fn parse_route<'a>(method: &Method, path: &'a str) -> Route<'a> {
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Route::Unknown;
    };
    match (method, rest) {
        (&Method::GET, "/invocation/next") => Route::Next,
        (&Method::POST, "/init/error") => Route::InitError,
        (&Method::POST, rest) => {
            let Some((id, action)) = rest
                .strip_prefix("/invocation/")
                .and_then(|rest| rest.split_once('/'))
            else {
                return Route::Unknown;
            };
            match action {
                _ if id.is_empty() => Route::Unknown,
                "response" => Route::Response(id),
                "error" => Route::Error(id),
                _ => Route::Unknown,
            }
        }
        _ => Route::Unknown,
    }
}

async fn route(shared: Arc<Shared>, request: Request<Incoming>) -> Result<Answer, Infallible> {
    let path = request.uri().path().to_owned();
    let answer = match parse_route(request.method(), &path) {
        Route::Next => next(&shared).await,
        Route::Response(id) => complete(&shared, id, None, request).await,
        Route::Error(id) => {
            let error_type = header(&request, "lambda-runtime-function-error-type");
            complete(&shared, id, Some(error_type), request).await
        }
        Route::InitError => init_error(&shared, request).await,
        Route::Unknown => failure(StatusCode::NOT_FOUND, "UnknownPath", &path),
    };
    Ok(answer)
}

/// `GET …/invocation/next`: blocks until an event is queued, then hands it out.
async fn next(shared: &Shared) -> Answer {
    let polled = Instant::now();
    shared.first_poll.send_if_modified(|first| {
        let unset = first.is_none();
        if unset {
            *first = Some(polled);
        }
        unset
    });
    let pending = shared.queue.lock().await.recv().await;
    let Some(pending) = pending else {
        return failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ShuttingDown",
            "no more events",
        );
    };
    let request_id = request_id(shared.next_id.fetch_add(1, Ordering::Relaxed));
    let deadline_ms = (SystemTime::now() + FUNCTION_TIMEOUT)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    let answer = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("lambda-runtime-aws-request-id", &request_id)
        .header("lambda-runtime-deadline-ms", deadline_ms.to_string())
        .header("lambda-runtime-invoked-function-arn", &shared.function_arn)
        .header("lambda-runtime-trace-id", trace_id(&request_id))
        .body(Full::new(pending.event));
    let answer = match answer {
        Ok(answer) => answer,
        Err(error) => {
            return failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal",
                &error.to_string(),
            )
        }
    };
    let handed_out = Instant::now();
    lock(&shared.in_flight).insert(
        request_id,
        InFlight {
            handed_out,
            done: pending.done,
        },
    );
    answer
}

/// `POST …/invocation/{id}/response` and `…/error`.
async fn complete(
    shared: &Shared,
    id: &str,
    error_type: Option<Option<String>>,
    request: Request<Incoming>,
) -> Answer {
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(error) => return failure(StatusCode::BAD_REQUEST, "InvalidBody", &error.to_string()),
    };
    let completed = Instant::now();
    let Some(in_flight) = lock(&shared.in_flight).remove(id) else {
        return failure(StatusCode::BAD_REQUEST, "InvalidRequestID", id);
    };
    let outcome = match error_type {
        None => Outcome::Response(body),
        Some(error_type) => Outcome::Error { error_type, body },
    };
    // The driver may have stopped waiting (a timeout); the function still gets its 202.
    let _ = in_flight.done.send(Completion {
        request_id: id.to_owned(),
        handed_out: in_flight.handed_out,
        completed,
        outcome,
    });
    accepted()
}

/// `POST …/init/error`.
async fn init_error(shared: &Shared, request: Request<Incoming>) -> Answer {
    let error_type = header(&request, "lambda-runtime-function-error-type")
        .unwrap_or_else(|| "Runtime.Unknown".to_owned());
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(error) => return failure(StatusCode::BAD_REQUEST, "InvalidBody", &error.to_string()),
    };
    let reason = format!("{error_type}: {}", String::from_utf8_lossy(&body));
    shared.init_error.send_replace(Some(reason));
    accepted()
}

fn header(request: &Request<Incoming>, name: &str) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

fn accepted() -> Answer {
    json(StatusCode::ACCEPTED, r#"{"status":"OK"}"#.to_owned())
}

fn failure(status: StatusCode, error_type: &str, message: &str) -> Answer {
    let body = serde_json::json!({ "errorType": error_type, "errorMessage": message });
    json(status, body.to_string())
}

fn json(status: StatusCode, body: String) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from(body)));
    *answer.status_mut() = status;
    answer.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    answer
}

/// A UUID-shaped request id, unique within this server.
fn request_id(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

/// An X-Ray trace header of the shape Lambda sends (not sampled).
fn trace_id(request_id: &str) -> String {
    let tail = &request_id[request_id.len() - 12..];
    format!("Root=1-00000000-000000000000{tail};Parent=0000{tail};Sampled=0")
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking handler cannot leave the map half-updated: keep serving.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    #[test]
    fn routes() {
        let get = &Method::GET;
        let post = &Method::POST;
        assert_eq!(
            parse_route(get, "/2018-06-01/runtime/invocation/next"),
            Route::Next
        );
        assert_eq!(
            parse_route(post, "/2018-06-01/runtime/invocation/abc/response"),
            Route::Response("abc")
        );
        assert_eq!(
            parse_route(post, "/2018-06-01/runtime/invocation/abc/error"),
            Route::Error("abc")
        );
        assert_eq!(
            parse_route(post, "/2018-06-01/runtime/init/error"),
            Route::InitError
        );
        for (method, path) in [
            (post, "/2018-06-01/runtime/invocation/next"),
            (get, "/2018-06-01/runtime/invocation/abc/response"),
            (post, "/2018-06-01/runtime/invocation//response"),
            (post, "/2018-06-01/runtime/invocation/abc/other"),
            (get, "/2018-06-01/runtime/init/error"),
            (get, "/2020-01-01/runtime/invocation/next"),
        ] {
            assert_eq!(parse_route(method, path), Route::Unknown, "{method} {path}");
        }
    }

    #[test]
    fn ids_and_trace_headers_have_lambdas_shape() {
        let id = request_id(0x2a);
        assert_eq!(id, "00000000-0000-4000-8000-00000000002a");
        assert_eq!(
            trace_id(&id),
            "Root=1-00000000-00000000000000000000002a;Parent=000000000000002a;Sampled=0"
        );
    }

    /// One HTTP/1.1 exchange on a fresh connection; returns the raw answer.
    async fn exchange(addr: SocketAddr, request: String) -> String {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("read");
        String::from_utf8(answer).expect("utf-8 answer")
    }

    fn post(path: &str, body: &str, extra: &str) -> String {
        format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{extra}content-length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    #[tokio::test]
    async fn hands_out_events_and_takes_back_responses() {
        let api = RuntimeApi::start("knowlarity").await.expect("start");
        let addr = api.addr();
        let ticket = api.submit(Bytes::from_static(br#"{"hello":1}"#));

        let next = "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
        let answer = exchange(addr, next.to_owned()).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        let answer = answer.to_ascii_lowercase();
        let id = request_id(1);
        assert!(answer.contains(&format!("lambda-runtime-aws-request-id: {id}\r\n")));
        assert!(answer.contains("lambda-runtime-deadline-ms: "));
        assert!(answer.contains(
            "lambda-runtime-invoked-function-arn: arn:aws:lambda:ap-south-1:123456789012:function:knowlarity\r\n"
        ));
        assert!(answer.contains("lambda-runtime-trace-id: root=1-"));
        assert!(answer.ends_with(r#"{"hello":1}"#));
        api.first_poll().await;

        let unknown = post("/2018-06-01/runtime/invocation/nope/response", "{}", "");
        assert!(exchange(addr, unknown).await.starts_with("HTTP/1.1 400"));

        let path = format!("/2018-06-01/runtime/invocation/{id}/response");
        let answer = exchange(addr, post(&path, r#"{"ok":true}"#, "")).await;
        assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
        let completion = ticket.await.expect("completed");
        assert_eq!(completion.request_id, id);
        assert_eq!(
            completion.outcome,
            Outcome::Response(Bytes::from_static(br#"{"ok":true}"#))
        );
        assert!(completion.completed >= completion.handed_out);

        // A second response to the same id is refused.
        assert!(exchange(addr, post(&path, "{}", ""))
            .await
            .starts_with("HTTP/1.1 400"));
    }

    #[tokio::test]
    async fn records_invocation_and_init_errors() {
        let api = RuntimeApi::start("knowlarity").await.expect("start");
        let addr = api.addr();
        let ticket = api.submit(Bytes::from_static(b"{}"));
        let next = "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
        exchange(addr, next.to_owned()).await;
        let path = format!("/2018-06-01/runtime/invocation/{}/error", request_id(1));
        let kind = "lambda-runtime-function-error-type: Handler.Boom\r\n";
        let answer = exchange(addr, post(&path, r#"{"errorMessage":"boom"}"#, kind)).await;
        assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
        assert_eq!(
            ticket.await.expect("completed").outcome,
            Outcome::Error {
                error_type: Some("Handler.Boom".to_owned()),
                body: Bytes::from_static(br#"{"errorMessage":"boom"}"#),
            }
        );

        let kind = "lambda-runtime-function-error-type: Runtime.InitError\r\n";
        let init = post("/2018-06-01/runtime/init/error", "no config", kind);
        assert!(exchange(addr, init).await.starts_with("HTTP/1.1 202"));
        assert_eq!(api.init_failure().await, "Runtime.InitError: no config");

        let other = "GET /elsewhere HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
        assert!(exchange(addr, other.to_owned())
            .await
            .starts_with("HTTP/1.1 404"));
    }
}
