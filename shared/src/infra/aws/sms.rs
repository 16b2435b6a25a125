//! Text messages to a salesperson's phone through SNS (`Publish` to a number), as a
//! transactional SMS with India's DLT attributes; or, where nothing may be sent (`make
//! dev`), to the log instead.
//!
//! The endpoint comes from the SDK configuration: `AWS_ENDPOINT_URL_SNS` (or
//! `AWS_ENDPOINT_URL`) points it elsewhere, for local runs and tests.

use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::MessageAttributeValue;

use crate::domain::mask;
use crate::error::TopicError;

/// India's DLT registration the messages are sent under: each set is sent as its SMS
/// attribute (`AWS.SNS.SMS.SenderID`, `AWS.MM.SMS.EntityId`, `AWS.MM.SMS.TemplateId`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dlt {
    pub sender_id: Option<String>,
    pub entity_id: Option<String>,
    pub template_id: Option<String>,
}

/// Where a text goes.
#[derive(Debug, Clone)]
pub enum Sms {
    /// Through SNS.
    Sns {
        client: aws_sdk_sns::Client,
        dlt: Dlt,
    },
    /// Written to the log, the number masked: nothing is sent.
    Log,
}

impl Sms {
    pub fn sns(config: &aws_config::SdkConfig, dlt: Dlt) -> Self {
        Self::Sns {
            client: aws_sdk_sns::Client::new(config),
            dlt,
        }
    }

    /// Sends `text` to `number` (E.164) under the registration's template; the message
    /// id (`logged` when only logged).
    pub async fn send(&self, number: &str, text: &str) -> Result<String, TopicError> {
        self.send_as(number, text, None).await
    }

    /// Sends `text` to `number` under the DLT template `template_id` (the registration's
    /// own when `None`).
    pub async fn send_as(
        &self,
        number: &str,
        text: &str,
        template_id: Option<&str>,
    ) -> Result<String, TopicError> {
        let (client, dlt) = match self {
            Self::Log => {
                tracing::info!(
                    to = mask::phone(number),
                    text = mask::numbers_in(text),
                    "SMS (logged, not sent)"
                );
                return Ok("logged".into());
            }
            Self::Sns { client, dlt } => (client, dlt),
        };
        let attribute = |value: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|error| TopicError(error.to_string()))
        };
        let mut publish = client
            .publish()
            .phone_number(number)
            .message(text)
            .message_attributes("AWS.SNS.SMS.SMSType", attribute("Transactional")?);
        for (name, value) in [
            ("AWS.SNS.SMS.SenderID", &dlt.sender_id),
            ("AWS.MM.SMS.EntityId", &dlt.entity_id),
            (
                "AWS.MM.SMS.TemplateId",
                &template_id.map(str::to_owned).or(dlt.template_id.clone()),
            ),
        ] {
            if let Some(value) = value {
                publish = publish.message_attributes(name, attribute(value)?);
            }
        }
        let output = publish
            .send()
            .await
            .map_err(|error| TopicError(DisplayErrorContext(&error).to_string()))?;
        Ok(output.message_id().unwrap_or_default().to_owned())
    }
}
