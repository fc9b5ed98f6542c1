//! A finding whose account cannot be reached: held there until it can, or ended when the account
//! is gone. Nothing is read or written in that account meanwhile (its role would refuse), so the
//! OpsItem is owed, not attempted; one account's trouble never touches another's episodes.

use super::schedule::TAG_RECHECK;
use super::{Decision, Facts, Lifecycle, Need};
use crate::episode::{Episode, Stage};
use crate::finding::{Finding, format_time};
use crate::ports::MemberStanding;

/// The control that holds starts in an account its role does not let the stack into.
pub const MEMBER_ACCOUNT: &str = "member-account";
/// The control that holds starts an account's owner refuses (paused, or a template too old).
pub const MEMBER_GATE: &str = "member";

impl Lifecycle<'_> {
    /// The decision for a row whose account cannot be reached, or `None` when it can.
    pub(super) fn out_of_reach(
        &self,
        current: Option<&Episode>,
        row: &Finding,
        facts: &Facts<'_>,
    ) -> Result<Option<Decision>, Need> {
        Ok(match facts.member.ok_or(Need::Member)? {
            MemberStanding::Ready => None,
            MemberStanding::Gone(reason) => Some(self.account_gone(current, reason)),
            MemberStanding::Held(reason) => Some(self.account_held(current, row, reason)),
        })
    }

    /// The account left the organisation (or is suspended): its open episode ends as gone, kept
    /// for the retention like a fixed one. No OpsItem is written: the account no longer lets
    /// anyone in, and its OpsItems go with it.
    fn account_gone(&self, current: Option<&Episode>, reason: &str) -> Decision {
        let Some(episode) = current.filter(|e| e.stage.is_open()) else {
            return Decision::nothing(current, format!("{reason}; no open episode"));
        };
        let mut next = episode.clone();
        next.stage = Stage::Gone {
            reason: format!("{reason}: the episode ends here, unfixed"),
        };
        next.updated_at = self.now_text();
        next.expires_at = (self.now + self.config.retention).timestamp();
        next.ops_item_owed = false;
        next.check_ops_item = false;
        next.recheck_at = None;
        Decision {
            why: format!("{reason}: the episode ends"),
            episode: Some(next),
            ..Decision::nothing(None, "")
        }
    }

    /// The account's role refuses the stack: a flagged finding's episode is held (a new one
    /// begins held, its OpsItem owed), looked at again within the hour; one whose runbook already
    /// runs keeps its stage (the runbook runs in the account whatever the hub can see). A Green
    /// ends the episode as fixed; its OpsItem there is left as it was.
    fn account_held(&self, current: Option<&Episode>, row: &Finding, reason: &str) -> Decision {
        if !row.resource_status.is_flagged() {
            let mut decision = self.fixed(current, row);
            decision.open_ops_item = None;
            decision.update_ops_item = None;
            if let Some(next) = decision.episode.as_mut() {
                next.check_ops_item = false;
            }
            return decision;
        }
        let mut next = match current {
            Some(episode) if episode.is_episode_of(row) => episode.clone(),
            previous => {
                let mut next = Episode::opened_by(row, previous, &self.now_text());
                next.ops_item_owed = true;
                next
            }
        };
        next.status = row.resource_status;
        let until = self.now + TAG_RECHECK;
        let waiting = match &next.stage {
            Stage::Held {
                control, until: at, ..
            } if control == MEMBER_ACCOUNT => at.as_deref().is_some_and(|at| !self.passed(at)),
            Stage::Flagged { .. } | Stage::Held { .. } => false,
            // A runbook running (or done) there: its stage stands.
            _ => true,
        };
        if !waiting {
            next.stage = Stage::Held {
                control: MEMBER_ACCOUNT.to_owned(),
                reason: format!(
                    "the hub cannot act in account {}: {reason}",
                    row.account_id.as_deref().unwrap_or("(none)")
                ),
                until: Some(format_time(until)),
            };
            next.updated_at = self.now_text();
        }
        Decision {
            why: format!("account out of reach: {reason}"),
            episode: Some(next),
            ..Decision::nothing(None, "")
        }
    }
}
