//! Parking what a handler cannot use, and sending it back after a fix (`tarem dlq replay`).

use crate::error::PortError;
use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

/// Which function a parked message goes back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    CheckTracker,
    ResultsHandler,
    AutomationExecutionHandler,
}

impl Target {
    /// The function's name suffix (as serialised).
    pub fn as_str(self) -> &'static str {
        match self {
            Target::CheckTracker => "check-tracker",
            Target::ResultsHandler => "results-handler",
            Target::AutomationExecutionHandler => "automation-execution-handler",
        }
    }
}

/// The stream range a stream on-failure record names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamBatch {
    pub stream_arn: String,
    pub shard_id: String,
    pub start_sequence_number: String,
    pub end_sequence_number: String,
}

/// The key of the payload in a message tarem parked itself (next to `taremParked`, the reason).
pub const PARKED_PAYLOAD: &str = "payload";

/// The body tarem writes when it parks something: the payload and why.
pub fn parked_body(target: Target, payload: &Value, reason: &str) -> Value {
    // The key is PARKED_PAYLOAD.
    serde_json::json!({
        "taremParked": { "target": target, "reason": reason },
        "payload": payload,
    })
}

/// Where a handler parks what it cannot use (the function's failure queue), so that nothing is
/// lost and `tarem dlq replay` can send it back after a fix.
#[async_trait]
pub trait ParkingLot: Send + Sync {
    async fn park(&self, target: Target, payload: &Value, reason: &str) -> Result<(), PortError>;
}

/// One message as the queue hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub id: String,
    /// What deleting the message takes (SQS's receipt handle).
    pub receipt: String,
    pub body: String,
}

#[async_trait]
pub trait ParkedQueue: Send + Sync {
    /// Hands out up to `max` visible messages; each stays invisible to other readers until it
    /// is deleted, released, or SQS's visibility timeout passes.
    async fn receive(&self, max: usize) -> Result<Vec<QueueMessage>, PortError>;
    async fn delete(&self, receipt: &str) -> Result<(), PortError>;
    /// Makes a received message visible again at once (a dry run looked at it, or its replay
    /// failed), so the next run sees it without waiting out the visibility timeout.
    async fn release(&self, receipt: &str) -> Result<(), PortError>;
}

/// Reads a parked stream range again, as Lambda delivers records.
#[async_trait]
pub trait StreamReader: Send + Sync {
    async fn records(&self, batch: &StreamBatch) -> Result<Vec<Value>, PortError>;
}

/// What a handler did with a replayed payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redriven {
    Done,
    /// The handler still cannot use it and parked it again (a fresh copy is in the queue).
    ParkedAgain(String),
}

/// Runs a handler on a payload; `Err` when the handler failed (a function error, or a stream
/// batch with records it reports as failed).
#[async_trait]
pub trait Redrive: Send + Sync {
    async fn invoke(&self, target: Target, payload: &Value) -> Result<Redriven, PortError>;
}
