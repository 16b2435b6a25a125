//! The leads feed against a real PostgreSQL, read as `lead_reader` the way the deployed
//! function reads: its key (a partner's refused), every filter, one person across phone
//! formats and sources, the whole walk exactly once while leads arrive, CSV, CORS, the
//! response limit, the log line; and the two roles kept apart (the reader cannot write,
//! the writer cannot read names or phone numbers).

mod common;

use std::collections::HashSet;

use lambda_http::{Body, Request};
use serde_json::Value;
use shared::domain::auth::ApiKeys;
use shared::domain::source::{CARDEKHO, CARWALE, KNOWLARITY};
use shared::infra::secrets::DbCredentials;
use shared::infra::store::{Store, StoreSettings};
use shared::pipeline::feed::Feed;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tracing::level_filters::LevelFilter;

/// The development reader key, as `make dev` and events/feed use it.
const READER_KEY: &str = "local-dev-feed-key";
const DASHBOARD: &str = "https://dashboard.example.com";
const PATH: &str = "/admin/mg-digital-leads";

/// Lets `role` log in with `password`, as `migrate` does from the role's secret.
async fn login_as(options: &PgConnectOptions, role: &str, password: &str) -> PgConnectOptions {
    let admin = Store::new(options.clone(), StoreSettings::default());
    let credentials = DbCredentials::from_secret(&format!(
        r#"{{"username":"{role}","password":"{password}"}}"#
    ))
    .expect("credentials");
    admin.grant_login(&credentials).await.expect("grant login");
    options.clone().username(role).password(password)
}

/// The feed as deployed: its own keys, logged in as `lead_reader`.
async fn feed(options: &PgConnectOptions) -> Feed {
    let as_reader = login_as(options, "lead_reader", "reader-pw").await;
    Feed::new(
        ApiKeys::new([READER_KEY]),
        Store::new(as_reader, StoreSettings::default()),
    )
    .with_allowed_origins(vec![DASHBOARD.to_owned()])
}

