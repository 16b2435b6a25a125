//! The `X-API-Key` check.
//!
//! Keys are held as SHA-256 digests and compared with `subtle`: every candidate is a
//! fixed 32 bytes, so neither the length of a key nor the position of the first wrong
//! byte shows in the timing, and every active key is compared on every request (no
//! short-circuit that would tell which key a prefix belongs to).

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

/// The presented key, trimmed; absent or blank is [`Refusal::MissingApiKey`].
pub fn require_present(header: Option<&[u8]>) -> Result<&[u8], Refusal> {
    let presented = header.map(<[u8]>::trim_ascii).unwrap_or_default();
    if presented.is_empty() {
        Err(Refusal::MissingApiKey)
    } else {
        Ok(presented)
    }
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
    pub fn check(&self, header: Option<&[u8]>) -> Result<(), Error> {
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
            Ok(())
        } else {
            Err(Refusal::InvalidApiKey.into())
        }
    }

    /// The keys of an API-key secret: one key, or a JSON list of keys during a rotation.
    pub fn from_secret(text: &str) -> Result<Self, &'static str> {
        let text = text.trim();
        let keys = if text.starts_with('[') {
            let list: Vec<String> =
                serde_json::from_str(text).map_err(|_| "expected a key or a JSON list of keys")?;
            Self::new(list)
        } else {
            Self::new([text])
        };
        if keys.is_empty() {
            return Err("holds no key");
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(keys: &ApiKeys, header: Option<&str>) -> u16 {
        match keys.check(header.map(str::as_bytes)) {
            Ok(()) => 200,
            Err(error) => crate::answer::status(&error),
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
        assert!(ApiKeys::from_secret("").is_err());
        assert!(ApiKeys::from_secret("[]").is_err());
        assert!(ApiKeys::from_secret("[1, 2]").is_err());
    }

    #[test]
    fn debug_shows_no_key_material() {
        let keys = ApiKeys::from_csv("super-secret");
        assert_eq!(format!("{keys:?}"), "ApiKeys(1 active)");
    }
}
