//! The CRM hand-off against two real PostgreSQL databases: ours (the hand-off logged in
//! as `lead_crm`) and the CRM's, a database of its own on a separate cluster
//! (`CRM_TEST_DATABASE_URL`, which `make test` starts; else `DATABASE_URL`'s server),
//! made from the fixture `local/crm.sql`. Texts go to a stand-in of SNS's `Publish`, which
//! records each one's number and attributes.
//!
//! The CRM's three cases, a repeat, a poller's lead recognised; twelve leads through
//! three containers at once split exactly six and six; a weighted rule of 75/25 over
//! eight leads six and two; a rule outside its IST hours skipped; an inactive user
//! skipped; the CRM down then back (one lead, one text); a crash between the commit and
//! the text (the text sent on the retry, once); nobody to assign (the desk told); a
//! salesperson without a number (assigned, not texted); a lead the CRM cannot take.

mod common;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use common::sns::SnsStandIn;
use serde_json::json;
use shared::domain::crm::{SourceMap, DEFAULT_SMS_TEMPLATE};
use shared::error::CrmError;
use shared::infra::aws::sms::{Dlt, Sms};
use shared::infra::aws::topic::Topic;
use shared::infra::crm::{Crm, Entered};
use shared::infra::secrets::DbCredentials;
use shared::infra::store::{Store, StoreSettings};
use shared::pipeline::crm::{Handoff, Texted};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

/// A Monday, 10:30 in IST.
fn office_hours() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 5, 0, 0).unwrap()
}

/// Now, as the database's `now()` has it.
fn wall_clock() -> DateTime<Utc> {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    DateTime::from_timestamp_micros(since.as_micros() as i64).unwrap()
}

/// A fresh CRM database on the CRM's cluster, with the fixture's tables.
async fn crm_database() -> (PgPool, PgConnectOptions) {
    let url = std::env::var("CRM_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .expect("CRM_TEST_DATABASE_URL or DATABASE_URL (make test sets both)");
    let server: PgConnectOptions = url.parse().expect("a database URL");
    let admin = PgPool::connect_with(server.clone())
        .await
        .expect("the CRM's cluster");
    let name = format!(
        "crm_{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .expect("create the CRM's database");
    let options = server.database(&name).disable_statement_logging();
    let pool = PgPool::connect_with(options.clone())
        .await
        .expect("connect");
    let fixture = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../local/crm.sql"))
        .expect("local/crm.sql");
    sqlx::raw_sql(&fixture)
        .execute(&pool)
        .await
        .expect("the CRM's tables");
    (pool, options)
}

/// Our database's pool, the CRM's (and its options), the SNS stand-in: every test's start.
async fn setup(options: &PgConnectOptions) -> (PgPool, PgPool, PgConnectOptions, SnsStandIn) {
    let ours = common::pool(options).await;
    let (crm, crm_options) = crm_database().await;
    (ours, crm, crm_options, SnsStandIn::start().await)
}

/// A CRE of the CRM, active or not; their user id.
async fn cre(pool: &PgPool, name: &str, phone: &str, active: bool) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO users (username, full_name, role, phone_number, status)
         VALUES (lower($1), $1, 'CRE', $2, $3) RETURNING user_id",
    )
    .bind(name)
    .bind(phone)
    .bind(active)
    .fetch_one(pool)
    .await
    .expect("a CRE")
}

/// A rule over `members` (user id, percentage), in that order; its id.
async fn rule(
    pool: &PgPool,
    kind: &str,
    priority: i32,
    hours: Option<(&str, &str)>,
    members: &[(i64, Option<f64>)],
) -> String {
    let id: String = sqlx::query_scalar(
        "INSERT INTO assignment_rules (name, rule_type, priority, active_from, active_to)
         VALUES ($1, $1, $2, $3, $4) RETURNING id::text",
    )
    .bind(kind)
    .bind(priority)
    .bind(hours.map(|(from, _)| from))
    .bind(hours.map(|(_, to)| to))
    .fetch_one(pool)
    .await
    .expect("a rule");
    for (n, (user, percentage)) in members.iter().enumerate() {
        sqlx::query(
            "INSERT INTO rule_members (rule_id, user_id, percentage, created_at)
             VALUES ($1::uuid, $2, $3, now() + make_interval(secs => $4))",
        )
        .bind(&id)
        .bind(user)
        .bind(percentage)
        .bind(n as f64)
        .execute(pool)
        .await
        .expect("a member");
    }
    id
}

/// A lead in our table, as a source stored it; its id.
async fn lead(
    pool: &PgPool,
    platform: &str,
    name: &str,
    phone: &str,
    partner_id: Option<&str>,
) -> i64 {
    sqlx::query_scalar(
        r#"INSERT INTO public."mg-digital-leads"
               (platform, name, phone_number, car_model, partner_lead_id, payload, created_at, status)
           VALUES ($1, $2, $3, 'MG Hector', $4, jsonb_build_object('name', $2::text), now(), 'new')
           RETURNING id"#,
    )
    .bind(platform)
    .bind(name)
    .bind(phone)
    .bind(partner_id)
    .fetch_one(pool)
    .await
    .expect("a lead")
}

/// The hand-off as deployed: our table as `lead_crm`, the CRM's database, texts to `sns`.
async fn handoff(ours: &PgConnectOptions, crm: &PgConnectOptions, sns: &SnsStandIn) -> Handoff {
    handoff_with(ours, crm.clone(), sns, Dlt::default()).await
}