fn get(query: &str, headers: &[(&str, &str)]) -> Request {
    let mut builder = lambda_http::http::Request::builder()
        .method("GET")
        .uri(format!("https://leads.example.com{PATH}?{query}"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::Empty).expect("a valid request")
}

struct Answer {
    status: u16,
    headers: lambda_http::http::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("JSON: {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    fn names(&self) -> Vec<String> {
        self.json()["leads"]
            .as_array()
            .expect("leads")
            .iter()
            .map(|lead| lead["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

async fn call(feed: &Feed, request: Request) -> Answer {
    let response = shared::edge::dashboard::handle(feed, request).await;
    let body = match response.body() {
        Body::Text(text) => text.clone(),
        Body::Empty => String::new(),
        other => panic!("a text body, got {other:?}"),
    };
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body,
    }
}

async fn list(feed: &Feed, query: &str) -> Answer {
    call(feed, get(query, &[("x-api-key", READER_KEY)])).await
}

/// A row written directly (as the CRM's table may hold it): `stored_at` None is a row
/// from before that column.
#[derive(Clone)]
struct Seed {
    platform: &'static str,
    name: String,
    phone: &'static str,
    phone_e164: Option<&'static str>,
    car_model: Option<&'static str>,
    campaign: Option<&'static str>,
    status: &'static str,
    created_at: String,
    stored_at: Option<String>,
}

fn seed(name: &str, stored_at: &str) -> Seed {
    Seed {
        platform: "CarDekho",
        name: name.to_owned(),
        phone: "9876500000",
        phone_e164: Some("+919876500000"),
        car_model: Some("MG Hector"),
        campaign: None,
        status: "new",
        created_at: stored_at.to_owned(),
        stored_at: Some(stored_at.to_owned()),
    }
}

async fn insert(pool: &PgPool, seed: &Seed) -> i64 {
    sqlx::query_scalar(
        r#"INSERT INTO public."mg-digital-leads"
             (platform, name, phone_number, phone_e164, car_model, campaign, status,
              created_at, stored_at, payload)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::timestamptz, $9::timestamptz,
                   jsonb_build_object('name', $2::text))
           RETURNING id"#,
    )
    .bind(seed.platform)
    .bind(&seed.name)
    .bind(seed.phone)
    .bind(seed.phone_e164)
    .bind(seed.car_model)
    .bind(seed.campaign)
    .bind(seed.status)
    .bind(&seed.created_at)
    .bind(seed.stored_at.as_deref())
    .fetch_one(pool)
    .await
    .expect("insert a seed row")
}

#[sqlx::test(migrations = "../migrations")]
async fn only_a_reader_key_reads(_: PgPoolOptions, options: PgConnectOptions) {
    let feed = feed(&options).await;
    let pool = common::pool(&options).await;
    insert(&pool, &seed("Asha Rao", "2026-01-10T10:00:00Z")).await;

    let missing = call(&feed, get("", &[])).await;
    assert_eq!(
        (missing.status, missing.body.as_str()),
        (401, r#"{"error":"Missing API key"}"#)
    );
    let blank = call(&feed, get("", &[("x-api-key", "  ")])).await;
    assert_eq!(blank.status, 401);
    // A partner's key writes, never reads.
    for key in [
        common::dev_key(&CARDEKHO),
        common::dev_key(&KNOWLARITY),
        "not-a-key".to_owned(),
    ] {
        let refused = call(&feed, get("", &[("x-api-key", &key)])).await;
        assert_eq!(
            (refused.status, refused.body.as_str()),
            (403, r#"{"error":"Invalid API key"}"#),
            "{key}"
        );
        assert!(!refused.body.contains("Asha"));
    }
    // The key is checked before a parameter is looked at.
    let bad_and_keyless = call(&feed, get("limit=0", &[])).await;
    assert_eq!(bad_and_keyless.status, 401);

    let read = list(&feed, "").await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(
        read.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(read.names(), ["Asha Rao"]);

    // A reader key writes nothing: the source functions know only their partners' keys.
    let app = common::app(&CARDEKHO, options.clone());
    let post = common::request(
        Some(READER_KEY),
        None,
        br#"{"name":"X","phone_number":"9876543210"}"#.to_vec(),
    );
    assert_eq!(common::call(&app, post).await.status, 403);
    assert_eq!(common::count(&pool).await, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn every_filter(_: PgPoolOptions, options: PgConnectOptions) {
    let feed = feed(&options).await;
    let pool = common::pool(&options).await;
    // 2026-01-10 in IST runs from 2026-01-09T18:30Z to 2026-01-10T18:30Z.
    let rows = [
        Seed {
            platform: "Knowlarity",
            campaign: Some("Diwali 50%_off"),
            ..seed("Before Midnight IST", "2026-01-09T18:29:59Z")
        },
        Seed {
            status: "contacted",
            car_model: Some("MG Windsor EV"),
            ..seed("First Of The Day", "2026-01-09T18:30:00Z")
        },
        Seed {
            platform: "Meta",
            phone: "+91 91234 56789",
            phone_e164: Some("+919123456789"),
            ..seed("Late On The Tenth", "2026-01-10T18:29:59.999999Z")
        },
        Seed {
            platform: "Google",
            campaign: Some("Diwali 50 off"),
            ..seed("Next Day", "2026-01-10T18:30:00Z")
        },
    ];
    for row in &rows {
        insert(&pool, row).await;
    }

    let names = |query: &'static str| {
        let feed = &feed;
        async move {
            let answer = list(feed, query).await;
            assert_eq!(answer.status, 200, "{query}: {}", answer.body);
            answer.names()
        }
    };
    assert_eq!(
        names("").await,
        [
            "Next Day",
            "Late On The Tenth",
            "First Of The Day",
            "Before Midnight IST"
        ]
    );
    assert_eq!(
        names("platform=Meta&platform=Google").await,
        ["Next Day", "Late On The Tenth"]
    );
    assert_eq!(
        names("platform=Knowlarity,Google").await,
        ["Next Day", "Before Midnight IST"]
    );
    assert_eq!(names("status=contacted").await, ["First Of The Day"]);
    assert_eq!(
        names("fromDate=2026-01-10&toDate=2026-01-10").await,
        ["Late On The Tenth", "First Of The Day"]
    );
    assert_eq!(
        names("fromDate=2026-01-10T00:00:00%2B05:30").await,
        ["Next Day", "Late On The Tenth", "First Of The Day"]
    );
    assert_eq!(
        names("toDate=2026-01-09T18:30:00Z").await,
        ["First Of The Day", "Before Midnight IST"]
    );
    // Case-insensitive, over name, phone, model and campaign; % and _ taken literally.
    assert_eq!(names("search=late%20on").await, ["Late On The Tenth"]);
    assert_eq!(names("search=91234").await, ["Late On The Tenth"]);
    assert_eq!(names("search=windsor").await, ["First Of The Day"]);
    assert_eq!(names("search=50%25_off").await, ["Before Midnight IST"]);
    assert_eq!(
        names("search=diwali").await,
        ["Next Day", "Before Midnight IST"]
    );
    assert_eq!(names("search=_").await, ["Before Midnight IST"]);
    assert_eq!(names("phone=09123456789").await, ["Late On The Tenth"]);
    assert_eq!(names("limit=2").await, ["Next Day", "Late On The Tenth"]);
    assert_eq!(
        names("platform=CarDekho&status=new&search=day").await,
        Vec::<String>::new()
    );

    // Each lead has its fields; the payload only when asked.
    let page = list(&feed, "phone=%2B919123456789").await.json();
    let lead = &page["leads"][0];
    for field in [
        "id",
        "platform",
        "name",
        "phone_number",
        "phone_e164",
        "car_model",
        "lead_url",
        "campaign",
        "status",
        "created_at",
        "stored_at",
        "meta_created_at",
    ] {
        assert!(lead.get(field).is_some(), "no {field} in {lead}");
    }
    assert_eq!(lead["phone_number"], "+91 91234 56789");
    assert_eq!(lead["stored_at"], "2026-01-10T18:29:59.999Z");
    assert!(lead.get("payload").is_none(), "{lead}");
    assert_eq!(page["next"], Value::Null);
    let with_payload = list(&feed, "phone=9123456789&include=payload").await.json();
    assert_eq!(
        with_payload["leads"][0]["payload"],
        serde_json::json!({"name": "Late On The Tenth"})
    );

    for (query, parameter) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("fromDate=10-01-2026", "fromDate"),
        ("toDate=yesterday", "toDate"),
        ("fromDate=2026-01-11&toDate=2026-01-10", "fromDate"),
        ("phone=12345", "phone"),
        ("cursor=abc", "cursor"),
        ("include=everything", "include"),
        ("format=xlsx", "format"),
        ("platfrom=Meta", "platfrom"),
    ] {
        let answer = list(&feed, query).await;
        assert_eq!(answer.status, 400, "{query}");
        let error = answer.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(error.starts_with(parameter), "{query}: {error}");
    }
}

/// One person's enquiries from every source, whichever way each wrote the number and
/// whichever way the dashboard asks.
#[sqlx::test(migrations = "../migrations")]
async fn one_person_across_formats_and_sources(_: PgPoolOptions, options: PgConnectOptions) {
    let feed = feed(&options).await;
    for (source, body) in [
        (
            &CARDEKHO,
            r#"{"name":"Ravi Kumar","phone_number":"09876543210"}"#,
        ),
        (
            &KNOWLARITY,
            r#"{"caller_id":"+91 98765 43210","caller_name":"Ravi K"}"#,
        ),
        (
            &CARWALE,
            r#"{"customer_name":"R Kumar","mobile":"919876543210"}"#,
        ),
        (
            &CARDEKHO,
            r#"{"name":"Someone Else","phone_number":"9876543211"}"#,
        ),
    ] {
        let app = common::app(source, options.clone());
        let request = common::request(
            Some(&common::dev_key(source)),
            None,
            body.as_bytes().to_vec(),
        );
        assert_eq!(common::call(&app, request).await.status, 201, "{body}");
    }
    for phone in [
        "09876543210",
        "%2B91%2098765%2043210",
        "919876543210",
        "9876543210",
    ] {
        let answer = list(&feed, &format!("phone={phone}")).await;
        assert_eq!(answer.status, 200, "{phone}: {}", answer.body);
        assert_eq!(
            answer.names(),
            ["R Kumar", "Ravi K", "Ravi Kumar"],
            "{phone}"
        );
        let platforms: Vec<Value> = answer.json()["leads"]
            .as_array()
            .expect("leads")
            .iter()
            .map(|lead| lead["platform"].clone())
            .collect();
        assert_eq!(platforms, ["CarWale", "Knowlarity", "CarDekho"]);
    }
}

/// Walking `next` to the end gives every row that was there exactly once, while new
/// leads keep arriving (they are newer, so they are before the walk's first page), and
/// however many rows share a time, and rows from before `stored_at` existed included.
#[sqlx::test(migrations = "../migrations")]
async fn the_whole_walk_exactly_once_while_leads_arrive(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let feed = feed(&options).await;
    let pool = common::pool(&options).await;
    let mut expected = HashSet::new();
    for index in 0..600 {
        // Many rows per instant: the id breaks the ties.
        let at = format!("2026-01-{:02}T10:00:00Z", 1 + index / 40);
        let mut row = seed(&format!("Lead {index}"), &at);
        if index % 7 == 0 {
            row.stored_at = None;
        }
        expected.insert(insert(&pool, &row).await);
    }

    let arriving = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut added = 0;
            for index in 0..200 {
                let row = Seed {
                    stored_at: None,
                    ..seed(&format!("New {index}"), "2026-06-01T00:00:00Z")
                };
                // Stored now, as a function stores it.
                sqlx::query(
                    r#"INSERT INTO public."mg-digital-leads" (platform, name, phone_number)
                       VALUES ('Google', $1, '9876500001')"#,
                )
                .bind(&row.name)
                .execute(&pool)
                .await
                .expect("a lead arriving");
                added += 1;
                tokio::task::yield_now().await;
            }
            added
        })
    };

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    let mut arrived_during_walk = Vec::new();
    loop {
        let query = match &cursor {
            Some(cursor) => format!("limit=37&cursor={cursor}"),
            None => "limit=37".to_owned(),
        };
        let page = list(&feed, &query).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let page = page.json();
        for lead in page["leads"].as_array().expect("leads") {
            seen.push(lead["id"].as_i64().expect("an id"));
        }
        pages += 1;
        arrived_during_walk.push(common::count(&pool).await);
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        tokio::task::yield_now().await;
    }
    // The walk and the arrivals did overlap.
    assert!(
        arrived_during_walk.first() < arrived_during_walk.last(),
        "{arrived_during_walk:?}"
    );
    let added = arriving.await.expect("the inserts finish");
    assert_eq!(added, 200);
    let unique: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "a row came twice");
    assert!(
        expected.is_subset(&unique),
        "{} rows missing",
        expected.difference(&unique).count()
    );
    assert!(pages >= 600 / 37, "{pages} pages");
}

#[sqlx::test(migrations = "../migrations")]
async fn csv_quotes_neutralises_and_links_the_next_page(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let feed = feed(&options).await;
    let pool = common::pool(&options).await;
    insert(
        &pool,
        &Seed {
            car_model: Some("=HYPERLINK(\"http://evil.example\",\"MG\")"),
            campaign: Some("Diwali, \"big\" sale\nday two"),
            ..seed("@Ravi", "2026-01-10T10:00:00Z")
        },
    )
    .await;
    insert(
        &pool,
        &Seed {
            phone: "+91 98765 00000",
            ..seed("-Minus", "2026-01-10T11:00:00Z")
        },
    )
    .await;

    let answer = call(
        &feed,
        get(
            "limit=1",
            &[("x-api-key", READER_KEY), ("accept", "text/csv")],
        ),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.header("content-type"),
        Some("text/csv; charset=utf-8")
    );
    let mut lines = answer.body.split("\r\n");
    assert_eq!(
        lines.next(),
        Some("\"id\",\"platform\",\"name\",\"phone_number\",\"phone_e164\",\"car_model\",\"lead_url\",\"campaign\",\"status\",\"created_at\",\"stored_at\",\"meta_created_at\"")
    );
    let first = lines.next().expect("a row");
    assert!(
        first.contains(
            ",\"'-Minus\",\"'+91 98765 00000\",\"'+919876500000\",\"MG Hector\",\"\",\"\",\"new\","
        ),
        "{first}"
    );
    let link = answer.header("link").expect("a Link to the next page");
    assert!(link.starts_with("<?limit=1&cursor="), "{link}");
    assert!(link.ends_with(">; rel=\"next\""), "{link}");
    let next = link
        .trim_start_matches('<')
        .split_once('>')
        .map(|(url, _)| url.split_once('?').expect("a query").1.to_owned())
        .expect("a URL");

    let second = call(
        &feed,
        get(&format!("{next}&format=csv"), &[("x-api-key", READER_KEY)]),
    )
    .await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert!(second.header("link").is_none());
    let row = second.body.split_once("\r\n").expect("a header").1;
    assert!(
        row.contains(
            ",\"'@Ravi\",\"9876500000\",\"'+919876500000\",\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"MG\"\")\",\"\",\"Diwali, \"\"big\"\" sale\nday two\",\"new\","
        ),
        "{row}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn cors_only_for_the_listed_origins(_: PgPoolOptions, options: PgConnectOptions) {
    let feed = feed(&options).await;
    let allowed = call(
        &feed,
        get("", &[("x-api-key", READER_KEY), ("origin", DASHBOARD)]),
    )
    .await;
    assert_eq!(allowed.status, 200);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some(DASHBOARD)
    );
    assert_eq!(allowed.header("vary"), Some("Origin"));
    // A refusal carries it too, so the dashboard can read the 401/403.
    let refused = call(&feed, get("", &[("origin", DASHBOARD)])).await;
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.header("access-control-allow-origin"),
        Some(DASHBOARD)
    );

    let stranger = call(
        &feed,
        get(
            "",
            &[
                ("x-api-key", READER_KEY),
                ("origin", "https://evil.example"),
            ],
        ),
    )
    .await;
    assert_eq!(stranger.header("access-control-allow-origin"), None);

    let preflight = |origin: &'static str| {
        lambda_http::http::Request::builder()
            .method("OPTIONS")
            .uri(format!("https://leads.example.com{PATH}"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "x-api-key")
            .body(Body::Empty)
            .expect("a valid request")
    };
    let ok = call(&feed, preflight(DASHBOARD)).await;
    assert_eq!(ok.status, 204);
    assert_eq!(ok.header("access-control-allow-origin"), Some(DASHBOARD));
    assert_eq!(
        ok.header("access-control-allow-methods"),
        Some("GET, OPTIONS")
    );
    assert!(ok
        .header("access-control-allow-headers")
        .is_some_and(|headers| headers.to_ascii_lowercase().contains("x-api-key")));
    let no = call(&feed, preflight("https://evil.example")).await;
    assert_eq!(no.header("access-control-allow-origin"), None);
    assert_eq!(no.header("access-control-allow-methods"), None);
    for answer in [&allowed, &refused, &stranger, &ok, &no] {
        assert_ne!(answer.header("access-control-allow-origin"), Some("*"));
    }
}

/// A page whose rows would not fit the response stops early with a `next`, and the walk
/// still gives every row once.
#[sqlx::test(migrations = "../migrations")]
async fn a_page_stops_before_the_response_limit(_: PgPoolOptions, options: PgConnectOptions) {
    let budget = 2_000;
    let feed = feed(&options).await.with_body_budget(budget);
    let pool = common::pool(&options).await;
    for index in 0..30 {
        insert(
            &pool,
            &seed(
                &format!("Lead {index}"),
                &format!("2026-01-10T10:{index:02}:00Z"),
            ),
        )
        .await;
    }
    let mut names = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let answer = list(&feed, &format!("limit=500&include=payload&cursor={cursor}")).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(
            serde_json::to_string(&answer.body).expect("JSON").len() <= budget,
            "{} bytes",
            answer.body.len()
        );
        names.extend(answer.names());
        pages += 1;
        match answer.json()["next"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert!(pages > 3, "{pages}");
    assert_eq!(names.len(), 30);
    assert_eq!(names.iter().collect::<HashSet<_>>().len(), 30);
}

/// One line per request: the key by fingerprint, the filters with the phone masked, the
/// row count and the latency; never the key, the number or a name.
#[sqlx::test(migrations = "../migrations")]
async fn one_log_line_without_anything_personal(_: PgPoolOptions, options: PgConnectOptions) {
    let feed = feed(&options).await;
    let pool = common::pool(&options).await;
    insert(&pool, &seed("Asha Rao", "2026-01-10T10:00:00Z")).await;
    let captured = common::Captured::default();
    let _installed = captured.install(LevelFilter::TRACE);

    assert_eq!(
        list(&feed, "phone=09876500000&platform=CarDekho")
            .await
            .status,
        200
    );
    assert_eq!(
        call(&feed, get("", &[("x-api-key", "wrong")])).await.status,
        403
    );
    assert_eq!(list(&feed, "limit=0").await.status, 400);

    let lines = captured.lines();
    assert_eq!(lines.len(), 3, "{lines:?}");
    let first = &lines[0];
    assert_eq!(first["source"], "feed");
    assert_eq!(first["outcome"], "listed");
    assert_eq!(first["rows"], 1);
    assert_eq!(first["phone"], "*******0000");
    assert_eq!(first["platforms"], "CarDekho");
    assert!(first["latency_ms"].as_f64().is_some(), "{first}");
    // `printf %s local-dev-feed-key | sha256sum | cut -c1-8`
    let fingerprint = ApiKeys::new([READER_KEY])
        .check(Some(READER_KEY.as_bytes()))
        .expect("the key")
        .to_string();
    assert_eq!(first["key"], fingerprint.as_str());
    assert_eq!(lines[1]["outcome"], "invalid_api_key");
    assert!(lines[1].get("key").is_none());
    assert_eq!(lines[2]["outcome"], "invalid_parameter");
    let all = captured.text();
    for secret in [READER_KEY, "wrong", "9876500000", "Asha"] {
        assert!(!all.contains(secret), "log holds {secret}: {all}");
    }
}

/// The reader reads and cannot write; the writer writes and cannot read a name or a
/// phone number.
#[sqlx::test(migrations = "../migrations")]
async fn the_reader_cannot_write_and_the_writer_cannot_read(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let pool = common::pool(&options).await;
    let id = insert(&pool, &seed("Asha Rao", "2026-01-10T10:00:00Z")).await;
    let reader = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(login_as(&options, "lead_reader", "reader-pw").await)
        .await
        .expect("the reader logs in");
    let name: String =
        sqlx::query_scalar(r#"SELECT name FROM public."mg-digital-leads" WHERE id = $1"#)
            .bind(id)
            .fetch_one(&reader)
            .await
            .expect("the reader reads");
    assert_eq!(name, "Asha Rao");
    for statement in [
        r#"INSERT INTO public."mg-digital-leads" (platform, name) VALUES ('X', 'Y')"#,
        r#"UPDATE public."mg-digital-leads" SET status = 'lost'"#,
        r#"DELETE FROM public."mg-digital-leads""#,
        r#"TRUNCATE public."mg-digital-leads""#,
        "SELECT * FROM public.lead_sync_watermarks",
    ] {
        let error = sqlx::query(statement)
            .execute(&reader)
            .await
            .expect_err(statement);
        assert_eq!(
            common::sqlstate(&error).as_deref(),
            Some("42501"),
            "{statement}: {error}"
        );
    }

    let writer = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(login_as(&options, "lead_writer", "writer-pw").await)
        .await
        .expect("the writer logs in");
    for column in ["name", "phone_number", "phone_e164", "payload", "*"] {
        let statement = format!(r#"SELECT {column} FROM public."mg-digital-leads""#);
        let error = sqlx::query(&statement)
            .execute(&writer)
            .await
            .expect_err(&statement);
        assert_eq!(
            common::sqlstate(&error).as_deref(),
            Some("42501"),
            "{statement}: {error}"
        );
    }
    assert_eq!(common::count(&pool).await, 1);
}

/// A date or cursor the database cannot hold answers 400 naming the parameter (never a
/// 500 logged as the database's refusal), and no stored time, however absurd, fails a
/// page: a time past the year 9999, written before times were checked, reads as none.
#[sqlx::test(migrations = "../migrations")]
async fn no_date_and_no_stored_time_fails_the_feed(_: PgPoolOptions, options: PgConnectOptions) {
    let feed = feed(&options).await;
    let pool = common::pool(&options).await;
    let id = insert(&pool, &seed("Asha Rao", "2026-01-10T10:00:00Z")).await;
    sqlx::query(
        r#"UPDATE public."mg-digital-leads"
           SET meta_created_at = to_timestamp(9223372036855) WHERE id = $1"#,
    )
    .bind(id)
    .execute(&pool)
    .await
    .expect("a time of the year 294247");
    let page = list(&feed, "").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.names(), ["Asha Rao"]);
    assert_eq!(page.json()["leads"][0]["meta_created_at"], Value::Null);

    let crafted = {
        use base64::Engine;
        let mut bytes = vec![1u8];
        bytes.extend_from_slice(&i64::MAX.to_be_bytes());
        bytes.extend_from_slice(&1i64.to_be_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    };
    for (query, parameter) in [
        ("fromDate=0001-01-01", "fromDate"),
        ("fromDate=%2B99999-01-01", "fromDate"),
        ("toDate=%2B99999-01-01", "toDate"),
        (&format!("cursor={crafted}") as &str, "cursor"),
    ] {
        let answer = list(&feed, query).await;
        assert_eq!(answer.status, 400, "{query}: {}", answer.body);
        let error = answer.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(error.starts_with(parameter), "{query}: {error}");
    }
    // An unknown parameter is named cut short, its digits masked.
    let answer = list(&feed, "9876543210=1").await;
    assert_eq!(answer.status, 400);
    assert!(!answer.body.contains("9876543210"), "{}", answer.body);
    assert!(answer.body.contains("**********"), "{}", answer.body);
}

/// A legacy table whose `id` is text (the store takes it): listed, walked page by page
/// with text cursors, each row once; a numeric cursor is not one this table's feed gave.
#[sqlx::test(migrations = false)]
async fn a_legacy_table_with_text_ids_is_walked(_: PgPoolOptions, options: PgConnectOptions) {
    let pool = common::pool(&options).await;
    sqlx::raw_sql(
        r#"CREATE TABLE public."mg-digital-leads" (
               id text PRIMARY KEY DEFAULT gen_random_uuid()::text,
               created_at timestamptz DEFAULT now(),
               platform text, name text, phone_number text, car_model text,
               lead_url text, payload jsonb, status text, meta_created_at timestamptz
           )"#,
    )
    .execute(&pool)
    .await
    .expect("the legacy table");
    sqlx::migrate!("../migrations")
        .run(&pool)
        .await
        .expect("migrate onto it");
    for (id, name) in [("007", "Zero Seven"), ("7", "Seven"), ("a-uuid", "Uuid")] {
        sqlx::query(
            r#"INSERT INTO public."mg-digital-leads" (id, platform, name, phone_number, stored_at)
               VALUES ($1, 'CarDekho', $2, '9876500000', '2026-01-10T10:00:00Z')"#,
        )
        .bind(id)
        .bind(name)
        .execute(&pool)
        .await
        .expect("a legacy row");
    }
    let feed = feed(&options).await;
    let mut names = Vec::new();
    let mut query = "limit=1".to_owned();
    loop {
        let page = list(&feed, &query).await;
        assert_eq!(page.status, 200, "{query}: {}", page.body);
        let lead = &page.json()["leads"][0];
        assert!(lead["id"].is_string(), "a text id stays text: {lead}");
        names.extend(page.names());
        match page.json()["next"].as_str() {
            Some(next) => query = format!("limit=1&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(
        names,
        ["Uuid", "Seven", "Zero Seven"],
        "by id, descending, as text"
    );

    let numeric = shared::domain::listing::Cursor {
        listed_at_us: 0,
        id: shared::domain::lead::record::RowId::Number(7),
    };
    let answer = list(&feed, &format!("cursor={}", numeric.encode())).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
}
