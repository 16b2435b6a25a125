//! The durable buffer: while the database is unavailable, a lead goes to an SQS queue
//! (`BUFFER_QUEUE_URL`) and the `drain` function stores it later, through the same
//! deduplicating insert. The message is the whole [`LeadRecord`], versioned; or, for a
//! lead a notification named that its platform could not give yet, the reference the
//! drain reads it by ([`Unfetched`]).

use std::time::Duration;

use futures_util::{stream, StreamExt};

use crate::domain::lead::record::LeadRecord;
use crate::error::BufferError;

mod message;

pub use message::{
    decode, decode_record, encode, encode_unfetched, Queued, Unfetched, MAX_MESSAGE_BYTES,
};

/// The most entries SQS takes in one `SendMessageBatch`.
const SEND_BATCH: usize = 10;

/// How many batches are sent at once: a notification's leads are queued within the
/// budget, without a burst of connections.
const CONCURRENT_BATCHES: usize = 4;

/// Every message of `batch`, failed for `reason`.
fn failed_all(batch: &[(String, String)], reason: &str) -> Vec<(String, BufferError)> {
    batch
        .iter()
        .map(|(label, _)| (label.clone(), BufferError::Send(reason.to_owned())))
        .collect()
}

/// A queue client with the SDK's short timeouts (see `aws`): the send sits on the
/// request's path, after a database failure, inside the partners' 10 s.
#[derive(Debug, Clone)]
pub struct Buffer {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    /// The buffer's dead-letter queue, for a lead that can never be stored as it is.
    dead_letter_url: Option<String>,
}

/// The message attribute that says why a lead was sent to the dead-letter queue.
pub const REASON_ATTRIBUTE: &str = "reason";

impl Buffer {
    pub fn new(config: &aws_config::SdkConfig, queue_url: String) -> Self {
        Self {
            client: aws_sdk_sqs::Client::new(config),
            queue_url,
            dead_letter_url: None,
        }
    }

    /// Sends the leads that can never be stored as they are to `url`.
    pub fn with_dead_letter(mut self, url: String) -> Self {
        self.dead_letter_url = Some(url);
        self
    }

    /// Keeps a message (a record's or an unread lead's body, see [`encode`] and
    /// [`encode_unfetched`]) on the dead-letter queue, with why it is there: a lead the
    /// database refuses as it is must not be retried in vain, nor dropped. The queue's
    /// alarm fires on it; `make replay-dlq` moves it back once the cause is mended.
    pub async fn send_dead_letter(&self, body: String, reason: &str) -> Result<(), BufferError> {
        let url = self
            .dead_letter_url
            .as_deref()
            .ok_or(BufferError::NoDeadLetter)?;
        let reason = aws_sdk_sqs::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(reason)
            .build()
            .map_err(|error| BufferError::Send(error.to_string()))?;
        self.send_to(url, body, Some(reason)).await
    }

    /// Keeps messages of the buffer queue out of sight, each for its own delay, by the
    /// receipt handles they were received with: a lead that cannot be stored yet comes
    /// back when it may, instead of after the queue's visibility timeout, which would
    /// spend its receives (and send it to the dead-letter queue) while it only waits. One
    /// answer per message, in order; SQS caps a delay at [`MAX_VISIBILITY`].
    pub async fn hide(&self, messages: &[(&str, Duration)]) -> Vec<Result<(), VisibilityError>> {
        let mut answers = Vec::with_capacity(messages.len());
        // SQS changes at most 10 messages a call.
        for chunk in messages.chunks(10) {
            answers.extend(self.hide_chunk(chunk).await);
        }
        answers
    }

