//! A function's configuration, read from the environment once per container. Pure: it
//! names what to build and where values come from; `container` builds it.
//!
//! Local runs and tests give `DATABASE_URL` and `API_KEYS` directly. On AWS the
//! deployment gives Secrets Manager ARNs instead (`DB_SECRET_ARN`, `API_KEYS_SECRET_ARN`).

pub mod crm;
pub mod sla;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::domain::auth::ApiKeys;
use crate::domain::meta::MetaSecrets;
pub use crate::error::ConfigError;
use crate::infra::graph::GraphSettings;
use crate::infra::knowlarity::{KnowlarityKeys, KnowlaritySettings};
use crate::infra::store::StoreSettings;

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
    fn either(value: Option<T>, arn: Option<String>) -> Option<Self> {
        match (value, arn) {
            (Some(value), _) => Some(Self::Value(value)),
            (None, Some(arn)) => Some(Self::Secret { arn }),
            (None, None) => None,
        }
    }
}

/// Everything any of the functions reads; each uses its part.
#[derive(Debug, Clone)]
pub struct Config {
    /// `API_KEYS` (comma-separated) or `API_KEYS_SECRET_ARN`; source functions only.
    pub api_keys: Option<Provided<ApiKeys>>,
    /// `META_APP_SECRETS`, `META_VERIFY_TOKEN`, `META_PAGE_ACCESS_TOKEN` and
    /// `META_PAGE_ID`, or `META_SECRET_ARN`; Meta's functions and the drain only.
    pub meta: Option<Provided<MetaSecrets>>,
    /// `GRAPH_API_URL` and `GRAPH_API_VERSION`: where Meta's leads are read.
    pub graph: GraphSettings,
    pub database: DatabaseConfig,
    /// `BUFFER_QUEUE_URL`: where leads go while the database is unavailable. Unset, such
    /// a lead is answered with a 500 (and the partner retries).
    pub buffer_queue_url: Option<String>,
    /// `DEAD_LETTER_QUEUE_URL`: where a lead goes that can never be stored as it is (the
    /// database refuses the row itself), to be kept and alarmed on instead of lost.
    pub dead_letter_queue_url: Option<String>,
    /// `SECRETS_TTL_SECONDS`: how long any fetched secret is used before it is read again.
    pub secrets_ttl: Duration,
    /// `META_SYNC_OVERLAP_SECONDS`: how far before its watermark Meta's scheduled pull
    /// looks again.
    pub sync_overlap: Duration,
    /// `REQUEST_BUDGET_MS`: the most one request may take, secret reads, insert and
    /// queueing together; below the function's timeout and the partners' 10 s.
    pub request_budget: Duration,
    /// `KNOWLARITY_APP_KEY` and `KNOWLARITY_SR_KEY`, or `KNOWLARITY_SECRET_ARN`:
    /// Knowlarity's scheduled pull only.
    pub knowlarity: Option<Provided<KnowlarityKeys>>,
    /// `KNOWLARITY_API_URL` and `KNOWLARITY_CHANNEL`: where the call log is.
    pub knowlarity_api: KnowlaritySettings,
    /// `KNOWLARITY_SYNC_OVERLAP_SECONDS`: how far before its watermark Knowlarity's
    /// scheduled pull looks again.
    pub knowlarity_overlap: Duration,
    /// `EVENT_BUS_NAME`: the EventBridge bus every stored lead's `Lead stored` event goes
    /// to. Unset, no event is recorded or published.
    pub event_bus_name: Option<String>,
    /// `NEW_LEADS_TOPIC_ARN`, the sales desk and the CRM hand-off: the topic the sales
    /// desk's messages go to.
    pub new_leads_topic_arn: Option<String>,
    /// The CRM hand-off's part; `None` without a CRM database (see [`crm::CrmConfig`]).
    pub crm: Option<crm::CrmConfig>,
    /// The leads feed's part (`FEED_API_KEYS`, `FEED_ALLOWED_ORIGINS`); see [`FeedConfig`].
    pub feed: FeedConfig,
}

/// What the leads feed reads beside the database (which it reads as `lead_reader`: its
/// `DATABASE_URL`, or `DB_SECRET_ARN` holding that role's credentials).
#[derive(Debug, Clone, Default)]
pub struct FeedConfig {
    /// `FEED_API_KEYS` (comma-separated) or `FEED_API_KEYS_SECRET_ARN`: the reader keys,
    /// a set of their own, so a partner's key never reads.
    pub api_keys: Option<Provided<ApiKeys>>,
    /// `FEED_ALLOWED_ORIGINS` (comma-separated): the dashboard's origins, echoed in CORS
    /// answers; never a wildcard.
    pub allowed_origins: Vec<String>,
}

