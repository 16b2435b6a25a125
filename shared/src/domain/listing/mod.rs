//! A listing of the lead table, as the leads feed asks for it, pure: the request's
//! parameters to a [`Query`] (each bad one named), with the opaque [`Cursor`] of keyset
//! pagination; its rooms also write a page as CSV.
//!
//! Rows are listed by the time they were stored, newest first, ties broken by id. Rows
//! written before `stored_at` existed have none: they are listed by `created_at` instead
//! (see `infra::store::reader`), so the walk covers every row of the table.

pub mod csv;
pub mod cursor;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Utc};

use crate::domain::ist::IST;
use crate::domain::lead::phone;
use crate::domain::lead::record::RowId;
pub use crate::domain::listing::cursor::{Cursor, END_US};

/// Rows per page when `limit` is not given.
pub const DEFAULT_LIMIT: u16 = 50;

/// The most rows a page may ask for.
pub const MAX_LIMIT: u16 = 500;

/// The longest `search` accepted: a name or a number, not a document.
pub const MAX_SEARCH_CHARS: usize = 100;

/// The most characters of an unknown parameter's name an answer repeats.
pub const MAX_ECHOED_CHARS: usize = 24;

/// The earliest time a date parameter may name: 1899-12-31T00:00:00Z, in Unix
/// microseconds, so 1900-01-01 in any offset (every lead is later; the database holds
/// it).
pub const EARLIEST_US: i64 = -2_209_075_200_000_000;

/// A parameter the feed cannot use, named as the request names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{parameter} {reason}")]
pub struct ParameterError {
    pub parameter: String,
    pub reason: String,
}

impl From<ParameterError> for crate::error::FeedError {
    fn from(error: ParameterError) -> Self {
        Self::Parameter {
            parameter: error.parameter,
            reason: error.reason,
        }
    }
}

fn bad(parameter: &str, reason: impl Into<String>) -> ParameterError {
    ParameterError {
        parameter: parameter.to_owned(),
        reason: reason.into(),
    }
}

/// Which rows a page holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    /// Any of these platforms (none: every platform).
    pub platforms: Vec<String>,
    /// Any of these statuses (none: every status).
    pub statuses: Vec<String>,
    /// Listed at or after this time (Unix microseconds).
    pub from_us: Option<i64>,
    /// Listed before this time (Unix microseconds): the end of `toDate`, exclusive.
    pub until_us: Option<i64>,
    /// A case-insensitive substring of the name, phone, model or campaign.
    pub search: Option<String>,
    /// One person's number in E.164, matched on `phone_e164`.
    pub phone_e164: Option<String>,
    /// The page's size.
    pub limit: u16,
    /// After this row (the previous page's last).
    pub after: Option<Cursor>,
    /// Whether each lead carries its payload.
    pub payload: bool,
}

/// How the page is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

/// A request to the feed, as parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub filter: Filter,
    pub format: Format,
    /// The phone as the request gave it, to log masked.
    pub phone_given: Option<String>,
}

/// The parameters the feed knows; any other is refused by name, so a typo
/// (`from_date`) does not silently list everything.
const KNOWN: &[&str] = &[
    "platform", "status", "fromDate", "toDate", "search", "phone", "limit", "cursor", "include",
    "format",
];

/// Parses the query string's pairs (a name may repeat) and the `Accept` header. Blank
/// values count as absent, as the old feed treated them.
pub fn parse<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    accept: Option<&str>,
) -> Result<Query, ParameterError> {
    let mut filter = Filter {
        limit: DEFAULT_LIMIT,
        ..Filter::default()
    };
    let mut format = if accept.is_some_and(accepts_csv) {
        Format::Csv
    } else {
        Format::Json
    };
    let mut phone_given = None;
    let mut seen: Vec<&str> = Vec::new();
    let mut pairs: Vec<(&str, &str)> = pairs.into_iter().collect();
    // The query map's order is not the request's: sort, so a message names the same
    // parameter for the same request every time.
    pairs.sort_unstable();
    for (name, value) in pairs {
        let value = value.trim();
        let Some(&known) = KNOWN.iter().find(|known| **known == name) else {
            return Err(bad(&echoed(name), "is not a parameter of this feed"));
        };
        if value.is_empty() {
            continue;
        }
        let repeatable = matches!(known, "platform" | "status" | "include");
        if !repeatable && seen.contains(&known) {
            return Err(bad(known, "is given more than once"));
        }
        seen.push(known);
        match known {
            "platform" => filter.platforms.extend(list(value)),
            "status" => filter.statuses.extend(list(value)),
            "fromDate" => filter.from_us = Some(time(known, value, Edge::Start)?),
            "toDate" => filter.until_us = Some(time(known, value, Edge::End)?),
            "search" => filter.search = Some(search(value)?),
            "phone" => {
                let number =
                    phone::e164(value).ok_or_else(|| bad(known, "is not a phone number"))?;
                filter.phone_e164 = Some(number);
                phone_given = Some(value.to_owned());
            }
            "limit" => filter.limit = limit(value)?,
            "cursor" => {
                filter.after = Some(
                    Cursor::decode(value)
                        .ok_or_else(|| bad(known, "is not a cursor this feed gave"))?,
                )
            }
            "include" => {
                for part in list(value) {
                    match part.as_str() {
                        "payload" => filter.payload = true,
                        _ => return Err(bad(known, "may only be payload")),
                    }
                }
            }
            _ => {
                format = match value.to_ascii_lowercase().as_str() {
                    "csv" => Format::Csv,
                    "json" => Format::Json,
                    _ => return Err(bad(known, "must be json or csv")),
                }
            }
        }
    }
    if let (Some(from), Some(until)) = (filter.from_us, filter.until_us) {
        if from >= until {
            return Err(bad("fromDate", "is after toDate"));
        }
    }
    Ok(Query {
        filter,
        format,
        phone_given,
    })
}

