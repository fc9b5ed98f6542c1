//! Typed settings for the Lambda binaries: a missing or malformed setting is a startup error that
//! names it.
//!
//! Settings come from environment variables the template sets (table names, the allowlists) and
//! from the stack's one `Tuning` parameter (`MaxAttempts=2, CoolDownMinutes=60`, the `TUNING`
//! variable), whose names, defaults and meaning are the table [`TUNING`]: docs/operations.md
//! shows the same table, and tests check they agree. An environment variable of a tuned
//! setting's own name wins over `TUNING` (handy when running a binary locally).

use crate::finding::TrackingRules;
use crate::lifecycle::{LifecycleConfig, ResolveOn};
use crate::safety::{OptIn, SafetyConfig, UnmappedOpsItems};
use chrono::Duration;
use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set (the stack's template sets it)")]
    Missing(&'static str),
    #[error("{name}={value:?} is not {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("the stack's Tuning parameter: {0}")]
    Tuning(String),
}

/// One setting of the stack's `Tuning` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuned {
    /// Its name in `Tuning`.
    pub name: &'static str,
    /// The environment variable the functions read it from.
    pub variable: &'static str,
    /// What the functions use when it is not given.
    pub default: &'static str,
    pub meaning: &'static str,
}

/// Every tuning setting. The defaults are the functions' own: a test reads each one back.
pub const TUNING: &[Tuned] = &[
    Tuned {
        name: "MaxAttempts",
        variable: "MAX_ATTEMPTS",
        default: "3",
        meaning: "Runbook starts per flagged episode; past it the episode is escalated to a person (a mapping may lower it).",
    },
    Tuned {
        name: "CoolDownMinutes",
        variable: "COOL_DOWN_MINUTES",
        default: "30",
        meaning: "Minimum time between two starts for one finding, across episodes (a mapping may lengthen it).",
    },
    Tuned {
        name: "InFlightTimeoutHours",
        variable: "IN_FLIGHT_TIMEOUT_HOURS",
        default: "6",
        meaning: "An execution without a final status this long after its start counts as failed.",
    },
    Tuned {
        name: "BreakerLimit",
        variable: "BREAKER_LIMIT",
        default: "50",
        meaning: "Circuit breaker: starts per check per window; beyond it the check is held for approval until the window turns.",
    },
    Tuned {
        name: "BreakerWindowMinutes",
        variable: "BREAKER_WINDOW_MINUTES",
        default: "60",
        meaning: "The circuit breaker's window.",
    },
    Tuned {
        name: "UnmappedOpsItems",
        variable: "UNMAPPED_OPS_ITEMS",
        default: "all",
        meaning: "Which flagged findings without a mapping get an OpsItem: all, red or none.",
    },
    Tuned {
        name: "MonthlyOpsItemBudget",
        variable: "MONTHLY_OPS_ITEM_BUDGET",
        default: "9000",
        meaning: "OpsItems per calendar month past which only mapped findings get one (OpsCenter's quota is 10,000).",
    },
    Tuned {
        name: "StartIntervalMs",
        variable: "START_INTERVAL_MS",
        default: "1000",
        meaning: "Minimum time between two StartAutomationExecution calls of one invocation.",
    },
    Tuned {
        name: "ResolveOn",
        variable: "RESOLVE_ON",
        default: "verified",
        meaning: "When a successful runbook's OpsItem is resolved: verified (Trusted Advisor reports Green) or success (at once, as AWS's walkthrough).",
    },
    Tuned {
        name: "VerifyGraceMinutes",
        variable: "VERIFY_GRACE_MINUTES",
        default: "30",
        meaning: "A flagged refresh counts against a fix only when its item time is this long after the execution ended.",
    },
    Tuned {
        name: "VerifyWindowHours",
        variable: "VERIFY_WINDOW_HOURS",
        default: "24",
        meaning: "How long a fix waits for Trusted Advisor's Green before its OpsItem is resolved as not yet confirmed.",
    },
    Tuned {
        name: "ExecutionRetentionDays",
        variable: "EXECUTION_RETENTION_DAYS",
        default: "90",
        meaning: "How long closed episodes, execution rows and counters are kept (DynamoDB TTL).",
    },
    Tuned {
        name: "MappingCacheSeconds",
        variable: "MAPPING_CACHE_SECONDS",
        default: "60",
        meaning: "How long a warm results handler keeps a mapping (0 reads it every time).",
    },
    Tuned {
        name: "FutureToleranceMinutes",
        variable: "FUTURE_TOLERANCE_MINUTES",
        default: "15",
        meaning: "An event whose times lie further ahead of the clock is rejected and parked.",
    },
    Tuned {
        name: "ReconcileChecks",
        variable: "RECONCILE_CHECKS",
        default: "mapped",
        meaning: "Which checks the findings sweep reads: mapped or all.",
    },
    Tuned {
        name: "ExecutionSweepAfterMinutes",
        variable: "EXECUTION_SWEEP_AFTER_MINUTES",
        default: "30",
        meaning: "An execution without a final status is looked up after this long.",
    },
];

