//! The stack's event bus on the local AWS API, with what the template's sales-desk rule
//! does in place of SNS: a rule on `Lead stored` that sends every event to an SQS queue,
//! so a test reads back exactly what was published.

use std::time::{Duration, Instant};

use aws_sdk_eventbridge::types::Target;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;
use shared::infra::aws::events::{Events, DETAIL_TYPE, SOURCE};

use super::local_aws::LocalAws;

/// How long a function waits for the local API after storing a lead.
pub const STAND_IN_WAIT: Duration = Duration::from_secs(2);

pub struct Bus {
    _aws: LocalAws,
    pub config: aws_config::SdkConfig,
    pub name: String,
    sqs: aws_sdk_sqs::Client,
    /// The queue the rule sends every `Lead stored` event to.
    pub target_url: String,
}

impl Bus {
    pub async fn start() -> Self {
        let aws = LocalAws::start();
        let config = aws.sdk_config().await;
        let name = "lead-events".to_owned();
        let events = aws_sdk_eventbridge::Client::new(&config);
        events
            .create_event_bus()
            .name(&name)
            .send()
            .await
            .expect("create the bus");
        let sqs = aws_sdk_sqs::Client::new(&config);
        let target_url = sqs
            .create_queue()
            .queue_name("lead-events-target")
            .send()
            .await
            .expect("create the target queue")
            .queue_url
            .expect("queue URL");
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&target_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("target queue attributes")
            .attributes
            .unwrap_or_default();
        let arn = attributes
            .get(&QueueAttributeName::QueueArn)
            .expect("target queue ARN")
            .clone();
        let pattern = serde_json::json!({
            "source": [SOURCE],
            "detail-type": [DETAIL_TYPE],
        });
        events
            .put_rule()
            .name("lead-stored-to-queue")
            .event_bus_name(&name)
            .event_pattern(pattern.to_string())
            .send()
            .await
            .expect("put the rule");
        events
            .put_targets()
            .rule("lead-stored-to-queue")
            .event_bus_name(&name)
            .targets(
                Target::builder()
                    .id("queue")
                    .arn(arn)
                    .build()
                    .expect("a target"),
            )
            .send()
            .await
            .expect("put the target");
        // The local API loads what delivering to a target takes on its first event;
        // an event no rule matches takes that wait out of the tests' timings.
        events
            .put_events()
            .entries(
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .event_bus_name(&name)
                    .source("warm-up")
                    .detail_type("warm-up")
                    .detail("{}")
                    .build(),
            )
            .send()
            .await
            .expect("a first event");
        Self {
            _aws: aws,
            config,
            name,
            sqs,
            target_url,
        }
    }

    /// The publisher a function builds from `EVENT_BUS_NAME`, on this bus, waiting as
    /// long as the local API may take on a machine busy with other tests (it answers
    /// far slower than EventBridge): a publish that timed out after the local API took
    /// it would make the relay publish it a second time.
    pub fn events(&self) -> Events {
        Events::new(&self.config, self.name.clone()).with_wait(STAND_IN_WAIT)
    }

    /// The events the rule delivered since the last call, each the whole EventBridge
    /// event (`source`, `detail-type`, `detail`...), deleted from the queue.
    pub async fn take(&self) -> Vec<Value> {
        let mut found = Vec::new();
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.target_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive");
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                return found;
            }
            for message in messages {
                let body = message.body.clone().unwrap_or_default();
                found.push(serde_json::from_str(&body).expect("an event is JSON"));
                self.sqs
                    .delete_message()
                    .queue_url(&self.target_url)
                    .receipt_handle(message.receipt_handle.unwrap_or_default())
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }

    /// What [`Bus::take`] gives once at least `count` events came, or after `within`.
    pub async fn take_at_least(&self, count: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        let mut found = self.take().await;
        while found.len() < count && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            found.extend(self.take().await);
        }
        found
    }
}
