//! The decisions, as pure functions: what a tracker change means, whether and what to start, and
//! what the OpsItem says. No I/O here; the handlers carry the results out.

use crate::finding::{Finding, Status};
use crate::mapping::{Mapping, MappingError, Mode, TemplateInput};
use crate::ports::{NewOpsItem, OpsData, OpsItemStatus, OpsItemUpdate, StartAutomation};
use crate::safety::{SafetyConfig, check_roles};
use crate::stream::TrackerChange;
use serde_json::json;
use std::collections::BTreeMap;

/// OpsItem title limit (characters).
const TITLE_MAX: usize = 1024;
/// OpsItem description limit (characters).
const DESCRIPTION_MAX: usize = 2048;
/// Budget for the finding's operational data value; OpsCenter caps operational data at 20 KB.
const FINDING_DATA_MAX: usize = 8 * 1024;

/// Tag on each automation started by tarem: the OpsItem it reports to.
pub const TAG_OPS_ITEM: &str = "tarem:opsItemId";
/// Tag on each automation started by tarem: the finding it remediates.
pub const TAG_FINDING: &str = "tarem:findingKey";
/// Tag on each automation started by tarem: its ClientToken, to find it again after a retry.
pub const TAG_CLIENT_TOKEN: &str = "tarem:clientToken";
/// Operational data key that makes a finding's OpsItems searchable.
pub const DATA_FINDING_KEY: &str = "tarem:findingKey";
pub const DATA_FINDING: &str = "tarem:finding";
pub const DATA_REMEDIATION: &str = "tarem:remediation";
pub const DATA_AUTOMATION: &str = "tarem:automation";

/// What a tracker stream record asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing to do; the reason is logged.
    Ignore(&'static str),
    /// Trusted Advisor reports the resource fixed: resolve its open OpsItems.
    Resolve,
    /// The finding is Red or Yellow: its OpsItem, and the runbook when the mapping and the
    /// safety controls allow.
    Flag,
}

pub fn classify(change: &TrackerChange) -> Action {
    let Some(new) = &change.new else {
        return Action::Ignore("the tracker row was removed");
    };
    let was_flagged = change
        .old
        .as_ref()
        .map(|old| old.resource_status.is_flagged());
    match (new.resource_status.is_flagged(), was_flagged) {
        (false, Some(false)) => Action::Ignore("the finding stays Green"),
        (false, _) => Action::Resolve,
        (true, _) => Action::Flag,
    }
}

/// What the runbook side of a flagged finding does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remediation {
    /// Automated mode, every check passed so far: start (the handler's gates may still hold it).
    Start(StartAutomation),
    /// Nothing starts: the OpsItem links the runbook with its parameters, for an operator.
    Approval {
        start: StartAutomation,
        reason: String,
    },
    /// Nothing starts: the OpsItem records exactly what would have started.
    DryRun(StartAutomation),
    /// Automated, but a safety control held the start.
    Held {
        start: StartAutomation,
        control: &'static str,
        reason: String,
    },
    /// No mapping for the check.
    NotMapped,
    /// Track only: no OpsItem.
    Inactive { document: String, reason: String },
    /// It cannot start, permanently, for the reason given (broken mapping, regex miss, template,
    /// a document or role outside the stack's allowlists).
    Blocked {
        document: Option<String>,
        reason: String,
    },
}

fn start_line(start: &StartAutomation) -> String {
    format!(
        "{} in {} with {}",
        start.document,
        start.region,
        json!(start.parameters)
    )
}

impl Remediation {
    /// One line for the OpsItem, the log and the story.
    pub fn describe(&self) -> String {
        match self {
            Remediation::Start(start) => format!("starting {}", start_line(start)),
            Remediation::Approval { start, reason } => format!(
                "approval: {reason}. To remediate, run the linked runbook from OpsCenter, or: aws ssm start-automation-execution --region {} --document-name {} --parameters '{}'",
                start.region,
                start.document,
                json!(start.parameters)
            ),
            Remediation::DryRun(start) => format!("dry run: would start {}", start_line(start)),
            Remediation::Held {
                control, reason, ..
            } => format!("not started ({control}): {reason}"),
            Remediation::NotMapped => "no runbook is mapped to this check".into(),
            Remediation::Inactive { reason, .. } => format!("inactive: {reason}"),
            Remediation::Blocked { reason, .. } => format!("not started: {reason}"),
        }
    }

