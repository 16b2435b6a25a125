//! One function process: the release bootstrap, started as Lambda starts it (its own
//! Runtime API, Lambda's environment, nothing inherited), driven, measured and killed;
//! and the events it is sent, each one a distinct lead.

use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hyper::body::Bytes;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};

use crate::runtime_api::{Completion, Outcome, RuntimeApi, Ticket};
use crate::Error;

/// The key the bench gives the function (`API_KEYS`) and puts in every event.
pub const API_KEY: &str = "bench-key";

/// The function and how it is started.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub bootstrap: PathBuf,
    pub database_url: String,
    /// `LOG_LEVEL`, as template.yaml sets it (`info` in production: one line per request).
    pub log_level: String,
    /// Where the function's stdout/stderr go; `None` discards them (after reading them
    /// from the pipe, as Lambda's log collection does).
    pub log_file: Option<PathBuf>,
    /// More environment, after Lambda's own.
    pub env: Vec<(String, String)>,
}

/// Longer than anything the function does on a healthy database (its own bound is 5 s).
const WAIT_LIMIT: Duration = Duration::from_secs(15);

pub struct Function {
    api: RuntimeApi,
    child: Child,
    pid: u32,
    /// Just before the process was spawned.
    pub spawned: Instant,
}

impl Function {
    /// Spawns the bootstrap against `api`. Events may be queued on `api` before this, so
    /// that the first `/next` is answered at once, as for a cold start with a request
    /// waiting.
    pub fn spawn(spec: &Spec, api: RuntimeApi) -> Result<Self, Error> {
        let log = match &spec.log_file {
            None => None,
            Some(path) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|error| format!("cannot open {}: {error}", path.display()))?,
            ),
        };
        let mut command = Command::new(&spec.bootstrap);
        command
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", api.addr().to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &spec.name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", spec.name),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_REGION", "ap-south-1")
            .env("AWS_DEFAULT_REGION", "ap-south-1")
            .env("TZ", ":UTC")
            .env("LOG_LEVEL", &spec.log_level)
            .env("DATABASE_URL", &spec.database_url)
            .env("API_KEYS", API_KEY)
            .envs(spec.env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            // Lambda reads a function's output through a pipe: writing a log line costs
            // what it costs there, not what writing to /dev/null would.
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Safety net if the bench itself fails half-way; `stop` is the normal end.
            .kill_on_drop(true);
        let spawned = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|error| format!("cannot start {}: {error}", spec.bootstrap.display()))?;
        if let Some(stdout) = child.stdout.take() {
            drain(stdout, log.as_ref().and_then(|file| file.try_clone().ok()));
        }
        if let Some(stderr) = child.stderr.take() {
            drain(stderr, log);
        }
        let pid = child
            .id()
            .ok_or("the function exited before its pid could be read")?;
        Ok(Self {
            api,
            child,
            pid,
            spawned,
        })
    }

    /// Waits for the first request for work.
    pub async fn ready(&mut self) -> Result<Instant, Error> {
        let Self { api, child, .. } = self;
        settle(child, api, "its first /next", api.first_poll()).await
    }

    /// Waits for a queued invocation to complete.
    pub async fn wait(&mut self, ticket: Ticket) -> Result<Completion, Error> {
        let Self { api, child, .. } = self;
        settle(child, api, "a response", ticket)
            .await?
            .map_err(|_| "the Runtime API dropped an invocation".into())
    }

    /// Runs one invocation of `event`.
    pub async fn invoke(&mut self, event: Bytes) -> Result<Completion, Error> {
        let ticket = self.api.submit(event);
        self.wait(ticket).await
    }

    /// The process's peak resident set so far (`VmHWM`), in bytes.
    pub fn peak_rss(&self) -> Result<u64, Error> {
        let path = format!("/proc/{}/status", self.pid);
        let status = std::fs::read_to_string(&path)
            .map_err(|error| format!("cannot read {path}: {error}"))?;
        vm_hwm(&status).ok_or_else(|| format!("no VmHWM in {path}").into())
    }

    /// Kills the process (by its own pid, through its handle) and reaps it.
    pub async fn stop(mut self) -> Result<(), Error> {
        self.child
            .kill()
            .await
            .map_err(|error| format!("cannot kill the function (pid {}): {error}", self.pid).into())
    }
}

