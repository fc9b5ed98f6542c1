//! ## Parameter templates
//! `automationParameters` maps each runbook parameter to a list of strings. Inside the strings:
//! `$resourceId` (the regex's first capture group, or the whole match), `$resourceArn`, `$region`,
//! `$accountId`, `$checkName`, `${detail.<column>}` (a check-item column), the braced forms
//! `${resourceId}` etc., and `$$` for a literal `$`. A `$` not followed by a name is literal; any
//! other name is an error. Values are substituted into the parsed strings, never into JSON text,
//! so a value can never add, remove or split a parameter.

use super::json_type;
use crate::finding::Finding;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// A variable a template may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Variable {
    ResourceId,
    ResourceArn,
    Region,
    AccountId,
    CheckName,
    Detail(String),
}

impl fmt::Display for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Variable::ResourceId => f.write_str("$resourceId"),
            Variable::ResourceArn => f.write_str("$resourceArn"),
            Variable::Region => f.write_str("$region"),
            Variable::AccountId => f.write_str("$accountId"),
            Variable::CheckName => f.write_str("$checkName"),
            Variable::Detail(column) => write!(f, "${{detail.{column}}}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Var(Variable),
}

/// One template string, split into literal text and variables once, at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TemplateString(Vec<Segment>);

impl TemplateString {
    fn parse(text: &str) -> Result<Self, String> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            literal.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                literal.push('$');
                rest = tail;
            } else if let Some(inner) = after.strip_prefix('{') {
                let end = inner
                    .find('}')
                    .ok_or_else(|| format!("has an unterminated `${{` in {text:?}"))?;
                let name = &inner[..end];
                let variable = match name.strip_prefix("detail.") {
                    Some(column) if !column.is_empty() => Variable::Detail(column.to_owned()),
                    _ => Self::variable(name).ok_or_else(|| unknown(name, text))?,
                };
                Self::flush(&mut segments, &mut literal);
                segments.push(Segment::Var(variable));
                rest = &inner[end + 1..];
            } else {
                let name_len = after
                    .char_indices()
                    .find(|&(i, c)| {
                        !(c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()))
                    })
                    .map_or(after.len(), |(i, _)| i);
                if name_len == 0 {
                    literal.push('$');
                    rest = after;
                    continue;
                }
                let name = &after[..name_len];
                let variable = Self::variable(name).ok_or_else(|| unknown(name, text))?;
                Self::flush(&mut segments, &mut literal);
                segments.push(Segment::Var(variable));
                rest = &after[name_len..];
            }
        }
        literal.push_str(rest);
        Self::flush(&mut segments, &mut literal);
        Ok(Self(segments))
    }

    fn variable(name: &str) -> Option<Variable> {
        Some(match name {
            "resourceId" => Variable::ResourceId,
            "resourceArn" => Variable::ResourceArn,
            "region" => Variable::Region,
            "accountId" => Variable::AccountId,
            "checkName" => Variable::CheckName,
            _ => return None,
        })
    }

    fn flush(segments: &mut Vec<Segment>, literal: &mut String) {
        if !literal.is_empty() {
            segments.push(Segment::Literal(std::mem::take(literal)));
        }
    }
}

fn unknown(name: &str, text: &str) -> String {
    format!(
        "uses the unknown variable `${name}` in {text:?}; known: $resourceId, $resourceArn, $region, $accountId, $checkName, ${{detail.<column>}}"
    )
}

/// The values a template is filled with, for one finding.
#[derive(Debug, Clone, Copy)]
pub struct TemplateInput<'a> {
    pub finding: &'a Finding,
    /// What the mapping's regex extracted; `None` when the mapping has no regex.
    pub resource_id: Option<&'a str>,
}

/// Why a template could not be filled for a finding. Permanent for that finding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parameter `{parameter}`: {problem}")]
pub struct TemplateError {
    pub parameter: String,
    pub problem: String,
}

/// `automationParameters`, parsed and checked: parameter name → list of template strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParameterTemplate(BTreeMap<String, Vec<TemplateString>>);

impl ParameterTemplate {
    /// Accepts the JSON text of AWS's walkthrough or a map; values must be lists of strings, as
    /// `StartAutomationExecution` takes them.
    pub fn parse(value: &Value) -> Result<Self, String> {
        Self::from_strings(&Self::strings_of(value)?)
    }

