//! The CRM hand-off's configuration (the `crm` function's, and speed to lead's, which
//! works the same two databases): where the CRM's database is, which `sources` row each
//! platform maps to, how its salespeople are texted, where a lead the CRM refuses is kept.

use sqlx::postgres::PgConnectOptions;

use crate::domain::crm::{SourceMap, DEFAULT_SMS_TEMPLATE};
use crate::error::ConfigError;
use crate::infra::aws::sms::Dlt;
use crate::infra::config::database::{connection, DatabaseNames};
use crate::infra::config::{env, set, Base};

/// The CRM's database: as this project's own, under `CRM_`.
const CRM: DatabaseNames = DatabaseNames {
    url: "CRM_DATABASE_URL",
    secret: "CRM_DB_SECRET_ARN",
    host: "CRM_DB_HOST",
    port: "CRM_DB_PORT",
    name: "CRM_DB_NAME",
    sslmode: "CRM_DB_SSLMODE",
    sslrootcert: "CRM_DB_SSLROOTCERT",
};

/// How a salesperson's text leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsMode {
    /// Through SNS (deployed).
    Sns,
    /// Written to the log instead (`make dev`).
    Log,
}

#[derive(Clone)]
pub struct CrmConfig {
    /// `CRM_DATABASE_URL` as is; or `CRM_DB_HOST`, `CRM_DB_PORT`, `CRM_DB_NAME`,
    /// `CRM_DB_SSLMODE`, `CRM_DB_SSLROOTCERT` with the secret `CRM_DB_SECRET_ARN`.
    pub options: PgConnectOptions,
    pub credentials_arn: Option<String>,
    /// `CRM_SOURCES`: `Platform=Display name/source_type` pairs over the defaults.
    pub sources: SourceMap,
    /// `CRM_SMS`: `sns` (the default) or `log`.
    pub sms: SmsMode,
    /// `CRM_SMS_SENDER_ID`, `CRM_DLT_ENTITY_ID`, `CRM_DLT_TEMPLATE_ID`.
    pub dlt: Dlt,
    /// `CRM_SMS_TEMPLATE`: the registered wording, `{name}`, `{phone}`, `{model}`,
    /// `{source}`, `{time}` filled in.
    pub template: String,
    /// `CRM_DEAD_LETTER_QUEUE_URL`: where an event the CRM refuses for its data is kept,
    /// with the reason, at once.
    pub dead_letter_queue_url: Option<String>,
}

// The options may carry a password: never print them.
impl std::fmt::Debug for CrmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrmConfig")
            .field("host", &self.options.get_host())
            .field("database", &self.options.get_database())
            .field("credentials_arn", &self.credentials_arn)
            .field("sources", &self.sources)
            .field("sms", &self.sms)
            .field("dlt", &self.dlt)
            .finish_non_exhaustive()
    }
}

impl CrmConfig {
    /// The hand-off's configuration; `None` when no CRM database is named (the feature
    /// is off).
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ConfigError> {
        let Some((options, credentials_arn)) = connection(get, &CRM)? else {
            return Ok(None);
        };
        let sources =
            SourceMap::parse(&get("CRM_SOURCES").unwrap_or_default()).map_err(|reason| {
                ConfigError::Invalid {
                    name: "CRM_SOURCES",
                    reason,
                }
            })?;
        let sms = match get("CRM_SMS").as_deref().map(str::trim) {
            None | Some("sns") => SmsMode::Sns,
            Some("log") => SmsMode::Log,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "CRM_SMS",
                    reason: format!("{other:?} is not sns or log"),
                })
            }
        };
        Ok(Some(Self {
            options,
            credentials_arn,
            sources,
            sms,
            dlt: Dlt {
                sender_id: get("CRM_SMS_SENDER_ID"),
                entity_id: get("CRM_DLT_ENTITY_ID"),
                template_id: get("CRM_DLT_TEMPLATE_ID"),
            },
            template: get("CRM_SMS_TEMPLATE").unwrap_or_else(|| DEFAULT_SMS_TEMPLATE.to_owned()),
            dead_letter_queue_url: get("CRM_DEAD_LETTER_QUEUE_URL"),
        }))
    }
}

/// The hand-off's: the lead table (as `lead_crm`), the CRM's side, and the sales desk's
/// topic when the hand-off tells it too.
#[derive(Debug, Clone)]
pub struct HandoffConfig {
    pub base: Base,
    pub crm: CrmConfig,
    /// `NEW_LEADS_TOPIC_ARN`.
    pub topic_arn: Option<String>,
}

impl HandoffConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = set(lookup);
        Ok(Self {
            crm: CrmConfig::from_lookup(&get)?.ok_or(ConfigError::Missing(
                "CRM_DATABASE_URL or CRM_DB_SECRET_ARN",
            ))?,
            base: Base::from_lookup(&get)?,
            topic_arn: get("NEW_LEADS_TOPIC_ARN"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> Result<Option<CrmConfig>, ConfigError> {
        CrmConfig::from_lookup(&|name: &str| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn off_without_a_crm_database() {
        assert!(lookup(&[("CRM_SMS", "log")]).unwrap().is_none());
        assert_eq!(
            HandoffConfig::from_lookup(
                |name| (name == "DATABASE_URL").then(|| "postgres://h/db".to_owned())
            )
            .unwrap_err(),
            ConfigError::Missing("CRM_DATABASE_URL or CRM_DB_SECRET_ARN")
        );
    }

    #[test]
    fn a_secret_with_the_crms_host() {
        let config = lookup(&[
            ("CRM_DB_SECRET_ARN", "arn:crm"),
            ("CRM_DB_HOST", "db.crm.example"),
            ("CRM_DB_NAME", "postgres"),
            ("CRM_SOURCES", "Meta=META/meta"),
            ("CRM_SMS_SENDER_ID", "MGLEAD"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(config.options.get_host(), "db.crm.example");
        assert_eq!(config.credentials_arn.as_deref(), Some("arn:crm"));
        assert_eq!(config.sources.row("Meta"), ("META".into(), "meta".into()));
        assert_eq!(config.sms, SmsMode::Sns);
        assert_eq!(config.dlt.sender_id.as_deref(), Some("MGLEAD"));
        assert_eq!(config.template, DEFAULT_SMS_TEMPLATE);
        assert!(matches!(
            lookup(&[("CRM_DB_SECRET_ARN", "arn:crm"), ("CRM_DB_NAME", "x")]),
            Err(ConfigError::Missing("CRM_DB_HOST"))
        ));
        assert!(matches!(
            lookup(&[("CRM_DATABASE_URL", "postgres://x/y"), ("CRM_SMS", "email")]),
            Err(ConfigError::Invalid {
                name: "CRM_SMS",
                ..
            })
        ));
    }
}
