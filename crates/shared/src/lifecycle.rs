//! The one decision of the remediation lifecycle: given a finding's episode, what happened (the
//! tracker's current row, an execution's outcome, or a sweep's tick) and the facts gathered,
//! what to do. Pure: the handlers gather facts and carry out the [`Decision`]; `tarem plan` and
//! `tarem simulate` call the same function. "Why did (or didn't) this runbook start?" is answered
//! here.
//!
//! Rules:
//! - An episode begins when a finding becomes flagged and ends only when Trusted Advisor reports
//!   it Green. One OpsItem per episode.
//! - Starts happen only when the episode begins, when a verification fails, or when a hold ends
//!   (a sweep's tick) — never on a plain refresh. A redelivered record may resume a start it had
//!   already claimed (same ClientToken).
//! - At most `max_attempts` starts per episode: min(mapping, stack). Cool-down between two starts
//!   of a finding, across episodes: max(mapping, stack).
//! - A Success is verified, not assumed: the episode waits for Trusted Advisor's Green; a flagged
//!   refresh whose item time is later than the execution's end plus the grace period means the
//!   fix did not hold.

use crate::automation_event::{is_final, is_success};
use crate::decide::{Remediation, automation_tags, client_token, plan_remediation};
use crate::episode::{Attempt, Episode, Stage};
use crate::finding::{Finding, Status, format_time};
use crate::mapping::{Mapping, MappingError, Mode};
use crate::opsitem::{Note, automation_data, ops_item_for, stage_update};
use crate::ports::{NewOpsItem, OpsItemStatus, OpsItemUpdate, StartAutomation};
use crate::safety::{SafetyConfig, UnmappedOpsItems, effective_mode, needs_tags};
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;

/// When a successful runbook's OpsItem is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResolveOn {
    /// When Trusted Advisor confirms the fix (Green), or the verify window passes.
    #[default]
    Verified,
    /// At the runbook's Success, as AWS's walkthrough does (verification still runs: a later
    /// flagged refresh reopens the OpsItem).
    Success,
}

/// The stack's lifecycle settings.
#[derive(Debug, Clone)]
pub struct LifecycleConfig {
    pub safety: SafetyConfig,
    /// A flagged refresh counts against a fix only when its item time is this long after the
    /// execution ended (Trusted Advisor's data lags).
    pub verify_grace: Duration,
    /// How long a fix waits for Trusted Advisor's word.
    pub verify_window: Duration,
    pub resolve_on: ResolveOn,
    /// OpsItem `Source`.
    pub ops_item_source: String,
    /// How long closed episodes and execution rows are kept.
    pub retention: Duration,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        Self {
            safety: SafetyConfig::default(),
            verify_grace: Duration::minutes(30),
            verify_window: Duration::hours(24),
            resolve_on: ResolveOn::Verified,
            ops_item_source: "TrustedAdvisor".into(),
            retention: Duration::days(90),
        }
    }
}

/// The status an attempt ends with when SSM refused to start it for good (access denied, an
/// unknown document, a bad parameter): a failed attempt like any other.
pub const REFUSED: &str = "Refused";

/// A claimed attempt with no execution yet is resumed by the sweep after this long (a handler
/// that crashed between claim and start); a redelivered record resumes it at once.
pub const RESUME_AFTER: Duration = Duration::minutes(5);

/// An execution's outcome, as the status event or the execution sweep reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub execution_id: String,
    /// From the execution's tags or row; `None` when neither names it.
    pub client_token: Option<String>,
    pub status: String,
    pub region: String,
    pub document: Option<String>,
    pub failure: Option<String>,
    pub at: DateTime<Utc>,
}

/// What happened to a finding.
#[derive(Debug, Clone, Copy)]
pub enum Happening<'a> {
    /// The tracker's current row, from a stream record (already checked to be current).
    Tracked(&'a Finding),
    /// An execution of the finding changed status.
    Outcome(&'a Outcome),
    /// The sweep looks again, with the tracker's current row.
    Tick(&'a Finding),
}

/// A fact the decision needs and was not given: the handler gathers it and asks again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Need {
    Mapping,
    Tags,
    KillSwitch,
    OpsItemBudget,
}

/// The facts gathered for a decision; `None` is "not gathered yet".
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    /// `Some(None)`: the check has no mapping.
    pub mapping: Option<Option<&'a Result<Mapping, MappingError>>>,
    pub tags: Option<&'a BTreeMap<String, String>>,
    pub starts_allowed: Option<bool>,
    pub ops_items_this_month: Option<u64>,
    /// The circuit breaker refused the start (learnt by trying to count it).
    pub breaker_open: bool,
}

