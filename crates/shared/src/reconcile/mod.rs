//! The reconcile sweeps: findings and executions that no event reported.
//!
//! Findings: Trusted Advisor's results (Support API) go through the same normalisation and the
//! same conditional write as events (a flagged resource becomes a synthetic check item event),
//! recorded with source `reconcile`. A row that was Red or Yellow and is no longer flagged turns
//! Green at the result's time; a newer event always wins over an older result.
//!
//! A classic check's items are keyed by the columns that name their resource
//! ([`crate::finding::classic`]), which the API gives as the event does, so classic checks are
//! reconciled too. Only a check whose columns name nothing (no `Resource` column, not a known
//! classic check, no ID, ARN or Name column) is skipped: its events may name the item by a
//! `resource_id` the API does not give, and tracking both would split one finding in two.

pub mod accounts;

use crate::clock::Clock;
use crate::error::{ErrorKind, PortError};
use crate::finding::{
    Finding, FindingSource, Placement, Status, TA_DETAIL_TYPE, TA_SOURCE, TrackingRules,
    finding_from_event, finding_key, format_time, parse_time, placement, resource_identity,
    resource_region,
};
use crate::ports::{
    CheckInfo, CheckResult, MappingStore, TrackerStore, TrustedAdvisor, WriteOutcome,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::sync::Arc;

/// Whether a check's results name each item as its events do: a `Resource` column, or the
/// columns of a classic identity.
pub fn reconcilable(check: &CheckInfo) -> bool {
    check.columns.iter().any(|column| column == "Resource")
        || crate::finding::classic::identity_columns(
            &check.name,
            check.columns.iter().map(String::as_str),
        )
        .is_some()
}

/// The check item event a flagged resource stands for.
pub fn synthetic_event(
    check: &CheckInfo,
    result: &CheckResult,
    resource: &crate::ports::FlaggedResource,
    account: &str,
) -> Value {
    let mut columns = Map::new();
    for (name, value) in check.columns.iter().zip(&resource.metadata) {
        columns.insert(
            name.clone(),
            value.clone().map_or(Value::Null, Value::String),
        );
    }
    json!({
        "version": "0",
        "id": format!("reconcile-{}", check.id),
        "detail-type": TA_DETAIL_TYPE,
        "source": TA_SOURCE,
        "account": account,
        "time": result.timestamp,
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "check-name": check.name,
            "check-item-detail": columns,
            "status": resource.status.to_ascii_uppercase(),
            "resource_id": "",
        }
    })
}

/// The Green findings for rows no longer flagged. Each keeps the row's item time and is said at
/// the result's time: a replayed event from before the sweep sorts before it, while an event
/// Trusted Advisor emits after the result sorts after it even when its item time is earlier
/// than the result's (module docs of [`crate::finding`], "Order").
pub fn cleared(
    rows: &[Finding],
    still_flagged: &HashSet<String>,
    result_time: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<Finding> {
    rows.iter()
        .filter(|row| row.resource_status.is_flagged() && !still_flagged.contains(&row.hash_key))
        .map(|row| {
            let item_time =
                DateTime::from_timestamp_millis(row.time_millis()).unwrap_or(DateTime::UNIX_EPOCH);
            let mut green = row.clone().at(Status::Green, item_time, result_time);
            green
                .check_item_detail
                .insert("Status".into(), "Green".into());
            green.source = FindingSource::Reconcile;
            green.event_id = None;
            green.tracked_at = Some(format_time(now));
            green
        })
        .collect()
}

/// The finding key of a flagged resource whose event cannot be read (a bad time, say): its
/// identity alone, so the sweep still counts it as flagged.
fn identity_of(
    event: &Value,
    check: &CheckInfo,
    account: &str,
    rules: &TrackingRules,
) -> Option<String> {
    let columns: std::collections::BTreeMap<String, String> = event
        .pointer("/detail/check-item-detail")?
        .as_object()?
        .iter()
        .filter_map(|(name, value)| value.as_str().map(|v| (name.clone(), v.to_owned())))
        .collect();
    let identity = resource_identity(&check.name, account, &columns, None)?;
    let region = resource_region(&identity, &columns, &rules.home_region, rules);
    Some(finding_key(
        account,
        &check.name,
        &identity.resource,
        &region,
    ))
}

/// What one sweep found and did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    pub checks: usize,
    /// New or newer findings written (or that would be, in a dry run).
    pub written: Vec<String>,
    /// Findings turned Green because Trusted Advisor no longer flags them.
    pub cleared: Vec<String>,
    /// Already tracked as they are.
    pub unchanged: usize,
    /// Checks left alone (or not cleared), and why.
    pub skipped_checks: Vec<String>,
    /// Flagged resources whose data could not be read: counted as still flagged, never cleared.
    pub unreadable: Vec<String>,
    /// Set when the sweep could not run at all (no support plan).
    pub unavailable: Option<String>,
    /// Mapped checks Trusted Advisor does not know (a typo, or a check it retired): never swept,
    /// and never remediated.
    pub unknown_mapped_checks: Vec<String>,
    /// Flagged resources the swept checks' results hold.
    pub flagged: usize,
    /// The regions they are in.
    pub regions: std::collections::BTreeSet<String>,
    /// The checks whose results were read.
    pub swept_checks: Vec<String>,
    /// Of the written ones, those Trusted Advisor refreshed while the account was already
    /// watched and that no event brought: the account's event path is broken.
    pub missed_by_events: Vec<String>,
}

