//! `add`, `update`, `enable`, `disable`, `remove`: one mapping at a time, each showing the
//! change it makes (and with `--dry-run` making none).

use super::{Context, ItemFlags};
use crate::CliError;
use crate::mappings::one_change;
use serde_json::Value;
use tarem_shared::mapping::Mode;
use tarem_shared::ports::MappingStore;

pub(super) async fn write_item(
    context: &Context,
    flags: &ItemFlags,
    replace: bool,
) -> Result<(), CliError> {
    if flags.check_name.is_none() && flags.from.is_none() {
        return Err(CliError::usage("--check-name (or --from FILE) is required"));
    }
    let args = flags.args();
    let built = match &flags.from {
        Some(_) => Some(crate::mappings::build_item(&args)?),
        None if replace => None,
        None => Some(crate::mappings::build_item(&args)?),
    };
    let check = match &built {
        Some(item) => item["checkName"].as_str().unwrap_or_default().to_owned(),
        None => flags.check_name.clone().unwrap_or_default(),
    };
    let table = context.connect().await?;
    let stored = table.store.get(&check).await?;
    let item = match (&stored, replace, built) {
        (Some(_), false, _) => {
            return Err(CliError::usage(format!(
                "{check:?} is already mapped; use `tarem mapping update`"
            )));
        }
        (None, true, _) => return Err(super::no_mapping(table, &check).await),
        // update without --from: only the attributes the flags name change.
        (Some(stored), true, None) => crate::mappings::updated_item(stored, &args)?,
        (_, _, Some(item)) => item,
        // add always builds its item: nothing else reaches here.
        (_, _, None) => return Err(CliError::usage("--check-name and --document are required")),
    };
    super::files::validate_or_report(context, std::slice::from_ref(&item), flags.offline).await?;
    write(
        context,
        &check,
        stored.as_ref(),
        Some(&item),
        flags.dry_run,
        &format!("{} {check:?}", if replace { "updated" } else { "added" }),
    )
    .await
}

/// `yes`: set it without asking. Enabling asks otherwise, after the blast radius.
pub(super) async fn set_mode(
    context: &Context,
    check: &str,
    mode: Mode,
    dry_run: bool,
    yes: bool,
) -> Result<(), CliError> {
    let table = context.connect().await?;
    let Some(item) = table.store.get(check).await? else {
        return Err(super::no_mapping(table, check).await);
    };
    let changed = crate::mappings::with_mode(&item, mode);
    // What the deployed stack would refuse of the mapping in its new mode, before it is set.
    super::files::validate_or_report(context, std::slice::from_ref(&changed), true).await?;
    if mode == Mode::Automated {
        eprint!("{}", blast_radius(context, check, &changed).await);
        if !dry_run && !yes {
            confirm(&format!("Enable {check:?} in {}?", table.table))?;
        }
    }
    write(
        context,
        check,
        Some(&item),
        Some(&changed),
        dry_run,
        &format!("{check:?} is now {mode}"),
    )
    .await
}

pub(super) async fn remove(context: &Context, check: &str, dry_run: bool) -> Result<(), CliError> {
    let table = context.connect().await?;
    let Some(item) = table.store.get(check).await? else {
        return Err(super::no_mapping(table, check).await);
    };
    let done = format!("removed {check:?}");
    write(context, check, Some(&item), None, dry_run, &done).await
}

/// Shows the change, then makes it unless `dry_run` (`after` none deletes the mapping) and
/// says `done`.
async fn write(
    context: &Context,
    check: &str,
    before: Option<&Value>,
    after: Option<&Value>,
    dry_run: bool,
    done: &str,
) -> Result<(), CliError> {
    let table = context.connect().await?;
    eprint!(
        "{}",
        super::files::diff_text(&one_change(check, before, after))
    );
    if dry_run {
        crate::out!("{check:?}: dry run, nothing written to {}", table.table);
        return Ok(());
    }
    match after {
        Some(item) => table.store.put(item).await?,
        None => table.store.delete(check).await?,
    }
    crate::out!("{done}");
    Ok(())
}

/// How many resources flagged now the enabled mapping would start on, and the first of them;
/// or why that cannot be told (the tracker unreachable: enabling is not blocked by it).
async fn blast_radius(context: &Context, check: &str, enabled: &Value) -> String {
    let Ok(connected) = context.connect().await else {
        return String::new();
    };
    let tracker_table = connected.stack.tracker_table();
    let tracker = tarem_shared::aws::dynamodb::DynamoTracker::new(
        context.aws.dynamodb(&connected.sdk),
        &tracker_table,
    );
    let account = connected
        .stack
        .deployed
        .as_ref()
        .map(|d| d.account.clone())
        .filter(|a| !a.is_empty());
    let checks = [check.to_owned()];
    let rows = match crate::blast::flagged_rows(&tracker, account.as_deref(), &checks).await {
        Ok(rows) => rows,
        Err(error) => {
            return format!(
                "blast radius unknown: the tracker ({tracker_table}) could not be read: {error}\n"
            );
        }
    };
    let items = [enabled.clone()];
    let config = match connected.stack.lifecycle() {
        Ok(Some(config)) => config,
        _ => crate::plan::playground_stack(&items),
    };
    let radius = crate::blast::blast_radius(&rows, &items, &config);
    let mut text = format!("{}\n", crate::blast::summary(&radius));
    const SHOWN: usize = 5;
    let starts = radius
        .plans
        .iter()
        .filter(|p| p.episode.as_ref().is_some_and(|e| e.state == "remediating"));
    for plan in starts.clone().take(SHOWN) {
        text.push_str(&format!(
            "  {} | {}\n",
            plan.finding.as_ref().map_or("", |f| f.resource.as_str()),
            plan.would.as_deref().unwrap_or_default()
        ));
    }
    let more = starts.count().saturating_sub(SHOWN);
    if more > 0 {
        text.push_str(&format!(
            "  … and {more} more (tarem plan --flagged --check NAME lists them all)\n"
        ));
    }
    text
}

/// Asks on the terminal; without one, `--yes` is required.
fn confirm(question: &str) -> Result<(), CliError> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage(
            "nothing written: there is no terminal to confirm on; pass --yes",
        ));
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        // Declined is not applied: a script reading the exit code must not think it was.
        Err(CliError::Problems("declined: nothing written".into()))
    }
}
