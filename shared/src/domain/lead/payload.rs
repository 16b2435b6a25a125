//! Body bytes → the JSON object a lead is mapped from, and the JSON text archived in
//! `payload`. Pure: no I/O.
//!
//! API Gateway's base64 encoding is undone by `lambda_http` before the bytes get here
//! (see `http`), so this sees the body exactly as the partner sent it.

use serde_json::{Map, Value};

use crate::error::Refusal;

/// Bodies above this many bytes are refused with 413 before any parsing.
pub const MAX_BODY_BYTES: usize = crate::domain::source::PARTNER_MAX_BODY;

/// The UTF-8 byte-order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A decoded body.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    /// The fields the lead is mapped from.
    pub fields: Map<String, Value>,
    /// The JSON text stored as `payload`: the body as received for JSON, the object of
    /// its fields for a form-encoded body.
    pub archived: String,
}

/// Whether the `Content-Type` says the body is form-encoded (any case, any parameters).
fn is_form(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| {
            essence
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Refuses a body over `limit` bytes.
pub fn check_size(body: &[u8], limit: usize) -> Result<(), Refusal> {
    if body.len() > limit {
        return Err(Refusal::PayloadTooLarge {
            size: body.len(),
            limit,
        });
    }
    Ok(())
}

/// Decodes a body of at most `limit` bytes: form-encoded when the content type says
/// so, JSON otherwise (a missing or unusual content type is tolerated, as the contract
/// asks).
pub fn decode(content_type: Option<&str>, body: &[u8], limit: usize) -> Result<Payload, Refusal> {
    check_size(body, limit)?;
    // Some senders put a UTF-8 byte-order mark before JSON. It is no part of the JSON
    // (nor can jsonb hold it), so it is skipped; the dedup ids still hash the body as
    // received.
    let body = body.strip_prefix(BOM).unwrap_or(body);
    // `curl -d '{...}'` labels a JSON body as a form; a form field never starts with `{`,
    // so such a body is read as the JSON it is rather than refused.
    let payload = if is_form(content_type) && !body.trim_ascii_start().starts_with(b"{") {
        decode_form(body)?
    } else {
        decode_json(body)?
    };
    if let Some(path) = find_nul_in(&payload.fields) {
        // PostgreSQL's text and jsonb cannot hold U+0000: refusing it here keeps a
        // partner's bad byte a 400 instead of a 500 they would retry forever.
        return Err(Refusal::InvalidJson(format!("U+0000 in {path}")));
    }
    Ok(payload)
}

fn decode_json(body: &[u8]) -> Result<Payload, Refusal> {
    if body.trim_ascii().is_empty() {
        return Err(Refusal::InvalidJson("empty body".into()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(fields)) => Ok(Payload {
            fields,
            // Valid JSON is valid UTF-8, so this never allocates a replacement.
            archived: String::from_utf8_lossy(body).into_owned(),
        }),
        Ok(other) => Err(Refusal::InvalidJson(format!(
            "top level is {}",
            kind(&other)
        ))),
        Err(error) => Err(Refusal::InvalidJson(error.to_string())),
    }
}

fn decode_form(body: &[u8]) -> Result<Payload, Refusal> {
    let mut fields = Map::new();
    for (key, value) in form_urlencoded::parse(body) {
        let value = Value::String(value.into_owned());
        match fields.get_mut(key.as_ref()) {
            // A repeated field keeps every value, in order, like the archive should.
            Some(Value::Array(values)) => values.push(value),
            Some(first) => *first = Value::Array(vec![first.take(), value]),
            None => {
                fields.insert(key.into_owned(), value);
            }
        }
    }
    if fields.is_empty() {
        return Err(Refusal::InvalidJson("form body has no fields".into()));
    }
    let archived = Value::Object(fields.clone()).to_string();
    Ok(Payload { fields, archived })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The location of the first U+0000 in a key or string, if any.
fn find_nul(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => text.contains('\0').then(|| "a value".to_owned()),
        Value::Array(items) => items.iter().find_map(find_nul),
        Value::Object(fields) => find_nul_in(fields),
        _ => None,
    }
}

fn find_nul_in(fields: &Map<String, Value>) -> Option<String> {
    fields.iter().find_map(|(key, value)| {
        if key.contains('\0') {
            Some("a key".to_owned())
        } else {
            find_nul(value)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes within the contract's limit.
    fn decode(content_type: Option<&str>, body: &[u8]) -> Result<Payload, Refusal> {
        super::decode(content_type, body, MAX_BODY_BYTES)
    }
    use serde_json::json;

    fn invalid(result: Result<Payload, Refusal>) -> bool {
        matches!(result, Err(Refusal::InvalidJson(_)))
    }

    #[test]
    fn json_object_is_kept_as_received() {
        let body = br#"{ "phone": 9876543210, "nested": {"a": [1, 2.50]} }"#;
        let payload = decode(Some("application/json; charset=utf-8"), body).unwrap();
        assert_eq!(payload.fields["phone"], json!(9876543210u64));
        assert_eq!(payload.archived.as_bytes(), body);
    }

    #[test]
    fn content_type_is_tolerated_when_missing_or_odd() {
        assert!(decode(None, br#"{"a":"b"}"#).is_ok());
        assert!(decode(Some("text/plain"), br#"{"a":"b"}"#).is_ok());
    }

    #[test]
    fn not_an_object_or_not_json_or_empty_is_invalid() {
        for body in [
            &b""[..],
            b"   ",
            b"[]",
            b"\"text\"",
            b"42",
            b"null",
            b"{",
            b"name=x",
            b"{\"a\":1} trailing",
            &[0xff, 0xfe, 0x00],
        ] {
            assert!(invalid(decode(Some("application/json"), body)), "{body:?}");
        }
    }

    #[test]
    fn a_byte_order_mark_before_json_is_skipped() {
        let body = b"\xEF\xBB\xBF{\"mobile\":\"99\"}";
        for content_type in [
            None,
            Some("application/json"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let payload = decode(content_type, body).unwrap();
            assert_eq!(payload.fields["mobile"], "99");
            assert_eq!(payload.archived, r#"{"mobile":"99"}"#);
        }
        // Only a leading mark: one inside is still not JSON.
        assert!(invalid(decode(None, b"{\"a\":1}\xEF\xBB\xBF")));
        assert!(invalid(decode(None, b"\xEF\xBB\xBF")));
    }

    #[test]
    fn empty_object_is_an_object() {
        assert!(decode(None, b"{}").unwrap().fields.is_empty());
    }

    #[test]
    fn size_limit_is_checked_before_parsing() {
        let at_limit = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_BODY_BYTES - 8));
        assert_eq!(at_limit.len(), MAX_BODY_BYTES);
        assert!(decode(None, at_limit.as_bytes()).is_ok());
        let over = vec![b'x'; MAX_BODY_BYTES + 1];
        assert!(matches!(
            decode(None, &over),
            Err(Refusal::PayloadTooLarge { size, .. }) if size == MAX_BODY_BYTES + 1
        ));
    }

    #[test]
    fn form_fields_become_an_object() {
        let payload = decode(
            Some("Application/X-WWW-Form-Urlencoded; charset=UTF-8"),
            b"caller_id=%2B917330995416&callid=c-1&tag=a&tag=b&empty=",
        )
        .unwrap();
        assert_eq!(
            Value::Object(payload.fields.clone()),
            json!({"caller_id": "+917330995416", "callid": "c-1", "tag": ["a", "b"], "empty": ""})
        );
        let archived: Value = serde_json::from_str(&payload.archived).unwrap();
        assert_eq!(archived, Value::Object(payload.fields));
    }

    #[test]
    fn json_labelled_as_form_is_read_as_json() {
        let body = br#"{"mobile":"99"}"#;
        let payload = decode(Some("application/x-www-form-urlencoded"), body).unwrap();
        assert_eq!(payload.fields["mobile"], "99");
        assert_eq!(payload.archived.as_bytes(), body);
        assert!(invalid(decode(
            Some("application/x-www-form-urlencoded"),
            b"{oops"
        )));
    }

    #[test]
    fn empty_form_is_invalid() {
        assert!(invalid(decode(
            Some("application/x-www-form-urlencoded"),
            b""
        )));
    }

    #[test]
    fn nul_characters_are_refused() {
        assert!(invalid(decode(None, br#"{"name":"a\u0000b"}"#)));
        assert!(invalid(decode(None, br#"{"a\u0000":"b"}"#)));
        assert!(invalid(decode(None, br#"{"deep":[{"x":"\u0000"}]}"#)));
        assert!(invalid(decode(
            Some("application/x-www-form-urlencoded"),
            b"name=a%00b"
        )));
    }
}