/// How long after a result an event may still be on its way: a resource the sweep writes from a
/// result younger than this is not counted as missed by events.
pub const EVENT_GRACE_MINUTES: i64 = 5;

pub struct FindingsSweep {
    pub tracker: Arc<dyn TrackerStore>,
    pub mappings: Arc<dyn MappingStore>,
    pub advisor: Arc<dyn TrustedAdvisor>,
    pub clock: Arc<dyn Clock>,
    /// Every check, not only the mapped ones.
    pub all_checks: bool,
    /// The account the stack runs in (the Support API's results do not name it).
    pub account: String,
    /// The same normalisation rules check-tracker applies to events.
    pub rules: TrackingRules,
    /// Since when the account has been swept (its first reconcile): a flagged resource from a
    /// later result that only the sweep brings was missed by the events. `None`: not known, so
    /// nothing is counted as missed (a first sweep finds what was flagged before any event).
    pub watched_since: Option<DateTime<Utc>>,
    /// The checks an earlier sweep of the account read: only their resources can be missed by
    /// events (a check mapped since brings its old flags, which no event was owed for).
    pub watched_checks: HashSet<String>,
}

fn describe(finding: &Finding) -> String {
    format!(
        "{} | {} | {} | {}",
        finding.check_name, finding.resource, finding.region, finding.resource_status
    )
}

impl FindingsSweep {
    /// One sweep. `Err` only for a retryable failure (the scheduled invocation is retried); no
    /// support plan is reported in the result, not as an error, so the schedule does not loop.
    pub async fn sweep(&self, dry_run: bool) -> Result<SweepReport, PortError> {
        let pending = pending_flagged(&*self.tracker).await?;
        self.sweep_with(dry_run, &pending).await
    }

