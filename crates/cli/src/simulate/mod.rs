//! `tarem simulate`: the whole remediation loop on the embedded in-memory backend.
//!
//! Each Trusted Advisor event goes through check-tracker; the tracker stream records it wrote go
//! through results-handler as one batch; every automation that started ends with the outcome
//! chosen for its document (default Success) and its status event goes through
//! automation-execution-handler. The same handler code runs in Lambda. The stack's schedules run
//! on the simulated clock as the events' times pass (the episode sweep every 15 minutes, the
//! execution sweep with it), and after the last event the clock runs on until nothing waits on
//! time (at most `--settle`, 48 hours by default), so the output is the end state.

mod accounts;
mod audit_log;
mod story;

use crate::CliError;
use crate::plan::playground_stack;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tarem_shared::automation_event::is_final;
use tarem_shared::clock::{Clock, ManualClock};
use tarem_shared::finding::parse_time;
use tarem_shared::local::LocalLoop;

#[derive(Debug, Clone)]
pub struct SimulateOptions {
    pub mappings: Option<PathBuf>,
    /// A built-in pack's entries (`all` for every pack), instead of a mapping file.
    pub pack: Option<String>,
    /// `DOCUMENT=STATUS` pairs.
    pub outcomes: Vec<String>,
    /// Event files, or folders of them (read in name order).
    pub inputs: Vec<PathBuf>,
    /// How long the clock runs on after the last event, at most, while something waits on time.
    pub settle: Duration,
    /// A backtest: the events of this raw-event audit-log export instead of `inputs`.
    pub from_logs: Option<PathBuf>,
    /// An organisation: the hub's account and its members, each with its own services.
    pub accounts: Option<PathBuf>,
}

/// What the run did for one check: its findings' episodes, the runbooks started for them, and
/// where the episodes ended (per state).
#[derive(Debug, Default, Serialize)]
pub struct CheckOutcome {
    pub findings: usize,
    pub started: usize,
    pub episodes: BTreeMap<String, usize>,
}

#[derive(Debug, Default, Serialize)]
pub struct FindingCounts {
    pub tracked: usize,
    /// The same state said again later (recorded; nothing to act on).
    pub refreshed: usize,
    pub duplicates: usize,
    pub stale: usize,
    pub rejected: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct AutomationCounts {
    pub started: usize,
    pub succeeded: usize,
    pub failed: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct OpsItemCounts {
    pub created: usize,
    pub resolved: usize,
    pub open: usize,
    /// Open, waiting for Trusted Advisor to confirm a successful runbook.
    pub verifying: usize,
}

#[derive(Debug, Serialize)]
pub struct Rejected {
    pub source: String,
    pub reason: String,
}

/// A safety control's decision not to start (or not to open an OpsItem).
#[derive(Debug, Serialize)]
pub struct Skipped {
    /// `<check> | <resource> | <region>`.
    pub finding: String,
    pub control: String,
    pub reason: String,
}

/// What `--output json` prints.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub findings: FindingCounts,
    pub automations: AutomationCounts,
    pub ops_items: OpsItemCounts,
    /// Episodes per state at the end of the run.
    pub episodes: BTreeMap<String, usize>,
    pub rejected: Vec<Rejected>,
    pub skipped: Vec<Skipped>,
    pub ops_items_detail: Vec<Value>,
    pub automations_detail: Vec<Value>,
    /// Per check: what would have started, been held, verified and escalated.
    pub by_check: BTreeMap<String, CheckOutcome>,
    /// Per account, in an organisation (`--accounts`): its findings, starts and OpsItems there.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub by_account: BTreeMap<String, AccountOutcome>,
}

/// What the run did in one account of the organisation.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountOutcome {
    pub findings: usize,
    pub started: usize,
    pub ops_items: usize,
    pub episodes: BTreeMap<String, usize>,
}

pub struct Simulation {
    pub report: Report,
    /// The story, one line per step.
    pub story: Vec<String>,
}

