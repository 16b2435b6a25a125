//! `make bench-feed`: the leads feed's latency on a table of 100,000 leads, through the
//! feed's own handler (`shared::edge::dashboard::handle`: key check, query, JSON written) as
//! `lead_reader`, on a database of its own that it creates on the server `DATABASE_URL`
//! names, fills, measures and drops.
//!
//! Each round asks every query `--requests` times, the queries interleaved; a query's
//! figure is the median over the rounds of each round's p50 (nearest-rank, `tools/stats`),
//! with the rounds' range. It writes its table into `docs/performance.md` between its own
//! markers (`make bench` keeps that section when it writes the rest).

use std::time::{Duration, Instant};

use lambda_http::{Body, Request};
use shared::domain::auth::ApiKeys;
use shared::infra::secrets::DbCredentials;
use shared::infra::store::{Store, StoreSettings};
use shared::pipeline::feed::Feed;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor};
use stats::{Latencies, Spread};

const LEADS: i64 = 100_000;
const READER_KEY: &str = "feed-bench-reader-key";
const DOC: &str = "docs/performance.md";
const START: &str = "<!-- make bench-feed: start -->";
const END: &str = "<!-- make bench-feed: end -->";

type Failure = Box<dyn std::error::Error>;

/// A query the dashboard asks, and the most its p50 may take, if it has a target.
struct Case {
    name: &'static str,
    query: String,
    target_ms: Option<f64>,
}

fn main() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("bench-feed: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench-feed: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

struct Args {
    rounds: usize,
    requests: usize,
    doc: Option<String>,
}

fn args() -> Result<Args, Failure> {
    let mut args = Args {
        rounds: 7,
        requests: 200,
        doc: Some(DOC.to_owned()),
    };
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        let mut number = |name: &str| -> Result<usize, Failure> {
            Ok(given
                .next()
                .ok_or_else(|| format!("{name} needs a number"))?
                .parse()?)
        };
        match arg.as_str() {
            "--rounds" => args.rounds = number("--rounds")?.max(1),
            "--requests" => args.requests = number("--requests")?.max(1),
            "--no-doc" => args.doc = None,
            other => {
                return Err(format!(
                    "unknown argument {other} (--rounds N, --requests N, --no-doc)"
                )
                .into())
            }
        }
    }
    Ok(args)
}

async fn run() -> Result<(), Failure> {
    let args = args()?;
    let url = std::env::var("DATABASE_URL").map_err(|_| "set DATABASE_URL")?;
    let server: PgConnectOptions = url.parse()?;
    let name = format!("feed_bench_{}", std::process::id());
    let mut admin = server.connect().await?;
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await?;
    let result = measure(&args, server.clone().database(&name)).await;
    admin
        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await?;
    admin.close().await?;
    let (table, postgres) = result?;
    println!("{table}");
    if let Some(path) = &args.doc {
        write_doc(path, &section(&args, &table, &postgres))?;
        eprintln!("bench-feed: wrote {path}");
    }
    Ok(())
}

