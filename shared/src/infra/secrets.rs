//! Secrets Manager: a source's API keys and the database credentials, fetched at cold
//! start and refreshed after a TTL, so a rotated key or password takes effect without a
//! redeploy. A failed fetch never leaves a container broken: without a value the request
//! gets a 500 and the next request tries again; with an older value that one keeps
//! serving while the fetch is retried every [`RETRY_AFTER_FAILURE`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use crate::error::SecretError;

/// After a failed refresh with an older value at hand, wait this long before retrying,
/// so a Secrets Manager outage does not slow every request.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);

/// A Secrets Manager client with short timeouts: a secret fetch sits on a request's path
/// when a TTL expires, inside the partners' 10 s.
#[derive(Debug, Clone)]
pub struct SecretsClient {
    client: aws_sdk_secretsmanager::Client,
}

impl SecretsClient {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_secretsmanager::Client::new(config),
        }
    }

    /// The current `SecretString` of `arn`.
    pub async fn fetch(&self, arn: &str) -> Result<String, SecretError> {
        let fetch_error = |reason: String| SecretError::Fetch {
            arn: arn.to_owned(),
            reason,
        };
        let output = self
            .client
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .map_err(|error| {
                fetch_error(aws_sdk_secretsmanager::error::DisplayErrorContext(error).to_string())
            })?;
        output
            .secret_string
            .ok_or_else(|| fetch_error("the secret has no SecretString".into()))
    }
}

/// A value given in the environment, or read from a secret and refreshed.
#[derive(Debug)]
pub enum Setting<T> {
    Fixed(Arc<T>),
    Secret(Refreshing<T>),
}

impl<T> Setting<T> {
    pub fn fixed(value: T) -> Self {
        Self::Fixed(Arc::new(value))
    }

    /// The current value (see [`Refreshing::get`]).
    pub async fn get(&self) -> Result<Arc<T>, SecretError> {
        match self {
            Self::Fixed(value) => Ok(value.clone()),
            Self::Secret(secret) => secret.get().await,
        }
    }
}

/// A value parsed from a secret, cached for a TTL.
pub struct Refreshing<T> {
    arn: String,
    ttl: Duration,
    client: SecretsClient,
    parse: fn(&str) -> Result<T, &'static str>,
    cached: Mutex<Option<Cached<T>>>,
}

struct Cached<T> {
    value: Arc<T>,
    refresh_at: Instant,
}

impl<T> std::fmt::Debug for Refreshing<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refreshing")
            .field("arn", &self.arn)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl<T> Refreshing<T> {
    pub fn new(
        client: SecretsClient,
        arn: String,
        ttl: Duration,
        parse: fn(&str) -> Result<T, &'static str>,
    ) -> Self {
        Self {
            arn,
            ttl,
            client,
            parse,
            cached: Mutex::new(None),
        }
    }

    /// The current value: cached while fresh, fetched again after the TTL.
    pub async fn get(&self) -> Result<Arc<T>, SecretError> {
        let mut cached = self.cached.lock().await;
        if let Some(current) = cached.as_ref() {
            if Instant::now() < current.refresh_at {
                return Ok(current.value.clone());
            }
        }
        match self.load().await {
            Ok(value) => {
                let value = Arc::new(value);
                *cached = Some(Cached {
                    value: value.clone(),
                    refresh_at: Instant::now() + self.ttl,
                });
                Ok(value)
            }
            Err(error) => match cached.as_mut() {
                Some(stale) => {
                    tracing::warn!(error = %error, "secret refresh failed; keeping the previous value");
                    stale.refresh_at = Instant::now() + RETRY_AFTER_FAILURE.min(self.ttl);
                    Ok(stale.value.clone())
                }
                None => Err(error),
            },
        }
    }

    /// Forgets the cached value, so the next `get` fetches (e.g. after the database
    /// refused the cached password).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    async fn load(&self) -> Result<T, SecretError> {
        let text = self.client.fetch(&self.arn).await?;
        (self.parse)(&text).map_err(|reason| SecretError::Parse {
            arn: self.arn.clone(),
            reason,
        })
    }
}

/// The username and password of the RDS-managed database secret.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct DbCredentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for DbCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DbCredentials({}, <redacted>)", self.username)
    }
}

impl DbCredentials {
    pub fn from_secret(text: &str) -> Result<Self, &'static str> {
        serde_json::from_str(text).map_err(|_| "expected JSON with username and password")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_secret_needs_username_and_password() {
        let creds = DbCredentials::from_secret(
            r#"{"username":"leads","password":"p@ss","engine":"postgres"}"#,
        )
        .unwrap();
        assert_eq!(creds.username, "leads");
        assert!(!format!("{creds:?}").contains("p@ss"));
        assert!(DbCredentials::from_secret(r#"{"username":"x"}"#).is_err());
        assert!(DbCredentials::from_secret("plain").is_err());
    }
}
