//! Each function's configuration, its own type, read from the environment once per
//! container: what a function needs is required when its container starts, and a reader
//! sees what it uses. Pure: it names what to build and where values come from; `parts`
//! builds it.
//!
//! Local runs and tests give values directly (`DATABASE_URL`, `API_KEYS`). On AWS the
//! deployment gives Secrets Manager ARNs instead (`DB_SECRET_ARN`, `API_KEYS_SECRET_ARN`).

pub mod crm;
pub mod database;
pub mod intake;
pub mod readers;
pub mod sla;

use std::str::FromStr;
use std::time::Duration;

use crate::domain::auth::ApiKeys;
pub use crate::error::ConfigError;
pub use database::{DatabaseConfig, MigrateConfig};

/// `REQUEST_BUDGET_MS` by default: inside the deployed functions' 8 s timeout, which is
/// inside the partners' 10 s.
pub const DEFAULT_REQUEST_BUDGET: Duration = Duration::from_secs(7);

/// `META_SYNC_OVERLAP_SECONDS` by default: how far before a form's last whole listing
/// Meta's scheduled pull looks again (and how far back a form's first listing looks).
pub const DEFAULT_PULL_OVERLAP: Duration = Duration::from_secs(3600);

/// `KNOWLARITY_SYNC_OVERLAP_SECONDS` by default: how far before its watermark Knowlarity's
/// scheduled pull asks for calls again. The call log filters on a call's start only, and
/// a call enters it once it has ended, so the overlap must cover the longest call plus
/// the log's delay; re-reading is one lookup per page, since stored calls are skipped.
pub const DEFAULT_KNOWLARITY_OVERLAP: Duration = Duration::from_secs(4 * 3600);

/// A value given in the environment, or the ARN of the secret that holds it.
#[derive(Debug, Clone)]
pub enum Provided<T> {
    Value(T),
    Secret { arn: String },
}

impl<T> Provided<T> {
    /// The value when one is given (a local run's), else the secret `arn` names.
    pub(crate) fn either(value: Option<T>, arn: Option<String>) -> Option<Self> {
        match (value, arn) {
            (Some(value), _) => Some(Self::Value(value)),
            (None, Some(arn)) => Some(Self::Secret { arn }),
            (None, None) => None,
        }
    }

    /// Whether reading it needs the AWS SDK.
    pub fn is_secret(&self) -> bool {
        matches!(self, Self::Secret { .. })
    }
}

/// What every function reads: its database, and how long a fetched secret is used.
#[derive(Debug, Clone)]
pub struct Base {
    pub database: DatabaseConfig,
    /// `SECRETS_TTL_SECONDS`: how long any fetched secret is used before it is read again.
    pub secrets_ttl: Duration,
}

impl Base {
    pub(crate) fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            database: DatabaseConfig::from_lookup(get)?,
            secrets_ttl: Duration::from_secs(parse(get, "SECRETS_TTL_SECONDS")?.unwrap_or(300)),
        })
    }

    /// Whether building it needs the AWS SDK (local runs and tests need none).
    pub fn needs_aws(&self) -> bool {
        self.database.credentials_arn.is_some()
    }
}

/// The process environment, as every configuration's `from_env` reads it.
pub(crate) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// `lookup` with empty values counted as unset.
pub(crate) fn set(lookup: impl Fn(&str) -> Option<String>) -> impl Fn(&str) -> Option<String> {
    move |name| lookup(name).filter(|value| !value.trim().is_empty())
}

/// A comma-separated key list from `name`, or why it holds none.
pub(crate) fn api_keys(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<ApiKeys>, ConfigError> {
    match get(name) {
        Some(list) => {
            let keys = ApiKeys::from_csv(&list);
            if keys.is_empty() {
                return Err(ConfigError::Invalid {
                    name,
                    reason: "holds no key".into(),
                });
            }
            Ok(Some(keys))
        }
        None => Ok(None),
    }
}

pub(crate) fn parse<T: FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    get(name)
        .map(|value| {
            value
                .trim()
                .parse()
                .map_err(|error: T::Err| ConfigError::Invalid {
                    name,
                    reason: error.to_string(),
                })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::postgres::PgSslMode;

    use crate::infra::store::StoreSettings;

    fn base(vars: &[(&str, &str)]) -> Result<Base, ConfigError> {
        let get = set(|name: &str| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        });
        Base::from_lookup(&get)
    }

    #[test]
    fn a_local_url_wins_over_a_secret() {
        let base = base(&[
            ("DATABASE_URL", "postgres://u:p@h/db"),
            ("DB_SECRET_ARN", "arn:db"),
        ])
        .unwrap();
        assert_eq!(base.database.credentials_arn, None);
        assert_eq!(base.database.options.get_host(), "h");
        assert_eq!(base.database.settings, StoreSettings::default());
        assert_eq!(
            base.database.settings.dedup_window,
            Duration::from_secs(900)
        );
        assert!(!base.needs_aws());
        assert!(!format!("{base:?}").contains("u:p"));
    }

    #[test]
    fn a_secret_needs_its_companions() {
        let base = base(&[
            ("DB_SECRET_ARN", "arn:db"),
            ("DB_HOST", "db.internal"),
            ("DB_NAME", "crm"),
        ])
        .unwrap();
        assert_eq!(base.database.credentials_arn.as_deref(), Some("arn:db"));
        assert_eq!(base.database.options.get_port(), 5432);
        assert!(matches!(
            base.database.options.get_ssl_mode(),
            PgSslMode::Require
        ));
        assert!(base.needs_aws());
        assert_eq!(
            super::tests::base(&[("DB_SECRET_ARN", "x")]).unwrap_err(),
            ConfigError::Missing("DB_HOST")
        );
    }

    #[test]
    fn missing_and_invalid_values_are_named() {
        assert_eq!(
            base(&[("API_KEYS", "k")]).unwrap_err(),
            ConfigError::Missing("DATABASE_URL or DB_SECRET_ARN")
        );
        assert!(matches!(
            base(&[("DATABASE_URL", "postgres://h:port/db")]).unwrap_err(),
            ConfigError::Invalid {
                name: "DATABASE_URL",
                ..
            }
        ));
        assert!(matches!(
            base(&[
                ("DATABASE_URL", "postgres://h/db"),
                ("DB_CONNECT_TIMEOUT_MS", "soon")
            ])
            .unwrap_err(),
            ConfigError::Invalid {
                name: "DB_CONNECT_TIMEOUT_MS",
                ..
            }
        ));
        let blank = set(|name: &str| (name == "API_KEYS").then(|| " , ".to_owned()));
        assert!(matches!(
            api_keys(&blank, "API_KEYS").unwrap_err(),
            ConfigError::Invalid {
                name: "API_KEYS",
                ..
            }
        ));
    }

    #[test]
    fn timeouts_are_tunable() {
        let base = base(&[
            ("DATABASE_URL", "postgres://h/db"),
            ("DB_OPERATION_TIMEOUT_MS", "2500"),
            ("DEDUP_WINDOW_SECONDS", "60"),
            ("SECRETS_TTL_SECONDS", "30"),
        ])
        .unwrap();
        let settings = &base.database.settings;
        assert_eq!(settings.operation_timeout, Duration::from_millis(2500));
        assert_eq!(settings.dedup_window, Duration::from_secs(60));
        assert_eq!(base.secrets_ttl, Duration::from_secs(30));
    }
}
