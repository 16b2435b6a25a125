//! What makes two requests the same lead. Pure: no I/O.
//!
//! A lead is stored once per source for each of its keys: the partner's own id for it
//! (declared per source), the `Idempotency-Key` header, and — only when it has neither —
//! the SHA-256 of its body, which marks a retry for a limited window (the store applies
//! the window; see `store`).

use sha2::{Digest, Sha256};

/// Keys longer than this are stored as their SHA-256, so a huge id cannot exceed what a
/// B-tree index entry may hold (a partner's mistake must not become a 500).
pub const MAX_KEY_BYTES: usize = 128;

/// The deduplication keys of one lead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DedupKeys {
    /// The partner's id of the lead (`uuid`, `lead_id`, …).
    pub partner_lead_id: Option<String>,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// Hex SHA-256 of the body as received, when neither id is present.
    pub body_sha256: Option<String>,
}

impl DedupKeys {
    /// The keys of a request: `partner_lead_id` as mapped from the body, the raw
    /// `Idempotency-Key` header, and the body bytes as received.
    pub fn new(partner_lead_id: Option<&str>, idempotency_key: Option<&[u8]>, body: &[u8]) -> Self {
        let partner_lead_id = partner_lead_id.and_then(|id| normalise(id.as_bytes()));
        let idempotency_key = idempotency_key.and_then(normalise);
        let body_sha256 =
            (partner_lead_id.is_none() && idempotency_key.is_none()).then(|| sha256_hex(body));
        Self {
            partner_lead_id,
            idempotency_key,
            body_sha256,
        }
    }
}

/// A key as stored: trimmed, `None` when blank; kept verbatim when short UTF-8, else
/// replaced by `sha256:<hex>` (non-UTF-8 header bytes included).
fn normalise(raw: &[u8]) -> Option<String> {
    let trimmed = raw.trim_ascii();
    if trimmed.is_empty() {
        return None;
    }
    match std::str::from_utf8(trimmed) {
        Ok(text) if text.len() <= MAX_KEY_BYTES => Some(text.to_owned()),
        _ => Some(format!("sha256:{}", sha256_hex(trimmed))),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_trimmed_and_the_body_hash_only_stands_in_for_them() {
        let keys = DedupKeys::new(Some(" call-1 "), None, b"{}");
        assert_eq!(keys.partner_lead_id.as_deref(), Some("call-1"));
        assert_eq!(keys.body_sha256, None);

        let keys = DedupKeys::new(None, Some(b" k-1 "), b"{}");
        assert_eq!(keys.idempotency_key.as_deref(), Some("k-1"));
        assert_eq!(keys.body_sha256, None);

        let keys = DedupKeys::new(None, Some(b"   "), b"{}");
        assert_eq!(keys.idempotency_key, None);
        assert_eq!(
            keys.body_sha256.as_deref(),
            Some("44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")
        );
    }

    #[test]
    fn bodies_differing_by_one_byte_differ() {
        let a = DedupKeys::new(None, None, br#"{"phone":"1"}"#);
        let b = DedupKeys::new(None, None, br#"{"phone":"1" }"#);
        assert_ne!(a.body_sha256, b.body_sha256);
    }

    #[test]
    fn long_or_binary_keys_are_hashed() {
        let long = "x".repeat(MAX_KEY_BYTES + 1);
        let keys = DedupKeys::new(Some(&long), Some(&[0xff, 0xfe]), b"");
        let id = keys.partner_lead_id.unwrap();
        assert!(id.starts_with("sha256:") && id.len() == 7 + 64, "{id}");
        assert!(keys.idempotency_key.unwrap().starts_with("sha256:"));
        let exact = "y".repeat(MAX_KEY_BYTES);
        assert_eq!(
            DedupKeys::new(Some(&exact), None, b"").partner_lead_id,
            Some(exact)
        );
    }
}
