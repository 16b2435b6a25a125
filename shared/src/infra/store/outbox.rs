//! The outbox relay's work on the database: the `Lead stored` events a function did not
//! get onto the bus right after its commit, published oldest first.
//!
//! A run walks the outbox once, [`BATCH`] rows at a time, each batch held (`FOR UPDATE
//! SKIP LOCKED`, so relays beside each other take different rows) until what
//! EventBridge took is deleted. A row EventBridge refuses for itself (or whose detail is
//! no event) is moved to `lead_outbox_refused` with the reason, never offered again; a
//! row it only failed to take (a throttle) waits for the next run, behind none: the walk
//! goes on past it, so one row never holds back the others.

use std::time::{Duration, Instant};

use crate::domain::event;
use crate::error::StoreError;
use crate::infra::aws::events::Recorded;
use crate::infra::store::{classify, Store};

/// How many rows a run takes and publishes at once.
pub const BATCH: i64 = 100;

/// The next rows of the walk: recorded at least `$1` seconds ago (so not a function's
/// own, still being published), after row `$3`, none another relay holds.
const TAKE: &str = r#"
SELECT id, detail::text FROM public.lead_outbox
WHERE recorded_at < now() - make_interval(secs => $1::float8) AND id > $3
ORDER BY id
LIMIT $2
FOR UPDATE SKIP LOCKED"#;

const DELETE: &str = "DELETE FROM public.lead_outbox WHERE id = ANY($1)";

/// Moves rows aside, each with its reason.
const SET_ASIDE: &str = r#"
WITH reasons AS (
    SELECT * FROM unnest($1::int8[], $2::text[]) AS reason (id, reason)
), moved AS (
    DELETE FROM public.lead_outbox AS outbox USING reasons
    WHERE outbox.id = reasons.id
    RETURNING outbox.id, outbox.lead_id, outbox.detail, outbox.recorded_at, reasons.reason
)
INSERT INTO public.lead_outbox_refused (id, lead_id, detail, recorded_at, reason)
SELECT id, lead_id, detail, recorded_at, reason FROM moved"#;

/// How many rows the outbox holds, and the oldest one's age in seconds.
const BACKLOG: &str = r#"
SELECT count(*), extract(epoch FROM now() - min(recorded_at))::float8
FROM public.lead_outbox"#;

/// What one relay run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Relayed {
    /// Events EventBridge took (and whose rows are deleted).
    pub published: usize,
    /// Events offered that EventBridge did not take (their rows stay for the next run).
    pub failed: usize,
    /// Rows moved to `lead_outbox_refused`: refused by EventBridge for themselves, or
    /// no event at all.
    pub set_aside: usize,
    /// Rows in the outbox when the run began, and the oldest one's age then.
    pub backlog: i64,
    pub oldest_age: Option<Duration>,
    /// Why the run stopped early, when EventBridge failed.
    pub error: Option<String>,
}

/// Publishes the rows of `store`'s outbox recorded at least `min_age` ago, until
/// `deadline` or the end of the outbox.
pub async fn relay(
    store: &Store,
    min_age: Duration,
    deadline: Instant,
) -> Result<Relayed, StoreError> {
    let Some(events) = store.events().cloned() else {
        return Ok(Relayed::default());
    };
    store
        .with_connection(move |connection| {
            Box::pin(async move {
                let (rows, oldest): (i64, Option<f64>) = sqlx::query_as(BACKLOG)
                    .fetch_one(&mut *connection)
                    .await
                    .map_err(classify)?;
                let mut relayed = Relayed {
                    backlog: rows,
                    oldest_age: oldest.map(|seconds| Duration::from_secs_f64(seconds.max(0.0))),
                    ..Relayed::default()
                };
                let mut after = 0i64;
                while Instant::now() < deadline {
                    let mut transaction = sqlx::Connection::begin(&mut *connection)
                        .await
                        .map_err(classify)?;
                    let rows: Vec<(i64, String)> = sqlx::query_as(TAKE)
                        .bind(min_age.as_secs_f64())
                        .bind(BATCH)
                        .bind(after)
                        .fetch_all(&mut *transaction)
                        .await
                        .map_err(classify)?;
                    let Some(&(last, _)) = rows.last() else {
                        transaction.commit().await.map_err(classify)?;
                        break;
                    };
                    after = last;
                    let mut aside = Vec::new();
                    let mut offered = Vec::with_capacity(rows.len());
                    for (id, detail) in rows {
                        match event::bounded(&detail) {
                            Ok(detail) => offered.push(Recorded {
                                id,
                                detail,
                                token: None,
                            }),
                            Err(reason) => aside.push((id, reason)),
                        }
                    }
                    let limit = deadline.saturating_duration_since(Instant::now());
                    let published = events.publish(&offered, limit).await;
                    let refused = published.refused.len();
                    aside.extend(published.refused);
                    if !published.taken.is_empty() {
                        sqlx::query(DELETE)
                            .bind(&published.taken)
                            .execute(&mut *transaction)
                            .await
                            .map_err(classify)?;
                    }
                    if !aside.is_empty() {
                        let (ids, reasons): (Vec<i64>, Vec<String>) = aside.iter().cloned().unzip();
                        sqlx::query(SET_ASIDE)
                            .bind(&ids)
                            .bind(&reasons)
                            .execute(&mut *transaction)
                            .await
                            .map_err(classify)?;
                        for (id, reason) in &aside {
                            tracing::error!(
                                outbox = id,
                                reason,
                                "lead event set aside in lead_outbox_refused"
                            );
                        }
                    }
                    transaction.commit().await.map_err(classify)?;
                    relayed.published += published.taken.len();
                    relayed.set_aside += aside.len();
                    relayed.failed += offered.len() - published.taken.len() - refused;
                    if let Some(error) = published.error {
                        // EventBridge is down or slow: the next run tries again.
                        relayed.error = Some(error.to_string());
                        break;
                    }
                }
                Ok(relayed)
            })
        })
        .await
}
