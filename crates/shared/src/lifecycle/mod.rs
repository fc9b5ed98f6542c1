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
//!   observation whose item time is later than the execution's end (SSM's `ExecutionEndTime`)
//!   plus the grace period means the fix did not hold, whether it arrives after the outcome or
//!   was already in the tracker when the outcome came.

mod approval;
mod failure;
mod member;
mod notes;
mod outcome;
mod route;
mod schedule;
mod tick;
mod tracked;

pub use schedule::{SWEEP_PERIOD, TAG_RECHECK, schedule, stage_due};

pub use approval::{APPROVAL_CONTROL, ApprovalAnswer, ApprovedOn, approve};
pub use failure::will_fail_again;
pub use tick::IN_FLIGHT_CEILING;

use crate::decide::Remediation;
use crate::episode::Episode;
use crate::finding::{Finding, format_time};
use crate::mapping::{Mapping, MappingError};
use crate::opsitem::Note;
use crate::ports::{
    ExecutionInfo, LockHolder, MemberStanding, NewOpsItem, OpsItemStatus, OpsItemUpdate,
    OpsItemView, StartAutomation,
};
use crate::safety::SafetyConfig;
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
#[derive(Debug, Clone, PartialEq)]
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
    /// How far ahead of the clock an SSM status event's time may be (as Trusted Advisor's).
    pub future_tolerance: Duration,
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
            future_tolerance: Duration::minutes(15),
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
    /// SSM's kind of the failing step's failure (`FailureDetails.FailureType`), when it says.
    pub failure_type: Option<String>,
    pub at: DateTime<Utc>,
    /// The resource lock the attempt held, when the caller knows it (the execution row, the
    /// start); else the episode's attempt says.
    pub lock: Option<String>,
}

/// What happened to a finding.
#[derive(Debug, Clone, Copy)]
pub enum Happening<'a> {
    /// The tracker's current row, from a stream record (already checked to be current).
    Tracked(&'a Finding),
    /// An execution of the finding changed status, with the tracker's current row (`None` when
    /// the tracker no longer holds the finding): a success is judged against it.
    Outcome(&'a Outcome, Option<&'a Finding>),
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
    /// What SSM says of the last attempt's execution (asked only at the in-flight timeout).
    ExecutionStatus,
    /// What the episode's OpsItem says now (asked only at its check).
    OpsItemState,
    /// Whether the finding's account can be reached (asked first, for every row).
    Member,
    /// The account owner's stop (asked with the kill switch, before a start).
    MemberGate,
    /// The OUs the finding's account sits in (asked only for a mapping scoped to an OU).
    Units,
}

/// The facts gathered for a decision; `None` is "not gathered yet".
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    /// `Some(None)`: the check has no mapping.
    pub mapping: Option<Option<&'a Result<Mapping, MappingError>>>,
    pub tags: Option<&'a BTreeMap<String, String>>,
    pub starts_allowed: Option<bool>,
    pub ops_items_this_month: Option<u64>,
    /// The circuit breaker refused the start (learnt by trying to count it): this episode's place
    /// in the queue of starts it refused in the window (1 = the first refused). The queue wakes
    /// one window's share at a time, so a flood of held starts is looked at about twice each,
    /// not once per window.
    pub breaker_queue: Option<u64>,
    /// SSM's answer for the last attempt's execution; `Some(None)`: SSM does not know it (or
    /// will not say: access denied), so only the in-flight timeout can end it.
    pub execution: Option<Option<&'a ExecutionInfo>>,
    /// Another attempt holds the resource's lock (learnt by trying to take it): its runbook
    /// runs there, or ended within the cool-down.
    pub resource_busy: Option<&'a LockHolder>,
    /// What the episode's OpsItem says; `Some(None)`: it no longer exists.
    pub ops_item: Option<Option<&'a OpsItemView>>,
    /// Whether the finding's account can be reached.
    pub member: Option<&'a MemberStanding>,
    /// Why the account's owner refuses starts there; `Some(None)`: they do not.
    pub member_gate: Option<Option<&'a str>>,
    /// The OUs the finding's account sits in, nearest first, then the root.
    pub units: Option<&'a [String]>,
}

/// A start to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// With its ClientToken and tags (the OpsItem tag is added once the OpsItem exists).
    pub request: StartAutomation,
    /// A start already claimed (the same attempt again): no new breaker count.
    pub resume: bool,
    /// A resumed attempt the controls no longer allow (the kill switch is off; the mapping is no
    /// longer automated, or names another runbook or region): SSM is only asked whether the
    /// first call got through. If it did not, this is written instead of a start.
    pub withdraw: Option<Box<Withdrawal>>,
    /// The resource lock the start takes (a new start) or holds (a resumed one).
    pub lock: Option<String>,
}

/// A claimed attempt taken back before it reached SSM: the episode without it (it never ran, so
/// it counts toward no cap and no cool-down), at the stage the controls give it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdrawal {
    pub episode: Episode,
    /// For the episode's OpsItem, if it has one by the time the withdrawal is written.
    pub update_ops_item: OpsItemUpdate,
    pub why: String,
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
    /// The episode moved to a new stage: written, and said on its OpsItem if it has one.
    pub(super) fn staged(next: Episode, note: Note) -> Self {
        Decision {
            update_ops_item: next
                .ops_item_id
                .as_ref()
                .map(|_| crate::opsitem::stage_update(&next, &note, None)),
            why: note.detail,
            episode: Some(next),
            ..Decision::nothing(None, "")
        }
    }

    pub(super) fn nothing(episode: Option<&Episode>, why: impl Into<String>) -> Self {
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
pub(super) struct Route {
    remediation: Remediation,
    max_attempts: u32,
    cool_down: Duration,
    /// The resource lock a start would take.
    lock: Option<String>,
}

/// Whether an episode gets an OpsItem.
pub(super) enum OpsItemWant {
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
        if let Happening::Tracked(row) | Happening::Tick(row) = happening
            && let Some(mut decision) = self.out_of_reach(current, row, facts)?
        {
            self.schedule(&mut decision, facts);
            return Ok(decision);
        }
        let mut decision = match happening {
            Happening::Tracked(row) => self.tracked(current, row, facts)?,
            Happening::Outcome(outcome, row) => self.outcome(current, outcome, row),
            Happening::Tick(row) => match current {
                Some(episode) if row.resource_status.is_flagged() && episode.is_episode_of(row) => {
                    self.tick(episode, row, facts)?
                }
                // The Green (or the new episode) the stream has not brought yet.
                _ => self.tracked(current, row, facts)?,
            },
        };
        if matches!(happening, Happening::Tick(_)) {
            self.sync(&mut decision, facts)?;
        }
        self.schedule(&mut decision, facts);
        Ok(decision)
    }

    pub(super) fn now_text(&self) -> String {
        format_time(self.now)
    }
}

pub(super) fn attempts_note(episode: &Episode) -> Option<(usize, u32)> {
    episode
        .last_attempt()
        .map(|a| (episode.attempts.len(), a.max_attempts))
}

/// The OpsItem status an episode's stage shows (for tests and `tarem status`).
pub fn ops_item_status(episode: &Episode) -> OpsItemStatus {
    Note::ops_item_status(&episode.stage)
}
