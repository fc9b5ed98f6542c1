//! check-tracker: a Trusted Advisor event becomes one conditional write of the tracker row.

use crate::clock::Clock;
use crate::error::PortError;
use crate::finding::{Finding, Rejection, TrackingRules, finding_from_event};
use crate::ports::{ParkingLot, Target};
use crate::ports::{TrackerStore, WriteOutcome};
use serde_json::Value;
use std::sync::Arc;
use tracing::Instrument;

pub struct CheckTracker {
    pub tracker: Arc<dyn TrackerStore>,
    pub clock: Arc<dyn Clock>,
    /// The stack's region and the future-time tolerance.
    pub rules: TrackingRules,
    /// Where unusable events go, with their reason (the function's failure queue).
    pub parking: Arc<dyn ParkingLot>,
}

/// What happened to one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Tracked {
    /// The finding is new or newer than the stored one: the row was replaced (and the stream
    /// carries it on to the results handler).
    Written(Box<Finding>),
    /// The same status and item time, said again later: the row was replaced, nothing a reader
    /// acts on changed.
    Refreshed(Box<Finding>),
    /// The same finding again: nothing changed.
    Duplicate(Box<Finding>),
    /// An older finding than the stored one: dropped.
    Stale(Box<Finding>),
    /// The event cannot be used; the reason names the field at fault.
    Rejected(Rejection),
}

impl Tracked {
    /// The function's response: what happened, and why for a rejection (read by `tarem dlq
    /// replay`).
    pub fn summary(&self) -> serde_json::Value {
        match self {
            Tracked::Written(f) => {
                serde_json::json!({ "outcome": "tracked", "finding": f.hash_key })
            }
            Tracked::Refreshed(f) => {
                serde_json::json!({ "outcome": "refreshed", "finding": f.hash_key })
            }
            Tracked::Duplicate(f) => {
                serde_json::json!({ "outcome": "duplicate", "finding": f.hash_key })
            }
            Tracked::Stale(f) => serde_json::json!({ "outcome": "stale", "finding": f.hash_key }),
            Tracked::Rejected(rejection) => {
                serde_json::json!({ "outcome": "rejected", "reason": rejection.to_string() })
            }
        }
    }
}

impl CheckTracker {
    /// Never panics on input. `Err` only when the table could not be written: the Lambda returns
    /// a function error, so EventBridge's retries and the dead-letter queue keep the event.
    pub async fn handle(&self, event: &Value) -> Result<Tracked, PortError> {
        let finding = match finding_from_event(event, self.clock.now(), &self.rules) {
            Ok(finding) => finding,
            Err(rejection) => {
                tracing::warn!(
                    reason = %rejection,
                    event = %truncated(event),
                    metric = "findings.rejected",
                    "rejected Trusted Advisor event; parked"
                );
                // Parked, not dropped: after a parser fix, `tarem dlq replay` sends it back. If
                // parking fails, the function error makes EventBridge retry the event.
                super::park(
                    &*self.parking,
                    Target::CheckTracker,
                    event,
                    &rejection.to_string(),
                )
                .await?;
                crate::telemetry::count(crate::telemetry::FINDINGS_REJECTED);
                return Ok(Tracked::Rejected(rejection));
            }
        };
        let span = tracing::info_span!(
            "finding",
            findingKey = %finding.hash_key,
            check = %finding.check_name,
            resource = %finding.resource,
            region = %finding.region
        );
        let outcome = self
            .tracker
            .put_if_newer(&finding)
            .instrument(span.clone())
            .await?;
        let _enter = span.enter();
        if let Some(column) = finding.region_column_conflict() {
            tracing::warn!(
                region_column = column,
                arn_region = %finding.region,
                metric = "findings.region_conflict",
                "the Region column contradicts the resource ARN; the ARN's region is used"
            );
        }
        let tracked = match outcome {
            WriteOutcome::Written => {
                tracing::info!(status = %finding.resource_status, metric = "findings.tracked", "tracked");
                crate::telemetry::count(crate::telemetry::FINDINGS_TRACKED);
                Tracked::Written(Box::new(finding))
            }
            WriteOutcome::Refreshed => {
                tracing::info!(
                    metric = "findings.refreshed",
                    "the same state said again later; recorded"
                );
                Tracked::Refreshed(Box::new(finding))
            }
            WriteOutcome::Duplicate => {
                tracing::info!(
                    metric = "findings.duplicate",
                    "same finding again; nothing changed"
                );
                // Counted with the stale ones: the metric says "delivered late or twice".
                crate::telemetry::count(crate::telemetry::FINDINGS_STALE);
                Tracked::Duplicate(Box::new(finding))
            }
            WriteOutcome::Stale => {
                tracing::info!(
                    time = %finding.last_updated_time,
                    metric = "findings.stale",
                    "older than the tracked finding; dropped"
                );
                crate::telemetry::count(crate::telemetry::FINDINGS_STALE);
                Tracked::Stale(Box::new(finding))
            }
        };
        Ok(tracked)
    }
}

/// At most 4 KB of an event for a log line.
fn truncated(event: &Value) -> String {
    let text = event.to_string();
    match text.char_indices().nth(4096) {
        None => text,
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}
