//! check-tracker: a Trusted Advisor event becomes one conditional write of the tracker row.

use crate::clock::Clock;
use crate::error::PortError;
use crate::finding::{Finding, Rejection, finding_from_event};
use crate::ports::{TrackerStore, WriteOutcome};
use serde_json::Value;
use std::sync::Arc;
use tracing::Instrument;

pub struct CheckTracker {
    pub tracker: Arc<dyn TrackerStore>,
    pub clock: Arc<dyn Clock>,
}

/// What happened to one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Tracked {
    /// The finding is new or newer than the stored one: the row was replaced (and the stream
    /// carries it on to the results handler).
    Written(Box<Finding>),
    /// The same finding again: nothing changed.
    Duplicate(Box<Finding>),
    /// An older finding than the stored one: dropped.
    Stale(Box<Finding>),
    /// The event cannot be used; the reason names the field at fault.
    Rejected(Rejection),
}

impl CheckTracker {
    /// Never panics on input. `Err` only when the table could not be written: the Lambda returns
    /// a function error, so EventBridge's retries and the dead-letter queue keep the event.
    pub async fn handle(&self, event: &Value) -> Result<Tracked, PortError> {
        let finding = match finding_from_event(event, self.clock.now()) {
            Ok(finding) => finding,
            Err(rejection) => {
                tracing::warn!(
                    reason = %rejection,
                    event = %truncated(event),
                    metric = "findings.rejected",
                    "rejected Trusted Advisor event"
                );
                return Ok(Tracked::Rejected(rejection));
            }
        };
        let span = tracing::info_span!(
            "finding",
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
        let tracked = match outcome {
            WriteOutcome::Written => {
                tracing::info!(status = %finding.resource_status, metric = "findings.tracked", "tracked");
                Tracked::Written(Box::new(finding))
            }
            WriteOutcome::Duplicate => {
                tracing::info!(
                    metric = "findings.duplicate",
                    "same finding again; nothing changed"
                );
                Tracked::Duplicate(Box::new(finding))
            }
            WriteOutcome::Stale => {
                tracing::info!(
                    time = %finding.last_updated_time,
                    metric = "findings.stale",
                    "older than the tracked finding; dropped"
                );
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
