//! `sam local start-lambda` and `start-api` on the `sam build` output (`.aws-sam/build`):
//! the real arm64 bootstraps, each in SAM's container under the Lambda Runtime Interface
//! Emulator, given an event file as `sam local invoke -e` gives it, or its request over
//! HTTP. One warm container per function serves every event, instead of one container
//! start per event.
//!
//! Needs a Docker engine, the base image and `sam`: `scripts/sam-local-test.sh` (run by
//! `.ci/run`) prepares them with `scripts/sam-local.sh engine`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::postgres::PgConnectOptions;

use super::Answer;

/// The host name SAM's containers reach the host by (`--add-host ...:host-gateway`).
pub const DOCKER_HOST: &str = "host.docker.internal";

/// The docker bridge's address, where a stand-in must listen for containers to reach it.
pub fn bridge_address() -> String {
    std::env::var("SAM_LOCAL_BRIDGE_ADDRESS").unwrap_or_else(|_| "172.17.0.1".to_owned())
}

/// The template's logical id of a function: `knowlarity` is `KnowlarityFunction`.
pub fn function_id(slug: &str) -> String {
    let mut chars = slug.chars();
    let first = chars.next().map(|c| c.to_ascii_uppercase());
    format!(
        "{}{}Function",
        first.into_iter().collect::<String>(),
        chars.as_str()
    )
}

/// The same database as `options`, as a container reaches it.
pub fn container_database_url(options: &PgConnectOptions) -> String {
    format!(
        "postgres://{}@{DOCKER_HOST}:{}/{}",
        options.get_username(),
        options.get_port(),
        options.get_database().expect("a test database name"),
    )
}

/// Each source function's `--env-vars`: those of `local/env.example.json`, the file the
/// engineers' commands use (so the test runs what they run), pointed at the test database
/// and, for a signed source, at the Graph API stand-in at `graph_url`.
pub fn env_vars(options: &PgConnectOptions, graph_url: &str) -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let example = root.join("local/env.example.json");
    let text = std::fs::read_to_string(&example).expect("read local/env.example.json");
    let example: Value = serde_json::from_str(&text).expect("local/env.example.json is JSON");
    let database_url = container_database_url(options);
    let mut env = serde_json::Map::new();
    for source in shared::domain::source::ALL {
        let id = function_id(source.slug);
        let mut vars = example
            .get(&id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} missing from local/env.example.json"));
        vars["DATABASE_URL"] = json!(database_url);
        if source.auth == shared::domain::source::Auth::Signature {
            vars["GRAPH_API_URL"] = json!(graph_url);
        }
        env.insert(id, vars);
    }
    // The leads feed reads the same database (as its owner here, not lead_reader).
    let mut feed = example
        .get("FeedFunction")
        .cloned()
        .expect("FeedFunction missing from local/env.example.json");
    feed["DATABASE_URL"] = json!(database_url);
    env.insert("FeedFunction".into(), feed);
    Value::Object(env)
}

/// A `sam local start-lambda` or `start-api` of the test's, stopped when dropped.
pub struct SamLocal {
    child: Child,
    url: String,
    env_file: PathBuf,
    client: reqwest::Client,
}

impl SamLocal {
    /// `sam local start-lambda`, for [`SamLocal::invoke`].
    pub async fn start_lambda(env: &Value) -> Self {
        Self::start("start-lambda", env).await
    }

    /// `sam local start-api`, for [`SamLocal::replay`].
    pub async fn start_api(env: &Value) -> Self {
        Self::start("start-api", env).await
    }

