//! Knowlarity's scheduled pull against a real PostgreSQL and a local stand-in of the
//! call-log API: it stores exactly the calls no push brought, across pages; a second run
//! stores nothing; a call pushed (POST or GET) and pulled is stored once; a failing run
//! keeps its watermark and the next covers its window; a long call that ended after a run is
//! pulled by the next; a backlog too long for one run is
//! finished over several, each going on where the last stopped; refused keys are their own kind;
//! both keys travel as headers and the times carry their offset; no key is ever printed.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::knowlarity::{call, KnowlarityStandIn, APP_KEY, SR_KEY};
use lambda_http::Body;
use shared::domain::source::KNOWLARITY;
use shared::infra::knowlarity::{
    ist_time, CallLog, Knowlarity, KnowlarityError, KnowlarityKeys, KnowlaritySettings,
};
use shared::infra::secrets::Setting;
use shared::infra::store::{Store, StoreSettings};
use shared::pipeline::pull::{KnowlarityPull, PullError};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

const OVERLAP: Duration = Duration::from_secs(900);

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

fn later() -> SystemTime {
    SystemTime::now() + Duration::from_secs(600)
}

fn keys() -> KnowlarityKeys {
    KnowlarityKeys::new(APP_KEY, SR_KEY)
}

/// Two calls a page, so three calls take two pages.
fn call_log(stand_in: &KnowlarityStandIn) -> CallLog {
    CallLog::new(KnowlaritySettings {
        base_url: stand_in.url(),
        page_limit: 2,
        timeout: Duration::from_secs(2),
        ..KnowlaritySettings::default()
    })
}

fn pull(stand_in: &KnowlarityStandIn, options: PgConnectOptions) -> KnowlarityPull {
    pull_over(stand_in, options, OVERLAP)
}

fn pull_over(
    stand_in: &KnowlarityStandIn,
    options: PgConnectOptions,
    overlap: Duration,
) -> KnowlarityPull {
    let settings = StoreSettings {
        breaker: Duration::ZERO,
        ..StoreSettings::default()
    };
    KnowlarityPull::new(
        &KNOWLARITY,
        Knowlarity::new(Setting::fixed(keys()), call_log(stand_in)),
        Store::new(options, settings),
        overlap,
    )
}

/// Calls stored, by uuid, in order.
async fn stored_uuids(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        r#"SELECT partner_lead_id FROM public."mg-digital-leads"
           WHERE platform = 'Knowlarity' ORDER BY partner_lead_id"#,
    )
    .fetch_all(pool)
    .await
    .expect("stored calls")
}

async fn watermark(pool: &PgPool) -> Option<i64> {
    sqlx::query_scalar(
        "SELECT extract(epoch FROM synced_until)::int8 FROM public.lead_sync_watermarks \
         WHERE source = 'Knowlarity'",
    )
    .fetch_optional(pool)
    .await
    .expect("the watermark")
}

async fn set_watermark(pool: &PgPool, unix: i64) {
    sqlx::query(
        "INSERT INTO public.lead_sync_watermarks (source, synced_until) \
         VALUES ('Knowlarity', to_timestamp($1))",
    )
    .bind(unix as f64)
    .execute(pool)
    .await
    .expect("a watermark");
}

async fn push(app: &shared::App, request: lambda_http::Request) -> u16 {
    common::call(app, request).await.status
}

