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

mod accounts;
mod members;
mod replay;
mod ssm;
pub use accounts::*;
pub use members::*;
pub use replay::*;
pub use ssm::*;

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
    /// The keys of a check's settled Red and Yellow rows in one account, from the tracker's
    /// sparse work index (`flagged#<account>#<check>`: a Green row is not in it, and a row
    /// whose latest write is still to be checked is in the pending part instead); `None` for
    /// the account reads every account's (a Scan: only a local run without an accounts list).
    async fn flagged_keys(
        &self,
        account: Option<&str>,
        check_name: &str,
    ) -> Result<Vec<RowKey>, PortError>;
    /// Rows whose latest write is still to be checked, due by `due_by` (epoch seconds): one
    /// shard of the work index's pending part. Every write puts its row there, so that a change
    /// the results handler never applied (its record parked, say) is found and acted on.
    async fn pending(
        &self,
        shard: u32,
        due_by: i64,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<RowKey>, PortError>;
    /// The row's change is applied (`row` as it was checked): a flagged row moves to the
    /// flagged part, a Green one leaves the index. Unless the row changed since: then it stays
    /// pending for the next look.
    async fn settled(&self, row: &Finding) -> Result<(), PortError>;
    /// Flagged rows written before the work index existed (a migration, once): a page of a Scan
    /// after `after`. (A Green row needs no index; an open episode whose Green was lost is
    /// looked at by the episodes' own migration.)
    async fn unindexed(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Finding>, PortError>;
    /// Puts a row written before the work index into its pending part, due at `due` (the
    /// migration's write).
    async fn mark_pending(&self, row: &Finding, due: i64) -> Result<(), PortError>;
}

/// A tracker row's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RowKey {
    pub hash_key: String,
    pub resource: String,
}

/// One page of a Query or Scan, and where the next starts (`None`: the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// How many partitions the sparse due indexes spread over: a burst of writes (a Trusted Advisor
/// refresh of thousands of findings) is not throttled by one index partition's write limit.
pub const DUE_SHARDS: u32 = 10;

/// The index partition a key's due mark goes to.
pub fn due_shard(key: &str) -> u32 {
    key.bytes().fold(0u32, |hash, byte| {
        hash.wrapping_mul(31).wrapping_add(u32::from(byte))
    }) % DUE_SHARDS
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
    /// The account it runs in (the finding's); absent on rows from before organisations, and
    /// for the stack's own account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
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
            account: self.account.clone().or_else(|| other.account.clone()),
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

/// An episode due for the sweep: its finding's key and resource (the due index projects both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueEpisode {
    pub finding_key: String,
    pub resource: String,
    pub due_at: i64,
}

/// What the episode sweep remembers between runs (an item of the execution table).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepState {
    /// The one-time migration of episodes and tracker rows written before the due indexes:
    /// where it stopped, and whether it is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_cursor: Option<String>,
    #[serde(default)]
    pub migrated_episodes: bool,
    #[serde(default)]
    pub migrated_tracker: bool,
    /// Each mapped check's fingerprint (its item and the stack's allowlists) as last acted on:
    /// a change re-evaluates that check's open episodes.
    #[serde(default)]
    pub fingerprints: BTreeMap<String, String>,
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
    /// Keeps a finding's episode that a new one replaces, until its TTL: `tarem status` counts
    /// every episode and attempt of its window, not only each finding's latest.
    async fn archive_episode(&self, episode: &Episode) -> Result<(), PortError>;
    /// Every episode kept (open, closed ones and those a newer episode replaced, until their
    /// TTL), in key order, after `after`, at most about `limit`: what `tarem status` counts.
    async fn episodes(&self, after: Option<&str>, limit: usize) -> Result<EpisodePage, PortError>;
    /// Episodes due by `due_by` (epoch seconds), one shard of the sparse due index, earliest
    /// first; an idle open episode (no `dueAt`) is not in it.
    async fn due_episodes(
        &self,
        shard: u32,
        due_by: i64,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<DueEpisode>, PortError>;
    async fn sweep_state(&self) -> Result<SweepState, PortError>;
    async fn set_sweep_state(&self, state: &SweepState) -> Result<(), PortError>;
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
    /// Adds one and answers the count afterwards (1 for a new counter).
    async fn increment(&self, name: &str, expires_at: i64) -> Result<u64, PortError>;
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
    /// Which API answers (for the account registry).
    fn access(&self) -> AdvisorAccess {
        AdvisorAccess::Support
    }
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
