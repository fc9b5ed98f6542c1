//! automation-execution-handler: an SSM status change reaches the OpsItem of the finding the
//! automation remediates, even when the event beats the execution row (the execution's tags name
//! the OpsItem) or comes from another region.

use super::record_outcome;
use crate::automation_event::{self, AutomationStatusEvent, EventRejection, is_final, is_success};
use crate::clock::Clock;
use crate::error::{ErrorKind, PortError};
use crate::finding::format_time;
use crate::lifecycle::{LifecycleConfig, Outcome};
use crate::ports::{
    ExecutionRecord, ExecutionStore, MemberClients, MemberReach, Members, OpsItemStatus,
    ResourceLocks, TrackerStore,
};
use crate::ports::{ParkingLot, Target};
use crate::ports::{TAG_CLIENT_TOKEN, TAG_FINDING, TAG_OPS_ITEM};
use chrono::Duration;
use serde_json::Value;
use std::sync::Arc;
use tracing::Instrument;

pub struct ExecutionHandler {
    /// The tracker's current row judges a success (a Red may have come before the outcome).
    pub tracker: Arc<dyn TrackerStore>,
    pub executions: Arc<dyn ExecutionStore>,
    /// The resource lock of an attempt is released when its outcome comes.
    pub locks: Arc<dyn ResourceLocks>,
    /// The accounts executions run in: each is described, and its OpsItem written, there.
    pub members: Arc<dyn Members>,
    pub clock: Arc<dyn Clock>,
    /// The lifecycle's settings (verify window, resolve-on, retention).
    pub config: LifecycleConfig,
    /// Where unusable events go, with their reason (the function's failure queue).
    pub parking: Arc<dyn ParkingLot>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionOutcome {
    /// The event cannot be used.
    Rejected(EventRejection),
    /// The execution was not started by tarem.
    NotOurs { execution_id: String },
    /// A non-final status after a final one: changes nothing.
    Late {
        execution_id: String,
        status: String,
    },
    /// The status reached the execution row, the episode and its OpsItem.
    Recorded {
        execution_id: String,
        status: String,
        /// The episode's OpsItem (none while it is owed).
        ops_item_id: Option<String>,
        ops_item_status: Option<OpsItemStatus>,
        /// The episode's state afterwards.
        state: Option<String>,
        reason: Option<String>,
    },
}

impl ExecutionOutcome {
    /// The function's response (read by `tarem dlq replay`).
    pub fn summary(&self) -> serde_json::Value {
        match self {
            ExecutionOutcome::Rejected(rejection) => {
                serde_json::json!({ "outcome": "rejected", "reason": rejection.to_string() })
            }
            ExecutionOutcome::NotOurs { execution_id } => {
                serde_json::json!({ "outcome": "not-ours", "executionId": execution_id })
            }
            ExecutionOutcome::Late {
                execution_id,
                status,
            } => {
                serde_json::json!({ "outcome": "late", "executionId": execution_id, "status": status })
            }
            ExecutionOutcome::Recorded {
                execution_id,
                status,
                ops_item_id,
                ..
            } => serde_json::json!({
                "outcome": "recorded", "executionId": execution_id, "status": status, "opsItemId": ops_item_id
            }),
        }
    }
}

impl ExecutionHandler {
    /// The scheduled sweep: executions with no final status after `stale_after` are looked up
    /// with GetAutomationExecution in their region; a final one goes through the same path as a
    /// status event (this also covers regions whose events never reach the stack). Each row is
    /// handled on its own: one that fails is logged and parked (as the status event it stands
    /// for), the rest go on. `Err` only when the table cannot be read.
    pub async fn sweep(&self, stale_after: Duration) -> Result<Vec<ExecutionOutcome>, PortError> {
        let cutoff = format_time(self.clock.now() - stale_after);
        let mut outcomes = vec![];
        for row in self.executions.unfinished(&cutoff).await? {
            match self.sweep_row(&row).await {
                Ok(Some(outcome)) => outcomes.push(outcome),
                Ok(None) => {}
                Err(error) => {
                    tracing::error!(execution = %row.automation_execution_id, %error, metric = "executions.sweep_failed", "sweep could not handle an execution; parked");
                    let event = automation_event::status_event(
                        "",
                        &row.region,
                        &row.automation_execution_id,
                        row.document.as_deref().unwrap_or_default(),
                        &row.status,
                        self.clock.now(),
                    );
                    let parked = super::park(
                        &*self.parking,
                        Target::AutomationExecutionHandler,
                        &event,
                        &error.to_string(),
                    )
                    .await;
                    if let Err(park) = parked {
                        tracing::error!(%park, "could not park it either; the next sweep tries again");
                    }
                }
            }
        }
        tracing::info!(
            resolved = outcomes.len(),
            metric = "reconcile.executions",
            "execution sweep done"
        );
        Ok(outcomes)
    }