async fn handoff_with(
    ours: &PgConnectOptions,
    crm: PgConnectOptions,
    sns: &SnsStandIn,
    dlt: Dlt,
) -> Handoff {
    let admin = Store::new(ours.clone(), StoreSettings::default());
    let credentials = DbCredentials::from_secret(r#"{"username":"lead_crm","password":"crm-pw"}"#)
        .expect("credentials");
    admin.grant_login(&credentials).await.expect("grant login");
    let as_crm = ours.clone().username("lead_crm").password("crm-pw");
    let sdk = shared::infra::aws::sdk_config(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("ap-south-1"))
            .endpoint_url(sns.url())
            .credentials_provider(aws_sdk_sns::config::Credentials::for_tests()),
    )
    .await;
    Handoff::new(
        Store::new(as_crm, StoreSettings::default()),
        Crm {
            store: Store::new(crm, StoreSettings::default()),
            sms: Sms::sns(&sdk, dlt),
            sources: SourceMap::default(),
            template: DEFAULT_SMS_TEMPLATE.to_owned(),
            dead_letters: None,
        },
        Some(Topic::new(
            &sdk,
            "arn:aws:sns:ap-south-1:000000000000:new-leads".into(),
        )),
    )
}

fn event(id: i64) -> serde_json::Value {
    json!({ "id": id, "status": "new" })
}

#[sqlx::test(migrations = "../migrations")]
async fn the_crms_three_cases_and_a_repeat(_: PgPoolOptions, options: PgConnectOptions) {
    let (ours, crm, crm_options, sns) = setup(&options).await;
    let asha = cre(&crm, "Asha", "98765 00001", true).await;
    rule(&crm, "round_robin", 1, None, &[(asha, None)]).await;
    let handoff = handoff(&options, &crm_options, &sns).await;

    // 1. A new phone: a new lead, from the pollers' source row, assigned, texted.
    let meta = lead(
        &ours,
        "Meta",
        "Ravi Kumar",
        "+91 98123-45678",
        Some("leadgen-1"),
    )
    .await;
    let done = handoff
        .hand_off(&event(meta), office_hours())
        .await
        .expect("handed off");
    let Entered::New {
        lead_id,
        assignee: Some(assignee),
    } = &done.entered
    else {
        panic!("{done:?}");
    };
    assert_eq!(assignee.user_id, asha);
    assert_eq!(done.texted, Texted::Sent);
    let row: (String, String, String, String, i64, String, String) = sqlx::query_as(
        "SELECT m.full_name, m.phone_number_normalized, m.external_lead_id, m.status,
                m.assigned_to, s.display_name, s.source_type
         FROM leads_master m JOIN sources s ON s.id = m.source_id WHERE m.id = $1",
    )
    .bind(lead_id)
    .fetch_one(&crm)
    .await
    .expect("the CRM's lead");
    assert_eq!(
        row,
        (
            "Ravi Kumar".into(),
            "9812345678".into(),
            "leadgen-1".into(),
            "New".into(),
            asha,
            "Meta".into(),
            "meta_form".into()
        )
    );
    let logged: serde_json::Value = sqlx::query_scalar(
        "SELECT metadata FROM leads_logs WHERE lead_id = $1 AND new_status = 'Assigned'",
    )
    .bind(lead_id)
    .fetch_one(&crm)
    .await
    .expect("the assignment's log row");
    assert_eq!(logged["action"], "auto_assignment");
    assert_eq!(logged["ruleType"], "round_robin");

    // 2. The same event again: nothing, and no second text.
    let again = handoff
        .hand_off(&event(meta), office_hours())
        .await
        .expect("a repeat");
    assert!(matches!(again.entered, Entered::Repeat { .. }), "{again:?}");
    assert_eq!(again.texted, Texted::Repeat);
    // 3. The same customer from another source: a history row, no new lead, no text.
    let google = lead(&ours, "Google", "Ravi K", "9812345678", Some("g-1")).await;
    let other = handoff
        .hand_off(&event(google), office_hours())
        .await
        .expect("another source");
    assert_eq!(other.entered, Entered::OtherSource { lead_id: *lead_id });
    handoff
        .hand_off(&event(google), office_hours())
        .await
        .expect("its repeat");
    let counts: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM leads_master), (SELECT count(*) FROM lead_sources_history)",
    )
    .fetch_one(&crm)
    .await
    .expect("counts");
    assert_eq!(counts, (1, 1), "one lead, one history row");
    assert_eq!(sns.texts().len(), 1, "{:?}", sns.texts());
}

/// A lead the CRM's own poller entered (its source row, the same phone) is the same
/// source: nothing is entered and nobody texted, so both can run during the cut-over.
#[sqlx::test(migrations = "../migrations")]
async fn a_lead_the_pollers_entered_is_recognised(_: PgPoolOptions, options: PgConnectOptions) {
    let (ours, crm, crm_options, sns) = setup(&options).await;
    sqlx::raw_sql(
        "INSERT INTO sources (display_name, source_type) VALUES ('Knowlarity', 'knowlarity_call');
         INSERT INTO leads_master (full_name, phone_number_normalized, source_id, external_lead_id, status)
         SELECT 'Caller', '7330995416', id, 'call-uuid', 'New' FROM sources",
    )
    .execute(&crm)
    .await
    .expect("the poller's lead");
    let handoff = handoff(&options, &crm_options, &sns).await;
    let call = lead(
        &ours,
        "Knowlarity",
        "Caller 7330995416",
        "+917330995416",
        Some("call-uuid"),
    )
    .await;
    let done = handoff
        .hand_off(&event(call), office_hours())
        .await
        .expect("handed off");
    assert!(
        matches!(
            done.entered,
            Entered::Repeat {
                mine: false,
                assignee: None,
                ..
            }
        ),
        "{done:?}"
    );
    assert_eq!(done.texted, Texted::Nobody);
    let leads: i64 = sqlx::query_scalar("SELECT count(*) FROM leads_master")
        .fetch_one(&crm)
        .await
        .expect("count");
    assert_eq!(leads, 1);
}

