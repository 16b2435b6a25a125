//! The group CRM's rules, pure (docs/crm.md). Here, a stored lead in the CRM's terms:
//! its phone's last ten digits, the `sources` row its platform maps to, the platform's own
//! id; and the text its salesperson is sent. Its rooms: who is assigned, and when an
//! untouched lead is escalated.

pub mod assignment;
pub mod sla;

use chrono::DateTime;

use crate::domain::ist::IST;

/// The `sources` row each platform maps to by default: the CRM pollers' own pairs (so a
/// lead a poller already entered is the same source), and the hand-seeded CarDekho and
/// CarWale rows.
pub const DEFAULT_SOURCES: &[(&str, &str, &str)] = &[
    ("Meta", "Meta", "meta_form"),
    ("Knowlarity", "Knowlarity", "knowlarity_call"),
    ("Google", "Google", "google_ads"),
    ("CarDekho", "CarDekho", "cardekho"),
    ("CarWale", "CarWale", "carwale"),
];

/// Which `sources` row (`display_name`, `source_type`) each platform's leads go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMap(Vec<(String, String, String)>);

impl Default for SourceMap {
    fn default() -> Self {
        Self(
            DEFAULT_SOURCES
                .iter()
                .map(|(platform, name, kind)| ((*platform).into(), (*name).into(), (*kind).into()))
                .collect(),
        )
    }
}

impl SourceMap {
    /// The defaults with `text`'s pairs over them: `Platform=Display name/source_type`,
    /// comma-separated (`Meta=META/meta,CarDekho=CarDekho/cardekho`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut map = Self::default();
        for pair in text
            .split(',')
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
        {
            let (platform, row) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?} is not Platform=Display name/source_type"))?;
            let (name, kind) = row
                .rsplit_once('/')
                .ok_or_else(|| format!("{pair:?} is not Platform=Display name/source_type"))?;
            let (platform, name, kind) = (platform.trim(), name.trim(), kind.trim());
            if platform.is_empty() || name.is_empty() || kind.is_empty() {
                return Err(format!("{pair:?} is not Platform=Display name/source_type"));
            }
            map.0
                .retain(|(known, _, _)| !known.eq_ignore_ascii_case(platform));
            map.0.push((platform.into(), name.into(), kind.into()));
        }
        Ok(map)
    }

    /// The row of `platform`'s leads; a platform not listed is its own name, lowercased
    /// as its type.
    pub fn row(&self, platform: &str) -> (String, String) {
        self.0
            .iter()
            .find(|(known, _, _)| known.eq_ignore_ascii_case(platform))
            .map(|(_, name, kind)| (name.clone(), kind.clone()))
            .unwrap_or_else(|| (platform.to_owned(), platform.to_lowercase()))
    }
}

/// The last ten digits of a phone (`+91 98765-43210` → `9876543210`), the CRM's key of a
/// customer; `None` with fewer than ten digits.
pub fn phone10(phone: &str) -> Option<String> {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= 10).then(|| digits[digits.len() - 10..].iter().collect())
}

/// A salesperson's number to text: `+91` and their ten digits, from `users.phone_number`
/// as typed (`98765 43210`, `098765-43210`, `+91 9876543210`). `None` when it is not an
/// Indian mobile number: ten digits starting 6 to 9.
pub fn cre_number(typed: &str) -> Option<String> {
    let digits: String = typed.chars().filter(char::is_ascii_digit).collect();
    let national = match digits.len() {
        10 => digits.as_str(),
        11 if digits.starts_with('0') => &digits[1..],
        12 if digits.starts_with("91") => &digits[2..],
        _ => return None,
    };
    national
        .starts_with(['6', '7', '8', '9'])
        .then(|| format!("+91{national}"))
}

/// The SMS a salesperson is sent when no wording is set: a DLT template registers the
/// wording, so an operator who registered another sets it (`CRM_SMS_TEMPLATE`).
pub const DEFAULT_SMS_TEMPLATE: &str =
    "New lead: {name}, {phone}, {model}, via {source} at {time} IST. Please call now.";