/// `work`, unless the process exits, reports an init error, or takes too long.
async fn settle<T>(
    child: &mut Child,
    api: &RuntimeApi,
    what: &str,
    work: impl Future<Output = T>,
) -> Result<T, Error> {
    tokio::select! {
        value = work => Ok(value),
        status = child.wait() => {
            let status = status.map_or_else(|error| error.to_string(), |status| status.to_string());
            Err(format!(
                "the function exited ({status}) while the bench waited for {what}; \
                 run with --function-log FILE to see why"
            )
            .into())
        }
        reason = api.init_failure() => Err(format!("the function reported an init error: {reason}").into()),
        () = tokio::time::sleep(WAIT_LIMIT) => {
            Err(format!("no {what} from the function within {WAIT_LIMIT:?}").into())
        }
    }
}

/// `VmHWM:   12345 kB` → bytes.
fn vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Reads a pipe from the function until it closes, keeping what it reads in `file`.
fn drain(mut pipe: impl AsyncRead + Unpin + Send + 'static, mut file: Option<std::fs::File>) {
    tokio::spawn(async move {
        let mut buffer = vec![0; 16 * 1024];
        while let Ok(read @ 1..) = pipe.read(&mut buffer).await {
            if let Some(log) = file.as_mut() {
                // A debugging aid: a failed write costs the copy, not the run.
                let _ = log.write_all(&buffer[..read]);
            }
        }
    });
}

/// Where a sequence number goes in an event: 12 characters, always replaced by 12 digits,
/// so every event has the same length.
const MARK: &str = "BENCHSEQMARK";

/// The body fields made unique per invocation, when present (Knowlarity's call ids).
const UNIQUE_FIELDS: [(&str, &str); 2] =
    [("uuid", "5f1c2e7a-8b3d-4c1e-9a2f-"), ("callid", "K-BENCH-")];

/// Every invocation is a distinct lead, as in production: the event of `events/` with a
/// sequence number in its gateway request id and in the body's call ids (`uuid`,
/// `callid`; a `bench_seq` field when the body has neither), and the bench's key in place
/// of the development key. Nothing then depends on inserting the same lead over and over
/// (a duplicate check, an idempotency key).
#[derive(Debug, Clone)]
pub struct EventTemplate {
    content_type: Option<String>,
    event: Vec<u8>,
    event_marks: Vec<usize>,
    body: String,
    body_marks: Vec<usize>,
}

/// Numbers every event and floor row of a bench run, so no two are alike.
static SEQUENCE: AtomicU64 = AtomicU64::new(1);

/// Starts the numbers of this run from the clock: a million a second apart, so the rows of
/// an earlier run kept with `--keep-rows` (or left by a failed one) are not taken for the
/// repeats of this run's leads.
pub fn start_sequence_from_clock() {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    SEQUENCE.store((seconds % 1_000_000) * 1_000_000 + 1, Ordering::Relaxed);
}

/// The next sequence number.
pub fn next_sequence() -> u64 {
    SEQUENCE.fetch_add(1, Ordering::Relaxed)
}

