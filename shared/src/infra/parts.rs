//! The one place a function's configuration becomes what its container keeps between
//! invocations, once per cold start: stores, secrets, queues, the partners' clients.
//! Nothing connects yet; secrets are read by the function's warm-up or first use.

use std::time::Duration;

use aws_config::SdkConfig;

use crate::error::ConfigError;
use crate::infra::aws::events::Events;
use crate::infra::aws::sms::Sms;
use crate::infra::buffer::Buffer;
use crate::infra::config::crm::{CrmConfig, SmsMode};
use crate::infra::config::intake::{KeepingConfig, MetaConfig};
use crate::infra::config::{DatabaseConfig, Provided};
use crate::infra::crm::Crm;
use crate::infra::graph::{Graph, Meta};
use crate::infra::secrets::{DbCredentials, Refreshing, SecretsClient, Setting};
use crate::infra::store::Store;

/// What a function's state is built with: the AWS SDK's configuration when the function
/// needs it (local runs and tests need none), and how long a fetched secret is used.
#[derive(Debug, Clone)]
pub struct Parts {
    aws: Option<SdkConfig>,
    secrets_ttl: Duration,
}

impl Parts {
    /// Loads the AWS SDK's configuration from the environment when `needs_aws`.
    pub async fn load(needs_aws: bool, secrets_ttl: Duration) -> Self {
        let aws = match needs_aws {
            true => Some(crate::infra::aws::sdk_config_from_env().await),
            false => None,
        };
        Self::new(aws, secrets_ttl)
    }

    /// With a given AWS SDK configuration (tests point one at a local endpoint).
    pub fn new(aws: Option<SdkConfig>, secrets_ttl: Duration) -> Self {
        Self { aws, secrets_ttl }
    }

    /// The AWS SDK's configuration, which what `name` names needs.
    pub fn aws(&self, name: &'static str) -> Result<&SdkConfig, ConfigError> {
        self.aws.as_ref().ok_or(ConfigError::Invalid {
            name,
            reason: "no AWS SDK configuration".into(),
        })
    }

    /// A database role's credentials, read from the secret `arn` (named by `name`).
    pub fn credentials(
        &self,
        arn: String,
        name: &'static str,
    ) -> Result<Refreshing<DbCredentials>, ConfigError> {
        Ok(Refreshing::new(
            SecretsClient::new(self.aws(name)?),
            arn,
            self.secrets_ttl,
            DbCredentials::from_secret,
        ))
    }

    /// A setting as given: its value, or the secret its ARN names (`name`), parsed by
    /// `parse` and read again after the secrets' lifetime.
    pub fn setting<T>(
        &self,
        provided: Provided<T>,
        name: &'static str,
        parse: fn(&str) -> Result<T, &'static str>,
    ) -> Result<Setting<T>, ConfigError> {
        Ok(match provided {
            Provided::Value(value) => Setting::fixed(value),
            Provided::Secret { arn } => Setting::Secret(Refreshing::new(
                SecretsClient::new(self.aws(name)?),
                arn,
                self.secrets_ttl,
                parse,
            )),
        })
    }

    /// A store of this project's database that never rests after a failure: with no
    /// queue to send leads to meanwhile, resting would only refuse what might succeed.
    pub fn store(&self, database: DatabaseConfig) -> Result<Store, ConfigError> {
        let mut settings = database.settings;
        settings.breaker = Duration::ZERO;
        self.store_with(DatabaseConfig {
            settings,
            ..database
        })
    }

    fn store_with(&self, database: DatabaseConfig) -> Result<Store, ConfigError> {
        let store = Store::new(database.options, database.settings);
        Ok(match database.credentials_arn {
            Some(arn) => store.with_credentials(self.credentials(arn, "DB_SECRET_ARN")?),
            None => store,
        })
    }

    /// The store and buffer of a function that keeps leads: the store records each new
    /// lead's event when a bus is named, and rests after a failure only when a buffer
    /// queue takes the leads meanwhile.
    pub fn keeping(
        &self,
        database: DatabaseConfig,
        keeping: KeepingConfig,
    ) -> Result<(Store, Option<Buffer>), ConfigError> {
        let buffer = match keeping.buffer_queue_url {
            Some(url) => {
                let buffer = Buffer::new(self.aws("BUFFER_QUEUE_URL")?, url);
                Some(match keeping.dead_letter_queue_url {
                    Some(url) => buffer.with_dead_letter(url),
                    None => buffer,
                })
            }
            None => None,
        };
        let mut store = match buffer {
            Some(_) => self.store_with(database)?,
            None => self.store(database)?,
        };
        if let Some(bus) = keeping.event_bus_name {
            store = store.with_events(Events::new(self.aws("EVENT_BUS_NAME")?, bus));
        }
        Ok((store, buffer))
    }

    /// Meta's secrets and its Graph API.
    pub fn meta(&self, meta: MetaConfig) -> Result<Meta, ConfigError> {
        let secrets = self.setting(
            meta.secrets,
            "META_SECRET_ARN",
            crate::domain::meta::MetaSecrets::from_secret,
        )?;
        Ok(Meta::new(secrets, Graph::new(meta.graph)))
    }

    /// The CRM's side: its database (never resting: a failed hand-off is delivered
    /// again), its texts, and where an event it refuses is kept.
    pub fn crm(&self, crm: CrmConfig, database: &DatabaseConfig) -> Result<Crm, ConfigError> {
        let settings = crate::infra::store::StoreSettings {
            breaker: Duration::ZERO,
            ..database.settings.clone()
        };
        let mut store = Store::new(crm.options, settings);
        if let Some(arn) = crm.credentials_arn {
            store = store.with_credentials(self.credentials(arn, "CRM_DB_SECRET_ARN")?);
        }
        let sms = match crm.sms {
            SmsMode::Log => Sms::Log,
            SmsMode::Sns => Sms::sns(self.aws("CRM_SMS")?, crm.dlt),
        };
        let dead_letters = match crm.dead_letter_queue_url {
            Some(url) => Some(
                Buffer::new(self.aws("CRM_DEAD_LETTER_QUEUE_URL")?, url.clone())
                    .with_dead_letter(url),
            ),
            None => None,
        };
        Ok(Crm {
            store,
            sms,
            sources: crm.sources,
            template: crm.template,
            dead_letters,
        })
    }
}
