//! The tracker table as DynamoDB sees it: a finding as an item, the item's size, and the stream
//! records (NEW_AND_OLD_IMAGES) that the results handler receives.

use crate::finding::Finding;
use crate::finding::{item_size, to_item};
use aws_lambda_events::event::dynamodb::{EventRecord, StreamRecord, StreamViewType};
use chrono::{DateTime, Utc};
use serde_dynamo::{AttributeValue, Item};
use serde_json::Value;

/// A stream record as the results handler needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackerChange {
    /// What to name in a partial batch response.
    pub sequence_number: Option<String>,
    pub event_name: String,
    pub new: Option<Finding>,
    pub old: Option<Finding>,
}

/// Why a stream record cannot be read. Permanent: retrying the same bytes cannot help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not a DynamoDB stream record: {0}")]
    NotARecord(String),
    #[error("{image} is not a tracker row: {reason}")]
    BadImage { image: &'static str, reason: String },
}

pub fn decode_record(record: &Value) -> Result<TrackerChange, DecodeError> {
    let record: EventRecord = serde_json::from_value(record.clone())
        .map_err(|error| DecodeError::NotARecord(error.to_string()))?;
    let image = |item: Item, name: &'static str| -> Result<Option<Finding>, DecodeError> {
        if item.is_empty() {
            return Ok(None);
        }
        serde_dynamo::from_item(item)
            .map(Some)
            .map_err(|error| DecodeError::BadImage {
                image: name,
                reason: error.to_string(),
            })
    };
    Ok(TrackerChange {
        sequence_number: record.change.sequence_number.clone(),
        new: image(record.change.new_image, "NewImage")?,
        old: image(record.change.old_image, "OldImage")?,
        event_name: record.event_name,
    })
}

/// The stream record DynamoDB emits for a write, as Lambda delivers it.
pub fn stream_record(
    sequence_number: u64,
    table_region: &str,
    new: Option<&Finding>,
    old: Option<&Finding>,
    at: DateTime<Utc>,
) -> EventRecord {
    let event_name = match (old, new) {
        (None, _) => "INSERT",
        (Some(_), Some(_)) => "MODIFY",
        (Some(_), None) => "REMOVE",
    };
    let any = new.or(old);
    let mut keys = Item::from(std::collections::HashMap::<String, AttributeValue>::new());
    if let Some(finding) = any {
        keys.insert(
            "hashKey".into(),
            AttributeValue::S(finding.hash_key.clone()),
        );
        keys.insert(
            "resource".into(),
            AttributeValue::S(finding.resource.clone()),
        );
    }
    let mut change = StreamRecord::default();
    change.approximate_creation_date_time = at;
    change.keys = keys;
    change.new_image = new.map(to_item).unwrap_or_default();
    change.old_image = old.map(to_item).unwrap_or_default();
    change.sequence_number = Some(format!("{sequence_number:021}"));
    change.size_bytes = new.or(old).map(item_size).unwrap_or(0) as i64;
    change.stream_view_type = Some(StreamViewType::NewAndOldImages);
    let mut record = EventRecord::default();
    record.aws_region = table_region.to_owned();
    record.change = change;
    record.event_id = format!("{sequence_number:032x}");
    record.event_name = event_name.to_owned();
    record.event_source = Some("aws:dynamodb".into());
    record.event_version = Some("1.1".into());
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Status, finding_from_event, parse_time};

    fn reference(name: &str) -> Value {
        let path = format!(
            "{}/../../tests/fixtures/reference/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn decodes_a_row_written_by_another_tool() {
        let batch = reference("dynamodb-stream-tracker-record.json");
        let change = decode_record(&batch["Records"][0]).unwrap();
        assert_eq!(change.event_name, "MODIFY");
        assert_eq!(
            change.sequence_number.as_deref(),
            Some("10053100000000041555340248")
        );
        let new = change.new.unwrap();
        assert_eq!(new.resource_status, Status::Red);
        // No findingTimeMillis attribute: the epoch seconds stand in.
        assert_eq!(new.time_millis(), 1_715_573_312_000);
        assert_eq!(change.old.unwrap().resource_status, Status::Green);
    }

    #[test]
    fn our_own_records_round_trip() {
        let event = reference("ta-config-sourced-security-group.json");
        let now = parse_time("2026-11-28T00:00:00Z").unwrap();
        let finding = finding_from_event(&event, now, &Default::default()).unwrap();
        let record =
            serde_json::to_value(stream_record(7, "us-east-1", Some(&finding), None, now)).unwrap();
        let change = decode_record(&record).unwrap();
        assert_eq!(change.event_name, "INSERT");
        assert_eq!(change.new.as_ref(), Some(&finding));
        assert_eq!(change.old, None);
    }

    #[test]
    fn unreadable_records_say_what_is_wrong() {
        assert!(matches!(
            decode_record(&serde_json::json!({"eventName": 5})),
            Err(DecodeError::NotARecord(_))
        ));
        let mut batch = reference("dynamodb-stream-tracker-record.json");
        batch["Records"][0]["dynamodb"]["NewImage"]["resourceStatus"] =
            serde_json::json!({"S": "Purple"});
        let error = decode_record(&batch["Records"][0]).unwrap_err();
        assert!(
            matches!(
                error,
                DecodeError::BadImage {
                    image: "NewImage",
                    ..
                }
            ),
            "{error}"
        );
    }
}
