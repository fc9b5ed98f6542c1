//! The stack's template as CloudFormation sees it: `template.yaml` read with its short-form tags
//! (`!Ref`, `!GetAtt`, `!Sub`, ...) turned into their long form, and small helpers to look at
//! the values. Shared by the template tests (template_wiring.rs, template_security.rs).

use serde_json::{Map, Number, Value, json};
use serde_yaml_ng::Value as Yaml;
use std::path::PathBuf;

// ------------------------------------------------------------------ reading the template

pub fn template_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml")
}

pub fn load_template() -> Value {
    let path = template_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse_template(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn parse_template(text: &str) -> Result<Value, String> {
    let yaml: Yaml = serde_yaml_ng::from_str(text).map_err(|e| format!("not YAML: {e}"))?;
    to_long_form(&yaml)
}

/// Short-form tags and the long-form keys they stand for.
pub const INTRINSICS: &[(&str, &str)] = &[
    ("Ref", "Ref"),
    ("Condition", "Condition"),
    ("GetAtt", "Fn::GetAtt"),
    ("Sub", "Fn::Sub"),
    ("If", "Fn::If"),
    ("Join", "Fn::Join"),
    ("Split", "Fn::Split"),
    ("Select", "Fn::Select"),
    ("Equals", "Fn::Equals"),
    ("Not", "Fn::Not"),
    ("And", "Fn::And"),
    ("Or", "Fn::Or"),
    ("FindInMap", "Fn::FindInMap"),
    ("Base64", "Fn::Base64"),
    ("Cidr", "Fn::Cidr"),
    ("GetAZs", "Fn::GetAZs"),
    ("ImportValue", "Fn::ImportValue"),
    ("Transform", "Fn::Transform"),
    ("ToJsonString", "Fn::ToJsonString"),
    ("Length", "Fn::Length"),
];

/// YAML with CloudFormation tags -> the JSON CloudFormation sees: `!Ref X` is `{"Ref": X}`,
/// `!GetAtt A.B` is `{"Fn::GetAtt": ["A", "B"]}`, `!Sub s` is `{"Fn::Sub": s}`, and so on.
pub fn to_long_form(yaml: &Yaml) -> Result<Value, String> {
    Ok(match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Number(n) => yaml_number(n)?,
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Sequence(items) => {
            Value::Array(items.iter().map(to_long_form).collect::<Result<_, _>>()?)
        }
        Yaml::Mapping(mapping) => {
            let mut object = Map::new();
            for (key, value) in mapping {
                let key = match key {
                    Yaml::String(s) => s.clone(),
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Bool(b) => b.to_string(),
                    other => return Err(format!("unsupported mapping key {other:?}")),
                };
                object.insert(key, to_long_form(value)?);
            }
            Value::Object(object)
        }
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let long = INTRINSICS
                .iter()
                .find(|(short, _)| *short == name)
                .map(|(_, long)| *long)
                .ok_or_else(|| format!("unknown tag {tag}"))?;
            let inner = match (long, to_long_form(&tagged.value)?) {
                ("Fn::GetAtt", Value::String(dotted)) => {
                    let (resource, attribute) = dotted
                        .split_once('.')
                        .ok_or_else(|| format!("!GetAtt {dotted}: expected Resource.Attribute"))?;
                    json!([resource, attribute])
                }
                (_, inner) => inner,
            };
            let mut object = Map::new();
            object.insert(long.to_owned(), inner);
            Value::Object(object)
        }
    })
}

pub fn yaml_number(n: &serde_yaml_ng::Number) -> Result<Value, String> {
    if let Some(i) = n.as_i64() {
        Ok(Value::from(i))
    } else if let Some(u) = n.as_u64() {
        Ok(Value::from(u))
    } else {
        n.as_f64()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("number {n} has no JSON form"))
    }
}

// ------------------------------------------------------------------ value helpers

/// `{"Fn::GetAtt": [resource, attribute]}` (or the `"Resource.Attribute"` string form).
pub fn get_att(v: &Value) -> Option<(&str, &str)> {
    match v.get("Fn::GetAtt")? {
        Value::Array(parts) if parts.len() == 2 => Some((parts[0].as_str()?, parts[1].as_str()?)),
        Value::String(dotted) => dotted.split_once('.'),
        _ => None,
    }
}

pub fn is_get_att(v: &Value, resource: &str, attribute: &str) -> bool {
    get_att(v) == Some((resource, attribute))
}

/// `v`, or the branches of `v` when it is an `Fn::If` (an entry that exists under a condition,
/// as a hub-only rule's ARN in a list).
pub fn branches(v: &Value) -> Vec<&Value> {
    match v.get("Fn::If").and_then(Value::as_array) {
        Some(parts) if parts.len() == 3 => vec![&parts[1], &parts[2]],
        _ => vec![v],
    }
}

pub fn ref_to(v: &Value) -> Option<&str> {
    v.get("Ref")?.as_str()
}

/// A value or a list of values, as a list.
pub fn one_or_many(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// CloudFormation takes integers as numbers or numeric strings.
pub fn as_int(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str()?.trim().parse().ok())
}

pub fn as_float(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str()?.trim().parse().ok())
}

pub fn as_bool(v: &Value) -> Option<bool> {
    v.as_bool().or_else(|| match v.as_str()? {
        "true" | "True" => Some(true),
        "false" | "False" => Some(false),
        _ => None,
    })
}

/// Whether `needle` occurs anywhere inside `haystack`.
pub fn mentions(haystack: &Value, needle: &Value) -> bool {
    haystack == needle
        || match haystack {
            Value::Array(items) => items.iter().any(|item| mentions(item, needle)),
            Value::Object(object) => object.values().any(|item| mentions(item, needle)),
            _ => false,
        }
}

pub fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.len() > 120 {
        format!("{}...", &text[..117])
    } else {
        text
    }
}

/// The rows of the markdown table that follows `heading`: first cell → second cell.
pub fn table_after(text: &str, heading: &str) -> Vec<(String, String)> {
    let start = text
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?}"));
    text[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            (
                cells[1].trim_matches('`').to_owned(),
                cells[2].trim_matches('`').to_owned(),
            )
        })
        .collect()
}
