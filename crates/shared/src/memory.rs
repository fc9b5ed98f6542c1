//! In-memory adapters for every port: faithful models of the services on the points the logic
//! relies on (conditional writes and stream images, OpsItem dedup only while Open/InProgress,
//! ClientToken idempotency, execution tags), used by `tarem simulate` and the tests.

use crate::automation_event::is_final;
use crate::clock::Clock;
use crate::decide::{DATA_FINDING_KEY, TAG_CLIENT_TOKEN};
use crate::error::{ErrorKind, PortError};
use crate::finding::Finding;
use crate::ports::{
    AttemptClaim, Automation, Claim, CreatedOpsItem, ExecutionInfo, ExecutionRecord,
    ExecutionStore, MappingStore, NewOpsItem, OpsCenter, OpsData, OpsItemStatus, OpsItemUpdate,
    ResourceTags, StartAutomation, StatusWrite, TrackerStore, WriteOutcome,
};
use crate::stream::stream_record;
use async_trait::async_trait;
use aws_lambda_events::event::dynamodb::EventRecord;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind; keep using it.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The tracker table and its stream.
pub struct InMemoryTracker {
    clock: Arc<dyn Clock>,
    table_region: String,
    state: Mutex<TrackerState>,
}

#[derive(Default)]
struct TrackerState {
    rows: BTreeMap<(String, String), Finding>,
    stream: Vec<EventRecord>,
    sequence: u64,
}

impl InMemoryTracker {
    pub fn new(clock: Arc<dyn Clock>, table_region: &str) -> Self {
        Self {
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
}

#[async_trait]
impl TrackerStore for InMemoryTracker {
    async fn put_if_newer(&self, finding: &Finding) -> Result<WriteOutcome, PortError> {
        let mut state = lock(&self.state);
        let key = (finding.hash_key.clone(), finding.resource.clone());
        let old = state.rows.get(&key).cloned();
        if let Some(old) = &old {
            // The condition: attribute_not_exists(hashKey) OR findingTimeMillis < :new
            if old.time_millis() == finding.time_millis() {
                return Ok(WriteOutcome::Duplicate);
            }
            if old.time_millis() > finding.time_millis() {
                return Ok(WriteOutcome::Stale);
            }
        }
        state.rows.insert(key, finding.clone());
        state.sequence += 1;
        let record = stream_record(
            state.sequence,
            &self.table_region,
            Some(finding),
            old.as_ref(),
            self.clock.now(),
        );
        state.stream.push(record);
        Ok(WriteOutcome::Written)
    }

    async fn get(&self, hash_key: &str, resource: &str) -> Result<Option<Finding>, PortError> {
        Ok(lock(&self.state)
            .rows
            .get(&(hash_key.to_owned(), resource.to_owned()))
            .cloned())
    }
}

/// The mapping table, holding plain JSON items.
#[derive(Default)]
pub struct InMemoryMappings {
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
    async fn get(&self, check_name: &str) -> Result<Option<Value>, PortError> {
        Ok(lock(&self.items).get(check_name).cloned())
    }
}

/// The execution table: execution rows and attempt claims.
#[derive(Default)]
pub struct InMemoryExecutions {
    state: Mutex<ExecutionState>,
}

#[derive(Default)]
struct ExecutionState {
    rows: BTreeMap<String, ExecutionRecord>,
    claims: BTreeMap<String, (AttemptClaim, Option<String>)>,
}

impl InMemoryExecutions {
    pub fn rows(&self) -> Vec<ExecutionRecord> {
        lock(&self.state).rows.values().cloned().collect()
    }

    pub fn claims(&self) -> Vec<(AttemptClaim, Option<String>)> {
        lock(&self.state).claims.values().cloned().collect()
    }
}

#[async_trait]
impl ExecutionStore for InMemoryExecutions {
    async fn claim(&self, claim: &AttemptClaim) -> Result<Claim, PortError> {
        let mut state = lock(&self.state);
        if let Some((_, execution_id)) = state.claims.get(&claim.client_token) {
            return Ok(Claim::Existing {
                execution_id: execution_id.clone(),
            });
        }
        state
            .claims
            .insert(claim.client_token.clone(), (claim.clone(), None));
        Ok(Claim::New)
    }

    async fn record_started(&self, record: &ExecutionRecord) -> Result<(), PortError> {
        let mut state = lock(&self.state);
        if let Some(token) = &record.client_token
            && let Some((_, execution_id)) = state.claims.get_mut(token)
        {
            *execution_id = Some(record.automation_execution_id.clone());
        }
        let merged = match state.rows.get(&record.automation_execution_id) {
            // The status handler was first: keep the status it recorded.
            Some(existing) => ExecutionRecord {
                status: existing.status.clone(),
                updated_at: existing.updated_at.clone(),
                ..record.clone()
            },
            None => record.clone(),
        };
        state
            .rows
            .insert(record.automation_execution_id.clone(), merged);
        Ok(())
    }

    async fn get(&self, execution_id: &str) -> Result<Option<ExecutionRecord>, PortError> {
        Ok(lock(&self.state).rows.get(execution_id).cloned())
    }

    async fn record_status(&self, record: &ExecutionRecord) -> Result<StatusWrite, PortError> {
        let mut state = lock(&self.state);
        match state.rows.get_mut(&record.automation_execution_id) {
            Some(existing) if is_final(&existing.status) => Ok(StatusWrite::AlreadyFinal),
            Some(existing) => {
                existing.status = record.status.clone();
                existing.updated_at = record.updated_at.clone();
                existing.expires_at = record.expires_at;
                Ok(StatusWrite::Updated)
            }
            None => {
                state
                    .rows
                    .insert(record.automation_execution_id.clone(), record.clone());
                Ok(StatusWrite::Updated)
            }
        }
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
}

/// SSM Automation across regions. Execution ids are UUIDs counted from 1, so runs are repeatable.
#[derive(Default)]
pub struct InMemoryAutomation {
    state: Mutex<AutomationState>,
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
        });
        Ok(execution_id)
    }

