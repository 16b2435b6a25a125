//! The group CRM's database, as its own code uses it (docs/crm.md): a lead entered by the
//! CRM's three cases and, when new, assigned by the CRM's rules, in one transaction.
//!
//! Two arrivals of one phone at once must never make two leads, which the CRM's own
//! read-then-insert allows: the transaction first takes an advisory lock on the phone's
//! last ten digits, so the second waits for the first and then finds its row. A rule's
//! pointer is held `FOR UPDATE` while it is moved, so two leads at once go to two
//! people. Waits are bounded by `lock_timeout`; one that runs out fails the hand-off,
//! to be delivered again.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnection;

use crate::domain::crm::SourceMap;
use crate::error::StoreError;
use crate::infra::aws::sms::Sms;
use crate::infra::buffer::Buffer;
use crate::infra::store::Store;

mod assign;
pub mod sla;

use assign::{assign, assigned_by};

/// The CRM's side of the hand-off, built once per container: its database, how its
/// salespeople are texted, which row each platform maps to.
#[derive(Debug)]
pub struct Crm {
    pub store: Store,
    pub sms: Sms,
    pub sources: SourceMap,
    /// The text's wording, its fields in braces.
    pub template: String,
    /// Where an event the CRM refuses for its data is kept, with the reason.
    pub dead_letters: Option<Buffer>,
}

/// The longest a hand-off waits for another's lock (the same phone, the same rule).
pub const LOCK_TIMEOUT_MS: u32 = 2_000;

/// What the hand-off enters: one of our stored leads, in the CRM's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Our row's id: recorded in the assignment's log, so a repeat knows its own.
    pub handoff: String,
    pub full_name: String,
    /// The phone's last ten digits: the CRM's key of a customer.
    pub phone10: String,
    /// The `sources` row the platform maps to: (`display_name`, `source_type`).
    pub source: (String, String),
    /// The platform's own id of the lead, else our row's.
    pub external_id: String,
    /// The source's whole payload.
    pub payload: serde_json::Value,
}

/// Who a lead went to.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignee {
    pub user_id: i64,
    pub full_name: Option<String>,
    /// As typed in the CRM (10 digits, when usable).
    pub phone_number: Option<String>,
    pub rule_id: String,
    pub rule_type: String,
}

/// What became of an entry, by the CRM's three cases.
#[derive(Debug, Clone, PartialEq)]
pub enum Entered {
    /// No lead had the phone: a new one, assigned when a rule with a member applied.
    New {
        lead_id: i64,
        assignee: Option<Assignee>,
    },
    /// A lead from the same source has the phone: nothing entered. `mine` when this
    /// hand-off entered it (a repeat of the same event), `assignee` when it assigned it.
    Repeat {
        lead_id: i64,
        mine: bool,
        assignee: Option<Assignee>,
    },
    /// A lead from another source has the phone: a history row for it, no new lead.
    OtherSource { lead_id: i64 },
}

/// Enters `entry` in the CRM behind `store`, the rules read at `now`.
pub async fn enter(
    store: &Store,
    entry: &Entry,
    now: DateTime<Utc>,
) -> Result<Entered, StoreError> {
    let entry = entry.clone();
    store
        .in_transaction(move |connection| {
            Box::pin(async move { enter_within(connection, &entry, now).await })
        })
        .await
}

