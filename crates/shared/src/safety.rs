//! The stack's safety settings, and the pure rules the lifecycle applies with them: modes and
//! resource opt-in, what OpsItems unmapped findings get, and the counters of the circuit
//! breaker and the OpsItem budget. The lifecycle ([`crate::lifecycle`]) holds the rest: attempt
//! caps, cool-down and the in-flight guard, per episode.

use crate::finding::{Finding, Status};
use crate::mapping::{Mapping, Mode};
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, BTreeSet};

/// Which resources may be remediated automatically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptIn {
    /// Every resource (the mapping's mode decides).
    Everyone,
    /// Only resources carrying this tag (AWS's reference: `automaticRemediation=True`).
    Tagged { key: String, value: String },
    /// Every resource except those carrying this tag.
    ExceptTagged { key: String, value: String },
}

/// Which flagged findings without a mapping get an OpsItem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnmappedOpsItems {
    All,
    RedOnly,
    None,
}

/// The stack's safety settings. Defaults are the safe ones docs/operations.md documents.
#[derive(Debug, Clone, PartialEq)]
pub struct SafetyConfig {
    pub opt_in: OptIn,
    /// Starts allowed per flagged episode (a mapping may lower it).
    pub max_attempts: u32,
    /// Minimum time between two starts for one finding, across episodes (a mapping may raise it).
    pub cool_down: Duration,
    /// An execution with no final status is "in flight" for at most this long.
    pub in_flight_timeout: Duration,
    /// Circuit breaker: starts per check per `breaker_window`; beyond it the check runs in
    /// approval mode until the window turns.
    pub breaker_limit: u64,
    pub breaker_window: Duration,
    /// Documents and automation roles the stack allows (empty: any).
    pub allowed_documents: Vec<String>,
    pub allowed_roles: Vec<String>,
    pub unmapped_ops_items: UnmappedOpsItems,
    /// OpsItems created per calendar month (UTC) past which only mapped findings get one;
    /// OpsCenter's quota is 10,000.
    pub monthly_ops_item_budget: u64,
    /// Minimum time between two StartAutomationExecution calls (SSM allows about 1 per second).
    pub start_interval: Duration,
    /// The accounts the stack acts for; `None`: any (a local run). A finding of any other
    /// account never starts a runbook.
    pub governed_accounts: Option<BTreeSet<String>>,
    /// The stack's own account (`HOME_ACCOUNT`); every other governed account is a member,
    /// whose runbooks run with its own `role/tarem/tarem-automation-*`.
    pub home_account: Option<String>,
}

impl Default for SafetyConfig {
    fn default() -> Self {
        Self {
            opt_in: OptIn::Everyone,
            max_attempts: 3,
            cool_down: Duration::minutes(30),
            in_flight_timeout: Duration::hours(6),
            breaker_limit: 50,
            breaker_window: Duration::hours(1),
            allowed_documents: vec![],
            allowed_roles: vec![],
            unmapped_ops_items: UnmappedOpsItems::All,
            monthly_ops_item_budget: 9_000,
            start_interval: Duration::seconds(1),
            governed_accounts: None,
            home_account: None,
        }
    }
}

/// The mode that applies to this finding: a valid per-check resource tag overrides the
/// mapping's mode, and automated remediation needs the resource's opt-in. Returns the mode
/// and, when it differs from the mapping's, why.
pub fn effective_mode(
    mapping: &Mapping,
    tags: &BTreeMap<String, String>,
    opt_in: &OptIn,
) -> (Mode, Option<String>) {
    let tagged = mapping
        .mode_tag_key
        .as_ref()
        .and_then(|key| tags.get(key).map(|value| (key, value)));
    let (mode, mut note) = match tagged {
        Some((key, value)) => match Mode::parse(value) {
            Some(mode) if mode != mapping.mode => (
                mode,
                Some(format!("the resource tag {key}={value} sets the mode")),
            ),
            Some(mode) => (mode, None),
            None => (
                mapping.mode,
                Some(format!(
                    "the resource tag {key}={value:?} is not a mode; the mapping's {} applies",
                    mapping.mode
                )),
            ),
        },
        None => (mapping.mode, None),
    };
    if mode != Mode::Automated {
        return (mode, note);
    }
    let has = |key: &str, value: &str| tags.get(key).is_some_and(|v| v.eq_ignore_ascii_case(value));
    let refused = match opt_in {
        OptIn::Everyone => None,
        OptIn::Tagged { key, value } if !has(key, value) => Some(format!(
            "the resource has not opted in (tag {key}={value} missing): approval instead"
        )),
        OptIn::ExceptTagged { key, value } if has(key, value) => Some(format!(
            "the resource opted out (tag {key}={value}): approval instead"
        )),
        _ => None,
    };
    match refused {
        Some(reason) => {
            note = Some(reason);
            (Mode::Approval, note)
        }
        None => (mode, note),
    }
}