    fn state(&self) -> &'static str {
        match self {
            Remediation::Start(_) => "starting",
            Remediation::Approval { .. } => "approval",
            Remediation::DryRun(_) => "dry-run",
            Remediation::Held { .. } => "held",
            Remediation::NotMapped => "not-mapped",
            Remediation::Inactive { .. } => "inactive",
            Remediation::Blocked { .. } => "blocked",
        }
    }

    /// The start this remediation describes, whether or not it happens.
    pub fn start(&self) -> Option<&StartAutomation> {
        match self {
            Remediation::Start(start)
            | Remediation::Approval { start, .. }
            | Remediation::DryRun(start)
            | Remediation::Held { start, .. } => Some(start),
            _ => None,
        }
    }

    fn document(&self) -> Option<&str> {
        match self {
            Remediation::NotMapped => None,
            Remediation::Inactive { document, .. } => Some(document),
            Remediation::Blocked { document, .. } => document.as_deref(),
            other => other.start().map(|start| start.document.as_str()),
        }
    }
}

/// The ClientToken of a finding's attempt: a UUID (v5) of the finding key and the attempt
/// number, so every retry of one attempt asks SSM for the same start.
pub fn client_token(finding_key: &str, attempt: u32) -> String {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6a1c_7e52_93d4_4b0f_8d2e_5f3a_1b9c_0e47);
    uuid::Uuid::new_v5(
        &NAMESPACE,
        format!("{finding_key}/attempt/{attempt}").as_bytes(),
    )
    .to_string()
}

/// Decides the runbook side of a flagged finding from its mapping and effective mode (see
/// [`crate::safety::effective_mode`]). The ClientToken is left empty: the attempt gate sets it.
pub fn plan_remediation(
    finding: &Finding,
    mapping: Option<&Result<Mapping, MappingError>>,
    mode: Mode,
    mode_note: Option<&str>,
    safety: &SafetyConfig,
) -> Remediation {
    let mapping = match mapping {
        None => return Remediation::NotMapped,
        Some(Err(error)) => {
            return Remediation::Blocked {
                document: None,
                reason: error.to_string(),
            };
        }
        Some(Ok(mapping)) => mapping,
    };
    let document = mapping.document.clone();
    if mode == Mode::Inactive {
        return Remediation::Inactive {
            document,
            reason: mode_note
                .unwrap_or("the mapping's mode is inactive")
                .to_owned(),
        };
    }
    let allowed = &safety.allowed_documents;
    if !allowed.is_empty() && !allowed.contains(&document) {
        return Remediation::Blocked {
            reason: format!(
                "{document} is not one of the stack's allowed automation documents ({})",
                allowed.join(", ")
            ),
            document: Some(document),
        };
    }
    let resource_id = match &mapping.regex {
        None => None,
        Some(regex) => match regex.extract(&finding.resource) {
            Some(id) => Some(id),
            None => {
                return Remediation::Blocked {
                    document: Some(document),
                    reason: format!(
                        "the mapping's regexPattern {:?} does not match the resource {:?}",
                        regex.as_str(),
                        finding.resource
                    ),
                };
            }
        },
    };
    let parameters = match mapping.parameters.render(TemplateInput {
        finding,
        resource_id,
    }) {
        Ok(parameters) => parameters,
        Err(error) => {
            return Remediation::Blocked {
                document: Some(document),
                reason: format!("automationParameters {error}"),
            };
        }
    };
    if let Err(reason) = check_roles(&parameters, &safety.allowed_roles) {
        return Remediation::Blocked {
            document: Some(document),
            reason,
        };
    }
    let start = StartAutomation {
        document,
        document_version: mapping.document_version.clone(),
        region: finding.region.clone(),
        parameters,
        client_token: String::new(),
        tags: BTreeMap::new(),
    };
    match mode {
        Mode::Automated => Remediation::Start(start),
        Mode::DryRun => Remediation::DryRun(start),
        // Inactive returned above.
        Mode::Approval | Mode::Inactive => Remediation::Approval {
            start,
            reason: mode_note
                .map(str::to_owned)
                .unwrap_or_else(|| "automatic remediation is off for this check (mode approval, or automationStatus false)".into()),
        },
    }
}