/// Twelve leads through three containers at once, over a round robin of two: exactly six
/// each (the pointer is held while it moves), each texted on their own number.
#[sqlx::test(migrations = "../migrations")]
async fn twelve_leads_through_three_containers_split_six_and_six(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (ours, crm, crm_options, sns) = setup(&options).await;
    let asha = cre(&crm, "Asha", "9876500001", true).await;
    let ravi = cre(&crm, "Ravi", "9876500002", true).await;
    rule(&crm, "round_robin", 1, None, &[(asha, None), (ravi, None)]).await;
    let mut containers = Vec::new();
    for _ in 0..3 {
        containers.push(handoff(&options, &crm_options, &sns).await);
    }
    let mut ids = Vec::new();
    for n in 0..12 {
        ids.push(
            lead(
                &ours,
                "CarDekho",
                &format!("Lead {n}"),
                &format!("98100000{n:02}"),
                None,
            )
            .await,
        );
    }
    let runs = containers.iter().enumerate().map(|(c, container)| {
        let ids: Vec<i64> = ids.iter().skip(c).step_by(3).copied().collect();
        async move {
            for id in ids {
                container
                    .hand_off(&event(id), office_hours())
                    .await
                    .expect("handed off");
            }
        }
    });
    futures_util::future::join_all(runs).await;
    let counts: Vec<(i64, i64)> =
        sqlx::query_as("SELECT assigned_to, count(*) FROM leads_master GROUP BY 1 ORDER BY 1")
            .fetch_all(&crm)
            .await
            .expect("counts");
    assert_eq!(counts, [(asha, 6), (ravi, 6)]);
    let texts = sns.texts();
    assert_eq!(texts.len(), 12);
    let to_asha = texts
        .iter()
        .filter(|text| text.phone_number.as_deref() == Some("+919876500001"))
        .count();
    assert_eq!(to_asha, 6);
    let pointer: (i32, i32) =
        sqlx::query_as("SELECT total_assignments, current_index FROM assignment_pointers")
            .fetch_one(&crm)
            .await
            .expect("the pointer");
    assert_eq!(pointer, (12, 0));
}

/// A weighted rule of 75/25 over eight leads: six and two.
#[sqlx::test(migrations = "../migrations")]
async fn a_weighted_rule_splits_by_its_percentages(_: PgPoolOptions, options: PgConnectOptions) {
    let (ours, crm, crm_options, sns) = setup(&options).await;
    let asha = cre(&crm, "Asha", "9876500001", true).await;
    let ravi = cre(&crm, "Ravi", "9876500002", true).await;
    rule(
        &crm,
        "weighted",
        1,
        None,
        &[(asha, Some(3.0)), (ravi, Some(1.0))],
    )
    .await;
    let handoff = handoff(&options, &crm_options, &sns).await;
    for n in 0..8 {
        let id = lead(
            &ours,
            "CarWale",
            &format!("Lead {n}"),
            &format!("98200000{n:02}"),
            None,
        )
        .await;
        handoff
            .hand_off(&event(id), office_hours())
            .await
            .expect("handed off");
    }
    let counts: Vec<(i64, i64)> =
        sqlx::query_as("SELECT assigned_to, count(*) FROM leads_master GROUP BY 1 ORDER BY 1")
            .fetch_all(&crm)
            .await
            .expect("counts");
    assert_eq!(counts, [(asha, 6), (ravi, 2)]);
}

/// A rule outside its hours in IST is skipped for the next; an inactive user is skipped
/// within a rule.
#[sqlx::test(migrations = "../migrations")]
async fn closed_rules_and_inactive_users_are_skipped(_: PgPoolOptions, options: PgConnectOptions) {
    let (ours, crm, crm_options, sns) = setup(&options).await;
    let night = cre(&crm, "Night", "9876500001", true).await;
    let gone = cre(&crm, "Gone", "9876500002", false).await;
    let day = cre(&crm, "Day", "9876500003", true).await;
    // 10:30 IST is outside 20:00–08:00 (and, read as UTC, 05:00 would be inside).
    rule(
        &crm,
        "round_robin",
        1,
        Some(("20:00", "08:00")),
        &[(night, None)],
    )
    .await;
    rule(
        &crm,
        "round_robin",
        2,
        Some(("09:00", "18:00")),
        &[(gone, None), (day, None)],
    )
    .await;
    let handoff = handoff(&options, &crm_options, &sns).await;
    for n in 0..3 {
        let id = lead(
            &ours,
            "Meta",
            &format!("Lead {n}"),
            &format!("98300000{n:02}"),
            None,
        )
        .await;
        handoff
            .hand_off(&event(id), office_hours())
            .await
            .expect("handed off");
    }
    let assigned: Vec<i64> = sqlx::query_scalar("SELECT assigned_to FROM leads_master ORDER BY id")
        .fetch_all(&crm)
        .await
        .expect("assignments");
    assert_eq!(assigned, [day, day, day]);
}

/// The CRM's database down: the hand-off fails (the queue delivers it again), nothing
/// is texted; once it is back, the lead enters once and is texted once.
#[sqlx::test(migrations = "../migrations")]
async fn the_crm_down_then_back_enters_one_lead(_: PgPoolOptions, options: PgConnectOptions) {
    let (ours, crm, crm_options, sns) = setup(&options).await;
    let asha = cre(&crm, "Asha", "9876500001", true).await;
    rule(&crm, "round_robin", 1, None, &[(asha, None)]).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let down = crm_options
        .clone()
        .port(listener.local_addr().expect("address").port());
    drop(listener);
    let id = lead(&ours, "Google", "Asha Rao", "9876543210", Some("lead-7")).await;
    let failed = handoff_with(&options, down, &sns, Dlt::default())
        .await
        .hand_off(&event(id), office_hours())
        .await;
    let error = failed.expect_err("the CRM is down");
    assert!(!error.is_refusal(), "delivered again, not kept: {error}");
    assert!(sns.texts().is_empty());
    let up = handoff(&options, &crm_options, &sns).await;
    for _ in 0..2 {
        up.hand_off(&event(id), office_hours())
            .await
            .expect("handed off");
    }
    let leads: i64 = sqlx::query_scalar("SELECT count(*) FROM leads_master")
        .fetch_one(&crm)
        .await
        .expect("count");
    assert_eq!((leads, sns.texts().len()), (1, 1));
}

