//! Operator mappings: which runbook a Trusted Advisor check triggers, and with which parameters.
//!
//! Items are read exactly as AWS's walkthrough writes them (`automationParameters` as a JSON
//! string, `automationStatus` as a boolean) or with `automationParameters` as a map. Everything is
//! checked when the mapping is read, so a broken mapping is reported once, by name and field,
//! and never half-used.
//!
//! - [`MappingItem`]: the stored item, read and written in one place; reading checks each
//!   attribute's type and names the one at fault.
//! - [`Mapping`]: the validated mapping the lifecycle uses ([`Mapping::try_from`] an item).
//! - [`template`]: the parameter template language.

mod item;
pub mod template;

pub use item::{ANNOTATION_PREFIX, ATTRIBUTES, MappingItem};
pub use template::{ParameterTemplate, TemplateError, TemplateInput, Variable};

use regex::{Regex, RegexBuilder};
use serde_json::Value;
use std::fmt;

/// Compiled-program budget for operator regexes (the `regex` crate runs in linear time; this
/// bounds memory for pathological patterns).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A problem with a mapping item, naming the check and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mapping {check:?}: `{field}` {problem}")]
pub struct MappingError {
    pub check: String,
    pub field: String,
    pub problem: String,
}

/// A validated mapping.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub check_name: String,
    pub document: String,
    pub document_version: Option<String>,
    pub parameters: ParameterTemplate,
    pub regex: Option<ResourceRegex>,
    /// `mode`, or from `automationStatus` (true: automated, false or absent: approval).
    pub mode: Mode,
    /// `maxAttempts`: starts allowed per finding within the attempt window (stack default when absent).
    pub max_attempts: Option<u32>,
    /// `coolDownMinutes`: minimum time between two starts for one finding (stack default when absent).
    pub cool_down_minutes: Option<u32>,
    /// `modeTagKey`: a resource tag with this key and a mode as value overrides the mode for this
    /// check on that resource.
    pub mode_tag_key: Option<String>,
    /// `accounts`: the accounts (and OUs, `ou-…`, or the root `r-…`) the mapping remediates in;
    /// a finding of any other governed account is tracked only ([`crate::safety::out_of_scope`]).
    /// `None`: every governed account.
    pub accounts: Option<std::collections::BTreeSet<String>>,
}

/// What a mapping does with a flagged finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Start the runbook.
    Automated,
    /// Nothing starts; the OpsItem links the runbook with its parameters filled in, for an
    /// operator to run from OpsCenter.
    Approval,
    /// Nothing starts; the OpsItem records exactly what would have started.
    DryRun,
    /// Track only: no OpsItem, no runbook.
    Inactive,
}

impl Mode {
    pub fn parse(text: &str) -> Option<Mode> {
        match text.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "automated" | "automatic" => Some(Mode::Automated),
            "approval" | "manual" => Some(Mode::Approval),
            "dry-run" | "dryrun" => Some(Mode::DryRun),
            "inactive" | "off" => Some(Mode::Inactive),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Automated => "automated",
            Mode::Approval => "approval",
            Mode::DryRun => "dry-run",
            Mode::Inactive => "inactive",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Mapping {
    /// Reads a plain JSON item (`{"checkName": "...", "automationStatus": true, ...}`): the
    /// attributes' types ([`MappingItem::from_json`]), then what they mean.
    pub fn from_json(item: &Value) -> Result<Mapping, MappingError> {
        Mapping::read(item).map_err(|mut problems| problems.remove(0))
    }

    /// Reads a plain JSON item with every problem at once: the attributes' types and names
    /// ([`MappingItem::read`]), and what the attributes that read mean (a problem with an
    /// attribute already at fault is not said twice).
    pub fn read(item: &Value) -> Result<Mapping, Vec<MappingError>> {
        let (item, mut problems) = MappingItem::read(item);
        match item.meaning() {
            Ok(mapping) if problems.is_empty() => Ok(mapping),
            Ok(_) => Err(problems),
            Err(more) => {
                let said: Vec<String> = problems.iter().map(|p| p.field.clone()).collect();
                problems.extend(more.into_iter().filter(|p| !said.contains(&p.field)));
                Err(problems)
            }
        }
    }

    /// Reads an item in DynamoDB's typed JSON (`{"checkName": {"S": "..."}, ...}`) or plain JSON.
    pub fn from_any_json(item: &Value) -> Result<Mapping, MappingError> {
        Mapping::from_json(&plain_json(item))
    }
}

/// Converts an item in DynamoDB's typed JSON to plain JSON; a plain item is returned as it is.
pub fn plain_json(item: &Value) -> Value {
    let Some(object) = item.as_object() else {
        return item.clone();
    };
    let typed = !object.is_empty() && object.values().all(is_typed_attribute);
    if !typed {
        return item.clone();
    }
    serde_json::from_value::<serde_dynamo::Item>(item.clone())
        .ok()
        .and_then(|typed| serde_dynamo::from_item::<_, Value>(typed).ok())
        .unwrap_or_else(|| item.clone())
}

fn is_typed_attribute(value: &Value) -> bool {
    const TAGS: [&str; 10] = ["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"];
    value
        .as_object()
        .is_some_and(|o| o.len() == 1 && o.keys().all(|k| TAGS.contains(&k.as_str())))
}

pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

pub(crate) fn describe_expected(expected: &str, found: Option<&Value>) -> String {
    match found {
        None => format!("is missing; it must be {expected}"),
        Some(Value::String(s)) => format!("must be {expected}, found the string {s:?}"),
        Some(other) => format!("must be {expected}, found {}", json_type(other)),
    }
}

/// The operator's regex that pulls the resource id out of the resource ARN.
#[derive(Debug, Clone)]
pub struct ResourceRegex(Regex);

impl ResourceRegex {
    pub fn new(pattern: &str) -> Result<Self, String> {
        let regex = RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|error| format!("does not compile: {error}"))?;
        // captures_len counts the implicit whole-match group.
        let groups = regex.captures_len() - 1;
        if groups > 1 {
            return Err(format!(
                "has {groups} capture groups; use at most one (the resource id), and (?:...) for grouping"
            ));
        }
        Ok(Self(regex))
    }

    /// The first capture group, or the whole match when the pattern has none. An empty match is
    /// no match: an empty id must never reach a runbook.
    pub fn extract<'t>(&self, text: &'t str) -> Option<&'t str> {
        let captures = self.0.captures(text)?;
        let found = if self.0.captures_len() > 1 {
            captures.get(1)?
        } else {
            captures.get(0)?
        };
        Some(found.as_str()).filter(|id| !id.is_empty())
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

#[cfg(test)]
mod tests;
