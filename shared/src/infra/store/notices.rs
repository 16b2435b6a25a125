//! The ledger of who was told of which lead (`public.lead_notices`): a message is sent
//! once per lead and channel, however often the event that asks for it arrives.
//!
//! Telling is claim, send, mark. A claim is taken by one invocation only (the row's
//! primary key); a second delivery meanwhile finds it in flight and fails, to be
//! delivered again later; one that finds it sent does nothing. A claim left unsent for
//! [`TAKEOVER_AFTER`] is an invocation that stopped between the claim and the send: the
//! next delivery takes it over, so a crash ends with the message sent on the retry.

use std::time::Duration;

use crate::error::StoreError;
use crate::infra::store::{classify, Store};

/// How long a claim with nothing sent is left to the invocation that took it: longer than
/// a send takes (the SDK's operation bound), far shorter than the retries' spacing.
pub const TAKEOVER_AFTER: Duration = Duration::from_secs(30);

/// Takes the claim when there is none, or when the last one is older than `$3` seconds
/// with nothing sent.
const CLAIM: &str = r#"
INSERT INTO public.lead_notices AS notice (lead_id, channel) VALUES ($1, $2)
ON CONFLICT (lead_id, channel) DO UPDATE SET claimed_at = now()
WHERE notice.sent_at IS NULL
  AND notice.claimed_at < now() - make_interval(secs => $3::float8)
RETURNING true"#;

/// Whether the message was sent already (a claim not taken is sent, or in flight).
const SENT: &str = r#"
SELECT sent_at IS NOT NULL FROM public.lead_notices WHERE lead_id = $1 AND channel = $2"#;

const MARK_SENT: &str = r#"
UPDATE public.lead_notices SET sent_at = now(), message_id = $3
WHERE lead_id = $1 AND channel = $2"#;

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This invocation tells.
    Taken,
    /// Told already: nothing to do.
    Sent,
    /// Another invocation is telling right now.
    InFlight,
}

/// Claims the message of `lead_id` on `channel`.
pub async fn claim(store: &Store, lead_id: &str, channel: &str) -> Result<Claim, StoreError> {
    let (lead_id, channel) = (lead_id.to_owned(), channel.to_owned());
    store
        .with_connection(move |connection| {
            Box::pin(async move {
                let taken: Option<bool> = sqlx::query_scalar(CLAIM)
                    .bind(&lead_id)
                    .bind(&channel)
                    .bind(TAKEOVER_AFTER.as_secs_f64())
                    .fetch_optional(&mut *connection)
                    .await
                    .map_err(classify)?;
                if taken.is_some() {
                    return Ok(Claim::Taken);
                }
                let sent: bool = sqlx::query_scalar(SENT)
                    .bind(&lead_id)
                    .bind(&channel)
                    .fetch_one(&mut *connection)
                    .await
                    .map_err(classify)?;
                Ok(if sent { Claim::Sent } else { Claim::InFlight })
            })
        })
        .await
}

/// Marks the message of `lead_id` on `channel` sent, as `message_id`.
pub async fn mark_sent(
    store: &Store,
    lead_id: &str,
    channel: &str,
    message_id: &str,
) -> Result<(), StoreError> {
    let (lead_id, channel, message_id) = (
        lead_id.to_owned(),
        channel.to_owned(),
        message_id.to_owned(),
    );
    store
        .with_connection(move |connection| {
            Box::pin(async move {
                sqlx::query(MARK_SENT)
                    .bind(&lead_id)
                    .bind(&channel)
                    .bind(&message_id)
                    .execute(&mut *connection)
                    .await
                    .map(drop)
                    .map_err(classify)
            })
        })
        .await
}

/// Which messages of `lead_ids` were sent, on any channel: (lead id, channel) pairs.
pub async fn sent_among(
    store: &Store,
    lead_ids: Vec<String>,
) -> Result<std::collections::HashSet<(String, String)>, StoreError> {
    store
        .with_connection(move |connection| {
            Box::pin(async move {
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT lead_id, channel FROM public.lead_notices
                     WHERE lead_id = ANY($1) AND sent_at IS NOT NULL",
                )
                .bind(&lead_ids)
                .fetch_all(&mut *connection)
                .await
                .map_err(classify)?;
                Ok(rows.into_iter().collect())
            })
        })
        .await
}

/// Records, once, that `channel` happened for each of `lead_ids` (a mark with nothing
/// to send); the ids recorded now, not before.
pub async fn record_once(
    store: &Store,
    lead_ids: Vec<String>,
    channel: &str,
) -> Result<Vec<String>, StoreError> {
    let channel = channel.to_owned();
    store
        .with_connection(move |connection| {
            Box::pin(async move {
                sqlx::query_scalar(
                    "INSERT INTO public.lead_notices (lead_id, channel, sent_at)
                     SELECT id, $2, now() FROM unnest($1::text[]) AS id
                     ON CONFLICT (lead_id, channel) DO NOTHING
                     RETURNING lead_id",
                )
                .bind(&lead_ids)
                .bind(&channel)
                .fetch_all(&mut *connection)
                .await
                .map_err(classify)
            })
        })
        .await
}
