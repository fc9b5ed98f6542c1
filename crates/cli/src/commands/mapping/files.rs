//! `import`, `export`, `validate`: mappings as code.

use super::{Context, Output, print_json};
use crate::CliError;
use crate::mappings::{DiskCachedChecks, Online, apply_import, export_text, import_diff};
use std::path::{Path, PathBuf};
use tarem_shared::aws::ssm::SsmDocuments;
use tarem_shared::aws::support::SupportTrustedAdvisor;
use tarem_shared::mapping::plain_json;
use tarem_shared::ports::MappingStore;

/// Validates the items (online unless `offline`) and prints the problems; `Err(Problems)` when
/// there are any.
pub(super) async fn validate_or_report(
    context: &Context,
    items: &[serde_json::Value],
    offline: bool,
) -> Result<(), CliError> {
    // Offline, the table and the stack are left alone unless the command already reached them
    // (an add writes to the table: what the stack would refuse is said first).
    let connected = match offline {
        true => context.connected.get(),
        false => Some(context.connect().await?),
    };
    let checked = match connected {
        Some(connected) if !offline => {
            let documents = SsmDocuments::new(&connected.sdk);
            let advisor = DiskCachedChecks {
                inner: SupportTrustedAdvisor::for_config(&connected.sdk),
                path: DiskCachedChecks::<SupportTrustedAdvisor>::path_of(&connected.sdk).await,
            };
            let online = Online {
                region: super::AwsArgs::region_of(&connected.sdk),
                documents: &documents,
                advisor: &advisor,
            };
            crate::mappings::validate(items, Some(&online), connected.safety.as_ref()).await?
        }
        _ => {
            crate::mappings::validate(items, None, connected.and_then(|c| c.safety.as_ref()))
                .await?
        }
    };
    let stack_said = connected
        .map(|c| c.stack.describe_source())
        .unwrap_or_else(|| "any stack".into());
    let problems = &checked.problems;
    match context.output {
        Output::Json => crate::out!(
            "{}",
            serde_json::json!({ "problems": problems, "notes": checked.notes })
        ),
        Output::Text => {
            if !problems.is_empty() {
                eprintln!("{}", crate::mappings::problems_text(problems));
            }
            if !checked.notes.is_empty() {
                eprintln!(
                    "note: what {} would refuse (the OpsItems will say so):\n{}",
                    stack_said,
                    crate::mappings::problems_text(&checked.notes)
                );
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CliError::Problems(format!(
            "{} found; nothing written",
            crate::output::plural(problems.len(), "problem")
        )))
    }
}

/// What `import` reads.
pub(super) enum Source<'a> {
    File(&'a Path),
    /// A starter pack, with the automation role its runbooks assume.
    Pack {
        pack: &'a str,
        role: &'a str,
    },
}

pub(super) async fn import(
    context: &Context,
    source: Source<'_>,
    yes: bool,
    prune: bool,
    offline: bool,
) -> Result<(), CliError> {
    let table = context.connect().await?;
    let items = match source {
        Source::File(file) => crate::mapping_file::read_unvalidated(file)?,
        Source::Pack { pack, role } => {
            keep_operator_modes(crate::pack::load(pack, role)?, &table.store.list().await?)
        }
    };
    validate_or_report(context, &items, offline).await?;
    let diff = import_diff(&table.store, &items, prune).await?;
    eprint!("{}", diff_text(&diff));
    if diff.is_empty() {
        return Ok(());
    }
    if !yes {
        use std::io::IsTerminal;
        if !std::io::stdin().is_terminal() {
            return Err(CliError::usage(format!(
                "nothing written: there is no terminal to confirm on; pass --yes to apply these changes to {}",
                table.table
            )));
        }
        eprint!("Apply these changes to {}? [y/N] ", table.table);
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            // Declined is not applied: a script reading the exit code must not think it was.
            return Err(CliError::Problems("declined: nothing written".into()));
        }
    }
    crate::output::progress(&format!("writing to {}…", table.table));
    apply_import(&table.store, &items, &diff).await?;
    crate::output::progress_done();
    match context.output {
        Output::Json => print_json(&diff),
        Output::Text => crate::out!(
            "applied to {}: {} added, {} changed, {} removed",
            table.table,
            diff.added.len(),
            diff.changed.len(),
            diff.removed.len()
        ),
    }
    Ok(())
}

