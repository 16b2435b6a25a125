//! The `Lead stored` event's detail, bounded, and the sales desk's line for a stored
//! lead: the `summary` of that event, rendered here because an EventBridge input
//! transformer can only copy fields, not mask a phone number or turn a timestamp into a
//! local time.
//!
//! An event carries each field cut to [`FIELD_CHARS`] (the lead's row keeps the whole
//! value), so a detail stays far under EventBridge's limit whatever a partner sent.

use std::time::SystemTime;

use chrono::DateTime;

use crate::domain::ist::IST;
use crate::domain::lead::record::{unix_ms, LeadRecord};

/// The most characters of each string field an event carries; a field not listed,
/// [`OTHER_FIELD_CHARS`].
pub const FIELD_CHARS: &[(&str, usize)] = &[
    ("platform", 40),
    ("name", 200),
    ("phone_number", 40),
    ("phone_e164", 16),
    ("car_model", 100),
    ("lead_url", 1000),
    ("campaign", 200),
    ("status", 20),
    ("summary", 400),
];

/// The most characters of a string field [`FIELD_CHARS`] does not list.
pub const OTHER_FIELD_CHARS: usize = 100;

/// The largest detail an event may have once bounded: a field's characters written as
/// JSON take at most six bytes each, so the listed fields stay under a quarter of it.
pub const MAX_DETAIL_BYTES: usize = 64 * 1024;

/// The most characters of `field` an event carries.
pub fn field_chars(field: &str) -> usize {
    FIELD_CHARS
        .iter()
        .find(|(name, _)| *name == field)
        .map_or(OTHER_FIELD_CHARS, |(_, chars)| *chars)
}

/// A recorded detail (JSON text) as an event carries it: each string field cut to its
/// [`field_chars`]. Recorded details are cut already; one recorded before they were, or
/// by hand, is cut here. Refused, with the reason, when it is not a JSON object or is
/// still over [`MAX_DETAIL_BYTES`]: such a detail is set aside, not published.
pub fn bounded(detail: &str) -> Result<String, String> {
    let fits = detail.len() <= MAX_DETAIL_BYTES / 4;
    let mut value: serde_json::Map<String, serde_json::Value> = serde_json::from_str(detail)
        .map_err(|error| format!("the detail is not a JSON object: {error}"))?;
    let mut cut = false;
    for (field, value) in value.iter_mut() {
        if let serde_json::Value::String(text) = value {
            let limit = field_chars(field);
            if let Some((at, _)) = text.char_indices().nth(limit) {
                text.truncate(at);
                cut = true;
            }
        }
    }
    if fits && !cut {
        return Ok(detail.to_owned());
    }
    let text = serde_json::Value::Object(value).to_string();
    if text.len() > MAX_DETAIL_BYTES {
        return Err(format!(
            "the detail is {} bytes once cut, over {MAX_DETAIL_BYTES}",
            text.len()
        ));
    }
    Ok(text)
}

/// What the sales desk is told of one `Lead stored` event: the lead's row id (text, a
/// number's digits or a legacy table's id) and its summary line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub lead_id: String,
    pub summary: String,
}

impl Notice {
    /// The notice of an event's `detail`, or why it is none.
    pub fn from_detail(detail: &serde_json::Value) -> Result<Self, String> {
        let lead_id = match &detail["id"] {
            serde_json::Value::Number(id) => id.to_string(),
            serde_json::Value::String(id) if !id.is_empty() => id.clone(),
            _ => return Err("its detail has no id".into()),
        };
        let summary = detail["summary"]
            .as_str()
            .filter(|summary| !summary.trim().is_empty())
            .ok_or("its detail has no summary")?
            .to_owned();
        Ok(Self { lead_id, summary })
    }
}

/// What stands for the hidden digits of a phone number.
const HIDDEN: &str = "•••";

