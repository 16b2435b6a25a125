//! The pipeline of one source, free of Lambda types: key → body → lead → row.

use std::sync::Arc;
use std::time::SystemTime;

use crate::auth::{self, ApiKeys};
use crate::buffer::Buffer;
use crate::config::{Config, ConfigError, DatabaseSource, KeySource};
use crate::database::Database;
use crate::dedup::DedupKeys;
use crate::error::IngestError;
use crate::lead;
use crate::payload;
use crate::record::LeadRecord;
use crate::secrets::{self, Refreshing, SecretsClient};
use crate::source::Source;
use crate::store::{LeadId, Store, Stored};

/// What a request brings, already taken out of its transport.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub api_key: Option<&'a [u8]>,
    pub content_type: Option<&'a str>,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<&'a [u8]>,
    pub body: &'a [u8],
    /// The Lambda request id, kept with the lead.
    pub request_id: &'a str,
    pub received_at: SystemTime,
}

/// An accepted lead: stored, recognised as a repeat, or queued.
#[derive(Debug)]
pub struct Accepted {
    pub outcome: Outcome,
    /// Kept for the log line, which masks it.
    pub phone_number: String,
}

#[derive(Debug)]
pub enum Outcome {
    /// A new row.
    Created(LeadId),
    /// A repeat of the lead in this row: nothing stored.
    Duplicate(LeadId),
    /// The database was unavailable (`cause`); the lead waits in the buffer queue.
    Queued { cause: IngestError },
}

/// Everything a container keeps between requests: built once at cold start.
#[derive(Debug)]
pub struct App {
    source: &'static Source,
    keys: Keys,
    database: Database,
    buffer: Option<Buffer>,
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
            buffer: None,
        }
    }

    /// Queues leads on `buffer` while the database is unavailable.
    pub fn with_buffer(mut self, buffer: Buffer) -> Self {
        self.buffer = Some(buffer);
        self
    }

    /// Builds the container's state from its configuration. Secrets are fetched here,
    /// once per cold start; a failure is logged and retried by the first request instead
    /// of failing the container. The database is connected on first use.
    pub async fn from_config(source: &'static Source, config: Config) -> Result<Self, ConfigError> {
        let needs_aws = matches!(config.keys, KeySource::Secret { .. })
            || matches!(config.database, DatabaseSource::Secret { .. })
            || config.buffer_queue_url.is_some();
        let aws = if needs_aws {
            Some(crate::aws::sdk_config_from_env().await)
        } else {
            None
        };
        Self::with_aws(source, config, aws.as_ref()).await
    }

    /// As [`App::from_config`], with a given AWS SDK configuration (tests point one at a
    /// local endpoint).
    pub async fn with_aws(
        source: &'static Source,
        config: Config,
        aws: Option<&aws_config::SdkConfig>,
    ) -> Result<Self, ConfigError> {
        let client = aws.map(SecretsClient::new);
        let buffer = match (config.buffer_queue_url, aws) {
            (Some(url), Some(aws)) => Some(Buffer::new(aws, url)),
            (Some(_), None) => {
                return Err(ConfigError::Invalid {
                    name: "BUFFER_QUEUE_URL",
                    reason: "no AWS SDK configuration".into(),
                })
            }
            (None, _) => None,
        };
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
            buffer,
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

    /// Runs the contract's checks in order and stores the lead once, or queues it while
    /// the database is unavailable.
    pub async fn ingest(&self, incoming: Incoming<'_>) -> Result<Accepted, IngestError> {
        // A missing key is the partner's mistake whatever state the secrets are in.
        auth::require_present(incoming.api_key)?;
        let keys = self.keys.current().await?;
        let record = prepare(self.source, &keys, &incoming)?;
        let outcome = match self.database.insert(&record).await {
            Ok(Stored::Created(id)) => Outcome::Created(id),
            Ok(Stored::Duplicate(id)) => Outcome::Duplicate(id),
            Err(cause) if cause.store_unavailable() => match &self.buffer {
                Some(buffer) => match buffer.send(&record).await {
                    Ok(()) => Outcome::Queued { cause },
                    Err(queue) => {
                        return Err(IngestError::Unqueued {
                            store: Box::new(cause),
                            queue,
                        })
                    }
                },
                None => return Err(cause),
            },
            Err(error) => return Err(error),
        };
        Ok(Accepted {
            outcome,
            phone_number: record.lead.phone_number,
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

/// The contract's checks 1 to 3, without I/O: the key, the body, the required fields.
/// Returns the record to store, or why the request is refused. Nothing of the body is
/// looked at before the key passes.
pub fn prepare(
    source: &'static Source,
    keys: &ApiKeys,
    incoming: &Incoming<'_>,
) -> Result<LeadRecord, IngestError> {
    keys.check(incoming.api_key)?;
    let payload = payload::decode(incoming.content_type, incoming.body)?;
    let lead = lead::map(source, &payload.fields)?;
    Ok(LeadRecord {
        source,
        keys: DedupKeys::new(
            lead.partner_lead_id.as_deref(),
            incoming.idempotency_key,
            incoming.body,
        ),
        lead,
        payload: payload.archived,
        request_id: incoming.request_id.to_owned(),
        received_at: incoming.received_at,
    })
}
