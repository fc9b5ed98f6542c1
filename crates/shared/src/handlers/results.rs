//! results-handler: each tracker stream record becomes an OpsItem and, when a mapping asks for
//! it, exactly one automation per flagged episode.
//!
//! Every record of a batch is processed. Only records that failed retryably are named in the
//! partial batch response; once a finding's record fails, its later records in the batch wait
//! too, so a finding's changes are never applied out of order.

use crate::clock::Clock;
use crate::decide::{
    self, Action, Remediation, automation_tags, ops_item_for, plan_remediation, refresh_update,
    resolved_by_trusted_advisor, started_update,
};
use crate::error::{ErrorKind, PortError};
use crate::finding::{Finding, format_time};
use crate::mapping::{Mapping, MappingError};
use crate::ports::{
    AttemptClaim, Automation, Claim, ExecutionRecord, ExecutionStore, MappingStore, OpsCenter,
    OpsData, OpsItemUpdate, StartAutomation, TrackerStore,
};
use crate::stream::{TrackerChange, decode_record};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tracing::Instrument;

type CachedMapping = Option<Arc<Result<Mapping, MappingError>>>;

/// Mappings, read once and kept for a short time: a batch of findings for one check reads the
/// table once, and an operator's edit is live within the TTL.
pub struct MappingCache {
    store: Arc<dyn MappingStore>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    entries: Mutex<HashMap<String, (DateTime<Utc>, CachedMapping)>>,
}

