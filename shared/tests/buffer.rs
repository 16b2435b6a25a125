//! Nothing lost while the database is down: leads are queued on a real SQS API (the SDK
//! against `moto_server` on 127.0.0.1) and answered `202 queued`, inside the partners'
//! budget; the drain stores them once each when the database is back — a lead both
//! stored and queued included — and leaves the queue empty. Only when the queue fails too
//! does a partner get a 500.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::proxy::{upstream, via, Mode, Proxy};
use common::queue::Queue;
use common::Answer;
use shared::domain::source::{Source, CARDEKHO, KNOWLARITY};
use shared::infra::buffer::Buffer;
use shared::infra::store::{Store, StoreSettings};
use shared::pipeline::drain::Drain;
use shared::App;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

/// Partners wait 10 s; the answer must leave room for the network on both sides.
const BUDGET: Duration = Duration::from_secs(8);

fn buffered_app(source: &'static Source, options: PgConnectOptions, queue: &Queue) -> App {
    common::app(source, options).with_buffer(queue.buffer())
}

/// A queue, and an app whose database refuses every connection.
async fn database_down(source: &'static Source, options: &PgConnectOptions) -> (Queue, Proxy, App) {
    let queue = Queue::start().await;
    let proxy = Proxy::start(upstream(options).await).await;
    let app = buffered_app(source, via(&proxy, options.clone()), &queue);
    proxy.set(Mode::Refuse);
    (queue, proxy, app)
}

fn drain_for(options: PgConnectOptions) -> Drain {
    // As `Drain::from_env` builds it: a drain's store never rests.
    let settings = StoreSettings {
        breaker: Duration::ZERO,
        ..StoreSettings::default()
    };
    Drain::new(Store::new(options, settings))
}

async fn post(app: &App, headers: &[(&str, &str)], body: &str) -> (Answer, Duration) {
    let request = common::request_with(
        Some(&common::dev_key(app.source())),
        Some("application/json"),
        headers,
        body.as_bytes().to_vec(),
    );
    let started = Instant::now();
    let answer = common::call(app, request).await;
    (answer, started.elapsed())
}

fn assert_queued(answer: &Answer, elapsed: Duration, source: &Source) {
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(
        answer.body,
        format!(
            r#"{{"message":"{} lead accepted","queued":true}}"#,
            source.platform
        )
    );
    assert_eq!(answer.content_type, "application/json; charset=utf-8");
    assert!(elapsed < BUDGET, "answered after {elapsed:?}");
}

async fn phones(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        r#"SELECT phone_number FROM public."mg-digital-leads" ORDER BY phone_number"#,
    )
    .fetch_all(pool)
    .await
    .expect("read phones")
}

