//! The ports: the small traits the handlers talk through, shaped after the AWS calls behind them
//! (DynamoDB conditional writes, OpsCenter, SSM Automation, the Tagging API), and the records they
//! exchange. Each has an AWS adapter and a faithful in-memory adapter ([`crate::memory`]).

use crate::episode::Episode;
use crate::error::PortError;
use crate::finding::{Finding, Status};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// What a conditional tracker write did (the rule: [`crate::finding::placement`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The finding was new, or later in the order than the stored one, and replaced it with a
    /// new status or item time.
    Written,
    /// Later in the order, but the same status and item time said again (a later event, or a
    /// later sweep): the row was replaced; nothing a reader acts on changed.
    Refreshed,
    /// The very same observation is stored: nothing changed.
    Duplicate,
    /// The stored finding is later in the order: this one was dropped.
    Stale,
}

impl WriteOutcome {
    /// The outcome of a write that replaced a row holding `stored` (status and item time), if
    /// there was one, with `written`.
    pub fn replacing(stored: Option<(Status, i64)>, written: &Finding) -> Self {
        if stored == Some((written.resource_status, written.time_millis())) {
            WriteOutcome::Refreshed
        } else {
            WriteOutcome::Written
        }
    }
}

/// The tracker table.
#[async_trait]
pub trait TrackerStore: Send + Sync {
    /// One conditional write: replaces the row only when `finding` is later in the order
    /// ([`crate::finding::placement`]); a flagged finding keeps the stored row's episode markers
    /// ([`Finding::written_over`]).
    async fn put_if_newer(&self, finding: &Finding) -> Result<WriteOutcome, PortError>;
    async fn get(&self, hash_key: &str, resource: &str) -> Result<Option<Finding>, PortError>;
    /// The check's Red and Yellow rows (for the reconcile sweep; a Scan on DynamoDB).
    async fn flagged(&self, check_name: &str) -> Result<Vec<Finding>, PortError>;
}

/// The mapping table. Returns items as plain JSON (typed DynamoDB attributes already unwrapped);
/// [`crate::mapping::Mapping::from_json`] is the one place that validates them.
#[async_trait]
pub trait MappingStore: Send + Sync {
    async fn get(&self, check_name: &str) -> Result<Option<Value>, PortError>;
    /// Every mapped check's name.
    async fn check_names(&self) -> Result<Vec<String>, PortError>;
    /// Every item, as plain JSON.
    async fn list(&self) -> Result<Vec<Value>, PortError>;
    /// Writes an item (plain JSON) under its `checkName`, replacing any.
    async fn put(&self, item: &Value) -> Result<(), PortError>;
    async fn delete(&self, check_name: &str) -> Result<(), PortError>;
}

/// A row of the execution table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionRecord {
    pub automation_execution_id: String,
    /// The episode's OpsItem when the start happened (absent while the OpsItem is owed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops_item_id: Option<String>,
    pub finding_key: String,
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<BTreeMap<String, Vec<String>>>,
    /// The resource lock its attempt holds, released when it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_lock: Option<String>,
    /// The automation's status as last heard (SSM's vocabulary).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    pub updated_at: String,
    /// TTL, seconds since the epoch: rows are kept for history, not deleted on completion.
    pub expires_at: i64,
}

impl ExecutionRecord {
    /// This row with the attributes it lacks taken from `other` (DynamoDB's `SET a =
    /// if_not_exists(a, :a)`); `expiresAt` is always taken from `other`. Both status writes
    /// merge this way, whichever comes first.
    pub fn filled_from(&self, other: &ExecutionRecord) -> ExecutionRecord {
        ExecutionRecord {
            automation_execution_id: self.automation_execution_id.clone(),
            ops_item_id: self
                .ops_item_id
                .clone()
                .or_else(|| other.ops_item_id.clone()),
            finding_key: self.finding_key.clone(),
            region: self.region.clone(),
            document: self.document.clone().or_else(|| other.document.clone()),
            check_name: self.check_name.clone().or_else(|| other.check_name.clone()),
            resource: self.resource.clone().or_else(|| other.resource.clone()),
            client_token: self
                .client_token
                .clone()
                .or_else(|| other.client_token.clone()),
            parameters: self.parameters.clone().or_else(|| other.parameters.clone()),
            resource_lock: self
                .resource_lock
                .clone()
                .or_else(|| other.resource_lock.clone()),
            status: self.status.clone(),
            started_at: self.started_at.clone().or_else(|| other.started_at.clone()),
            updated_at: self.updated_at.clone(),
            expires_at: other.expires_at,
        }
    }
}