/// A start to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// With its ClientToken and tags (the OpsItem tag is added once the OpsItem exists).
    pub request: StartAutomation,
    /// A start already claimed (the same attempt again): no new breaker count.
    pub resume: bool,
}

/// What to do. The handler carries it out in this order: close the previous episode's OpsItem,
/// open or update this one's, write the episode (the claim, when starting), then start.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The episode afterwards; written when it differs from the one read.
    pub episode: Option<Episode>,
    pub close_previous: Option<(String, OpsItemUpdate)>,
    pub open_ops_item: Option<NewOpsItem>,
    pub update_ops_item: Option<OpsItemUpdate>,
    pub start: Option<Start>,
    /// Why the episode has no OpsItem, when one was considered and not opened (the stack's
    /// setting for unmapped findings, or the monthly budget: then it is owed).
    pub no_ops_item: Option<String>,
    /// One line: what and why.
    pub why: String,
}

impl Decision {
    fn nothing(episode: Option<&Episode>, why: impl Into<String>) -> Self {
        Decision {
            episode: episode.cloned(),
            close_previous: None,
            open_ops_item: None,
            update_ops_item: None,
            start: None,
            no_ops_item: None,
            why: why.into(),
        }
    }
}

/// The route a mapping gives a flagged finding, and the limits that apply.
struct Route {
    remediation: Remediation,
    max_attempts: u32,
    cool_down: Duration,
}

/// Whether an episode gets an OpsItem.
enum OpsItemWant {
    Yes,
    /// Not now (the monthly budget is spent): owed, the sweep creates it later.
    Owed(String),
    No(String),
}

pub struct Lifecycle<'c> {
    pub config: &'c LifecycleConfig,
    pub now: DateTime<Utc>,
}

