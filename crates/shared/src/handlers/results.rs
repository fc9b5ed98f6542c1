//! results-handler: each tracker stream record becomes an OpsItem and, when the mapping and every
//! safety control allow it, one automation per attempt.
//!
//! Every record of a batch is processed. Only records that failed retryably are named in the
//! partial batch response; once a finding's record fails, its later records in the batch wait
//! too, so a finding's changes are never applied out of order.
//!
//! A start happens once per attempt: the attempt is claimed in the finding's remediation state
//! (a versioned, conditional write) before SSM is called, the ClientToken is derived from the
//! finding and the attempt number, and a redelivered record finds its attempt already there.

use super::update_state;
use crate::automation_event::is_final;
use crate::clock::Clock;
use crate::decide::{
    self, Action, Remediation, automation_tags, ops_item_for, plan_remediation, refresh_update,
    resolved_by_trusted_advisor, started_update,
};
use crate::error::{ErrorKind, PortError};
use crate::finding::{Finding, format_time};
use crate::mapping::{Mapping, MappingError, Mode};
use crate::ports::{
    Automation, Counters, ExecutionRecord, ExecutionStore, KillSwitch, MappingStore, OpsCenter,
    OpsItemUpdate, ResourceTags, StartAutomation, TrackerStore,
};
use crate::replay::{ParkingLot, Target};
use crate::safety::{
    Attempt, AttemptLimits, Gate, RemediationState, SafetyConfig, breaker_counter, effective_mode,
    gate, needs_tags, ops_item_counter, unmapped_ops_item,
};
use crate::stream::{TrackerChange, decode_record};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tracing::Instrument;

type CachedMapping = Option<Arc<Result<Mapping, MappingError>>>;

/// Mappings, read once and kept for a short time: a batch of findings for one check reads the
/// table once, and an operator's edit is live within the TTL (zero: read every time).
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
    /// How long execution rows, remediation states and counters are kept.
    pub execution_retention: Duration,
    pub safety: SafetyConfig,
}

impl Default for ResultsConfig {
    fn default() -> Self {
        Self {
            ops_item_source: "TrustedAdvisor".into(),
            execution_retention: Duration::days(90),
            safety: SafetyConfig::default(),
        }
    }
}

/// Spaces StartAutomationExecution calls at least `interval` apart within this process.
#[derive(Default)]
pub struct StartPacer {
    last: Mutex<Option<DateTime<Utc>>>,
}

impl StartPacer {
    /// Reserves the next start slot; returns how long to wait for it.
    fn reserve(&self, now: DateTime<Utc>, interval: Duration) -> Duration {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let slot = last.map_or(now, |last| (last + interval).max(now));
        *last = Some(slot);
        slot - now
    }
}

