//! An SNS topic a function publishes to (the sales desk's, `NEW_LEADS_TOPIC_ARN`).
//!
//! The endpoint comes from the SDK configuration: `AWS_ENDPOINT_URL_SNS` (or
//! `AWS_ENDPOINT_URL`) points it elsewhere, for local runs and tests.

use aws_sdk_sns::error::DisplayErrorContext;

use crate::error::TopicError;

/// A topic and the client that publishes to it.
#[derive(Debug, Clone)]
pub struct Topic {
    client: aws_sdk_sns::Client,
    arn: String,
}

impl Topic {
    pub fn new(config: &aws_config::SdkConfig, arn: String) -> Self {
        Self {
            client: aws_sdk_sns::Client::new(config),
            arn,
        }
    }

    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// Publishes `message` as plain text; the topic's message id.
    pub async fn publish(&self, message: &str) -> Result<String, TopicError> {
        let output = self
            .client
            .publish()
            .topic_arn(&self.arn)
            .message(message)
            .send()
            .await
            .map_err(|error| TopicError(DisplayErrorContext(&error).to_string()))?;
        Ok(output.message_id().unwrap_or_default().to_owned())
    }
}
