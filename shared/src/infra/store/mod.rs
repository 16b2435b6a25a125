//! Our PostgreSQL: the one room that speaks its SQL, and so the one that decides which
//! database errors mean "unavailable" ([`classify`]). Each of its rooms is one use of the
//! database (a lead stored once, the outbox, the feed's reads, the ledger of notices,
//! checkpoints, migrations and role logins); here, the one connection they all run on.
//!
//! A container holds one connection: Lambda hands it one request at a time, and a pool
//! would add a round trip per request (sqlx pings a connection returned to its pool).
//! Partners give up after 10 s, so every wait is bounded: connecting by
//! `connect_timeout`, each statement by the server's `statement_timeout`, and the whole
//! operation by `operation_timeout` (which also covers a database host that silently
//! drops packets, where no server-side timeout can fire).

mod fit;
mod insert;
mod lead;
mod migration;
pub mod notices;
pub mod outbox;
mod pulls;
pub mod reader;
pub mod scram;
mod sqlstate;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Executor};
use tokio::sync::Mutex;

pub use crate::domain::lead::record::RowId;
use crate::error::StoreError;
use crate::infra::aws::events::Events;
use crate::infra::secrets::{DbCredentials, Refreshing};
#[cfg(feature = "tools")]
pub(crate) use insert::insert_query;
pub use lead::Stored;
pub use migration::MIGRATOR;
pub use pulls::{Checkpoint, Pass};
pub use sqlstate::classify;
use sqlstate::{is_bad_password, is_connection_lost};

/// How the store waits; see `config` for the variables that set these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    pub connect_timeout: Duration,
    /// The server-side bound on each statement; zero for none (migrations).
    pub statement_timeout: Duration,
    pub operation_timeout: Duration,
    /// How long a byte-identical body from the same source counts as a retry.
    pub dedup_window: Duration,
    /// How long the store rests after the database proved unavailable (zero: never).
    pub breaker: Duration,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(3),
            operation_timeout: Duration::from_secs(5),
            dedup_window: Duration::from_secs(15 * 60),
            breaker: Duration::from_secs(5),
        }
    }
}

/// The lead table, over the container's one connection, opened on first use.
pub struct Store {
    /// Where and how to connect; without credentials when they come from a secret.
    options: PgConnectOptions,
    /// The RDS-managed credentials secret, which RDS rotates.
    credentials: Option<Refreshing<DbCredentials>>,
    settings: StoreSettings,
    /// Where `Lead stored` events go; none: the outbox is not written.
    events: Option<Events>,
    slot: Mutex<Slot>,
}

// The connect options may carry a password: only where the store connects is printed.
impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("host", &self.options.get_host())
            .field("port", &self.options.get_port())
            .field("database", &self.options.get_database())
            .field("credentials", &self.credentials.is_some())
            .field("settings", &self.settings)
            .field("events", &self.events.as_ref().map(Events::bus))
            .finish_non_exhaustive()
    }
}

/// What a store keeps between requests.
#[derive(Default)]
struct Slot {
    open: Option<Open>,
    /// Set after the database proved unavailable: until then, leads go straight to the
    /// queue instead of each waiting out its timeout (a circuit breaker).
    resting_until: Option<Instant>,
}

impl Slot {
    /// Fails at once while resting; otherwise the rest, if any, is over.
    fn awake(&mut self) -> Result<(), StoreError> {
        if let Some(until) = self.resting_until {
            if Instant::now() < until {
                return Err(StoreError::Resting);
            }
            self.resting_until = None;
        }
        Ok(())
    }

    /// Rests for `breaker` after a failure that shows the database down (zero: never).
    fn rest_after<T>(&mut self, result: &Result<T, StoreError>, breaker: Duration) {
        if result.as_ref().is_err_and(StoreError::is_outage) && !breaker.is_zero() {
            self.resting_until = Some(Instant::now() + breaker);
        }
    }
}

/// An open connection and the credentials it was opened with.
struct Open {
    connection: PgConnection,
    credentials: Option<Arc<DbCredentials>>,
}

impl Store {
    /// A store that connects with `options` as given. Connects nothing yet: a cold start
    /// does not wait for the database, and a database that is down at start-up costs a
    /// request its contract answer, not the container.
    pub fn new(options: PgConnectOptions, settings: StoreSettings) -> Self {
        let options = options
            .application_name("lead-ingestion")
            // Statements are the same few every time; logging each would cost every
            // request for nothing an operator reads, and at debug it would print them.
            .disable_statement_logging();
        Self {
            options,
            credentials: None,
            settings,
            events: None,
            slot: Mutex::new(Slot::default()),
        }
    }

