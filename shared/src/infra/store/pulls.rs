//! Where the scheduled pulls are: a watermark per pull, a checkpoint per list with the
//! listing in progress, so a run that stops mid-list resumes where it was.

use super::{classify, Store};
use crate::error::StoreError;

const GET_WATERMARK: &str = r#"
SELECT extract(epoch FROM synced_until)::int8
FROM public.lead_sync_watermarks WHERE source = $1"#;

const SET_WATERMARK: &str = r#"
INSERT INTO public.lead_sync_watermarks (source, synced_until)
VALUES ($1, to_timestamp($2::float8))
ON CONFLICT (source) DO UPDATE
SET synced_until = greatest(lead_sync_watermarks.synced_until, excluded.synced_until),
    updated_at = now()"#;

/// A row for each key that has none, covered up to `$2`.
const ADD_CHECKPOINTS: &str = r#"
INSERT INTO public.lead_sync_watermarks (source, synced_until)
SELECT key, to_timestamp($2::float8) FROM unnest($1::text[]) AS key
ON CONFLICT (source) DO NOTHING"#;

/// The keys' rows, the one worked on longest ago first (ties in the keys' order).
const GET_CHECKPOINTS: &str = r#"
SELECT w.source,
       extract(epoch FROM w.synced_until)::int8,
       extract(epoch FROM w.pass_since)::int8,
       extract(epoch FROM w.pass_started)::int8,
       w.pass_after
FROM unnest($1::text[]) WITH ORDINALITY AS k(source, position)
JOIN public.lead_sync_watermarks w ON w.source = k.source
ORDER BY w.updated_at, k.position"#;

/// A listing's progress: the next page to store (or none: none in progress).
const SET_PASS: &str = r#"
UPDATE public.lead_sync_watermarks
SET pass_since = to_timestamp($2::float8), pass_started = to_timestamp($3::float8),
    pass_after = $4, updated_at = clock_timestamp()
WHERE source = $1"#;

/// A listing done: covered up to when it began, and none in progress.
const FINISH_PASS: &str = r#"
UPDATE public.lead_sync_watermarks
SET synced_until = greatest(synced_until, to_timestamp($2::float8)),
    pass_since = NULL, pass_started = NULL, pass_after = NULL,
    updated_at = clock_timestamp()
WHERE source = $1"#;

/// Where a scheduled pull is in one list (a form's leads), under its own key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub key: String,
    /// Unix time up to which the list is covered: the start of its last whole listing.
    pub synced_until: i64,
    /// A listing not finished yet.
    pub pass: Option<Pass>,
}

/// A row of [`GET_CHECKPOINTS`]: the key, `synced_until`, and the pass's since, started
/// and after.
type CheckpointRow = (String, i64, Option<i64>, Option<i64>, Option<String>);

/// A listing in progress: every page before `after` is stored or kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    /// The filter it lists with (Unix time), the same on every page.
    pub since: i64,
    /// When it began (Unix time): how far the list is covered once it is done.
    pub started: i64,
    /// The cursor of the next page to store.
    pub after: String,
}

impl Store {
    /// The Unix time a scheduled pull named `key` last covered, if it ever ran.
    pub async fn watermark(&self, key: &str) -> Result<Option<i64>, StoreError> {
        let mut slot = self.slot.lock().await;
        let connection = self.connection(&mut slot.open).await?;
        sqlx::query_scalar(GET_WATERMARK)
            .bind(key)
            .fetch_optional(&mut *connection)
            .await
            .map_err(classify)
    }

    /// Records that the pull named `key` covered everything up to `until` (Unix time).
    /// A watermark never moves back, so a slow run finishing after a newer one cannot
    /// undo it.
    pub async fn set_watermark(&self, key: &str, until: i64) -> Result<(), StoreError> {
        let mut slot = self.slot.lock().await;
        let connection = self.connection(&mut slot.open).await?;
        sqlx::query(SET_WATERMARK)
            .bind(key)
            .bind(until as f64)
            .execute(&mut *connection)
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// The checkpoints of `keys`, each added covered up to `default_until` (Unix time)
    /// if it has none yet; the one worked on longest ago first, so that a run short of
    /// time starts where the last one did not get to.
    pub async fn checkpoints(
        &self,
        keys: &[String],
        default_until: i64,
    ) -> Result<Vec<Checkpoint>, StoreError> {
        let mut slot = self.slot.lock().await;
        let connection = self.connection(&mut slot.open).await?;
        sqlx::query(ADD_CHECKPOINTS)
            .bind(keys)
            .bind(default_until as f64)
            .execute(&mut *connection)
            .await
            .map_err(classify)?;
        let rows: Vec<CheckpointRow> = sqlx::query_as(GET_CHECKPOINTS)
            .bind(keys)
            .fetch_all(&mut *connection)
            .await
            .map_err(classify)?;
        Ok(rows
            .into_iter()
            .map(|(key, synced_until, since, started, after)| {
                let pass = match (since, started, after) {
                    (Some(since), Some(started), Some(after)) => Some(Pass {
                        since,
                        started,
                        after,
                    }),
                    _ => None,
                };
                Checkpoint {
                    key,
                    synced_until,
                    pass,
                }
            })
            .collect())
    }

    /// Records a listing's progress under `key` (`None`: none in progress), and that the
    /// key was worked on now.
    pub async fn set_pass(&self, key: &str, pass: Option<&Pass>) -> Result<(), StoreError> {
        let mut slot = self.slot.lock().await;
        let connection = self.connection(&mut slot.open).await?;
        sqlx::query(SET_PASS)
            .bind(key)
            .bind(pass.map(|pass| pass.since as f64))
            .bind(pass.map(|pass| pass.started as f64))
            .bind(pass.map(|pass| pass.after.as_str()))
            .execute(&mut *connection)
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Records that a listing under `key` that began at `started` (Unix time) is done:
    /// the key is covered up to then (never moving back), and no listing is in progress.
    pub async fn finish_pass(&self, key: &str, started: i64) -> Result<(), StoreError> {
        let mut slot = self.slot.lock().await;
        let connection = self.connection(&mut slot.open).await?;
        sqlx::query(FINISH_PASS)
            .bind(key)
            .bind(started as f64)
            .execute(&mut *connection)
            .await
            .map_err(classify)?;
        Ok(())
    }
}
