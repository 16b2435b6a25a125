//! SNS's `Publish` on 127.0.0.1, as SNS answers it: every call recorded (its form fields:
//! `PhoneNumber` or `TopicArn`, `Message`, the message attributes by name), answered
//! with a message id, or with a 500 while told to fail. What a text to a phone carries
//! (the number, the DLT attributes) is not readable back from the local AWS API, so the
//! tests read it here.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::http::{Reply, Server};

/// One `Publish` call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    pub phone_number: Option<String>,
    pub topic_arn: Option<String>,
    pub message: String,
    /// `MessageAttributes`, name to string value.
    pub attributes: BTreeMap<String, String>,
}

#[derive(Default)]
struct State {
    published: Vec<Published>,
    failing: bool,
}

pub struct SnsStandIn {
    server: Server,
    state: Arc<Mutex<State>>,
}

impl SnsStandIn {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let server = Server::start(move |body| answer(&shared, body)).await;
        Self { server, state }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Every call so far.
    pub fn published(&self) -> Vec<Published> {
        self.state.lock().expect("state").published.clone()
    }

    /// The texts to phones so far.
    pub fn texts(&self) -> Vec<Published> {
        self.published()
            .into_iter()
            .filter(|call| call.phone_number.is_some())
            .collect()
    }

    /// Answers every call with a 500 (SNS unavailable) while `failing`.
    pub fn fail(&self, failing: bool) {
        self.state.lock().expect("state").failing = failing;
    }
}

/// A `Publish` call recorded and answered (its form-encoded fields read).
fn answer(state: &Mutex<State>, body: &[u8]) -> Reply {
    let fields: BTreeMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let mut state = state.lock().expect("state");
    if state.failing {
        return Reply {
            status: "500 Internal Server Error",
            content_type: "text/xml",
            body: "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code>\
                   <Message>the stand-in fails</Message></Error></ErrorResponse>"
                .into(),
        };
    }
    let mut attributes = BTreeMap::new();
    for n in 1.. {
        let Some(name) = fields.get(&format!("MessageAttributes.entry.{n}.Name")) else {
            break;
        };
        let value = fields
            .get(&format!("MessageAttributes.entry.{n}.Value.StringValue"))
            .cloned()
            .unwrap_or_default();
        attributes.insert(name.clone(), value);
    }
    state.published.push(Published {
        phone_number: fields.get("PhoneNumber").cloned(),
        topic_arn: fields.get("TopicArn").cloned(),
        message: fields.get("Message").cloned().unwrap_or_default(),
        attributes,
    });
    let id = state.published.len();
    Reply {
        status: "200 OK",
        content_type: "text/xml",
        body: format!(
            "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\
             <PublishResult><MessageId>message-{id}</MessageId></PublishResult>\
             <ResponseMetadata><RequestId>request-{id}</RequestId></ResponseMetadata>\
             </PublishResponse>"
        ),
    }
}