    /// One sweep, given the flagged rows still pending their check (every account's: an
    /// organisation's sweep reads them once, [`pending_flagged`]).
    pub async fn sweep_with(
        &self,
        dry_run: bool,
        pending: &[Finding],
    ) -> Result<SweepReport, PortError> {
        let mut report = SweepReport::default();
        let checks = match self.advisor.checks().await {
            Ok(checks) => checks,
            Err(error) if error.kind == ErrorKind::SubscriptionRequired => {
                tracing::warn!(%error, metric = "reconcile.unavailable", "the Support API needs a Business or Enterprise support plan; reconcile skipped");
                report.unavailable = Some(error.to_string());
                return Ok(report);
            }
            Err(error) => return Err(error),
        };
        let wanted: Option<HashSet<String>> = if self.all_checks {
            None
        } else {
            Some(self.mappings.check_names().await?.into_iter().collect())
        };
        if let Some(wanted) = &wanted {
            let known: HashSet<&str> = checks.iter().map(|c| c.name.as_str()).collect();
            report.unknown_mapped_checks = wanted
                .iter()
                .filter(|name| !known.contains(name.as_str()))
                .cloned()
                .collect();
            report.unknown_mapped_checks.sort();
            for name in &report.unknown_mapped_checks {
                tracing::warn!(check = %name, metric = "reconcile.unknown_mapped_check", "a mapped check Trusted Advisor does not know; nothing sweeps or remediates it");
            }
        }
        let now = self.clock.now();
        let pending: Vec<&Finding> = pending
            .iter()
            .filter(|row| row.account_id.as_deref() == Some(self.account.as_str()))
            .collect();
        for check in &checks {
            if wanted
                .as_ref()
                .is_some_and(|wanted| !wanted.contains(&check.name))
            {
                continue;
            }
            if !reconcilable(check) {
                report.skipped_checks.push(format!(
                    "{}: no column of its results names the resource (no Resource column, not a known classic check, no ID, ARN or Name column)",
                    check.name
                ));
                continue;
            }
            report.checks += 1;
            let result = self.advisor.check_result(&check.id).await?;
            let Some(result_time) = parse_time(&result.timestamp) else {
                report.skipped_checks.push(format!(
                    "{}: unreadable result timestamp {:?}",
                    check.name, result.timestamp
                ));
                continue;
            };
            report.swept_checks.push(check.name.clone());
            let watched = self.watched_checks.contains(&check.name);
            // The rows the tracker holds flagged, from its sparse flagged index (the reads grow
            // with the check's flagged rows, not with the table) and the pending ones.
            let tracked = self
                .tracker
                .flagged_keys(Some(&self.account), &check.name)
                .await?;
            let tracked_flagged: HashSet<&str> = tracked
                .iter()
                .map(|key| key.hash_key.as_str())
                .chain(
                    pending
                        .iter()
                        .filter(|row| row.check_name == check.name)
                        .map(|row| row.hash_key.as_str()),
                )
                .collect();
            let mut flagged_keys = HashSet::new();
            // A flagged resource nobody can identify: the sweep cannot tell which rows are
            // still flagged, so it clears none of this check's.
            let mut unidentified = 0;
            for resource in result.flagged.iter().filter(|r| !r.suppressed) {
                let event = synthetic_event(check, &result, resource, &self.account);
                let mut finding = match finding_from_event(&event, now, &self.rules) {
                    Ok(finding) => finding,
                    Err(rejection) => {
                        // Unreadable, but flagged: never cleared because of a parse error.
                        match identity_of(&event, check, &self.account, &self.rules) {
                            Some(key) => {
                                flagged_keys.insert(key);
                            }
                            None => unidentified += 1,
                        }
                        tracing::warn!(check = %check.name, reason = %rejection, metric = "reconcile.unreadable", "flagged resource not usable; counted as still flagged");
                        report
                            .unreadable
                            .push(format!("{}: {rejection}", check.name));
                        continue;
                    }
                };
                finding.source = FindingSource::Reconcile;
                finding.event_id = None;
                if !finding.resource_status.is_flagged() {
                    continue;
                }
                flagged_keys.insert(finding.hash_key.clone());
                report.flagged += 1;
                report.regions.insert(finding.region.clone());
                // Flagged now and not before: Trusted Advisor sent an event for that change.
                let missed = watched
                    && !tracked_flagged.contains(finding.hash_key.as_str())
                    && self.missed_by_events(result_time, now);
                let described = describe(&finding);
                if self.apply(finding, dry_run, false, &mut report).await? && missed {
                    tracing::warn!(account = %self.account, finding = %described, metric = "reconcile.missed_by_events", "a flagged resource no event brought: the account's event path is broken");
                    report.missed_by_events.push(described);
                }
            }
            if unidentified > 0 {
                report.skipped_checks.push(format!(
                    "{}: {unidentified} flagged resources have no identity; nothing cleared",
                    check.name
                ));
                continue;
            }
            // Only the tracked flagged rows Trusted Advisor no longer flags are read whole, to be
            // cleared.
            let mut rows: Vec<Finding> = pending
                .iter()
                .filter(|row| row.check_name == check.name)
                .filter(|row| !flagged_keys.contains(&row.hash_key))
                .map(|row| (*row).clone())
                .collect();
            for key in tracked
                .iter()
                .filter(|key| !flagged_keys.contains(&key.hash_key))
            {
                rows.extend(self.tracker.get(&key.hash_key, &key.resource).await?);
            }
            for green in cleared(&rows, &flagged_keys, result_time, now) {
                self.apply(green, dry_run, true, &mut report).await?;
            }
        }
        tracing::info!(
            checks = report.checks,
            written = report.written.len(),
            cleared = report.cleared.len(),
            metric = "reconcile.swept",
            "reconcile sweep done"
        );
        Ok(report)
    }

    /// Whether a resource the sweep writes from a result of `result_time` should have come as an
    /// event: the result is from after the account's first sweep, and old enough that its event
    /// would have arrived.
    fn missed_by_events(&self, result_time: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        self.watched_since.is_some_and(|since| {
            result_time > since
                && result_time <= now - chrono::Duration::minutes(EVENT_GRACE_MINUTES)
        })
    }

    async fn apply(
        &self,
        finding: Finding,
        dry_run: bool,
        clearing: bool,
        report: &mut SweepReport,
    ) -> Result<bool, PortError> {
        // A dry run asks what the conditional write would do: replace a row earlier in the order
        // with another state.
        let changes = if dry_run {
            let stored = self
                .tracker
                .get(&finding.hash_key, &finding.resource)
                .await?;
            placement(finding.order(), stored.as_ref().map(Finding::order)) == Placement::Newer
                && WriteOutcome::replacing(
                    stored.map(|s| (s.resource_status, s.time_millis())),
                    &finding,
                ) == WriteOutcome::Written
        } else {
            self.tracker.put_if_newer(&finding).await? == WriteOutcome::Written
        };
        match (changes, clearing) {
            (true, true) => report.cleared.push(describe(&finding)),
            (true, false) => report.written.push(describe(&finding)),
            (false, _) => report.unchanged += 1,
        }
        Ok(changes)
    }
}

/// The flagged rows, of every account, whose latest write is still pending its check (not yet
/// in the flagged part of the work index): written in the last minutes, a few.
pub async fn pending_flagged(tracker: &dyn TrackerStore) -> Result<Vec<Finding>, PortError> {
    let mut rows = vec![];
    for shard in 0..crate::ports::DUE_SHARDS {
        let mut after = None;
        loop {
            let page = tracker
                .pending(shard, i64::MAX, after.as_deref(), 100)
                .await?;
            for key in &page.items {
                if let Some(row) = tracker.get(&key.hash_key, &key.resource).await?
                    && row.resource_status.is_flagged()
                {
                    rows.push(row);
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    Ok(rows)
}