/// Whether a mapping's scope names an OU (or the root), which only Organizations can match.
pub fn scope_names_units(mapping: &Mapping) -> bool {
    mapping
        .accounts
        .iter()
        .flatten()
        .any(|entry| !entry.bytes().all(|b| b.is_ascii_digit()))
}

/// Why the mapping does not act on a finding of `account` (`None`: the stack's own), which sits
/// in `units` (its OUs and root, when asked): its `accounts` scope names neither the account nor
/// a unit it sits in. The finding is tracked only there.
pub fn out_of_scope(
    mapping: &Mapping,
    account: Option<&str>,
    home: Option<&str>,
    units: &[String],
) -> Option<String> {
    let scope = mapping.accounts.as_ref()?;
    let account = account.or(home)?;
    let inside = scope.contains(account) || units.iter().any(|unit| scope.contains(unit));
    (!inside).then(|| {
        format!(
            "the mapping is scoped to {}; {account} is outside it, so its findings are tracked only",
            scope.iter().cloned().collect::<Vec<_>>().join(", ")
        )
    })
}

/// Whether the resource's tags are needed to decide the mode (they cost a Tagging API call).
pub fn needs_tags(mapping: &Mapping, opt_in: &OptIn) -> bool {
    mapping.mode_tag_key.is_some()
        || (mapping.mode == Mode::Automated && *opt_in != OptIn::Everyone)
}

/// Whether an unmapped finding gets an OpsItem, and why not.
pub fn unmapped_ops_item(
    finding: &Finding,
    policy: UnmappedOpsItems,
    created_this_month: u64,
    budget: u64,
) -> Result<(), String> {
    match policy {
        UnmappedOpsItems::None => {
            Err("OpsItems for unmapped findings are off (stack setting)".into())
        }
        UnmappedOpsItems::RedOnly if finding.resource_status != Status::Red => {
            Err("OpsItems for unmapped findings are limited to Red (stack setting)".into())
        }
        _ if created_this_month >= budget => Err(format!(
            "this month's OpsItem budget ({budget}) is spent; only mapped findings get one"
        )),
        _ => Ok(()),
    }
}

/// Why a finding's account may not be acted for, if it may not.
pub fn ungoverned(finding: &Finding, governed: Option<&BTreeSet<String>>) -> Option<String> {
    let governed = governed?;
    match finding.account_id.as_deref() {
        Some(account) if governed.contains(account) => None,
        account => Some(format!(
            "the finding's account {} is not governed by this stack (it acts only for {}); nothing starts",
            account.unwrap_or("(none)"),
            governed.iter().cloned().collect::<Vec<_>>().join(", ")
        )),
    }
}

/// The counter that holds an account's starts for a check in the breaker window containing
/// `now`: one account's failures never trip another's breaker.
pub fn breaker_counter(
    account: &str,
    check_name: &str,
    now: DateTime<Utc>,
    window: Duration,
) -> String {
    let window_seconds = window.num_seconds().max(1);
    format!(
        "breaker#{account}#{}#{}",
        crate::finding::short_hash(check_name),
        now.timestamp().div_euclid(window_seconds)
    )
}

/// The counter that hands out places to the starts a breaker window refused, so each later
/// window wakes only its share of them.
pub fn breaker_queue(breaker_counter: &str) -> String {
    format!("{breaker_counter}#queue")
}

/// The counter of an account's OpsItems created in `now`'s calendar month (OpsCenter's quota
/// is per account).
pub fn ops_item_counter(account: &str, now: DateTime<Utc>) -> String {
    format!("opsitems#{account}#{}", now.format("%Y-%m"))
}
