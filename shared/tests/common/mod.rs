//! Helpers shared by the integration tests: apps wired like production, requests built
//! from the event files, rows read back.

#![allow(dead_code)] // each test binary uses its own subset

pub mod bus;
pub mod graph;
pub mod http;
pub mod knowlarity;
pub mod local_aws;
pub mod proxy;
pub mod queue;
pub mod sam_local;
pub mod sns;

use std::path::{Path, PathBuf};

use lambda_http::{Body, Request};
use serde_json::Value;
use shared::domain::auth::ApiKeys;
use shared::domain::source::Source;
use shared::infra::store::{Store, StoreSettings};
use shared::App;
use sqlx::postgres::PgConnectOptions;
use sqlx::PgPool;

/// The development key of a source, as `make dev` and the event files use it.
pub fn dev_key(source: &Source) -> String {
    format!("local-dev-{}-key", source.slug)
}

/// An app for `source` with its development key, on the production pool settings.
pub fn app(source: &'static Source, options: PgConnectOptions) -> App {
    App::new(
        source,
        ApiKeys::new([dev_key(source)]),
        Store::new(options, StoreSettings::default()),
    )
}

/// Meta's development settings, as `make dev` and the event files use them.
pub const META_APP_SECRET: &str = "local-dev-meta-app-secret";
pub const META_VERIFY_TOKEN: &str = "local-dev-meta-verify-token";
pub const META_PAGE_TOKEN: &str = "local-dev-meta-page-token";
pub const META_PAGE_ID: &str = "102030405060708";

pub fn meta_secrets() -> shared::domain::meta::MetaSecrets {
    shared::domain::meta::MetaSecrets::new(
        vec![META_APP_SECRET.into()],
        META_VERIFY_TOKEN.into(),
        META_PAGE_TOKEN.into(),
        META_PAGE_ID.into(),
    )
    .expect("valid Meta settings")
}

/// Meta's side, reading leads from the Graph API at `graph_url` (a stand-in).
pub fn meta(graph_url: &str) -> shared::infra::graph::Meta {
    let settings = shared::infra::graph::GraphSettings {
        base_url: graph_url.to_owned(),
        ..Default::default()
    };
    shared::infra::graph::Meta::new(
        shared::infra::secrets::Setting::fixed(meta_secrets()),
        shared::infra::graph::Graph::new(settings),
    )
}

/// A lead as the Graph API gives it, of the development page's form, created at the
/// events' time, with this name and phone.
pub fn meta_lead(id: &str, name: &str, phone: &str) -> Value {
    let mut lead = graph::lead(id, "444555666777888", 1_795_427_990);
    lead["field_data"] = serde_json::json!([
        {"name": "full_name", "values": [name]},
        {"name": "phone_number", "values": [phone]},
        {"name": "vehicle_model", "values": ["MG Windsor EV"]}
    ]);
    lead
}

/// An app for a signed source (Meta), on the production pool settings.
pub fn meta_app(source: &'static Source, options: PgConnectOptions, graph_url: &str) -> App {
    App::signed(
        source,
        meta(graph_url),
        Store::new(options, StoreSettings::default()),
    )
}

pub fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// An API Gateway event file, decoded the way the Lambda runtime decodes it.
pub fn event_request(path: &Path) -> Request {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    lambda_http::request::from_str(&text)
        .unwrap_or_else(|error| panic!("{} is not an API Gateway event: {error}", path.display()))
}

/// A minimal HTTP API v2 request for tests that vary headers or body freely.
pub fn request(api_key: Option<&str>, content_type: Option<&str>, body: Vec<u8>) -> Request {
    request_with(api_key, content_type, &[], body)
}

/// As [`request`], with more headers.
pub fn request_with(
    api_key: Option<&str>,
    content_type: Option<&str>,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Request {
    let mut builder = lambda_http::http::Request::builder()
        .method("POST")
        .uri("https://leads.example.com/admin/mg-digital-leads/source/test");
    if let Some(key) = api_key {
        builder = builder.header("x-api-key", key);
    }
    if let Some(content_type) = content_type {
        builder = builder.header("content-type", content_type);
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::from(body)).expect("valid test request")
}

/// What the function answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("response body is JSON")
    }

    /// The id of a 201 (or 200 duplicate) answer.
    pub fn id(&self) -> i64 {
        self.json()["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("a numeric id in {}", self.body))
    }
}

