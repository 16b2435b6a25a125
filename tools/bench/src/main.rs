//! `make bench`: the `knowlarity` release bootstrap driven exactly as Lambda drives it
//! (a local Runtime API, `AWS_LAMBDA_RUNTIME_API`), against a throwaway PostgreSQL and
//! against the database floor: the same INSERT on one loopback connection, no function.
//!
//! Each round measures, back to back: the function (at the production log level, one
//! JSON line per request), the function without its log line, a no-op bootstrap through
//! `lambda_runtime` alone (the Runtime API round trip every Lambda function pays), the same
//! through `lambda_http`, and the floor. Ratios are taken within a round, so a noisy
//! machine shifts both sides of each.
//!
//! Prints a Markdown table and writes it, with a JSON copy, under `.local/bench/`.
//! `tools/bench/run.sh` builds what it measures; run it through `make bench`.

mod function;
mod measure;
mod report;
mod runtime_api;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use product::Leads;
use serde::Serialize;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};
use stats::Spread;

use crate::function::{EventTemplate, Spec};
use crate::measure::{ColdStart, LatencyRun, RunSize};
use crate::report::{Machine, Metric};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

const FUNCTION: &str = "knowlarity";
const CREATED: &str = "Knowlarity lead inserted successfully";

/// template.yaml's `LogLevel` default: each request leaves one JSON line.
const PRODUCTION_LOG_LEVEL: &str = "info";

const USAGE: &str = "\
usage: bench [options]            (DATABASE_URL must name a migrated database)
  --bootstrap PATH          the release bootstrap to drive [target/release/knowlarity]
  --baseline PATH           the no-op bootstrap [target/release/bench-baseline]
  --event PATH              the API Gateway event [events/knowlarity/call-webhook.json]
  --arm64-bootstrap PATH    the `cargo lambda build --release --arm64` bootstrap, to size
  --arm64-unavailable WHY   or why there is none
  --cold-runs N             cold starts [15]
  --warm-runs N             rounds of warm runs (function, function without its log
                            line, no-op runtime, no-op lambda_http, floor) [5]
  --warmup N                untimed invocations (and INSERTs) per run [200]
  --invocations N           timed invocations (and INSERTs) per run [5000]
  --out DIR                 where results.json and README-performance.md go [.local/bench]
  --readme PATH             whose Performance table to replace [README.md]
  --no-readme               leave the README alone
  --function-log FILE       append the function's stdout/stderr to FILE (default: discarded)
  --keep-rows               keep the rows the bench inserted (default: deleted at the end)";

#[derive(Debug)]
struct Args {
    bootstrap: PathBuf,
    baseline: PathBuf,
    event: PathBuf,
    arm64: Result<PathBuf, String>,
    cold_runs: usize,
    warm_runs: usize,
    size: RunSize,
    out: PathBuf,
    readme: Option<PathBuf>,
    function_log: Option<PathBuf>,
    keep_rows: bool,
}