async fn enter_within(
    connection: &mut PgConnection,
    entry: &Entry,
    now: DateTime<Utc>,
) -> Result<Entered, sqlx::Error> {
    sqlx::query(&format!("SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}"))
        .execute(&mut *connection)
        .await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('leads_master:' || $1, 0))")
        .bind(&entry.phone10)
        .execute(&mut *connection)
        .await?;
    let source_id = source(connection, &entry.source).await?;
    let existing: Option<(i64, Option<i64>)> = sqlx::query_as(
        "SELECT id, source_id FROM leads_master WHERE phone_number_normalized = $1 ORDER BY id LIMIT 1",
    )
    .bind(&entry.phone10)
    .fetch_optional(&mut *connection)
    .await?;
    match existing {
        None => {
            let lead_id: i64 = sqlx::query_scalar(
                "INSERT INTO leads_master
                     (full_name, phone_number_normalized, alternate_phone_number, source_id,
                      external_lead_id, status, next_followup_at, total_attempts, is_qualified,
                      raw_payload, created_at, updated_at)
                 VALUES ($1, $2, NULL, $3, $4, 'New', NULL, 0, false, $5, now(), now())
                 RETURNING id",
            )
            .bind(&entry.full_name)
            .bind(&entry.phone10)
            .bind(source_id)
            .bind(&entry.external_id)
            .bind(&entry.payload)
            .fetch_one(&mut *connection)
            .await?;
            sqlx::query(
                "UPDATE sources SET total_leads_count = total_leads_count + 1,
                                    todays_leads_count = todays_leads_count + 1
                 WHERE id = $1",
            )
            .bind(source_id)
            .execute(&mut *connection)
            .await?;
            // The lead's first line in its timeline, which also tells a repeat that the
            // lead is this hand-off's.
            sqlx::query(
                "INSERT INTO leads_logs
                     (lead_id, old_status, new_status, remarks, attempt_no, created_by, metadata, created_at)
                 VALUES ($1, NULL, 'New', 'Entered by the lead hand-off', 0, NULL,
                         jsonb_build_object('action', 'handoff', 'handoff', $2::text), now())",
            )
            .bind(lead_id)
            .bind(&entry.handoff)
            .execute(&mut *connection)
            .await?;
            let assignee = assign(connection, lead_id, source_id, &entry.handoff, now).await?;
            Ok(Entered::New { lead_id, assignee })
        }
        Some((lead_id, Some(existing))) if existing == source_id => {
            let mine: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT FROM leads_logs WHERE lead_id = $1
                                AND metadata->>'action' = 'handoff' AND metadata->>'handoff' = $2)",
            )
            .bind(lead_id)
            .bind(&entry.handoff)
            .fetch_one(&mut *connection)
            .await?;
            let assignee = if mine {
                assigned_by(connection, lead_id, &entry.handoff).await?
            } else {
                None
            };
            Ok(Entered::Repeat {
                lead_id,
                mine,
                assignee,
            })
        }
        Some((lead_id, _)) => {
            sqlx::query(
                "INSERT INTO lead_sources_history
                     (lead_id, source_id, external_id, raw_payload, is_primary, received_at)
                 SELECT $1, $2, $3, $4, false, now()
                 WHERE NOT EXISTS (SELECT FROM lead_sources_history
                                   WHERE lead_id = $1 AND source_id = $2 AND external_id = $3)",
            )
            .bind(lead_id)
            .bind(source_id)
            .bind(&entry.external_id)
            .bind(&entry.payload)
            .execute(&mut *connection)
            .await?;
            Ok(Entered::OtherSource { lead_id })
        }
    }
}

/// The `sources` row of a (`display_name`, `source_type`) pair, created when missing as
/// the CRM's pollers create theirs (one creation at a time).
async fn source(
    connection: &mut PgConnection,
    (name, kind): &(String, String),
) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('sources:' || $1 || '/' || $2, 0))")
        .bind(name)
        .bind(kind)
        .execute(&mut *connection)
        .await?;
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM sources WHERE display_name = $1 AND source_type = $2 ORDER BY id LIMIT 1",
    )
    .bind(name)
    .bind(kind)
    .fetch_optional(&mut *connection)
    .await?;
    match found {
        Some(id) => Ok(id),
        None => sqlx::query_scalar(
            "INSERT INTO sources (display_name, source_type, total_leads_count, todays_leads_count)
                 VALUES ($1, $2, 0, 0) RETURNING id",
        )
        .bind(name)
        .bind(kind)
        .fetch_one(&mut *connection)
        .await,
    }
}
