//! SSM's ports: Automation, OpsCenter and the kill switch parameter, and the tag and
//! operational data names their adapters share.

use crate::error::PortError;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

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
    /// The failed step, when SSM reports one: its name, its message, and its failure's kind
    /// (`FailureDetails.FailureType`: Action, Permission, Throttling, Verification, Internal).
    pub failed_step: Option<FailedStep>,
}

/// A runbook step that failed, as GetAutomationExecution reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedStep {
    pub name: String,
    pub message: Option<String>,
    pub failure_type: Option<String>,
}

impl ExecutionInfo {
    /// What failed, for the OpsItem: the step and its message, else the execution's message.
    pub fn failure_text(&self) -> Option<String> {
        match &self.failed_step {
            Some(step) => Some(format!(
                "step {} failed: {}",
                step.name,
                step.message
                    .as_deref()
                    .or(self.failure_message.as_deref())
                    .unwrap_or("no message")
            )),
            None => self.failure_message.clone(),
        }
    }
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
    /// Operational data keys to remove (`OperationalDataToDelete`): a consumed approval request.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub delete: Vec<String>,
}

/// OpsCenter.
#[async_trait]
pub trait OpsCenter: Send + Sync {
    async fn create(&self, item: &NewOpsItem) -> Result<CreatedOpsItem, PortError>;
    async fn update(&self, id: &str, update: &OpsItemUpdate) -> Result<(), PortError>;
    /// The item's status and the episode state tarem last wrote on it (`tarem:remediation`);
    /// `None` when there is no such item.
    async fn view(&self, id: &str) -> Result<Option<OpsItemView>, PortError>;
}

/// What an OpsItem says now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsItemView {
    pub status: OpsItemStatus,
    /// The `state` of its `tarem:remediation` data.
    pub state: Option<String>,
    /// Its `tarem:findingKey`: the finding whose episode it is.
    pub finding_key: Option<String>,
    /// Its `tarem:approve`: a person asks for the episode's next start ([`DATA_APPROVE`]).
    pub approve: Option<String>,
}

impl OpsItemView {
    /// The state tarem wrote, from the operational data's JSON value.
    pub fn state_of(remediation: Option<&str>) -> Option<String> {
        let value: Value = serde_json::from_str(remediation?).ok()?;
        value.get("state")?.as_str().map(str::to_owned)
    }
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
/// Operational data key a person sets (to `yes`) on an approval-mode OpsItem to approve its
/// episode's next start; tarem removes it when it has answered.
pub const DATA_APPROVE: &str = "tarem:approve";
/// Operational data key where tarem answers an approval: who, when, and whether it was taken.
pub const DATA_APPROVAL: &str = "tarem:approval";
pub const DATA_REMEDIATION: &str = "tarem:remediation";
pub const DATA_AUTOMATION: &str = "tarem:automation";

/// A tag whose key carries the ClientToken, so `DescribeAutomationExecutions` (which filters on
/// tag keys) can find the execution a retried start already made.
pub fn attempt_tag(client_token: &str) -> String {
    format!("tarem:attempt:{client_token}")
}