/// An unknown parameter's name as an answer may repeat it: cut to
/// [`MAX_ECHOED_CHARS`], its digits masked (a name may be a phone number or a key sent
/// in the wrong place), anything but a visible ASCII character shown as `?`.
fn echoed(name: &str) -> String {
    let mut shown: String = name
        .chars()
        .take(MAX_ECHOED_CHARS)
        .map(|c| match c {
            '0'..='9' => '*',
            c if c.is_ascii_graphic() => c,
            _ => '?',
        })
        .collect();
    if name.chars().count() > MAX_ECHOED_CHARS {
        shown.push_str("...");
    }
    shown
}

/// Whether an `Accept` header asks for CSV rather than JSON.
fn accepts_csv(accept: &str) -> bool {
    accept.split(',').any(|media| {
        media
            .split(';')
            .next()
            .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("text/csv"))
    })
}

/// A repeatable parameter's values: each value may also list several, comma-separated.
fn list(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(str::to_owned)
}

fn limit(value: &str) -> Result<u16, ParameterError> {
    match value.parse::<u16>() {
        Ok(limit @ 1..=MAX_LIMIT) => Ok(limit),
        _ => Err(bad(
            "limit",
            format!("must be a whole number from 1 to {MAX_LIMIT}"),
        )),
    }
}

