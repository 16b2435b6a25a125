//! The CRM's assignment rules, pure: which rule applies to a new lead, and which member
//! of it the lead goes to (docs/crm.md). The CRM's own implementation reads the hours
//! from the server's clock and its pointer without a lock; here the time is IST
//! whatever the host's clock, and the pointer is the caller's to hold (the CRM's SQL
//! takes it `FOR UPDATE`), so two leads at once go to two people.

use chrono::{DateTime, Datelike, NaiveTime, Timelike, Utc};

use crate::domain::ist::IST;

/// How a rule spreads its leads over its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleType {
    /// Each member in turn, in the order they joined the rule.
    RoundRobin,
    /// As round robin over a list where each member stands `round(percentage)` times
    /// (or `weight` times without a percentage; at least once).
    Weighted,
}

impl RuleType {
    /// The CRM's `rule_type`; `None` for a type this code does not know (that rule is
    /// skipped, as the CRM would find nothing to do with it).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "round_robin" => Some(Self::RoundRobin),
            "weighted" => Some(Self::Weighted),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RoundRobin => "round_robin",
            Self::Weighted => "weighted",
        }
    }
}

/// An active rule, as `assignment_rules` holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    /// `None`: a rule for every source.
    pub source_id: Option<i64>,
    pub rule_type: RuleType,
    /// Lower first.
    pub priority: i32,
    /// `HH:MM` in IST, both or neither; a window that ends before it starts runs past
    /// midnight.
    pub active_from: Option<NaiveTime>,
    pub active_to: Option<NaiveTime>,
    /// 0 is Sunday; `None` (or empty): every day.
    pub active_days: Option<Vec<i32>>,
}

/// A member that may take a lead: active in the rule, its user active.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub user_id: i64,
    pub percentage: Option<f64>,
    pub weight: i32,
}

/// An `HH:MM` (or `HH:MM:SS`) of the CRM's rules.
pub fn clock(text: &str) -> Option<NaiveTime> {
    let text = text.trim();
    NaiveTime::parse_from_str(text, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M:%S"))
        .ok()
}

impl Rule {
    /// A rule open every day at every hour, of no source.
    pub fn always() -> Self {
        Self {
            id: String::new(),
            source_id: None,
            rule_type: RuleType::RoundRobin,
            priority: 0,
            active_from: None,
            active_to: None,
            active_days: None,
        }
    }

    /// Whether the rule's days and hours include `now`, read in IST.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        let local = now.with_timezone(&IST);
        let weekday = local.weekday().num_days_from_sunday() as i32;
        if let Some(days) = self.active_days.as_deref().filter(|days| !days.is_empty()) {
            if !days.contains(&weekday) {
                return false;
            }
        }
        let time = local.time().with_nanosecond(0).unwrap_or(local.time());
        match (self.active_from, self.active_to) {
            (Some(from), Some(to)) if from <= to => from <= time && time <= to,
            // Past midnight: 22:00–06:00.
            (Some(from), Some(to)) => time >= from || time <= to,
            (Some(from), None) => time >= from,
            (None, Some(to)) => time <= to,
            (None, None) => true,
        }
    }
}

/// The rules that may take a lead of `source_id`, in the order they are tried: the
/// active rules of its source, then those of every source, each by priority, and only
/// those open at `now`.
pub fn candidates(rules: &[Rule], source_id: i64, now: DateTime<Utc>) -> Vec<&Rule> {
    let mut own: Vec<&Rule> = rules
        .iter()
        .filter(|rule| rule.source_id == Some(source_id))
        .collect();
    let mut every: Vec<&Rule> = rules
        .iter()
        .filter(|rule| rule.source_id.is_none())
        .collect();
    own.sort_by_key(|rule| rule.priority);
    every.sort_by_key(|rule| rule.priority);
    own.into_iter()
        .chain(every)
        .filter(|rule| rule.is_open(now))
        .collect()
}

/// The rotation a rule's pointer walks: its members (in the order they joined), each
/// as often as its type says.
pub fn rotation(rule_type: RuleType, members: &[Member]) -> Vec<i64> {
    match rule_type {
        RuleType::RoundRobin => members.iter().map(|member| member.user_id).collect(),
        RuleType::Weighted => members
            .iter()
            .flat_map(|member| {
                let times = match member.percentage {
                    Some(percentage) if percentage.is_finite() => percentage.round() as i64,
                    _ => i64::from(member.weight),
                };
                std::iter::repeat_n(member.user_id, times.clamp(1, 1000) as usize)
            })
            .collect(),
    }
}