    /// The shape `automationParameters` must have: a map (or the JSON text of one) of parameter
    /// names to lists of strings.
    pub fn strings_of(value: &Value) -> Result<BTreeMap<String, Vec<String>>, String> {
        let parsed;
        let object = match value {
            Value::String(text) => {
                parsed = serde_json::from_str::<Value>(text)
                    .map_err(|error| format!("is not valid JSON: {error}"))?;
                parsed
                    .as_object()
                    .ok_or_else(|| format!("must be a JSON object, found {}", json_type(&parsed)))?
            }
            Value::Object(object) => object,
            other => {
                return Err(format!(
                    "must be a map or a JSON string of one, found {}",
                    json_type(other)
                ));
            }
        };
        let mut out = BTreeMap::new();
        for (name, value) in object {
            if name.trim().is_empty() {
                return Err("has a parameter with an empty name".into());
            }
            let Value::Array(items) = value else {
                return Err(format!(
                    "parameter {name:?} must be a list of strings (e.g. [\"$resourceId\"]), found {}",
                    json_type(value)
                ));
            };
            let strings = items
                .iter()
                .map(|item| match item {
                    Value::String(text) => Ok(text.clone()),
                    other => Err(format!(
                        "parameter {name:?} must be a list of strings, found {} in the list",
                        json_type(other)
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?;
            out.insert(name.clone(), strings);
        }
        Ok(out)
    }

    /// Parses every template string (the variables must be known).
    pub fn from_strings(strings: &BTreeMap<String, Vec<String>>) -> Result<Self, String> {
        let mut out = BTreeMap::new();
        for (name, values) in strings {
            let parsed = values
                .iter()
                .map(|text| {
                    TemplateString::parse(text)
                        .map_err(|problem| format!("parameter {name:?} {problem}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            out.insert(name.clone(), parsed);
        }
        Ok(Self(out))
    }

    /// Whether any value uses the variable.
    pub fn uses(&self, variable: &Variable) -> bool {
        self.0
            .values()
            .flatten()
            .flat_map(|s| &s.0)
            .any(|segment| matches!(segment, Segment::Var(v) if v == variable))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The values of a parameter that hold no variable (an `AutomationAssumeRole` ARN, say).
    pub fn literal_values(&self, parameter: &str) -> Vec<String> {
        self.0
            .get(parameter)
            .into_iter()
            .flatten()
            .filter_map(|value| match value.0.as_slice() {
                [Segment::Literal(text)] => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    /// The parameter names.
    pub fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    /// Fills the template for one finding. Values land inside their own strings only.
    pub fn render(
        &self,
        input: TemplateInput<'_>,
    ) -> Result<BTreeMap<String, Vec<String>>, TemplateError> {
        self.0
            .iter()
            .map(|(name, strings)| {
                let values = strings
                    .iter()
                    .map(|template| {
                        template
                            .0
                            .iter()
                            .try_fold(String::new(), |mut out, segment| {
                                match segment {
                                    Segment::Literal(text) => out.push_str(text),
                                    Segment::Var(variable) => {
                                        out.push_str(&value_of(variable, input).map_err(
                                            |problem| TemplateError {
                                                parameter: name.clone(),
                                                problem,
                                            },
                                        )?)
                                    }
                                }
                                Ok(out)
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((name.clone(), values))
            })
            .collect()
    }
}

fn value_of(variable: &Variable, input: TemplateInput<'_>) -> Result<String, String> {
    let finding = input.finding;
    match variable {
        Variable::ResourceId => input
            .resource_id
            .map(str::to_owned)
            .ok_or_else(|| "$resourceId has no value: the mapping has no regexPattern".to_owned()),
        Variable::ResourceArn => finding.resource_arn().map(str::to_owned).ok_or_else(|| {
            format!(
                "$resourceArn has no value: the resource {:?} is not an ARN",
                finding.resource
            )
        }),
        Variable::Region => Ok(finding.region.clone()),
        Variable::AccountId => finding
            .account_id
            .clone()
            .ok_or_else(|| "$accountId has no value: the finding names no account".to_owned()),
        Variable::CheckName => Ok(finding.check_name.clone()),
        Variable::Detail(column) => {
            finding
                .check_item_detail
                .get(column)
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "{variable} has no value: the finding has no check-item column {column:?}"
                    )
                })
        }
    }
}
