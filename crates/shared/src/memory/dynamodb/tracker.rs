//! The tracker table and its stream.

use crate::clock::Clock;
use crate::error::PortError;
use crate::finding::{Finding, Placement, placement};
use crate::memory::{Faults, lock};
use crate::ports::{Page, RowKey, TrackerStore, WriteOutcome, due_shard};
use crate::stream::stream_record;
use async_trait::async_trait;
use aws_lambda_events::event::dynamodb::EventRecord;
use std::collections::{BTreeMap, BTreeSet};
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
    /// The work index: a row is pending its check (`settleBy`, epoch seconds) or, checked and
    /// flagged, in the flagged part; a row in neither is Green, or written before the index.
    work: BTreeMap<(String, String), Work>,
    /// The pending part of the work index in its query order (shard, due, key), so a query
    /// reads what is due, not the table: kept by [`TrackerState::set_work`].
    pending: BTreeSet<(u32, i64, (String, String))>,
    stream: Vec<EventRecord>,
    /// The records of the last 24 hours, oldest first: DynamoDB Streams keeps a record "for up
    /// to 24 hours", so an older one is gone (a parked range replayed later finds nothing).
    history: std::collections::VecDeque<EventRecord>,
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

    /// The stream records still in the stream (the last 24 hours), oldest first.
    pub fn stream_history(&self) -> Vec<EventRecord> {
        let cutoff = self.clock.now() - STREAM_RETENTION;
        let mut state = lock(&self.state);
        trim_history(&mut state.history, cutoff);
        state.history.iter().cloned().collect()
    }

    /// A row another version (or another tool) wrote: no settle mark, not in the flagged index,
    /// no stream record.
    pub fn insert_legacy(&self, row: &Finding) {
        lock(&self.state)
            .rows
            .insert((row.hash_key.clone(), row.resource.clone()), row.clone());
    }

    /// Rows still pending their check.
    pub fn pending_count(&self) -> usize {
        lock(&self.state)
            .work
            .values()
            .filter(|w| matches!(w, Work::Pending(_)))
            .count()
    }
}

impl TrackerState {
    /// Moves a row in the work index (`None`: out of it).
    fn set_work(&mut self, key: (String, String), work: Option<Work>) {
        let shard = due_shard(&key.0);
        if let Some(Work::Pending(at)) = self.work.get(&key) {
            self.pending.remove(&(shard, *at, key.clone()));
        }
        match work {
            Some(work) => {
                if let Work::Pending(at) = work {
                    self.pending.insert((shard, at, key.clone()));
                }
                self.work.insert(key, work);
            }
            None => {
                self.work.remove(&key);
            }
        }
    }
}

/// Where a row is in the work index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    Pending(i64),
    Flagged,
}

/// How long DynamoDB Streams keeps a record.
const STREAM_RETENTION: chrono::Duration = chrono::Duration::hours(24);

/// Drops the records written before `cutoff` (the oldest are at the front).
fn trim_history(
    history: &mut std::collections::VecDeque<EventRecord>,
    cutoff: chrono::DateTime<chrono::Utc>,
) {
    while history
        .front()
        .is_some_and(|record| record.change.approximate_creation_date_time < cutoff)
    {
        history.pop_front();
    }
}

/// How long after a write its settle check is due: past the stream's normal delivery, so the
/// check finds the change applied.
pub const SETTLE_AFTER: chrono::Duration = chrono::Duration::minutes(15);