impl FeedConfig {
    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let keys = match get("FEED_API_KEYS") {
            Some(list) => {
                let keys = ApiKeys::from_csv(&list);
                if keys.is_empty() {
                    return Err(ConfigError::Invalid {
                        name: "FEED_API_KEYS",
                        reason: "holds no key".into(),
                    });
                }
                Some(keys)
            }
            None => None,
        };
        let mut allowed_origins = Vec::new();
        for origin in get("FEED_ALLOWED_ORIGINS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|origin| !origin.is_empty())
        {
            allowed_origins.push(origin_of(origin)?);
        }
        Ok(Self {
            api_keys: Provided::either(keys, get("FEED_API_KEYS_SECRET_ARN")),
            allowed_origins,
        })
    }
}

/// An origin as a browser sends it (`https://dashboard.example.com`, a port allowed), or
/// why it is not one: a wildcard, a path, another scheme.
fn origin_of(origin: &str) -> Result<String, ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        name: "FEED_ALLOWED_ORIGINS",
        reason: format!("{origin:?} {reason}"),
    };
    let origin = origin.trim_end_matches('/');
    let host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(|| invalid("is not an http(s) origin"))?;
    if host.is_empty() || host.contains('*') {
        return Err(invalid("is a wildcard or empty: list each origin"));
    }
    if host.contains(['/', '?', '#', '@', ' ']) {
        return Err(invalid("is not an origin (scheme and host only)"));
    }
    Ok(origin.to_ascii_lowercase())
}