    async fn find_by_client_token(
        &self,
        region: &str,
        client_token: &str,
    ) -> Result<Option<String>, PortError> {
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

#[derive(Default)]
pub struct InMemoryOpsCenter {
    items: Mutex<Vec<StoredOpsItem>>,
}

impl InMemoryOpsCenter {
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
        // /aws/dedup suppresses a new item only while the old one is Open or InProgress.
        if let Some(existing) = items.iter().find(|existing| {
            is_open(existing.status)
                && dedup_of(existing).as_deref() == Some(item.dedup_string.as_str())
        }) {
            return Ok(CreatedOpsItem {
                id: existing.id.clone(),
                created: false,
            });
        }
        let id = format!("oi-{:012x}", items.len() + 1);
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
}

fn dedup_of(item: &StoredOpsItem) -> Option<String> {
    let data = item.operational_data.get("/aws/dedup")?;
    let parsed: Value = serde_json::from_str(&data.value).ok()?;
    parsed.get("dedupString")?.as_str().map(str::to_owned)
}

/// Resource tags by ARN.
#[derive(Default)]
pub struct InMemoryResourceTags {
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
        Ok(lock(&self.tags).get(arn).cloned().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::finding::{FindingSource, Status};

    fn finding(millis: i64, status: Status) -> Finding {
        Finding {
            hash_key: "k".into(),
            resource: "r".into(),
            check_name: "c".into(),
            resource_status: status,
            last_updated_time: String::new(),
            last_updated_time_epoch: millis / 1000,
            finding_time_millis: Some(millis),
            region: "eu-west-1".into(),
            account_id: None,
            check_item_detail: BTreeMap::new(),
            source: FindingSource::Event,
            event_id: None,
            tracked_at: None,
        }
    }

    #[tokio::test]
    async fn tracker_writes_only_strictly_newer_findings_and_streams_each_write() {
        let tracker = InMemoryTracker::new(Arc::new(SystemClock), "us-east-1");
        assert_eq!(
            tracker.put_if_newer(&finding(10, Status::Red)).await,
            Ok(WriteOutcome::Written)
        );
        assert_eq!(
            tracker.put_if_newer(&finding(10, Status::Green)).await,
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
    async fn execution_rows_keep_a_final_status_and_claims_happen_once() {
        let store = InMemoryExecutions::default();
        let claim = AttemptClaim {
            client_token: "t".into(),
            finding_key: "k".into(),
            ops_item_id: "oi-1".into(),
            document: "D".into(),
            region: "eu-west-1".into(),
            claimed_at: String::new(),
            expires_at: 0,
        };
        assert_eq!(store.claim(&claim).await.unwrap(), Claim::New);
        assert_eq!(
            store.claim(&claim).await.unwrap(),
            Claim::Existing { execution_id: None }
        );
        let row = ExecutionRecord {
            automation_execution_id: "e".into(),
            ops_item_id: "oi-1".into(),
            finding_key: "k".into(),
            region: "eu-west-1".into(),
            document: Some("D".into()),
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
        store
            .record_started(&ExecutionRecord {
                status: "Pending".into(),
                ..row.clone()
            })
            .await
            .unwrap();
        assert_eq!(store.get("e").await.unwrap().unwrap().status, "Success");
        assert_eq!(
            store.claim(&claim).await.unwrap(),
            Claim::Existing {
                execution_id: Some("e".into())
            }
        );
        let late = ExecutionRecord {
            status: "InProgress".into(),
            ..row
        };
        assert_eq!(
            store.record_status(&late).await.unwrap(),
            StatusWrite::AlreadyFinal
        );
    }
}
