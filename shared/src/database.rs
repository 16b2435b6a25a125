//! The lead store of a container: fixed (`DATABASE_URL`), or built from the RDS-managed
//! credentials secret and rebuilt when RDS rotates the password.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use tokio::sync::Mutex;

use crate::config::{ConfigError, DatabaseSource};
use crate::error::IngestError;
use crate::record::LeadRecord;
use crate::secrets::{self, DbCredentials, Refreshing, SecretsClient};
use crate::store::{Store, StoreSettings, Stored};

/// The lead store: fixed (`DATABASE_URL`) or rebuilt when the credentials secret changes.
#[derive(Debug)]
pub struct Database(Inner);

#[derive(Debug)]
enum Inner {
    Fixed(Store),
    Secret(Box<RotatingStore>),
}

/// A store whose credentials come from a secret that RDS rotates.
#[derive(Debug)]
struct RotatingStore {
    credentials: Refreshing<DbCredentials>,
    /// Everything but the username and password.
    options: PgConnectOptions,
    settings: StoreSettings,
    current: Mutex<Option<(Arc<DbCredentials>, Store)>>,
}

impl Database {
    /// A store that never changes (`DATABASE_URL`, tests).
    pub fn fixed(store: Store) -> Self {
        Self(Inner::Fixed(store))
    }

    /// The database a configuration names. Connects nothing yet.
    pub fn new(
        source: DatabaseSource,
        settings: StoreSettings,
        secrets_ttl: Duration,
        client: Option<SecretsClient>,
    ) -> Result<Self, ConfigError> {
        match source {
            DatabaseSource::Url(url) => {
                let options =
                    PgConnectOptions::from_str(&url).map_err(|error| ConfigError::Invalid {
                        name: "DATABASE_URL",
                        reason: error.to_string(),
                    })?;
                Ok(Self::fixed(Store::connect_lazy(options, &settings)))
            }
            DatabaseSource::Secret {
                arn,
                host,
                port,
                name,
                ssl_mode,
                ssl_root_cert,
            } => {
                let client = client.ok_or(ConfigError::Invalid {
                    name: "DB_SECRET_ARN",
                    reason: "no Secrets Manager client".into(),
                })?;
                let mut options = PgConnectOptions::new_without_pgpass()
                    .host(&host)
                    .port(port)
                    .database(&name)
                    .ssl_mode(ssl_mode);
                if let Some(path) = ssl_root_cert {
                    options = options.ssl_root_cert(path);
                }
                Ok(Self(Inner::Secret(Box::new(RotatingStore {
                    credentials: Refreshing::new(
                        client,
                        arn,
                        secrets_ttl,
                        secrets::parse_db_credentials,
                    ),
                    options,
                    settings,
                    current: Mutex::new(None),
                }))))
            }
        }
    }

    pub async fn store(&self) -> Result<Store, IngestError> {
        match &self.0 {
            Inner::Fixed(store) => Ok(store.clone()),
            Inner::Secret(rotating) => {
                let RotatingStore {
                    credentials,
                    options,
                    settings,
                    current,
                } = rotating.as_ref();
                let credentials = credentials.get().await?;
                let mut current = current.lock().await;
                match current.as_ref() {
                    // Same credentials: keep the pool and its open connection.
                    Some((used, store)) if **used == *credentials => Ok(store.clone()),
                    _ => {
                        let options = options
                            .clone()
                            .username(&credentials.username)
                            .password(&credentials.password);
                        let store = Store::connect_lazy(options, settings);
                        *current = Some((credentials, store.clone()));
                        Ok(store)
                    }
                }
            }
        }
    }

    /// Stores a lead (see [`Store::insert`]). A refused password means RDS rotated it
    /// since it was read: the secret is read again on the next call.
    pub async fn insert(&self, record: &LeadRecord) -> Result<Stored, IngestError> {
        let result = self.store().await?.insert(record).await;
        if let Err(IngestError::Database(error)) = &result {
            if is_bad_password(error) {
                self.forget_credentials().await;
            }
        }
        result
    }

    pub async fn forget_credentials(&self) {
        if let Inner::Secret(rotating) = &self.0 {
            rotating.credentials.invalidate().await;
        }
    }
}

/// PostgreSQL's `invalid_password`.
pub fn is_bad_password(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("28P01"))
}