/// A settle index position: the due time (fixed width) and the key.
fn settle_cursor(at: i64, key: &(String, String)) -> String {
    format!("{at:015}|{}|{}", key.0, key.1)
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
        state.rows.insert(key.clone(), row.clone());
        // Pending its check: `settleBy = if_not_exists(settleBy, :due)`.
        let due = row
            .tracked_at
            .as_deref()
            .and_then(crate::finding::parse_time)
            .unwrap_or_else(|| self.clock.now())
            + SETTLE_AFTER;
        let due = match state.work.get(&key) {
            Some(Work::Pending(at)) => *at,
            _ => due.timestamp(),
        };
        state.set_work(key, Some(Work::Pending(due)));
        state.sequence += 1;
        let record = stream_record(
            state.sequence,
            &self.table_region,
            Some(&row),
            old.as_ref(),
            self.clock.now(),
        );
        trim_history(&mut state.history, self.clock.now() - STREAM_RETENTION);
        state.history.push_back(record.clone());
        state.stream.push(record);
        Ok(WriteOutcome::replacing(
            old.map(|old| (old.resource_status, old.time_millis())),
            finding,
        ))
    }

    async fn flagged_keys(
        &self,
        account: Option<&str>,
        check_name: &str,
    ) -> Result<Vec<RowKey>, PortError> {
        self.faults.check("tracker.flagged_keys")?;
        let state = lock(&self.state);
        Ok(state
            .work
            .iter()
            .filter(|(_, work)| **work == Work::Flagged)
            .filter_map(|(key, _)| state.rows.get(key))
            .filter(|f| f.check_name == check_name)
            .filter(|f| account.is_none_or(|a| f.account_id.as_deref() == Some(a)))
            .map(|f| RowKey {
                hash_key: f.hash_key.clone(),
                resource: f.resource.clone(),
            })
            .collect())
    }

    async fn pending(
        &self,
        shard: u32,
        due_by: i64,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<RowKey>, PortError> {
        self.faults.check("tracker.pending")?;
        let state = lock(&self.state);
        // The index in its order, from the cursor: a page costs what it returns.
        let resume_at = after
            .and_then(|after| after.get(..15))
            .and_then(|at| at.parse().ok())
            .unwrap_or(i64::MIN);
        let mut read = state
            .pending
            .range((shard, resume_at, (String::new(), String::new()))..)
            .take_while(|(s, at, _)| *s == shard && *at <= due_by)
            .filter(|(_, at, key)| {
                after.is_none_or(|after| settle_cursor(*at, key).as_str() > after)
            });
        let page: Vec<&(u32, i64, (String, String))> = read.by_ref().take(limit.max(1)).collect();
        let more = read.next().is_some();
        Ok(Page {
            items: page
                .iter()
                .map(|(_, _, key)| RowKey {
                    hash_key: key.0.clone(),
                    resource: key.1.clone(),
                })
                .collect(),
            next: more
                .then(|| page.last().map(|(_, at, key)| settle_cursor(*at, key)))
                .flatten(),
        })
    }

    async fn settled(&self, row: &Finding) -> Result<(), PortError> {
        self.faults.check("tracker.settled")?;
        let mut state = lock(&self.state);
        let key = (row.hash_key.clone(), row.resource.clone());
        // The condition: the row is the one checked. Its stream record carries no settle mark,
        // which the stream's filter drops: no record reaches the results handler.
        let current = state
            .rows
            .get(&key)
            .map(|r| (r.order_key.clone(), r.resource_status));
        if current.as_ref().map(|(order, _)| order) == Some(&row.order_key) {
            if current.is_some_and(|(_, status)| status.is_flagged()) {
                state.set_work(key, Some(Work::Flagged));
            } else {
                state.set_work(key, None);
            }
        }
        Ok(())
    }

    async fn unindexed(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Finding>, PortError> {
        self.faults.check("tracker.unindexed")?;
        let state = lock(&self.state);
        // Like a Scan with a Limit: `limit` rows read after `after`, those outside the index
        // returned.
        let cursor = |key: &(String, String)| format!("{}|{}", key.0, key.1);
        let mut read = state
            .rows
            .iter()
            .filter(|(key, _)| after.is_none_or(|after| cursor(key).as_str() > after));
        let page: Vec<(&(String, String), &Finding)> = read.by_ref().take(limit.max(1)).collect();
        let more = read.next().is_some();
        Ok(Page {
            items: page
                .iter()
                .filter(|(key, row)| {
                    row.resource_status.is_flagged() && !state.work.contains_key(*key)
                })
                .map(|(_, row)| (*row).clone())
                .collect(),
            next: more
                .then(|| page.last().map(|(key, _)| cursor(key)))
                .flatten(),
        })
    }

    async fn mark_pending(&self, row: &Finding, due: i64) -> Result<(), PortError> {
        self.faults.check("tracker.mark_pending")?;
        let mut state = lock(&self.state);
        let key = (row.hash_key.clone(), row.resource.clone());
        if state.rows.contains_key(&key) && !state.work.contains_key(&key) {
            state.set_work(key, Some(Work::Pending(due)));
        }
        Ok(())
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

    /// The pending part of the work index pages as DynamoDB's query does: every pending row
    /// once, across pages of rows due at the same second, and a row checked Green leaves it.
    #[tokio::test]
    async fn pending_pages_through_ties_and_loses_what_settled() {
        let clock = Arc::new(crate::clock::ManualClock::new(
            chrono::DateTime::from_timestamp(1_000, 0).unwrap(),
        ));
        let tracker = InMemoryTracker::new(clock, "us-east-1");
        let row = |i: usize, status: Status| {
            let at = chrono::DateTime::from_timestamp(1_000, 0).unwrap();
            let mut f = Finding::new("1", "c", &format!("r{i}"), "eu-west-1").at(status, at, at);
            f.tracked_at = Some(crate::finding::format_time(at));
            f
        };
        for i in 0..120 {
            tracker.put_if_newer(&row(i, Status::Red)).await.unwrap();
        }
        let read_all = || async {
            let mut found = vec![];
            for shard in 0..crate::ports::DUE_SHARDS {
                let mut after: Option<String> = None;
                loop {
                    let page = tracker
                        .pending(shard, i64::MAX, after.as_deref(), 7)
                        .await
                        .unwrap();
                    found.extend(page.items.into_iter().map(|k| k.resource));
                    match page.next {
                        Some(next) => after = Some(next),
                        None => break,
                    }
                }
            }
            found.sort();
            found
        };
        let mut all: Vec<String> = (0..120).map(|i| format!("r{i}")).collect();
        all.sort();
        assert_eq!(read_all().await, all);
        assert_eq!(
            tracker.pending(0, 0, None, 100).await.unwrap().items,
            vec![]
        );
        let r7 = tracker
            .rows()
            .into_iter()
            .find(|r| r.resource == "r7")
            .unwrap();
        tracker.settled(&r7).await.unwrap();
        let after_check = read_all().await;
        assert!(
            !after_check.contains(&"r7".to_string()),
            "checked: out of pending"
        );
        assert_eq!(after_check.len(), 119);
    }
}
