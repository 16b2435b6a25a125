//! The Graph API client against a local stand-in for Meta: a lead read whole, forms and
//! leads read across every page, each failure sorted into "try again later" or "never",
//! and the page token kept to the Graph URL and out of every error.

mod common;

use std::time::{Duration, Instant};

use common::graph::{self as stand_in, Failure, GraphStandIn, APP_SECRET, TOKEN};
use serde_json::{json, Map, Value};
use shared::domain::meta::{appsecret_proof, PageToken};
use shared::infra::graph::{
    Graph, GraphError, GraphSettings, DEFAULT_GRAPH_URL, DEFAULT_GRAPH_VERSION, LEAD_FIELDS,
    MAX_PAGES,
};

/// 2026-11-20T08:49:14+0000, the time in Meta's example lead.
const CREATED: i64 = 1_795_164_554;

fn client(graph: &GraphStandIn) -> Graph {
    Graph::new(GraphSettings {
        base_url: graph.url(),
        ..GraphSettings::default()
    })
}

fn proof() -> String {
    appsecret_proof(TOKEN, APP_SECRET)
}

/// The error's Display and Debug, once checked free of the token and its proof.
fn text(error: &GraphError) -> String {
    let text = format!("{error} / {error:?}");
    assert!(!text.contains(TOKEN), "the token leaked: {text}");
    assert!(!text.contains(&proof()), "the proof leaked: {text}");
    text
}

#[track_caller]
fn unavailable<T: std::fmt::Debug>(result: Result<T, GraphError>, what: &str) -> String {
    match result {
        Err(error @ GraphError::Unavailable(_)) => {
            assert!(error.is_unavailable());
            text(&error)
        }
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    }
}

#[track_caller]
fn refused<T: std::fmt::Debug>(result: Result<T, GraphError>, what: &str) -> String {
    match result {
        Err(error @ GraphError::Refused(_)) => {
            assert!(!error.is_unavailable());
            text(&error)
        }
        other => panic!("{what}: expected Refused, got {other:?}"),
    }
}

/// Every lead of the form created after `since`, page by page as the pull reads them,
/// with the cursor each page was asked for.
async fn all_leads(
    client: &Graph,
    token: &PageToken,
    form: &str,
    since: i64,
) -> Result<Vec<Map<String, Value>>, GraphError> {
    let mut leads = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = client
            .leads_page(token, form, since, after.as_deref())
            .await?;
        leads.extend(page.leads);
        match page.after {
            Some(next) => after = Some(next),
            None => return Ok(leads),
        }
    }
    panic!("still a next page after {MAX_PAGES} pages");
}

fn ids(items: &[Map<String, Value>]) -> Vec<&str> {
    items
        .iter()
        .map(|item| item["id"].as_str().expect("a string id"))
        .collect()
}

#[test]
fn settings_default_to_metas_graph_url() {
    let settings = GraphSettings::default();
    assert_eq!(settings.base_url, "https://graph.facebook.com");
    assert_eq!(settings.base_url, DEFAULT_GRAPH_URL);
    assert_eq!(settings.version, "v25.0");
    assert_eq!(settings.version, DEFAULT_GRAPH_VERSION);
    assert_eq!(settings.timeout, Duration::from_secs(3));
}

#[test]
fn appsecret_proof_is_the_hmac_sha256_of_the_token() {
    // echo -n token | openssl dgst -sha256 -hmac secret
    assert_eq!(
        appsecret_proof("token", "secret"),
        "e941110e3d2bfe82621f0e3e1434730d7305d106c5f68c87165d0b27a4611a4a"
    );
    assert_ne!(
        appsecret_proof("token", "other"),
        appsecret_proof("token", "secret")
    );
}

#[test]
fn a_page_tokens_debug_shows_no_secret() {
    let token = stand_in::page_token();
    let debug = format!("{token:?} {:?}", token.clone());
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(!debug.contains(&proof()), "{debug}");
    assert!(!debug.contains(APP_SECRET), "{debug}");
    assert!(debug.contains("redacted"), "{debug}");
}

