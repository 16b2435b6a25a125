//! Where a database is and how it is used: this project's (every function's), the CRM's
//! (the hand-off's), and the roles whose passwords `migrate` sets.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::error::ConfigError;
use crate::infra::config::{parse, Base};
use crate::infra::store::StoreSettings;

/// This project's database, as a function logs into it.
#[derive(Clone)]
pub struct DatabaseConfig {
    /// `DATABASE_URL` as is; or `DB_HOST`, `DB_PORT`, `DB_NAME`, `DB_SSLMODE` (`require`
    /// by default: RDS enforces TLS) and `DB_SSLROOTCERT`, without credentials.
    pub options: PgConnectOptions,
    /// `DB_SECRET_ARN`: a secret holding `username` and `password` (the function's own
    /// role's; for `migrate`, the RDS-managed master user's).
    pub credentials_arn: Option<String>,
    /// `DB_CONNECT_TIMEOUT_MS`, `DB_STATEMENT_TIMEOUT_MS`, `DB_OPERATION_TIMEOUT_MS`,
    /// `DEDUP_WINDOW_SECONDS`, `DB_BREAKER_MS`.
    pub settings: StoreSettings,
}

// The options may carry a password: never print them.
impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("host", &self.options.get_host())
            .field("port", &self.options.get_port())
            .field("database", &self.options.get_database())
            .field("credentials_arn", &self.credentials_arn)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl DatabaseConfig {
    pub(crate) fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let (options, credentials_arn) =
            connection(get, &OWN)?.ok_or(ConfigError::Missing("DATABASE_URL or DB_SECRET_ARN"))?;
        let defaults = StoreSettings::default();
        let millis = |name: &'static str, default: Duration| -> Result<Duration, ConfigError> {
            Ok(parse::<u64>(get, name)?.map_or(default, Duration::from_millis))
        };
        let settings = StoreSettings {
            connect_timeout: millis("DB_CONNECT_TIMEOUT_MS", defaults.connect_timeout)?,
            statement_timeout: millis("DB_STATEMENT_TIMEOUT_MS", defaults.statement_timeout)?,
            operation_timeout: millis("DB_OPERATION_TIMEOUT_MS", defaults.operation_timeout)?,
            dedup_window: parse(get, "DEDUP_WINDOW_SECONDS")?
                .map_or(defaults.dedup_window, Duration::from_secs),
            breaker: millis("DB_BREAKER_MS", defaults.breaker)?,
        };
        Ok(Self {
            options,
            credentials_arn,
            settings,
        })
    }
}

/// `migrate`: the master user's connection, and the secrets of the roles whose
/// passwords it sets (each optional: a local run has none).
#[derive(Debug, Clone)]
pub struct MigrateConfig {
    pub base: Base,
    /// `DB_WRITER_SECRET_ARN`: the functions' role (`lead_writer`).
    pub writer_arn: Option<String>,
    /// `DB_READER_SECRET_ARN`: the feed's role (`lead_reader`).
    pub reader_arn: Option<String>,
    /// `DB_RELAY_SECRET_ARN`: the relay's role (`lead_relay`).
    pub relay_arn: Option<String>,
    /// `DB_DESK_SECRET_ARN`: the sales desk's role (`lead_desk`).
    pub desk_arn: Option<String>,
    /// `DB_CRM_SECRET_ARN`: the CRM hand-off's role (`lead_crm`).
    pub handoff_arn: Option<String>,
}

impl MigrateConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(crate::infra::config::env)
    }

    /// With no statement limit: a migration may rewrite a table.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = crate::infra::config::set(lookup);
        let mut base = Base::from_lookup(&get)?;
        base.database.settings.statement_timeout = Duration::ZERO;
        Ok(Self {
            base,
            writer_arn: get("DB_WRITER_SECRET_ARN"),
            reader_arn: get("DB_READER_SECRET_ARN"),
            relay_arn: get("DB_RELAY_SECRET_ARN"),
            desk_arn: get("DB_DESK_SECRET_ARN"),
            handoff_arn: get("DB_CRM_SECRET_ARN"),
        })
    }

    /// The roles' secrets in the order of the migration's roles.
    pub fn role_arns(&self) -> [Option<String>; 5] {
        [
            self.writer_arn.clone(),
            self.reader_arn.clone(),
            self.relay_arn.clone(),
            self.desk_arn.clone(),
            self.handoff_arn.clone(),
        ]
    }

    pub fn needs_aws(&self) -> bool {
        self.base.needs_aws() || self.role_arns().iter().any(Option::is_some)
    }
}

/// The variables naming a database's place and credentials.
pub(crate) struct DatabaseNames {
    pub url: &'static str,
    pub secret: &'static str,
    pub host: &'static str,
    pub port: &'static str,
    pub name: &'static str,
    pub sslmode: &'static str,
    pub sslrootcert: &'static str,
}

/// This project's database.
const OWN: DatabaseNames = DatabaseNames {
    url: "DATABASE_URL",
    secret: "DB_SECRET_ARN",
    host: "DB_HOST",
    port: "DB_PORT",
    name: "DB_NAME",
    sslmode: "DB_SSLMODE",
    sslrootcert: "DB_SSLROOTCERT",
};

/// A database's connection options (without credentials when a secret holds them) and
/// its secret's ARN, from the variables `names` names; `None` when neither a URL nor a
/// secret is set.
pub(crate) fn connection(
    get: &impl Fn(&str) -> Option<String>,
    names: &DatabaseNames,
) -> Result<Option<(PgConnectOptions, Option<String>)>, ConfigError> {
    Ok(match (get(names.url), get(names.secret)) {
        (Some(url), _) => {
            let options =
                PgConnectOptions::from_str(&url).map_err(|error| ConfigError::Invalid {
                    name: names.url,
                    reason: error.to_string(),
                })?;
            Some((options, None))
        }
        (None, Some(arn)) => {
            let host = get(names.host).ok_or(ConfigError::Missing(names.host))?;
            let name = get(names.name).ok_or(ConfigError::Missing(names.name))?;
            let mut options = PgConnectOptions::new_without_pgpass()
                .host(&host)
                .port(parse(get, names.port)?.unwrap_or(5432))
                .database(&name)
                .ssl_mode(parse(get, names.sslmode)?.unwrap_or(PgSslMode::Require));
            if let Some(path) = get(names.sslrootcert) {
                options = options.ssl_root_cert(path);
            }
            Some((options, Some(arn)))
        }
        (None, None) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrate_has_no_statement_limit_and_names_its_roles() {
        let config = MigrateConfig::from_lookup(|name| match name {
            "DATABASE_URL" => Some("postgres://h/db".into()),
            "DB_STATEMENT_TIMEOUT_MS" => Some("100".into()),
            "DB_READER_SECRET_ARN" => Some("arn:reader".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            config.base.database.settings.statement_timeout,
            Duration::ZERO
        );
        assert_eq!(
            config.role_arns(),
            [None, Some("arn:reader".into()), None, None, None]
        );
        assert!(config.needs_aws());
    }
}
