//! Knowlarity's push as its own documentation describes it: a `GET` whose query string
//! holds the call, or a `POST` with a form body, neither able to set a header, so the key
//! may come as the `api_key` parameter (query or body). Only Knowlarity's declaration says
//! so: every other source takes its key where it always did.

mod common;

use lambda_http::{Body, Request};
use serde_json::{json, Value};
use shared::domain::source::{CARDEKHO, KNOWLARITY};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

const ROUTE: &str = "https://leads.example.com/admin/mg-digital-leads/source/knowlarity";

/// A call as Knowlarity's URL push puts it in a query string.
const CALL: &str = "uuid=call-7001&customer_number=%2B917330995420&agent_number=NA\
                    &business_call_type=Missed+Call&start_time=2026-12-02+10%3A00%3A00%2B05%3A30";

fn get(query: &str, api_key: Option<&str>) -> Request {
    let mut builder = lambda_http::http::Request::builder()
        .method("GET")
        .uri(format!("{ROUTE}?{query}"));
    if let Some(key) = api_key {
        builder = builder.header("x-api-key", key);
    }
    builder.body(Body::Empty).expect("valid test request")
}

fn post(query: Option<&str>, content_type: &str, body: &str) -> Request {
    let uri = match query {
        Some(query) => format!("{ROUTE}?{query}"),
        None => ROUTE.to_owned(),
    };
    lambda_http::http::Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", content_type)
        .body(Body::from(body.to_owned()))
        .expect("valid test request")
}

fn key() -> String {
    common::dev_key(&KNOWLARITY)
}

