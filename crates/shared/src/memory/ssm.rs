//! OpsCenter, SSM Automation and the kill switch parameter, as SSM behaves.

use super::{Faults, lock};
use crate::clock::Clock;
use crate::error::{ErrorKind, PortError};
use crate::ports::{
    Automation, CreatedOpsItem, ExecutionInfo, KillSwitch, NewOpsItem, OpsCenter, OpsData,
    OpsItemStatus, OpsItemUpdate, OpsItemView, StartAutomation, TAG_CLIENT_TOKEN,
};
use async_trait::async_trait;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// The kill switch: on unless switched off.
#[derive(Default)]
pub struct InMemoryKillSwitch {
    pub(crate) faults: Arc<Faults>,
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
    /// When it ended (`ExecutionEndTime`), by the same clock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The step that failed, as GetAutomationExecution would report it.
    #[serde(skip)]
    pub failed_step: Option<crate::ports::FailedStep>,
}

/// SSM Automation across regions. Execution ids are UUIDs counted from 1, so runs are repeatable.
#[derive(Default)]
pub struct InMemoryAutomation {
    pub(crate) faults: Arc<Faults>,
    state: Mutex<AutomationState>,
    clock: Option<Arc<dyn Clock>>,
    /// A member account's Automation: its id ends its executions' ids, which SSM makes unique
    /// across accounts (UUIDs) and the execution table is keyed by.
    account: Option<String>,
}

#[derive(Default)]
struct AutomationState {
    executions: Vec<SimulatedExecution>,
    /// Execution id → its index, and lower-cased client token → the first execution started
    /// with it: lookups stay constant however many executions pile up.
    by_id: HashMap<String, usize>,
    by_token: HashMap<String, usize>,
    /// The executions without a final status, by index: finishing them reads only these.
    running: BTreeSet<usize>,
    /// Documents that exist in every region; empty means all do.
    known_documents: Vec<String>,
}

impl AutomationState {
    /// An execution as SSM in `region` knows it (executions are regional).
    fn in_region(&self, region: &str, execution_id: &str) -> Option<&SimulatedExecution> {
        let execution = &self.executions[*self.by_id.get(execution_id)?];
        (execution.region == region).then_some(execution)
    }
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

    /// The next `count` starts run but their answers are lost (a timeout after SSM accepted the
    /// call): the caller sees this error.
    pub fn lose_next_start_answers(&self, count: usize, error: PortError) {
        self.faults.fail("automation.start.response", count, error);
    }

    /// The Automation of a member account (its executions' ids are its own).
    pub fn in_account(mut self, account: &str) -> Self {
        self.account = Some(account.to_owned());
        self
    }

    /// Stamps each start with this clock's time.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    pub fn executions(&self) -> Vec<SimulatedExecution> {
        lock(&self.state).executions.clone()
    }

    /// The executions started after the first `count`, in start order.
    pub fn executions_since(&self, count: usize) -> Vec<SimulatedExecution> {
        let state = lock(&self.state);
        state.executions.get(count..).unwrap_or_default().to_vec()
    }

    /// The executions still running (without reading the finished ones, which pile up).
    pub fn running(&self) -> Vec<SimulatedExecution> {
        let state = lock(&self.state);
        state
            .running
            .iter()
            .map(|&index| state.executions[index].clone())
            .collect()
    }

    /// Ends an execution with a failed step, as SSM reports one (its name, message and kind).
    pub fn fail_step(
        &self,
        execution_id: &str,
        status: &str,
        step: crate::ports::FailedStep,
    ) -> Option<SimulatedExecution> {
        let message = step.message.clone();
        let mut state = lock(&self.state);
        let index = *state.by_id.get(execution_id)?;
        state.executions[index].failed_step = Some(step);
        drop(state);
        self.complete(execution_id, status, message.as_deref())
    }

    /// Ends an execution with a status (and, for failures, SSM's failure message).
    pub fn complete(
        &self,
        execution_id: &str,
        status: &str,
        failure_message: Option<&str>,
    ) -> Option<SimulatedExecution> {
        let mut state = lock(&self.state);
        let index = *state.by_id.get(execution_id)?;
        let final_status = crate::automation_event::is_final(status);
        if final_status {
            state.running.remove(&index);
        } else {
            state.running.insert(index);
        }
        let execution = &mut state.executions[index];
        execution.status = status.to_owned();
        execution.failure_message = failure_message.map(str::to_owned);
        if final_status {
            execution.ended_at = self.clock.as_ref().map(|clock| clock.now());
        }
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
            .by_token
            .get(&request.client_token.to_ascii_lowercase())
            .map(|&index| &state.executions[index])
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
        let execution_id = match &self.account {
            Some(account) => format!("{number:08x}-0000-4000-8000-{account:0>12}"),
            None => format!("{number:08x}-0000-4000-8000-{:012x}", number),
        };
        let index = state.executions.len();
        state.by_id.insert(execution_id.clone(), index);
        state
            .by_token
            .insert(request.client_token.to_ascii_lowercase(), index);
        state.running.insert(index);
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
            ended_at: None,
            failed_step: None,
        });
        drop(state);
        // The call that fails after it succeeded: the execution runs, the answer is lost.
        self.faults.check("automation.start.response")?;
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
            .in_region(region, execution_id)
            .map(|e| e.tags.clone()))
    }

    async fn describe(
        &self,
        region: &str,
        execution_id: &str,
    ) -> Result<Option<ExecutionInfo>, PortError> {
        self.faults.check("automation.describe")?;
        Ok(lock(&self.state)
            .in_region(region, execution_id)
            .map(|e| ExecutionInfo {
                status: e.status.clone(),
                document: e.document.clone(),
                failure_message: e.failure_message.clone(),
                end_time: e.ended_at,
                failed_step: e.failed_step.clone(),
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
    pub(crate) faults: Arc<Faults>,
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
        let items = lock(&self.items);
        position(&items, id).map(|index| items[index].clone())
    }

    /// What an operator does in the console.
    pub fn set_status(&self, id: &str, status: OpsItemStatus) {
        let mut items = lock(&self.items);
        if let Some(index) = position(&items, id) {
            items[index].status = status;
        }
    }
}

/// Where OpsItem `id` is: ids are `oi-<index + 1 in hex>`, so no search through them all.
fn position(items: &[StoredOpsItem], id: &str) -> Option<usize> {
    let number = usize::from_str_radix(id.strip_prefix("oi-")?, 16).ok()?;
    let index = number.checked_sub(1)?;
    (items.get(index)?.id == id).then_some(index)
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
        let index = position(&items, id).ok_or_else(|| {
            PortError::new(
                "UpdateOpsItem",
                ErrorKind::NotFound,
                format!("OpsItemNotFoundException: {id}"),
            )
        })?;
        let item = &mut items[index];
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
        for key in &update.delete {
            item.operational_data.remove(key);
        }
        item.updates.push(update.clone());
        Ok(())
    }

    async fn view(&self, id: &str) -> Result<Option<OpsItemView>, PortError> {
        self.faults.check("ops_center.status")?;
        Ok(self.get(id).map(|item| OpsItemView {
            status: item.status,
            state: OpsItemView::state_of(
                item.operational_data
                    .get(crate::ports::DATA_REMEDIATION)
                    .map(|data| data.value.as_str()),
            ),
            finding_key: item
                .operational_data
                .get(crate::ports::DATA_FINDING_KEY)
                .map(|data| data.value.clone()),
            approve: item
                .operational_data
                .get(crate::ports::DATA_APPROVE)
                .map(|data| data.value.clone()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