#[test]
fn the_stand_in_keeps_metas_time_format() {
    assert_eq!(stand_in::graph_time(CREATED), "2026-11-20T08:49:14+0000");
    assert_eq!(
        stand_in::unix_seconds("2026-11-20T08:49:14+0000"),
        Some(CREATED)
    );
    assert_eq!(
        stand_in::unix_seconds("2026-11-20T14:19:14+0530"),
        Some(CREATED)
    );
    assert_eq!(stand_in::unix_seconds("2026-11-20 08:49:14"), None);
}

#[tokio::test]
async fn a_lead_comes_back_whole() {
    let graph = GraphStandIn::start().await;
    graph.add_lead(stand_in::lead("1189327651234567", "555001", CREATED));
    graph.add_lead(stand_in::lead("1189327651234568", "555001", CREATED + 1));

    let lead = client(&graph)
        .lead(&stand_in::page_token(), "1189327651234567")
        .await
        .expect("the lead");

    assert_eq!(
        Value::Object(lead.clone()),
        stand_in::lead("1189327651234567", "555001", CREATED)
    );
    assert_eq!(lead["created_time"], "2026-11-20T08:49:14+0000");
    assert_eq!(
        lead["field_data"],
        json!([
            {"name": "full_name", "values": ["Asha Rao"]},
            {"name": "phone_number", "values": ["+919876543210"]}
        ])
    );
    let requests = graph.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert_eq!(request.path, "/v25.0/1189327651234567");
    assert_eq!(request.version, "v25.0");
    assert_eq!(request.param("fields"), Some(LEAD_FIELDS));
    assert_eq!(request.param("access_token"), Some(TOKEN));
    assert_eq!(request.param("appsecret_proof"), Some(proof().as_str()));
}

#[tokio::test]
async fn the_version_is_configurable_and_a_trailing_slash_harmless() {
    let graph = GraphStandIn::start().await;
    graph.add_lead(stand_in::lead("1001", "555001", CREATED));
    let client = Graph::new(GraphSettings {
        base_url: format!("{}/", graph.url()),
        version: "v24.0".into(),
        timeout: Duration::from_secs(3),
    });

    let lead = client.lead(&stand_in::page_token(), "1001").await;

    assert_eq!(lead.expect("the lead")["id"], "1001");
    let requests = graph.requests();
    assert_eq!(requests[0].path, "/v24.0/1001");
    assert_eq!(requests[0].version, "v24.0");
}

#[tokio::test]
async fn forms_are_read_across_every_page() {
    let graph = GraphStandIn::start().await;
    for form in ["9001", "9002", "9003", "9004", "9005"] {
        graph.add_form("777", form);
    }
    graph.add_form("778", "9999");
    graph.set_page_size(2);

    let forms = client(&graph)
        .forms(&stand_in::page_token(), "777")
        .await
        .expect("the forms");

    assert_eq!(forms, ["9001", "9002", "9003", "9004", "9005"]);
    let requests = graph.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert_eq!(requests[0].param("fields"), Some("id"));
    assert_eq!(requests[0].param("limit"), Some("100"));
    assert_eq!(requests[0].param("after"), None);
    assert_eq!(requests[2].param("after"), Some("QVFI000004=="));
    for request in &requests {
        assert_eq!(request.path, "/v25.0/777/leadgen_forms");
        // Meta's `next` carries the token but not the proof; the client adds the proof
        // and sends each once.
        assert_eq!(request.count("access_token"), 1, "{request:?}");
        assert_eq!(request.param("access_token"), Some(TOKEN));
        assert_eq!(request.param("appsecret_proof"), Some(proof().as_str()));
    }
}

