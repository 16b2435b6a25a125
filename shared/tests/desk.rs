//! The sales desk against a real PostgreSQL (logged in as its own role, `lead_desk`) and
//! SNS on the local AWS API (`moto_server`), the topic's messages read from an SQS queue
//! subscribed to it: one message per lead however often its event arrives, one at once,
//! never two when deliveries race, the message sent on the retry after an invocation
//! that stopped before sending, nothing sent while another invocation is sending.

mod common;

use std::time::Duration;

use common::local_aws::LocalAws;
use serde_json::{json, Value};
use shared::error::DeskError;
use shared::infra::aws::topic::Topic;
use shared::infra::secrets::DbCredentials;
use shared::infra::store::{Store, StoreSettings};
use shared::pipeline::desk::{Desk, Told, CHANNEL};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The new-leads topic, with a queue subscribed to it that the test reads.
struct Topics {
    _aws: LocalAws,
    config: aws_config::SdkConfig,
    arn: String,
    queue: String,
    sqs: aws_sdk_sqs::Client,
}

impl Topics {
    async fn start() -> Self {
        let aws = LocalAws::start();
        let config = aws.sdk_config().await;
        let sns = aws_sdk_sns::Client::new(&config);
        let arn = sns
            .create_topic()
            .name("new-leads")
            .send()
            .await
            .expect("create the topic")
            .topic_arn
            .expect("its ARN");
        let sqs = aws_sdk_sqs::Client::new(&config);
        let queue = sqs
            .create_queue()
            .queue_name("sales-desk")
            .send()
            .await
            .expect("create the queue")
            .queue_url
            .expect("its URL");
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("the queue's ARN")
            .attributes
            .and_then(|attributes| {
                attributes
                    .get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .cloned()
            })
            .expect("its ARN");
        sns.subscribe()
            .topic_arn(&arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .attributes("RawMessageDelivery", "true")
            .send()
            .await
            .expect("subscribe the queue");
        Self {
            _aws: aws,
            config,
            arn,
            queue,
            sqs,
        }
    }

    fn topic(&self) -> Topic {
        Topic::new(&self.config, self.arn.clone())
    }

    /// Every message the topic delivered so far.
    async fn messages(&self) -> Vec<String> {
        let mut bodies = Vec::new();
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.queue)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive");
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                return bodies;
            }
            bodies.extend(messages.into_iter().filter_map(|message| message.body));
        }
    }
}

