//! `make bench`: the `knowlarity` release bootstrap driven exactly as Lambda drives it
//! (a local Runtime API, `AWS_LAMBDA_RUNTIME_API`), against a PostgreSQL that commits
//! durably as production does, and against the database floor: the same INSERT on one
//! loopback connection, no function.
//!
//! Each round measures, back to back: the function (at the production log level, one
//! JSON line per request) alternating with the durable floor, invocation by INSERT; then,
//! each alternating with the non-durable floor, the function with its session at
//! `synchronous_commit = off` (where no wait for the disk hides what the function adds),
//! the same without its log line, a no-op bootstrap through `lambda_runtime` alone (the
//! Runtime API round trip every Lambda function pays), and the same through
//! `lambda_http`. Ratios are taken within a round, so a noisy machine shifts both sides of
//! each.
//!
//! Prints a Markdown table and writes the whole performance document around it
//! (`docs/performance.md`: every figure in it from this run), with a copy and the figures
//! as JSON under `.local/bench/`.
//! `tools/bench/run.sh` builds what it measures; run it through `make bench`.

mod args;
mod figures;
mod function;
mod measure;
mod report;
mod runtime_api;

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::str::FromStr;

use product::Leads;
use serde::Serialize;
use sqlx::postgres::PgConnectOptions;
use sqlx::ConnectOptions;

use crate::args::{Args, USAGE};
use crate::figures::{breakdown, findings, metrics};
use crate::function::{EventTemplate, Spec};
use crate::measure::{ColdStart, Commit, Floor, LatencyRun, RunSize, Server};
use crate::report::{keep_blocks, Machine, Metric};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

const FUNCTION: &str = "knowlarity";
const CREATED: &str = "Knowlarity lead inserted successfully";

/// template.yaml's `LogLevel` default: each request leaves one JSON line.
const PRODUCTION_LOG_LEVEL: &str = "info";

/// The target: warm p50 at most this many times the durable floor's p50.
const TARGET_RATIO: f64 = 1.3;

/// The other targets: cold start to ready, peak RSS, the arm64 bootstrap's size.
const READY_TARGET_MS: f64 = 15.0;
const PEAK_RSS_TARGET_MIB: f64 = 20.0;
const ARM64_TARGET_MIB: f64 = 8.0;

