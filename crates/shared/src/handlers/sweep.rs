//! The episode sweep (results-handler, on the stack's schedule). Nothing waits on another event,
//! and the work grows with what is due, not with what is open:
//!
//! - **Due episodes**, from the sparse due index (`dueAt` ≤ now): holds that ended start,
//!   verify windows that passed resolve, starts that never reached SSM resume, executions whose
//!   status never came time out, owed OpsItems are created, OpsItems are checked against their
//!   episode ([`crate::lifecycle::schedule`]). An idle open episode is never read.
//! - **Tracker changes not yet applied**, from the tracker's sparse settle index: every tracker
//!   write is checked once, a sweep later, so a change whose stream record was parked (a first
//!   Red whose every retry failed, say) is found and acted on, and its mark cleared.
//! - **Mapping changes**: the mapping table's fingerprints (each item, and the stack's
//!   allowlists) against the last run's; a changed check's flagged rows, from the tracker's
//!   flagged index, are looked at again (a mapping added, fixed or switched to automated).
//! - **Once, after an upgrade**: episodes and tracker rows written before these indexes are
//!   scheduled, and put in the pending part of the tracker's work index (a Scan, page by page,
//!   across runs).
//!
//! Each episode is handled on its own: one that fails is logged and parked (a payload naming the
//! finding, which `tarem dlq replay` sends back to the results handler), the rest go on. The
//! sweep stops cleanly before the invocation's deadline; what it did not reach is still due.

use super::common::{Failure, Pass, finding_span, one_finding_payload, time_left};
use super::results::ResultsHandler;
use crate::episode::Episode;
use crate::error::PortError;
use crate::finding::Finding;
use crate::lifecycle::{SWEEP_PERIOD, schedule};
use crate::ports::{DUE_SHARDS, RowKey, SweepState, Target};
use chrono::{DateTime, Utc};
use serde::Serialize;

use std::collections::{BTreeMap, HashSet};
use tracing::Instrument;

/// Items read per page.
pub const PAGE: usize = 100;

/// What one sweep run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Episodes looked at.
    pub episodes: usize,
    /// Tracker rows whose change was checked.
    pub settled: usize,
    /// Checks whose mapping changed, looked at again.
    pub mappings_changed: Vec<String>,
    /// Episodes whose stage changed, as `<finding key>: <from> → <to>`.
    pub moved: Vec<String>,
    /// Episodes that failed, with why (parked).
    pub failed: Vec<String>,
    /// Stopped before the deadline; what it did not reach is still due.
    pub stopped_early: bool,
}

impl ResultsHandler {
    /// One sweep run (module docs). `Err` only when an index cannot be read at all (the
    /// schedule's invocation is retried).
    pub async fn sweep(
        &self,
        deadline: Option<DateTime<Utc>>,
        only: Option<&str>,
    ) -> Result<SweepReport, PortError> {
        let mut report = SweepReport::default();
        let mut pass = Pass::new(deadline);
        if let Some(finding_key) = only {
            if let Some(episode) = self.executions.get_episode(finding_key).await? {
                self.sweep_one(
                    &episode.finding_key,
                    &episode.resource,
                    &mut pass,
                    &mut report,
                )
                .await;
            }
            return Ok(report);
        }
        // Read once per sweep, so a kill switch left off is counted every 15 minutes (its alarm
        // says for how long); a failed read is only a missed count. Each start reads it again.
        match self.kill_switch.starts_allowed().await {
            Ok(false) => crate::telemetry::count(crate::telemetry::KILL_SWITCH_OFF),
            Ok(true) => {}
            Err(error) => tracing::warn!(%error, "could not read the kill switch for the sweep"),
        }
        let mut state = self.executions.sweep_state().await?;
        let before = state.clone();
        let mut seen = HashSet::new();
        // What is due first; the one-time migration and a mapping change's re-evaluation, which
        // can be long, after it, resumed by the next run when the deadline comes.
        let finished = self.due(&mut seen, &mut pass, &mut report).await?
            && self.pending(&mut pass, &mut report).await?
            && self
                .migrate(&mut state, &mut seen, &mut pass, &mut report)
                .await?
            && self
                .mapping_changes(&mut state, &mut seen, &mut pass, &mut report)
                .await?;
        if state != before {
            self.executions.set_sweep_state(&state).await?;
        }
        report.stopped_early = !finished;
        tracing::info!(
            episodes = report.episodes,
            settled = report.settled,
            moved = report.moved.len(),
            failed = report.failed.len(),
            stopped_early = report.stopped_early,
            metric = "episodes.swept",
            "episode sweep done"
        );
        Ok(report)
    }