/// A tag whose key carries the ClientToken, so `DescribeAutomationExecutions` (which filters on
/// tag keys) can find the execution a retried start already made.
pub fn attempt_tag(client_token: &str) -> String {
    format!("tarem:attempt:{client_token}")
}

/// The tags that tie an automation to its OpsItem and finding.
pub fn automation_tags(
    finding_key: &str,
    ops_item_id: &str,
    client_token: &str,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TAG_OPS_ITEM.to_owned(), ops_item_id.to_owned()),
        (TAG_FINDING.to_owned(), finding_key.to_owned()),
        (TAG_CLIENT_TOKEN.to_owned(), client_token.to_owned()),
        (attempt_tag(client_token), "1".to_owned()),
    ])
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

pub fn dedup_string(finding_key: &str) -> String {
    format!("tarem:{finding_key}")
}

pub fn ops_item_title(finding: &Finding) -> String {
    truncate(
        &format!("[TA] [{}] [{}]", finding.check_name, finding.resource),
        TITLE_MAX,
    )
}

/// The finding as operational data: its identity, status and check-item columns (columns are
/// dropped, and say so, when they would not fit).
fn finding_data(finding: &Finding) -> OpsData {
    let mut value = json!({
        "checkName": finding.check_name,
        "resource": finding.resource,
        "region": finding.region,
        "accountId": finding.account_id,
        "status": finding.resource_status,
        "lastUpdatedTime": finding.last_updated_time,
        "checkItemDetail": finding.check_item_detail,
    });
    if value.to_string().len() > FINDING_DATA_MAX {
        value["checkItemDetail"] =
            json!("(omitted: too large for operational data; see the tracker table)");
    }
    data(value.to_string())
}

fn remediation_data(remediation: &Remediation) -> OpsData {
    let mut value = json!({
        "state": remediation.state(),
        "detail": remediation.describe(),
    });
    if let Some(document) = remediation.document() {
        value["document"] = json!(document);
    }
    if let Remediation::Held { control, .. } = remediation {
        value["control"] = json!(control);
    }
    if let Some(start) = remediation.start() {
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
    const MAX: usize = 8 * 1024;
    if value.to_string().len() > MAX {
        if let Some(detail) = value
            .get("detail")
            .and_then(|d| d.as_str())
            .map(str::to_owned)
        {
            value["detail"] = json!(truncate(&detail, 1024));
        }
        if value.to_string().len() > MAX {
            value["parameters"] = json!("(omitted: too large for operational data)");
        }
    }
    data(value.to_string())
}

fn description(finding: &Finding, remediation: &Remediation) -> String {
    truncate(
        &format!(
            "Trusted Advisor reports {} as {} for the check \"{}\" in {} (last updated {}).\n\nRemediation: {}.",
            finding.resource,
            finding.resource_status,
            finding.check_name,
            finding.region,
            finding.last_updated_time,
            remediation.describe()
        ),
        DESCRIPTION_MAX,
    )
}

/// The OpsItem for a flagged finding.
pub fn ops_item_for(finding: &Finding, remediation: &Remediation, source: &str) -> NewOpsItem {
    let dedup = dedup_string(&finding.hash_key);
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
        (DATA_REMEDIATION.to_owned(), remediation_data(remediation)),
    ]);
    if let Some(arn) = finding.resource_arn() {
        operational_data.insert(
            "/aws/resources".into(),
            searchable(json!([{ "arn": arn }]).to_string()),
        );
    }
    if let Some(document) = remediation.document() {
        // Links the runbook to the OpsItem, so an operator can run it from OpsCenter.
        operational_data.insert(
            "/aws/automations".into(),
            data(
                json!([{ "automationType": "AWS:SSM:Automation", "automationId": document }])
                    .to_string(),
            ),
        );
    }
    NewOpsItem {
        title: ops_item_title(finding),
        description: description(finding, remediation),
        source: source.to_owned(),
        severity: Some(match finding.resource_status {
            Status::Red => "2".to_owned(),
            _ => "3".to_owned(),
        }),
        dedup_string: dedup,
        operational_data,
    }
}