/// SNS failing after the CRM's commit: the hand-off fails, to come again; the next
/// delivery (once the claim has aged) texts, and only once.
#[sqlx::test(migrations = "../migrations")]
async fn a_text_that_failed_after_the_commit_is_sent_on_the_retry(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (ours, crm, crm_options, sns) = setup(&options).await;
    let asha = cre(&crm, "Asha", "9876500001", true).await;
    rule(&crm, "round_robin", 1, None, &[(asha, None)]).await;
    let handoff = handoff(&options, &crm_options, &sns).await;
    let id = lead(&ours, "Meta", "Asha Rao", "9876543210", Some("leadgen-9")).await;
    sns.fail(true);
    let failed = tokio::time::timeout(
        Duration::from_secs(10),
        handoff.hand_off(&event(id), office_hours()),
    )
    .await
    .expect("bounded");
    assert!(matches!(failed, Err(CrmError::Text(_))), "{failed:?}");
    sns.fail(false);
    let early = handoff.hand_off(&event(id), office_hours()).await;
    assert!(matches!(early, Err(CrmError::InFlight(_))), "{early:?}");
    sqlx::query("UPDATE public.lead_notices SET claimed_at = now() - interval '1 minute'")
        .execute(&ours)
        .await
        .expect("the claim grows old");
    let done = handoff
        .hand_off(&event(id), office_hours())
        .await
        .expect("handed off");
    assert!(
        matches!(
            done.entered,
            Entered::Repeat {
                assignee: Some(_),
                ..
            }
        ),
        "{done:?}"
    );
    assert_eq!(done.texted, Texted::Sent);
    handoff
        .hand_off(&event(id), office_hours())
        .await
        .expect("a repeat");
    assert_eq!(sns.texts().len(), 1);
}

/// The text: to +91 and the salesperson's number, transactional, with the DLT
/// attributes; the customer's whole number in it, to tap and call.
#[sqlx::test(migrations = "../migrations")]
async fn the_text_carries_the_number_and_the_dlt_attributes(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (ours, crm, crm_options, sns) = setup(&options).await;
    let asha = cre(&crm, "Asha", "098765-00001", true).await;
    rule(&crm, "round_robin", 1, None, &[(asha, None)]).await;
    let dlt = Dlt {
        sender_id: Some("MGLEAD".into()),
        entity_id: Some("1101234567890".into()),
        template_id: Some("1107000000000000001".into()),
    };
    let handoff = handoff_with(&options, crm_options, &sns, dlt).await;
    let id = lead(&ours, "CarDekho", "Ravi Kumar", "+91 98123 45678", None).await;
    handoff
        .hand_off(&event(id), office_hours())
        .await
        .expect("handed off");
    let texts = sns.texts();
    assert_eq!(texts.len(), 1);
    let text = &texts[0];
    assert_eq!(text.phone_number.as_deref(), Some("+919876500001"));
    assert!(text.message.contains("Ravi Kumar"), "{}", text.message);
    assert!(text.message.contains("+91 98123 45678"), "{}", text.message);
    assert!(text.message.contains("MG Hector") && text.message.contains("CarDekho"));
    assert_eq!(
        text.attributes,
        [
            ("AWS.MM.SMS.EntityId", "1101234567890"),
            ("AWS.MM.SMS.TemplateId", "1107000000000000001"),
            ("AWS.SNS.SMS.SMSType", "Transactional"),
            ("AWS.SNS.SMS.SenderID", "MGLEAD"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
    );
}

/// No rule with a member: the lead stays unassigned (the CRM's manual fallback) and the
/// sales desk is told, once. A salesperson without a usable number: the lead is
/// assigned, nobody texted. A lead without ten digits: refused, kept at once.
#[sqlx::test(migrations = "../migrations")]
async fn nobody_to_assign_no_number_to_text_no_phone_to_key(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (ours, crm, crm_options, sns) = setup(&options).await;
    let handoff = handoff(&options, &crm_options, &sns).await;
    let id = lead(&ours, "Meta", "Asha Rao", "9876543210", None).await;
    for _ in 0..2 {
        let done = handoff
            .hand_off(&event(id), office_hours())
            .await
            .expect("handed off");
        assert_eq!(done.texted, Texted::Desk, "{done:?}");
    }
    let told = sns.published();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].topic_arn.is_some() && told[0].message.contains("Unassigned Meta lead"));
    assert!(
        !told[0].message.contains("9876543210"),
        "the desk's line is masked"
    );

    let mute = cre(&crm, "Mute", "n/a", true).await;
    rule(&crm, "round_robin", 1, None, &[(mute, None)]).await;
    let id = lead(&ours, "Meta", "Ravi", "9812345678", None).await;
    let done = handoff
        .hand_off(&event(id), office_hours())
        .await
        .expect("handed off");
    assert_eq!(done.texted, Texted::Unreachable { user_id: mute });
    assert!(matches!(
        done.entered,
        Entered::New {
            assignee: Some(_),
            ..
        }
    ));

    let id = lead(&ours, "Meta", "Short", "12345", None).await;
    let refused = handoff
        .hand_off(&event(id), office_hours())
        .await
        .expect_err("refused");
    assert!(refused.is_refusal(), "{refused}");
    let unknown = handoff
        .hand_off(&json!({"id": 999_999}), office_hours())
        .await
        .expect_err("missing");
    assert!(matches!(unknown, CrmError::Missing(_)) && !unknown.is_refusal());
}

