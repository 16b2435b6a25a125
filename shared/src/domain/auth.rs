//! The `X-API-Key` check, and the `X-Hub-Signature-256` check of signed notifications.
//!
//! Keys are held as SHA-256 digests and compared with `subtle`: every candidate is a
//! fixed 32 bytes, so neither the length of a key nor the position of the first wrong
//! byte shows in the timing, and every active key is compared on every request (no
//! short-circuit that would tell which key a prefix belongs to).
//!
//! The key that matched is named in the log by its [`Fingerprint`] (never the key), so an
//! operator can see which key each partner uses before dropping an old one.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::error::{Error, Failure, Refusal};

/// The active keys of one source. Several keys are active during a rotation.
#[derive(Clone, Default)]
pub struct ApiKeys {
    digests: Vec<[u8; 32]>,
}

// Deliberately prints no key material, not even digests.
impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} active)", self.digests.len())
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A short, stable name for an active key that does not reveal it: the first 8 hex
/// digits of its SHA-256 (`printf %s "$KEY" | sha256sum | cut -c1-8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 4]);

impl Fingerprint {
    fn of(digest: &[u8; 32]) -> Self {
        Self([digest[0], digest[1], digest[2], digest[3]])
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

/// The presented key, trimmed; absent or blank is [`Refusal::MissingApiKey`].
pub fn require_present(header: Option<&[u8]>) -> Result<&[u8], Refusal> {
    presented(header).ok_or(Refusal::MissingApiKey)
}

/// The presented signature, trimmed; absent or blank is [`Refusal::MissingSignature`].
pub fn require_signature(header: Option<&[u8]>) -> Result<&[u8], Refusal> {
    presented(header).ok_or(Refusal::MissingSignature)
}

fn presented(header: Option<&[u8]>) -> Option<&[u8]> {
    let presented = header.map(<[u8]>::trim_ascii).unwrap_or_default();
    (!presented.is_empty()).then_some(presented)
}

/// Checks `X-Hub-Signature-256: sha256=<hex>` against the HMAC-SHA256 of the exact body
/// bytes with each of `secrets` (several during a rotation), every one computed and
/// compared in constant time. Names the secret that matched, by its fingerprint.
pub fn check_signature<S: AsRef<[u8]>>(
    secrets: &[S],
    header: Option<&[u8]>,
    body: &[u8],
) -> Result<Fingerprint, Error> {
    let presented = require_signature(header)?;
    if secrets.is_empty() {
        return Err(Failure::NoApiKeys.into());
    }
    let expected = presented
        .strip_prefix(b"sha256=")
        .and_then(|hex_digits| hex::decode(hex_digits).ok())
        .filter(|bytes| bytes.len() == 32)
        .ok_or(Refusal::InvalidSignature)?;
    let mut found = None;
    for secret in secrets {
        let secret = secret.as_ref();
        if bool::from(hmac(secret, body).ct_eq(expected.as_slice())) {
            found = Some(Fingerprint::of(&digest(secret)));
        }
    }
    found.ok_or_else(|| Refusal::InvalidSignature.into())
}

/// The hex HMAC-SHA256 of `message` keyed with `secret`: how a signature is made.
pub fn hmac_hex(secret: &[u8], message: &[u8]) -> String {
    hex::encode(hmac(secret, message))
}

/// The HMAC-SHA256 of `message` keyed with `secret`.
pub(crate) fn hmac(secret: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

impl ApiKeys {
    /// Keys from an iterator; blank entries are ignored and values are trimmed, so
    /// `"a, b,"` holds two keys.
    pub fn new<I, S>(keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let digests = keys
            .into_iter()
            .filter_map(|key| {
                let key = key.as_ref().trim();
                (!key.is_empty()).then(|| digest(key.as_bytes()))
            })
            .collect();
        Self { digests }
    }

    /// Keys from a comma-separated list (the `API_KEYS` variable).
    pub fn from_csv(list: &str) -> Self {
        Self::new(list.split(','))
    }

    pub fn len(&self) -> usize {
        self.digests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Checks the raw header value: absent or blank is 401, anything that is not one of
    /// the active keys is 403. No configured key at all is a server fault, not the
    /// partner's.
    pub fn check(&self, header: Option<&[u8]>) -> Result<Fingerprint, Error> {
        let presented = require_present(header)?;
        if self.digests.is_empty() {
            return Err(Failure::NoApiKeys.into());
        }
        let presented = digest(presented);
        let matched = self
            .digests
            .iter()
            .fold(Choice::from(0), |found, key| found | key.ct_eq(&presented));
        if bool::from(matched) {
            Ok(Fingerprint::of(&presented))
        } else {
            Err(Refusal::InvalidApiKey.into())
        }
    }

    /// The keys of an API-key secret, in the documented forms only: one key as plain
    /// text, or a JSON list of keys during a rotation. Anything else is refused with the
    /// reason (never the value), so a mistyped secret is a loud 500 at once rather than
    /// every partner's key quietly failing as a 403.
    pub fn from_secret(text: &str) -> Result<Self, &'static str> {
        let text = text.trim();
        let keys: Vec<String> = match text.as_bytes().first() {
            None => return Err("holds no key"),
            Some(b'[') => {
                let list: Vec<String> = serde_json::from_str(text)
                    .map_err(|_| "is not a JSON list of keys (strings)")?;
                list.into_iter().map(|key| key.trim().to_owned()).collect()
            }
            Some(b'{') => {
                return Err(
                    "is a JSON object (the console's key/value form): store the key as \
                     plain text, or a JSON list of keys",
                )
            }
            Some(b'"' | b'\'') => return Err("is wrapped in quotes: store the key alone"),
            Some(_) => vec![text.to_owned()],
        };
        if keys.is_empty() {
            return Err("holds no key");
        }
        if keys.iter().any(|key| key.is_empty()) {
            return Err("holds a blank key");
        }
        if keys.iter().any(|key| key.contains(char::is_whitespace)) {
            return Err("holds a key with white space inside it");
        }
        Ok(Self::new(keys))
    }
}

#[cfg(test)]
mod tests {

    mod signature {
        use super::super::*;

        const BODY: &[u8] = br#"{"object":"page","entry":[]}"#;

        fn header(secret: &str, body: &[u8]) -> Vec<u8> {
            format!("sha256={}", hmac_hex(secret.as_bytes(), body)).into_bytes()
        }

        fn refusal(result: Result<Fingerprint, Error>) -> Refusal {
            match result {
                Err(Error::Refused(refusal)) => refusal,
                other => panic!("expected a refusal, got {other:?}"),
            }
        }

        #[test]
        fn a_known_signature_passes() {
            // printf %s 'hello' | openssl dgst -sha256 -hmac 'key'
            assert_eq!(
                hmac_hex(b"key", b"hello"),
                "9307b3b915efb5171ff14d8cb55fbcc798c6c0ef1456d66ded1a6aa723a58b7b"
            );
            let secrets = ["old-secret", "new-secret"];
            let old = check_signature(&secrets, Some(&header("old-secret", BODY)), BODY).unwrap();
            let new = check_signature(&secrets, Some(&header("new-secret", BODY)), BODY).unwrap();
            assert_ne!(old, new, "the fingerprint names the secret that matched");
        }

        #[test]
        fn missing_blank_and_wrong_signatures() {
            let secrets = ["s"];
            assert_eq!(
                refusal(check_signature(&secrets, None, BODY)),
                Refusal::MissingSignature
            );
            assert_eq!(
                refusal(check_signature(&secrets, Some(b"  "), BODY)),
                Refusal::MissingSignature
            );
            for bad in [
                header("other", BODY),
                header("s", b"{}"),
                b"sha256=".to_vec(),
                b"sha256=zz".to_vec(),
                header("s", BODY)[7..].to_vec(),
                b"sha1=0123".to_vec(),
            ] {
                assert_eq!(
                    refusal(check_signature(&secrets, Some(&bad), BODY)),
                    Refusal::InvalidSignature,
                    "{}",
                    String::from_utf8_lossy(&bad)
                );
            }
        }

        #[test]
        fn one_byte_of_the_body_changes_the_signature() {
            let signed = header("s", BODY);
            let mut altered = BODY.to_vec();
            altered[2] ^= 1;
            assert!(check_signature(&["s"], Some(&signed), BODY).is_ok());
            assert!(check_signature(&["s"], Some(&signed), &altered).is_err());
        }

        #[test]
        fn no_secret_is_our_fault() {
            let none: [&str; 0] = [];
            assert!(matches!(
                check_signature(&none, Some(&header("s", BODY)), BODY),
                Err(Error::Failed(Failure::NoApiKeys))
            ));
        }
    }
    use super::*;

    fn status(keys: &ApiKeys, header: Option<&str>) -> u16 {
        match keys.check(header.map(str::as_bytes)) {
            Ok(_) => 200,
            Err(error) => crate::edge::answer::status(&error),
        }
    }

    #[test]
    fn absent_or_blank_is_missing() {
        let keys = ApiKeys::from_csv("k1");
        assert_eq!(status(&keys, None), 401);
        assert_eq!(status(&keys, Some("")), 401);
        assert_eq!(status(&keys, Some("  \t")), 401);
    }

    #[test]
    fn only_exact_active_keys_pass() {
        let keys = ApiKeys::from_csv("first-key, second-key,");
        assert_eq!(keys.len(), 2);
        assert_eq!(status(&keys, Some("first-key")), 200);
        assert_eq!(status(&keys, Some(" second-key ")), 200);
        assert_eq!(status(&keys, Some("first")), 403);
        assert_eq!(status(&keys, Some("first-key-and-more")), 403);
        assert_eq!(status(&keys, Some("FIRST-KEY")), 403);
        assert_eq!(status(&keys, Some("first-key,second-key")), 403);
    }

    #[test]
    fn non_utf8_header_is_invalid_not_a_panic() {
        let keys = ApiKeys::from_csv("k");
        assert!(matches!(
            keys.check(Some(&[0xff, 0xfe])),
            Err(Error::Refused(Refusal::InvalidApiKey))
        ));
    }

    #[test]
    fn no_configured_keys_is_a_server_fault() {
        let keys = ApiKeys::from_csv(" , ");
        assert!(keys.is_empty());
        assert_eq!(status(&keys, Some("anything")), 500);
        assert_eq!(status(&keys, None), 401);
    }

    #[test]
    fn a_secret_holds_one_key_or_a_list() {
        assert_eq!(ApiKeys::from_secret("  one-key \n").unwrap().len(), 1);
        let both = ApiKeys::from_secret(r#"["old-key", "new-key"]"#).unwrap();
        assert_eq!(both.len(), 2);
        assert!(both.check(Some(b"old-key")).is_ok());
        assert!(both.check(Some(b"new-key")).is_ok());
        // A comma is part of a single key, not a separator, in the secret.
        assert_eq!(ApiKeys::from_secret("a,b").unwrap().len(), 1);
    }

    #[test]
    fn a_secret_in_any_other_form_is_refused_with_its_reason() {
        for (text, reason) in [
            ("", "holds no key"),
            ("  \n", "holds no key"),
            ("[]", "holds no key"),
            (r#"{"api_key":"k1"}"#, "is a JSON object"),
            (r#""k1""#, "is wrapped in quotes"),
            ("'k1'", "is wrapped in quotes"),
            ("k1 k2", "white space inside"),
            ("k1\nk2", "white space inside"),
            ("[1, 2]", "is not a JSON list of keys"),
            (r#"["k1", ""]"#, "holds a blank key"),
            (r#"["k1", "k 2"]"#, "white space inside"),
            ("[k1]", "is not a JSON list of keys"),
        ] {
            let error = ApiKeys::from_secret(text).expect_err(text);
            assert!(error.contains(reason), "{text:?}: {error}");
            assert!(
                !error.contains("k1"),
                "{text:?}: the reason shows the value"
            );
        }
    }

    #[test]
    fn the_matching_key_is_named_by_its_fingerprint() {
        let keys = ApiKeys::from_csv("old-key,new-key");
        let old = keys.check(Some(b"old-key")).unwrap();
        let new = keys.check(Some(b" new-key ")).unwrap();
        assert_ne!(old, new);
        // The same as `printf %s old-key | sha256sum | cut -c1-8`.
        let expected: String = Sha256::digest(b"old-key")[..4]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_eq!(old.to_string(), expected);
        assert_eq!(old.to_string().len(), 8);
    }

    #[test]
    fn debug_shows_no_key_material() {
        let keys = ApiKeys::from_csv("super-secret");
        assert_eq!(format!("{keys:?}"), "ApiKeys(1 active)");
    }
}
