//! An SQS queue on the local AWS API (with its dead-letter queue, when asked), and what
//! Lambda's event source mapping does with it: hand a batch to the drain, with each
//! message's receive count, and delete what it did not name as failed.

use aws_lambda_events::event::sqs::SqsEvent;
use shared::infra::buffer::Buffer;
use shared::pipeline::drain::Drain;

use super::local_aws::LocalAws;

pub struct Queue {
    _aws: LocalAws,
    pub config: aws_config::SdkConfig,
    pub client: aws_sdk_sqs::Client,
    pub url: String,
    /// The dead-letter queue, when the queue has one.
    pub dead_letter_url: Option<String>,
}

/// A message as the dead-letter queue holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub body: String,
    /// Its `reason` attribute, when it was sent with one.
    pub reason: Option<String>,
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
            dead_letter_url: None,
        }
    }

    /// A queue whose messages move to a dead-letter queue after `max_receive_count`
    /// receives, as template.yaml's `RedrivePolicy` sets it.
    pub async fn with_dead_letter(max_receive_count: u32) -> Self {
        let mut queue = Self::start().await;
        let dead_letter_url = queue.create("lead-buffer-dlq").await;
        let attributes = queue
            .client
            .get_queue_attributes()
            .queue_url(&dead_letter_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("dead-letter queue attributes")
            .attributes
            .unwrap_or_default();
        let arn = attributes
            .get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .expect("dead-letter queue ARN");
        let redrive = serde_json::json!({
            "deadLetterTargetArn": arn,
            "maxReceiveCount": max_receive_count,
        });
        queue
            .client
            .set_queue_attributes()
            .queue_url(&queue.url)
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
                redrive.to_string(),
            )
            .send()
            .await
            .expect("set the redrive policy");
        queue.dead_letter_url = Some(dead_letter_url);
        queue
    }

    async fn create(&self, name: &str) -> String {
        self.client
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .expect("create queue")
            .queue_url
            .expect("queue URL")
    }

    /// The queue's client, with the dead-letter queue when there is one (as the
    /// container builds it from `BUFFER_QUEUE_URL` and `DEAD_LETTER_QUEUE_URL`).
    pub fn buffer(&self) -> Buffer {
        let buffer = Buffer::new(&self.config, self.url.clone());
        match &self.dead_letter_url {
            Some(url) => buffer.with_dead_letter(url.clone()),
            None => buffer,
        }
    }

    /// What an SQS event source mapping does: receive a batch, invoke the drain, delete
    /// what it stored. Returns how many messages it handed over, and the failures.
    pub async fn drain_once(&self, drain: &Drain) -> (usize, Vec<String>) {
        self.drain_once_with_visibility(drain, 30).await
    }

    /// As [`Queue::drain_once`], on a queue whose visibility timeout is `seconds`: what
    /// becomes of a failed message the drain does not hide itself.
    pub async fn drain_once_with_visibility(
        &self,
        drain: &Drain,
        seconds: i32,
    ) -> (usize, Vec<String>) {
        let received = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .visibility_timeout(seconds)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .expect("receive");
        let messages = received.messages.unwrap_or_default();
        // The event as Lambda delivers it: JSON, with the system attributes (the receive
        // count among them).
        let records: Vec<serde_json::Value> = messages
            .iter()
            .map(|message| {
                let attributes: serde_json::Map<String, serde_json::Value> = message
                    .attributes
                    .iter()
                    .flatten()
                    .map(|(name, value)| (name.as_str().to_owned(), value.clone().into()))
                    .collect();
                serde_json::json!({
                    "messageId": message.message_id,
                    "receiptHandle": message.receipt_handle,
                    "body": message.body,
                    "eventSource": "aws:sqs",
                    "messageAttributes": {},
                    "attributes": attributes,
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

    /// Messages visible now (not in flight, not hidden).
    pub async fn visible(&self) -> usize {
        let attributes = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .expect("queue attributes")
            .attributes
            .unwrap_or_default();
        attributes
            .get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .and_then(|count| count.parse::<usize>().ok())
            .unwrap_or(0)
    }

    /// Everything on the dead-letter queue, with the reason each was sent with, removed
    /// from it.
    pub async fn take_dead_letters(&self) -> Vec<DeadLetter> {
        let url = self.dead_letter_url.as_ref().expect("a dead-letter queue");
        let mut letters = Vec::new();
        loop {
            let received = self
                .client
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .message_attribute_names("All")
                .send()
                .await
                .expect("receive dead letters");
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                return letters;
            }
            for message in messages {
                let reason = message
                    .message_attributes
                    .as_ref()
                    .and_then(|attributes| attributes.get(shared::infra::buffer::REASON_ATTRIBUTE))
                    .and_then(|value| value.string_value.clone());
                letters.push(DeadLetter {
                    body: message.body.clone().unwrap_or_default(),
                    reason,
                });
                self.client
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(message.receipt_handle.expect("receipt"))
                    .send()
                    .await
                    .expect("delete dead letter");
            }
        }
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
                    .and_then(|attributes| attributes.get(shared::infra::buffer::REASON_ATTRIBUTE))
                    .and_then(|reason| reason.string_value())
                    .unwrap_or_default()
                    .to_owned();
                (body, reason)
            }));
        }
    }
}
