//! Speed to lead: each run looks at the leads the hand-off assigned lately and escalates
//! those nobody touched, by the working time of the rule that assigned them
//! (`domain::crm::sla`): a reminder to the salesperson, then the next member of the rule, the
//! team leads told; after the last re-assignment the team leads are told nobody took it.
//! A first touch is measured once.
//!
//! Once per step, however runs overlap: a re-assignment is the CRM's own record (its
//! timeline, moved under the lead's row lock, see `infra::crm::sla`); every text is the
//! ledger of notices' (claim, send, mark), one channel per step and person, so a run
//! that stopped between a re-assignment and its texts leaves them owed, and the next run
//! sends them.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::crm;
use crate::domain::crm::assignment::Rule;
use crate::domain::crm::sla::{self, fill, minutes, Step, Thresholds, Wording};
use crate::error::{ConfigError, CrmError};
use crate::infra::config::sla::SlaConfig;
use crate::infra::crm::sla::{self as crm_sla, Assigned, Moved, Person};
use crate::infra::metrics;
use crate::infra::store::notices;
use crate::pipeline::crm::{sms_lead, Handoff};

/// How far back a run looks: an assignment older than this is no longer escalated (a
/// rule closed over a long weekend still fits).
pub const WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// A first touch older than this when first seen is not measured (a run that was off).
pub const FIRST_TOUCH_WITHIN: Duration = Duration::from_secs(3600);
/// The ledger's mark of a measured first touch.
pub const FIRST_TOUCH: &str = "first-touch";

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub assigned: usize,
    pub untouched: usize,
    pub reminded: usize,
    pub reassigned: usize,
    pub gave_up: usize,
    /// Texts sent this run (reminders, new salespeople, team leads).
    pub texts: usize,
    pub first_touches: usize,
    /// Leads another run or a person changed meanwhile: left alone.
    pub stale: usize,
    /// Leads whose step failed (logged): tried again next run.
    pub failed: usize,
}

/// Speed to lead's state, built once per container: the hand-off's databases and texts.
#[derive(Debug)]
pub struct Sla {
    handoff: Handoff,
    thresholds: Thresholds,
    wording: Wording,
}

impl Report {
    /// Whether the run only looked: nothing sent, moved, measured or failed.
    pub fn is_idle(&self) -> bool {
        *self
            == Report {
                assigned: self.assigned,
                untouched: self.untouched,
                ..Report::default()
            }
    }
}

impl Sla {
    pub fn new(handoff: Handoff, thresholds: Thresholds, wording: Wording) -> Self {
        Self {
            handoff,
            thresholds,
            wording,
        }
    }

