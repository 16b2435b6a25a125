//! The pipeline of one source, free of Lambda types: key → body → lead → row.

use std::sync::Arc;

use crate::auth::{self, ApiKeys};
use crate::config::{Config, ConfigError, DatabaseSource, KeySource};
use crate::database::{self, Database};
use crate::error::IngestError;
use crate::lead;
use crate::payload;
use crate::secrets::{self, Refreshing, SecretsClient};
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
    keys: Keys,
    database: Database,
}

/// The source's active keys: fixed (`API_KEYS`) or from a refreshed secret.
#[derive(Debug)]
enum Keys {
    Fixed(Arc<ApiKeys>),
    Secret(Refreshing<ApiKeys>),
}

impl App {
    pub fn new(source: &'static Source, keys: ApiKeys, store: Store) -> Self {
        Self {
            source,
            keys: Keys::Fixed(Arc::new(keys)),
            database: Database::fixed(store),
        }
    }

    /// Builds the container's state from its configuration. Secrets are fetched here,
    /// once per cold start; a failure is logged and retried by the first request instead
    /// of failing the container. The database is connected on first use.
    pub async fn from_config(source: &'static Source, config: Config) -> Result<Self, ConfigError> {
        let needs_secrets = matches!(config.keys, KeySource::Secret { .. })
            || matches!(config.database, DatabaseSource::Secret { .. });
        let client = if needs_secrets {
            Some(SecretsClient::from_env().await)
        } else {
            None
        };
        Self::with_secrets_client(source, config, client).await
    }

    /// As [`App::from_config`], with a given Secrets Manager client (tests point one at a
    /// local endpoint).
    pub async fn with_secrets_client(
        source: &'static Source,
        config: Config,
        client: Option<SecretsClient>,
    ) -> Result<Self, ConfigError> {
        let keys = match config.keys {
            KeySource::Static(keys) => Keys::Fixed(Arc::new(keys)),
            KeySource::Secret { arn } => Keys::Secret(Refreshing::new(
                client.clone().ok_or(ConfigError::Invalid {
                    name: "API_KEYS_SECRET_ARN",
                    reason: "no Secrets Manager client".into(),
                })?,
                arn,
                config.secrets_ttl,
                secrets::parse_api_keys,
            )),
        };
        let database = Database::new(config.database, config.store, config.secrets_ttl, client)?;
        let app = Self {
            source,
            keys,
            database,
        };
        app.warm_up().await;
        Ok(app)
    }

    /// Reads the secrets now, so the first request does not wait for them.
    async fn warm_up(&self) {
        if let Err(error) = self.keys.current().await {
            tracing::error!(source = self.source.slug, error = %error, "API keys unavailable at start");
        }
        if let Err(error) = self.database.store().await {
            tracing::error!(source = self.source.slug, error = %error, "database credentials unavailable at start");
        }
    }

    pub fn source(&self) -> &'static Source {
        self.source
    }

    /// The current store (tests and tools read rows through its pool).
    pub async fn store(&self) -> Result<Store, IngestError> {
        self.database.store().await
    }

    /// Runs the contract's checks in order and stores the lead. Nothing of the body is
    /// looked at before the key passes.
    pub async fn ingest(&self, incoming: Incoming<'_>) -> Result<Accepted, IngestError> {
        // A missing key is the partner's mistake whatever state the secrets are in.
        auth::require_present(incoming.api_key)?;
        self.keys.current().await?.check(incoming.api_key)?;
        let payload = payload::decode(incoming.content_type, incoming.body)?;
        let lead = lead::map(self.source, &payload.fields)?;
        let store = self.database.store().await?;
        let id = match store.insert(&lead, &payload.archived).await {
            Err(IngestError::Database(error)) if database::is_bad_password(&error) => {
                // The password was rotated since it was read: read it again next time.
                self.database.forget_credentials().await;
                return Err(IngestError::Database(error));
            }
            other => other?,
        };
        Ok(Accepted {
            id,
            phone_number: lead.phone_number,
        })
    }
}

impl Keys {
    async fn current(&self) -> Result<Arc<ApiKeys>, IngestError> {
        match self {
            Self::Fixed(keys) => Ok(keys.clone()),
            Self::Secret(secret) => Ok(secret.get().await?),
        }
    }
}
