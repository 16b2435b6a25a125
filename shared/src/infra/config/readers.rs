//! The functions that read what is stored, each as its own role: the leads feed
//! (`lead_reader`), the relay (`lead_relay`, the outbox), the sales desk (`lead_desk`).

use crate::domain::auth::ApiKeys;
use crate::error::ConfigError;
use crate::infra::config::{api_keys, env, set, Base, Provided};

/// The leads feed's.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    pub base: Base,
    /// `FEED_API_KEYS` (comma-separated) or `FEED_API_KEYS_SECRET_ARN`: the reader keys,
    /// a set of their own, so a partner's key never reads.
    pub api_keys: Provided<ApiKeys>,
    /// `FEED_ALLOWED_ORIGINS` (comma-separated): the dashboard's origins, echoed in CORS
    /// answers; never a wildcard.
    pub allowed_origins: Vec<String>,
}

impl FeedConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = set(lookup);
        let keys = Provided::either(
            api_keys(&get, "FEED_API_KEYS")?,
            get("FEED_API_KEYS_SECRET_ARN"),
        )
        .ok_or(ConfigError::Missing(
            "FEED_API_KEYS or FEED_API_KEYS_SECRET_ARN",
        ))?;
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
            base: Base::from_lookup(&get)?,
            api_keys: keys,
            allowed_origins,
        })
    }

    pub fn needs_aws(&self) -> bool {
        self.base.needs_aws() || self.api_keys.is_secret()
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

/// The relay's: the outbox it publishes, and the bus it publishes to.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub base: Base,
    /// `EVENT_BUS_NAME`.
    pub event_bus_name: String,
}

impl RelayConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = set(lookup);
        Ok(Self {
            event_bus_name: get("EVENT_BUS_NAME")
                .map(|name| name.trim().to_owned())
                .ok_or(ConfigError::Missing("EVENT_BUS_NAME"))?,
            base: Base::from_lookup(&get)?,
        })
    }
}

/// The sales desk's: the leads it tells of, and the topic it tells.
#[derive(Debug, Clone)]
pub struct DeskConfig {
    pub base: Base,
    /// `NEW_LEADS_TOPIC_ARN`.
    pub topic_arn: String,
}

impl DeskConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = set(lookup);
        Ok(Self {
            topic_arn: get("NEW_LEADS_TOPIC_ARN")
                .ok_or(ConfigError::Missing("NEW_LEADS_TOPIC_ARN"))?,
            base: Base::from_lookup(&get)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(vars: &[(&str, &str)]) -> Result<FeedConfig, ConfigError> {
        FeedConfig::from_lookup(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn the_feed_has_its_own_keys_and_listed_origins() {
        let config = feed(&[
            ("API_KEYS", "partner"),
            ("FEED_API_KEYS", "reader-one, reader-two"),
            (
                "FEED_ALLOWED_ORIGINS",
                "https://Dashboard.example.com/, http://localhost:3000",
            ),
            ("DATABASE_URL", "postgres://h/db"),
        ])
        .unwrap();
        assert!(matches!(config.api_keys, Provided::Value(ref keys) if keys.len() == 2));
        assert_eq!(
            config.allowed_origins,
            ["https://dashboard.example.com", "http://localhost:3000"]
        );
        assert!(!config.needs_aws());
        assert_eq!(
            feed(&[("API_KEYS", "partner"), ("DATABASE_URL", "postgres://h/db")]).unwrap_err(),
            ConfigError::Missing("FEED_API_KEYS or FEED_API_KEYS_SECRET_ARN")
        );
        for origins in [
            "*",
            "https://*.example.com",
            "dashboard.example.com",
            "https://a.example.com/leads",
        ] {
            assert!(
                matches!(
                    feed(&[
                        ("FEED_API_KEYS", "reader"),
                        ("DATABASE_URL", "postgres://h/db"),
                        ("FEED_ALLOWED_ORIGINS", origins)
                    ]),
                    Err(ConfigError::Invalid {
                        name: "FEED_ALLOWED_ORIGINS",
                        ..
                    })
                ),
                "{origins}"
            );
        }
    }

    #[test]
    fn the_relay_and_the_desk_require_where_they_send() {
        let url = |name: &str| (name == "DATABASE_URL").then(|| "postgres://h/db".to_owned());
        assert_eq!(
            RelayConfig::from_lookup(url).unwrap_err(),
            ConfigError::Missing("EVENT_BUS_NAME")
        );
        assert_eq!(
            DeskConfig::from_lookup(url).unwrap_err(),
            ConfigError::Missing("NEW_LEADS_TOPIC_ARN")
        );
    }
}