    async fn hide_chunk(&self, messages: &[(&str, Duration)]) -> Vec<Result<(), VisibilityError>> {
        let entries: Result<Vec<_>, _> = messages
            .iter()
            .enumerate()
            .map(|(index, (receipt_handle, delay))| {
                let seconds = (*delay).min(MAX_VISIBILITY).as_secs();
                aws_sdk_sqs::types::ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(index.to_string())
                    .receipt_handle(*receipt_handle)
                    .visibility_timeout(i32::try_from(seconds).unwrap_or(i32::MAX))
                    .build()
            })
            .collect();
        let all_failed = |reason: String| {
            messages
                .iter()
                .map(|_| Err(VisibilityError(reason.clone())))
                .collect()
        };
        let entries = match entries {
            Ok(entries) => entries,
            Err(error) => return all_failed(error.to_string()),
        };
        let output = match self
            .client
            .change_message_visibility_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(output) => output,
            Err(error) => {
                return all_failed(aws_sdk_sqs::error::DisplayErrorContext(error).to_string())
            }
        };
        (0..messages.len())
            .map(|index| {
                let id = index.to_string();
                match output.failed.iter().find(|failed| failed.id == id) {
                    Some(failed) => Err(VisibilityError(format!(
                        "{}: {}",
                        failed.code,
                        failed.message.as_deref().unwrap_or_default()
                    ))),
                    None if output.successful.iter().any(|done| done.id == id) => Ok(()),
                    None => Err(VisibilityError("not in SQS's answer".into())),
                }
            })
            .collect()
    }

    pub async fn send(&self, record: &LeadRecord) -> Result<(), BufferError> {
        self.send_body(encode(record)?).await
    }

    /// Queues a lead that could not be read from its platform yet, for the drain to read.
    pub async fn send_unfetched(&self, unread: &Unfetched) -> Result<(), BufferError> {
        self.send_body(encode_unfetched(unread)?).await
    }

    /// Queues many messages (each a label and a body, see [`encode`] and
    /// [`encode_unfetched`]), ten to a request (SQS's batch), a few requests at once;
    /// returns the labels of those not queued, with why.
    pub async fn send_all(&self, messages: Vec<(String, String)>) -> Vec<(String, BufferError)> {
        let batches: Vec<_> = messages
            .chunks(SEND_BATCH)
            .map(|batch| self.send_batch(batch))
            .collect();
        let failed: Vec<Vec<(String, BufferError)>> = stream::iter(batches)
            .buffer_unordered(CONCURRENT_BATCHES)
            .collect()
            .await;
        failed.into_iter().flatten().collect()
    }

    async fn send_batch(&self, batch: &[(String, String)]) -> Vec<(String, BufferError)> {
        let entries = batch.iter().enumerate().map(|(index, (_, body))| {
            aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                .id(index.to_string())
                .message_body(body)
                .build()
        });
        let entries = match entries.collect::<Result<Vec<_>, _>>() {
            Ok(entries) => entries,
            Err(error) => return failed_all(batch, &error.to_string()),
        };
        let sent = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await;
        match sent {
            Ok(output) => output
                .failed
                .iter()
                .map(|entry| {
                    let label = entry
                        .id
                        .parse::<usize>()
                        .ok()
                        .and_then(|index| batch.get(index))
                        .map_or_else(String::new, |(label, _)| label.clone());
                    let reason = entry.message.clone().unwrap_or_else(|| entry.code.clone());
                    (label, BufferError::Send(reason))
                })
                .collect(),
            Err(error) => failed_all(
                batch,
                &aws_sdk_sqs::error::DisplayErrorContext(error).to_string(),
            ),
        }
    }

    async fn send_body(&self, body: String) -> Result<(), BufferError> {
        self.send_to(&self.queue_url, body, None).await
    }

    /// Sends one message to the queue at `url`, with a reason attribute when given.
    async fn send_to(
        &self,
        url: &str,
        body: String,
        reason: Option<aws_sdk_sqs::types::MessageAttributeValue>,
    ) -> Result<(), BufferError> {
        let mut send = self.client.send_message().queue_url(url).message_body(body);
        if let Some(reason) = reason {
            send = send.message_attributes(REASON_ATTRIBUTE, reason);
        }
        send.send().await.map_err(|error| {
            BufferError::Send(aws_sdk_sqs::error::DisplayErrorContext(error).to_string())
        })?;
        Ok(())
    }
}

/// The longest SQS keeps a received message out of sight.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

/// Why a queued message could not be kept out of sight: it then comes back after the
/// queue's own visibility timeout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot change the visibility of a queued message: {0}")]
pub struct VisibilityError(String);
