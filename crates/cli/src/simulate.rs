//! `tarem simulate`: the whole remediation loop on the embedded in-memory backend.
//!
//! Each Trusted Advisor event goes through check-tracker; the tracker stream records it wrote go
//! through results-handler as one batch; every automation that started ends with the outcome
//! chosen for its document (default Success) and its status event goes through
//! automation-execution-handler. The same handler code runs in Lambda.

use crate::{UsageError, mapping_file};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tarem_shared::automation_event::{is_final, is_success};
use tarem_shared::clock::{Clock, ManualClock};
use tarem_shared::finding::parse_time;
use tarem_shared::handlers::{ExecutionOutcome, RecordOutcome, Step, Tracked};
use tarem_shared::local::LocalLoop;
use tarem_shared::ports::OpsItemStatus;

#[derive(Debug, Clone, Default)]
pub struct SimulateOptions {
    pub mappings: Option<PathBuf>,
    /// `DOCUMENT=STATUS` pairs.
    pub outcomes: Vec<String>,
    /// Event files, or folders of them (read in name order).
    pub inputs: Vec<PathBuf>,
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
    pub rejected: Vec<Rejected>,
    pub skipped: Vec<Skipped>,
    pub ops_items_detail: Vec<Value>,
    pub automations_detail: Vec<Value>,
}

pub struct Simulation {
    pub report: Report,
    /// The story, one line per step.
    pub story: Vec<String>,
}

/// The document → status choices of `--outcome`.
fn parse_outcomes(pairs: &[String]) -> Result<BTreeMap<String, String>, UsageError> {
    pairs
        .iter()
        .map(|pair| {
            let (document, status) = pair.split_once('=').ok_or_else(|| {
                UsageError(format!("--outcome {pair:?}: expected DOCUMENT=STATUS, e.g. AWS-DisablePublicAccessForSecurityGroup=Failed"))
            })?;
            if !is_final(status) {
                return Err(UsageError(format!(
                    "--outcome {pair:?}: {status:?} is not a final automation status (Success, Failed, TimedOut, Cancelled, Rejected, CompletedWithSuccess, CompletedWithFailure, Exited)"
                )));
            }
            Ok((document.to_owned(), status.to_owned()))
        })
        .collect()
}

/// Files to read: each file as given, each folder's `*.json` files in name order (not recursing,
/// and leaving out the mapping file).
fn event_files(inputs: &[PathBuf], mappings: Option<&Path>) -> Result<Vec<PathBuf>, UsageError> {
    let skip = mappings.and_then(|m| m.canonicalize().ok());
    let mut files = vec![];
    for input in inputs {
        let metadata = std::fs::metadata(input)
            .map_err(|error| UsageError(format!("{}: {error}", input.display())))?;
        if metadata.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|error| UsageError(format!("{}: {error}", input.display())))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|path| path.is_file() && path.extension().is_some_and(|e| e == "json"))
                .filter(|path| path.canonicalize().ok() != skip)
                .collect();
            entries.sort();
            files.extend(entries);
        } else {
            files.push(input.clone());
        }
    }
    if files.is_empty() {
        return Err(UsageError(
            "no event files: name TA event files or folders of them".into(),
        ));
    }
    Ok(files)
}

