//! Meta lead ads end to end, against a real PostgreSQL, a real SQS API (moto) and a local
//! stand-in for the Graph API: signatures over the exact bytes, batches with repeats, the
//! Graph API down (queued unread, read by the drain once it is back), a lead it says is
//! gone (never dropped), and the scheduled pull storing exactly what the webhook missed.

mod common;

use std::time::Duration;

use common::graph::{Failure, GraphStandIn};
use common::queue::{Queue, Queues};
use serde_json::{json, Value};
use shared::domain::auth::hmac_hex;
use shared::domain::source::META;
use shared::infra::graph::Meta;
use shared::infra::store::{Store, StoreSettings};
use shared::pipeline::drain::Drain;
use shared::pipeline::pull::MetaPull;
use shared::App;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

const FORM: &str = "444555666777888";

fn notification(ids: &[&str]) -> String {
    let changes: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({"field": "leadgen", "value": {
                "leadgen_id": id.parse::<u64>().expect("numeric id"),
                "page_id": common::META_PAGE_ID, "form_id": FORM, "created_time": 1795427990
            }})
        })
        .collect();
    json!({"object": "page", "entry": [{"id": common::META_PAGE_ID, "time": 1795428000, "changes": changes}]})
        .to_string()
}

fn signature(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hmac_hex(secret.as_bytes(), body))
}

async fn notify(app: &App, body: &[u8], signature: Option<&str>) -> common::Answer {
    let headers: Vec<(&str, &str)> = signature
        .map(|value| vec![("x-hub-signature-256", value)])
        .unwrap_or_default();
    let request = common::request_with(None, Some("application/json"), &headers, body.to_vec());
    common::call(app, request).await
}

/// A notification signed as Meta signs it, with the development app secret.
async fn signed(app: &App, body: &str) -> common::Answer {
    let signature = signature(common::META_APP_SECRET, body.as_bytes());
    notify(app, body.as_bytes(), Some(&signature)).await
}

