//! Every lead that reaches a function ends stored, or kept on a queue, against a real
//! PostgreSQL and a real SQS API (moto): a value too long for the CRM's column is cut to
//! fit (and kept whole in the payload), a row the database refuses goes to the
//! dead-letter queue, a function the database refuses queues its leads on the buffer,
//! and a restarted database or a request short of time costs no lead.

mod common;

use std::time::{Duration, Instant};

use common::proxy::{Mode, Proxy};
use common::queue::{Queue, Queues};
use serde_json::json;
use shared::domain::source::{CARDEKHO, KNOWLARITY};
use shared::infra::config::intake::SourceConfig;
use shared::infra::parts::Parts;
use shared::infra::store::{Store, StoreSettings};
use shared::App;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

/// A CarDekho lead with this name and campaign.
fn cardekho(name: &str, campaign: &str) -> lambda_http::Request {
    let body = json!({"name": name, "phone_number": "9876500001", "campaign": campaign});
    common::request(
        Some(&common::dev_key(&CARDEKHO)),
        Some("application/json"),
        body.to_string().into_bytes(),
    )
}

fn app(queues: &Queues, options: PgConnectOptions) -> App {
    common::app(&CARDEKHO, options).with_buffer(queues.buffer())
}

async fn alter(pool: &PgPool, statement: &str) {
    sqlx::query(statement)
        .execute(pool)
        .await
        .unwrap_or_else(|error| panic!("{statement}: {error}"));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_value_longer_than_its_column_is_cut_to_fit(_: PgPoolOptions, options: PgConnectOptions) {
    let pool = common::pool(&options).await;
    // A CRM whose name and campaign columns are bounded.
    alter(
        &pool,
        r#"ALTER TABLE public."mg-digital-leads"
           ALTER COLUMN name TYPE varchar(12), ALTER COLUMN campaign TYPE varchar(5)"#,
    )
    .await;
    let app = common::app(&CARDEKHO, options);
    let name = "Venkata Lakshmi Narasimha Raju";
    let answer = common::call(&app, cardekho(name, "diwali-2026")).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let row = common::row(&pool, answer.id()).await;
    assert_eq!(row.name.as_deref(), Some("Venkata Laks"));
    assert_eq!(row.campaign.as_deref(), Some("diwal"));
    // The payload keeps every value whole.
    let payload = row.payload.expect("payload").0;
    assert_eq!(payload["name"], name);
    assert_eq!(payload["campaign"], "diwali-2026");
    // The partner's retry of the same body is still found to be a repeat.
    let again = common::call(&app, cardekho(name, "diwali-2026")).await;
    assert_eq!(
        (again.status, again.id()),
        (200, answer.id()),
        "{}",
        again.body
    );
    // A value that fits is not touched.
    let short = common::call(&app, cardekho("Asha", "x")).await;
    assert_eq!(
        common::row(&pool, short.id()).await.name.as_deref(),
        Some("Asha")
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_row_the_database_refuses_is_kept_on_the_dead_letter_queue(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let pool = common::pool(&options).await;
    // A rule of the CRM's own that this lead breaks: no retry will ever store it.
    alter(
        &pool,
        r#"ALTER TABLE public."mg-digital-leads"
           ADD CONSTRAINT crm_no_blocked_campaign CHECK (campaign IS DISTINCT FROM 'blocked')"#,
    )
    .await;
    let queues = Queues::start().await;
    let app = app(&queues, options);
    let answer = common::call(&app, cardekho("Asha Rao", "blocked")).await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (202, r#"{"message":"CarDekho lead accepted","queued":true}"#)
    );
    assert_eq!(common::count(&pool).await, 0);
    assert_eq!(queues.buffer.depth().await, 0, "not retried in vain");
    let kept = queues.dead_letters().await;
    assert_eq!(kept.len(), 1);
    let (message, reason) = &kept[0];
    assert_eq!(message["source"], "cardekho");
    assert_eq!(message["payload"]["name"], "Asha Rao");
    assert!(reason.contains("crm_no_blocked_campaign"), "{reason}");
    // The next lead stores as usual.
    let next = common::call(&app, cardekho("Imran", "diwali")).await;
    assert_eq!(next.status, 201, "{}", next.body);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_function_the_database_refuses_queues_its_leads(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let pool = common::pool(&options).await;
    // A deploy ahead of its migration: a column the insert names is not there yet.
    alter(
        &pool,
        r#"ALTER TABLE public."mg-digital-leads" RENAME COLUMN phone_e164 TO phone_e164_later"#,
    )
    .await;
    let queues = Queues::start().await;
    let app = app(&queues, options);
    let answer = common::call(&app, cardekho("Asha Rao", "diwali")).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(queues.buffer.depth().await, 1, "kept for the drain");
    assert!(queues.dead_letters().await.is_empty());
    // Without any queue there is nowhere to keep it: the partner must retry.
    let unqueued = common::app(&CARDEKHO, options_of(&pool));
    assert_eq!(
        common::call(&unqueued, cardekho("Asha Rao", "diwali"))
            .await
            .status,
        500
    );
}

fn options_of(pool: &PgPool) -> PgConnectOptions {
    pool.connect_options().as_ref().clone()
}

/// A Knowlarity call with this phone.
fn knowlarity(phone: &str) -> lambda_http::Request {
    let body = json!({ "caller_id": phone });
    common::request(
        Some(&common::dev_key(&KNOWLARITY)),
        Some("application/json"),
        body.to_string().into_bytes(),
    )
}

#[sqlx::test(migrations = "../migrations")]
async fn a_terminated_connection_costs_no_lead(_: PgPoolOptions, options: PgConnectOptions) {
    let pool = common::pool(&options).await;
    let queue = Queue::start().await;
    let app = common::app(&KNOWLARITY, options).with_buffer(queue.buffer());
    assert_eq!(
        common::call(&app, knowlarity("9100000001")).await.status,
        201
    );
    // What a restart or failover does to the idle connection: the server ends it
    // (57P01) and says so on the socket.
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'lead-ingestion' AND pid <> pg_backend_pid()",
    )
    .fetch_all(&pool)
    .await
    .expect("terminate the function's connection");
    assert_eq!(ended, [true]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The next lead is stored on a new connection, not queued, and nothing rests.
    let answer = common::call(&app, knowlarity("9100000002")).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let answer = common::call(&app, knowlarity("9100000003")).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(queue.depth().await, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_request_out_of_time_is_no_outage(_: PgPoolOptions, options: PgConnectOptions) {
    let store = Store::new(options.clone(), StoreSettings::default());
    let keys = shared::domain::auth::ApiKeys::new([common::dev_key(&KNOWLARITY)]);
    let key = common::dev_key(&KNOWLARITY);
    let body = br#"{"caller_id":"9100000009"}"#;
    let incoming = shared::pipeline::request::Incoming {
        api_key: Some(key.as_bytes()),
        signature: None,
        content_type: Some("application/json"),
        idempotency_key: None,
        body,
        query: None,
        request_id: "r-1",
        received_at: std::time::SystemTime::now(),
    };
    let record = shared::pipeline::keyed::prepare(&KNOWLARITY, &keys, &incoming).expect("a lead");
    // A request whose budget is spent gets no answer from the database...
    let error = store
        .insert_within(&record, Duration::ZERO)
        .await
        .expect_err("no time to store");
    assert!(error.is_unavailable(), "worth queueing: {error}");
    // ...which says nothing of the database: the next lead is tried, and stored.
    let stored = store
        .insert_within(&record, Duration::from_secs(5))
        .await
        .expect("stored");
    assert!(matches!(stored, shared::infra::store::Stored::Created(_)));
}

#[sqlx::test(migrations = "../migrations")]
async fn without_a_queue_the_store_never_rests(_: PgPoolOptions, options: PgConnectOptions) {
    let upstream = (options.get_host().to_owned(), options.get_port());
    let upstream = tokio::net::lookup_host(upstream)
        .await
        .expect("resolve")
        .next()
        .expect("an address");
    let proxy = Proxy::start(upstream).await;
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/{}",
        proxy.addr.port(),
        options.get_database().expect("database name")
    );
    let config = SourceConfig::from_lookup(&KNOWLARITY, |name| match name {
        "DATABASE_URL" => Some(url.clone()),
        "API_KEYS" => Some(common::dev_key(&KNOWLARITY)),
        _ => None,
    })
    .expect("configuration");
    let parts = Parts::new(None, config.base.secrets_ttl);
    let app = App::build(&KNOWLARITY, config, &parts).expect("app");
    proxy.set(Mode::Refuse);
    assert_eq!(
        common::call(&app, knowlarity("9100000011")).await.status,
        500
    );
    // Back at once: with no queue to send leads to, there is nothing to rest for.
    proxy.set(Mode::Forward);
    let started = Instant::now();
    let answer = common::call(&app, knowlarity("9100000012")).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert!(started.elapsed() < Duration::from_secs(3));
}
