//! SSM's "EC2 Automation Execution Status-change Notification" event.
//!
//! The event comes from the region the automation ran in; `StartTime`/`EndTime` are
//! human-formatted without a zone and unused here: the envelope's `time` says when the status
//! changed. Like Trusted Advisor's, that time is bounded: one more than the tolerance ahead of
//! the receiving clock, or unreadable, rejects the event (a far-future end would keep the
//! episode verifying for ever). Parsed by hand, tolerantly: `aws_lambda_events`' own type
//! requires every field.

use serde_json::{Value, json};

pub const SSM_SOURCE: &str = "aws.ssm";
pub const SSM_DETAIL_TYPE: &str = "EC2 Automation Execution Status-change Notification";

/// Statuses after which an execution never changes again.
pub const FINAL_STATUSES: [&str; 9] = [
    "Success",
    "Failed",
    "TimedOut",
    "Cancelled",
    "Rejected",
    "CompletedWithSuccess",
    "CompletedWithFailure",
    "ChangeCalendarOverrideRejected",
    "Exited",
];

pub fn is_final(status: &str) -> bool {
    FINAL_STATUSES.contains(&status)
}

/// Whether the runbook did its work.
pub fn is_success(status: &str) -> bool {
    matches!(status, "Success" | "CompletedWithSuccess")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutomationStatusEvent {
    pub execution_id: String,
    pub status: String,
    pub definition: Option<String>,
    /// Where the automation ran (the envelope's region).
    pub region: String,
    /// When SSM reported it (the envelope's `time`): a final status's end time.
    pub time: Option<chrono::DateTime<chrono::Utc>>,
    /// The account it ran in (the envelope's `account`, set by AWS on `aws.ssm` events).
    pub account: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventRejection {
    #[error("the event is not a JSON object")]
    NotAnObject,
    #[error(
        "not an SSM automation status event: source {event_source:?}, detail-type {detail_type:?} (expected {SSM_SOURCE:?}, {SSM_DETAIL_TYPE:?})"
    )]
    NotAutomation {
        event_source: Option<String>,
        detail_type: Option<String>,
    },
    #[error("`{0}` is missing or not a non-empty string")]
    MissingField(&'static str),
    #[error("`time` is not an RFC 3339 time: {0:?}")]
    BadTime(String),
    #[error(
        "`time` is {value}, more than {tolerance_minutes} minutes after the receiving clock ({now}): a time in the future would keep the episode waiting for ever"
    )]
    FutureTime {
        value: String,
        now: String,
        tolerance_minutes: i64,
    },
}

/// Reads the event; `now` and `tolerance` bound its time.
pub fn parse(
    event: &Value,
    now: chrono::DateTime<chrono::Utc>,
    tolerance: chrono::Duration,
) -> Result<AutomationStatusEvent, EventRejection> {
    let envelope = event.as_object().ok_or(EventRejection::NotAnObject)?;
    let text = |object: &serde_json::Map<String, Value>, key: &str| {
        object
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let source = text(envelope, "source");
    let detail_type = text(envelope, "detail-type");
    if source.as_deref() != Some(SSM_SOURCE) || detail_type.as_deref() != Some(SSM_DETAIL_TYPE) {
        return Err(EventRejection::NotAutomation {
            event_source: source,
            detail_type,
        });
    }
    let detail = envelope
        .get("detail")
        .and_then(Value::as_object)
        .ok_or(EventRejection::MissingField("detail"))?;
    let execution_id =
        text(detail, "ExecutionId").ok_or(EventRejection::MissingField("detail.ExecutionId"))?;
    let status = text(detail, "Status").ok_or(EventRejection::MissingField("detail.Status"))?;
    let region = text(envelope, "region").ok_or(EventRejection::MissingField("region"))?;
    let time = match text(envelope, "time") {
        None => None,
        Some(value) => {
            let time = crate::finding::parse_time(&value)
                .ok_or_else(|| EventRejection::BadTime(value.clone()))?;
            if time > now + tolerance {
                return Err(EventRejection::FutureTime {
                    value,
                    now: crate::finding::format_time(now),
                    tolerance_minutes: tolerance.num_minutes(),
                });
            }
            Some(time)
        }
    };
    Ok(AutomationStatusEvent {
        execution_id,
        status,
        definition: text(detail, "Definition"),
        region,
        time,
        account: event
            .get("account")
            .and_then(Value::as_str)
            .filter(|account| !account.is_empty())
            .map(str::to_owned),
    })
}

/// The event SSM emits for a status change, as EventBridge delivers it (used by the local
/// simulation and the tests).
pub fn status_event(
    account: &str,
    region: &str,
    execution_id: &str,
    document: &str,
    status: &str,
    time: chrono::DateTime<chrono::Utc>,
) -> Value {
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, format!("{execution_id}/{status}").as_bytes()).to_string(),
        "detail-type": SSM_DETAIL_TYPE,
        "source": SSM_SOURCE,
        "account": account,
        "time": time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": region,
        "resources": [
            format!("arn:aws:ssm:{region}:{account}:automation-execution/{execution_id}"),
            format!("arn:aws:ssm:{region}:{account}:automation-definition/{document}:$DEFAULT"),
        ],
        "detail": {
            "ExecutionId": execution_id,
            "Definition": document,
            "DefinitionVersion": 1.0,
            "Status": status,
            "StartTime": time.format("%b %-d, %Y %-I:%M:%S %p").to_string(),
            "EndTime": time.format("%b %-d, %Y %-I:%M:%S %p").to_string(),
            "Time": 1000.0,
            "ExecutedBy": format!("arn:aws:sts::{account}:assumed-role/tarem-results-handler/tarem"),
        }
    })
}
