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
    /// The accounts the mapping remediates in (absent: every governed account).
    #[serde(
        default,
        deserialize_with = "field::accounts",
        skip_serializing_if = "Option::is_none"
    )]
    pub accounts: Option<Vec<String>>,
    /// The operator's annotations ([`ANNOTATION_PREFIX`]), kept as they are.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// The attributes tarem reads, by their stored names.
pub const ATTRIBUTES: [&str; 11] = [
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
    "accounts",
];

/// An operator's own annotation on a mapping item (`x-owner`, `x-ticket`): kept as it is, read
/// by nothing. Any other attribute tarem does not know is an error, so a misspelled safety
/// setting (`maxAttemps`, `Mode`) never passes silently.
pub const ANNOTATION_PREFIX: &str = "x-";

/// The known attribute an unknown one was probably meant to be.
fn closest_attribute(name: &str) -> Option<&'static str> {
    let lower = name.to_lowercase();
    ATTRIBUTES
        .into_iter()
        .map(|known| {
            let score = if known.to_lowercase() == lower {
                1.0
            } else {
                strsim::jaro_winkler(&lower, &known.to_lowercase())
            };
            (score, known)
        })
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, known)| known)
}

fn unknown_attribute(check: &str, name: &str) -> MappingError {
    let hint = match closest_attribute(name) {
        Some(known) => format!("; did you mean `{known}`?"),
        None => format!(
            "; tarem reads {}, and keeps annotations prefixed {ANNOTATION_PREFIX}",
            ATTRIBUTES.join(", ")
        ),
    };
    MappingError {
        check: check.to_owned(),
        field: name.to_owned(),
        problem: format!("is not an attribute tarem knows{hint}"),
    }
}

impl MappingItem {
    /// Reads a plain JSON item; the first problem is the error (see [`MappingItem::read`] for
    /// all of them).
    pub fn from_json(item: &Value) -> Result<MappingItem, MappingError> {
        let (item, mut problems) = MappingItem::read(item);
        if problems.is_empty() {
            Ok(item)
        } else {
            Err(problems.remove(0))
        }
    }