/// What the SMS says of a lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsLead<'a> {
    pub name: &'a str,
    /// The customer's whole number: it is the salesperson's lead, to tap and call.
    pub phone: &'a str,
    pub model: Option<&'a str>,
    pub source: &'a str,
    /// When the lead arrived, Unix milliseconds.
    pub arrived_ms: i64,
}

/// `template` with `{name}`, `{phone}`, `{model}`, `{source}` and `{time}` (HH:MM, IST)
/// filled in; a lead without a model says `any model`.
pub fn sms_text(template: &str, lead: &SmsLead<'_>) -> String {
    let time = DateTime::from_timestamp_millis(lead.arrived_ms)
        .map(|at| at.with_timezone(&IST).format("%H:%M").to_string())
        .unwrap_or_else(|| "--:--".into());
    template
        .replace("{name}", lead.name.trim())
        .replace("{phone}", lead.phone.trim())
        .replace(
            "{model}",
            lead.model
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .unwrap_or("any model"),
        )
        .replace("{source}", lead.source)
        .replace("{time}", &time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_ten_digits_are_the_customer() {
        assert_eq!(phone10("+91 98765-43210").as_deref(), Some("9876543210"));
        assert_eq!(phone10("09876543210").as_deref(), Some("9876543210"));
        assert_eq!(phone10("9876543210").as_deref(), Some("9876543210"));
        assert_eq!(phone10("12345"), None);
        assert_eq!(phone10(""), None);
    }

    #[test]
    fn platforms_map_to_the_pollers_rows_unless_configured() {
        let map = SourceMap::default();
        assert_eq!(map.row("Meta"), ("Meta".into(), "meta_form".into()));
        assert_eq!(
            map.row("Knowlarity"),
            ("Knowlarity".into(), "knowlarity_call".into())
        );
        assert_eq!(map.row("Google"), ("Google".into(), "google_ads".into()));
        let seeded = SourceMap::parse("Meta=Meta Lead Ads/meta, CarWale=CarWale/carwale").unwrap();
        assert_eq!(seeded.row("Meta"), ("Meta Lead Ads".into(), "meta".into()));
        assert_eq!(
            seeded.row("CarDekho"),
            ("CarDekho".into(), "cardekho".into())
        );
        assert_eq!(seeded.row("Other"), ("Other".into(), "other".into()));
        for bad in ["Meta", "Meta=META", "=META/meta", "Meta=/meta"] {
            assert!(SourceMap::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(SourceMap::parse("").unwrap(), map);
    }

    #[test]
    fn a_salesperson_is_texted_on_an_indian_mobile_only() {
        assert_eq!(cre_number("98765 43210").as_deref(), Some("+919876543210"));
        assert_eq!(cre_number("098765-43210").as_deref(), Some("+919876543210"));
        assert_eq!(
            cre_number("+91 9876543210").as_deref(),
            Some("+919876543210")
        );
        for unusable in ["", "12345", "0123456789", "+1 415 555 0123", "987654321"] {
            assert_eq!(cre_number(unusable), None, "{unusable}");
        }
    }

    #[test]
    fn the_text_names_the_customer_their_number_and_the_time_in_ist() {
        let lead = SmsLead {
            name: " Asha Rao ",
            phone: "+919876543210",
            model: Some("MG Hector"),
            source: "Meta",
            // 2026-11-26 04:32:10 UTC: 10:02 IST.
            arrived_ms: 1_795_667_530_000,
        };
        assert_eq!(
            sms_text(DEFAULT_SMS_TEMPLATE, &lead),
            "New lead: Asha Rao, +919876543210, MG Hector, via Meta at 10:02 IST. Please call now."
        );
        let modelless = SmsLead {
            model: None,
            ..lead
        };
        assert!(sms_text("{model}", &modelless).contains("any model"));
    }
}
