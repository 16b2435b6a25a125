//! Speed to lead, in the CRM's database: the leads the hand-off assigned lately, each
//! with whether a person has touched it, and the re-assignment of one nobody touched.
//!
//! A re-assignment is recorded where the CRM shows it, in the lead's `leads_logs`
//! (`metadata.action = sla_reassignment`), in the same transaction as the move; the lead's
//! row is held `FOR UPDATE` and its state compared with what the scan saw, so of two runs
//! at once one moves it and the other finds it moved, and a touch meanwhile stops it.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnection;

use super::assign::{self, take, Why};
use super::{Assignee, LOCK_TIMEOUT_MS};
use crate::domain::crm::assignment::Rule;
use crate::error::StoreError;
use crate::infra::store::{classify, Store};

/// The leads the hand-off assigned (its `auto_assignment` row names it) and whose current
/// assignment is since `$1`: who has each, since when, by which rule, how often it was
/// re-assigned and from whom last, and when a person first touched it (its status or
/// attempts moved, or a user wrote in its timeline). One pass over `leads_master` by
/// `assigned_at` and the timeline by `lead_id` (docs/crm.md names the two indexes).
const SCAN: &str = r#"
SELECT m.id, a.metadata->>'handoff', m.assigned_to, (extract(epoch FROM m.assigned_at) * 1000000)::int8,
       (extract(epoch FROM a.created_at) * 1000000)::int8,
       a.metadata->>'ruleId', coalesce(r.n, 0)::int4,
       CASE WHEN m.status IS DISTINCT FROM 'New' OR coalesce(m.total_attempts, 0) > 0
                 OR t.first IS NOT NULL
            THEN (extract(epoch FROM coalesce(t.first, m.updated_at, now())) * 1000000)::int8 END,
       u.full_name, u.phone_number, f.full_name, (r.last->>'waitedSeconds')::int8
FROM leads_master m
JOIN LATERAL (SELECT l.metadata, l.created_at FROM leads_logs l
              WHERE l.lead_id = m.id AND l.metadata->>'action' = 'auto_assignment'
                AND l.metadata ? 'handoff'
              ORDER BY l.id LIMIT 1) a ON true
LEFT JOIN LATERAL (SELECT count(*) AS n, (array_agg(l.metadata ORDER BY l.id DESC))[1] AS last
                   FROM leads_logs l
                   WHERE l.lead_id = m.id AND l.metadata->>'action' = 'sla_reassignment') r ON true
LEFT JOIN LATERAL (SELECT min(l.created_at) AS first FROM leads_logs l
                   WHERE l.lead_id = m.id AND l.created_by IS NOT NULL
                     AND l.created_at >= a.created_at) t ON true
LEFT JOIN users u ON u.user_id = m.assigned_to
LEFT JOIN users f ON f.user_id = (r.last->>'from')::int8
WHERE m.assigned_at >= to_timestamp($1::int8 / 1000000.0) AND m.assigned_to IS NOT NULL"#;

/// The lead as the scan saw it, held for its re-assignment: still that person's since
/// that instant, re-assigned as often, untouched.
const HOLD: &str = r#"
SELECT m.assigned_to = $2 AND (extract(epoch FROM m.assigned_at) * 1000000)::int8 = $3 AND m.status = 'New'
       AND coalesce(m.total_attempts, 0) = 0
       AND NOT EXISTS (SELECT FROM leads_logs l WHERE l.lead_id = m.id
                       AND l.created_by IS NOT NULL AND l.created_at >= m.assigned_at)
       AND (SELECT count(*) FROM leads_logs l WHERE l.lead_id = m.id
            AND l.metadata->>'action' = 'sla_reassignment') = $4
FROM leads_master m WHERE m.id = $1 FOR UPDATE OF m"#;

/// The CRM's active team leads (`CRE_TL`), who are told of escalations.
const TEAM_LEADS: &str = r#"
SELECT user_id, full_name, phone_number FROM users
WHERE role = 'CRE_TL' AND status ORDER BY user_id"#;

/// A lead the hand-off assigned, as the scan found it.
#[derive(Debug, Clone, PartialEq)]
pub struct Assigned {
    /// The CRM's id of the lead.
    pub lead_id: i64,
    /// Our lead's id (the hand-off's).
    pub handoff: String,
    /// Who has it now, since when.
    pub assigned_to: i64,
    pub assigned_at: DateTime<Utc>,
    /// When the hand-off assigned it.
    pub handed_off_at: DateTime<Utc>,
    /// `assigned_at` as the CRM holds it (Unix microseconds): what a re-assignment compares.
    pub assigned_at_us: i64,
    pub rule_id: String,
    /// How often it was re-assigned for being untouched.
    pub reassigned: u32,
    /// When a person first touched it; `None`: untouched.
    pub touched_at: Option<DateTime<Utc>>,
    /// Who has it: name and number as typed in the CRM.
    pub cre_name: Option<String>,
    pub cre_phone: Option<String>,
    /// The last re-assignment's: who had it, how long it waited with them.
    pub previous_name: Option<String>,
    pub previous_waited_secs: Option<i64>,
}

