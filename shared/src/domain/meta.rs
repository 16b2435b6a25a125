//! Meta lead ads: the app's secrets, the subscription handshake, the lead ids a signed
//! notification carries, and the record of a lead read from the Graph API. The webhook
//! (`app`), the drain and the scheduled pull (`sync`) all make their records here, so a
//! lead is the same row whichever way it arrives.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::auth::{self, Fingerprint};
use crate::domain::lead;
use crate::domain::lead::dedup::Identity;
use crate::domain::lead::record::LeadRecord;
use crate::domain::lead::shape;
use crate::domain::source::Source;
use crate::error::{ConfigError, Error, Refusal};

/// What Meta's app and page give: the app secrets (the current one first; two during a
/// rotation), the webhook's verify token, the page's access token and its id.
#[derive(Clone)]
pub struct MetaSecrets {
    app_secrets: Vec<String>,
    verify_token: String,
    page_id: String,
    /// The page access token, with its proof made with the current app secret.
    token: PageToken,
}

/// [`MetaSecrets`] as the secret holds them.
#[derive(Deserialize)]
struct SecretDocument {
    app_secrets: Vec<String>,
    verify_token: String,
    page_access_token: String,
    page_id: String,
}

// Deliberately prints no secret.
impl std::fmt::Debug for MetaSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaSecrets")
            .field("app_secrets", &self.app_secrets.len())
            .field("page_id", &self.page_id)
            .finish_non_exhaustive()
    }
}

impl MetaSecrets {
    pub fn new(
        app_secrets: Vec<String>,
        verify_token: String,
        page_access_token: String,
        page_id: String,
    ) -> Result<Self, &'static str> {
        let app_secrets: Vec<String> = app_secrets
            .into_iter()
            .map(|secret| secret.trim().to_owned())
            .filter(|secret| !secret.is_empty())
            .collect();
        let Some(current) = app_secrets.first() else {
            return Err("holds no app secret");
        };
        let [verify_token, page_access_token, page_id] =
            [verify_token, page_access_token, page_id].map(|value| value.trim().to_owned());
        if verify_token.is_empty() {
            return Err("holds no verify_token");
        }
        if page_access_token.is_empty() {
            return Err("holds no page_access_token");
        }
        if page_id.is_empty() {
            return Err("holds no page_id");
        }
        let token = PageToken::new(&page_access_token, current);
        Ok(Self {
            app_secrets,
            verify_token,
            page_id,
            token,
        })
    }

    /// The secret `META_SECRET_ARN` names: a JSON object with `app_secrets` (a list, the
    /// current secret first), `verify_token`, `page_access_token` and `page_id`. The
    /// reason a secret is refused never includes a value.
    pub fn from_secret(text: &str) -> Result<Self, &'static str> {
        let secrets: SecretDocument = serde_json::from_str(text).map_err(|_| {
            "is not a JSON object of app_secrets (a list), verify_token, page_access_token \
             and page_id"
        })?;
        Self::new(
            secrets.app_secrets,
            secrets.verify_token,
            secrets.page_access_token,
            secrets.page_id,
        )
    }

    /// `META_APP_SECRETS` (comma-separated), `META_VERIFY_TOKEN`,
    /// `META_PAGE_ACCESS_TOKEN` and `META_PAGE_ID`; `None` when none is set.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ConfigError> {
        const NAMES: [&str; 4] = [
            "META_APP_SECRETS",
            "META_VERIFY_TOKEN",
            "META_PAGE_ACCESS_TOKEN",
            "META_PAGE_ID",
        ];
        let values = NAMES.map(get);
        if values.iter().all(Option::is_none) {
            return Ok(None);
        }
        let [Some(app_secrets), Some(verify_token), Some(page_access_token), Some(page_id)] =
            values
        else {
            let missing = NAMES
                .iter()
                .zip(&values)
                .find(|(_, value)| value.is_none())
                .map_or("META_APP_SECRETS", |(name, _)| *name);
            return Err(ConfigError::Missing(missing));
        };
        let app_secrets = app_secrets.split(',').map(str::to_owned).collect();
        Self::new(app_secrets, verify_token, page_access_token, page_id)
            .map(Some)
            .map_err(|reason| ConfigError::Invalid {
                name: "META_APP_SECRETS",
                reason: reason.into(),
            })
    }

    /// Checks a notification's `X-Hub-Signature-256` over its exact bytes.
    pub fn check(&self, signature: Option<&[u8]>, body: &[u8]) -> Result<Fingerprint, Error> {
        auth::check_signature(&self.app_secrets, signature, body)
    }

    /// Meta's subscription handshake: the challenge to echo when the mode is `subscribe`
    /// and the token is the verify token (compared in constant time); otherwise `None`.
    pub fn handshake<'a>(
        &self,
        mode: Option<&str>,
        token: Option<&str>,
        challenge: Option<&'a str>,
    ) -> Option<&'a str> {
        let token = Sha256::digest(token?.as_bytes());
        let expected = Sha256::digest(self.verify_token.as_bytes());
        let verified = bool::from(token.ct_eq(&expected));
        (mode? == "subscribe" && verified).then_some(challenge?)
    }

    /// The page's token, with its proof made with the current app secret.
    pub fn token(&self) -> &PageToken {
        &self.token
    }

    pub fn page_id(&self) -> &str {
        &self.page_id
    }
}

