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
    Ok(MappingItem {
        check_name: Some(check),
        ssm_automation_document: Some(document),
        automation_parameters: Some(parse_params(&args.params)?),
        regex_pattern: args.regex.clone(),
        automation_status: Some(args.enabled),
        mode: args.mode.as_deref().map(parse_mode).transpose()?,
        max_attempts: args.max_attempts,
        cool_down_minutes: args.cool_down_minutes,
        mode_tag_key: args.mode_tag_key.clone(),
        ..MappingItem::default()
    }
    .to_json())
}

/// `mapping update` without `--from`: the stored item with only the attributes the flags name
/// changed.
pub fn updated_item(stored: &Value, args: &ItemArgs) -> Result<Value, CliError> {
    let mut item = MappingItem::from_json(&plain_json(stored)).map_err(|error| {
        CliError::Usage(format!(
            "the stored item does not read ({error}); replace it whole with --from FILE"
        ))
    })?;
    let mut changed = false;
    if let Some(document) = &args.document {
        item.ssm_automation_document = Some(document.clone());
        changed = true;
    }
    if !args.params.is_empty() {
        item.automation_parameters = Some(parse_params(&args.params)?);
        changed = true;
    }
    if let Some(regex) = &args.regex {
        item.regex_pattern = Some(regex.clone());
        changed = true;
    }
    if args.enabled {
        item = item.with_mode(Mode::Automated);
        changed = true;
    }
    if let Some(mode) = &args.mode {
        item = item.with_mode(parse_mode(mode)?);
        changed = true;
    }
    if let Some(max_attempts) = args.max_attempts {
        item.max_attempts = Some(max_attempts);
        changed = true;
    }
    if let Some(minutes) = args.cool_down_minutes {
        item.cool_down_minutes = Some(minutes);
        changed = true;
    }
    if let Some(key) = &args.mode_tag_key {
        item.mode_tag_key = Some(key.clone());
        changed = true;
    }
    if !changed {
        return Err(CliError::Usage(
            "nothing to change: name at least one attribute (--document, --param, --regex, --mode, --enabled, --max-attempts, --cool-down-minutes, --mode-tag-key) or --from FILE".into(),
        ));
    }
    Ok(item.to_json())
}

/// `--param Name=value`, repeatable; a name given twice gets both values, in order.
fn parse_params(params: &[String]) -> Result<BTreeMap<String, Vec<String>>, CliError> {
    let mut parameters: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for param in params {
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
    Ok(parameters)
}

fn parse_mode(text: &str) -> Result<Mode, CliError> {
    Mode::parse(text).ok_or_else(|| {
        CliError::Usage(format!(
            "--mode {text:?}: expected automated, approval, dry-run or inactive"
        ))
    })
}

/// What the AWS look-ups need; `None` for `--offline`.
pub struct Online<'a> {
    pub region: String,
    pub documents: &'a dyn DocumentCatalog,
    pub advisor: &'a dyn TrustedAdvisor,
}

/// What validation found: problems stop a write; notes are said and let it through.
#[derive(Debug, Default)]
pub struct Checked {
    pub problems: Vec<Problem>,
    pub notes: Vec<Problem>,
}

/// Every problem of every item: its own, what the stack would refuse, and with `online_checks`
/// what AWS says of its document and check. What the stack refuses (its allowlists when `stack`
/// holds the deployed stack's settings; automated mode without a role in any stack) is a
/// problem for an automated mapping, and a note for one a person approves: its OpsItem will say
/// it is blocked until the stack allows it.
pub async fn validate(
    items: &[Value],
    online_checks: Option<&Online<'_>>,
    stack: Option<&tarem_shared::safety::SafetyConfig>,
) -> Result<Checked, CliError> {
    let mut checked = Checked::default();
    for item in items {
        let (mapping, mut found) = offline(item);
        if let Some(mapping) = &mapping {
            let refusals = tarem_shared::decide::mapping_refusals(mapping, stack)
                .into_iter()
                .map(|(field, message)| Problem {
                    check: mapping.check_name.clone(),
                    field: field.to_owned(),
                    message,
                });
            if mapping.mode == Mode::Automated {
                found.extend(refusals);
            } else {
                checked.notes.extend(refusals);
            }
        }
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
        checked.problems.extend(found);
    }
    Ok(checked)
}

/// The problems, grouped under the check they are about: each line names its attribute once.
pub fn problems_text(problems: &[Problem]) -> String {
    let mut lines = vec![];
    let mut current: Option<&str> = None;
    for problem in problems {
        if current != Some(problem.check.as_str()) {
            current = Some(problem.check.as_str());
            lines.push(if problem.check.is_empty() {
                "an item without a valid checkName:".to_owned()
            } else {
                format!("{:?}:", problem.check)
            });
        }
        lines.push(format!("  `{}` {}", problem.field, problem.message));
    }
    lines.join("\n")
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
    pub changed: Vec<Changed>,
    pub unchanged: Vec<String>,
    pub removed: Vec<String>,
}

