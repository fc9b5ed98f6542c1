//! `add`, `update`, `enable`, `disable`, `remove`: one mapping at a time.

use super::{Context, ItemFlags};
use crate::CliError;
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
    let stored = context.store.get(&check).await?;
    let item = match (stored, replace, built) {
        (Some(_), false, _) => {
            return Err(CliError::usage(format!(
                "{check:?} is already mapped; use `tarem mapping update`"
            )));
        }
        (None, true, _) => {
            return Err(CliError::usage(format!(
                "{check:?} is not mapped; use `tarem mapping add`"
            )));
        }
        // update without --from: only the attributes the flags name change.
        (Some(stored), true, None) => crate::mappings::updated_item(&stored, &args)?,
        (_, _, Some(item)) => item,
        // add always builds its item: nothing else reaches here.
        (_, _, None) => return Err(CliError::usage("--check-name and --document are required")),
    };
    super::files::validate_or_report(context, std::slice::from_ref(&item), flags.offline).await?;
    context.store.put(&item).await?;
    crate::out!("{} {check:?}", if replace { "updated" } else { "added" });
    Ok(())
}

pub(super) async fn set_mode(context: &Context, check: &str, mode: Mode) -> Result<(), CliError> {
    let item = context
        .store
        .get(check)
        .await?
        .ok_or_else(|| CliError::usage(format!("no mapping for {check:?}")))?;
    context
        .store
        .put(&crate::mappings::with_mode(&item, mode))
        .await?;
    crate::out!("{check:?} is now {mode}");
    Ok(())
}

pub(super) async fn remove(context: &Context, check: &str) -> Result<(), CliError> {
    if context.store.get(check).await?.is_none() {
        return Err(CliError::usage(format!(
            "no mapping for {check:?} in {}",
            context.table
        )));
    }
    context.store.delete(check).await?;
    crate::out!("removed {check:?}");
    Ok(())
}
