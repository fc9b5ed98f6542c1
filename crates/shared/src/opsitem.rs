//! What a finding's OpsItem says: its title and dedup string, the finding as operational data,
//! and the episode's state as the operator sees it in each stage. Pure text; the lifecycle
//! decides when, the handlers send it.

use crate::episode::{Episode, Stage};
use crate::finding::{Finding, Status, short_hash};
use crate::ports::{
    DATA_AUTOMATION, DATA_FINDING, DATA_FINDING_KEY, DATA_REMEDIATION, NewOpsItem, OpsData,
    OpsItemStatus, OpsItemUpdate, StartAutomation,
};
use serde_json::json;
use std::collections::BTreeMap;

/// OpsItem title limit (characters).
const TITLE_MAX: usize = 1024;
/// OpsItem description limit (characters).
const DESCRIPTION_MAX: usize = 2048;
/// Budget for one operational data value; OpsCenter caps operational data at 20 KB in all.
const DATA_MAX: usize = 8 * 1024;

/// The episode's state as the OpsItem shows it: the stage, the control that decides (for a
/// hold), one line of what and why, and the runbook it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub state: &'static str,
    pub control: Option<String>,
    pub detail: String,
    /// The runbook and its parameters, filled in (started, or waiting to be).
    pub start: Option<StartAutomation>,
    /// Attempts made and allowed in this episode.
    pub attempts: Option<(usize, u32)>,
}

impl Note {
    /// The OpsItem status each stage shows: open while a person may need to act, in progress
    /// while a runbook runs or its fix awaits confirmation, resolved when fixed (or, unconfirmed,
    /// when the verify window passed).
    pub fn ops_item_status(stage: &Stage) -> OpsItemStatus {
        match stage {
            Stage::Flagged { .. } | Stage::Held { .. } | Stage::Escalated { .. } => {
                OpsItemStatus::Open
            }
            Stage::Remediating | Stage::Verifying { .. } => OpsItemStatus::InProgress,
            Stage::Unconfirmed | Stage::Fixed { .. } | Stage::Gone { .. } => {
                OpsItemStatus::Resolved
            }
        }
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some((cut, _)) => {
            let mut out = text[..cut].to_owned();
            out.pop();
            out.push('…');
            out
        }
    }
}

fn data(value: String) -> OpsData {
    OpsData {
        value,
        searchable: false,
    }
}

fn searchable(value: String) -> OpsData {
    OpsData {
        value,
        searchable: true,
    }
}

/// One OpsItem per episode: OpsCenter suppresses a second while the first is open (a backstop;
/// the episode records its OpsItem's id).
pub fn dedup_string(finding_key: &str, episode: &str) -> String {
    format!("tarem:{finding_key}:{}", short_hash(episode))
}

pub fn ops_item_title(finding: &Finding) -> String {
    truncate(
        &format!("[TA] [{}] [{}]", finding.check_name, finding.resource),
        TITLE_MAX,
    )
}

/// The finding as operational data: its identity, status and check-item columns (columns are
/// dropped, and say so, when they would not fit).
pub fn finding_data(finding: &Finding) -> OpsData {
    let mut value = json!({
        "checkName": finding.check_name,
        "resource": finding.resource,
        "region": finding.region,
        "accountId": finding.account_id,
        "status": finding.resource_status,
        "lastUpdatedTime": finding.last_updated_time,
        "flaggedSince": finding.flagged_since,
        "checkItemDetail": finding.check_item_detail,
    });
    if value.to_string().len() > DATA_MAX {
        value["checkItemDetail"] =
            json!("(omitted: too large for operational data; see the tracker table)");
    }
    data(value.to_string())
}

/// The episode's state as operational data (`tarem:remediation`).
fn remediation_data(note: &Note) -> OpsData {
    let mut value = json!({ "state": note.state, "detail": note.detail });
    if let Some(control) = &note.control {
        value["control"] = json!(control);
    }
    if let Some((made, allowed)) = note.attempts {
        value["attempts"] = json!(format!("{made} of {allowed}"));
    }
    if let Some(start) = &note.start {
        value["document"] = json!(start.document);
        value["region"] = json!(start.region);
        value["parameters"] = json!(start.parameters);
        if !start.client_token.is_empty() {
            value["clientToken"] = json!(start.client_token);
        }
    }
    bounded(value)
}

/// Operational data values stay well inside OpsCenter's limit: an oversized `detail` (a long
/// reason or parameter list) is cut, and says so.
fn bounded(mut value: serde_json::Value) -> OpsData {
    if value.to_string().len() > DATA_MAX {
        if let Some(detail) = value
            .get("detail")
            .and_then(|d| d.as_str())
            .map(str::to_owned)
        {
            value["detail"] = json!(truncate(&detail, 1024));
        }
        if value.to_string().len() > DATA_MAX {
            value["parameters"] = json!("(omitted: too large for operational data)");
        }
    }
    data(value.to_string())
}

fn description(episode: &Episode, note: &Note) -> String {
    truncate(
        &format!(
            "Trusted Advisor flags {} ({}) for the check \"{}\", flagged since {}.\n\nRemediation ({}): {}.",
            episode.resource,
            episode.status,
            episode.check_name,
            episode.flagged_since,
            note.state,
            note.detail
        ),
        DESCRIPTION_MAX,
    )
}

