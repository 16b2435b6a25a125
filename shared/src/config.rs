//! A function's configuration, read from the environment once per container.
//!
//! Local runs and tests give `DATABASE_URL` and `API_KEYS` directly. On AWS the
//! deployment gives Secrets Manager ARNs instead (`DB_SECRET_ARN`, `API_KEYS_SECRET_ARN`):
//! those are represented here so the rest of the code has one shape to handle.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgSslMode;

use crate::auth::ApiKeys;
use crate::store::StoreSettings;

/// Where the source's active API keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `API_KEYS`: comma-separated keys, for local runs and tests.
    Static(ApiKeys),
    /// `API_KEYS_SECRET_ARN`: a Secrets Manager secret holding one key or a JSON list.
    Secret { arn: String },
}

/// Where the database connection comes from.
#[derive(Clone)]
pub enum DatabaseSource {
    /// `DATABASE_URL`, used as is.
    Url(String),
    /// `DB_SECRET_ARN` (the RDS-managed `username`/`password` secret) with
    /// `DB_HOST`, `DB_PORT` and `DB_NAME`.
    Secret {
        arn: String,
        host: String,
        port: u16,
        name: String,
        /// `DB_SSLMODE`, `require` by default: RDS enforces TLS.
        ssl_mode: PgSslMode,
        /// `DB_SSLROOTCERT`: a CA bundle file, for `verify-ca` / `verify-full`.
        ssl_root_cert: Option<String>,
    },
}

// The URL may carry a password: never print it.
impl std::fmt::Debug for DatabaseSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Url(_) => f.write_str("Url(<redacted>)"),
            Self::Secret {
                arn,
                host,
                port,
                name,
                ssl_mode,
                ssl_root_cert,
            } => f
                .debug_struct("Secret")
                .field("arn", arn)
                .field("host", host)
                .field("port", port)
                .field("name", name)
                .field("ssl_mode", ssl_mode)
                .field("ssl_root_cert", ssl_root_cert)
                .finish(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub keys: KeySource,
    pub database: DatabaseSource,
    pub store: StoreSettings,
    /// `SECRETS_TTL_SECONDS`: how long a fetched secret is used before it is read again.
    pub secrets_ttl: Duration,
    /// `BUFFER_QUEUE_URL`: where leads go while the database is unavailable. Unset, such
    /// a lead is answered with a 500 (and the partner retries).
    pub buffer_queue_url: Option<String>,
}

/// A configuration that cannot work, named precisely so the cold-start log says what to fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("set {0}")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, so tests need not touch the process
    /// environment. Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let keys = match (get("API_KEYS"), get("API_KEYS_SECRET_ARN")) {
            (Some(list), _) => {
                let keys = ApiKeys::from_csv(&list);
                if keys.is_empty() {
                    return Err(ConfigError::Invalid {
                        name: "API_KEYS",
                        reason: "holds no key".into(),
                    });
                }
                KeySource::Static(keys)
            }
            (None, Some(arn)) => KeySource::Secret { arn },
            (None, None) => return Err(ConfigError::Missing("API_KEYS or API_KEYS_SECRET_ARN")),
        };

        let DatabaseConfig {
            source: database,
            store,
            secrets_ttl,
        } = DatabaseConfig::from_lookup(&lookup)?;

        Ok(Self {
            keys,
            database,
            store,
            secrets_ttl,
            buffer_queue_url: get("BUFFER_QUEUE_URL"),
        })
    }
}

/// The database part of a configuration: all the `migrate` function needs.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub source: DatabaseSource,
    pub store: StoreSettings,
    pub secrets_ttl: Duration,
}