/// What recording a status did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusWrite {
    Updated,
    /// The row already holds a final status; an event arriving late changes nothing.
    AlreadyFinal,
}

/// A page of open episodes, for the sweep.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EpisodePage {
    pub episodes: Vec<Episode>,
    /// Where the next page starts; `None` at the end of the table.
    pub next: Option<String>,
}

/// The execution table: execution rows, and each finding's episode (its stage, attempts and
/// OpsItem: the claim that makes each start happen once).
#[async_trait]
pub trait ExecutionStore: Send + Sync {
    /// Writes the execution row after a start, merging with a row the status handler may have
    /// written first: attributes already there are kept. Returns the row's status afterwards.
    async fn record_started(&self, record: &ExecutionRecord) -> Result<String, PortError>;
    async fn get(&self, execution_id: &str) -> Result<Option<ExecutionRecord>, PortError>;
    /// Sets the status unless the row already holds a final one; creates the row when missing.
    async fn record_status(&self, record: &ExecutionRecord) -> Result<StatusWrite, PortError>;
    async fn get_episode(&self, finding_key: &str) -> Result<Option<Episode>, PortError>;
    /// Writes `episode` only if the stored version is `episode.version - 1` (absent for version
    /// 1); `false` when another writer got there first.
    async fn put_episode(&self, episode: &Episode) -> Result<bool, PortError>;
    /// Open episodes (not fixed), in key order, after the key `after`, at most about `limit`.
    async fn open_episodes(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<EpisodePage, PortError>;
    /// Every episode kept (open, and closed ones until their TTL), in key order, after `after`,
    /// at most about `limit`: what `tarem status` counts.
    async fn episodes(&self, after: Option<&str>, limit: usize) -> Result<EpisodePage, PortError>;
    /// Where an unfinished sweep stopped.
    async fn sweep_cursor(&self) -> Result<Option<String>, PortError>;
    async fn set_sweep_cursor(&self, cursor: Option<&str>) -> Result<(), PortError>;
    /// Execution rows without a final status, last updated before `updated_before` (RFC 3339).
    async fn unfinished(&self, updated_before: &str) -> Result<Vec<ExecutionRecord>, PortError>;
}

/// Named counters with a TTL: the circuit breaker's starts per check and window, and the
/// month's OpsItems.
#[async_trait]
pub trait Counters: Send + Sync {
    /// Adds one unless the counter reached `limit`; `false` when it had.
    async fn increment_below(
        &self,
        name: &str,
        limit: u64,
        expires_at: i64,
    ) -> Result<bool, PortError>;
    async fn increment(&self, name: &str, expires_at: i64) -> Result<(), PortError>;
    /// Takes back one (a reserved start that did not happen); never below zero.
    async fn decrement(&self, name: &str) -> Result<(), PortError>;
    async fn value(&self, name: &str) -> Result<u64, PortError>;
}

/// Who holds a resource's lock: the attempt whose runbook runs (or is about to) on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockHolder {
    pub finding_key: String,
    pub client_token: String,
    pub check_name: String,
    pub document: String,
    /// Epoch seconds.
    pub acquired_at: i64,
    /// Epoch seconds: past it the lock is free whatever happened to its holder (a release that
    /// never came).
    pub lease_until: i64,
    /// Epoch seconds, once the holder's attempt ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<i64>,
}

/// One runbook per resource at a time, across episodes and checks: a lock per resource (its
/// account, region and the id the runbook is given), in the execution table.
#[async_trait]
pub trait ResourceLocks: Send + Sync {
    /// Takes `key` for `holder` when it is free: never held, held by this very attempt, its
    /// lease passed, or released (by the same finding, or at or before `cooled`: another
    /// finding waits for the cool-down after a runbook on the resource). Otherwise returns the
    /// holder in the way, and changes nothing.
    async fn acquire(
        &self,
        key: &str,
        holder: &LockHolder,
        now: i64,
        cooled: i64,
        expires_at: i64,
    ) -> Result<Option<LockHolder>, PortError>;
    /// The attempt with `client_token` ended at `ended`: its lock is released then (another
    /// finding's start on the resource waits for the cool-down after it). A lock another attempt
    /// holds, or already released, is left alone.
    async fn release(&self, key: &str, client_token: &str, ended: i64) -> Result<(), PortError>;
    /// The attempt with `client_token` never ran (refused, withdrawn, or its claim lost a race):
    /// its lock is removed, as if it had never been taken. A lock another attempt holds is left
    /// alone.
    async fn abandon(&self, key: &str, client_token: &str) -> Result<(), PortError>;
}