/// The backfill: the leads stored in a span (test leads aside), by the same rules, page by
/// page; run again, it changes nothing and texts nobody twice.
#[sqlx::test(migrations = "../migrations")]
async fn a_backfill_hands_off_a_span_once(_: PgPoolOptions, options: PgConnectOptions) {
    let (ours, crm, crm_options, sns) = setup(&options).await;
    let asha = cre(&crm, "Asha", "9876500001", true).await;
    rule(&crm, "round_robin", 1, None, &[(asha, None)]).await;
    let handoff = handoff(&options, &crm_options, &sns).await;
    for n in 0..(shared::pipeline::crm::BACKFILL_PAGE + 5) {
        lead(
            &ours,
            "CarDekho",
            &format!("Lead {n}"),
            &format!("98400{n:05}"),
            None,
        )
        .await;
    }
    let test = lead(&ours, "CarDekho", "A test", "9840099999", None).await;
    sqlx::query(r#"UPDATE public."mg-digital-leads" SET status = 'test' WHERE id = $1"#)
        .bind(test)
        .execute(&ours)
        .await
        .expect("a test lead");
    let old = lead(&ours, "CarDekho", "Before the span", "9840088888", None).await;
    sqlx::query(r#"UPDATE public."mg-digital-leads" SET created_at = '2020-01-01' WHERE id = $1"#)
        .bind(old)
        .execute(&ours)
        .await
        .expect("an old lead");

    let span = shared::edge::crm::span(Some("2021-01-01"), Some("2099-12-31")).expect("a span");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let first = handoff
        .backfill(span, None, deadline)
        .await
        .expect("a backfill");
    let expected = (shared::pipeline::crm::BACKFILL_PAGE + 5) as usize;
    assert_eq!(
        (first.handed_off, first.refused, first.done),
        (expected, 0, true),
        "{first:?}"
    );
    let again = handoff.backfill(span, None, deadline).await.expect("again");
    assert_eq!(again.handed_off, expected);
    let leads: i64 = sqlx::query_scalar("SELECT count(*) FROM leads_master")
        .fetch_one(&crm)
        .await
        .expect("count");
    assert_eq!((leads as usize, sns.texts().len()), (expected, expected));
    assert!(shared::edge::crm::span(Some("2026-02-01"), Some("2026-01-01")).is_err());
}

/// `make bench-crm`, not the test run: from a `Lead stored` event received to its
/// salesperson's SMS published (SNS on the local AWS API, the CRM's database on loopback),
/// leads one after another through one container; then leads through two containers at
/// once, as the queue's two pollers give them. Each measured over several rounds, the
/// median reported with the range.
#[sqlx::test(migrations = "../migrations")]
#[ignore = "a benchmark: make bench-crm"]
async fn bench_the_hand_off(_: PgPoolOptions, options: PgConnectOptions) {
    const ROUNDS: usize = 5;
    const SEQUENTIAL: usize = 100;
    const PARALLEL: usize = 200;
    let ours = common::pool(&options).await;
    let (crm, crm_options) = crm_database().await;
    let aws = common::local_aws::LocalAws::start();
    let sdk = aws.sdk_config().await;
    let asha = cre(&crm, "Asha", "9876500001", true).await;
    let ravi = cre(&crm, "Ravi", "9876500002", true).await;
    rule(&crm, "round_robin", 1, None, &[(asha, None), (ravi, None)]).await;
    let stand_in = SnsStandIn::start().await;
    let mut containers = Vec::new();
    for _ in 0..2 {
        let mut handoff = handoff(&options, &crm_options, &stand_in).await;
        handoff.texts_through(Sms::sns(
            &sdk,
            Dlt {
                sender_id: Some("MGLEAD".into()),
                entity_id: Some("1101234567890".into()),
                template_id: Some("1107000000000000001".into()),
            },
        ));
        containers.push(handoff);
    }
    let mut phone = 0u64;
    let mut next_leads = |count: usize| {
        let start = phone;
        phone += count as u64;
        (start..start + count as u64).collect::<Vec<u64>>()
    };
    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    let mut rates = Vec::new();
    for _ in 0..ROUNDS {
        let mut ids = Vec::new();
        for n in next_leads(SEQUENTIAL) {
            ids.push(lead(&ours, "Meta", "Asha Rao", &format!("99{n:08}"), None).await);
        }
        let mut latencies = Vec::new();
        for id in ids {
            let started = std::time::Instant::now();
            let done = containers[0]
                .hand_off(&event(id), office_hours())
                .await
                .expect("handed off");
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(done.texted, Texted::Sent);
        }
        latencies.sort_by(f64::total_cmp);
        p50s.push(latencies[latencies.len() / 2]);
        p99s.push(latencies[(latencies.len() * 99).div_ceil(100) - 1]);

        let mut ids = Vec::new();
        for n in next_leads(PARALLEL) {
            ids.push(lead(&ours, "Google", "Ravi Kumar", &format!("99{n:08}"), None).await);
        }
        let started = std::time::Instant::now();
        let runs = containers.iter().enumerate().map(|(c, container)| {
            let ids: Vec<i64> = ids.iter().skip(c).step_by(2).copied().collect();
            async move {
                for id in ids {
                    container
                        .hand_off(&event(id), office_hours())
                        .await
                        .expect("handed off");
                }
            }
        });
        futures_util::future::join_all(runs).await;
        rates.push(PARALLEL as f64 / started.elapsed().as_secs_f64());
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        (
            values[values.len() / 2],
            values[0],
            values[values.len() - 1],
        )
    };
    let (p50, p50_low, p50_high) = median(&mut p50s);
    let (p99, p99_low, p99_high) = median(&mut p99s);
    let (rate, rate_low, rate_high) = median(&mut rates);
    println!(
        "crm-handoff: event to SMS p50 {p50:.1} ms ({p50_low:.1}–{p50_high:.1}), p99 {p99:.1} ms \
         ({p99_low:.1}–{p99_high:.1}); two containers {rate:.0} leads/s ({rate_low:.0}–{rate_high:.0})"
    );
    if let Ok(path) = std::env::var("CRM_PERFORMANCE_DOC") {
        const BEGIN: &str = "<!-- crm-handoff: begin -->";
        const END: &str = "<!-- crm-handoff: end -->";
        let block = format!(
            "{BEGIN}\n\
             ## The CRM hand-off: from a Lead stored event to its salesperson's SMS\n\n\
             Written by `make bench-crm` (`shared/tests/crm.rs`, `bench_the_hand_off`, ignored by \
             the test run), not by `make bench`, which keeps this block. Each lead is read from \
             the lead table (as `lead_crm`), entered in the CRM's database (a separate throwaway \
             cluster on loopback, the fixture `local/crm.sql`: the phone's lock, the three cases, \
             a round robin of two with its pointer held, every row the CRM's assignment writes), \
             claimed in the ledger, texted through SNS (`moto_server` on 127.0.0.1, the DLT \
             attributes set) and marked sent: timed from the event received to SNS's answer. \
             {SEQUENTIAL} leads one after another through one container for the latency, then \
             {PARALLEL} leads through two containers at once for the rate; {ROUNDS} rounds, the \
             median and the range. A debug build; PostgreSQL does not commit durably. The bounds \
             are p50 30 ms, p99 150 ms, 50 leads/s.\n\n\
             | event to SMS p50 | range | p99 | range | two containers | range |\n\
             | ---: | ---: | ---: | ---: | ---: | ---: |\n\
             | {p50:.1} ms | {p50_low:.1}–{p50_high:.1} ms | {p99:.1} ms | {p99_low:.1}–{p99_high:.1} ms \
             | {rate:.0} leads/s | {rate_low:.0}–{rate_high:.0} |\n\
             {END}"
        );
        common::replace_block(&path, BEGIN, END, &block);
    }
    assert!(
        rate >= 50.0 && p50 <= 30.0 && p99 <= 150.0,
        "over the bounds"
    );
}

/// A batch of the hand-off's queue: an event the CRM cannot take goes to the dead-letter
/// queue at once, with its reason, and is not handed back; one that failed for the CRM's
/// database is handed back, to come again; one handed off is done.
#[sqlx::test(migrations = "../migrations")]
async fn a_batch_keeps_refusals_and_hands_back_failures(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let (ours, crm, crm_options, sns) = setup(&options).await;
    let asha = cre(&crm, "Asha", "9876500001", true).await;
    rule(&crm, "round_robin", 1, None, &[(asha, None)]).await;
    let queue = common::queue::Queue::with_dead_letter(1440).await;
    let mut handoff = handoff(&options, &crm_options, &sns).await;
    handoff.keeps_refused_on(queue.buffer());
    let good = lead(&ours, "Meta", "Asha Rao", "9876543210", None).await;
    let short = lead(&ours, "Meta", "Short", "12345", None).await;
    let record = |id: &str, body: String| {
        let mut message = aws_lambda_events::event::sqs::SqsMessage::default();
        message.message_id = Some(id.to_owned());
        message.body = Some(body);
        message
    };
    let stored =
        |id: i64| json!({ "detail-type": "Lead stored", "detail": { "id": id } }).to_string();
    let mut batch = aws_lambda_events::event::sqs::SqsEvent::default();
    batch.records = vec![
        record("good", stored(good)),
        record("short", stored(short)),
        record("not-json", "{".into()),
        record("missing", stored(999_999)),
    ];
    let response = handoff.handle(batch).await;
    let handed_back: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.clone())
        .collect();
    assert_eq!(
        handed_back,
        ["missing"],
        "only what may yet succeed comes back"
    );
    let letters = queue.take_dead_letters().await;
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert!(
        letters.iter().all(|letter| letter.reason.is_some()),
        "{letters:?}"
    );
    assert!(letters.iter().any(|letter| letter
        .reason
        .as_deref()
        .unwrap_or_default()
        .contains("fewer than ten digits")));
    assert_eq!(sns.texts().len(), 1, "the good lead's salesperson");
}

/// Speed to lead on the hand-off's lead: nothing before the reminder's threshold, one
/// reminder, then the next member and the team lead told, once however often runs come;
/// after the last re-assignment the team lead told nobody took it; a touch stops it.
#[sqlx::test(migrations = "../migrations")]
async fn an_untouched_lead_is_reminded_then_reassigned_once(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    use shared::domain::crm::sla::Thresholds;
    use shared::domain::crm::sla::Wording;
    use shared::pipeline::crm::sla::Sla;
    let (ours, crm, crm_options, sns) = setup(&options).await;
    let asha = cre(&crm, "Asha", "9876500001", true).await;
    let ravi = cre(&crm, "Ravi", "9876500002", true).await;
    sqlx::query(
        "INSERT INTO users (username, full_name, role, phone_number, status)
         VALUES ('meena', 'Meena', 'CRE_TL', '9876500009', true)",
    )
    .execute(&crm)
    .await
    .expect("a team lead");
    rule(&crm, "round_robin", 1, None, &[(asha, None), (ravi, None)]).await;
    let id = lead(&ours, "Meta", "Kiran", "9812300001", None).await;
    let handoff = handoff(&options, &crm_options, &sns).await;
    let done = handoff
        .hand_off(&event(id), wall_clock())
        .await
        .expect("handed off");
    assert_eq!(done.texted, Texted::Sent);
    let sla = Sla::new(handoff, Thresholds::default(), Wording::default());
    let texts_to = |number: &str| {
        sns.texts()
            .iter()
            .filter(|text| text.phone_number.as_deref() == Some(number))
            .count()
    };
    let at = |minutes: i64| wall_clock() + chrono::Duration::minutes(minutes);

    let report = sla.run(at(2)).await.expect("a run");
    assert_eq!((report.untouched, report.texts), (1, 0));
    let report = sla.run(at(4)).await.expect("a run");
    assert_eq!(report.reminded, 1);
    assert_eq!(sla.run(at(4)).await.expect("a run").reminded, 0);
    assert_eq!(texts_to("+919876500001"), 2);

    // Two runs at once past the threshold: one re-assignment.
    let (first, second) = tokio::join!(sla.run(at(6)), sla.run(at(6)));
    let (first, second) = (first.expect("a run"), second.expect("a run"));
    assert_eq!(
        first.reassigned + second.reassigned,
        1,
        "{first:?} {second:?}"
    );
    let assigned: i64 = sqlx::query_scalar("SELECT assigned_to FROM leads_master")
        .fetch_one(&crm)
        .await
        .expect("the lead");
    assert_eq!(assigned, ravi);
    let logged: (String, i64, i64) = sqlx::query_as(
        "SELECT new_status, (metadata->>'from')::int8, (metadata->>'to')::int8 FROM leads_logs
         WHERE metadata->>'action' = 'sla_reassignment'",
    )
    .fetch_one(&crm)
    .await
    .expect("one re-assignment logged");
    assert_eq!(logged, ("Assigned".into(), asha, ravi));
    assert_eq!(texts_to("+919876500002"), 1);
    let told = sns.texts();
    let told: Vec<_> = told
        .iter()
        .filter(|text| text.phone_number.as_deref() == Some("+919876500009"))
        .collect();
    assert_eq!(told.len(), 1);
    assert!(
        told[0].message.contains("not touched by Asha"),
        "{}",
        told[0].message
    );

    // Once more re-assigned (spending the allowance), then the team lead is told nobody
    // took it, once.
    // (A re-assignment's clock starts at the CRM's now, not the run's.)
    assert_eq!(sla.run(at(12)).await.expect("a run").reassigned, 1);
    let report = sla.run(at(18)).await.expect("a run");
    assert_eq!(report.gave_up, 1, "{report:?}");
    assert_eq!(sla.run(at(24)).await.expect("a run").gave_up, 0);
    let reassignments: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM leads_logs WHERE metadata->>'action' = 'sla_reassignment'",
    )
    .fetch_one(&crm)
    .await
    .expect("count");
    assert_eq!(reassignments, 2);
    let gave_up = sns
        .texts()
        .into_iter()
        .filter(|text| text.message.contains("still untouched after 2"))
        .count();
    assert_eq!(gave_up, 1);

    // A touch: no step any more, and its first touch measured once.
    sqlx::query(
        "UPDATE leads_master SET status = 'Pending', total_attempts = 1, updated_at = now()",
    )
    .execute(&crm)
    .await
    .expect("a touch");
    let report = sla.run(at(40)).await.expect("a run");
    assert_eq!(
        (report.untouched, report.texts, report.first_touches),
        (0, 0, 1)
    );
    assert_eq!(sla.run(at(41)).await.expect("a run").first_touches, 0);
}

