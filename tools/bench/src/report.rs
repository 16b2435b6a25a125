//! The results: a Markdown table for people (stdout), the whole performance document
//! around it (`docs/performance.md`), and the same figures as JSON.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use stats::Spread;

/// Where the numbers were taken.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub kernel: String,
    pub arch: String,
    pub memory_gib: f64,
    pub postgres: String,
    /// How the server commits (`fsync on, synchronous_commit on, …`).
    pub commits: String,
    /// The day of the run, UTC.
    pub date: String,
}

impl Machine {
    /// Reads /proc; `postgres` is the server's `server_version`.
    pub fn describe(postgres: String, commits: String) -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find(|line| line.starts_with("model name"))
            .and_then(|line| line.split_once(':'))
            .map_or_else(
                || "unknown CPU".to_owned(),
                |(_, name)| name.trim().to_owned(),
            );
        let kernel = format!(
            "{} {}",
            read("/proc/sys/kernel/ostype").trim(),
            read("/proc/sys/kernel/osrelease").trim()
        );
        let memory_kib: f64 = read("/proc/meminfo")
            .lines()
            .find(|line| line.starts_with("MemTotal:"))
            .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0.0);
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel,
            arch: std::env::consts::ARCH.to_owned(),
            memory_gib: memory_kib / (1024.0 * 1024.0),
            postgres,
            commits,
            date: today_utc(),
        }
    }

    pub fn line(&self) -> String {
        format!(
            "{} ({} cores), {} {}, {:.1} GiB RAM; PostgreSQL {} on 127.0.0.1 ({}); {}",
            self.cpu,
            self.cores,
            self.kernel,
            self.arch,
            self.memory_gib,
            self.postgres,
            self.commits,
            self.date
        )
    }
}

/// Whether a figure meets its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Met,
    Missed,
    /// The figure could not be measured.
    Unknown,
    /// No target: context for the others.
    Info,
}

/// One line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Metric {
    pub name: String,
    pub unit: String,
    /// Median (or the single value) and range; `None` when unavailable.
    pub value: Option<Spread>,
    /// The target, as printed (`≤ 15 ms`), empty when none.
    pub target: String,
    pub verdict: Verdict,
    /// Why the value is missing, or what it includes.
    pub note: String,
}

impl Metric {
    pub fn info(name: &str, unit: &str, value: Option<Spread>) -> Self {
        Self {
            name: name.to_owned(),
            unit: unit.to_owned(),
            value,
            target: String::new(),
            verdict: Verdict::Info,
            note: String::new(),
        }
    }

    /// A figure with an upper bound: met when its median is at most `limit`.
    pub fn at_most(name: &str, unit: &str, value: Option<Spread>, limit: f64) -> Self {
        let verdict = match value {
            Some(value) if value.median <= limit => Verdict::Met,
            Some(_) => Verdict::Missed,
            None => Verdict::Unknown,
        };
        Self {
            target: format!("≤ {}", with_unit_plain(limit, unit)),
            verdict,
            ..Self::info(name, unit, value)
        }
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }
}

/// The Markdown tables: the figures, headed by the machine and how the runs were made,
/// then `breakdown` (parts of one figure, no targets) after `breakdown_intro`.
pub fn markdown(
    machine: &Machine,
    setup: &str,
    metrics: &[Metric],
    breakdown_intro: &str,
    breakdown: &[Metric],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Measured by `make bench` on {}.", machine.line());
    let _ = writeln!(out, "{setup}");
    let _ = writeln!(out);
    let _ = writeln!(out, "| metric | median | min–max | target | met? |");
    let _ = writeln!(out, "|---|---:|---:|---|---|");
    for metric in metrics {
        let (name, median, range) = cells(metric);
        let verdict = match metric.verdict {
            Verdict::Met => "yes",
            Verdict::Missed => "**no**",
            Verdict::Unknown => "unknown",
            Verdict::Info => "",
        };
        let _ = writeln!(
            out,
            "| {name} | {median} | {range} | {} | {verdict} |",
            metric.target
        );
    }
    if !breakdown.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "{breakdown_intro}");
        let _ = writeln!(out);
        let _ = writeln!(out, "| part | median | min–max |");
        let _ = writeln!(out, "|---|---:|---:|");
        for part in breakdown {
            let (name, median, range) = cells(part);
            let _ = writeln!(out, "| {name} | {median} | {range} |");
        }
    }
    out
}

/// A metric's name (with its note), median and range, as printed.
fn cells(metric: &Metric) -> (String, String, String) {
    let (median, range) = match metric.value {
        Some(value) if value.min == value.max => {
            (with_unit(value.median, &metric.unit), "—".to_owned())
        }
        Some(value) => (
            with_unit(value.median, &metric.unit),
            format!(
                "{}–{}",
                number(value.min),
                with_unit(value.max, &metric.unit)
            ),
        ),
        None => ("unavailable".to_owned(), "—".to_owned()),
    };
    let name = if metric.note.is_empty() {
        metric.name.clone()
    } else {
        format!("{} ({})", metric.name, metric.note)
    };
    (name, median, range)
}

