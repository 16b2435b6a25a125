//! The command line: what a run measures and how much, its defaults, and the command
//! that repeats it.

use std::path::{Path, PathBuf};

use crate::measure::RunSize;
use crate::{display_relative, FUNCTION};

/// The event under `events/knowlarity/` every invocation is numbered from.
const DEFAULT_EVENT: &str = "rest-v1-call-webhook.json";

/// The document `make bench` writes, from the workspace root.
const DEFAULT_DOC: &str = "docs/performance.md";

pub(crate) const USAGE: &str = "\
usage: bench [options]            (DATABASE_URL must name a migrated database that
                                   commits durably: fsync and synchronous_commit on)
  --bootstrap PATH          the release bootstrap to drive [target/release/knowlarity]
  --baseline PATH           the no-op bootstrap [target/release/bench-baseline]
  --event PATH              the API Gateway event [events/knowlarity/rest-v1-call-webhook.json]
  --arm64-bootstrap PATH    the `cargo lambda build --release --arm64` bootstrap, to size
  --arm64-unavailable WHY   or why there is none
  --cold-runs N             cold starts [15]
  --warm-runs N             rounds of warm runs (function with the durable floor;
                            with the non-durable floor: the function non-durable,
                            also without its log line, no-op runtime, no-op
                            lambda_http) [5]
  --warmup N                untimed invocations (and INSERTs) per run [200]
  --invocations N           timed invocations (and INSERTs) per run [5000]
  --out DIR                 where results.json and a copy of the document go [.local/bench]
  --doc PATH                the performance document to write whole [docs/performance.md]
  --no-doc                  leave the document alone (a quick look)
  --function-log FILE       append the function's stdout/stderr to FILE (default: discarded)
  --keep-rows               keep the rows the bench inserted (default: deleted at the end)";

#[derive(Debug)]
pub(crate) struct Args {
    pub(crate) bootstrap: PathBuf,
    pub(crate) baseline: PathBuf,
    pub(crate) event: PathBuf,
    pub(crate) arm64: Result<PathBuf, String>,
    pub(crate) cold_runs: usize,
    pub(crate) warm_runs: usize,
    pub(crate) size: RunSize,
    pub(crate) out: PathBuf,
    pub(crate) doc: Option<PathBuf>,
    pub(crate) function_log: Option<PathBuf>,
    pub(crate) keep_rows: bool,
}

impl Args {
    pub(crate) fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut parsed = Self {
            bootstrap: root.join("target/release").join(FUNCTION),
            baseline: root.join("target/release/bench-baseline"),
            // What the deployed REST API hands the functions, with Knowlarity's call ids.
            event: root.join("events").join(FUNCTION).join(DEFAULT_EVENT),
            arm64: Err("not built (pass --arm64-bootstrap; `make bench` does)".to_owned()),
            cold_runs: 15,
            warm_runs: 5,
            size: RunSize {
                warmup: 200,
                measured: 5000,
            },
            out: root.join(".local/bench"),
            doc: Some(root.join(DEFAULT_DOC)),
            function_log: None,
            keep_rows: false,
        };
        while let Some(flag) = args.next() {
            if flag == "--keep-rows" {
                parsed.keep_rows = true;
                continue;
            }
            if flag == "--no-doc" {
                parsed.doc = None;
                continue;
            }
            // Taken only by a flag that has one, so an unknown flag is named as such.
            let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
            let count = |value: String| {
                value
                    .parse::<usize>()
                    .map_err(|_| format!("{flag} takes a number, not {value:?}"))
            };
            match flag.as_str() {
                "--bootstrap" => parsed.bootstrap = value()?.into(),
                "--baseline" => parsed.baseline = value()?.into(),
                "--event" => parsed.event = value()?.into(),
                "--arm64-bootstrap" => parsed.arm64 = Ok(value()?.into()),
                "--arm64-unavailable" => parsed.arm64 = Err(value()?),
                "--cold-runs" => parsed.cold_runs = count(value()?)?,
                "--warm-runs" => parsed.warm_runs = count(value()?)?,
                "--warmup" => parsed.size.warmup = count(value()?)?,
                "--invocations" => parsed.size.measured = count(value()?)?,
                "--out" => parsed.out = value()?.into(),
                "--doc" => parsed.doc = Some(value()?.into()),
                "--function-log" => parsed.function_log = Some(value()?.into()),
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        if parsed.cold_runs == 0 || parsed.warm_runs == 0 || parsed.size.measured == 0 {
            return Err("--cold-runs, --warm-runs and --invocations must be at least 1".into());
        }
        Ok(parsed)
    }
}

impl Args {
    /// How this run was asked for: `make bench`, with the options that differ from the
    /// defaults (those the document's figures depend on).
    pub(crate) fn command(&self) -> String {
        let defaults = Self::parse(std::iter::empty()).ok();
        let mut options = Vec::new();
        let mut differs = |flag: &str, value: String, default: Option<String>| {
            if default.as_ref() != Some(&value) {
                options.push(format!("{flag} {value}"));
            }
        };
        let defaults = defaults.as_ref();
        differs(
            "--cold-runs",
            self.cold_runs.to_string(),
            defaults.map(|d| d.cold_runs.to_string()),
        );
        differs(
            "--warm-runs",
            self.warm_runs.to_string(),
            defaults.map(|d| d.warm_runs.to_string()),
        );
        differs(
            "--warmup",
            self.size.warmup.to_string(),
            defaults.map(|d| d.size.warmup.to_string()),
        );
        differs(
            "--invocations",
            self.size.measured.to_string(),
            defaults.map(|d| d.size.measured.to_string()),
        );
        differs(
            "--event",
            display_relative(&self.event),
            defaults.map(|d| display_relative(&d.event)),
        );
        if options.is_empty() {
            "make bench".to_owned()
        } else {
            format!("make bench BENCH_ARGS='{}'", options.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::parse(args.iter().map(|arg| (*arg).to_owned()))
    }

    #[test]
    fn a_flag_is_named_for_what_is_wrong_with_it() {
        assert_eq!(parse(&["--bogus"]).unwrap_err(), "unknown option --bogus");
        assert_eq!(
            parse(&["--cold-runs"]).unwrap_err(),
            "--cold-runs needs a value"
        );
        assert_eq!(
            parse(&["--warm-runs", "many"]).unwrap_err(),
            "--warm-runs takes a number, not \"many\""
        );
        let args = parse(&["--keep-rows", "--cold-runs", "3"]).unwrap();
        assert!(args.keep_rows);
        assert_eq!(args.cold_runs, 3);
    }
}