/// `New Meta lead: Asha Rao, +91 98765 •••10, MG Hector (MG Hector Nov), 10:02 IST`:
/// the platform, the name, the masked phone, the model and campaign where given, and
/// the lead's arrival in IST.
pub fn summary(record: &LeadRecord) -> String {
    let lead = &record.lead;
    let phone_e164 = crate::domain::lead::phone::e164(&lead.phone_number);
    let mut parts = vec![
        lead.name.trim().to_owned(),
        masked_phone(phone_e164.as_deref(), &lead.phone_number),
    ];
    let given = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
    };
    match (given(&lead.car_model), given(&lead.campaign)) {
        (Some(model), Some(campaign)) => parts.push(format!("{model} ({campaign})")),
        (Some(only), None) | (None, Some(only)) => parts.push(only),
        (None, None) => {}
    }
    parts.push(format!("{} IST", ist_clock(record.received_at)));
    parts.retain(|part| !part.is_empty());
    format!("New {} lead: {}", record.source.platform, parts.join(", "))
}

/// A phone number a salesperson can recognise but a stranger cannot dial: an Indian
/// number as `+91 98765 •••10`, any other E.164 number with the same three digits
/// hidden, and a number that is not valid with all but its last two characters hidden.
pub fn masked_phone(phone_e164: Option<&str>, raw: &str) -> String {
    if let Some(number) = phone_e164 {
        if let Some(national) = number.strip_prefix("+91").filter(|rest| rest.len() == 10) {
            return format!("+91 {} {HIDDEN}{}", &national[..5], &national[8..]);
        }
        let digits = number.len();
        if digits > 7 {
            return format!("{}{HIDDEN}{}", &number[..digits - 5], &number[digits - 2..]);
        }
    }
    let raw = raw.trim();
    let count = raw.chars().count();
    if count == 0 {
        return String::new();
    }
    let last_two: String = raw.chars().skip(count.saturating_sub(2)).collect();
    format!("{HIDDEN}{last_two}")
}