impl EventTemplate {
    /// Reads an API Gateway event (`events/<source>/*.json`).
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        Self::from_json(&text).map_err(|error| format!("{}: {error}", path.display()).into())
    }

    fn from_json(text: &str) -> Result<Self, String> {
        let mut event: Value =
            serde_json::from_str(text).map_err(|error| format!("not JSON: {error}"))?;
        let headers = event
            .get_mut("headers")
            .and_then(Value::as_object_mut)
            .ok_or("no headers object")?;
        headers.retain(|name, _| !name.eq_ignore_ascii_case("x-api-key"));
        headers.insert("x-api-key".to_owned(), Value::from(API_KEY));
        // A REST API event carries every header twice; lambda_http reads this copy.
        if let Some(multi) = event
            .get_mut("multiValueHeaders")
            .and_then(Value::as_object_mut)
        {
            multi.retain(|name, _| !name.eq_ignore_ascii_case("x-api-key"));
            multi.insert("x-api-key".to_owned(), Value::from(vec![API_KEY]));
        }
        let context = event
            .get_mut("requestContext")
            .and_then(Value::as_object_mut)
            .ok_or("no requestContext object")?;
        context.insert("requestId".to_owned(), Value::from(format!("bench-{MARK}")));
        let content_type = headers_content_type(&event);
        let base64 = event.get("isBase64Encoded").and_then(Value::as_bool) == Some(true);
        let body = match event.get("body").and_then(Value::as_str) {
            Some(body) if !base64 => unique_body(body)?,
            _ => return Err("needs a plain-text JSON body to make each lead unique".into()),
        };
        event["body"] = Value::from(body.clone());
        let event = serde_json::to_vec(&event).map_err(|error| error.to_string())?;
        Ok(Self {
            content_type,
            event_marks: marks(&event),
            event,
            body_marks: marks(body.as_bytes()),
            body,
        })
    }

    /// The event's `Content-Type` header.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// The event of invocation `sequence`.
    pub fn event(&self, sequence: u64) -> Bytes {
        Bytes::from(stamp(self.event.clone(), &self.event_marks, sequence))
    }

    /// The request body of `sequence` (what the function archives as `payload`).
    pub fn body(&self, sequence: u64) -> String {
        let body = stamp(self.body.clone().into_bytes(), &self.body_marks, sequence);
        String::from_utf8(body).expect("digits in place of ASCII keep the body UTF-8")
    }
}

fn headers_content_type(event: &Value) -> Option<String> {
    event
        .get("headers")?
        .as_object()?
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .and_then(|(_, value)| value.as_str())
        .map(str::to_owned)
}

/// `body` with its call ids replaced by ids carrying [`MARK`], textually, so the
/// partner's formatting is kept.
fn unique_body(body: &str) -> Result<String, String> {
    let fields: Value =
        serde_json::from_str(body).map_err(|error| format!("the body is not JSON: {error}"))?;
    let fields = fields.as_object().ok_or("the body is not a JSON object")?;
    let mut unique = body.to_owned();
    for (field, prefix) in UNIQUE_FIELDS {
        if let Some(old) = fields.get(field).and_then(Value::as_str) {
            let old = serde_json::to_string(old).map_err(|error| error.to_string())?;
            unique = unique.replacen(&old, &format!("\"{prefix}{MARK}\""), 1);
        }
    }
    if !unique.contains(MARK) {
        let open = unique.find('{').ok_or("the body is not a JSON object")?;
        unique.insert_str(open + 1, &format!("\"bench_seq\":\"{MARK}\","));
    }
    Ok(unique)
}

fn marks(bytes: &[u8]) -> Vec<usize> {
    bytes
        .windows(MARK.len())
        .enumerate()
        .filter(|(_, window)| *window == MARK.as_bytes())
        .map(|(at, _)| at)
        .collect()
}

fn stamp(mut bytes: Vec<u8>, marks: &[usize], sequence: u64) -> Vec<u8> {
    let digits = format!("{:012}", sequence % 1_000_000_000_000);
    for &at in marks {
        bytes[at..at + MARK.len()].copy_from_slice(digits.as_bytes());
    }
    bytes
}

