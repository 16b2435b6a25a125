//! Any bytes and any headers get a contract answer, never a panic: property tests over
//! decoding and mapping (pure, many cases) and over the whole lambda_http handler (fewer
//! cases; a database nobody listens on, so a valid lead is the contract's 500).

use std::time::{Duration, SystemTime};

use lambda_http::{Body, Request};
use proptest::prelude::*;
use serde_json::{Map, Value};
use shared::domain::auth::ApiKeys;
use shared::domain::source::{self, Source};
use shared::edge::answer::Answers;
use shared::error::Error;
use shared::infra::store::{Store, StoreSettings};
use shared::pipeline::keyed;
use shared::pipeline::request::Incoming;
use shared::App;
use sqlx::postgres::PgConnectOptions;

const KEY: &str = "local-dev-property-key";

/// Field names: every alias and id field of every source, and anything else.
fn field_name() -> impl Strategy<Value = String> {
    let mut known: Vec<&'static str> = Vec::new();
    for source in source::ALL {
        known.extend(source.phone_number.aliases);
        known.extend(source.name.aliases);
        known.extend(source.car_model);
        known.extend(source.lead_url);
        known.extend(source.campaign);
        known.extend(source.partner_lead_id);
    }
    prop_oneof![
        3 => proptest::sample::select(known).prop_map(str::to_owned),
        1 => "\\PC{0,12}",
    ]
}

fn field_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,20}".prop_map(Value::String),
        "[ \t]{0,3}\\+?[0-9]{0,12}[ \t]{0,3}".prop_map(Value::String),
        // Control characters and U+0000 included.
        ".{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(field_name(), field_value(), 0..8)
        .prop_map(|map| map.into_iter().collect())
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => object().prop_map(|map| serde_json::to_vec(&map).expect("a map serialises")),
        1 => prop::collection::vec((field_name(), "\\PC{0,16}"), 0..6).prop_map(|pairs| {
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish()
                .into_bytes()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => "\\PC{0,40}".prop_map(String::into_bytes),
        // Around the 64 KiB limit.
        1 => (65_500usize..65_600).prop_map(|size| {
            let mut body = br#"{"phone_number":"98","pad":""#.to_vec();
            body.resize(size - 2, b'x');
            body.extend_from_slice(b"\"}");
            body
        }),
    ]
}

fn api_key() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        3 => Just(Some(KEY.as_bytes().to_vec())),
        1 => Just(Some(format!(" {KEY} ").into_bytes())),
        1 => Just(None),
        1 => prop::collection::vec(any::<u8>(), 0..24).prop_map(Some),
        1 => Just(Some(KEY.as_bytes()[..KEY.len() - 1].to_vec())),
    ]
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("application/json".to_owned())),
        Just(Some("application/json; charset=ISO-8859-1".to_owned())),
        Just(Some(
            "Application/X-WWW-Form-URLEncoded; charset=utf-8".to_owned()
        )),
        Just(Some("text/plain".to_owned())),
        "\\PC{0,30}".prop_map(Some),
    ]
}

fn any_source() -> impl Strategy<Value = &'static Source> {
    proptest::sample::select(source::ALL.to_vec())
}

