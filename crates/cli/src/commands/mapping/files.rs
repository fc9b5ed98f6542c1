//! `import`, `export`, `validate`: mappings as code.

use super::{Context, Output, print_json};
use crate::CliError;
use crate::mappings::{DiskCachedChecks, Online, apply_import, export_text, import_diff};
use std::path::{Path, PathBuf};
use tarem_shared::aws::ssm::SsmDocuments;
use tarem_shared::aws::support::SupportTrustedAdvisor;
use tarem_shared::ports::MappingStore;

/// Validates the items (online unless `offline`) and prints the problems; `Err(Problems)` when
/// there are any.
pub(super) async fn validate_or_report(
    context: &Context,
    items: &[serde_json::Value],
    offline: bool,
) -> Result<(), CliError> {
    let documents = SsmDocuments::new(&context.sdk);
    let advisor = DiskCachedChecks {
        inner: SupportTrustedAdvisor::for_config(&context.sdk),
        // Offline, nothing reads the cache: no credentials are looked up for its name.
        path: if offline {
            PathBuf::new()
        } else {
            DiskCachedChecks::<SupportTrustedAdvisor>::path_of(&context.sdk).await
        },
    };
    let online = (!offline).then(|| Online {
        region: super::AwsArgs::region_of(&context.sdk),
        documents: &documents,
        advisor: &advisor,
    });
    let problems = crate::mappings::validate(items, online.as_ref()).await?;
    match context.output {
        Output::Json => crate::out!("{}", serde_json::json!({ "problems": problems })),
        Output::Text if !problems.is_empty() => {
            eprintln!("{}", crate::mappings::problems_text(&problems))
        }
        Output::Text => {}
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CliError::Problems(format!(
            "{} problems found; nothing written",
            problems.len()
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
    let items = match source {
        Source::File(file) => crate::mapping_file::read_unvalidated(file)?,
        Source::Pack { pack, role } => crate::pack::load(pack, role)?,
    };
    validate_or_report(context, &items, offline).await?;
    let diff = import_diff(&context.store, &items, prune).await?;
    eprint!("{}", diff_text(&diff));
    if diff.is_empty() {
        return Ok(());
    }
    if !yes {
        use std::io::IsTerminal;
        if !std::io::stdin().is_terminal() {
            return Err(CliError::usage(format!(
                "nothing written: there is no terminal to confirm on; pass --yes to apply these changes to {}",
                context.table
            )));
        }
        eprint!("Apply these changes to {}? [y/N] ", context.table);
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("nothing written");
            return Ok(());
        }
    }
    apply_import(&context.store, &items, &diff).await?;
    match context.output {
        Output::Json => print_json(&diff),
        Output::Text => crate::out!(
            "applied to {}: {} added, {} changed, {} removed",
            context.table,
            diff.added.len(),
            diff.changed.len(),
            diff.removed.len()
        ),
    }
    Ok(())
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
        Some(check) => (
            vec![context.store.get(check).await?.ok_or_else(|| {
                CliError::usage(format!(
                    "no mapping for {check:?} in {}, and no such file",
                    context.table
                ))
            })?],
            context.table.clone(),
        ),
        None => (context.store.list().await?, context.table.clone()),
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
