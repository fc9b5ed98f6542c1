//! results-handler: each tracker stream record moves its finding's episode along
//! ([`crate::lifecycle`]): opens its OpsItem, and starts the runbook when the lifecycle says so.
//!
//! Every record of a batch is processed. Only records that failed retryably are named in the
//! partial batch response; once a finding's record fails, its later records in the batch wait
//! too, so a finding's changes are never applied out of order. Every record is checked against
//! the tracker's current row before any OpsItem or automation work.
//!
//! A start happens once per attempt: the attempt is claimed in the finding's episode (a
//! versioned, conditional write) before SSM is called, its ClientToken is derived from the
//! finding, the episode and the attempt number, and a redelivered record finds its attempt
//! already there.

use super::common::{CachedMapping, Failure, Pass, StartPacer, Step, finding_span};
use crate::clock::Clock;
use crate::error::PortError;
use crate::finding::Finding;
use crate::lifecycle::LifecycleConfig;
use crate::mapping::{Mapping, MappingError};
use crate::ports::{
    Counters, ExecutionStore, KillSwitch, MappingStore, Members, OpsCenter, ResourceLocks,
    TrackerStore,
};
use crate::ports::{ParkingLot, Target};
use crate::stream::{TrackerChange, decode_record};
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tracing::Instrument;

/// The mapping table, read whole and kept for a short time: a batch reads it once, and an
/// operator's edit is live within the TTL (zero: read every time). Checks are looked up by
/// their trimmed name, as events name them, so an item whose `checkName` carries stray spaces is
/// found, and reported broken (with why) instead of leaving the check silently unmapped.
pub struct MappingCache {
    store: Arc<dyn MappingStore>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    snapshot: Mutex<Option<(DateTime<Utc>, Arc<MappingSnapshot>)>>,
}

/// Every mapping by trimmed check name, as read at one time.
type MappingSnapshot = HashMap<String, Arc<Result<Mapping, MappingError>>>;

impl MappingCache {
    pub fn new(store: Arc<dyn MappingStore>, clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        Self {
            store,
            clock,
            ttl,
            snapshot: Mutex::new(None),
        }
    }

    /// The mapping for a check: `None` when unmapped, `Some(Err)` when the item is broken.
    pub async fn get(&self, check_name: &str) -> Result<CachedMapping, PortError> {
        let snapshot = self.snapshot().await?;
        Ok(snapshot.get(check_name.trim()).cloned())
    }

    async fn snapshot(&self) -> Result<Arc<MappingSnapshot>, PortError> {
        let now = self.clock.now();
        if let Some((read_at, snapshot)) = self.lock().as_ref()
            && now - *read_at < self.ttl
        {
            return Ok(snapshot.clone());
        }
        let mut snapshot = MappingSnapshot::new();
        for item in self.store.list().await? {
            let Some(name) = item.get("checkName").and_then(Value::as_str) else {
                continue;
            };
            let mapping = Mapping::from_json(&item);
            if let Err(error) = &mapping {
                tracing::error!(%error, metric = "mappings.broken", "broken mapping");
            }
            // An item named exactly as events name the check wins over one with stray spaces.
            let exact = name == name.trim();
            if exact || !snapshot.contains_key(name.trim()) {
                snapshot.insert(name.trim().to_owned(), Arc::new(mapping));
            }
        }
        let snapshot = Arc::new(snapshot);
        *self.lock() = Some((now, snapshot.clone()));
        Ok(snapshot)
    }

