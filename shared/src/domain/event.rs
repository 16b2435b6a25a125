//! The sales desk's line for a stored lead: the `summary` of its `Lead stored` event,
//! rendered here because an EventBridge input transformer can only copy fields, not
//! mask a phone number or turn a timestamp into a local time.

use std::time::SystemTime;

use chrono::DateTime;

use crate::domain::ist::IST;
use crate::domain::record::{unix_ms, LeadRecord};

/// What stands for the hidden digits of a phone number.
const HIDDEN: &str = "•••";

/// `New Meta lead: Asha Rao, +91 98765 •••10, MG Hector (MG Hector Nov), 10:02 IST`:
/// the platform, the name, the masked phone, the model and campaign where given, and
/// the lead's arrival in IST.
pub fn summary(record: &LeadRecord) -> String {
    let lead = &record.lead;
    let phone_e164 = crate::domain::phone::e164(&lead.phone_number);
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
    use crate::domain::dedup::Identity;
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
    fn the_clock_is_ist_across_midnight() {
        // 18:45 UTC is 00:15 the next day in IST.
        let time = UNIX_EPOCH + Duration::from_secs(1_795_718_700);
        assert_eq!(ist_clock(time), "00:15");
    }
}
