//! Operator mappings: which runbook a Trusted Advisor check triggers, and with which parameters.
//!
//! Items are read exactly as AWS's walkthrough writes them (`automationParameters` as a JSON
//! string, `automationStatus` as a boolean) or with `automationParameters` as a map. Everything is
//! checked when the mapping is read, so a broken mapping is reported once, by name and field,
//! and never half-used.
//!
//! ## Parameter templates
//! `automationParameters` maps each runbook parameter to a list of strings. Inside the strings:
//! `$resourceId` (the regex's first capture group, or the whole match), `$resourceArn`, `$region`,
//! `$accountId`, `$checkName`, `${detail.<column>}` (a check-item column), the braced forms
//! `${resourceId}` etc., and `$$` for a literal `$`. A `$` not followed by a name is literal; any
//! other name is an error. Values are substituted into the parsed strings, never into JSON text,
//! so a value can never add, remove or split a parameter.

use crate::finding::Finding;
use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// Compiled-program budget for operator regexes (the `regex` crate runs in linear time; this
/// bounds memory for pathological patterns).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A problem with a mapping item, naming the check and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mapping {check:?}: `{field}` {problem}")]
pub struct MappingError {
    pub check: String,
    pub field: &'static str,
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
}

/// What a mapping does with a flagged finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
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

fn positive_number(
    object: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<u32>, String> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|n| (1..=u64::from(u32::MAX)).contains(n))
            .map(|n| Some(n as u32))
            .ok_or_else(|| format!("must be a whole number of at least 1, found {n}")),
        other => Err(describe_expected("a whole number of at least 1", other)),
    }
}

impl Mapping {
    /// Reads a plain JSON item (`{"checkName": "...", "automationStatus": true, ...}`).
    pub fn from_json(item: &Value) -> Result<Mapping, MappingError> {
        let object = item.as_object().ok_or_else(|| MappingError {
            check: String::new(),
            field: "(item)",
            problem: format!("must be an object, found {}", json_type(item)),
        })?;
        let check = match object.get("checkName") {
            Some(Value::String(name)) if !name.trim().is_empty() => name.clone(),
            other => {
                return Err(MappingError {
                    check: String::new(),
                    field: "checkName",
                    problem: describe_expected("a non-empty string", other),
                });
            }
        };
        let error = |field: &'static str, problem: String| MappingError {
            check: check.clone(),
            field,
            problem,
        };
        let document = match object.get("ssmAutomationDocument") {
            Some(Value::String(doc)) if !doc.trim().is_empty() => doc.trim().to_owned(),
            other => {
                return Err(error(
                    "ssmAutomationDocument",
                    describe_expected("a non-empty string (the runbook's name or ARN)", other),
                ));
            }
        };
        let document_version = match object.get("documentVersion") {
            None | Some(Value::Null) => None,
            Some(Value::String(v)) => Some(v.clone()),
            other => {
                return Err(error(
                    "documentVersion",
                    describe_expected("a string", other),
                ));
            }
        };
        let parameters = match object.get("automationParameters") {
            None | Some(Value::Null) => ParameterTemplate::default(),
            Some(value) => ParameterTemplate::parse(value)
                .map_err(|problem| error("automationParameters", problem))?,
        };
        let regex = match object.get("regexPattern") {
            None | Some(Value::Null) => None,
            Some(Value::String(pattern)) => Some(
                ResourceRegex::new(pattern).map_err(|problem| error("regexPattern", problem))?,
            ),
            other => return Err(error("regexPattern", describe_expected("a string", other))),
        };
        let automation_status = match object.get("automationStatus") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(on)) => *on,
            other => {
                return Err(error(
                    "automationStatus",
                    describe_expected("a boolean (true or false)", other),
                ));
            }
        };
        // `mode` wins over `automationStatus`, which stays for AWS's walkthrough items.
        let mode = match object.get("mode") {
            None | Some(Value::Null) if automation_status => Mode::Automated,
            None | Some(Value::Null) => Mode::Approval,
            Some(Value::String(text)) => Mode::parse(text).ok_or_else(|| {
                error(
                    "mode",
                    format!("must be automated, approval, dry-run or inactive, found {text:?}"),
                )
            })?,
            other => {
                return Err(error(
                    "mode",
                    describe_expected("one of automated, approval, dry-run, inactive", other),
                ));
            }
        };
        let max_attempts = positive_number(object, "maxAttempts")
            .map_err(|problem| error("maxAttempts", problem))?;
        let cool_down_minutes = positive_number(object, "coolDownMinutes")
            .map_err(|problem| error("coolDownMinutes", problem))?;
        let mode_tag_key = match object.get("modeTagKey") {
            None | Some(Value::Null) => None,
            Some(Value::String(key)) if !key.trim().is_empty() => Some(key.trim().to_owned()),
            other => {
                return Err(error(
                    "modeTagKey",
                    describe_expected("a non-empty tag key", other),
                ));
            }
        };
        if parameters.uses(&Variable::ResourceId) && regex.is_none() {
            return Err(error(
                "regexPattern",
                "is missing, but automationParameters uses $resourceId, which the regex extracts"
                    .into(),
            ));
        }
        Ok(Mapping {
            check_name: check,
            document,
            document_version,
            parameters,
            regex,
            mode,
            max_attempts,
            cool_down_minutes,
            mode_tag_key,
        })
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

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