#[sqlx::test(migrations = "../migrations")]
async fn an_outage_loses_nothing_and_stores_nothing_twice(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let queue = Queue::start().await;
    let proxy = Proxy::start(upstream(&options).await).await;
    let app = buffered_app(&CARDEKHO, via(&proxy, options.clone()), &queue);
    let direct = PgPool::connect_with(options.clone()).await.expect("pool");

    // Stored before the outage; its retry during the outage is queued, and must not
    // land twice.
    let stored_first = r#"{"name":"Asha","mobile":"9000000000","lead_id":"CD-0"}"#;
    let (answer, _) = post(&app, &[], stored_first).await;
    assert_eq!(answer.status, 201, "{}", answer.body);

    proxy.set(Mode::Refuse);
    let distinct: Vec<(Vec<(&str, String)>, String)> = (1..=12)
        .map(|n| {
            let phone = format!("90000000{n:02}");
            match n % 3 {
                // A partner id, an Idempotency-Key, or nothing but the body.
                0 => (
                    vec![],
                    format!(r#"{{"name":"Lead {n}","mobile":"{phone}","lead_id":"CD-{n}"}}"#),
                ),
                1 => (
                    vec![("Idempotency-Key", format!("key-{n}"))],
                    format!(r#"{{"name":"Lead {n}","mobile":"{phone}"}}"#),
                ),
                _ => (
                    vec![],
                    format!(r#"{{"name":"Lead {n}","mobile":"{phone}"}}"#),
                ),
            }
        })
        .collect();
    let mut sent = 0;
    for round in 0..2 {
        for (headers, body) in &distinct {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (answer, elapsed) = post(&app, &headers, body).await;
            assert_queued(&answer, elapsed, &CARDEKHO);
            sent += 1;
        }
        if round == 0 {
            let (answer, elapsed) = post(&app, &[], stored_first).await;
            assert_queued(&answer, elapsed, &CARDEKHO);
            sent += 1;
        }
    }
    // A database that swallows packets is waited for only up to the operation timeout.
    proxy.set(Mode::BlackHole);
    let (answer, elapsed) = post(
        &app,
        &[],
        r#"{"name":"Lead 13","mobile":"9000000013","lead_id":"CD-13"}"#,
    )
    .await;
    assert_queued(&answer, elapsed, &CARDEKHO);
    sent += 1;
    assert_eq!(queue.depth().await, sent);

    // Draining while the database is still down hands every message back.
    let drain = drain_for(via(&proxy, options.clone()));
    proxy.set(Mode::Refuse);
    let (handed, failed) = queue.drain_once(&drain).await;
    assert_eq!(
        failed.len(),
        handed,
        "nothing is stored while the database is down"
    );
    assert_eq!(phones(&direct).await, ["9000000000"]);

    // The database is back: drain until the queue is empty.
    proxy.set(Mode::Forward);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    while queue.depth().await > 0 {
        assert!(Instant::now() < deadline, "the queue did not drain");
        let (handed, failed) = queue.drain_once(&drain).await;
        if handed == 0 {
            // The batch that failed above is invisible until its timeout: make it visible.
            tokio::time::sleep(Duration::from_millis(200)).await;
            queue.release_in_flight().await;
        }
        assert!(failed.is_empty(), "{failed:?}");
    }

    let expected: BTreeSet<String> = (0..=13).map(|n| format!("90000000{n:02}")).collect();
    let stored = phones(&direct).await;
    assert_eq!(stored.len(), expected.len(), "each lead once: {stored:?}");
    assert_eq!(stored.into_iter().collect::<BTreeSet<_>>(), expected);
    assert_eq!(queue.depth().await, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_queued_lead_keeps_its_fields_and_arrival_time(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (queue, proxy, app) = database_down(&KNOWLARITY, &options).await;
    let body = r#"{"customer_number":" +917330995416 ","uuid":"u-1","campaign":"diwali","nested":{"a":[1]}}"#;
    let before = std::time::SystemTime::now();
    let (answer, elapsed) = post(&app, &[], body).await;
    assert_queued(&answer, elapsed, &KNOWLARITY);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    proxy.set(Mode::Forward);
    let (handed, failed) = queue.drain_once(&drain_for(options.clone())).await;
    assert_eq!((handed, failed.len()), (1, 0));

    let pool = PgPool::connect_with(options).await.expect("pool");
    let row: (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        serde_json::Value,
        f64,
    ) = sqlx::query_as(
        r#"SELECT platform, name, phone_number, campaign, partner_lead_id, payload,
                      extract(epoch FROM created_at)::float8
               FROM public."mg-digital-leads""#,
    )
    .fetch_one(&pool)
    .await
    .expect("the drained row");
    let (platform, name, phone, campaign, partner_id, payload, created) = row;
    assert_eq!(platform, "Knowlarity");
    assert_eq!(name, "Knowlarity Lead +917330995416");
    assert_eq!(phone, "+917330995416");
    assert_eq!(campaign.as_deref(), Some("diwali"));
    assert_eq!(partner_id.as_deref(), Some("u-1"));
    assert_eq!(
        payload,
        serde_json::from_str::<serde_json::Value>(body).unwrap()
    );
    // created_at is when the partner sent it, not when the drain stored it.
    let sent = before
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (created - sent).abs() < 0.5,
        "created {created}, sent {sent}"
    );
}

/// With the database black-holed, only the first lead waits out the insert's timeout:
/// the store then rests, and the leads after it go straight to the queue; after the rest
/// one lead probes the database again, and once it answers leads are stored again.
#[sqlx::test(migrations = "../migrations")]
async fn after_an_outage_leads_go_straight_to_the_queue_until_a_probe(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let queue = Queue::start().await;
    let proxy = Proxy::start(upstream(&options).await).await;
    let timeout = Duration::from_millis(800);
    let rest = Duration::from_millis(1500);
    let settings = StoreSettings {
        operation_timeout: timeout,
        breaker: rest,
        ..StoreSettings::default()
    };
    let app = App::new(
        &CARDEKHO,
        shared::domain::auth::ApiKeys::new([common::dev_key(&CARDEKHO)]),
        Store::new(via(&proxy, options.clone()), settings),
    )
    .with_buffer(queue.buffer());
    let lead = |n: u32| format!(r#"{{"name":"Asha","mobile":"98000{n:05}"}}"#);

    proxy.set(Mode::BlackHole);
    let (answer, waited) = post(&app, &[], &lead(1)).await;
    assert_queued(&answer, waited, &CARDEKHO);
    assert!(
        waited >= timeout,
        "the first lead waits the timeout: {waited:?}"
    );
    for n in 2..=6 {
        let (answer, waited) = post(&app, &[], &lead(n)).await;
        assert_queued(&answer, waited, &CARDEKHO);
        assert!(
            waited < timeout / 4,
            "lead {n} waited {waited:?} while resting"
        );
    }
    // The rest is over: the next lead tries the database again (still silent)...
    tokio::time::sleep(rest).await;
    let (answer, waited) = post(&app, &[], &lead(7)).await;
    assert_queued(&answer, waited, &CARDEKHO);
    assert!(waited >= timeout, "a probe after the rest: {waited:?}");
    // ...and once the database answers, the first lead after the rest is stored.
    proxy.set(Mode::Forward);
    tokio::time::sleep(rest).await;
    let (answer, _) = post(&app, &[], &lead(8)).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(queue.depth().await, 7);
}

/// Queueing a lead at the most verbose log level leaves the lead and the key out of the
/// logs: the AWS SDK's and the Lambda runtime's own debug output (request bodies, whole
/// events) is capped whatever `LOG_LEVEL` says.
#[sqlx::test(migrations = "../migrations")]
async fn a_queued_lead_leaves_no_trace_at_trace_level(_: PgPoolOptions, options: PgConnectOptions) {
    let (queue, _proxy, app) = database_down(&CARDEKHO, &options).await;
    let captured = common::Captured::default();
    let (answer, elapsed) = {
        let _installed = captured.install(tracing::level_filters::LevelFilter::TRACE);
        post(
            &app,
            &[],
            r#"{"name":"Zoravar Secretname","mobile":"9811122233","note":"private-note"}"#,
        )
        .await
    };
    assert_queued(&answer, elapsed, &CARDEKHO);
    assert_eq!(queue.depth().await, 1);
    let log = captured.text();
    let lines = captured.lines();
    assert_eq!(lines.len(), 1, "one line for the request: {log}");
    assert_eq!(lines[0]["outcome"], "queued");
    for secret in [
        "Zoravar",
        "9811122233",
        "private-note",
        &common::dev_key(&CARDEKHO),
    ] {
        assert!(!log.contains(secret), "the log holds {secret}: {log}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn without_the_queue_too_the_partner_gets_a_500(_: PgPoolOptions, options: PgConnectOptions) {
    // A queue endpoint nobody listens on, and a database that refuses.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{closed_port}"))
        .region(aws_sdk_sqs::config::Region::new("ap-south-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test", "test", None, None, "tests",
        ));
    let config = shared::infra::aws::sdk_config(loader).await;
    let buffer = Buffer::new(&config, format!("http://127.0.0.1:{closed_port}/1/q"));
    let proxy = Proxy::start(upstream(&options).await).await;
    let app = common::app(&CARDEKHO, via(&proxy, options)).with_buffer(buffer);
    proxy.set(Mode::Refuse);

    let (answer, elapsed) = post(&app, &[], r#"{"name":"Asha","mobile":"9800000001"}"#).await;
    assert_eq!(answer.status, 500, "{}", answer.body);
    assert_eq!(answer.body, r#"{"error":"Internal server error"}"#);
    assert!(elapsed < BUDGET, "answered after {elapsed:?}");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_lead_the_database_refuses_is_kept_for_the_drain_without_a_dead_letter_queue(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let queue = Queue::start().await;
    let pool = PgPool::connect_with(options.clone()).await.expect("pool");
    // The CRM's own rule, say: a check the lead fails is no outage, and no retry mends
    // it; with no dead-letter queue configured it is still kept, on the buffer, whose
    // drain sends it on to the dead-letter queue.
    sqlx::query(
        r#"ALTER TABLE public."mg-digital-leads"
           ADD CONSTRAINT no_test_numbers CHECK (phone_number <> '0000000000')"#,
    )
    .execute(&pool)
    .await
    .expect("add check");
    let app = buffered_app(&CARDEKHO, options, &queue);
    let (answer, _) = post(&app, &[], r#"{"name":"Asha","mobile":"0000000000"}"#).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(queue.depth().await, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_drain_reports_exactly_the_messages_it_could_not_store(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (queue, _proxy, app) = database_down(&CARDEKHO, &options).await;
    let (answer, elapsed) = post(&app, &[], r#"{"name":"Asha","mobile":"9800000001"}"#).await;
    assert_queued(&answer, elapsed, &CARDEKHO);
    queue.send_raw("not a lead").await;
    queue
        .send_raw(
            &shared::infra::buffer::encode(&sample_record())
                .expect("encode")
                .replace(r#""source":"cardekho""#, r#""source":"olx""#),
        )
        .await;

    let (handed, failed) = queue.drain_once(&drain_for(options.clone())).await;
    assert_eq!(handed, 3);
    assert_eq!(failed.len(), 2, "the two foreign messages: {failed:?}");
    let pool = PgPool::connect_with(options).await.expect("pool");
    assert_eq!(phones(&pool).await, ["9800000001"]);
    // With no dead-letter queue to send them to (tests/drain.rs has one), the failed ones
    // stay queued, until the queue's redrive moves them (after maxReceiveCount).
    assert_eq!(queue.depth().await, 2);
}

fn sample_record() -> shared::domain::lead::record::LeadRecord {
    shared::domain::lead::record::LeadRecord {
        source: &CARDEKHO,
        lead: shared::domain::lead::Lead {
            name: "Ravi".into(),
            phone_number: "9800000002".into(),
            car_model: None,
            lead_url: None,
            campaign: None,
            submitted_at: None,
            test: false,
        },
        payload: r#"{"name":"Ravi","mobile":"9800000002"}"#.into(),
        identity: shared::domain::lead::dedup::Identity::default(),
        request_id: "r".into(),
        received_at: std::time::SystemTime::now(),
    }
}