/// The stack's kill switch.
#[async_trait]
pub trait KillSwitch: Send + Sync {
    /// `false` when an operator switched automation starts off.
    async fn starts_allowed(&self) -> Result<bool, PortError>;
}

/// A request to start a runbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartAutomation {
    pub document: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_version: Option<String>,
    /// The resource's region: the automation runs there.
    pub region: String,
    pub parameters: BTreeMap<String, Vec<String>>,
    /// A UUID derived from the finding and the attempt.
    pub client_token: String,
    pub tags: BTreeMap<String, String>,
}

/// What SSM says about an execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionInfo {
    pub status: String,
    pub document: String,
    pub failure_message: Option<String>,
    /// When it ended, by SSM's clock (`ExecutionEndTime`); `None` while it runs.
    pub end_time: Option<chrono::DateTime<chrono::Utc>>,
}

/// SSM Automation.
#[async_trait]
pub trait Automation: Send + Sync {
    /// `StartAutomationExecution`; a ClientToken reused with other parameters is
    /// [`crate::error::ErrorKind::Conflict`].
    async fn start(&self, request: &StartAutomation) -> Result<String, PortError>;
    /// The execution started with this ClientToken (found by its tag), if any.
    async fn find_by_client_token(
        &self,
        region: &str,
        client_token: &str,
    ) -> Result<Option<String>, PortError>;
    /// The execution's tags; `None` when there is no such execution.
    async fn tags(
        &self,
        region: &str,
        execution_id: &str,
    ) -> Result<Option<BTreeMap<String, String>>, PortError>;
    async fn describe(
        &self,
        region: &str,
        execution_id: &str,
    ) -> Result<Option<ExecutionInfo>, PortError>;
}

/// One operational data value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpsData {
    pub value: String,
    /// `SearchableString` (findable with DescribeOpsItems) rather than `String`.
    pub searchable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpsItemStatus {
    Open,
    InProgress,
    Resolved,
}

impl OpsItemStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OpsItemStatus::Open => "Open",
            OpsItemStatus::InProgress => "InProgress",
            OpsItemStatus::Resolved => "Resolved",
        }
    }
}

/// An OpsItem to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewOpsItem {
    pub title: String,
    pub description: String,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// Goes into `/aws/dedup`: OpsCenter returns the existing item while it is Open or InProgress.
    pub dedup_string: String,
    /// Includes `/aws/dedup` and, for ARNs, `/aws/resources`.
    pub operational_data: BTreeMap<String, OpsData>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedOpsItem {
    pub id: String,
    /// False when dedup returned an item that was already open.
    pub created: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpsItemUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<OpsItemStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub operational_data: BTreeMap<String, OpsData>,
}

/// OpsCenter.
#[async_trait]
pub trait OpsCenter: Send + Sync {
    async fn create(&self, item: &NewOpsItem) -> Result<CreatedOpsItem, PortError>;
    async fn update(&self, id: &str, update: &OpsItemUpdate) -> Result<(), PortError>;
    /// Open or InProgress OpsItems of a finding (by the `tarem:findingKey` operational data).
    async fn find_open(&self, finding_key: &str) -> Result<Vec<String>, PortError>;
    /// The item's status; `None` when there is no such item.
    async fn status(&self, id: &str) -> Result<Option<OpsItemStatus>, PortError>;
}

/// The resource's own tags (Resource Groups Tagging API, in the resource's region).
#[async_trait]
pub trait ResourceTags: Send + Sync {
    async fn tags(&self, region: &str, arn: &str) -> Result<BTreeMap<String, String>, PortError>;
}

/// A Trusted Advisor check, as `DescribeTrustedAdvisorChecks` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckInfo {
    pub id: String,
    pub name: String,
    /// The column names of its flagged resources' metadata.
    pub columns: Vec<String>,
}

/// A flagged resource of a check result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlaggedResource {
    /// `error`, `warning` or `ok`.
    pub status: String,
    pub region: Option<String>,
    pub suppressed: bool,
    /// Values in the order of [`CheckInfo::columns`].
    pub metadata: Vec<Option<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// When Trusted Advisor last refreshed the check.
    pub timestamp: String,
    pub flagged: Vec<FlaggedResource>,
}

/// The Support API's Trusted Advisor calls (us-east-1).
#[async_trait]
pub trait TrustedAdvisor: Send + Sync {
    async fn checks(&self) -> Result<Vec<CheckInfo>, PortError>;
    async fn check_result(&self, check_id: &str) -> Result<CheckResult, PortError>;
}

