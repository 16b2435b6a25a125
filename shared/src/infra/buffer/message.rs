//! A queued message on the wire: a whole lead record, versioned, or the reference of a
//! lead its platform could not give yet; written so SQS takes it, read back exactly.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::domain::lead::dedup::Identity;
use crate::domain::lead::record::{self, LeadRecord};
use crate::domain::lead::Lead;
use crate::domain::meta::Reference;
use crate::domain::source::{self, Source};
use crate::error::BufferError;

/// The wire format's version, so a drain can refuse a message it does not understand
/// (it then goes to the dead-letter queue instead of being misread).
const MESSAGE_VERSION: u32 = 1;

/// One queued lead on the wire. The payload is embedded as the JSON it is (not as an
/// escaped string), so a 64 KiB body stays well inside SQS's 256 KiB message limit.
#[derive(Debug, Serialize, Deserialize)]
struct Message {
    version: u32,
    // Written for `read`'s header; known by then, so not read back here.
    #[serde(skip_deserializing, default = "Kind::record")]
    kind: Kind,
    source: String,
    request_id: String,
    received_at_ms: u64,
    name: String,
    phone_number: String,
    car_model: Option<String>,
    lead_url: Option<String>,
    campaign: Option<String>,
    partner_lead_id: Option<String>,
    idempotency_key: Option<String>,
    /// The body's hash (the identity's `body_hash`), named as first written.
    body_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    submitted_at: Option<i64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    test: bool,
    payload: Box<RawValue>,
}

/// A lead a notification named that could not be read yet (see `meta`): the drain reads
/// it from the platform, then stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Unfetched {
    pub source: &'static Source,
    pub reference: Reference,
    pub request_id: String,
    pub received_at: SystemTime,
}

#[derive(Debug, Serialize, Deserialize)]
struct UnfetchedMessage {
    version: u32,
    #[serde(skip_deserializing, default = "Kind::unfetched")]
    kind: Kind,
    source: String,
    request_id: String,
    received_at_ms: u64,
    reference: Reference,
}

/// What a queue message holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Queued {
    Record(LeadRecord),
    Unfetched(Unfetched),
}

/// The message body of a record.
pub fn encode(record: &LeadRecord) -> Result<String, BufferError> {
    let payload = RawValue::from_string(record.payload.clone())
        .map_err(|error| BufferError::Message(format!("payload is not JSON: {error}")))?;
    let lead = &record.lead;
    let message = Message {
        version: MESSAGE_VERSION,
        kind: Kind::Record,
        source: record.source.slug.to_owned(),
        request_id: record.request_id.clone(),
        received_at_ms: record.received_at_ms(),
        name: lead.name.clone(),
        phone_number: lead.phone_number.clone(),
        car_model: lead.car_model.clone(),
        lead_url: lead.lead_url.clone(),
        campaign: lead.campaign.clone(),
        partner_lead_id: record.identity.partner_lead_id.clone(),
        idempotency_key: record.identity.idempotency_key.clone(),
        body_sha256: record.identity.body_hash.clone(),
        submitted_at: lead.submitted_at,
        test: lead.test,
        payload,
    };
    checked(&message)
}

/// The message body of a lead not read yet.
pub fn encode_unfetched(unread: &Unfetched) -> Result<String, BufferError> {
    checked(&UnfetchedMessage {
        version: MESSAGE_VERSION,
        kind: Kind::Unfetched,
        source: unread.source.slug.to_owned(),
        request_id: unread.request_id.clone(),
        received_at_ms: record::unix_ms(unread.received_at),
        reference: unread.reference.clone(),
    })
}

/// A message as SQS takes it, within the queue's size.
fn checked(message: &impl Serialize) -> Result<String, BufferError> {
    let text =
        serde_json::to_string(message).map_err(|error| BufferError::Message(error.to_string()))?;
    let text = sqs_safe(text);
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(BufferError::Message(format!(
            "{} bytes, over the queue's {MAX_MESSAGE_BYTES}",
            text.len()
        )));
    }
    Ok(text)
}

/// The queue's maximum message size, as template.yaml sets it (SQS's largest). The
/// largest lead the 64 KiB body limit lets in fits with room to spare (see the tests).
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// SQS takes only the characters #x9, #xA, #xD, #x20 to #xD7FF, #xE000 to #xFFFD and
/// #x10000 to #x10FFFF. JSON already escapes every control character; the two
/// noncharacters U+FFFE and U+FFFF are valid in JSON and in PostgreSQL text, so a lead
/// may hold them, and they are written as the JSON escapes that read back as the same
/// text. They can only stand inside JSON strings, where an escape is valid.
fn sqs_safe(text: String) -> String {
    if !text.contains(['\u{FFFE}', '\u{FFFF}']) {
        return text;
    }
    text.replace('\u{FFFE}', "\\ufffe")
        .replace('\u{FFFF}', "\\uffff")
}

