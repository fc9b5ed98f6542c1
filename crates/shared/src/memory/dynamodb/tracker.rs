//! The tracker table and its stream.

use crate::clock::Clock;
use crate::error::PortError;
use crate::finding::{Finding, Placement, placement};
use crate::memory::{Faults, lock};
use crate::ports::{TrackerStore, WriteOutcome};
use crate::stream::stream_record;
use async_trait::async_trait;
use aws_lambda_events::event::dynamodb::EventRecord;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// DynamoDB refuses a sort key over 1,024 bytes (a partition key over 2,048) for good, as a
/// ValidationException.
fn key_fits(finding: &Finding) -> Result<(), PortError> {
    if finding.resource.len() > crate::finding::MAX_RESOURCE_BYTES || finding.hash_key.len() > 2048
    {
        return Err(PortError::new(
            "UpdateItem",
            crate::error::ErrorKind::Invalid,
            format!(
                "ValidationException: One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes ({} bytes)",
                finding.resource.len()
            ),
        ));
    }
    Ok(())
}

/// The tracker table and its stream.
pub struct InMemoryTracker {
    pub(crate) faults: Arc<Faults>,
    clock: Arc<dyn Clock>,
    table_region: String,
    state: Mutex<TrackerState>,
}

#[derive(Default)]
struct TrackerState {
    rows: BTreeMap<(String, String), Finding>,
    stream: Vec<EventRecord>,
    /// Every record ever written (DynamoDB Streams keeps them 24 hours).
    history: Vec<EventRecord>,
    sequence: u64,
}

impl InMemoryTracker {
    pub fn new(clock: Arc<dyn Clock>, table_region: &str) -> Self {
        Self {
            faults: Arc::default(),
            clock,
            table_region: table_region.to_owned(),
            state: Mutex::new(TrackerState::default()),
        }
    }

    /// Takes the stream records written since the last call, oldest first.
    pub fn take_stream(&self) -> Vec<EventRecord> {
        std::mem::take(&mut lock(&self.state).stream)
    }

    pub fn rows(&self) -> Vec<Finding> {
        lock(&self.state).rows.values().cloned().collect()
    }

    /// Every stream record written so far, oldest first.
    pub fn stream_history(&self) -> Vec<EventRecord> {
        lock(&self.state).history.clone()
    }
}

#[async_trait]
impl TrackerStore for InMemoryTracker {
    async fn put_if_newer(&self, finding: &Finding) -> Result<WriteOutcome, PortError> {
        self.faults.check("tracker.put_if_newer")?;
        key_fits(finding)?;
        let mut state = lock(&self.state);
        let key = (finding.hash_key.clone(), finding.resource.clone());
        let old = state.rows.get(&key).cloned();
        // The rule the DynamoDB condition expresses: later in the order replaces.
        match placement(finding.order(), old.as_ref().map(Finding::order)) {
            Placement::Same => return Ok(WriteOutcome::Duplicate),
            Placement::Older => return Ok(WriteOutcome::Stale),
            Placement::Newer => {}
        }
        let row = finding.written_over(old.as_ref());
        state.rows.insert(key, row.clone());
        state.sequence += 1;
        let record = stream_record(
            state.sequence,
            &self.table_region,
            Some(&row),
            old.as_ref(),
            self.clock.now(),
        );
        state.history.push(record.clone());
        state.stream.push(record);
        Ok(WriteOutcome::replacing(
            old.map(|old| (old.resource_status, old.time_millis())),
            finding,
        ))
    }

    async fn flagged(&self, check_name: &str) -> Result<Vec<Finding>, PortError> {
        self.faults.check("tracker.flagged")?;
        Ok(lock(&self.state)
            .rows
            .values()
            .filter(|f| f.check_name == check_name && f.resource_status.is_flagged())
            .cloned()
            .collect())
    }

    async fn get(&self, hash_key: &str, resource: &str) -> Result<Option<Finding>, PortError> {
        self.faults.check("tracker.get")?;
        Ok(lock(&self.state)
            .rows
            .get(&(hash_key.to_owned(), resource.to_owned()))
            .cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::clock::SystemClock;
    use crate::finding::Status;

    fn finding(millis: i64, status: Status) -> Finding {
        let at = |millis| chrono::DateTime::from_timestamp_millis(millis).unwrap();
        Finding::new("1", "c", "r", "eu-west-1").at(status, at(millis), at(millis))
    }

    #[tokio::test]
    async fn the_tracker_follows_the_order_rules() {
        let tracker = InMemoryTracker::new(Arc::new(SystemClock), "us-east-1");
        crate::contract::tracker_order_script(
            &tracker,
            "arn:aws:ec2:eu-west-1:1:security-group/sg-1",
        )
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn tracker_writes_only_later_findings_and_streams_each_write() {
        let tracker = InMemoryTracker::new(Arc::new(SystemClock), "us-east-1");
        assert_eq!(
            tracker.put_if_newer(&finding(10, Status::Red)).await,
            Ok(WriteOutcome::Written)
        );
        assert_eq!(
            tracker.put_if_newer(&finding(10, Status::Red)).await,
            Ok(WriteOutcome::Duplicate)
        );
        assert_eq!(
            tracker.put_if_newer(&finding(5, Status::Green)).await,
            Ok(WriteOutcome::Stale)
        );
        assert_eq!(
            tracker.put_if_newer(&finding(20, Status::Green)).await,
            Ok(WriteOutcome::Written)
        );
        let stream = tracker.take_stream();
        assert_eq!(
            stream
                .iter()
                .map(|r| r.event_name.as_str())
                .collect::<Vec<_>>(),
            ["INSERT", "MODIFY"]
        );
        assert!(!stream[1].change.old_image.is_empty());
        assert_eq!(tracker.rows()[0].resource_status, Status::Green);
    }
}
