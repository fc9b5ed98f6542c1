//! The safety controls, as data and pure decisions: modes and resource opt-in, attempt caps,
//! cool-down and the in-flight guard, allowlists, and what OpsItems unmapped findings get.
//! The handler supplies the facts (tags, the finding's attempt history, counters, the kill
//! switch) and carries the answers out.

use crate::decide::client_token;
use crate::finding::{Finding, Status};
use crate::mapping::{Mapping, Mode};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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

/// The stack's safety settings. Defaults are the safe ones the README documents.
#[derive(Debug, Clone)]
pub struct SafetyConfig {
    pub opt_in: OptIn,
    /// Starts allowed per finding within `attempt_window`.
    pub max_attempts: u32,
    pub attempt_window: Duration,
    /// Minimum time between two starts for one finding.
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
}

impl Default for SafetyConfig {
    fn default() -> Self {
        Self {
            opt_in: OptIn::Everyone,
            max_attempts: 3,
            attempt_window: Duration::hours(24),
            cool_down: Duration::minutes(30),
            in_flight_timeout: Duration::hours(6),
            breaker_limit: 50,
            breaker_window: Duration::hours(1),
            allowed_documents: vec![],
            allowed_roles: vec![],
            unmapped_ops_items: UnmappedOpsItems::All,
            monthly_ops_item_budget: 9_000,
            start_interval: Duration::seconds(1),
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

/// Whether the resource's tags are needed to decide the mode (they cost a Tagging API call).
pub fn needs_tags(mapping: &Mapping, opt_in: &OptIn) -> bool {
    mapping.mode_tag_key.is_some()
        || (mapping.mode == Mode::Automated && *opt_in != OptIn::Everyone)
}

/// Every `AutomationAssumeRole` value must be one of the stack's roles.
pub fn check_roles(
    parameters: &BTreeMap<String, Vec<String>>,
    allowed_roles: &[String],
) -> Result<(), String> {
    if allowed_roles.is_empty() {
        return Ok(());
    }
    match parameters
        .get("AutomationAssumeRole")
        .into_iter()
        .flatten()
        .find(|role| !allowed_roles.contains(role))
    {
        Some(role) => Err(format!(
            "the AutomationAssumeRole {role} is not one of the stack's automation roles ({})",
            allowed_roles.join(", ")
        )),
        None => Ok(()),
    }
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

/// One remediation attempt of a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub number: u32,
    pub client_token: String,
    /// The finding time of the record that made the attempt.
    pub finding_time_millis: i64,
    /// Epoch seconds.
    pub started_at: i64,
    pub document: String,
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
    /// The execution's final status, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// A finding's attempt history: the claim that makes each start happen once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemediationState {
    pub finding_key: String,
    /// Optimistic concurrency: every write is conditional on the version read.
    pub version: u64,
    /// The number the next attempt gets (attempt numbers are never reused).
    pub next_attempt: u32,
    /// Recent attempts, oldest first.
    pub attempts: Vec<Attempt>,
    /// The finding's OpsItem, as created (resolving by id does not depend on search indexing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops_item_id: Option<String>,
    /// TTL, epoch seconds.
    #[serde(default)]
    pub expires_at: i64,
}

/// Attempts kept in the state; older ones are outside any window that matters.
const KEPT_ATTEMPTS: usize = 20;

impl RemediationState {
    pub fn new(finding_key: &str) -> Self {
        Self {
            finding_key: finding_key.to_owned(),
            version: 0,
            next_attempt: 1,
            attempts: vec![],
            ops_item_id: None,
            expires_at: 0,
        }
    }

    /// The next version of this state, changed by `change`.
    pub fn changed(&self, change: impl FnOnce(&mut Self)) -> Self {
        let mut next = self.clone();
        change(&mut next);
        next.version = self.version + 1;
        next
    }

    /// The state after claiming `attempt`.
    pub fn with_attempt(&self, attempt: Attempt) -> Self {
        self.changed(|next| {
            next.next_attempt = attempt.number + 1;
            next.attempts.push(attempt);
            let excess = next.attempts.len().saturating_sub(KEPT_ATTEMPTS);
            next.attempts.drain(..excess);
        })
    }

    /// The attempt with this ClientToken.
    pub fn attempt_mut(&mut self, client_token: &str) -> Option<&mut Attempt> {
        self.attempts
            .iter_mut()
            .find(|a| a.client_token == client_token)
    }
}

/// Why the attempt gate did not start a runbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// A newer record of this finding already made an attempt.
    Superseded,
    InFlight {
        execution_id: String,
    },
    CoolDown {
        until: DateTime<Utc>,
    },
    /// The cap is reached: remediation did not fix this; a human takes over.
    CapReached {
        attempts: usize,
    },
}

impl Hold {
    pub fn control(&self) -> &'static str {
        match self {
            Hold::Superseded => "superseded",
            Hold::InFlight { .. } => "in-flight",
            Hold::CoolDown { .. } => "cool-down",
            Hold::CapReached { .. } => "attempt-cap",
        }
    }

    pub fn describe(&self, limits: &AttemptLimits) -> String {
        match self {
            Hold::Superseded => "a newer record of this finding already made its attempt".into(),
            Hold::InFlight { execution_id } => {
                format!("execution {execution_id} for this finding has no final status yet")
            }
            Hold::CoolDown { until } => format!(
                "cool-down: the last attempt was less than {} minutes ago; next possible at {}",
                limits.cool_down.num_minutes(),
                crate::finding::format_time(*until)
            ),
            Hold::CapReached { attempts } => format!(
                "remediation did not fix this: {attempts} attempts in {} hours (cap {}); left to a human",
                limits.window.num_hours(),
                limits.max_attempts
            ),
        }
    }
}

/// The attempt gate's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// A new attempt: claim it, then start with this number and token.
    Start {
        number: u32,
        client_token: String,
    },
    /// An attempt was claimed but never confirmed started: start again with its token (SSM
    /// returns the same execution if the first call got through).
    Resume(Attempt),
    /// This record's attempt already started.
    AlreadyStarted {
        execution_id: String,
    },
    Hold(Hold),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptLimits {
    pub max_attempts: u32,
    pub window: Duration,
    pub cool_down: Duration,
    pub in_flight_timeout: Duration,
}

impl AttemptLimits {
    /// The stack's limits with the mapping's overrides, when it has any.
    pub fn for_mapping(config: &SafetyConfig, mapping: Option<&Mapping>) -> Self {
        Self {
            max_attempts: mapping
                .and_then(|m| m.max_attempts)
                .unwrap_or(config.max_attempts),
            window: config.attempt_window,
            cool_down: mapping
                .and_then(|m| m.cool_down_minutes)
                .map(|minutes| Duration::minutes(i64::from(minutes)))
                .unwrap_or(config.cool_down),
            in_flight_timeout: config.in_flight_timeout,
        }
    }
}

/// Decides whether this record may start a runbook for its finding.
pub fn gate(
    state: Option<&RemediationState>,
    finding: &Finding,
    now: DateTime<Utc>,
    limits: &AttemptLimits,
) -> Gate {
    let fresh = RemediationState::new(&finding.hash_key);
    let state = state.unwrap_or(&fresh);
    let record_time = finding.time_millis();
    if let Some(attempt) = state
        .attempts
        .iter()
        .find(|a| a.finding_time_millis == record_time)
    {
        return match &attempt.execution_id {
            Some(id) => Gate::AlreadyStarted {
                execution_id: id.clone(),
            },
            None => Gate::Resume(attempt.clone()),
        };
    }
    if let Some(last) = state.attempts.last() {
        if last.finding_time_millis > record_time {
            return Gate::Hold(Hold::Superseded);
        }
        let Some(execution_id) = &last.execution_id else {
            return Gate::Resume(last.clone());
        };
        let started = DateTime::from_timestamp(last.started_at, 0).unwrap_or(now);
        if last.status.is_none() && now - started < limits.in_flight_timeout {
            return Gate::Hold(Hold::InFlight {
                execution_id: execution_id.clone(),
            });
        }
        if now - started < limits.cool_down {
            return Gate::Hold(Hold::CoolDown {
                until: started + limits.cool_down,
            });
        }
    }
    let window_start = (now - limits.window).timestamp();
    let recent = state
        .attempts
        .iter()
        .filter(|a| a.started_at > window_start)
        .count();
    if recent >= limits.max_attempts as usize {
        return Gate::Hold(Hold::CapReached { attempts: recent });
    }
    Gate::Start {
        number: state.next_attempt,
        client_token: client_token(&finding.hash_key, state.next_attempt),
    }
}

/// The counter that holds a check's starts in the breaker window containing `now`.
pub fn breaker_counter(check_name: &str, now: DateTime<Utc>, window: Duration) -> String {
    let window_seconds = window.num_seconds().max(1);
    format!(
        "breaker#{}#{}",
        crate::finding::short_hash(check_name),
        now.timestamp().div_euclid(window_seconds)
    )
}

/// The counter of OpsItems created in `now`'s calendar month.
pub fn ops_item_counter(now: DateTime<Utc>) -> String {
    format!("opsitems#{}", now.format("%Y-%m"))
}
