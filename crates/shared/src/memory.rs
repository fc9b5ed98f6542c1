//! In-memory adapters for every port: faithful models of the services on the points the logic
//! relies on (conditional writes and stream images, OpsItem dedup only while Open/InProgress,
//! ClientToken idempotency, execution tags), used by `tarem simulate` and the tests.

use crate::automation_event::is_final;
use crate::clock::Clock;
use crate::episode::Episode;
use crate::error::{ErrorKind, PortError};
use crate::finding::{Finding, Placement, placement};
use crate::ports::{
    Automation, Counters, CreatedOpsItem, EpisodePage, ExecutionInfo, ExecutionRecord,
    ExecutionStore, KillSwitch, MappingStore, NewOpsItem, OpsCenter, OpsData, OpsItemStatus,
    OpsItemUpdate, ResourceTags, StartAutomation, StatusWrite, TrackerStore, WriteOutcome,
};
use crate::ports::{DATA_FINDING_KEY, TAG_CLIENT_TOKEN};
use crate::stream::stream_record;
use async_trait::async_trait;
use aws_lambda_events::event::dynamodb::EventRecord;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

/// Fault injection shared by the in-memory adapters: any operation (named `adapter.method`, e.g.
/// `ops_center.create`) can be told to fail its next calls with a given error.
#[derive(Default)]
pub struct Faults {
    planned: Mutex<HashMap<String, std::collections::VecDeque<PortError>>>,
    calls: Mutex<HashMap<String, u64>>,
}

impl Faults {
    /// The next `times` calls of `operation` fail with `error`.
    pub fn fail(&self, operation: &str, times: usize, error: PortError) {
        lock(&self.planned)
            .entry(operation.to_owned())
            .or_default()
            .extend(std::iter::repeat_n(error, times));
    }