/// Where the database is and how it is used.
#[derive(Clone)]
pub struct DatabaseConfig {
    /// `DATABASE_URL` as is; or `DB_HOST`, `DB_PORT`, `DB_NAME`, `DB_SSLMODE` (`require`
    /// by default: RDS enforces TLS) and `DB_SSLROOTCERT`, without credentials.
    pub options: PgConnectOptions,
    /// `DB_SECRET_ARN`: a secret holding `username` and `password` (the functions' own
    /// role's; for `migrate`, the RDS-managed master user's).
    pub credentials_arn: Option<String>,
    /// `DB_WRITER_SECRET_ARN`, `migrate` only: the functions' role, whose password it sets.
    pub writer_arn: Option<String>,
    /// `DB_READER_SECRET_ARN`, `migrate` only: the feed's role (`lead_reader`), whose
    /// password it sets.
    pub reader_arn: Option<String>,
    /// `DB_RELAY_SECRET_ARN`, `migrate` only: the relay's role (`lead_relay`), whose
    /// password it sets.
    pub relay_arn: Option<String>,
    /// `DB_DESK_SECRET_ARN`, `migrate` only: the sales desk's role (`lead_desk`), whose
    /// password it sets.
    pub desk_arn: Option<String>,
    /// `DB_CRM_SECRET_ARN`, `migrate` only: the CRM hand-off's role (`lead_crm`), whose
    /// password it sets.
    pub handoff_arn: Option<String>,
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
            .field("writer_arn", &self.writer_arn)
            .field("reader_arn", &self.reader_arn)
            .field("relay_arn", &self.relay_arn)
            .field("desk_arn", &self.desk_arn)
            .field("handoff_arn", &self.handoff_arn)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
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
        let keys = match get("API_KEYS") {
            Some(list) => {
                let keys = ApiKeys::from_csv(&list);
                if keys.is_empty() {
                    return Err(ConfigError::Invalid {
                        name: "API_KEYS",
                        reason: "holds no key".into(),
                    });
                }
                Some(keys)
            }
            None => None,
        };
        let api_keys = Provided::either(keys, get("API_KEYS_SECRET_ARN"));
        let meta = Provided::either(MetaSecrets::from_lookup(&get)?, get("META_SECRET_ARN"));
        let mut graph = GraphSettings::default();
        if let Some(url) = get("GRAPH_API_URL") {
            // `Graph::new` drops a trailing slash.
            graph.base_url = url.trim().to_owned();
        }
        if let Some(version) = get("GRAPH_API_VERSION") {
            graph.version = version.trim().to_owned();
        }
        let knowlarity_keys = match (get("KNOWLARITY_APP_KEY"), get("KNOWLARITY_SR_KEY")) {
            (Some(app_key), Some(sr_key)) => Some(KnowlarityKeys::new(app_key, sr_key)),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid {
                    name: "KNOWLARITY_APP_KEY",
                    reason: "set KNOWLARITY_SR_KEY with it (or neither)".into(),
                })
            }
        };
        let mut knowlarity_api = KnowlaritySettings::default();
        if let Some(url) = get("KNOWLARITY_API_URL") {
            knowlarity_api.base_url = url.trim().to_owned();
        }
        if let Some(channel) = get("KNOWLARITY_CHANNEL") {
            knowlarity_api.channel = channel.trim().to_owned();
        }
        Ok(Self {
            knowlarity: Provided::either(knowlarity_keys, get("KNOWLARITY_SECRET_ARN")),
            knowlarity_api,
            knowlarity_overlap: parse(&get, "KNOWLARITY_SYNC_OVERLAP_SECONDS")?
                .map_or(DEFAULT_KNOWLARITY_OVERLAP, Duration::from_secs),
            api_keys,
            meta,
            graph,
            database: DatabaseConfig::from_lookup(&get)?,
            buffer_queue_url: get("BUFFER_QUEUE_URL"),
            dead_letter_queue_url: get("DEAD_LETTER_QUEUE_URL"),
            secrets_ttl: Duration::from_secs(parse(&get, "SECRETS_TTL_SECONDS")?.unwrap_or(300)),
            sync_overlap: parse(&get, "META_SYNC_OVERLAP_SECONDS")?
                .map_or(DEFAULT_PULL_OVERLAP, Duration::from_secs),
            request_budget: parse(&get, "REQUEST_BUDGET_MS")?
                .map_or(DEFAULT_REQUEST_BUDGET, Duration::from_millis),
            event_bus_name: get("EVENT_BUS_NAME").map(|name| name.trim().to_owned()),
            new_leads_topic_arn: get("NEW_LEADS_TOPIC_ARN"),
            crm: crm::CrmConfig::from_lookup(&get)?,
            feed: FeedConfig::from_lookup(&get)?,
        })
    }

    /// Whether building this configuration needs the AWS SDK.
    pub fn needs_aws(&self) -> bool {
        matches!(self.api_keys, Some(Provided::Secret { .. }))
            || matches!(self.meta, Some(Provided::Secret { .. }))
            || matches!(self.knowlarity, Some(Provided::Secret { .. }))
            || self.database.credentials_arn.is_some()
            || self.database.writer_arn.is_some()
            || self.database.reader_arn.is_some()
            || self.database.relay_arn.is_some()
            || self.database.desk_arn.is_some()
            || self.database.handoff_arn.is_some()
            || self.new_leads_topic_arn.is_some()
            || self.crm.as_ref().is_some_and(|crm| {
                crm.credentials_arn.is_some()
                    || crm.sms == crm::SmsMode::Sns
                    || crm.dead_letter_queue_url.is_some()
            })
            || matches!(self.feed.api_keys, Some(Provided::Secret { .. }))
            || self.buffer_queue_url.is_some()
            || self.dead_letter_queue_url.is_some()
            || self.event_bus_name.is_some()
    }
}

