//! The starter packs (`mappings/*.yaml`, built into the binary): vetted mappings from Trusted
//! Advisor checks to AWS-owned runbooks, every one in approval mode, each with what it changes,
//! the permissions its role needs and its reference page (`x-` annotations).

use crate::{CliError, mapping_file};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use tarem_shared::mapping::plain_json;

/// The packs, by name.
pub const PACKS: &[(&str, &str)] = &[
    ("security", include_str!("../../../mappings/security.yaml")),
    (
        "reliability",
        include_str!("../../../mappings/reliability.yaml"),
    ),
    ("cost", include_str!("../../../mappings/cost.yaml")),
];

/// What a pack's `AutomationAssumeRole` says until `--role` names the real one.
pub const ROLE_PLACEHOLDER: &str = "PACK_AUTOMATION_ROLE";

/// A pack's items as written: by name (`security`), or a pack file's path.
pub fn items(pack: &str) -> Result<Vec<Value>, CliError> {
    if let Some((_, text)) = PACKS.iter().find(|(name, _)| *name == pack) {
        let document: Value = serde_yaml_ng::from_str(text)
            .map_err(|error| CliError::Usage(format!("pack {pack}: not valid YAML: {error}")))?;
        return Ok(document
            .as_array()
            .map(|items| items.iter().map(plain_json).collect())
            .unwrap_or_default());
    }
    if Path::new(pack).is_file() {
        return mapping_file::read_unvalidated(Path::new(pack));
    }
    Err(CliError::Usage(format!(
        "no pack {pack:?}: the packs are {}, or name a pack file",
        PACKS
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// A pack's items, ready to import: `role` in place of the placeholder.
pub fn load(pack: &str, role: &str) -> Result<Vec<Value>, CliError> {
    Ok(items(pack)?
        .into_iter()
        .map(|mut item| {
            if let Some(parameters) = item
                .get_mut("automationParameters")
                .and_then(Value::as_object_mut)
            {
                for values in parameters.values_mut() {
                    for value in values.as_array_mut().into_iter().flatten() {
                        if value == ROLE_PLACEHOLDER {
                            *value = json!(role);
                        }
                    }
                }
            }
            item
        })
        .collect())
}

/// What the automation role of these pack items needs, and what the stack must allow: the
/// permissions policy (the union of the entries' actions), the trust policy (SSM Automation of
/// this account only) and the `AllowedAutomationDocuments` value.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoleNeeds {
    pub allowed_automation_documents: String,
    pub permissions_policy: Value,
    pub trust_policy: Value,
}

pub fn role_needs(items: &[Value], account: &str) -> RoleNeeds {
    let mut actions = BTreeSet::new();
    let mut documents = BTreeSet::new();
    for item in items {
        if let Some(document) = item.get("ssmAutomationDocument").and_then(Value::as_str) {
            documents.insert(document.to_owned());
        }
        for action in item
            .get("x-permissions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            actions.insert(action.to_owned());
        }
    }
    RoleNeeds {
        allowed_automation_documents: documents.into_iter().collect::<Vec<_>>().join(","),
        permissions_policy: json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "WhatThePackRunbooksCall",
                "Effect": "Allow",
                "Action": actions.into_iter().collect::<Vec<_>>(),
                "Resource": "*"
            }]
        }),
        trust_policy: json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": "ssm.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account},
                    "ArnLike": {"aws:SourceArn": format!("arn:aws:ssm:*:{account}:automation-execution/*")}
                }
            }]
        }),
    }
}

/// One entry of `mapping list --pack`: what it does, and whether the table has it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PackEntry {
    pub pack: String,
    pub check_name: String,
    pub document: String,
    pub changes: String,
    /// `installed (approval)`, `installed (automated)`, `mapped otherwise`, or `available`.
    pub state: String,
}

pub fn entries(packs: &[&str], table: &[Value]) -> Result<Vec<PackEntry>, CliError> {
    let mut listed = vec![];
    for pack in packs {
        for item in items(pack)? {
            let text = |key: &str| {
                item.get(key)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let check = text("checkName");
            let stored = table
                .iter()
                .map(plain_json)
                .find(|stored| stored.get("checkName").and_then(Value::as_str) == Some(&check));
            let state = match stored {
                None => "available".to_owned(),
                Some(stored) if stored.get("x-id") == item.get("x-id") => format!(
                    "installed ({})",
                    tarem_shared::mapping::Mapping::from_json(&stored)
                        .map(|m| m.mode.to_string())
                        .unwrap_or_else(|_| "broken".into())
                ),
                Some(_) => "mapped otherwise".to_owned(),
            };
            listed.push(PackEntry {
                pack: (*pack).to_owned(),
                check_name: check,
                document: text("ssmAutomationDocument"),
                changes: text("x-changes"),
                state,
            });
        }
    }
    Ok(listed)
}
