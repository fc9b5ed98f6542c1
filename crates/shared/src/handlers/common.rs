//! What the results handler's files share (the batch, the start, the episode's settling and
//! the sweep), in one place so none of them imports another: a step's record, a failure's kind,
//! an invocation's pass and deadline, the start pacing, the finding's log span, and the
//! scheduled payloads.

use crate::clock::Clock;
use crate::episode::{Episode, Stage};
use crate::error::PortError;
use crate::finding::Finding;
use crate::mapping::{Mapping, MappingError};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub(super) type CachedMapping = Option<Arc<Result<Mapping, MappingError>>>;

/// One thing the handler did for a record, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "camelCase")]
pub enum Step {
    /// The episode's state after the decision, and why.
    Episode {
        state: String,
        why: String,
    },
    OpsItemCreated {
        id: String,
        title: String,
    },
    OpsItemReused {
        id: String,
    },
    /// The OpsItem could not be created now; the sweep creates it later.
    OpsItemOwed {
        reason: String,
    },
    OpsItemUpdated {
        id: String,
        status: Option<String>,
    },
    AutomationStarted {
        execution_id: String,
        document: String,
        region: String,
        parameters: BTreeMap<String, Vec<String>>,
        client_token: String,
    },
    AutomationAlreadyStarted {
        execution_id: String,
    },
    /// Nothing can remediate this finding (no mapping, inactive, a broken mapping): why.
    NoAutomation {
        reason: String,
    },
    /// A safety control holds the start, and why.
    Held {
        control: String,
        reason: String,
    },
    Skipped {
        reason: String,
    },
}

pub(crate) enum Failure {
    Retry(String),
    Park(String),
}

impl From<PortError> for Failure {
    fn from(error: PortError) -> Self {
        if error.is_retryable() {
            Failure::Retry(error.to_string())
        } else {
            Failure::Park(error.to_string())
        }
    }
}

/// What one invocation (a batch, or a sweep) knows once: its deadline. The kill switch is not
/// kept here: it is read for every decision that would start, so a switch turned off stops
/// the very next start, even in the middle of a paced sweep or batch.
pub(super) struct Pass {
    pub deadline: Option<DateTime<Utc>>,
}

impl Pass {
    pub fn new(deadline: Option<DateTime<Utc>>) -> Self {
        Self { deadline }
    }
}

/// The span every log line of a finding's work carries: one Logs Insights query follows a
/// finding through all three functions by `findingKey`. The episode and its attempt are
/// recorded on it once the lifecycle has read them ([`crate::telemetry::mark_episode`]).
pub(super) fn finding_span(finding: &Finding) -> tracing::Span {
    tracing::info_span!(
        "finding",
        findingKey = %finding.hash_key,
        check = %finding.check_name,
        resource = %finding.resource,
        region = %finding.region,
        episode = tracing::field::Empty,
        attempt = tracing::field::Empty
    )
}

/// Time kept in hand before the function's deadline: a record that would need more is retried
/// in a later invocation rather than cut off mid-call.
pub(super) const DEADLINE_MARGIN_SECONDS: i64 = 10;

/// Spaces StartAutomationExecution calls at least `interval` apart within this process, per
/// account and region (SSM's rate is each account's, in each region).
#[derive(Default)]
pub struct StartPacer {
    last: Mutex<std::collections::HashMap<String, DateTime<Utc>>>,
}

impl StartPacer {
    /// Reserves the next start slot of `lane` (account and region); returns how long to wait.
    pub(super) fn reserve(&self, lane: &str, now: DateTime<Utc>, interval: Duration) -> Duration {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let slot = last
            .get(lane)
            .map_or(now, |last| (*last + interval).max(now));
        last.insert(lane.to_owned(), slot);
        slot - now
    }
}

/// Whether `deadline` leaves time for more work.
pub fn time_left(clock: &dyn Clock, deadline: Option<DateTime<Utc>>) -> bool {
    deadline.is_none_or(|deadline| {
        clock.now() + Duration::seconds(DEADLINE_MARGIN_SECONDS * 2) < deadline
    })
}

/// The scheduled payload that asks the sweep to look at one finding (what a parked sweep
/// failure holds).
pub fn one_finding_payload(finding_key: &str) -> Value {
    json!({
        "source": "aws.events",
        "detail-type": "Scheduled Event",
        "detail": { "taremSweep": { "findingKey": finding_key } },
    })
}

/// The finding a scheduled payload names, if it names one.
pub fn finding_named(payload: &Value) -> Option<&str> {
    payload
        .pointer("/detail/taremSweep/findingKey")
        .and_then(Value::as_str)
}

/// The step that tells where the episode stands after a decision.
pub(super) fn stage_step(episode: &Episode, why: &str) -> Step {
    match &episode.stage {
        Stage::Held {
            control, reason, ..
        } => Step::Held {
            control: control.clone(),
            reason: reason.clone(),
        },
        Stage::Flagged { reason } => Step::NoAutomation {
            reason: reason.clone(),
        },
        stage => Step::Episode {
            state: stage.name().to_owned(),
            why: why.to_owned(),
        },
    }
}

/// Whether an event is the stack's EventBridge schedule (the reconcile sweeps' trigger).
pub fn is_scheduled(event: &Value) -> bool {
    event.get("source").and_then(Value::as_str) == Some("aws.events")
        && event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
}
