//! The three handlers, written against the ports only, so the Lambda binaries (AWS adapters) and
//! `tarem simulate` (in-memory adapters) run the same code. They gather facts, ask the
//! lifecycle ([`crate::lifecycle`]) what to do, and carry it out.

pub mod check_tracker;
pub mod executions;
pub mod results;
mod settle;
mod start;
pub mod sweep;

pub use check_tracker::{CheckTracker, Tracked};
pub use executions::{ExecutionHandler, ExecutionOutcome};
pub use results::{BatchReport, MappingCache, RecordOutcome, RecordReport, ResultsHandler, Step};
pub use sweep::SweepReport;

use crate::clock::Clock;
use crate::error::{ErrorKind, PortError};
use crate::lifecycle::{Decision, Facts, Happening, Lifecycle, LifecycleConfig, Outcome};
use crate::ports::{ExecutionStore, OpsCenter, OpsItemStatus, ParkingLot, Target};

/// Tries of a read-decide-write cycle when another writer changed the episode in between.
const TRIES: usize = 3;

/// An execution's outcome onto its episode: the OpsItem updated, the episode written (retried
/// when another writer got there first). A failure never reopens an OpsItem someone resolved
/// (Trusted Advisor's Green, or an operator): it only records the outcome there.
pub(crate) async fn record_outcome(
    executions: &dyn ExecutionStore,
    ops_center: &dyn OpsCenter,
    clock: &dyn Clock,
    config: &LifecycleConfig,
    finding_key: &str,
    outcome: &Outcome,
) -> Result<Decision, PortError> {
    for _ in 0..TRIES {
        let current = executions.get_episode(finding_key).await?;
        let lifecycle = Lifecycle {
            config,
            now: clock.now(),
        };
        let mut decision = lifecycle
            .decide(
                current.as_ref(),
                Happening::Outcome(outcome),
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
                && ops_center.status(&id).await? == Some(OpsItemStatus::Resolved)
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
            return Ok(decision);
        };
        next.version = current.as_ref().map_or(0, |c| c.version) + 1;
        if executions.put_episode(&next).await? {
            crate::telemetry::episode_written(current.as_ref(), &next);
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

/// Parks `payload` on `target`'s failure queue and counts it (`RecordsParked` by function), so
/// every handler counts what it parks the same way, and only what it did park.
pub(crate) async fn park(
    parking: &dyn ParkingLot,
    target: Target,
    payload: &serde_json::Value,
    reason: &str,
) -> Result<(), PortError> {
    parking.park(target, payload, reason).await?;
    crate::telemetry::count_by(
        crate::telemetry::RECORDS_PARKED,
        "Function",
        target.as_str(),
    );
    Ok(())
}
