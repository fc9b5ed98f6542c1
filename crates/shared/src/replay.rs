//! Re-driving what the delivery paths parked, after a fix: `tarem dlq replay`.
//!
//! Three kinds of parked message reach the stack's queues:
//! - an EventBridge rule target's dead letter: the body is the event itself;
//! - a Lambda asynchronous invocation's on-failure record: the event is its `requestPayload`;
//! - the tracker stream mapping's on-failure record: only `DDBStreamBatchInfo` (shard and
//!   sequence range); the records are read again from the stream (kept 24 hours).
//!
//! Each is sent back through the same handler that gave up on it; the message is deleted only
//! when that handler succeeds.

use crate::automation_event::{SSM_DETAIL_TYPE, SSM_SOURCE};
use crate::error::PortError;
use crate::finding::{TA_DETAIL_TYPE, TA_SOURCE};
use crate::ports::{
    PARKED_PAYLOAD, ParkedQueue, QueueMessage, Redrive, Redriven, StreamBatch, StreamReader, Target,
};
use serde::Serialize;
use serde_json::Value;

/// Why a queue is not replayed, if it is not: the raw-event audit log's dead-letter queue holds
/// copies of Trusted Advisor events that check-tracker received on its own target; sending them
/// to check-tracker would only say them twice, and they belong to the log group. Takes the
/// queue's URL or `tarem dlq replay`'s short name for it (`raw-event-log`).
pub fn refused(queue: &str) -> Option<String> {
    let name = queue.rsplit('/').next().unwrap_or(queue);
    (name.contains("RawEventLogDeadLetterQueue") || name == "raw-event-log").then(|| {
        format!(
            "{name} holds the raw-event audit log's undelivered copies of Trusted Advisor events; check-tracker received each on its own target, so replay does not send them to it. Read them with --dry-run, fix the log group's resource policy (RawEventLogDeadLetterQueueDepthAlarm says why), then purge the queue"
        )
    })
}

/// What a parked message holds.
#[derive(Debug, Clone, PartialEq)]
pub enum ParkedMessage {
    Event {
        target: Target,
        event: Value,
    },
    StreamBatch(StreamBatch),
    /// Not something tarem parks; left in the queue.
    Unknown(String),
}

/// Reads a parked message body.
pub fn classify(body: &str) -> ParkedMessage {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return ParkedMessage::Unknown("the message body is not JSON".into());
    };
    if let Some(info) = value.get("DDBStreamBatchInfo") {
        let text = |key: &str| info.get(key).and_then(Value::as_str).map(str::to_owned);
        return match (
            text("streamArn"),
            text("shardId"),
            text("startSequenceNumber"),
            text("endSequenceNumber"),
        ) {
            (Some(stream_arn), Some(shard_id), Some(start), Some(end)) => {
                ParkedMessage::StreamBatch(StreamBatch {
                    stream_arn,
                    shard_id,
                    start_sequence_number: start,
                    end_sequence_number: end,
                })
            }
            _ => ParkedMessage::Unknown(
                "DDBStreamBatchInfo lacks streamArn, shardId or the sequence range".into(),
            ),
        };
    }
    // tarem's own parking wraps the payload with its target; a Lambda on-failure record wraps
    // the event as `requestPayload`; a rule's dead letter is the event.
    let event = value
        .get(PARKED_PAYLOAD)
        .or_else(|| value.get("requestPayload"))
        .cloned()
        .unwrap_or_else(|| value.clone());
    // What tarem parked says where it goes back, even when it is malformed.
    if let Some(target) = value
        .pointer("/taremParked/target")
        .and_then(|t| serde_json::from_value::<Target>(t.clone()).ok())
    {
        return ParkedMessage::Event { target, event };
    }
    let source = event.get("source").and_then(Value::as_str);
    let detail_type = event.get("detail-type").and_then(Value::as_str);
    let target = if source == Some(TA_SOURCE) && detail_type == Some(TA_DETAIL_TYPE) {
        Target::CheckTracker
    } else if source == Some(SSM_SOURCE) && detail_type == Some(SSM_DETAIL_TYPE) {
        Target::AutomationExecutionHandler
    } else if event.get("Records").is_some() {
        Target::ResultsHandler
    } else {
        return ParkedMessage::Unknown(format!(
            "neither a Trusted Advisor nor an SSM automation event nor stream records (source {source:?}, detail-type {detail_type:?})"
        ));
    };
    ParkedMessage::Event { target, event }
}

/// What happened to one parked message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replayed {
    pub message_id: String,
    /// `check-tracker`, `results-handler`, `automation-execution-handler` or `unknown`.
    pub target: String,
    /// `replayed`, `parked again: …`, `would replay` (dry run), `failed: …` or `skipped: …`.
    pub outcome: String,
    pub deleted: bool,
}

pub struct Replayer<'a> {
    pub queue: &'a dyn ParkedQueue,
    pub stream: &'a dyn StreamReader,
    pub redrive: &'a dyn Redrive,
}

