//! After the run: what the table holds against what the answers promised.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::plan::{Plan, PARTNERS};
use crate::send::Outcome;

/// A row of the run, read back.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: String,
    pub platform: String,
    pub phone_number: String,
}

pub struct Table {
    pool: PgPool,
}

impl Table {
    pub async fn connect(url: &str) -> Result<Self, String> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .map_err(|error| format!("cannot connect to DATABASE_URL: {error}"))?;
        Ok(Self { pool })
    }

    pub async fn server_version(&self) -> Result<String, String> {
        sqlx::query_scalar("SHOW server_version")
            .fetch_one(&self.pool)
            .await
            .map_err(|error| format!("cannot read the server version: {error}"))
    }

    /// Every row of the table, the run's or not.
    pub async fn count(&self) -> Result<i64, String> {
        sqlx::query_scalar(r#"SELECT count(*) FROM public."mg-digital-leads""#)
            .fetch_one(&self.pool)
            .await
            .map_err(|error| format!("cannot count the leads: {error}"))
    }

    /// The rows whose `campaign` is the run's tag.
    pub async fn rows_tagged(&self, tag: &str) -> Result<Vec<Row>, String> {
        let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
            r#"SELECT id::text, platform, phone_number FROM public."mg-digital-leads"
               WHERE campaign = $1"#,
        )
        .bind(tag)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| format!("cannot read the run's leads: {error}"))?;
        Ok(rows
            .into_iter()
            .map(|(id, platform, phone_number)| Row {
                id,
                platform: platform.unwrap_or_default(),
                phone_number: phone_number.unwrap_or_default(),
            })
            .collect())
    }
}

/// The table against the answers, per partner (and in total).
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Verdict {
    /// Distinct leads that got at least one 201, 200 or 202: each must be one row.
    pub rows_expected: usize,
    /// Rows of the run that belong to an expected lead.
    pub rows_found: usize,
    /// Extra rows for a lead already stored (the count that must be 0).
    pub duplicates_found: usize,
    /// Accepted leads with no row.
    pub missing: usize,
    /// Rows of the run for no accepted lead, or rows added outside the run's tag.
    pub unexpected_rows: usize,
    /// Leads answered 201 more than once.
    pub created_twice: usize,
    /// 201s and 200s whose id is not the id of the lead's row.
    pub wrong_ids: usize,
    /// 200s whose message is not "Duplicate ignored".
    pub wrong_messages: usize,
}

impl Verdict {
    pub fn add(&mut self, other: &Verdict) {
        self.rows_expected += other.rows_expected;
        self.rows_found += other.rows_found;
        self.duplicates_found += other.duplicates_found;
        self.missing += other.missing;
        self.unexpected_rows += other.unexpected_rows;
        self.created_twice += other.created_twice;
        self.wrong_ids += other.wrong_ids;
        self.wrong_messages += other.wrong_messages;
    }

    pub fn passed(&self) -> bool {
        self.rows_found == self.rows_expected
            && self.duplicates_found == 0
            && self.missing == 0
            && self.unexpected_rows == 0
            && self.created_twice == 0
            && self.wrong_ids == 0
            && self.wrong_messages == 0
    }
}

pub const DUPLICATE_MESSAGE: &str = "Duplicate ignored";