    /// Takes the username and password from `credentials`, read again when it changes.
    pub fn with_credentials(mut self, credentials: Refreshing<DbCredentials>) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Records every stored lead's `Lead stored` event in the outbox with its row, and
    /// publishes it to `events` right after (see [`Store::insert_within`]).
    pub fn with_events(mut self, events: Events) -> Self {
        self.events = Some(events);
        self
    }

    pub fn events(&self) -> Option<&Events> {
        self.events.as_ref()
    }

    /// The user this store logs in as: its secret's, else the connection options'.
    pub async fn user(&self) -> Result<String, StoreError> {
        Ok(match self.current_credentials().await? {
            Some(credentials) => credentials.username.clone(),
            None => self.options.get_username().to_owned(),
        })
    }

    /// Reads the credentials secret now (cold start), so a request need not.
    pub async fn read_credentials(&self) -> Result<(), StoreError> {
        self.current_credentials().await.map(drop)
    }

    /// Opens the connection now, if it is not open (a caller that wants it ready before
    /// the first lead).
    pub async fn open(&self) -> Result<(), StoreError> {
        let mut slot = self.slot.lock().await;
        self.connection(&mut slot.open).await.map(drop)
    }

    /// The open connection, opened now if there is none.
    async fn connection<'s>(
        &self,
        open: &'s mut Option<Open>,
    ) -> Result<&'s mut PgConnection, StoreError> {
        let open = match open.take() {
            Some(existing) => open.insert(existing),
            None => open.insert(self.connect(self.current_credentials().await?).await?),
        };
        Ok(&mut open.connection)
    }

    async fn current_credentials(&self) -> Result<Option<Arc<DbCredentials>>, StoreError> {
        match &self.credentials {
            Some(secret) => Ok(Some(secret.get().await.map_err(StoreError::Credentials)?)),
            None => Ok(None),
        }
    }

    /// Runs `work` on the open connection (opened now if there is none), holding it
    /// throughout: the relay's transactions, which wait on EventBridge between their
    /// statements.
    pub(crate) async fn with_connection<T>(
        &self,
        work: impl for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let mut slot = self.slot.lock().await;
        let connection = self.connection(&mut slot.open).await?;
        let result = work(connection).await;
        // A connection that failed without the server's answer (lost, timed out) is
        // not used again: the next call opens another.
        if let Err(StoreError::Unavailable(error)) = &result {
            if !matches!(error, sqlx::Error::Database(_)) {
                slot.open = None;
            }
        }
        result
    }

    /// Runs `work` in one transaction on the open connection, committed when it
    /// succeeds (rolled back when it fails or is dropped).
    pub(crate) async fn in_transaction<T: Send + 'static>(
        &self,
        work: impl for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T, sqlx::Error>>
            + Send
            + 'static,
    ) -> Result<T, StoreError> {
        self.with_connection(move |connection| {
            Box::pin(async move {
                let mut transaction = sqlx::Connection::begin(&mut *connection)
                    .await
                    .map_err(classify)?;
                let value = work(&mut transaction).await.map_err(classify)?;
                transaction.commit().await.map_err(classify)?;
                Ok(value)
            })
        })
        .await
    }

    /// Runs `operation` on the open connection, or a new one. A connection the server
    /// closed while the container was idle (a restart, a failover, a terminated backend)
    /// is only noticed when used: the operation is tried once more on a new one, which
    /// every [`Operation`] may be (a repeat of an insert that did commit finds its row).
    async fn on_connection<O: Operation>(
        &self,
        slot: &mut Option<Open>,
        operation: &O,
    ) -> Result<O::Output, StoreError> {
        let credentials = self.current_credentials().await?;
        // Opened with credentials since rotated: replaced.
        if slot
            .as_ref()
            .is_some_and(|open| open.credentials != credentials)
        {
            *slot = None;
        }
        let reused = slot.is_some();
        for retry in [reused, false] {
            let mut open = match slot.take() {
                Some(open) => open,
                None => self.connect(credentials.clone()).await?,
            };
            match operation.run(&mut open.connection).await {
                Ok(value) => {
                    *slot = Some(open);
                    return Ok(value);
                }
                Err(error) if is_connection_lost(&error) => {
                    if !retry {
                        return Err(classify(error));
                    }
                    tracing::info!(error = %error, "database connection closed while idle; reconnecting");
                }
                // The server answered: the connection is sound.
                Err(error @ sqlx::Error::Database(_)) => {
                    *slot = Some(open);
                    return Err(classify(error));
                }
                Err(error) => return Err(classify(error)),
            }
        }
        Err(StoreError::Unsettled)
    }

    /// What a wait of `limit` that ran out says: the database is unavailable only when
    /// `limit` was long enough for a healthy server to answer (its own statement bound,
    /// or the store's whole operation bound where that is shorter); a request whose
    /// budget left less has only run out of time.
    fn timed_out(&self, limit: Duration) -> StoreError {
        let enough = self
            .settings
            .statement_timeout
            .min(self.settings.operation_timeout);
        if limit >= enough {
            StoreError::Timeout(limit)
        } else {
            StoreError::OutOfTime(limit)
        }
    }

    /// Runs `read` on the open connection (opened now if there is none) within
    /// `operation_timeout`, tried once more on a new connection as
    /// [`Store::on_connection`] does: the leads feed's reads, over the reader role's
    /// connection.
    pub(crate) async fn read<T>(
        &self,
        read: impl for<'c> Fn(&'c mut PgConnection) -> BoxFuture<'c, Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        let limit = self.settings.operation_timeout;
        let mut slot = self.slot.lock().await;
        tokio::time::timeout(limit, self.on_connection(&mut slot.open, &Read(read)))
            .await
            .unwrap_or_else(|_| Err(self.timed_out(limit)))
    }

    async fn connect(&self, credentials: Option<Arc<DbCredentials>>) -> Result<Open, StoreError> {
        let mut options = self.options.clone();
        if let Some(credentials) = &credentials {
            options = options
                .username(&credentials.username)
                .password(&credentials.password);
        }
        let limit = self.settings.connect_timeout;
        let connect = async {
            let mut connection = options.connect().await?;
            // Set in the session, not as a startup `options` parameter, which RDS Proxy
            // refuses. (The proxy pins the session for it, as it does for the named
            // prepared statements sqlx uses: see docs/operations.md, RDS Proxy.)
            let statement_timeout = self.settings.statement_timeout.as_millis();
            connection
                .execute(format!("SET statement_timeout = {statement_timeout}").as_str())
                .await?;
            Ok::<_, sqlx::Error>(connection)
        };
        match tokio::time::timeout(limit, connect).await {
            Ok(Ok(connection)) => Ok(Open {
                connection,
                credentials,
            }),
            Ok(Err(error)) => {
                // A refused password means RDS rotated it since it was read.
                if is_bad_password(&error) {
                    if let Some(secret) = &self.credentials {
                        secret.invalidate().await;
                    }
                }
                Err(classify(error))
            }
            Err(_) => Err(StoreError::Timeout(limit)),
        }
    }
}

