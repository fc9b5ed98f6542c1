//! The whole loop on the in-memory adapters: what `tarem simulate` runs and what the end-to-end
//! tests drive. The handlers are the same ones the Lambda functions run.

use crate::automation_event::status_event;
use crate::clock::Clock;
use crate::error::PortError;
use crate::handlers::{
    BatchReport, CheckTracker, ExecutionHandler, ExecutionOutcome, MappingCache, ResultsHandler,
    SweepReport, Tracked,
};
use crate::lifecycle::LifecycleConfig;
use crate::memory::{
    Faults, InMemoryAccounts, InMemoryAutomation, InMemoryCounters, InMemoryExecutions,
    InMemoryKillSwitch, InMemoryLocks, InMemoryMappings, InMemoryMembers, InMemoryOpsCenter,
    InMemoryQueue, InMemoryResourceTags, InMemoryTracker, InMemoryTrustedAdvisor, WithFaults,
};
use serde_json::{Value, json};
use std::sync::Arc;

/// The region the stack (tables, OpsItems, Trusted Advisor events) lives in.
pub const HOME_REGION: &str = "us-east-1";

pub struct LocalLoop {
    pub clock: Arc<dyn Clock>,
    pub tracker: Arc<InMemoryTracker>,
    pub mappings: Arc<InMemoryMappings>,
    pub executions: Arc<InMemoryExecutions>,
    pub automation: Arc<InMemoryAutomation>,
    pub ops_center: Arc<InMemoryOpsCenter>,
    pub resource_tags: Arc<InMemoryResourceTags>,
    pub counters: Arc<InMemoryCounters>,
    pub locks: Arc<InMemoryLocks>,
    pub kill_switch: Arc<InMemoryKillSwitch>,
    /// The hub's own account (whose services are the ones above) and the member accounts.
    pub members: Arc<InMemoryMembers>,
    /// Where the handlers park what they cannot use (one queue for the three, locally).
    pub parked: Arc<InMemoryQueue>,
    /// Trusted Advisor's results, for the reconcile sweep.
    pub advisor: Arc<InMemoryTrustedAdvisor>,
    /// The account registry (each account's latest event and sweep).
    pub registry: Arc<InMemoryAccounts>,
    /// Shared by every adapter above: make any operation fail.
    pub faults: Arc<Faults>,
    pub check_tracker: CheckTracker,
    pub results: ResultsHandler,
    pub execution_handler: ExecutionHandler,
    /// The account named in simulated SSM events.
    pub account: String,
}

