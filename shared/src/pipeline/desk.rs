//! The sales desk: each non-test `Lead stored` event's summary to the new-leads topic
//! (its e-mail and SMS subscribers), once per lead. Events arrive at least once (the
//! relay, EventBridge's retries), so the ledger of notices decides who sends
//! ([`crate::infra::store::notices`]): a repeat sends nothing, a repeat arriving while the first
//! is sending fails to be delivered again, and an invocation that stopped before sending
//! leaves a claim the next delivery takes over.

use crate::domain::event::Notice;
use crate::error::{ConfigError, DeskError};
use crate::infra::aws::topic::Topic;
use crate::infra::config::readers::DeskConfig;
use crate::infra::parts::Parts;
use crate::infra::store::notices::{self, Claim};
use crate::infra::store::Store;

/// The ledger's channel of the sales desk's messages.
pub const CHANNEL: &str = "sales-desk";

/// The desk's state, built once per container: its store (as `lead_desk`) and topic.
#[derive(Debug)]
pub struct Desk {
    store: Store,
    topic: Topic,
}

/// What one event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Told {
    /// The desk was told now: the topic's message id.
    Sent { lead_id: String, message_id: String },
    /// The desk was told before: nothing sent.
    Repeat { lead_id: String },
}

impl Desk {
    pub fn new(store: Store, topic: Topic) -> Self {
        Self { store, topic }
    }

    /// The desk the environment configures: the database and `NEW_LEADS_TOPIC_ARN`.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = DeskConfig::from_env()?;
        let parts = Parts::load(true, config.base.secrets_ttl).await;
        let topic = Topic::new(parts.aws("NEW_LEADS_TOPIC_ARN")?, config.topic_arn);
        Ok(Self::new(parts.store(config.base.database)?, topic))
    }

    /// Tells the desk of the lead of an event's `detail`, unless it was told already.
    pub async fn tell(&self, detail: &serde_json::Value) -> Result<Told, DeskError> {
        let notice = Notice::from_detail(detail).map_err(DeskError::Event)?;
        match notices::claim(&self.store, &notice.lead_id, CHANNEL).await? {
            Claim::Sent => Ok(Told::Repeat {
                lead_id: notice.lead_id,
            }),
            Claim::InFlight => Err(DeskError::InFlight(notice.lead_id)),
            Claim::Taken => {
                let message_id = self.topic.publish(&notice.summary).await?;
                notices::mark_sent(&self.store, &notice.lead_id, CHANNEL, &message_id).await?;
                Ok(Told::Sent {
                    lead_id: notice.lead_id,
                    message_id,
                })
            }
        }
    }
}