    /// Called first by every adapter operation.
    pub fn check(&self, operation: &str) -> Result<(), PortError> {
        *lock(&self.calls).entry(operation.to_owned()).or_default() += 1;
        match lock(&self.planned)
            .get_mut(operation)
            .and_then(|queue| queue.pop_front())
        {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// How often `operation` was called (failures included).
    pub fn calls(&self, operation: &str) -> u64 {
        lock(&self.calls).get(operation).copied().unwrap_or(0)
    }
}

/// Every operation of the in-memory adapters, by the name [`Faults`] knows it.
pub const OPERATIONS: &[&str] = &[
    "tracker.put_if_newer",
    "tracker.get",
    "mappings.get",
    "executions.record_started",
    "executions.get",
    "executions.record_status",
    "executions.get_episode",
    "executions.put_episode",
    "counters.increment_below",
    "counters.increment",
    "counters.value",
    "kill_switch.starts_allowed",
    "automation.start",
    "automation.find_by_client_token",
    "automation.tags",
    "automation.describe",
    "ops_center.create",
    "ops_center.update",
    "ops_center.find_open",
    "ops_center.status",
    "tags.tags",
    "queue.park",
];

/// Trusted Advisor as the Support API shows it: checks and their latest results.
#[derive(Default)]
pub struct InMemoryTrustedAdvisor {
    faults: Arc<Faults>,
    state: Mutex<(
        Vec<crate::ports::CheckInfo>,
        HashMap<String, crate::ports::CheckResult>,
    )>,
}

impl InMemoryTrustedAdvisor {
    pub fn set_check(&self, check: crate::ports::CheckInfo, result: crate::ports::CheckResult) {
        let mut state = lock(&self.state);
        state.0.retain(|c| c.id != check.id);
        state.1.insert(check.id.clone(), result);
        state.0.push(check);
    }
}

#[async_trait]
impl crate::ports::TrustedAdvisor for InMemoryTrustedAdvisor {
    async fn checks(&self) -> Result<Vec<crate::ports::CheckInfo>, PortError> {
        self.faults.check("advisor.checks")?;
        Ok(lock(&self.state).0.clone())
    }

    async fn check_result(&self, check_id: &str) -> Result<crate::ports::CheckResult, PortError> {
        self.faults.check("advisor.check_result")?;
        lock(&self.state).1.get(check_id).cloned().ok_or_else(|| {
            PortError::new(
                "DescribeTrustedAdvisorCheckResult",
                ErrorKind::NotFound,
                format!("no check {check_id}"),
            )
        })
    }
}

/// Adapters that take part in fault injection.
pub trait WithFaults: Sized {
    fn faults_mut(&mut self) -> &mut Arc<Faults>;

    /// Shares `faults` with this adapter.
    fn with_faults(mut self, faults: Arc<Faults>) -> Self {
        *self.faults_mut() = faults;
        self
    }
}

macro_rules! with_faults {
    ($($adapter:ty),*) => {
        $(impl WithFaults for $adapter {
            fn faults_mut(&mut self) -> &mut Arc<Faults> {
                &mut self.faults
            }
        })*
    };
}

with_faults!(
    InMemoryTracker,
    InMemoryMappings,
    InMemoryExecutions,
    InMemoryCounters,
    InMemoryKillSwitch,
    InMemoryAutomation,
    InMemoryOpsCenter,
    InMemoryResourceTags,
    InMemoryQueue,
    InMemoryTrustedAdvisor
);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind; keep using it.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The tracker table and its stream.
pub struct InMemoryTracker {
    faults: Arc<Faults>,
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
    faults: Arc<Faults>,
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
    faults: Arc<Faults>,
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
    faults: Arc<Faults>,
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

/// The kill switch: on unless switched off.
#[derive(Default)]
pub struct InMemoryKillSwitch {
    faults: Arc<Faults>,
    off: std::sync::atomic::AtomicBool,
}

impl InMemoryKillSwitch {
    pub fn set_off(&self, off: bool) {
        self.off.store(off, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait]
impl KillSwitch for InMemoryKillSwitch {
    async fn starts_allowed(&self) -> Result<bool, PortError> {
        self.faults.check("kill_switch.starts_allowed")?;
        Ok(!self.off.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// One automation execution as SSM keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimulatedExecution {
    pub execution_id: String,
    pub document: String,
    pub region: String,
    pub parameters: BTreeMap<String, Vec<String>>,
    pub client_token: String,
    pub tags: BTreeMap<String, String>,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_message: Option<String>,
    /// When SSM accepted the start (by the clock the automation was given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// SSM Automation across regions. Execution ids are UUIDs counted from 1, so runs are repeatable.
#[derive(Default)]
pub struct InMemoryAutomation {
    faults: Arc<Faults>,
    state: Mutex<AutomationState>,
    clock: Option<Arc<dyn Clock>>,
}

#[derive(Default)]
struct AutomationState {
    executions: Vec<SimulatedExecution>,
    /// Documents that exist in every region; empty means all do.
    known_documents: Vec<String>,
}

impl InMemoryAutomation {
    /// Only these documents exist; starting any other fails as SSM does (InvalidDocument).
    pub fn with_documents(documents: &[&str]) -> Self {
        let automation = Self::default();
        lock(&automation.state).known_documents =
            documents.iter().map(|d| (*d).to_owned()).collect();
        automation
    }

    /// The next `errors.len()` starts fail with these errors, in order.
    pub fn fail_next_starts(&self, errors: impl IntoIterator<Item = PortError>) {
        for error in errors {
            self.faults.fail("automation.start", 1, error);
        }
    }

    /// Stamps each start with this clock's time.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    pub fn executions(&self) -> Vec<SimulatedExecution> {
        lock(&self.state).executions.clone()
    }

    /// Ends an execution with a status (and, for failures, SSM's failure message).
    pub fn complete(
        &self,
        execution_id: &str,
        status: &str,
        failure_message: Option<&str>,
    ) -> Option<SimulatedExecution> {
        let mut state = lock(&self.state);
        let execution = state
            .executions
            .iter_mut()
            .find(|e| e.execution_id == execution_id)?;
        execution.status = status.to_owned();
        execution.failure_message = failure_message.map(str::to_owned);
        Some(execution.clone())
    }
}

#[async_trait]
impl Automation for InMemoryAutomation {
    async fn start(&self, request: &StartAutomation) -> Result<String, PortError> {
        self.faults.check("automation.start")?;
        let mut state = lock(&self.state);
        if !state.known_documents.is_empty() && !state.known_documents.contains(&request.document) {
            return Err(PortError::new(
                "StartAutomationExecution",
                ErrorKind::NotFound,
                format!(
                    "InvalidDocument: document {} does not exist in {}",
                    request.document, request.region
                ),
            ));
        }
        if let Some(existing) = state
            .executions
            .iter()
            .find(|e| e.client_token.eq_ignore_ascii_case(&request.client_token))
        {
            let same = existing.document == request.document
                && existing.parameters == request.parameters
                && existing.region == request.region;
            return if same {
                Ok(existing.execution_id.clone())
            } else {
                Err(PortError::new(
                    "StartAutomationExecution",
                    ErrorKind::Conflict,
                    "IdempotentParameterMismatch: the ClientToken was used with other parameters",
                ))
            };
        }
        let number = state.executions.len() as u64 + 1;
        let execution_id = format!("{number:08x}-0000-4000-8000-{:012x}", number);
        state.executions.push(SimulatedExecution {
            execution_id: execution_id.clone(),
            document: request.document.clone(),
            region: request.region.clone(),
            parameters: request.parameters.clone(),
            client_token: request.client_token.clone(),
            tags: request.tags.clone(),
            status: "Pending".into(),
            failure_message: None,
            started_at: self.clock.as_ref().map(|clock| clock.now()),
        });
        Ok(execution_id)
    }

    async fn find_by_client_token(
        &self,
        region: &str,
        client_token: &str,
    ) -> Result<Option<String>, PortError> {
        self.faults.check("automation.find_by_client_token")?;
        Ok(lock(&self.state)
            .executions
            .iter()
            .find(|e| {
                e.region == region
                    && e.tags.get(TAG_CLIENT_TOKEN).map(String::as_str) == Some(client_token)
            })
            .map(|e| e.execution_id.clone()))
    }

    async fn tags(
        &self,
        region: &str,
        execution_id: &str,
    ) -> Result<Option<BTreeMap<String, String>>, PortError> {
        self.faults.check("automation.tags")?;
        Ok(lock(&self.state)
            .executions
            .iter()
            .find(|e| e.region == region && e.execution_id == execution_id)
            .map(|e| e.tags.clone()))
    }

    async fn describe(
        &self,
        region: &str,
        execution_id: &str,
    ) -> Result<Option<ExecutionInfo>, PortError> {
        self.faults.check("automation.describe")?;
        Ok(lock(&self.state)
            .executions
            .iter()
            .find(|e| e.region == region && e.execution_id == execution_id)
            .map(|e| ExecutionInfo {
                status: e.status.clone(),
                document: e.document.clone(),
                failure_message: e.failure_message.clone(),
            }))
    }
}

/// An OpsItem as OpsCenter keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredOpsItem {
    pub id: String,
    pub title: String,
    pub description: String,
    pub source: String,
    pub severity: Option<String>,
    pub status: OpsItemStatus,
    pub operational_data: BTreeMap<String, OpsData>,
    /// Every update, in order: how the item got to its state.
    #[serde(skip)]
    pub updates: Vec<OpsItemUpdate>,
}

/// How CreateOpsItem answers a request whose `/aws/dedup` string matches an open OpsItem. AWS
/// documents only that the duplicate "is not created"; the API lists
/// `OpsItemAlreadyExistsException` (with the existing id) among its errors, and a success that
/// returns the existing id is the other possibility. The adapter and the handlers must be right
/// either way, so the fake does both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DuplicateAnswer {
    /// `OpsItemAlreadyExistsException` naming the existing item: the port says `created: false`.
    #[default]
    AlreadyExists,
    /// A plain success with the existing item's id: the port cannot tell, and says `created: true`.
    ExistingId,
}

#[derive(Default)]
pub struct InMemoryOpsCenter {
    faults: Arc<Faults>,
    items: Mutex<Vec<StoredOpsItem>>,
    /// Dedup string → index of the newest item created with it.
    dedup: Mutex<HashMap<String, usize>>,
    duplicates: Mutex<DuplicateAnswer>,
}

impl InMemoryOpsCenter {
    /// From now on, answers duplicates the given way.
    pub fn answer_duplicates(&self, answer: DuplicateAnswer) {
        *lock(&self.duplicates) = answer;
    }

    pub fn items(&self) -> Vec<StoredOpsItem> {
        lock(&self.items).clone()
    }

    pub fn get(&self, id: &str) -> Option<StoredOpsItem> {
        lock(&self.items).iter().find(|item| item.id == id).cloned()
    }

    /// What an operator does in the console.
    pub fn set_status(&self, id: &str, status: OpsItemStatus) {
        if let Some(item) = lock(&self.items).iter_mut().find(|item| item.id == id) {
            item.status = status;
        }
    }
}

fn is_open(status: OpsItemStatus) -> bool {
    matches!(status, OpsItemStatus::Open | OpsItemStatus::InProgress)
}

#[async_trait]
impl OpsCenter for InMemoryOpsCenter {
    async fn create(&self, item: &NewOpsItem) -> Result<CreatedOpsItem, PortError> {
        self.faults.check("ops_center.create")?;
        let invalid =
            |message: String| PortError::new("CreateOpsItem", ErrorKind::Invalid, message);
        if item.title.is_empty() || item.title.chars().count() > 1024 {
            return Err(invalid(format!(
                "Title must be 1-1024 characters, got {}",
                item.title.chars().count()
            )));
        }
        if item.description.is_empty() || item.description.chars().count() > 2048 {
            return Err(invalid("Description must be 1-2048 characters".into()));
        }
        if item.source.is_empty()
            || item.source.len() > 128
            || item.source.to_ascii_lowercase().starts_with("aws")
        {
            return Err(invalid(format!("Source {:?} is not allowed", item.source)));
        }
        let mut items = lock(&self.items);
        let mut dedup = lock(&self.dedup);
        // /aws/dedup suppresses a new item only while the old one is Open or InProgress.
        if let Some(existing) = dedup.get(&item.dedup_string).map(|&index| &items[index])
            && is_open(existing.status)
        {
            return Ok(CreatedOpsItem {
                id: existing.id.clone(),
                created: *lock(&self.duplicates) == DuplicateAnswer::ExistingId,
            });
        }
        let id = format!("oi-{:012x}", items.len() + 1);
        dedup.insert(item.dedup_string.clone(), items.len());
        items.push(StoredOpsItem {
            id: id.clone(),
            title: item.title.clone(),
            description: item.description.clone(),
            source: item.source.clone(),
            severity: item.severity.clone(),
            status: OpsItemStatus::Open,
            operational_data: item.operational_data.clone(),
            updates: vec![],
        });
        Ok(CreatedOpsItem { id, created: true })
    }

    async fn update(&self, id: &str, update: &OpsItemUpdate) -> Result<(), PortError> {
        self.faults.check("ops_center.update")?;
        let mut items = lock(&self.items);
        let item = items.iter_mut().find(|item| item.id == id).ok_or_else(|| {
            PortError::new(
                "UpdateOpsItem",
                ErrorKind::NotFound,
                format!("OpsItemNotFoundException: {id}"),
            )
        })?;
        if let Some(status) = update.status {
            item.status = status;
        }
        if let Some(description) = &update.description {
            item.description = description.clone();
        }
        item.operational_data.extend(
            update
                .operational_data
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        item.updates.push(update.clone());
        Ok(())
    }

    async fn find_open(&self, finding_key: &str) -> Result<Vec<String>, PortError> {
        self.faults.check("ops_center.find_open")?;
        Ok(lock(&self.items)
            .iter()
            .filter(|item| is_open(item.status))
            .filter(|item| {
                item.operational_data
                    .get(DATA_FINDING_KEY)
                    .is_some_and(|data| data.value == finding_key)
            })
            .map(|item| item.id.clone())
            .collect())
    }

    async fn status(&self, id: &str) -> Result<Option<OpsItemStatus>, PortError> {
        self.faults.check("ops_center.status")?;
        Ok(self.get(id).map(|item| item.status))
    }
}

/// An SQS queue: what handlers park, and what `tarem dlq replay` reads back.
#[derive(Default)]
pub struct InMemoryQueue {
    faults: Arc<Faults>,
    state: Mutex<QueueState>,
}

#[derive(Default)]
struct QueueState {
    messages: Vec<crate::ports::QueueMessage>,
    /// Received and not yet deleted: invisible, as during SQS's visibility timeout.
    in_flight: std::collections::HashSet<String>,
    sent: u64,
}

impl InMemoryQueue {
    pub fn send(&self, body: String) {
        let mut state = lock(&self.state);
        state.sent += 1;
        let id = format!("msg-{}", state.sent);
        state.messages.push(crate::ports::QueueMessage {
            receipt: format!("receipt-{id}"),
            id,
            body,
        });
    }

    /// Messages still in the queue (received or not).
    pub fn messages(&self) -> Vec<crate::ports::QueueMessage> {
        lock(&self.state).messages.clone()
    }

    /// The visibility timeout passes: received messages can be received again.
    pub fn expire_visibility(&self) {
        lock(&self.state).in_flight.clear();
    }
}

#[async_trait]
impl crate::ports::ParkingLot for InMemoryQueue {
    async fn park(
        &self,
        target: crate::ports::Target,
        payload: &Value,
        reason: &str,
    ) -> Result<(), PortError> {
        self.faults.check("queue.park")?;
        self.send(crate::ports::parked_body(target, payload, reason).to_string());
        Ok(())
    }
}

#[async_trait]
impl crate::ports::ParkedQueue for InMemoryQueue {
    async fn receive(&self, max: usize) -> Result<Vec<crate::ports::QueueMessage>, PortError> {
        self.faults.check("queue.receive")?;
        let mut state = lock(&self.state);
        let visible: Vec<_> = state
            .messages
            .iter()
            .filter(|m| !state.in_flight.contains(&m.receipt))
            .take(max)
            .cloned()
            .collect();
        state
            .in_flight
            .extend(visible.iter().map(|m| m.receipt.clone()));
        Ok(visible)
    }

    async fn delete(&self, receipt: &str) -> Result<(), PortError> {
        self.faults.check("queue.delete")?;
        let mut state = lock(&self.state);
        state.messages.retain(|m| m.receipt != receipt);
        state.in_flight.remove(receipt);
        Ok(())
    }
}

/// Resource tags by ARN.
#[derive(Default)]
pub struct InMemoryResourceTags {
    faults: Arc<Faults>,
    tags: Mutex<HashMap<String, BTreeMap<String, String>>>,
}

impl InMemoryResourceTags {
    pub fn set(&self, arn: &str, tags: BTreeMap<String, String>) {
        lock(&self.tags).insert(arn.to_owned(), tags);
    }
}

#[async_trait]
impl ResourceTags for InMemoryResourceTags {
    async fn tags(&self, _region: &str, arn: &str) -> Result<BTreeMap<String, String>, PortError> {
        self.faults.check("tags.tags")?;
        Ok(lock(&self.tags).get(arn).cloned().unwrap_or_default())
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

    fn ops_item(dedup: &str) -> NewOpsItem {
        NewOpsItem {
            title: "t".into(),
            description: "d".into(),
            source: "TrustedAdvisor".into(),
            severity: None,
            dedup_string: dedup.into(),
            operational_data: BTreeMap::from([(
                "/aws/dedup".to_owned(),
                OpsData {
                    value: serde_json::json!({ "dedupString": dedup }).to_string(),
                    searchable: true,
                },
            )]),
        }
    }

    #[tokio::test]
    async fn ops_item_dedup_holds_only_while_the_item_is_open() {
        let ops = InMemoryOpsCenter::default();
        let first = ops.create(&ops_item("a")).await.unwrap();
        assert!(first.created);
        assert_eq!(
            ops.create(&ops_item("a")).await.unwrap(),
            CreatedOpsItem {
                id: first.id.clone(),
                created: false
            }
        );
        ops.answer_duplicates(DuplicateAnswer::ExistingId);
        assert_eq!(
            ops.create(&ops_item("a")).await.unwrap(),
            CreatedOpsItem {
                id: first.id.clone(),
                created: true
            },
            "a success naming the existing item cannot be told from a creation"
        );
        ops.answer_duplicates(DuplicateAnswer::AlreadyExists);
        ops.set_status(&first.id, OpsItemStatus::InProgress);
        assert!(!ops.create(&ops_item("a")).await.unwrap().created);
        ops.set_status(&first.id, OpsItemStatus::Resolved);
        let second = ops.create(&ops_item("a")).await.unwrap();
        assert!(second.created);
        assert_ne!(second.id, first.id);
        let mut bad = ops_item("b");
        bad.source = "aws.custom".into();
        assert_eq!(ops.create(&bad).await.unwrap_err().kind, ErrorKind::Invalid);
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
    async fn a_reused_client_token_returns_the_same_execution_or_a_conflict() {
        let ssm = InMemoryAutomation::default();
        let request = StartAutomation {
            document: "D".into(),
            document_version: None,
            region: "eu-west-1".into(),
            parameters: BTreeMap::from([("Id".to_owned(), vec!["1".to_owned()])]),
            client_token: "2b3c4d5e-0000-4000-8000-000000000000".into(),
            tags: BTreeMap::new(),
        };
        let id = ssm.start(&request).await.unwrap();
        assert_eq!(ssm.start(&request).await.unwrap(), id);
        let other = StartAutomation {
            parameters: BTreeMap::from([("Id".to_owned(), vec!["2".to_owned()])]),
            ..request.clone()
        };
        assert_eq!(
            ssm.start(&other).await.unwrap_err().kind,
            ErrorKind::Conflict
        );
        assert_eq!(ssm.executions().len(), 1);
        let known = InMemoryAutomation::with_documents(&["Other"]);
        assert_eq!(
            known.start(&request).await.unwrap_err().kind,
            ErrorKind::NotFound
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
