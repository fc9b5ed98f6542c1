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

pub(super) async fn set_mode(
    context: &Context,
    check: &str,
    mode: Mode,
    dry_run: bool,
) -> Result<(), CliError> {
    let table = context.connect().await?;
    let Some(item) = table.store.get(check).await? else {
        return Err(super::no_mapping(table, check).await);
    };
    let changed = crate::mappings::with_mode(&item, mode);
    // What the deployed stack would refuse of the mapping in its new mode, before it is set.
    super::files::validate_or_report(context, std::slice::from_ref(&changed), true).await?;
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