/// Speed to lead's clock is the assigning rule's working time: a lead assigned on a Friday
/// at 20:58 IST to a rule open 09:00–21:00 on weekdays has waited two minutes at closing,
/// still two over the weekend and at Monday's opening, and is reminded and then re-assigned
/// on Monday morning, by the minutes it waits after 09:00.
#[sqlx::test(migrations = "../migrations")]
async fn an_untouched_lead_waits_only_in_its_rules_working_hours(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    use shared::domain::crm::sla::{Thresholds, Wording};
    use shared::pipeline::crm::sla::Sla;
    let (ours, crm, crm_options, sns) = setup(&options).await;
    let asha = cre(&crm, "Asha", "9876500001", true).await;
    let ravi = cre(&crm, "Ravi", "9876500002", true).await;
    let rule_id = rule(&crm, "round_robin", 1, None, &[(asha, None), (ravi, None)]).await;
    let id = lead(&ours, "CarDekho", "Kiran", "9812300002", None).await;
    let handoff = handoff(&options, &crm_options, &sns).await;
    handoff
        .hand_off(&event(id), wall_clock())
        .await
        .expect("handed off");
    // Its hours and its assignment as of that Friday evening (the hand-off ran today).
    let ist = |text: &str| {
        DateTime::parse_from_rfc3339(text)
            .expect("a time")
            .with_timezone(&Utc)
    };
    sqlx::query(
        "UPDATE assignment_rules SET active_from = '09:00', active_to = '21:00',
                active_days = '{1,2,3,4,5}' WHERE id = $1::uuid",
    )
    .bind(&rule_id)
    .execute(&crm)
    .await
    .expect("office hours");
    sqlx::query("UPDATE leads_master SET assigned_at = $1::timestamptz")
        .bind("2026-12-04T20:58:00+05:30")
        .execute(&crm)
        .await
        .expect("assigned on Friday evening");
    let sla = Sla::new(handoff, Thresholds::default(), Wording::default());
    let texts = || sns.texts().len();
    let handed_off_texts = texts();

    for quiet in [
        "2026-12-04T20:59:30+05:30", // Friday, a minute and a half
        "2026-12-04T23:30:00+05:30", // Friday night: closed at two minutes
        "2026-12-05T00:10:00+05:30", // past midnight
        "2026-12-06T12:00:00+05:30", // Sunday noon
        "2026-12-07T09:00:30+05:30", // Monday, half a minute after opening
    ] {
        let report = sla.run(ist(quiet)).await.expect("a run");
        assert_eq!(
            (
                report.untouched,
                report.reminded,
                report.reassigned,
                report.texts
            ),
            (1, 0, 0, 0),
            "{quiet}: {report:?}"
        );
    }
    assert_eq!(texts(), handed_off_texts, "nobody texted over the weekend");

    let report = sla
        .run(ist("2026-12-07T09:01:30+05:30"))
        .await
        .expect("a run");
    assert_eq!((report.reminded, report.reassigned), (1, 0), "{report:?}");
    let report = sla
        .run(ist("2026-12-07T09:02:50+05:30"))
        .await
        .expect("a run");
    assert_eq!((report.reminded, report.reassigned), (0, 0), "{report:?}");
    let report = sla
        .run(ist("2026-12-07T09:03:30+05:30"))
        .await
        .expect("a run");
    assert_eq!(report.reassigned, 1, "{report:?}");
    let moved: (i64, i64) = sqlx::query_as(
        "SELECT assigned_to, (SELECT (metadata->>'waitedSeconds')::int8 FROM leads_logs
                               WHERE metadata->>'action' = 'sla_reassignment')
         FROM leads_master",
    )
    .fetch_one(&crm)
    .await
    .expect("the lead");
    assert_eq!(moved.0, ravi);
    // Two minutes on Friday (its closing second counted) and three and a half on Monday.
    assert!(
        (330..=331).contains(&moved.1),
        "waited {} working seconds",
        moved.1
    );
}

