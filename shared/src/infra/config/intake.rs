//! The functions that take leads in: a source's, the scheduled pulls, the drain. Each
//! keeps a lead it cannot store (see [`KeepingConfig`]); what proves a request, and what
//! a pull reads, is each one's own.

use std::time::Duration;

use crate::domain::auth::ApiKeys;
use crate::domain::meta::MetaSecrets;
use crate::domain::source::{Auth, Source};
use crate::error::ConfigError;
use crate::infra::config::{
    api_keys, env, parse, set, Base, Provided, DEFAULT_KNOWLARITY_OVERLAP, DEFAULT_PULL_OVERLAP,
    DEFAULT_REQUEST_BUDGET,
};
use crate::infra::graph::GraphSettings;
use crate::infra::knowlarity::{KnowlarityKeys, KnowlaritySettings};

/// Where a lead goes that the database cannot take now, or can never take as it is, and
/// where a stored lead's event goes.
#[derive(Debug, Clone, Default)]
pub struct KeepingConfig {
    /// `BUFFER_QUEUE_URL`: where leads go while the database is unavailable. Unset, such
    /// a lead is answered with a 500 (and the partner retries).
    pub buffer_queue_url: Option<String>,
    /// `DEAD_LETTER_QUEUE_URL`: where a lead goes that can never be stored as it is (the
    /// database refuses the row itself), to be kept and alarmed on instead of lost.
    pub dead_letter_queue_url: Option<String>,
    /// `EVENT_BUS_NAME`: the EventBridge bus every stored lead's `Lead stored` event goes
    /// to. Unset, no event is recorded or published.
    pub event_bus_name: Option<String>,
}

impl KeepingConfig {
    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let keeping = Self {
            buffer_queue_url: get("BUFFER_QUEUE_URL"),
            dead_letter_queue_url: get("DEAD_LETTER_QUEUE_URL"),
            event_bus_name: get("EVENT_BUS_NAME").map(|name| name.trim().to_owned()),
        };
        if keeping.dead_letter_queue_url.is_some() && keeping.buffer_queue_url.is_none() {
            return Err(ConfigError::Invalid {
                name: "DEAD_LETTER_QUEUE_URL",
                reason: "set BUFFER_QUEUE_URL too".into(),
            });
        }
        Ok(keeping)
    }

    fn needs_aws(&self) -> bool {
        self.buffer_queue_url.is_some() || self.event_bus_name.is_some()
    }
}

/// Meta's secrets and where its Graph API is.
#[derive(Debug, Clone)]
pub struct MetaConfig {
    /// `META_APP_SECRETS`, `META_VERIFY_TOKEN`, `META_PAGE_ACCESS_TOKEN` and
    /// `META_PAGE_ID`, or `META_SECRET_ARN`.
    pub secrets: Provided<MetaSecrets>,
    /// `GRAPH_API_URL` and `GRAPH_API_VERSION`.
    pub graph: GraphSettings,
}

impl MetaConfig {
    /// `None` when no secret is given (a function for which Meta is optional).
    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ConfigError> {
        let Some(secrets) =
            Provided::either(MetaSecrets::from_lookup(get)?, get("META_SECRET_ARN"))
        else {
            return Ok(None);
        };
        let mut graph = GraphSettings::default();
        if let Some(url) = get("GRAPH_API_URL") {
            // `Graph::new` drops a trailing slash.
            graph.base_url = url.trim().to_owned();
        }
        if let Some(version) = get("GRAPH_API_VERSION") {
            graph.version = version.trim().to_owned();
        }
        Ok(Some(Self { secrets, graph }))
    }

    fn required(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::from_lookup(get)?.ok_or(ConfigError::Missing("META_SECRET_ARN or META_APP_SECRETS"))
    }
}

/// How a source's requests prove they come from it: its declaration says which.
#[derive(Debug, Clone)]
pub enum ProofConfig {
    /// `API_KEYS` (comma-separated) or `API_KEYS_SECRET_ARN`.
    Keys(Provided<ApiKeys>),
    /// Meta's app secret signs the notification; its leads are read from the Graph API.
    Signature(MetaConfig),
}

/// A source function's.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub base: Base,
    pub proof: ProofConfig,
    pub keeping: KeepingConfig,
    /// `REQUEST_BUDGET_MS`: the most one request may take, secret reads, insert and
    /// queueing together; below the function's timeout and the partners' 10 s.
    pub request_budget: Duration,
}

impl SourceConfig {
    pub fn from_env(source: &Source) -> Result<Self, ConfigError> {
        Self::from_lookup(source, env)
    }