impl Lifecycle<'_> {
    /// The one decision (module docs).
    pub fn decide(
        &self,
        current: Option<&Episode>,
        happening: Happening<'_>,
        facts: &Facts<'_>,
    ) -> Result<Decision, Need> {
        match happening {
            Happening::Tracked(row) => self.tracked(current, row, facts),
            Happening::Outcome(outcome) => Ok(self.outcome(current, outcome)),
            Happening::Tick(row) => match current {
                Some(episode) if row.resource_status.is_flagged() && episode.is_episode_of(row) => {
                    self.tick(episode, row, facts)
                }
                // The Green (or the new episode) the stream has not brought yet.
                _ => self.tracked(current, row, facts),
            },
        }
    }

    fn now_text(&self) -> String {
        format_time(self.now)
    }

    fn tracked(
        &self,
        current: Option<&Episode>,
        row: &Finding,
        facts: &Facts<'_>,
    ) -> Result<Decision, Need> {
        if !row.resource_status.is_flagged() {
            return Ok(self.fixed(current, row));
        }
        match current {
            Some(episode) if episode.is_episode_of(row) => self.refreshed(episode, row, facts),
            _ => self.begin(current, row, facts),
        }
    }

    /// Trusted Advisor reports the resource Green: the open episode is fixed.
    fn fixed(&self, current: Option<&Episode>, row: &Finding) -> Decision {
        let Some(episode) = current.filter(|e| e.stage.is_open()) else {
            return Decision::nothing(current, "Green: no open episode");
        };
        let mut next = episode.clone();
        next.stage = Stage::Fixed {
            at: row.last_updated_time.clone(),
        };
        next.ops_item_owed = false;
        next.updated_at = self.now_text();
        next.expires_at = (self.now + self.config.retention).timestamp();
        let note = Note {
            state: "fixed",
            control: None,
            detail: format!(
                "Trusted Advisor reported the resource Green at {}",
                row.last_updated_time
            ),
            start: None,
            attempts: attempts_note(&next),
        };
        // A runbook ran while its OpsItem was owed: the record is created now, resolved.
        let open_ops_item = (next.ops_item_id.is_none() && !next.attempts.is_empty())
            .then(|| ops_item_for(row, &next, &note, &self.config.ops_item_source));
        let update = (next.ops_item_id.is_some() || open_ops_item.is_some())
            .then(|| stage_update(&next, &note, Some(row)));
        Decision {
            episode: Some(next),
            open_ops_item,
            update_ops_item: update,
            why: note.detail,
            ..Decision::nothing(None, "")
        }
    }

    /// The finding became flagged: a new episode (closing the previous one if its Green never
    /// reached us).
    fn begin(
        &self,
        previous: Option<&Episode>,
        row: &Finding,
        facts: &Facts<'_>,
    ) -> Result<Decision, Need> {
        let route = self.route(row, facts)?;
        let mut next = Episode::opened_by(row, previous, &self.now_text());
        let start = self.try_start(&mut next, &route, facts)?;
        let note = self.note(&next, &route, start.as_ref());
        let close_previous = previous
            .filter(|p| p.stage.is_open())
            .and_then(|p| {
                let id = p.ops_item_id.clone()?;
                let mut closed = p.clone();
                closed.stage = Stage::Fixed {
                    at: self.now_text(),
                };
                let note = Note {
                    state: "fixed",
                    control: None,
                    detail: "a new flagged episode began, so Trusted Advisor reported this one fixed in between".into(),
                    start: None,
                    attempts: attempts_note(&closed),
                };
                Some((id, stage_update(&closed, &note, None)))
            });
        let (open_ops_item, no_ops_item) = match self.ops_item_want(row, &route, facts)? {
            OpsItemWant::Yes => (
                Some(ops_item_for(
                    row,
                    &next,
                    &note,
                    &self.config.ops_item_source,
                )),
                None,
            ),
            OpsItemWant::Owed(reason) => {
                next.ops_item_owed = true;
                (None, Some(reason))
            }
            OpsItemWant::No(reason) => (None, Some(reason)),
        };
        Ok(Decision {
            why: format!("new episode; {}", note.detail),
            episode: Some(next),
            close_previous,
            open_ops_item,
            update_ops_item: None,
            start,
            no_ops_item,
        })
    }

    /// A flagged refresh inside the episode.
    fn refreshed(
        &self,
        episode: &Episode,
        row: &Finding,
        facts: &Facts<'_>,
    ) -> Result<Decision, Need> {
        let mut next = episode.clone();
        let status_changed = next.status != row.resource_status;
        next.status = row.resource_status;
        // A redelivered record whose claimed start never reached SSM: start it now, same token.
        if let (Stage::Remediating, Some(attempt)) = (&next.stage, next.last_attempt())
            && attempt.execution_id.is_none()
            && !attempt.is_over()
        {
            return self.resume(next, row, facts);
        }
        if let Some(why_failed) = self.failed_verification(&next, row) {
            let route = self.route(row, facts)?;
            let start = self.try_start(&mut next, &route, facts)?;
            let mut note = self.note(&next, &route, start.as_ref());
            note.detail = format!("{why_failed}; {}", note.detail);
            return Ok(Decision {
                update_ops_item: next
                    .ops_item_id
                    .as_ref()
                    .map(|_| stage_update(&next, &note, Some(row))),
                why: note.detail,
                episode: Some(next),
                start,
                ..Decision::nothing(None, "")
            });
        }
        let mut decision = Decision::nothing(Some(&next), "a refresh: nothing to do");
        if status_changed && next.ops_item_id.is_some() {
            let route = self.route(row, facts)?;
            let note = self.note(&next, &route, None);
            decision.update_ops_item = Some(stage_update(&next, &note, Some(row)));
            decision.why = format!("now {}", row.resource_status);
        }
        self.owed_ops_item(&mut decision, row, facts)?;
        Ok(decision)
    }

    /// Why a flagged refresh shows that a successful runbook did not fix the finding.
    fn failed_verification(&self, episode: &Episode, row: &Finding) -> Option<String> {
        if !matches!(episode.stage, Stage::Verifying { .. } | Stage::Unconfirmed) {
            return None;
        }
        let ended = episode.last_attempt()?.ended_at?;
        let deadline = ended.saturating_add(self.config.verify_grace.num_seconds());
        (row.time_millis() > deadline.saturating_mul(1000)).then(|| {
            format!(
                "the fix did not hold: Trusted Advisor still reports {} as of {}, after the runbook ended at {}",
                row.resource_status,
                row.last_updated_time,
                DateTime::from_timestamp(ended, 0).map_or_else(String::new, format_time)
            )
        })
    }

    /// The sweep's look at an open episode: holds that ended, verify windows that passed, starts
    /// that never reached SSM, executions whose status never came, OpsItems owed.
    fn tick(&self, episode: &Episode, row: &Finding, facts: &Facts<'_>) -> Result<Decision, Need> {
        let mut next = episode.clone();
        let mut decision = match &episode.stage {
            Stage::Flagged { .. } | Stage::Held { .. } => {
                let route = self.route(row, facts)?;
                let start = self.try_start(&mut next, &route, facts)?;
                if next.stage == episode.stage && start.is_none() {
                    Decision::nothing(Some(episode), "still waiting")
                } else {
                    let note = self.note(&next, &route, start.as_ref());
                    Decision {
                        update_ops_item: next
                            .ops_item_id
                            .as_ref()
                            .map(|_| stage_update(&next, &note, None)),
                        why: note.detail,
                        episode: Some(next),
                        start,
                        ..Decision::nothing(None, "")
                    }
                }
            }
            Stage::Remediating => match episode.last_attempt() {
                Some(attempt)
                    if attempt.execution_id.is_none()
                        && !attempt.is_over()
                        && self.now.timestamp() - attempt.started_at
                            >= RESUME_AFTER.num_seconds() =>
                {
                    self.resume(next, row, facts)?
                }
                Some(attempt)
                    if !attempt.is_over()
                        && self.now.timestamp() - attempt.started_at
                            >= self.config.safety.in_flight_timeout.num_seconds() =>
                {
                    let outcome = Outcome {
                        execution_id: attempt.execution_id.clone().unwrap_or_default(),
                        client_token: Some(attempt.client_token.clone()),
                        status: "TimedOut".into(),
                        region: attempt.region.clone(),
                        document: Some(attempt.document.clone()),
                        failure: Some(format!(
                            "no final status {} hours after the start (in-flight timeout); counted as failed",
                            self.config.safety.in_flight_timeout.num_hours()
                        )),
                        at: self.now,
                    };
                    self.outcome(Some(episode), &outcome)
                }
                _ => Decision::nothing(Some(episode), "remediating"),
            },
            Stage::Verifying { until } if self.passed(until) => {
                next.stage = Stage::Unconfirmed;
                next.updated_at = self.now_text();
                let note = Note {
                    state: "unconfirmed",
                    control: None,
                    detail: format!(
                        "the runbook succeeded, not yet confirmed: Trusted Advisor said nothing within {} hours; a later flagged refresh reopens this OpsItem",
                        self.config.verify_window.num_hours()
                    ),
                    start: None,
                    attempts: attempts_note(&next),
                };
                Decision {
                    update_ops_item: next
                        .ops_item_id
                        .as_ref()
                        .map(|_| stage_update(&next, &note, None)),
                    why: note.detail,
                    episode: Some(next),
                    ..Decision::nothing(None, "")
                }
            }
            _ => Decision::nothing(Some(episode), "nothing is waiting"),
        };
        self.owed_ops_item(&mut decision, row, facts)?;
        Ok(decision)
    }

    fn passed(&self, until: &str) -> bool {
        crate::finding::parse_time(until).is_none_or(|until| self.now >= until)
    }

    /// An open episode owes its OpsItem: create it now when the budget allows.
    fn owed_ops_item(
        &self,
        decision: &mut Decision,
        row: &Finding,
        facts: &Facts<'_>,
    ) -> Result<(), Need> {
        let Some(next) = decision.episode.as_mut() else {
            return Ok(());
        };
        if !next.stage.is_open() || next.ops_item_id.is_some() || decision.open_ops_item.is_some() {
            return Ok(());
        }
        let route = self.route(row, facts)?;
        match self.ops_item_want(row, &route, facts)? {
            OpsItemWant::Yes => {
                next.ops_item_owed = false;
                let note = self.note(next, &route, None);
                decision.open_ops_item =
                    Some(ops_item_for(row, next, &note, &self.config.ops_item_source));
                // OpsItems open as Open; the stage may say otherwise (a runbook already ran).
                if Note::ops_item_status(&next.stage) != OpsItemStatus::Open {
                    decision
                        .update_ops_item
                        .get_or_insert_with(|| stage_update(next, &note, None));
                }
            }
            OpsItemWant::Owed(reason) => {
                next.ops_item_owed = true;
                decision.no_ops_item = Some(reason);
            }
            OpsItemWant::No(reason) => {
                next.ops_item_owed = false;
                decision.no_ops_item = Some(reason);
            }
        }
        Ok(())
    }

    /// The claimed attempt again, with its ClientToken (SSM returns the same execution if the
    /// first call got through).
    fn resume(&self, next: Episode, row: &Finding, facts: &Facts<'_>) -> Result<Decision, Need> {
        let Some(attempt) = next.last_attempt().cloned() else {
            return Ok(Decision::nothing(Some(&next), "nothing to resume"));
        };
        let route = self.route(row, facts)?;
        let Some(base) = route.remediation.start() else {
            return Ok(Decision::nothing(Some(&next), "nothing to resume"));
        };
        let request = StartAutomation {
            client_token: attempt.client_token.clone(),
            tags: automation_tags(
                &next.finding_key,
                next.ops_item_id.as_deref(),
                &attempt.client_token,
            ),
            document: attempt.document.clone(),
            region: attempt.region.clone(),
            ..base.clone()
        };
        Ok(Decision {
            why: format!(
                "resuming attempt {} (ClientToken {})",
                attempt.number, attempt.client_token
            ),
            episode: Some(next),
            start: Some(Start {
                request,
                resume: true,
            }),
            ..Decision::nothing(None, "")
        })
    }

    /// An execution's outcome.
    fn outcome(&self, current: Option<&Episode>, outcome: &Outcome) -> Decision {
        let (key, data) = automation_data(
            &outcome.execution_id,
            &outcome.region,
            outcome.document.as_deref(),
            &outcome.status,
            outcome.failure.as_deref(),
        );
        let record_only = |episode: Option<&Episode>, why: &str| Decision {
            update_ops_item: episode
                .and_then(|e| e.ops_item_id.as_ref())
                .map(|_| OpsItemUpdate {
                    status: None,
                    description: None,
                    operational_data: BTreeMap::from([(key.clone(), data.clone())]),
                }),
            ..Decision::nothing(episode, why)
        };
        let Some(episode) = current else {
            return record_only(None, "no episode to record the outcome on");
        };
        let index = episode.attempts.iter().position(|a| {
            outcome
                .client_token
                .as_deref()
                .is_some_and(|t| a.client_token.eq_ignore_ascii_case(t))
                || a.execution_id.as_deref() == Some(outcome.execution_id.as_str())
        });
        let Some(index) = index else {
            return record_only(Some(episode), "an execution this episode did not start");
        };
        if !is_final(&outcome.status) && outcome.status != REFUSED {
            return record_only(Some(episode), "still running");
        }
        let attempt = &episode.attempts[index];
        let is_last = index + 1 == episode.attempts.len();
        if attempt.status.as_deref() == Some(outcome.status.as_str()) {
            // Already applied (a duplicate or retried event): the same OpsItem update again.
            let mut decision = record_only(Some(episode), "outcome already recorded");
            if let Some(update) = decision.update_ops_item.as_mut()
                && is_last
            {
                let note = self.stage_note(episode);
                let stage = stage_update(episode, &note, None);
                update.status = stage.status;
                update.description = stage.description;
                update.operational_data.extend(stage.operational_data);
            }
            return decision;
        }
        let mut next = episode.clone();
        {
            let attempt = &mut next.attempts[index];
            attempt.status = Some(outcome.status.clone());
            attempt.ended_at = Some(outcome.at.timestamp());
            attempt.failure = outcome.failure.clone();
            if attempt.execution_id.is_none() && !outcome.execution_id.is_empty() {
                attempt.execution_id = Some(outcome.execution_id.clone());
            }
        }
        if !is_last || next.stage != Stage::Remediating {
            // A late outcome (the episode moved on, or was fixed): recorded, never reopening.
            return Decision {
                episode: Some(next),
                ..record_only(Some(episode), "recorded; the episode has moved on")
            };
        }
        let attempt = next.attempts[index].clone();
        next.updated_at = self.now_text();
        if is_success(&outcome.status) {
            next.stage = match self.config.resolve_on {
                ResolveOn::Verified => Stage::Verifying {
                    until: format_time(outcome.at + self.config.verify_window),
                },
                ResolveOn::Success => Stage::Unconfirmed,
            };
        } else if next.attempts.len() >= attempt.max_attempts as usize {
            next.stage = Stage::Escalated {
                reason: format!(
                    "remediation did not fix this: {} of {} attempts failed (the last: {}); a person must",
                    next.attempts.len(),
                    attempt.max_attempts,
                    outcome.status
                ),
            };
        } else {
            let until = DateTime::from_timestamp(attempt.started_at, 0).unwrap_or(self.now)
                + Duration::minutes(attempt.cool_down_minutes);
            next.stage = Stage::Held {
                control: "cool-down".into(),
                reason: format!(
                    "attempt {} ended {}{}; the next attempt waits for the cool-down",
                    attempt.number,
                    outcome.status,
                    outcome
                        .failure
                        .as_deref()
                        .map(|f| format!(" ({f})"))
                        .unwrap_or_default()
                ),
                until: Some(format_time(until.max(self.now))),
            };
        }
        let note = self.stage_note(&next);
        let mut update = stage_update(&next, &note, None);
        update.operational_data.insert(key, data);
        Decision {
            why: note.detail,
            update_ops_item: next.ops_item_id.as_ref().map(|_| update),
            episode: Some(next),
            ..Decision::nothing(None, "")
        }
    }

    /// What the mapping makes of the finding, and its limits.
    fn route(&self, row: &Finding, facts: &Facts<'_>) -> Result<Route, Need> {
        let safety = &self.config.safety;
        let mapping = facts.mapping.ok_or(Need::Mapping)?;
        let (mode, note) = match mapping {
            Some(Ok(mapping)) => {
                let empty = BTreeMap::new();
                let tags = if needs_tags(mapping, &safety.opt_in) && row.resource_arn().is_some() {
                    facts.tags.ok_or(Need::Tags)?
                } else {
                    &empty
                };
                effective_mode(mapping, tags, &safety.opt_in)
            }
            _ => (Mode::Approval, None),
        };
        let valid = mapping.and_then(|m| m.as_ref().ok());
        Ok(Route {
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
    fn ops_item_want(
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
    fn try_start(
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
                } else if facts.breaker_open {
                    let window = safety.breaker_window.num_seconds().max(1);
                    let end = DateTime::from_timestamp(
                        (self.now.timestamp().div_euclid(window) + 1) * window,
                        0,
                    );
                    hold(
                        "circuit-breaker",
                        format!(
                            "circuit breaker: {} starts for this check within {} minutes; waiting for the window to turn",
                            safety.breaker_limit,
                            safety.breaker_window.num_minutes()
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
                    }));
                }
            }
            // The reason carries the command an operator can paste.
            Remediation::Approval { .. } => hold("approval", route.remediation.describe(), None),
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

    /// The OpsItem note for an episode that just took a route.
    fn note(&self, episode: &Episode, route: &Route, start: Option<&Start>) -> Note {
        let mut note = self.stage_note(episode);
        note.start = start
            .map(|s| s.request.clone())
            .or_else(|| route.remediation.start().cloned());
        if matches!(episode.stage, Stage::Remediating) {
            note.attempts = Some((episode.attempts.len(), route.max_attempts));
        }
        note
    }

    /// The OpsItem note for an episode's stage alone.
    fn stage_note(&self, episode: &Episode) -> Note {
        let (control, detail) = match &episode.stage {
            Stage::Flagged { reason } => (None, reason.clone()),
            Stage::Held {
                control,
                reason,
                until,
            } => (
                Some(control.clone()),
                match until {
                    Some(until) => format!("{reason}; next possible at {until}"),
                    None => reason.clone(),
                },
            ),
            Stage::Remediating => (
                None,
                episode.last_attempt().map_or_else(String::new, |a| {
                    format!(
                        "attempt {} of {}: {} in {}",
                        a.number, a.max_attempts, a.document, a.region
                    )
                }),
            ),
            Stage::Verifying { until } => (
                None,
                format!(
                    "runbook succeeded; waiting for Trusted Advisor to confirm (until {until})"
                ),
            ),
            Stage::Unconfirmed => (
                None,
                match self.config.resolve_on {
                    ResolveOn::Success => "the runbook succeeded (resolved on success; a later flagged refresh reopens this OpsItem)".into(),
                    ResolveOn::Verified => "the runbook succeeded, not yet confirmed by Trusted Advisor".into(),
                },
            ),
            Stage::Escalated { reason } => (None, reason.clone()),
            Stage::Fixed { at } => (
                None,
                format!("Trusted Advisor reported the resource Green at {at}"),
            ),
        };
        Note {
            state: episode.stage.name(),
            control,
            detail,
            start: None,
            attempts: attempts_note(episode),
        }
    }
}

fn attempts_note(episode: &Episode) -> Option<(usize, u32)> {
    episode
        .last_attempt()
        .map(|a| (episode.attempts.len(), a.max_attempts))
}

/// The OpsItem status an episode's stage shows (for tests and `tarem status`).
pub fn ops_item_status(episode: &Episode) -> OpsItemStatus {
    Note::ops_item_status(&episode.stage)
}
