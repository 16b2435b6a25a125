//! A lead is stored once: a repeat of a partner's id, of an `Idempotency-Key`, or of the
//! exact body within the retry window answers `200 Duplicate ignored` with the stored id
//! — also when the repeats arrive at the same instant from separate containers.

mod common;

use std::time::{Duration, SystemTime};

use common::Answer;
use serde_json::json;
use shared::domain::lead::record::LeadRecord;
use shared::domain::source::{Source, CARDEKHO, CARWALE, KNOWLARITY};
use shared::infra::store::{Store, StoreSettings, Stored};
use shared::pipeline::request::Incoming;
use shared::App;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tokio::task::JoinSet;

async fn post(app: &App, headers: &[(&str, &str)], body: &str) -> Answer {
    let request = common::request_with(
        Some(&common::dev_key(app.source())),
        Some("application/json"),
        headers,
        body.as_bytes().to_vec(),
    );
    common::call(app, request).await
}

fn assert_created(answer: &Answer, source: &Source) -> i64 {
    assert_eq!(answer.status, 201, "{}", answer.body);
    let id = answer.id();
    assert_eq!(
        answer.body,
        format!(
            r#"{{"message":"{}","id":{id}}}"#,
            shared::edge::answer::Answers::new(source).inserted()
        )
    );
    id
}

fn assert_duplicate_of(answer: &Answer, id: i64) {
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.body,
        format!(r#"{{"message":"Duplicate ignored","id":{id}}}"#)
    );
    assert_eq!(answer.content_type, "application/json; charset=utf-8");
}