fn short(text: &str) -> String {
    const MAX: usize = 160;
    match text.char_indices().nth(MAX) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

pub async fn run(options: &SimulateOptions) -> Result<Simulation, UsageError> {
    let outcomes = parse_outcomes(&options.outcomes)?;
    let mapping_items = match &options.mappings {
        Some(path) => mapping_file::read(path)?,
        None => vec![],
    };
    let files = event_files(&options.inputs, options.mappings.as_deref())?;

    // Virtual time that follows the events: pacing and backoff cost nothing, and cool-downs and
    // windows play out as they would between the events' own times.
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let mut clock_set = false;
    let local = LocalLoop::new(clock.clone());
    for item in &mapping_items {
        local
            .mappings
            .put(item)
            .map_err(|error| UsageError(format!("mapping: {error}")))?;
    }
    let mut report = Report::default();
    let mut story = vec![];
    for file in &files {
        let source = file.display().to_string();
        story.push(source.clone());
        let events = match std::fs::read_to_string(file)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                serde_json::from_str::<Value>(&text).map_err(|e| format!("not JSON: {e}"))
            }) {
            Ok(Value::Array(events)) => events,
            Ok(event) => vec![event],
            Err(reason) => {
                story.push(format!("  rejected   {reason}"));
                report.findings.rejected += 1;
                report.rejected.push(Rejected { source, reason });
                continue;
            }
        };
        for event in &events {
            // The clock follows the events' own times, but never past the wall clock: an event
            // from the future is received now, and rejected as check-tracker would.
            if let Some(time) = event
                .get("time")
                .and_then(Value::as_str)
                .and_then(parse_time)
                && (!clock_set || time > clock.now())
                && time <= chrono::Utc::now()
            {
                clock.set(time);
                clock_set = true;
            }
            simulate_event(&local, &source, event, &outcomes, &mut report, &mut story).await;
        }
    }
    for item in local.ops_center.items() {
        match item.status {
            OpsItemStatus::Resolved => report.ops_items.resolved += 1,
            OpsItemStatus::Open | OpsItemStatus::InProgress => report.ops_items.open += 1,
        }
        report.ops_items_detail.push(json!({
            "id": item.id,
            "title": item.title,
            "status": item.status,
            "severity": item.severity,
            "source": item.source,
            "description": item.description,
            "operationalData": item.operational_data.iter().map(|(key, data)| {
                let value = serde_json::from_str::<Value>(&data.value).unwrap_or_else(|_| json!(data.value));
                (key.clone(), value)
            }).collect::<serde_json::Map<_, _>>(),
        }));
    }
    for execution in local.automation.executions() {
        report.automations_detail.push(json!({
            "executionId": execution.execution_id,
            "document": execution.document,
            "region": execution.region,
            "parameters": execution.parameters,
            "clientToken": execution.client_token,
            "tags": execution.tags,
            "outcome": execution.status,
            "failureMessage": execution.failure_message,
        }));
    }
    story.push(format!(
        "summary: findings {} tracked, {} duplicate, {} stale, {} rejected; automations {} started, {} succeeded, {} failed; OpsItems {} created, {} resolved, {} open",
        report.findings.tracked,
        report.findings.duplicates,
        report.findings.stale,
        report.findings.rejected,
        report.automations.started,
        report.automations.succeeded,
        report.automations.failed,
        report.ops_items.created,
        report.ops_items.resolved,
        report.ops_items.open,
    ));
    Ok(Simulation { report, story })
}

