//! The three tables (and the counters in the execution table), as DynamoDB behaves.

use super::{Faults, lock};
use crate::automation_event::is_final;
use crate::clock::Clock;
use crate::episode::Episode;
use crate::error::{ErrorKind, PortError};
use crate::finding::{Finding, Placement, placement};
use crate::ports::{
    Counters, EpisodePage, ExecutionRecord, ExecutionStore, MappingStore, StatusWrite,
    TrackerStore, WriteOutcome,
};
use crate::stream::stream_record;
use async_trait::async_trait;
use aws_lambda_events::event::dynamodb::EventRecord;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// The tracker table and its stream.
pub struct InMemoryTracker {
    pub(super) faults: Arc<Faults>,
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

/// The mapping table, holding plain JSON items.
#[derive(Default)]
pub struct InMemoryMappings {
    pub(super) faults: Arc<Faults>,
    items: Mutex<BTreeMap<String, Value>>,
}

impl InMemoryMappings {
    /// Stores an item (plain or DynamoDB-typed JSON) under its `checkName`.
    pub fn put(&self, item: &Value) -> Result<(), PortError> {
        let plain = crate::mapping::plain_json(item);
        let check = plain
            .get("checkName")
            .and_then(Value::as_str)
            .filter(|name| !name.is_empty())
            .ok_or_else(|| {
                PortError::new(
                    "PutItem",
                    ErrorKind::Invalid,
                    "the item has no string `checkName` key",
                )
            })?
            .to_owned();
        lock(&self.items).insert(check, plain);
        Ok(())
    }
}

#[async_trait]
impl MappingStore for InMemoryMappings {
    async fn check_names(&self) -> Result<Vec<String>, PortError> {
        self.faults.check("mappings.check_names")?;
        Ok(lock(&self.items).keys().cloned().collect())
    }

    async fn list(&self) -> Result<Vec<Value>, PortError> {
        self.faults.check("mappings.list")?;
        Ok(lock(&self.items).values().cloned().collect())
    }

    async fn put(&self, item: &Value) -> Result<(), PortError> {
        self.faults.check("mappings.put")?;
        InMemoryMappings::put(self, item)
    }

    async fn delete(&self, check_name: &str) -> Result<(), PortError> {
        self.faults.check("mappings.delete")?;
        lock(&self.items).remove(check_name);
        Ok(())
    }

    async fn get(&self, check_name: &str) -> Result<Option<Value>, PortError> {
        self.faults.check("mappings.get")?;
        Ok(lock(&self.items).get(check_name).cloned())
    }
}

/// The execution table: execution rows and each finding's remediation state, with DynamoDB's TTL
/// on the simulated clock.
///
/// DynamoDB deletes an expired item "typically within a few days", and until then it still
/// appears in reads. So expired items stay readable here until [`InMemoryExecutions::expire_ttl`]
/// (the TTL process) runs; tests run the loop both with and without it.
#[derive(Default)]
pub struct InMemoryExecutions {
    pub(super) faults: Arc<Faults>,
    clock: Option<Arc<dyn Clock>>,
    state: Mutex<ExecutionState>,
}

#[derive(Default)]
struct ExecutionState {
    rows: BTreeMap<String, ExecutionRecord>,
    episodes: BTreeMap<String, Episode>,
    sweep_cursor: Option<String>,
}

impl InMemoryExecutions {
    /// TTL is measured against this clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    pub fn rows(&self) -> Vec<ExecutionRecord> {
        lock(&self.state).rows.values().cloned().collect()
    }

    pub fn episodes(&self) -> Vec<Episode> {
        lock(&self.state).episodes.values().cloned().collect()
    }

    pub fn episode(&self, finding_key: &str) -> Option<Episode> {
        lock(&self.state).episodes.get(finding_key).cloned()
    }

    /// DynamoDB's TTL process: deletes every item whose `expiresAt` (epoch seconds, when set)
    /// has passed. Returns how many it deleted.
    pub fn expire_ttl(&self) -> usize {
        let Some(now) = self.clock.as_ref().map(|clock| clock.now().timestamp()) else {
            return 0;
        };
        let expired = |expires_at: i64| expires_at > 0 && expires_at <= now;
        let mut state = lock(&self.state);
        let before = state.rows.len() + state.episodes.len();
        state.rows.retain(|_, row| !expired(row.expires_at));
        state
            .episodes
            .retain(|_, episode| !expired(episode.expires_at));
        before - state.rows.len() - state.episodes.len()
    }
}

