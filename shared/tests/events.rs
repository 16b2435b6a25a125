//! Every file in `events/` through the real handler against a real PostgreSQL: the
//! status, the exact body, the content type and the stored row — and, for every stored
//! lead, that sending the same event again (a partner's retry) is `200 Duplicate ignored`
//! naming the same row. Each file is judged on its own, against an empty table. The table below is the
//! expected answer of each file; a file without an entry (or an entry without a file)
//! fails the test, so the sample events and the contract cannot drift apart.

mod common;

use std::collections::BTreeMap;

use serde_json::{json, Value};
use shared::domain::source;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use common::Row;

enum Payload {
    /// The stored payload equals the (decoded) body parsed as JSON (without the key, for
    /// a source whose key travels in the body).
    AsSent,
    /// A form-encoded body is archived as the object of its fields.
    Object(Value),
}

enum Expected {
    Stored {
        name: &'static str,
        phone: &'static str,
        car_model: Option<&'static str>,
        lead_url: Option<&'static str>,
        campaign: Option<&'static str>,
        /// `new`, or `test` for a platform's test lead.
        status: &'static str,
        payload: Payload,
    },
    Rejected(u16, &'static str),
    /// A notification: how many of its leads were stored, repeated and queued.
    Summary(usize, usize, usize),
    /// A handshake: the status and the plain-text body.
    Handshake(u16, &'static str),
}

fn stored(name: &'static str, phone: &'static str) -> Expected {
    Expected::Stored {
        name,
        phone,
        car_model: None,
        lead_url: None,
        campaign: None,
        status: "new",
        payload: Payload::AsSent,
    }
}

impl Expected {
    fn car_model(mut self, value: &'static str) -> Self {
        if let Self::Stored { car_model, .. } = &mut self {
            *car_model = Some(value);
        }
        self
    }
    fn lead_url(mut self, value: &'static str) -> Self {
        if let Self::Stored { lead_url, .. } = &mut self {
            *lead_url = Some(value);
        }
        self
    }
    fn campaign(mut self, value: &'static str) -> Self {
        if let Self::Stored { campaign, .. } = &mut self {
            *campaign = Some(value);
        }
        self
    }
    fn test(mut self) -> Self {
        if let Self::Stored { status, .. } = &mut self {
            *status = "test";
        }
        self
    }
    fn payload(mut self, value: Value) -> Self {
        if let Self::Stored { payload, .. } = &mut self {
            *payload = Payload::Object(value);
        }
        self
    }
}

const MISSING_KEY: Expected = Expected::Rejected(401, "Missing API key");
const INVALID_KEY: Expected = Expected::Rejected(403, "Invalid API key");
const INVALID_JSON: Expected = Expected::Rejected(400, "Invalid JSON payload");
const TOO_LARGE: Expected = Expected::Rejected(413, "Payload too large");

fn expectations() -> BTreeMap<&'static str, Expected> {
    BTreeMap::from([
        // Knowlarity
        (
            "knowlarity/partner-sample-minimal",
            stored("Knowlarity Lead 9876543210", "9876543210"),
        ),
        (
            "knowlarity/partner-sample-with-context",
            stored("Lead from IVR", "9876543210").campaign("Knowlarity Inbound Nov-2025"),
        ),
        (
            "knowlarity/call-webhook",
            stored("Knowlarity Lead +917330995416", "+917330995416"),
        ),
        (
            "knowlarity/call-webhook-base64",
            stored("Knowlarity Lead +917330995416", "+917330995416"),
        ),
        (
            "knowlarity/call-webhook-form-encoded",
            stored("Meera Iyer", "+917330995417").payload(json!({
                "uuid": "6a7b",
                "callid": "K-20261123-000124",
                "customer_number": "+917330995417",
                "dispnumber": "+918047112233",
                "call_duration": "32",
                "business_call_type": "Phone",
                "caller_name": "Meera Iyer"
            })),
        ),
        (
            "knowlarity/rest-v1-call-webhook",
            stored("Knowlarity Lead +917330995416", "+917330995416"),
        ),
        (
            "knowlarity/rest-v1",
            stored("Knowlarity Lead 919812345678", "919812345678")
                .car_model("Hector Plus")
                .campaign("Hector Plus Test Drive"),
        ),
        (
            "knowlarity/blank-aliases-fall-through",
            stored("Knowlarity Lead +91 73309 95416", "+91 73309 95416"),
        ),
        (
            "knowlarity/missing-phone",
            Expected::Rejected(400, "Missing required fields: phone_number"),
        ),
        (
            // Knowlarity's URL push as a GET: the call in the query string, the key as its
            // api_key parameter (the push sets no headers), never archived.
            "knowlarity/get-push",
            stored("Knowlarity Lead +917330995418", "+917330995418").payload(json!({
                "uuid": "8c1d2e3f-0000-4000-8000-000000000125",
                "customer_number": "+917330995418",
                "knowlarity_number": "+918047112233",
                "agent_number": "NA",
                "business_call_type": "Missed Call",
                "call_duration": "0",
                "start_time": "2026-12-02 10:00:00+05:30"
            })),
        ),
        ("knowlarity/get-push-missing-api-key", MISSING_KEY),
        ("knowlarity/get-push-wrong-api-key", INVALID_KEY),
        ("knowlarity/missing-api-key", MISSING_KEY),
        ("knowlarity/blank-api-key", MISSING_KEY),
        ("knowlarity/missing-api-key-before-bad-body", MISSING_KEY),
        ("knowlarity/other-source-key", INVALID_KEY),
        ("knowlarity/invalid-json", INVALID_JSON),
        // CarDekho
        (
            "cardekho/lead-id-and-idempotency-key",
            stored("Anita Desai", "9812345678")
                .car_model("MG Windsor EV")
                .lead_url("https://cardekho.com/leads/42"),
        ),
        (
            "cardekho/partner-sample",
            stored("Ravi Kumar", "9876543210")
                .car_model("Tata Nexon EV")
                .lead_url("https://cardekho.com/leads/123")
                .campaign("EV Awareness Q4"),
        ),
        (
            // A UTF-8 byte-order mark before the JSON, as some Windows exporters send:
            // accepted, and archived as the JSON after it.
            "cardekho/byte-order-mark",
            stored("Meena Iyer", "9876501234")
                .car_model("MG Windsor EV")
                .payload(json!({
                    "name": "Meena Iyer",
                    "phone_number": "9876501234",
                    "car_model": "MG Windsor EV"
                })),
        ),
        (
            "cardekho/aliases",
            stored("Priya Sharma", "9123456780")
                .car_model("MG Windsor EV")
                .lead_url("https://www.cardekho.com/mg/windsor-ev")
                .campaign("Windsor Launch"),
        ),
        (
            "cardekho/phone-as-number",
            stored("Asha", "9876543210")
                .car_model("Comet EV")
                .lead_url("https://www.cardekho.com/leads/987"),
        ),
        (
            "cardekho/rest-v1-mixed-case-header",
            stored("Vikram", "9000000001").car_model("Astor"),
        ),
        ("cardekho/no-content-type", stored("Nikhil", "9000000002")),
        (
            "cardekho/missing-fields",
            Expected::Rejected(400, "Missing required fields: name, phone_number"),
        ),
        (
            "cardekho/blank-name",
            Expected::Rejected(400, "Missing required fields: name"),
        ),
        ("cardekho/not-an-object", INVALID_JSON),
        ("cardekho/empty-body", INVALID_JSON),
        ("cardekho/key-prefix", INVALID_KEY),
        ("cardekho/wrong-key-before-too-large", INVALID_KEY),
        // CarWale
        (
            "carwale/sample",
            stored("Arjun Rao", "9988776655")
                .car_model("MG Hector")
                .lead_url("https://www.carwale.com/mg-cars/hector/")
                .campaign("Hector Diwali Offers"),
        ),
        (
            "carwale/aliases",
            stored("Fatima Khan", "+91 99887 76600")
                .car_model("ZS EV")
                .lead_url("https://www.carwale.com/mg-cars/zs-ev/")
                .campaign("ZS EV Search"),
        ),
        (
            "carwale/form-encoded-base64",
            stored("Suresh Babu", "9876501234")
                .car_model("MG Gloster")
                .lead_url("https://www.carwale.com/mg-cars/gloster/")
                .payload(json!({
                    "customer_name": "Suresh Babu",
                    "mobile": "9876501234",
                    "vehicle_model": "MG Gloster",
                    "page_url": "https://www.carwale.com/mg-cars/gloster/"
                })),
        ),
        (
            "carwale/json-sent-as-form",
            stored("Kiran", "9876512345").car_model("MG Astor"),
        ),
        (
            "carwale/missing-fields",
            Expected::Rejected(400, "Missing required fields: customer_name, mobile"),
        ),
        (
            "carwale/missing-mobile",
            Expected::Rejected(400, "Missing required fields: mobile"),
        ),
        ("carwale/payload-too-large", TOO_LARGE),
        ("carwale/invalid-json", INVALID_JSON),
        ("carwale/invalid-api-key", INVALID_KEY),
        // Google Ads lead forms: the key in the body, success always 200.
        (
            "google/lead",
            stored("Kavya Menon", "+91 98450 12345")
                .car_model("MG Hector")
                .campaign("21934567890"),
        ),
        (
            // "Send test data" in Google Ads: the whole path, stored as a test lead.
            "google/test-lead",
            stored("Kavya Menon", "+91 98450 12345")
                .car_model("MG Hector")
                .campaign("21934567890")
                .test(),
        ),
        (
            "google/first-and-last-name",
            stored("Rohan Gupta", "09876543210")
                .car_model("Windsor EV")
                .campaign("21934567890"),
        ),
        ("google/wrong-key", INVALID_KEY),
        ("google/missing-key", MISSING_KEY),
        (
            "google/missing-phone",
            Expected::Rejected(400, "Missing required fields: PHONE_NUMBER"),
        ),
        // Meta lead ads: the handshake, and signed notifications of leads read from the
        // Graph API stand-in.
        ("meta/handshake", Expected::Handshake(200, "1158201444")),
        (
            "meta/handshake-wrong-token",
            Expected::Handshake(403, r#"{"error":"Invalid verify token"}"#),
        ),
        ("meta/notification", Expected::Summary(1, 0, 0)),
        // Three changes, one lead named twice.
        ("meta/batched-notification", Expected::Summary(2, 1, 0)),
        (
            "meta/invalid-signature",
            Expected::Rejected(403, "Invalid signature"),
        ),
        (
            "meta/missing-signature",
            Expected::Rejected(401, "Missing signature"),
        ),
    ])
}

/// `<source>/<case>` of every `.json` file under `events/`.
fn event_files() -> Vec<String> {
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(common::events_dir()).expect("events/ exists") {
        let dir = entry.expect("readable events/").path();
        let source = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name")
            .to_owned();
        assert!(
            dir.is_dir(),
            "events/ holds only source folders, found {source}"
        );
        for file in std::fs::read_dir(&dir).expect("readable source folder") {
            let file = file.expect("readable entry").path();
            assert_eq!(
                file.extension().and_then(|e| e.to_str()),
                Some("json"),
                "{file:?}"
            );
            let case = file
                .file_stem()
                .and_then(|n| n.to_str())
                .expect("utf-8 name");
            cases.push(format!("{source}/{case}"));
        }
    }
    cases.sort();
    cases
}

/// The leads feed's requests (`events/feed/`), judged by their own table below.
const FEED: &str = "feed/";

/// The event files of the sources.
fn source_event_files() -> Vec<String> {
    event_files()
        .into_iter()
        .filter(|file| !file.starts_with(FEED))
        .collect()
}

#[test]
fn every_event_file_has_an_expectation_and_every_source_a_folder() {
    let files = source_event_files();
    let expected: Vec<String> = expectations().keys().map(|k| k.to_string()).collect();
    assert_eq!(files, expected, "events/ and the expectation table differ");
    let feed_files: Vec<String> = event_files()
        .into_iter()
        .filter(|file| file.starts_with(FEED))
        .collect();
    let feed_expected: Vec<String> = feed_expectations().keys().map(|k| k.to_string()).collect();
    assert_eq!(
        feed_files, feed_expected,
        "events/feed and the feed's table differ"
    );
    for source in source::ALL {
        assert!(
            files
                .iter()
                .any(|f| f.starts_with(&format!("{}/", source.slug))),
            "no event folder for {}",
            source.slug
        );
    }
}

/// Every file is what the deployed API sends: a REST API (payload v1) on the stage `live`.
#[test]
fn every_event_file_is_what_the_deployed_rest_api_sends() {
    for case in event_files() {
        let path = common::events_dir().join(format!("{case}.json"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let event: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert!(
            event.get("version").is_none(),
            "{case}: an HTTP API (v2) event"
        );
        let context = &event["requestContext"];
        assert_eq!(context["stage"], "live", "{case}: the deployed stage");
        let path = event["path"]
            .as_str()
            .unwrap_or_else(|| panic!("{case}: no path"));
        assert_eq!(
            context["path"],
            format!("/live{path}"),
            "{case}: the stage's path"
        );
        assert_eq!(event["httpMethod"], context["httpMethod"], "{case}");
        assert_eq!(event["resource"], context["resourcePath"], "{case}");
    }
}

/// The leads the Meta events name, as the Graph API gives them, served on `address`.
async fn graph_on(address: &str) -> common::graph::GraphStandIn {
    let graph = common::graph::GraphStandIn::start_on(address).await;
    for (id, name, phone) in [
        ("9100000000000001", "Deepa Nair", "+919812300001"),
        ("9100000000000002", "Imran Sheikh", "09812300002"),
        ("9100000000000003", "Lakshmi Iyer", "9812300003"),
    ] {
        graph.add_lead(common::meta_lead(id, name, phone));
    }
    graph
}

/// Who answers an event: the handler in this process, or the built function under
/// `sam local`.
enum Invoker {
    InProcess,
    SamLocal(common::sam_local::SamLocal),
}

impl Invoker {
    async fn call(&self, app: &shared::App, path: &std::path::Path) -> common::Answer {
        match self {
            Self::InProcess => common::call(app, common::event_request(path)).await,
            Self::SamLocal(lambda) => {
                let function = common::sam_local::function_id(app.source().slug);
                lambda.invoke(&function, path).await
            }
        }
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn every_event_file_gets_its_contract_answer(_: PgPoolOptions, options: PgConnectOptions) {
    let graph = graph_on("127.0.0.1").await;
    every_event_file_answers(&options, &graph.url(), &Invoker::InProcess).await;
}

/// The same table, through `sam local` on the `sam build` output: the arm64 bootstraps
/// in SAM's containers (under qemu on x86_64), the database and the Graph API stand-in
/// reached over the docker bridge. Needs Docker and `sam build`; `scripts/sam-local-test.sh`
/// prepares both and runs it (`.ci/run` does).
#[sqlx::test(migrations = "../migrations")]
#[ignore = "needs Docker and `sam build`: scripts/sam-local-test.sh"]
async fn every_event_file_gets_its_contract_answer_from_sam_local(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let graph = graph_on(&common::sam_local::bridge_address()).await;
    let env = common::sam_local::env_vars(&options, &graph.url());
    let lambda = common::sam_local::SamLocal::start_lambda(&env).await;
    every_event_file_answers(&options, &graph.url(), &Invoker::SamLocal(lambda)).await;
}

/// Every event file, each against an empty table, answered by `invoker` as the table
/// says, and stored (once) when it says so.
async fn every_event_file_answers(options: &PgConnectOptions, graph_url: &str, invoker: &Invoker) {
    let apps: BTreeMap<&str, shared::App> = source::ALL
        .iter()
        .map(|source| {
            let app = match source.auth {
                source::Auth::Signature => common::meta_app(source, options.clone(), graph_url),
                _ => common::app(source, options.clone()),
            };
            (source.slug, app)
        })
        .collect();
    let pool = common::pool(options).await;
    for (case, expected) in expectations() {
        sqlx::query(r#"DELETE FROM public."mg-digital-leads""#)
            .execute(&pool)
            .await
            .expect("empty the table");
        let (slug, _) = case.split_once('/').expect("source/case");
        let app = &apps[slug];
        let path = common::events_dir().join(format!("{case}.json"));
        let sent: Vec<u8> = common::event_request(&path).body().as_ref().to_vec();
        let answer = invoker.call(app, &path).await;
        let mut stored_count = 0;

        if let Expected::Handshake(status, body) = expected {
            assert_eq!(
                (answer.status, answer.body.as_str()),
                (status, body),
                "{case}"
            );
            let plain = if status == 200 {
                "text/plain; charset=utf-8"
            } else {
                "application/json; charset=utf-8"
            };
            assert_eq!(answer.content_type, plain, "{case}");
            assert_eq!(common::count(&pool).await, 0, "{case}");
            continue;
        }
        assert_eq!(
            answer.content_type, "application/json; charset=utf-8",
            "{case}"
        );
        match expected {
            Expected::Handshake(..) => unreachable!("answered above"),
            Expected::Rejected(status, error) => {
                assert_eq!(answer.status, status, "{case}: {}", answer.body);
                assert_eq!(answer.body, json!({ "error": error }).to_string(), "{case}");
            }
            Expected::Summary(stored, duplicates, queued) => {
                let summary = |stored, duplicates, queued| {
                    format!(r#"{{"stored":{stored},"duplicates":{duplicates},"queued":{queued}}}"#)
                        .to_string()
                };
                assert_eq!(
                    (answer.status, answer.body.as_str()),
                    (200, summary(stored, duplicates, queued).as_str()),
                    "{case}"
                );
                stored_count = stored as i64;
                // Meta's retry of the same notification stores nothing again.
                let retry = invoker.call(app, &path).await;
                assert_eq!(
                    (retry.status, retry.body.as_str()),
                    (200, summary(0, stored + duplicates, queued).as_str()),
                    "{case} sent again"
                );
            }
            Expected::Stored {
                name,
                phone,
                car_model,
                lead_url,
                campaign,
                status,
                payload,
            } => {
                let created = match app.source().reply {
                    source::Reply::Contract => 201,
                    _ => 200,
                };
                assert_eq!(answer.status, created, "{case}: {}", answer.body);
                let id = answer.id();
                assert_eq!(
                    answer.body,
                    format!(
                        r#"{{"message":"{}","id":{id}}}"#,
                        shared::edge::answer::Answers::new(app.source()).inserted()
                    ),
                    "{case}"
                );
                let payload = match payload {
                    Payload::AsSent => {
                        let mut sent: Value =
                            serde_json::from_slice(&sent).expect("JSON event body");
                        // A key sent in the body is never stored.
                        if let (source::Auth::Body(names), Some(fields)) =
                            (&app.source().auth, sent.as_object_mut())
                        {
                            for name in *names {
                                fields.remove(*name);
                            }
                        }
                        sent
                    }
                    Payload::Object(value) => value,
                };
                let row = common::row(&pool, id).await;
                assert_eq!(
                    row,
                    Row {
                        platform: Some(app.source().platform.to_owned()),
                        name: Some(name.to_owned()),
                        phone_number: Some(phone.to_owned()),
                        car_model: car_model.map(str::to_owned),
                        lead_url: lead_url.map(str::to_owned),
                        campaign: campaign.map(str::to_owned),
                        status: Some(status.to_owned()),
                        payload: Some(sqlx::types::Json(payload)),
                    },
                    "{case}"
                );
                stored_count += 1;

                let retry = invoker.call(app, &path).await;
                assert_eq!(
                    (retry.status, retry.body.as_str()),
                    (
                        200,
                        format!(r#"{{"message":"Duplicate ignored","id":{id}}}"#).as_str()
                    ),
                    "{case} sent again"
                );
            }
        }
        // Nothing but the accepted leads reached the table, once.
        assert_eq!(common::count(&pool).await, stored_count, "{case}");
    }
}

/// `sam local start-api` on the `sam build` output, asked over HTTP as a partner (or
/// Meta) would: per source, the first event file the table says is stored (or, for Meta,
/// summarised), replayed to its route, answers its status and stores its row; Meta's GET
/// handshake answers the challenge. Needs Docker and `sam build`:
/// `scripts/sam-local-test.sh` prepares both and runs it (`.ci/run` does).
#[sqlx::test(migrations = "../migrations")]
#[ignore = "needs Docker and `sam build`: scripts/sam-local-test.sh"]
async fn every_route_answers_through_sam_local_start_api(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let graph = graph_on(&common::sam_local::bridge_address()).await;
    let env = common::sam_local::env_vars(&options, &graph.url());
    let api = common::sam_local::SamLocal::start_api(&env).await;
    let pool = common::pool(&options).await;
    let table = expectations();
    let mut routes = 0;
    for source in source::ALL {
        let prefix = format!("{}/", source.slug);
        let mut cases = table.iter().filter(|(case, _)| case.starts_with(&prefix));
        let (case, expected) = cases
            .clone()
            .find(|(_, expected)| {
                matches!(expected, Expected::Stored { .. } | Expected::Summary(..))
            })
            .unwrap_or_else(|| panic!("no stored case for {}", source.slug));
        let before = common::count(&pool).await;
        let answer = api
            .replay(&common::events_dir().join(format!("{case}.json")))
            .await;
        let (status, stored) = match expected {
            Expected::Summary(stored, ..) => (200, *stored as i64),
            _ if source.reply == source::Reply::Contract => (201, 1),
            _ => (200, 1),
        };
        assert_eq!(answer.status, status, "{case}: {}", answer.body);
        assert_eq!(
            common::count(&pool).await - before,
            stored,
            "{case}: rows stored"
        );
        routes += 1;
        if let Some((case, Expected::Handshake(status, body))) =
            cases.find(|(_, expected)| matches!(expected, Expected::Handshake(200, _)))
        {
            let answer = api
                .replay(&common::events_dir().join(format!("{case}.json")))
                .await;
            assert_eq!(
                (answer.status, answer.body.as_str()),
                (*status, *body),
                "{case}"
            );
            routes += 1;
        }
    }
    // A source whose push may come as a GET (Knowlarity's): that route too, a call of
    // its own stored.
    for source in source::ALL.iter().filter(|source| source.query_push) {
        let prefix = format!("{}/", source.slug);
        let (case, _) = table
            .iter()
            .filter(|(case, _)| case.starts_with(&prefix))
            .find(|(case, expected)| {
                matches!(expected, Expected::Stored { .. })
                    && common::event_request(&common::events_dir().join(format!("{case}.json")))
                        .method()
                        == "GET"
            })
            .unwrap_or_else(|| panic!("no stored GET case for {}", source.slug));
        let before = common::count(&pool).await;
        let answer = api
            .replay(&common::events_dir().join(format!("{case}.json")))
            .await;
        assert_eq!(answer.status, 201, "{case}: {}", answer.body);
        assert_eq!(
            common::count(&pool).await - before,
            1,
            "{case}: rows stored"
        );
        routes += 1;
    }
    // The leads feed: its reader key reads the rows just stored, a partner's key nothing.
    let answer = api
        .replay(&common::events_dir().join("feed/newest-first.json"))
        .await;
    assert_eq!(answer.status, 200, "feed/newest-first: {}", answer.body);
    let page: serde_json::Value = serde_json::from_str(&answer.body).expect("a JSON page");
    assert!(
        !page["leads"].as_array().expect("leads").is_empty(),
        "feed/newest-first: {}",
        answer.body
    );
    let answer = api
        .replay(&common::events_dir().join("feed/partner-key.json"))
        .await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (403, r#"{"error":"Invalid API key"}"#),
        "feed/partner-key"
    );
    routes += 1;
    // Each source's POST route, Meta's GET, Knowlarity's GET and the feed.
    assert_eq!(
        routes,
        source::ALL.len() + 2 + source::ALL.iter().filter(|s| s.query_push).count()
    );
}

/// What the feed answers an event file of `events/feed/`.
enum FeedExpected {
    /// 200 JSON: these leads' names, in this order.
    Names(&'static [&'static str]),
    /// 200 CSV: a header and this many rows, and a `Link` to the next page.
    Csv(usize),
    /// A refusal: the status and the error.
    Refused(u16, &'static str),
    /// An `OPTIONS` preflight from the development origin.
    Preflight,
}

fn feed_expectations() -> BTreeMap<&'static str, FeedExpected> {
    BTreeMap::from([
        (
            "feed/newest-first",
            FeedExpected::Names(&["Ravi Kumar", "Meera Shah", "Ravi K", "Old Lead"]),
        ),
        (
            "feed/filters",
            FeedExpected::Names(&["Meera Shah", "Ravi K"]),
        ),
        (
            "feed/person-by-phone",
            FeedExpected::Names(&["Ravi Kumar", "Ravi K"]),
        ),
        ("feed/csv", FeedExpected::Csv(1)),
        (
            "feed/missing-api-key",
            FeedExpected::Refused(401, "Missing API key"),
        ),
        (
            "feed/partner-key",
            FeedExpected::Refused(403, "Invalid API key"),
        ),
        (
            "feed/bad-limit",
            FeedExpected::Refused(400, "limit must be a whole number from 1 to 500"),
        ),
        ("feed/preflight", FeedExpected::Preflight),
    ])
}

/// Every file of `events/feed/` through the feed's handler, read as `lead_reader`, over
/// the same few rows.
#[sqlx::test(migrations = "../migrations")]
async fn every_feed_event_file_gets_its_answer(_: PgPoolOptions, options: PgConnectOptions) {
    use shared::infra::secrets::DbCredentials;
    use shared::infra::store::{Store, StoreSettings};

    let admin = Store::new(options.clone(), StoreSettings::default());
    let reader = DbCredentials::from_secret(r#"{"username":"lead_reader","password":"pw"}"#)
        .expect("credentials");
    admin.grant_login(&reader).await.expect("grant login");
    let feed = shared::pipeline::feed::Feed::new(
        shared::domain::auth::ApiKeys::new(["local-dev-feed-key"]),
        Store::new(
            options.clone().username("lead_reader").password("pw"),
            StoreSettings::default(),
        ),
    )
    .with_allowed_origins(vec!["http://localhost:3000".to_owned()]);
    let pool = common::pool(&options).await;
    for (platform, name, phone, e164, model, stored_at) in [
        (
            "CarWale",
            "Old Lead",
            "9000000001",
            "+919000000001",
            "ZS EV",
            "2026-01-09T10:00:00Z",
        ),
        (
            "CarDekho",
            "Ravi K",
            "09876543210",
            "+919876543210",
            "Hector",
            "2026-01-10T10:00:00Z",
        ),
        (
            "Meta",
            "Meera Shah",
            "9000000002",
            "+919000000002",
            "Hector Plus",
            "2026-01-11T10:00:00Z",
        ),
        (
            "Google",
            "Ravi Kumar",
            "+91 98765 43210",
            "+919876543210",
            "Hector",
            "2026-01-12T10:00:00Z",
        ),
    ] {
        sqlx::query(
            r#"INSERT INTO public."mg-digital-leads"
                 (platform, name, phone_number, phone_e164, car_model, created_at, stored_at)
               VALUES ($1, $2, $3, $4, $5, $6::timestamptz, $6::timestamptz)"#,
        )
        .bind(platform)
        .bind(name)
        .bind(phone)
        .bind(e164)
        .bind(model)
        .bind(stored_at)
        .execute(&pool)
        .await
        .expect("a seed row");
    }
    for (case, expected) in feed_expectations() {
        let request = common::event_request(&common::events_dir().join(format!("{case}.json")));
        let response = shared::edge::dashboard::handle(&feed, request).await;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let body = match response.body() {
            lambda_http::Body::Text(text) => text.clone(),
            _ => String::new(),
        };
        match expected {
            FeedExpected::Names(names) => {
                assert_eq!(status, 200, "{case}: {body}");
                assert_eq!(
                    header("content-type").as_deref(),
                    Some("application/json; charset=utf-8"),
                    "{case}"
                );
                assert_eq!(
                    header("access-control-allow-origin").as_deref(),
                    Some("http://localhost:3000"),
                    "{case}"
                );
                let page: Value = serde_json::from_str(&body).expect("JSON");
                let listed: Vec<&str> = page["leads"]
                    .as_array()
                    .expect("leads")
                    .iter()
                    .map(|lead| lead["name"].as_str().unwrap_or_default())
                    .collect();
                assert_eq!(listed, names, "{case}");
                assert_eq!(page["next"], Value::Null, "{case}");
            }
            FeedExpected::Csv(rows) => {
                assert_eq!(status, 200, "{case}: {body}");
                assert_eq!(
                    header("content-type").as_deref(),
                    Some("text/csv; charset=utf-8"),
                    "{case}"
                );
                assert_eq!(body.matches("\r\n").count(), rows + 1, "{case}: {body}");
                assert!(
                    header("link").is_some_and(|link| link.starts_with("<?limit=1&cursor=")),
                    "{case}"
                );
            }
            FeedExpected::Refused(refused, error) => {
                assert_eq!(status, refused, "{case}: {body}");
                assert_eq!(body, json!({ "error": error }).to_string(), "{case}");
            }
            FeedExpected::Preflight => {
                assert_eq!(status, 204, "{case}");
                assert_eq!(
                    header("access-control-allow-origin").as_deref(),
                    Some("http://localhost:3000"),
                    "{case}"
                );
                assert_eq!(
                    header("access-control-allow-methods").as_deref(),
                    Some("GET, OPTIONS"),
                    "{case}"
                );
            }
        }
    }
}