/// Every answer the contract allows for a refused request.
fn contract_refusal(source: &Source, error: Error) -> bool {
    let answer = Answers::new(source).to(&Err(error));
    let body: Value = serde_json::from_str(&answer.body).expect("JSON body");
    let message = body["error"].as_str().unwrap_or_default();
    match answer.status {
        401 => message == "Missing API key",
        403 => message == "Invalid API key",
        413 => message == "Payload too large",
        400 => {
            message == "Invalid JSON payload"
                || message
                    .strip_prefix("Missing required fields: ")
                    .is_some_and(|fields| !fields.is_empty())
        }
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn decoding_and_mapping_answer_per_contract(
        source in any_source(),
        api_key in api_key(),
        content_type in content_type(),
        idempotency_key in prop::option::of(prop::collection::vec(any::<u8>(), 0..200)),
        body in body(),
    ) {
        let keys = ApiKeys::new([KEY]);
        let incoming = Incoming {
            signature: None,
            api_key: api_key.as_deref(),
            content_type: content_type.as_deref(),
            idempotency_key: idempotency_key.as_deref(),
            body: &body,
            query: None,
            request_id: "property",
            received_at: SystemTime::now(),
        };
        match keyed::prepare(source, &keys, &incoming) {
            Ok(record) => {
                let lead = &record.lead;
                prop_assert!(!lead.phone_number.is_empty());
                prop_assert_eq!(lead.phone_number.trim(), lead.phone_number.as_str());
                prop_assert!(!lead.name.trim().is_empty());
                // The archive is a JSON object PostgreSQL can hold.
                let archived: Value = serde_json::from_str(&record.payload).expect("archived JSON");
                prop_assert!(archived.is_object());
                prop_assert!(!record.payload.contains("\\u0000"));
                // Exactly one kind of id stands in for a missing one.
                let identity = &record.identity;
                prop_assert_eq!(
                    identity.body_hash.is_some(),
                    identity.partner_lead_id.is_none() && identity.idempotency_key.is_none()
                );
                for key in [&identity.partner_lead_id, &identity.idempotency_key].into_iter().flatten() {
                    prop_assert!(key.len() <= 7 + 64);
                }
            }
            Err(error) => {
                let text = format!("{error:?}");
                prop_assert!(contract_refusal(source, error), "{}", text);
            }
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// An app whose database never answers: port 9 on loopback (discard) refuses, fast.
fn app_without_database(source: &'static Source) -> App {
    let settings = StoreSettings {
        connect_timeout: Duration::from_millis(100),
        operation_timeout: Duration::from_millis(200),
        ..StoreSettings::default()
    };
    let options = PgConnectOptions::new_without_pgpass()
        .host("127.0.0.1")
        .port(9)
        .username("nobody");
    App::new(source, ApiKeys::new([KEY]), Store::new(options, settings))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn any_request_gets_a_json_contract_answer(
        source in any_source(),
        headers in prop::collection::vec(
            (
                prop_oneof![
                    Just("x-api-key".to_owned()),
                    Just("X-API-KEY".to_owned()),
                    Just("content-type".to_owned()),
                    Just("idempotency-key".to_owned()),
                    "[a-z][a-z0-9-]{0,12}",
                ],
                prop_oneof![
                    Just(KEY.as_bytes().to_vec()),
                    prop::collection::vec(any::<u8>(), 0..40),
                    "\\PC{0,30}".prop_map(String::into_bytes),
                ],
            ),
            0..6,
        ),
        body in body(),
    ) {
        let runtime = runtime();
        let _entered = runtime.enter();
        let app = app_without_database(source);
        let mut builder = lambda_http::http::Request::builder()
            .method("POST")
            .uri(source.route());
        for (name, value) in &headers {
            // What cannot be a header value cannot reach a function either.
            if let Ok(value) = lambda_http::http::HeaderValue::from_bytes(value) {
                builder = builder.header(name.as_str(), value);
            }
        }
        let request: Request = builder.body(Body::from(body.clone())).expect("request");
        let response = runtime.block_on(shared::edge::http::handle(&app, request));

        prop_assert_eq!(
            response.headers().get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/json; charset=utf-8")
        );
        let text = match response.body() {
            Body::Text(text) => text.clone(),
            other => panic!("a text body, not {other:?}"),
        };
        let answer: Value = serde_json::from_str(&text).expect("a JSON body");
        let status = response.status().as_u16();
        match status {
            // A valid lead, and a database that is not there.
            500 => prop_assert_eq!(&answer, &serde_json::json!({"error": "Internal server error"})),
            401 | 403 | 400 | 413 => {
                let message = answer["error"].as_str().expect("an error message");
                prop_assert!(
                    matches!(
                        message,
                        "Missing API key" | "Invalid API key" | "Payload too large" | "Invalid JSON payload"
                    ) || message.starts_with("Missing required fields: "),
                    "{}", message
                );
                prop_assert_eq!(answer.as_object().map(Map::len), Some(1));
            }
            other => prop_assert!(false, "status {} is not in the contract: {}", other, text),
        }
    }
}