impl DatabaseConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let source = match (get("DATABASE_URL"), get("DB_SECRET_ARN")) {
            (Some(url), _) => DatabaseSource::Url(url),
            (None, Some(arn)) => DatabaseSource::Secret {
                arn,
                host: get("DB_HOST").ok_or(ConfigError::Missing("DB_HOST"))?,
                port: parse(&get, "DB_PORT")?.unwrap_or(5432),
                name: get("DB_NAME").ok_or(ConfigError::Missing("DB_NAME"))?,
                ssl_mode: parse(&get, "DB_SSLMODE")?.unwrap_or(PgSslMode::Require),
                ssl_root_cert: get("DB_SSLROOTCERT"),
            },
            (None, None) => return Err(ConfigError::Missing("DATABASE_URL or DB_SECRET_ARN")),
        };

        let defaults = StoreSettings::default();
        let millis = |name: &'static str, default: Duration| -> Result<Duration, ConfigError> {
            Ok(parse::<u64>(&get, name)?.map_or(default, Duration::from_millis))
        };
        let store = StoreSettings {
            max_connections: parse(&get, "DB_MAX_CONNECTIONS")?
                .unwrap_or(defaults.max_connections)
                .max(1),
            acquire_timeout: millis("DB_ACQUIRE_TIMEOUT_MS", defaults.acquire_timeout)?,
            statement_timeout: millis("DB_STATEMENT_TIMEOUT_MS", defaults.statement_timeout)?,
            operation_timeout: millis("DB_OPERATION_TIMEOUT_MS", defaults.operation_timeout)?,
            dedup_window: parse(&get, "DEDUP_WINDOW_SECONDS")?
                .map_or(defaults.dedup_window, Duration::from_secs),
        };

        Ok(Self {
            source,
            store,
            secrets_ttl: Duration::from_secs(parse(&get, "SECRETS_TTL_SECONDS")?.unwrap_or(300)),
        })
    }
}

fn parse<T: FromStr>(
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
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn local_variables_win_over_secrets() {
        let config = config(&[
            ("API_KEYS", "a,b"),
            ("API_KEYS_SECRET_ARN", "arn:keys"),
            ("DATABASE_URL", "postgres://u:p@h/db"),
            ("DB_SECRET_ARN", "arn:db"),
        ])
        .unwrap();
        assert!(matches!(config.keys, KeySource::Static(ref keys) if keys.len() == 2));
        assert!(matches!(config.database, DatabaseSource::Url(_)));
        assert_eq!(config.store, StoreSettings::default());
        assert_eq!(config.store.dedup_window, Duration::from_secs(900));
        assert!(!format!("{config:?}").contains("u:p"));
    }

    #[test]
    fn secrets_need_their_companions() {
        let config = config(&[
            ("API_KEYS_SECRET_ARN", "arn:keys"),
            ("DB_SECRET_ARN", "arn:db"),
            ("DB_HOST", "db.internal"),
            ("DB_NAME", "crm"),
            (
                "BUFFER_QUEUE_URL",
                "https://sqs.ap-south-1.amazonaws.com/1/leads",
            ),
        ])
        .unwrap();
        assert_eq!(
            config.buffer_queue_url.as_deref(),
            Some("https://sqs.ap-south-1.amazonaws.com/1/leads")
        );
        assert!(matches!(config.keys, KeySource::Secret { ref arn } if arn == "arn:keys"));
        assert!(matches!(
            config.database,
            DatabaseSource::Secret { port: 5432, .. }
        ));
        let missing = super::Config::from_lookup(|name| {
            (name == "API_KEYS" || name == "DB_SECRET_ARN").then(|| "x".to_owned())
        });
        assert_eq!(missing.unwrap_err(), ConfigError::Missing("DB_HOST"));
    }

    #[test]
    fn missing_and_invalid_values_are_named() {
        assert_eq!(
            config(&[("DATABASE_URL", "postgres://h/db")]).unwrap_err(),
            ConfigError::Missing("API_KEYS or API_KEYS_SECRET_ARN")
        );
        assert_eq!(
            config(&[("API_KEYS", "k")]).unwrap_err(),
            ConfigError::Missing("DATABASE_URL or DB_SECRET_ARN")
        );
        assert!(matches!(
            config(&[("API_KEYS", " , "), ("DATABASE_URL", "x")]).unwrap_err(),
            ConfigError::Invalid {
                name: "API_KEYS",
                ..
            }
        ));
        assert!(matches!(
            config(&[
                ("API_KEYS", "k"),
                ("DATABASE_URL", "x"),
                ("DB_ACQUIRE_TIMEOUT_MS", "soon")
            ])
            .unwrap_err(),
            ConfigError::Invalid {
                name: "DB_ACQUIRE_TIMEOUT_MS",
                ..
            }
        ));
    }

    #[test]
    fn timeouts_are_tunable() {
        let config = config(&[
            ("API_KEYS", "k"),
            ("DATABASE_URL", "x"),
            ("DB_OPERATION_TIMEOUT_MS", "2500"),
            ("DB_MAX_CONNECTIONS", "0"),
            ("DEDUP_WINDOW_SECONDS", "60"),
        ])
        .unwrap();
        assert_eq!(config.store.operation_timeout, Duration::from_millis(2500));
        assert_eq!(config.store.max_connections, 1);
        assert_eq!(config.store.dedup_window, Duration::from_secs(60));
        assert_eq!(config.buffer_queue_url, None);
    }
}
