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
        path: DiskCachedChecks::<SupportTrustedAdvisor>::default_path(),
    };
    let online = (!offline).then(|| Online {
        region: super::AwsArgs::region_of(&context.sdk),
        documents: &documents,
        advisor: &advisor,
    });
    let problems = crate::mappings::validate(items, online.as_ref()).await?;
    match context.output {
        Output::Json => println!("{}", serde_json::json!({ "problems": problems })),
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

pub(super) async fn import(
    context: &Context,
    file: &Path,
    yes: bool,
    prune: bool,
    offline: bool,
) -> Result<(), CliError> {
    let items = crate::mapping_file::read_unvalidated(file)?;
    validate_or_report(context, &items, offline).await?;
    let diff = import_diff(&context.store, &items, prune).await?;
    for (sign, checks) in [
        ("+", &diff.added),
        ("~", &diff.changed),
        ("-", &diff.removed),
    ] {
        for check in checks {
            eprintln!("{sign} {check}");
        }
    }
    eprintln!(
        "{} to add, {} to change, {} unchanged, {} to remove",
        diff.added.len(),
        diff.changed.len(),
        diff.unchanged.len(),
        diff.removed.len()
    );
    if diff.added.is_empty() && diff.changed.is_empty() && diff.removed.is_empty() {
        return Ok(());
    }
    if !yes {
        eprint!("Apply these changes to {}? [y/N] ", context.table);
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("nothing written");
            return Ok(());
        }
    }
    apply_import(&context.store, &items, &diff).await?;
    if context.output == Output::Json {
        print_json(&diff);
    }
    Ok(())
}

pub(super) async fn export(context: &Context, file: Option<PathBuf>) -> Result<(), CliError> {
    let mut items = context.store.list().await?;
    items.sort_by_key(|i| i["checkName"].as_str().unwrap_or_default().to_owned());
    let text = export_text(&items, file.as_deref())?;
    match file {
        Some(path) => std::fs::write(&path, text)
            .map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?,
        None => println!("{text}"),
    }
    Ok(())
}

pub(super) async fn validate(
    context: &Context,
    target: Option<&str>,
    offline: bool,
) -> Result<(), CliError> {
    let items = match target {
        Some(path) if Path::new(path).is_file() => {
            crate::mapping_file::read_unvalidated(Path::new(path))?
        }
        Some(check) => vec![context.store.get(check).await?.ok_or_else(|| {
            CliError::usage(format!(
                "no mapping for {check:?} in {}, and no such file",
                context.table
            ))
        })?],
        None => context.store.list().await?,
    };
    validate_or_report(context, &items, offline).await?;
    if context.output == Output::Text {
        println!("{} mappings valid", items.len());
    }
    Ok(())
}