async fn measure(args: &Args, options: PgConnectOptions) -> Result<(String, String), Failure> {
    let settings = StoreSettings {
        statement_timeout: Duration::ZERO,
        operation_timeout: Duration::from_secs(600),
        ..StoreSettings::default()
    };
    let admin = Store::new(options.clone(), settings);
    admin.migrate().await?;
    let reader =
        DbCredentials::from_secret(r#"{"username":"lead_reader","password":"feed-bench"}"#)
            .map_err(|reason| reason.to_owned())?;
    admin.grant_login(&reader).await?;

    let mut connection = options.connect().await?;
    let postgres: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut connection)
        .await?;
    eprintln!("bench-feed: filling a table of {LEADS} leads");
    let started = Instant::now();
    sqlx::query(FILL)
        .bind(LEADS)
        .execute(&mut connection)
        .await?;
    connection
        .execute(r#"VACUUM ANALYZE public."mg-digital-leads""#)
        .await?;
    eprintln!(
        "bench-feed: filled in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let phone: String = sqlx::query_scalar(
        r#"SELECT phone_number FROM public."mg-digital-leads"
           WHERE phone_e164 IS NOT NULL GROUP BY phone_number
           ORDER BY count(*) DESC, phone_number LIMIT 1"#,
    )
    .fetch_one(&mut connection)
    .await?;
    connection.close().await?;

    let feed = Feed::new(
        ApiKeys::new([READER_KEY]),
        Store::new(
            options.username("lead_reader").password("feed-bench"),
            StoreSettings::default(),
        ),
    );
    // The cursor half-way through the walk, found by walking there.
    let mut cursor = String::new();
    for _ in 0..(LEADS / 2 / 500) {
        let page = call(&feed, &format!("limit=500&cursor={cursor}")).await?;
        cursor = page["next"]
            .as_str()
            .ok_or("the walk ended before half-way")?
            .to_owned();
    }
    let cases = [
        Case {
            name: "first page of 50",
            query: "limit=50".into(),
            target_ms: Some(10.0),
        },
        Case {
            name: "a page of 50 half-way through the walk (row 50,000)",
            query: format!("limit=50&cursor={cursor}"),
            target_ms: None,
        },
        Case {
            name: "`phone`: one person's leads, any source",
            query: format!("phone={}", phone.replace('+', "%2B").replace(' ', "%20")),
            target_ms: Some(10.0),
        },
        Case {
            name: "`search`: a surname (a page of 50 fills from the newest rows)",
            query: "search=iyer&limit=50".into(),
            target_ms: None,
        },
        Case {
            name: "`search`: digits few rows hold (every row is read)",
            query: "search=4242&limit=50".into(),
            target_ms: None,
        },
        Case {
            name: "`platform` and a month (`fromDate`, `toDate`)",
            query: "platform=Meta&fromDate=2026-06-01&toDate=2026-06-30&limit=50".into(),
            target_ms: None,
        },
    ];
    for case in &cases {
        for _ in 0..20 {
            call(&feed, &case.query).await?;
        }
    }
    let mut p50s: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for round in 0..args.rounds {
        eprintln!("bench-feed: round {} of {}", round + 1, args.rounds);
        for (index, case) in cases.iter().enumerate() {
            let mut samples = Vec::with_capacity(args.requests);
            for _ in 0..args.requests {
                let started = Instant::now();
                call(&feed, &case.query).await?;
                samples.push(started.elapsed());
            }
            p50s[index].push(Latencies::of(samples).p50.as_secs_f64() * 1000.0);
        }
    }

    let mut table = String::from(
        "| query | p50 (median of the rounds) | rounds' range | target |\n|---|---|---|---|\n",
    );
    for (case, values) in cases.iter().zip(p50s) {
        let spread = Spread::of(values).ok_or("no rounds")?;
        let target = match case.target_ms {
            Some(limit) if spread.median <= limit => format!("≤ {limit} ms: met"),
            Some(limit) => format!("≤ {limit} ms: **not met**"),
            None => "—".into(),
        };
        table.push_str(&format!(
            "| {} | {} | {}–{} | {} |\n",
            case.name,
            ms(spread.median),
            figure(spread.min),
            ms(spread.max),
            target
        ));
    }
    Ok((table, postgres))
}

/// One request through the feed's handler; its JSON page.
async fn call(feed: &Feed, query: &str) -> Result<serde_json::Value, Failure> {
    let request: Request = lambda_http::http::Request::builder()
        .method("GET")
        .uri(format!(
            "https://leads.example.com/admin/mg-digital-leads?{query}"
        ))
        .header("x-api-key", READER_KEY)
        .body(Body::Empty)?;
    let response = shared::edge::dashboard::handle(feed, request).await;
    let status = response.status();
    let body = match response.body() {
        Body::Text(text) => text.as_str(),
        _ => "",
    };
    if !status.is_success() {
        return Err(format!("{query}: {status} {body}").into());
    }
    Ok(serde_json::from_str(body)?)
}

fn ms(value: f64) -> String {
    format!("{} ms", figure(value))
}

/// Milliseconds to a hundredth below 10, a tenth above.
fn figure(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.1}")
    }
}

