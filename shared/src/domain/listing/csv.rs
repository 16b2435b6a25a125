//! A feed page as CSV (RFC 4180), every field quoted and no cell a spreadsheet would run,
//! and what a text costs inside Lambda's JSON answer.

use crate::domain::listing::FeedLead;

/// The CSV columns, in order; `payload` last and only when asked.
pub const CSV_COLUMNS: &[&str] = &[
    "id",
    "platform",
    "name",
    "phone_number",
    "phone_e164",
    "car_model",
    "lead_url",
    "campaign",
    "status",
    "created_at",
    "stored_at",
    "meta_created_at",
];

/// The CSV header line (CRLF-ended, as RFC 4180 has it), its names quoted as every
/// field is.
pub fn csv_header(payload: bool) -> String {
    let mut names = CSV_COLUMNS.to_vec();
    if payload {
        names.push("payload");
    }
    let mut line = names
        .iter()
        .map(|name| csv_field(name))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// One lead as a CSV line (CRLF-ended).
pub fn csv_line(lead: &FeedLead, payload: bool) -> String {
    let id = lead.id.to_string();
    let mut fields: Vec<&str> = vec![
        &id,
        text(&lead.platform),
        text(&lead.name),
        text(&lead.phone_number),
        text(&lead.phone_e164),
        text(&lead.car_model),
        text(&lead.lead_url),
        text(&lead.campaign),
        text(&lead.status),
        text(&lead.created_at),
        text(&lead.stored_at),
        text(&lead.meta_created_at),
    ];
    if payload {
        fields.push(lead.payload.as_deref().map_or("", |raw| raw.get()));
    }
    let mut line = String::new();
    for (index, field) in fields.iter().enumerate() {
        if index > 0 {
            line.push(',');
        }
        line.push_str(&csv_field(field));
    }
    line.push_str("\r\n");
    line
}

fn text(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or_default()
}

/// One CSV field, always quoted, its quotes doubled (RFC 4180): a spreadsheet whose
/// locale separates by `;` (or a tab) then still reads one cell, so a separator inside a
/// value never starts a new cell. A value a spreadsheet would run as a formula (starting
/// with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading `'`, so it shows
/// as text.
pub fn csv_field(value: &str) -> String {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let mut field = String::with_capacity(value.len() + 3);
    field.push('"');
    if formula {
        field.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            field.push('"');
        }
        field.push(c);
    }
    field.push('"');
    field
}

/// How many bytes `text` takes once written as a JSON string (Lambda carries the
/// response body inside its own JSON answer): a quote or backslash takes two, a control
/// character at most six.
pub fn escaped_len(text: &str) -> usize {
    text.bytes()
        .map(|byte| match byte {
            b'"' | b'\\' => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn csv_quotes_every_field_and_neutralises() {
        assert_eq!(csv_field("plain"), "\"plain\"");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("+91 98765"), "\"'+91 98765\"");
        assert_eq!(csv_field("-1"), "\"'-1\"");
        assert_eq!(csv_field("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(csv_field("\t=1"), "\"'\t=1\"");
        assert_eq!(csv_field("\r=1"), "\"'\r=1\"");
        assert_eq!(csv_field(""), "\"\"");
        // A `;` locale's spreadsheet reads this as one cell, not a name and a formula.
        assert_eq!(
            csv_field("Asha;=cmd|' /C calc'!A0"),
            "\"Asha;=cmd|' /C calc'!A0\""
        );
        assert!(csv_header(true).starts_with("\"id\",\"platform\","));
        assert!(csv_header(true).ends_with(",\"payload\"\r\n"));
    }

    #[test]
    fn escaped_length_counts_what_json_adds() {
        assert_eq!(escaped_len("ab"), 2);
        assert_eq!(escaped_len("a\"b"), 4);
        assert_eq!(escaped_len("\n"), 6);
        assert_eq!(escaped_len("é"), 2);
    }

    proptest! {
        #[test]
        fn a_csv_field_never_starts_a_formula_and_reads_back(value in "\\PC{0,20}") {
            let field = csv_field(&value);
            prop_assert!(field.starts_with('"') && field.ends_with('"'), "{}", field);
            let unquoted = field[1..field.len() - 1].replace("\"\"", "\"");
            prop_assert!(!unquoted.starts_with(['=', '+', '-', '@']), "{}", field);
            let original = unquoted.strip_prefix('\'').filter(|_| unquoted != value).unwrap_or(&unquoted);
            prop_assert_eq!(original, value.as_str());
        }
    }
}