/// Where a function's settings come from: its environment, with `TUNING` under it.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    variables: HashMap<String, String>,
}

impl Settings {
    /// The process environment.
    pub fn from_env() -> Result<Settings, ConfigError> {
        Settings::from_pairs(std::env::vars())
    }

    /// Settings from name/value pairs, as the environment would hold them; `TUNING` is read
    /// and every name in it checked.
    pub fn from_pairs(
        pairs: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
    ) -> Result<Settings, ConfigError> {
        let mut variables: HashMap<String, String> = pairs
            .into_iter()
            .map(|(name, value)| (name.into(), value.into()))
            .filter(|(_, value)| !value.trim().is_empty())
            .collect();
        if let Some(tuning) = variables.get("TUNING").cloned() {
            for (variable, value) in parse_tuning(&tuning)? {
                variables.entry(variable.to_owned()).or_insert(value);
            }
        }
        Ok(Settings { variables })
    }

    fn read(&self, name: &str) -> Option<String> {
        self.variables.get(name).cloned()
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.read(name).ok_or(ConfigError::Missing(name))
    }

    pub fn string_or(&self, name: &'static str, default: &str) -> String {
        self.read(name).unwrap_or_else(|| default.to_owned())
    }

    /// A comma-separated list; unset means empty.
    pub fn list(&self, name: &'static str) -> Vec<String> {
        self.read(name)
            .map(|value| {
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A whole number of at least `min`, or the default when unset.
    fn number_or(
        &self,
        name: &'static str,
        default: i64,
        min: i64,
        expected: &'static str,
    ) -> Result<i64, ConfigError> {
        match self.read(name) {
            None => Ok(default),
            Some(value) => value
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= min)
                .ok_or(ConfigError::Invalid {
                    name,
                    value,
                    expected,
                }),
        }
    }

    /// A positive whole number, or the default when unset.
    pub fn positive_or(&self, name: &'static str, default: i64) -> Result<i64, ConfigError> {
        self.number_or(name, default, 1, "a positive whole number")
    }

    /// A whole number of zero or more, or the default when unset.
    pub fn non_negative_or(&self, name: &'static str, default: i64) -> Result<i64, ConfigError> {
        self.number_or(name, default, 0, "a whole number of zero or more")
    }

    /// One of `choices` (case-insensitive), or the default when unset.
    pub fn choice_or(
        &self,
        name: &'static str,
        choices: &'static [&'static str],
        default: &'static str,
        expected: &'static str,
    ) -> Result<&'static str, ConfigError> {
        match self.read(name) {
            None => Ok(default),
            Some(value) => choices
                .iter()
                .find(|choice| choice.eq_ignore_ascii_case(value.trim()))
                .copied()
                .ok_or(ConfigError::Invalid {
                    name,
                    value,
                    expected,
                }),
        }
    }