/// A pack entry already in the table (the same `x-id`) keeps the mode its operator chose: a
/// re-import after an upgrade brings the entry's new text, not approval mode back.
fn keep_operator_modes(
    mut items: Vec<serde_json::Value>,
    stored: &[serde_json::Value],
) -> Vec<serde_json::Value> {
    for item in &mut items {
        let Some(mine) = stored
            .iter()
            .map(plain_json)
            .find(|s| s.get("x-id").is_some() && s.get("x-id") == item.get("x-id"))
        else {
            continue;
        };
        for key in ["mode", "automationStatus"] {
            match (mine.get(key), item.as_object_mut()) {
                (Some(value), Some(fields)) => {
                    fields.insert(key.to_owned(), value.clone());
                }
                (None, Some(fields)) => {
                    fields.remove(key);
                }
                _ => {}
            }
        }
    }
    items
}

/// The diff an operator reviews: each check, and for a changed one each attribute, before and
/// after.
pub fn diff_text(diff: &crate::mappings::ImportDiff) -> String {
    let show = |value: &Option<serde_json::Value>| match value {
        None => "(absent)".to_owned(),
        Some(value) => value.to_string(),
    };
    let mut text = String::new();
    for check in &diff.added {
        text.push_str(&format!("+ {check}\n"));
    }
    for changed in &diff.changed {
        text.push_str(&format!("~ {}\n", changed.check));
        for field in &changed.fields {
            text.push_str(&format!(
                "    {}: {} -> {}\n",
                field.field,
                show(&field.before),
                show(&field.after)
            ));
        }
    }
    for check in &diff.removed {
        text.push_str(&format!("- {check}\n"));
    }
    text.push_str(&format!(
        "{} to add, {} to change, {} unchanged, {} to remove\n",
        diff.added.len(),
        diff.changed.len(),
        diff.unchanged.len(),
        diff.removed.len()
    ));
    text
}

pub(super) async fn export(context: &Context, file: Option<PathBuf>) -> Result<(), CliError> {
    let mut items: Vec<serde_json::Value> = context
        .connect()
        .await?
        .store
        .list()
        .await?
        .iter()
        .map(crate::mappings::canonical)
        .collect();
    items.sort_by_key(|i| i["checkName"].as_str().unwrap_or_default().to_owned());
    let text = export_text(&items, file.as_deref())?;
    match file {
        Some(path) => std::fs::write(&path, text)
            .map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?,
        None => crate::out!("{text}"),
    }
    Ok(())
}

pub(super) async fn validate(
    context: &Context,
    target: Option<&str>,
    offline: bool,
) -> Result<(), CliError> {
    let (items, source) = match target {
        Some(path) if Path::new(path).is_file() => (
            crate::mapping_file::read_unvalidated(Path::new(path))?,
            path.to_owned(),
        ),
        Some(check) => {
            let table = context.connect().await?;
            match table.store.get(check).await? {
                Some(item) => (vec![item], table.table.clone()),
                None => return Err(super::no_mapping(table, check).await),
            }
        }
        None => {
            let table = context.connect().await?;
            (table.store.list().await?, table.table.clone())
        }
    };
    if items.is_empty() {
        crate::out!("{source} holds no mappings: nothing to validate");
        return Ok(());
    }
    validate_or_report(context, &items, offline).await?;
    if context.output == Output::Text {
        crate::out!("{} valid", crate::output::plural(items.len(), "mapping"));
    }
    Ok(())
}