#[sqlx::test(migrations = "../migrations")]
async fn the_pull_stores_exactly_the_calls_the_push_missed_and_each_call_once(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let stand_in = KnowlarityStandIn::start().await;
    let pool = common::pool(&options).await;
    let start_unix = now() - 120;
    let start = ist_time(start_unix);
    for (uuid, number) in [
        ("call-1", "+917330995501"),
        ("call-2", "+917330995502"),
        ("call-3", "+917330995503"),
        ("call-4", "+917330995504"),
        ("call-5", "+917330995505"),
    ] {
        stand_in.add_call(call(uuid, number, &start));
    }
    // A call with nobody to call back: logged and skipped.
    let mut anonymous = call("call-6", "", &start);
    anonymous
        .as_object_mut()
        .expect("an object")
        .remove("customer_number");
    stand_in.add_call(anonymous);

    // The push brought call-1 by POST (form body) and call-2 by GET (query string).
    let app = common::app(&KNOWLARITY, options.clone());
    let key = common::dev_key(&KNOWLARITY);
    let route = "https://leads.example.com/admin/mg-digital-leads/source/knowlarity";
    let form = lambda_http::http::Request::builder()
        .method("POST")
        .uri(route)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-api-key", key.as_str())
        .body(Body::from(
            "uuid=call-1&customer_number=%2B917330995501&business_call_type=Missed+Call",
        ))
        .expect("a request");
    assert_eq!(push(&app, form).await, 201);
    let get = lambda_http::http::Request::builder()
        .method("GET")
        .uri(format!(
            "{route}?uuid=call-2&customer_number=%2B917330995502&api_key={key}"
        ))
        .body(Body::Empty)
        .expect("a request");
    assert_eq!(push(&app, get).await, 201);

    let before = now();
    let report = pull(&stand_in, options.clone())
        .run("run-1", later())
        .await
        .expect("a whole run");
    assert_eq!(
        (report.pages, report.leads, report.stored, report.duplicates),
        (3, 6, 3, 2),
        "{report:?}"
    );
    assert_eq!(
        stored_uuids(&pool).await,
        ["call-1", "call-2", "call-3", "call-4", "call-5"]
    );
    let row: (
        String,
        String,
        Option<String>,
        Option<f64>,
        sqlx::types::Json<serde_json::Value>,
    ) = sqlx::query_as(
        r#"SELECT name, phone_number, phone_e164,
                      extract(epoch FROM meta_created_at)::float8, payload
               FROM public."mg-digital-leads" WHERE partner_lead_id = 'call-3'"#,
    )
    .fetch_one(&pool)
    .await
    .expect("call-3's row");
    assert_eq!(row.0, "Knowlarity Lead +917330995503");
    assert_eq!(row.1, "+917330995503");
    assert_eq!(row.2.as_deref(), Some("+917330995503"));
    assert_eq!(row.3.map(|seconds| seconds as i64), Some(start_unix));
    assert_eq!(row.4 .0, call("call-3", "+917330995503", &start));
    let watermark_after = watermark(&pool).await.expect("a watermark");
    assert!(watermark_after >= before, "{watermark_after} < {before}");

    // Both keys as headers, the window from the overlap before now to the run's start,
    // in IST with its offset, paged by offset.
    let requests = stand_in.requests();
    assert_eq!(requests.len(), 3);
    for (page, request) in requests.iter().enumerate() {
        assert_eq!(request.path, "/Basic/v1/account/calllog");
        assert_eq!(request.app_key.as_deref(), Some(APP_KEY));
        assert_eq!(request.authorization.as_deref(), Some(SR_KEY));
        assert!(!request.raw_query.contains(APP_KEY) && !request.raw_query.contains(SR_KEY));
        assert_eq!(request.param("limit"), Some("2"));
        assert_eq!(
            request.param("offset"),
            Some((page * 2).to_string().as_str())
        );
        for bound in ["start_time", "end_time"] {
            let time = request.param(bound).expect("a time");
            assert!(time.ends_with("+05:30"), "{bound}={time}");
            assert!(
                request.raw_query.contains("%2B05%3A30"),
                "{}",
                request.raw_query
            );
        }
        let start = shared::domain::lead::unix_seconds(request.param("start_time").unwrap());
        assert_eq!(start, Some(report.since));
    }
    assert!((before - 900 - report.since).abs() <= 2, "{report:?}");

    // A second run stores nothing again, and reads from the new watermark.
    let again = pull(&stand_in, options.clone())
        .run("run-2", later())
        .await
        .expect("a whole run");
    assert_eq!((again.stored, again.duplicates), (0, 5), "{again:?}");
    assert_eq!(again.since, watermark_after - 900);
    // And a push after the pull is a duplicate too.
    let get = lambda_http::http::Request::builder()
        .method("GET")
        .uri(format!(
            "{route}?uuid=call-4&customer_number=%2B917330995504&api_key={key}"
        ))
        .body(Body::Empty)
        .expect("a request");
    assert_eq!(push(&app, get).await, 200);
    assert_eq!(common::count(&pool).await, 5);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_failing_run_keeps_its_watermark_and_the_next_covers_its_window(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let stand_in = KnowlarityStandIn::start().await;
    let pool = common::pool(&options).await;
    let start = ist_time(now() - 60);
    for index in 1..=3 {
        stand_in.add_call(call(
            &format!("call-{index}"),
            &format!("+91733099560{index}"),
            &start,
        ));
    }
    let earlier = now() - 3600;
    set_watermark(&pool, earlier).await;

    // Knowlarity fails after the first page: 500, then 429 on the next run's first page.
    stand_in.pass_next(1);
    stand_in.fail_next(1, 500);
    let failed = pull(&stand_in, options.clone()).run("run-1", later()).await;
    assert!(
        matches!(
            failed,
            Err(PullError::Knowlarity(KnowlarityError::Unavailable(_)))
        ),
        "{failed:?}"
    );
    assert_eq!(watermark(&pool).await, Some(earlier));
    stand_in.fail_next(1, 429);
    let failed = pull(&stand_in, options.clone()).run("run-2", later()).await;
    assert!(
        matches!(
            failed,
            Err(PullError::Knowlarity(KnowlarityError::Unavailable(_)))
        ),
        "{failed:?}"
    );
    assert_eq!(watermark(&pool).await, Some(earlier));

    // The next run goes on with the same window where the first stopped (its first page
    // was kept), and finishes it.
    let report = pull(&stand_in, options.clone())
        .run("run-3", later())
        .await
        .expect("a whole run");
    assert_eq!(report.since, earlier - 900);
    assert_eq!((report.stored, report.duplicates), (1, 0), "{report:?}");
    let requests = stand_in.requests();
    let last = requests.last().expect("run-3's request");
    assert_eq!(last.param("offset"), Some("2"));
    assert_eq!(last.param("end_time"), requests[0].param("end_time"));
    assert_eq!(stored_uuids(&pool).await, ["call-1", "call-2", "call-3"]);
    assert!(watermark(&pool).await.expect("a watermark") > earlier);
}

/// A window too long for one run (here: one page a run) is finished over several runs,
/// each reading on from the page after the last one kept, over the same fixed window;
/// the watermark moves once, when the last page is kept.
#[sqlx::test(migrations = "../migrations")]
async fn a_backlog_is_finished_over_several_runs_each_going_on_where_the_last_stopped(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let stand_in = KnowlarityStandIn::start().await;
    let pool = common::pool(&options).await;
    let start = ist_time(now() - 60);
    for index in 1..=5 {
        stand_in.add_call(call(
            &format!("call-{index}"),
            &format!("+91733099570{index}"),
            &start,
        ));
    }
    let earlier = now() - 3600;
    set_watermark(&pool, earlier).await;

    // A reserve longer than the invocation: each run reads one page and stops.
    let one_page_a_run =
        || pull(&stand_in, options.clone()).with_reserve(Duration::from_secs(3600));
    let mut stored = Vec::new();
    for run in 1..=3 {
        let report = one_page_a_run()
            .run(&format!("run-{run}"), later())
            .await
            .expect("a run that keeps its calls");
        assert_eq!(report.pages, 1, "run {run}: {report:?}");
        assert_eq!(report.duplicates, 0, "run {run}: nothing read twice");
        stored.push(report.stored);
        let finished = run == 3;
        assert_eq!(report.unfinished_lists, usize::from(!finished), "run {run}");
        if !finished {
            assert_eq!(watermark(&pool).await, Some(earlier), "run {run}");
            // The next run starts a second later: its window must still be this one.
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
    }
    assert_eq!(stored, [2, 2, 1]);
    assert_eq!(
        stored_uuids(&pool).await,
        ["call-1", "call-2", "call-3", "call-4", "call-5"]
    );
    let requests = stand_in.requests();
    let offsets: Vec<_> = requests.iter().map(|r| r.param("offset")).collect();
    assert_eq!(offsets, [Some("0"), Some("2"), Some("4")]);
    for request in &requests {
        assert_eq!(request.param("start_time"), requests[0].param("start_time"));
        assert_eq!(request.param("end_time"), requests[0].param("end_time"));
    }
    let moved = watermark(&pool).await.expect("a watermark");
    let end = shared::domain::lead::unix_seconds(requests[0].param("end_time").unwrap());
    assert_eq!(Some(moved), end, "the watermark moves to the window's end");
}

#[sqlx::test(migrations = "../migrations")]
async fn refused_keys_are_their_own_kind_and_no_key_is_ever_printed(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let stand_in = KnowlarityStandIn::start().await;
    let pool = common::pool(&options).await;
    stand_in.add_call(call("call-1", "+917330995701", &ist_time(now())));
    stand_in.fail_next(1, 401);
    let before = now();
    let refused = pull(&stand_in, options.clone()).run("run-1", later()).await;
    let Err(PullError::Knowlarity(error)) = &refused else {
        panic!("expected Knowlarity's refusal, got {refused:?}");
    };
    assert!(error.is_refused(), "{error}");
    // The first run's window is recorded as not yet listed: the next looks back from the
    // refused run's start, not its own.
    let first = watermark(&pool).await.expect("the first window's start");
    assert!(
        (before..=before + 2).contains(&first),
        "{first} vs {before}"
    );
    assert_eq!(common::count(&pool).await, 0);

    // Wrong keys: Knowlarity's 403, the same kind.
    let wrong = KnowlarityPull::new(
        &KNOWLARITY,
        Knowlarity::new(
            Setting::fixed(KnowlarityKeys::new("wrong-app-key-5d1", "wrong-sr-key-8e2")),
            call_log(&stand_in),
        ),
        Store::new(options.clone(), StoreSettings::default()),
        OVERLAP,
    );
    let refused = wrong.run("run-2", later()).await;
    assert!(
        matches!(&refused, Err(PullError::Knowlarity(error)) if error.is_refused()),
        "{refused:?}"
    );

    // Nowhere printed: the pull, its keys, its errors (a connection refused included).
    let pull = pull(&stand_in, options.clone());
    let unreachable = CallLog::new(KnowlaritySettings {
        base_url: "http://127.0.0.1:9".into(),
        timeout: Duration::from_secs(1),
        ..KnowlaritySettings::default()
    });
    let down = unreachable.page(&keys(), now() - 60, now(), 0).await;
    let printed = format!(
        "{pull:?} {:?} {refused:?} {} {down:?}",
        keys(),
        refused.as_ref().map(|_| ()).unwrap_err()
    );
    for secret in [APP_KEY, SR_KEY, "wrong-app-key-5d1", "wrong-sr-key-8e2"] {
        assert!(!printed.contains(secret), "{printed}");
    }
    assert!(
        matches!(down, Err(KnowlarityError::Unavailable(_))),
        "{down:?}"
    );
}

/// A call enters the log only once it has ended, and the log lists calls by their start:
/// a forty-minute call that began before the last run's window and ended after that run
/// is listed by the next run under the default overlap, and the calls re-read with it
/// are found stored, not inserted again.
#[sqlx::test(migrations = "../migrations")]
async fn a_long_call_that_ended_after_the_last_run_is_pulled_by_the_next(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let stand_in = KnowlarityStandIn::start().await;
    let pool = common::pool(&options).await;
    let overlap = shared::infra::config::DEFAULT_KNOWLARITY_OVERLAP;
    // The last run covered up to a minute ago, and stored the short call it listed.
    let last_run = now() - 60;
    set_watermark(&pool, last_run).await;
    stand_in.add_call(call("short", "+917330995511", &ist_time(last_run - 120)));
    let first = pull_over(&stand_in, options.clone(), overlap)
        .run("run-1", later())
        .await
        .expect("a whole run");
    assert_eq!(first.stored, 1, "{first:?}");

    // The long call began forty minutes ago and has just ended.
    let mut long = call("long", "+917330995512", &ist_time(now() - 2400));
    long["call_duration"] = serde_json::json!(2380);
    stand_in.add_call(long);
    let next = pull_over(&stand_in, options.clone(), overlap)
        .run("run-2", later())
        .await
        .expect("a whole run");
    assert_eq!((next.stored, next.duplicates), (1, 1), "{next:?}");
    assert_eq!(stored_uuids(&pool).await, ["long", "short"]);
    assert!(
        now() - next.since >= 3 * 3600,
        "the window reaches hours back: {next:?}"
    );
}
