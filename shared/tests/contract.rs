//! Contract rules the event files cannot show one by one: every pair of sources, the
//! exact size limit, several active keys, the bounded statements, and the log line.

mod common;

use common::proxy::{upstream, via, Proxy};

use std::time::Duration;

use shared::domain::auth::ApiKeys;
use shared::domain::lead::payload::MAX_BODY_BYTES;
use shared::domain::source::{self, Auth, Reply, CARDEKHO, KNOWLARITY};
use shared::infra::store::{Store, StoreSettings};
use shared::App;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tracing::level_filters::LevelFilter;

#[sqlx::test(migrations = "../migrations")]
async fn no_source_accepts_another_sources_key(_: PgPoolOptions, options: PgConnectOptions) {
    // Every source that proves itself with a key, each sent where its target reads it.
    let keyed: Vec<_> = source::ALL
        .iter()
        .filter(|source| source.auth != Auth::Signature)
        .collect();
    for target in &keyed {
        let app = common::app(target, options.clone());
        for owner in &keyed {
            let key = common::dev_key(owner);
            let mut body = serde_json::json!({
                "name": "A", "customer_name": "A", "phone_number": "1", "mobile": "1",
                "PHONE_NUMBER": "1",
            });
            let header = match target.auth {
                Auth::Body(names) => {
                    body[names[0]] = key.clone().into();
                    None
                }
                _ => Some(key.as_str()),
            };
            let answer = common::call(
                &app,
                common::request(header, None, body.to_string().into_bytes()),
            )
            .await;
            let stored = if target.reply == Reply::Contract {
                201
            } else {
                200
            };
            let expected = if target.slug == owner.slug {
                stored
            } else {
                403
            };
            assert_eq!(
                answer.status, expected,
                "{} key on {}: {}",
                owner.slug, target.slug, answer.body
            );
        }
    }
    let pool = sqlx::PgPool::connect_with(options).await.expect("connect");
    assert_eq!(common::count(&pool).await, keyed.len() as i64);
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

/// RDS Proxy refuses a startup message with `options` (command-line options): the
/// statement timeout is set in the session instead, and still bounds statements.
#[sqlx::test(migrations = "../migrations")]
async fn the_connection_sends_no_startup_options(_: PgPoolOptions, options: PgConnectOptions) {
    let proxy = Proxy::start(upstream(&options).await).await;
    let app = common::app(&KNOWLARITY, via(&proxy, options));
    let request = common::request(
        Some(&common::dev_key(&KNOWLARITY)),
        None,
        br#"{"phone":"9000000001"}"#.to_vec(),
    );
    assert_eq!(common::call(&app, request).await.status, 201);
    let sent = proxy.sent();
    let has = |needle: &[u8]| sent.windows(needle.len()).any(|window| window == needle);
    assert!(
        has(b"application_name\0lead-ingestion\0"),
        "no startup message recorded"
    );
    assert!(!has(b"options\0"), "a startup options parameter was sent");
    assert!(has(b"SET statement_timeout = 3000"));
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

/// At the most verbose level there is: one line per request, naming the key that passed
/// by its fingerprint, and nothing anywhere in the output holds a key, the body or the
/// phone number.
#[sqlx::test(migrations = "../migrations")]
async fn one_json_log_line_per_request_without_key_or_phone(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let captured = common::Captured::default();
    let _installed = captured.install(LevelFilter::TRACE);

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
    // `printf %s local-dev-knowlarity-key | sha256sum | cut -c1-8`
    let fingerprint = "ad2ab687";
    assert_eq!(lines[0]["key"], fingerprint, "{}", lines[0]);
    assert_eq!(lines[2]["key"], fingerprint, "{}", lines[2]);
    assert!(lines[1].get("key").is_none(), "{}", lines[1]);
    let all = captured.text();
    for secret in [
        key.as_str(),
        "a-wrong-secret-key",
        "7330995416",
        "9999912345",
    ] {
        assert!(!all.contains(secret), "log holds {secret}: {all}");
    }
}

/// A lead with an absurd time is stored (a 201, never a 500 or the dead-letter queue),
/// the time kept in its payload and not used as the lead's; milliseconds sent as seconds
/// are read as seconds.
#[sqlx::test(migrations = "../migrations")]
async fn an_absurd_time_is_kept_in_the_payload_not_used(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let app = common::app(&KNOWLARITY, options.clone());
    let pool = common::pool(&options).await;
    for (index, (start_time, expected)) in [
        ("9223372036855", None),
        ("1e16", None),
        ("10000000000000000", None),
        ("-62135596801", None),
        ("1796185800123", Some(1_796_185_800i64)),
    ]
    .into_iter()
    .enumerate()
    {
        let body = format!("caller_id=%2B91900000{index:04}&start_time={start_time}");
        let answer = common::call(
            &app,
            common::request(
                Some(&common::dev_key(&KNOWLARITY)),
                Some("application/x-www-form-urlencoded"),
                body.into_bytes(),
            ),
        )
        .await;
        assert_eq!(answer.status, 201, "{start_time}: {}", answer.body);
        let (kept, time): (Option<String>, Option<i64>) = sqlx::query_as(
            r#"SELECT payload->>'start_time', extract(epoch FROM meta_created_at)::int8
               FROM public."mg-digital-leads" WHERE id = $1"#,
        )
        .bind(answer.id())
        .fetch_one(&pool)
        .await
        .expect("the stored row");
        assert_eq!(kept.as_deref(), Some(start_time), "the payload keeps it");
        assert_eq!(time, expected, "{start_time}");
    }
}