/// What a message body carries: a lead to store, or one to read first.
pub fn decode(body: &str) -> Result<Queued, BufferError> {
    let header: Header =
        serde_json::from_str(body).map_err(|error| BufferError::Message(error.to_string()))?;
    check_version(header.version)?;
    match header.kind.unwrap_or(header.legacy_kind()) {
        Kind::Record => decode_record(body).map(Queued::Record),
        Kind::Unfetched => {
            let message: UnfetchedMessage = serde_json::from_str(body)
                .map_err(|error| BufferError::Message(error.to_string()))?;
            Ok(Queued::Unfetched(Unfetched {
                source: known(&message.source)?,
                reference: message.reference,
                request_id: message.request_id,
                received_at: record::from_unix_ms(message.received_at_ms),
            }))
        }
    }
}

/// What a message is: its `kind` tag says which message it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    /// A lead's whole record, to store.
    Record,
    /// A lead a notification named, to fetch from its platform first.
    Unfetched,
}

impl Kind {
    fn record() -> Self {
        Self::Record
    }

    fn unfetched() -> Self {
        Self::Unfetched
    }
}

/// The part of every message read before the rest.
#[derive(Deserialize)]
struct Header {
    version: u32,
    /// Absent only in messages queued before the tag was written.
    #[serde(default)]
    kind: Option<Kind>,
    #[serde(default)]
    reference: Option<serde::de::IgnoredAny>,
}

impl Header {
    /// The kind of a message queued before the tag was written: only a lead to fetch
    /// carried a reference.
    fn legacy_kind(&self) -> Kind {
        match self.reference {
            Some(_) => Kind::Unfetched,
            None => Kind::Record,
        }
    }
}

fn check_version(version: u32) -> Result<(), BufferError> {
    if version == MESSAGE_VERSION {
        Ok(())
    } else {
        Err(BufferError::Message(format!(
            "version {version} (this drain reads {MESSAGE_VERSION})"
        )))
    }
}

fn known(slug: &str) -> Result<&'static Source, BufferError> {
    source::by_slug(slug).ok_or_else(|| BufferError::Message(format!("unknown source {slug:?}")))
}