impl LocalLoop {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self::with_automation(clock, InMemoryAutomation::default())
    }

    pub fn with_automation(clock: Arc<dyn Clock>, automation: InMemoryAutomation) -> Self {
        Self::with_config(clock, automation, LifecycleConfig::default())
    }

    pub fn with_config(
        clock: Arc<dyn Clock>,
        automation: InMemoryAutomation,
        config: LifecycleConfig,
    ) -> Self {
        let faults = Arc::new(Faults::default());
        let tracker =
            Arc::new(InMemoryTracker::new(clock.clone(), HOME_REGION).with_faults(faults.clone()));
        let mappings = Arc::new(InMemoryMappings::default().with_faults(faults.clone()));
        let executions = Arc::new(
            InMemoryExecutions::default()
                .with_clock(clock.clone())
                .with_faults(faults.clone()),
        );
        let automation = Arc::new(
            automation
                .with_clock(clock.clone())
                .with_faults(faults.clone()),
        );
        let ops_center = Arc::new(InMemoryOpsCenter::default().with_faults(faults.clone()));
        let resource_tags = Arc::new(InMemoryResourceTags::default().with_faults(faults.clone()));
        let counters = Arc::new(InMemoryCounters::default().with_faults(faults.clone()));
        let locks = Arc::new(InMemoryLocks::default().with_faults(faults.clone()));
        let kill_switch = Arc::new(InMemoryKillSwitch::default().with_faults(faults.clone()));
        let parked = Arc::new(InMemoryQueue::default().with_faults(faults.clone()));
        let advisor = Arc::new(InMemoryTrustedAdvisor::default().with_faults(faults.clone()));
        let execution_config = config.clone();
        let registry = Arc::new(InMemoryAccounts::default().with_faults(faults.clone()));
        let account = "123456789012";
        let members = Arc::new(InMemoryMembers::new(
            account,
            crate::ports::MemberClients {
                automation: automation.clone(),
                ops_center: ops_center.clone(),
                tags: resource_tags.clone(),
                gate: Arc::new(crate::ports::NoGate),
                advisor: advisor.clone(),
            },
            clock.clone(),
            faults.clone(),
        ));
        Self {
            check_tracker: CheckTracker {
                tracker: tracker.clone(),
                clock: clock.clone(),
                rules: crate::finding::TrackingRules::default(),
                parking: parked.clone(),
                registry: registry.clone(),
                seen: Default::default(),
            },
            results: ResultsHandler {
                tracker: tracker.clone(),
                mappings: MappingCache::new(
                    mappings.clone(),
                    clock.clone(),
                    chrono::Duration::seconds(60),
                ),
                executions: executions.clone(),
                members: members.clone(),
                counters: counters.clone(),
                locks: locks.clone(),
                kill_switch: kill_switch.clone(),
                clock: clock.clone(),
                config,
                pacer: Default::default(),
                parking: parked.clone(),
            },
            execution_handler: ExecutionHandler {
                tracker: tracker.clone(),
                executions: executions.clone(),
                locks: locks.clone(),
                members: members.clone(),
                clock: clock.clone(),
                config: execution_config,
                parking: parked.clone(),
            },
            clock,
            tracker,
            mappings,
            executions,
            automation,
            ops_center,
            resource_tags,
            counters,
            locks,
            kill_switch,
            members,
            parked,
            advisor,
            registry,
            faults,
            account: account.into(),
        }
    }

    /// The findings reconcile sweep over this loop's tracker, mappings and Trusted Advisor.
    pub fn findings_sweep(&self, all_checks: bool) -> crate::reconcile::FindingsSweep {
        crate::reconcile::FindingsSweep {
            tracker: self.tracker.clone(),
            mappings: self.mappings.clone(),
            advisor: self.advisor.clone(),
            clock: self.clock.clone(),
            all_checks,
            account: self.account.clone(),
            rules: self.check_tracker.rules.clone(),
            watched_since: None,
            watched_checks: Default::default(),
        }
    }

    /// The findings sweep of every governed account (check-tracker's schedule): the hub's own
    /// and each member's, each through its own Trusted Advisor, noted in the account registry.
    pub fn accounts_sweep(&self, all_checks: bool) -> crate::reconcile::accounts::AccountsSweep {
        let mut accounts = vec![self.account.clone()];
        accounts.extend(
            self.check_tracker
                .rules
                .governed_accounts
                .iter()
                .flatten()
                .filter(|account| **account != self.account)
                .cloned(),
        );
        crate::reconcile::accounts::AccountsSweep {
            tracker: self.tracker.clone(),
            mappings: self.mappings.clone(),
            members: self.members.clone(),
            registry: self.registry.clone(),
            clock: self.clock.clone(),
            all_checks,
            rules: self.check_tracker.rules.clone(),
            accounts,
        }
    }

    /// The episode sweep (the results handler's schedule).
    pub async fn sweep_episodes(&self) -> Result<SweepReport, PortError> {
        self.results.sweep(None, None).await
    }

    /// The execution sweep (the automation-execution handler's schedule).
    pub async fn sweep_executions(
        &self,
        stale_after: chrono::Duration,
    ) -> Result<Vec<ExecutionOutcome>, PortError> {
        self.execution_handler.sweep(stale_after).await
    }

    /// check-tracker on one Trusted Advisor event.
    pub async fn track(&self, event: &Value) -> Result<Tracked, PortError> {
        self.check_tracker.handle(event).await
    }

    /// The stream records written since the last delivery, as one Lambda batch payload.
    pub fn pending_stream_batch(&self) -> Value {
        let records = self.tracker.take_stream();
        json!({ "Records": records })
    }

    /// Delivers the pending stream records to the results handler as one batch.
    pub async fn deliver_stream(&self) -> BatchReport {
        let batch = self.pending_stream_batch();
        self.results.handle_batch(&batch, None).await
    }

    /// Ends every execution still running with the status `outcome` picks for its document, and
    /// delivers each status event to the automation-execution handler.
    pub async fn finish_automations(
        &self,
        outcome: impl Fn(&str) -> (String, Option<String>),
    ) -> Vec<Result<ExecutionOutcome, PortError>> {
        let mut results = vec![];
        for event in self.complete_automations(outcome) {
            results.push(self.execution_handler.handle(&event).await);
        }
        results
    }

    /// Ends every execution still running with the status `outcome` picks for its document, and
    /// returns the status events SSM would emit (for the caller to deliver, duplicate or delay).
    pub fn complete_automations(
        &self,
        outcome: impl Fn(&str) -> (String, Option<String>),
    ) -> Vec<Value> {
        let mut events = vec![];
        let mut accounts = vec![(self.account.clone(), self.automation.clone())];
        accounts.extend(
            self.members
                .accounts()
                .into_iter()
                .map(|(account, member)| (account, member.automation.clone())),
        );
        for (account, automation) in &accounts {
            events.extend(self.complete_in(account, automation, &outcome));
        }
        events
    }

    /// Makes this loop an organisation's hub: it governs its own account and `members`, each
    /// with its member stacks deployed (their own Automation, OpsCenter and tags).
    pub fn govern(&mut self, members: &[&str]) {
        self.govern_as(None, members);
    }

    /// [`Self::govern`], with `hub` (when given) as the hub's own account.
    pub fn govern_as(&mut self, hub: Option<&str>, members: &[&str]) {
        if let Some(hub) = hub {
            self.account = hub.to_owned();
            self.members.set_home(hub);
        }
        let governed: std::collections::BTreeSet<String> = std::iter::once(self.account.clone())
            .chain(members.iter().map(|m| (*m).to_owned()))
            .collect();
        for member in members {
            self.members.add(member);
        }
        self.check_tracker.rules.governed_accounts = Some(governed.clone());
        self.results.config.safety.governed_accounts = Some(governed.clone());
        self.results.config.safety.home_account = Some(self.account.clone());
        self.execution_handler.config.safety.governed_accounts = Some(governed);
    }

    fn complete_in(
        &self,
        account: &str,
        automation: &InMemoryAutomation,
        outcome: &impl Fn(&str) -> (String, Option<String>),
    ) -> Vec<Value> {
        let mut events = vec![];
        for execution in automation.running() {
            let (status, failure) = outcome(&execution.document);
            automation.complete(&execution.execution_id, &status, failure.as_deref());
            events.push(status_event(
                account,
                &execution.region,
                &execution.execution_id,
                &execution.document,
                &status,
                self.clock.now(),
            ));
        }
        events
    }
}

