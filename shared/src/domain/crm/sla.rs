//! Speed to lead, pure: how long an assigned lead has waited in its rule's working time,
//! and which escalation step that makes due. The clock runs only inside the rule's
//! active days and hours, read in IST as the rule itself is ([`Rule::is_open`]); a rule
//! without hours runs on the clock.

use std::time::Duration;

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, TimeZone, Utc};

use crate::domain::crm::assignment::Rule;
use crate::domain::ist::IST;

/// The working time of `rule` between `from` and `to` (zero when `to` is not after
/// `from`).
pub fn waited(rule: &Rule, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    if to <= from {
        return Duration::ZERO;
    }
    let always = rule.active_from.is_none()
        && rule.active_to.is_none()
        && rule.active_days.as_deref().is_none_or(<[i32]>::is_empty);
    if always {
        return (to - from).to_std().unwrap_or_default();
    }
    let first = from.with_timezone(&IST).date_naive();
    let last = to.with_timezone(&IST).date_naive();
    let mut total = chrono::Duration::zero();
    let mut day = first;
    while day <= last {
        for (start, end) in windows(rule, day) {
            let (start, end) = (start.max(from), end.min(to));
            if end > start {
                total += end - start;
            }
        }
        match day.checked_add_days(Days::new(1)) {
            Some(next) => day = next,
            None => break,
        }
    }
    total.to_std().unwrap_or_default()
}

/// The spans of `day` (an IST date) the rule is open, as UTC instants: none on a day it
/// is closed; a window past midnight is its morning part and its evening part, both of
/// that day, as [`Rule::is_open`] reads it.
fn windows(rule: &Rule, day: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let weekday = day.weekday().num_days_from_sunday() as i32;
    if let Some(days) = rule.active_days.as_deref().filter(|days| !days.is_empty()) {
        if !days.contains(&weekday) {
            return Vec::new();
        }
    }
    let at = |time: NaiveTime| {
        IST.from_local_datetime(&day.and_time(time))
            .single()
            .map(|at| at.with_timezone(&Utc))
    };
    let start_of_day = at(NaiveTime::MIN);
    let end_of_day = day
        .checked_add_days(Days::new(1))
        .and_then(|next| {
            IST.from_local_datetime(&next.and_time(NaiveTime::MIN))
                .single()
        })
        .map(|at| at.with_timezone(&Utc));
    // The closing time itself is open, as `Rule::is_open` has it: 18:00:00 is, 18:00:01 not.
    let closing = |time: NaiveTime| at(time).map(|at| at + chrono::Duration::seconds(1));
    let span = |start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>| start.zip(end);
    let spans = match (rule.active_from, rule.active_to) {
        (Some(from), Some(to)) if from <= to => vec![span(at(from), closing(to))],
        (Some(from), Some(to)) => vec![span(start_of_day, closing(to)), span(at(from), end_of_day)],
        (Some(from), None) => vec![span(at(from), end_of_day)],
        (None, Some(to)) => vec![span(start_of_day, closing(to))],
        (None, None) => vec![span(start_of_day, end_of_day)],
    };
    spans.into_iter().flatten().collect()
}

/// When an untouched lead is escalated: a reminder to its salesperson, then re-assigned
/// to the next member of its rule, up to a number of times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub reminder: Duration,
    pub reassignment: Duration,
    pub max_reassignments: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            reminder: Duration::from_secs(3 * 60),
            reassignment: Duration::from_secs(5 * 60),
            max_reassignments: 2,
        }
    }
}

/// What the escalations say, and under which DLT templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wording {
    pub reminder: String,
    pub reassigned: String,
    pub gave_up: String,
    /// The DLT template ids of the three, when registered apart from the hand-off's.
    pub template_ids: [Option<String>; 3],
}

