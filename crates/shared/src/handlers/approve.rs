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
use crate::lifecycle::{ApprovalAnswer, ApprovedOn, approve};
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
    /// An OpsItem changed: if a person asked for its episode's start, answer. The answer is
    /// written (and the request removed) before anything starts: a request still on the OpsItem
    /// never meets a started episode, so a retried event or tarem's own later update can never
    /// take it for the next attempt's approval.
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
        let on = ApprovedOn {
            ops_item_id: &update.ops_item_id,
            account: update
                .account
                .as_deref()
                .or(self.config.safety.home_account.as_deref()),
        };
        let answer = match (&view.finding_key, asks(&request)) {
            (None, _) => {
                Answer::Refused("not an OpsItem of a tarem finding (no tarem:findingKey)".into())
            }
            (Some(_), false) => Answer::Refused(format!(
                "{DATA_APPROVE} is {request:?}: set it to yes to approve"
            )),
            (Some(finding), true) => {
                self.record_approval(finding, on, &update.by, &update.at)
                    .await?
            }
        };
        tracing::info!(opsItem = %update.ops_item_id, by = %update.by, answer = ?answer, metric = "approvals.answered", "an approval answered");
        let (approved, why) = match &answer {
            Answer::Recorded(_) => (
                true,
                "approved: the start follows under every control (tarem:remediation says what happened)"
                    .to_owned(),
            ),
            Answer::Already(_, why) => (true, why.clone()),
            Answer::Refused(why) => (false, why.clone()),
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
        Ok(match answer {
            Answer::Recorded(finding) => {
                let started = self.look_now(&finding).await?;
                Approved::Approved { finding, started }
            }
            Answer::Already(finding, why) => {
                // A look too: an approved start a failure left waiting goes now.
                if let Some(finding) = finding {
                    self.look_now(&finding).await?;
                }
                Approved::Already { why }
            }
            Answer::Refused(why) => Approved::Refused { why },
        })
    }

    /// The episode's approval written (retried against what it is now when another writer got
    /// there first).
    async fn record_approval(
        &self,
        finding_key: &str,
        on: ApprovedOn<'_>,
        by: &str,
        at: &str,
    ) -> Result<Answer, PortError> {
        let home = self.config.safety.home_account.as_deref();
        for _ in 0..TRIES {
            let Some(episode) = self.executions.get_episode(finding_key).await? else {
                return Ok(Answer::Refused(format!(
                    "no episode of finding {finding_key}"
                )));
            };
            let account = episode.account.as_deref().or(home);
            match approve(&episode, account, on, by, at) {
                ApprovalAnswer::Approved(mut next) => {
                    next.version = episode.version + 1;
                    if self.executions.put_episode(&next).await? {
                        return Ok(Answer::Recorded(finding_key.to_owned()));
                    }
                }
                ApprovalAnswer::Already(why) => {
                    let pending = episode.pending_approval().is_some();
                    return Ok(Answer::Already(
                        pending.then(|| finding_key.to_owned()),
                        why,
                    ));
                }
                ApprovalAnswer::Refused(why) => return Ok(Answer::Refused(why)),
            }
        }
        Ok(Answer::Refused(format!(
            "the episode changed under {TRIES} approvals in a row; ask again"
        )))
    }

    /// The episode looked at now, as the sweep would; whether a runbook started.
    async fn look_now(&self, finding_key: &str) -> Result<bool, PortError> {
        let before = self
            .executions
            .get_episode(finding_key)
            .await?
            .map_or(0, |e| e.attempts.len());
        self.sweep(None, Some(finding_key)).await?;
        let after = self.executions.get_episode(finding_key).await?;
        Ok(after.is_some_and(|a| a.attempts.len() > before))
    }
}

/// What an approval did to the episode, before the OpsItem is answered.
#[derive(Debug)]
enum Answer {
    /// Recorded on the episode of this finding.
    Recorded(String),
    /// Given before (the finding, when its approved start is still to come).
    Already(Option<String>, String),
    Refused(String),
}