    async fn sweep_row(
        &self,
        row: &ExecutionRecord,
    ) -> Result<Option<ExecutionOutcome>, PortError> {
        // An account out of reach is looked at again at the next poll; one gone from the
        // organisation never answers again (its episode ends as gone; the row expires with its
        // TTL). Neither is parked every poll.
        let clients = match self.members.reach(row.account.as_deref()).await? {
            MemberReach::Ready(clients) => clients,
            MemberReach::Held(reason) | MemberReach::Gone(reason) => {
                tracing::warn!(execution = %row.automation_execution_id, account = row.account.as_deref(), %reason, metric = "executions.unreachable", "the execution's account is out of reach; not polled");
                return Ok(None);
            }
        };
        let Some(info) = clients
            .automation
            .describe(&row.region, &row.automation_execution_id)
            .await?
        else {
            tracing::warn!(execution = %row.automation_execution_id, region = %row.region, "no such execution in SSM");
            return Ok(None);
        };
        if !is_final(&info.status) {
            return Ok(None);
        }
        // SSM's own end time, never the poll's (a flagged observation after it means the fix
        // did not hold); the clock only when SSM gives none.
        let now = self.clock.now();
        let event = AutomationStatusEvent {
            execution_id: row.automation_execution_id.clone(),
            status: info.status,
            definition: Some(info.document),
            region: row.region.clone(),
            time: Some(info.end_time.map_or(now, |end| end.min(now))),
            account: row.account.clone(),
        };
        self.record(event).await.map(Some)
    }

    /// `Err` only when a call failed: the Lambda returns a function error so EventBridge retries
    /// and, in the end, the dead-letter queue keeps the event.
    pub async fn handle(&self, event: &Value) -> Result<ExecutionOutcome, PortError> {
        let event = match automation_event::parse(
            event,
            self.clock.now(),
            self.config.future_tolerance,
        ) {
            Ok(event) => event,
            Err(rejection) => {
                tracing::warn!(reason = %rejection, metric = "executions.rejected", "rejected automation event; parked");
                super::park(
                    &*self.parking,
                    Target::AutomationExecutionHandler,
                    event,
                    &rejection.to_string(),
                )
                .await?;
                return Ok(ExecutionOutcome::Rejected(rejection));
            }
        };
        let span = tracing::info_span!(
            "execution",
            id = %event.execution_id,
            status = %event.status,
            region = %event.region,
            findingKey = tracing::field::Empty,
            episode = tracing::field::Empty,
            attempt = tracing::field::Empty
        );
        self.record(event).instrument(span).await
    }

    /// The clients of an execution's account; one out of reach is an error (retried, and in the
    /// end parked with the event).
    async fn member(&self, account: Option<&str>) -> Result<MemberClients, PortError> {
        match self.members.reach(account).await? {
            MemberReach::Ready(clients) => Ok(clients),
            MemberReach::Held(reason) => Err(PortError::new(
                "AssumeRole",
                ErrorKind::Unavailable,
                format!(
                    "account {} is out of reach: {reason}",
                    account.unwrap_or("(none)")
                ),
            )),
            MemberReach::Gone(reason) => Err(PortError::new(
                "AssumeRole",
                ErrorKind::AccessDenied,
                format!("account {} is gone: {reason}", account.unwrap_or("(none)")),
            )),
        }
    }