#[tokio::test]
async fn leads_are_read_page_by_page_past_an_empty_one() {
    let graph = GraphStandIn::start().await;
    // Pages of two: [new, new], [old, at `since`] (empty once filtered), [new].
    let since = CREATED;
    for (id, created) in [
        ("2001", since + 300),
        ("2002", since + 400),
        ("2003", since - 100),
        ("2004", since),
        ("2005", since + 1),
    ] {
        graph.add_lead(stand_in::lead(id, "555001", created));
    }
    graph.add_lead(stand_in::lead("3001", "555002", since + 50));
    graph.set_page_size(2);

    let leads = all_leads(&client(&graph), &stand_in::page_token(), "555001", since)
        .await
        .expect("the leads");

    assert_eq!(ids(&leads), ["2001", "2002", "2005"]);
    assert_eq!(
        Value::Object(leads[2].clone()),
        stand_in::lead("2005", "555001", since + 1)
    );
    let requests = graph.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    for request in &requests {
        assert_eq!(request.path, "/v25.0/555001/leads");
        assert_eq!(request.param("fields"), Some(LEAD_FIELDS));
        assert_eq!(request.param("appsecret_proof"), Some(proof().as_str()));
        let filtering: Value =
            serde_json::from_str(request.param("filtering").expect("filtering")).expect("JSON");
        assert_eq!(
            filtering,
            json!([{"field": "time_created", "operator": "GREATER_THAN", "value": since}])
        );
    }
    assert_eq!(requests[0].param("limit"), Some("100"));
    // Each page asked for by the cursor of the one before, with the token and proof once.
    assert_eq!(requests[0].param("after"), None);
    assert_eq!(requests[1].param("after"), Some("QVFI000002=="));
    assert_eq!(requests[2].param("after"), Some("QVFI000004=="));
    for request in &requests {
        assert_eq!(request.count("access_token"), 1, "{request:?}");
        assert_eq!(request.count("after"), usize::from(request != &requests[0]));
    }

    // A page at a time: the empty middle page still points on, the last page nowhere.
    let client = client(&graph);
    let token = stand_in::page_token();
    let middle = client
        .leads_page(&token, "555001", since, Some("QVFI000002=="))
        .await
        .expect("the middle page");
    assert_eq!(
        (middle.leads.len(), middle.after.as_deref()),
        (0, Some("QVFI000004=="))
    );
    let last = client
        .leads_page(&token, "555001", since, Some("QVFI000004=="))
        .await
        .expect("the last page");
    assert_eq!((ids(&last.leads), last.after), (vec!["2005"], None));
}

#[tokio::test]
async fn a_form_without_leads_reads_as_none() {
    let graph = GraphStandIn::start().await;
    graph.add_form("777", "9001");

    let leads = all_leads(&client(&graph), &stand_in::page_token(), "9001", 0).await;

    assert_eq!(leads.expect("no leads").len(), 0);
    assert_eq!(graph.requests().len(), 1);
}

#[tokio::test]
async fn errors_worth_retrying_are_unavailable() {
    let graph = GraphStandIn::start().await;
    graph.add_lead(stand_in::lead("1001", "555001", CREATED));
    let client = client(&graph);
    let token = stand_in::page_token();
    let cases = [
        (Failure::rate_limited(), Some("code 80005")),
        (
            Failure::meta(400, 4, "(#4) Application request limit reached"),
            Some("code 4:"),
        ),
        (
            Failure::meta(400, 17, "(#17) User request limit reached"),
            Some("code 17:"),
        ),
        (
            Failure::meta(
                400,
                613,
                "(#613) Calls to this api have exceeded the rate limit.",
            ),
            Some("code 613:"),
        ),
        (
            Failure::meta(400, 32, "Page request limit reached"),
            Some("code 32:"),
        ),
        (
            Failure::meta(
                400,
                80001,
                "There have been too many calls to this Page account",
            ),
            Some("code 80001:"),
        ),
        (
            Failure::meta(500, 1, "An unknown error occurred"),
            Some("code 1:"),
        ),
        (
            Failure::meta(
                500,
                2,
                "An unexpected error has occurred. Please retry your request later.",
            ),
            Some("code 2:"),
        ),
        (
            Failure::meta_with(400, 12345, "Something new", json!({"is_transient": true})),
            Some("code 12345:"),
        ),
        (Failure::Status(500), Some("HTTP 500")),
        (Failure::Status(502), Some("HTTP 502")),
        // A 200 that is not the Graph API's JSON: something in between answered.
        (Failure::Status(200), Some("not a JSON object")),
    ];
    for (failure, expected) in cases {
        let what = format!("{failure:?}");
        graph.fail_next(1, failure);
        let message = unavailable(client.lead(&token, "1001").await, &what);
        if let Some(expected) = expected {
            assert!(message.contains(expected), "{what}: {message}");
        }
        // The failure was one answer; the same client reads the lead again.
        assert_eq!(
            client.lead(&token, "1001").await.expect(&what)["id"],
            "1001"
        );
    }
    let message = {
        graph.fail_next(1, Failure::rate_limited());
        unavailable(client.lead(&token, "1001").await, "rate limit")
    };
    assert!(
        message.contains("There have been too many leadgen api calls"),
        "{message}"
    );
    assert!(message.contains("fbtrace_id AStandInTrace"), "{message}");
}

