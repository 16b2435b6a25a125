//! What the drain does with a lead it cannot store, on a real SQS API (the SDK against
//! `moto_server` on 127.0.0.1) and a real PostgreSQL:
//!
//! - while the database is down it hands the lead back kept out of sight for a backoff
//!   that grows with the lead's receives, instead of letting it come back after the
//!   queue's visibility timeout (each receive would bring the dead-letter queue closer
//!   while the lead only waits); once the database is back the lead is stored;
//! - a lead that can never be stored as it is (a message it cannot read, a lead the
//!   database refuses as data, a Meta lead the Graph API says is gone) goes to the
//!   dead-letter queue at once with its reason, and off the buffer; if the dead-letter
//!   queue does not take it, it stays on the buffer;
//! - a database that refuses the function (a missing column: a deploy before
//!   `make migrate`) is not the lead's fault: the lead is retried with the backoff, and
//!   the log says, at error level, that an operator must fix it.

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::graph::{Failure, GraphStandIn};
use common::proxy::{upstream, via, Mode, Proxy};
use common::queue::Queue;
use shared::domain::lead::dedup::Identity;
use shared::domain::lead::record::LeadRecord;
use shared::domain::lead::Lead;
use shared::domain::meta::Reference;
use shared::domain::source::{CARDEKHO, META};
use shared::infra::buffer::{self, Buffer, Unfetched};
use shared::infra::store::{Store, StoreSettings};
use shared::pipeline::drain::{Backoff, Drain};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

/// The visibility timeout the test's event source mapping receives with: the queue's
/// own, which a failed message the drain does not hide comes back after.
const QUEUE_VISIBILITY_S: i32 = 2;

/// A backoff on the test's scale: longer than the queue's visibility timeout from the
/// first failure, and doubling once.
const BACKOFF: Backoff = Backoff {
    first: Duration::from_secs(4),
    cap: Duration::from_secs(8),
};

/// A drain as `Drain::from_env` builds it (a store that never rests), on `queue`.
fn drain_on(queue: &Queue, options: PgConnectOptions) -> Drain {
    let settings = StoreSettings {
        breaker: Duration::ZERO,
        ..StoreSettings::default()
    };
    Drain::new(Store::new(options, settings))
        .with_buffer(queue.buffer())
        .with_backoff(BACKOFF)
}

fn record(phone: &str) -> LeadRecord {
    LeadRecord {
        source: &CARDEKHO,
        lead: Lead {
            name: "Ravi".into(),
            phone_number: phone.into(),
            car_model: None,
            lead_url: None,
            campaign: None,
            submitted_at: None,
            test: false,
        },
        payload: format!(r#"{{"name":"Ravi","mobile":"{phone}"}}"#),
        identity: Identity::default(),
        request_id: "r".into(),
        received_at: SystemTime::now(),
    }
}

async fn phones(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        r#"SELECT phone_number FROM public."mg-digital-leads" ORDER BY phone_number"#,
    )
    .fetch_all(pool)
    .await
    .expect("read phones")
}

/// Waits until `at`, then returns how many messages are visible.
async fn visible_at(queue: &Queue, at: Instant) -> usize {
    tokio::time::sleep(at.saturating_duration_since(Instant::now())).await;
    queue.visible().await
}

