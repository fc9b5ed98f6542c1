//! When the sweep looks at an episode next: the work grows with what is due, not with what is
//! open. An episode names its next look (`dueAt`) in every write; the due index holds only
//! episodes that have one, and the sweep reads only those due now.
//!
//! - A hold with an end (cool-down, breaker window) is due at its end; one without (kill switch,
//!   another runbook on the resource) at the next sweep; one a resource tag decides (opt-in, a
//!   mode tag) every hour, since a tag change sends no event.
//! - A claimed start that never reached SSM is due when no invocation can still hold it; a
//!   running attempt at its in-flight timeout, then every sweep until the ceiling.
//! - A fix awaiting Trusted Advisor is due at the verify deadline.
//! - An owed OpsItem is retried at the next sweep (the month's turn when the budget is spent).
//! - A write that changed the OpsItem's status has it checked once, a sweep later: whichever
//!   write lost a race, the OpsItem ends up saying what the episode says.
//! - Everything else (flagged with no remediation, approval, escalated, unconfirmed, fixed)
//!   waits for an event: Trusted Advisor's Green, or a mapping change, which the sweep notices
//!   by the mapping table's fingerprints.

use super::{Decision, Facts, Lifecycle, RESUME_AFTER};
use crate::episode::{Episode, Stage};
use crate::finding::parse_time;
use crate::ports::OpsItemStatus;
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};

/// The episode sweep's period (the stack's schedule).
pub const SWEEP_PERIOD: Duration = Duration::minutes(15);
/// How often a hold a resource tag decides is looked at again.
pub const TAG_RECHECK: Duration = Duration::hours(1);
/// How often a runbook still running past the in-flight timeout is asked about again (a few
/// runbooks, for at most the in-flight ceiling).
const RUNNING_RECHECK: Duration = SWEEP_PERIOD;

/// The next look the stage itself names, if any.
pub fn stage_due(
    episode: &Episode,
    in_flight_timeout: Duration,
    now: DateTime<Utc>,
) -> Option<i64> {
    let at = |time: DateTime<Utc>| time.timestamp();
    match &episode.stage {
        Stage::Held {
            until: Some(until), ..
        } => parse_time(until).map(at).or(Some(at(now))),
        Stage::Held { control, .. }
            if control == "kill-switch"
                || control == "in-flight"
                || control == super::member::MEMBER_GATE =>
        {
            Some(at(now + SWEEP_PERIOD))
        }
        Stage::Remediating => {
            let attempt = episode.last_attempt()?;
            if attempt.is_over() {
                return Some(at(now));
            }
            let started = DateTime::from_timestamp(attempt.started_at, 0)?;
            let (due, again) = if attempt.execution_id.is_none() {
                (started + RESUME_AFTER, SWEEP_PERIOD)
            } else {
                (started + in_flight_timeout, RUNNING_RECHECK)
            };
            Some(at(if due > now { due } else { now + again }))
        }
        Stage::Verifying { until } => parse_time(until).map(at).or(Some(at(now))),
        _ => None,
    }
}

/// Sets `due_at` from the stage and `recheck_at`.
pub fn schedule(episode: &mut Episode, in_flight_timeout: Duration, now: DateTime<Utc>) {
    let stage = stage_due(episode, in_flight_timeout, now);
    episode.due_at = match (stage, episode.recheck_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
}

/// The first second of the month after `now`'s (an OpsItem budget frees then).
fn next_month(now: DateTime<Utc>) -> DateTime<Utc> {
    let (year, month) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0)
        .single()
        .unwrap_or(now + Duration::days(31))
}

impl Lifecycle<'_> {
    /// The decision's episode, scheduled (module docs): what its recheck serves now is cleared,
    /// what it still waits for is set.
    pub(super) fn schedule(&self, decision: &mut Decision, facts: &Facts<'_>) {
        let now = self.now;
        let Some(next) = decision.episode.as_mut() else {
            return;
        };
        // A recheck whose time has come is served by this decision.
        if next.recheck_at.is_some_and(|at| at <= now.timestamp()) {
            next.recheck_at = None;
        }
        let mut recheck: Option<DateTime<Utc>> = None;
        let mut want = |at: DateTime<Utc>| {
            recheck = Some(recheck.map_or(at, |r: DateTime<Utc>| r.min(at)));
        };
        if next.ops_item_owed {
            if decision.no_ops_item.is_some() {
                want(next_month(now));
            } else {
                want(now + SWEEP_PERIOD);
            }
        }
        if facts.tags.is_some() && matches!(next.stage, Stage::Held { .. }) {
            want(now + TAG_RECHECK);
        }
        let status_written = decision
            .update_ops_item
            .as_ref()
            .is_some_and(|update| update.status.is_some())
            && next.ops_item_id.is_some();
        if status_written {
            next.check_ops_item = true;
            want(now + SWEEP_PERIOD);
        } else if next.check_ops_item && next.recheck_at.is_none() {
            // Its check is served (a tick at the recheck reads the OpsItem: [`Self::sync`]).
            next.check_ops_item = false;
        }
        if let Some(at) = recheck {
            let at = at.timestamp();
            next.recheck_at = Some(next.recheck_at.map_or(at, |r| r.min(at)));
        }
        schedule(next, self.config.safety.in_flight_timeout, now);
    }

    /// A tick at an OpsItem check: the OpsItem says what the episode says, or is told again. An
    /// OpsItem resolved while its tarem data names the episode's own stage was resolved by a
    /// person, and is left as it is.
    pub(super) fn sync(
        &self,
        decision: &mut Decision,
        facts: &Facts<'_>,
    ) -> Result<(), super::Need> {
        let Some(next) = decision.episode.as_ref() else {
            return Ok(());
        };
        let due =
            next.check_ops_item && next.recheck_at.is_some_and(|at| at <= self.now.timestamp());
        if !due || next.ops_item_id.is_none() || decision.update_ops_item.is_some() {
            return Ok(());
        }
        let view = facts.ops_item.ok_or(super::Need::OpsItemState)?;
        let Some(view) = view else {
            return Ok(());
        };
        let expected = crate::opsitem::Note::ops_item_status(&next.stage);
        let ours = view.state.as_deref() == Some(next.stage.name());
        let operator_resolved = ours && view.status == OpsItemStatus::Resolved;
        if (view.status != expected || !ours) && !operator_resolved {
            let note = self.stage_note(next);
            decision.update_ops_item = Some(crate::opsitem::stage_update(next, &note, None));
            decision.why = format!(
                "the OpsItem said {} ({}), the episode is {}: told again",
                view.status.as_str(),
                view.state.as_deref().unwrap_or("no tarem state"),
                next.stage.name()
            );
        }
        Ok(())
    }
}
