//! Figures of a run: per partner and in total, as a Markdown table and as JSON.

use std::time::Duration;

use serde::Serialize;
use stats::Latencies;

use crate::check::Verdict;
use crate::plan::{Plan, PARTNERS};
use crate::send::Outcome;

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Statuses {
    pub created_201: usize,
    pub duplicate_200: usize,
    pub queued_202: usize,
    pub client_4xx: usize,
    pub server_5xx: usize,
    /// Anything else answered (1xx, 3xx, other 2xx).
    pub other: usize,
    /// No answer: connection error or the client's timeout.
    pub no_answer: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub name: String,
    pub requests: usize,
    pub repeats: usize,
    /// Repeats sent at the same instant as their lead's first copy (a double-fired webhook).
    pub simultaneous_repeats: usize,
    pub distinct_leads: usize,
    pub target_rate_per_s: f64,
    /// Requests started per second, first start to last.
    pub achieved_rate_per_s: f64,
    pub statuses: Statuses,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    pub start_lag_max_ms: f64,
    pub verdict: Verdict,
}

/// The figures of the requests for which `include(partner)` holds.
pub fn figures(
    name: &str,
    plan: &Plan,
    outcomes: &[Outcome],
    target_rate: f64,
    include: impl Fn(usize) -> bool,
    verdict: Verdict,
) -> Figures {
    let mut statuses = Statuses::default();
    let mut latencies = Vec::new();
    let mut starts = Vec::new();
    let mut lag = Duration::ZERO;
    let mut repeats = 0;
    let mut simultaneous_repeats = 0;
    let mut first_at = vec![Duration::MAX; plan.leads.len()];
    for (request, outcome) in plan.requests.iter().zip(outcomes) {
        if !include(request.partner) {
            continue;
        }
        if request.attempt == 0 {
            first_at[request.lead] = request.at;
        } else {
            repeats += 1;
            simultaneous_repeats += usize::from(request.at == first_at[request.lead]);
        }
        match outcome.status {
            Some(201) => statuses.created_201 += 1,
            Some(200) => statuses.duplicate_200 += 1,
            Some(202) => statuses.queued_202 += 1,
            Some(400..=499) => statuses.client_4xx += 1,
            Some(500..=599) => statuses.server_5xx += 1,
            Some(_) => statuses.other += 1,
            None => statuses.no_answer += 1,
        }
        latencies.push(outcome.latency);
        starts.push(outcome.started);
        lag = lag.max(outcome.start_lag);
    }
    let latencies = Latencies::of(latencies);
    let span = match (starts.iter().min(), starts.iter().max()) {
        (Some(first), Some(last)) => (*last - *first).as_secs_f64(),
        _ => 0.0,
    };
    let achieved = if span > 0.0 {
        (starts.len() - 1) as f64 / span
    } else {
        0.0
    };
    Figures {
        name: name.to_owned(),
        requests: starts.len(),
        repeats,
        simultaneous_repeats,
        distinct_leads: plan.leads.iter().filter(|l| include(l.partner)).count(),
        target_rate_per_s: target_rate,
        achieved_rate_per_s: achieved,
        statuses,
        latency_p50_ms: ms(latencies.p50),
        latency_p99_ms: ms(latencies.p99),
        latency_max_ms: ms(latencies.max),
        start_lag_max_ms: ms(lag),
        verdict,
    }
}

fn ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e5).round() / 100.0
}