// ---------------------------------------------------------------- names the adapters share

/// Tag on each automation started by tarem: the OpsItem it reports to (when it exists yet).
pub const TAG_OPS_ITEM: &str = "tarem:opsItemId";
/// Tag on each automation started by tarem: the finding it remediates.
pub const TAG_FINDING: &str = "tarem:findingKey";
/// Tag on each automation started by tarem: its ClientToken, to find it again after a retry.
pub const TAG_CLIENT_TOKEN: &str = "tarem:clientToken";

/// Operational data key that makes a finding's OpsItems searchable.
pub const DATA_FINDING_KEY: &str = "tarem:findingKey";
pub const DATA_FINDING: &str = "tarem:finding";
pub const DATA_REMEDIATION: &str = "tarem:remediation";
pub const DATA_AUTOMATION: &str = "tarem:automation";

/// A tag whose key carries the ClientToken, so `DescribeAutomationExecutions` (which filters on
/// tag keys) can find the execution a retried start already made.
pub fn attempt_tag(client_token: &str) -> String {
    format!("tarem:attempt:{client_token}")
}

// ---------------------------------------------------------------- parking and replay

/// Which function a parked message goes back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    CheckTracker,
    ResultsHandler,
    AutomationExecutionHandler,
}

impl Target {
    /// The function's name suffix (as serialised).
    pub fn as_str(self) -> &'static str {
        match self {
            Target::CheckTracker => "check-tracker",
            Target::ResultsHandler => "results-handler",
            Target::AutomationExecutionHandler => "automation-execution-handler",
        }
    }
}

/// The stream range a stream on-failure record names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamBatch {
    pub stream_arn: String,
    pub shard_id: String,
    pub start_sequence_number: String,
    pub end_sequence_number: String,
}

/// The key of the payload in a message tarem parked itself (next to `taremParked`, the reason).
pub const PARKED_PAYLOAD: &str = "payload";

/// The body tarem writes when it parks something: the payload and why.
pub fn parked_body(target: Target, payload: &Value, reason: &str) -> Value {
    // The key is PARKED_PAYLOAD.
    serde_json::json!({
        "taremParked": { "target": target, "reason": reason },
        "payload": payload,
    })
}

/// Where a handler parks what it cannot use (the function's failure queue), so that nothing is
/// lost and `tarem dlq replay` can send it back after a fix.
#[async_trait]
pub trait ParkingLot: Send + Sync {
    async fn park(&self, target: Target, payload: &Value, reason: &str) -> Result<(), PortError>;
}

/// One message as the queue hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub id: String,
    /// What deleting the message takes (SQS's receipt handle).
    pub receipt: String,
    pub body: String,
}

#[async_trait]
pub trait ParkedQueue: Send + Sync {
    /// Hands out up to `max` visible messages; each stays invisible to other readers until it
    /// is deleted, released, or SQS's visibility timeout passes.
    async fn receive(&self, max: usize) -> Result<Vec<QueueMessage>, PortError>;
    async fn delete(&self, receipt: &str) -> Result<(), PortError>;
    /// Makes a received message visible again at once (a dry run looked at it, or its replay
    /// failed), so the next run sees it without waiting out the visibility timeout.
    async fn release(&self, receipt: &str) -> Result<(), PortError>;
}

/// Reads a parked stream range again, as Lambda delivers records.
#[async_trait]
pub trait StreamReader: Send + Sync {
    async fn records(&self, batch: &StreamBatch) -> Result<Vec<Value>, PortError>;
}

/// What a handler did with a replayed payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redriven {
    Done,
    /// The handler still cannot use it and parked it again (a fresh copy is in the queue).
    ParkedAgain(String),
}

/// Runs a handler on a payload; `Err` when the handler failed (a function error, or a stream
/// batch with records it reports as failed).
#[async_trait]
pub trait Redrive: Send + Sync {
    async fn invoke(&self, target: Target, payload: &Value) -> Result<Redriven, PortError>;
}

// ---------------------------------------------------------------- SSM documents

/// A document's input parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentParameter {
    pub name: String,
    /// No default value: the caller must give it.
    pub required: bool,
}

/// SSM documents, per region.
#[async_trait]
pub trait DocumentCatalog: Send + Sync {
    /// The document's parameters; `None` when the document does not exist there.
    async fn parameters(
        &self,
        region: &str,
        document: &str,
    ) -> Result<Option<Vec<DocumentParameter>>, PortError>;
}
