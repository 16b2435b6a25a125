//! The CRM's assignment of a new lead, in the hand-off's transaction: the rules that
//! apply (`domain::crm::assignment`), the rule's pointer held `FOR UPDATE` while it moves, and
//! every row the CRM's own assignment writes.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnection;

use super::Assignee;
use crate::domain::crm::assignment::{self, Member, Rule, RuleType};

/// A rule's columns, as [`rule`] reads them.
const RULE_COLUMNS: &str = r#"
SELECT id::text, source_id, rule_type, priority, active_from::text, active_to::text,
       active_days::int4[], fallback_rule_id::text
FROM assignment_rules"#;

/// A rule's members that may take a lead: active, their user active, in the order they
/// joined.
const MEMBERS: &str = r#"
SELECT m.user_id, m.percentage::float8, coalesce(m.weight, 1)
FROM rule_members m JOIN users u ON u.user_id = m.user_id
WHERE m.rule_id = $1::uuid AND m.is_active AND u.status
ORDER BY m.created_at, m.id"#;

type RuleRow = (
    String,
    Option<i64>,
    String,
    Option<i32>,
    Option<String>,
    Option<String>,
    Option<Vec<i32>>,
    Option<String>,
);

fn rule(row: RuleRow) -> Option<(Rule, Option<String>)> {
    let (id, source_id, kind, priority, from, to, days, fallback) = row;
    Some((
        Rule {
            id,
            source_id,
            rule_type: RuleType::parse(&kind)?,
            priority: priority.unwrap_or(i32::MAX),
            active_from: from.as_deref().and_then(assignment::clock),
            active_to: to.as_deref().and_then(assignment::clock),
            active_days: days,
        },
        fallback,
    ))
}

/// Assigns a new lead by the CRM's rules: the first open rule with a member takes it
/// (a rule without one hands over to its fallback rule when it names one). None: the
/// lead stays unassigned, for a person to assign.
pub(super) async fn assign(
    connection: &mut PgConnection,
    lead_id: i64,
    source_id: i64,
    handoff: &str,
    now: DateTime<Utc>,
) -> Result<Option<Assignee>, sqlx::Error> {
    let rows: Vec<RuleRow> = sqlx::query_as(&format!(
        "{RULE_COLUMNS} WHERE is_active AND (source_id = $1 OR source_id IS NULL)"
    ))
    .bind(source_id)
    .fetch_all(&mut *connection)
    .await?;
    let rules: Vec<(Rule, Option<String>)> = rows.into_iter().filter_map(rule).collect();
    let plain: Vec<Rule> = rules.iter().map(|(rule, _)| rule.clone()).collect();
    for candidate in assignment::candidates(&plain, source_id, now) {
        let mut tried = Vec::new();
        let mut current = Some(candidate.clone());
        // A rule without a member, then its fallback, and the fallback's, never twice.
        while let Some(rule) = current.take() {
            if tried.contains(&rule.id) {
                break;
            }
            tried.push(rule.id.clone());
            if let Some(assignee) = take(connection, lead_id, &rule, &Why::Handoff(handoff)).await?
            {
                return Ok(Some(assignee));
            }
            let fallback = rules
                .iter()
                .find(|(known, _)| known.id == rule.id)
                .and_then(|(_, fallback)| fallback.clone());
            current = match fallback {
                Some(id) => fallback_rule(connection, &id).await?,
                None => None,
            };
        }
    }
    Ok(None)
}

/// A fallback rule by id, when it is active (whatever its source).
async fn fallback_rule(
    connection: &mut PgConnection,
    id: &str,
) -> Result<Option<Rule>, sqlx::Error> {
    let row: Option<RuleRow> =
        sqlx::query_as(&format!("{RULE_COLUMNS} WHERE id = $1::uuid AND is_active"))
            .bind(id)
            .fetch_optional(&mut *connection)
            .await?;
    Ok(row.and_then(rule).map(|(rule, _)| rule))
}

/// Why a lead is given to a member, as its log row says.
#[derive(Debug, Clone, Copy)]
pub(super) enum Why<'a> {
    /// The hand-off's assignment of a new lead.
    Handoff(&'a str),
    /// Nobody touched it in time: it goes to the next member but `from`.
    Untouched {
        handoff: &'a str,
        from: i64,
        /// Which re-assignment this is, from one.
        reassignment: u32,
        waited_secs: u64,
    },
}

/// A rule by id, active or not (a lead's re-assignment stays with the rule that gave it).
pub(super) async fn rule_by_id(
    connection: &mut PgConnection,
    id: &str,
) -> Result<Option<Rule>, sqlx::Error> {
    let row: Option<RuleRow> = sqlx::query_as(&format!("{RULE_COLUMNS} WHERE id::text = $1"))
        .bind(id)
        .fetch_optional(&mut *connection)
        .await?;
    Ok(row.and_then(rule).map(|(rule, _)| rule))
}

/// Every rule, active or not: what a lead's working time is read by.
pub(super) async fn rules(connection: &mut PgConnection) -> Result<Vec<Rule>, sqlx::Error> {
    let rows: Vec<RuleRow> = sqlx::query_as(RULE_COLUMNS)
        .fetch_all(&mut *connection)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(rule)
        .map(|(rule, _)| rule)
        .collect())
}