    async fn record(&self, event: AutomationStatusEvent) -> Result<ExecutionOutcome, PortError> {
        let now = self.clock.now();
        let known = self.executions.get(&event.execution_id).await?;
        if let Some(row) = &known
            && is_final(&row.status)
            && !is_final(&event.status)
        {
            tracing::info!(recorded = %row.status, metric = "executions.late", "status arrived after the final one; ignored");
            return Ok(ExecutionOutcome::Late {
                execution_id: event.execution_id,
                status: event.status,
            });
        }
        let account = known
            .as_ref()
            .and_then(|row| row.account.clone())
            .or_else(|| event.account.clone());
        let clients = self.member(account.as_deref()).await?;
        let mut row = match known {
            Some(row) => row,
            None => {
                // The row may not be written yet: the execution's own tags say whose it is.
                let tags = clients
                    .automation
                    .tags(&event.region, &event.execution_id)
                    .await?;
                let ours = tags
                    .as_ref()
                    .and_then(|tags| Some((tags.get(TAG_FINDING)?.clone(), tags)));
                let Some((finding_key, tags)) = ours else {
                    tracing::info!(
                        metric = "executions.foreign",
                        "not started by tarem; ignored"
                    );
                    return Ok(ExecutionOutcome::NotOurs {
                        execution_id: event.execution_id,
                    });
                };
                ExecutionRecord {
                    automation_execution_id: event.execution_id.clone(),
                    account: event.account.clone(),
                    ops_item_id: tags.get(TAG_OPS_ITEM).cloned(),
                    finding_key,
                    region: event.region.clone(),
                    document: event.definition.clone(),
                    check_name: None,
                    resource: None,
                    client_token: tags.get(TAG_CLIENT_TOKEN).cloned(),
                    parameters: None,
                    resource_lock: None,
                    status: event.status.clone(),
                    started_at: None,
                    updated_at: format_time(now),
                    expires_at: 0,
                }
            }
        };
        tracing::Span::current().record("findingKey", row.finding_key.as_str());
        let failed = is_final(&event.status) && !is_success(&event.status);
        // Best effort: the failing step and its message enrich the OpsItem and tell a failure
        // that would repeat from one that passes; their absence must not block the outcome.
        let (reason, failure_type) = if failed {
            match clients
                .automation
                .describe(&row.region, &event.execution_id)
                .await
            {
                Ok(Some(info)) => (
                    info.failure_text(),
                    info.failed_step.and_then(|step| step.failure_type),
                ),
                Ok(None) => (None, None),
                Err(error) => {
                    tracing::warn!(%error, "no failure message from GetAutomationExecution");
                    (None, None)
                }
            }
        } else {
            (None, None)
        };
        row.status = event.status.clone();
        row.updated_at = format_time(now);
        row.expires_at = (now + self.config.retention).timestamp();
        self.executions.record_status(&row).await?;
        let outcome = Outcome {
            execution_id: event.execution_id.clone(),
            client_token: row.client_token.clone(),
            status: event.status.clone(),
            region: row.region.clone(),
            document: row.document.clone().or(event.definition.clone()),
            failure: reason.clone(),
            failure_type,
            at: event.time.unwrap_or(now),
            lock: row.resource_lock.clone(),
        };
        let decision = record_outcome(
            super::Stores {
                tracker: &*self.tracker,
                executions: &*self.executions,
                ops_center: &*clients.ops_center,
                locks: &*self.locks,
                clock: &*self.clock,
            },
            &self.config,
            &row.finding_key,
            &outcome,
        )
        .await?;
        // An attempt its episode no longer holds (the episode closed while it ran, and a new
        // one began): the outcome is written on the OpsItem the attempt reported to, and only
        // its automation data, never its status.
        let held = decision.episode.as_ref().is_some_and(|episode| {
            episode.attempts.iter().any(|a| {
                a.execution_id.as_deref() == Some(event.execution_id.as_str())
                    || row
                        .client_token
                        .as_deref()
                        .is_some_and(|t| a.client_token.eq_ignore_ascii_case(t))
            })
        });
        let episode_item = decision
            .episode
            .as_ref()
            .and_then(|e| e.ops_item_id.clone());
        if !held
            && let Some(id) = row
                .ops_item_id
                .as_deref()
                .filter(|id| Some(*id) != episode_item.as_deref())
        {
            let (key, data) = crate::opsitem::automation_data(
                &event.execution_id,
                &row.region,
                outcome.document.as_deref(),
                &event.status,
                reason.as_deref(),
            );
            let update = crate::ports::OpsItemUpdate {
                status: None,
                description: None,
                operational_data: std::collections::BTreeMap::from([(key, data)]),
                delete: vec![],
            };
            super::ignore_missing(clients.ops_center.update(id, &update).await)?;
        }
        let metric = if is_success(&event.status) {
            "automations.succeeded"
        } else if is_final(&event.status) {
            "automations.failed"
        } else {
            "automations.progress"
        };
        let episode = decision.episode.as_ref();
        if let Some(episode) = episode {
            crate::telemetry::mark_episode(episode);
        }
        tracing::info!(state = episode.map(|e| e.stage.name()), why = %decision.why, metric, "automation status recorded");
        Ok(ExecutionOutcome::Recorded {
            execution_id: event.execution_id,
            status: event.status,
            ops_item_id: episode
                .and_then(|e| e.ops_item_id.clone())
                .or(row.ops_item_id),
            ops_item_status: decision.update_ops_item.and_then(|u| u.status),
            state: episode.map(|e| e.stage.name().to_owned()),
            reason,
        })
    }
}