#[sqlx::test(migrations = "../migrations")]
async fn while_the_database_is_down_a_lead_waits_longer_with_each_receive(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let queue = Queue::with_dead_letter(50).await;
    let proxy = Proxy::start(upstream(&options).await).await;
    let drain = drain_on(&queue, via(&proxy, options.clone()));
    let buffer = queue.buffer();
    for phone in ["9800000001", "9800000002", "9800000003"] {
        buffer.send(&record(phone)).await.expect("queued");
    }
    proxy.set(Mode::Refuse);

    // The first receive fails: the batch is handed back, out of sight for the first
    // delay, well after the queue's own visibility timeout.
    let tried = Instant::now();
    let (handed, failed) = queue
        .drain_once_with_visibility(&drain, QUEUE_VISIBILITY_S)
        .await;
    assert_eq!((handed, failed.len()), (3, 3));
    let queue_visibility = Duration::from_secs(QUEUE_VISIBILITY_S as u64);
    assert_eq!(
        visible_at(
            &queue,
            tried + queue_visibility + Duration::from_millis(1000)
        )
        .await,
        0,
        "back after the queue's visibility timeout: the drain did not back off"
    );
    assert_eq!(
        visible_at(
            &queue,
            tried + BACKOFF.delay(1) + Duration::from_millis(2000)
        )
        .await,
        3,
        "back after the first delay"
    );

    // The second receive fails too: out of sight for twice as long.
    let tried = Instant::now();
    let (handed, failed) = queue
        .drain_once_with_visibility(&drain, QUEUE_VISIBILITY_S)
        .await;
    assert_eq!((handed, failed.len()), (3, 3));
    assert_eq!(BACKOFF.delay(2), 2 * BACKOFF.delay(1));
    assert_eq!(
        visible_at(
            &queue,
            tried + BACKOFF.delay(1) + Duration::from_millis(1000)
        )
        .await,
        0,
        "the second delay is the first again: the receive count was not read"
    );
    assert_eq!(
        visible_at(
            &queue,
            tried + BACKOFF.delay(2) + Duration::from_millis(2000)
        )
        .await,
        3,
        "back after the second delay"
    );

    // The database is back: stored, nothing dead-lettered.
    proxy.set(Mode::Forward);
    let (handed, failed) = queue
        .drain_once_with_visibility(&drain, QUEUE_VISIBILITY_S)
        .await;
    assert_eq!((handed, failed.len()), (3, 0), "{failed:?}");
    let pool = PgPool::connect_with(options).await.expect("pool");
    assert_eq!(
        phones(&pool).await,
        ["9800000001", "9800000002", "9800000003"]
    );
    assert_eq!(queue.depth().await, 0);
    assert!(queue.take_dead_letters().await.is_empty());
}

