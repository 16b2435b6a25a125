//! The results: a Markdown table for people (stdout, and a file to paste into the
//! README's Performance section) and the same figures as JSON.

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

/// The README's lines around the table `make bench` maintains.
pub const README_BEGIN: &str =
    "<!-- make bench: begin (generated; edit tools/bench/src, not this table) -->";
pub const README_END: &str = "<!-- make bench: end -->";

/// `readme` with what lies between the markers replaced by `table`; `None` without both
/// markers (in that order).
pub fn splice_readme(readme: &str, table: &str) -> Option<String> {
    let begin = readme.find(README_BEGIN)? + README_BEGIN.len();
    let end = begin + readme[begin..].find(README_END)?;
    Some(format!(
        "{}\n{}\n{}",
        &readme[..begin],
        table.trim_end(),
        &readme[end..]
    ))
}

fn with_unit(value: f64, unit: &str) -> String {
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
    fn the_readme_table_is_replaced_between_its_markers_only() {
        let readme = format!(
            "# Title\n\n## Performance\n\nIntro.\n\n{README_BEGIN}\nold table\nold line\n{README_END}\n\nAfter.\n"
        );
        let spliced = splice_readme(&readme, "| new | table |\n").unwrap();
        assert_eq!(
            spliced,
            format!(
                "# Title\n\n## Performance\n\nIntro.\n\n{README_BEGIN}\n| new | table |\n{README_END}\n\nAfter.\n"
            )
        );
        assert_eq!(
            splice_readme(&spliced, "| new | table |"),
            Some(spliced.clone())
        );
        assert_eq!(splice_readme("# No markers\n", "x"), None);
        assert_eq!(
            splice_readme(&format!("{README_END}\n{README_BEGIN}\n"), "x"),
            None
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
