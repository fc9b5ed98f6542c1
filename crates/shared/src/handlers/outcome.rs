//! What the results and execution handlers share: an execution's outcome onto its episode and
//! OpsItem, and the resource lock given back when a runbook ends. (check-tracker shares only
//! `park`, in the module above.)

use crate::automation_event::is_success;
use crate::clock::Clock;
use crate::episode::{Attempt, Episode};
use crate::error::{ErrorKind, PortError};
use crate::lifecycle::{Decision, Facts, Happening, Lifecycle, LifecycleConfig, Outcome};
use crate::ports::{ExecutionStore, OpsCenter, OpsItemStatus, ResourceLocks, TrackerStore};

/// Tries of a read-decide-write cycle when another writer changed the episode in between.
pub(crate) const TRIES: usize = 3;

/// An execution's outcome onto its episode: the OpsItem updated, the episode written (retried
/// when another writer got there first). A failure never reopens an OpsItem someone resolved
/// (Trusted Advisor's Green, or an operator): it only records the outcome there.
pub(crate) async fn record_outcome(
    stores: Stores<'_>,
    config: &LifecycleConfig,
    finding_key: &str,
    outcome: &Outcome,
) -> Result<Decision, PortError> {
    let Stores {
        tracker,
        executions,
        ops_center,
        locks,
        clock,
    } = stores;
    for _ in 0..TRIES {
        let current = executions.get_episode(finding_key).await?;
        // A success is judged against what the tracker says now (a Red may have come first).
        let row = match &current {
            Some(episode) if is_success(&outcome.status) => {
                tracker.get(finding_key, &episode.resource).await?
            }
            _ => None,
        };
        let lifecycle = Lifecycle {
            config,
            now: clock.now(),
        };
        let mut decision = lifecycle
            .decide(
                current.as_ref(),
                Happening::Outcome(outcome, row.as_ref()),
                &Facts::default(),
            )
            .map_err(|need| {
                PortError::new(
                    "lifecycle",
                    ErrorKind::Invalid,
                    format!("an outcome asked for {need:?}"),
                )
            })?;
        let ops_item = decision
            .episode
            .as_ref()
            .and_then(|e| e.ops_item_id.clone());
        if let (Some(update), Some(id)) = (decision.update_ops_item.as_mut(), ops_item) {
            let reopens = matches!(
                update.status,
                Some(OpsItemStatus::Open | OpsItemStatus::InProgress)
            );
            let we_resolved = current
                .as_ref()
                .is_some_and(|e| matches!(e.stage, crate::episode::Stage::Unconfirmed));
            if reopens
                && !we_resolved
                && ops_center.view(&id).await?.map(|view| view.status)
                    == Some(OpsItemStatus::Resolved)
            {
                update.status = None;
                update.description = None;
            }
            ignore_missing(ops_center.update(&id, update).await)?;
        }
        let Some(mut next) = decision
            .episode
            .clone()
            .filter(|e| Some(e) != current.as_ref())
        else {
            // An attempt this episode does not hold (its episode closed while it ran): its lock
            // is given back all the same; a duplicate outcome gives back what a failed release
            // kept.
            release_outcome_lock(locks, current.as_ref(), outcome).await?;
            return Ok(decision);
        };
        next.version = current.as_ref().map_or(0, |c| c.version) + 1;
        if executions.put_episode(&next).await? {
            crate::telemetry::episode_written(current.as_ref(), &next);
            release_ended(locks, current.as_ref(), &next).await?;
            decision.episode = Some(next);
            return Ok(decision);
        }
    }
    Err(PortError::new(
        "PutItem",
        ErrorKind::Unavailable,
        format!("the episode of {finding_key} changed under {TRIES} writes in a row"),
    ))
}

/// The stores an outcome is recorded with.
#[derive(Clone, Copy)]
pub(crate) struct Stores<'a> {
    pub tracker: &'a dyn TrackerStore,
    pub executions: &'a dyn ExecutionStore,
    pub ops_center: &'a dyn OpsCenter,
    pub locks: &'a dyn ResourceLocks,
    pub clock: &'a dyn Clock,
}

/// What a new start took before its claim: the resource's lock and a breaker count. Given back
/// when the start does not happen (the claim lost a race, a control held it, SSM refused it).
#[derive(Debug, Default)]
pub(crate) struct Reserved {
    /// The lock's key and the attempt's ClientToken.
    pub lock: Option<(String, String)>,
    pub breaker: Option<String>,
    /// The claim is written: the start happens (now, or resumed with the same token).
    pub claimed: bool,
}

/// How long a resource lock holds without a release: the in-flight ceiling, after which the
/// episode is escalated to a person anyway.
pub(crate) fn lock_lease(safety: &crate::safety::SafetyConfig) -> chrono::Duration {
    safety.in_flight_timeout * crate::lifecycle::IN_FLIGHT_CEILING
}

/// Gives back the lock of every attempt that ended in the write from `before` to `after`: a run
/// releases it at its end (the cool-down counts from there), a start that never ran removes it.
pub(crate) async fn release_ended(
    locks: &dyn ResourceLocks,
    before: Option<&Episode>,
    after: &Episode,
) -> Result<(), PortError> {
    for attempt in after.attempts.iter().filter(|a| a.is_over()) {
        let Some(key) = &attempt.lock else { continue };
        let was_over = before
            .and_then(|b| {
                b.attempts
                    .iter()
                    .find(|a| a.client_token == attempt.client_token)
            })
            .is_some_and(Attempt::is_over);
        if was_over {
            continue;
        }
        if attempt.status.as_deref() == Some(crate::lifecycle::REFUSED) {
            locks.abandon(key, &attempt.client_token).await?;
        } else {
            let ended = attempt.ended_at.unwrap_or(attempt.started_at);
            locks.release(key, &attempt.client_token, ended).await?;
        }
    }
    Ok(())
}

/// The lock of the attempt an outcome ends, when no episode write releases it: the outcome
/// names it (its execution row, or the start), else the episode's attempt does.
async fn release_outcome_lock(
    locks: &dyn ResourceLocks,
    current: Option<&Episode>,
    outcome: &Outcome,
) -> Result<(), PortError> {
    let Some(token) = outcome.client_token.as_deref() else {
        return Ok(());
    };
    if !crate::automation_event::is_final(&outcome.status)
        && outcome.status != crate::lifecycle::REFUSED
    {
        return Ok(());
    }
    let attempt = current.and_then(|e| e.attempts.iter().find(|a| a.client_token == token));
    let Some(key) = outcome
        .lock
        .clone()
        .or_else(|| attempt.and_then(|a| a.lock.clone()))
    else {
        return Ok(());
    };
    if outcome.status == crate::lifecycle::REFUSED {
        locks.abandon(&key, token).await
    } else {
        let ended = attempt
            .and_then(|a| a.ended_at)
            .unwrap_or(outcome.at.timestamp());
        locks.release(&key, token, ended).await
    }
}

/// An OpsItem someone deleted is not a reason to fail: the episode goes on without it.
pub(crate) fn ignore_missing(result: Result<(), PortError>) -> Result<(), PortError> {
    match result {
        Err(error) if error.kind == ErrorKind::NotFound => {
            tracing::warn!(%error, "the OpsItem no longer exists; going on without it");
            Ok(())
        }
        other => other,
    }
}