#[sqlx::test(migrations = "../migrations")]
async fn a_lead_that_can_never_be_stored_goes_to_the_dead_letter_queue_with_its_reason(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let queue = Queue::with_dead_letter(50).await;
    let pool = PgPool::connect_with(options.clone()).await.expect("pool");
    // The CRM's own rule, say: the database refuses this lead as data, every time.
    sqlx::query(
        r#"ALTER TABLE public."mg-digital-leads"
           ADD CONSTRAINT no_test_numbers CHECK (phone_number <> '0000000000')"#,
    )
    .execute(&pool)
    .await
    .expect("add check");
    let buffer = queue.buffer();
    buffer.send(&record("9800000001")).await.expect("queued");
    let refused = buffer::encode(&record("0000000000")).expect("encode");
    let foreign = buffer::encode(&record("9800000002"))
        .expect("encode")
        .replace(r#""source":"cardekho""#, r#""source":"olx""#);
    queue.send_raw(&refused).await;
    queue.send_raw("not a lead").await;
    queue.send_raw(&foreign).await;

    let (handed, failed) = queue.drain_once(&drain_on(&queue, options)).await;
    assert_eq!(handed, 4);
    assert_eq!(failed, Vec::<String>::new(), "nothing left to retry");
    assert_eq!(phones(&pool).await, ["9800000001"]);
    assert_eq!(queue.depth().await, 0, "off the buffer queue");

    let mut letters = queue.take_dead_letters().await;
    letters.sort_by(|a, b| a.body.cmp(&b.body));
    let bodies: Vec<&str> = letters.iter().map(|letter| letter.body.as_str()).collect();
    let mut expected = vec![refused.as_str(), "not a lead", foreign.as_str()];
    expected.sort();
    assert_eq!(bodies, expected, "each message as it was queued");
    for letter in &letters {
        let reason = letter.reason.as_deref().unwrap_or_default();
        let why = if letter.body == refused {
            "database refused the lead"
        } else {
            "not a queued lead"
        };
        assert!(reason.contains(why), "{}: reason {reason:?}", letter.body);
    }
    let foreign_reason = letters
        .iter()
        .find(|letter| letter.body == foreign)
        .and_then(|letter| letter.reason.as_deref());
    assert!(
        foreign_reason.is_some_and(|reason| reason.contains("olx")),
        "{foreign_reason:?}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_lead_the_dead_letter_queue_does_not_take_stays_on_the_buffer(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let queue = Queue::start().await;
    // A dead-letter queue that does not exist.
    let missing = format!("{}-missing", queue.url);
    let buffer = Buffer::new(&queue.config, queue.url.clone()).with_dead_letter(missing);
    queue.send_raw("not a lead").await;
    let settings = StoreSettings {
        breaker: Duration::ZERO,
        ..StoreSettings::default()
    };
    let drain = Drain::new(Store::new(options, settings)).with_buffer(buffer);

    let (handed, failed) = queue.drain_once(&drain).await;
    assert_eq!((handed, failed.len()), (1, 1));
    assert_eq!(queue.depth().await, 1, "still on the buffer queue");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_database_that_refuses_the_function_is_retried_and_logged_for_an_operator(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let queue = Queue::with_dead_letter(50).await;
    let pool = PgPool::connect_with(options.clone()).await.expect("pool");
    // A deploy before `make migrate`: the code writes a column the table lacks.
    sqlx::query(r#"ALTER TABLE public."mg-digital-leads" RENAME COLUMN campaign TO campaign_old"#)
        .execute(&pool)
        .await
        .expect("rename column");
    queue
        .buffer()
        .send(&record("9800000001"))
        .await
        .expect("queued");
    let drain = drain_on(&queue, options);

    let captured = common::Captured::default();
    let tried = Instant::now();
    let (handed, failed) = {
        let _installed = captured.install(tracing::level_filters::LevelFilter::INFO);
        queue
            .drain_once_with_visibility(&drain, QUEUE_VISIBILITY_S)
            .await
    };
    assert_eq!((handed, failed.len()), (1, 1), "retried, not dead-lettered");
    assert!(queue.take_dead_letters().await.is_empty());
    assert_eq!(
        visible_at(
            &queue,
            tried + Duration::from_secs(QUEUE_VISIBILITY_S as u64 + 1)
        )
        .await,
        0,
        "kept out of sight for the backoff"
    );
    let lines: Vec<serde_json::Value> = captured
        .text()
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON log line"))
        .collect();
    let line = lines
        .iter()
        .find(|line| line["outcome"] == "retried")
        .unwrap_or_else(|| panic!("no retried line: {lines:?}"));
    assert_eq!(line["level"], "ERROR", "{line}");
    let message = line["message"].as_str().unwrap_or_default();
    assert!(message.contains("operator"), "{line}");
    assert!(
        line["error"]
            .as_str()
            .is_some_and(|error| error.contains("refuses this function")),
        "{line}"
    );

    // The operator migrates: the lead is stored on its next receive.
    sqlx::query(r#"ALTER TABLE public."mg-digital-leads" RENAME COLUMN campaign_old TO campaign"#)
        .execute(&pool)
        .await
        .expect("rename back");
    visible_at(
        &queue,
        tried + BACKOFF.delay(1) + Duration::from_millis(2000),
    )
    .await;
    let (handed, failed) = queue.drain_once(&drain).await;
    assert_eq!((handed, failed.len()), (1, 0));
    assert_eq!(phones(&pool).await, ["9800000001"]);
}

fn unread(leadgen_id: &str) -> String {
    buffer::encode_unfetched(&Unfetched {
        source: &META,
        reference: Reference {
            leadgen_id: leadgen_id.into(),
            change: serde_json::json!({"field": "leadgen", "value": {"leadgen_id": leadgen_id}}),
        },
        request_id: "r".into(),
        received_at: SystemTime::now(),
    })
    .expect("encode unread")
}

#[sqlx::test(migrations = "../migrations")]
async fn a_meta_lead_the_graph_api_says_is_gone_goes_to_the_dead_letter_queue(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let graph = GraphStandIn::start().await;
    let queue = Queue::with_dead_letter(50).await;
    // Not at the stand-in: Meta's "does not exist, or missing permissions" (code 100).
    let gone = unread("9500000000000001");
    queue.send_raw(&gone).await;
    let drain = drain_on(&queue, options.clone()).with_meta(common::meta(&graph.url()));

    let (handed, failed) = queue.drain_once(&drain).await;
    assert_eq!((handed, failed.len()), (1, 0));
    assert_eq!(queue.depth().await, 0);
    let letters = queue.take_dead_letters().await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].body, gone);
    let reason = letters[0].reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("9500000000000001") && reason.contains("code 100"),
        "{reason}"
    );

    // A Graph API that is only rate-limiting: retried, not dead-lettered.
    graph.add_lead(common::meta_lead("9500000000000002", "Sara", "9812300005"));
    graph.fail_always(Failure::rate_limited());
    queue.send_raw(&unread("9500000000000002")).await;
    let (handed, failed) = queue.drain_once(&drain).await;
    assert_eq!((handed, failed.len()), (1, 1));
    assert!(queue.take_dead_letters().await.is_empty());
    assert_eq!(queue.depth().await, 1);
}
