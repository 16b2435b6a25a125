//! `make load`: the three partner functions, served by `cargo lambda watch`, driven at ten
//! times the partners' soft limit (120 requests a minute each) for a sustained minute,
//! with a share of partner retries; then the table is checked: no 5xx, every accepted
//! lead stored exactly once, every answer naming its lead's row, nothing extra.
//!
//! Prints a Markdown table and writes it with a JSON copy under `.local/load/`. Exits 1
//! when a check fails. `scripts/load.sh` starts the database and the functions; run it
//! through `make load`.

mod check;
mod plan;
mod report;
mod send;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::check::Table;
use crate::plan::{Settings, PARTNERS};
use crate::report::Figures;
use crate::send::Driver;

const USAGE: &str = "\
usage: load [options]       (DATABASE_URL names the database the functions write to)
  --url URL               where the partner routes are served [http://127.0.0.1:9000]
  --duration SECS         how long the schedule runs [60]
  --multiplier X          times the partners' soft limit [10]
  --soft-limit N          the soft limit, requests per minute per partner [120]
  --repeats FRACTION      share of requests repeating an earlier lead [0.2]
  --max-in-flight N       requests outstanding at once, at most [256]
  --timeout SECS          no answer by then is a failure (partners give up after 10 s) [10]
  --warmup N              keyless requests per function, N at a time, 3 rounds, before the
                          clock starts: starts the function instances [5]
  --wait SECS             how long to wait for the functions to answer at all [900]
  --seed N                the run's random choices [from the clock]
  --out DIR               where the Markdown and JSON copies go [.local/load]
  --note TEXT             a line kept with the results (how the functions were served)";

#[derive(Debug)]
struct Args {
    url: String,
    duration: Duration,
    multiplier: f64,
    soft_limit: f64,
    repeats: f64,
    max_in_flight: usize,
    timeout: Duration,
    warmup: usize,
    wait: Duration,
    seed: Option<u64>,
    out: PathBuf,
    note: Option<String>,
}

impl Args {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut parsed = Self {
            url: "http://127.0.0.1:9000".into(),
            duration: Duration::from_secs(60),
            multiplier: 10.0,
            soft_limit: 120.0,
            repeats: 0.2,
            max_in_flight: 256,
            timeout: Duration::from_secs(10),
            warmup: 5,
            wait: Duration::from_secs(900),
            seed: None,
            out: Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.local/load"),
            note: None,
        };
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                return Err(String::new());
            }
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--url" => parsed.url = value,
                "--duration" => parsed.duration = Duration::from_secs_f64(positive(&flag, &value)?),
                "--multiplier" => parsed.multiplier = positive(&flag, &value)?,
                "--soft-limit" => parsed.soft_limit = positive(&flag, &value)?,
                "--repeats" => {
                    parsed.repeats = number(&flag, &value)?;
                    if !(0.0..1.0).contains(&parsed.repeats) {
                        return Err(format!("{flag} takes a fraction in [0, 1)"));
                    }
                }
                "--max-in-flight" => parsed.max_in_flight = positive(&flag, &value)? as usize,
                "--timeout" => parsed.timeout = Duration::from_secs_f64(positive(&flag, &value)?),
                "--warmup" => parsed.warmup = number(&flag, &value)?,
                "--wait" => parsed.wait = Duration::from_secs_f64(positive(&flag, &value)?),
                "--seed" => parsed.seed = Some(number(&flag, &value)?),
                "--out" => parsed.out = value.into(),
                "--note" => parsed.note = Some(value),
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        Ok(parsed)
    }
}

fn number<T: FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag}: not a number: {value}"))
}

fn positive(flag: &str, value: &str) -> Result<f64, String> {
    let number: f64 = number(flag, value)?;
    if number.is_finite() && number > 0.0 {
        Ok(number)
    } else {
        Err(format!("{flag} must be positive"))
    }
}

/// Everything a run leaves in its JSON copy.
#[derive(Serialize)]
struct Results<'a> {
    tag: &'a str,
    date_utc: &'a str,
    passed: bool,
    failures: &'a [String],
    note: Option<&'a str>,
    url: &'a str,
    postgres: &'a str,
    settings: SettingsOut,
    machine: Machine,
    figures: &'a [Figures],
    markdown: &'a str,
}