/// Re-driving parked messages through this loop's handlers (what `tarem dlq replay` does with the
/// deployed functions).
#[async_trait::async_trait]
impl crate::ports::Redrive for LocalLoop {
    async fn invoke(
        &self,
        target: crate::ports::Target,
        payload: &Value,
    ) -> Result<crate::ports::Redriven, PortError> {
        use crate::handlers::RecordOutcome;
        use crate::ports::{Redriven, Target};
        match target {
            Target::CheckTracker => match self.track(payload).await? {
                Tracked::Rejected(rejection) => Ok(Redriven::ParkedAgain(rejection.to_string())),
                _ => {
                    self.deliver_stream().await;
                    Ok(Redriven::Done)
                }
            },
            Target::ResultsHandler if crate::handlers::is_scheduled(payload) => {
                let report = self
                    .results
                    .sweep(None, crate::handlers::finding_named(payload))
                    .await?;
                if report.failed.is_empty() {
                    Ok(Redriven::Done)
                } else {
                    Ok(Redriven::ParkedAgain(report.failed.join("; ")))
                }
            }
            Target::ResultsHandler => {
                let report = self.results.handle_batch(payload, None).await;
                if !report.batch_item_failures().is_empty() {
                    return Err(PortError::new(
                        "results-handler",
                        crate::error::ErrorKind::Unavailable,
                        format!(
                            "{} records failed again",
                            report.batch_item_failures().len()
                        ),
                    ));
                }
                let parked: Vec<String> = report
                    .records
                    .iter()
                    .filter_map(|r| match &r.outcome {
                        RecordOutcome::Parked(reason) => Some(reason.clone()),
                        _ => None,
                    })
                    .collect();
                Ok(if parked.is_empty() {
                    Redriven::Done
                } else {
                    Redriven::ParkedAgain(parked.join("; "))
                })
            }
            Target::AutomationExecutionHandler => {
                match self.execution_handler.handle(payload).await? {
                    ExecutionOutcome::Rejected(rejection) => {
                        Ok(Redriven::ParkedAgain(rejection.to_string()))
                    }
                    _ => Ok(Redriven::Done),
                }
            }
        }
    }
}

/// The tracker's stream history, read back by sequence range.
#[async_trait::async_trait]
impl crate::ports::StreamReader for LocalLoop {
    async fn records(&self, batch: &crate::ports::StreamBatch) -> Result<Vec<Value>, PortError> {
        Ok(self
            .tracker
            .stream_history()
            .into_iter()
            .filter(|record| {
                record
                    .change
                    .sequence_number
                    .as_deref()
                    .is_some_and(|sequence| {
                        sequence >= batch.start_sequence_number.as_str()
                            && sequence <= batch.end_sequence_number.as_str()
                    })
            })
            .filter_map(|record| serde_json::to_value(record).ok())
            .collect())
    }
}
