//! A source function's state, built once per container, and the request it is handed
//! once its edge has taken it out of its transport. Which path a request takes is the
//! source's proof kind: [`keyed`](super::keyed) for a key in a header or the body
//! (partners, Google), [`notification`](super::notification) for a signed notification
//! of leads to fetch (Meta). What else differs between sources is their declaration's,
//! not code here.

use std::time::{Duration, Instant};

use crate::domain::auth::ApiKeys;
use crate::domain::source::Source;
use crate::error::{ConfigError, Error};
use crate::infra::buffer::Buffer;
use crate::infra::config::intake::{ProofConfig, SourceConfig};
use crate::infra::config::DEFAULT_REQUEST_BUDGET;
use crate::infra::graph::Meta;
use crate::infra::parts::Parts;
use crate::infra::secrets::Setting;
use crate::infra::store::Store;
use crate::pipeline::keep::Keeper;
use crate::pipeline::outcome::Ingested;
use crate::pipeline::request::{Handshake, Incoming};
use crate::pipeline::{keyed, notification};

/// How a source's requests prove they come from it, with what checks the proof.
#[derive(Debug)]
pub(super) enum Proof {
    /// A key, in a header or in the body: partners, Google.
    Keys(Setting<ApiKeys>),
    /// A signature over the body, and the platform the leads are fetched from: Meta.
    Signature(Meta),
}

/// A source function's state, built once per container.
#[derive(Debug)]
pub struct App {
    proof: Proof,
    keeper: Keeper,
}

impl App {
    /// A source that proves itself with a key (in a header or in its body).
    pub fn new(source: &'static Source, api_keys: ApiKeys, store: Store) -> Self {
        Self::with(source, Proof::Keys(Setting::fixed(api_keys)), store)
    }

    /// A source whose notifications are signed and whose leads are fetched from the
    /// Graph API (Meta).
    pub fn signed(source: &'static Source, meta: Meta, store: Store) -> Self {
        Self::with(source, Proof::Signature(meta), store)
    }

    fn with(source: &'static Source, proof: Proof, store: Store) -> Self {
        Self {
            proof,
            keeper: Keeper {
                source,
                store,
                buffer: None,
                budget: DEFAULT_REQUEST_BUDGET,
            },
        }
    }

    /// Keeps leads on `buffer` (and its dead-letter queue) when the store does not take
    /// them.
    pub fn with_buffer(mut self, buffer: Buffer) -> Self {
        self.keeper.buffer = Some(buffer);
        self
    }

    /// Bounds each request to `budget` (see [`App::ingest`]).
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.keeper.budget = budget;
        self
    }

    /// The state the environment configures (see [`SourceConfig`]), with its secrets
    /// read.
    pub async fn from_env(source: &'static Source) -> Result<Self, ConfigError> {
        let config = SourceConfig::from_env(source)?;
        let parts = Parts::load(config.needs_aws(), config.base.secrets_ttl).await;
        let app = Self::build(source, config, &parts)?;
        app.warm_up().await;
        Ok(app)
    }

    /// A source function's state from its configuration, built with `parts`.
    pub fn build(
        source: &'static Source,
        config: SourceConfig,
        parts: &Parts,
    ) -> Result<Self, ConfigError> {
        let proof = match config.proof {
            ProofConfig::Keys(keys) => {
                Proof::Keys(parts.setting(keys, "API_KEYS_SECRET_ARN", ApiKeys::from_secret)?)
            }
            ProofConfig::Signature(meta) => Proof::Signature(parts.meta(meta)?),
        };
        let (store, buffer) = parts.keeping(config.base.database, config.keeping)?;
        let app = Self::with(source, proof, store).with_budget(config.request_budget);
        Ok(match buffer {
            Some(buffer) => app.with_buffer(buffer),
            None => app,
        })
    }

    /// Reads the secrets now, so the first request does not wait for them. A failure is
    /// logged and retried by the first request instead of failing the container.
    pub async fn warm_up(&self) {
        let read = match &self.proof {
            Proof::Keys(keys) => keys.get().await.map(drop),
            Proof::Signature(meta) => meta.secrets().await.map(drop),
        };
        if let Err(error) = read {
            tracing::error!(source = self.source().slug, error = %error, "secrets unavailable at start");
        }
        // The phone library loads its metadata on first use: here, not in a request.
        let _ = crate::domain::lead::phone::e164("+919876543210");
        if let Err(error) = self.keeper.store.read_credentials().await {
            tracing::error!(source = self.source().slug, error = %error, "database credentials unavailable at start");
        }
    }

    pub fn source(&self) -> &'static Source {
        self.keeper.source
    }

    pub fn store(&self) -> &Store {
        &self.keeper.store
    }

    /// Runs the checks in the order the source's declaration gives, then stores each
    /// lead once, or keeps it on a queue. Names the key that passed, for the log.
    ///
    /// The whole takes at most the budget: a slow secret read shortens the insert's
    /// limit, and the queue's own bound is kept back for a lead the database did not take.
    pub async fn ingest(&self, incoming: Incoming<'_>) -> Ingested {
        let started = Instant::now();
        match &self.proof {
            Proof::Keys(keys) => keyed::ingest(&self.keeper, keys, &incoming, started).await,
            Proof::Signature(meta) => {
                notification::ingest(&self.keeper, meta, &incoming, started).await
            }
        }
    }

    /// Meta's subscription handshake (a `GET`): the challenge to echo when the token is
    /// the verify token, else `None`. A source without one refuses every handshake.
    pub async fn handshake(&self, query: Handshake<'_>) -> Result<Option<String>, Error> {
        match &self.proof {
            Proof::Signature(meta) => notification::handshake(self.source(), meta, query).await,
            Proof::Keys(_) => Ok(None),
        }
    }
}