pub struct ResultsHandler {
    pub tracker: Arc<dyn TrackerStore>,
    pub mappings: MappingCache,
    pub executions: Arc<dyn ExecutionStore>,
    pub automation: Arc<dyn Automation>,
    pub ops_center: Arc<dyn OpsCenter>,
    pub tags: Arc<dyn ResourceTags>,
    pub counters: Arc<dyn Counters>,
    pub kill_switch: Arc<dyn KillSwitch>,
    pub clock: Arc<dyn Clock>,
    pub config: ResultsConfig,
    pub pacer: StartPacer,
    /// Where records that failed permanently go, with their reason (the stream's failure queue).
    pub parking: Arc<dyn ParkingLot>,
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
    /// The mapping's mode or the mapping itself starts nothing (approval, dry run, blocked, none).
    NoAutomation {
        reason: String,
    },
    /// A safety control decided: nothing started (or no OpsItem), and why.
    Held {
        control: String,
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

pub(super) enum Failure {
    Retry(String),
    Park(String),
}

impl From<PortError> for Failure {
    fn from(error: PortError) -> Self {
        if error.is_retryable() {
            Failure::Retry(error.to_string())
        } else {
            Failure::Park(error.to_string())
        }
    }
}

/// Time kept in hand before the function's deadline: a record that would need more is retried
/// in a later invocation rather than cut off mid-call.
const DEADLINE_MARGIN_SECONDS: i64 = 10;
/// Start attempts per record for retryable SSM errors (throttling, the concurrency limit).
const START_TRIES: u32 = 6;
const MAX_BACKOFF_SECONDS: i64 = 20;

/// A flagged finding's automated start that passed the attempt gate.
enum Claimable {
    New { number: u32, client_token: String },
    Resume(Attempt),
}

impl ResultsHandler {
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
        for record in records {
            let mut record_report = self.handle_record(record, &mut waiting, deadline).await;
            if let RecordOutcome::Parked(reason) = &record_report.outcome {
                // Parked for a replay after the fix; a record that cannot be parked is retried.
                let payload = serde_json::json!({ "Records": [record] });
                if let Err(error) = self
                    .parking
                    .park(Target::ResultsHandler, &payload, reason)
                    .await
                {
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
        deadline: Option<DateTime<Utc>>,
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
        let span = tracing::info_span!(
            "finding",
            check = %finding.check_name,
            resource = %finding.resource,
            region = %finding.region
        );
        let result = self
            .apply(&change, &finding, &mut report.steps, deadline)
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
        finding: &Finding,
        steps: &mut Vec<Step>,
        deadline: Option<DateTime<Utc>>,
    ) -> Result<(), Failure> {
        if let Some(reason) = self.outdated(change).await? {
            tracing::info!(%reason, metric = "records.stale", "record acts on nothing");
            steps.push(Step::Skipped { reason });
            return Ok(());
        }
        match decide::classify(change) {
            Action::Ignore(reason) => {
                steps.push(Step::Skipped {
                    reason: reason.into(),
                });
                Ok(())
            }
            Action::Resolve => self.resolve(finding, steps).await,
            Action::Flag => self.flagged(finding, steps, deadline).await,
        }
    }

    /// Why a record must act on nothing, checked before any OpsItem or automation work: it
    /// says the same state again, or the tracker holds a later state than it (a retried record,
    /// or one replayed from the failure queue hours later).
    async fn outdated(&self, change: &TrackerChange) -> Result<Option<String>, Failure> {
        let Some(new) = &change.new else {
            return Ok(None);
        };
        if let Some(old) = &change.old
            && old.resource_status == new.resource_status
            && old.time_millis() == new.time_millis()
        {
            return Ok(Some(
                "the same state, said again later; nothing to do".into(),
            ));
        }
        let current = self.tracker.get(&new.hash_key, &new.resource).await?;
        Ok(match current {
            None => Some("the tracker no longer holds this finding; nothing to do".into()),
            Some(current) if current.order() > new.order() => Some(format!(
                "stale: the tracker holds a later state ({} as of {}) than this record ({} as of {})",
                current.resource_status,
                current.last_updated_time,
                new.resource_status,
                new.last_updated_time
            )),
            Some(_) => None,
        })
    }

    fn expires_at(&self) -> i64 {
        (self.clock.now() + self.config.execution_retention).timestamp()
    }

    async fn resolve(&self, finding: &Finding, steps: &mut Vec<Step>) -> Result<(), Failure> {
        let state = self.executions.get_state(&finding.hash_key).await?;
        let mut open = self.ops_center.find_open(&finding.hash_key).await?;
        // The remembered item: found even before OpsCenter's search has indexed it.
        let remembered = state.as_ref().and_then(|state| state.ops_item_id.clone());
        if let Some(id) = &remembered
            && !open.contains(id)
        {
            open.push(id.clone());
        }
        if open.is_empty() {
            steps.push(Step::NothingToResolve);
        }
        let update = resolved_by_trusted_advisor(finding);
        for id in open {
            self.ops_center.update(&id, &update).await?;
            tracing::info!(ops_item = %id, metric = "opsitems.resolved", "resolved: Trusted Advisor reports Green");
            steps.push(Step::OpsItemResolved { id });
        }
        if remembered.is_some() {
            update_state(&*self.executions, &finding.hash_key, None, |state| {
                state.ops_item_id.take().is_some()
            })
            .await?;
        }
        Ok(())
    }

    async fn flagged(
        &self,
        finding: &Finding,
        steps: &mut Vec<Step>,
        deadline: Option<DateTime<Utc>>,
    ) -> Result<(), Failure> {
        let safety = &self.config.safety;
        let now = self.clock.now();
        let mapping = self.mappings.get(&finding.check_name).await?;
        let (mode, note) = match mapping.as_deref() {
            Some(Ok(mapping)) => {
                let tags = match (needs_tags(mapping, &safety.opt_in), finding.resource_arn()) {
                    (true, Some(arn)) => self.tags.tags(&finding.region, arn).await?,
                    _ => BTreeMap::new(),
                };
                effective_mode(mapping, &tags, &safety.opt_in)
            }
            _ => (Mode::Approval, None),
        };
        let mut remediation =
            plan_remediation(finding, mapping.as_deref(), mode, note.as_deref(), safety);
        match &remediation {
            Remediation::Inactive { reason, .. } => {
                steps.push(held("inactive", reason.clone()));
                return Ok(());
            }
            Remediation::NotMapped => {
                let created = self.counters.value(&ops_item_counter(now)).await?;
                if let Err(reason) = unmapped_ops_item(
                    finding,
                    safety.unmapped_ops_items,
                    created,
                    safety.monthly_ops_item_budget,
                ) {
                    tracing::info!(%reason, metric = "opsitems.skipped", "no OpsItem for this unmapped finding");
                    steps.push(held("ops-items", reason));
                    return Ok(());
                }
            }
            _ => {}
        }

        // The attempt gate and the kill switch, for automated starts.
        let limits =
            AttemptLimits::for_mapping(safety, mapping.as_deref().and_then(|m| m.as_ref().ok()));
        let mut claimable = None;
        let mut state = None;
        if let Remediation::Start(start) = remediation.clone() {
            state = self.executions.get_state(&finding.hash_key).await?;
            match gate(state.as_ref(), finding, now, &limits) {
                Gate::AlreadyStarted { execution_id } => {
                    // The first delivery of this record did all of it, OpsItem included.
                    steps.push(Step::AutomationAlreadyStarted { execution_id });
                    return Ok(());
                }
                Gate::Hold(hold) => {
                    let control = hold.control();
                    tracing::info!(
                        control,
                        metric = "automations.held",
                        "held by the attempt gate"
                    );
                    remediation = Remediation::Held {
                        start: start.clone(),
                        control,
                        reason: hold.describe(&limits),
                    };
                }
                Gate::Start {
                    number,
                    client_token,
                } => {
                    claimable = Some(Claimable::New {
                        number,
                        client_token,
                    })
                }
                Gate::Resume(attempt) => claimable = Some(Claimable::Resume(attempt)),
            }
            if claimable.is_some() && !self.kill_switch.starts_allowed().await? {
                tracing::warn!(metric = "automations.held", "kill switch is off: no start");
                claimable = None;
                remediation = Remediation::Held {
                    start: start.clone(),
                    control: "kill-switch",
                    reason: "automation starts are switched off (the stack's kill switch parameter is `off`)".into(),
                };
            }
        }

        let (ops_item_id, remembered) = self.open_ops_item(finding, &remediation, steps).await?;
        if remembered.is_some() {
            // Remembering the OpsItem wrote the state: claim on top of that version.
            state = remembered;
        }
        match (remediation, claimable) {
            (Remediation::Start(start), Some(claimable)) => {
                self.start(
                    finding,
                    start,
                    claimable,
                    state,
                    &ops_item_id,
                    steps,
                    deadline,
                )
                .await
            }
            (
                Remediation::Held {
                    control, reason, ..
                },
                _,
            ) => {
                steps.push(held(control, reason));
                Ok(())
            }
            (other, _) => {
                tracing::info!(reason = %other.describe(), "no automation");
                steps.push(Step::NoAutomation {
                    reason: other.describe(),
                });
                Ok(())
            }
        }
    }

    /// Creates the finding's OpsItem, or refreshes the open one dedup returns; remembers a new
    /// one in the finding's state (returned when written) and counts it against the month's
    /// budget.
    async fn open_ops_item(
        &self,
        finding: &Finding,
        remediation: &Remediation,
        steps: &mut Vec<Step>,
    ) -> Result<(String, Option<RemediationState>), Failure> {
        let item = ops_item_for(finding, remediation, &self.config.ops_item_source);
        let ops_item = self.ops_center.create(&item).await?;
        if ops_item.created {
            tracing::info!(ops_item = %ops_item.id, metric = "opsitems.created", "OpsItem created");
            steps.push(Step::OpsItemCreated {
                id: ops_item.id.clone(),
                title: item.title.clone(),
            });
            self.counters
                .increment(&ops_item_counter(self.clock.now()), self.expires_at())
                .await?;
            let id = ops_item.id.clone();
            let state = update_state(
                &*self.executions,
                &finding.hash_key,
                Some(self.expires_at()),
                move |state| state.ops_item_id.replace(id.clone()).as_deref() != Some(id.as_str()),
            )
            .await?;
            return Ok((ops_item.id, state));
        }
        self.ops_center
            .update(&ops_item.id, &refresh_update(&item))
            .await?;
        steps.push(Step::OpsItemReused {
            id: ops_item.id.clone(),
        });
        Ok((ops_item.id, None))
    }

    #[allow(clippy::too_many_arguments)]
    async fn start(
        &self,
        finding: &Finding,
        mut start: StartAutomation,
        claimable: Claimable,
        state: Option<RemediationState>,
        ops_item_id: &str,
        steps: &mut Vec<Step>,
        deadline: Option<DateTime<Utc>>,
    ) -> Result<(), Failure> {
        // A retried record can be hours old: when Trusted Advisor has since reported the resource
        // fixed (or the row is gone), the runbook is not needed.
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
        let now = self.clock.now();
        let (client_token, resumed) = match claimable {
            Claimable::New {
                number,
                client_token,
            } => {
                let safety = &self.config.safety;
                let breaker = breaker_counter(&finding.check_name, now, safety.breaker_window);
                if !self
                    .counters
                    .increment_below(&breaker, safety.breaker_limit, self.expires_at())
                    .await?
                {
                    return self
                        .breaker_tripped(finding, start, ops_item_id, steps)
                        .await;
                }
                let attempt = Attempt {
                    number,
                    client_token: client_token.clone(),
                    finding_time_millis: finding.time_millis(),
                    started_at: now.timestamp(),
                    document: start.document.clone(),
                    region: start.region.clone(),
                    execution_id: None,
                    status: None,
                };
                let base = state.unwrap_or_else(|| RemediationState::new(&finding.hash_key));
                let mut claimed = base.with_attempt(attempt);
                claimed.expires_at = self.expires_at();
                if !self.executions.put_state(&claimed).await? {
                    // Another delivery claimed first; this record is retried and will see it.
                    return Err(Failure::Retry(
                        "another writer changed this finding's attempts; retried".into(),
                    ));
                }
                (client_token, false)
            }
            Claimable::Resume(attempt) => (attempt.client_token, true),
        };
        start.client_token = client_token.clone();
        start.tags = automation_tags(&finding.hash_key, ops_item_id, &client_token);

        // A resumed attempt may have started before the crash: ask SSM first.
        let found = if resumed {
            self.automation
                .find_by_client_token(&start.region, &client_token)
                .await?
        } else {
            None
        };
        let execution_id = match found {
            Some(id) => {
                steps.push(Step::AutomationAlreadyStarted {
                    execution_id: id.clone(),
                });
                id
            }
            None => {
                let id = self
                    .start_paced(&start, ops_item_id, steps, deadline)
                    .await?;
                tracing::info!(execution = %id, document = %start.document, metric = "automations.started", "automation started");
                steps.push(Step::AutomationStarted {
                    execution_id: id.clone(),
                    document: start.document.clone(),
                    region: start.region.clone(),
                    parameters: start.parameters.clone(),
                    client_token: client_token.clone(),
                });
                id
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
            client_token: Some(client_token.clone()),
            parameters: Some(start.parameters.clone()),
            status: "Pending".into(),
            started_at: Some(format_time(now)),
            updated_at: format_time(now),
            expires_at: self.expires_at(),
        };
        let status = self.executions.record_started(&record).await?;
        // The status handler may already have written the outcome: never undo it.
        if !is_final(&status) {
            self.ops_center
                .update(ops_item_id, &started_update(&start, &execution_id))
                .await?;
        }
        let linked = execution_id.clone();
        update_state(&*self.executions, &finding.hash_key, None, move |state| {
            state
                .attempt_mut(&client_token)
                .is_some_and(|attempt| attempt.execution_id.replace(linked.clone()).is_none())
        })
        .await?;
        Ok(())
    }

    /// StartAutomationExecution, paced, with backoff and jitter for throttling and the
    /// concurrency limit, within the invocation's time budget.
    async fn start_paced(
        &self,
        start: &StartAutomation,
        ops_item_id: &str,
        steps: &mut Vec<Step>,
        deadline: Option<DateTime<Utc>>,
    ) -> Result<String, Failure> {
        let mut backoff = Duration::seconds(1);
        let mut last_error = None;
        for try_number in 0..START_TRIES {
            let wait = self
                .pacer
                .reserve(self.clock.now(), self.config.safety.start_interval);
            self.wait_within_budget(wait, deadline, "pacing StartAutomationExecution")
                .await?;
            match self.automation.start(start).await {
                Ok(id) => return Ok(id),
                Err(error) if error.kind == ErrorKind::Conflict => {
                    return match self
                        .automation
                        .find_by_client_token(&start.region, &start.client_token)
                        .await?
                    {
                        Some(id) => Ok(id),
                        None => Err(self.start_refused(ops_item_id, start, &error, steps).await),
                    };
                }
                Err(error) if !error.is_retryable() => {
                    return Err(self.start_refused(ops_item_id, start, &error, steps).await);
                }
                Err(error) => {
                    tracing::warn!(%error, try_number, "start failed retryably; backing off");
                    let wait = backoff + jitter(&start.client_token, try_number);
                    last_error = Some(error);
                    self.wait_within_budget(
                        wait,
                        deadline,
                        "backing off after a retryable start error",
                    )
                    .await?;
                    backoff = (backoff * 2).min(Duration::seconds(MAX_BACKOFF_SECONDS));
                }
            }
        }
        Err(Failure::Retry(last_error.map_or_else(
            || "start not attempted".into(),
            |error| error.to_string(),
        )))
    }

    async fn wait_within_budget(
        &self,
        wait: Duration,
        deadline: Option<DateTime<Utc>>,
        what: &str,
    ) -> Result<(), Failure> {
        if wait <= Duration::zero() {
            return Ok(());
        }
        if let Some(deadline) = deadline
            && self.clock.now() + wait + Duration::seconds(DEADLINE_MARGIN_SECONDS) > deadline
        {
            return Err(Failure::Retry(format!(
                "the invocation's time budget cannot cover {what}; the record is retried later"
            )));
        }
        self.clock.sleep(wait).await;
        Ok(())
    }

    /// The circuit breaker tripped: this check runs in approval mode until the window turns.
    async fn breaker_tripped(
        &self,
        finding: &Finding,
        start: StartAutomation,
        ops_item_id: &str,
        steps: &mut Vec<Step>,
    ) -> Result<(), Failure> {
        let safety = &self.config.safety;
        let reason = format!(
            "circuit breaker: {} starts for this check within {} minutes; approval mode until the window turns",
            safety.breaker_limit,
            safety.breaker_window.num_minutes()
        );
        tracing::warn!(check = %finding.check_name, metric = "automations.breaker", "circuit breaker tripped");
        let approval = Remediation::Approval {
            start,
            reason: reason.clone(),
        };
        let item = ops_item_for(finding, &approval, &self.config.ops_item_source);
        self.ops_center
            .update(ops_item_id, &refresh_update(&item))
            .await?;
        steps.push(held("circuit-breaker", reason));
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
    ) -> Failure {
        let reason = format!(
            "{} could not start in {}: {error}",
            start.document, start.region
        );
        let update = OpsItemUpdate {
            status: None,
            description: None,
            operational_data: BTreeMap::from([(
                decide::DATA_REMEDIATION.to_owned(),
                crate::ports::OpsData {
                    value: serde_json::json!({ "state": "start-failed", "document": start.document, "detail": reason })
                        .to_string(),
                    searchable: false,
                },
            )]),
        };
        if let Err(error) = self.ops_center.update(ops_item_id, &update).await {
            return error.into();
        }
        steps.push(Step::NoAutomation {
            reason: reason.clone(),
        });
        Failure::Park(reason)
    }
}

fn held(control: &str, reason: String) -> Step {
    Step::Held {
        control: control.to_owned(),
        reason,
    }
}

/// Up to a second of jitter, spread by ClientToken and try, so retries of many records do not
/// move in lockstep.
fn jitter(client_token: &str, try_number: u32) -> Duration {
    let spread = client_token
        .bytes()
        .fold(u64::from(try_number) + 1, |hash, byte| {
            hash.wrapping_mul(1_099_511_628_211)
                .wrapping_add(u64::from(byte))
        });
    Duration::milliseconds((spread % 1000) as i64)
}
