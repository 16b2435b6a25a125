//! What makes two requests the same lead. Pure: no I/O.
//!
//! A lead is stored once per source under each of its ids: the partner's own id for it
//! (declared per source), the `Idempotency-Key` header, and — only when it has neither —
//! the SHA-256 of its body, which marks a retry for a limited window (the store applies
//! the window; see `store`).

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::domain::lead::first_value;
use crate::domain::source::Source;

/// Ids longer than this are stored as their SHA-256, so a huge id cannot exceed what a
/// B-tree index entry may hold (a partner's mistake must not become a 500).
pub const MAX_ID_BYTES: usize = 128;

/// What identifies one lead among its source's: the ids it is stored once under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The partner's id of the lead (`uuid`, `lead_id`, …).
    pub partner_lead_id: Option<String>,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// Hex SHA-256 of the body as received, when neither id is present.
    pub body_hash: Option<String>,
}

impl Identity {
    /// The identity of a request to `source`: the first of its declared id fields in the
    /// decoded body, the raw `Idempotency-Key` header, and the body bytes as received.
    pub fn of(
        source: &Source,
        fields: &Map<String, Value>,
        idempotency_key: Option<&[u8]>,
        body: &[u8],
    ) -> Self {
        let partner_lead_id = first_value(fields, source.partner_lead_id);
        Self::new(partner_lead_id.as_deref(), idempotency_key, body)
    }

    /// The ids of a request: `partner_lead_id` as mapped from the body, the raw
    /// `Idempotency-Key` header, and the body bytes as received.
    pub fn new(partner_lead_id: Option<&str>, idempotency_key: Option<&[u8]>, body: &[u8]) -> Self {
        let partner_lead_id = partner_lead_id.and_then(|id| normalise(id.as_bytes()));
        let idempotency_key = idempotency_key.and_then(normalise);
        let body_hash =
            (partner_lead_id.is_none() && idempotency_key.is_none()).then(|| sha256_hex(body));
        Self {
            partner_lead_id,
            idempotency_key,
            body_hash,
        }
    }
}

/// An id as stored: trimmed, `None` when blank; kept verbatim when short UTF-8, else
/// replaced by `sha256:<hex>` (non-UTF-8 header bytes included).
fn normalise(raw: &[u8]) -> Option<String> {
    let trimmed = raw.trim_ascii();
    if trimmed.is_empty() {
        return None;
    }
    match std::str::from_utf8(trimmed) {
        Ok(text) if text.len() <= MAX_ID_BYTES => Some(text.to_owned()),
        _ => Some(format!("sha256:{}", sha256_hex(trimmed))),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::source::{CARDEKHO, CARWALE, KNOWLARITY};
    use serde_json::json;

    fn partner_id(source: &Source, body: Value) -> Option<String> {
        let Value::Object(fields) = body else {
            panic!("not an object")
        };
        Identity::of(source, &fields, None, b"{}").partner_lead_id
    }

    #[test]
    fn partner_ids_per_source() {
        let body = json!({"caller_id": "1", "uuid": " ", "callid": 4411});
        assert_eq!(partner_id(&KNOWLARITY, body).as_deref(), Some("4411"));
        let body = json!({"name": "A", "phone": "1", "id": "x", "lead_id": "CD-9"});
        assert_eq!(partner_id(&CARDEKHO, body).as_deref(), Some("CD-9"));
        let body = json!({"customer_name": "A", "mobile": "1", "uuid": "u"});
        assert_eq!(partner_id(&CARWALE, body), None);
    }

    #[test]
    fn ids_are_trimmed_and_the_body_hash_only_stands_in_for_them() {
        let identity = Identity::new(Some(" call-1 "), None, b"{}");
        assert_eq!(identity.partner_lead_id.as_deref(), Some("call-1"));
        assert_eq!(identity.body_hash, None);

        let identity = Identity::new(None, Some(b" k-1 "), b"{}");
        assert_eq!(identity.idempotency_key.as_deref(), Some("k-1"));
        assert_eq!(identity.body_hash, None);

        let identity = Identity::new(None, Some(b"   "), b"{}");
        assert_eq!(identity.idempotency_key, None);
        assert_eq!(
            identity.body_hash.as_deref(),
            Some("44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")
        );
    }

    #[test]
    fn bodies_differing_by_one_byte_differ() {
        let a = Identity::new(None, None, br#"{"phone":"1"}"#);
        let b = Identity::new(None, None, br#"{"phone":"1" }"#);
        assert_ne!(a.body_hash, b.body_hash);
    }

    #[test]
    fn long_or_binary_keys_are_hashed() {
        let long = "x".repeat(MAX_ID_BYTES + 1);
        let identity = Identity::new(Some(&long), Some(&[0xff, 0xfe]), b"");
        let id = identity.partner_lead_id.unwrap();
        assert!(id.starts_with("sha256:") && id.len() == 7 + 64, "{id}");
        assert!(identity.idempotency_key.unwrap().starts_with("sha256:"));
        let exact = "y".repeat(MAX_ID_BYTES);
        assert_eq!(
            Identity::new(Some(&exact), None, b"").partner_lead_id,
            Some(exact)
        );
    }
}