pub async fn call(app: &App, request: Request) -> Answer {
    let response = shared::edge::http::handle(app, request).await;
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = match response.body() {
        Body::Text(text) => text.clone(),
        other => panic!("expected a text body, got {other:?}"),
    };
    Answer {
        status: response.status().as_u16(),
        content_type,
        body,
    }
}

/// A stored row, as the CRM sees it.
#[derive(Debug, PartialEq, sqlx::FromRow)]
pub struct Row {
    pub platform: Option<String>,
    pub name: Option<String>,
    pub phone_number: Option<String>,
    pub car_model: Option<String>,
    pub lead_url: Option<String>,
    pub campaign: Option<String>,
    pub status: Option<String>,
    pub payload: Option<sqlx::types::Json<Value>>,
}

pub async fn row(pool: &PgPool, id: i64) -> Row {
    sqlx::query_as::<_, Row>(
        r#"SELECT platform, name, phone_number, car_model, lead_url, campaign, status, payload
           FROM public."mg-digital-leads" WHERE id = $1"#,
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .expect("the row of a 201 exists")
}

pub async fn count(pool: &PgPool) -> i64 {
    sqlx::query_scalar(r#"SELECT count(*) FROM public."mg-digital-leads""#)
        .fetch_one(pool)
        .await
        .expect("count rows")
}

/// A pool of the test's own, to read what the functions stored.
pub async fn pool(options: &PgConnectOptions) -> PgPool {
    PgPool::connect_with(options.clone())
        .await
        .expect("connect a test pool")
}

/// Collects what the JSON subscriber writes.
#[derive(Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A capture installed on this thread; it ends when this drops.
pub struct Installed {
    _default: tracing::subscriber::DefaultGuard,
    _anchor: tracing::Dispatch,
}

impl Captured {
    /// Installs the JSON subscriber on this thread at `level`, writing here.
    ///
    /// Tracing caches each callsite's interest for the whole process, and while one
    /// dispatcher is registered it asks only the registering thread's: a sibling test
    /// with no subscriber would mark the request line "never" for everyone. A second
    /// dispatcher held alongside makes every registration ask all live dispatchers,
    /// this capture's among them.
    pub fn install(&self, level: tracing::level_filters::LevelFilter) -> Installed {
        let anchor = tracing::Dispatch::new(shared::edge::telemetry::json_subscriber(
            level,
            std::io::sink,
        ));
        let writer = self.clone();
        let subscriber = shared::edge::telemetry::json_subscriber(level, move || writer.clone());
        Installed {
            _default: tracing::subscriber::set_default(subscriber),
            _anchor: anchor,
        }
    }

    /// Everything written.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("log buffer").clone()).expect("utf-8")
    }

    /// The request lines (those naming a source), each parsed.
    pub fn lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|line| serde_json::from_str(line).expect("every log line is JSON"))
            .filter(|line: &Value| line.get("source").is_some())
            .collect()
    }
}

/// The SQLSTATE of a database error, if the server answered with one.
pub fn sqlstate(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(database) => database.code().map(|code| code.into_owned()),
        _ => None,
    }
}

/// Writes `block` (its markers included) in place of the one between `begin` and `end`,
/// or at the document's end.
pub fn replace_block(path: &str, begin: &str, end: &str, block: &str) {
    let old = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc = match (old.find(begin), old.find(end)) {
        (Some(start), Some(stop)) if start < stop => {
            format!("{}{block}{}", &old[..start], &old[stop + end.len()..])
        }
        _ => format!("{}\n\n{block}\n", old.trim_end()),
    };
    std::fs::write(path, doc).unwrap_or_else(|e| panic!("{path}: {e}"));
}
