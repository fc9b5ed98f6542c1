//! `tarem mapping …` and `tarem plan`: mappings as code, validated before they are written, and
//! what a finding would trigger, without side effects.

use crate::{CliError, mapping_file};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use tarem_shared::mapping::{Mapping, MappingItem, Mode, plain_json};
use tarem_shared::ports::DocumentCatalog;
use tarem_shared::ports::{MappingStore, TrustedAdvisor};
use tarem_shared::validate::{Problem, offline, online};

/// What `add`/`update` build an item from.
#[derive(Debug, Clone, Default)]
pub struct ItemArgs {
    pub check_name: Option<String>,
    pub document: Option<String>,
    /// `Name=value`, repeatable; a name given twice gets both values, in order.
    pub params: Vec<String>,
    pub regex: Option<String>,
    pub enabled: bool,
    pub mode: Option<String>,
    pub max_attempts: Option<u32>,
    pub cool_down_minutes: Option<u32>,
    pub mode_tag_key: Option<String>,
    pub from: Option<std::path::PathBuf>,
}

/// The item, in AWS's walkthrough shape (`automationParameters` as a JSON string), so the
/// reference implementation reads it too.
pub fn build_item(args: &ItemArgs) -> Result<Value, CliError> {
    if let Some(path) = &args.from {
        let mut items = mapping_file::read_unvalidated(path)?;
        return match items.len() {
            1 => Ok(items.remove(0)),
            n => Err(CliError::Usage(format!(
                "{}: holds {n} items; --from takes one (use import for many)",
                path.display()
            ))),
        };
    }
    let check = args
        .check_name
        .clone()
        .ok_or_else(|| CliError::Usage("--check-name is required (or --from FILE)".into()))?;
    let document = args
        .document
        .clone()
        .ok_or_else(|| CliError::Usage("--document is required (or --from FILE)".into()))?;
    let mut parameters: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for param in &args.params {
        let (name, value) = param.split_once('=').ok_or_else(|| {
            CliError::Usage(format!(
                "--param {param:?}: expected Name=value, e.g. GroupId='$resourceId'"
            ))
        })?;
        parameters
            .entry(name.trim().to_owned())
            .or_default()
            .push(value.to_owned());
    }
    Ok(MappingItem {
        check_name: Some(check),
        ssm_automation_document: Some(document),
        automation_parameters: Some(parameters),
        regex_pattern: args.regex.clone(),
        automation_status: Some(args.enabled),
        mode: args
            .mode
            .as_deref()
            .map(|text| {
                Mode::parse(text).ok_or_else(|| {
                    CliError::Usage(format!(
                        "--mode {text:?}: expected automated, approval, dry-run or inactive"
                    ))
                })
            })
            .transpose()?,
        max_attempts: args.max_attempts,
        cool_down_minutes: args.cool_down_minutes,
        mode_tag_key: args.mode_tag_key.clone(),
        ..MappingItem::default()
    }
    .to_json())
}

/// What the AWS look-ups need; `None` for `--offline`.
pub struct Online<'a> {
    pub region: String,
    pub documents: &'a dyn DocumentCatalog,
    pub advisor: &'a dyn TrustedAdvisor,
}

/// Every problem of every item.
pub async fn validate(
    items: &[Value],
    online_checks: Option<&Online<'_>>,
) -> Result<Vec<Problem>, CliError> {
    let mut problems = vec![];
    for item in items {
        let (mapping, mut found) = offline(item);
        if let (Some(mapping), Some(checks)) = (mapping, online_checks) {
            found.extend(
                online(&mapping, &checks.region, checks.documents, checks.advisor)
                    .await
                    .map_err(|error| {
                        CliError::Aws(format!(
                            "cannot validate against AWS (use --offline to skip): {error}"
                        ))
                    })?,
            );
        }
        problems.extend(found);
    }
    Ok(problems)
}

pub fn problems_text(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{:?} `{}`: {}", p.check, p.field, p.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A row of `mapping list`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    pub check_name: String,
    pub document: String,
    pub mode: String,
    pub regex: String,
    pub problem: Option<String>,
}

