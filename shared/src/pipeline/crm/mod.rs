//! The CRM hand-off (docs/crm.md): each non-test `Lead stored` event, taken from the
//! hand-off's queue, enters the group's CRM by its three cases; a new lead is assigned
//! by the CRM's rules and its salesperson texted once, after the CRM's commit.
//!
//! At least once, never twice for a person: a repeat of the event finds its lead in the
//! CRM (the same source: nothing) and, if this hand-off assigned it, the ledger of
//! notices says whether the text went, so a crash between the commit and the text ends
//! with the text sent on the retry, and a text sent is never sent again.

pub mod sla;

use std::time::Instant;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};

use crate::domain::crm::{self, SmsLead};
use crate::domain::mask;
use crate::error::{ConfigError, CrmError};
use crate::infra::aws::topic::Topic;
use crate::infra::config::crm::HandoffConfig;
use crate::infra::crm::{self as crm_db, Assignee, Crm, Entered, Entry};
use crate::infra::metrics;
use crate::infra::parts::Parts;
use crate::infra::store::notices::{self, Claim};
use crate::infra::store::reader::{Reader, StoredLead};
use crate::infra::store::Store;

/// The ledger's channel of a salesperson's text of a lead.
pub const TEXT: &str = "cre-sms";
/// The ledger's channel of the sales desk's word that a lead found nobody.
pub const UNASSIGNED: &str = "desk-unassigned";

/// The most leads a backfill reads at once.
pub const BACKFILL_PAGE: i64 = 100;

/// The leads a backfill hands off: those that arrived from `from_ms` until `until_ms`
/// (Unix milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from_ms: i64,
    pub until_ms: i64,
}

/// What a backfill did, to carry on from `last`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Backfilled {
    /// Leads handed off (a repeat counts: it changed nothing).
    pub handed_off: usize,
    /// Leads the CRM cannot take, logged with the reason.
    pub refused: usize,
    /// The last lead gone through: the next pass starts after it.
    pub last: Option<String>,
    /// Whether the span is gone through whole.
    pub done: bool,
}

/// The hand-off's state, built once per container.
#[derive(Debug)]
pub struct Handoff {
    /// The lead table, read as `lead_crm`, and its ledger of notices.
    leads: Reader,
    crm: Crm,
    /// The sales desk's topic, told of a lead no rule could take.
    desk: Option<Topic>,
}

/// What one event did.
#[derive(Debug, Clone, PartialEq)]
pub struct HandedOff {
    pub lead_id: String,
    pub entered: Entered,
    pub texted: Texted,
    /// The customer's phone, masked for the log.
    pub phone: String,
}

/// Whether, and how, a person was told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Texted {
    /// The salesperson, now.
    Sent,
    /// The salesperson, before: nothing sent.
    Repeat,
    /// The salesperson has no number a text can reach (logged and alarmed).
    Unreachable { user_id: i64 },
    /// No rule took the lead: the sales desk was told (or had been).
    Desk,
    /// Nobody to tell (a repeat of another source, a duplicate).
    Nobody,
}

impl Handoff {
    pub fn new(leads: Store, crm: Crm, desk: Option<Topic>) -> Self {
        Self {
            leads: Reader::new(leads),
            crm,
            desk,
        }
    }

    /// Keeps the events the CRM cannot take on `dead_letters`' dead-letter queue.
    pub fn keeps_refused_on(&mut self, dead_letters: crate::infra::buffer::Buffer) {
        self.crm.dead_letters = Some(dead_letters);
    }

    /// Texts through `sms` instead (a benchmark's SNS).
    pub fn texts_through(&mut self, sms: crate::infra::aws::sms::Sms) {
        self.crm.sms = sms;
    }