impl Default for Wording {
    fn default() -> Self {
        Self {
            reminder: DEFAULT_REMINDER_TEMPLATE.into(),
            reassigned: DEFAULT_REASSIGNED_TEMPLATE.into(),
            gave_up: DEFAULT_GAVE_UP_TEMPLATE.into(),
            template_ids: Default::default(),
        }
    }
}

/// An escalation step of an untouched lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Its salesperson reminded, once per assignment.
    Remind,
    /// Gone to the next member: the `n`th re-assignment.
    Reassign(u32),
    /// Every re-assignment spent: the team leads told nobody took it.
    GiveUp,
}

/// The step due for a lead whose current assignment has waited `waited` (working time),
/// after `reassigned` re-assignments and with its reminder for this assignment `reminded`
/// or not; `None` while nothing is due.
pub fn due(
    thresholds: &Thresholds,
    waited: Duration,
    reassigned: u32,
    reminded: bool,
) -> Option<Step> {
    if waited >= thresholds.reassignment {
        return Some(if reassigned < thresholds.max_reassignments {
            Step::Reassign(reassigned + 1)
        } else {
            Step::GiveUp
        });
    }
    (waited >= thresholds.reminder && !reminded).then_some(Step::Remind)
}

/// The reminder's wording: the hand-off text's fields and `{minutes}` waited.
pub const DEFAULT_REMINDER_TEMPLATE: &str = "Reminder: lead {name}, {phone}, {model}, via {source} at {time} IST has waited {minutes} min. Please call now.";
/// The team leads' word of a re-assignment: `{lead}` (the CRM's id), `{name}`,
/// `{source}`, who had it (`{from}`), for how long (`{minutes}`), who has it (`{to}`).
pub const DEFAULT_REASSIGNED_TEMPLATE: &str = "Lead {name} via {source} (CRM #{lead}) was not touched by {from} in {minutes} min; re-assigned to {to}.";
/// The team leads' word that nobody took a lead: `{lead}`, `{name}`, `{source}`, who has
/// it (`{cre}`), after how many re-assignments (`{count}`).
pub const DEFAULT_GAVE_UP_TEMPLATE: &str = "Lead {name} via {source} (CRM #{lead}) is still untouched after {count} re-assignments; with {cre} now. Please assign it by hand.";

/// `template` with each `{field}` of `fields` filled in.
pub fn fill(template: &str, fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .fold(template.to_owned(), |text, (field, value)| {
            text.replace(&format!("{{{field}}}"), value.trim())
        })
}