    /// Every mapped check (by trimmed name) with its item's canonical text: what the sweep
    /// compares run to run to notice a mapping change. Read fresh.
    pub async fn fingerprints(&self) -> Result<BTreeMap<String, String>, PortError> {
        Ok(self
            .store
            .list()
            .await?
            .into_iter()
            .filter_map(|item| {
                let name = item.get("checkName")?.as_str()?.trim().to_owned();
                Some((name, canonical(&item)))
            })
            .collect())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(DateTime<Utc>, Arc<MappingSnapshot>)>> {
        self.snapshot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A JSON value's text with every object's keys in order: the same item reads the same, whatever
/// order DynamoDB returned its attributes in.
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<&String, String> = map
                .iter()
                .map(|(key, value)| (key, canonical(value)))
                .collect();
            let fields: Vec<String> = sorted
                .iter()
                .map(|(key, value)| format!("{}:{value}", Value::String((*key).clone())))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

pub struct ResultsHandler {
    pub tracker: Arc<dyn TrackerStore>,
    pub mappings: MappingCache,
    pub executions: Arc<dyn ExecutionStore>,
    /// The accounts findings are acted on in: each finding's tags, OpsItem and runbook are its
    /// account's.
    pub members: Arc<dyn Members>,
    pub counters: Arc<dyn Counters>,
    /// One runbook per resource at a time.
    pub locks: Arc<dyn ResourceLocks>,
    pub kill_switch: Arc<dyn KillSwitch>,
    pub clock: Arc<dyn Clock>,
    pub config: LifecycleConfig,
    pub pacer: StartPacer,
    /// Where records that failed permanently go, with their reason (the stream's failure queue).
    pub parking: Arc<dyn ParkingLot>,
}

/// How a record ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordOutcome {
    Done,
    /// Failed retryably: named in the partial batch response.
    Retry(String),
    /// Failed permanently: logged and counted, not retried.
    Parked(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordReport {
    pub sequence_number: Option<String>,
    pub finding: Option<Finding>,
    pub steps: Vec<Step>,
    pub outcome: RecordOutcome,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchReport {
    pub records: Vec<RecordReport>,
}

impl BatchReport {
    /// Sequence numbers for the partial batch response.
    pub fn batch_item_failures(&self) -> Vec<String> {
        self.records
            .iter()
            .filter(|r| matches!(r.outcome, RecordOutcome::Retry(_)))
            .filter_map(|r| r.sequence_number.clone())
            .collect()
    }

    /// The Lambda response: `{"batchItemFailures":[{"itemIdentifier":"..."}]}`.
    pub fn response(&self) -> aws_lambda_events::event::streams::DynamoDbEventResponse {
        let mut response = aws_lambda_events::event::streams::DynamoDbEventResponse::default();
        response.batch_item_failures = self
            .batch_item_failures()
            .into_iter()
            .map(|id| {
                let mut failure =
                    aws_lambda_events::event::streams::DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(id);
                failure
            })
            .collect();
        response
    }
}

impl ResultsHandler {
    /// The stores an outcome is recorded with, and the finding's account's OpsCenter.
    pub(super) fn stores<'a>(&'a self, ops_center: &'a dyn OpsCenter) -> super::Stores<'a> {
        super::Stores {
            tracker: &*self.tracker,
            executions: &*self.executions,
            ops_center,
            locks: &*self.locks,
            clock: &*self.clock,
        }
    }

    /// The function's whole job for one invocation: the stack's schedule (or a parked sweep
    /// failure naming one finding) runs the episode sweep; anything else is a stream batch,
    /// answered with the partial batch response. What the Lambda binary returns.
    pub async fn invoke(
        &self,
        payload: &Value,
        deadline: Option<DateTime<Utc>>,
    ) -> Result<Value, PortError> {
        if super::common::is_scheduled(payload) {
            let report = self
                .sweep(deadline, super::common::finding_named(payload))
                .await?;
            return Ok(serde_json::to_value(report).unwrap_or_default());
        }
        if let Some(update) = super::OpsItemUpdated::from_event(payload) {
            let answer = self.ops_item_updated(&update).await?;
            return Ok(serde_json::to_value(answer).unwrap_or_default());
        }
        let response = self.handle_batch(payload, deadline).await.response();
        Ok(serde_json::to_value(response).unwrap_or_default())
    }

    /// Handles a stream batch (`{"Records":[...]}`); never fails as a whole. `deadline` is the
    /// invocation's: waits (pacing, backoff) that would not fit end the record as a retry.
    pub async fn handle_batch(
        &self,
        payload: &Value,
        deadline: Option<DateTime<Utc>>,
    ) -> BatchReport {
        let Some(records) = payload.get("Records").and_then(Value::as_array) else {
            tracing::error!(
                metric = "records.parked",
                "stream payload has no `Records` list; nothing to do"
            );
            return BatchReport::default();
        };
        let mut report = BatchReport::default();
        let mut waiting: HashSet<String> = HashSet::new();
        let mut pass = Pass::new(deadline);
        for record in records {
            let mut record_report = self.handle_record(record, &mut waiting, &mut pass).await;
            if let RecordOutcome::Parked(reason) = &record_report.outcome {
                // Parked for a replay after the fix; a record that cannot be parked is retried.
                let payload = serde_json::json!({ "Records": [record] });
                let parked =
                    super::park(&*self.parking, Target::ResultsHandler, &payload, reason).await;
                if let Err(error) = parked {
                    tracing::error!(%error, "could not park the record; it will be retried");
                    record_report.outcome =
                        RecordOutcome::Retry(format!("{reason}; parking failed: {error}"));
                }
            }
            report.records.push(record_report);
        }
        report
    }

    async fn handle_record(
        &self,
        record: &Value,
        waiting: &mut HashSet<String>,
        pass: &mut Pass,
    ) -> RecordReport {
        let change = match decode_record(record) {
            Ok(change) => change,
            Err(error) => {
                tracing::error!(%error, metric = "records.parked", "unreadable stream record");
                return RecordReport {
                    sequence_number: record
                        .pointer("/dynamodb/SequenceNumber")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    finding: None,
                    steps: vec![],
                    outcome: RecordOutcome::Parked(error.to_string()),
                };
            }
        };
        let finding = change.new.clone().or_else(|| change.old.clone());
        let mut report = RecordReport {
            sequence_number: change.sequence_number.clone(),
            finding: finding.clone(),
            steps: vec![],
            outcome: RecordOutcome::Done,
        };
        let Some(finding) = finding else {
            report.outcome = RecordOutcome::Parked("the stream record carries no image".into());
            return report;
        };
        if waiting.contains(&finding.hash_key) {
            report.outcome = RecordOutcome::Retry(
                "an earlier record of this finding failed in this batch".into(),
            );
            return report;
        }
        let span = finding_span(&finding);
        let result = self
            .apply(&change, &mut report.steps, pass)
            .instrument(span.clone())
            .await;
        let _enter = span.enter();
        match result {
            Ok(()) => {}
            Err(Failure::Retry(reason)) => {
                tracing::warn!(%reason, metric = "records.retried", "retryable failure; the record will be retried");
                waiting.insert(finding.hash_key.clone());
                report.outcome = RecordOutcome::Retry(reason);
            }
            Err(Failure::Park(reason)) => {
                tracing::error!(%reason, metric = "records.parked", "permanent failure; record parked");
                report.outcome = RecordOutcome::Parked(reason);
            }
        }
        report
    }

    async fn apply(
        &self,
        change: &TrackerChange,
        steps: &mut Vec<Step>,
        pass: &mut Pass,
    ) -> Result<(), Failure> {
        let row = match self.current_row(change).await? {
            Ok(row) => row,
            Err(reason) => {
                tracing::info!(%reason, metric = "records.stale", "record acts on nothing");
                steps.push(Step::Skipped { reason });
                return Ok(());
            }
        };
        self.settle(&row, false, steps, pass).await
    }

    /// The tracker's current row for a record, or why the record must act on nothing: it says
    /// the same state again, or the tracker holds a later state than it (a retried record, or
    /// one replayed from the failure queue hours later).
    ///
    /// A later write that only said this record's observation again does not make it stale:
    /// that write's own record is skipped as "the same state", so this one is the only record
    /// left to act, and it acts on the current row.
    async fn current_row(
        &self,
        change: &TrackerChange,
    ) -> Result<Result<Finding, String>, Failure> {
        let Some(new) = &change.new else {
            return Ok(Err("the tracker row was removed".into()));
        };
        if let Some(old) = &change.old
            && old.same_observation(new)
        {
            return Ok(Err("the same state, said again later; nothing to do".into()));
        }
        let current = self.tracker.get(&new.hash_key, &new.resource).await?;
        Ok(match current {
            None => Err("the tracker no longer holds this finding; nothing to do".into()),
            Some(current) if current.order() > new.order() && !current.same_observation(new) => {
                Err(format!(
                    "stale: the tracker holds a later state ({} as of {}) than this record ({} as of {})",
                    current.resource_status,
                    current.last_updated_time,
                    new.resource_status,
                    new.last_updated_time
                ))
            }
            Some(current) => Ok(current),
        })
    }
}