/// A person the CRM names: id, name, number as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub user_id: i64,
    pub full_name: Option<String>,
    pub phone_number: Option<String>,
}

impl From<&Assignee> for Person {
    fn from(assignee: &Assignee) -> Self {
        Self {
            user_id: assignee.user_id,
            full_name: assignee.full_name.clone(),
            phone_number: assignee.phone_number.clone(),
        }
    }
}

/// What a re-assignment found.
#[derive(Debug, Clone, PartialEq)]
pub enum Moved {
    /// Gone to the next member.
    To(Assignee),
    /// Its rule has nobody else who may take it: it stays.
    Nobody,
    /// Not as the scan saw it (touched, or moved by another run): nothing done.
    Stale,
}

/// The leads whose current assignment is since `since`, with the rules (active or not)
/// their working time is read by, and the team leads.
pub async fn scan(
    store: &Store,
    since: DateTime<Utc>,
) -> Result<(Vec<Assigned>, Vec<Rule>, Vec<Person>), StoreError> {
    store
        .with_connection(move |connection| {
            Box::pin(async move {
                let leads = assigned(connection, since).await.map_err(classify)?;
                let rules = assign::rules(connection).await.map_err(classify)?;
                let leads_of_teams: Vec<(i64, Option<String>, Option<String>)> =
                    sqlx::query_as(TEAM_LEADS)
                        .fetch_all(&mut *connection)
                        .await
                        .map_err(classify)?;
                let team_leads = leads_of_teams
                    .into_iter()
                    .map(|(user_id, full_name, phone_number)| Person {
                        user_id,
                        full_name,
                        phone_number,
                    })
                    .collect();
                Ok((leads, rules, team_leads))
            })
        })
        .await
}

async fn assigned(
    connection: &mut PgConnection,
    since: DateTime<Utc>,
) -> Result<Vec<Assigned>, sqlx::Error> {
    type Row = (
        i64,
        String,
        i64,
        i64,
        i64,
        Option<String>,
        i32,
        Option<i64>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<i64>,
    );
    let rows: Vec<Row> = sqlx::query_as(SCAN)
        .bind(since.timestamp_micros())
        .fetch_all(&mut *connection)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| Assigned {
            lead_id: row.0,
            handoff: row.1,
            assigned_to: row.2,
            assigned_at: at(row.3),
            handed_off_at: at(row.4),
            assigned_at_us: row.3,
            rule_id: row.5.unwrap_or_default(),
            reassigned: u32::try_from(row.6).unwrap_or(0),
            touched_at: row.7.map(at),
            cre_name: row.8,
            cre_phone: row.9,
            previous_name: row.10,
            previous_waited_secs: row.11,
        })
        .collect())
}

fn at(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// Re-assigns `lead` to the next member of its rule but the one who has it, when it is
/// still as the scan saw it; the re-assignment recorded in its timeline.
pub async fn reassign(
    store: &Store,
    lead: &Assigned,
    waited_secs: u64,
) -> Result<Moved, StoreError> {
    let lead = lead.clone();
    store
        .in_transaction(move |connection| {
            Box::pin(async move { reassign_within(connection, &lead, waited_secs).await })
        })
        .await
}

async fn reassign_within(
    connection: &mut PgConnection,
    lead: &Assigned,
    waited_secs: u64,
) -> Result<Moved, sqlx::Error> {
    sqlx::query(&format!("SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}"))
        .execute(&mut *connection)
        .await?;
    let held: Option<bool> = sqlx::query_scalar(HOLD)
        .bind(lead.lead_id)
        .bind(lead.assigned_to)
        .bind(lead.assigned_at_us)
        .bind(i64::from(lead.reassigned))
        .fetch_optional(&mut *connection)
        .await?;
    if held != Some(true) {
        return Ok(Moved::Stale);
    }
    let Some(rule) = assign::rule_by_id(connection, &lead.rule_id).await? else {
        return Ok(Moved::Nobody);
    };
    let why = Why::Untouched {
        handoff: &lead.handoff,
        from: lead.assigned_to,
        reassignment: lead.reassigned + 1,
        waited_secs,
    };
    Ok(match take(connection, lead.lead_id, &rule, &why).await? {
        Some(assignee) => Moved::To(assignee),
        None => Moved::Nobody,
    })
}