/// Checks an invocation is the contract's 201 with `message`; returns the new row's id.
pub fn created_id(outcome: &Outcome, message: &str) -> Result<String, Error> {
    let body = match outcome {
        Outcome::Response(body) => body,
        Outcome::Error { error_type, body } => {
            return Err(format!(
                "invocation failed ({}): {}",
                error_type.as_deref().unwrap_or("no type"),
                String::from_utf8_lossy(body)
            )
            .into())
        }
    };
    let unexpected = || format!("unexpected response: {}", String::from_utf8_lossy(body));
    let response: Value = serde_json::from_slice(body).map_err(|_| unexpected())?;
    if response.get("statusCode").and_then(Value::as_u64) != Some(201) {
        return Err(unexpected().into());
    }
    let inner: Value = response
        .get("body")
        .and_then(Value::as_str)
        .and_then(|text| serde_json::from_str(text).ok())
        .ok_or_else(unexpected)?;
    if inner.get("message").and_then(Value::as_str) != Some(message) {
        return Err(unexpected().into());
    }
    match inner.get("id") {
        Some(Value::Number(id)) => Ok(id.to_string()),
        Some(Value::String(id)) => Ok(id.clone()),
        _ => Err(unexpected().into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_peak_rss() {
        let status =
            "Name:\tknowlarity\nVmPeak:\t  20000 kB\nVmHWM:\t    9216 kB\nVmRSS:\t 9000 kB\n";
        assert_eq!(vm_hwm(status), Some(9216 * 1024));
        assert_eq!(vm_hwm("Name:\tx\n"), None);
    }

    #[test]
    fn every_event_is_a_distinct_lead_with_the_bench_key() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/knowlarity/call-webhook.json");
        let template = EventTemplate::load(&path).unwrap();
        let (first, second) = (template.event(7), template.event(8));
        assert_eq!(first.len(), second.len());
        let event: Value = serde_json::from_slice(&first).unwrap();
        assert_eq!(event["headers"]["x-api-key"], API_KEY);
        assert_eq!(
            event["multiValueHeaders"]["x-api-key"],
            serde_json::json!([API_KEY])
        );
        assert_eq!(event["httpMethod"], "POST", "the REST API's event");
        assert_eq!(event["requestContext"]["requestId"], "bench-000000000007");
        let body = event["body"].as_str().unwrap();
        assert_eq!(body, template.body(7));
        let fields: Value = serde_json::from_str(body).unwrap();
        assert_eq!(fields["uuid"], "5f1c2e7a-8b3d-4c1e-9a2f-000000000007");
        assert_eq!(fields["callid"], "K-BENCH-000000000007");
        assert_eq!(fields["caller_id"], "+917330995416");
        // The partner's formatting is kept.
        assert!(body.starts_with("{\n  \"uuid\""));
        assert_ne!(template.body(7), template.body(8));
    }

    #[test]
    fn a_body_without_call_ids_gets_a_sequence_field() {
        let event = serde_json::json!({
            "version": "2.0",
            "headers": {"X-Api-Key": "dev"},
            "requestContext": {"requestId": "r"},
            "body": r#"{"mobile":"9876543210"}"#,
        });
        let template = EventTemplate::from_json(&event.to_string()).unwrap();
        assert_eq!(
            template.body(42),
            r#"{"bench_seq":"000000000042","mobile":"9876543210"}"#
        );
        let event: Value = serde_json::from_slice(&template.event(42)).unwrap();
        assert_eq!(event["headers"]["x-api-key"], API_KEY);
        assert!(event["headers"].get("X-Api-Key").is_none());

        let base64 = serde_json::json!({
            "headers": {}, "requestContext": {}, "body": "e30=", "isBase64Encoded": true,
        });
        assert!(EventTemplate::from_json(&base64.to_string()).is_err());
    }

    #[test]
    fn only_the_contracts_201_counts() {
        let message = "Knowlarity lead inserted successfully";
        let ok = |body: &str| {
            let response = serde_json::json!({
                "statusCode": 201,
                "headers": {"content-type": "application/json; charset=utf-8"},
                "body": body,
                "isBase64Encoded": false,
            });
            Outcome::Response(Bytes::from(response.to_string()))
        };
        let created = ok(r#"{"message":"Knowlarity lead inserted successfully","id":42}"#);
        assert_eq!(created_id(&created, message).unwrap(), "42");
        let text_id = ok(r#"{"message":"Knowlarity lead inserted successfully","id":"a-b"}"#);
        assert_eq!(created_id(&text_id, message).unwrap(), "a-b");

        let refused =
            serde_json::json!({"statusCode": 403, "body": r#"{"error":"Invalid API key"}"#});
        let refused = Outcome::Response(Bytes::from(refused.to_string()));
        assert!(created_id(&refused, message).is_err());
        assert!(created_id(&ok(r#"{"message":"other","id":1}"#), message).is_err());
        assert!(created_id(
            &ok(r#"{"message":"Knowlarity lead inserted successfully"}"#),
            message
        )
        .is_err());
        let failed = Outcome::Error {
            error_type: Some("Handler".into()),
            body: Bytes::from_static(b"{}"),
        };
        assert!(created_id(&failed, message).is_err());
    }
}
