//! What partners read: every status code and message of the contract, in one place, and
//! the label each answer carries in the log line.

use serde::Serialize;

use crate::domain::source::{Reply, Source};
use crate::error::{Error, Failure, FeedError, Refusal, StoreError};
use crate::infra::store::{RowId, Stored};
use crate::pipeline::outcome::{Accepted, Outcome, Postponed};

/// The message of a repeat, as the system this replaces words it.
pub const DUPLICATE: &str = "Duplicate ignored";

/// The only text a server-side failure shows; its cause goes to the log.
pub const INTERNAL: &str = "Internal server error";

/// The refusal of a handshake whose token is not the verify token.
pub const FORBIDDEN: &str = "Invalid verify token";

/// A status code and its JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub content_type: &'static str,
}

/// The bodies this service answers with.
#[derive(Serialize)]
#[serde(untagged)]
enum Body<'a> {
    Stored { message: &'a str, id: &'a RowId },
    Queued { message: &'a str, queued: bool },
    Failure { error: &'a str },
}

/// The content type of every answer but the handshake's.
pub const JSON: &str = "application/json; charset=utf-8";

/// The content type of the handshake's challenge, echoed as is.
pub const TEXT: &str = "text/plain; charset=utf-8";

/// One source's success messages, worded once per container.
#[derive(Debug, Clone)]
pub struct Answers {
    inserted: String,
    accepted: String,
    reply: Reply,
}

impl Answers {
    pub fn new(source: &Source) -> Self {
        Self {
            // Exactly as the contract words it.
            inserted: format!("{} lead inserted successfully", source.platform),
            accepted: format!("{} lead accepted", source.platform),
            reply: source.reply,
        }
    }

    /// The answer to Meta's subscription handshake: the challenge, or a refusal.
    pub fn handshake(challenge: Option<&str>) -> Answer {
        match challenge {
            Some(challenge) => Answer {
                status: 200,
                body: challenge.to_owned(),
                content_type: TEXT,
            },
            None => answer(403, &Body::Failure { error: FORBIDDEN }),
        }
    }

    /// The 201 message.
    pub fn inserted(&self) -> &str {
        &self.inserted
    }

    /// The contract's answer to a request's result.
    pub fn to(&self, result: &Result<Accepted, Error>) -> Answer {
        let answer = match result {
            Ok(Accepted::Batch(summary)) => answer(200, summary),
            Ok(Accepted::Lead { outcome, .. }) => self.lead(outcome),
            Err(error) => {
                let (status, text) = failed(error);
                answer(status, &Body::Failure { error: &text })
            }
        };
        match self.reply {
            // Success is 200 to a platform that treats anything else as a failure.
            Reply::Ok if (200..300).contains(&answer.status) => Answer {
                status: 200,
                ..answer
            },
            _ => answer,
        }
    }

    fn lead(&self, outcome: &Outcome) -> Answer {
        match outcome {
            Outcome::Stored(Stored::Created(id)) => answer(
                201,
                &Body::Stored {
                    message: &self.inserted,
                    id,
                },
            ),
            Outcome::Stored(Stored::Duplicate(id)) => answer(
                200,
                &Body::Stored {
                    message: DUPLICATE,
                    id,
                },
            ),
            Outcome::Queued(_) => answer(
                202,
                &Body::Queued {
                    message: &self.accepted,
                    queued: true,
                },
            ),
        }
    }
}

/// The status of a failed request.
pub fn status(error: &Error) -> u16 {
    failed(error).0
}

/// The status and `error` text of a failed request.
fn failed(error: &Error) -> (u16, String) {
    match error {
        Error::Refused(refusal) => match refusal {
            Refusal::MissingApiKey => (401, "Missing API key".into()),
            Refusal::InvalidApiKey => (403, "Invalid API key".into()),
            Refusal::MissingSignature => (401, "Missing signature".into()),
            Refusal::InvalidSignature => (403, "Invalid signature".into()),
            Refusal::PayloadTooLarge { .. } => (413, "Payload too large".into()),
            Refusal::InvalidJson(_) => (400, "Invalid JSON payload".into()),
            Refusal::MissingFields(fields) => (
                400,
                format!("Missing required fields: {}", fields.join(", ")),
            ),
        },
        Error::Failed(_) => (500, INTERNAL.into()),
    }
}

fn answer(status: u16, body: &impl Serialize) -> Answer {
    // Serialising strings, a bool and an id cannot fail; the fallback keeps that
    // unwrap-free.
    let body =
        serde_json::to_string(body).unwrap_or_else(|_| format!(r#"{{"error":"{INTERNAL}"}}"#));
    Answer {
        status,
        body,
        content_type: JSON,
    }
}

/// The feed's refusals and failures: the key's as the partners' (401, 403), a parameter's
/// as a 400 naming it, anything of this side's as a 500 with no internals.
pub fn feed_failed(error: &FeedError) -> Answer {
    let (status, text) = match error {
        FeedError::Refused(refusal) => failed(&Error::Refused(refusal.clone())),
        FeedError::Parameter { .. } => (400, error.to_string()),
        FeedError::Failed(_) => (500, INTERNAL.into()),
    };
    answer(status, &Body::Failure { error: &text })
}

/// The feed's log line `outcome`.
pub fn feed_label(error: Option<&FeedError>) -> &'static str {
    match error {
        None => "listed",
        Some(FeedError::Refused(Refusal::MissingApiKey)) => "missing_api_key",
        Some(FeedError::Refused(_)) => "invalid_api_key",
        Some(FeedError::Parameter { .. }) => "invalid_parameter",
        Some(FeedError::Failed(Failure::NoApiKeys)) => "no_keys_configured",
        Some(FeedError::Failed(Failure::Secret(_))) => "secret_unavailable",
        Some(FeedError::Failed(Failure::Store(store))) => store_label(store),
        Some(FeedError::Failed(_)) => "failed",
    }
}

/// The log line's `outcome`: a short stable label operators filter on.
pub fn label(result: &Result<Accepted, Error>) -> &'static str {
    match result {
        Ok(Accepted::Batch(_)) => "notification",
        Ok(Accepted::Lead { outcome, .. }) => match outcome {
            Outcome::Stored(Stored::Created(_)) => "stored",
            Outcome::Stored(Stored::Duplicate(_)) => "duplicate",
            // Kept, and still the misconfiguration the operator is alarmed on.
            Outcome::Queued(Postponed::Store(StoreError::Denied(_))) => "database_denied",
            Outcome::Queued(Postponed::Refused(_)) => "dead_lettered",
            Outcome::Queued(_) => "queued",
        },
        Err(Error::Refused(refusal)) => match refusal {
            Refusal::MissingApiKey => "missing_api_key",
            Refusal::InvalidApiKey => "invalid_api_key",
            Refusal::MissingSignature => "missing_signature",
            Refusal::InvalidSignature => "invalid_signature",
            Refusal::PayloadTooLarge { .. } => "payload_too_large",
            Refusal::InvalidJson(_) => "invalid_json",
            Refusal::MissingFields(_) => "missing_fields",
        },
        Err(Error::Failed(failure)) => match failure {
            Failure::NoApiKeys => "no_keys_configured",
            Failure::Secret(_) => "secret_unavailable",
            Failure::Store(store) => store_label(store),
            Failure::Unqueued { .. } | Failure::Unkept { .. } => "queue_unavailable",
        },
    }
}

/// The label of a store failure (also the drain's).
pub fn store_label(error: &StoreError) -> &'static str {
    match error {
        StoreError::Unavailable(_) => "database_error",
        StoreError::Timeout(_) | StoreError::OutOfTime(_) => "database_timeout",
        StoreError::Credentials(_) => "secret_unavailable",
        StoreError::Resting => "database_resting",
        StoreError::Unsettled => "dedup_unsettled",
        StoreError::Rejected(_) => "database_rejected",
        StoreError::Denied(_) => "database_denied",
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::source::{CARDEKHO, CARWALE, GOOGLE, KNOWLARITY, META};
    use crate::error::SecretError;
    use crate::pipeline::outcome::Summary;

    #[test]
    fn statuses_and_messages_follow_the_contract() {
        let cases: Vec<(Error, u16, &str)> = vec![
            (Refusal::MissingApiKey.into(), 401, "Missing API key"),
            (Refusal::InvalidApiKey.into(), 403, "Invalid API key"),
            (
                Refusal::PayloadTooLarge {
                    size: 70000,
                    limit: 65536,
                }
                .into(),
                413,
                "Payload too large",
            ),
            (
                Refusal::InvalidJson("x".into()).into(),
                400,
                "Invalid JSON payload",
            ),
            (
                Refusal::MissingFields(vec!["name", "phone_number"]).into(),
                400,
                "Missing required fields: name, phone_number",
            ),
            (Failure::NoApiKeys.into(), 500, INTERNAL),
            (
                StoreError::Unavailable(sqlx::Error::PoolTimedOut).into(),
                500,
                INTERNAL,
            ),
            (
                StoreError::Timeout(Duration::from_secs(5)).into(),
                500,
                INTERNAL,
            ),
            (
                SecretError::Parse {
                    arn: "arn".into(),
                    reason: "holds no key",
                }
                .into(),
                500,
                INTERNAL,
            ),
        ];
        let answers = Answers::new(&CARDEKHO);
        for (error, status, message) in cases {
            let text = error.to_string();
            let answer = answers.to(&Err(error));
            assert_eq!(answer.status, status, "{text}");
            let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
            assert_eq!(body, serde_json::json!({ "error": message }), "{text}");
        }
    }

    #[test]
    fn successes_follow_the_contract() {
        let accepted = |outcome| {
            Ok(Accepted::Lead {
                outcome,
                phone_number: "1".into(),
            })
        };
        let answers = Answers::new(&KNOWLARITY);
        let created = answers.to(&accepted(Outcome::Stored(Stored::Created(RowId::Number(
            7,
        )))));
        assert_eq!(
            created,
            Answer {
                status: 201,
                body: r#"{"message":"Knowlarity lead inserted successfully","id":7}"#.into(),
                content_type: JSON,
            }
        );
        let duplicate = answers.to(&accepted(Outcome::Stored(Stored::Duplicate(
            RowId::Number(7),
        ))));
        assert_eq!(duplicate.status, 200);
        assert_eq!(duplicate.body, r#"{"message":"Duplicate ignored","id":7}"#);
        let queued = answers.to(&accepted(Outcome::Queued(Postponed::Store(
            StoreError::Timeout(Duration::from_secs(5)),
        ))));
        assert_eq!(queued.status, 202);
        assert_eq!(
            queued.body,
            r#"{"message":"Knowlarity lead accepted","queued":true}"#
        );
        assert_eq!(
            Answers::new(&CARDEKHO).inserted(),
            "CarDekho lead inserted successfully"
        );
        assert_eq!(
            Answers::new(&CARWALE).inserted(),
            "CarWale lead inserted successfully"
        );
    }

    #[test]
    fn ad_platforms_hear_200() {
        let created = Ok(Accepted::Lead {
            outcome: Outcome::Stored(Stored::Created(RowId::Number(9))),
            phone_number: "1".into(),
        });
        let google = Answers::new(&GOOGLE).to(&created);
        assert_eq!(google.status, 200);
        assert_eq!(
            google.body,
            r#"{"message":"Google lead inserted successfully","id":9}"#
        );
        let queued = Ok(Accepted::Lead {
            outcome: Outcome::Queued(Postponed::Unfetched("down".into())),
            phone_number: "1".into(),
        });
        assert_eq!(Answers::new(&GOOGLE).to(&queued).status, 200);
        let refused = Answers::new(&GOOGLE).to(&Err(Refusal::InvalidApiKey.into()));
        assert_eq!(refused.status, 403);

        let summary = Summary {
            stored: 2,
            duplicates: 1,
            queued: 0,
        };
        let meta = Answers::new(&META).to(&Ok(Accepted::Batch(summary)));
        assert_eq!(meta.status, 200);
        assert_eq!(meta.body, r#"{"stored":2,"duplicates":1,"queued":0}"#);
        for (refusal, status, text) in [
            (
                Refusal::MissingSignature,
                401,
                r#"{"error":"Missing signature"}"#,
            ),
            (
                Refusal::InvalidSignature,
                403,
                r#"{"error":"Invalid signature"}"#,
            ),
        ] {
            let answer = Answers::new(&META).to(&Err(refusal.into()));
            assert_eq!((answer.status, answer.body.as_str()), (status, text));
        }
    }

    #[test]
    fn handshake_answers() {
        let ok = Answers::handshake(Some("1158201444"));
        assert_eq!(
            (ok.status, ok.body.as_str(), ok.content_type),
            (200, "1158201444", TEXT)
        );
        let refused = Answers::handshake(None);
        assert_eq!(refused.status, 403);
        assert_eq!(refused.content_type, JSON);
    }
}
