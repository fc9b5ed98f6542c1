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

/// Where an approval came from: the OpsItem it was given on, and that OpsItem's account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovedOn<'a> {
    pub ops_item_id: &'a str,
    /// `None`: the stack's own.
    pub account: Option<&'a str>,
}

/// The answer to `by`'s approval at `at` (RFC 3339), given on `on`, of `episode`, whose account
/// is `episode_account` (its own, or the stack's when it names none).
pub fn approve(
    episode: &Episode,
    episode_account: Option<&str>,
    on: ApprovedOn<'_>,
    by: &str,
    at: &str,
) -> ApprovalAnswer {
    // Only the episode's own OpsItem approves it: the one in its account, of this episode.
    if on.account != episode_account {
        return ApprovalAnswer::Refused(format!(
            "this OpsItem is in account {}, the finding in {}",
            on.account.unwrap_or("(the stack's own)"),
            episode_account.unwrap_or("(the stack's own)")
        ));
    }
    match episode.ops_item_id.as_deref() {
        Some(own) if own == on.ops_item_id => {}
        Some(own) => {
            return ApprovalAnswer::Refused(format!(
                "this OpsItem belongs to an earlier episode of the finding; its current one is {own}"
            ));
        }
        None => {
            return ApprovalAnswer::Refused(
                "the finding's episode has no OpsItem yet; this one is not its".into(),
            );
        }
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
            match episode.approval_of_last_attempt() {
                // The approval that started it, asked again (a second click, a retried event).
                Some(approval) => ApprovalAnswer::Already(format!(
                    "attempt {started} already started, approved by {} at {}; the episode is {}",
                    approval.by,
                    approval.at,
                    episode.stage.name()
                )),
                None => ApprovalAnswer::Refused(format!(
                    "attempt {started} already started; the episode is {}",
                    episode.stage.name()
                )),
            }
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
