//! The pipeline of one source, free of Lambda types: key → body → lead → row.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;

use crate::auth::ApiKeys;
use crate::config::{Config, ConfigError, DatabaseSource, KeySource};
use crate::error::IngestError;
use crate::lead;
use crate::payload;
use crate::source::Source;
use crate::store::{LeadId, Store};

/// What a request brings, already taken out of its transport.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub api_key: Option<&'a [u8]>,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// A stored lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub id: LeadId,
    /// Kept for the log line, which masks it.
    pub phone_number: String,
}

/// Everything a container keeps between requests: built once at cold start.
#[derive(Debug)]
pub struct App {
    source: &'static Source,
    keys: ApiKeys,
    store: Store,
}

impl App {
    pub fn new(source: &'static Source, keys: ApiKeys, store: Store) -> Self {
        Self {
            source,
            keys,
            store,
        }
    }

    /// Builds the container's state from its configuration; connects nothing yet.
    pub fn from_config(source: &'static Source, config: Config) -> Result<Self, ConfigError> {
        let keys = match config.keys {
            KeySource::Static(keys) => keys,
            KeySource::Secret { .. } => return Err(unsupported("API_KEYS_SECRET_ARN")),
        };
        let options = match config.database {
            DatabaseSource::Url(url) => {
                PgConnectOptions::from_str(&url).map_err(|error| ConfigError::Invalid {
                    name: "DATABASE_URL",
                    reason: error.to_string(),
                })?
            }
            DatabaseSource::Secret { .. } => return Err(unsupported("DB_SECRET_ARN")),
        };
        Ok(Self::new(
            source,
            keys,
            Store::connect_lazy(options, &config.store),
        ))
    }

    pub fn source(&self) -> &'static Source {
        self.source
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs the contract's checks in order and stores the lead. Nothing of the body is
    /// looked at before the key passes.
    pub async fn ingest(&self, incoming: Incoming<'_>) -> Result<Accepted, IngestError> {
        self.keys.check(incoming.api_key)?;
        let payload = payload::decode(incoming.content_type, incoming.body)?;
        let lead = lead::map(self.source, &payload.fields)?;
        let id = self.store.insert(&lead, &payload.archived).await?;
        Ok(Accepted {
            id,
            phone_number: lead.phone_number,
        })
    }
}

fn unsupported(name: &'static str) -> ConfigError {
    ConfigError::Invalid {
        name,
        reason: "Secrets Manager is not wired into this build; set DATABASE_URL and API_KEYS"
            .into(),
    }
}
