//! `tarem dlq replay` on AWS: parked messages go back to the deployed functions (the same
//! handlers, after the fix is deployed), and stream batches are read again from DynamoDB Streams.

use async_trait::async_trait;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use aws_sdk_lambda::primitives::Blob;
use serde_json::{Value, json};
use tarem_shared::aws::errors::port_error;
use tarem_shared::error::{ErrorKind, PortError};
use tarem_shared::ports::{Redrive, Redriven, StreamBatch, StreamReader, Target};

/// Invokes the stack's functions synchronously: the names its outputs give, else
/// `<stack>-check-tracker`, `<stack>-results-handler`, `<stack>-automation-execution-handler`.
pub struct LambdaRedrive {
    client: aws_sdk_lambda::Client,
    stack_name: String,
    stack: crate::stack::Stack,
}

impl LambdaRedrive {
    /// The functions named after the stack (`<stack>-<function>`).
    pub fn new(client: aws_sdk_lambda::Client, stack: impl Into<String>) -> Self {
        Self::for_stack(client, stack, crate::stack::Stack::local())
    }

    /// The functions the deployed stack's outputs name.
    pub fn for_stack(
        client: aws_sdk_lambda::Client,
        stack_name: impl Into<String>,
        stack: crate::stack::Stack,
    ) -> Self {
        Self {
            client,
            stack_name: stack_name.into(),
            stack,
        }
    }

    pub fn function_name(&self, target: Target) -> String {
        self.stack.function(target.as_str(), &self.stack_name)
    }
}

#[async_trait]
impl Redrive for LambdaRedrive {
    async fn invoke(&self, target: Target, payload: &Value) -> Result<Redriven, PortError> {
        let function = self.function_name(target);
        let output = self
            .client
            .invoke()
            .function_name(&function)
            .payload(Blob::new(payload.to_string()))
            .send()
            .await
            .map_err(|error| port_error("Invoke", &error))?;
        let response: Value = output
            .payload()
            .and_then(|blob| serde_json::from_slice(blob.as_ref()).ok())
            .unwrap_or(Value::Null);
        if let Some(kind) = output.function_error() {
            return Err(PortError::new(
                "Invoke",
                ErrorKind::Invalid,
                format!("{function} failed ({kind}): {response}"),
            ));
        }
        let failures = response
            .get("batchItemFailures")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        if failures > 0 {
            return Err(PortError::new(
                "Invoke",
                ErrorKind::Unavailable,
                format!("{function} reported {failures} records failed again"),
            ));
        }
        // check-tracker and automation-execution-handler answer with their outcome.
        Ok(match response.get("outcome").and_then(Value::as_str) {
            Some("rejected") => Redriven::ParkedAgain(
                response
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("rejected")
                    .to_owned(),
            ),
            _ => Redriven::Done,
        })
    }
}

/// Reads a parked sequence range from the tracker table's stream.
pub struct DynamoStreamReader {
    client: aws_sdk_dynamodbstreams::Client,
    /// The region the stream records say they come from (the stack's).
    region: String,
}

impl DynamoStreamReader {
    pub fn new(client: aws_sdk_dynamodbstreams::Client, region: impl Into<String>) -> Self {
        Self {
            client,
            region: region.into(),
        }
    }
}

/// Sequence numbers are decimal strings of varying length: compare them as numbers.
fn sequence_le(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    (a.len(), a) <= (b.len(), b)
}

/// A stream record as Lambda delivers it to the results handler.
pub fn lambda_record(record: &Record, stream_arn: &str, region: &str) -> Option<Value> {
    let change = record.dynamodb()?;
    let image = |image: Option<
        &std::collections::HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>,
    >| {
        image.and_then(|image| serde_json::to_value(serde_dynamo::Item::from(image.clone())).ok())
    };
    Some(json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|name| name.as_str()),
        "eventVersion": record.event_version(),
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "eventSourceARN": stream_arn,
        "dynamodb": {
            "ApproximateCreationDateTime": change.approximate_creation_date_time().map(|t| t.secs()),
            "Keys": image(change.keys.as_ref()),
            "NewImage": image(change.new_image.as_ref()),
            "OldImage": image(change.old_image.as_ref()),
            "SequenceNumber": change.sequence_number(),
            "SizeBytes": change.size_bytes(),
            "StreamViewType": change.stream_view_type().map(|v| v.as_str()),
        }
    }))
}

#[async_trait]
impl StreamReader for DynamoStreamReader {
    async fn records(&self, batch: &StreamBatch) -> Result<Vec<Value>, PortError> {
        let iterator = self
            .client
            .get_shard_iterator()
            .stream_arn(&batch.stream_arn)
            .shard_id(&batch.shard_id)
            .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
            .sequence_number(&batch.start_sequence_number)
            .send()
            .await
            .map_err(|error| port_error("GetShardIterator", &error))?;
        let mut next = iterator.shard_iterator;
        let mut records = vec![];
        // Bounded: a parked batch is at most the mapping's batch size; a few reads reach its end.
        for _ in 0..100 {
            let Some(iterator) = next.take() else { break };
            let output = self
                .client
                .get_records()
                .shard_iterator(iterator)
                .send()
                .await
                .map_err(|error| port_error("GetRecords", &error))?;
            let mut past_end = output.records().is_empty();
            for record in output.records() {
                let sequence = record
                    .dynamodb()
                    .and_then(|d| d.sequence_number())
                    .unwrap_or_default();
                if !sequence_le(sequence, &batch.end_sequence_number) {
                    past_end = true;
                    break;
                }
                records.extend(lambda_record(record, &batch.stream_arn, &self.region));
            }
            if past_end {
                break;
            }
            next = output.next_shard_iterator;
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::sequence_le;

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert!(sequence_le("9", "10"));
        assert!(sequence_le("000100", "100"));
        assert!(!sequence_le(
            "10053100000000041555340249",
            "10053100000000041555340248"
        ));
    }
}