/// The document → status choices of `--outcome`; a document no mapping uses is a usage error
/// (a misspelling would otherwise leave the outcome Success without a word).
fn parse_outcomes(
    pairs: &[String],
    mappings: &[Value],
) -> Result<BTreeMap<String, String>, CliError> {
    let documents: Vec<&str> = mappings
        .iter()
        .filter_map(|item| item.get("ssmAutomationDocument").and_then(Value::as_str))
        .collect();
    pairs
        .iter()
        .map(|pair| {
            let (document, status) = pair.split_once('=').ok_or_else(|| {
                CliError::Usage(format!("--outcome {pair:?}: expected DOCUMENT=STATUS, e.g. AWS-DisablePublicAccessForSecurityGroup=Failed"))
            })?;
            if !documents.contains(&document) {
                return Err(CliError::Usage(format!(
                    "--outcome {pair:?}: no mapping uses the document {document:?} (the mappings use: {})",
                    if documents.is_empty() { "none".to_owned() } else { documents.join(", ") }
                )));
            }
            if !is_final(status) {
                return Err(CliError::Usage(format!(
                    "--outcome {pair:?}: {status:?} is not a final automation status (Success, Failed, TimedOut, Cancelled, Rejected, CompletedWithSuccess, CompletedWithFailure, Exited)"
                )));
            }
            Ok((document.to_owned(), status.to_owned()))
        })
        .collect()
}

/// How often the simulated stack's episode sweep runs (the template's default schedule).
const SWEEP_EVERY: Duration = Duration::minutes(15);
/// How long an execution may go without a status before the execution sweep looks it up.
const EXECUTION_SWEEP_AFTER: Duration = Duration::minutes(30);
/// A gap between events longer than this is not swept tick by tick: one sweep, then the jump.
const LONGEST_SWEPT_GAP: Duration = Duration::days(7);

/// Reads `48h`, `30m`, `2d`, `90s` or `0`.
pub fn parse_duration(text: &str) -> Result<Duration, CliError> {
    let text = text.trim();
    let bad = || {
        CliError::Usage(format!(
            "--settle {text:?}: expected a duration such as 48h, 90m, 2d or 0"
        ))
    };
    if text == "0" {
        return Ok(Duration::zero());
    }
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let number: i64 = number.parse().map_err(|_| bad())?;
    match unit {
        "s" => Ok(Duration::seconds(number)),
        "m" => Ok(Duration::minutes(number)),
        "h" => Ok(Duration::hours(number)),
        "d" => Ok(Duration::days(number)),
        _ => Err(bad()),
    }
}

/// The run: the loop on the in-memory backend, its schedules on the simulated clock.
pub(super) struct Run<'a> {
    pub(super) local: &'a LocalLoop,
    pub(super) clock: &'a ManualClock,
    pub(super) outcomes: &'a BTreeMap<String, String>,
    pub(super) next_sweep: DateTime<Utc>,
    pub(super) report: Report,
    pub(super) story: Vec<String>,
    /// The executions whose start the story has told.
    pub(super) told_starts: std::collections::HashSet<String>,
    /// How many executions `tell_new_starts` has read in each account (the rest are new).
    pub(super) starts_seen: BTreeMap<String, usize>,
    /// The organisation's member accounts (none: one account).
    pub(super) members: Vec<String>,
}