/// The leads: five platforms; names from ten first names and ten surnames; numbers of
/// 60,000 people (some send several leads, from several sources); a year of stored times,
/// a tenth of the rows from before `stored_at` (listed by `created_at`); a payload of the
/// size a partner's body has.
const FILL: &str = r#"
INSERT INTO public."mg-digital-leads"
    (platform, name, phone_number, phone_e164, car_model, lead_url, campaign, status,
     created_at, stored_at, payload)
SELECT
    (ARRAY['Knowlarity','CarDekho','CarWale','Meta','Google'])[1 + i % 5],
    (ARRAY['Ravi','Asha','Imran','Lakshmi','Deepa','Arjun','Meera','Vikram','Sneha','Rahul'])[1 + (i * 7) % 10]
        || ' ' ||
    (ARRAY['Kumar','Rao','Sheikh','Iyer','Nair','Shah','Singh','Patel','Das','Menon'])[1 + (i / 10) % 10],
    '9' || lpad(((i * 7919) % 60000)::text, 9, '0'),
    '+919' || lpad(((i * 7919) % 60000)::text, 9, '0'),
    (ARRAY['MG Hector','MG Astor','MG ZS EV','MG Comet EV','MG Windsor EV','MG Gloster'])[1 + i % 6],
    'https://dealer.example.com/leads/' || i,
    'Campaign ' || (i % 40),
    (ARRAY['new','contacted','qualified','lost'])[1 + (i / 3) % 4],
    t,
    CASE WHEN i % 10 = 0 THEN NULL ELSE t END,
    jsonb_build_object('id', i, 'source', 'bench', 'message', repeat('x', 300))
FROM generate_series(1, $1::int8) AS i,
     LATERAL (SELECT timestamptz '2026-11-30T18:30:00Z' - make_interval(secs => i * 315)) AS at(t)
"#;

fn section(args: &Args, table: &str, postgres: &str) -> String {
    let leads = "100,000";
    debug_assert_eq!(LEADS, 100_000);
    format!(
        "{START}
## The leads feed

Generated by `make bench-feed` (`tools/feed-bench`; not part of `make test`). It creates a
database of its own on the server `DATABASE_URL` names (a throwaway cluster when unset),
migrates it, fills the lead table with {leads} leads (five platforms, people with leads
from several sources, a year of stored times, a tenth of the rows from before
`stored_at`, payloads of a partner's size), runs `VACUUM ANALYZE`, and asks the feed's own
handler (`shared::edge::dashboard::handle`: the key check, the query as `lead_reader`, the JSON
page written) each query {requests} times per round, the queries interleaved, over
{rounds} rounds, on one connection, on this machine (PostgreSQL {postgres}). A figure is
the median of the rounds' p50s (nearest-rank, `tools/stats`); the range is the rounds'.
The database is dropped afterwards. The targets: the first page and a `phone` lookup at
most 10 ms p50.

{table}

The keyset pages and the `phone` lookup read the indexes on the listing time and id
(migrations `…_feed_indexes.sql`, `…_feed_phone_index.sql`), so a page deep in the walk
costs what the first does. A `search` is a substring match over five columns: it reads
rows newest first until a page is full, so a term that few rows hold reads the whole
table. A trigram index (`pg_trgm`) would serve such a search; it is not built yet.
{END}
",
        requests = args.requests,
        rounds = args.rounds,
        table = table.trim_end()
    )
}

/// Replaces this section of the document, or adds it at the end.
fn write_doc(path: &str, section: &str) -> Result<(), Failure> {
    let doc = std::fs::read_to_string(path).unwrap_or_default();
    let updated = match (doc.find(START), doc.find(END)) {
        (Some(start), Some(end)) if end > start => {
            let mut tail = &doc[end + END.len()..];
            tail = tail.strip_prefix('\n').unwrap_or(tail);
            format!("{}{section}{tail}", &doc[..start])
        }
        _ => {
            let separator = if doc.is_empty() || doc.ends_with("\n\n") {
                ""
            } else {
                "\n"
            };
            format!("{doc}{separator}{section}")
        }
    };
    std::fs::write(path, updated)?;
    Ok(())
}
