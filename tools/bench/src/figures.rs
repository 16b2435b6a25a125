//! What a run's figures say: the table's metrics against their targets, where warm p50
//! goes part by part, and the findings written under the table.

use stats::Spread;

use crate::measure::ColdStart;
use crate::report::{self, Metric};
use crate::{Round, Sizes};
use crate::{ARM64_TARGET_MIB, PEAK_RSS_TARGET_MIB, READY_TARGET_MS, TARGET_RATIO};

/// What a round's figures are, each taken within the round.
impl Round {
    pub(crate) fn p50_ratio(&self) -> f64 {
        self.function.p50_us / self.durable_floor.p50_us
    }

    pub(crate) fn p99_ratio(&self) -> f64 {
        self.function.p99_us / self.durable_floor.p99_us
    }

    pub(crate) fn p50_ratio_non_durable(&self) -> f64 {
        self.function_non_durable.p50_us / self.non_durable_floor.p50_us
    }

    /// What a durable commit waits for: the WAL flush.
    pub(crate) fn commit_flush_p50_us(&self) -> f64 {
        self.durable_floor.p50_us - self.non_durable_floor.p50_us
    }

    pub(crate) fn added_p50_us(&self) -> f64 {
        self.function.p50_us - self.durable_floor.p50_us
    }

    pub(crate) fn added_non_durable_p50_us(&self) -> f64 {
        self.function_non_durable.p50_us - self.non_durable_floor.p50_us
    }

    pub(crate) fn lambda_http_p50_us(&self) -> f64 {
        self.lambda_http_noop.p50_us - self.runtime_noop.p50_us
    }

    pub(crate) fn log_line_p50_us(&self) -> f64 {
        self.function_non_durable.p50_us - self.function_non_durable_without_log_line.p50_us
    }

    /// What is left once the plumbing, the log line and the floor are taken away: the
    /// function's own steps and its driver, HTTP and kernel work around them.
    pub(crate) fn rest_p50_us(&self) -> f64 {
        self.function_non_durable_without_log_line.p50_us
            - self.lambda_http_noop.p50_us
            - self.non_durable_floor.p50_us
    }

    pub(crate) fn allowed_p50_us(&self) -> f64 {
        TARGET_RATIO * self.durable_floor.p50_us
    }

    pub(crate) fn over_target_p50_us(&self) -> f64 {
        self.function.p50_us - self.allowed_p50_us()
    }
}

