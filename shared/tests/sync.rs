//! Meta's scheduled pull against a real PostgreSQL, a real SQS API (moto) and a local
//! stand-in for the Graph API: each lead's fate its own (stored, queued, or kept on the
//! dead-letter queue), one refused form not stopping the others, a lead neither stored
//! nor kept holding its form's progress, and a backlog larger than one run completing
//! page by page over successive runs.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::graph::{Failure, GraphStandIn};
use common::queue::Queue;
use serde_json::{json, Value};
use shared::domain::source::META;
use shared::infra::buffer::{self, Buffer, Queued};
use shared::infra::store::{Store, StoreSettings};
use shared::pipeline::pull::{MetaPull, PullError, Report};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

const FORM_A: &str = "444555666777001";
const FORM_B: &str = "444555666777002";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

/// A lead of `form` with its own phone, `age` seconds old.
fn lead(id: &str, form: &str, age: i64) -> Value {
    let mut lead = common::graph::lead(id, form, now() - age);
    lead["field_data"][1]["values"] = json!([format!("98123{}", &id[id.len() - 5..])]);
    lead
}

/// A pull that never retries a database it found unavailable by resting first, so each
/// lead meets the database itself.
fn pull_for(graph: &GraphStandIn, options: PgConnectOptions) -> MetaPull {
    let settings = StoreSettings {
        breaker: Duration::ZERO,
        ..StoreSettings::default()
    };
    MetaPull::new(
        &META,
        common::meta(&graph.url()),
        Store::new(options, settings),
        Duration::from_secs(3600),
    )
}

/// Time enough for any run here.
fn later() -> SystemTime {
    SystemTime::now() + Duration::from_secs(600)
}

/// Leads stored, by Graph id.
async fn stored_ids(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        r#"SELECT partner_lead_id FROM public."mg-digital-leads"
           WHERE platform = 'Meta' ORDER BY partner_lead_id"#,
    )
    .fetch_all(pool)
    .await
    .expect("read Meta leads")
}

/// A form's checkpoint: its watermark and the cursor of a listing in progress.
async fn checkpoint(pool: &PgPool, form: &str) -> (i64, Option<String>) {
    sqlx::query_as(
        "SELECT extract(epoch FROM synced_until)::int8, pass_after
         FROM public.lead_sync_watermarks WHERE source = $1",
    )
    .bind(format!("meta:{}:{form}", common::META_PAGE_ID))
    .fetch_one(pool)
    .await
    .expect("the form's checkpoint")
}

/// The `after` of each request for a form's leads, in order.
fn cursors(graph: &GraphStandIn, form: &str) -> Vec<Option<String>> {
    let path = format!("/v25.0/{form}/leads");
    graph
        .requests()
        .into_iter()
        .filter(|request| request.path == path)
        .map(|request| request.param("after").map(str::to_owned))
        .collect()
}

/// Makes the database refuse the lead with Graph id `id` with SQLSTATE `code`.
async fn refuse(pool: &PgPool, id: &str, code: &str) {
    sqlx::query(&format!(
        r#"CREATE OR REPLACE FUNCTION pg_temp_refuse_{id}() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             IF NEW.partner_lead_id = '{id}' THEN
               RAISE EXCEPTION 'refused by the test' USING ERRCODE = '{code}';
             END IF;
             RETURN NEW;
           END $$"#
    ))
    .execute(pool)
    .await
    .expect("create the refusing function");
    sqlx::query(&format!(
        r#"CREATE TRIGGER refuse_{id} BEFORE INSERT ON public."mg-digital-leads"
           FOR EACH ROW EXECUTE FUNCTION pg_temp_refuse_{id}()"#
    ))
    .execute(pool)
    .await
    .expect("create the refusing trigger");
}

async fn stop_refusing(pool: &PgPool, id: &str) {
    sqlx::query(&format!(
        r#"DROP TRIGGER refuse_{id} ON public."mg-digital-leads""#
    ))
    .execute(pool)
    .await
    .expect("drop the refusing trigger");
}

fn incomplete(result: Result<Report, PullError>) -> Report {
    match result {
        Err(PullError::Incomplete(report)) => report,
        other => panic!("expected an incomplete run, got {other:?}"),
    }
}

/// Every message on a queue, with its `reason` attribute.
async fn messages(queue: &Queue, url: &str) -> Vec<(String, Option<String>)> {
    let mut found = Vec::new();
    for _ in 0..5 {
        let received = queue
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .visibility_timeout(60)
            .send()
            .await
            .expect("receive");
        for message in received.messages.unwrap_or_default() {
            let reason = message
                .message_attributes
                .as_ref()
                .and_then(|attributes| attributes.get(buffer::REASON_ATTRIBUTE))
                .and_then(|reason| reason.string_value.clone());
            found.push((message.body.unwrap_or_default(), reason));
        }
    }
    found
}

