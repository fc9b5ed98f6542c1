//! Approvals: a person approves an approval-mode episode where they work. In OpsCenter they set
//! the OpsItem's operational data `tarem:approve` to `yes` (the console's "Operational data", or
//! `tarem approve`); OpsCenter sends an "OpsItem Update" event (AWS's sample: Systems Manager
//! user guide, "Amazon EventBridge event examples for Systems Manager", OpsCenter OpsItem update
//! notification), which names the OpsItem, who changed it and when, but not its data: the
//! handler reads the OpsItem, answers on it (`tarem:approval`) and removes the request, so its
//! own update's event finds nothing to do. An approval is recorded on the episode
//! ([`crate::episode::Approval`]) and the episode is looked at at once: the start that follows
//! is the sweep's, under every control ([`crate::lifecycle::approve`]).

use super::{ResultsHandler, TRIES};
use crate::error::PortError;
use crate::lifecycle::{ApprovalAnswer, approve};
use crate::ports::{DATA_APPROVAL, DATA_APPROVE, MemberReach, OpsData, OpsItemUpdate};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The "OpsItem Update" event's detail-type (source `aws.ssm`).
pub const OPS_ITEM_UPDATE: &str = "OpsItem Update";

/// What an "OpsItem Update" event says: which OpsItem, in which account, changed by whom, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsItemUpdated {
    pub account: Option<String>,
    pub ops_item_id: String,
    pub by: String,
    pub at: String,
}

impl OpsItemUpdated {
    /// The event's facts, when it is an OpsItem update.
    pub fn from_event(event: &Value) -> Option<OpsItemUpdated> {
        if event.get("source")?.as_str()? != "aws.ssm"
            || event.get("detail-type")?.as_str()? != OPS_ITEM_UPDATE
        {
            return None;
        }
        let detail = event.get("detail")?;
        let text = |key: &str| detail.get(key).and_then(Value::as_str).map(str::to_owned);
        Some(OpsItemUpdated {
            account: event
                .get("account")
                .and_then(Value::as_str)
                .map(str::to_owned),
            ops_item_id: text("ops-item-id")?,
            by: text("modified-by").unwrap_or_else(|| "(not named by OpsCenter)".into()),
            at: text("modified-time")
                .or_else(|| event.get("time").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_default(),
        })
    }
}

/// What an approval did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Approved {
    /// Nothing asked (an update of anything else, tarem's own answer among them).
    Ignored {
        why: String,
    },
    /// Recorded; `started` when the runbook started at once (else a control holds it, and the
    /// OpsItem says which).
    Approved {
        finding: String,
        started: bool,
    },
    /// Given before; nothing changed.
    Already {
        why: String,
    },
    Refused {
        why: String,
    },
}

/// Whether an operator's `tarem:approve` value asks for the start.
fn asks(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "yes" | "true" | "approve" | "approved"
    )
}

impl ResultsHandler {
    /// An OpsItem changed: if a person asked for its episode's start, answer.
    pub async fn ops_item_updated(&self, update: &OpsItemUpdated) -> Result<Approved, PortError> {
        let clients = match self.members.reach(update.account.as_deref()).await? {
            MemberReach::Ready(clients) => clients,
            MemberReach::Held(why) | MemberReach::Gone(why) => {
                return Ok(Approved::Ignored { why });
            }
        };
        let Some(view) = clients.ops_center.view(&update.ops_item_id).await? else {
            return Ok(Approved::Ignored {
                why: "the OpsItem no longer exists".into(),
            });
        };
        let Some(request) = view.approve.filter(|value| !value.trim().is_empty()) else {
            return Ok(Approved::Ignored {
                why: "no approval asked".into(),
            });
        };
        let answer = match (&view.finding_key, asks(&request)) {
            (None, _) => Approved::Refused {
                why: "not an OpsItem of a tarem finding (no tarem:findingKey)".into(),
            },
            (Some(_), false) => Approved::Refused {
                why: format!("{DATA_APPROVE} is {request:?}: set it to yes to approve"),
            },
            (Some(finding), true) => {
                self.approve(finding, Some(&update.ops_item_id), &update.by, &update.at)
                    .await?
            }
        };
        tracing::info!(opsItem = %update.ops_item_id, by = %update.by, answer = ?answer, metric = "approvals.answered", "an approval answered");
        let (approved, why) = match &answer {
            Approved::Approved { started, .. } => (
                true,
                if *started {
                    "approved: the runbook started".to_owned()
                } else {
                    "approved: the start waits for a control (see tarem:remediation)".to_owned()
                },
            ),
            Approved::Already { why } => (true, why.clone()),
            Approved::Refused { why } | Approved::Ignored { why } => (false, why.clone()),
        };
        let value =
            json!({ "approved": approved, "by": update.by, "at": update.at, "detail": why });
        let answer_update = OpsItemUpdate {
            operational_data: BTreeMap::from([(
                DATA_APPROVAL.to_owned(),
                OpsData {
                    value: value.to_string(),
                    searchable: false,
                },
            )]),
            delete: vec![DATA_APPROVE.to_owned()],
            ..OpsItemUpdate::default()
        };
        super::ignore_missing(
            clients
                .ops_center
                .update(&update.ops_item_id, &answer_update)
                .await,
        )?;
        Ok(answer)
    }

    /// `by`'s approval, at `at`, of the episode of `finding_key` (from its OpsItem
    /// `ops_item_id`, when it came from one): recorded, and the episode looked at at once.
    pub async fn approve(
        &self,
        finding_key: &str,
        ops_item_id: Option<&str>,
        by: &str,
        at: &str,
    ) -> Result<Approved, PortError> {
        for _ in 0..TRIES {
            let Some(episode) = self.executions.get_episode(finding_key).await? else {
                return Ok(Approved::Refused {
                    why: format!("no episode of finding {finding_key}"),
                });
            };
            match approve(&episode, ops_item_id, by, at) {
                ApprovalAnswer::Approved(mut next) => {
                    next.version = episode.version + 1;
                    if !self.executions.put_episode(&next).await? {
                        continue; // another writer moved it: answer against what it is now
                    }
                    self.sweep(None, Some(finding_key)).await?;
                    let after = self.executions.get_episode(finding_key).await?;
                    let started = after.is_some_and(|a| a.attempts.len() > episode.attempts.len());
                    return Ok(Approved::Approved {
                        finding: finding_key.to_owned(),
                        started,
                    });
                }
                ApprovalAnswer::Already(why) => return Ok(Approved::Already { why }),
                ApprovalAnswer::Refused(why) => return Ok(Approved::Refused { why }),
            }
        }
        Ok(Approved::Refused {
            why: format!("the episode changed under {TRIES} approvals in a row; ask again"),
        })
    }
}