    /// The due episodes, shard by shard, page by page. `false` when the deadline stopped it.
    async fn due(
        &self,
        seen: &mut HashSet<String>,
        pass: &mut Pass,
        report: &mut SweepReport,
    ) -> Result<bool, PortError> {
        let now = self.clock.now().timestamp();
        for shard in 0..DUE_SHARDS {
            let mut after = None;
            loop {
                let page = self
                    .executions
                    .due_episodes(shard, now, after.as_deref(), PAGE)
                    .await?;
                for due in &page.items {
                    if !time_left(&*self.clock, pass.deadline) {
                        return Ok(false);
                    }
                    if seen.insert(due.finding_key.clone()) {
                        self.sweep_one(&due.finding_key, &due.resource, pass, report)
                            .await;
                    }
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        Ok(true)
    }

    /// The tracker changes whose settle check is due. `false` when the deadline stopped it.
    async fn pending(&self, pass: &mut Pass, report: &mut SweepReport) -> Result<bool, PortError> {
        let now = self.clock.now().timestamp();
        for shard in 0..DUE_SHARDS {
            let mut after = None;
            loop {
                let page = self
                    .tracker
                    .pending(shard, now, after.as_deref(), PAGE)
                    .await?;
                for key in &page.items {
                    if !time_left(&*self.clock, pass.deadline) {
                        return Ok(false);
                    }
                    self.settle_pending(key, pass, report).await;
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        Ok(true)
    }

    /// A tracker change checked: acted on as its stream record would have been (a no-op when it
    /// was), then its mark cleared.
    async fn settle_pending(&self, key: &RowKey, pass: &mut Pass, report: &mut SweepReport) {
        report.settled += 1;
        let result = async {
            let Some(row) = self.tracker.get(&key.hash_key, &key.resource).await? else {
                return Ok::<_, Failure>(());
            };
            let mut steps = vec![];
            self.settle(&row, false, &mut steps, pass)
                .instrument(finding_span(&row))
                .await?;
            self.tracker.settled(&row).await?;
            Ok(())
        }
        .await;
        if let Err(Failure::Retry(reason) | Failure::Park(reason)) = result {
            self.sweep_failed(&key.hash_key, &reason, report).await;
        }
    }

    /// Checks whose mapping changed since the last run: their flagged rows are looked at again.
    /// A check's fingerprint is kept only once all its rows were, so a run stopped by its
    /// deadline resumes it. `false` when the deadline stopped it.
    async fn mapping_changes(
        &self,
        state: &mut SweepState,
        seen: &mut HashSet<String>,
        pass: &mut Pass,
        report: &mut SweepReport,
    ) -> Result<bool, PortError> {
        let stack = crate::finding::short_hash(&format!("{:?}", self.config));
        let current: BTreeMap<String, String> = self
            .mappings
            .fingerprints()
            .await
            .map_err(|error| PortError::new("Scan", error.kind, error.message))?
            .into_iter()
            .map(|(check, item)| {
                (
                    check,
                    crate::finding::short_hash(&format!("{item}|{stack}")),
                )
            })
            .collect();
        let changed: Vec<String> = current
            .iter()
            .filter(|(check, fingerprint)| state.fingerprints.get(*check) != Some(fingerprint))
            .map(|(check, _)| check.clone())
            .chain(
                state
                    .fingerprints
                    .keys()
                    .filter(|check| !current.contains_key(*check))
                    .cloned(),
            )
            .collect();
        let accounts: Vec<Option<String>> = match &self.config.safety.governed_accounts {
            Some(accounts) => accounts.iter().cloned().map(Some).collect(),
            None => vec![None],
        };
        for check in changed {
            for account in &accounts {
                for key in self
                    .tracker
                    .flagged_keys(account.as_deref(), &check)
                    .await?
                {
                    if !time_left(&*self.clock, pass.deadline) {
                        return Ok(false);
                    }
                    if seen.insert(key.hash_key.clone()) {
                        self.sweep_one(&key.hash_key, &key.resource, pass, report)
                            .await;
                    }
                }
            }
            tracing::info!(check = %check, metric = "episodes.mapping_changed", "mapping changed: its findings looked at again");
            report.mappings_changed.push(check.clone());
            match current.get(&check) {
                Some(fingerprint) => state.fingerprints.insert(check, fingerprint.clone()),
                None => state.fingerprints.remove(&check),
            };
        }
        Ok(true)
    }

    /// Once after an upgrade: open episodes written before the due index are scheduled, and
    /// flagged rows written before the flagged index are indexed and checked. `false` while it
    /// has more to do (the deadline stopped it).
    async fn migrate(
        &self,
        state: &mut SweepState,
        seen: &mut HashSet<String>,
        pass: &mut Pass,
        report: &mut SweepReport,
    ) -> Result<bool, PortError> {
        while !state.migrated_episodes {
            let page = self
                .executions
                .open_episodes(state.migration_cursor.as_deref(), PAGE)
                .await?;
            for episode in &page.episodes {
                if !time_left(&*self.clock, pass.deadline) {
                    return Ok(false);
                }
                if seen.insert(episode.finding_key.clone()) {
                    self.sweep_one(&episode.finding_key, &episode.resource, pass, report)
                        .await;
                }
            }
            state.migration_cursor = page.next;
            state.migrated_episodes = state.migration_cursor.is_none();
        }
        while !state.migrated_tracker {
            let page = self
                .tracker
                .unindexed(state.migration_cursor.as_deref(), PAGE)
                .await?;
            // Pending now: the pending pass (this run's next, or the next run's) checks each.
            let now = self.clock.now().timestamp();
            for row in &page.items {
                if !time_left(&*self.clock, pass.deadline) {
                    return Ok(false);
                }
                self.tracker.mark_pending(row, now).await?;
            }
            state.migration_cursor = page.next;
            state.migrated_tracker = state.migration_cursor.is_none();
        }
        Ok(true)
    }

    /// One episode looked at with the tracker's current row; afterwards it is never left due
    /// (a look that decided nothing moves its next look a sweep on).
    async fn sweep_one(
        &self,
        finding_key: &str,
        resource: &str,
        pass: &mut Pass,
        report: &mut SweepReport,
    ) {
        report.episodes += 1;
        let result = async {
            let before = self.executions.get_episode(finding_key).await?;
            let row = self.tracker.get(finding_key, resource).await?;
            if let Some(row) = &row {
                let mut steps = vec![];
                self.settle(row, true, &mut steps, pass)
                    .instrument(finding_span(row))
                    .await?;
            }
            let after = self.executions.get_episode(finding_key).await?;
            if let Some(after) = &after {
                self.reschedule(after, row.as_ref()).await?;
            }
            Ok::<_, Failure>((before, after))
        }
        .await;
        match result {
            Ok((Some(before), Some(after))) if after.stage.name() != before.stage.name() => {
                report.moved.push(format!(
                    "{finding_key}: {} → {}",
                    before.stage.name(),
                    after.stage.name()
                ));
            }
            Ok(_) => {}
            Err(Failure::Retry(reason) | Failure::Park(reason)) => {
                self.sweep_failed(finding_key, &reason, report).await;
            }
        }
    }

    /// An episode whose schedule is stale (written before the due index, or a look that decided
    /// nothing) gets its next look; one with no row left waits for nothing.
    async fn reschedule(&self, episode: &Episode, row: Option<&Finding>) -> Result<(), Failure> {
        let now = self.clock.now();
        let mut next = episode.clone();
        if row.is_none() {
            next.due_at = None;
            next.recheck_at = None;
        } else {
            schedule(&mut next, self.config.safety.in_flight_timeout, now);
            if next.due_at.is_some_and(|due| due <= now.timestamp()) {
                next.recheck_at = Some((now + SWEEP_PERIOD).timestamp());
                schedule(&mut next, self.config.safety.in_flight_timeout, now);
            }
        }
        if next.due_at != episode.due_at || next.recheck_at != episode.recheck_at {
            next.version += 1;
            // Lost to another writer: that write scheduled it.
            self.executions.put_episode(&next).await?;
        }
        Ok(())
    }

    /// Logged and parked; the sweep goes on with the next one.
    async fn sweep_failed(&self, finding_key: &str, reason: &str, report: &mut SweepReport) {
        tracing::error!(finding = %finding_key, %reason, metric = "episodes.sweep_failed", "sweep could not handle an episode; parked");
        report.failed.push(format!("{finding_key}: {reason}"));
        let parked = super::park(
            &*self.parking,
            Target::ResultsHandler,
            &one_finding_payload(finding_key),
            reason,
        )
        .await;
        if let Err(error) = parked {
            tracing::error!(%error, "could not park the episode either; the next sweep tries again");
        }
    }
}