#[async_trait]
impl ExecutionStore for InMemoryExecutions {
    async fn record_started(&self, record: &ExecutionRecord) -> Result<String, PortError> {
        self.faults.check("executions.record_started")?;
        let mut state = lock(&self.state);
        // `status` and `updatedAt` only where missing; the rest filled where missing.
        let merged = match state.rows.get(&record.automation_execution_id) {
            Some(existing) => existing.filled_from(record),
            None => record.clone(),
        };
        let status = merged.status.clone();
        state
            .rows
            .insert(record.automation_execution_id.clone(), merged);
        Ok(status)
    }

    async fn get(&self, execution_id: &str) -> Result<Option<ExecutionRecord>, PortError> {
        self.faults.check("executions.get")?;
        Ok(lock(&self.state).rows.get(execution_id).cloned())
    }

    async fn record_status(&self, record: &ExecutionRecord) -> Result<StatusWrite, PortError> {
        self.faults.check("executions.record_status")?;
        let mut state = lock(&self.state);
        let updated = match state.rows.get(&record.automation_execution_id) {
            Some(existing) if is_final(&existing.status) => return Ok(StatusWrite::AlreadyFinal),
            // `status` and `updatedAt` set; the rest filled where missing (if_not_exists).
            Some(existing) => ExecutionRecord {
                status: record.status.clone(),
                updated_at: record.updated_at.clone(),
                ..existing.filled_from(record)
            },
            None => record.clone(),
        };
        state
            .rows
            .insert(record.automation_execution_id.clone(), updated);
        Ok(StatusWrite::Updated)
    }

    async fn unfinished(&self, updated_before: &str) -> Result<Vec<ExecutionRecord>, PortError> {
        self.faults.check("executions.unfinished")?;
        Ok(lock(&self.state)
            .rows
            .values()
            .filter(|row| !is_final(&row.status) && row.updated_at.as_str() < updated_before)
            .cloned()
            .collect())
    }

    async fn get_episode(&self, finding_key: &str) -> Result<Option<Episode>, PortError> {
        self.faults.check("executions.get_episode")?;
        Ok(lock(&self.state).episodes.get(finding_key).cloned())
    }

    async fn put_episode(&self, new: &Episode) -> Result<bool, PortError> {
        self.faults.check("executions.put_episode")?;
        let mut state = lock(&self.state);
        let stored = state.episodes.get(&new.finding_key).map(|e| e.version);
        // The condition: attribute_not_exists (version 1) or version = new.version - 1.
        let expected = new.version.checked_sub(1).filter(|v| *v > 0);
        if stored != expected {
            return Ok(false);
        }
        state.episodes.insert(new.finding_key.clone(), new.clone());
        Ok(true)
    }

    async fn open_episodes(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<EpisodePage, PortError> {
        self.faults.check("executions.open_episodes")?;
        let state = lock(&self.state);
        // Cursors are table keys (`finding#<key>`), as on DynamoDB.
        let after = after.map(|key| key.strip_prefix("finding#").unwrap_or(key));
        let mut keys = state
            .episodes
            .range::<str, _>((
                after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded),
                std::ops::Bound::Unbounded,
            ))
            .map(|(key, _)| key);
        // Like a Scan with a Limit: `limit` items are read, and only the open ones returned.
        let read: Vec<&String> = keys.by_ref().take(limit.max(1)).collect();
        let more = keys.next().is_some();
        Ok(EpisodePage {
            episodes: read
                .iter()
                .filter_map(|key| state.episodes.get(*key))
                .filter(|episode| episode.stage.is_open())
                .cloned()
                .collect(),
            next: more
                .then(|| read.last().map(|key| crate::episode::episode_key(key)))
                .flatten(),
        })
    }

    async fn sweep_cursor(&self) -> Result<Option<String>, PortError> {
        self.faults.check("executions.sweep_cursor")?;
        Ok(lock(&self.state).sweep_cursor.clone())
    }

    async fn set_sweep_cursor(&self, cursor: Option<&str>) -> Result<(), PortError> {
        self.faults.check("executions.set_sweep_cursor")?;
        lock(&self.state).sweep_cursor = cursor.map(str::to_owned);
        Ok(())
    }
}

/// Named counters.
#[derive(Default)]
pub struct InMemoryCounters {
    pub(super) faults: Arc<Faults>,
    values: Mutex<HashMap<String, u64>>,
}

#[async_trait]
impl Counters for InMemoryCounters {
    async fn increment_below(
        &self,
        name: &str,
        limit: u64,
        _expires_at: i64,
    ) -> Result<bool, PortError> {
        self.faults.check("counters.increment_below")?;
        let mut values = lock(&self.values);
        let value = values.entry(name.to_owned()).or_default();
        if *value >= limit {
            return Ok(false);
        }
        *value += 1;
        Ok(true)
    }

    async fn increment(&self, name: &str, _expires_at: i64) -> Result<(), PortError> {
        self.faults.check("counters.increment")?;
        *lock(&self.values).entry(name.to_owned()).or_default() += 1;
        Ok(())
    }

