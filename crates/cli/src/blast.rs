//! `tarem plan --flagged`: the blast radius of the stored or proposed mappings. Every resource
//! the tracker holds flagged now, for each mapped check, through the same decision as a new
//! episode ([`crate::plan::plan_finding`]): what would start (document, region, parameters),
//! and what would be refused or held, with why.

use crate::CliError;
use crate::plan::{Plan, plan_finding};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use tarem_shared::finding::{Finding, Status};
use tarem_shared::lifecycle::LifecycleConfig;
use tarem_shared::mapping::plain_json;
use tarem_shared::ports::{DUE_SHARDS, RowKey, TrackerStore};

/// The flagged resources and what the mappings would do with each.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlastRadius {
    /// Flagged resources looked at (of the mapped checks, or the one asked for).
    pub flagged: usize,
    /// Those a runbook would start on now.
    pub would_start: usize,
    /// The others, by what holds them (a control, approval, no usable mapping).
    pub held: BTreeMap<String, usize>,
    pub plans: Vec<Plan>,
}

/// The checks to look at: `only`, or every check a mapping names.
pub fn checks(mappings: &[Value], only: Option<&str>) -> Vec<String> {
    match only {
        Some(check) => vec![check.to_owned()],
        None => mappings
            .iter()
            .filter_map(|item| {
                plain_json(item)
                    .get("checkName")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    }
}

/// The tracker's flagged rows of `checks` in `account` (every account's when `None`): the
/// settled ones from the work index's flagged part, and those whose latest write is still to
/// be checked from its pending part (a Red of a minute ago is flagged too).
pub async fn flagged_rows(
    tracker: &dyn TrackerStore,
    account: Option<&str>,
    checks: &[String],
) -> Result<Vec<Finding>, CliError> {
    let mut keys: BTreeSet<(String, String)> = BTreeSet::new();
    for check in checks {
        for RowKey { hash_key, resource } in tracker.flagged_keys(account, check).await? {
            keys.insert((hash_key, resource));
        }
    }
    let everything_due = i64::MAX;
    for shard in 0..DUE_SHARDS {
        let mut after = None;
        loop {
            let page = tracker
                .pending(shard, everything_due, after.as_deref(), 500)
                .await?;
            keys.extend(page.items.into_iter().map(|k| (k.hash_key, k.resource)));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    let mut rows = vec![];
    for (hash_key, resource) in keys {
        let Some(row) = tracker.get(&hash_key, &resource).await? else {
            continue;
        };
        let wanted = checks.contains(&row.check_name)
            && account.is_none_or(|a| row.account_id.as_deref() == Some(a))
            && matches!(row.resource_status, Status::Red | Status::Yellow);
        if wanted {
            rows.push(row);
        }
    }
    rows.sort_by(|a, b| (&a.check_name, &a.resource).cmp(&(&b.check_name, &b.resource)));
    Ok(rows)
}

/// Each flagged row through the decision a new episode gets.
pub fn blast_radius(rows: &[Finding], mappings: &[Value], stack: &LifecycleConfig) -> BlastRadius {
    let plans: Vec<Plan> = rows
        .iter()
        .map(|row| {
            let source = format!(
                "flagged {} | {}",
                row.account_id.as_deref().unwrap_or("(no account)"),
                row.resource
            );
            plan_finding(&source, row, mappings, stack)
        })
        .collect();
    let mut held = BTreeMap::new();
    let mut would_start = 0;
    for plan in &plans {
        match plan.episode.as_ref() {
            Some(episode) if episode.state == "remediating" => would_start += 1,
            Some(episode) => {
                let why = episode
                    .control
                    .clone()
                    .unwrap_or_else(|| episode.state.clone());
                *held.entry(why).or_default() += 1;
            }
            None => *held.entry("not tracked".to_owned()).or_default() += 1,
        }
    }
    BlastRadius {
        flagged: plans.len(),
        would_start,
        held,
        plans,
    }
}

/// The summary line: how many would start, and what holds the rest.
pub fn summary(radius: &BlastRadius) -> String {
    let held: Vec<String> = radius
        .held
        .iter()
        .map(|(why, count)| format!("{count} {why}"))
        .collect();
    format!(
        "blast radius: {} flagged resources; {} would start{}",
        radius.flagged,
        radius.would_start,
        if held.is_empty() {
            String::new()
        } else {
            format!("; held or refused: {}", held.join(", "))
        }
    )
}