#[tokio::test]
async fn a_slow_answer_is_unavailable_within_the_timeout() {
    let graph = GraphStandIn::start().await;
    graph.add_lead(stand_in::lead("1001", "555001", CREATED));
    let client = Graph::new(GraphSettings {
        base_url: graph.url(),
        timeout: Duration::from_millis(300),
        ..GraphSettings::default()
    });
    graph.fail_next(1, Failure::Delay(Duration::from_secs(5)));

    let started = Instant::now();
    let result = client.lead(&stand_in::page_token(), "1001").await;
    let elapsed = started.elapsed();

    let message = unavailable(result, "timeout");
    assert!(
        elapsed < Duration::from_secs(2),
        "gave up after {elapsed:?}"
    );
    assert!(message.contains("timed out"), "{message}");
    assert_eq!(
        client
            .lead(&stand_in::page_token(), "1001")
            .await
            .expect("the lead once the stand-in is quick again")["id"],
        "1001"
    );
}

#[tokio::test]
async fn no_server_is_unavailable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let client = Graph::new(GraphSettings {
        base_url: format!("http://127.0.0.1:{port}"),
        ..GraphSettings::default()
    });

    unavailable(
        client.lead(&stand_in::page_token(), "1001").await,
        "nothing listening",
    );
    unavailable(
        Graph::new(GraphSettings {
            base_url: "not a url".into(),
            ..GraphSettings::default()
        })
        .lead(&stand_in::page_token(), "1001")
        .await,
        "an unusable base URL",
    );
}

#[tokio::test]
async fn errors_that_will_not_pass_are_refused() {
    let graph = GraphStandIn::start().await;
    graph.add_lead(stand_in::lead("1001", "555001", CREATED));
    let client = client(&graph);
    let token = stand_in::page_token();

    let message = refused(client.lead(&token, "4040404").await, "an unknown lead");
    assert!(message.contains("code 100, subcode 33"), "{message}");
    assert!(
        message.contains("Object with ID '4040404' does not exist"),
        "{message}"
    );
    let message = refused(client.forms(&token, "4040404").await, "an unknown page");
    assert!(message.contains("subcode 33"), "{message}");
    let message = refused(
        client.leads_page(&token, "4040404", 0, None).await,
        "an unknown form",
    );
    assert!(message.contains("subcode 33"), "{message}");

    let cases = [
        (
            Failure::meta_with(
                400,
                190,
                "Error validating access token: Session has expired",
                json!({"error_subcode": 463}),
            ),
            "code 190, subcode 463",
        ),
        (
            Failure::meta(
                400,
                10,
                "(#10) Application does not have permission for this action",
            ),
            "code 10:",
        ),
        (
            Failure::meta(403, 200, "(#200) Requires pages_manage_ads permission"),
            "code 200:",
        ),
        (
            Failure::meta(400, 283, "(#283) Requires leads_retrieval permission"),
            "code 283:",
        ),
        (Failure::Status(404), "HTTP 404"),
    ];
    for (failure, expected) in cases {
        let what = format!("{failure:?}");
        graph.fail_next(1, failure);
        let message = refused(client.lead(&token, "1001").await, &what);
        assert!(message.contains(expected), "{what}: {message}");
    }

    // The stand-in checks the token and proof as Meta does.
    let message = refused(
        client
            .lead(&PageToken::new("EAAGsomeoneElsesToken", APP_SECRET), "1001")
            .await,
        "another token",
    );
    assert!(message.contains("code 190"), "{message}");
    let message = refused(
        client
            .lead(&PageToken::new(TOKEN, "another-app-secret"), "1001")
            .await,
        "another app's proof",
    );
    assert!(message.contains("Invalid appsecret_proof"), "{message}");
    assert_eq!(
        client.lead(&token, "1001").await.expect("the lead")["id"],
        "1001"
    );
}

#[tokio::test]
async fn an_id_that_is_not_one_is_refused_unsent() {
    let graph = GraphStandIn::start().await;
    let client = client(&graph);
    let token = stand_in::page_token();

    refused(client.lead(&token, "../me").await, "a path");
    refused(client.lead(&token, "").await, "nothing");
    refused(client.forms(&token, "777/feed").await, "an edge");
    refused(client.leads_page(&token, "1?x=", 0, None).await, "a query");

    assert_eq!(graph.requests(), []);
}

