//! How a source's body becomes the flat fields its declaration's aliases are looked up
//! in (see `source::Shape`). Pure: no I/O.

use serde_json::{Map, Value};

use crate::domain::source::Shape;

/// The fields of a decoded body. For [`Shape::Columns`], each answer joins the body's
/// own keys under its field's name; an answer never replaces a key of the body itself,
/// so a form question cannot pose as the lead's id or campaign.
pub fn fields(shape: &Shape, mut body: Map<String, Value>) -> Map<String, Value> {
    if let Shape::Columns { list, key, value } = shape {
        if let Some(Value::Array(items)) = body.remove(*list) {
            for item in items {
                let (Some(name), Some(answer)) = (text(item.get(*key)), item.get(*value)) else {
                    continue;
                };
                if !body.contains_key(&name) {
                    body.insert(name, answer.clone());
                }
            }
        }
    }
    body
}

/// The fields of a lead read from the Graph API: its own keys (`id`, `created_time`,
/// `campaign_name`, …) and each `field_data` answer under its question's name, several
/// values joined by `", "` (a multiple-choice question).
pub fn graph_fields(lead: &Map<String, Value>) -> Map<String, Value> {
    let mut fields: Map<String, Value> = lead
        .iter()
        .filter(|(name, _)| name.as_str() != "field_data")
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let answers = lead.get("field_data").and_then(Value::as_array);
    for answer in answers.into_iter().flatten() {
        let Some(name) = text(answer.get("name")) else {
            continue;
        };
        let values: Vec<String> = answer
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|value| text(Some(value)))
            .collect();
        if !values.is_empty() && !fields.contains_key(&name) {
            fields.insert(name, Value::String(values.join(", ")));
        }
    }
    fields
}

/// A string or a number as text (Meta and Google send ids either way).
pub fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// The map of a JSON object written with `json!`, for tests.
#[cfg(test)]
pub(crate) fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::source::GOOGLE;
    use serde_json::json;

    #[test]
    fn columns_join_the_body_without_replacing_it() {
        let body = object(json!({
            "lead_id": "L-1",
            "campaign_id": 123456789012345678u64,
            "user_column_data": [
                {"column_id": "FULL_NAME", "column_name": "Full Name", "string_value": "Asha Rao"},
                {"column_id": "PHONE_NUMBER", "string_value": "+91 98765 43210"},
                {"column_id": "lead_id", "string_value": "forged"},
                {"column_name": "no id", "string_value": "x"},
                "not an item"
            ]
        }));
        let fields = fields(&GOOGLE.shape, body);
        assert_eq!(fields["FULL_NAME"], "Asha Rao");
        assert_eq!(fields["PHONE_NUMBER"], "+91 98765 43210");
        assert_eq!(fields["lead_id"], "L-1");
        assert_eq!(fields["campaign_id"], 123456789012345678u64);
        assert!(!fields.contains_key("user_column_data"));
        assert_eq!(fields.len(), 4);
    }

    #[test]
    fn objects_are_their_own_fields() {
        let body = object(json!({"user_column_data": [1], "a": "b"}));
        assert_eq!(fields(&Shape::Object, body.clone()), body);
    }

    #[test]
    fn graph_answers_join_the_lead() {
        let lead = object(json!({
            "id": "1234567890123456",
            "created_time": "2026-11-20T08:49:14+0000",
            "campaign_name": "Hector Diwali",
            "field_data": [
                {"name": "full_name", "values": ["Asha Rao"]},
                {"name": "phone_number", "values": ["+919876543210"]},
                {"name": "features", "values": ["sunroof", "ADAS"]},
                {"name": "id", "values": ["forged"]},
                {"name": "empty", "values": []}
            ]
        }));
        let fields = graph_fields(&lead);
        assert_eq!(fields["id"], "1234567890123456");
        assert_eq!(fields["full_name"], "Asha Rao");
        assert_eq!(fields["features"], "sunroof, ADAS");
        assert_eq!(fields["campaign_name"], "Hector Diwali");
        assert!(!fields.contains_key("field_data"));
        assert!(!fields.contains_key("empty"));
    }
}