/// A page access token with its `appsecret_proof`, which Meta requires of server calls
/// when the app is set to.
#[derive(Clone)]
pub struct PageToken {
    access_token: String,
    proof: String,
}

impl PageToken {
    pub fn new(access_token: &str, app_secret: &str) -> Self {
        Self {
            access_token: access_token.to_owned(),
            proof: appsecret_proof(access_token, app_secret),
        }
    }

    /// The query parameters that carry it.
    pub(crate) fn query(&self) -> [(&'static str, &str); 2] {
        [
            ("access_token", self.access_token.as_str()),
            ("appsecret_proof", self.proof.as_str()),
        ]
    }
}

// Deliberately prints neither the token nor the proof.
impl std::fmt::Debug for PageToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageToken(<redacted>)")
    }
}

/// The lowercase hex HMAC-SHA256 of the token, keyed with the app secret.
pub fn appsecret_proof(access_token: &str, app_secret: &str) -> String {
    auth::hmac_hex(app_secret.as_bytes(), access_token.as_bytes())
}

/// One lead a notification names: its id, and the change as Meta sent it (kept with the
/// lead, and queued when the lead cannot be read yet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    pub leadgen_id: String,
    pub change: Value,
}

/// The leads a notification names: every `leadgen` change of every entry (Meta batches
/// them). Other objects and fields are not leads, and a change without an id names none.
pub fn references(notification: &Map<String, Value>) -> Vec<Reference> {
    let entries = notification.get("entry").and_then(Value::as_array);
    entries
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.get("changes")?.as_array())
        .flatten()
        .filter(|change| change.get("field").and_then(Value::as_str) == Some("leadgen"))
        .filter_map(|change| {
            let value = change.get("value")?;
            let leadgen_id = shape::text(value.get("leadgen_id"))?;
            (!leadgen_id.trim().is_empty()).then(|| Reference {
                leadgen_id: leadgen_id.trim().to_owned(),
                change: value.clone(),
            })
        })
        .collect()
}