/// Compares, per partner: every accepted lead is exactly one row, each 201/200 names that
/// row, a lead is created once, and the run added nothing else (`rows_added` is the
/// table's growth during the run, whatever its tag).
pub fn verify(plan: &Plan, outcomes: &[Outcome], rows: &[Row], rows_added: i64) -> Vec<Verdict> {
    let mut verdicts = vec![Verdict::default(); PARTNERS.len()];
    // Per lead: accepted at all, 201 count, ids answered.
    let mut accepted = vec![false; plan.leads.len()];
    let mut created = vec![0usize; plan.leads.len()];
    let mut answered_ids: Vec<Vec<&str>> = vec![Vec::new(); plan.leads.len()];
    for (request, outcome) in plan.requests.iter().zip(outcomes) {
        let verdict = &mut verdicts[request.partner];
        match outcome.status {
            Some(201) => created[request.lead] += 1,
            Some(200) if outcome.message.as_deref() != Some(DUPLICATE_MESSAGE) => {
                verdict.wrong_messages += 1
            }
            _ => {}
        }
        if matches!(outcome.status, Some(200..=202)) {
            accepted[request.lead] = true;
        }
        if matches!(outcome.status, Some(200 | 201)) {
            answered_ids[request.lead].push(outcome.id.as_deref().unwrap_or(""));
        }
    }

    let by_phone: HashMap<(&str, &str), usize> = plan
        .leads
        .iter()
        .enumerate()
        .map(|(index, lead)| {
            (
                (PARTNERS[lead.partner].platform, lead.phone.as_str()),
                index,
            )
        })
        .collect();
    let mut stored: Vec<Vec<&str>> = vec![Vec::new(); plan.leads.len()];
    let mut tagged_elsewhere = 0usize;
    for row in rows {
        match by_phone.get(&(row.platform.as_str(), row.phone_number.as_str())) {
            Some(&lead) => stored[lead].push(&row.id),
            None => {
                let partner = PARTNERS.iter().position(|p| p.platform == row.platform);
                match partner {
                    Some(partner) => verdicts[partner].unexpected_rows += 1,
                    None => tagged_elsewhere += 1,
                }
            }
        }
    }

    for (index, lead) in plan.leads.iter().enumerate() {
        let verdict = &mut verdicts[lead.partner];
        let ids = &stored[index];
        if accepted[index] {
            verdict.rows_expected += 1;
            match ids.len() {
                0 => verdict.missing += 1,
                n => {
                    verdict.rows_found += 1;
                    verdict.duplicates_found += n - 1;
                }
            }
        } else {
            // Never accepted (every copy failed): a row for it is one nobody was told of.
            verdict.unexpected_rows += ids.len();
        }
        if created[index] > 1 {
            verdict.created_twice += 1;
        }
        let row_id = ids.first().copied();
        verdict.wrong_ids += answered_ids[index]
            .iter()
            .filter(|id| Some(**id) != row_id)
            .count();
    }

    // Rows the run added that carry no tag of it (or another platform): extra all the same.
    let tagged = rows.len() as i64;
    let untagged = (rows_added - tagged).max(0) as usize + tagged_elsewhere;
    verdicts[0].unexpected_rows += untagged;
    verdicts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{build, Settings};
    use std::time::Duration;

    fn plan() -> Plan {
        build(&Settings {
            duration: Duration::from_secs(5),
            soft_limit_per_minute: 120.0,
            multiplier: 10.0,
            repeat_fraction: 0.3,
            seed: 3,
            tag: "t".into(),
        })
    }

    /// What a correct server answers, and the rows it leaves.
    fn correct(plan: &Plan) -> (Vec<Outcome>, Vec<Row>) {
        let mut seen = HashMap::new();
        let outcomes = plan
            .requests
            .iter()
            .map(|request| {
                let next = seen.len() + 1;
                let (status, message) = if seen.contains_key(&request.lead) {
                    (200, DUPLICATE_MESSAGE.to_owned())
                } else {
                    (201, "inserted".to_owned())
                };
                let id = *seen.entry(request.lead).or_insert(next);
                Outcome {
                    status: Some(status),
                    id: Some(id.to_string()),
                    message: Some(message),
                    latency: Duration::ZERO,
                    start_lag: Duration::ZERO,
                    started: request.at,
                    error: None,
                }
            })
            .collect();
        let rows = seen
            .iter()
            .map(|(&lead, id)| Row {
                id: id.to_string(),
                platform: PARTNERS[plan.leads[lead].partner].platform.to_owned(),
                phone_number: plan.leads[lead].phone.clone(),
            })
            .collect();
        (outcomes, rows)
    }

    fn total(verdicts: &[Verdict]) -> Verdict {
        let mut total = Verdict::default();
        verdicts.iter().for_each(|v| total.add(v));
        total
    }

    #[test]
    fn a_correct_run_passes() {
        let plan = plan();
        let (outcomes, rows) = correct(&plan);
        let total = total(&verify(&plan, &outcomes, &rows, rows.len() as i64));
        assert!(total.passed(), "{total:?}");
        assert_eq!(total.rows_expected, plan.leads.len());
    }

    #[test]
    fn a_lead_stored_twice_fails() {
        let plan = plan();
        let (outcomes, mut rows) = correct(&plan);
        let mut copy = rows[0].clone();
        copy.id = "999999".into();
        rows.push(copy);
        let total = total(&verify(&plan, &outcomes, &rows, rows.len() as i64));
        assert_eq!(total.duplicates_found, 1);
        assert!(!total.passed());
    }

    #[test]
    fn a_missing_row_a_wrong_id_and_an_untagged_row_fail() {
        let plan = plan();
        let (mut outcomes, mut rows) = correct(&plan);
        rows.pop();
        let verdict = total(&verify(&plan, &outcomes, &rows, rows.len() as i64));
        assert_eq!(verdict.missing, 1);

        let (_, rows) = correct(&plan);
        let repeat = plan.requests.iter().position(|r| r.attempt > 0).unwrap();
        outcomes[repeat].id = Some("0".into());
        let verdict = total(&verify(&plan, &outcomes, &rows, rows.len() as i64 + 1));
        assert_eq!(verdict.wrong_ids, 1);
        assert_eq!(verdict.unexpected_rows, 1);
        assert!(!verdict.passed());
    }

    #[test]
    fn two_creations_of_one_lead_fail() {
        let plan = plan();
        let (mut outcomes, rows) = correct(&plan);
        let repeat = plan.requests.iter().position(|r| r.attempt > 0).unwrap();
        outcomes[repeat].status = Some(201);
        let verdict = total(&verify(&plan, &outcomes, &rows, rows.len() as i64));
        assert_eq!(verdict.created_twice, 1);
        assert!(!verdict.passed());
    }
}
