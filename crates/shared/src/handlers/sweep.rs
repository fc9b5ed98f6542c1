//! The episode sweep (results-handler, on the stack's schedule): every open episode is looked at
//! again through the same decision, so that nothing waits on another event to arrive: holds
//! that ended start (cool-down passed, kill switch back on, breaker window turned, a mapping
//! switched to automated), verify windows that passed resolve, starts that never reached SSM
//! resume, executions whose status never came time out, owed OpsItems are created, and a Green
//! the stream never brought closes its episode.
//!
//! Each episode is handled on its own: one that fails is logged and parked (a payload naming the
//! finding, which `tarem dlq replay` sends back to the results handler), the rest go on. The
//! sweep pages through the table and stops cleanly before the invocation's deadline, leaving a
//! cursor where the next run continues.

use super::results::{Failure, Pass, ResultsHandler, finding_span};
use super::start::time_left;
use crate::episode::{Episode, episode_key};
use crate::error::PortError;
use crate::ports::Target;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use tracing::Instrument;

/// Episodes read per page.
pub const PAGE: usize = 100;

/// What one sweep run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Open episodes looked at.
    pub episodes: usize,
    /// Episodes whose stage changed, as `<finding key>: <from> → <to>`.
    pub moved: Vec<String>,
    /// Episodes that failed, with why (parked).
    pub failed: Vec<String>,
    /// Stopped before the deadline; the next run continues from the cursor.
    pub stopped_early: bool,
}

/// The scheduled payload that asks the sweep to look at one finding (what a parked sweep
/// failure holds).
pub fn one_finding_payload(finding_key: &str) -> Value {
    json!({
        "source": "aws.events",
        "detail-type": "Scheduled Event",
        "detail": { "taremSweep": { "findingKey": finding_key } },
    })
}

/// The finding a scheduled payload names, if it names one.
pub fn finding_named(payload: &Value) -> Option<&str> {
    payload
        .pointer("/detail/taremSweep/findingKey")
        .and_then(Value::as_str)
}

impl ResultsHandler {
    /// One sweep run (module docs). `Err` only when the table cannot be read at all (the
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
                self.sweep_one(&episode, &mut pass, &mut report).await;
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
        let mut cursor = self.executions.sweep_cursor().await?;
        loop {
            let page = self
                .executions
                .open_episodes(cursor.as_deref(), PAGE)
                .await?;
            for episode in &page.episodes {
                if !time_left(&*self.clock, deadline) {
                    // Continue after the last episode handled.
                    self.executions.set_sweep_cursor(cursor.as_deref()).await?;
                    report.stopped_early = true;
                    tracing::info!(
                        episodes = report.episodes,
                        "sweep stopped before the deadline; continues next run"
                    );
                    return Ok(report);
                }
                self.sweep_one(episode, &mut pass, &mut report).await;
                cursor = Some(episode_key(&episode.finding_key));
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        self.executions.set_sweep_cursor(None).await?;
        tracing::info!(
            episodes = report.episodes,
            moved = report.moved.len(),
            failed = report.failed.len(),
            metric = "episodes.swept",
            "episode sweep done"
        );
        Ok(report)
    }

    async fn sweep_one(&self, episode: &Episode, pass: &mut Pass, report: &mut SweepReport) {
        report.episodes += 1;
        let result = async {
            let Some(row) = self
                .tracker
                .get(&episode.finding_key, &episode.resource)
                .await?
            else {
                return Ok(None);
            };
            let span = finding_span(&row);
            let mut steps = vec![];
            self.settle(&row, true, &mut steps, pass)
                .instrument(span)
                .await?;
            Ok::<_, Failure>(Some(
                self.executions.get_episode(&episode.finding_key).await?,
            ))
        }
        .await;
        match result {
            Ok(after) => {
                if let Some(after) = after.flatten()
                    && after.stage.name() != episode.stage.name()
                {
                    report.moved.push(format!(
                        "{}: {} → {}",
                        episode.finding_key,
                        episode.stage.name(),
                        after.stage.name()
                    ));
                }
            }
            Err(Failure::Retry(reason) | Failure::Park(reason)) => {
                // Logged and parked; the sweep goes on with the next episode.
                tracing::error!(finding = %episode.finding_key, %reason, metric = "episodes.sweep_failed", "sweep could not handle an episode; parked");
                report
                    .failed
                    .push(format!("{}: {reason}", episode.finding_key));
                let parked = super::park(
                    &*self.parking,
                    Target::ResultsHandler,
                    &one_finding_payload(&episode.finding_key),
                    &reason,
                )
                .await;
                if let Err(error) = parked {
                    tracing::error!(%error, "could not park the episode either; the next sweep tries again");
                }
            }
        }
    }
}
