//! What the mapping makes of a finding, whether it gets an OpsItem, and whether a start happens now.

use super::approval::APPROVAL_CONTROL;
use super::member::MEMBER_GATE;
use super::{Facts, Lifecycle, Need, OpsItemWant, Route, Start};
use crate::decide::{
    Remediation, automation_tags, client_token, plan_remediation, resource_lock_key,
};
use crate::episode::{Approval, Attempt, Episode, Stage};
use crate::finding::{Finding, Status, format_time};
use crate::mapping::Mode;
use crate::ports::StartAutomation;
use crate::safety::{
    UnmappedOpsItems, effective_mode, needs_tags, out_of_scope, scope_names_units,
};
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;

impl Lifecycle<'_> {
    /// What the mapping makes of the finding, and its limits.
    pub(super) fn route(&self, row: &Finding, facts: &Facts<'_>) -> Result<Route, Need> {
        self.route_approved(row, facts, None)
    }

    /// [`Self::route`] for an episode a person approved: where the mapping (or the resource's
    /// opt-in) asks for approval, the approved start goes ahead as an automated one would, under
    /// every other control. A dry run or an inactive mapping stays what it is.
    pub(super) fn route_approved(
        &self,
        row: &Finding,
        facts: &Facts<'_>,
        approval: Option<&Approval>,
    ) -> Result<Route, Need> {
        let safety = &self.config.safety;
        let mapping = facts.mapping.ok_or(Need::Mapping)?;
        // The scope first: outside it nothing more is asked (no tags read there).
        let outside = match mapping {
            Some(Ok(mapping)) if mapping.accounts.is_some() => {
                let units = if scope_names_units(mapping) {
                    facts.units.ok_or(Need::Units)?
                } else {
                    &[]
                };
                out_of_scope(
                    mapping,
                    row.account_id.as_deref(),
                    safety.home_account.as_deref(),
                    units,
                )
            }
            _ => None,
        };
        let (mode, note) = match mapping {
            Some(Ok(_)) if outside.is_some() => (Mode::Inactive, outside),
            Some(Ok(mapping)) => {
                let empty = BTreeMap::new();
                let tags = if needs_tags(mapping, &safety.opt_in) && row.resource_arn().is_some() {
                    facts.tags.ok_or(Need::Tags)?
                } else {
                    &empty
                };
                match (effective_mode(mapping, tags, &safety.opt_in), approval) {
                    ((Mode::Approval, _), Some(approval)) => (
                        Mode::Automated,
                        Some(format!("approved by {} at {}", approval.by, approval.at)),
                    ),
                    (decided, _) => decided,
                }
            }
            _ => (Mode::Approval, None),
        };
        let valid = mapping.and_then(|m| m.as_ref().ok());
        Ok(Route {
            lock: valid.map(|mapping| resource_lock_key(row, mapping)),
            remediation: plan_remediation(row, mapping, mode, note.as_deref(), safety),
            max_attempts: valid
                .and_then(|m| m.max_attempts)
                .map_or(safety.max_attempts, |m| m.min(safety.max_attempts)),
            cool_down: valid
                .and_then(|m| m.cool_down_minutes)
                .map_or(safety.cool_down, |m| {
                    Duration::minutes(i64::from(m)).max(safety.cool_down)
                }),
        })
    }

    /// Whether the episode gets an OpsItem.
    pub(super) fn ops_item_want(
        &self,
        row: &Finding,
        route: &Route,
        facts: &Facts<'_>,
    ) -> Result<OpsItemWant, Need> {
        let safety = &self.config.safety;
        Ok(match &route.remediation {
            Remediation::Inactive { reason, .. } => OpsItemWant::No(format!("inactive: {reason}")),
            Remediation::NotMapped => match safety.unmapped_ops_items {
                UnmappedOpsItems::None => {
                    OpsItemWant::No("OpsItems for unmapped findings are off".into())
                }
                UnmappedOpsItems::RedOnly if row.resource_status != Status::Red => {
                    OpsItemWant::No("OpsItems for unmapped findings are limited to Red".into())
                }
                _ => {
                    let used = facts.ops_items_this_month.ok_or(Need::OpsItemBudget)?;
                    if used >= safety.monthly_ops_item_budget {
                        OpsItemWant::Owed(format!(
                            "this month's OpsItem budget ({}) is spent; owed until it frees",
                            safety.monthly_ops_item_budget
                        ))
                    } else {
                        OpsItemWant::Yes
                    }
                }
            },
            _ => OpsItemWant::Yes,
        })
    }

    /// Moves `next` to what its route allows now: a start (Remediating, with a new attempt), a
    /// hold, escalation, or flagged with the reason nothing applies.
    pub(super) fn try_start(
        &self,
        next: &mut Episode,
        route: &Route,
        facts: &Facts<'_>,
    ) -> Result<Option<Start>, Need> {
        let now = self.now_text();
        let hold = |control: &str, reason: String, until: Option<DateTime<Utc>>| Stage::Held {
            control: control.to_owned(),
            reason,
            until: until.map(format_time),
        };
        let stage = match &route.remediation {
            Remediation::Start(start) => {
                let made = next.attempts.len();
                let cool_until = next.last_start().and_then(|last| {
                    DateTime::from_timestamp(last, 0).map(|last| last + route.cool_down)
                });
                let safety = &self.config.safety;
                if made >= route.max_attempts as usize {
                    Stage::Escalated {
                        reason: format!(
                            "remediation did not fix this: {made} attempts in this episode (cap {}); a person must",
                            route.max_attempts
                        ),
                    }
                } else if next.last_attempt().is_some_and(|a| !a.is_over()) {
                    hold(
                        "in-flight",
                        "the last attempt has no final status yet".into(),
                        None,
                    )
                } else if let Some(until) = cool_until.filter(|until| self.now < *until) {
                    hold(
                        "cool-down",
                        format!(
                            "the last start was less than {} minutes ago",
                            route.cool_down.num_minutes()
                        ),
                        Some(until),
                    )
                } else if !facts.starts_allowed.ok_or(Need::KillSwitch)? {
                    hold(
                        "kill-switch",
                        "automation starts are switched off (the stack's kill switch parameter is `off`)".into(),
                        None,
                    )
                } else if let Some(reason) = facts.member_gate.ok_or(Need::MemberGate)? {
                    hold(MEMBER_GATE, reason.to_owned(), None)
                } else if let Some(holder) = facts.resource_busy {
                    let (reason, until) = match holder.released_at {
                        Some(released) => (
                            format!(
                                "another finding's runbook ({} for {:?}) ended on this resource less than {} minutes ago; waiting for the cool-down",
                                holder.document,
                                holder.check_name,
                                route.cool_down.num_minutes()
                            ),
                            DateTime::from_timestamp(released, 0).map(|r| r + route.cool_down),
                        ),
                        None => (
                            format!(
                                "another runbook runs on this resource: {} for {:?} (ClientToken {}); one at a time",
                                holder.document, holder.check_name, holder.client_token
                            ),
                            None,
                        ),
                    };
                    hold("in-flight", reason, until)
                } else if let Stage::Held {
                    control,
                    until: Some(until),
                    ..
                } = &next.stage
                    && control == "circuit-breaker"
                    && !self.passed(until)
                {
                    // Its place in the window's queue stands: asking the breaker again before
                    // its turn would only take a new place at the back.
                    next.stage.clone()
                } else if let Some(place) = facts.breaker_queue {
                    let window = safety.breaker_window.num_seconds().max(1);
                    // The first `limit` refused wake when the window turns, the next `limit` a
                    // window later, and so on: each window wakes only what it can start.
                    let windows_ahead = place.saturating_sub(1) / safety.breaker_limit.max(1);
                    let end = i64::try_from(windows_ahead)
                        .ok()
                        .and_then(|ahead| {
                            ahead.checked_add(self.now.timestamp().div_euclid(window) + 1)
                        })
                        .and_then(|turn| turn.checked_mul(window))
                        .and_then(|at| DateTime::from_timestamp(at, 0));
                    hold(
                        "circuit-breaker",
                        format!(
                            "circuit breaker: {} starts for this check within {} minutes; waiting for the window to turn (place {place} in its queue)",
                            safety.breaker_limit,
                            safety.breaker_window.num_minutes(),
                        ),
                        end,
                    )
                } else {
                    let number = made as u32 + 1;
                    let token = client_token(&next.finding_key, &next.episode, number);
                    next.attempts.push(Attempt {
                        number,
                        client_token: token.clone(),
                        started_at: self.now.timestamp(),
                        document: start.document.clone(),
                        region: start.region.clone(),
                        max_attempts: route.max_attempts,
                        cool_down_minutes: route.cool_down.num_minutes(),
                        execution_id: None,
                        status: None,
                        ended_at: None,
                        failure: None,
                        lock: route.lock.clone(),
                    });
                    next.stage = Stage::Remediating;
                    next.updated_at = now;
                    let request = StartAutomation {
                        client_token: token.clone(),
                        tags: automation_tags(
                            &next.finding_key,
                            next.ops_item_id.as_deref(),
                            &token,
                        ),
                        ..start.clone()
                    };
                    return Ok(Some(Start {
                        request,
                        resume: false,
                        withdraw: None,
                        lock: route.lock.clone(),
                    }));
                }
            }
            // The reason carries the command an operator can paste.
            Remediation::Approval { .. } => {
                hold(APPROVAL_CONTROL, route.remediation.describe(), None)
            }
            Remediation::DryRun(start) => hold(
                "dry-run",
                format!(
                    "the mapping's mode is dry-run: would start {} in {}",
                    start.document, start.region
                ),
                None,
            ),
            other => Stage::Flagged {
                reason: other.describe(),
            },
        };
        if next.stage != stage {
            next.stage = stage;
            next.updated_at = now;
        }
        Ok(None)
    }
}
