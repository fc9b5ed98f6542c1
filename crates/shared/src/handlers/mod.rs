//! The three handlers, written against the ports only, so the Lambda binaries (AWS adapters) and
//! `tarem simulate` (in-memory adapters) run the same code.

pub mod check_tracker;
pub mod executions;
pub mod results;

pub use check_tracker::{CheckTracker, Tracked};
pub use executions::{ExecutionHandler, ExecutionOutcome};
pub use results::{
    BatchReport, MappingCache, RecordOutcome, RecordReport, ResultsConfig, ResultsHandler, Step,
};

use crate::error::{ErrorKind, PortError};
use crate::ports::ExecutionStore;
use crate::safety::RemediationState;

/// Read-modify-write of a finding's remediation state, retried when another writer got there
/// first. `change` says whether it changed anything (nothing is written otherwise). A missing
/// state is created only when `create_expiring_at` is given. Returns the state as it now is.
pub(crate) async fn update_state(
    store: &dyn ExecutionStore,
    finding_key: &str,
    create_expiring_at: Option<i64>,
    mut change: impl FnMut(&mut RemediationState) -> bool,
) -> Result<Option<RemediationState>, PortError> {
    const TRIES: usize = 3;
    for _ in 0..TRIES {
        let base = match (store.get_state(finding_key).await?, create_expiring_at) {
            (Some(state), _) => state,
            (None, Some(expires_at)) => RemediationState {
                expires_at,
                ..RemediationState::new(finding_key)
            },
            (None, None) => return Ok(None),
        };
        let mut next = base.clone();
        if !change(&mut next) {
            return Ok((base.version > 0).then_some(base));
        }
        next.version = base.version + 1;
        if store.put_state(&next).await? {
            return Ok(Some(next));
        }
    }
    Err(PortError::new(
        "PutItem",
        ErrorKind::Unavailable,
        format!("the remediation state of {finding_key} changed under {TRIES} writes in a row"),
    ))
}
