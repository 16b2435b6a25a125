//! Contract rules the event files cannot show one by one: every pair of sources, the
//! exact size limit, several active keys, the bounded statements, and the log line.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use shared::auth::ApiKeys;
use shared::payload::MAX_BODY_BYTES;
use shared::source::{self, CARDEKHO, KNOWLARITY};
use shared::store::{Store, StoreSettings};
use shared::App;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tracing::level_filters::LevelFilter;

#[sqlx::test(migrations = "../migrations")]
async fn no_source_accepts_another_sources_key(_: PgPoolOptions, options: PgConnectOptions) {
    for target in source::ALL {
        let app = common::app(target, options.clone());
        for owner in source::ALL {
            let body = br#"{"name":"A","customer_name":"A","phone_number":"1","mobile":"1"}"#;
            let answer = common::call(
                &app,
                common::request(Some(&common::dev_key(owner)), None, body.to_vec()),
            )
            .await;
            let expected = if target.slug == owner.slug { 201 } else { 403 };
            assert_eq!(
                answer.status, expected,
                "{} key on {}",
                owner.slug, target.slug
            );
        }
    }
    let pool = sqlx::PgPool::connect_with(options).await.expect("connect");
    assert_eq!(common::count(&pool).await, 3);
}

/// A body of exactly `len` bytes carrying a valid CarDekho lead.
fn body_of_len(len: usize) -> Vec<u8> {
    let head = r#"{"name":"Ravi","phone_number":"9876543210","notes":""#;
    let tail = r#""}"#;
    let mut body = head.as_bytes().to_vec();
    body.resize(len - tail.len(), b'x');
    body.extend_from_slice(tail.as_bytes());
    body
}

#[sqlx::test(migrations = "../migrations")]
async fn the_size_limit_is_64_kib_exactly(_: PgPoolOptions, options: PgConnectOptions) {
    let app = common::app(&CARDEKHO, options);
    let key = common::dev_key(&CARDEKHO);
    let at_limit = common::call(
        &app,
        common::request(Some(&key), None, body_of_len(MAX_BODY_BYTES)),
    )
    .await;
    assert_eq!(at_limit.status, 201, "{}", at_limit.body);
    let over = common::call(
        &app,
        common::request(Some(&key), None, body_of_len(MAX_BODY_BYTES + 1)),
    )
    .await;
    assert_eq!(
        (over.status, over.body.as_str()),
        (413, r#"{"error":"Payload too large"}"#)
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn every_active_key_works_during_a_rotation(_: PgPoolOptions, options: PgConnectOptions) {
    let keys = ApiKeys::from_csv("old-knowlarity-key,new-knowlarity-key");
    let store = Store::new(options, StoreSettings::default());
    let app = App::new(&KNOWLARITY, keys, store);
    for (n, (key, status)) in [
        ("old-knowlarity-key", 201),
        ("new-knowlarity-key", 201),
        ("old-knowlarity-key,new-knowlarity-key", 403),
        ("new-knowlarity", 403),
    ]
    .into_iter()
    .enumerate()
    {
        // A different lead each time, so none is a repeat of another.
        let body = format!(r#"{{"phone":"{n}"}}"#).into_bytes();
        let request = common::request(Some(key), None, body);
        assert_eq!(common::call(&app, request).await.status, status, "{key}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn statements_are_bounded_on_the_server(_: PgPoolOptions, options: PgConnectOptions) {
    // Only the server's statement timeout can end the wait: the operation's is longer.
    let settings = StoreSettings {
        statement_timeout: Duration::from_millis(300),
        operation_timeout: Duration::from_secs(60),
        ..StoreSettings::default()
    };
    let app = App::new(
        &KNOWLARITY,
        ApiKeys::new([common::dev_key(&KNOWLARITY)]),
        Store::new(options.clone(), settings),
    );
    // Another session holds the table: the insert waits on its lock.
    let pool = common::pool(&options).await;
    let mut blocker = pool.begin().await.expect("begin");
    sqlx::query(r#"LOCK TABLE public."mg-digital-leads" IN ACCESS EXCLUSIVE MODE"#)
        .execute(&mut *blocker)
        .await
        .expect("lock");
    let started = std::time::Instant::now();
    let request = common::request(
        Some(&common::dev_key(&KNOWLARITY)),
        None,
        br#"{"phone":"9000000000"}"#.to_vec(),
    );
    let answer = common::call(&app, request).await;
    let waited = started.elapsed();
    assert_eq!(answer.status, 500, "{}", answer.body);
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
        "answered after {waited:?}"
    );
    blocker.rollback().await.expect("rollback");
}

/// Collects what the JSON subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<Value> {
        let text = String::from_utf8(self.0.lock().expect("log buffer").clone()).expect("utf-8");
        text.lines()
            .map(|line| serde_json::from_str(line).expect("every log line is JSON"))
            .filter(|line: &Value| line.get("source").is_some())
            .collect()
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn one_json_log_line_per_request_without_key_or_phone(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = shared::telemetry::json_subscriber(LevelFilter::INFO, move || writer.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = common::app(&KNOWLARITY, options);
    let key = common::dev_key(&KNOWLARITY);
    let stored = common::request(
        Some(&key),
        None,
        br#"{"caller_id":"+917330995416"}"#.to_vec(),
    );
    assert_eq!(common::call(&app, stored).await.status, 201);
    let wrong_key = common::request(Some("a-wrong-secret-key"), None, b"{}".to_vec());
    assert_eq!(common::call(&app, wrong_key).await.status, 403);
    let missing = common::request(Some(&key), None, br#"{"name":"+919999912345"}"#.to_vec());
    assert_eq!(common::call(&app, missing).await.status, 400);

    let lines = captured.lines();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (line, (status, outcome)) in lines.iter().zip([
        (201, "stored"),
        (403, "invalid_api_key"),
        (400, "missing_fields"),
    ]) {
        assert_eq!(line["source"], "knowlarity");
        assert_eq!(line["status"], status);
        assert_eq!(line["outcome"], outcome);
        assert!(line["latency_ms"].as_f64().is_some(), "{line}");
        assert!(line.get("request_id").is_some(), "{line}");
    }
    assert_eq!(lines[0]["phone"], "*********5416");
    let all = lines.iter().map(Value::to_string).collect::<String>();
    for secret in [key.as_str(), "a-wrong-secret-key", "7330995416"] {
        assert!(!all.contains(secret), "log holds {secret}: {all}");
    }
}
