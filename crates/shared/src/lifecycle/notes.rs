//! What the OpsItem says about an episode, stage by stage.

use super::{Lifecycle, ResolveOn, Route, Start, attempts_note};
use crate::episode::{Episode, Stage};
use crate::opsitem::Note;

impl Lifecycle<'_> {
    /// The OpsItem note for an episode that just took a route.
    pub(super) fn note(&self, episode: &Episode, route: &Route, start: Option<&Start>) -> Note {
        let mut note = self.stage_note(episode);
        note.start = start
            .map(|s| s.request.clone())
            .or_else(|| route.remediation.start().cloned());
        if matches!(episode.stage, Stage::Remediating) {
            note.attempts = Some((episode.attempts.len(), route.max_attempts));
        }
        note
    }

    /// The OpsItem note for an episode's stage alone.
    pub(super) fn stage_note(&self, episode: &Episode) -> Note {
        let (control, detail) = match &episode.stage {
            Stage::Flagged { reason } => (None, reason.clone()),
            Stage::Held {
                control,
                reason,
                until,
            } => (
                Some(control.clone()),
                match until {
                    Some(until) => format!("{reason}; next possible at {until}"),
                    None => reason.clone(),
                },
            ),
            Stage::Remediating => (
                None,
                episode.last_attempt().map_or_else(String::new, |a| {
                    format!(
                        "attempt {} of {}: {} in {}",
                        a.number, a.max_attempts, a.document, a.region
                    )
                }),
            ),
            Stage::Verifying { until } => (
                None,
                format!(
                    "runbook succeeded; waiting for Trusted Advisor to confirm (until {until})"
                ),
            ),
            Stage::Unconfirmed => (
                None,
                match self.config.resolve_on {
                    ResolveOn::Success => "the runbook succeeded (resolved on success; a later flagged refresh reopens this OpsItem)".into(),
                    ResolveOn::Verified => "the runbook succeeded, not yet confirmed by Trusted Advisor".into(),
                },
            ),
            Stage::Escalated { reason } | Stage::Gone { reason } => (None, reason.clone()),
            Stage::Fixed { at } => (
                None,
                format!("Trusted Advisor reported the resource Green at {at}"),
            ),
        };
        Note {
            state: episode.stage.name(),
            control,
            detail,
            start: None,
            attempts: attempts_note(episode),
        }
    }
}
