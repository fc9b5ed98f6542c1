//! The files `simulate` and `plan` read: event files or folders of them, and the mapping file a
//! folder may hold beside its events.

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
                    found.mappings_found.push(entry);
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
        }
    }
    if found.events.is_empty() {
        return Err(CliError::Usage(
            "no event files: name Trusted Advisor event files or folders of them".into(),
        ));
    }
    Ok(found)
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