/// Whole minutes, as the texts say them.
pub fn minutes(waited: Duration) -> String {
    (waited.as_secs() / 60).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::crm::assignment::{clock, RuleType};
    use proptest::prelude::*;

    fn rule(from: Option<&str>, to: Option<&str>, days: Option<Vec<i32>>) -> Rule {
        Rule {
            id: "r".into(),
            source_id: None,
            rule_type: RuleType::RoundRobin,
            priority: 1,
            active_from: from.and_then(clock),
            active_to: to.and_then(clock),
            active_days: days,
        }
    }

    /// An IST wall-clock time as UTC.
    fn ist(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        IST.with_ymd_and_hms(y, m, d, h, min, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn minutes(duration: Duration) -> u64 {
        duration.as_secs() / 60
    }

    #[test]
    fn a_rule_without_hours_runs_on_the_clock() {
        let always = rule(None, None, None);
        assert_eq!(
            minutes(waited(
                &always,
                ist(2026, 12, 7, 20, 50),
                ist(2026, 12, 8, 9, 0)
            )),
            730
        );
        assert_eq!(
            waited(&always, ist(2026, 12, 8, 9, 0), ist(2026, 12, 7, 9, 0)),
            Duration::ZERO
        );
    }

    #[test]
    fn the_clock_stops_at_closing_and_starts_again_the_next_morning() {
        // 09:00–21:00 every day: assigned at 20:50, it has waited its 10 minutes at
        // closing, nothing more overnight, and the clock goes on from 09:00.
        let office = rule(Some("09:00"), Some("21:00"), None);
        let assigned = ist(2026, 12, 7, 20, 50);
        let waited_at = |h, m| waited(&office, assigned, ist(2026, 12, 8, h, m));
        assert_eq!(minutes(waited_at(8, 59)), 10);
        assert_eq!(minutes(waited_at(9, 0)), 10);
        assert_eq!(minutes(waited_at(9, 5)), 15);
        assert_eq!(
            minutes(waited(&office, assigned, ist(2026, 12, 7, 20, 55))),
            5
        );
    }

    #[test]
    fn weekends_do_not_count() {
        // Monday to Friday, 09:00–18:00: assigned Friday 17:58, it has waited two minutes
        // (and the closing second) on Friday, none over the weekend, one on Monday.
        let weekdays = rule(Some("09:00"), Some("18:00"), Some(vec![1, 2, 3, 4, 5]));
        let friday = ist(2026, 12, 11, 17, 58);
        assert_eq!(
            friday.with_timezone(&IST).weekday().num_days_from_sunday(),
            5
        );
        let monday = ist(2026, 12, 14, 9, 1);
        let waited = waited(&weekdays, friday, monday);
        assert_eq!(waited.as_secs(), 2 * 60 + 1 + 60);
    }

    #[test]
    fn a_window_past_midnight_counts_both_sides() {
        let night = rule(Some("22:00"), Some("06:00"), None);
        // 23:00 to 07:00: 23:00–24:00 and 00:00–06:00, its closing second included.
        let waited = waited(&night, ist(2026, 12, 7, 23, 0), ist(2026, 12, 8, 7, 0));
        assert_eq!(waited.as_secs(), 7 * 3600 + 1);
    }

    #[test]
    fn the_steps_come_in_order_and_stop() {
        let t = Thresholds::default();
        let at = |m: u64| Duration::from_secs(m * 60);
        assert_eq!(due(&t, at(2), 0, false), None);
        assert_eq!(due(&t, at(3), 0, false), Some(Step::Remind));
        assert_eq!(due(&t, at(4), 0, true), None);
        assert_eq!(due(&t, at(5), 0, true), Some(Step::Reassign(1)));
        assert_eq!(due(&t, at(5), 1, false), Some(Step::Reassign(2)));
        assert_eq!(due(&t, at(5), 2, true), Some(Step::GiveUp));
    }

    #[test]
    fn texts_fill_their_fields() {
        assert_eq!(
            fill(
                DEFAULT_REASSIGNED_TEMPLATE,
                &[
                    ("lead", "7"),
                    ("name", " Asha "),
                    ("source", "Meta"),
                    ("from", "Ravi"),
                    ("minutes", "5"),
                    ("to", "Meena")
                ]
            ),
            "Lead Asha via Meta (CRM #7) was not touched by Ravi in 5 min; re-assigned to Meena."
        );
        assert_eq!(super::minutes(Duration::from_secs(359)), "5");
    }

    proptest! {
        #[test]
        fn working_time_never_exceeds_the_clock_and_adds_up(
            start in 0i64..(14 * 24 * 60), first in 0i64..(5 * 24 * 60), second in 0i64..(5 * 24 * 60),
            from_hour in 0u32..24, to_hour in 0u32..24, days in proptest::collection::vec(0i32..7, 0..7),
        ) {
            let office = Rule {
                active_from: NaiveTime::from_hms_opt(from_hour, 0, 0),
                active_to: NaiveTime::from_hms_opt(to_hour, 30, 0),
                active_days: Some(days),
                ..rule(None, None, None)
            };
            let a = ist(2026, 12, 1, 0, 0) + chrono::Duration::minutes(start);
            let b = a + chrono::Duration::minutes(first);
            let c = b + chrono::Duration::minutes(second);
            let whole = waited(&office, a, c);
            prop_assert!(whole <= (c - a).to_std().unwrap());
            prop_assert_eq!(whole, waited(&office, a, b) + waited(&office, b, c));
        }
    }
}