/// The desk as deployed: its own store, logged in as `lead_desk`.
async fn desk(options: &PgConnectOptions, topic: Topic) -> Desk {
    let admin = Store::new(options.clone(), StoreSettings::default());
    let credentials =
        DbCredentials::from_secret(r#"{"username":"lead_desk","password":"desk-pw"}"#)
            .expect("credentials");
    admin.grant_login(&credentials).await.expect("grant login");
    let as_desk = options.clone().username("lead_desk").password("desk-pw");
    Desk::new(Store::new(as_desk, StoreSettings::default()), topic)
}

fn detail(id: i64) -> Value {
    json!({
        "id": id,
        "platform": "Meta",
        "name": "Asha Rao",
        "status": "new",
        "summary": format!("New Meta lead: Asha Rao, +91 98765 •••10, lead {id}"),
    })
}

#[sqlx::test(migrations = "../migrations")]
async fn an_event_delivered_twice_tells_the_desk_once(_: PgPoolOptions, options: PgConnectOptions) {
    let topics = Topics::start().await;
    let desk = desk(&options, topics.topic()).await;
    let told = desk.tell(&detail(7)).await.expect("told");
    assert!(matches!(told, Told::Sent { .. }), "{told:?}");
    let again = desk.tell(&detail(7)).await.expect("a repeat");
    assert_eq!(
        again,
        Told::Repeat {
            lead_id: "7".into()
        }
    );
    assert_eq!(
        topics.messages().await,
        ["New Meta lead: Asha Rao, +91 98765 •••10, lead 7"],
        "the summary, once"
    );
    // Another lead is another message.
    desk.tell(&detail(8)).await.expect("told");
    assert_eq!(topics.messages().await.len(), 1);
}

/// Deliveries of one event racing in three containers: one message, and every other
/// delivery either a repeat or a failure to be delivered again (never a second send).
#[sqlx::test(migrations = "../migrations")]
async fn racing_deliveries_send_one_message(_: PgPoolOptions, options: PgConnectOptions) {
    let topics = Topics::start().await;
    let mut desks = Vec::new();
    for _ in 0..3 {
        desks.push(desk(&options, topics.topic()).await);
    }
    let event = detail(42);
    let results = futures_util::future::join_all(desks.iter().map(|desk| desk.tell(&event))).await;
    let sent = results
        .iter()
        .filter(|result| matches!(result, Ok(Told::Sent { .. })))
        .count();
    assert_eq!(sent, 1, "{results:?}");
    for result in &results {
        assert!(
            matches!(
                result,
                Ok(Told::Sent { .. }) | Ok(Told::Repeat { .. }) | Err(DeskError::InFlight(_))
            ),
            "{result:?}"
        );
    }
    assert_eq!(topics.messages().await.len(), 1);
}

/// An invocation that stopped between its claim and its send (a crash, a timeout): the
/// delivery after it, once the claim is old enough, sends; while the claim is fresh the
/// delivery fails, to come again, and sends nothing.
#[sqlx::test(migrations = "../migrations")]
async fn a_claim_left_unsent_is_taken_over(_: PgPoolOptions, options: PgConnectOptions) {
    let topics = Topics::start().await;
    let pool = common::pool(&options).await;
    let desk = desk(&options, topics.topic()).await;
    sqlx::query("INSERT INTO public.lead_notices (lead_id, channel) VALUES ('9', $1)")
        .bind(CHANNEL)
        .execute(&pool)
        .await
        .expect("a fresh claim");
    let in_flight = desk.tell(&detail(9)).await;
    assert!(
        matches!(in_flight, Err(DeskError::InFlight(_))),
        "{in_flight:?}"
    );
    assert!(topics.messages().await.is_empty(), "nothing sent meanwhile");

    sqlx::query("UPDATE public.lead_notices SET claimed_at = now() - interval '1 minute'")
        .execute(&pool)
        .await
        .expect("the claim grows old");
    let told = desk.tell(&detail(9)).await.expect("taken over");
    assert!(matches!(told, Told::Sent { .. }), "{told:?}");
    assert_eq!(topics.messages().await.len(), 1);
    let sent: bool = sqlx::query_scalar(
        "SELECT sent_at IS NOT NULL AND message_id <> '' FROM public.lead_notices WHERE lead_id = '9'",
    )
    .fetch_one(&pool)
    .await
    .expect("the ledger");
    assert!(sent);
}

/// SNS unreachable: the invocation fails (Lambda delivers the event again) and the lead
/// is told once SNS is back and the claim has aged, never lost to the failure.
#[sqlx::test(migrations = "../migrations")]
async fn a_failed_send_is_sent_on_a_later_delivery(_: PgPoolOptions, options: PgConnectOptions) {
    let topics = Topics::start().await;
    let pool = common::pool(&options).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://{}", listener.local_addr().expect("address"));
    let cut = topics.config.to_builder().endpoint_url(dead).build();
    let down = desk(&options, Topic::new(&cut, topics.arn.clone())).await;
    let failed = tokio::time::timeout(Duration::from_secs(10), down.tell(&detail(5)))
        .await
        .expect("bounded");
    assert!(matches!(failed, Err(DeskError::Topic(_))), "{failed:?}");

    sqlx::query("UPDATE public.lead_notices SET claimed_at = now() - interval '1 minute'")
        .execute(&pool)
        .await
        .expect("the claim grows old");
    let up = desk(&options, topics.topic()).await;
    assert!(matches!(up.tell(&detail(5)).await, Ok(Told::Sent { .. })));
    assert_eq!(topics.messages().await.len(), 1);
}

/// The desk's role reads and writes its ledger only: not the leads, not the outbox.
#[sqlx::test(migrations = "../migrations")]
async fn the_desk_reads_no_lead(_: PgPoolOptions, options: PgConnectOptions) {
    let topics = Topics::start().await;
    let _desk = desk(&options, topics.topic()).await;
    let as_desk =
        sqlx::PgPool::connect_with(options.clone().username("lead_desk").password("desk-pw"))
            .await
            .expect("connect as lead_desk");
    for table in [r#"public."mg-digital-leads""#, "public.lead_outbox"] {
        let error = sqlx::query(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&as_desk)
            .await
            .expect_err(table);
        assert_eq!(
            common::sqlstate(&error).as_deref(),
            Some("42501"),
            "{table}: {error}"
        );
    }
    let bad = _desk.tell(&json!({"id": 1})).await;
    assert!(matches!(bad, Err(DeskError::Event(_))), "{bad:?}");
}