/// The record of a lead read from the Graph API, with the notification's change when one
/// named it (the scheduled pull has none). Deduplicated on the lead's id.
/// (A U+0000 in its answers, which PostgreSQL cannot hold, is replaced by the store.)
pub fn record(
    source: &'static Source,
    lead: &Map<String, Value>,
    change: Option<&Value>,
    request_id: &str,
    received_at: SystemTime,
) -> Result<LeadRecord, Refusal> {
    let fields = shape::graph_fields(lead);
    let mapped = lead::map(source, &fields)?;
    let mut payload = Map::new();
    if let Some(change) = change {
        payload.insert("change".into(), change.clone());
    }
    payload.insert("lead".into(), Value::Object(lead.clone()));
    let payload = Value::Object(payload).to_string();
    Ok(LeadRecord {
        source,
        identity: Identity::of(source, &fields, None, payload.as_bytes()),
        lead: mapped,
        payload,
        request_id: request_id.to_owned(),
        received_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lead::shape::object;
    use crate::domain::source::META;
    use serde_json::json;

    fn secrets() -> MetaSecrets {
        MetaSecrets::new(
            vec!["current".into(), " previous ".into(), " ".into()],
            "verify-me".into(),
            "page-token".into(),
            "1234".into(),
        )
        .unwrap()
    }

    #[test]
    fn secrets_from_a_secret_and_from_the_environment() {
        let text =
            r#"{"app_secrets":["a","b"],"verify_token":"v","page_access_token":"t","page_id":"9"}"#;
        let parsed = MetaSecrets::from_secret(text).unwrap();
        assert_eq!(parsed.app_secrets, ["a", "b"]);
        assert_eq!(parsed.page_id(), "9");
        for bad in [
            r#"{"app_secrets":[],"verify_token":"v","page_access_token":"t","page_id":"9"}"#,
            r#"{"app_secrets":["a"],"verify_token":" ","page_access_token":"t","page_id":"9"}"#,
            r#"{"app_secrets":"a","verify_token":"v","page_access_token":"t","page_id":"9"}"#,
            "a-plain-secret",
        ] {
            let reason = MetaSecrets::from_secret(bad).unwrap_err();
            assert!(!reason.contains("a-plain-secret"), "{reason}");
        }
        let env = |name: &str| match name {
            "META_APP_SECRETS" => Some("x, y".to_owned()),
            "META_VERIFY_TOKEN" => Some("v".to_owned()),
            "META_PAGE_ACCESS_TOKEN" => Some("t".to_owned()),
            "META_PAGE_ID" => Some("9".to_owned()),
            _ => None,
        };
        let from_env = MetaSecrets::from_lookup(&env).unwrap().unwrap();
        assert_eq!(from_env.app_secrets, ["x", "y"]);
        assert!(MetaSecrets::from_lookup(&|_: &str| None).unwrap().is_none());
        let partial = |name: &str| (name == "META_APP_SECRETS").then(|| "x".to_owned());
        assert_eq!(
            MetaSecrets::from_lookup(&partial).unwrap_err(),
            ConfigError::Missing("META_VERIFY_TOKEN")
        );
        assert!(!format!("{from_env:?}").contains("x"));
    }

    #[test]
    fn handshake_echoes_the_challenge_only_for_the_token() {
        let secrets = secrets();
        let ok = secrets.handshake(Some("subscribe"), Some("verify-me"), Some("1158201444"));
        assert_eq!(ok, Some("1158201444"));
        for (mode, token, challenge) in [
            (Some("subscribe"), Some("wrong"), Some("1")),
            (Some("unsubscribe"), Some("verify-me"), Some("1")),
            (None, Some("verify-me"), Some("1")),
            (Some("subscribe"), None, Some("1")),
            (Some("subscribe"), Some("verify-me"), None),
        ] {
            assert_eq!(secrets.handshake(mode, token, challenge), None);
        }
    }

    #[test]
    fn references_of_a_batched_notification() {
        let notification = object(json!({
            "object": "page",
            "entry": [
                {"id": "153125381133", "time": 1438292065, "changes": [
                    {"field": "leadgen", "value": {"leadgen_id": 123123123123u64, "page_id": 1, "created_time": 1440120384}},
                    {"field": "feed", "value": {"leadgen_id": "not a lead"}},
                    {"field": "leadgen", "value": {"leadgen_id": "123123123124"}}
                ]},
                {"id": 2, "time": 1, "changes": [
                    {"field": "leadgen", "value": {"page_id": 1}},
                    {"field": "leadgen", "value": {"leadgen_id": " 55 "}}
                ]},
                {"id": 3}
            ]
        }));
        let ids: Vec<String> = references(&notification)
            .into_iter()
            .map(|reference| reference.leadgen_id)
            .collect();
        assert_eq!(ids, ["123123123123", "123123123124", "55"]);
    }

    #[test]
    fn a_graph_lead_becomes_a_record() {
        let lead = object(json!({
            "id": "1234567890123456",
            "created_time": "2026-11-20T08:49:14+0000",
            "campaign_name": "Hector Diwali",
            "field_data": [
                {"name": "first_name", "values": ["Asha"]},
                {"name": "last_name", "values": ["Rao"]},
                {"name": "phone_number", "values": ["+91 98765 43210"]},
                {"name": "interested_model", "values": ["Windsor EV"]}
            ]
        }));
        let change = json!({"leadgen_id": 1234567890123456u64});
        let record = record(&META, &lead, Some(&change), "r-1", SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(record.lead.name, "Asha Rao");
        assert_eq!(record.lead.phone_number, "+91 98765 43210");
        assert_eq!(record.lead.car_model.as_deref(), Some("Windsor EV"));
        assert_eq!(record.lead.campaign.as_deref(), Some("Hector Diwali"));
        assert_eq!(record.lead.submitted_at, Some(1_795_164_554));
        assert_eq!(
            record.identity.partner_lead_id.as_deref(),
            Some("1234567890123456")
        );
        let payload: Value = serde_json::from_str(&record.payload).unwrap();
        assert_eq!(payload["change"], change);
        assert_eq!(payload["lead"]["campaign_name"], "Hector Diwali");

        let nameless =
            object(json!({"id": "7", "field_data": [{"name": "phone", "values": ["9876543210"]}]}));
        let nameless =
            super::record(&META, &nameless, None, "r-2", SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(nameless.lead.name, "Meta Lead 9876543210");
        assert!(!nameless.payload.contains("change"));
    }
}