async fn payload_and_time(pool: &PgPool, id: i64) -> (Value, Option<i64>) {
    let (payload, created): (sqlx::types::Json<Value>, Option<f64>) = sqlx::query_as(
        r#"SELECT payload, extract(epoch FROM meta_created_at)::float8
           FROM public."mg-digital-leads" WHERE id = $1"#,
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .expect("the stored row");
    (payload.0, created.map(|seconds| seconds as i64))
}

#[sqlx::test(migrations = "../migrations")]
async fn a_get_push_with_the_key_in_its_query_is_a_lead_archived_without_the_key(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let app = common::app(&KNOWLARITY, options.clone());
    let pool = common::pool(&options).await;
    let query = format!("{CALL}&api_key={}", key());

    let answer = common::call(&app, get(&query, None)).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let row = common::row(&pool, answer.id()).await;
    assert_eq!(row.name.as_deref(), Some("Knowlarity Lead +917330995420"));
    assert_eq!(row.phone_number.as_deref(), Some("+917330995420"));
    let (payload, created) = payload_and_time(&pool, answer.id()).await;
    assert_eq!(
        payload,
        json!({
            "uuid": "call-7001",
            "customer_number": "+917330995420",
            "agent_number": "NA",
            "business_call_type": "Missed Call",
            "start_time": "2026-12-02 10:00:00+05:30"
        })
    );
    assert!(!payload.to_string().contains(&key()));
    // 10:00 in IST is 04:30 UTC.
    assert_eq!(created, Some(1_796_185_800));

    // Knowlarity's retry of the same call.
    let again = common::call(&app, get(&query, None)).await;
    assert_eq!(
        (again.status, again.id()),
        (200, answer.id()),
        "{}",
        again.body
    );
    // The same call by POST (form body, key in the body) meets it on its uuid.
    let form = common::call(
        &app,
        post(
            None,
            "application/x-www-form-urlencoded",
            &format!("{CALL}&api_key={}", key()),
        ),
    )
    .await;
    assert_eq!(
        (form.status, form.id()),
        (200, answer.id()),
        "{}",
        form.body
    );
    assert_eq!(common::count(&pool).await, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_get_push_answers_as_the_contract_says(_: PgPoolOptions, options: PgConnectOptions) {
    let app = common::app(&KNOWLARITY, options.clone());
    let pool = common::pool(&options).await;
    let cases: [(Request, u16, &str); 6] = [
        (get(CALL, None), 401, "Missing API key"),
        (
            get(&format!("{CALL}&api_key=+"), None),
            401,
            "Missing API key",
        ),
        (
            get(&format!("{CALL}&api_key=not-the-key"), None),
            403,
            "Invalid API key",
        ),
        (
            get(
                &format!("{CALL}&api_key={}", common::dev_key(&CARDEKHO)),
                None,
            ),
            403,
            "Invalid API key",
        ),
        // The header, when there is one, is the key: a right one in the query does not
        // rescue a wrong header.
        (
            get(&format!("{CALL}&api_key={}", key()), Some("not-the-key")),
            403,
            "Invalid API key",
        ),
        (
            get(&format!("uuid=x&api_key={}", key()), None),
            400,
            "Missing required fields: phone_number",
        ),
    ];
    for (request, status, error) in cases {
        let uri = request.uri().to_string();
        let answer = common::call(&app, request).await;
        assert_eq!(
            (answer.status, answer.json()),
            (status, json!({ "error": error })),
            "{uri}"
        );
    }
    // A GET with the header key and nothing to read is a bad body, after the key.
    let empty = lambda_http::http::Request::builder()
        .method("GET")
        .uri(ROUTE)
        .header("x-api-key", key())
        .body(Body::Empty)
        .expect("valid test request");
    let answer = common::call(&app, empty).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(common::count(&pool).await, 0);

    let header = common::call(&app, get(CALL, Some(&key()))).await;
    assert_eq!(header.status, 201, "{}", header.body);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_post_push_may_carry_the_key_in_its_query_or_its_body(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let app = common::app(&KNOWLARITY, options.clone());
    let pool = common::pool(&options).await;
    let key = key();
    let json_body = |uuid: &str, key: Option<&str>| {
        let mut body = json!({"uuid": uuid, "caller_id": "+917330995421"});
        if let Some(key) = key {
            body["api_key"] = key.into();
        }
        body.to_string()
    };
    let query = format!("api_key={key}");
    for (uuid, request) in [
        (
            "in-query",
            post(
                Some(&query),
                "application/json",
                &json_body("in-query", None),
            ),
        ),
        (
            "in-json-body",
            post(
                None,
                "application/json",
                &json_body("in-json-body", Some(&key)),
            ),
        ),
        (
            "in-form-body",
            post(
                None,
                "application/x-www-form-urlencoded",
                &format!("uuid=in-form-body&caller_id=%2B917330995421&api_key={key}"),
            ),
        ),
    ] {
        let answer = common::call(&app, request).await;
        assert_eq!(answer.status, 201, "{uuid}: {}", answer.body);
        let (payload, _) = payload_and_time(&pool, answer.id()).await;
        assert_eq!(
            payload,
            json!({"uuid": uuid, "caller_id": "+917330995421"}),
            "{uuid}: the key is never archived"
        );
    }
    // A key in the body of a body that is not JSON: no key was read, so the key is what
    // is refused first.
    let broken = post(
        None,
        "application/json",
        &format!("{{\"api_key\":\"{key}\""),
    );
    let answer = common::call(&app, broken).await;
    assert_eq!(answer.status, 401, "{}", answer.body);
}

#[sqlx::test(migrations = "../migrations")]
async fn other_sources_take_no_key_from_a_query_or_a_field(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let app = common::app(&CARDEKHO, options.clone());
    let pool = common::pool(&options).await;
    let key = common::dev_key(&CARDEKHO);
    let route = "https://leads.example.com/admin/mg-digital-leads/source/cardekho";
    let lead = json!({"name": "Ravi", "phone_number": "9876543210"});

    let in_query = lambda_http::http::Request::builder()
        .method("POST")
        .uri(format!("{route}?api_key={key}"))
        .header("content-type", "application/json")
        .body(Body::from(lead.to_string()))
        .expect("valid test request");
    let answer = common::call(&app, in_query).await;
    assert_eq!(answer.status, 401, "{}", answer.body);

    let mut with_field = lead.clone();
    with_field["api_key"] = key.clone().into();
    let in_body = common::request(
        None,
        Some("application/json"),
        with_field.to_string().into(),
    );
    let answer = common::call(&app, in_body).await;
    assert_eq!(answer.status, 401, "{}", answer.body);

    // Nor is a GET a lead: CarDekho's route has no query push.
    let get = lambda_http::http::Request::builder()
        .method("GET")
        .uri(format!(
            "{route}?name=Ravi&phone_number=9876543210&api_key={key}"
        ))
        .header("x-api-key", key.as_str())
        .body(Body::Empty)
        .expect("valid test request");
    let answer = common::call(&app, get).await;
    assert_ne!(answer.status, 201, "{}", answer.body);
    assert_eq!(common::count(&pool).await, 0);

    // And a field called api_key is an ordinary field of its lead, archived as sent.
    let answer = common::call(
        &app,
        common::request(
            Some(&key),
            Some("application/json"),
            with_field.to_string().into(),
        ),
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let (payload, _) = payload_and_time(&pool, answer.id()).await;
    assert_eq!(payload, with_field);
}