impl MappingCache {
    pub fn new(store: Arc<dyn MappingStore>, clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        Self {
            store,
            clock,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The mapping for a check: `None` when unmapped, `Some(Err)` when the item is broken.
    pub async fn get(&self, check_name: &str) -> Result<CachedMapping, PortError> {
        let now = self.clock.now();
        if let Some((read_at, cached)) = self.lock().get(check_name)
            && now - *read_at < self.ttl
        {
            return Ok(cached.clone());
        }
        let item = self.store.get(check_name).await?;
        let mapping = item.map(|item| Arc::new(Mapping::from_json(&item)));
        if let Some(Err(error)) = mapping.as_deref() {
            tracing::error!(%error, metric = "mappings.broken", "broken mapping");
        }
        self.lock()
            .insert(check_name.to_owned(), (now, mapping.clone()));
        Ok(mapping)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (DateTime<Utc>, CachedMapping)>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Debug, Clone)]
pub struct ResultsConfig {
    /// OpsItem `Source`.
    pub ops_item_source: String,
    /// How long execution rows and attempt claims are kept.
    pub execution_retention: Duration,
    /// The documents the stack allows (empty: any).
    pub allowed_documents: Vec<String>,
}

impl Default for ResultsConfig {
    fn default() -> Self {
        Self {
            ops_item_source: "TrustedAdvisor".into(),
            execution_retention: Duration::days(90),
            allowed_documents: vec![],
        }
    }
}

pub struct ResultsHandler {
    pub tracker: Arc<dyn TrackerStore>,
    pub mappings: MappingCache,
    pub executions: Arc<dyn ExecutionStore>,
    pub automation: Arc<dyn Automation>,
    pub ops_center: Arc<dyn OpsCenter>,
    pub clock: Arc<dyn Clock>,
    pub config: ResultsConfig,
}

/// One thing the handler did for a record, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "camelCase")]
pub enum Step {
    OpsItemCreated {
        id: String,
        title: String,
    },
    OpsItemReused {
        id: String,
    },
    AutomationStarted {
        execution_id: String,
        document: String,
        region: String,
        parameters: BTreeMap<String, Vec<String>>,
        client_token: String,
    },
    AutomationAlreadyStarted {
        execution_id: String,
    },
    NoAutomation {
        reason: String,
    },
    OpsItemResolved {
        id: String,
    },
    NothingToResolve,
    Skipped {
        reason: String,
    },
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

enum Failure {
    Retry(PortError),
    Park(String),
}

impl From<PortError> for Failure {
    fn from(error: PortError) -> Self {
        if error.is_retryable() {
            Failure::Retry(error)
        } else {
            Failure::Park(error.to_string())
        }
    }
}

impl ResultsHandler {
    /// Handles a stream batch (`{"Records":[...]}`); never fails as a whole.
    pub async fn handle_batch(&self, payload: &Value) -> BatchReport {
        let Some(records) = payload.get("Records").and_then(Value::as_array) else {
            tracing::error!(
                metric = "records.parked",
                "stream payload has no `Records` list; nothing to do"
            );
            return BatchReport::default();
        };
        let mut report = BatchReport::default();
        let mut waiting: HashSet<String> = HashSet::new();
        for record in records {
            let record_report = self.handle_record(record, &mut waiting).await;
            report.records.push(record_report);
        }
        report
    }

    async fn handle_record(&self, record: &Value, waiting: &mut HashSet<String>) -> RecordReport {
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
        let span = tracing::info_span!(
            "finding",
            check = %finding.check_name,
            resource = %finding.resource,
            region = %finding.region
        );
        if waiting.contains(&finding.hash_key) {
            report.outcome = RecordOutcome::Retry(
                "an earlier record of this finding failed in this batch".into(),
            );
            return report;
        }
        let result = self
            .apply(&change, &finding, &mut report.steps)
            .instrument(span.clone())
            .await;
        let _enter = span.enter();
        match result {
            Ok(()) => {}
            Err(Failure::Retry(error)) => {
                tracing::warn!(%error, metric = "records.retried", "retryable failure; the record will be retried");
                waiting.insert(finding.hash_key.clone());
                report.outcome = RecordOutcome::Retry(error.to_string());
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
        finding: &Finding,
        steps: &mut Vec<Step>,
    ) -> Result<(), Failure> {
        match decide::classify(change) {
            Action::Ignore(reason) => {
                steps.push(Step::Skipped {
                    reason: reason.into(),
                });
                Ok(())
            }
            Action::Resolve => self.resolve(finding, steps).await,
            Action::Flag { new_episode } => self.flagged(finding, new_episode, steps).await,
        }
    }

    async fn resolve(&self, finding: &Finding, steps: &mut Vec<Step>) -> Result<(), Failure> {
        let open = self.ops_center.find_open(&finding.hash_key).await?;
        if open.is_empty() {
            steps.push(Step::NothingToResolve);
        }
        let update = resolved_by_trusted_advisor(finding);
        for id in open {
            self.ops_center.update(&id, &update).await?;
            tracing::info!(ops_item = %id, metric = "opsitems.resolved", "resolved: Trusted Advisor reports Green");
            steps.push(Step::OpsItemResolved { id });
        }
        Ok(())
    }

    async fn flagged(
        &self,
        finding: &Finding,
        new_episode: bool,
        steps: &mut Vec<Step>,
    ) -> Result<(), Failure> {
        let mapping = self.mappings.get(&finding.check_name).await?;
        let remediation = plan_remediation(
            finding,
            new_episode,
            mapping.as_deref(),
            &self.config.allowed_documents,
        );
        let item = ops_item_for(finding, &remediation, &self.config.ops_item_source);
        let ops_item = self.ops_center.create(&item).await?;
        if ops_item.created {
            tracing::info!(ops_item = %ops_item.id, metric = "opsitems.created", "OpsItem created");
            steps.push(Step::OpsItemCreated {
                id: ops_item.id.clone(),
                title: item.title.clone(),
            });
        } else {
            self.ops_center
                .update(&ops_item.id, &refresh_update(&item))
                .await?;
            steps.push(Step::OpsItemReused {
                id: ops_item.id.clone(),
            });
        }
        match remediation {
            Remediation::Start(start) => self.start(finding, start, &ops_item.id, steps).await,
            other => {
                tracing::info!(reason = %other.describe(), "no automation");
                steps.push(Step::NoAutomation {
                    reason: other.describe(),
                });
                Ok(())
            }
        }
    }

    async fn start(
        &self,
        finding: &Finding,
        mut start: StartAutomation,
        ops_item_id: &str,
        steps: &mut Vec<Step>,
    ) -> Result<(), Failure> {
        // A retried record can be hours old: when Trusted Advisor has since reported the resource
        // fixed (or the row is gone), the runbook is not needed. A newer refresh that is still
        // flagged does not cancel the start: its own record will not start one (same episode).
        let current = self
            .tracker
            .get(&finding.hash_key, &finding.resource)
            .await?;
        let fixed_since = current.as_ref().is_none_or(|current| {
            !current.resource_status.is_flagged() && current.time_millis() > finding.time_millis()
        });
        if fixed_since {
            steps.push(Step::Skipped {
                reason:
                    "Trusted Advisor reported the resource fixed after this record; no automation"
                        .into(),
            });
            return Ok(());
        }
        start.tags = automation_tags(&finding.hash_key, ops_item_id, &start.client_token);
        let now = self.clock.now();
        let expires_at = (now + self.config.execution_retention).timestamp();
        let claim = AttemptClaim {
            client_token: start.client_token.clone(),
            finding_key: finding.hash_key.clone(),
            ops_item_id: ops_item_id.to_owned(),
            document: start.document.clone(),
            region: start.region.clone(),
            claimed_at: format_time(now),
            expires_at,
        };
        let execution_id = match self.executions.claim(&claim).await? {
            Claim::Existing {
                execution_id: Some(id),
            } => {
                steps.push(Step::AutomationAlreadyStarted {
                    execution_id: id.clone(),
                });
                id
            }
            Claim::New | Claim::Existing { execution_id: None } => {
                match self.automation.start(&start).await {
                    Ok(id) => {
                        tracing::info!(execution = %id, document = %start.document, metric = "automations.started", "automation started");
                        steps.push(Step::AutomationStarted {
                            execution_id: id.clone(),
                            document: start.document.clone(),
                            region: start.region.clone(),
                            parameters: start.parameters.clone(),
                            client_token: start.client_token.clone(),
                        });
                        id
                    }
                    Err(error) if error.kind == ErrorKind::Conflict => {
                        match self
                            .automation
                            .find_by_client_token(&start.region, &start.client_token)
                            .await?
                        {
                            Some(id) => {
                                steps.push(Step::AutomationAlreadyStarted {
                                    execution_id: id.clone(),
                                });
                                id
                            }
                            None => {
                                return self
                                    .start_refused(ops_item_id, &start, &error, steps)
                                    .await;
                            }
                        }
                    }
                    Err(error) if !error.is_retryable() => {
                        return self.start_refused(ops_item_id, &start, &error, steps).await;
                    }
                    Err(error) => return Err(Failure::Retry(error)),
                }
            }
        };
        let record = ExecutionRecord {
            automation_execution_id: execution_id.clone(),
            ops_item_id: ops_item_id.to_owned(),
            finding_key: finding.hash_key.clone(),
            region: start.region.clone(),
            document: Some(start.document.clone()),
            check_name: Some(finding.check_name.clone()),
            resource: Some(finding.resource.clone()),
            client_token: Some(start.client_token.clone()),
            parameters: Some(start.parameters.clone()),
            status: "Pending".into(),
            started_at: Some(format_time(now)),
            updated_at: format_time(now),
            expires_at,
        };
        self.executions.record_started(&record).await?;
        self.ops_center
            .update(ops_item_id, &started_update(&start, &execution_id))
            .await?;
        Ok(())
    }

    /// SSM refused the start for good (unknown document, bad parameters, access denied): the
    /// OpsItem says so and the record is parked.
    async fn start_refused(
        &self,
        ops_item_id: &str,
        start: &StartAutomation,
        error: &PortError,
        steps: &mut Vec<Step>,
    ) -> Result<(), Failure> {
        let reason = format!(
            "{} could not start in {}: {error}",
            start.document, start.region
        );
        let update = OpsItemUpdate {
            status: None,
            description: None,
            operational_data: BTreeMap::from([(
                decide::DATA_REMEDIATION.to_owned(),
                OpsData {
                    value: json!({ "state": "start-failed", "document": start.document, "detail": reason }).to_string(),
                    searchable: false,
                },
            )]),
        };
        self.ops_center.update(ops_item_id, &update).await?;
        steps.push(Step::NoAutomation {
            reason: reason.clone(),
        });
        Err(Failure::Park(reason))
    }
}