    /// The accounts the stack acts for (`GOVERNED_ACCOUNTS`, comma-separated account ids; the
    /// template sets the stack's own account). Required: without it the stack would act for any
    /// account whose event reached it.
    pub fn governed_accounts(&self) -> Result<BTreeSet<String>, ConfigError> {
        let accounts = self.list("GOVERNED_ACCOUNTS");
        if accounts.is_empty() {
            return Err(ConfigError::Missing("GOVERNED_ACCOUNTS"));
        }
        if let Some(bad) = accounts
            .iter()
            .find(|a| a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(ConfigError::Invalid {
                name: "GOVERNED_ACCOUNTS",
                value: bad.clone(),
                expected: "a list of 12-digit AWS account ids",
            });
        }
        Ok(accounts.into_iter().collect())
    }

    /// The stack's own account (`HOME_ACCOUNT`, set by the template): reached with the
    /// function's own credentials; every other governed account through its member role.
    pub fn home_account(&self) -> Result<String, ConfigError> {
        let account = self.required("HOME_ACCOUNT")?;
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::Invalid {
                name: "HOME_ACCOUNT",
                value: account,
                expected: "a 12-digit AWS account id",
            });
        }
        Ok(account)
    }

    /// The stack's safety settings.
    pub fn safety(&self) -> Result<SafetyConfig, ConfigError> {
        let defaults = SafetyConfig::default();
        let tag_key = self.string_or("OPT_IN_TAG_KEY", "automaticRemediation");
        let tag_value = self.string_or("OPT_IN_TAG_VALUE", "True");
        let opt_in = match self.choice_or(
            "OPT_IN",
            // `none` is the stack parameter's first name for `all`.
            &["all", "none", "opt-in", "opt-out"],
            "all",
            "all, opt-in or opt-out",
        )? {
            "opt-in" => OptIn::Tagged {
                key: tag_key,
                value: tag_value,
            },
            "opt-out" => OptIn::ExceptTagged {
                key: tag_key,
                value: tag_value,
            },
            _ => OptIn::Everyone,
        };
        let unmapped = match self.choice_or(
            "UNMAPPED_OPS_ITEMS",
            &["all", "red", "none"],
            "all",
            "all, red or none",
        )? {
            "red" => UnmappedOpsItems::RedOnly,
            "none" => UnmappedOpsItems::None,
            _ => UnmappedOpsItems::All,
        };
        let allowed_documents = self.list("ALLOWED_AUTOMATION_DOCUMENTS");
        if allowed_documents.is_empty() {
            // Fail closed: an empty allowlist would allow every document.
            return Err(ConfigError::Missing("ALLOWED_AUTOMATION_DOCUMENTS"));
        }
        Ok(SafetyConfig {
            opt_in,
            max_attempts: self.positive_or("MAX_ATTEMPTS", i64::from(defaults.max_attempts))?
                as u32,
            cool_down: Duration::minutes(self.non_negative_or("COOL_DOWN_MINUTES", 30)?),
            in_flight_timeout: Duration::hours(self.positive_or("IN_FLIGHT_TIMEOUT_HOURS", 6)?),
            breaker_limit: self.positive_or("BREAKER_LIMIT", defaults.breaker_limit as i64)? as u64,
            breaker_window: Duration::minutes(self.positive_or("BREAKER_WINDOW_MINUTES", 60)?),
            allowed_documents,
            allowed_roles: self.list("ALLOWED_AUTOMATION_ROLES"),
            unmapped_ops_items: unmapped,
            monthly_ops_item_budget: self.positive_or(
                "MONTHLY_OPS_ITEM_BUDGET",
                defaults.monthly_ops_item_budget as i64,
            )? as u64,
            start_interval: Duration::milliseconds(
                self.non_negative_or("START_INTERVAL_MS", 1000)?,
            ),
            governed_accounts: Some(self.governed_accounts()?),
            home_account: match self.read("HOME_ACCOUNT") {
                Some(_) => Some(self.home_account()?),
                None => None,
            },
        })
    }

    /// The lifecycle's settings around the given safety settings: the verification,
    /// `OPS_ITEM_SOURCE` (TrustedAdvisor) and the retention.
    pub fn lifecycle(&self, safety: SafetyConfig) -> Result<LifecycleConfig, ConfigError> {
        Ok(LifecycleConfig {
            safety,
            verify_grace: Duration::minutes(self.non_negative_or("VERIFY_GRACE_MINUTES", 30)?),
            verify_window: Duration::hours(self.positive_or("VERIFY_WINDOW_HOURS", 24)?),
            resolve_on: match self.choice_or(
                "RESOLVE_ON",
                &["verified", "success"],
                "verified",
                "verified or success",
            )? {
                "success" => ResolveOn::Success,
                _ => ResolveOn::Verified,
            },
            ops_item_source: self.string_or("OPS_ITEM_SOURCE", "TrustedAdvisor"),
            retention: Duration::days(self.positive_or("EXECUTION_RETENTION_DAYS", 90)?),
            future_tolerance: Duration::minutes(self.positive_or("FUTURE_TOLERANCE_MINUTES", 15)?),
        })
    }

    /// check-tracker's normalisation: the stack's region (Lambda sets `AWS_REGION`) and the
    /// future-time bound.
    pub fn tracking_rules(&self) -> Result<TrackingRules, ConfigError> {
        Ok(TrackingRules {
            home_region: self.string_or("AWS_REGION", "us-east-1"),
            future_tolerance: Duration::minutes(self.positive_or("FUTURE_TOLERANCE_MINUTES", 15)?),
            governed_accounts: Some(self.governed_accounts()?),
        })
    }

    /// Whether the findings sweep reads every check, not only the mapped ones.
    pub fn reconcile_all_checks(&self) -> Result<bool, ConfigError> {
        Ok(self.choice_or(
            "RECONCILE_CHECKS",
            &["mapped", "all"],
            "mapped",
            "mapped or all",
        )? == "all")
    }

    /// How long the results handler keeps a mapping.
    pub fn mapping_cache(&self) -> Result<Duration, ConfigError> {
        Ok(Duration::seconds(
            self.non_negative_or("MAPPING_CACHE_SECONDS", 60)?,
        ))
    }

    /// How long an execution may go without a final status before the sweep looks it up.
    pub fn execution_sweep_after(&self) -> Result<Duration, ConfigError> {
        Ok(Duration::minutes(
            self.positive_or("EXECUTION_SWEEP_AFTER_MINUTES", 30)?,
        ))
    }
}

