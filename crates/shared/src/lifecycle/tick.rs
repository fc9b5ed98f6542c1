//! The sweep's look at an open episode: holds that ended, windows that passed, starts to resume.

use super::{
    Decision, Facts, Lifecycle, Need, OpsItemWant, Outcome, RESUME_AFTER, Start, Withdrawal,
    attempts_note,
};
use crate::automation_event::is_final;
use crate::decide::{Remediation, automation_tags};
use crate::episode::{Attempt, Episode, Stage};
use chrono::Duration;

/// How many in-flight timeouts a runbook SSM still reports running is waited for before the
/// episode is escalated to a person.
pub const IN_FLIGHT_CEILING: i32 = 4;
use crate::finding::Finding;
use crate::opsitem::{Note, ops_item_for, stage_update};
use crate::ports::{OpsItemStatus, StartAutomation};

impl Lifecycle<'_> {
    /// The sweep's look at an open episode: holds that ended, verify windows that passed, starts
    /// that never reached SSM, executions whose status never came, OpsItems owed.
    pub(super) fn tick(
        &self,
        episode: &Episode,
        row: &Finding,
        facts: &Facts<'_>,
    ) -> Result<Decision, Need> {
        let mut next = episode.clone();
        let mut decision = match &episode.stage {
            Stage::Flagged { .. } | Stage::Held { .. } => {
                let route = self.route_approved(row, facts, episode.pending_approval())?;
                let start = self.try_start(&mut next, &route, facts)?;
                if next.stage == episode.stage && start.is_none() {
                    Decision::nothing(Some(episode), "still waiting")
                } else {
                    let note = self.note(&next, &route, start.as_ref());
                    Decision {
                        start,
                        ..Decision::staged(next, note)
                    }
                }
            }
            Stage::Remediating => match episode.last_attempt() {
                Some(attempt)
                    if attempt.execution_id.is_none()
                        && !attempt.is_over()
                        && self.now.timestamp() - attempt.started_at
                            >= RESUME_AFTER.num_seconds() =>
                {
                    self.resume(next, row, facts)?
                }
                Some(attempt)
                    if !attempt.is_over()
                        && self.now.timestamp() - attempt.started_at
                            >= self.config.safety.in_flight_timeout.num_seconds() =>
                {
                    self.past_in_flight_timeout(episode, attempt, row, facts)?
                }
                _ => Decision::nothing(Some(episode), "remediating"),
            },
            Stage::Verifying { until } if self.passed(until) => {
                next.stage = Stage::Unconfirmed;
                next.updated_at = self.now_text();
                let note = Note {
                    state: "unconfirmed",
                    control: None,
                    detail: format!(
                        "the runbook succeeded, not yet confirmed: Trusted Advisor said nothing within {} hours; a later flagged refresh reopens this OpsItem",
                        self.config.verify_window.num_hours()
                    ),
                    start: None,
                    attempts: attempts_note(&next),
                };
                Decision::staged(next, note)
            }
            _ => Decision::nothing(Some(episode), "nothing is waiting"),
        };
        self.owed_ops_item(&mut decision, row, facts)?;
        Ok(decision)
    }

    /// An attempt with no final status past the in-flight timeout: SSM is asked first. Still
    /// running (a runbook with long waits) is waited for, since counting it failed would let the
    /// next attempt run beside it on the same resource, up to four timeouts, then escalated (a
    /// person looks; nothing starts); ended unnoticed (no event, no poll yet) takes SSM's
    /// status as the outcome; unknown to SSM is counted failed.
    fn past_in_flight_timeout(
        &self,
        episode: &Episode,
        attempt: &Attempt,
        row: &Finding,
        facts: &Facts<'_>,
    ) -> Result<Decision, Need> {
        let timeout = self.config.safety.in_flight_timeout;
        let known = match &attempt.execution_id {
            Some(_) => facts.execution.ok_or(Need::ExecutionStatus)?,
            None => None,
        };
        let (status, failure, failure_type, ended) = match known {
            Some(info) if !is_final(&info.status) => {
                let running = Duration::seconds(self.now.timestamp() - attempt.started_at);
                if running < timeout * IN_FLIGHT_CEILING {
                    return Ok(Decision::nothing(
                        Some(episode),
                        format!(
                            "still {} in SSM past the in-flight timeout; waiting for it",
                            info.status
                        ),
                    ));
                }
                let mut next = episode.clone();
                next.stage = Stage::Escalated {
                    reason: format!(
                        "the runbook is still {} in SSM {} hours after its start; a person must look (nothing else starts in this episode)",
                        info.status,
                        running.num_hours()
                    ),
                };
                next.updated_at = self.now_text();
                let note = self.stage_note(&next);
                return Ok(Decision::staged(next, note));
            }
            // SSM's own end time; the sweep's clock only when SSM gives none.
            Some(info) => (
                info.status.clone(),
                info.failure_text(),
                info.failed_step
                    .as_ref()
                    .and_then(|step| step.failure_type.clone()),
                info.end_time.map_or(self.now, |end| end.min(self.now)),
            ),
            None => (
                "TimedOut".to_owned(),
                Some(format!(
                    "no final status {} hours after the start (in-flight timeout); counted as failed",
                    timeout.num_hours()
                )),
                None,
                self.now,
            ),
        };
        let outcome = Outcome {
            execution_id: attempt.execution_id.clone().unwrap_or_default(),
            client_token: Some(attempt.client_token.clone()),
            status,
            region: attempt.region.clone(),
            document: Some(attempt.document.clone()),
            failure,
            failure_type,
            at: ended,
            lock: attempt.lock.clone(),
        };
        Ok(self.outcome(Some(episode), &outcome, Some(row)))
    }

    pub(super) fn passed(&self, until: &str) -> bool {
        crate::finding::parse_time(until).is_none_or(|until| self.now >= until)
    }

    /// An open episode owes its OpsItem: create it now when the budget allows.
    pub(super) fn owed_ops_item(
        &self,
        decision: &mut Decision,
        row: &Finding,
        facts: &Facts<'_>,
    ) -> Result<(), Need> {
        let Some(next) = decision.episode.as_mut() else {
            return Ok(());
        };
        if !next.stage.is_open() || next.ops_item_id.is_some() || decision.open_ops_item.is_some() {
            return Ok(());
        }
        let route = self.route(row, facts)?;
        match self.ops_item_want(row, &route, facts)? {
            OpsItemWant::Yes => {
                next.ops_item_owed = false;
                let note = self.note(next, &route, None);
                decision.open_ops_item =
                    Some(ops_item_for(row, next, &note, &self.config.ops_item_source));
                // OpsItems open as Open; the stage may say otherwise (a runbook already ran).
                if Note::ops_item_status(&next.stage) != OpsItemStatus::Open {
                    decision
                        .update_ops_item
                        .get_or_insert_with(|| stage_update(next, &note, None));
                }
            }
            OpsItemWant::Owed(reason) => {
                next.ops_item_owed = true;
                decision.no_ops_item = Some(reason);
            }
            OpsItemWant::No(reason) => {
                next.ops_item_owed = false;
                decision.no_ops_item = Some(reason);
            }
        }
        Ok(())
    }

    /// The claimed attempt again, with its ClientToken (SSM returns the same execution if the
    /// first call got through). Only while every control still agrees on that very start: the
    /// kill switch on, the mapping automated with the same runbook and region. Otherwise SSM is
    /// only asked whether the first call got through, and if it did not the attempt is withdrawn
    /// and the episode moves to what the controls say now (held, or flagged with the reason).
    pub(super) fn resume(
        &self,
        next: Episode,
        row: &Finding,
        facts: &Facts<'_>,
    ) -> Result<Decision, Need> {
        let Some(attempt) = next.last_attempt().cloned() else {
            return Ok(Decision::nothing(Some(&next), "nothing to resume"));
        };
        // The claimed attempt's own approval, if a person gave one: resuming it is that start.
        let route = self.route_approved(row, facts, next.approval_of_last_attempt())?;
        let same_start = match &route.remediation {
            Remediation::Start(start) => {
                start.document == attempt.document && start.region == attempt.region
            }
            _ => false,
        };
        let still_allowed = same_start && facts.starts_allowed.ok_or(Need::KillSwitch)?;
        // A young claim may still be in its owner's hands (paced, or backing off): only a claim
        // older than any invocation can be withdrawn; until then it is left alone.
        if !still_allowed && self.now.timestamp() - attempt.started_at < RESUME_AFTER.num_seconds()
        {
            return Ok(Decision::nothing(
                Some(&next),
                "a claimed start the controls no longer allow; withdrawn once no invocation can still hold it",
            ));
        }
        let withdraw = if still_allowed {
            None
        } else {
            let mut back = next.clone();
            back.attempts
                .retain(|a| a.client_token != attempt.client_token);
            // What the episode would be had the attempt never been claimed, then the controls'
            // answer now (a start is not taken from here: the next sweep or record decides it).
            back.stage = Stage::Flagged {
                reason: String::new(),
            };
            self.try_start(&mut back, &route, facts)?;
            if matches!(back.stage, Stage::Remediating) {
                back.attempts
                    .retain(|a| a.client_token != attempt.client_token);
                back.stage = Stage::Flagged {
                    reason: route.remediation.describe(),
                };
            }
            back.updated_at = self.now_text();
            let note = self.note(&back, &route, None);
            let why = format!(
                "attempt {} withdrawn before it reached SSM: {}",
                attempt.number, note.detail
            );
            Some(Box::new(Withdrawal {
                update_ops_item: stage_update(&back, &note, None),
                episode: back,
                why,
            }))
        };
        let base = route.remediation.start();
        let request = StartAutomation {
            client_token: attempt.client_token.clone(),
            tags: automation_tags(
                &next.finding_key,
                next.ops_item_id.as_deref(),
                &attempt.client_token,
            ),
            document: attempt.document.clone(),
            region: attempt.region.clone(),
            document_version: base.and_then(|b| b.document_version.clone()),
            parameters: base.map(|b| b.parameters.clone()).unwrap_or_default(),
        };
        Ok(Decision {
            why: if withdraw.is_some() {
                format!(
                    "attempt {} (ClientToken {}) is no longer allowed: asking SSM whether it started",
                    attempt.number, attempt.client_token
                )
            } else {
                format!(
                    "resuming attempt {} (ClientToken {})",
                    attempt.number, attempt.client_token
                )
            },
            episode: Some(next),
            start: Some(Start {
                request,
                resume: true,
                withdraw,
                lock: attempt.lock.clone(),
            }),
            ..Decision::nothing(None, "")
        })
    }
}