    async fn value(&self, name: &str) -> Result<u64, PortError> {
        self.faults.check("counters.value")?;
        Ok(lock(&self.values).get(name).copied().unwrap_or(0))
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

    #[tokio::test]
    async fn expired_items_stay_readable_until_the_ttl_process_deletes_them() {
        let clock = Arc::new(crate::clock::ManualClock::new(
            chrono::DateTime::from_timestamp(1_000, 0).unwrap(),
        ));
        let store = InMemoryExecutions::default().with_clock(clock.clone());
        let episode = |key: &str, expires_at: i64| {
            Episode {
                version: 1,
                expires_at,
                ..Episode::opened_by(&finding(1, Status::Red), None, "t")
            }
            .with_key(key)
        };
        assert!(store.put_episode(&episode("k", 1_500)).await.unwrap());
        assert!(store.put_episode(&episode("open", 0)).await.unwrap());
        clock.advance(chrono::Duration::seconds(600));
        assert!(
            store.get_episode("k").await.unwrap().is_some(),
            "past its TTL but not deleted yet: DynamoDB still returns it"
        );
        assert_eq!(store.expire_ttl(), 1);
        assert_eq!(store.get_episode("k").await.unwrap(), None);
        assert!(
            store.get_episode("open").await.unwrap().is_some(),
            "no TTL, never expires"
        );
    }

    #[tokio::test]
    async fn a_status_write_fills_what_the_row_lacks_and_keeps_what_it_has() {
        let store = InMemoryExecutions::default();
        let bare = ExecutionRecord {
            automation_execution_id: "e".into(),
            ops_item_id: Some("oi-1".into()),
            finding_key: "k".into(),
            region: "eu-west-1".into(),
            document: None,
            check_name: None,
            resource: None,
            client_token: None,
            parameters: None,
            status: "Pending".into(),
            started_at: None,
            updated_at: "t1".into(),
            expires_at: 1,
        };
        store.record_status(&bare).await.unwrap();
        let fuller = ExecutionRecord {
            document: Some("D".into()),
            client_token: Some("token".into()),
            status: "InProgress".into(),
            updated_at: "t2".into(),
            expires_at: 2,
            ..bare.clone()
        };
        store.record_status(&fuller).await.unwrap();
        let row = store.get("e").await.unwrap().unwrap();
        assert_eq!(
            (
                row.status.as_str(),
                row.document.as_deref(),
                row.client_token.as_deref(),
                row.updated_at.as_str(),
                row.expires_at
            ),
            ("InProgress", Some("D"), Some("token"), "t2", 2)
        );
        let other = ExecutionRecord {
            document: Some("Other".into()),
            status: "Success".into(),
            ..fuller
        };
        store.record_status(&other).await.unwrap();
        assert_eq!(
            store.get("e").await.unwrap().unwrap().document.as_deref(),
            Some("D"),
            "a value already there is kept"
        );
    }

    #[tokio::test]
    async fn execution_rows_keep_a_final_status_and_states_are_versioned() {
        let store = InMemoryExecutions::default();
        let row = ExecutionRecord {
            automation_execution_id: "e".into(),
            ops_item_id: Some("oi-1".into()),
            finding_key: "k".into(),
            region: "eu-west-1".into(),
            document: None,
            check_name: None,
            resource: None,
            client_token: Some("t".into()),
            parameters: None,
            status: "Success".into(),
            started_at: None,
            updated_at: String::new(),
            expires_at: 0,
        };
        assert_eq!(
            store.record_status(&row).await.unwrap(),
            StatusWrite::Updated
        );
        let started = ExecutionRecord {
            status: "Pending".into(),
            document: Some("D".into()),
            ..row.clone()
        };
        assert_eq!(store.record_started(&started).await.unwrap(), "Success");
        let stored = store.get("e").await.unwrap().unwrap();
        assert_eq!(
            (stored.status.as_str(), stored.document.as_deref()),
            ("Success", Some("D"))
        );
        let late = ExecutionRecord {
            status: "InProgress".into(),
            ..row
        };
        assert_eq!(
            store.record_status(&late).await.unwrap(),
            StatusWrite::AlreadyFinal
        );

        let first = Episode {
            version: 1,
            ..Episode::opened_by(&finding(1, Status::Red), None, "t")
        };
        assert!(store.put_episode(&first).await.unwrap());
        assert!(
            !store.put_episode(&first).await.unwrap(),
            "a second writer of version 1 loses"
        );
        let second = Episode {
            version: 2,
            ..first.clone()
        };
        assert!(store.put_episode(&second).await.unwrap());
        assert!(
            !store
                .put_episode(&Episode {
                    version: 2,
                    ..first
                })
                .await
                .unwrap()
        );
    }
}
