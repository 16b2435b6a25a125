//! The durable buffer: while the database is unavailable, a lead goes to an SQS queue
//! (`BUFFER_QUEUE_URL`) and the `drain` function stores it later, through the same
//! deduplicating insert. The message is the whole [`LeadRecord`], versioned.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::dedup::Identity;
use crate::error::BufferError;
use crate::lead::Lead;
use crate::record::{self, LeadRecord};
use crate::source;

/// The wire format's version, so a drain can refuse a message it does not understand
/// (it then goes to the dead-letter queue instead of being misread).
const MESSAGE_VERSION: u32 = 1;

/// A queue client with the SDK's short timeouts (see `aws`): the send sits on the
/// request's path, after a database failure, inside the partners' 10 s.
#[derive(Debug, Clone)]
pub struct Buffer {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl Buffer {
    pub fn new(config: &aws_config::SdkConfig, queue_url: String) -> Self {
        Self {
            client: aws_sdk_sqs::Client::new(config),
            queue_url,
        }
    }

    pub async fn send(&self, record: &LeadRecord) -> Result<(), BufferError> {
        let body = encode(record)?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|error| {
                BufferError::Send(aws_sdk_sqs::error::DisplayErrorContext(error).to_string())
            })?;
        Ok(())
    }
}

/// One queued lead on the wire. The payload is embedded as the JSON it is (not as an
/// escaped string), so a 64 KiB body stays well inside SQS's 256 KiB message limit.
#[derive(Debug, Serialize, Deserialize)]
struct Message {
    version: u32,
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
    body_sha256: Option<String>,
    payload: Box<RawValue>,
}

/// The message body of a record.
pub fn encode(record: &LeadRecord) -> Result<String, BufferError> {
    let payload = RawValue::from_string(record.payload.clone())
        .map_err(|error| BufferError::Message(format!("payload is not JSON: {error}")))?;
    let lead = &record.lead;
    let message = Message {
        version: MESSAGE_VERSION,
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
        body_sha256: record.identity.body_sha256.clone(),
        payload,
    };
    serde_json::to_string(&message).map_err(|error| BufferError::Message(error.to_string()))
}

/// The record a message body carries.
pub fn decode(body: &str) -> Result<LeadRecord, BufferError> {
    let message: Message =
        serde_json::from_str(body).map_err(|error| BufferError::Message(error.to_string()))?;
    if message.version != MESSAGE_VERSION {
        return Err(BufferError::Message(format!(
            "version {} (this drain reads {MESSAGE_VERSION})",
            message.version
        )));
    }
    let source = source::by_slug(&message.source)
        .ok_or_else(|| BufferError::Message(format!("unknown source {:?}", message.source)))?;
    Ok(LeadRecord {
        source,
        lead: Lead {
            name: message.name,
            phone_number: message.phone_number,
            car_model: message.car_model,
            lead_url: message.lead_url,
            campaign: message.campaign,
        },
        payload: message.payload.get().to_owned(),
        identity: Identity {
            partner_lead_id: message.partner_lead_id,
            idempotency_key: message.idempotency_key,
            body_sha256: message.body_sha256,
        },
        request_id: message.request_id,
        received_at: record::from_unix_ms(message.received_at_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::CARDEKHO;
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
            },
            payload: r#"{"lead_id":"CD-1", "name":"Asha","nested":{"a":[1,2]}}"#.into(),
            identity: Identity {
                partner_lead_id: Some("CD-1".into()),
                idempotency_key: Some("k".into()),
                body_sha256: None,
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
        assert_eq!(decode(&body).unwrap(), record);
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
                matches!(decode(&bad), Err(BufferError::Message(_))),
                "{bad}"
            );
        }
    }
}