/// The performance document `make bench` writes whole: the prose around the run's own
/// tables and findings. Nothing in it is a figure typed by hand: every measurement comes
/// from `table` and `findings`, which the run produced.
pub fn performance_doc(command: &str, table: &str, findings: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{DOC_HEAD}");
    let _ = writeln!(out, "## This run\n");
    let _ = writeln!(out, "Generated by `{command}`.\n");
    let _ = writeln!(out, "{}\n", table.trim_end());
    let _ = writeln!(out, "## What it says\n");
    let _ = writeln!(out, "{}\n", findings.trim_end());
    let _ = write!(out, "{DOC_TAIL}");
    out
}

/// The section `make bench-feed` writes into the same document, between these markers;
/// `make bench` keeps it as it finds it when it writes the rest.
pub const FEED_BLOCK_START: &str = "<!-- make bench-feed: start -->";
pub const FEED_BLOCK_END: &str = "<!-- make bench-feed: end -->";

/// Where the blocks other commands write begin and end in the performance document: the
/// lead events' (`make bench-events`, shared/tests/lead_events.rs), the feed's (`make
/// bench-feed`, tools/feed-bench), the CRM hand-off's (`make bench-crm`) and speed to
/// lead's (`make bench-sla`, both shared/tests/crm.rs), not written by this run, so kept
/// as found.
const KEPT_BLOCKS: [(&str, &str); 4] = [
    ("<!-- lead-events: begin -->", "<!-- lead-events: end -->"),
    (FEED_BLOCK_START, FEED_BLOCK_END),
    ("<!-- crm-handoff: begin -->", "<!-- crm-handoff: end -->"),
    ("<!-- crm-sla: begin -->", "<!-- crm-sla: end -->"),
];

/// `doc` with the kept blocks of the document it replaces, those it had, in order.
pub fn keep_blocks(old: Option<&str>, mut doc: String) -> String {
    for (begin, end) in KEPT_BLOCKS {
        let block = old.and_then(|old| {
            let start = old.find(begin)?;
            let stop = old[start..].find(end)? + start + end.len();
            Some(&old[start..stop])
        });
        if let Some(block) = block {
            doc = format!("{}\n\n{block}\n", doc.trim_end());
        }
    }
    doc
}

/// Before the run's tables: what is measured, how, and how to run it.
const DOC_HEAD: &str = "\
# Performance

<!-- Written whole by `make bench` (tools/bench/src/report.rs): change the code that \
writes it, not this file. -->

