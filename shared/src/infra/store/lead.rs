//! The lead's insert: once per lead, a repeat finding the row it repeats, its event
//! recorded in the outbox by the same statement and published right after the commit.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use sqlx::postgres::PgConnection;

use super::insert::insert_fitting;
use super::sqlstate::is_connection_lost;
use super::{Open, Operation, RowId, Store};
use crate::domain::lead::record::LeadRecord;
use crate::error::StoreError;
use crate::infra::aws::events::{Events, Recorded};

/// A function's own outbox row, once EventBridge took it (the functions' role may not
/// delete any other).
const DELETE_PUBLISHED: &str = "SELECT public.lead_outbox_published($1, $2::uuid)";

/// The rows holding a source's own ids of leads (the unique key of the dedup migrations).
const FIND_BY_PARTNER_IDS: &str = r#"
SELECT partner_lead_id, id::text FROM public."mg-digital-leads"
WHERE platform = $1 AND partner_lead_id = ANY($2)"#;

/// A stored lead: new, or the row it repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    Created(RowId),
    Duplicate(RowId),
}

impl Stored {
    pub fn id(&self) -> &RowId {
        match self {
            Self::Created(id) | Self::Duplicate(id) => id,
        }
    }
}

impl Store {
    /// Stores a lead once: inserts it, or finds the row it repeats, within
    /// `operation_timeout` (see [`Store::insert_within`]).
    pub async fn insert(&self, record: &LeadRecord) -> Result<Stored, StoreError> {
        self.insert_within(record, self.settings.operation_timeout)
            .await
    }

    /// Stores a lead once within `limit` (at most `operation_timeout`). A lead is never
    /// half-stored, so any failure may be retried.
    ///
    /// After a failure that shows the database unavailable, the store rests for
    /// `breaker`: leads fail at once with [`StoreError::Resting`] (and are queued by the
    /// caller) instead of each waiting out a timeout; the first lead after the rest
    /// probes the database again.
    ///
    /// A connection the server closed while the container was idle (a restart, a
    /// failover) is only noticed when used: the lead is tried once more on a new one.
    /// That is safe because a lead is stored once per id: a repeat of an insert that did
    /// commit finds its row.
    ///
    /// With events configured, a new lead's `Lead stored` event is recorded by the same
    /// statement, then published within [`PUBLISH_WAIT`](crate::infra::aws::events::PUBLISH_WAIT) more and its outbox row
    /// deleted, when `limit` leaves time for that; an event EventBridge did not take
    /// (and, for a while after, every event: see
    /// [`REST_AFTER_FAILURE`](crate::infra::aws::events::REST_AFTER_FAILURE)) only waits for
    /// the relay, and never fails the lead.
    pub async fn insert_within(
        &self,
        record: &LeadRecord,
        limit: Duration,
    ) -> Result<Stored, StoreError> {
        let started = Instant::now();
        let limit = limit.min(self.settings.operation_timeout);
        let mut slot = self.slot.lock().await;
        slot.awake()?;
        let result = tokio::time::timeout(limit, self.attempt(&mut slot.open, record))
            .await
            .unwrap_or_else(|_| Err(self.timed_out(limit)));
        slot.rest_after(&result, self.settings.breaker);
        let (stored, recorded) = result?;
        if let (Some(events), Some(recorded)) = (&self.events, recorded) {
            // The publish and the delete after it must fit in what the caller has left;
            // otherwise, or while EventBridge is failing, the relay publishes the event.
            let left = limit.saturating_sub(started.elapsed());
            if left >= events.wait() * 2 && !events.resting() {
                publish_now(&mut slot.open, events, recorded).await;
            }
        }
        Ok(stored)
    }

