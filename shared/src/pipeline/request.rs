//! What a source function's request brings, once its edge has taken it out of its
//! transport.

use std::time::SystemTime;

/// What a request brings, already taken out of its transport.
#[derive(Clone, Copy)]
pub struct Incoming<'a> {
    pub api_key: Option<&'a [u8]>,
    /// The `X-Hub-Signature-256` header.
    pub signature: Option<&'a [u8]>,
    pub content_type: Option<&'a str>,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<&'a [u8]>,
    /// The body; for a `GET` push (a source's `query_push`), the query string, whose
    /// fields are the lead's as a form body's would be.
    pub body: &'a [u8],
    /// The query string as it came, form-encoded (where a `key_params` source's key may
    /// be).
    pub query: Option<&'a str>,
    /// The Lambda request id, kept with the lead.
    pub request_id: &'a str,
    pub received_at: SystemTime,
}

/// The query of Meta's subscription handshake (`hub.mode`, `hub.verify_token`,
/// `hub.challenge`).
#[derive(Clone, Copy, Default)]
pub struct Handshake<'a> {
    pub mode: Option<&'a str>,
    pub verify_token: Option<&'a str>,
    pub challenge: Option<&'a str>,
}

// A key, a signature, a body (a customer's name and phone) and a verify token are never
// printed, whatever logs a request later: only whether they came, and how large.
impl std::fmt::Debug for Incoming<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("api_key", &self.api_key.map(|_| "<redacted>"))
            .field("signature", &self.signature.map(|_| "<redacted>"))
            .field("content_type", &self.content_type)
            .field(
                "idempotency_key",
                &self.idempotency_key.map(|_| "<redacted>"),
            )
            .field("body_bytes", &self.body.len())
            .field("query_bytes", &self.query.map(str::len))
            .field("request_id", &self.request_id)
            .field("received_at", &self.received_at)
            .finish()
    }
}

impl std::fmt::Debug for Handshake<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake")
            .field("mode", &self.mode)
            .field("verify_token", &self.verify_token.map(|_| "<redacted>"))
            .field("challenge", &self.challenge)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_never_prints_its_key_signature_body_or_token() {
        let incoming = Incoming {
            api_key: Some(b"the-partner-key"),
            signature: Some(b"sha256=the-signature"),
            content_type: Some("application/json"),
            idempotency_key: Some(b"the-idempotency-key"),
            body: br#"{"name":"Asha Rao","phone":"9876543210"}"#,
            query: Some("api_key=the-query-key&customer_number=98765"),
            request_id: "r-1",
            received_at: SystemTime::UNIX_EPOCH,
        };
        let printed = format!("{incoming:?}");
        for secret in [
            "the-partner-key",
            "the-signature",
            "the-idempotency-key",
            "the-query-key",
            "Asha",
            "98765",
        ] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(
            printed.contains("r-1") && printed.contains("body_bytes"),
            "{printed}"
        );
        let handshake = Handshake {
            mode: Some("subscribe"),
            verify_token: Some("the-verify-token"),
            challenge: Some("1158201444"),
        };
        let printed = format!("{handshake:?}");
        assert!(!printed.contains("the-verify-token"), "{printed}");
        assert!(printed.contains("1158201444"), "{printed}");
    }
}
