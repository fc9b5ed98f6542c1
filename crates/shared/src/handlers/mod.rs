//! The three handlers, written against the ports only, so the Lambda binaries (AWS adapters) and
//! `tarem simulate` (in-memory adapters) run the same code. They gather facts, ask the
//! lifecycle ([`crate::lifecycle`]) what to do, and carry it out.

mod approve;
pub mod check_tracker;
mod common;
pub mod executions;
mod outcome;
pub mod results;
mod settle;
mod start;
pub mod sweep;

pub use approve::{Approved, OPS_ITEM_UPDATE, OpsItemUpdated};
pub use check_tracker::{CheckTracker, Tracked};
pub use common::{Step, finding_named, is_scheduled, one_finding_payload};
pub use executions::{ExecutionHandler, ExecutionOutcome};
pub use results::{BatchReport, MappingCache, RecordOutcome, RecordReport, ResultsHandler};
pub use sweep::SweepReport;

use crate::error::PortError;
use crate::ports::{ParkingLot, Target};

pub(crate) use outcome::{
    Reserved, Stores, TRIES, ignore_missing, lock_lease, record_outcome, release_ended,
};

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