    /// The hand-off the environment configures: the lead table (as `lead_crm`), the
    /// CRM's database and texts, and the sales desk's topic.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = HandoffConfig::from_env()?;
        let parts = Parts::load(true, config.base.secrets_ttl).await;
        let crm = parts.crm(config.crm, &config.base.database)?;
        let topic = match config.topic_arn {
            Some(arn) => Some(Topic::new(parts.aws("NEW_LEADS_TOPIC_ARN")?, arn)),
            None => None,
        };
        Ok(Self::new(parts.store(config.base.database)?, crm, topic))
    }

    /// Hands off every message of a batch it can; dead-letters at once, with the reason,
    /// an event the CRM refuses for its data; names the others, to come back after the
    /// queue's visibility timeout.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for message in event.records {
            let started = Instant::now();
            let message_id = message.message_id.unwrap_or_default();
            let body = message.body.unwrap_or_default();
            let result = match serde_json::from_str::<serde_json::Value>(&body) {
                Ok(event) => self.hand_off(&event["detail"], clock()).await,
                Err(error) => Err(CrmError::Event(error.to_string())),
            };
            let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            match result {
                Ok(done) => log(&done, latency_ms),
                Err(error) if error.is_refusal() => {
                    let reason = error.to_string();
                    let kept = match &self.crm.dead_letters {
                        Some(dead_letters) => dead_letters.send_dead_letter(body, &reason).await,
                        None => Err(crate::error::BufferError::NoDeadLetter),
                    };
                    match kept {
                        Ok(()) => tracing::error!(
                            source = "crm",
                            outcome = "dead_lettered",
                            error = reason,
                            latency_ms,
                            "lead refused by the CRM; kept on the hand-off's dead-letter queue"
                        ),
                        Err(keep) => {
                            tracing::error!(
                                source = "crm",
                                outcome = "failed",
                                error = reason,
                                keep = %keep,
                                latency_ms,
                                "lead refused by the CRM and not kept; it comes back"
                            );
                            response.add_failure(message_id);
                        }
                    }
                }
                Err(error) => {
                    tracing::error!(
                        source = "crm",
                        outcome = "failed",
                        error = %error,
                        latency_ms,
                        "lead not handed off; it comes back"
                    );
                    response.add_failure(message_id);
                }
            }
        }
        response
    }

    /// Hands off the leads of `span` after the lead `after`, oldest id first, until
    /// `deadline`, by the same rules as an event (a lead handed off already is a repeat,
    /// and nobody is texted twice). Stops at the first hand-off that failed for the CRM
    /// or SNS, to be run again from `last`.
    pub async fn backfill(
        &self,
        span: Span,
        after: Option<String>,
        deadline: Instant,
    ) -> Result<Backfilled, CrmError> {
        let mut report = Backfilled {
            last: after,
            ..Backfilled::default()
        };
        while Instant::now() < deadline {
            let ids = self
                .leads
                .ids(
                    span.from_ms,
                    span.until_ms,
                    report.last.as_deref(),
                    BACKFILL_PAGE,
                )
                .await?;
            if ids.is_empty() {
                report.done = true;
                break;
            }
            for id in ids {
                if Instant::now() >= deadline {
                    return Ok(report);
                }
                let started = Instant::now();
                match self
                    .hand_off(&serde_json::json!({ "id": id }), clock())
                    .await
                {
                    Ok(done) => {
                        log(&done, started.elapsed().as_secs_f64() * 1000.0);
                        report.handed_off += 1;
                    }
                    Err(error) if error.is_refusal() => {
                        tracing::error!(source = "crm", outcome = "refused", lead = id, error = %error, "lead not handed off: the CRM cannot take it");
                        report.refused += 1;
                    }
                    Err(error) => return Err(error),
                }
                report.last = Some(id);
            }
        }
        Ok(report)
    }

    /// Hands off the lead of an event's `detail`, the CRM's rules read at `now`.
    pub async fn hand_off(
        &self,
        detail: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<HandedOff, CrmError> {
        let lead_id = match &detail["id"] {
            serde_json::Value::Number(id) => id.to_string(),
            serde_json::Value::String(id) if !id.is_empty() => id.clone(),
            _ => return Err(CrmError::Event("its detail has no id".into())),
        };
        let lead = self
            .leads
            .lead(&lead_id)
            .await?
            .ok_or_else(|| CrmError::Missing(lead_id.clone()))?;
        let entry = self.entry(&lead)?;
        let entered = crm_db::enter(&self.crm.store, &entry, now).await?;
        if !matches!(entered, Entered::Repeat { mine: true, .. }) {
            metrics::count(metrics::LEADS, &lead.platform, now.timestamp_millis());
        }
        let texted = match &entered {
            Entered::New {
                assignee: Some(assignee),
                ..
            }
            | Entered::Repeat {
                assignee: Some(assignee),
                ..
            } => self.text(&lead, assignee).await?,
            Entered::New { assignee: None, .. }
            | Entered::Repeat {
                mine: true,
                assignee: None,
                ..
            } => self.tell_desk(&lead).await?,
            _ => Texted::Nobody,
        };
        Ok(HandedOff {
            lead_id,
            entered,
            texted,
            phone: mask::phone(lead.phone_number.as_deref().unwrap_or_default()),
        })
    }

    /// The lead in the CRM's terms; refused when it has no phone the CRM can key on.
    fn entry(&self, lead: &StoredLead) -> Result<Entry, CrmError> {
        let phone = lead.phone_number.as_deref().unwrap_or_default();
        let phone10 = crm::phone10(phone)
            .ok_or_else(|| CrmError::Refused("its phone has fewer than ten digits".into()))?;
        Ok(Entry {
            handoff: lead.id.clone(),
            full_name: lead.name.clone().unwrap_or_default(),
            phone10,
            source: self.crm.sources.row(&lead.platform),
            external_id: lead
                .partner_lead_id
                .clone()
                .unwrap_or_else(|| lead.id.clone()),
            payload: lead.payload.clone(),
        })
    }

    /// The assigned salesperson's text, once; its time from the lead stored measured.
    async fn text(&self, lead: &StoredLead, assignee: &Assignee) -> Result<Texted, CrmError> {
        let Some(number) = assignee.phone_number.as_deref().and_then(crm::cre_number) else {
            return Ok(Texted::Unreachable {
                user_id: assignee.user_id,
            });
        };
        let text = crm::sms_text(&self.crm.template, &sms_lead(lead));
        if !self.text_once(&lead.id, TEXT, &number, &text, None).await? {
            return Ok(Texted::Repeat);
        }
        let now_ms = crate::domain::lead::record::unix_ms(std::time::SystemTime::now()) as i64;
        metrics::emit(
            metrics::STORED_TO_SMS,
            (now_ms - lead.created_at_ms) as f64,
            &lead.platform,
            assignee.user_id,
            now_ms,
        );
        Ok(Texted::Sent)
    }

    /// Texts `text` to `number` once for `lead_id` on `channel` (claim, send, mark):
    /// whether it was sent now (not before).
    pub(crate) async fn text_once(
        &self,
        lead_id: &str,
        channel: &str,
        number: &str,
        text: &str,
        template_id: Option<&str>,
    ) -> Result<bool, CrmError> {
        let store = self.leads.store();
        match notices::claim(store, lead_id, channel).await? {
            Claim::Sent => Ok(false),
            Claim::InFlight => Err(CrmError::InFlight(lead_id.to_owned())),
            Claim::Taken => {
                let message_id = self.crm.sms.send_as(number, text, template_id).await?;
                notices::mark_sent(store, lead_id, channel, &message_id).await?;
                Ok(true)
            }
        }
    }

    /// Our lead table, read as `lead_crm`, and its ledger of notices.
    pub(crate) fn leads(&self) -> &Reader {
        &self.leads
    }

    /// The CRM's side: its database, texts, wording.
    pub(crate) fn crm(&self) -> &Crm {
        &self.crm
    }

    /// The sales desk's word that no rule took the lead (the CRM's manual fallback), once.
    async fn tell_desk(&self, lead: &StoredLead) -> Result<Texted, CrmError> {
        let Some(desk) = &self.desk else {
            return Ok(Texted::Desk);
        };
        let store = self.leads.store();
        match notices::claim(store, &lead.id, UNASSIGNED).await? {
            Claim::Sent => Ok(Texted::Desk),
            Claim::InFlight => Err(CrmError::InFlight(lead.id.clone())),
            Claim::Taken => {
                let message = format!(
                    "Unassigned {} lead in the CRM: {}, {}. No assignment rule took it; assign it by hand.",
                    lead.platform,
                    lead.name.as_deref().unwrap_or_default().trim(),
                    crate::domain::event::masked_phone(
                        crate::domain::lead::phone::e164(lead.phone_number.as_deref().unwrap_or_default()).as_deref(),
                        lead.phone_number.as_deref().unwrap_or_default(),
                    ),
                );
                let message_id = desk.publish(&message).await?;
                notices::mark_sent(store, &lead.id, UNASSIGNED, &message_id).await?;
                Ok(Texted::Desk)
            }
        }
    }
}