fn search(value: &str) -> Result<String, ParameterError> {
    if value.chars().count() > MAX_SEARCH_CHARS {
        return Err(bad(
            "search",
            format!("is longer than {MAX_SEARCH_CHARS} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(bad("search", "holds a control character"));
    }
    Ok(value.to_owned())
}

/// Which end of a day a bare date means.
#[derive(Clone, Copy)]
enum Edge {
    /// `fromDate`: the day's first instant.
    Start,
    /// `toDate`: the day is included whole, so the bound is the next day's start.
    End,
}

/// A date or date-time as the feed reads `fromDate` (`end`: as it reads `toDate`, a date
/// covering its whole day), in Unix microseconds: the CRM backfill's span is written so.
pub fn moment(parameter: &str, value: &str, end: bool) -> Result<i64, ParameterError> {
    time(
        parameter,
        value.trim(),
        if end { Edge::End } else { Edge::Start },
    )
}

/// A date or date-time as Unix microseconds. A date-time without an offset, or a bare
/// date, is IST. `toDate` is inclusive: a date covers its whole day, a date-time itself.
fn time(parameter: &str, value: &str, edge: Edge) -> Result<i64, ParameterError> {
    let invalid = || {
        bad(
            parameter,
            "must be a date (2026-01-31) or a date-time (2026-01-31T18:30:00, IST unless an offset is given)",
        )
    };
    let at: DateTime<FixedOffset> = if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        let day = match edge {
            Edge::Start => date,
            Edge::End => date.succ_opt().ok_or_else(invalid)?,
        };
        let start = day.and_time(NaiveTime::MIN);
        let micros = start
            .and_local_timezone(IST)
            .single()
            .map(|at| at.timestamp_micros())
            .ok_or_else(invalid)?;
        // The day's start is the bound of either edge (the end's is the next day's).
        return in_range(parameter, micros, Edge::Start);
    } else if let Ok(at) = DateTime::parse_from_rfc3339(value) {
        at
    } else {
        let naive = [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%d %H:%M:%S%.f",
        ]
        .iter()
        .find_map(|layout| NaiveDateTime::parse_from_str(value, layout).ok())
        .ok_or_else(invalid)?;
        naive.and_local_timezone(IST).single().ok_or_else(invalid)?
    };
    in_range(parameter, at.timestamp_micros(), edge)
}

/// A date parameter's bound, when it lies from 1900 to the end of the year 9999.
fn in_range(parameter: &str, micros: i64, edge: Edge) -> Result<i64, ParameterError> {
    let bound = match edge {
        Edge::Start => micros,
        // Inclusive of the instant given.
        Edge::End => micros.saturating_add(1),
    };
    if (EARLIEST_US..=END_US).contains(&bound) {
        Ok(bound)
    } else {
        Err(bad(parameter, "must be from 1900-01-01 to 9999-12-31"))
    }
}

/// A Unix time in microseconds as RFC 3339 in UTC, to the millisecond, as the old feed
/// wrote its times (`2026-01-31T13:00:00.000Z`).
pub fn timestamp(micros: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .map(|at| at.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// A Unix time in microseconds as RFC 3339 in UTC, to the microsecond: how the reader
/// binds a time to a query, exactly.
pub fn bound(micros: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .map(|at| at.to_rfc3339_opts(SecondsFormat::Micros, true))
}

/// `search` as an `ILIKE` pattern: its `%`, `_` and `\` taken literally, anywhere in
/// the value.
pub fn like_pattern(search: &str) -> String {
    let mut pattern = String::with_capacity(search.len() + 2);
    pattern.push('%');
    for c in search.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// One lead of a page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FeedLead {
    /// A number; text for a legacy table whose `id` is not one.
    pub id: RowId,
    pub platform: Option<String>,
    pub name: Option<String>,
    pub phone_number: Option<String>,
    pub phone_e164: Option<String>,
    pub car_model: Option<String>,
    pub lead_url: Option<String>,
    pub campaign: Option<String>,
    pub status: Option<String>,
    pub created_at: Option<String>,
    pub stored_at: Option<String>,
    pub meta_created_at: Option<String>,
    /// Only when asked (`include=payload`): the body as received, as stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Box<serde_json::value::RawValue>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn query(pairs: &[(&str, &str)]) -> Result<Query, ParameterError> {
        parse(pairs.iter().copied(), None)
    }

    #[test]
    fn defaults() {
        let query = query(&[]).unwrap();
        assert_eq!(query.filter.limit, DEFAULT_LIMIT);
        assert_eq!(query.format, Format::Json);
        assert!(!query.filter.payload);
        assert_eq!(query.filter.after, None);
    }

    #[test]
    fn every_parameter_parses() {
        let cursor = Cursor {
            listed_at_us: 1_767_225_600_000_000,
            id: RowId::Number(42),
        }
        .encode();
        let query = query(&[
            ("platform", "CarDekho"),
            ("platform", "Meta,Google"),
            ("status", "new"),
            ("fromDate", "2026-01-01"),
            ("toDate", "2026-01-31"),
            ("search", "Windsor"),
            ("phone", "+91 98765 43210"),
            ("limit", "500"),
            ("cursor", &cursor),
            ("include", "payload"),
            ("format", "CSV"),
        ])
        .unwrap();
        let filter = &query.filter;
        assert_eq!(filter.platforms, ["CarDekho", "Meta", "Google"]);
        assert_eq!(filter.statuses, ["new"]);
        // 2026-01-01T00:00 IST is 2025-12-31T18:30Z.
        assert_eq!(filter.from_us, Some(1_767_205_800_000_000));
        // The whole of the 31st: up to 2026-02-01T00:00 IST.
        assert_eq!(filter.until_us, Some(1_769_884_200_000_000));
        assert_eq!(filter.search.as_deref(), Some("Windsor"));
        assert_eq!(filter.phone_e164.as_deref(), Some("+919876543210"));
        assert_eq!(query.phone_given.as_deref(), Some("+91 98765 43210"));
        assert_eq!(filter.limit, 500);
        assert_eq!(filter.after.as_ref().unwrap().id, RowId::Number(42));
        assert!(filter.payload);
        assert_eq!(query.format, Format::Csv);
    }

    #[test]
    fn date_times_with_and_without_an_offset() {
        let from = |value: &str| query(&[("fromDate", value)]).unwrap().filter.from_us;
        let ist = from("2026-01-31T18:30:00").unwrap();
        assert_eq!(from("2026-01-31T13:00:00Z"), Some(ist));
        assert_eq!(from("2026-01-31T18:30:00+05:30"), Some(ist));
        assert_eq!(from("2026-01-31T18:30"), Some(ist));
        assert_eq!(from("2026-01-31 18:30:00"), Some(ist));
        let to = query(&[("toDate", "2026-01-31T18:30:00Z")])
            .unwrap()
            .filter
            .until_us
            .unwrap();
        assert_eq!(to, from("2026-01-31T18:30:00Z").unwrap() + 1);
    }

    #[test]
    fn a_bad_parameter_is_named() {
        for (pairs, parameter) in [
            (vec![("limit", "0")], "limit"),
            (vec![("limit", "501")], "limit"),
            (vec![("limit", "ten")], "limit"),
            (vec![("fromDate", "31/01/2026")], "fromDate"),
            (vec![("toDate", "2026-02-30")], "toDate"),
            (
                vec![("fromDate", "2026-02-01"), ("toDate", "2026-01-01")],
                "fromDate",
            ),
            (vec![("phone", "12345")], "phone"),
            (vec![("phone", "abc")], "phone"),
            (vec![("cursor", "not-a-cursor")], "cursor"),
            (vec![("include", "secrets")], "include"),
            (vec![("format", "xml")], "format"),
            (vec![("from_date", "2026-01-01")], "from_date"),
            (vec![("limit", "5"), ("limit", "6")], "limit"),
            (vec![("search", "a\u{0}b")], "search"),
        ] {
            let error = query(&pairs).expect_err(&format!("{pairs:?}"));
            assert_eq!(error.parameter, parameter, "{pairs:?}: {error}");
            assert!(error.to_string().starts_with(parameter), "{error}");
        }
        let long = "x".repeat(MAX_SEARCH_CHARS + 1);
        assert_eq!(query(&[("search", &long)]).unwrap_err().parameter, "search");
    }

    #[test]
    fn a_date_the_database_cannot_hold_is_named() {
        for (parameter, value) in [
            ("fromDate", "0001-01-01"),
            ("fromDate", "+99999-01-01"),
            ("toDate", "+99999-01-01"),
            ("toDate", "+10000-01-01"),
            ("fromDate", "1899-12-30T23:59:59Z"),
            ("fromDate", "+12026-01-01"),
        ] {
            let error = query(&[(parameter, value)]).expect_err(value);
            assert_eq!(error.parameter, parameter, "{value}: {error}");
            assert_eq!(
                error.reason, "must be from 1900-01-01 to 9999-12-31",
                "{value}"
            );
        }
        assert!(query(&[("fromDate", "1900-01-01"), ("toDate", "9999-12-31")]).is_ok());
        // A cursor of a time no row can have is not one this feed gave.
        for listed_at_us in [i64::MIN, i64::MAX, END_US] {
            let crafted = Cursor {
                listed_at_us,
                id: RowId::Number(1),
            }
            .encode();
            let error = query(&[("cursor", &crafted)]).expect_err("crafted");
            assert_eq!(error.parameter, "cursor");
        }
    }

    #[test]
    fn an_unknown_name_is_echoed_short_and_masked() {
        let error = query(&[("9876543210", "x")]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "********** is not a parameter of this feed"
        );
        let long = format!("api_key_{}", "a".repeat(40));
        let error = query(&[(long.as_str(), "x")]).unwrap_err();
        assert_eq!(error.parameter, format!("api_key_{}...", "a".repeat(16)));
        assert_eq!(
            query(&[("from\u{7}date", "x")]).unwrap_err().parameter,
            "from?date"
        );
    }

    #[test]
    fn blank_values_are_absent() {
        let query = query(&[("platform", ""), ("search", "  "), ("limit", "")]).unwrap();
        assert!(query.filter.platforms.is_empty());
        assert_eq!(query.filter.search, None);
        assert_eq!(query.filter.limit, DEFAULT_LIMIT);
    }

    #[test]
    fn accept_text_csv_asks_for_csv() {
        let format = |accept| parse([], Some(accept)).unwrap().format;
        assert_eq!(format("text/csv"), Format::Csv);
        assert_eq!(format("application/json, text/csv;q=0.5"), Format::Csv);
        assert_eq!(format("application/json"), Format::Json);
        assert_eq!(format("*/*"), Format::Json);
    }

    #[test]
    fn search_patterns_take_wildcards_literally() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
        assert_eq!(like_pattern("Windsor"), "%Windsor%");
    }

    #[test]
    fn times_render_in_utc() {
        assert_eq!(
            timestamp(1_767_225_600_123_456).as_deref(),
            Some("2026-01-01T00:00:00.123Z")
        );
        assert_eq!(
            bound(1_767_225_600_123_456).as_deref(),
            Some("2026-01-01T00:00:00.123456Z")
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(name in "[a-zA-Z]{1,8}", value in "\\PC{0,30}") {
            let _ = parse([(name.as_str(), value.as_str())], Some(value.as_str()));
        }
    }
}
