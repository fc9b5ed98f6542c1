//! The mapping item as the table stores it: AWS's walkthrough shape, read and written here and
//! nowhere else.
//!
//! Reading (serde, with [`serde_path_to_error`] naming the attribute at fault) checks each
//! attribute's type; [`Mapping::try_from`] then checks what the values mean (the regex compiles,
//! the template's variables are known, the required attributes are there). Writing gives the
//! walkthrough's shape: `automationParameters` as a JSON string, `automationStatus` as a boolean.

use super::template::{ParameterTemplate, Variable};
use super::{Mapping, MappingError, Mode, ResourceRegex, describe_expected, json_type};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::collections::BTreeMap;

/// A stored mapping item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MappingItem {
    #[serde(
        default,
        deserialize_with = "field::check_name",
        skip_serializing_if = "Option::is_none"
    )]
    pub check_name: Option<String>,
    #[serde(
        default,
        deserialize_with = "field::document",
        skip_serializing_if = "Option::is_none"
    )]
    pub ssm_automation_document: Option<String>,
    #[serde(
        default,
        deserialize_with = "field::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub document_version: Option<String>,
    /// Parameter name → its template strings; read as a JSON string (the walkthrough's) or a
    /// map, written as the JSON string.
    #[serde(
        default,
        deserialize_with = "field::parameters",
        serialize_with = "field::parameters_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub automation_parameters: Option<BTreeMap<String, Vec<String>>>,
    #[serde(
        default,
        deserialize_with = "field::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub regex_pattern: Option<String>,
    #[serde(
        default,
        deserialize_with = "field::boolean",
        skip_serializing_if = "Option::is_none"
    )]
    pub automation_status: Option<bool>,
    /// Wins over `automationStatus`, which stays for AWS's walkthrough items.
    #[serde(
        default,
        deserialize_with = "field::mode",
        skip_serializing_if = "Option::is_none"
    )]
    pub mode: Option<Mode>,
    #[serde(
        default,
        deserialize_with = "field::positive",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_attempts: Option<u32>,
    #[serde(
        default,
        deserialize_with = "field::positive",
        skip_serializing_if = "Option::is_none"
    )]
    pub cool_down_minutes: Option<u32>,
    #[serde(
        default,
        deserialize_with = "field::tag_key",
        skip_serializing_if = "Option::is_none"
    )]
    pub mode_tag_key: Option<String>,
    /// Attributes tarem does not read.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// The attributes tarem reads, by their stored names.
pub const ATTRIBUTES: [&str; 10] = [
    "checkName",
    "ssmAutomationDocument",
    "documentVersion",
    "automationParameters",
    "regexPattern",
    "automationStatus",
    "mode",
    "maxAttempts",
    "coolDownMinutes",
    "modeTagKey",
];

impl MappingItem {
    /// Reads a plain JSON item; a wrongly typed attribute is an error that names it.
    pub fn from_json(item: &Value) -> Result<MappingItem, MappingError> {
        let Some(object) = item.as_object() else {
            return Err(MappingError {
                check: String::new(),
                field: "(item)",
                problem: format!("must be an object, found {}", json_type(item)),
            });
        };
        serde_path_to_error::deserialize(item).map_err(|error| {
            let path = error.path().to_string();
            MappingError {
                // The check, when the item names one: errors say which mapping they are about.
                check: match (path.as_str(), object.get("checkName")) {
                    ("checkName", _) => String::new(),
                    (_, Some(Value::String(name))) => name.clone(),
                    _ => String::new(),
                },
                field: ATTRIBUTES
                    .into_iter()
                    .find(|name| *name == path)
                    .unwrap_or("(item)"),
                problem: error.into_inner().to_string(),
            }
        })
    }

    /// The item as plain JSON, in the walkthrough's shape.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The mode the item asks for: `mode`, else automated when `automationStatus` is true.
    pub fn effective_mode(&self) -> Mode {
        self.mode
            .unwrap_or(if self.automation_status == Some(true) {
                Mode::Automated
            } else {
                Mode::Approval
            })
    }

    /// The item with its mode set, `automationStatus` kept in step for the walkthrough's readers.
    pub fn with_mode(mut self, mode: Mode) -> MappingItem {
        self.automation_status = Some(mode == Mode::Automated);
        self.mode = Some(mode);
        self
    }
}

impl TryFrom<MappingItem> for Mapping {
    type Error = MappingError;

