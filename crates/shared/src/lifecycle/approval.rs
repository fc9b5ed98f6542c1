//! A person's approval of an approval-mode episode (from its OpsItem, or `tarem approve`): pure.
//! An approval is for one start, the episode's next; the start that follows is the same paced,
//! capped, ClientToken-guarded start as an automated one, under every control (the route treats
//! the approved episode as automated: [`super::Lifecycle::route_approved`]). An approval for an
//! episode that has moved on is refused, and says why.

use crate::episode::{Approval, Episode, Stage};

/// What an approval does to an episode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalAnswer {
    /// Recorded: the episode's next start may go ahead (the sweep's look, at once).
    Approved(Box<Episode>),
    /// The same approval again (a retried event, a second click): nothing changes.
    Already(String),
    /// The episode is not waiting for an approval; nothing changes.
    Refused(String),
}

/// The hold an approval lifts.
pub const APPROVAL_CONTROL: &str = "approval";

/// The answer to `by`'s approval of `episode`'s OpsItem `ops_item_id` at `at` (RFC 3339).
pub fn approve(episode: &Episode, ops_item_id: Option<&str>, by: &str, at: &str) -> ApprovalAnswer {
    if let (Some(given), Some(own)) = (ops_item_id, episode.ops_item_id.as_deref())
        && given != own
    {
        return ApprovalAnswer::Refused(format!(
            "this OpsItem belongs to an earlier episode of the finding; its current one is {own}"
        ));
    }
    if let Some(approval) = episode.pending_approval() {
        return ApprovalAnswer::Already(format!(
            "already approved by {} at {}",
            approval.by, approval.at
        ));
    }
    let started = episode.attempts.len();
    match &episode.stage {
        Stage::Held { control, .. } if control == APPROVAL_CONTROL => {
            let mut next = episode.clone();
            next.approval = Some(Approval {
                by: by.to_owned(),
                at: at.to_owned(),
                attempt: started,
            });
            ApprovalAnswer::Approved(Box::new(next))
        }
        Stage::Held {
            control, reason, ..
        } => ApprovalAnswer::Refused(format!(
            "held by the {control} control, not waiting for an approval: {reason}"
        )),
        Stage::Remediating | Stage::Verifying { .. } | Stage::Unconfirmed => {
            let by_whom = episode
                .approval
                .as_ref()
                .filter(|a| a.attempt + 1 == started)
                .map(|a| format!(", approved by {} at {}", a.by, a.at))
                .unwrap_or_default();
            ApprovalAnswer::Refused(format!(
                "attempt {started} already started{by_whom}; the episode is {}",
                episode.stage.name()
            ))
        }
        Stage::Fixed { at } => ApprovalAnswer::Refused(format!(
            "the finding is fixed: Trusted Advisor reported it Green at {at}"
        )),
        Stage::Escalated { reason } => ApprovalAnswer::Refused(format!(
            "the episode is escalated ({reason}): approving does not start it again; a person must act"
        )),
        Stage::Flagged { reason } => {
            ApprovalAnswer::Refused(format!("no remediation applies to it: {reason}"))
        }
        Stage::Gone { reason } => ApprovalAnswer::Refused(format!("the episode is over: {reason}")),
    }
}