pub(crate) fn metrics(cold: &[ColdStart], rounds: &[Round], sizes: &Sizes) -> Vec<Metric> {
    const MIB: f64 = 1024.0 * 1024.0;
    let mib = |bytes: u64| bytes as f64 / MIB;
    let over_rounds = |value: fn(&Round) -> f64| Spread::of(rounds.iter().map(value));
    let mut metrics = vec![
        Metric::at_most(
            "cold start: spawn → first `/next` (ready)",
            "ms",
            Spread::of(cold.iter().map(|start| start.ready_ms)),
            READY_TARGET_MS,
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
        .with_note("event handed out → response received, each commit durable"),
        Metric::info(
            "warm latency p99",
            "µs",
            over_rounds(|round| round.function.p99_us),
        ),
        Metric::info(
            "durable floor p50",
            "µs",
            over_rounds(|round| round.durable_floor.p50_us),
        )
        .with_note(
            "the same store-once INSERT, prepared, one connection, no function; \
             fsync and synchronous_commit on, as in production",
        ),
        Metric::info(
            "durable floor p99",
            "µs",
            over_rounds(|round| round.durable_floor.p99_us),
        ),
        Metric::info(
            "non-durable floor p50",
            "µs",
            over_rounds(|round| round.non_durable_floor.p50_us),
        )
        .with_note("the same, its session's `synchronous_commit = off`"),
        Metric::info(
            "non-durable floor p99",
            "µs",
            over_rounds(|round| round.non_durable_floor.p99_us),
        ),
        Metric::at_most(
            "warm p50 ÷ durable floor p50",
            "×",
            over_rounds(Round::p50_ratio),
            TARGET_RATIO,
        ),
        Metric::info(
            "warm p99 ÷ durable floor p99",
            "×",
            over_rounds(Round::p99_ratio),
        ),
        Metric::info(
            "warm latency p50, non-durable",
            "µs",
            over_rounds(|round| round.function_non_durable.p50_us),
        )
        .with_note("the function's session at `synchronous_commit = off`"),
        Metric::info(
            "warm p50 ÷ floor p50, both non-durable",
            "×",
            over_rounds(Round::p50_ratio_non_durable),
        ),
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
            "warm latency p50, non-durable, without the log line",
            "µs",
            over_rounds(|round| round.function_non_durable_without_log_line.p50_us),
        )
        .with_note("`LOG_LEVEL=warn`"),
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
            PEAK_RSS_TARGET_MIB,
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
                ARM64_TARGET_MIB,
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

/// Where warm p50 goes, part by part, each taken within a round.
pub(crate) fn breakdown(rounds: &[Round]) -> Vec<Metric> {
    let over_rounds = |value: fn(&Round) -> f64| Spread::of(rounds.iter().map(value));
    let part = |name: &str, value: fn(&Round) -> f64, how: &str| {
        Metric::info(name, "µs", over_rounds(value)).with_note(how)
    };
    let allowed = format!("{TARGET_RATIO} × durable floor p50");
    vec![
        part(
            "the INSERT and its durable commit",
            |round| round.durable_floor.p50_us,
            "durable floor p50",
        ),
        part(
            "… of which the commit waiting for its WAL flush",
            Round::commit_flush_p50_us,
            "durable − non-durable floor p50",
        ),
        part(
            "what the function adds to it",
            Round::added_p50_us,
            "warm p50 − durable floor p50",
        ),
        part(
            "= warm latency p50",
            |round| round.function.p50_us,
            "the sum",
        ),
        part("allowed by the target", Round::allowed_p50_us, &allowed),
        part(
            "over the target (negative: under it)",
            Round::over_target_p50_us,
            &format!("warm p50 − {allowed}"),
        ),
        part(
            "what the function adds, non-durable",
            Round::added_non_durable_p50_us,
            "warm p50 − floor p50, both at `synchronous_commit = off`; the four lines below",
        ),
        part(
            "… the Runtime API round trip",
            |round| round.runtime_noop.p50_us,
            "no-op bootstrap through `lambda_runtime`",
        ),
        part(
            "… `lambda_http`: the event decoded, the response encoded",
            Round::lambda_http_p50_us,
            "no-op through `lambda_http` − through `lambda_runtime`",
        ),
        part(
            "… the request's log line",
            Round::log_line_p50_us,
            "non-durable warm p50 − the same without the log line",
        ),
        part(
            "… the rest: the function's own steps, its driver, HTTP and kernel work",
            Round::rest_p50_us,
            "non-durable warm p50 without the log line − no-op through `lambda_http` − non-durable floor",
        ),
    ]
}

/// The run's figures in words: the targets, and where what the function adds goes. Every
/// figure is a median over this run's rounds (or cold starts).
pub(crate) fn findings(
    cold: &[ColdStart],
    rounds: &[Round],
    sizes: &Sizes,
    cores: usize,
) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let median = |values: Vec<f64>| Spread::of(values).map(|spread| spread.median);
    let over_rounds = |value: fn(&Round) -> f64| median(rounds.iter().map(value).collect());
    let shown = |value: Option<f64>, unit: &str| {
        value.map_or_else(
            || "unavailable".to_owned(),
            |value| report::with_unit(value, unit),
        )
    };
    let against = |value: Option<f64>, limit: f64| match value {
        Some(value) if value <= limit => "met",
        Some(_) => "not met",
        None => "unknown",
    };
    let ready = median(cold.iter().map(|start| start.ready_ms).collect());
    let rss = median(
        rounds
            .iter()
            .filter_map(|round| round.function.peak_rss_bytes)
            .map(|bytes| bytes as f64 / MIB)
            .collect(),
    );
    let arm64 = sizes.arm64_bytes.map(|bytes| bytes as f64 / MIB);
    let ratio = over_rounds(Round::p50_ratio);
    let ratio_verdict = match against(ratio, TARGET_RATIO) {
        "met" => "is met",
        "not met" => "is not met",
        _ => "could not be judged",
    };
    let us = |value: fn(&Round) -> f64| shown(over_rounds(value), "µs");
    // A flush longer than all the function adds can hide that work behind it, and then the
    // durable ratio speaks of the disk more than of the code.
    let flush = over_rounds(Round::commit_flush_p50_us);
    let added_non_durable = over_rounds(Round::added_non_durable_p50_us);
    let disk_hides = match (flush, added_non_durable) {
        (Some(flush), Some(added)) if flush > added => format!(
            " That wait was longer than all the function adds, so this run's durable ratio \
             says more about the disk than about the code: for the code, read the \
             non-durable ratio ({}).",
            shown(over_rounds(Round::p50_ratio_non_durable), "×")
        ),
        _ => String::new(),
    };
    let mut text = format!(
        "**Targets.** Cold start to ready (spawn → first `/next`, `DATABASE_URL` set, no \
         secrets fetch): {ready} (≤ {READY_TARGET_MS} ms: {ready_verdict}). Peak RSS after a \
         warm run: {rss} (≤ {PEAK_RSS_TARGET_MIB} MiB: {rss_verdict}). The arm64 bootstrap: \
         {arm64} (≤ {ARM64_TARGET_MIB} MiB: {arm64_verdict}). **Warm p50 ≤ {TARGET_RATIO}× \
         the durable floor {ratio_verdict}** in this run ({ratio}): the function adds \
         {added} to a durable INSERT of {floor}, where the target allows {allowance}.\n\n\
         Where that goes, measured where no wait for the disk hides it (both sessions at \
         `synchronous_commit = off`), where the function adds {added_non_durable}: \
         {runtime} is the Runtime API round trip every Lambda function pays (no code here \
         can remove it), {http} is `lambda_http` turning the event into an `http::Request` \
         and the answer into a response, {log} the request's log line, and {rest} the \
         function's own steps, its sqlx driver and the loopback sockets of three processes \
         sharing {cores} cores (the function, PostgreSQL and the bench itself). Each is a \
         median over the rounds, so they need not add up exactly. The disk's flush took \
         {flush} in this run (durable − non-durable floor p50).",
        ready = shown(ready, "ms"),
        ready_verdict = against(ready, READY_TARGET_MS),
        rss = shown(rss, "MiB"),
        rss_verdict = against(rss, PEAK_RSS_TARGET_MIB),
        arm64 = shown(arm64, "MiB"),
        arm64_verdict = against(arm64, ARM64_TARGET_MIB),
        ratio = shown(ratio, "×"),
        added = us(Round::added_p50_us),
        floor = us(|round| round.durable_floor.p50_us),
        allowance = shown(
            over_rounds(|round| (TARGET_RATIO - 1.0) * round.durable_floor.p50_us),
            "µs"
        ),
        added_non_durable = us(Round::added_non_durable_p50_us),
        runtime = us(|round| round.runtime_noop.p50_us),
        http = us(Round::lambda_http_p50_us),
        log = us(Round::log_line_p50_us),
        rest = us(Round::rest_p50_us),
        flush = us(Round::commit_flush_p50_us),
    );
    text.push_str(&disk_hides);
    text
}