/// The lead to the member at `rule`'s pointer, the pointer held while it moves; `None`
/// when the rule has no member who may take it.
pub(super) async fn take(
    connection: &mut PgConnection,
    lead_id: i64,
    rule: &Rule,
    why: &Why<'_>,
) -> Result<Option<Assignee>, sqlx::Error> {
    let members: Vec<(i64, Option<f64>, i32)> = sqlx::query_as(MEMBERS)
        .bind(&rule.id)
        .fetch_all(&mut *connection)
        .await?;
    let members: Vec<Member> = members
        .into_iter()
        .map(|(user_id, percentage, weight)| Member {
            user_id,
            percentage,
            weight,
        })
        .collect();
    let mut rotation = assignment::rotation(rule.rule_type, &members);
    if let Why::Untouched { from, .. } = why {
        rotation.retain(|user| user != from);
    }
    if rotation.is_empty() {
        return Ok(None);
    }
    // The pointer's row may not exist yet: its creation is serialised as its update is.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('assignment_pointers:' || $1, 0))")
        .bind(&rule.id)
        .execute(&mut *connection)
        .await?;
    let index: Option<i32> = sqlx::query_scalar(
        "SELECT current_index FROM assignment_pointers WHERE rule_id = $1::uuid FOR UPDATE",
    )
    .bind(&rule.id)
    .fetch_optional(&mut *connection)
    .await?;
    let Some((user_id, next)) = assignment::pick(&rotation, i64::from(index.unwrap_or(0))) else {
        return Ok(None);
    };
    if index.is_some() {
        sqlx::query(
            "UPDATE assignment_pointers
             SET current_index = $2, last_assigned_user_id = $3,
                 total_assignments = coalesce(total_assignments, 0) + 1, updated_at = now()
             WHERE rule_id = $1::uuid",
        )
        .bind(&rule.id)
        .bind(next as i32)
        .bind(user_id)
        .execute(&mut *connection)
        .await?;
    } else {
        sqlx::query(
            "INSERT INTO assignment_pointers
                 (rule_id, current_index, last_assigned_user_id, total_assignments, updated_at)
             VALUES ($1::uuid, $2, $3, 1, now())",
        )
        .bind(&rule.id)
        .bind(next as i32)
        .bind(user_id)
        .execute(&mut *connection)
        .await?;
    }
    sqlx::query("UPDATE leads_master SET assigned_to = $2, assigned_at = now(), updated_at = now() WHERE id = $1")
        .bind(lead_id)
        .bind(user_id)
        .execute(&mut *connection)
        .await?;
    let (remarks, metadata) = match *why {
        Why::Handoff(handoff) => (
            "Assigned automatically".to_owned(),
            serde_json::json!({
                "action": "auto_assignment", "ruleId": rule.id,
                "ruleType": rule.rule_type.as_str(), "handoff": handoff,
            }),
        ),
        Why::Untouched {
            handoff,
            from,
            reassignment,
            waited_secs,
        } => (
            format!(
                "Re-assigned automatically: untouched for {} min",
                waited_secs / 60
            ),
            serde_json::json!({
                "action": "sla_reassignment", "ruleId": rule.id,
                "ruleType": rule.rule_type.as_str(), "handoff": handoff, "from": from,
                "to": user_id, "reassignment": reassignment, "waitedSeconds": waited_secs,
            }),
        ),
    };
    sqlx::query(
        "INSERT INTO leads_logs
             (lead_id, old_status, new_status, remarks, attempt_no, created_by, metadata, created_at)
         VALUES ($1, 'New', 'Assigned', $2, 0, NULL, $3, now())",
    )
    .bind(lead_id)
    .bind(remarks)
    .bind(metadata)
    .execute(&mut *connection)
    .await?;
    sqlx::query(
        "UPDATE rule_members SET assigned_count = coalesce(assigned_count, 0) + 1, last_assigned_at = now()
         WHERE rule_id = $1::uuid AND user_id = $2",
    )
    .bind(&rule.id)
    .bind(user_id)
    .execute(&mut *connection)
    .await?;
    let (full_name, phone_number): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT full_name, phone_number FROM users WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&mut *connection)
            .await?;
    Ok(Some(Assignee {
        user_id,
        full_name,
        phone_number,
        rule_id: rule.id.clone(),
        rule_type: rule.rule_type.as_str().to_owned(),
    }))
}

/// Who this hand-off assigned the lead to, when it did (its log row names the hand-off).
pub(super) async fn assigned_by(
    connection: &mut PgConnection,
    lead_id: i64,
    handoff: &str,
) -> Result<Option<Assignee>, sqlx::Error> {
    type AssigneeRow = (i64, Option<String>, Option<String>, String, String);
    let row: Option<AssigneeRow> = sqlx::query_as(
        "SELECT u.user_id, u.full_name, u.phone_number, l.metadata->>'ruleId', l.metadata->>'ruleType'
         FROM leads_logs l
         JOIN leads_master m ON m.id = l.lead_id
         JOIN users u ON u.user_id = m.assigned_to
         WHERE l.lead_id = $1 AND l.metadata->>'action' = 'auto_assignment'
           AND l.metadata->>'handoff' = $2
         ORDER BY l.id DESC LIMIT 1",
    )
    .bind(lead_id)
    .bind(handoff)
    .fetch_optional(&mut *connection)
    .await?;
    Ok(row.map(
        |(user_id, full_name, phone_number, rule_id, rule_type)| Assignee {
            user_id,
            full_name,
            phone_number,
            rule_id,
            rule_type,
        },
    ))
}