/// Refreshes an OpsItem that dedup returned (the finding changed since it was opened).
pub fn refresh_update(item: &NewOpsItem) -> OpsItemUpdate {
    OpsItemUpdate {
        status: None,
        description: Some(item.description.clone()),
        operational_data: item
            .operational_data
            .iter()
            .filter(|(key, _)| !key.starts_with("/aws/dedup"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// Records the started automation on its OpsItem.
pub fn started_update(start: &StartAutomation, execution_id: &str) -> OpsItemUpdate {
    let value = json!({
        "executionId": execution_id,
        "document": start.document,
        "region": start.region,
        "status": "Started",
        "parameters": start.parameters,
    });
    OpsItemUpdate {
        status: Some(OpsItemStatus::InProgress),
        description: None,
        operational_data: BTreeMap::from([(DATA_AUTOMATION.to_owned(), data(value.to_string()))]),
    }
}

/// Resolves an OpsItem whose finding Trusted Advisor now reports Green.
pub fn resolved_by_trusted_advisor(finding: &Finding) -> OpsItemUpdate {
    let value = json!({
        "state": "resolved",
        "detail": format!("Trusted Advisor reported the resource Green at {}", finding.last_updated_time),
    });
    OpsItemUpdate {
        status: Some(OpsItemStatus::Resolved),
        description: None,
        operational_data: BTreeMap::from([
            (DATA_REMEDIATION.to_owned(), data(value.to_string())),
            (DATA_FINDING.to_owned(), finding_data(finding)),
        ]),
    }
}

/// What an automation's status means for its OpsItem: Success resolves it; any other final
/// status leaves it open with the reason; a non-final status only updates it.
pub fn automation_outcome_update(
    execution_id: &str,
    region: &str,
    document: Option<&str>,
    status: &str,
    failure_message: Option<&str>,
) -> OpsItemUpdate {
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
    let status = if crate::automation_event::is_success(status) {
        Some(OpsItemStatus::Resolved)
    } else if crate::automation_event::is_final(status) {
        Some(OpsItemStatus::Open)
    } else {
        None
    };
    OpsItemUpdate {
        status,
        description: None,
        operational_data: BTreeMap::from([(DATA_AUTOMATION.to_owned(), data(value.to_string()))]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn finding(status: Status, millis: i64, resource: &str) -> Finding {
        let at = chrono::DateTime::from_timestamp_millis(millis).unwrap();
        Finding::new("111122223333", "check", resource, "eu-west-1").at(status, at, at)
    }

    const SG: &str = "arn:aws:ec2:eu-west-1:111122223333:security-group/sg-0ab";

    fn change(old: Option<Status>, new: Option<Status>) -> TrackerChange {
        TrackerChange {
            sequence_number: None,
            event_name: "MODIFY".into(),
            old: old.map(|s| finding(s, 1, SG)),
            new: new.map(|s| finding(s, 2, SG)),
        }
    }

    fn mapping(enabled: bool) -> Result<Mapping, MappingError> {
        Mapping::from_json(&json!({
            "checkName": "check", "ssmAutomationDocument": "AWS-DisablePublicAccessForSecurityGroup",
            "automationParameters": {"GroupId": ["$resourceId"]},
            "regexPattern": "(sg-\\w+)", "automationStatus": enabled
        }))
    }

    #[test]
    fn records_are_classified_by_their_new_and_old_status() {
        use Status::*;
        assert_eq!(classify(&change(None, Some(Red))), Action::Flag);
        assert_eq!(classify(&change(Some(Green), Some(Yellow))), Action::Flag);
        assert_eq!(classify(&change(Some(Red), Some(Red))), Action::Flag);
        assert_eq!(classify(&change(Some(Red), Some(Green))), Action::Resolve);
        assert_eq!(classify(&change(None, Some(Green))), Action::Resolve);
        assert!(matches!(
            classify(&change(Some(Green), Some(Green))),
            Action::Ignore(_)
        ));
        assert!(matches!(
            classify(&change(Some(Red), None)),
            Action::Ignore(_)
        ));
    }

    fn plan(
        finding: &Finding,
        mapping: Option<&Result<Mapping, MappingError>>,
        safety: &SafetyConfig,
    ) -> Remediation {
        let mode = match mapping {
            Some(Ok(mapping)) => mapping.mode,
            _ => Mode::Approval,
        };
        plan_remediation(finding, mapping, mode, None, safety)
    }

    #[test]
    fn the_plan_follows_the_mapping_and_its_mode() {
        let red = finding(Status::Red, 1_000, SG);
        let safety = SafetyConfig::default();
        assert_eq!(plan(&red, None, &safety), Remediation::NotMapped);
        let Remediation::Approval { start, reason } = plan(&red, Some(&mapping(false)), &safety)
        else {
            panic!("automationStatus false is approval");
        };
        assert_eq!(start.parameters["GroupId"], vec!["sg-0ab".to_owned()]);
        assert!(reason.contains("automationStatus false"), "{reason}");
        let approval = plan(&red, Some(&mapping(false)), &safety).describe();
        assert!(
            approval.contains("aws ssm start-automation-execution --region eu-west-1 --document-name AWS-DisablePublicAccessForSecurityGroup --parameters '{\"GroupId\":[\"sg-0ab\"]}'"),
            "{approval}"
        );
        let Remediation::Start(start) = plan(&red, Some(&mapping(true)), &safety) else {
            panic!("expected a start");
        };
        assert_eq!(start.region, "eu-west-1");
        assert_eq!(start.parameters["GroupId"], vec!["sg-0ab".to_owned()]);
        let mapping_ok = mapping(true).unwrap();
        assert!(matches!(
            plan_remediation(
                &red,
                Some(&Ok(mapping_ok.clone())),
                Mode::DryRun,
                None,
                &safety
            ),
            Remediation::DryRun(_)
        ));
        assert!(matches!(
            plan_remediation(&red, Some(&Ok(mapping_ok)), Mode::Inactive, None, &safety),
            Remediation::Inactive { .. }
        ));
        let broken = Mapping::from_json(
            &json!({"checkName": "check", "ssmAutomationDocument": "D", "automationStatus": "yes"}),
        );
        let Remediation::Blocked { reason, .. } = plan(&red, Some(&broken), &safety) else {
            panic!("expected blocked");
        };
        assert!(reason.contains("automationStatus"), "{reason}");
    }

    #[test]
    fn documents_and_roles_outside_the_allowlists_are_blocked() {
        let red = finding(Status::Red, 1_000, SG);
        let only_restart = SafetyConfig {
            allowed_documents: vec!["AWS-RestartEC2Instance".to_owned()],
            ..SafetyConfig::default()
        };
        let Remediation::Blocked { reason, .. } = plan(&red, Some(&mapping(true)), &only_restart)
        else {
            panic!("a document outside the allowlist must not start");
        };
        assert!(
            reason.contains("not one of the stack's allowed automation documents"),
            "{reason}"
        );
        let with_role = Mapping::from_json(&json!({
            "checkName": "check", "ssmAutomationDocument": "AWS-DisablePublicAccessForSecurityGroup",
            "automationParameters": {"GroupId": ["$resourceId"], "AutomationAssumeRole": ["arn:aws:iam::111122223333:role/Other"]},
            "regexPattern": "(sg-\\w+)", "automationStatus": true
        }));
        let only_ours = SafetyConfig {
            allowed_roles: vec!["arn:aws:iam::111122223333:role/Tarem".to_owned()],
            ..SafetyConfig::default()
        };
        let Remediation::Blocked { reason, .. } = plan(&red, Some(&with_role), &only_ours) else {
            panic!("a role outside the allowlist must not be passed");
        };
        assert!(
            reason.contains("role/Other is not one of the stack's automation roles"),
            "{reason}"
        );
        assert!(matches!(
            plan(&red, Some(&with_role), &SafetyConfig::default()),
            Remediation::Start(_)
        ));
    }

    #[test]
    fn a_regex_miss_starts_nothing_and_says_why() {
        let instance = finding(
            Status::Red,
            1,
            "arn:aws:ec2:eu-west-1:111122223333:instance/i-0ab",
        );
        let Remediation::Blocked { reason, document } =
            plan(&instance, Some(&mapping(true)), &SafetyConfig::default())
        else {
            panic!("expected blocked");
        };
        assert_eq!(
            document.as_deref(),
            Some("AWS-DisablePublicAccessForSecurityGroup")
        );
        assert!(reason.contains("does not match the resource"), "{reason}");
    }

    #[test]
    fn client_tokens_are_uuids_that_differ_by_finding_and_attempt() {
        let token = client_token("key", 1);
        assert!(uuid::Uuid::parse_str(&token).is_ok());
        assert_eq!(token, client_token("key", 1));
        assert_ne!(token, client_token("key", 2));
        assert_ne!(token, client_token("other", 1));
    }

    #[test]
    fn the_ops_item_names_the_finding_and_dedups_on_it() {
        let red = finding(Status::Red, 1, SG);
        let item = ops_item_for(&red, &Remediation::NotMapped, "TrustedAdvisor");
        assert_eq!(item.title, format!("[TA] [check] [{SG}]"));
        assert_eq!(item.dedup_string, format!("tarem:{}", red.hash_key));
        assert_eq!(item.severity.as_deref(), Some("2"));
        assert!(
            item.operational_data["/aws/dedup"]
                .value
                .contains(&item.dedup_string)
        );
        assert_eq!(
            item.operational_data["/aws/resources"].value,
            json!([{ "arn": SG }]).to_string()
        );
        assert!(
            item.operational_data[DATA_REMEDIATION]
                .value
                .contains("no runbook is mapped")
        );
        let not_arn = ops_item_for(
            &finding(Status::Yellow, 1, "ta-item/01"),
            &Remediation::NotMapped,
            "TrustedAdvisor",
        );
        assert!(!not_arn.operational_data.contains_key("/aws/resources"));
        let long = ops_item_for(
            &finding(Status::Red, 1, &"r".repeat(3000)),
            &Remediation::NotMapped,
            "TrustedAdvisor",
        );
        assert_eq!(long.title.chars().count(), TITLE_MAX);
        assert!(long.description.chars().count() <= DESCRIPTION_MAX);
    }

    #[test]
    fn automation_outcomes_resolve_only_on_success() {
        let update = |status| {
            automation_outcome_update("e-1", "eu-west-1", Some("D"), status, Some("boom")).status
        };
        assert_eq!(update("Success"), Some(OpsItemStatus::Resolved));
        assert_eq!(
            update("CompletedWithSuccess"),
            Some(OpsItemStatus::Resolved)
        );
        assert_eq!(update("Failed"), Some(OpsItemStatus::Open));
        assert_eq!(update("TimedOut"), Some(OpsItemStatus::Open));
        assert_eq!(update("InProgress"), None);
        let failed =
            automation_outcome_update("e-1", "eu-west-1", Some("D"), "Failed", Some("boom"));
        let data = &failed.operational_data[DATA_AUTOMATION].value;
        for expected in ["e-1", "eu-west-1", "\"D\"", "Failed", "boom"] {
            assert!(data.contains(expected), "{data} lacks {expected}");
        }
    }
}