    fn try_from(item: MappingItem) -> Result<Mapping, MappingError> {
        let mode = item.effective_mode();
        let check = item.check_name.ok_or_else(|| MappingError {
            check: String::new(),
            field: "checkName",
            problem: describe_expected("a non-empty string", None),
        })?;
        let error = |field: &'static str, problem: String| MappingError {
            check: check.clone(),
            field,
            problem,
        };
        let document = item.ssm_automation_document.ok_or_else(|| {
            error(
                "ssmAutomationDocument",
                describe_expected("a non-empty string (the runbook's name or ARN)", None),
            )
        })?;
        let parameters = match &item.automation_parameters {
            None => ParameterTemplate::default(),
            Some(strings) => ParameterTemplate::from_strings(strings)
                .map_err(|problem| error("automationParameters", problem))?,
        };
        let regex = item
            .regex_pattern
            .as_deref()
            .map(ResourceRegex::new)
            .transpose()
            .map_err(|problem| error("regexPattern", problem))?;
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
            document_version: item.document_version,
            parameters,
            regex,
            mode,
            max_attempts: item.max_attempts,
            cool_down_minutes: item.cool_down_minutes,
            mode_tag_key: item.mode_tag_key,
        })
    }
}

/// Each attribute's type rule, as a serde field reader whose error says what was expected and
/// what was found. A `null` is an absent optional attribute.
mod field {
    use super::*;
    use serde::de::Error;

    fn read<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn non_empty<'de, D: Deserializer<'de>>(
        deserializer: D,
        expected: &str,
    ) -> Result<Option<String>, D::Error> {
        match read(deserializer)? {
            Value::String(text) if !text.trim().is_empty() => Ok(Some(text)),
            other => Err(D::Error::custom(describe_expected(expected, Some(&other)))),
        }
    }

    pub fn check_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        non_empty(d, "a non-empty string")
    }

    pub fn document<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(
            non_empty(d, "a non-empty string (the runbook's name or ARN)")?
                .map(|document| document.trim().to_owned()),
        )
    }

    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        match read(d)? {
            Value::Null => Ok(None),
            Value::String(text) => Ok(Some(text)),
            other => Err(D::Error::custom(describe_expected(
                "a string",
                Some(&other),
            ))),
        }
    }

    pub fn parameters<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<BTreeMap<String, Vec<String>>>, D::Error> {
        match read(d)? {
            Value::Null => Ok(None),
            value => ParameterTemplate::strings_of(&value)
                .map(Some)
                .map_err(D::Error::custom),
        }
    }

    pub fn parameters_text<S: Serializer>(
        parameters: &Option<BTreeMap<String, Vec<String>>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match parameters {
            Some(parameters) => {
                serializer.serialize_str(&serde_json::json!(parameters).to_string())
            }
            None => serializer.serialize_none(),
        }
    }

    pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        match read(d)? {
            Value::Null => Ok(None),
            Value::Bool(on) => Ok(Some(on)),
            other => Err(D::Error::custom(describe_expected(
                "a boolean (true or false)",
                Some(&other),
            ))),
        }
    }

    pub fn mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Mode>, D::Error> {
        match read(d)? {
            Value::Null => Ok(None),
            Value::String(text) => Mode::parse(&text).map(Some).ok_or_else(|| {
                D::Error::custom(format!(
                    "must be automated, approval, dry-run or inactive, found {text:?}"
                ))
            }),
            other => Err(D::Error::custom(describe_expected(
                "one of automated, approval, dry-run, inactive",
                Some(&other),
            ))),
        }
    }

    pub fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        match read(d)? {
            Value::Null => Ok(None),
            Value::Number(n) => n
                .as_u64()
                .filter(|n| (1..=u64::from(u32::MAX)).contains(n))
                .map(|n| Some(n as u32))
                .ok_or_else(|| {
                    D::Error::custom(format!("must be a whole number of at least 1, found {n}"))
                }),
            other => Err(D::Error::custom(describe_expected(
                "a whole number of at least 1",
                Some(&other),
            ))),
        }
    }

    pub fn tag_key<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        match read(d)? {
            Value::Null => Ok(None),
            Value::String(key) if !key.trim().is_empty() => Ok(Some(key.trim().to_owned())),
            other => Err(D::Error::custom(describe_expected(
                "a non-empty tag key",
                Some(&other),
            ))),
        }
    }
}