/// What may run on the store's connection, and be tried again on a new one when the
/// first was lost; each kind says what it gives.
trait Operation {
    type Output;
    fn run<'c>(
        &'c self,
        connection: &'c mut PgConnection,
    ) -> BoxFuture<'c, Result<Self::Output, sqlx::Error>>;
}

/// A read given as a closure.
struct Read<F>(F);

impl<T, F> Operation for Read<F>
where
    F: for<'c> Fn(&'c mut PgConnection) -> BoxFuture<'c, Result<T, sqlx::Error>>,
{
    type Output = T;
    fn run<'c>(
        &'c self,
        connection: &'c mut PgConnection,
    ) -> BoxFuture<'c, Result<T, sqlx::Error>> {
        (self.0)(connection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_never_prints_its_password() {
        let options: PgConnectOptions =
            "postgres://lead_writer:the-db-password@db.internal:5432/crm"
                .parse()
                .unwrap();
        let printed = format!("{:?}", Store::new(options, StoreSettings::default()));
        assert!(!printed.contains("the-db-password"), "{printed}");
        assert!(printed.contains("db.internal"), "{printed}");
    }

    #[test]
    fn ids_render_as_numbers_when_numeric() {
        assert_eq!(RowId::from_text("42".into()), RowId::Number(42));
        let uuid = "0b6c9f2e-0000-4000-8000-000000000000".to_owned();
        assert_eq!(RowId::from_text(uuid.clone()), RowId::Text(uuid));
        assert_eq!(serde_json::to_string(&RowId::Number(7)).unwrap(), "7");
    }
}