    pub fn from_lookup(
        source: &Source,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let get = set(lookup);
        let proof = match source.auth {
            Auth::Header | Auth::Body(_) => ProofConfig::Keys(
                Provided::either(api_keys(&get, "API_KEYS")?, get("API_KEYS_SECRET_ARN"))
                    .ok_or(ConfigError::Missing("API_KEYS or API_KEYS_SECRET_ARN"))?,
            ),
            Auth::Signature => ProofConfig::Signature(MetaConfig::required(&get)?),
        };
        Ok(Self {
            base: Base::from_lookup(&get)?,
            proof,
            keeping: KeepingConfig::from_lookup(&get)?,
            request_budget: parse(&get, "REQUEST_BUDGET_MS")?
                .map_or(DEFAULT_REQUEST_BUDGET, Duration::from_millis),
        })
    }

    pub fn needs_aws(&self) -> bool {
        let proof = match &self.proof {
            ProofConfig::Keys(keys) => keys.is_secret(),
            ProofConfig::Signature(meta) => meta.secrets.is_secret(),
        };
        self.base.needs_aws() || proof || self.keeping.needs_aws()
    }
}

/// The drain's: Meta's, when configured, re-reads a queued notification's leads.
#[derive(Debug, Clone)]
pub struct DrainConfig {
    pub base: Base,
    pub meta: Option<MetaConfig>,
    pub keeping: KeepingConfig,
}

impl DrainConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = set(lookup);
        Ok(Self {
            base: Base::from_lookup(&get)?,
            meta: MetaConfig::from_lookup(&get)?,
            keeping: KeepingConfig::from_lookup(&get)?,
        })
    }

    pub fn needs_aws(&self) -> bool {
        self.base.needs_aws()
            || self.keeping.needs_aws()
            || self
                .meta
                .as_ref()
                .is_some_and(|meta| meta.secrets.is_secret())
    }
}

/// Meta's scheduled pull's.
#[derive(Debug, Clone)]
pub struct MetaPullConfig {
    pub base: Base,
    pub meta: MetaConfig,
    pub keeping: KeepingConfig,
    /// `META_SYNC_OVERLAP_SECONDS`: how far before its watermark the pull looks again.
    pub overlap: Duration,
}

impl MetaPullConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = set(lookup);
        Ok(Self {
            base: Base::from_lookup(&get)?,
            meta: MetaConfig::required(&get)?,
            keeping: KeepingConfig::from_lookup(&get)?,
            overlap: parse(&get, "META_SYNC_OVERLAP_SECONDS")?
                .map_or(DEFAULT_PULL_OVERLAP, Duration::from_secs),
        })
    }

    pub fn needs_aws(&self) -> bool {
        self.base.needs_aws() || self.keeping.needs_aws() || self.meta.secrets.is_secret()
    }
}

/// Knowlarity's scheduled pull's.
#[derive(Debug, Clone)]
pub struct KnowlarityPullConfig {
    pub base: Base,
    /// `KNOWLARITY_APP_KEY` and `KNOWLARITY_SR_KEY`, or `KNOWLARITY_SECRET_ARN`.
    pub keys: Provided<KnowlarityKeys>,
    /// `KNOWLARITY_API_URL` and `KNOWLARITY_CHANNEL`: where the call log is.
    pub api: KnowlaritySettings,
    pub keeping: KeepingConfig,
    /// `KNOWLARITY_SYNC_OVERLAP_SECONDS`: how far before its watermark the pull looks
    /// again.
    pub overlap: Duration,
    /// `REQUEST_BUDGET_MS`: the most keeping one call may take.
    pub request_budget: Duration,
}