/// What failed, in words; empty when the run passed.
pub fn failures(total: &Figures, rate_tolerance: f64) -> Vec<String> {
    let mut failures = Vec::new();
    let s = &total.statuses;
    if s.server_5xx > 0 {
        failures.push(format!("{} answers were 5xx", s.server_5xx));
    }
    if s.no_answer > 0 {
        failures.push(format!("{} requests got no answer", s.no_answer));
    }
    if s.client_4xx + s.other > 0 {
        failures.push(format!(
            "{} valid requests were refused or answered unexpectedly",
            s.client_4xx + s.other
        ));
    }
    if total.achieved_rate_per_s < total.target_rate_per_s * (1.0 - rate_tolerance) {
        failures.push(format!(
            "the sender kept {:.1} req/s of the {:.1} asked",
            total.achieved_rate_per_s, total.target_rate_per_s
        ));
    }
    let v = &total.verdict;
    if v.rows_found != v.rows_expected || v.missing > 0 {
        failures.push(format!(
            "{} accepted leads, {} found in the table ({} missing)",
            v.rows_expected, v.rows_found, v.missing
        ));
    }
    if v.duplicates_found > 0 {
        failures.push(format!(
            "{} leads stored more than once",
            v.duplicates_found
        ));
    }
    if v.unexpected_rows > 0 {
        failures.push(format!(
            "{} rows nobody was answered for",
            v.unexpected_rows
        ));
    }
    if v.created_twice > 0 {
        failures.push(format!("{} leads answered 201 twice", v.created_twice));
    }
    if v.wrong_ids > 0 {
        failures.push(format!("{} answers named another row's id", v.wrong_ids));
    }
    if v.wrong_messages > 0 {
        failures.push(format!(
            "{} 200s without \"Duplicate ignored\"",
            v.wrong_messages
        ));
    }
    failures
}

/// The table `make load` prints and writes under `.local/load/`.
pub fn markdown(columns: &[Figures]) -> String {
    let mut out = String::new();
    let header: Vec<&str> = columns.iter().map(|f| f.name.as_str()).collect();
    out.push_str(&format!("| | {} |\n", header.join(" | ")));
    out.push_str(&format!("|---|{}\n", "---:|".repeat(columns.len())));
    let mut row = |label: &str, cell: &dyn Fn(&Figures) -> String| {
        let cells: Vec<String> = columns.iter().map(cell).collect();
        out.push_str(&format!("| {label} | {} |\n", cells.join(" | ")));
    };
    row("requests sent", &|f| f.requests.to_string());
    row("of which repeats (at the same instant)", &|f| {
        format!("{} ({})", f.repeats, f.simultaneous_repeats)
    });
    row("rate asked → achieved, req/s", &|f| {
        format!("{:.1} → {:.2}", f.target_rate_per_s, f.achieved_rate_per_s)
    });
    row("201 created", &|f| f.statuses.created_201.to_string());
    row("200 duplicate ignored", &|f| {
        f.statuses.duplicate_200.to_string()
    });
    row("202 queued", &|f| f.statuses.queued_202.to_string());
    row("4xx", &|f| f.statuses.client_4xx.to_string());
    row("5xx", &|f| f.statuses.server_5xx.to_string());
    row("no answer", &|f| f.statuses.no_answer.to_string());
    row("latency p50 / p99 / max, ms", &|f| {
        format!(
            "{:.1} / {:.1} / {:.1}",
            f.latency_p50_ms, f.latency_p99_ms, f.latency_max_ms
        )
    });
    row("rows expected / found", &|f| {
        format!("{} / {}", f.verdict.rows_expected, f.verdict.rows_found)
    });
    row("duplicates found", &|f| {
        f.verdict.duplicates_found.to_string()
    });
    row("missing / extra rows", &|f| {
        format!("{} / {}", f.verdict.missing, f.verdict.unexpected_rows)
    });
    row("leads answered 201 twice", &|f| {
        f.verdict.created_twice.to_string()
    });
    row("201/200 naming another row", &|f| {
        f.verdict.wrong_ids.to_string()
    });
    out
}

/// The columns of a run: one per partner, then all of them.
pub fn columns(
    plan: &Plan,
    outcomes: &[Outcome],
    verdicts: &[Verdict],
    rate_per_partner: f64,
) -> Vec<Figures> {
    let mut columns: Vec<Figures> = PARTNERS
        .iter()
        .enumerate()
        .map(|(index, partner)| {
            figures(
                partner.platform,
                plan,
                outcomes,
                rate_per_partner,
                |p| p == index,
                verdicts[index].clone(),
            )
        })
        .collect();
    let mut total = Verdict::default();
    verdicts.iter().for_each(|v| total.add(v));
    columns.push(figures(
        "all",
        plan,
        outcomes,
        rate_per_partner * PARTNERS.len() as f64,
        |_| true,
        total,
    ));
    columns
}
