//! A lead the table cannot hold as it is, made to fit rather than refused: values cut to
//! their columns' widths, characters it cannot store replaced.

use sqlx::postgres::PgConnection;

use crate::domain::lead::record::LeadRecord;

/// PostgreSQL's `string_data_right_truncation`: a value longer than its column.
pub(super) const STRING_TOO_LONG: &str = "22001";

/// PostgreSQL's `untranslatable_character` and `character_not_in_repertoire`: what
/// text and jsonb answer to U+0000, which neither can hold.
pub(super) const UNTRANSLATABLE: &str = "22P05";

pub(super) const NOT_IN_REPERTOIRE: &str = "22021";

/// The record with every U+0000 in its values and its payload replaced by U+FFFD (the
/// replacement character), or `None` when it holds none. A partner's body never gets
/// here with one (it is refused as invalid JSON); a platform's lead read from its API may.
pub(super) fn without_nul(record: &LeadRecord) -> Option<LeadRecord> {
    fn clean(text: &mut String) -> bool {
        let found = text.contains('\0');
        if found {
            *text = text.replace('\0', "\u{FFFD}");
        }
        found
    }
    fn clean_value(value: &mut serde_json::Value) -> bool {
        match value {
            serde_json::Value::String(text) => clean(text),
            serde_json::Value::Array(items) => items
                .iter_mut()
                .fold(false, |found, item| clean_value(item) | found),
            serde_json::Value::Object(fields) => {
                let keys: Vec<String> = fields
                    .keys()
                    .filter(|key| key.contains('\0'))
                    .cloned()
                    .collect();
                let mut found = !keys.is_empty();
                for key in keys {
                    if let Some(item) = fields.remove(&key) {
                        fields.insert(key.replace('\0', "\u{FFFD}"), item);
                    }
                }
                for item in fields.values_mut() {
                    found |= clean_value(item);
                }
                found
            }
            _ => false,
        }
    }
    let mut cleaned = record.clone();
    let lead = &mut cleaned.lead;
    let mut found = clean(&mut lead.name) | clean(&mut lead.phone_number);
    for value in [&mut lead.car_model, &mut lead.lead_url, &mut lead.campaign]
        .into_iter()
        .flatten()
    {
        found |= clean(value);
    }
    if let Ok(mut payload) = serde_json::from_str::<serde_json::Value>(&record.payload) {
        if clean_value(&mut payload) {
            cleaned.payload = payload.to_string();
            found = true;
        }
    }
    found.then_some(cleaned)
}

/// The character widths of the lead table's bounded text columns (`varchar(n)`,
/// `char(n)`), from the catalog. Only read after a value did not fit, so the insert of
/// every other lead costs nothing for it.
pub(super) const COLUMN_WIDTHS: &str = r#"
SELECT attname::text, (atttypmod - 4)::int4
FROM pg_attribute
WHERE attrelid = to_regclass('public."mg-digital-leads"')
  AND attnum > 0 AND NOT attisdropped
  AND atttypid IN ('varchar'::regtype, 'bpchar'::regtype) AND atttypmod > 4"#;

pub(super) async fn column_widths(
    connection: &mut PgConnection,
) -> Result<Vec<(String, usize)>, sqlx::Error> {
    let widths: Vec<(String, i32)> = sqlx::query_as(COLUMN_WIDTHS).fetch_all(connection).await?;
    Ok(widths
        .into_iter()
        .map(|(column, width)| (column, usize::try_from(width).unwrap_or(0)))
        .collect())
}

/// The record with each mapped value cut to its column's width, or `None` when every
/// value already fits (the refusal was not this record's values). The payload is not
/// cut: it keeps every value whole.
pub(super) fn fit(record: &LeadRecord, widths: &[(String, usize)]) -> Option<LeadRecord> {
    let mut fitted = record.clone();
    let mut cut = false;
    let mut fit_to = |value: &mut String, column: &str| {
        let Some((_, width)) = widths.iter().find(|(name, _)| name == column) else {
            return;
        };
        if let Some((end, _)) = value.char_indices().nth(*width) {
            value.truncate(end);
            cut = true;
        }
    };
    let lead = &mut fitted.lead;
    fit_to(&mut lead.name, "name");
    fit_to(&mut lead.phone_number, "phone_number");
    for (value, column) in [
        (&mut lead.car_model, "car_model"),
        (&mut lead.lead_url, "lead_url"),
        (&mut lead.campaign, "campaign"),
    ] {
        if let Some(value) = value {
            fit_to(value, column);
        }
    }
    fit_to(&mut fitted.request_id, "request_id");
    cut.then_some(fitted)
}