/// `MaxAttempts=2, CoolDownMinutes=60` → the variables they set. An unknown name is an error
/// naming the closest known one: a misspelled setting must not pass as its default.
fn parse_tuning(text: &str) -> Result<Vec<(&'static str, String)>, ConfigError> {
    let mut set: Vec<(&'static str, String)> = vec![];
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((name, value)) = pair.split_once('=') else {
            return Err(ConfigError::Tuning(format!("{pair:?} is not NAME=VALUE")));
        };
        let (name, value) = (name.trim(), value.trim());
        let Some(tuned) = TUNING.iter().find(|t| t.name.eq_ignore_ascii_case(name)) else {
            let closest = TUNING
                .iter()
                .map(|t| {
                    (
                        strsim::jaro_winkler(&name.to_lowercase(), &t.name.to_lowercase()),
                        t.name,
                    )
                })
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .filter(|(score, _)| *score >= 0.8)
                .map(|(_, known)| format!("; did you mean {known}?"))
                .unwrap_or_default();
            return Err(ConfigError::Tuning(format!(
                "{name:?} is not a setting{closest} (known: {})",
                TUNING.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
            )));
        };
        if set.iter().any(|(variable, _)| *variable == tuned.variable) {
            return Err(ConfigError::Tuning(format!(
                "{} is given twice",
                tuned.name
            )));
        }
        set.push((tuned.variable, value.to_owned()));
    }
    Ok(set)
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
