//! check-tracker: a Trusted Advisor event becomes one conditional write of the tracker row.

use crate::clock::Clock;
use crate::error::PortError;
use crate::finding::{Finding, Rejection, TrackingRules, finding_from_event};
use crate::ports::{AccountRegistry, ParkingLot, Target};
use crate::ports::{TrackerStore, WriteOutcome};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tracing::Instrument;

pub struct CheckTracker {
    pub tracker: Arc<dyn TrackerStore>,
    pub clock: Arc<dyn Clock>,
    /// The stack's region and the future-time tolerance.
    pub rules: TrackingRules,
    /// Where unusable events go, with their reason (the function's failure queue).
    pub parking: Arc<dyn ParkingLot>,
    /// Where each account's latest event is noted ([`EventsSeen`]).
    pub registry: Arc<dyn AccountRegistry>,
    pub seen: EventsSeen,
}

/// How often one function instance notes an account's latest event: "the last event seen" is
/// known to within this, for one registry write per account per instance per period, not one
/// per event.
pub const EVENT_NOTE_SECONDS: i64 = 3600;

/// The accounts this instance has noted an event of, and when.
#[derive(Default)]
pub struct EventsSeen {
    noted: Mutex<HashMap<String, i64>>,
}

impl EventsSeen {
    /// Whether an event of `account` at `now` is worth noting: none noted by this instance
    /// within [`EVENT_NOTE_SECONDS`].
    fn due(&self, account: &str, now: i64) -> bool {
        let noted = self.noted.lock().unwrap_or_else(|p| p.into_inner());
        noted
            .get(account)
            .is_none_or(|at| now - at >= EVENT_NOTE_SECONDS)
    }

    fn noted(&self, account: &str, now: i64) {
        let mut noted = self.noted.lock().unwrap_or_else(|p| p.into_inner());
        noted.insert(account.to_owned(), now);
    }
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
        self.note_event(&finding).await;
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

impl CheckTracker {
    /// Notes in the registry that the finding's account is heard from. Best effort: the finding
    /// is what matters, and a note that fails is tried again at the account's next event.
    async fn note_event(&self, finding: &Finding) {
        let Some(account) = finding.account_id.as_deref() else {
            return;
        };
        let now = self.clock.now().timestamp();
        if !self.seen.due(account, now) {
            return;
        }
        match self.registry.saw_event(account, now).await {
            Ok(()) => self.seen.noted(account, now),
            Err(error) => {
                tracing::warn!(%account, %error, "the account's latest event could not be noted; tried again at its next event");
            }
        }
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
