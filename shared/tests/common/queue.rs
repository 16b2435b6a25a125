//! An SQS queue on the local AWS API, and what Lambda's event source mapping does with
//! it: hand a batch to the drain, delete what it stored.

use aws_lambda_events::event::sqs::SqsEvent;
use shared::buffer::Buffer;
use shared::drain::Drain;

use super::local_aws::LocalAws;

pub struct Queue {
    _aws: LocalAws,
    pub config: aws_config::SdkConfig,
    pub client: aws_sdk_sqs::Client,
    pub url: String,
}

impl Queue {
    pub async fn start() -> Self {
        let aws = LocalAws::start();
        let config = aws.sdk_config().await;
        let client = aws_sdk_sqs::Client::new(&config);
        let url = client
            .create_queue()
            .queue_name("lead-buffer")
            .send()
            .await
            .expect("create queue")
            .queue_url
            .expect("queue URL");
        Self {
            _aws: aws,
            config,
            client,
            url,
        }
    }

    pub fn buffer(&self) -> Buffer {
        Buffer::new(&self.config, self.url.clone())
    }

    /// What an SQS event source mapping does: receive a batch, invoke the drain, delete
    /// what it stored. Returns how many messages it handed over, and the failures.
    pub async fn drain_once(&self, drain: &Drain) -> (usize, Vec<String>) {
        let received = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .visibility_timeout(30)
            .send()
            .await
            .expect("receive");
        let messages = received.messages.unwrap_or_default();
        // The event as Lambda delivers it: JSON.
        let records: Vec<serde_json::Value> = messages
            .iter()
            .map(|message| {
                serde_json::json!({
                    "messageId": message.message_id,
                    "receiptHandle": message.receipt_handle,
                    "body": message.body,
                    "eventSource": "aws:sqs",
                    "messageAttributes": {},
                    "attributes": {},
                })
            })
            .collect();
        let event: SqsEvent = serde_json::from_value(serde_json::json!({ "Records": records }))
            .expect("an SQS event");
        let response = drain.handle(event).await;
        let failed: Vec<String> = response
            .batch_item_failures
            .into_iter()
            .map(|failure| failure.item_identifier)
            .collect();
        for message in &messages {
            if !failed.contains(message.message_id.as_ref().expect("message id")) {
                self.client
                    .delete_message()
                    .queue_url(&self.url)
                    .receipt_handle(message.receipt_handle.clone().expect("receipt"))
                    .send()
                    .await
                    .expect("delete");
            }
        }
        (messages.len(), failed)
    }

    /// Messages still in the queue, visible or in flight.
    pub async fn depth(&self) -> usize {
        let attributes = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .expect("queue attributes")
            .attributes
            .unwrap_or_default();
        [
            aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages,
            aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        ]
        .iter()
        .map(|name| {
            attributes
                .get(name)
                .and_then(|count| count.parse::<usize>().ok())
                .unwrap_or(0)
        })
        .sum()
    }

    pub async fn send_raw(&self, body: &str) {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .expect("send raw");
    }

    /// Makes in-flight messages visible again (what the visibility timeout does, sooner).
    pub async fn release_in_flight(&self) {
        // moto honours a zero visibility timeout on receive; re-receiving with 0 and not
        // deleting returns them to the queue at once.
        let _ = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .send()
            .await;
    }
}

/// A buffer queue with its dead-letter queue, on one local AWS API.
pub struct Queues {
    pub buffer: Queue,
    pub dead_letter: String,
}

impl Queues {
    pub async fn start() -> Self {
        let buffer = Queue::start().await;
        let dead_letter = buffer
            .client
            .create_queue()
            .queue_name("lead-buffer-dlq")
            .send()
            .await
            .expect("create the dead-letter queue")
            .queue_url
            .expect("queue URL");
        Self {
            buffer,
            dead_letter,
        }
    }

    /// The buffer, sending what can never be stored to the dead-letter queue.
    pub fn buffer(&self) -> Buffer {
        self.buffer
            .buffer()
            .with_dead_letter(self.dead_letter.clone())
    }

    /// The dead-letter queue's messages (received, and left there), with their reason.
    pub async fn dead_letters(&self) -> Vec<(serde_json::Value, String)> {
        let mut kept = Vec::new();
        loop {
            let received = self
                .buffer
                .client
                .receive_message()
                .queue_url(&self.dead_letter)
                .max_number_of_messages(10)
                .visibility_timeout(30)
                .message_attribute_names("All")
                .send()
                .await
                .expect("receive from the dead-letter queue");
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                return kept;
            }
            kept.extend(messages.into_iter().map(|message| {
                let body = serde_json::from_str(message.body().unwrap_or_default())
                    .expect("a JSON message");
                let reason = message
                    .message_attributes()
                    .and_then(|attributes| attributes.get(shared::buffer::REASON_ATTRIBUTE))
                    .and_then(|reason| reason.string_value())
                    .unwrap_or_default()
                    .to_owned();
                (body, reason)
            }));
        }
    }
}
