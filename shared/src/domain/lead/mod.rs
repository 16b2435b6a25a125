//! A lead, from the body a partner sent to the record stored: here, mapping a decoded
//! body into the row it becomes, through a source's declaration; in its rooms, what the
//! body is, its phone, its identity, the record. Pure: no I/O, so every alias rule is
//! tested here without a database.

pub mod dedup;
pub mod payload;
pub mod phone;
pub mod record;
pub mod shape;

use serde_json::{Map, Value};

use crate::domain::source::Source;
use crate::error::Refusal;

/// The mapped columns of one accepted lead (its platform is its source's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lead {
    pub name: String,
    pub phone_number: String,
    pub car_model: Option<String>,
    pub lead_url: Option<String>,
    pub campaign: Option<String>,
    /// When the platform says the lead was created, in Unix seconds.
    pub submitted_at: Option<i64>,
    /// A platform's test lead, stored with status `test`.
    pub test: bool,
}

/// The first alias whose value is a non-blank string or a number, trimmed.
///
/// Numbers are accepted because partners send phone numbers as JSON numbers; `null`,
/// booleans, arrays and objects never count as a value, so they fall through to the next
/// alias like a blank string does.
pub fn first_value(body: &Map<String, Value>, aliases: &[&str]) -> Option<String> {
    aliases.iter().find_map(|alias| match body.get(*alias)? {
        Value::String(text) => {
            let trimmed = text.trim();
            (!trimmed.is_empty()).then(|| trimmed.to_owned())
        }
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    })
}

/// The non-blank values of `parts`, joined by a space (a given and a family name).
fn joined(body: &Map<String, Value>, parts: &[&str]) -> Option<String> {
    let values: Vec<String> = parts
        .iter()
        .filter_map(|part| first_value(body, &[part]))
        .collect();
    (!values.is_empty()).then(|| values.join(" "))
}

/// `true`, or the text `"true"` (a form-encoded flag).
fn is_true(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(flag)) => *flag,
        Some(Value::String(text)) => text.trim().eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// The earliest time taken as a lead's own: 2000-01-01T00:00:00Z, in Unix seconds.
pub const EARLIEST: i64 = 946_684_800;
/// The first time no longer taken as a lead's own: 2100-01-01T00:00:00Z.
pub const LATEST: i64 = 4_102_444_800;

/// A platform's creation time: Unix seconds (Meta's notifications; milliseconds sent
/// as seconds are recognised), ISO 8601 with an offset with or without a colon (the
/// Graph API's `2015-02-28T08:49:14+0000`), or the same with a space for the `T`
/// (Knowlarity's `2026-12-02 10:00:00+05:30`). Anything else, and any time outside
/// 2000–2100, is no time at all (the payload keeps what was sent), never a refused lead.
pub fn unix_seconds(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<i64>() {
        return plausible(seconds);
    }
    if let Ok(seconds) = text.parse::<f64>() {
        // `1.7e9`, `1796185800.5`: a number as a JSON encoder may write it. The cast
        // saturates, and a saturated value is out of range.
        return seconds
            .is_finite()
            .then(|| plausible(seconds as i64))
            .flatten();
    }
    chrono::DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%z")
        .or_else(|_| chrono::DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%z"))
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|time| time.timestamp())
        .filter(|seconds| (EARLIEST..LATEST).contains(seconds))
}

/// `seconds` as a lead's time when it is one: within [`EARLIEST`]..[`LATEST`], or the
/// same range in milliseconds (a platform that sends milliseconds where seconds are
/// documented). Anything else is no lead's time: a database could not hold some of it,
/// and none of it is when a customer enquired.
pub fn plausible(seconds: i64) -> Option<i64> {
    if (EARLIEST..LATEST).contains(&seconds) {
        Some(seconds)
    } else if (EARLIEST * 1000..LATEST * 1000).contains(&seconds) {
        Some(seconds / 1000)
    } else {
        None
    }
}