impl ImportDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

/// A mapping the import changes, attribute by attribute.
#[derive(Debug, Serialize)]
pub struct Changed {
    pub check: String,
    pub fields: Vec<FieldChange>,
}

/// One attribute's value before and after (`None`: absent).
#[derive(Debug, Serialize, PartialEq)]
pub struct FieldChange {
    pub field: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
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
            Some(existing) => {
                let fields = field_changes(existing, item);
                if fields.is_empty() {
                    diff.unchanged.push(check);
                } else {
                    diff.changed.push(Changed { check, fields });
                }
            }
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

/// One mapping's change, as an import diff: added, changed, unchanged or removed.
pub fn one_change(check: &str, before: Option<&Value>, after: Option<&Value>) -> ImportDiff {
    let mut diff = ImportDiff::default();
    match (before, after) {
        (None, Some(_)) => diff.added.push(check.to_owned()),
        (Some(_), None) => diff.removed.push(check.to_owned()),
        (Some(before), Some(after)) => {
            let fields = field_changes(before, after);
            if fields.is_empty() {
                diff.unchanged.push(check.to_owned());
            } else {
                diff.changed.push(Changed {
                    check: check.to_owned(),
                    fields,
                });
            }
        }
        (None, None) => {}
    }
    diff
}

/// What differs between two items, attribute by attribute, compared as the mapping reads them:
/// the JSON-string and map forms of the same template are the same.
pub fn field_changes(before: &Value, after: &Value) -> Vec<FieldChange> {
    let comparable = |item: &Value| -> BTreeMap<String, Value> {
        let canonical = canonical(item);
        let mut fields: BTreeMap<String, Value> = canonical
            .as_object()
            .map(|o| o.clone().into_iter().collect())
            .unwrap_or_default();
        // The template compared as a map, not as the text it is stored as.
        if let Some(Value::String(text)) = fields.get("automationParameters")
            && let Ok(map) = serde_json::from_str::<Value>(text)
        {
            fields.insert("automationParameters".into(), map);
        }
        fields
    };
    let (before, after) = (comparable(before), comparable(after));
    let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|name| before.get(*name) != after.get(*name))
        .map(|name| FieldChange {
            field: name.clone(),
            before: before.get(name).cloned(),
            after: after.get(name).cloned(),
        })
        .collect()
}

/// An item as `export` writes it and `import` compares it: the same text for the same mapping,
/// run after run (attributes in a fixed order, the template's keys sorted). An item that does
/// not read keeps its attributes, sorted.
pub fn canonical(item: &Value) -> Value {
    let plain = plain_json(item);
    match MappingItem::from_json(&plain) {
        Ok(parsed) => parsed.to_json(),
        Err(_) => sorted(&plain),
    }
}

fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(object) => {
            let mut keys: Vec<&String> = object.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&object[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

pub async fn apply_import(
    store: &dyn MappingStore,
    items: &[Value],
    diff: &ImportDiff,
) -> Result<(), CliError> {
    for item in items {
        let check = item["checkName"].as_str().unwrap_or_default();
        if diff.added.iter().any(|c| c == check) || diff.changed.iter().any(|c| c.check == check) {
            // In the walkthrough's shape, as `add` writes it, so AWS's reference reads it too.
            store.put(&canonical(item)).await.map_err(CliError::from)?;
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
    /// The cache file for one Support endpoint and one set of credentials (one account): a run
    /// against a test endpoint, or another account, never serves its list to this one.
    pub fn path_for(endpoint: &str, access_key_id: &str) -> std::path::PathBuf {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|home| std::path::PathBuf::from(home).join(".cache"))
            })
            .unwrap_or_else(std::env::temp_dir);
        let key = tarem_shared::finding::short_hash(&format!("{endpoint}\n{access_key_id}"));
        base.join("tarem")
            .join(format!("trusted-advisor-checks-{key}.json"))
    }

    /// The cache file for the Support API `sdk` reaches, with the credentials it signs with.
    pub async fn path_of(sdk: &aws_config::SdkConfig) -> std::path::PathBuf {
        use aws_credential_types::provider::ProvideCredentials;
        let endpoint = std::env::var("AWS_ENDPOINT_URL_SUPPORT")
            .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
            .ok()
            .or_else(|| sdk.endpoint_url().map(str::to_owned))
            .unwrap_or_else(|| "aws".into());
        let access_key = match sdk.credentials_provider() {
            Some(provider) => provider
                .provide_credentials()
                .await
                .map(|c| c.access_key_id().to_owned())
                .unwrap_or_default(),
            None => String::new(),
        };
        Self::path_for(&endpoint, &access_key)
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
