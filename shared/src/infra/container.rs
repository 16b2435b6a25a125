//! The one place a configuration becomes what a container keeps between invocations.
//! Every kind of function builds its state here, once per cold start. Nothing connects
//! yet; secrets are read by the function's warm-up or first use.

use std::time::Duration;

use crate::domain::auth::ApiKeys;
use crate::domain::meta::MetaSecrets;
use crate::error::ConfigError;
use crate::infra::buffer::Buffer;
use crate::infra::config::crm::SmsMode;
use crate::infra::config::{Config, Provided};
use crate::infra::crm::Crm;
use crate::infra::events::Events;
use crate::infra::graph::Graph;
use crate::infra::graph::Meta;
use crate::infra::knowlarity::{CallLog, Knowlarity, KnowlarityKeys};
use crate::infra::secrets::{DbCredentials, Refreshing, SecretsClient, Setting};
use crate::infra::sms::Sms;
use crate::infra::store::Store;

#[derive(Debug)]
pub struct Container {
    pub store: Store,
    /// Only when configured: the drain and migrate have none.
    pub api_keys: Option<Setting<ApiKeys>>,
    /// Only when configured: Meta's secrets and the Graph API.
    pub meta: Option<Meta>,
    pub buffer: Option<Buffer>,
    /// The most one request may take (`REQUEST_BUDGET_MS`).
    pub request_budget: Duration,
    /// `migrate` only: the functions' role, whose password it sets from this secret.
    pub writer: Option<Refreshing<DbCredentials>>,
    /// Only when configured: Knowlarity's keys and its call log (its scheduled pull).
    pub knowlarity: Option<Knowlarity>,
    /// `migrate` only: the feed's role, whose password it sets from this secret.
    pub reader: Option<Refreshing<DbCredentials>>,
    /// `migrate` only: the relay's role, whose password it sets from this secret.
    pub relay: Option<Refreshing<DbCredentials>>,
    /// `migrate` only: the sales desk's role, whose password it sets from this secret.
    pub desk: Option<Refreshing<DbCredentials>>,
    /// `migrate` only: the CRM hand-off's role, whose password it sets from this secret.
    pub handoff: Option<Refreshing<DbCredentials>>,
    /// The leads feed only: its reader keys.
    pub feed_api_keys: Option<Setting<ApiKeys>>,
    /// The leads feed only: the dashboard's origins.
    pub feed_allowed_origins: Vec<String>,
    /// The CRM hand-off only: the CRM's side.
    pub crm: Option<Crm>,
}

impl Container {
    /// The container the process environment configures.
    pub async fn from_env() -> Result<Self, ConfigError> {
        Self::from_config(Config::from_env()?).await
    }

    /// Builds `config`, loading the AWS SDK configuration only when a secret or the
    /// buffer queue needs it (local runs and tests need none).
    pub async fn from_config(config: Config) -> Result<Self, ConfigError> {
        let aws = if config.needs_aws() {
            Some(crate::infra::aws::sdk_config_from_env().await)
        } else {
            None
        };
        Self::build(config, aws.as_ref())
    }

    /// As [`Container::from_config`], with a given AWS SDK configuration (tests point
    /// one at a local endpoint).
    pub fn build(config: Config, aws: Option<&aws_config::SdkConfig>) -> Result<Self, ConfigError> {
        let secrets = aws.map(SecretsClient::new);
        let secret = |name: &'static str| {
            secrets.clone().ok_or(ConfigError::Invalid {
                name,
                reason: "no AWS SDK configuration".into(),
            })
        };

