//! An execution's outcome onto its episode.

use super::{Decision, Lifecycle, Outcome, REFUSED, ResolveOn, will_fail_again};
use crate::automation_event::{is_final, is_success};
use crate::episode::{Episode, Stage};
use crate::finding::{Finding, format_time};
use crate::opsitem::{automation_data, stage_update};
use crate::ports::OpsItemUpdate;
use chrono::{DateTime, Duration};
use std::collections::BTreeMap;

impl Lifecycle<'_> {
    /// An execution's outcome, judged against the tracker's current row.
    pub(super) fn outcome(
        &self,
        current: Option<&Episode>,
        outcome: &Outcome,
        row: Option<&Finding>,
    ) -> Decision {
        let (key, data) = automation_data(
            &outcome.execution_id,
            &outcome.region,
            outcome.document.as_deref(),
            &outcome.status,
            outcome.failure.as_deref(),
        );
        // The OpsItem's automation data says what the episode's last attempt is doing: only that
        // attempt's outcomes write it, never an earlier attempt's late one or a stranger's.
        let record_only = |episode: Option<&Episode>, why: &str| Decision {
            update_ops_item: episode
                .and_then(|e| e.ops_item_id.as_ref())
                .map(|_| OpsItemUpdate {
                    status: None,
                    description: None,
                    operational_data: BTreeMap::from([(key.clone(), data.clone())]),
                    delete: vec![],
                }),
            ..Decision::nothing(episode, why)
        };
        let Some(episode) = current else {
            return Decision::nothing(None, "no episode to record the outcome on");
        };
        let index = episode.attempts.iter().position(|a| {
            outcome
                .client_token
                .as_deref()
                .is_some_and(|t| a.client_token.eq_ignore_ascii_case(t))
                || a.execution_id.as_deref() == Some(outcome.execution_id.as_str())
        });
        let Some(index) = index else {
            return Decision::nothing(Some(episode), "an execution this episode did not start");
        };
        let attempt = &episode.attempts[index];
        let is_last = index + 1 == episode.attempts.len();
        if !is_final(&outcome.status) && outcome.status != REFUSED {
            return if is_last && !attempt.is_over() {
                record_only(Some(episode), "still running")
            } else {
                Decision::nothing(Some(episode), "a running status after the attempt's end")
            };
        }
        if attempt.status.as_deref() == Some(outcome.status.as_str()) {
            if !is_last {
                return Decision::nothing(Some(episode), "an earlier attempt's outcome, again");
            }
            // Already applied (a duplicate or retried event): the same OpsItem update again.
            let mut decision = record_only(Some(episode), "outcome already recorded");
            if let Some(update) = decision.update_ops_item.as_mut() {
                let note = self.stage_note(episode);
                let stage = stage_update(episode, &note, None);
                update.status = stage.status;
                update.description = stage.description;
                update.operational_data.extend(stage.operational_data);
            }
            return decision;
        }
        let mut next = episode.clone();
        {
            let attempt = &mut next.attempts[index];
            attempt.status = Some(outcome.status.clone());
            attempt.ended_at = Some(outcome.at.timestamp());
            attempt.failure = outcome.failure.clone();
            if attempt.execution_id.is_none() && !outcome.execution_id.is_empty() {
                attempt.execution_id = Some(outcome.execution_id.clone());
            }
        }
        if !is_last || next.stage != Stage::Remediating {
            // A late outcome (the episode moved on, or was fixed): recorded, never reopening.
            let why = "recorded; the episode has moved on";
            let said = if is_last {
                record_only(Some(episode), why)
            } else {
                Decision::nothing(Some(episode), why)
            };
            return Decision {
                episode: Some(next),
                ..said
            };
        }
        let attempt = next.attempts[index].clone();
        next.updated_at = self.now_text();
        // A success the tracker already contradicts: Trusted Advisor flagged the resource again
        // after the runbook ended (its Red arrived before this outcome).
        let did_not_hold = is_success(&outcome.status)
            .then(|| row.filter(|row| row.resource_status.is_flagged() && next.is_episode_of(row)))
            .flatten()
            .and_then(|row| self.fix_did_not_hold(&next, row));
        if is_success(&outcome.status) && did_not_hold.is_none() {
            next.stage = match self.config.resolve_on {
                ResolveOn::Verified => Stage::Verifying {
                    until: format_time(outcome.at + self.config.verify_window),
                },
                ResolveOn::Success => Stage::Unconfirmed,
            };
        } else if let Some(why) = did_not_hold
            .is_none()
            .then(|| {
                will_fail_again(
                    &outcome.status,
                    outcome.failure_type.as_deref(),
                    outcome.failure.as_deref(),
                )
            })
            .flatten()
        {
            next.stage = Stage::Escalated {
                reason: format!(
                    "remediation cannot fix this as it stands: attempt {} ended {}{}; {why}, so it would fail again the same way; a person must",
                    attempt.number,
                    outcome.status,
                    outcome
                        .failure
                        .as_deref()
                        .map(|f| format!(" ({f})"))
                        .unwrap_or_default()
                ),
            };
        } else if next.attempts.len() >= attempt.max_attempts as usize {
            next.stage = Stage::Escalated {
                reason: match &did_not_hold {
                    Some(why) => format!(
                        "remediation did not fix this: {why}; {} of {} attempts made; a person must",
                        next.attempts.len(),
                        attempt.max_attempts
                    ),
                    None => format!(
                        "remediation did not fix this: {} of {} attempts failed (the last: {}); a person must",
                        next.attempts.len(),
                        attempt.max_attempts,
                        outcome.status
                    ),
                },
            };
        } else {
            let until = DateTime::from_timestamp(attempt.started_at, 0).unwrap_or(self.now)
                + Duration::minutes(attempt.cool_down_minutes);
            let what = match &did_not_hold {
                Some(why) => format!("attempt {} succeeded but {why}", attempt.number),
                None => format!(
                    "attempt {} ended {}{}",
                    attempt.number,
                    outcome.status,
                    outcome
                        .failure
                        .as_deref()
                        .map(|f| format!(" ({f})"))
                        .unwrap_or_default()
                ),
            };
            next.stage = Stage::Held {
                control: "cool-down".into(),
                reason: format!("{what}; the next attempt waits for the cool-down"),
                until: Some(format_time(until.max(self.now))),
            };
        }
        let note = self.stage_note(&next);
        let mut update = stage_update(&next, &note, None);
        update.operational_data.insert(key, data);
        Decision {
            why: note.detail,
            update_ops_item: next.ops_item_id.as_ref().map(|_| update),
            episode: Some(next),
            ..Decision::nothing(None, "")
        }
    }
}