/// Maps `body` into a lead, or names every missing required field in the source's order.
pub fn map(source: &'static Source, body: &Map<String, Value>) -> Result<Lead, Refusal> {
    let phone_number = first_value(body, source.phone_number.aliases);
    let name = first_value(body, source.name.aliases)
        .or_else(|| joined(body, source.name_parts))
        .or_else(|| {
            let prefix = source.default_name_prefix?;
            phone_number
                .as_ref()
                .map(|phone| format!("{prefix}{phone}"))
        });

    // The contract lists missing fields name first, then phone.
    let missing: Vec<&'static str> = [(&source.name, &name), (&source.phone_number, &phone_number)]
        .into_iter()
        .filter(|(_, value)| value.is_none())
        .filter_map(|(field, _)| field.required_as)
        .collect();

    match (name, phone_number) {
        (Some(name), Some(phone_number)) if missing.is_empty() => Ok(Lead {
            name,
            phone_number,
            car_model: first_value(body, source.car_model),
            lead_url: first_value(body, source.lead_url),
            campaign: first_value(body, source.campaign),
            submitted_at: first_value(body, source.submitted_at)
                .and_then(|text| unix_seconds(&text)),
            test: source.test_flag.is_some_and(|flag| is_true(body.get(flag))),
        }),
        _ => Err(Refusal::MissingFields(missing)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lead::shape::object;
    use crate::domain::source::{CARDEKHO, CARWALE, KNOWLARITY};
    use serde_json::json;

    fn missing(result: Result<Lead, Refusal>) -> Vec<&'static str> {
        match result {
            Err(Refusal::MissingFields(fields)) => fields,
            other => panic!("expected missing fields, got {other:?}"),
        }
    }

    #[test]
    fn knowlarity_caller_id_with_default_name() {
        let body = object(json!({"caller_id": " +917330995416 ", "uuid": "abc"}));
        let lead = map(&KNOWLARITY, &body).unwrap();
        assert_eq!(lead.phone_number, "+917330995416");
        assert_eq!(lead.name, "Knowlarity Lead +917330995416");
        assert_eq!(lead.lead_url, None);
    }

    #[test]
    fn knowlarity_aliases_in_priority_order() {
        let body = object(json!({
            "caller_id": "1", "customer_number": "2", "msisdn": "3",
            "phone": "4", "mobile": "5", "phone_number": "6"
        }));
        assert_eq!(map(&KNOWLARITY, &body).unwrap().phone_number, "6");
        let body = object(json!({"caller_id": "1", "customer_number": "2"}));
        assert_eq!(map(&KNOWLARITY, &body).unwrap().phone_number, "2");
    }

    #[test]
    fn blank_alias_does_not_block_the_next() {
        let body = object(json!({"phone_number": "   ", "mobile": null, "phone": "98765"}));
        assert_eq!(map(&KNOWLARITY, &body).unwrap().phone_number, "98765");
        let body = object(json!({"name": "", "customer_name": " Asha ", "phone": "1"}));
        assert_eq!(map(&CARDEKHO, &body).unwrap().name, "Asha");
    }

    #[test]
    fn numbers_count_and_other_types_do_not() {
        let body = object(json!({"phone_number": 917330995416u64, "name": "A"}));
        assert_eq!(map(&CARDEKHO, &body).unwrap().phone_number, "917330995416");
        let body =
            object(json!({"phone_number": true, "mobile": ["1"], "phone": {"n": 1}, "name": "A"}));
        assert_eq!(missing(map(&CARDEKHO, &body)), ["phone_number"]);
    }

    #[test]
    fn missing_fields_use_partner_names_in_order() {
        assert_eq!(
            missing(map(&CARDEKHO, &Map::new())),
            ["name", "phone_number"]
        );
        assert_eq!(
            missing(map(&CARWALE, &Map::new())),
            ["customer_name", "mobile"]
        );
        assert_eq!(missing(map(&KNOWLARITY, &Map::new())), ["phone_number"]);
        let body = object(json!({"customer_name": "  ", "mobile": "9"}));
        assert_eq!(missing(map(&CARWALE, &body)), ["customer_name"]);
        let body = object(json!({"name": "Ravi"}));
        assert_eq!(missing(map(&KNOWLARITY, &body)), ["phone_number"]);
    }

    #[test]
    fn carwale_prefers_its_own_names() {
        let body = object(json!({
            "name": "second", "customer_name": "first",
            "phone_number": "2", "mobile": "1",
            "car_model": "Hector", "vehicle_model": "Astor",
            "lead_url": "b", "page_url": "a", "url": "c",
            "utm_campaign": "diwali"
        }));
        let lead = map(&CARWALE, &body).unwrap();
        assert_eq!(
            lead,
            Lead {
                name: "first".into(),
                phone_number: "1".into(),
                car_model: Some("Astor".into()),
                lead_url: Some("a".into()),
                campaign: Some("diwali".into()),
                submitted_at: None,
                test: false,
            }
        );
    }

    #[test]
    fn cardekho_optional_columns() {
        let body = object(json!({
            "name": "N", "mobile": "7", "model": "Comet EV",
            "lead_detail_url": "https://x/1", "campaign": " c "
        }));
        let lead = map(&CARDEKHO, &body).unwrap();
        assert_eq!(lead.car_model.as_deref(), Some("Comet EV"));
        assert_eq!(lead.lead_url.as_deref(), Some("https://x/1"));
        assert_eq!(lead.campaign.as_deref(), Some("c"));
    }

    #[test]
    fn knowlarity_explicit_name_wins_over_default() {
        let body = object(json!({"caller_name": "Meera", "customer_number": "5"}));
        assert_eq!(map(&KNOWLARITY, &body).unwrap().name, "Meera");
    }

    #[test]
    fn knowlarity_start_time_with_its_offset_is_the_submitted_time() {
        let body = object(json!({
            "customer_number": "+917330995416",
            "start_time": "2026-12-02 10:00:00+05:30"
        }));
        // 04:30 UTC on 2 December 2026.
        assert_eq!(
            map(&KNOWLARITY, &body).unwrap().submitted_at,
            Some(1_796_185_800)
        );
        assert_eq!(unix_seconds("2026-12-02 10:00:00"), None);
    }

    #[test]
    fn an_absurd_time_is_no_time_and_milliseconds_are_seconds() {
        for absurd in [
            "9223372036855",
            "9223372036854775807",
            "-9223372036854775808",
            "10000000000000000",
            "1e16",
            "-1",
            "0",
            "NaN",
            "inf",
            "1999-12-31T23:59:59+00:00",
            "2100-01-01T00:00:00+00:00",
            "+99999-01-01T00:00:00+00:00",
        ] {
            assert_eq!(unix_seconds(absurd), None, "{absurd}");
        }
        assert_eq!(unix_seconds("1796185800"), Some(1_796_185_800));
        assert_eq!(unix_seconds("1796185800123"), Some(1_796_185_800));
        assert_eq!(unix_seconds("1.7961858e9"), Some(1_796_185_800));
        assert_eq!(unix_seconds("2000-01-01T00:00:00Z"), Some(EARLIEST));
        let body = object(json!({"customer_number": "5", "start_time": "9223372036855"}));
        let lead = map(&KNOWLARITY, &body).unwrap();
        assert_eq!(
            lead.submitted_at, None,
            "the lead is kept, without the time"
        );
    }
}
