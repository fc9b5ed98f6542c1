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
    let item = crate::mappings::build_item(&flags.args())?;
    let check = item["checkName"].as_str().unwrap_or_default().to_owned();
    let exists = context.store.get(&check).await?.is_some();
    if exists && !replace {
        return Err(CliError::usage(format!(
            "{check:?} is already mapped; use `tarem mapping update`"
        )));
    }
    if !exists && replace {
        return Err(CliError::usage(format!(
            "{check:?} is not mapped; use `tarem mapping add`"
        )));
    }
    super::files::validate_or_report(context, std::slice::from_ref(&item), flags.offline).await?;
    context.store.put(&item).await?;
    println!("{} {check:?}", if replace { "updated" } else { "added" });
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
    println!("{check:?} is now {mode}");
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
    println!("removed {check:?}");
    Ok(())
}
