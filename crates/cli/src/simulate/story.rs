//! The run's story: each event, the records and the automations it led to, in words; and the
//! report's counts, read from the end state.

use super::{Rejected, Report, Run, Simulation, Skipped};
use serde_json::{Value, json};
use tarem_shared::automation_event::{is_final, is_success};
use tarem_shared::episode::Stage;
use tarem_shared::handlers::{ExecutionOutcome, RecordOutcome, Step, Tracked};
use tarem_shared::memory::{InMemoryAutomation, InMemoryOpsCenter};
use tarem_shared::ports::OpsItemStatus;

fn short(text: &str) -> String {
    const MAX: usize = 160;
    match text.char_indices().nth(MAX) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

impl Run<'_> {
    /// One Trusted Advisor event through check-tracker, the stream through the results
    /// handler, and the automations it started to their outcome.
    pub(super) async fn event(&mut self, source: &str, event: &Value) {
        let tracked = match self.local.track(event).await {
            Ok(tracked) => tracked,
            Err(error) => {
                // The in-memory table does not fail; shown for completeness.
                self.story.push(format!("  error      {error}"));
                return;
            }
        };
        let report = &mut self.report;
        let story = &mut self.story;
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
                story.push(
                    "  duplicate  the same finding was already tracked; nothing changes".into(),
                );
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
        self.deliver_and_finish().await;
    }

    /// The stream records written so far through the results handler, then every automation
    /// that started ends with the outcome chosen for its document and its status event goes
    /// through the automation-execution handler.
    pub(super) async fn deliver_and_finish(&mut self) {
        let batch = self.local.deliver_stream().await;
        for record in &batch.records {
            let finding = record.finding.as_ref().map_or_else(String::new, |f| {
                format!("{} | {} | {}", f.check_name, f.resource, f.region)
            });
            for step in &record.steps {
                if let Step::AutomationStarted { execution_id, .. } = step {
                    self.told_starts.insert(execution_id.clone());
                }
                let line = describe_step(step, &finding, &mut self.report);
                self.story.push(line);
            }
            match &record.outcome {
                RecordOutcome::Done => {}
                RecordOutcome::Retry(reason) => self.story.push(format!("  retry      {reason}")),
                RecordOutcome::Parked(reason) => self.story.push(format!("  parked     {reason}")),
            }
        }
        let outcomes = self.outcomes;
        let finished = self
            .local
            .finish_automations(|document| {
                let status = outcomes
                    .get(document)
                    .cloned()
                    .unwrap_or_else(|| "Success".to_owned());
                let failure = (!is_success(&status)).then(|| {
                    format!("simulated outcome {status} for {document} (set with --outcome)")
                });
                (status, failure)
            })
            .await;
        for outcome in finished {
            match outcome {
                Ok(ExecutionOutcome::Recorded {
                    execution_id,
                    status,
                    ops_item_id,
                    state,
                    reason,
                    ..
                }) => {
                    self.story
                        .push(format!("  automation {execution_id} {status}"));
                    let reason = reason.unwrap_or_else(|| format!("automation ended {status}"));
                    let effect = match state.as_deref() {
                        Some("verifying") => {
                            "in progress: the runbook succeeded; waiting for Trusted Advisor to confirm".to_owned()
                        }
                        Some("unconfirmed") => "resolved: the runbook succeeded".to_owned(),
                        Some("held") => {
                            // A hold for the cool-down is a control that held a start back.
                            self.report.skipped.push(Skipped {
                                finding: self.finding_of(ops_item_id.as_deref()),
                                control: "cool-down".into(),
                                reason: format!("{reason}; the next attempt waits for the cool-down"),
                            });
                            format!("left open: {reason}; the next attempt waits for the cool-down")
                        }
                        Some("escalated") => {
                            self.story.push(format!(
                                "  episode    escalated: {reason}; remediation did not fix this, a person must"
                            ));
                            "left open for a person".to_owned()
                        }
                        Some(other) => format!("episode {other}"),
                        None => "updated".to_owned(),
                    };
                    let id = ops_item_id.unwrap_or_else(|| "(owed)".into());
                    self.story.push(format!("  opsitem    {id} {effect}"));
                }
                Ok(other) => self.story.push(format!("  automation {other:?}")),
                Err(error) => self.story.push(format!("  error      {error}")),
            }
        }
    }

    /// `<check> | <resource>` of the episode an OpsItem belongs to.
    fn finding_of(&self, ops_item_id: Option<&str>) -> String {
        self.local
            .executions
            .episodes()
            .into_iter()
            .find(|e| ops_item_id.is_some() && e.ops_item_id.as_deref() == ops_item_id)
            .map(|e| format!("{} | {}", e.check_name, e.resource))
            .unwrap_or_default()
    }

    /// The starts a sweep made (a retry after the cool-down), told as an event's are.
    pub(super) fn tell_new_starts(&mut self) {
        for (account, automation) in self.automations() {
            let seen = self.starts_seen.entry(account.clone()).or_default();
            let known = *seen;
            let new = automation.executions_since(known);
            *seen += new.len();
            // The hub's own starts are told as one account's always were.
            let place = if account == self.local.account {
                String::new()
            } else {
                format!("in account {account}: ")
            };
            for execution in new {
                if self.told_starts.insert(execution.execution_id.clone()) {
                    self.story.push(format!(
                        "  automation {} started: {place}{} in {} with {} (ClientToken {})",
                        execution.execution_id,
                        execution.document,
                        execution.region,
                        json!(execution.parameters),
                        execution.client_token
                    ));
                }
            }
        }
    }

    /// Each account's Automation: the hub's own first, then the members'.
    fn automations(&self) -> Vec<(String, std::sync::Arc<InMemoryAutomation>)> {
        let mut all = vec![(self.local.account.clone(), self.local.automation.clone())];
        for account in &self.members {
            if let Some(member) = self.local.members.member(account) {
                all.push((account.clone(), member.automation.clone()));
            }
        }
        all
    }

    /// Each account's OpsCenter: the hub's own first, then the members'.
    fn ops_centers(&self) -> Vec<(String, std::sync::Arc<InMemoryOpsCenter>)> {
        let mut all = vec![(self.local.account.clone(), self.local.ops_center.clone())];
        for account in &self.members {
            if let Some(member) = self.local.members.member(account) {
                all.push((account.clone(), member.ops_center.clone()));
            }
        }
        all
    }

    /// The report's counts, read from the end state.
    pub(super) fn finish(mut self) -> Simulation {
        let automations = self.automations();
        let ops_centers = self.ops_centers();
        let organisation = !self.members.is_empty();
        let home = self.local.account.clone();
        let report = &mut self.report;
        let episodes = self.local.executions.episodes();
        for name in Stage::NAMES {
            report.episodes.insert(name.to_owned(), 0);
        }
        for episode in &episodes {
            *report
                .episodes
                .entry(episode.stage.name().to_owned())
                .or_default() += 1;
            let check = report
                .by_check
                .entry(episode.check_name.clone())
                .or_default();
            check.findings += 1;
            check.started += episode.attempts.len();
            *check
                .episodes
                .entry(episode.stage.name().to_owned())
                .or_default() += 1;
            if organisation {
                let account = report
                    .by_account
                    .entry(episode.account.clone().unwrap_or_else(|| home.clone()))
                    .or_default();
                account.findings += 1;
                *account
                    .episodes
                    .entry(episode.stage.name().to_owned())
                    .or_default() += 1;
            }
        }
        // OpsItem ids are each account's: an item is told by its account and id.
        let verifying: std::collections::HashSet<(String, &str)> = episodes
            .iter()
            .filter(|e| matches!(e.stage, Stage::Verifying { .. }))
            .filter_map(|e| {
                let account = e.account.clone().unwrap_or_else(|| home.clone());
                Some((account, e.ops_item_id.as_deref()?))
            })
            .collect();
        for (account, item) in ops_centers
            .iter()
            .flat_map(|(account, center)| center.items().into_iter().map(move |i| (account, i)))
        {
            if organisation {
                report
                    .by_account
                    .entry(account.clone())
                    .or_default()
                    .ops_items += 1;
            }
            report.ops_items.created += 1;
            match item.status {
                OpsItemStatus::Resolved => report.ops_items.resolved += 1,
                OpsItemStatus::Open | OpsItemStatus::InProgress => report.ops_items.open += 1,
            }
            if verifying.contains(&(account.clone(), item.id.as_str())) {
                report.ops_items.verifying += 1;
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
        for (account, execution) in automations
            .iter()
            .flat_map(|(account, a)| a.executions().into_iter().map(move |e| (account, e)))
        {
            if organisation {
                report
                    .by_account
                    .entry(account.clone())
                    .or_default()
                    .started += 1;
            }
            report.automations.started += 1;
            if is_success(&execution.status) {
                report.automations.succeeded += 1;
            } else if is_final(&execution.status) {
                report.automations.failed += 1;
            }
            report.automations_detail.push(json!({
                "executionId": execution.execution_id,
                "account": account,
                "document": execution.document,
                "region": execution.region,
                "parameters": execution.parameters,
                "clientToken": execution.client_token,
                "tags": execution.tags,
                "outcome": execution.status,
                "failureMessage": execution.failure_message,
            }));
        }
        let episodes_line = report
            .episodes
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(state, n)| format!("{n} {state}"))
            .collect::<Vec<_>>()
            .join(", ");
        self.story.push(format!(
            "summary: findings {} tracked, {} duplicate, {} stale, {} rejected; automations {} started, {} succeeded, {} failed; OpsItems {} created, {} resolved, {} open; episodes {}",
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
            if episodes_line.is_empty() { "none".to_owned() } else { episodes_line },
        ));
        for (check, outcome) in &report.by_check {
            let ended = outcome
                .episodes
                .iter()
                .map(|(state, n)| format!("{n} {state}"))
                .collect::<Vec<_>>()
                .join(", ");
            self.story.push(format!(
                "  by check   {check}: findings {}, runbooks started {}; episodes {ended}",
                outcome.findings, outcome.started
            ));
        }
        for (account, outcome) in &report.by_account {
            let ended = outcome
                .episodes
                .iter()
                .map(|(state, n)| format!("{n} {state}"))
                .collect::<Vec<_>>()
                .join(", ");
            self.story.push(format!(
                "  by account {account}: findings {}, runbooks started {}, OpsItems {}; episodes {}",
                outcome.findings,
                outcome.started,
                outcome.ops_items,
                if ended.is_empty() { "none".to_owned() } else { ended }
            ));
        }
        // What `tarem status` would show on the simulated stack at the end of the run.
        let mut status =
            crate::status::summarize(&episodes, tarem_shared::clock::Clock::now(self.clock));
        status.kill_switch = "on".into();
        status.ops_items = crate::status::Budget {
            this_month: report.ops_items.created as u64,
            budget: self.local.results.config.safety.monthly_ops_item_budget,
        };
        self.story
            .push("status (as `tarem status` would show it):".into());
        self.story.extend(
            crate::status::text(&status)
                .lines()
                .map(|line| format!("  {line}")),
        );
        Simulation {
            report: self.report,
            story: self.story,
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
            // A reason that already names its control is not prefixed twice.
            let reason = reason
                .strip_prefix(&format!("{control}: "))
                .unwrap_or(reason);
            format!("  held       {control}: {reason}")
        }
        Step::OpsItemCreated { id, title } => {
            format!("  opsitem    {id} created: {}", short(title))
        }
        Step::OpsItemReused { id } => {
            format!("  opsitem    {id} already open for this episode; updated")
        }
        Step::OpsItemOwed { reason } => {
            format!("  opsitem    owed (the sweep creates it later): {reason}")
        }
        Step::OpsItemUpdated { id, status } => match status.as_deref() {
            Some("Resolved") => format!("  opsitem    {id} resolved"),
            Some(status) => format!("  opsitem    {id} {status}"),
            None => format!("  opsitem    {id} updated"),
        },
        Step::AutomationStarted {
            execution_id,
            document,
            region,
            parameters,
            client_token,
        } => format!(
            "  automation {execution_id} started: {document} in {region} with {} (ClientToken {client_token})",
            json!(parameters)
        ),
        Step::AutomationAlreadyStarted { execution_id } => {
            format!(
                "  automation {execution_id} was already started for this attempt; not started again"
            )
        }
        Step::NoAutomation { reason } => format!("  automation none: {reason}"),
        Step::Episode { state, why } => format!("  episode    {state}: {why}"),
        Step::Skipped { reason } => format!("  skipped    {reason}"),
    }
}
