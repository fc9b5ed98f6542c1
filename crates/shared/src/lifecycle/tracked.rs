//! The tracker's current row: a Green that fixes the episode, a new episode, a refresh inside one.

use super::{Decision, Facts, Lifecycle, Need, OpsItemWant, attempts_note};
use crate::episode::{Episode, Stage};
use crate::finding::{Finding, format_time};
use crate::opsitem::{Note, ops_item_for, stage_update};
use chrono::DateTime;

impl Lifecycle<'_> {
    pub(super) fn tracked(
        &self,
        current: Option<&Episode>,
        row: &Finding,
        facts: &Facts<'_>,
    ) -> Result<Decision, Need> {
        if !row.resource_status.is_flagged() {
            return Ok(self.fixed(current, row));
        }
        match current {
            Some(episode) if episode.is_episode_of(row) => self.refreshed(episode, row, facts),
            _ => self.begin(current, row, facts),
        }
    }

    /// Trusted Advisor reports the resource Green: the open episode is fixed.
    pub(super) fn fixed(&self, current: Option<&Episode>, row: &Finding) -> Decision {
        let Some(episode) = current.filter(|e| e.stage.is_open()) else {
            return Decision::nothing(current, "Green: no open episode");
        };
        let mut next = episode.clone();
        next.stage = Stage::Fixed {
            at: row.last_updated_time.clone(),
        };
        next.ops_item_owed = false;
        next.updated_at = self.now_text();
        next.expires_at = (self.now + self.config.retention).timestamp();
        let note = Note {
            state: "fixed",
            control: None,
            detail: format!(
                "Trusted Advisor reported the resource Green at {}",
                row.last_updated_time
            ),
            start: None,
            attempts: attempts_note(&next),
        };
        // A runbook ran while its OpsItem was owed: the record is created now, resolved.
        let open_ops_item = (next.ops_item_id.is_none() && !next.attempts.is_empty())
            .then(|| ops_item_for(row, &next, &note, &self.config.ops_item_source));
        let update = (next.ops_item_id.is_some() || open_ops_item.is_some())
            .then(|| stage_update(&next, &note, Some(row)));
        Decision {
            episode: Some(next),
            open_ops_item,
            update_ops_item: update,
            why: note.detail,
            ..Decision::nothing(None, "")
        }
    }

    /// The finding became flagged: a new episode (closing the previous one if its Green never
    /// reached us).
    pub(super) fn begin(
        &self,
        previous: Option<&Episode>,
        row: &Finding,
        facts: &Facts<'_>,
    ) -> Result<Decision, Need> {
        let route = self.route(row, facts)?;
        let mut next = Episode::opened_by(row, previous, &self.now_text());
        let start = self.try_start(&mut next, &route, facts)?;
        let note = self.note(&next, &route, start.as_ref());
        let close_previous = previous
            .filter(|p| p.stage.is_open())
            .and_then(|p| {
                let id = p.ops_item_id.clone()?;
                let mut closed = p.clone();
                closed.stage = Stage::Fixed {
                    at: self.now_text(),
                };
                let note = Note {
                    state: "fixed",
                    control: None,
                    detail: "a new flagged episode began, so Trusted Advisor reported this one fixed in between".into(),
                    start: None,
                    attempts: attempts_note(&closed),
                };
                Some((id, stage_update(&closed, &note, None)))
            });
        let (open_ops_item, no_ops_item) = match self.ops_item_want(row, &route, facts)? {
            OpsItemWant::Yes => (
                Some(ops_item_for(
                    row,
                    &next,
                    &note,
                    &self.config.ops_item_source,
                )),
                None,
            ),
            OpsItemWant::Owed(reason) => {
                next.ops_item_owed = true;
                (None, Some(reason))
            }
            OpsItemWant::No(reason) => (None, Some(reason)),
        };
        Ok(Decision {
            why: format!("new episode; {}", note.detail),
            episode: Some(next),
            close_previous,
            open_ops_item,
            update_ops_item: None,
            start,
            no_ops_item,
        })
    }

    /// A flagged refresh inside the episode.
    pub(super) fn refreshed(
        &self,
        episode: &Episode,
        row: &Finding,
        facts: &Facts<'_>,
    ) -> Result<Decision, Need> {
        let mut next = episode.clone();
        let status_changed = next.status != row.resource_status;
        next.status = row.resource_status;
        // A redelivered record whose claimed start never reached SSM: start it now, same token.
        if let (Stage::Remediating, Some(attempt)) = (&next.stage, next.last_attempt())
            && attempt.execution_id.is_none()
            && !attempt.is_over()
        {
            return self.resume(next, row, facts);
        }
        if let Some(why_failed) = self.failed_verification(&next, row) {
            let route = self.route(row, facts)?;
            let start = self.try_start(&mut next, &route, facts)?;
            let mut note = self.note(&next, &route, start.as_ref());
            note.detail = format!("{why_failed}; {}", note.detail);
            return Ok(Decision {
                update_ops_item: next
                    .ops_item_id
                    .as_ref()
                    .map(|_| stage_update(&next, &note, Some(row))),
                why: note.detail,
                episode: Some(next),
                start,
                ..Decision::nothing(None, "")
            });
        }
        let mut decision = Decision::nothing(Some(&next), "a refresh: nothing to do");
        if status_changed && next.ops_item_id.is_some() {
            let route = self.route(row, facts)?;
            let note = self.note(&next, &route, None);
            decision.update_ops_item = Some(stage_update(&next, &note, Some(row)));
            decision.why = format!("now {}", row.resource_status);
        }
        self.owed_ops_item(&mut decision, row, facts)?;
        Ok(decision)
    }

    /// Why a flagged refresh shows that a successful runbook did not fix the finding.
    pub(super) fn failed_verification(&self, episode: &Episode, row: &Finding) -> Option<String> {
        if !matches!(episode.stage, Stage::Verifying { .. } | Stage::Unconfirmed) {
            return None;
        }
        self.fix_did_not_hold(episode, row)
    }

    /// Why a flagged observation, made after the episode's last runbook ended (plus the grace
    /// Trusted Advisor's data needs), shows that the fix did not hold.
    pub(super) fn fix_did_not_hold(&self, episode: &Episode, row: &Finding) -> Option<String> {
        let ended = episode.last_attempt()?.ended_at?;
        let deadline = ended.saturating_add(self.config.verify_grace.num_seconds());
        (row.time_millis() > deadline.saturating_mul(1000)).then(|| {
            format!(
                "the fix did not hold: Trusted Advisor still reports {} as of {}, after the runbook ended at {}",
                row.resource_status,
                row.last_updated_time,
                DateTime::from_timestamp(ended, 0).map_or_else(String::new, format_time)
            )
        })
    }
}
