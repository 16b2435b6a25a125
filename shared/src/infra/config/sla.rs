//! Speed to lead's part of the configuration (the `crm-sla` function only): when an
//! untouched lead is escalated, how often it moves, and what the texts say.

use std::time::Duration;

use crate::domain::crm::sla::{Thresholds, Wording};
use crate::error::ConfigError;
use crate::infra::config::parse;

/// The escalation's thresholds and wording.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SlaConfig {
    /// `CRM_SLA_REMINDER_MINUTES`, `CRM_SLA_REASSIGN_MINUTES` (working minutes since the
    /// assignment), `CRM_SLA_MAX_REASSIGNMENTS`.
    pub thresholds: Thresholds,
    /// `CRM_SLA_REMINDER_TEMPLATE`, `CRM_SLA_REASSIGNED_TEMPLATE`,
    /// `CRM_SLA_GAVE_UP_TEMPLATE`, and their DLT template ids
    /// `CRM_DLT_REMINDER_TEMPLATE_ID`, `CRM_DLT_REASSIGNED_TEMPLATE_ID`,
    /// `CRM_DLT_GAVE_UP_TEMPLATE_ID`.
    pub wording: Wording,
}

impl SlaConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    /// Reads through `lookup`; empty values count as unset (the defaults).
    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let defaults = Thresholds::default();
        let minutes = |name: &'static str, default: Duration| -> Result<Duration, ConfigError> {
            match parse::<u64>(&get, name)? {
                None => Ok(default),
                Some(0) => Err(ConfigError::Invalid {
                    name,
                    reason: "is 0; a threshold is at least a minute".into(),
                }),
                Some(minutes) => Ok(Duration::from_secs(minutes * 60)),
            }
        };
        let thresholds = Thresholds {
            reminder: minutes("CRM_SLA_REMINDER_MINUTES", defaults.reminder)?,
            reassignment: minutes("CRM_SLA_REASSIGN_MINUTES", defaults.reassignment)?,
            max_reassignments: parse(&get, "CRM_SLA_MAX_REASSIGNMENTS")?
                .unwrap_or(defaults.max_reassignments),
        };
        if thresholds.reminder >= thresholds.reassignment {
            return Err(ConfigError::Invalid {
                name: "CRM_SLA_REMINDER_MINUTES",
                reason: "is not below CRM_SLA_REASSIGN_MINUTES; the reminder comes first".into(),
            });
        }
        let wording = Wording::default();
        let wording = Wording {
            reminder: get("CRM_SLA_REMINDER_TEMPLATE").unwrap_or(wording.reminder),
            reassigned: get("CRM_SLA_REASSIGNED_TEMPLATE").unwrap_or(wording.reassigned),
            gave_up: get("CRM_SLA_GAVE_UP_TEMPLATE").unwrap_or(wording.gave_up),
            template_ids: [
                get("CRM_DLT_REMINDER_TEMPLATE_ID"),
                get("CRM_DLT_REASSIGNED_TEMPLATE_ID"),
                get("CRM_DLT_GAVE_UP_TEMPLATE_ID"),
            ],
        };
        Ok(Self {
            thresholds,
            wording,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> Result<SlaConfig, ConfigError> {
        SlaConfig::from_lookup(&|name: &str| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn the_defaults_when_unset_or_empty() {
        assert_eq!(lookup(&[]).unwrap(), SlaConfig::default());
        assert_eq!(
            lookup(&[
                ("CRM_SLA_REMINDER_MINUTES", " "),
                ("CRM_SLA_GAVE_UP_TEMPLATE", "")
            ])
            .unwrap(),
            SlaConfig::default()
        );
    }

    #[test]
    fn thresholds_in_minutes_and_the_wording_with_its_templates() {
        let config = lookup(&[
            ("CRM_SLA_REMINDER_MINUTES", "2"),
            ("CRM_SLA_REASSIGN_MINUTES", "10"),
            ("CRM_SLA_MAX_REASSIGNMENTS", "0"),
            ("CRM_SLA_REMINDER_TEMPLATE", "Call {name} now"),
            ("CRM_DLT_GAVE_UP_TEMPLATE_ID", "1207000000000000003"),
        ])
        .unwrap();
        assert_eq!(
            config.thresholds,
            Thresholds {
                reminder: Duration::from_secs(120),
                reassignment: Duration::from_secs(600),
                max_reassignments: 0,
            }
        );
        assert_eq!(config.wording.reminder, "Call {name} now");
        assert_eq!(config.wording.reassigned, Wording::default().reassigned);
        assert_eq!(
            config.wording.template_ids,
            [None, None, Some("1207000000000000003".into())]
        );
    }

    #[test]
    fn a_threshold_that_cannot_work_is_refused_by_name() {
        for (vars, name) in [
            (
                &[("CRM_SLA_REMINDER_MINUTES", "0")][..],
                "CRM_SLA_REMINDER_MINUTES",
            ),
            (
                &[("CRM_SLA_REASSIGN_MINUTES", "five")][..],
                "CRM_SLA_REASSIGN_MINUTES",
            ),
            (
                &[("CRM_SLA_MAX_REASSIGNMENTS", "-1")][..],
                "CRM_SLA_MAX_REASSIGNMENTS",
            ),
            (
                &[
                    ("CRM_SLA_REMINDER_MINUTES", "5"),
                    ("CRM_SLA_REASSIGN_MINUTES", "5"),
                ][..],
                "CRM_SLA_REMINDER_MINUTES",
            ),
        ] {
            match lookup(vars) {
                Err(ConfigError::Invalid { name: refused, .. }) => assert_eq!(refused, name),
                other => panic!("{vars:?}: {other:?}"),
            }
        }
    }
}