/// What a text says of `lead`.
pub(crate) fn sms_lead(lead: &StoredLead) -> SmsLead<'_> {
    SmsLead {
        name: lead.name.as_deref().unwrap_or_default(),
        phone: lead.phone_number.as_deref().unwrap_or_default(),
        model: lead.car_model.as_deref(),
        source: &lead.platform,
        arrived_ms: lead.created_at_ms,
    }
}

/// Now, as the rules read it.
pub(crate) fn clock() -> DateTime<Utc> {
    let ms = crate::domain::lead::record::unix_ms(std::time::SystemTime::now());
    DateTime::<Utc>::from_timestamp_millis(i64::try_from(ms).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// The event's one log line: what the CRM did with the lead, who was told; the phone
/// masked.
fn log(done: &HandedOff, latency_ms: f64) {
    let (case, crm_lead, assignee) = match &done.entered {
        Entered::New { lead_id, assignee } => {
            ("new", *lead_id, assignee.as_ref().map(|a| a.user_id))
        }
        Entered::Repeat {
            lead_id, assignee, ..
        } => ("repeat", *lead_id, assignee.as_ref().map(|a| a.user_id)),
        Entered::OtherSource { lead_id } => ("other_source", *lead_id, None),
    };
    let texted = match &done.texted {
        Texted::Sent => "sent",
        Texted::Repeat => "repeat",
        Texted::Unreachable { .. } => "cre_unreachable",
        Texted::Desk => "desk",
        Texted::Nobody => "nobody",
    };
    if let Texted::Unreachable { user_id } = done.texted {
        tracing::error!(
            source = "crm",
            outcome = "cre_unreachable",
            lead = done.lead_id,
            crm_lead,
            user_id,
            phone = done.phone,
            latency_ms,
            "lead assigned, but its salesperson has no number to text"
        );
        return;
    }
    tracing::info!(
        source = "crm",
        outcome = "handed_off",
        lead = done.lead_id,
        crm_lead,
        case,
        assignee,
        texted,
        phone = done.phone,
        latency_ms,
        "lead handed off to the CRM"
    );
}