fn describe_expected(expected: &str, found: Option<&Value>) -> String {
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
        Self::from_object(object).map(Self)
    }

    fn from_object(
        object: &Map<String, Value>,
    ) -> Result<BTreeMap<String, Vec<TemplateString>>, String> {
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
                    Value::String(text) => TemplateString::parse(text)
                        .map_err(|problem| format!("parameter {name:?} {problem}")),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Status;
    use serde_json::json;

    /// The item exactly as AWS's walkthrough `put-item` writes it.
    fn walkthrough_item() -> Value {
        json!({
            "checkName": {"S": "Security Groups - Specific Ports Unrestricted"},
            "ssmAutomationDocument": {"S": "AWS-DisablePublicAccessForSecurityGroup"},
            "automationParameters": {"S": "{\"GroupId\": [\"$resourceId\"], \"AutomationAssumeRole\": [\"arn:aws:iam::111122223333:role/Example\"]}"},
            "regexPattern": {"S": "(sg-\\w+)"},
            "automationStatus": {"BOOL": true}
        })
    }

    fn finding(resource: &str) -> Finding {
        let at = chrono::DateTime::UNIX_EPOCH;
        Finding {
            check_item_detail: BTreeMap::from([("Port".to_owned(), "22".to_owned())]),
            ..Finding::new(
                "111122223333",
                "Security Groups - Specific Ports Unrestricted",
                resource,
                "eu-west-1",
            )
            .at(Status::Red, at, at)
        }
    }

    fn render(
        mapping: &Mapping,
        resource: &str,
    ) -> Result<BTreeMap<String, Vec<String>>, TemplateError> {
        let finding = finding(resource);
        let id = mapping.regex.as_ref().and_then(|r| r.extract(resource));
        mapping.parameters.render(TemplateInput {
            finding: &finding,
            resource_id: id,
        })
    }

    #[test]
    fn the_walkthrough_item_and_its_plain_twin_read_the_same() {
        let typed = Mapping::from_any_json(&walkthrough_item()).unwrap();
        let plain = Mapping::from_json(&json!({
            "checkName": "Security Groups - Specific Ports Unrestricted",
            "ssmAutomationDocument": "AWS-DisablePublicAccessForSecurityGroup",
            "automationParameters": {"GroupId": ["$resourceId"], "AutomationAssumeRole": ["arn:aws:iam::111122223333:role/Example"]},
            "regexPattern": "(sg-\\w+)",
            "automationStatus": true
        }))
        .unwrap();
        assert_eq!((typed.mode, plain.mode), (Mode::Automated, Mode::Automated));
        assert_eq!(typed.document, plain.document);
        assert_eq!(typed.parameters, plain.parameters);
        let arn = "arn:aws:ec2:eu-west-1:111122223333:security-group/sg-0abc";
        let expected = BTreeMap::from([
            (
                "AutomationAssumeRole".to_owned(),
                vec!["arn:aws:iam::111122223333:role/Example".to_owned()],
            ),
            ("GroupId".to_owned(), vec!["sg-0abc".to_owned()]),
        ]);
        assert_eq!(render(&typed, arn).unwrap(), expected);
        assert_eq!(render(&plain, arn).unwrap(), expected);
    }

    #[test]
    fn broken_mappings_name_the_field() {
        let with = |key: &str, value: Value| {
            let mut item = plain_json(&walkthrough_item());
            item[key] = value;
            Mapping::from_json(&item).unwrap_err()
        };
        let cases = [
            (
                with("regexPattern", json!("(sg-\\w+")),
                "regexPattern",
                "does not compile",
            ),
            (
                with("regexPattern", json!("(sg)-(\\w+)")),
                "regexPattern",
                "2 capture groups",
            ),
            (
                with("automationParameters", json!("{GroupId: [")),
                "automationParameters",
                "not valid JSON",
            ),
            (
                with("automationParameters", json!("[1]")),
                "automationParameters",
                "must be a JSON object",
            ),
            (
                with("automationParameters", json!({"GroupId": "$resourceId"})),
                "automationParameters",
                "must be a list of strings",
            ),
            (
                with("automationParameters", json!({"GroupId": [7]})),
                "automationParameters",
                "found a number in the list",
            ),
            (
                with("automationParameters", json!({"GroupId": ["$resourceID"]})),
                "automationParameters",
                "unknown variable `$resourceID`",
            ),
            (
                with("automationParameters", json!({"GroupId": ["${resource"]})),
                "automationParameters",
                "unterminated",
            ),
            (
                with("automationStatus", json!("true")),
                "automationStatus",
                "found the string \"true\"",
            ),
            (
                with("ssmAutomationDocument", json!("")),
                "ssmAutomationDocument",
                "non-empty string",
            ),
            (with("checkName", json!(5)), "checkName", "found a number"),
        ];
        for (error, field, problem) in cases {
            assert_eq!(error.field, field, "{error}");
            assert!(
                error.to_string().contains(problem),
                "{error} should say {problem:?}"
            );
        }
        let mut no_regex = plain_json(&walkthrough_item());
        no_regex.as_object_mut().unwrap().remove("regexPattern");
        assert_eq!(
            Mapping::from_json(&no_regex).unwrap_err().field,
            "regexPattern"
        );
    }

    #[test]
    fn an_absent_automation_status_means_off() {
        let mut item = plain_json(&walkthrough_item());
        item.as_object_mut().unwrap().remove("automationStatus");
        assert_eq!(Mapping::from_json(&item).unwrap().mode, Mode::Approval);
    }

    #[test]
    fn mode_wins_over_automation_status_and_limits_are_checked() {
        let with = |extra: Value| {
            let mut item = plain_json(&walkthrough_item());
            for (key, value) in extra.as_object().unwrap() {
                item[key] = value.clone();
            }
            Mapping::from_json(&item)
        };
        assert_eq!(
            with(json!({"automationStatus": false})).unwrap().mode,
            Mode::Approval
        );
        assert_eq!(with(json!({"mode": "dry-run"})).unwrap().mode, Mode::DryRun);
        assert_eq!(
            with(json!({"mode": "Inactive", "automationStatus": true}))
                .unwrap()
                .mode,
            Mode::Inactive
        );
        assert_eq!(
            with(json!({"mode": "approval", "automationStatus": true}))
                .unwrap()
                .mode,
            Mode::Approval
        );
        let limits =
            with(json!({"maxAttempts": 1, "coolDownMinutes": 90, "modeTagKey": "tarem-sg-mode"}))
                .unwrap();
        assert_eq!(
            (limits.max_attempts, limits.cool_down_minutes),
            (Some(1), Some(90))
        );
        assert_eq!(limits.mode_tag_key.as_deref(), Some("tarem-sg-mode"));
        assert_eq!(with(json!({"mode": "yolo"})).unwrap_err().field, "mode");
        assert_eq!(
            with(json!({"maxAttempts": 0})).unwrap_err().field,
            "maxAttempts"
        );
        assert_eq!(
            with(json!({"coolDownMinutes": "30"})).unwrap_err().field,
            "coolDownMinutes"
        );
    }

    #[test]
    fn substituted_values_stay_inside_their_own_string() {
        let mapping = Mapping::from_json(&json!({
            "checkName": "c", "ssmAutomationDocument": "D",
            "automationParameters": {"Id": ["$resourceId"], "Other": ["fixed"]},
            "regexPattern": "instance/(.+)$", "automationStatus": true
        }))
        .unwrap();
        let hostile = "x\"], \"Other\": [\"evil\"], \"Id\": [\"$resourceArn$$";
        let rendered = render(
            &mapping,
            &format!("arn:aws:ec2:eu-west-1:1:instance/{hostile}"),
        )
        .unwrap();
        assert_eq!(rendered.len(), 2);
        assert_eq!(rendered["Id"], vec![hostile.to_owned()]);
        assert_eq!(rendered["Other"], vec!["fixed".to_owned()]);
    }

    #[test]
    fn every_variable_form_renders() {
        let mapping = Mapping::from_json(&json!({
            "checkName": "c", "ssmAutomationDocument": "D",
            "automationParameters": {"All": ["$resourceId|${resourceId}|$resourceArn|$region|$accountId|${detail.Port}|$$|$5|$"]},
            "regexPattern": "sg-\\w+", "automationStatus": true
        }))
        .unwrap();
        let arn = "arn:aws:ec2:eu-west-1:111122223333:security-group/sg-1";
        assert_eq!(
            render(&mapping, arn).unwrap()["All"],
            vec![format!("sg-1|sg-1|{arn}|eu-west-1|111122223333|22|$|$5|$")]
        );
    }

    #[test]
    fn values_a_finding_lacks_are_template_errors() {
        let mapping = Mapping::from_json(&json!({
            "checkName": "c", "ssmAutomationDocument": "D",
            "automationParameters": {"Port": ["${detail.Ports}"]}, "automationStatus": true
        }))
        .unwrap();
        let error = render(&mapping, "arn:aws:ec2:eu-west-1:1:security-group/sg-1").unwrap_err();
        assert_eq!(error.parameter, "Port");
        assert!(
            error.problem.contains("no check-item column \"Ports\""),
            "{error}"
        );
        let arn_only = Mapping::from_json(&json!({
            "checkName": "c", "ssmAutomationDocument": "D",
            "automationParameters": {"Arn": ["$resourceArn"]}, "automationStatus": true
        }))
        .unwrap();
        assert!(
            render(&arn_only, "ta-item/0123")
                .unwrap_err()
                .problem
                .contains("not an ARN")
        );
    }

    #[test]
    fn the_regex_extracts_the_group_or_the_whole_match_and_never_an_empty_id() {
        let group = ResourceRegex::new("(sg-\\w+)").unwrap();
        assert_eq!(
            group.extract("arn:aws:ec2:r:1:security-group/sg-0ab"),
            Some("sg-0ab")
        );
        assert_eq!(group.extract("arn:aws:ec2:r:1:instance/i-0ab"), None);
        let whole = ResourceRegex::new("i-[0-9a-f]+").unwrap();
        assert_eq!(
            whole.extract("arn:aws:ec2:r:1:instance/i-0ab"),
            Some("i-0ab")
        );
        let empty = ResourceRegex::new("(x*)").unwrap();
        assert_eq!(empty.extract("abc"), None);
        let optional = ResourceRegex::new("a(b)?").unwrap();
        assert_eq!(optional.extract("a"), None);
    }
}