pub async fn list(store: &dyn MappingStore) -> Result<Vec<Listed>, CliError> {
    let mut items = store.list().await.map_err(CliError::from)?;
    items.sort_by_key(|item| {
        item.get("checkName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    });
    Ok(items
        .iter()
        .map(|item| {
            let text = |key: &str| {
                item.get(key)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let parsed = Mapping::from_json(item);
            Listed {
                check_name: text("checkName"),
                document: text("ssmAutomationDocument"),
                mode: parsed
                    .as_ref()
                    .map(|m| m.mode.to_string())
                    .unwrap_or_else(|_| "-".into()),
                regex: text("regexPattern"),
                problem: parsed.err().map(|e| e.to_string()),
            }
        })
        .collect())
}

/// The change an import makes, per check.
#[derive(Debug, Default, Serialize)]
pub struct ImportDiff {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
    pub removed: Vec<String>,
}

pub async fn import_diff(
    store: &dyn MappingStore,
    items: &[Value],
    prune: bool,
) -> Result<ImportDiff, CliError> {
    let current: BTreeMap<String, Value> = store
        .list()
        .await
        .map_err(CliError::from)?
        .into_iter()
        .map(|item| {
            (
                item["checkName"].as_str().unwrap_or_default().to_owned(),
                item,
            )
        })
        .collect();
    let mut diff = ImportDiff::default();
    for item in items {
        let check = item["checkName"].as_str().unwrap_or_default().to_owned();
        match current.get(&check) {
            None => diff.added.push(check),
            Some(existing) if same(existing, item) => diff.unchanged.push(check),
            Some(_) => diff.changed.push(check),
        }
    }
    if prune {
        let wanted: Vec<&str> = items
            .iter()
            .filter_map(|i| i["checkName"].as_str())
            .collect();
        diff.removed = current
            .keys()
            .filter(|k| !wanted.contains(&k.as_str()))
            .cloned()
            .collect();
    }
    Ok(diff)
}

/// Equal as mapping items: the JSON-string and map forms of the same template compare equal.
fn same(a: &Value, b: &Value) -> bool {
    match (
        MappingItem::from_json(&plain_json(a)),
        MappingItem::from_json(&plain_json(b)),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => plain_json(a) == plain_json(b),
    }
}

pub async fn apply_import(
    store: &dyn MappingStore,
    items: &[Value],
    diff: &ImportDiff,
) -> Result<(), CliError> {
    for item in items {
        let check = item["checkName"].as_str().unwrap_or_default();
        if diff.added.iter().chain(&diff.changed).any(|c| c == check) {
            store.put(item).await.map_err(CliError::from)?;
        }
    }
    for check in &diff.removed {
        store.delete(check).await.map_err(CliError::from)?;
    }
    Ok(())
}

/// Writes the items as YAML (`.yaml`/`.yml`) or JSON, plain.
pub fn export_text(items: &[Value], path: Option<&Path>) -> Result<String, CliError> {
    let yaml = path
        .is_some_and(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")));
    if yaml {
        serde_yaml_ng::to_string(items).map_err(|e| CliError::usage(e.to_string()))
    } else {
        serde_json::to_string_pretty(items).map_err(|e| CliError::usage(e.to_string()))
    }
}

/// Sets the mapping's mode (`enable`: automated, `disable`: approval), keeping
/// `automationStatus` in step for the walkthrough's readers. A broken item keeps its other
/// attributes as they are.
pub fn with_mode(item: &Value, mode: Mode) -> Value {
    match MappingItem::from_json(&plain_json(item)) {
        Ok(parsed) => parsed.with_mode(mode).to_json(),
        Err(_) => {
            let mut item = plain_json(item);
            item["automationStatus"] = json!(mode == Mode::Automated);
            item["mode"] = json!(mode.as_str());
            item
        }
    }
}

/// What the loop would do for one event: no side effects.
/// The Trusted Advisor check list, cached on disk for a day (it changes rarely and the Support
/// API is slow): `$XDG_CACHE_HOME/tarem/trusted-advisor-checks.json` or `~/.cache/…`.
pub struct DiskCachedChecks<A> {
    pub inner: A,
    pub path: std::path::PathBuf,
}

impl<A> DiskCachedChecks<A> {
    pub fn default_path() -> std::path::PathBuf {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|home| std::path::PathBuf::from(home).join(".cache"))
            })
            .unwrap_or_else(std::env::temp_dir);
        base.join("tarem").join("trusted-advisor-checks.json")
    }
}

#[async_trait::async_trait]
impl<A: TrustedAdvisor> TrustedAdvisor for DiskCachedChecks<A> {
    async fn checks(
        &self,
    ) -> Result<Vec<tarem_shared::ports::CheckInfo>, tarem_shared::error::PortError> {
        let fresh = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age < std::time::Duration::from_secs(24 * 3600));
        if fresh
            && let Some(cached) = std::fs::read_to_string(&self.path).ok().and_then(|text| {
                serde_json::from_str::<Vec<(String, String, Vec<String>)>>(&text).ok()
            })
        {
            return Ok(cached
                .into_iter()
                .map(|(id, name, columns)| tarem_shared::ports::CheckInfo { id, name, columns })
                .collect());
        }
        let checks = self.inner.checks().await?;
        let rows: Vec<(&str, &str, &Vec<String>)> = checks
            .iter()
            .map(|c| (c.id.as_str(), c.name.as_str(), &c.columns))
            .collect();
        // A cache that cannot be written only costs a slower next run.
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(&self.path, serde_json::to_string(&rows).unwrap_or_default());
        Ok(checks)
    }

    async fn check_result(
        &self,
        check_id: &str,
    ) -> Result<tarem_shared::ports::CheckResult, tarem_shared::error::PortError> {
        self.inner.check_result(check_id).await
    }
}