        let role = |arn: Option<String>, name: &'static str| {
            arn.map(|arn| {
                secret(name).map(|client| {
                    Refreshing::new(client, arn, config.secrets_ttl, DbCredentials::from_secret)
                })
            })
            .transpose()
        };
        let writer = role(config.database.writer_arn, "DB_WRITER_SECRET_ARN")?;
        let reader = role(config.database.reader_arn, "DB_READER_SECRET_ARN")?;
        let relay = role(config.database.relay_arn, "DB_RELAY_SECRET_ARN")?;
        let desk = role(config.database.desk_arn, "DB_DESK_SECRET_ARN")?;
        let handoff = role(config.database.handoff_arn, "DB_CRM_SECRET_ARN")?;
        let crm = match config.crm {
            None => None,
            Some(crm) => {
                // No queue to rest towards: a failed hand-off is delivered again.
                let settings = crate::infra::store::StoreSettings {
                    breaker: Duration::ZERO,
                    ..config.database.settings.clone()
                };
                let mut store = Store::new(crm.options, settings);
                if let Some(arn) = crm.credentials_arn {
                    store = store.with_credentials(Refreshing::new(
                        secret("CRM_DB_SECRET_ARN")?,
                        arn,
                        config.secrets_ttl,
                        DbCredentials::from_secret,
                    ));
                }
                let no_aws = |name: &'static str| ConfigError::Invalid {
                    name,
                    reason: "no AWS SDK configuration".into(),
                };
                let sms = match crm.sms {
                    SmsMode::Log => Sms::Log,
                    SmsMode::Sns => Sms::sns(aws.ok_or_else(|| no_aws("CRM_SMS"))?, crm.dlt),
                };
                let dead_letters = match crm.dead_letter_queue_url {
                    Some(url) => Some(
                        Buffer::new(
                            aws.ok_or_else(|| no_aws("CRM_DEAD_LETTER_QUEUE_URL"))?,
                            url.clone(),
                        )
                        .with_dead_letter(url),
                    ),
                    None => None,
                };
                Some(Crm {
                    store,
                    sms,
                    sources: crm.sources,
                    template: crm.template,
                    dead_letters,
                })
            }
        };
        let mut settings = config.database.settings;
        // Resting sends leads to the buffer queue without trying the database; with no
        // queue to send them to, it would only refuse leads that might have stored.
        if config.buffer_queue_url.is_none() {
            settings.breaker = Duration::ZERO;
        }
        let mut store = Store::new(config.database.options, settings);
        if let Some(arn) = config.database.credentials_arn {
            store = store.with_credentials(Refreshing::new(
                secret("DB_SECRET_ARN")?,
                arn,
                config.secrets_ttl,
                DbCredentials::from_secret,
            ));
        }
        store = match (config.event_bus_name, aws) {
            (Some(bus), Some(aws)) => store.with_events(Events::new(aws, bus)),
            (Some(_), None) => {
                return Err(ConfigError::Invalid {
                    name: "EVENT_BUS_NAME",
                    reason: "no AWS SDK configuration".into(),
                })
            }
            (None, _) => store,
        };
        let ttl = config.secrets_ttl;
        let api_keys = setting(config.api_keys, ttl, ApiKeys::from_secret, || {
            secret("API_KEYS_SECRET_ARN")
        })?;
        let feed_api_keys = setting(config.feed.api_keys, ttl, ApiKeys::from_secret, || {
            secret("FEED_API_KEYS_SECRET_ARN")
        })?;
        let meta = setting(config.meta, ttl, MetaSecrets::from_secret, || {
            secret("META_SECRET_ARN")
        })?
        .map(|secrets| Meta::new(secrets, Graph::new(config.graph)));
        let knowlarity = setting(config.knowlarity, ttl, KnowlarityKeys::from_secret, || {
            secret("KNOWLARITY_SECRET_ARN")
        })?
        .map(|keys| Knowlarity::new(keys, CallLog::new(config.knowlarity_api)));
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
        let buffer = match (buffer, config.dead_letter_queue_url) {
            (Some(buffer), Some(url)) => Some(buffer.with_dead_letter(url)),
            (None, Some(_)) => {
                return Err(ConfigError::Invalid {
                    name: "DEAD_LETTER_QUEUE_URL",
                    reason: "set BUFFER_QUEUE_URL too".into(),
                })
            }
            (buffer, None) => buffer,
        };
        Ok(Self {
            store,
            api_keys,
            meta,
            buffer,
            request_budget: config.request_budget,
            writer,
            knowlarity,
            reader,
            relay,
            desk,
            handoff,
            feed_api_keys,
            feed_allowed_origins: config.feed.allowed_origins,
            crm,
        })
    }
}

/// A setting as given: its value, or the secret its ARN names, parsed by `parse` and
/// read again after `ttl`.
fn setting<T>(
    provided: Option<Provided<T>>,
    ttl: Duration,
    parse: fn(&str) -> Result<T, &'static str>,
    client: impl FnOnce() -> Result<SecretsClient, ConfigError>,
) -> Result<Option<Setting<T>>, ConfigError> {
    Ok(match provided {
        Some(Provided::Value(value)) => Some(Setting::fixed(value)),
        Some(Provided::Secret { arn }) => {
            Some(Setting::Secret(Refreshing::new(client()?, arn, ttl, parse)))
        }
        None => None,
    })
}