/// `HH:MM` of `time` in IST.
fn ist_clock(time: SystemTime) -> String {
    let ms = i64::try_from(unix_ms(time)).unwrap_or(i64::MAX);
    match DateTime::from_timestamp_millis(ms) {
        Some(utc) => utc.with_timezone(&IST).format("%H:%M").to_string(),
        None => String::from("--:--"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::domain::lead::dedup::Identity;
    use crate::domain::lead::Lead;
    use crate::domain::source::{Source, CARDEKHO, CARWALE, GOOGLE, KNOWLARITY, META};

    /// 2026-11-26 04:32:10 UTC: 10:02 in IST.
    const AT: u64 = 1_795_667_530;

    fn record(
        source: &'static Source,
        name: &str,
        phone: &str,
        model: Option<&str>,
        campaign: Option<&str>,
    ) -> LeadRecord {
        LeadRecord {
            source,
            lead: Lead {
                name: name.into(),
                phone_number: phone.into(),
                car_model: model.map(Into::into),
                lead_url: None,
                campaign: campaign.map(Into::into),
                submitted_at: None,
                test: false,
            },
            payload: "{}".into(),
            identity: Identity::default(),
            request_id: "r".into(),
            received_at: UNIX_EPOCH + Duration::from_secs(AT),
        }
    }

    #[test]
    fn each_source_says_its_platform_the_masked_phone_and_the_time_in_ist() {
        let cases = [
            (
                record(
                    &META,
                    "Asha Rao",
                    "+919876543210",
                    Some("MG Hector"),
                    Some("MG Hector Nov"),
                ),
                "New Meta lead: Asha Rao, +91 98765 •••10, MG Hector (MG Hector Nov), 10:02 IST",
            ),
            (
                record(
                    &CARDEKHO,
                    "Ravi Kumar",
                    "9812345678",
                    Some("MG Astor"),
                    None,
                ),
                "New CarDekho lead: Ravi Kumar, +91 98123 •••78, MG Astor, 10:02 IST",
            ),
            (
                record(
                    &CARWALE,
                    "Meera",
                    "09123456780",
                    None,
                    Some("Windsor launch"),
                ),
                "New CarWale lead: Meera, +91 91234 •••80, Windsor launch, 10:02 IST",
            ),
            (
                record(
                    &GOOGLE,
                    "John Doe",
                    "+14155550123",
                    Some("MG ZS EV"),
                    Some(""),
                ),
                "New Google lead: John Doe, +141555•••23, MG ZS EV, 10:02 IST",
            ),
            (
                record(&KNOWLARITY, "Caller 9988776655", "919988776655", None, None),
                "New Knowlarity lead: Caller 9988776655, +91 99887 •••55, 10:02 IST",
            ),
        ];
        for (record, expected) in cases {
            assert_eq!(summary(&record), expected);
        }
    }

    #[test]
    fn a_number_that_is_not_valid_shows_only_its_last_two_characters() {
        assert_eq!(masked_phone(None, "12345"), "•••45");
        assert_eq!(masked_phone(None, " "), "");
        assert_eq!(
            summary(&record(&CARDEKHO, "Ravi", "n/a", None, None)),
            "New CarDekho lead: Ravi, •••/a, 10:02 IST"
        );
    }

    #[test]
    fn a_detail_is_cut_field_by_field_and_refused_when_not_an_object() {
        let huge = "\u{1}".repeat(65_536);
        let detail = serde_json::json!({
            "id": 7,
            "name": huge,
            "phone_number": huge,
            "summary": "New Knowlarity lead",
            "extra": "y".repeat(500),
        })
        .to_string();
        assert!(detail.len() > 390_000, "{}", detail.len());
        let cut: serde_json::Value = serde_json::from_str(&bounded(&detail).unwrap()).unwrap();
        assert_eq!(cut["id"], 7);
        assert_eq!(cut["name"].as_str().unwrap().chars().count(), 200);
        assert_eq!(cut["phone_number"].as_str().unwrap().chars().count(), 40);
        assert_eq!(cut["summary"], "New Knowlarity lead");
        assert_eq!(cut["extra"].as_str().unwrap().len(), OTHER_FIELD_CHARS);
        // A detail within every bound is published as recorded, byte for byte.
        let small = r#"{"id":1,"name":"Asha"}"#;
        assert_eq!(bounded(small).unwrap(), small);
        assert!(bounded("[1]").is_err());
        assert!(bounded("not json").is_err());
        // The listed fields at their bound, each character as JSON's longest escape.
        let worst: usize = FIELD_CHARS
            .iter()
            .map(|(name, chars)| name.len() + 6 * chars + 6)
            .sum();
        assert!(worst < MAX_DETAIL_BYTES / 4, "{worst}");
    }

    #[test]
    fn a_notice_is_an_id_and_a_summary() {
        let notice =
            Notice::from_detail(&serde_json::json!({"id": 48213, "summary": "New Meta lead"}));
        assert_eq!(
            notice,
            Ok(Notice {
                lead_id: "48213".into(),
                summary: "New Meta lead".into()
            })
        );
        let text = Notice::from_detail(&serde_json::json!({"id": "a-uuid", "summary": "x"}));
        assert_eq!(text.unwrap().lead_id, "a-uuid");
        for detail in [
            serde_json::json!({"summary": "x"}),
            serde_json::json!({"id": 1}),
            serde_json::json!({"id": 1, "summary": " "}),
            serde_json::json!(null),
        ] {
            assert!(Notice::from_detail(&detail).is_err(), "{detail}");
        }
    }

    #[test]
    fn the_clock_is_ist_across_midnight() {
        // 18:45 UTC is 00:15 the next day in IST.
        let time = UNIX_EPOCH + Duration::from_secs(1_795_718_700);
        assert_eq!(ist_clock(time), "00:15");
    }
}