#[derive(Serialize)]
struct SettingsOut {
    duration_s: f64,
    soft_limit_per_minute: f64,
    multiplier: f64,
    repeat_fraction: f64,
    max_in_flight: usize,
    timeout_s: f64,
    seed: u64,
}

#[derive(Serialize)]
struct Machine {
    cpu: String,
    cores: usize,
    memory_gib: f64,
    load_average_before: String,
    load_average_after: String,
}

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(error) => {
            if error.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("load: {error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("load: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("load: {error}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<bool, String> {
    let database_url =
        std::env::var("DATABASE_URL").map_err(|_| "DATABASE_URL is not set".to_owned())?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let seed = args.seed.unwrap_or(now.as_nanos() as u64);
    let stamp = utc_stamp(now.as_secs());
    let tag = format!(
        "load-{}-{:04x}",
        stamp.replace([':', '-'], ""),
        seed & 0xffff
    );
    let settings = Settings {
        duration: args.duration,
        soft_limit_per_minute: args.soft_limit,
        multiplier: args.multiplier,
        repeat_fraction: args.repeats,
        seed,
        tag: tag.clone(),
    };
    let plan = plan::build(&settings);
    let rate = settings.rate_per_partner();

    let table = Table::connect(&database_url).await?;
    let postgres = table.server_version().await?;
    let driver = Driver {
        base_url: args.url.clone(),
        max_in_flight: args.max_in_flight,
        timeout: args.timeout,
    };
    wait_until_served(&driver, args.wait).await?;
    warm_up(&driver, args.warmup).await?;

    let load_before = load_average();
    let rows_before = table.count().await?;
    eprintln!(
        "load: {} requests ({} distinct leads) over {:.0} s: {:.1} req/s per partner, {:.1} in all (tag {tag})",
        plan.requests.len(),
        plan.leads.len(),
        args.duration.as_secs_f64(),
        rate,
        rate * PARTNERS.len() as f64
    );
    let outcomes = driver.run(&plan).await?;
    let rows_after = table.count().await?;
    let rows = table.rows_tagged(&tag).await?;
    let load_after = load_average();

    let verdicts = check::verify(&plan, &outcomes, &rows, rows_after - rows_before);
    let columns = report::columns(&plan, &outcomes, &verdicts, rate);
    let total = columns.last().ok_or("no figures")?;
    let failures = report::failures(total, 0.05);
    let table_md = report::markdown(&columns);
    let passed = failures.is_empty() && total.verdict.passed();

    let mut text = format!(
        "Load run {tag} ({stamp} UTC): {:.0} s at {}× the soft limit of {} requests/minute per partner, {:.0}% repeats\n\n{table_md}\n",
        args.duration.as_secs_f64(),
        args.multiplier,
        args.soft_limit,
        args.repeats * 100.0
    );
    let machine = machine(load_before, load_after);
    text.push_str(&format!(
        "Machine: {}, {} cores, {} GiB; load average {} before, {} after. PostgreSQL {postgres}.\n",
        machine.cpu,
        machine.cores,
        machine.memory_gib,
        machine.load_average_before,
        machine.load_average_after
    ));
    if let Some(note) = &args.note {
        text.push_str(&format!("Served by: {note}.\n"));
    }
    if passed {
        text.push_str("Result: PASS (no 5xx, every accepted lead stored exactly once)\n");
    } else {
        text.push_str(&format!("Result: FAIL: {}\n", failures.join("; ")));
    }
    for (request, outcome) in plan.requests.iter().zip(&outcomes) {
        if outcome.status.is_none_or(|s| s >= 300) {
            eprintln!(
                "load: {} request {} (lead {}, copy {}): {}",
                PARTNERS[request.partner].slug,
                request.at.as_millis(),
                request.lead,
                request.attempt,
                outcome
                    .status
                    .map(|s| format!("{s} {}", outcome.message.as_deref().unwrap_or("")))
                    .or(outcome.error.clone())
                    .unwrap_or_default()
            );
        }
    }
    println!("{text}");

    let results = Results {
        tag: &tag,
        date_utc: &stamp,
        passed,
        failures: &failures,
        note: args.note.as_deref(),
        url: &args.url,
        postgres: &postgres,
        settings: SettingsOut {
            duration_s: args.duration.as_secs_f64(),
            soft_limit_per_minute: args.soft_limit,
            multiplier: args.multiplier,
            repeat_fraction: args.repeats,
            max_in_flight: args.max_in_flight,
            timeout_s: args.timeout.as_secs_f64(),
            seed,
        },
        machine,
        figures: &columns,
        markdown: &table_md,
    };
    write_copies(&args.out, &tag, &text, &results)?;
    Ok(passed)
}

/// Waits until every route answers a keyless request with the contract's 401 (the first
/// request to each function waits for `cargo lambda watch` to start it).
async fn wait_until_served(driver: &Driver, wait: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + wait;
    for partner in &PARTNERS {
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let waiting = Driver {
                base_url: driver.base_url.clone(),
                max_in_flight: 1,
                timeout: left.max(Duration::from_millis(1)),
            };
            match waiting.post_once(&partner.route(), None, b"{}").await {
                Ok((401, _)) => break,
                Ok((status, body)) if left.is_zero() => {
                    return Err(format!("{}: answered {status} {body}", partner.route()))
                }
                Err(error) if left.is_zero() => {
                    return Err(format!("{} not served: {error}", partner.route()))
                }
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }
    Ok(())
}

/// Keyless requests, `per_function` at a time to each function, three rounds: starts
/// the instances the run will use. Nothing reaches the database (the key is checked
/// first).
async fn warm_up(driver: &Driver, per_function: usize) -> Result<(), String> {
    for _ in 0..3 {
        let mut tasks = Vec::new();
        for partner in &PARTNERS {
            for _ in 0..per_function {
                let driver = Driver {
                    base_url: driver.base_url.clone(),
                    max_in_flight: 1,
                    timeout: Duration::from_secs(120),
                };
                let route = partner.route();
                tasks.push(tokio::spawn(async move {
                    driver.post_once(&route, None, b"{}").await
                }));
            }
        }
        for task in tasks {
            match task.await.map_err(|error| error.to_string())? {
                Ok((401, _)) => {}
                Ok((status, body)) => return Err(format!("warm-up answered {status} {body}")),
                Err(error) => return Err(format!("warm-up failed: {error}")),
            }
        }
    }
    Ok(())
}

fn write_copies(out: &Path, tag: &str, text: &str, results: &Results<'_>) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|error| format!("{}: {error}", out.display()))?;
    let json = serde_json::to_string_pretty(results).map_err(|error| error.to_string())?;
    for (name, contents) in [
        (format!("{tag}.json"), json.as_str()),
        (format!("{tag}.md"), text),
        ("latest.json".to_owned(), json.as_str()),
        ("latest.md".to_owned(), text),
    ] {
        let path = out.join(name);
        std::fs::write(&path, contents).map_err(|error| format!("{}: {error}", path.display()))?;
    }
    eprintln!("load: wrote {}/{tag}.{{md,json}}", out.display());
    Ok(())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn machine(load_average_before: String, load_average_after: String) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, name)| name.trim().to_owned())
        .unwrap_or_default();
    let memory_kib: f64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    Machine {
        cpu,
        cores: std::thread::available_parallelism().map_or(0, usize::from),
        memory_gib: (memory_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        load_average_before,
        load_average_after,
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time (days to civil date: Howard Hinnant's algorithm).
fn utc_stamp(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let secs = unix_secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc_stamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_stamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_stamp(1_795_428_000), "2026-11-23T10:00:00Z");
    }

    #[test]
    fn options() {
        let args = |list: &[&str]| Args::parse(list.iter().map(|s| s.to_string()));
        let parsed = args(&["--duration", "5", "--multiplier", "2"]).unwrap();
        assert_eq!(parsed.duration, Duration::from_secs(5));
        assert_eq!(parsed.multiplier, 2.0);
        assert_eq!(parsed.soft_limit, 120.0);
        assert!(args(&["--repeats", "1"]).is_err());
        assert!(args(&["--duration", "0"]).is_err());
        assert!(args(&["--bogus", "1"]).is_err());
    }
}
