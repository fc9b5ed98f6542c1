//! The files `simulate` and `plan` read: event files or folders of them, and the mappings they
//! play: `--mappings FILE`, `--pack NAME`, or the mapping file beside the events (in a folder
//! named, or in the folder of an event file named).

use crate::CliError;
use serde_json::Value;
use std::path::{Path, PathBuf};
use tarem_shared::mapping::plain_json;

/// What the command line named, sorted out.
#[derive(Debug, Default)]
pub struct Inputs {
    /// Event files, each file as given, each folder's `*.json` in name order.
    pub events: Vec<PathBuf>,
    /// Mapping files found in the folders (a list of items with a `checkName`).
    pub mappings_found: Vec<PathBuf>,
}

/// Whether a JSON document is a list of mapping items rather than events.
pub fn looks_like_mappings(document: &Value) -> bool {
    let items = match document {
        Value::Array(items) if !items.is_empty() => items,
        _ => return false,
    };
    items.iter().all(|item| {
        let plain = plain_json(item);
        plain.get("checkName").is_some() && plain.get("detail").is_none()
    })
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// Each file as given, each folder's `*.json` files in name order (not recursing). In a folder,
/// a mapping file is set apart rather than read as an event; a mapping file named on its own
/// is a usage error (it belongs after `--mappings`). `mappings` is left out wherever it is.
pub fn event_files(inputs: &[PathBuf], mappings: Option<&Path>) -> Result<Inputs, CliError> {
    let skip = mappings.and_then(|m| m.canonicalize().ok());
    let mut found = Inputs::default();
    for input in inputs {
        let metadata = std::fs::metadata(input)
            .map_err(|error| CliError::Usage(format!("{}: {error}", input.display())))?;
        if metadata.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|error| CliError::Usage(format!("{}: {error}", input.display())))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|path| path.is_file() && path.extension().is_some_and(|e| e == "json"))
                .filter(|path| path.canonicalize().ok() != skip)
                .collect();
            entries.sort();
            for entry in entries {
                if read_json(&entry).is_some_and(|doc| looks_like_mappings(&doc)) {
                    if !found.mappings_found.contains(&entry) {
                        found.mappings_found.push(entry);
                    }
                } else {
                    found.events.push(entry);
                }
            }
        } else {
            if input.canonicalize().ok() != skip
                && read_json(input).is_some_and(|doc| looks_like_mappings(&doc))
            {
                return Err(CliError::Usage(format!(
                    "{} holds mapping items, not events: pass it with --mappings",
                    input.display()
                )));
            }
            found.events.push(input.clone());
            // The mapping file beside an event file counts as it does in a folder.
            for beside in mapping_files_in(input.parent().unwrap_or(Path::new(".")), &skip) {
                if !found.mappings_found.contains(&beside) {
                    found.mappings_found.push(beside);
                }
            }
        }
    }
    if found.events.is_empty() {
        return Err(CliError::Usage(
            "no event files: name Trusted Advisor event files or folders of them".into(),
        ));
    }
    Ok(found)
}

/// The mapping files in a folder (`*.json` holding mapping items), in name order.
fn mapping_files_in(folder: &Path, skip: &Option<PathBuf>) -> Vec<PathBuf> {
    let folder = if folder.as_os_str().is_empty() {
        Path::new(".")
    } else {
        folder
    };
    let mut found: Vec<PathBuf> = std::fs::read_dir(folder)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file() && path.extension().is_some_and(|e| e == "json"))
        .filter(|path| path.canonicalize().ok() != *skip)
        .filter(|path| read_json(path).is_some_and(|doc| looks_like_mappings(&doc)))
        .map(|path| path.strip_prefix("./").map(Path::to_owned).unwrap_or(path))
        .collect();
    found.sort();
    found
}

/// The mappings `plan` and `simulate` play when they are not the table's, and where they came
/// from, in words.
pub struct LocalMappings {
    pub items: Vec<Value>,
    pub said: String,
}

/// What a pack's `AutomationAssumeRole` is while it is played rather than imported: a role
/// that does not exist, which the output names.
pub const PACK_ROLE_PLACEHOLDER: &str = "arn:aws:iam::123456789012:role/PLACEHOLDER-pack-role";

/// `--pack` (a pack's name, or `all`), else `--mappings FILE`, else the mapping
/// file beside the events; none means the table's. `validate` reads a file as `simulate` needs
/// it (every item valid); `plan` shows a broken item's problem on its event instead.
pub fn local_mappings(
    named: Option<&Path>,
    pack: Option<&str>,
    inputs: &Inputs,
    validate: bool,
) -> Result<Option<LocalMappings>, CliError> {
    if let Some(pack) = pack {
        let names: Vec<&str> = if pack == "all" {
            crate::pack::PACKS.iter().map(|(name, _)| *name).collect()
        } else {
            vec![pack]
        };
        let mut items = vec![];
        for name in &names {
            items.extend(crate::pack::load(name, PACK_ROLE_PLACEHOLDER)?);
        }
        return Ok(Some(LocalMappings {
            items,
            said: format!(
                "the {} pack{}, AutomationAssumeRole {PACK_ROLE_PLACEHOLDER} (a placeholder: \
                 `tarem mapping pack-policy` says the role to create)",
                names.join(", "),
                if names.len() == 1 { "" } else { "s" }
            ),
        }));
    }
    let Some(path) = mapping_file(named, inputs)? else {
        return Ok(None);
    };
    let items = if validate {
        crate::mapping_file::read(&path)?
    } else {
        crate::mapping_file::read_unvalidated(&path)?
    };
    let said = if named.is_some() {
        path.display().to_string()
    } else {
        format!("{} (found beside the events)", path.display())
    };
    Ok(Some(LocalMappings { items, said }))
}

/// The mapping file to use: the one named with `--mappings`, else the one found beside the
/// events (two found is ambiguous: a usage error naming both).
pub fn mapping_file(named: Option<&Path>, inputs: &Inputs) -> Result<Option<PathBuf>, CliError> {
    if let Some(named) = named {
        return Ok(Some(named.to_owned()));
    }
    match inputs.mappings_found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        many => Err(CliError::Usage(format!(
            "several mapping files beside the events ({}): choose one with --mappings",
            many.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}