    /// Starts `sam local <command>` with `env` as its `--env-vars` (function id to
    /// variables) and waits until it answers.
    async fn start(command: &str, env: &Value) -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let template = root.join(".aws-sam/build/template.yaml");
        assert!(
            template.exists(),
            "{template:?} missing: run `sam build` first"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let env_file = std::env::temp_dir().join(format!("sam-local-env-{port}.json"));
        std::fs::write(&env_file, env.to_string()).expect("write the --env-vars file");
        // Through python, which restores Ctrl-C's default before running sam: a shell that
        // started this test in the background ignores SIGINT, sam would inherit that, and
        // then neither stop its containers nor stop at all on the SIGINT of `drop`.
        let child = Command::new("python3")
            .current_dir(&root)
            .args([
                "-c",
                "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); \
                 os.execvp(sys.argv[1], sys.argv[1:])",
                "sam",
            ])
            .args(["local", command, "--template"])
            .arg(&template)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--env-vars")
            .arg(&env_file)
            .args(["--add-host", &format!("{DOCKER_HOST}:host-gateway")])
            .args(["--skip-pull-image", "--warm-containers", "LAZY"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("run `sam local {command}` (pip install aws-sam-cli): {e}"));
        let lambda = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            env_file,
            client: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "sam local {command} did not listen within 120 s"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        lambda
    }

    /// Invokes the function with the event file's content, as `sam local invoke -e` does,
    /// and reads the API Gateway response it returns.
    pub async fn invoke(&self, function: &str, event: &Path) -> Answer {
        let body = std::fs::read(event).unwrap_or_else(|e| panic!("read {event:?}: {e}"));
        let response = self
            .client
            .post(format!(
                "{}/2015-03-31/functions/{function}/invocations",
                self.url
            ))
            .body(body)
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .unwrap_or_else(|e| panic!("invoke {function} with {event:?}: {e}"));
        let text = response.text().await.expect("the invocation's answer");
        Self::answer(function, event, &text)
    }

    /// Sends the request an API Gateway event file describes to its route, as a partner
    /// (or Meta) would over HTTP.
    pub async fn replay(&self, event: &Path) -> Answer {
        let request = super::event_request(event);
        let uri = request.uri();
        // The route, without a stage prefix the event may carry.
        let path = uri.path();
        let route = path.find("/admin/").map_or(path, |at| &path[at..]);
        let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
        let mut outgoing = self
            .client
            .request(
                request.method().clone(),
                format!("{}{route}{query}", self.url),
            )
            .timeout(Duration::from_secs(120));
        for (name, value) in request.headers() {
            if name != "host" && name != "content-length" {
                outgoing = outgoing.header(name, value);
            }
        }
        let response = outgoing
            .body(request.body().as_ref().to_vec())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{route} ({event:?}): {e}"));
        Answer {
            status: response.status().as_u16(),
            content_type: response
                .headers()
                .get("content-type")
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            body: response.text().await.expect("the route's answer"),
        }
    }

    /// An API Gateway response, as the function returned it.
    fn answer(function: &str, event: &Path, text: &str) -> Answer {
        let answer: Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("{function} {event:?} answered {text}: {e}"));
        let header = |name: &str| {
            let find = |headers: &Value| {
                headers.as_object().and_then(|map| {
                    map.iter()
                        .find(|(key, _)| key.eq_ignore_ascii_case(name))
                        .map(|(_, value)| value.clone())
                })
            };
            match find(&answer["headers"]) {
                Some(Value::String(value)) => value,
                _ => match find(&answer["multiValueHeaders"]) {
                    Some(Value::Array(values)) => values
                        .first()
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    _ => String::new(),
                },
            }
        };
        assert_ne!(
            answer["isBase64Encoded"],
            Value::Bool(true),
            "{function} {event:?}: a text body, got {text}"
        );
        Answer {
            status: answer["statusCode"]
                .as_u64()
                .and_then(|status| u16::try_from(status).ok())
                .unwrap_or_else(|| panic!("{function} {event:?}: no statusCode in {text}")),
            content_type: header("content-type"),
            body: answer["body"].as_str().unwrap_or_default().to_owned(),
        }
    }
}

impl Drop for SamLocal {
    /// Ctrl-C, so SAM stops and removes its warm containers; killed if it lingers.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.env_file);
    }
}