impl Replayer<'_> {
    /// Re-drives up to `max` messages. With `dry_run`, reads and classifies only: nothing is
    /// invoked and nothing deleted. Every message this run received and did not delete (a dry
    /// run's, a failed replay's) is released at the end, so the next run sees it at once; while
    /// the run lasts they stay invisible, so it never counts one twice.
    pub async fn replay(&self, max: usize, dry_run: bool) -> Result<Vec<Replayed>, PortError> {
        let mut replayed = vec![];
        let mut held: Vec<String> = vec![];
        let result = self
            .replay_all(max, dry_run, &mut replayed, &mut held)
            .await;
        for receipt in &held {
            // A message that cannot be released only waits out its visibility timeout.
            if let Err(error) = self.queue.release(receipt).await {
                tracing::warn!(%error, "could not release a message; it reappears after the queue's visibility timeout");
            }
        }
        result.map(|()| replayed)
    }

    async fn replay_all(
        &self,
        max: usize,
        dry_run: bool,
        replayed: &mut Vec<Replayed>,
        held: &mut Vec<String>,
    ) -> Result<(), PortError> {
        // A message parked again during this run has a body already seen: it waits for the next.
        let mut seen = std::collections::HashSet::new();
        while replayed.len() < max {
            let messages = self.queue.receive((max - replayed.len()).min(10)).await?;
            let mut fresh = vec![];
            for message in messages {
                if seen.insert(message.body.clone()) {
                    fresh.push(message);
                } else {
                    held.push(message.receipt);
                }
            }
            if fresh.is_empty() {
                break;
            }
            for message in fresh {
                let outcome = self.replay_one(&message, dry_run).await;
                if !matches!(&outcome, Ok(r) if r.deleted) {
                    held.push(message.receipt.clone());
                }
                replayed.push(outcome?);
            }
        }
        Ok(())
    }

    async fn replay_one(
        &self,
        message: &QueueMessage,
        dry_run: bool,
    ) -> Result<Replayed, PortError> {
        let (target, payload) = match classify(&message.body) {
            ParkedMessage::Unknown(reason) => {
                return Ok(Replayed {
                    message_id: message.id.clone(),
                    target: "unknown".into(),
                    outcome: format!("skipped: {reason}"),
                    deleted: false,
                });
            }
            ParkedMessage::Event { target, event } => (target, Ok(event)),
            ParkedMessage::StreamBatch(batch) => (Target::ResultsHandler, Err(batch)),
        };
        let target_name = target.as_str().to_owned();
        if dry_run {
            return Ok(Replayed {
                message_id: message.id.clone(),
                target: target_name,
                outcome: "would replay".into(),
                deleted: false,
            });
        }
        let payload = match payload {
            Ok(event) => event,
            Err(batch) => match self.stream.records(&batch).await {
                Ok(records) if records.is_empty() => {
                    return Ok(Replayed {
                        message_id: message.id.clone(),
                        target: target_name,
                        outcome: "failed: the stream no longer holds these records (kept 24 hours)"
                            .into(),
                        deleted: false,
                    });
                }
                Ok(records) => serde_json::json!({ "Records": records }),
                Err(error) => {
                    return Ok(Replayed {
                        message_id: message.id.clone(),
                        target: target_name,
                        outcome: format!("failed: {error}"),
                        deleted: false,
                    });
                }
            },
        };
        match self.redrive.invoke(target, &payload).await {
            Ok(redriven) => {
                // Handled, or parked again as a fresh copy: this message is done either way.
                self.queue.delete(&message.receipt).await?;
                Ok(Replayed {
                    message_id: message.id.clone(),
                    target: target_name,
                    outcome: match redriven {
                        Redriven::Done => "replayed".into(),
                        Redriven::ParkedAgain(reason) => format!("parked again: {reason}"),
                    },
                    deleted: true,
                })
            }
            Err(error) => Ok(Replayed {
                message_id: message.id.clone(),
                target: target_name,
                outcome: format!("failed: {error}"),
                deleted: false,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::parked_body;
    use serde_json::json;

    fn ta_event() -> Value {
        json!({"source": TA_SOURCE, "detail-type": TA_DETAIL_TYPE, "detail": {"check-name": "c"}})
    }

    #[test]
    fn every_parked_shape_is_recognised() {
        // An EventBridge rule's dead letter: the event itself.
        assert_eq!(
            classify(&ta_event().to_string()),
            ParkedMessage::Event {
                target: Target::CheckTracker,
                event: ta_event()
            }
        );
        // A Lambda on-failure record wraps it.
        let destination = json!({
            "version": "1.0",
            "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
            "requestPayload": {"source": SSM_SOURCE, "detail-type": SSM_DETAIL_TYPE, "detail": {}},
            "responsePayload": {"errorMessage": "UpdateOpsItem failed"}
        });
        assert!(matches!(
            classify(&destination.to_string()),
            ParkedMessage::Event {
                target: Target::AutomationExecutionHandler,
                ..
            }
        ));
        // tarem's own parking.
        let parked = parked_body(
            Target::ResultsHandler,
            &json!({"Records": [{}]}),
            "CreateOpsItem failed",
        );
        assert!(matches!(
            classify(&parked.to_string()),
            ParkedMessage::Event { target: Target::ResultsHandler, event } if event == json!({"Records": [{}]})
        ));
        // The stream mapping's on-failure record names a range.
        let stream = json!({
            "requestContext": {"condition": "RetryAttemptsExhausted"},
            "DDBStreamBatchInfo": {
                "shardId": "shardId-000000000001", "startSequenceNumber": "100", "endSequenceNumber": "200",
                "batchSize": 2, "streamArn": "arn:aws:dynamodb:us-east-1:1:table/T/stream/2026"
            }
        });
        assert_eq!(
            classify(&stream.to_string()),
            ParkedMessage::StreamBatch(StreamBatch {
                stream_arn: "arn:aws:dynamodb:us-east-1:1:table/T/stream/2026".into(),
                shard_id: "shardId-000000000001".into(),
                start_sequence_number: "100".into(),
                end_sequence_number: "200".into(),
            })
        );
        assert!(matches!(classify("not json"), ParkedMessage::Unknown(_)));
        assert!(
            matches!(classify(r#"{"source": "aws.ec2"}"#), ParkedMessage::Unknown(reason) if reason.contains("aws.ec2"))
        );
    }
}