#[tokio::test]
async fn a_failure_midway_fails_the_whole_read() {
    let graph = GraphStandIn::start().await;
    for form in ["9001", "9002", "9003"] {
        graph.add_form("777", form);
    }
    graph.set_page_size(1);
    graph.pass_next(1);
    graph.fail_next(1, Failure::rate_limited());

    let message = unavailable(
        client(&graph).forms(&stand_in::page_token(), "777").await,
        "the second page rate limited",
    );

    assert!(message.contains("code 80005"), "{message}");
    assert_eq!(graph.requests().len(), 2);
}

#[tokio::test]
async fn a_next_page_elsewhere_is_refused_and_not_asked_for() {
    let graph = GraphStandIn::start().await;
    let elsewhere = GraphStandIn::start().await;
    graph.add_form("777", "9001");
    graph.add_form("777", "9002");
    graph.set_page_size(1);
    let port = graph.url().rsplit(':').next().expect("a port").to_owned();
    // Another server; the same server under another name; a lookalike host.
    for base in [
        elsewhere.url(),
        format!("http://localhost:{port}"),
        format!("http://127.0.0.1:{port}.example.com"),
    ] {
        graph.set_next_base(&base);
        let before = graph.requests().len();

        let message = refused(
            client(&graph).forms(&stand_in::page_token(), "777").await,
            &base,
        );

        assert!(message.contains("next page"), "{message}");
        assert_eq!(graph.requests().len(), before + 1, "{base}");
    }
    assert_eq!(elsewhere.requests(), []);
}

#[tokio::test]
async fn a_next_page_of_leads_elsewhere_is_refused_and_not_asked_for() {
    let graph = GraphStandIn::start().await;
    let elsewhere = GraphStandIn::start().await;
    graph.add_lead(stand_in::lead("2001", "555001", CREATED));
    graph.add_lead(stand_in::lead("2002", "555001", CREATED));
    graph.set_page_size(1);
    graph.set_next_base(&elsewhere.url());

    let message = refused(
        client(&graph)
            .leads_page(&stand_in::page_token(), "555001", 0, None)
            .await,
        "a next page elsewhere",
    );

    assert!(message.contains("next page"), "{message}");
    assert_eq!(graph.requests().len(), 1);
    assert_eq!(elsewhere.requests(), []);
}

#[tokio::test]
async fn a_page_of_leads_that_points_at_itself_is_cut_off() {
    let graph = GraphStandIn::start().await;
    graph.add_lead(stand_in::lead("2001", "555001", CREATED));
    graph.set_page_size(1);
    graph.set_endless_paging(true);
    let client = client(&graph);
    let token = stand_in::page_token();
    let first = client
        .leads_page(&token, "555001", 0, None)
        .await
        .expect("the first page");
    let after = first.after.expect("endless paging points on");

    let message = unavailable(
        client.leads_page(&token, "555001", 0, Some(&after)).await,
        "the same page again",
    );

    assert!(message.contains("same page"), "{message}");
}

#[tokio::test]
async fn paging_that_never_ends_is_cut_off() {
    let graph = GraphStandIn::start().await;
    graph.add_form("777", "9001");
    graph.set_page_size(1);
    graph.set_endless_paging(true);

    let message = unavailable(
        client(&graph).forms(&stand_in::page_token(), "777").await,
        "endless paging",
    );

    assert!(
        message.contains(&format!("after {MAX_PAGES} pages")),
        "{message}"
    );
    assert_eq!(graph.requests().len(), MAX_PAGES);
}

#[tokio::test]
async fn the_token_is_blanked_out_of_metas_own_message() {
    let graph = GraphStandIn::start().await;
    let token = stand_in::page_token();
    graph.fail_next(
        1,
        Failure::meta(400, 190, &format!("Malformed access token {TOKEN}")),
    );

    // `refused` fails the test if the token or proof is anywhere in the error.
    let message = refused(client(&graph).lead(&token, "1001").await, "an echoed token");

    assert!(
        message.contains("Malformed access token <redacted>"),
        "{message}"
    );
}