    /// Speed to lead as the environment configures it: the hand-off's databases and
    /// texts (`Handoff::from_env`), the thresholds and wording (`SlaConfig`).
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = SlaConfig::from_env()?;
        let handoff = Handoff::from_env().await?;
        Ok(Self::new(handoff, config.thresholds, config.wording))
    }

    /// One run now.
    pub async fn run_now(&self) -> Result<Report, CrmError> {
        self.run(crate::pipeline::crm::clock()).await
    }

    /// One run at `now`.
    pub async fn run(&self, now: DateTime<Utc>) -> Result<Report, CrmError> {
        let since = now - chrono::Duration::from_std(WINDOW).unwrap_or_default();
        let crm = self.handoff.crm();
        let (leads, rules, team_leads) = crm_sla::scan(&crm.store, since).await?;
        let ours = self.handoff.leads().store();
        let ids = leads.iter().map(|lead| lead.handoff.clone()).collect();
        let sent = notices::sent_among(ours, ids).await?;
        let mut report = Report {
            assigned: leads.len(),
            ..Report::default()
        };
        self.measure_first_touches(&leads, now, &mut report).await?;
        for lead in leads.iter().filter(|lead| lead.touched_at.is_none()) {
            report.untouched += 1;
            let rule = rules.iter().find(|rule| rule.id == lead.rule_id);
            if let Err(error) = self
                .escalate(lead, rule, &team_leads, &sent, now, &mut report)
                .await
            {
                report.failed += 1;
                tracing::error!(source = "crm-sla", outcome = "failed", crm_lead = lead.lead_id, error = %error, "escalation failed; the next run tries again");
            }
        }
        Ok(report)
    }

    async fn measure_first_touches(
        &self,
        leads: &[Assigned],
        now: DateTime<Utc>,
        report: &mut Report,
    ) -> Result<(), CrmError> {
        let recent = now - chrono::Duration::from_std(FIRST_TOUCH_WITHIN).unwrap_or_default();
        let touched: Vec<&Assigned> = leads
            .iter()
            .filter(|lead| lead.touched_at.is_some_and(|at| at >= recent))
            .collect();
        if touched.is_empty() {
            return Ok(());
        }
        let ids = touched.iter().map(|lead| lead.handoff.clone()).collect();
        let ours = self.handoff.leads();
        let recorded: HashSet<String> = notices::record_once(ours.store(), ids, FIRST_TOUCH)
            .await?
            .into_iter()
            .collect();
        for lead in touched
            .into_iter()
            .filter(|lead| recorded.contains(&lead.handoff))
        {
            let Some(stored) = ours.lead(&lead.handoff).await? else {
                continue;
            };
            let at_ms = lead.touched_at.unwrap_or(now).timestamp_millis();
            metrics::emit(
                metrics::STORED_TO_FIRST_TOUCH,
                (at_ms - stored.created_at_ms) as f64,
                &stored.platform,
                lead.assigned_to,
                at_ms,
            );
            report.first_touches += 1;
        }
        Ok(())
    }

    /// The texts a lead is owed, then the step its wait makes due.
    async fn escalate(
        &self,
        lead: &Assigned,
        rule: Option<&Rule>,
        team_leads: &[Person],
        sent: &HashSet<(String, String)>,
        now: DateTime<Utc>,
        report: &mut Report,
    ) -> Result<(), CrmError> {
        let is_sent = |channel: &str| sent.contains(&(lead.handoff.clone(), channel.to_owned()));
        let n = lead.reassigned;
        if n > 0 {
            // A re-assignment's texts, owed when the run that made it stopped before them.
            let owed = !is_sent(&text_channel(n))
                || team_leads
                    .iter()
                    .any(|tl| !is_sent(&reassigned_channel(n, tl.user_id)));
            if owed {
                let to = Person {
                    user_id: lead.assigned_to,
                    full_name: lead.cre_name.clone(),
                    phone_number: lead.cre_phone.clone(),
                };
                let waited =
                    Duration::from_secs(lead.previous_waited_secs.unwrap_or(0).max(0) as u64);
                let from = lead.previous_name.clone().unwrap_or_default();
                report.texts += self
                    .tell_reassigned(lead, n, &from, &to, waited, team_leads)
                    .await?;
            }
        }
        // A rule deleted since runs on the clock.
        let always = Rule::always();
        let waited = sla::waited(rule.unwrap_or(&always), lead.assigned_at, now);
        let reminded = is_sent(&reminder_channel(n));
        match sla::due(&self.thresholds, waited, n, reminded) {
            None => {}
            Some(Step::Remind) => {
                let sent = usize::from(self.remind(lead, waited).await?);
                report.reminded += sent;
                report.texts += sent;
            }
            Some(Step::Reassign(next)) => {
                match crm_sla::reassign(&self.handoff.crm().store, lead, waited.as_secs()).await? {
                    Moved::To(to) => {
                        report.reassigned += 1;
                        let from = lead.cre_name.clone().unwrap_or_default();
                        let to = Person::from(&to);
                        report.texts += self
                            .tell_reassigned(lead, next, &from, &to, waited, team_leads)
                            .await?;
                    }
                    Moved::Nobody => {
                        report.texts += self.give_up(lead, team_leads, sent).await?;
                        report.gave_up += 1;
                    }
                    Moved::Stale => report.stale += 1,
                }
            }
            Some(Step::GiveUp) => {
                let told = self.give_up(lead, team_leads, sent).await?;
                if told > 0 {
                    report.gave_up += 1;
                    report.texts += told;
                }
            }
        }
        Ok(())
    }

    /// The salesperson's reminder of this assignment: whether it was sent now.
    async fn remind(&self, lead: &Assigned, waited: Duration) -> Result<bool, CrmError> {
        let Some(number) = lead.cre_phone.as_deref().and_then(crm::cre_number) else {
            return Ok(false);
        };
        let Some(stored) = self.handoff.leads().lead(&lead.handoff).await? else {
            return Ok(false);
        };
        let text = fill(
            &crm::sms_text(&self.wording.reminder, &sms_lead(&stored)),
            &[("minutes", &minutes(waited))],
        );
        self.handoff
            .text_once(
                &lead.handoff,
                &reminder_channel(lead.reassigned),
                &number,
                &text,
                self.wording.template_ids[0].as_deref(),
            )
            .await
    }

    /// The new salesperson's text (as the hand-off's) and each team lead's word of the
    /// `n`th re-assignment; the texts sent now.
    async fn tell_reassigned(
        &self,
        lead: &Assigned,
        n: u32,
        from: &str,
        to: &Person,
        waited: Duration,
        team_leads: &[Person],
    ) -> Result<usize, CrmError> {
        let Some(stored) = self.handoff.leads().lead(&lead.handoff).await? else {
            return Ok(0);
        };
        let mut texts = 0;
        if let Some(number) = to.phone_number.as_deref().and_then(crm::cre_number) {
            let text = crm::sms_text(&self.handoff.crm().template, &sms_lead(&stored));
            texts += usize::from(
                self.handoff
                    .text_once(&lead.handoff, &text_channel(n), &number, &text, None)
                    .await?,
            );
        }
        let crm_lead = lead.lead_id.to_string();
        let waited = minutes(waited);
        let text = fill(
            &self.wording.reassigned,
            &[
                ("lead", &crm_lead),
                ("name", stored.name.as_deref().unwrap_or_default()),
                ("source", &stored.platform),
                ("from", from),
                ("minutes", &waited),
                ("to", to.full_name.as_deref().unwrap_or_default()),
            ],
        );
        let template = self.wording.template_ids[1].as_deref();
        let told = team_leads
            .iter()
            .map(|tl| (tl, reassigned_channel(n, tl.user_id)));
        Ok(texts + self.tell(lead, told, &text, template).await?)
    }

    /// Each team lead's word that nobody took the lead, once; the texts sent now.
    async fn give_up(
        &self,
        lead: &Assigned,
        team_leads: &[Person],
        sent: &HashSet<(String, String)>,
    ) -> Result<usize, CrmError> {
        let owed: Vec<&Person> = team_leads
            .iter()
            .filter(|tl| !sent.contains(&(lead.handoff.clone(), gave_up_channel(tl.user_id))))
            .collect();
        if owed.is_empty() {
            return Ok(0);
        }
        let Some(stored) = self.handoff.leads().lead(&lead.handoff).await? else {
            return Ok(0);
        };
        let (crm_lead, count) = (lead.lead_id.to_string(), lead.reassigned.to_string());
        let text = fill(
            &self.wording.gave_up,
            &[
                ("lead", &crm_lead),
                ("name", stored.name.as_deref().unwrap_or_default()),
                ("source", &stored.platform),
                ("cre", lead.cre_name.as_deref().unwrap_or_default()),
                ("count", &count),
            ],
        );
        let template = self.wording.template_ids[2].as_deref();
        let told = owed.into_iter().map(|tl| (tl, gave_up_channel(tl.user_id)));
        self.tell(lead, told, &text, template).await
    }

    /// `text` to each team lead with a usable number, once on their channel; the texts
    /// sent now.
    async fn tell(
        &self,
        lead: &Assigned,
        team_leads: impl Iterator<Item = (&Person, String)>,
        text: &str,
        template: Option<&str>,
    ) -> Result<usize, CrmError> {
        let mut texts = 0;
        for (tl, channel) in team_leads {
            let Some(number) = tl.phone_number.as_deref().and_then(crm::cre_number) else {
                continue;
            };
            texts += usize::from(
                self.handoff
                    .text_once(&lead.handoff, &channel, &number, text, template)
                    .await?,
            );
        }
        Ok(texts)
    }
}

/// The ledger's channels, one per step and person: the `n`th assignment's reminder, its
/// salesperson's text (the hand-off's own for the first), a team lead's word of it, a
/// team lead's word that nobody took the lead.
fn reminder_channel(n: u32) -> String {
    format!("sla-reminder:{n}")
}
fn text_channel(n: u32) -> String {
    format!("cre-sms:{n}")
}
fn reassigned_channel(n: u32, team_lead: i64) -> String {
    format!("sla-reassigned:{n}:{team_lead}")
}
fn gave_up_channel(team_lead: i64) -> String {
    format!("sla-gave-up:{team_lead}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_that_only_looked_is_idle() {
        let looked = Report {
            assigned: 40,
            untouched: 3,
            ..Report::default()
        };
        assert!(looked.is_idle());
        for acted in [
            Report {
                reminded: 1,
                texts: 1,
                ..looked.clone()
            },
            Report {
                stale: 1,
                ..looked.clone()
            },
            Report {
                failed: 1,
                ..looked.clone()
            },
            Report {
                first_touches: 1,
                ..looked.clone()
            },
        ] {
            assert!(!acted.is_idle(), "{acted:?}");
        }
    }
}