impl DatabaseConfig {
    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
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
            writer_arn: get("DB_WRITER_SECRET_ARN"),
            reader_arn: get("DB_READER_SECRET_ARN"),
            relay_arn: get("DB_RELAY_SECRET_ARN"),
            desk_arn: get("DB_DESK_SECRET_ARN"),
            handoff_arn: get("DB_CRM_SECRET_ARN"),
            settings,
        })
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
        assert!(matches!(config.api_keys, Some(Provided::Value(ref keys)) if keys.len() == 2));
        assert_eq!(config.database.credentials_arn, None);
        assert_eq!(config.database.options.get_host(), "h");
        assert_eq!(config.database.settings, StoreSettings::default());
        assert_eq!(
            config.database.settings.dedup_window,
            Duration::from_secs(900)
        );
        assert!(!config.needs_aws());
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
        assert!(matches!(config.api_keys, Some(Provided::Secret { ref arn }) if arn == "arn:keys"));
        assert_eq!(config.database.credentials_arn.as_deref(), Some("arn:db"));
        assert_eq!(config.database.options.get_port(), 5432);
        assert!(matches!(
            config.database.options.get_ssl_mode(),
            PgSslMode::Require
        ));
        assert!(config.needs_aws());
        let missing = Config::from_lookup(|name| {
            (name == "API_KEYS" || name == "DB_SECRET_ARN").then(|| "x".to_owned())
        });
        assert_eq!(missing.unwrap_err(), ConfigError::Missing("DB_HOST"));
    }

    #[test]
    fn missing_and_invalid_values_are_named() {
        // API keys are the source functions' to require; the drain and migrate have none.
        assert!(config(&[("DATABASE_URL", "postgres://h/db")])
            .unwrap()
            .api_keys
            .is_none());
        assert_eq!(
            config(&[("API_KEYS", "k")]).unwrap_err(),
            ConfigError::Missing("DATABASE_URL or DB_SECRET_ARN")
        );
        assert!(matches!(
            config(&[("API_KEYS", " , "), ("DATABASE_URL", "postgres://h/db")]).unwrap_err(),
            ConfigError::Invalid {
                name: "API_KEYS",
                ..
            }
        ));
        assert!(matches!(
            config(&[("DATABASE_URL", "postgres://h:port/db")]).unwrap_err(),
            ConfigError::Invalid {
                name: "DATABASE_URL",
                ..
            }
        ));
        assert!(matches!(
            config(&[
                ("API_KEYS", "k"),
                ("DATABASE_URL", "postgres://h/db"),
                ("DB_CONNECT_TIMEOUT_MS", "soon")
            ])
            .unwrap_err(),
            ConfigError::Invalid {
                name: "DB_CONNECT_TIMEOUT_MS",
                ..
            }
        ));
    }

    #[test]
    fn the_feed_has_its_own_keys_and_listed_origins() {
        let config = config(&[
            ("API_KEYS", "partner"),
            ("FEED_API_KEYS", "reader-one, reader-two"),
            (
                "FEED_ALLOWED_ORIGINS",
                "https://Dashboard.example.com/, http://localhost:3000",
            ),
            ("DATABASE_URL", "postgres://h/db"),
            ("DB_READER_SECRET_ARN", "arn:reader"),
        ])
        .unwrap();
        assert!(matches!(config.feed.api_keys, Some(Provided::Value(ref keys)) if keys.len() == 2));
        assert_eq!(
            config.feed.allowed_origins,
            ["https://dashboard.example.com", "http://localhost:3000"]
        );
        assert_eq!(config.database.reader_arn.as_deref(), Some("arn:reader"));
        assert!(config.needs_aws());
        for origins in [
            "*",
            "https://*.example.com",
            "dashboard.example.com",
            "https://a.example.com/leads",
        ] {
            assert!(
                matches!(
                    config_error(&[
                        ("DATABASE_URL", "postgres://h/db"),
                        ("FEED_ALLOWED_ORIGINS", origins)
                    ]),
                    ConfigError::Invalid {
                        name: "FEED_ALLOWED_ORIGINS",
                        ..
                    }
                ),
                "{origins}"
            );
        }
    }

    fn config_error(vars: &[(&str, &str)]) -> ConfigError {
        config(vars).expect_err("an invalid configuration")
    }

    #[test]
    fn timeouts_are_tunable() {
        let config = config(&[
            ("API_KEYS", "k"),
            ("DATABASE_URL", "postgres://h/db"),
            ("DB_OPERATION_TIMEOUT_MS", "2500"),
            ("DEDUP_WINDOW_SECONDS", "60"),
            ("SECRETS_TTL_SECONDS", "30"),
        ])
        .unwrap();
        let settings = &config.database.settings;
        assert_eq!(settings.operation_timeout, Duration::from_millis(2500));
        assert_eq!(settings.dedup_window, Duration::from_secs(60));
        assert_eq!(config.secrets_ttl, Duration::from_secs(30));
        assert_eq!(config.buffer_queue_url, None);
    }

    #[test]
    fn events_need_the_sdk_only_when_a_bus_is_named() {
        let without = config(&[("DATABASE_URL", "postgres://h/db"), ("EVENT_BUS_NAME", " ")]);
        assert_eq!(without.as_ref().unwrap().event_bus_name, None);
        assert!(!without.unwrap().needs_aws());
        let with = config(&[
            ("DATABASE_URL", "postgres://h/db"),
            ("EVENT_BUS_NAME", "leads-events"),
        ])
        .unwrap();
        assert_eq!(with.event_bus_name.as_deref(), Some("leads-events"));
        assert!(with.needs_aws());
    }
}
