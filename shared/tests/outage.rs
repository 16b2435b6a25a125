//! The database goes away and comes back while one warm container keeps serving: every
//! answer in between is the contract's 500 well inside the partners' 10 s, and the same
//! `App` stores leads again as soon as the database answers, without a restart.
//!
//! A small TCP proxy on 127.0.0.1 stands between the app and the real PostgreSQL, so the
//! test can cut connections (a restart), refuse them, or swallow every packet (a network
//! black hole, where no server-side timeout can fire).

mod common;

use std::time::{Duration, Instant};

use common::proxy::{upstream, via, Mode, Proxy};
use shared::domain::auth::ApiKeys;
use shared::domain::source::KNOWLARITY;
use shared::infra::store::{Store, StoreSettings};
use shared::App;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

fn knowlarity_lead(phone: &str) -> lambda_http::Request {
    common::request(
        Some(&common::dev_key(&KNOWLARITY)),
        Some("application/json"),
        format!(r#"{{"phone_number":"{phone}"}}"#).into_bytes(),
    )
}

/// Partners wait 10 s; the answer must leave room for the network on both sides.
const BUDGET: Duration = Duration::from_secs(7);

async fn expect_internal_error(app: &shared::App, phone: &str, what: &str) {
    let started = Instant::now();
    let answer = common::call(app, knowlarity_lead(phone)).await;
    let elapsed = started.elapsed();
    assert_eq!(answer.status, 500, "{what}: {}", answer.body);
    assert_eq!(
        answer.body, r#"{"error":"Internal server error"}"#,
        "{what}"
    );
    assert!(elapsed < BUDGET, "{what}: answered after {elapsed:?}");
}

#[sqlx::test(migrations = "../migrations")]
async fn database_outage_answers_500_in_time_and_recovers(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let proxy = Proxy::start(upstream(&options).await).await;
    // No rest after a failure (tests/buffer.rs proves the rest): every request here
    // meets the database as it is.
    let settings = StoreSettings {
        breaker: Duration::ZERO,
        ..StoreSettings::default()
    };
    let app = App::new(
        &KNOWLARITY,
        ApiKeys::new([common::dev_key(&KNOWLARITY)]),
        Store::new(via(&proxy, options.clone()), settings),
    );
    let direct = sqlx::PgPool::connect_with(options)
        .await
        .expect("direct pool");

    let answer = common::call(&app, knowlarity_lead("9000000001")).await;
    assert_eq!(answer.status, 201, "{}", answer.body);

    // The open connection goes silent mid-conversation, then new ones hang too.
    proxy.set(Mode::BlackHole);
    expect_internal_error(&app, "9000000002", "silent established connection").await;
    expect_internal_error(&app, "9000000003", "silent new connection").await;

    // The database restarts: connections are cut and refused.
    proxy.set(Mode::Refuse);
    expect_internal_error(&app, "9000000004", "refused connection").await;

    // It is back: the same warm app stores again, on the first request.
    proxy.set(Mode::Forward);
    let answer = common::call(&app, knowlarity_lead("9000000005")).await;
    assert_eq!(answer.status, 201, "after recovery: {}", answer.body);

    let phones: Vec<String> =
        sqlx::query_scalar(r#"SELECT phone_number FROM public."mg-digital-leads" ORDER BY id"#)
            .fetch_all(&direct)
            .await
            .expect("read rows");
    assert_eq!(phones, ["9000000001", "9000000005"]);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_operation_timeout_bounds_a_silent_database(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let proxy = Proxy::start(upstream(&options).await).await;
    // Connecting alone would wait a minute: only the operation timeout can answer in time.
    let settings = StoreSettings {
        connect_timeout: Duration::from_secs(60),
        ..StoreSettings::default()
    };
    let store = Store::new(via(&proxy, options), settings);
    let app = App::new(
        &KNOWLARITY,
        ApiKeys::new([common::dev_key(&KNOWLARITY)]),
        store,
    );

    assert_eq!(
        common::call(&app, knowlarity_lead("9300000001"))
            .await
            .status,
        201
    );
    proxy.set(Mode::BlackHole);
    expect_internal_error(&app, "9300000002", "silent database").await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_restart_between_requests_costs_no_request(_: PgPoolOptions, options: PgConnectOptions) {
    let proxy = Proxy::start(upstream(&options).await).await;
    let app = common::app(&KNOWLARITY, via(&proxy, options));

    assert_eq!(
        common::call(&app, knowlarity_lead("9100000001"))
            .await
            .status,
        201
    );
    // The pooled connection is cut while the container is idle (a database restart)...
    proxy.set(Mode::Refuse);
    proxy.set(Mode::Forward);
    tokio::time::sleep(Duration::from_millis(20)).await;
    // ...and the very next request is served on a fresh one.
    let answer = common::call(&app, knowlarity_lead("9100000002")).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
}
