//! CloudWatch metrics as embedded metric format: one JSON line on stdout per figure,
//! which CloudWatch Logs turns into metrics. No API call, nothing to wait for, nothing
//! that can fail a lead's path.
//!
//! Each time is published per source, per salesperson (their CRM user id) and overall;
//! each count per source and overall; under `METRICS_NAMESPACE` (the stack's;
//! `MgDigitalLeads` when unset).

use std::io::Write;
use std::sync::LazyLock;

use serde_json::json;

static NAMESPACE: LazyLock<String> = LazyLock::new(|| {
    std::env::var("METRICS_NAMESPACE")
        .ok()
        .filter(|namespace| !namespace.trim().is_empty())
        .unwrap_or_else(|| "MgDigitalLeads".into())
});

/// From a customer's lead stored to its salesperson's text.
pub const STORED_TO_SMS: &str = "StoredToSms";
/// From a customer's lead stored to a person's first touch of it in the CRM.
pub const STORED_TO_FIRST_TOUCH: &str = "StoredToFirstTouch";

/// A lead that reached the CRM (a repeat of the same event not counted again).
pub const LEADS: &str = "Leads";

/// The line of one lead counted for `source` (per source and overall).
pub fn count_line(name: &str, source: &str, at_ms: i64) -> String {
    let dimensions = [("Source", source.to_owned())];
    envelope(name, "Count", json!(1), &dimensions, at_ms)
}

/// Writes one count's line (see [`count_line`]).
pub fn count(name: &str, source: &str, at_ms: i64) {
    write(&count_line(name, source, at_ms));
}

/// The line of one figure in milliseconds, for `source` and the salesperson `cre`.
pub fn line(name: &str, milliseconds: f64, source: &str, cre: i64, at_ms: i64) -> String {
    let dimensions = [("Source", source.to_owned()), ("Cre", cre.to_string())];
    envelope(
        name,
        "Milliseconds",
        json!(milliseconds.max(0.0)),
        &dimensions,
        at_ms,
    )
}

/// One figure's line: its value under `name`, published per each of `dimensions` and
/// overall.
fn envelope(
    name: &str,
    unit: &str,
    value: serde_json::Value,
    dimensions: &[(&str, String)],
    at_ms: i64,
) -> String {
    let mut sets: Vec<Vec<&str>> = dimensions.iter().map(|(key, _)| vec![*key]).collect();
    sets.push(Vec::new());
    let mut line = json!({
        "_aws": {
            "Timestamp": at_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE.as_str(),
                "Dimensions": sets,
                "Metrics": [{ "Name": name, "Unit": unit }],
            }],
        },
        name: value,
    });
    for (key, value) in dimensions {
        line[*key] = json!(value);
    }
    line.to_string()
}

/// Writes one figure's line (see [`line`]).
pub fn emit(name: &str, milliseconds: f64, source: &str, cre: i64, at_ms: i64) {
    write(&line(name, milliseconds, source, cre, at_ms));
}

fn write(line: &str) {
    // A metric lost to a closed stdout is no lead lost: nothing to report it to.
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_embedded_metric_format() {
        let line: serde_json::Value =
            serde_json::from_str(&line(STORED_TO_SMS, 1234.5, "Meta", 42, 1_700_000_000_000))
                .unwrap();
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(line["_aws"]["Timestamp"], 1_700_000_000_000i64);
        assert_eq!(directive["Metrics"][0]["Name"], STORED_TO_SMS);
        assert_eq!(directive["Metrics"][0]["Unit"], "Milliseconds");
        assert_eq!(directive["Dimensions"], json!([["Source"], ["Cre"], []]));
        assert_eq!(line["Source"], "Meta");
        assert_eq!(line["Cre"], "42");
        assert_eq!(line[STORED_TO_SMS], 1234.5);
        let counted: serde_json::Value =
            serde_json::from_str(&count_line(LEADS, "CarDekho", 1_700_000_000_000)).unwrap();
        let directive = &counted["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(
            directive["Metrics"][0],
            json!({ "Name": LEADS, "Unit": "Count" })
        );
        assert_eq!(directive["Dimensions"], json!([["Source"], []]));
        assert_eq!(
            (&counted["Source"], &counted[LEADS]),
            (&json!("CarDekho"), &json!(1))
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&super::line("x", -5.0, "s", 1, 0)).unwrap()
                ["x"],
            0.0
        );
    }
}