For whoever asks how fast the functions are, and why. Every figure below comes from the
run this document was written by; the parameters it ran with are stated under
[This run](#this-run). To measure again, on a machine of your own: `make bench`.

## What is measured, and how

`make bench` (not part of `make test`) measures the release `knowlarity` bootstrap as
Lambda runs it. One command on a fresh machine: it builds the release binaries, starts a
throwaway PostgreSQL under `.local/pg-bench` when `DATABASE_URL` is unset (stopped by its
PID file afterwards) that **commits durably, as production does**: `fsync`,
`synchronous_commit` and `full_page_writes` on (`PG_DURABLE=1 scripts/pg.sh`; the other
throwaway clusters run with them off). A `DATABASE_URL` whose server does not commit
durably is refused. It installs cargo-lambda when missing, for the arm64 size, prints the
tables, and writes this file and, under `.local/bench/`, a copy of it and `results.json`
(every run, every figure). Most of its time goes to release builds (longer while other
builds hold Cargo's lock). A quick look, with too few samples for a table to keep, that
leaves this file alone:
`make bench BENCH_ARGS='--cold-runs 3 --warm-runs 3 --warmup 50 --invocations 500 --no-doc'`
(`cargo run -p bench -- --help` lists the options).

`tools/bench/` is a Rust implementation of the Lambda Runtime API on 127.0.0.1; the bench
spawns the bootstrap with `AWS_LAMBDA_RUNTIME_API` pointing at it, nothing else inherited,
and reads its stdout through a pipe as Lambda does. The event is an API Gateway REST (v1)
event, what the deployed REST API hands the functions. A warm latency is the time from the
event handed out on `/next` to the response fully received on `/response`. Every
invocation is a distinct lead (the event's `uuid`, `callid` and gateway request id are
numbered), so deduplication never short-cuts an insert. The **floor** is that insert
alone: the same store-once statement the function runs (`shared::tools::insert_query`,
the store's own first INSERT for a lead: its deduplication key under the unique index,
`ON CONFLICT DO NOTHING RETURNING id`; public only with `shared`'s `tools` feature), for a
row built by the function's own `shared::pipeline::keyed::prepare`, prepared once and run on one sqlx
connection with the function's session settings, no function. The **durable floor**
commits as the function does, waiting for its WAL to reach the disk; the **non-durable
floor** is the same with its session's `synchronous_commit = off`, so the two differ by
that wait. The target is warm p50 ≤ 1.3× the durable floor's p50. Every invocation is
followed by one INSERT of a floor, so the function and the floor it is compared with meet
the disk in the same state. `bench-baseline` is a **no-op bootstrap**: the same runtime
and logging as the functions, answering the same 201 without touching a database, once
through `lambda_runtime` alone and once through `lambda_http`. Each round runs, back to
back: the function as deployed, alternating with the durable floor; then, each
alternating with the non-durable floor, the function with its session at
`synchronous_commit = off` (where no wait for the disk hides what it adds), the same
without its log line, and both no-op bootstraps. Ratios and the parts of the breakdown
are taken within a round, and the tables give their medians over the rounds
(nearest-rank, as every percentile here: `tools/stats`).
";

/// After the run's findings: what the figures depend on, the tuning and what is left.
const DOC_TAIL: &str = "\
## What the figures depend on

The durable figures depend on the machine's disk more than on the code: a disk's flush
time can change many-fold from one minute to the next, and while it is long the function's
work hides entirely behind the wait. Hence the alternation of function and floor, the
rounds' min–max, and the non-durable lines, which measure what the function adds where no
wait for the disk hides it. On AWS the floor is a network round trip to RDS plus a durable
commit on its storage (not measured here); this bench does not claim what the ratio is
there.

## Tuning, and where it lives

- **Release profile** (root `Cargo.toml`): fat LTO, one codegen unit, `panic = \"abort\"`,
  stripped: the arm64 bootstrap size and the cold start in the table above.
- **Runtime** (`shared::edge::runtime`): tokio's current-thread runtime; Lambda hands a
  container one request at a time.
- **One connection per container, statements cached** (`shared::infra::store`): the store
  holds the container's one `PgConnection` itself: no pool, so no ping when it is
  returned, and no second round trip per request. sqlx prepares the INSERT once per
  connection and then only binds and executes it (every request sends `Bind` for the
  same named statement, never `Parse`); statement logging is off.
- **No TLS on loopback**: the throwaway cluster runs with `ssl=off`, so the connection is
  plain (sqlx's default `sslmode=prefer` costs one `SSLRequest` round trip when it
  connects, not per request). On AWS, `DB_SSLMODE=require`: the database is across the VPC.
- **Nothing built per request** but the request's own data: configuration and the key set
  are built once per container (`App`, an `Arc` of the key digests).
- **Logs** (`shared::edge::telemetry`): events only. `lambda_runtime` opens an info span around
  every invocation that no log line shows; recording it would be work on every request
  for nothing.
- **Lazy connect** (`shared::edge::http`, `serve`): measured both ways, connecting before the
  first `/next` made the function ready later and its first response no sooner, since a
  cold start's request is already waiting. Lazy also keeps a database that is down out of
  the start, and opens no connection for an environment Lambda initialises but never
  invokes.
- **Secrets Manager** (production, not in this bench, which sets `DATABASE_URL` and
  `API_KEYS`): `App::from_env` reads the API-key secret and the database credentials
  secret in `warm_up`, before the first `/next`, so they are part of the start, never of a
  warm request: two `GetSecretValue` calls over HTTPS to the VPC endpoint, on one TLS
  connection, bounded by 1 s connect and 2 s per call (a TLS handshake and two calls added
  to a cold start; not measured here). After `SECRETS_TTL_SECONDS` (300 s by default), the
  first request to find a secret stale reads it again on its own path: one call, within
  the same bounds.

## Not done yet

Reading the API Gateway event in place instead of through `lambda_http`'s full
`http::Request` would save most of `lambda_http`'s share of the breakdown, but the design
keeps `lambda_http`.
";

pub fn with_unit(value: f64, unit: &str) -> String {
    attach(number(value), unit)
}

/// A target as written in the issue: `15 ms`, `1.3×`.
fn with_unit_plain(value: f64, unit: &str) -> String {
    attach(value.to_string(), unit)
}

fn attach(value: String, unit: &str) -> String {
    match unit {
        "" => value,
        "×" => format!("{value}×"),
        _ => format!("{value} {unit}"),
    }
}

/// Three significant figures, no trailing noise: 0.412, 4.12, 41.2, 412, 4120.
pub fn number(value: f64) -> String {
    let magnitude = value.abs();
    let decimals = if magnitude >= 100.0 || magnitude == 0.0 {
        0
    } else if magnitude >= 10.0 {
        1
    } else if magnitude >= 1.0 {
        2
    } else {
        3
    };
    format!("{value:.decimals$}")
}

/// `YYYY-MM-DD` of now, UTC (days since the epoch → civil date, proleptic Gregorian).
fn today_utc() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() / 86_400);
    let (year, month, day) = civil_date(days as i64);
    format!("{year:04}-{month:02}-{day:02}")
}

fn civil_date(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        assert_eq!(civil_date(20_780), (2026, 11, 23));
    }

    #[test]
    fn the_performance_doc_holds_the_run_whole() {
        let doc = performance_doc(
            "make bench",
            "Measured by `make bench` on a machine.\n\n| metric | median |\n",
            "Warm p50 is 1.50× the durable floor.\n",
        );
        assert!(doc.starts_with("# Performance\n"));
        assert!(doc.contains(
            "## This run\n\nGenerated by `make bench`.\n\n\
             Measured by `make bench` on a machine.\n\n| metric | median |\n\n\
             ## What it says\n\nWarm p50 is 1.50× the durable floor.\n\n## What the figures"
        ));
        assert!(doc.ends_with("keeps `lambda_http`.\n"));
        // The prose around the run names no measurement of its own: every µs and ms in
        // the document is a bound the code sets, or the run's.
        let prose = format!("{DOC_HEAD}{DOC_TAIL}");
        assert!(!prose.contains("µs"));
        assert!(!prose.contains(" ms"));
        assert!(!prose.contains("MiB"));
    }

    #[test]
    fn the_feed_section_is_kept() {
        let doc = performance_doc("make bench", "| t |\n", "f\n");
        assert_eq!(keep_blocks(Some("# Performance\nold\n"), doc.clone()), doc);
        let block = format!("{FEED_BLOCK_START}\n## The leads feed\n| q |\n{FEED_BLOCK_END}");
        let kept = keep_blocks(Some(&format!("{doc}\n{block}\n")), doc.clone());
        assert!(kept.starts_with(doc.trim_end()));
        assert!(kept.ends_with(&format!("\n\n{block}\n")));
        assert_eq!(
            keep_blocks(Some(&kept), doc.clone()),
            kept,
            "kept once, however often"
        );
    }

    #[test]
    fn numbers_keep_three_figures() {
        assert_eq!(number(0.4123), "0.412");
        assert_eq!(number(4.123), "4.12");
        assert_eq!(number(41.23), "41.2");
        assert_eq!(number(412.3), "412");
        assert_eq!(number(15.0), "15.0");
    }

    #[test]
    fn table_rows_say_whether_targets_are_met() {
        let machine = Machine {
            cpu: "Test CPU".into(),
            cores: 2,
            kernel: "Linux 6.1".into(),
            arch: "x86_64".into(),
            memory_gib: 4.0,
            postgres: "16.4".into(),
            commits: "fsync on, synchronous_commit on".into(),
            date: "2026-11-23".into(),
        };
        let spread = |median, min, max| Some(Spread { median, min, max });
        let metrics = [
            Metric::at_most("cold start", "ms", spread(3.2, 2.9, 4.1), 15.0),
            Metric::at_most("ratio", "×", spread(1.31, 1.2, 1.4), 1.3),
            Metric::at_most("arm64 size", "MiB", None, 8.0).with_note("zig missing"),
            Metric::info("floor p50", "µs", spread(250.0, 250.0, 250.0)),
        ];
        let parts = [
            Metric::info("floor", "µs", spread(900.0, 850.0, 990.0)),
            Metric::info("log line", "µs", spread(-2.5, -4.0, 9.0)).with_note("a difference"),
        ];
        let table = markdown(&machine, "Runs: a few.", &metrics, "Where it goes:", &parts);
        assert!(table.starts_with(
            "Measured by `make bench` on Test CPU (2 cores), Linux 6.1 x86_64, 4.0 GiB RAM; \
             PostgreSQL 16.4 on 127.0.0.1 (fsync on, synchronous_commit on); 2026-11-23."
        ));
        assert!(table.contains("| cold start | 3.20 ms | 2.90–4.10 ms | ≤ 15 ms | yes |"));
        assert!(table.contains("| ratio | 1.31× | 1.20–1.40× | ≤ 1.3× | **no** |"));
        assert!(
            table.contains("| arm64 size (zig missing) | unavailable | — | ≤ 8 MiB | unknown |")
        );
        assert!(table.contains("| floor p50 | 250 µs | — |  |  |"));
        assert!(table.contains(
            "\n\nWhere it goes:\n\n| part | median | min–max |\n|---|---:|---:|\n\
             | floor | 900 µs | 850–990 µs |\n\
             | log line (a difference) | -2.50 µs | -4.00–9.00 µs |\n"
        ));
        let without = markdown(&machine, "Runs: a few.", &metrics, "Where it goes:", &[]);
        assert!(!without.contains("Where it goes"));
    }
}