    /// Reads a plain JSON item, every problem at once: each attribute's type, and each attribute
    /// tarem does not know (with the closest known name). The item holds the attributes that
    /// read, so what they mean can be checked too.
    pub fn read(item: &Value) -> (MappingItem, Vec<MappingError>) {
        let Some(object) = item.as_object() else {
            return (
                MappingItem::default(),
                vec![MappingError {
                    check: String::new(),
                    field: "(item)".into(),
                    problem: format!("must be an object, found {}", json_type(item)),
                }],
            );
        };
        // Errors say which mapping they are about, when the item names one.
        let check = object
            .get("checkName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut problems = vec![];
        let mut readable = serde_json::Map::new();
        for (name, value) in object {
            if name.starts_with(ANNOTATION_PREFIX) {
                readable.insert(name.clone(), value.clone());
                continue;
            }
            if !ATTRIBUTES.contains(&name.as_str()) {
                problems.push(unknown_attribute(check, name));
                continue;
            }
            // Each attribute alone, so one wrong type does not hide the next.
            let alone = Value::Object(serde_json::Map::from_iter([(name.clone(), value.clone())]));
            match serde_path_to_error::deserialize::<_, MappingItem>(&alone) {
                Ok(_) => {
                    readable.insert(name.clone(), value.clone());
                }
                Err(error) => problems.push(MappingError {
                    check: if name == "checkName" {
                        String::new()
                    } else {
                        check.to_owned()
                    },
                    field: name.clone(),
                    problem: error.into_inner().to_string(),
                }),
            }
        }
        // Every attribute left reads alone, so together they read too.
        let item = serde_json::from_value(Value::Object(readable)).unwrap_or_default();
        (item, problems)
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

    /// What the attributes mean; the first problem is the error.
    fn try_from(item: MappingItem) -> Result<Mapping, MappingError> {
        item.meaning().map_err(|mut problems| problems.remove(0))
    }
}

impl MappingItem {
    /// What the attributes mean, every problem at once: the required ones are there, the
    /// template and the regex hold, and the regex is there when the template needs it.
    pub fn meaning(self) -> Result<Mapping, Vec<MappingError>> {
        let mode = self.effective_mode();
        let check = self.check_name.clone().unwrap_or_default();
        let mut problems = vec![];
        let mut problem = |field: &str, problem: String| {
            problems.push(MappingError {
                check: check.clone(),
                field: field.to_owned(),
                problem,
            })
        };
        if self.check_name.is_none() {
            problem("checkName", describe_expected("a non-empty string", None));
        }
        if self.ssm_automation_document.is_none() {
            problem(
                "ssmAutomationDocument",
                describe_expected("a non-empty string (the runbook's name or ARN)", None),
            );
        }
        let parameters = match &self.automation_parameters {
            None => Some(ParameterTemplate::default()),
            Some(strings) => ParameterTemplate::from_strings(strings)
                .map_err(|error| problem("automationParameters", error))
                .ok(),
        };
        let regex = match self.regex_pattern.as_deref().map(ResourceRegex::new) {
            None => Some(None),
            Some(Ok(regex)) => Some(Some(regex)),
            Some(Err(error)) => {
                problem("regexPattern", error);
                None
            }
        };
        if self.regex_pattern.is_none()
            && parameters
                .as_ref()
                .is_some_and(|p| p.uses(&Variable::ResourceId))
        {
            problem(
                "regexPattern",
                "is missing, but automationParameters uses $resourceId, which the regex extracts"
                    .into(),
            );
        }
        match (
            self.check_name,
            self.ssm_automation_document,
            parameters,
            regex,
        ) {
            (Some(check_name), Some(document), Some(parameters), Some(regex))
                if problems.is_empty() =>
            {
                Ok(Mapping {
                    check_name,
                    document,
                    document_version: self.document_version,
                    parameters,
                    regex,
                    mode,
                    max_attempts: self.max_attempts,
                    cool_down_minutes: self.cool_down_minutes,
                    mode_tag_key: self.mode_tag_key,
                    accounts: self.accounts.map(|accounts| accounts.into_iter().collect()),
                })
            }
            _ => Err(problems),
        }
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

    /// Events name checks without leading or trailing spaces: a name with them would never
    /// match one.
    pub fn check_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let name = non_empty(d, "a non-empty string")?;
        match name {
            Some(name) if name != name.trim() => Err(D::Error::custom(format!(
                "has leading or trailing whitespace ({name:?}); Trusted Advisor names the check {:?}",
                name.trim()
            ))),
            name => Ok(name),
        }
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

    /// A list of account ids and OU ids (or one string of them, comma or space separated, for a
    /// hand-written `put-item`): the mapping's scope.
    pub fn accounts<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
        let expected = "a list of 12-digit account ids or OU ids";
        let entries: Vec<String> = match read(d)? {
            Value::Null => return Ok(None),
            Value::String(text) => text
                .split([',', ' '])
                .filter(|part| !part.trim().is_empty())
                .map(|part| part.trim().to_owned())
                .collect(),
            Value::Array(values) => values
                .iter()
                .map(|value| match value {
                    Value::String(text) => Ok(text.trim().to_owned()),
                    other => Err(D::Error::custom(describe_expected(expected, Some(other)))),
                })
                .collect::<Result<_, _>>()?,
            other => return Err(D::Error::custom(describe_expected(expected, Some(&other)))),
        };
        if entries.is_empty() {
            return Err(D::Error::custom(
                "is empty: the mapping would remediate nowhere; leave it out for every governed account, or set mode inactive",
            ));
        }
        let unit = regex::Regex::new(r"^(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32})$")
            .expect("literal pattern");
        for entry in &entries {
            let account = entry.len() == 12 && entry.bytes().all(|b| b.is_ascii_digit());
            if !account && !unit.is_match(entry) {
                return Err(D::Error::custom(format!(
                    "must list 12-digit account ids or OU ids (ou-…, or the root r-…), found {entry:?}"
                )));
            }
        }
        Ok(Some(entries))
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
