//! In-memory adapters for every port: faithful models of the services on the points the logic
//! relies on (conditional writes and stream images, OpsItem dedup only while Open/InProgress,
//! ClientToken idempotency, execution tags), used by `tarem simulate` and the tests.

//!
//! One file per AWS adapter file: [`dynamodb`] (tracker, mappings, executions, counters),
//! [`ssm`] (OpsCenter, Automation, the kill switch), [`tagging`], [`sqs`] and [`support`].
//! Behind the `memory` feature: the Lambda binaries do not carry them.

mod accounts;
mod dynamodb;
mod members;
mod sqs;
mod ssm;
mod support;
mod tagging;

pub use accounts::InMemoryAccounts;
pub use dynamodb::{
    InMemoryCounters, InMemoryExecutions, InMemoryLocks, InMemoryMappings, InMemoryTracker,
};
pub use members::{InMemoryMember, InMemoryMembers, MemberAccount, MemberRole};
pub use sqs::InMemoryQueue;
pub use ssm::{
    DuplicateAnswer, InMemoryAutomation, InMemoryKillSwitch, InMemoryOpsCenter, SimulatedExecution,
    StoredOpsItem,
};
pub use support::InMemoryTrustedAdvisor;
pub use tagging::InMemoryResourceTags;

use crate::error::PortError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Fault injection shared by the in-memory adapters: any operation (named `adapter.method`, e.g.
/// `ops_center.create`) can be told to fail its next calls with a given error.
#[derive(Default)]
pub struct Faults {
    planned: Mutex<HashMap<String, std::collections::VecDeque<PortError>>>,
    calls: Mutex<HashMap<String, u64>>,
}

impl Faults {
    /// The next `times` calls of `operation` fail with `error`.
    pub fn fail(&self, operation: &str, times: usize, error: PortError) {
        lock(&self.planned)
            .entry(operation.to_owned())
            .or_default()
            .extend(std::iter::repeat_n(error, times));
    }

    /// Called first by every adapter operation.
    pub fn check(&self, operation: &str) -> Result<(), PortError> {
        *lock(&self.calls).entry(operation.to_owned()).or_default() += 1;
        match lock(&self.planned)
            .get_mut(operation)
            .and_then(|queue| queue.pop_front())
        {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// How often `operation` was called (failures included).
    pub fn calls(&self, operation: &str) -> u64 {
        lock(&self.calls).get(operation).copied().unwrap_or(0)
    }
}

/// Every operation of the in-memory adapters, by the name [`Faults`] knows it.
pub const OPERATIONS: &[&str] = &[
    "tracker.put_if_newer",
    "tracker.get",
    "mappings.list",
    "executions.record_started",
    "executions.get",
    "executions.record_status",
    "executions.get_episode",
    "executions.put_episode",
    "counters.increment_below",
    "counters.increment",
    "counters.decrement",
    "locks.acquire",
    "locks.release",
    "locks.abandon",
    "counters.value",
    "kill_switch.starts_allowed",
    "automation.start",
    "automation.find_by_client_token",
    "automation.tags",
    "automation.describe",
    "ops_center.create",
    "ops_center.update",
    "ops_center.status",
    "tags.tags",
    "queue.park",
    "queue.release",
    "accounts.record_sweep",
    "accounts.saw_event",
    "accounts.get",
    "members.assume_role",
    "members.units",
    "advisor.checks",
    "advisor.check_result",
];

/// Adapters that take part in fault injection.
pub trait WithFaults: Sized {
    fn faults_mut(&mut self) -> &mut Arc<Faults>;

    /// Shares `faults` with this adapter.
    fn with_faults(mut self, faults: Arc<Faults>) -> Self {
        *self.faults_mut() = faults;
        self
    }
}

macro_rules! with_faults {
    ($($adapter:ty),*) => {
        $(impl WithFaults for $adapter {
            fn faults_mut(&mut self) -> &mut Arc<Faults> {
                &mut self.faults
            }
        })*
    };
}

with_faults!(
    InMemoryTracker,
    InMemoryMappings,
    InMemoryExecutions,
    InMemoryCounters,
    InMemoryLocks,
    InMemoryKillSwitch,
    InMemoryAutomation,
    InMemoryOpsCenter,
    InMemoryResourceTags,
    InMemoryQueue,
    InMemoryTrustedAdvisor,
    InMemoryAccounts
);

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind; keep using it.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