async fn simulate_event(
    local: &LocalLoop,
    source: &str,
    event: &Value,
    outcomes: &BTreeMap<String, String>,
    report: &mut Report,
    story: &mut Vec<String>,
) {
    let tracked = match local.track(event).await {
        Ok(tracked) => tracked,
        Err(error) => {
            // The in-memory table does not fail; shown for completeness.
            story.push(format!("  error      {error}"));
            return;
        }
    };
    match &tracked {
        Tracked::Rejected(rejection) => {
            story.push(format!("  rejected   {rejection}"));
            report.findings.rejected += 1;
            report.rejected.push(Rejected {
                source: source.to_owned(),
                reason: rejection.to_string(),
            });
            return;
        }
        Tracked::Written(finding)
        | Tracked::Refreshed(finding)
        | Tracked::Duplicate(finding)
        | Tracked::Stale(finding) => {
            story.push(format!(
                "  finding    {} | {} | {}",
                finding.check_name, finding.resource, finding.region
            ));
        }
    }
    match &tracked {
        Tracked::Written(finding) => {
            report.findings.tracked += 1;
            story.push(format!(
                "  tracked    {} as of {}",
                finding.resource_status, finding.last_updated_time
            ));
        }
        Tracked::Refreshed(finding) => {
            report.findings.refreshed += 1;
            story.push(format!(
                "  refreshed  {} as of {}, said again; nothing changes",
                finding.resource_status, finding.last_updated_time
            ));
        }
        Tracked::Duplicate(_) => {
            report.findings.duplicates += 1;
            story.push("  duplicate  the same finding was already tracked; nothing changes".into());
        }
        Tracked::Stale(finding) => {
            report.findings.stale += 1;
            story.push(format!(
                "  stale      {} as of {} is older than the tracked finding; dropped",
                finding.resource_status, finding.last_updated_time
            ));
        }
        Tracked::Rejected(_) => {}
    }

    let batch = local.deliver_stream().await;
    for record in &batch.records {
        let finding = record.finding.as_ref().map_or_else(String::new, |f| {
            format!("{} | {} | {}", f.check_name, f.resource, f.region)
        });
        for step in &record.steps {
            story.push(describe_step(step, &finding, report));
        }
        match &record.outcome {
            RecordOutcome::Done => {}
            RecordOutcome::Retry(reason) => story.push(format!("  retry      {reason}")),
            RecordOutcome::Parked(reason) => story.push(format!("  parked     {reason}")),
        }
    }

    let finished = local
        .finish_automations(|document| {
            let status = outcomes
                .get(document)
                .cloned()
                .unwrap_or_else(|| "Success".to_owned());
            let failure = (!is_success(&status))
                .then(|| format!("simulated outcome {status} for {document} (set with --outcome)"));
            (status, failure)
        })
        .await;
    for outcome in finished {
        match outcome {
            Ok(ExecutionOutcome::Recorded {
                execution_id,
                status,
                ops_item_id,
                ops_item_status,
                reason,
            }) => {
                if is_success(&status) {
                    report.automations.succeeded += 1;
                } else if is_final(&status) {
                    report.automations.failed += 1;
                }
                let effect = match ops_item_status {
                    Some(OpsItemStatus::Resolved) => "resolved".to_owned(),
                    Some(_) => format!(
                        "left open: {}",
                        reason.unwrap_or_else(|| format!("automation ended {status}"))
                    ),
                    None => "updated".to_owned(),
                };
                story.push(format!("  automation {execution_id} {status}"));
                story.push(format!("  opsitem    {ops_item_id} {effect}"));
            }
            Ok(other) => story.push(format!("  automation {other:?}")),
            Err(error) => story.push(format!("  error      {error}")),
        }
    }
}

fn describe_step(step: &Step, finding: &str, report: &mut Report) -> String {
    match step {
        Step::Held { control, reason } => {
            report.skipped.push(Skipped {
                finding: finding.to_owned(),
                control: control.clone(),
                reason: reason.clone(),
            });
            format!("  held       {control}: {reason}")
        }
        Step::OpsItemCreated { id, title } => {
            report.ops_items.created += 1;
            format!("  opsitem    {id} created: {}", short(title))
        }
        Step::OpsItemReused { id } => {
            format!("  opsitem    {id} already open for this finding; updated")
        }
        Step::AutomationStarted {
            execution_id,
            document,
            region,
            parameters,
            client_token,
        } => {
            report.automations.started += 1;
            format!(
                "  automation {execution_id} started: {document} in {region} with {} (ClientToken {client_token})",
                json!(parameters)
            )
        }
        Step::AutomationAlreadyStarted { execution_id } => {
            format!(
                "  automation {execution_id} was already started for this attempt; not started again"
            )
        }
        Step::NoAutomation { reason } => format!("  automation none: {reason}"),
        Step::OpsItemResolved { id } => {
            format!("  opsitem    {id} resolved: Trusted Advisor reports the resource Green")
        }
        Step::NothingToResolve => {
            "  opsitem    none open for this finding; nothing to resolve".into()
        }
        Step::Skipped { reason } => format!("  skipped    {reason}"),
    }
}
