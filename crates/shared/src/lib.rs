//! The core of tarem: everything the three Lambda functions and the `tarem` CLI share.
//!
//! - [`finding`]: Trusted Advisor events and the normalised [`finding::Finding`] (the tracker row).
//! - [`mapping`]: operator mappings (AWS's walkthrough shape or a plain map) and parameter templates.
//! - [`decide`]: the pure decisions: what a tracker change means, what to start, what the OpsItem says.
//! - [`ports`]: the small traits the handlers talk through, and the records they exchange.
//! - [`handlers`]: check-tracker, results-handler and automation-execution-handler.
//! - [`memory`]: faithful in-memory adapters (conditional writes, stream images, OpsItem dedup,
//!   ClientToken idempotency) used by `tarem simulate` and the tests.
//! - [`automation_event`]: the SSM automation status-change event.

pub mod automation_event;
pub mod aws;
pub mod clock;
pub mod config;
pub mod contract;
pub mod decide;
pub mod episode;
pub mod error;
pub mod finding;
pub mod handlers;
pub mod lifecycle;
#[cfg(any(test, feature = "memory"))]
pub mod local;
pub mod mapping;
#[cfg(any(test, feature = "memory"))]
pub mod memory;
pub mod opsitem;
pub mod ports;
pub mod reconcile;
pub mod replay;
pub mod safety;
pub mod stream;
pub mod telemetry;
pub mod validate;

/// Re-exported so the binaries name durations without depending on chrono themselves.
pub use chrono::Duration;

/// The invocation deadline Lambda gives (milliseconds since the epoch) as a time.
pub fn chrono_from_millis(millis: u64) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp_millis(i64::try_from(millis).ok()?)
}