impl KnowlarityPullConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = set(lookup);
        let keys = match (get("KNOWLARITY_APP_KEY"), get("KNOWLARITY_SR_KEY")) {
            (Some(app_key), Some(sr_key)) => Some(KnowlarityKeys::new(app_key, sr_key)),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid {
                    name: "KNOWLARITY_APP_KEY",
                    reason: "set KNOWLARITY_SR_KEY with it (or neither)".into(),
                })
            }
        };
        let keys =
            Provided::either(keys, get("KNOWLARITY_SECRET_ARN")).ok_or(ConfigError::Missing(
                "KNOWLARITY_SECRET_ARN or KNOWLARITY_APP_KEY and KNOWLARITY_SR_KEY",
            ))?;
        let mut api = KnowlaritySettings::default();
        if let Some(url) = get("KNOWLARITY_API_URL") {
            api.base_url = url.trim().to_owned();
        }
        if let Some(channel) = get("KNOWLARITY_CHANNEL") {
            api.channel = channel.trim().to_owned();
        }
        Ok(Self {
            base: Base::from_lookup(&get)?,
            keys,
            api,
            keeping: KeepingConfig::from_lookup(&get)?,
            overlap: parse(&get, "KNOWLARITY_SYNC_OVERLAP_SECONDS")?
                .map_or(DEFAULT_KNOWLARITY_OVERLAP, Duration::from_secs),
            request_budget: parse(&get, "REQUEST_BUDGET_MS")?
                .map_or(DEFAULT_REQUEST_BUDGET, Duration::from_millis),
        })
    }

    pub fn needs_aws(&self) -> bool {
        self.base.needs_aws() || self.keeping.needs_aws() || self.keys.is_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::source::{CARDEKHO, GOOGLE, META};

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    #[test]
    fn a_source_requires_the_proof_its_declaration_names() {
        let keyed = SourceConfig::from_lookup(
            &CARDEKHO,
            vars(&[
                ("API_KEYS", "a,b"),
                ("API_KEYS_SECRET_ARN", "arn:keys"),
                ("DATABASE_URL", "postgres://h/db"),
            ]),
        )
        .unwrap();
        assert!(
            matches!(keyed.proof, ProofConfig::Keys(Provided::Value(ref keys)) if keys.len() == 2)
        );
        assert!(!keyed.needs_aws());
        assert_eq!(keyed.request_budget, DEFAULT_REQUEST_BUDGET);
        assert_eq!(
            SourceConfig::from_lookup(&GOOGLE, vars(&[("DATABASE_URL", "postgres://h/db")]))
                .unwrap_err(),
            ConfigError::Missing("API_KEYS or API_KEYS_SECRET_ARN")
        );
        assert_eq!(
            SourceConfig::from_lookup(
                &META,
                vars(&[("API_KEYS", "k"), ("DATABASE_URL", "postgres://h/db")])
            )
            .unwrap_err(),
            ConfigError::Missing("META_SECRET_ARN or META_APP_SECRETS")
        );
        let signed = SourceConfig::from_lookup(
            &META,
            vars(&[
                ("META_SECRET_ARN", "arn:meta"),
                ("DATABASE_URL", "postgres://h/db"),
                ("GRAPH_API_URL", " http://127.0.0.1:9/ "),
            ]),
        )
        .unwrap();
        assert!(
            matches!(signed.proof, ProofConfig::Signature(ref meta) if meta.graph.base_url == "http://127.0.0.1:9/")
        );
        assert!(signed.needs_aws());
    }

    #[test]
    fn keeping_needs_the_sdk_only_for_a_queue_or_a_bus() {
        let quiet = DrainConfig::from_lookup(vars(&[
            ("DATABASE_URL", "postgres://h/db"),
            ("EVENT_BUS_NAME", " "),
        ]))
        .unwrap();
        assert_eq!(quiet.keeping.event_bus_name, None);
        assert!(quiet.meta.is_none());
        assert!(!quiet.needs_aws());
        let queued = DrainConfig::from_lookup(vars(&[
            ("DATABASE_URL", "postgres://h/db"),
            (
                "BUFFER_QUEUE_URL",
                "https://sqs.ap-south-1.amazonaws.com/1/leads",
            ),
            ("EVENT_BUS_NAME", "leads-events"),
        ]))
        .unwrap();
        assert_eq!(
            queued.keeping.event_bus_name.as_deref(),
            Some("leads-events")
        );
        assert!(queued.needs_aws());
        assert!(matches!(
            DrainConfig::from_lookup(vars(&[
                ("DATABASE_URL", "postgres://h/db"),
                ("DEAD_LETTER_QUEUE_URL", "https://sqs/dlq")
            ])),
            Err(ConfigError::Invalid {
                name: "DEAD_LETTER_QUEUE_URL",
                ..
            })
        ));
    }

    #[test]
    fn the_pulls_require_their_platforms_keys() {
        assert_eq!(
            MetaPullConfig::from_lookup(vars(&[("DATABASE_URL", "postgres://h/db")])).unwrap_err(),
            ConfigError::Missing("META_SECRET_ARN or META_APP_SECRETS")
        );
        assert!(matches!(
            KnowlarityPullConfig::from_lookup(vars(&[
                ("DATABASE_URL", "postgres://h/db"),
                ("KNOWLARITY_APP_KEY", "a")
            ])),
            Err(ConfigError::Invalid {
                name: "KNOWLARITY_APP_KEY",
                ..
            })
        ));
        let pull = KnowlarityPullConfig::from_lookup(vars(&[
            ("DATABASE_URL", "postgres://h/db"),
            ("KNOWLARITY_SECRET_ARN", "arn:knowlarity"),
            ("KNOWLARITY_SYNC_OVERLAP_SECONDS", "60"),
        ]))
        .unwrap();
        assert_eq!(pull.overlap, Duration::from_secs(60));
        assert!(pull.needs_aws());
    }
}
