//! automation-execution-handler: an SSM status change reaches the OpsItem of the finding the
//! automation remediates, even when the event beats the execution row (the execution's tags name
//! the OpsItem) or comes from another region.

use super::update_state;
use crate::automation_event::{self, AutomationStatusEvent, EventRejection, is_final, is_success};
use crate::clock::Clock;
use crate::decide::{TAG_CLIENT_TOKEN, TAG_FINDING, TAG_OPS_ITEM, automation_outcome_update};
use crate::error::PortError;
use crate::finding::format_time;
use crate::ports::{Automation, ExecutionRecord, ExecutionStore, OpsCenter, OpsItemStatus};
use crate::replay::{ParkingLot, Target};
use chrono::Duration;
use serde_json::Value;
use std::sync::Arc;
use tracing::Instrument;

pub struct ExecutionHandler {
    pub executions: Arc<dyn ExecutionStore>,
    pub automation: Arc<dyn Automation>,
    pub ops_center: Arc<dyn OpsCenter>,
    pub clock: Arc<dyn Clock>,
    pub execution_retention: Duration,
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
    /// The status reached the execution row and the OpsItem.
    Recorded {
        execution_id: String,
        status: String,
        ops_item_id: String,
        ops_item_status: Option<OpsItemStatus>,
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
    /// status event (this also covers regions whose events never reach the stack).
    pub async fn sweep(&self, stale_after: Duration) -> Result<Vec<ExecutionOutcome>, PortError> {
        let cutoff = format_time(self.clock.now() - stale_after);
        let mut outcomes = vec![];
        for row in self.executions.unfinished(&cutoff).await? {
            let Some(info) = self
                .automation
                .describe(&row.region, &row.automation_execution_id)
                .await?
            else {
                tracing::warn!(execution = %row.automation_execution_id, region = %row.region, "no such execution in SSM");
                continue;
            };
            if !is_final(&info.status) {
                continue;
            }
            let event = AutomationStatusEvent {
                execution_id: row.automation_execution_id.clone(),
                status: info.status,
                definition: Some(info.document),
                region: row.region.clone(),
            };
            outcomes.push(self.record(event).await?);
        }
        tracing::info!(
            resolved = outcomes.len(),
            metric = "reconcile.executions",
            "execution sweep done"
        );
        Ok(outcomes)
    }

    /// `Err` only when a call failed: the Lambda returns a function error so EventBridge retries
    /// and, in the end, the dead-letter queue keeps the event.
    pub async fn handle(&self, event: &Value) -> Result<ExecutionOutcome, PortError> {
        let event = match automation_event::parse(event) {
            Ok(event) => event,
            Err(rejection) => {
                tracing::warn!(reason = %rejection, metric = "executions.rejected", "rejected automation event; parked");
                self.parking
                    .park(
                        Target::AutomationExecutionHandler,
                        event,
                        &rejection.to_string(),
                    )
                    .await?;
                return Ok(ExecutionOutcome::Rejected(rejection));
            }
        };
        let span = tracing::info_span!("execution", id = %event.execution_id, status = %event.status, region = %event.region);
        self.record(event).instrument(span).await
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
        let mut row = match known {
            Some(row) => row,
            None => {
                // The row may not be written yet: the execution's own tags say whose it is.
                let tags = self
                    .automation
                    .tags(&event.region, &event.execution_id)
                    .await?;
                let ours = tags.as_ref().and_then(|tags| {
                    Some((
                        tags.get(TAG_OPS_ITEM)?.clone(),
                        tags.get(TAG_FINDING)?.clone(),
                        tags,
                    ))
                });
                let Some((ops_item_id, finding_key, tags)) = ours else {
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
                    ops_item_id,
                    finding_key,
                    region: event.region.clone(),
                    document: event.definition.clone(),
                    check_name: None,
                    resource: None,
                    client_token: tags.get(TAG_CLIENT_TOKEN).cloned(),
                    parameters: None,
                    status: event.status.clone(),
                    started_at: None,
                    updated_at: format_time(now),
                    expires_at: 0,
                }
            }
        };
        let failed = is_final(&event.status) && !is_success(&event.status);
        let reason = if failed {
            // Best effort: the reason enriches the OpsItem; its absence must not block the outcome.
            match self
                .automation
                .describe(&row.region, &event.execution_id)
                .await
            {
                Ok(info) => info.and_then(|info| info.failure_message),
                Err(error) => {
                    tracing::warn!(%error, "no failure message from GetAutomationExecution");
                    None
                }
            }
        } else {
            None
        };
        let mut update = automation_outcome_update(
            &event.execution_id,
            &row.region,
            row.document.as_deref().or(event.definition.as_deref()),
            &event.status,
            reason.as_deref(),
        );
        // A failure never reopens an OpsItem that is already resolved (Trusted Advisor reported
        // the resource Green meanwhile, or an operator closed it): it only records the outcome.
        if failed
            && self.ops_center.status(&row.ops_item_id).await? == Some(OpsItemStatus::Resolved)
        {
            update.status = None;
        }
        self.ops_center.update(&row.ops_item_id, &update).await?;
        row.status = event.status.clone();
        row.updated_at = format_time(now);
        row.expires_at = (now + self.execution_retention).timestamp();
        self.executions.record_status(&row).await?;
        if is_final(&event.status)
            && let Some(token) = row.client_token.clone()
        {
            let status = event.status.clone();
            let execution_id = event.execution_id.clone();
            update_state(&*self.executions, &row.finding_key, None, move |state| {
                state.attempt_mut(&token).is_some_and(|attempt| {
                    attempt
                        .execution_id
                        .get_or_insert_with(|| execution_id.clone());
                    attempt.status.replace(status.clone()).as_deref() != Some(status.as_str())
                })
            })
            .await?;
        }
        let metric = if is_success(&event.status) {
            "automations.succeeded"
        } else if is_final(&event.status) {
            "automations.failed"
        } else {
            "automations.progress"
        };
        tracing::info!(ops_item = %row.ops_item_id, metric, "automation status recorded");
        Ok(ExecutionOutcome::Recorded {
            execution_id: event.execution_id,
            status: event.status,
            ops_item_id: row.ops_item_id,
            ops_item_status: update.status,
            reason,
        })
    }
}