fn summary(stored: usize, duplicates: usize, queued: usize) -> String {
    format!(r#"{{"stored":{stored},"duplicates":{duplicates},"queued":{queued}}}"#)
}

async fn leads(pool: &PgPool) -> Vec<(String, String, Option<String>)> {
    sqlx::query_as(
        r#"SELECT partner_lead_id, name, phone_e164 FROM public."mg-digital-leads"
           WHERE platform = 'Meta' ORDER BY partner_lead_id"#,
    )
    .fetch_all(pool)
    .await
    .expect("read Meta leads")
}

fn pull_for(graph: &GraphStandIn, options: PgConnectOptions) -> MetaPull {
    MetaPull::new(
        &META,
        common::meta(&graph.url()),
        Store::new(options, StoreSettings::default()),
        Duration::from_secs(3600),
    )
}

fn drain_for(graph: &GraphStandIn, options: PgConnectOptions) -> Drain {
    let settings = StoreSettings {
        breaker: Duration::ZERO,
        ..StoreSettings::default()
    };
    Drain::new(Store::new(options, settings)).with_meta(common::meta(&graph.url()))
}

#[sqlx::test(migrations = "../migrations")]
async fn the_signature_covers_the_exact_bytes(_: PgPoolOptions, options: PgConnectOptions) {
    let graph = GraphStandIn::start().await;
    graph.add_lead(common::meta_lead(
        "9200000000000001",
        "Asha Rao",
        "+91 98765 43210",
    ));
    let app = common::meta_app(&META, options.clone(), &graph.url());
    let pool = common::pool(&options).await;
    let body = notification(&["9200000000000001"]);
    let signed = signature(common::META_APP_SECRET, body.as_bytes());

    // The same JSON, spaced differently, is other bytes: refused, nothing read or stored.
    let respaced =
        serde_json::to_string_pretty(&serde_json::from_str::<Value>(&body).unwrap()).unwrap();
    let forged = notify(&app, respaced.as_bytes(), Some(&signed)).await;
    assert_eq!(
        (forged.status, forged.body.as_str()),
        (403, r#"{"error":"Invalid signature"}"#)
    );
    let upper = signed.to_uppercase();
    assert_eq!(
        notify(&app, body.as_bytes(), Some(&upper)).await.status,
        403
    );
    let other = signature("another-app-secret", body.as_bytes());
    assert_eq!(
        notify(&app, body.as_bytes(), Some(&other)).await.status,
        403
    );
    let missing = notify(&app, body.as_bytes(), None).await;
    assert_eq!(
        (missing.status, missing.body.as_str()),
        (401, r#"{"error":"Missing signature"}"#)
    );
    assert!(
        graph.requests().is_empty(),
        "a forged notification reads nothing"
    );
    assert_eq!(common::count(&pool).await, 0);

    let good = notify(&app, body.as_bytes(), Some(&signed)).await;
    assert_eq!(
        (good.status, good.body.as_str()),
        (200, summary(1, 0, 0).as_str())
    );
    assert_eq!(
        leads(&pool).await,
        [(
            "9200000000000001".into(),
            "Asha Rao".into(),
            Some("+919876543210".into())
        )]
    );
    // Every Graph call carried the token's proof.
    let request = &graph.requests()[0];
    assert_eq!(
        request.param("appsecret_proof"),
        Some(
            hmac_hex(
                common::META_APP_SECRET.as_bytes(),
                common::META_PAGE_TOKEN.as_bytes()
            )
            .as_str()
        )
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn both_app_secrets_sign_during_a_rotation(_: PgPoolOptions, options: PgConnectOptions) {
    let graph = GraphStandIn::start().await;
    graph.add_lead(common::meta_lead("9200000000000002", "Imran", "9812300002"));
    let secrets = shared::domain::meta::MetaSecrets::new(
        vec![common::META_APP_SECRET.into(), "the-previous-secret".into()],
        common::META_VERIFY_TOKEN.into(),
        common::META_PAGE_TOKEN.into(),
        common::META_PAGE_ID.into(),
    )
    .unwrap();
    let settings = shared::infra::graph::GraphSettings {
        base_url: graph.url(),
        ..Default::default()
    };
    let meta = Meta::new(
        shared::infra::secrets::Setting::fixed(secrets),
        shared::infra::graph::Graph::new(settings),
    );
    let app = App::signed(&META, meta, Store::new(options, StoreSettings::default()));
    let body = notification(&["9200000000000002"]);
    for secret in [common::META_APP_SECRET, "the-previous-secret"] {
        let answer = notify(
            &app,
            body.as_bytes(),
            Some(&signature(secret, body.as_bytes())),
        )
        .await;
        assert_eq!(answer.status, 200, "{secret}: {}", answer.body);
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_batch_stores_each_lead_once(_: PgPoolOptions, options: PgConnectOptions) {
    let graph = GraphStandIn::start().await;
    for (id, name) in [
        ("9300000000000001", "A"),
        ("9300000000000002", "B"),
        ("9300000000000003", "C"),
    ] {
        graph.add_lead(common::meta_lead(id, name, "9812300003"));
    }
    let app = common::meta_app(&META, options.clone(), &graph.url());
    let pool = common::pool(&options).await;
    let first = notification(&["9300000000000001"]);
    let answer = signed(&app, &first).await;
    assert_eq!(answer.body, summary(1, 0, 0));
    // A batch naming a stored lead, a new one twice, and another.
    let batch = notification(&[
        "9300000000000001",
        "9300000000000002",
        "9300000000000002",
        "9300000000000003",
    ]);
    let answer = signed(&app, &batch).await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, summary(2, 2, 0).as_str())
    );
    // Each lead was read once: a stored one is not read again, even within one batch.
    let mut paths: Vec<String> = graph.requests().into_iter().map(|r| r.path).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/v25.0/9300000000000001",
            "/v25.0/9300000000000002",
            "/v25.0/9300000000000003"
        ]
    );
    let names: Vec<String> = leads(&pool)
        .await
        .into_iter()
        .map(|(_, name, _)| name)
        .collect();
    assert_eq!(names, ["A", "B", "C"]);
}

#[sqlx::test(migrations = "../migrations")]
async fn graph_down_queues_the_lead_and_the_drain_reads_it_when_back(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let graph = GraphStandIn::start().await;
    graph.add_lead(common::meta_lead(
        "9400000000000001",
        "Ravi",
        "919812300004",
    ));
    graph.add_lead(common::meta_lead("9400000000000002", "Sara", "9812300005"));
    let queue = Queue::start().await;
    let app = common::meta_app(&META, options.clone(), &graph.url()).with_buffer(queue.buffer());
    let pool = common::pool(&options).await;

    // Rate-limited, then a server error: both leads queued unread, the answer a 200.
    graph.fail_next(1, Failure::rate_limited());
    graph.fail_next(
        1,
        Failure::meta(500, 2, "An unexpected error has occurred."),
    );
    let body = notification(&["9400000000000001", "9400000000000002"]);
    let answer = signed(&app, &body).await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, summary(0, 0, 2).as_str())
    );
    assert_eq!(common::count(&pool).await, 0);

    // Still down when the drain first tries: handed back, nothing stored.
    let drain = drain_for(&graph, options.clone());
    graph.fail_always(Failure::rate_limited());
    let (handed, failed) = queue.drain_once(&drain).await;
    assert_eq!((handed, failed.len()), (2, 2));
    assert_eq!(common::count(&pool).await, 0);

    // Back: the drain reads and stores each once, and Meta's retry finds them stored.
    graph.reset_failures();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut drained = 0;
    while queue.depth().await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the queue did not drain"
        );
        let (handed, failed) = queue.drain_once(&drain).await;
        assert_eq!(failed, Vec::<String>::new());
        drained += handed;
        if handed == 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            queue.release_in_flight().await;
        }
    }
    assert_eq!(drained, 2);
    let stored = leads(&pool).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].2.as_deref(), Some("+919812300004"));
    let reads = graph.requests().len();
    let retry = signed(&app, &body).await;
    assert_eq!(retry.body, summary(0, 2, 0));
    assert_eq!(
        graph.requests().len(),
        reads,
        "stored leads are not read again"
    );
    assert_eq!(queue.depth().await, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_lead_the_graph_api_says_is_gone_is_never_dropped(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let graph = GraphStandIn::start().await;
    let queue = Queue::start().await;
    let app = common::meta_app(&META, options.clone(), &graph.url()).with_buffer(queue.buffer());
    // Not at the stand-in: Meta's "does not exist, or missing permissions" (100/33).
    let body = notification(&["9500000000000001"]);
    let answer = signed(&app, &body).await;
    assert_eq!(answer.body, summary(0, 0, 1));
    // The drain cannot store it either: it stays on the queue, which moves it to the
    // dead-letter queue after its retries (template.yaml), where its alarm fires.
    let (handed, failed) = queue.drain_once(&drain_for(&graph, options.clone())).await;
    assert_eq!((handed, failed.len()), (1, 1));
    assert_eq!(queue.depth().await, 1);
    assert_eq!(common::count(&common::pool(&options).await).await, 0);

    // Without a queue, the notification is answered 500, and Meta sends it again.
    let unqueued = common::meta_app(&META, options, &graph.url());
    let answer = signed(&unqueued, &body).await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (500, r#"{"error":"Internal server error"}"#)
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn the_pull_stores_exactly_what_the_webhook_missed(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let graph = GraphStandIn::start().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    graph.add_form(common::META_PAGE_ID, FORM);
    graph.add_form(common::META_PAGE_ID, "444555666777999");
    // Pages of one, so every list is followed through its paging.
    graph.set_page_size(1);
    let lead = |id: &str, form: &str, created: i64| {
        let mut lead = common::graph::lead(id, form, created);
        lead["field_data"][1]["values"] = json!([format!("98123{}", &id[11..])]);
        lead
    };
    graph.add_lead(lead("9600000000000001", FORM, now - 600));
    graph.add_lead(lead("9600000000000002", FORM, now - 300));
    graph.add_lead(lead("9600000000000003", "444555666777999", now - 60));
    // Older than the first run's look-back: not the pull's to store.
    graph.add_lead(lead("9600000000000004", FORM, now - 7200));

    // The webhook brought one of them.
    let app = common::meta_app(&META, options.clone(), &graph.url());
    let body = notification(&["9600000000000002"]);
    let answer = signed(&app, &body).await;
    assert_eq!(answer.body, summary(1, 0, 0));

    let sync = pull_for(&graph, options.clone());
    let deadline = std::time::SystemTime::now() + Duration::from_secs(600);
    let report = sync.run("sync-1", deadline).await.expect("a pull");
    assert_eq!(
        (report.lists, report.leads, report.stored, report.duplicates),
        (2, 3, 2, 1)
    );
    let pool = common::pool(&options).await;
    let ids: Vec<String> = leads(&pool)
        .await
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    assert_eq!(
        ids,
        ["9600000000000001", "9600000000000002", "9600000000000003"]
    );

    // Run again: nothing stored twice, and it looks back from its watermark.
    let again = sync.run("sync-2", deadline).await.expect("a second pull");
    assert_eq!((again.stored, again.duplicates), (0, 3));
    assert!(again.since >= report.since, "{again:?} after {report:?}");
    assert_eq!(common::count(&pool).await, 3);
    let watermarks: i64 = sqlx::query_scalar("SELECT count(*) FROM public.lead_sync_watermarks")
        .fetch_one(&pool)
        .await
        .unwrap();
    // The page's, and each form's.
    assert_eq!(watermarks, 3);

    // A failing run keeps the watermark and reports the failure.
    graph.fail_always(Failure::rate_limited());
    assert!(sync.run("sync-3", deadline).await.is_err());
}

#[sqlx::test(migrations = "../migrations")]
async fn one_person_across_sources(_: PgPoolOptions, options: PgConnectOptions) {
    let pool = common::pool(&options).await;
    let cases: [(&'static shared::Source, String, Option<&str>); 5] = [
        (&shared::domain::source::CARDEKHO, json!({"name": "P", "phone_number": "09876543210"}).to_string(), Some("+919876543210")),
        (&shared::domain::source::KNOWLARITY, json!({"caller_id": "+91 98765 43210"}).to_string(), Some("+919876543210")),
        (&shared::domain::source::CARWALE, json!({"customer_name": "P", "mobile": 9876543210u64}).to_string(), Some("+919876543210")),
        (&shared::domain::source::GOOGLE, json!({"google_key": "local-dev-google-key", "lead_id": "g-1", "user_column_data": [{"column_id": "PHONE_NUMBER", "string_value": "919876543210"}]}).to_string(), Some("+919876543210")),
        // Not a number anyone can dial: stored as received, without its E.164 form.
        (&shared::domain::source::CARDEKHO, json!({"name": "Q", "phone_number": "call me"}).to_string(), None),
    ];
    for (source, body, _) in &cases {
        let app = common::app(source, options.clone());
        let key = common::dev_key(source);
        let header = (source.auth == shared::domain::source::Auth::Header).then_some(key.as_str());
        let answer = common::call(
            &app,
            common::request(header, None, body.clone().into_bytes()),
        )
        .await;
        assert!(
            answer.status == 201 || answer.status == 200,
            "{}: {}",
            source.slug,
            answer.body
        );
    }
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        r#"SELECT platform, phone_number, phone_e164 FROM public."mg-digital-leads" ORDER BY id"#,
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let e164: Vec<Option<&str>> = rows.iter().map(|(_, _, e164)| e164.as_deref()).collect();
    assert_eq!(
        e164,
        cases.iter().map(|(_, _, e164)| *e164).collect::<Vec<_>>()
    );
    assert_eq!(rows[4].1, "call me");
    // The CRM's query: one person's enquiries from every source.
    let platforms: Vec<String> = sqlx::query_scalar(
        r#"SELECT platform FROM public."mg-digital-leads" WHERE phone_e164 = '+919876543210' ORDER BY id"#,
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(platforms, ["CarDekho", "Knowlarity", "CarWale", "Google"]);
}

#[sqlx::test(migrations = "../migrations")]
async fn each_lead_of_a_notification_meets_its_own_fate(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let graph = GraphStandIn::start().await;
    graph.add_lead(common::meta_lead("9700000000000001", "Asha", "9812300071"));
    // Read, but without a phone: never a row.
    let mut phoneless = common::meta_lead("9700000000000002", "Nobody", "x");
    phoneless["field_data"] = json!([{"name": "full_name", "values": ["Nobody"]}]);
    graph.add_lead(phoneless);
    // Read, and refused by a rule of the CRM's table.
    graph.add_lead(common::meta_lead(
        "9700000000000003",
        "Blocked",
        "9812300073",
    ));
    // Carrying U+0000, which PostgreSQL's text cannot hold.
    graph.add_lead(common::meta_lead(
        "9700000000000004",
        "Ravi\u{0}Kumar",
        "9812300074",
    ));
    graph.add_lead(common::meta_lead("9700000000000005", "Sara", "9812300075"));
    let pool = common::pool(&options).await;
    sqlx::query(
        r#"ALTER TABLE public."mg-digital-leads"
           ADD CONSTRAINT crm_no_blocked_name CHECK (name <> 'Blocked')"#,
    )
    .execute(&pool)
    .await
    .expect("a CRM rule");
    let queues = Queues::start().await;
    let app = common::meta_app(&META, options.clone(), &graph.url()).with_buffer(queues.buffer());

    let body = notification(&[
        "9700000000000001",
        "9700000000000002",
        "9700000000000003",
        "9700000000000004",
        "9700000000000005",
    ]);
    let answer = signed(&app, &body).await;
    // The good leads stored, the two that can never be rows kept: none blocks another.
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, summary(3, 0, 2).as_str())
    );
    let stored: Vec<String> = leads(&pool)
        .await
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    assert_eq!(
        stored,
        ["9700000000000001", "9700000000000004", "9700000000000005"]
    );
    let mut kept: Vec<(String, String)> = queues
        .dead_letters()
        .await
        .into_iter()
        .map(|(message, reason)| {
            let id = message["reference"]["leadgen_id"]
                .as_str()
                .or_else(|| message["partner_lead_id"].as_str())
                .unwrap_or_default()
                .to_owned();
            (id, reason)
        })
        .collect();
    kept.sort();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!(kept[0].0, "9700000000000002");
    assert!(kept[0].1.contains("phone_number"), "{}", kept[0].1);
    assert_eq!(kept[1].0, "9700000000000003");
    assert!(kept[1].1.contains("crm_no_blocked_name"), "{}", kept[1].1);
    assert_eq!(queues.buffer.depth().await, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_large_batch_is_answered_in_time_and_stored_once(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    const LEADS: usize = 600;
    let graph = GraphStandIn::start().await;
    let ids: Vec<String> = (0..LEADS).map(|n| format!("98{:014}", n + 1)).collect();
    for (n, id) in ids.iter().enumerate() {
        graph.add_lead(common::meta_lead(id, "Batch", &format!("98{:08}", n + 1)));
    }
    // Every read of a lead takes a while, as over the internet.
    graph.fail_always(Failure::Delay(Duration::from_millis(50)));
    let queue = Queue::start().await;
    let app = common::meta_app(&META, options.clone(), &graph.url()).with_buffer(queue.buffer());
    let pool = common::pool(&options).await;
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let body = notification(&ids);
    assert!(
        body.len() > shared::domain::lead::payload::MAX_BODY_BYTES,
        "{}",
        body.len()
    );

    let started = std::time::Instant::now();
    let answer = signed(&app, &body).await;
    let took = started.elapsed();
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(took < Duration::from_secs(5), "answered in {took:?}");
    let counts = answer.json();
    let stored = counts["stored"].as_u64().expect("stored") as usize;
    let queued = counts["queued"].as_u64().expect("queued") as usize;
    assert_eq!(stored + queued, LEADS, "{}", answer.body);
    assert_eq!(common::count(&pool).await as usize, stored);
    assert_eq!(queue.depth().await, queued);

    // Meta sends it again: nothing is stored twice, and stored leads are not read again.
    let reads = graph.requests().len();
    let again = signed(&app, &body).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["duplicates"].as_u64(), Some(stored as u64));
    assert_eq!(
        common::count(&pool).await as usize,
        stored + again.json()["stored"].as_u64().unwrap_or(0) as usize
    );
    let distinct: i64 = sqlx::query_scalar(
        r#"SELECT count(DISTINCT partner_lead_id) FROM public."mg-digital-leads""#,
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(distinct, common::count(&pool).await);
    assert!(graph.requests().len() - reads <= queued);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_notification_over_its_bound_is_refused_before_its_signature_is_computed(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let graph = GraphStandIn::start().await;
    let app = common::meta_app(&META, options, &graph.url());
    let body = vec![b' '; META.max_body + 1];
    let answer = notify(&app, &body, Some("sha256=00")).await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (413, r#"{"error":"Payload too large"}"#)
    );
}