async fn names(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(r#"SELECT name FROM public."mg-digital-leads" ORDER BY id"#)
        .fetch_all(pool)
        .await
        .expect("read names")
}

#[sqlx::test(migrations = "../migrations")]
async fn a_partner_id_is_stored_once_per_source(_: PgPoolOptions, options: PgConnectOptions) {
    // Each source's own id field; the repeat differs in every other byte.
    let cases: [(&'static Source, &str, &str); 4] = [
        (
            &KNOWLARITY,
            r#"{"caller_id":"+917330995416","uuid":"call-1"}"#,
            r#"{"caller_id":"+917330995416","uuid":" call-1 ","call_duration":"31"}"#,
        ),
        (
            &KNOWLARITY,
            r#"{"caller_id":"+917330995417","callid":4411}"#,
            r#"{"caller_id":"+917330995417","callid":"4411"}"#,
        ),
        (
            &CARDEKHO,
            r#"{"name":"Asha","mobile":"9800000001","lead_id":"CD-1"}"#,
            r#"{"name":"Asha K","mobile":"9800000001","lead_id":"CD-1"}"#,
        ),
        (
            &CARWALE,
            r#"{"customer_name":"Ravi","mobile":"9800000002","id":77}"#,
            r#"{"customer_name":"Ravi","mobile":"9800000002","id":77,"retry":true}"#,
        ),
    ];
    for (source, first, repeat) in cases {
        let app = common::app(source, options.clone());
        let id = assert_created(&post(&app, &[], first).await, source);
        assert_duplicate_of(&post(&app, &[], repeat).await, id);
    }
    let pool = common::pool(&options).await;
    assert_eq!(common::count(&pool).await, 4);

    // Another partner's lead with the same id is its own lead.
    let carwale = common::app(&CARWALE, options);
    let answer = post(
        &carwale,
        &[],
        r#"{"customer_name":"Asha","mobile":"9800000001","lead_id":"CD-1"}"#,
    )
    .await;
    assert_created(&answer, &CARWALE);
    assert_eq!(common::count(&pool).await, 5);
}

#[sqlx::test(migrations = "../migrations")]
async fn an_idempotency_key_is_stored_once(_: PgPoolOptions, options: PgConnectOptions) {
    let app = common::app(&CARDEKHO, options.clone());
    let key = [("Idempotency-Key", "req-7f3a")];
    let id = assert_created(
        &post(&app, &key, r#"{"name":"Asha","mobile":"9800000001"}"#).await,
        &CARDEKHO,
    );
    // Header names are case-insensitive; the body may differ.
    let answer = post(
        &app,
        &[("idempotency-key", "req-7f3a")],
        r#"{"name":"Asha Kumari","mobile":"9800000001"}"#,
    )
    .await;
    assert_duplicate_of(&answer, id);

    // A new key is a new lead, even with a body seen before; a blank key is no key.
    let other = post(
        &app,
        &[("Idempotency-Key", "req-8b21")],
        r#"{"name":"Asha","mobile":"9800000001"}"#,
    )
    .await;
    let other_id = assert_created(&other, &CARDEKHO);
    let blank = post(
        &app,
        &[("Idempotency-Key", "  ")],
        r#"{"name":"Meera","mobile":"9800000003"}"#,
    )
    .await;
    let blank_id = assert_created(&blank, &CARDEKHO);
    let blank_again = post(
        &app,
        &[("Idempotency-Key", "")],
        r#"{"name":"Meera","mobile":"9800000003"}"#,
    )
    .await;
    assert_duplicate_of(&blank_again, blank_id);
    assert!(other_id != id && blank_id != other_id);

    let pool = common::pool(&options).await;
    assert_eq!(names(&pool).await, ["Asha", "Asha", "Meera"]);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_same_body_is_a_retry_within_the_window_only(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let app = common::app(&KNOWLARITY, options.clone());
    let pool = common::pool(&options).await;
    let body = r#"{"caller_id":"+919800000001","dispnumber":"+918047000000"}"#;

    let id = assert_created(&post(&app, &[], body).await, &KNOWLARITY);
    assert_duplicate_of(&post(&app, &[], body).await, id);

    // One byte more is another lead, same phone or not: the CRM decides what it means.
    let changed = r#"{"caller_id":"+919800000001","dispnumber":"+918047000000" }"#;
    assert_created(&post(&app, &[], changed).await, &KNOWLARITY);
    // The same body from another source is that source's lead.
    let carwale = common::app(&CARWALE, options);
    let carwale_body = r#"{"customer_name":"Ravi","mobile":"9800000002"}"#;
    let carwale_id = assert_created(&post(&carwale, &[], carwale_body).await, &CARWALE);
    assert_duplicate_of(&post(&carwale, &[], carwale_body).await, carwale_id);

    // Sixteen minutes later the same body is a new call from the same caller.
    sqlx::query(
        r#"UPDATE public."mg-digital-leads" SET created_at = created_at - interval '16 minutes'
           WHERE id = $1"#,
    )
    .bind(id)
    .execute(&pool)
    .await
    .expect("age the first lead");
    let later = assert_created(&post(&app, &[], body).await, &KNOWLARITY);
    assert_ne!(later, id);
    // …whose own retries are recognised in turn.
    assert_duplicate_of(&post(&app, &[], body).await, later);

    assert_eq!(common::count(&pool).await, 4);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_window_is_configurable(_: PgPoolOptions, options: PgConnectOptions) {
    let settings = StoreSettings {
        dedup_window: Duration::from_millis(300),
        ..StoreSettings::default()
    };
    let app = App::new(
        &CARDEKHO,
        shared::domain::auth::ApiKeys::new([common::dev_key(&CARDEKHO)]),
        Store::new(options, settings),
    );
    let body = r#"{"name":"Asha","mobile":"9800000001"}"#;
    let id = assert_created(&post(&app, &[], body).await, &CARDEKHO);
    assert_duplicate_of(&post(&app, &[], body).await, id);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_created(&post(&app, &[], body).await, &CARDEKHO);
}

/// Sixteen containers (one connection each, like Lambda) receive the same lead at the
/// same instant: one row, one 201, fifteen 200s naming it.
async fn race(options: &PgConnectOptions, headers: &'static [(&str, &str)], body: &'static str) {
    let apps: Vec<App> = (0..16)
        .map(|_| common::app(&CARDEKHO, options.clone()))
        .collect();
    // Connect every container first, so the requests meet at the database together.
    for app in &apps {
        app.store().open().await.expect("connect");
    }
    let pool = common::pool(options).await;
    let before = common::count(&pool).await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(apps.len()));
    let mut tasks = JoinSet::new();
    for app in apps {
        let barrier = barrier.clone();
        tasks.spawn(async move {
            barrier.wait().await;
            post(&app, headers, body).await
        });
    }
    let answers: Vec<Answer> = tasks.join_all().await;

    let created: Vec<&Answer> = answers.iter().filter(|a| a.status == 201).collect();
    assert_eq!(created.len(), 1, "{answers:#?}");
    let id = created[0].id();
    for answer in answers.iter().filter(|a| a.status != 201) {
        assert_duplicate_of(answer, id);
    }
    assert_eq!(common::count(&pool).await, before + 1, "{body}");
}

#[sqlx::test(migrations = "../migrations")]
async fn simultaneous_repeats_store_one_row(_: PgPoolOptions, options: PgConnectOptions) {
    race(
        &options,
        &[],
        r#"{"name":"Asha","mobile":"9800000001","lead_id":"CD-1"}"#,
    )
    .await;
    race(
        &options,
        &[("Idempotency-Key", "k-1")],
        r#"{"name":"Ravi","mobile":"9800000002"}"#,
    )
    .await;
    race(&options, &[], r#"{"name":"Meera","mobile":"9800000003"}"#).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn keys_are_kept_with_the_row(_: PgPoolOptions, options: PgConnectOptions) {
    let app = common::app(&CARDEKHO, options.clone());
    let body = r#"{"name":"Asha","mobile":"9800000001","lead_id":"CD-9"}"#;
    let id = assert_created(
        &post(&app, &[("Idempotency-Key", "k-9")], body).await,
        &CARDEKHO,
    );
    let pool = common::pool(&options).await;
    let row: (
        Option<String>,
        Option<String>,
        Option<String>,
        serde_json::Value,
    ) = sqlx::query_as(
        r#"SELECT partner_lead_id, idempotency_key, body_sha256, payload
               FROM public."mg-digital-leads" WHERE id = $1"#,
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .expect("row");
    assert_eq!(
        row,
        (
            Some("CD-9".to_owned()),
            Some("k-9".to_owned()),
            None,
            json!({"name":"Asha","mobile":"9800000001","lead_id":"CD-9"})
        )
    );
}

/// A record of `body` to `source`, as the function would have built it on arrival at
/// `received_at` (what a queued record carries to the drain).
fn record_at(source: &'static Source, body: &str, received_at: SystemTime) -> LeadRecord {
    let keys = shared::domain::auth::ApiKeys::new([common::dev_key(source)]);
    let key = common::dev_key(source);
    let incoming = Incoming {
        signature: None,
        api_key: Some(key.as_bytes()),
        content_type: Some("application/json"),
        idempotency_key: None,
        body: body.as_bytes(),
        query: None,
        request_id: "late-drain",
        received_at,
    };
    shared::pipeline::keyed::prepare(source, &keys, &incoming).expect("a lead")
}

/// A lead stored and also queued (the insert committed, but its answer timed out), a
/// newer identical body that took the body's claim over once the window had passed,
/// and then the drain, late: the queued copy finds the row it was stored in.
#[sqlx::test(migrations = "../migrations")]
async fn a_late_drain_stores_nothing_twice(_: PgPoolOptions, options: PgConnectOptions) {
    let store = Store::new(options.clone(), StoreSettings::default());
    let body = r#"{"name":"Asha","mobile":"9800000001"}"#;
    let now = SystemTime::now();
    let first = record_at(&CARDEKHO, body, now - Duration::from_secs(40 * 60));
    let Stored::Created(first_id) = store.insert(&first).await.expect("stored") else {
        panic!("the first lead is new");
    };
    let newer = record_at(&CARDEKHO, body, now - Duration::from_secs(20 * 60));
    let Stored::Created(newer_id) = store.insert(&newer).await.expect("stored") else {
        panic!("the same body after the window is a new lead");
    };
    assert_ne!(first_id, newer_id);

    assert_eq!(
        store.insert(&first).await.expect("drained"),
        Stored::Duplicate(first_id)
    );
    assert_eq!(
        store.insert(&newer).await.expect("drained"),
        Stored::Duplicate(newer_id)
    );
    let pool = common::pool(&options).await;
    assert_eq!(common::count(&pool).await, 2);
}

/// `created_at` is when the lead arrived, also for a lead drained long after;
/// `stored_at` is when its row was written, which is what a CRM polls by.
#[sqlx::test(migrations = "../migrations")]
async fn a_drained_lead_keeps_its_arrival_and_shows_when_it_was_stored(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let store = Store::new(options.clone(), StoreSettings::default());
    let arrived = SystemTime::now() - Duration::from_secs(3600);
    let record = record_at(
        &CARDEKHO,
        r#"{"name":"Asha","mobile":"9800000001","lead_id":"CD-7"}"#,
        arrived,
    );
    let stored = store.insert(&record).await.expect("stored");
    let pool = common::pool(&options).await;
    let (waited, stored_ago): (f64, f64) = sqlx::query_as(
        r#"SELECT extract(epoch FROM stored_at - created_at)::float8,
                  extract(epoch FROM now() - stored_at)::float8
           FROM public."mg-digital-leads" WHERE id::text = $1"#,
    )
    .bind(stored.id().to_string())
    .fetch_one(&pool)
    .await
    .expect("read times");
    assert!(
        (waited - 3600.0).abs() < 60.0,
        "stored {waited} s after arrival"
    );
    assert!(stored_ago.abs() < 60.0, "stored {stored_ago} s ago");
}
