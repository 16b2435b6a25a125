//! The outbox relay: every minute, publishes the `Lead stored` events that a function
//! did not get onto the bus right after storing their leads (EventBridge unreachable or
//! slow, a function stopped between the commit and the publish). The outbox is written
//! in the same statement as each lead, so no stored lead's event is lost; the relay
//! makes sure none is held back for longer than its schedule once EventBridge is there.

use std::time::{Duration, Instant};

use crate::error::{ConfigError, StoreError};
use crate::infra::aws::events::Events;
use crate::infra::config::readers::RelayConfig;
use crate::infra::parts::Parts;
use crate::infra::store::outbox::{self, Relayed};
use crate::infra::store::Store;

/// How old a row must be before the relay takes it: a function publishes its own
/// within a second of recording it, and a relay that took a row meanwhile would only
/// publish it twice.
pub const DEFAULT_MIN_AGE: Duration = Duration::from_secs(5);

/// The relay's state, built once per container: the store, with the bus.
#[derive(Debug)]
pub struct Relay {
    store: Store,
    min_age: Duration,
}

impl Relay {
    /// A relay over `store`, which must have its events configured
    /// ([`Store::with_events`]) to publish anything.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            min_age: DEFAULT_MIN_AGE,
        }
    }

    /// Takes rows at least `min_age` old (tests take every row at once).
    pub fn with_min_age(mut self, min_age: Duration) -> Self {
        self.min_age = min_age;
        self
    }

    /// The relay the environment configures: the database and `EVENT_BUS_NAME`.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = RelayConfig::from_env()?;
        let parts = Parts::load(true, config.base.secrets_ttl).await;
        let events = Events::new(parts.aws("EVENT_BUS_NAME")?, config.event_bus_name);
        Ok(Self::new(
            parts.store(config.base.database)?.with_events(events),
        ))
    }

    /// Publishes what the outbox holds, oldest first, until `deadline`.
    pub async fn run(&self, deadline: Instant) -> Result<Relayed, StoreError> {
        outbox::relay(&self.store, self.min_age, deadline).await
    }
}