pub async fn run(options: &SimulateOptions) -> Result<Simulation, CliError> {
    let inputs = match &options.from_logs {
        Some(_) => crate::inputs::Inputs::default(),
        None => crate::inputs::event_files(&options.inputs, options.mappings.as_deref())?,
    };
    let local = crate::inputs::local_mappings(
        options.mappings.as_deref(),
        options.pack.as_deref(),
        &inputs,
        true,
    )?;
    // Mappings not named with --mappings (found beside the events, or a pack) are said first.
    let found_note = match (&options.mappings, &local) {
        (None, Some(local)) => Some(format!("mappings   {}", local.said)),
        _ => None,
    };
    let mapping_items = local.map(|local| local.items).unwrap_or_default();
    let outcomes = parse_outcomes(&options.outcomes, &mapping_items)?;
    let files = inputs.events;
    let mut inputs = vec![];
    if let Some(log) = &options.from_logs {
        // The lines that hold no event first (they have no time), then the events in order.
        let mut events = vec![];
        for event in audit_log::read(log)? {
            match event {
                Ok(event) => events.push(event),
                Err(reason) => inputs.push((log.display().to_string(), Err(reason))),
            }
        }
        inputs.push((format!("{} (audit log)", log.display()), Ok(events)));
    }
    for file in &files {
        let events = std::fs::read_to_string(file)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                serde_json::from_str::<Value>(&text).map_err(|e| format!("not JSON: {e}"))
            })
            .map(|value| match value {
                Value::Array(events) => events,
                event => vec![event],
            });
        inputs.push((file.display().to_string(), events));
    }

    // Virtual time that follows the events' own times, never past the wall clock: pacing and
    // backoff cost nothing, and cool-downs, sweeps and verify windows play out as they would
    // between the events.
    let wall = Utc::now();
    let event_time = |event: &Value| {
        event
            .get("time")
            .and_then(Value::as_str)
            .and_then(parse_time)
            .filter(|time| *time <= wall)
    };
    let start = inputs
        .iter()
        .filter_map(|(_, events)| events.as_ref().ok())
        .flatten()
        .find_map(event_time)
        .unwrap_or(wall);
    let clock = Arc::new(ManualClock::new(start));
    let mut local = LocalLoop::with_config(
        clock.clone(),
        tarem_shared::memory::InMemoryAutomation::default(),
        playground_stack(&mapping_items),
    );
    let members = match &options.accounts {
        Some(file) => accounts::apply(file, &mut local)?,
        None => vec![],
    };
    for item in &mapping_items {
        local
            .mappings
            .put(item)
            .map_err(|error| CliError::Usage(format!("mapping: {error}")))?;
    }
    let mut run = Run {
        local: &local,
        clock: &clock,
        outcomes: &outcomes,
        next_sweep: start + SWEEP_EVERY,
        report: Report::default(),
        story: found_note.into_iter().collect(),
        told_starts: Default::default(),
        starts_seen: Default::default(),
        members,
    };
    for (source, events) in inputs {
        // The sweeps that fall due before this file's first event come first in the story.
        if let Some(first) = events.iter().flatten().find_map(event_time) {
            run.advance_to(first).await;
        }
        run.story.push(source.clone());
        let events = match events {
            Ok(events) => events,
            Err(reason) => {
                run.story.push(format!("  rejected   {reason}"));
                run.report.findings.rejected += 1;
                run.report.rejected.push(Rejected { source, reason });
                continue;
            }
        };
        for event in &events {
            if let Some(time) = event_time(event) {
                run.advance_to(time).await;
            }
            run.event(&source, event).await;
        }
    }
    run.settle(options.settle).await;
    Ok(run.finish())
}

impl Run<'_> {
    /// Moves the clock to `time`, running each sweep that falls due on the way.
    async fn advance_to(&mut self, time: DateTime<Utc>) {
        if time <= self.clock.now() {
            return;
        }
        while self.next_sweep <= time {
            self.clock.set(self.next_sweep);
            self.sweep().await;
            self.next_sweep += SWEEP_EVERY;
            if time - self.next_sweep > LONGEST_SWEPT_GAP {
                self.next_sweep = time;
            }
        }
        self.clock.set(time);
    }

    /// After the last event, the clock runs on (sweep by sweep) until nothing waits on time,
    /// at most `settle` long.
    async fn settle(&mut self, settle: Duration) {
        let end = self.clock.now() + settle;
        while self.pending() && self.next_sweep <= end {
            let at = self.next_sweep;
            self.advance_to(at).await;
        }
    }

    /// Whether an episode waits on time (a hold with an end, a verify window, a running
    /// runbook, an OpsItem owed or to check): it has a due time in the due index.
    fn pending(&self) -> bool {
        self.local.executions.waits_on_time()
    }

    async fn sweep(&mut self) {
        let at = self.clock.now();
        let _ = self.local.sweep_executions(EXECUTION_SWEEP_AFTER).await;
        match self.local.sweep_episodes().await {
            Ok(report) => {
                for moved in &report.moved {
                    let (key, change) = moved.split_once(": ").unwrap_or(("", moved));
                    self.story.push(format!(
                        "sweep at {}: episode {}… {change}",
                        at.format("%Y-%m-%dT%H:%MZ"),
                        &key[..key.len().min(12)]
                    ));
                }
                for failed in &report.failed {
                    self.story.push(format!("  sweep failed: {failed}"));
                }
                self.tell_new_starts();
            }
            Err(error) => self.story.push(format!("  sweep error: {error}")),
        }
        self.deliver_and_finish().await;
    }
}