fn main() -> ExitCode {
    if std::env::args().any(|arg| arg == "--help" || arg == "-h") {
        // `bench --help | head` closes the pipe early: not worth a panic.
        let _ = writeln!(std::io::stdout(), "{USAGE}");
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
    /// The function as deployed: production log level, durable commits.
    function: LatencyRun,
    /// The function with its session's `synchronous_commit = off`.
    function_non_durable: LatencyRun,
    /// The same with `LOG_LEVEL=warn`: no line per request.
    function_non_durable_without_log_line: LatencyRun,
    /// `bench-baseline`, `lambda_runtime` alone: the Runtime API round trip.
    runtime_noop: LatencyRun,
    /// `bench-baseline` through `lambda_http`.
    lambda_http_noop: LatencyRun,
    /// The INSERT on one connection, no function, each commit durable; alternating with
    /// `function`.
    durable_floor: LatencyRun,
    /// The same with the session's `synchronous_commit = off`; alternating with every
    /// other run.
    non_durable_floor: LatencyRun,
}

async fn run(args: Args) -> Result<(), Error> {
    let database_url = std::env::var("DATABASE_URL")
        .map_err(|_| "set DATABASE_URL (make bench starts a throwaway database)")?;
    // The floor's session is the function's: same statement timeout, same driver.
    let options = PgConnectOptions::from_str(&database_url)?
        .application_name("lead-ingestion-bench")
        .options([("statement_timeout", "3000")])
        .disable_statement_logging();
    let server = Server::read(&options).await?;
    if !server.commits_durably() {
        return Err(format!(
            "the database does not commit durably ({}); production does, and so must the \
             function and the floor measured against it (unset DATABASE_URL: make bench \
             then starts a durable one)",
            server.commits()
        )
        .into());
    }
    let machine = Machine::describe(server.version.clone(), server.commits());
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
    // Not waiting for the disk, what the function adds to the insert shows: the rest of
    // its session is as deployed.
    let non_durable = Spec {
        database_url: measure::non_durable_url(&spec.database_url).await?,
        ..spec.clone()
    };
    let non_durable_quiet = Spec {
        log_level: "warn".to_owned(),
        ..non_durable.clone()
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
        // Every warm run alternates invocation and INSERT (see `measure::warm_run`): the
        // function as deployed with the durable floor, every other run with the
        // non-durable one, so all of them keep the same rhythm.
        let size = args.size;
        let floor = |commit| Floor::connect(&options, commit, &floor_leads, &events);
        let mut durable = floor(Commit::Durable).await?;
        let function = measure::warm_run(&spec, &events, CREATED, size, &mut durable).await?;
        let durable_floor = durable.finish().await?;
        let mut non_durable_floor = floor(Commit::NonDurable).await?;
        let mut warm = async |spec| {
            measure::warm_run(spec, &events, CREATED, size, &mut non_durable_floor).await
        };
        let function_non_durable = warm(&non_durable).await?;
        let function_non_durable_without_log_line = warm(&non_durable_quiet).await?;
        let runtime_noop = warm(&runtime_noop).await?;
        let lambda_http_noop = warm(&http_noop).await?;
        let non_durable_floor = non_durable_floor.finish().await?;
        let round = Round {
            function,
            function_non_durable,
            function_non_durable_without_log_line,
            runtime_noop,
            lambda_http_noop,
            durable_floor,
            non_durable_floor,
        };
        eprintln!(
            "warm round {n}/{}: function p50 {:.0} µs p99 {:.0} µs | durable floor p50 {:.0} µs \
             p99 {:.0} µs | ratio {:.2}× | non-durable: function p50 {:.0} µs (without its log \
             line {:.0} µs), floor p50 {:.0} µs | no-op: runtime p50 {:.0} µs, lambda_http p50 {:.0} µs",
            args.warm_runs,
            round.function.p50_us,
            round.function.p99_us,
            round.durable_floor.p50_us,
            round.durable_floor.p99_us,
            round.p50_ratio(),
            round.function_non_durable.p50_us,
            round.function_non_durable_without_log_line.p50_us,
            round.non_durable_floor.p50_us,
            round.runtime_noop.p50_us,
            round.lambda_http_noop.p50_us,
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
                .chain(&round.function_non_durable.ids)
                .chain(&round.function_non_durable_without_log_line.ids)
                .cloned()
        }))
        .collect();
    let floor_ids: Vec<String> = rounds
        .iter()
        .flat_map(|round| {
            round
                .durable_floor
                .ids
                .iter()
                .chain(&round.non_durable_floor.ids)
                .cloned()
        })
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
    let breakdown = breakdown(&rounds);
    let setup = format!(
        "Runs: {} cold starts (spawn with one request waiting); {} rounds, each of 5 runs back to back \
         ({} warm-up + {} timed invocations per run, each followed by one INSERT of a floor on one \
         sqlx connection; every invocation a distinct lead from `{}`): the function at \
         `LOG_LEVEL={PRODUCTION_LOG_LEVEL}` as deployed, with the durable floor; then, with the \
         non-durable floor (its session at `synchronous_commit = off`), the function with its \
         session at `synchronous_commit = off`, the same without its log line, and the no-op \
         bootstraps. Medians over the rounds (min–max; nearest-rank, as every percentile here); \
         ratios and differences are taken within each round. All {rows_checked} inserts answered \
         201 and their rows were found.",
        args.cold_runs,
        args.warm_runs,
        args.size.warmup,
        args.size.measured,
        display_relative(&args.event),
    );
    let table = report::markdown(
        &machine,
        &setup,
        &metrics,
        "Where warm p50 goes. On a durable server the commit's wait for the disk can hide \
         what the function adds (the function's work overlaps the disk's own rhythm), so \
         that is also measured with both sides' sessions at `synchronous_commit = off`, and \
         split there. Each line is the median over the rounds of that round's figure, so \
         the lines need not add up exactly (within a round they do).",
        &breakdown,
    );
    println!("\n{table}");
    let findings = findings(&cold, &rounds, &sizes, machine.cores);

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
    let doc = report::performance_doc(&args.command(), &table, &findings);
    // The sections other commands write are theirs: kept as they are, in both copies.
    let old = args
        .doc
        .as_ref()
        .and_then(|path| std::fs::read_to_string(path).ok());
    let doc = keep_blocks(old.as_deref(), doc);
    for (name, text) in [
        ("results.json", json + "\n"),
        ("performance.md", doc.clone()),
    ] {
        let path = args.out.join(name);
        std::fs::write(&path, text)
            .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
        eprintln!("bench: wrote {}", display_relative(&path));
    }
    if let Some(path) = &args.doc {
        std::fs::write(path, &doc)
            .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
        eprintln!("bench: wrote {}", display_relative(path));
    }
    Ok(())
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

    #[test]
    fn a_rewrite_keeps_the_blocks_other_commands_write() {
        let old = "# Performance\n\nold figures\n\n<!-- lead-events: begin -->\nevents\n<!-- lead-events: end -->\n\n<!-- crm-handoff: begin -->\ncrm\n<!-- crm-handoff: end -->\n";
        assert_eq!(
            keep_blocks(Some(old), "# Performance\n\nnew figures\n".into()),
            "# Performance\n\nnew figures\n\n<!-- lead-events: begin -->\nevents\n<!-- lead-events: end -->\n\n<!-- crm-handoff: begin -->\ncrm\n<!-- crm-handoff: end -->\n"
        );
        assert_eq!(
            keep_blocks(Some("# Performance\n"), "new\n".into()),
            "new\n"
        );
        assert_eq!(keep_blocks(None, "new\n".into()), "new\n");
    }

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::parse(args.iter().map(|arg| (*arg).to_owned()))
    }

    fn run(p50_us: f64) -> LatencyRun {
        LatencyRun {
            p50_us,
            p99_us: 2.0 * p50_us,
            mean_us: p50_us,
            max_us: 3.0 * p50_us,
            samples: 1,
            peak_rss_bytes: None,
            ids: Vec::new(),
        }
    }

    fn round() -> Round {
        Round {
            function: run(500.0),
            function_non_durable: run(250.0),
            function_non_durable_without_log_line: run(230.0),
            runtime_noop: run(30.0),
            lambda_http_noop: run(45.0),
            durable_floor: run(260.0),
            non_durable_floor: run(120.0),
        }
    }

    #[test]
    fn the_breakdown_adds_up_within_a_round() {
        let rounds = [round()];
        let parts: Vec<f64> = breakdown(&rounds)
            .iter()
            .map(|part| part.value.map_or(f64::NAN, |value| value.median))
            .collect();
        let [floor, flush, added, warm, allowed, over, added_nd, runtime, http, log, rest] =
            parts[..]
        else {
            panic!("the breakdown has {} lines", parts.len());
        };
        assert_eq!((floor, flush, warm), (260.0, 140.0, 500.0));
        assert_eq!(floor + added, warm);
        assert_eq!((allowed, over), (1.3 * 260.0, 500.0 - 1.3 * 260.0));
        assert_eq!(added_nd, 130.0);
        assert_eq!(runtime + http + log + rest, added_nd);
        assert_eq!((runtime, http, log, rest), (30.0, 15.0, 20.0, 65.0));
    }

    #[test]
    fn the_findings_take_every_figure_from_the_run() {
        let rounds = [round()];
        let sizes = Sizes {
            arm64_bytes: None,
            arm64_unavailable: Some("not built".into()),
            x86_64_bytes: 1,
        };
        let text = findings(&[], &rounds, &sizes, 2);
        assert!(
            text.contains("**Warm p50 ≤ 1.3× the durable floor is not met** in this run (1.92×)")
        );
        assert!(text.contains("the function adds 240 µs to a durable INSERT of 260 µs, where the target allows 78.0 µs"));
        assert!(text.contains("where the function adds 130 µs: 30.0 µs is the Runtime API"));
        assert!(text.contains("15.0 µs is `lambda_http`"));
        assert!(text.contains("20.0 µs the request's log line, and 65.0 µs the function's own"));
        assert!(text.contains("The arm64 bootstrap: unavailable (≤ 8 MiB: unknown)"));
        assert!(text.contains("flush took 140 µs"));
        assert!(text.ends_with(
            "That wait was longer than all the function adds, so this run's durable ratio \
             says more about the disk than about the code: for the code, read the \
             non-durable ratio (2.08×)."
        ));
        let quick_disk = Round {
            durable_floor: run(150.0),
            ..round()
        };
        assert!(!findings(&[], &[quick_disk], &sizes, 2).contains("That wait"));
    }

    #[test]
    fn the_command_names_what_differs_from_the_defaults() {
        assert_eq!(parse(&[]).unwrap().command(), "make bench");
        assert_eq!(
            parse(&["--warm-runs", "3", "--invocations", "2000", "--no-doc"])
                .unwrap()
                .command(),
            "make bench BENCH_ARGS='--warm-runs 3 --invocations 2000'"
        );
    }

    #[test]
    fn the_target_is_against_the_durable_floor() {
        let rounds = [round()];
        let ratio = metrics(
            &[],
            &rounds,
            &Sizes {
                arm64_bytes: None,
                arm64_unavailable: Some("not built".into()),
                x86_64_bytes: 1,
            },
        )
        .into_iter()
        .find(|metric| metric.target == "≤ 1.3×")
        .expect("a ratio with the 1.3× target");
        assert_eq!(ratio.name, "warm p50 ÷ durable floor p50");
        assert_eq!(ratio.value.map(|value| value.median), Some(500.0 / 260.0));
        assert_eq!(ratio.verdict, report::Verdict::Missed);
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
            "--no-doc",
        ])
        .unwrap();
        assert_eq!((args.cold_runs, args.warm_runs), (3, 5));
        assert_eq!((args.size.warmup, args.size.measured), (200, 10));
        assert_eq!(args.arm64, Err("zig missing".to_owned()));
        assert!(args.keep_rows);
        assert_eq!(args.doc, None);
        assert!(args
            .event
            .ends_with("events/knowlarity/rest-v1-call-webhook.json"));

        assert!(parse(&["--cold-runs"]).is_err());
        assert!(parse(&["--cold-runs", "many"]).is_err());
        assert!(parse(&["--warm-runs", "0"]).is_err());
        assert!(parse(&["--fast"]).is_err());
    }
}