#[sqlx::test(migrations = "../migrations")]
async fn each_leads_fate_is_its_own(_: PgPoolOptions, options: PgConnectOptions) {
    let graph = GraphStandIn::start().await;
    let queue = Queue::start().await;
    let dead_letter_url = queue
        .client
        .create_queue()
        .queue_name("lead-dead-letter")
        .send()
        .await
        .expect("create the dead-letter queue")
        .queue_url
        .expect("queue URL");
    let buffer =
        Buffer::new(&queue.config, queue.url.clone()).with_dead_letter(dead_letter_url.clone());
    let pool = common::pool(&options).await;
    graph.add_form(common::META_PAGE_ID, FORM_A);
    graph.add_form(common::META_PAGE_ID, FORM_B);
    graph.add_lead(lead("9700000000000001", FORM_A, 60));
    // Form B, newest first: a plain lead; one carrying U+0000 (PostgreSQL's text and
    // jsonb refuse it as it is); one without a phone; one the database refuses; one met
    // while the database is unavailable; another plain lead.
    graph.add_lead(lead("9700000000000011", FORM_B, 60));
    let mut nul = lead("9700000000000012", FORM_B, 70);
    nul["field_data"][0]["values"] = json!(["Asha\u{0}Rao"]);
    nul["campaign_name"] = json!("Hector\u{0}");
    graph.add_lead(nul);
    let mut phoneless = lead("9700000000000013", FORM_B, 80);
    phoneless["field_data"] = json!([{"name": "full_name", "values": ["Ravi Kumar"]}]);
    graph.add_lead(phoneless);
    graph.add_lead(lead("9700000000000014", FORM_B, 90));
    graph.add_lead(lead("9700000000000015", FORM_B, 100));
    graph.add_lead(lead("9700000000000016", FORM_B, 110));
    graph.set_page_size(2);
    refuse(&pool, "9700000000000014", "22023").await;
    refuse(&pool, "9700000000000015", "57P03").await;
    // The forms are listed; then form A's leads are refused (a permission Meta took).
    graph.pass_next(1);
    graph.fail_next(
        1,
        Failure::meta(403, 200, "(#200) Requires pages_manage_ads permission"),
    );

    // The page was last pulled half an hour ago: where its forms start from.
    let last_pull = now() - 1800;
    sqlx::query(
        "INSERT INTO public.lead_sync_watermarks (source, synced_until)
         VALUES ($1, to_timestamp($2::float8))",
    )
    .bind(format!("meta:{}", common::META_PAGE_ID))
    .bind(last_pull as f64)
    .execute(&pool)
    .await
    .expect("the page's watermark");

    let sync = pull_for(&graph, options.clone()).with_buffer(buffer);
    let report = incomplete(sync.run("sync-1", later()).await);

    assert_eq!(
        (
            report.lists,
            report.failed_lists,
            report.leads,
            report.stored,
            report.duplicates,
            report.queued,
            report.dead_lettered,
            report.unkept
        ),
        (2, 1, 6, 3, 0, 1, 2, 0),
        "{report:?}"
    );
    assert_eq!(
        stored_ids(&pool).await,
        ["9700000000000011", "9700000000000012", "9700000000000016"]
    );
    let name: String = sqlx::query_scalar(
        r#"SELECT name FROM public."mg-digital-leads" WHERE partner_lead_id = '9700000000000012'"#,
    )
    .fetch_one(&pool)
    .await
    .expect("the lead that carried U+0000");
    assert_eq!(name, "Asha\u{FFFD}Rao");

    // The lead met while the database was unavailable is on the buffer, as its record.
    let queued = messages(&queue, &queue.url).await;
    assert_eq!(queued.len(), 1, "{queued:?}");
    match buffer::decode(&queued[0].0).expect("a queued lead") {
        Queued::Record(record) => assert_eq!(
            record.identity.partner_lead_id.as_deref(),
            Some("9700000000000015")
        ),
        other => panic!("expected a record, got {other:?}"),
    }
    // The refused and the phoneless leads are on the dead-letter queue with their reasons.
    let dead = messages(&queue, &dead_letter_url).await;
    let mut kept: Vec<(String, bool, String)> = dead
        .iter()
        .map(|(body, reason)| {
            let (id, as_record) = match buffer::decode(body).expect("a kept lead") {
                Queued::Record(record) => (record.identity.partner_lead_id.expect("an id"), true),
                Queued::Unfetched(unread) => (unread.reference.leadgen_id, false),
            };
            (id, as_record, reason.clone().expect("a reason"))
        })
        .collect();
    kept.sort();
    assert_eq!(kept.len(), 2, "{kept:?}");
    // The phoneless lead as the reference it can be read by, the refused one as its record.
    assert_eq!((kept[0].0.as_str(), kept[0].1), ("9700000000000013", false));
    assert!(kept[0].2.contains("phone"), "{kept:?}");
    assert_eq!((kept[1].0.as_str(), kept[1].1), ("9700000000000014", true));
    assert!(kept[1].2.contains("refused"), "{kept:?}");

    // Form B's listing was done, every lead kept: its watermark moved to the run's start,
    // and none is in progress. Form A's did not move.
    let (b_until, b_after) = checkpoint(&pool, FORM_B).await;
    assert!(b_until >= now() - 60, "{b_until}");
    assert_eq!(b_after, None);
    assert_eq!(report.since, last_pull - 3600);
    assert_eq!(checkpoint(&pool, FORM_A).await, (last_pull, None));

    // Next run: form A is listed, its lead stored; so is the lead the database now
    // takes (the drain would find it stored); form B's others are found stored.
    stop_refusing(&pool, "9700000000000015").await;
    let again = sync.run("sync-2", later()).await.expect("a whole run");
    assert_eq!(
        (again.failed_lists, again.stored, again.duplicates),
        (0, 2, 3),
        "{again:?}"
    );
    assert!(stored_ids(&pool)
        .await
        .contains(&"9700000000000001".to_owned()));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_lead_neither_stored_nor_kept_holds_its_forms_progress(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let graph = GraphStandIn::start().await;
    let pool = common::pool(&options).await;
    graph.add_form(common::META_PAGE_ID, FORM_A);
    for (id, age) in [
        ("9710000000000001", 60),
        ("9710000000000002", 70),
        ("9710000000000003", 80),
        ("9710000000000004", 90),
        ("9710000000000005", 100),
    ] {
        graph.add_lead(lead(id, FORM_A, age));
    }
    graph.set_page_size(2);
    // No buffer: a lead the database refuses can be neither stored nor kept.
    refuse(&pool, "9710000000000003", "22023").await;
    let sync = pull_for(&graph, options.clone());

    let report = incomplete(sync.run("sync-1", later()).await);

    // The rest of the form is stored all the same; the run fails for the one lead.
    assert_eq!(
        (report.stored, report.unkept, report.failed_lists),
        (4, 1, 0),
        "{report:?}"
    );
    assert_eq!(stored_ids(&pool).await.len(), 4);
    // The checkpoint stays where the unkept lead's page begins.
    let (until, after) = checkpoint(&pool, FORM_A).await;
    assert_eq!(after.as_deref(), Some("QVFI000002=="));

    // Once the database takes it, the next run goes on from there: the lead is stored,
    // the pages before it are not listed again, and the listing is done.
    stop_refusing(&pool, "9710000000000003").await;
    let again = sync.run("sync-2", later()).await.expect("a whole run");
    assert_eq!(
        (again.pages, again.stored, again.duplicates),
        (2, 1, 2),
        "{again:?}"
    );
    assert_eq!(stored_ids(&pool).await.len(), 5);
    assert_eq!(
        cursors(&graph, FORM_A),
        [
            None,
            Some("QVFI000002==".into()),
            Some("QVFI000004==".into()),
            Some("QVFI000002==".into()),
            Some("QVFI000004==".into()),
        ]
    );
    // Covered up to when the listing began, in the first run.
    let (covered, after) = checkpoint(&pool, FORM_A).await;
    assert_eq!((covered, after), (until, None));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_backlog_completes_over_runs_short_of_time(_: PgPoolOptions, options: PgConnectOptions) {
    let graph = GraphStandIn::start().await;
    let pool = common::pool(&options).await;
    graph.add_form(common::META_PAGE_ID, FORM_A);
    graph.add_form(common::META_PAGE_ID, FORM_B);
    // Newest first, as Meta lists them: three pages of form A, two of form B.
    let mut ids = Vec::new();
    for (form, count) in [(FORM_A, 5), (FORM_B, 4)] {
        for n in 0..count {
            let id = format!("97200000000{}{n:03}", &form[form.len() - 2..]);
            graph.add_lead(lead(&id, form, 60 + 10 * n));
            ids.push(id);
        }
    }
    ids.sort();
    graph.set_page_size(2);
    let sync = pull_for(&graph, options.clone());

    // Each run is past its deadline from the start, so it lists one page only: the
    // form worked on longest ago goes first, and goes on from its cursor.
    let mut totals = Report::default();
    let mut runs = 0;
    while stored_ids(&pool).await.len() < ids.len() {
        runs += 1;
        assert!(runs <= 5, "five pages need five runs: {totals:?}");
        let report = sync
            .run(&format!("sync-{runs}"), UNIX_EPOCH)
            .await
            .expect("a run");
        assert_eq!(report.pages, 1, "run {runs}: {report:?}");
        totals.stored += report.stored;
        totals.duplicates += report.duplicates;
    }
    assert_eq!(runs, 5);
    // Each lead stored once, none listed twice on the way, none skipped.
    assert_eq!((totals.stored, totals.duplicates), (9, 0));
    assert_eq!(stored_ids(&pool).await, ids);
    assert_eq!(
        cursors(&graph, FORM_A),
        [
            None,
            Some("QVFI000002==".into()),
            Some("QVFI000004==".into())
        ]
    );
    assert_eq!(cursors(&graph, FORM_B), [None, Some("QVFI000002==".into())]);
    for form in [FORM_A, FORM_B] {
        assert_eq!(checkpoint(&pool, form).await.1, None, "{form}");
    }

    // With time enough, a run lists every form whole, and stores nothing twice.
    let whole = sync.run("sync-whole", later()).await.expect("a whole run");
    assert_eq!(
        (whole.stored, whole.duplicates, whole.unfinished_lists),
        (0, 9, 0),
        "{whole:?}"
    );
}