/// The OpsItem of an episode, as it opens.
pub fn ops_item_for(finding: &Finding, episode: &Episode, note: &Note, source: &str) -> NewOpsItem {
    let dedup = dedup_string(&finding.hash_key, &episode.episode);
    let mut operational_data = BTreeMap::from([
        (
            "/aws/dedup".to_owned(),
            searchable(json!({ "dedupString": dedup }).to_string()),
        ),
        (
            DATA_FINDING_KEY.to_owned(),
            searchable(finding.hash_key.clone()),
        ),
        (DATA_FINDING.to_owned(), finding_data(finding)),
        (DATA_REMEDIATION.to_owned(), remediation_data(note)),
    ]);
    if let Some(arn) = finding.resource_arn() {
        operational_data.insert(
            "/aws/resources".into(),
            searchable(json!([{ "arn": arn }]).to_string()),
        );
    }
    if let Some(start) = &note.start {
        // Links the runbook to the OpsItem, so an operator can run it from OpsCenter.
        operational_data.insert(
            "/aws/automations".into(),
            data(
                json!([{ "automationType": "AWS:SSM:Automation", "automationId": start.document }])
                    .to_string(),
            ),
        );
    }
    NewOpsItem {
        title: ops_item_title(finding),
        description: description(episode, note),
        source: source.to_owned(),
        severity: Some(severity(finding.resource_status).to_owned()),
        dedup_string: dedup,
        operational_data,
    }
}

fn severity(status: Status) -> &'static str {
    match status {
        Status::Red => "2",
        _ => "3",
    }
}

/// The OpsItem after the episode moved to `episode.stage` (described by `note`); with the
/// finding when it changed (a Red↔Yellow refresh).
pub fn stage_update(episode: &Episode, note: &Note, finding: Option<&Finding>) -> OpsItemUpdate {
    let mut operational_data =
        BTreeMap::from([(DATA_REMEDIATION.to_owned(), remediation_data(note))]);
    if let Some(finding) = finding {
        operational_data.insert(DATA_FINDING.to_owned(), finding_data(finding));
    }
    OpsItemUpdate {
        status: Some(Note::ops_item_status(&episode.stage)),
        description: Some(description(episode, note)),
        operational_data,
        delete: vec![],
    }
}

/// Records a started automation on its OpsItem.
pub fn started_update(start: &StartAutomation, execution_id: &str) -> OpsItemUpdate {
    let value = json!({
        "executionId": execution_id,
        "document": start.document,
        "region": start.region,
        "status": "Started",
        "parameters": start.parameters,
        "clientToken": start.client_token,
    });
    OpsItemUpdate {
        status: Some(OpsItemStatus::InProgress),
        description: None,
        operational_data: BTreeMap::from([(DATA_AUTOMATION.to_owned(), data(value.to_string()))]),
        delete: vec![],
    }
}

/// An automation's status as operational data, with no change of the OpsItem's status (the
/// episode's stage decides that).
pub fn automation_data(
    execution_id: &str,
    region: &str,
    document: Option<&str>,
    status: &str,
    failure_message: Option<&str>,
) -> (String, OpsData) {
    let mut value = json!({
        "executionId": execution_id,
        "region": region,
        "status": status,
    });
    if let Some(document) = document {
        value["document"] = json!(document);
    }
    if let Some(message) = failure_message {
        value["reason"] = json!(truncate(message, 2000));
    }
    (DATA_AUTOMATION.to_owned(), data(value.to_string()))
}

/// Quotes a word for a POSIX shell: whatever it holds stays one argument.
pub fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The command an operator can paste to run the runbook by hand.
pub fn start_command(start: &StartAutomation) -> String {
    format!(
        "aws ssm start-automation-execution --region {} --document-name {} --parameters {}",
        shell_quote(&start.region),
        shell_quote(&start.document),
        shell_quote(&json!(start.parameters).to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(value: &str) -> StartAutomation {
        StartAutomation {
            document: "AWS-DisablePublicAccessForSecurityGroup".into(),
            document_version: None,
            region: "eu-west-1".into(),
            parameters: BTreeMap::from([("GroupId".to_owned(), vec![value.to_owned()])]),
            client_token: String::new(),
            tags: BTreeMap::new(),
        }
    }

    /// The approval command, run through `sh` with `aws` replaced by a printer of its
    /// arguments: every column value stays inside its one argument.
    #[test]
    fn an_approval_command_is_safe_to_paste_into_a_shell() {
        for hostile in [
            "sg-1",
            "it's",
            "'; touch /tmp/tarem-pwned; echo '",
            "$(id) `id` ${HOME} \"q\" \\ \n new line",
            "'''",
        ] {
            let request = start(hostile);
            let command = start_command(&request);
            let script = format!("aws() {{ printf '%s\\0' \"$@\"; }}\n{command}");
            let output = std::process::Command::new("sh")
                .arg("-c")
                .arg(&script)
                .output()
                .expect("sh runs");
            assert!(output.status.success(), "{command}");
            let arguments: Vec<String> = output
                .stdout
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            assert_eq!(
                arguments,
                [
                    "ssm",
                    "start-automation-execution",
                    "--region",
                    "eu-west-1",
                    "--document-name",
                    "AWS-DisablePublicAccessForSecurityGroup",
                    "--parameters",
                    &json!(request.parameters).to_string(),
                ],
                "{command}"
            );
        }
        assert!(!std::path::Path::new("/tmp/tarem-pwned").exists());
    }
}