/// Who takes the lead at the pointer's `current_index`, and the pointer's next index.
/// `None` for an empty rotation.
pub fn pick(rotation: &[i64], current_index: i64) -> Option<(i64, i64)> {
    if rotation.is_empty() {
        return None;
    }
    let count = rotation.len() as i64;
    let at = current_index.rem_euclid(count);
    Some((rotation[at as usize], (at + 1) % count))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn rule(id: &str, source_id: Option<i64>, priority: i32) -> Rule {
        Rule {
            id: id.into(),
            source_id,
            rule_type: RuleType::RoundRobin,
            priority,
            active_from: None,
            active_to: None,
            active_days: None,
        }
    }

    fn member(user_id: i64, percentage: Option<f64>, weight: i32) -> Member {
        Member {
            user_id,
            percentage,
            weight,
        }
    }

    /// A Monday, 09:30 in IST (04:00 UTC).
    fn monday_morning() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 7, 4, 0, 0).unwrap()
    }

    #[test]
    fn the_sources_rules_come_first_then_every_sources_by_priority() {
        let rules = [
            rule("every-2", None, 2),
            rule("meta-5", Some(1), 5),
            rule("every-1", None, 1),
            rule("google-1", Some(2), 1),
            rule("meta-3", Some(1), 3),
        ];
        let ids: Vec<&str> = candidates(&rules, 1, monday_morning())
            .iter()
            .map(|rule| rule.id.as_str())
            .collect();
        assert_eq!(ids, ["meta-3", "meta-5", "every-1", "every-2"]);
    }

    #[test]
    fn hours_and_days_are_ist_whatever_the_hosts_clock() {
        let mut office = rule("office", None, 1);
        office.active_from = clock("09:00");
        office.active_to = clock("18:00");
        office.active_days = Some(vec![1, 2, 3, 4, 5]);
        // 09:30 IST on a Monday is 04:00 UTC, outside 09:00–18:00 read as UTC.
        assert!(office.is_open(monday_morning()));
        // 08:59 IST.
        assert!(!office.is_open(Utc.with_ymd_and_hms(2026, 12, 7, 3, 29, 0).unwrap()));
        // 18:00 IST is inside, 18:01 not.
        assert!(office.is_open(Utc.with_ymd_and_hms(2026, 12, 7, 12, 30, 0).unwrap()));
        assert!(!office.is_open(Utc.with_ymd_and_hms(2026, 12, 7, 12, 31, 0).unwrap()));
        // Sunday 10:00 IST (Sunday 04:30 UTC).
        assert!(!office.is_open(Utc.with_ymd_and_hms(2026, 12, 6, 4, 30, 0).unwrap()));
        // Monday 00:30 IST is still Sunday in UTC: Monday counts.
        let mut night = rule("night", None, 1);
        night.active_from = clock("22:00");
        night.active_to = clock("06:00");
        night.active_days = Some(vec![1]);
        assert!(night.is_open(Utc.with_ymd_and_hms(2026, 12, 6, 19, 0, 0).unwrap()));
        assert!(!night.is_open(monday_morning()));
        assert_eq!(clock("9:05"), NaiveTime::from_hms_opt(9, 5, 0));
        assert_eq!(clock("25:00"), None);
    }

    #[test]
    fn weighted_stands_each_member_by_percentage_or_weight() {
        let members = [member(1, Some(75.0), 1), member(2, Some(25.0), 1)];
        let list = rotation(RuleType::Weighted, &members);
        assert_eq!(list.iter().filter(|id| **id == 1).count(), 75);
        assert_eq!(list.len(), 100);
        let by_weight = rotation(
            RuleType::Weighted,
            &[
                member(1, None, 3),
                member(2, None, 0),
                member(3, Some(0.2), 1),
            ],
        );
        assert_eq!(by_weight, [1, 1, 1, 2, 3], "at least once");
        assert_eq!(
            rotation(
                RuleType::RoundRobin,
                &[member(4, Some(90.0), 9), member(5, None, 1)]
            ),
            [4, 5]
        );
    }

    #[test]
    fn the_pointer_walks_the_rotation() {
        assert_eq!(pick(&[7, 8], 0), Some((7, 1)));
        assert_eq!(pick(&[7, 8], 1), Some((8, 0)));
        // A pointer left past the end by a member removed.
        assert_eq!(pick(&[7, 8], 5), Some((8, 0)));
        assert_eq!(pick(&[7, 8], -1), Some((8, 0)));
        assert_eq!(pick(&[], 0), None);
    }

    proptest! {
        #[test]
        fn round_robin_counts_differ_by_at_most_one(leads in 0usize..200, members in 1usize..12, start in 0i64..50) {
            let list: Vec<Member> = (0..members as i64).map(|id| member(id, None, 1)).collect();
            let rotation = rotation(RuleType::RoundRobin, &list);
            let mut counts = vec![0usize; members];
            let mut index = start;
            for _ in 0..leads {
                let (user, next) = pick(&rotation, index).unwrap();
                counts[user as usize] += 1;
                index = next;
            }
            let (low, high) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            prop_assert!(high - low <= 1, "{:?}", counts);
        }

        #[test]
        fn weighted_over_whole_turns_is_exactly_the_weights(turns in 1usize..5, weights in proptest::collection::vec(1i32..6, 1..6)) {
            let list: Vec<Member> = weights.iter().enumerate().map(|(id, weight)| member(id as i64, None, *weight)).collect();
            let rotation = rotation(RuleType::Weighted, &list);
            let mut counts = vec![0usize; list.len()];
            let mut index = 0;
            for _ in 0..turns * rotation.len() {
                let (user, next) = pick(&rotation, index).unwrap();
                counts[user as usize] += 1;
                index = next;
            }
            for (id, weight) in weights.iter().enumerate() {
                prop_assert_eq!(counts[id], turns * *weight as usize);
            }
        }
    }
}