/// Speed to lead's run over 5,000 leads the hand-off assigned in its window (a week):
/// nine in ten touched (their first touches measured by the first run), the others
/// assigned a minute ago, but for twenty waiting four minutes, reminded by the first run.
/// The first run and the median of the next ones (nothing left to do but look), with
/// the range.
#[sqlx::test(migrations = "../migrations")]
#[ignore = "a benchmark: make bench-sla"]
async fn bench_the_sla_run(_: PgPoolOptions, options: PgConnectOptions) {
    use shared::domain::crm::sla::{Thresholds, Wording};
    use shared::pipeline::crm::sla::Sla;
    const LEADS: i64 = 5_000;
    const DUE: i64 = 20;
    const ROUNDS: usize = 5;
    let (ours, crm, crm_options, sns) = setup(&options).await;
    let asha = cre(&crm, "Asha", "9876500001", true).await;
    let ravi = cre(&crm, "Ravi", "9876500002", true).await;
    rule(&crm, "round_robin", 1, None, &[(asha, None), (ravi, None)]).await;
    let id = lead(&ours, "Meta", "Kiran", "9812300003", None).await;
    let handoff = handoff(&options, &crm_options, &sns).await;
    handoff
        .hand_off(&event(id), wall_clock())
        .await
        .expect("handed off");
    // The hand-off's lead and its timeline row, copied as the hand-off would have written
    // them for other leads of ours: the rest as it wrote them.
    let handed: Vec<i64> = sqlx::query_scalar(
        r#"INSERT INTO public."mg-digital-leads"
               (platform, name, phone_number, car_model, payload, created_at, status)
           SELECT 'Meta', 'Lead ' || n, (9800000000 + n)::text, 'MG Hector', '{}', now(), 'new'
           FROM generate_series(1, $1 - 1) AS n RETURNING id"#,
    )
    .bind(LEADS)
    .fetch_all(&ours)
    .await
    .expect("our leads");
    let original: i64 = sqlx::query_scalar("SELECT id FROM leads_master")
        .fetch_one(&crm)
        .await
        .expect("the hand-off's lead");
    let columns: String = sqlx::query_scalar(
        "SELECT string_agg(quote_ident(column_name), ', ') FROM information_schema.columns
         WHERE table_name = 'leads_master'
           AND column_name NOT IN ('id', 'phone_number_normalized', 'external_lead_id',
                                   'assigned_at', 'status', 'total_attempts')",
    )
    .fetch_one(&crm)
    .await
    .expect("the columns");
    sqlx::query(&format!(
        "INSERT INTO leads_master ({columns}, phone_number_normalized, external_lead_id,
                                   assigned_at, status, total_attempts)
         SELECT {columns}, (9800000000 + n)::text, handoff::text,
                CASE WHEN n <= $2 THEN now() - interval '4 minutes'
                     WHEN n % 10 = 0 THEN now() - interval '1 minute'
                     ELSE now() - make_interval(mins => (n * 2)::int) END,
                CASE WHEN n <= $2 OR n % 10 = 0 THEN 'New' ELSE 'Pending' END,
                CASE WHEN n <= $2 OR n % 10 = 0 THEN 0 ELSE 1 END
         FROM leads_master, unnest($1::int8[]) WITH ORDINALITY AS u(handoff, n)"
    ))
    .bind(&handed)
    .bind(DUE)
    .execute(&crm)
    .await
    .expect("the leads");
    sqlx::query(
        "INSERT INTO leads_logs (lead_id, old_status, new_status, remarks, metadata, created_at)
         SELECT m.id, l.old_status, l.new_status, l.remarks,
                jsonb_set(l.metadata, '{handoff}', to_jsonb(m.external_lead_id)), m.assigned_at
         FROM leads_master m, leads_logs l
         WHERE m.id <> $1 AND l.lead_id = $1 AND l.metadata->>'action' = 'auto_assignment'",
    )
    .bind(original)
    .execute(&crm)
    .await
    .expect("their hand-off rows");
    sqlx::query("ANALYZE").execute(&crm).await.expect("analyze");
    let sla = Sla::new(handoff, Thresholds::default(), Wording::default());

    let timed = || async {
        let started = std::time::Instant::now();
        let report = sla.run(wall_clock()).await.expect("a run");
        (started.elapsed().as_secs_f64(), report)
    };
    let (first, report) = timed().await;
    assert_eq!(report.assigned, LEADS as usize, "{report:?}");
    assert_eq!(report.reminded, DUE as usize, "{report:?}");
    assert!(report.first_touches > 0, "{report:?}");
    let mut steady = Vec::new();
    for _ in 0..ROUNDS {
        let (seconds, report) = timed().await;
        assert_eq!((report.assigned, report.texts), (LEADS as usize, 0));
        steady.push(seconds);
    }
    steady.sort_by(f64::total_cmp);
    let (median, low, high) = (steady[ROUNDS / 2], steady[0], steady[ROUNDS - 1]);
    println!(
        "crm-sla: a run over {LEADS} assigned leads: first {first:.2} s, then {median:.2} s \
         ({low:.2}–{high:.2})"
    );
    if let Ok(path) = std::env::var("CRM_PERFORMANCE_DOC") {
        const BEGIN: &str = "<!-- crm-sla: begin -->";
        const END: &str = "<!-- crm-sla: end -->";
        let block = format!(
            "{BEGIN}\n\
             ## Speed to lead: one run over the assigned leads\n\n\
             Written by `make bench-sla` (`shared/tests/crm.rs`, `bench_the_sla_run`, ignored \
             by the test run), not by `make bench`, which keeps this block. {LEADS} leads the \
             hand-off assigned over the last week in the CRM's database (a throwaway cluster \
             on loopback, the fixture `local/crm.sql` with its two indexes): nine in ten \
             touched, the others assigned a minute ago but for {DUE} waiting four minutes. A \
             run scans them in one query, looks up the ledger for them, measures the first \
             touches of the last hour and reminds the {DUE} (texts through a local SNS \
             stand-in); the runs after it find nothing to do but look. {ROUNDS} of those, the \
             median and the range. A debug build; PostgreSQL does not commit durably. The \
             bound is 10 s a run.\n\n\
             | leads in the window | first run | later runs | range |\n\
             | ---: | ---: | ---: | ---: |\n\
             | {LEADS} | {first:.2} s | {median:.2} s | {low:.2}–{high:.2} s |\n\
             {END}"
        );
        common::replace_block(&path, BEGIN, END, &block);
    }
    assert!(first <= 10.0 && high <= 10.0, "over the bound");
}