    /// The rows a source's own lead ids are stored in, by id, within `limit` (at most
    /// `operation_timeout`; resting like [`Store::insert_within`]). Lets leads that must
    /// be read from their platform first skip that read when they are stored already.
    pub async fn find_all(
        &self,
        platform: &str,
        partner_lead_ids: &[&str],
        limit: Duration,
    ) -> Result<HashMap<String, RowId>, StoreError> {
        if partner_lead_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let limit = limit.min(self.settings.operation_timeout);
        let mut slot = self.slot.lock().await;
        slot.awake()?;
        let find = Find {
            platform,
            partner_lead_ids,
        };
        let result = tokio::time::timeout(limit, self.on_connection(&mut slot.open, &find))
            .await
            .unwrap_or_else(|_| Err(self.timed_out(limit)));
        slot.rest_after(&result, self.settings.breaker);
        Ok(result?
            .into_iter()
            .map(|(partner_lead_id, id)| (partner_lead_id, RowId::from_text(id)))
            .collect())
    }

    /// One store of a lead on the open connection, or a new one. A timed-out call is
    /// dropped mid-query, and the connection it had taken with it.
    async fn attempt(
        &self,
        slot: &mut Option<Open>,
        record: &LeadRecord,
    ) -> Result<(Stored, Option<Recorded>), StoreError> {
        let insert = Insert {
            record,
            window: self.settings.dedup_window,
            record_event: self.events.is_some(),
        };
        self.on_connection(slot, &insert)
            .await?
            .ok_or(StoreError::Unsettled)
    }
}

/// Stores a lead once, within the retry window of its body; `None` when a conflicting
/// row kept changing under it.
struct Insert<'a> {
    record: &'a LeadRecord,
    window: Duration,
    /// Whether a new lead's event is recorded in the outbox.
    record_event: bool,
}

impl Operation for Insert<'_> {
    /// The lead, and its event's outbox row when it was new and events are recorded.
    type Output = Option<(Stored, Option<Recorded>)>;
    fn run<'c>(
        &'c self,
        connection: &'c mut PgConnection,
    ) -> BoxFuture<'c, Result<Self::Output, sqlx::Error>> {
        Box::pin(insert_fitting(
            connection,
            self.record,
            self.window,
            self.record_event,
        ))
    }
}

/// The rows of a source's own lead ids.
struct Find<'a> {
    platform: &'a str,
    partner_lead_ids: &'a [&'a str],
}

impl Operation for Find<'_> {
    /// Pairs of a source's own lead id and the row's id.
    type Output = Vec<(String, String)>;
    fn run<'c>(
        &'c self,
        connection: &'c mut PgConnection,
    ) -> BoxFuture<'c, Result<Self::Output, sqlx::Error>> {
        Box::pin(
            sqlx::query_as(FIND_BY_PARTNER_IDS)
                .bind(self.platform)
                .bind(self.partner_lead_ids)
                .fetch_all(connection),
        )
    }
}

/// Publishes a lead's event right after its commit, within the events' wait
/// ([`PUBLISH_WAIT`](crate::infra::aws::events::PUBLISH_WAIT) unless a test sets another), and
/// deletes its outbox row once EventBridge took it, within as long again. Anything short of that only
/// logs: the row stays, and the relay publishes it.
async fn publish_now(slot: &mut Option<Open>, events: &Events, recorded: Recorded) {
    let published = events
        .publish(std::slice::from_ref(&recorded), events.wait())
        .await;
    if let Some(error) = published.error {
        events.rest();
        tracing::warn!(error = %error, outbox = recorded.id, "lead event not published; the relay publishes it, and the next ones");
        return;
    }
    if published.taken.is_empty() {
        // Refused (the relay sets it aside) or not answered: the row stays for the relay.
        return;
    }
    // The connection goes with a delete that runs out of time, as with an insert.
    let Some(mut open) = slot.take() else {
        return;
    };
    // The writer deletes only its own row, by the token its insert drew.
    let delete = sqlx::query(DELETE_PUBLISHED)
        .bind(recorded.id)
        .bind(&recorded.token)
        .execute(&mut open.connection);
    match tokio::time::timeout(events.wait(), delete).await {
        Ok(Ok(_)) => *slot = Some(open),
        Ok(Err(error)) => {
            if !is_connection_lost(&error) {
                *slot = Some(open);
            }
            tracing::warn!(error = %error, outbox = recorded.id, "published lead event not deleted; the relay publishes it again");
        }
        Err(_) => tracing::warn!(
            outbox = recorded.id,
            "published lead event not deleted in time; the relay publishes it again"
        ),
    }
}