/// The record a message body carries.
pub fn decode_record(body: &str) -> Result<LeadRecord, BufferError> {
    let message: Message =
        serde_json::from_str(body).map_err(|error| BufferError::Message(error.to_string()))?;
    check_version(message.version)?;
    let source = known(&message.source)?;
    Ok(LeadRecord {
        source,
        lead: Lead {
            name: message.name,
            phone_number: message.phone_number,
            car_model: message.car_model,
            lead_url: message.lead_url,
            campaign: message.campaign,
            submitted_at: message.submitted_at,
            test: message.test,
        },
        payload: message.payload.get().to_owned(),
        identity: Identity {
            partner_lead_id: message.partner_lead_id,
            idempotency_key: message.idempotency_key,
            body_hash: message.body_sha256,
        },
        request_id: message.request_id,
        received_at: record::from_unix_ms(message.received_at_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::source::{Source, CARDEKHO};
    use std::time::{Duration, UNIX_EPOCH};

    fn record() -> LeadRecord {
        LeadRecord {
            source: &CARDEKHO,
            lead: Lead {
                name: "Asha".into(),
                phone_number: "+919800000001".into(),
                car_model: Some("Hector".into()),
                lead_url: None,
                campaign: Some("diwali".into()),
                submitted_at: None,
                test: false,
            },
            payload: r#"{"lead_id":"CD-1", "name":"Asha","nested":{"a":[1,2]}}"#.into(),
            identity: Identity {
                partner_lead_id: Some("CD-1".into()),
                idempotency_key: Some("k".into()),
                body_hash: None,
            },
            request_id: "req-1".into(),
            received_at: UNIX_EPOCH + Duration::from_millis(1_763_900_000_123),
        }
    }

    #[test]
    fn a_record_survives_the_queue_byte_for_byte() {
        let record = record();
        let body = encode(&record).unwrap();
        // The payload is embedded as JSON, exactly as archived (spacing included).
        assert!(
            body.contains(r#""payload":{"lead_id":"CD-1", "name""#),
            "{body}"
        );
        assert_eq!(decode_record(&body).unwrap(), record);
    }

    /// What SQS accepts in a message body.
    fn sqs_allows(c: char) -> bool {
        matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
    }

    /// The largest, most escaped bodies the 64 KiB limit lets in, for every source: a
    /// JSON body of noncharacters (each escaped to six bytes), a form body of `%01`
    /// (three bytes that become a six-byte escape, twice: in the archive and in the
    /// mapped name), and JSON escapes that the name repeats.
    fn worst_bodies(source: &Source) -> Vec<(&'static str, Vec<u8>)> {
        let name = source.name.aliases[0];
        let phone = source.phone_number.aliases[0];
        let fill = |unit: &str, room: usize| unit.repeat(room / unit.len());
        // A source whose key travels in the body carries it there.
        let (key_json, key_form) = match source.auth {
            crate::domain::source::Auth::Body(names) => (
                format!(r#""{}":"k","#, names[0]),
                format!("{}=k&", names[0]),
            ),
            _ => (String::new(), String::new()),
        };
        let json = |unit: &str| {
            let frame = format!(r#"{{{key_json}"{phone}":"9876543210","{name}":""}}"#);
            format!(
                r#"{{{key_json}"{phone}":"9876543210","{name}":"{}"}}"#,
                fill(
                    unit,
                    crate::domain::lead::payload::MAX_BODY_BYTES - frame.len()
                )
            )
            .into_bytes()
        };
        let form = {
            let frame = format!("{key_form}{phone}=9876543210&{name}=");
            format!(
                "{frame}{}",
                fill(
                    "%01",
                    crate::domain::lead::payload::MAX_BODY_BYTES - frame.len()
                )
            )
            .into_bytes()
        };
        vec![
            ("application/json", json("\u{FFFF}")),
            ("application/json", json("\u{FFFE}")),
            ("application/json", json(r"\u0001")),
            ("application/json", json(r"\uffff")),
            ("application/x-www-form-urlencoded", form),
        ]
    }

    #[test]
    fn the_largest_most_escaped_lead_fits_the_queue_and_reads_back() {
        // A notification carries ids, not leads: its leads are read from the platform.
        let bodied = crate::domain::source::ALL
            .iter()
            .filter(|source| source.shape != crate::domain::source::Shape::Notification);
        for source in bodied {
            let keys = crate::domain::auth::ApiKeys::new(["k"]);
            for (content_type, body) in worst_bodies(source) {
                assert!(body.len() <= crate::domain::lead::payload::MAX_BODY_BYTES);
                let incoming = crate::pipeline::request::Incoming {
                    signature: None,
                    api_key: Some(b"k"),
                    content_type: Some(content_type),
                    idempotency_key: None,
                    body: &body,
                    query: None,
                    request_id: "r",
                    received_at: UNIX_EPOCH + Duration::from_millis(1),
                };
                let record =
                    crate::pipeline::keyed::prepare(source, &keys, &incoming).expect("a lead");
                let message = encode(&record).expect("encoded");
                assert!(
                    message.len() <= MAX_MESSAGE_BYTES / 2,
                    "{}: {content_type}: {} bytes",
                    source.slug,
                    message.len()
                );
                assert!(message.chars().all(sqs_allows), "{}", source.slug);
                let back = decode_record(&message).expect("decoded");
                assert_eq!(back.lead, record.lead);
                assert_eq!(back.identity, record.identity);
                let payload = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();
                assert_eq!(payload(&back.payload), payload(&record.payload));
            }
        }
    }

    #[test]
    fn a_message_says_what_it_is_and_one_queued_before_the_tag_still_reads() {
        let body = encode(&record()).unwrap();
        assert!(body.contains(r#""kind":"record""#), "{body}");
        assert!(matches!(decode(&body), Ok(Queued::Record(_))));
        let legacy = body.replace(r#""kind":"record","#, "");
        assert!(matches!(decode(&legacy), Ok(Queued::Record(_))));
        let unfetched = encode_unfetched(&Unfetched {
            source: &crate::domain::source::META,
            reference: crate::domain::meta::Reference {
                leadgen_id: "42".into(),
                change: serde_json::json!({"leadgen_id": "42"}),
            },
            request_id: "r".into(),
            received_at: UNIX_EPOCH,
        })
        .unwrap();
        assert!(unfetched.contains(r#""kind":"unfetched""#), "{unfetched}");
        assert!(matches!(decode(&unfetched), Ok(Queued::Unfetched(_))));
        let legacy = unfetched.replace(r#""kind":"unfetched","#, "");
        assert!(matches!(decode(&legacy), Ok(Queued::Unfetched(_))));
    }

    #[test]
    fn foreign_messages_are_refused() {
        let body = encode(&record()).unwrap();
        for bad in [
            body.replace(r#""version":1"#, r#""version":2"#),
            body.replace(r#""source":"cardekho""#, r#""source":"olx""#),
            "not json".to_owned(),
            "{}".to_owned(),
        ] {
            assert!(
                matches!(decode_record(&bad), Err(BufferError::Message(_))),
                "{bad}"
            );
        }
    }
}