impl Args {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut parsed = Self {
            bootstrap: root.join("target/release").join(FUNCTION),
            baseline: root.join("target/release/bench-baseline"),
            event: root.join("events").join(FUNCTION).join("call-webhook.json"),
            arm64: Err("not built (pass --arm64-bootstrap; `make bench` does)".to_owned()),
            cold_runs: 15,
            warm_runs: 5,
            size: RunSize {
                warmup: 200,
                measured: 5000,
            },
            out: root.join(".local/bench"),
            readme: Some(root.join("README.md")),
            function_log: None,
            keep_rows: false,
        };
        while let Some(flag) = args.next() {
            if flag == "--keep-rows" {
                parsed.keep_rows = true;
                continue;
            }
            if flag == "--no-readme" {
                parsed.readme = None;
                continue;
            }
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let count = || {
                value
                    .parse::<usize>()
                    .map_err(|_| format!("{flag} takes a number, not {value:?}"))
            };
            match flag.as_str() {
                "--bootstrap" => parsed.bootstrap = value.into(),
                "--baseline" => parsed.baseline = value.into(),
                "--event" => parsed.event = value.into(),
                "--arm64-bootstrap" => parsed.arm64 = Ok(value.into()),
                "--arm64-unavailable" => parsed.arm64 = Err(value),
                "--cold-runs" => parsed.cold_runs = count()?,
                "--warm-runs" => parsed.warm_runs = count()?,
                "--warmup" => parsed.size.warmup = count()?,
                "--invocations" => parsed.size.measured = count()?,
                "--out" => parsed.out = value.into(),
                "--readme" => parsed.readme = Some(value.into()),
                "--function-log" => parsed.function_log = Some(value.into()),
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        if parsed.cold_runs == 0 || parsed.warm_runs == 0 || parsed.size.measured == 0 {
            return Err("--cold-runs, --warm-runs and --invocations must be at least 1".into());
        }
        Ok(parsed)
    }
}

fn main() -> ExitCode {
    if std::env::args().any(|arg| arg == "--help" || arg == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("bench: {error}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // One thread: the bench shares the machine with the function and PostgreSQL, and
    // the timestamps it takes are all it has to do quickly.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for the bench");
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Everything the JSON copy holds.
#[derive(Serialize)]
struct Results<'a> {
    machine: &'a Machine,
    setup: Setup<'a>,
    metrics: &'a [Metric],
    cold_starts: &'a [ColdStart],
    rounds: &'a [Round],
    sizes: Sizes,
    rows_checked: usize,
}

#[derive(Serialize)]
struct Setup<'a> {
    function: &'a str,
    bootstrap: String,
    baseline: String,
    event: String,
    cold_runs: usize,
    warm_runs: usize,
    run_size: RunSize,
    log_level: &'a str,
    memory_size_mb: u32,
}

#[derive(Serialize)]
struct Sizes {
    arm64_bytes: Option<u64>,
    arm64_unavailable: Option<String>,
    x86_64_bytes: u64,
}

/// One round of warm runs, taken back to back.
#[derive(Serialize)]
struct Round {
    /// The function at the production log level.
    function: LatencyRun,
    /// The function with `LOG_LEVEL=warn`: no line per request.
    function_without_log_line: LatencyRun,
    /// `bench-baseline`, `lambda_runtime` alone: the Runtime API round trip.
    runtime_noop: LatencyRun,
    /// `bench-baseline` through `lambda_http`.
    lambda_http_noop: LatencyRun,
    /// The INSERT on one connection, no function.
    floor: LatencyRun,
}

impl Round {
    fn p50_ratio(&self) -> f64 {
        self.function.p50_us / self.floor.p50_us
    }

    fn p99_ratio(&self) -> f64 {
        self.function.p99_us / self.floor.p99_us
    }

    /// What the function adds to the two costs no function can avoid: the Runtime API
    /// round trip and the database round trip.
    fn own_p50_us(&self) -> f64 {
        self.function.p50_us - self.runtime_noop.p50_us - self.floor.p50_us
    }

    fn ratio_to_unavoidable(&self) -> f64 {
        self.function.p50_us / (self.runtime_noop.p50_us + self.floor.p50_us)
    }
}

async fn run(args: Args) -> Result<(), Error> {
    let database_url = std::env::var("DATABASE_URL")
        .map_err(|_| "set DATABASE_URL (make bench starts a throwaway database)")?;
    // The floor's session is the function's: same statement timeout, same driver.
    let options = PgConnectOptions::from_str(&database_url)?
        .application_name("lead-ingestion-bench")
        .options([("statement_timeout", "3000")])
        .disable_statement_logging();
    let postgres = server_version(&options).await?;
    let machine = Machine::describe(postgres);
    let events = EventTemplate::load(&args.event)?;
    function::start_sequence_from_clock();
    let spec = Spec {
        name: FUNCTION.to_owned(),
        bootstrap: args.bootstrap.clone(),
        database_url,
        log_level: PRODUCTION_LOG_LEVEL.to_owned(),
        log_file: args.function_log.clone(),
        env: Vec::new(),
    };
    let quiet = Spec {
        log_level: "warn".to_owned(),
        ..spec.clone()
    };
    let baseline = |mode: &str| Spec {
        bootstrap: args.baseline.clone(),
        env: vec![("BENCH_BASELINE".to_owned(), mode.to_owned())],
        ..spec.clone()
    };
    let (runtime_noop, http_noop) = (baseline("runtime"), baseline("http"));
    let x86_64_bytes = file_size(&args.bootstrap)?;
    file_size(&args.baseline)?;
    eprintln!("bench: {}", machine.line());

    let mut cold = Vec::with_capacity(args.cold_runs);
    for n in 1..=args.cold_runs {
        let start = measure::cold_start(&spec, &events, CREATED).await?;
        eprintln!(
            "cold start {n}/{}: ready {:.2} ms, first response {:.2} ms",
            args.cold_runs, start.ready_ms, start.first_response_ms
        );
        cold.push(start);
    }

    let floor_leads = Leads::new(FUNCTION, function::API_KEY, events.content_type())?;
    let mut rounds = Vec::with_capacity(args.warm_runs);
    for n in 1..=args.warm_runs {
        let function = measure::warm_run(&spec, &events, CREATED, args.size).await?;
        let function_without_log_line =
            measure::warm_run(&quiet, &events, CREATED, args.size).await?;
        let runtime_noop = measure::warm_run(&runtime_noop, &events, CREATED, args.size).await?;
        let lambda_http_noop = measure::warm_run(&http_noop, &events, CREATED, args.size).await?;
        let floor = measure::floor_run(&options, &floor_leads, &events, args.size).await?;
        let round = Round {
            function,
            function_without_log_line,
            runtime_noop,
            lambda_http_noop,
            floor,
        };
        eprintln!(
            "warm round {n}/{}: function p50 {:.0} µs p99 {:.0} µs (without its log line p50 {:.0} µs) \
             | floor p50 {:.0} µs p99 {:.0} µs | no-op: runtime p50 {:.0} µs, lambda_http p50 {:.0} µs \
             | ratio {:.2}×, own {:.0} µs",
            args.warm_runs,
            round.function.p50_us,
            round.function.p99_us,
            round.function_without_log_line.p50_us,
            round.floor.p50_us,
            round.floor.p99_us,
            round.runtime_noop.p50_us,
            round.lambda_http_noop.p50_us,
            round.p50_ratio(),
            round.own_p50_us(),
        );
        rounds.push(round);
    }

    // A benchmark that measured errors would be worthless: every answer was checked to
    // be the 201, and now every id it named must be a distinct stored row. (The no-op
    // bootstraps store nothing.)
    let function_ids: Vec<String> = cold
        .iter()
        .map(|start| start.id.clone())
        .chain(rounds.iter().flat_map(|round| {
            round
                .function
                .ids
                .iter()
                .chain(&round.function_without_log_line.ids)
                .cloned()
        }))
        .collect();
    let floor_ids: Vec<String> = rounds
        .iter()
        .flat_map(|round| round.floor.ids.clone())
        .collect();
    let platform = floor_leads.platform();
    let mut rows_checked = 0;
    for (who, ids) in [("function", &function_ids), ("floor", &floor_ids)] {
        let distinct: HashSet<&String> = ids.iter().collect();
        let stored = measure::count_rows(&options, ids, platform).await?;
        if distinct.len() != ids.len() || usize::try_from(stored) != Ok(ids.len()) {
            return Err(format!(
                "{who}: {} inserts answered, {} distinct ids, {stored} {platform} rows found",
                ids.len(),
                distinct.len()
            )
            .into());
        }
        rows_checked += ids.len();
    }
    // The floor ran the function's statement; its rows must hold what the function's do.
    if let (Some(function), Some(floor)) = (function_ids.first(), floor_ids.first()) {
        measure::same_lead_columns(&options, function, floor).await?;
    }
    eprintln!("bench: {rows_checked} inserted rows checked in the table");
    if !args.keep_rows {
        let all: Vec<String> = function_ids.into_iter().chain(floor_ids).collect();
        measure::delete_rows(&options, &all).await?;
    }

    let (arm64_bytes, arm64_unavailable) = match &args.arm64 {
        Ok(path) => match file_size(path) {
            Ok(bytes) => (Some(bytes), None),
            Err(error) => (None, Some(error.to_string())),
        },
        Err(reason) => (None, Some(reason.clone())),
    };
    let sizes = Sizes {
        arm64_bytes,
        arm64_unavailable,
        x86_64_bytes,
    };

    let metrics = metrics(&cold, &rounds, &sizes);
    let setup = format!(
        "Runs: {} cold starts (spawn with one request waiting); {} rounds, each of 5 runs back to back \
         ({} warm-up + {} timed invocations, or INSERTs, per run; every invocation a distinct lead from \
         `{}`): the function at `LOG_LEVEL={PRODUCTION_LOG_LEVEL}` as deployed, the function without its \
         log line, the no-op bootstraps, and the floor on one sqlx connection. Medians over the rounds \
         (min–max); ratios are taken within each round. All {rows_checked} inserts answered 201 and \
         their rows were found.",
        args.cold_runs,
        args.warm_runs,
        args.size.warmup,
        args.size.measured,
        display_relative(&args.event),
    );
    let table = report::markdown(&machine, &setup, &metrics);
    println!("\n{table}");

    let results = Results {
        machine: &machine,
        setup: Setup {
            function: FUNCTION,
            bootstrap: display_relative(&args.bootstrap),
            baseline: display_relative(&args.baseline),
            event: display_relative(&args.event),
            cold_runs: args.cold_runs,
            warm_runs: args.warm_runs,
            run_size: args.size,
            log_level: PRODUCTION_LOG_LEVEL,
            memory_size_mb: 128,
        },
        metrics: &metrics,
        cold_starts: &cold,
        rounds: &rounds,
        sizes,
        rows_checked,
    };
    std::fs::create_dir_all(&args.out)
        .map_err(|error| format!("cannot create {}: {error}", args.out.display()))?;
    let json = serde_json::to_string_pretty(&results)?;
    for (name, text) in [
        ("results.json", json),
        ("README-performance.md", table.clone()),
    ] {
        let path = args.out.join(name);
        std::fs::write(&path, text + "\n")
            .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
        eprintln!("bench: wrote {}", display_relative(&path));
    }
    if let Some(path) = &args.readme {
        update_readme(path, &table)?;
    }
    Ok(())
}

/// Replaces the table between the README's markers (nothing else in the file changes).
fn update_readme(path: &Path, table: &str) -> Result<(), Error> {
    let readme = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    match report::splice_readme(&readme, table) {
        Some(updated) => {
            std::fs::write(path, updated)
                .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
            eprintln!("bench: updated the table in {}", display_relative(path));
        }
        None => eprintln!(
            "bench: {} has no `{}` … `{}` markers; its table is left as it is",
            display_relative(path),
            report::README_BEGIN,
            report::README_END
        ),
    }
    Ok(())
}

fn metrics(cold: &[ColdStart], rounds: &[Round], sizes: &Sizes) -> Vec<Metric> {
    const MIB: f64 = 1024.0 * 1024.0;
    let mib = |bytes: u64| bytes as f64 / MIB;
    let over_rounds = |value: fn(&Round) -> f64| Spread::of(rounds.iter().map(value));
    let mut metrics = vec![
        Metric::at_most(
            "cold start: spawn → first `/next` (ready)",
            "ms",
            Spread::of(cold.iter().map(|start| start.ready_ms)),
            15.0,
        ),
        Metric::info(
            "cold start: spawn → first response",
            "ms",
            Spread::of(cold.iter().map(|start| start.first_response_ms)),
        )
        .with_note("connects to PostgreSQL, prepares the INSERT"),
        Metric::info(
            "warm latency p50",
            "µs",
            over_rounds(|round| round.function.p50_us),
        )
        .with_note("event handed out → response received"),
        Metric::info(
            "warm latency p99",
            "µs",
            over_rounds(|round| round.function.p99_us),
        ),
        Metric::info(
            "database floor p50",
            "µs",
            over_rounds(|round| round.floor.p50_us),
        )
        .with_note("same INSERT, one connection, no function"),
        Metric::info(
            "database floor p99",
            "µs",
            over_rounds(|round| round.floor.p99_us),
        ),
        Metric::at_most(
            "warm p50 ÷ floor p50",
            "×",
            over_rounds(Round::p50_ratio),
            1.2,
        ),
        Metric::info("warm p99 ÷ floor p99", "×", over_rounds(Round::p99_ratio)),
        Metric::info(
            "Runtime API round trip p50, no-op bootstrap",
            "µs",
            over_rounds(|round| round.runtime_noop.p50_us),
        )
        .with_note("`lambda_runtime`: `/next` + `/response` on loopback"),
        Metric::info(
            "no-op bootstrap through `lambda_http` p50",
            "µs",
            over_rounds(|round| round.lambda_http_noop.p50_us),
        )
        .with_note("adds decoding the API Gateway event, encoding the response"),
        Metric::info(
            "warm latency p50 without the log line",
            "µs",
            over_rounds(|round| round.function_without_log_line.p50_us),
        )
        .with_note("`LOG_LEVEL=warn`"),
        Metric::info(
            "function's own share of p50",
            "µs",
            over_rounds(Round::own_p50_us),
        )
        .with_note("warm p50 − Runtime API round trip − floor"),
        Metric::info(
            "warm p50 ÷ (Runtime API round trip + floor)",
            "×",
            over_rounds(Round::ratio_to_unavoidable),
        ),
    ];
    metrics.extend([
        Metric::at_most(
            "peak RSS after a warm run (VmHWM)",
            "MiB",
            Spread::of(
                rounds
                    .iter()
                    .filter_map(|round| round.function.peak_rss_bytes)
                    .map(mib),
            ),
            20.0,
        ),
        Metric::info(
            "peak RSS after the first request (VmHWM)",
            "MiB",
            Spread::of(cold.iter().map(|start| mib(start.peak_rss_bytes))),
        ),
        {
            let metric = Metric::at_most(
                "arm64 stripped bootstrap",
                "MiB",
                sizes
                    .arm64_bytes
                    .map(mib)
                    .and_then(|size| Spread::of([size])),
                8.0,
            );
            match &sizes.arm64_unavailable {
                Some(reason) => metric.with_note(reason.clone()),
                None => metric.with_note("`cargo lambda build --release --arm64`"),
            }
        },
        Metric::info(
            "x86_64 release bootstrap",
            "MiB",
            Spread::of([mib(sizes.x86_64_bytes)]),
        ),
    ]);
    metrics
}

async fn server_version(options: &PgConnectOptions) -> Result<String, Error> {
    let mut connection = sqlx::PgConnection::connect_with(options)
        .await
        .map_err(|error| format!("cannot reach the database: {error}"))?;
    let version: String = sqlx::query_scalar("SELECT current_setting('server_version')")
        .fetch_one(&mut connection)
        .await?;
    connection.close().await?;
    Ok(version)
}

fn file_size(path: &Path) -> Result<u64, Error> {
    Ok(std::fs::metadata(path)
        .map_err(|error| format!("{}: {error}", path.display()))?
        .len())
}

/// `path` relative to the workspace root when inside it, for output that reads the same
/// on every machine.
fn display_relative(path: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let absolute = |path: &Path| std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let (path, root) = (absolute(path), absolute(&root));
    path.strip_prefix(&root)
        .unwrap_or(&path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::parse(args.iter().map(|arg| (*arg).to_owned()))
    }

    #[test]
    fn options() {
        let args = parse(&[
            "--cold-runs",
            "3",
            "--invocations",
            "10",
            "--arm64-unavailable",
            "zig missing",
            "--keep-rows",
            "--no-readme",
        ])
        .unwrap();
        assert_eq!((args.cold_runs, args.warm_runs), (3, 5));
        assert_eq!((args.size.warmup, args.size.measured), (200, 10));
        assert_eq!(args.arm64, Err("zig missing".to_owned()));
        assert!(args.keep_rows);
        assert_eq!(args.readme, None);
        assert!(args.event.ends_with("events/knowlarity/call-webhook.json"));

        assert!(parse(&["--cold-runs"]).is_err());
        assert!(parse(&["--cold-runs", "many"]).is_err());
        assert!(parse(&["--warm-runs", "0"]).is_err());
        assert!(parse(&["--fast"]).is_err());
    }
}
