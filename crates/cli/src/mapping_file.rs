//! Mapping files: a JSON or YAML list of mapping items, plain (`"automationStatus": true`) or
//! DynamoDB-typed (`{"automationStatus": {"BOOL": true}}`) as AWS's walkthrough writes them.

use crate::CliError;
use serde_json::Value;
use std::path::Path;
use tarem_shared::mapping::{Mapping, plain_json};

/// Reads and validates every item; the first problem names the file, the item and the field.
pub fn read(path: &Path) -> Result<Vec<Value>, CliError> {
    read_unvalidated(path)?
        .into_iter()
        .enumerate()
        .map(|(index, plain)| {
            Mapping::from_json(&plain).map(|_| plain).map_err(|error| {
                CliError::Usage(format!("{}: item {}: {error}", path.display(), index + 1))
            })
        })
        .collect()
}

/// Reads every item as plain JSON, without validating (for `tarem mapping validate`).
pub fn read_unvalidated(path: &Path) -> Result<Vec<Value>, CliError> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        CliError::Usage(format!(
            "{}: cannot read the mapping file: {error}",
            path.display()
        ))
    })?;
    let yaml = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    );
    let document: Value = if yaml {
        serde_yaml_ng::from_str(&text).map_err(|error| {
            CliError::Usage(format!("{}: not valid YAML: {error}", path.display()))
        })?
    } else {
        serde_json::from_str(&text).map_err(|error| {
            CliError::Usage(format!("{}: not valid JSON: {error}", path.display()))
        })?
    };
    let items = match document {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        _ => {
            return Err(CliError::Usage(format!(
                "{}: expected a list of mapping items",
                path.display()
            )));
        }
    };
    Ok(items.iter().map(plain_json).collect())
}
