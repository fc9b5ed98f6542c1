//! What a mapping makes of a flagged finding, as pure functions: the runbook and its parameters
//! (or why there is none), its ClientToken and its tags. The lifecycle ([`crate::lifecycle`])
//! decides when a start happens; this module decides what it would be.

use crate::finding::Finding;
use crate::mapping::{Mapping, MappingError, Mode, TemplateInput};
use crate::opsitem::start_command;
use crate::ports::{StartAutomation, TAG_CLIENT_TOKEN, TAG_FINDING, TAG_OPS_ITEM, attempt_tag};
use crate::safety::SafetyConfig;
use serde_json::json;
use std::collections::BTreeMap;

/// What the runbook side of a flagged finding is, from its mapping and effective mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remediation {
    /// Automated mode, nothing in the mapping against it: start (the lifecycle's controls still
    /// decide when).
    Start(StartAutomation),
    /// Nothing starts: the OpsItem links the runbook with its parameters, for an operator.
    Approval {
        start: StartAutomation,
        reason: String,
    },
    /// Nothing starts: the OpsItem records exactly what would have started.
    DryRun(StartAutomation),
    /// No mapping for the check.
    NotMapped,
    /// Track only: no OpsItem.
    Inactive { document: String, reason: String },
    /// It cannot start for the reason given (broken mapping, regex miss, template, a document
    /// or role outside the stack's allowlists) until the mapping changes.
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
                "approval: {reason}. To remediate, run the linked runbook from OpsCenter, or: {}",
                start_command(start)
            ),
            Remediation::DryRun(start) => format!("dry run: would start {}", start_line(start)),
            Remediation::NotMapped => "no runbook is mapped to this check".into(),
            Remediation::Inactive { reason, .. } => format!("inactive: {reason}"),
            Remediation::Blocked { reason, .. } => format!("not started: {reason}"),
        }
    }

    /// The start this remediation describes, whether or not it happens.
    pub fn start(&self) -> Option<&StartAutomation> {
        match self {
            Remediation::Start(start)
            | Remediation::Approval { start, .. }
            | Remediation::DryRun(start) => Some(start),
            _ => None,
        }
    }
}

/// The ClientToken of an attempt: a UUID (v5) of the finding, its episode and the attempt
/// number. Every retry of one attempt asks SSM for the same start; a new episode never reuses
/// an old episode's token, even when its numbering starts again at 1.
pub fn client_token(finding_key: &str, episode: &str, attempt: u32) -> String {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6a1c_7e52_93d4_4b0f_8d2e_5f3a_1b9c_0e47);
    uuid::Uuid::new_v5(
        &NAMESPACE,
        format!("{finding_key}/{episode}/attempt/{attempt}").as_bytes(),
    )
    .to_string()
}

/// Whether a start's `AutomationAssumeRole` passes the stack's role allowlist. A role outside a
/// non-empty allowlist blocks the mapping; automated mode also needs a role from the allowlist
/// (an empty allowlist fails closed), because without one SSM runs the runbook with the
/// caller's own permissions.
enum RoleCheck {
    Allowed,
    Blocked(String),
    NeedsApproval(String),
}

fn check_role(
    parameters: &BTreeMap<String, Vec<String>>,
    allowed_roles: &[String],
    mode: Mode,
) -> RoleCheck {
    let roles = parameters
        .get("AutomationAssumeRole")
        .map(Vec::as_slice)
        .unwrap_or_default();
    if !allowed_roles.is_empty()
        && let Some(role) = roles.iter().find(|role| !allowed_roles.contains(role))
    {
        return RoleCheck::Blocked(format!(
            "the AutomationAssumeRole {role} is not one of the stack's automation roles ({})",
            allowed_roles.join(", ")
        ));
    }
    if mode != Mode::Automated {
        return RoleCheck::Allowed;
    }
    if allowed_roles.is_empty() {
        return RoleCheck::NeedsApproval(
            "automated remediation needs an AutomationAssumeRole from the stack's role allowlist, and the allowlist is empty (stack parameter AutomationRoleArns)".into(),
        );
    }
    if roles.is_empty() {
        return RoleCheck::NeedsApproval(
            "automated remediation needs the mapping to pass an AutomationAssumeRole from the stack's role allowlist; without one SSM would run the runbook with the function's own permissions".into(),
        );
    }
    RoleCheck::Allowed
}

/// Whether `$resourceId` may reach a runbook: AWS resource ids are printable ASCII without
/// whitespace. A Unicode letter matched by `\w`, a space or a control character never does.
pub fn is_resource_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= crate::finding::MAX_RESOURCE_BYTES
        && id.bytes().all(|b| b.is_ascii_graphic())
}

/// Decides the runbook side of a flagged finding from its mapping and effective mode (see
/// [`crate::safety::effective_mode`]). The ClientToken is left empty: the lifecycle sets it.
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
    if let Some(reason) = crate::safety::ungoverned(finding, safety.governed_accounts.as_ref()) {
        return Remediation::Blocked {
            document: Some(document),
            reason,
        };
    }
    // An account's own document is whatever its latest version says, and anyone who may update
    // it changes what runs: it starts only pinned to a version. AWS's own (its reserved
    // prefixes) are versioned by AWS.
    let aws_owned = ["AWS", "Amazon", "amzn"]
        .iter()
        .any(|prefix| document.starts_with(prefix));
    if !aws_owned && mapping.document_version.is_none() {
        return Remediation::Blocked {
            reason: format!(
                "{document} is this account's own document: pin the version that was reviewed (the mapping's documentVersion), since anyone who may update the document would change what runs"
            ),
            document: Some(document),
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
            Some(id) if !is_resource_id(id) => {
                return Remediation::Blocked {
                    document: Some(document),
                    reason: format!(
                        "the mapping's regexPattern {:?} extracts {id:?} from the resource, which is not a resource id (printable ASCII without spaces, at most {} bytes)",
                        regex.as_str(),
                        crate::finding::MAX_RESOURCE_BYTES
                    ),
                };
            }
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
    let role = check_role(&parameters, &safety.allowed_roles, mode);
    if let RoleCheck::Blocked(reason) = role {
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
    match (mode, role) {
        (Mode::Automated, RoleCheck::NeedsApproval(reason)) => {
            Remediation::Approval { start, reason }
        }
        (Mode::Automated, _) => Remediation::Start(start),
        (Mode::DryRun, _) => Remediation::DryRun(start),
        // Inactive returned above.
        (Mode::Approval | Mode::Inactive, _) => Remediation::Approval {
            start,
            reason: mode_note
                .map(str::to_owned)
                .unwrap_or_else(|| "automatic remediation is off for this check (mode approval, or automationStatus false)".into()),
        },
    }
}

/// The resource a start acts on, for the one-runbook-per-resource lock: the finding's account
/// and region and the id its runbook is given (what the mapping's regex extracts, else the
/// resource). Two checks that name one security group (a classic check by its columns, a Security
/// Hub one by its ARN) extract the same `sg-…` and so share the lock.
pub fn resource_lock_key(finding: &Finding, mapping: &Mapping) -> String {
    let target = mapping
        .regex
        .as_ref()
        .and_then(|regex| regex.extract(&finding.resource))
        .unwrap_or(&finding.resource);
    format!(
        "{}|{}|{target}",
        finding.account_id.as_deref().unwrap_or_default(),
        finding.region
    )
}

/// The tags that tie an automation to its finding (and its OpsItem, once it exists).
pub fn automation_tags(
    finding_key: &str,
    ops_item_id: Option<&str>,
    client_token: &str,
) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::from([
        (TAG_FINDING.to_owned(), finding_key.to_owned()),
        (TAG_CLIENT_TOKEN.to_owned(), client_token.to_owned()),
        (attempt_tag(client_token), "1".to_owned()),
    ]);
    if let Some(id) = ops_item_id {
        tags.insert(TAG_OPS_ITEM.to_owned(), id.to_owned());
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Status;
    use serde_json::json;

    fn finding(status: Status, millis: i64, resource: &str) -> Finding {
        let at = chrono::DateTime::from_timestamp_millis(millis).unwrap();
        Finding::new("111122223333", "check", resource, "eu-west-1").at(status, at, at)
    }

    const SG: &str = "arn:aws:ec2:eu-west-1:111122223333:security-group/sg-0ab";
    const ROLE: &str = "arn:aws:iam::111122223333:role/Tarem";

    fn mapping(enabled: bool) -> Result<Mapping, MappingError> {
        Mapping::from_json(&json!({
            "checkName": "check", "ssmAutomationDocument": "AWS-DisablePublicAccessForSecurityGroup",
            "automationParameters": {"GroupId": ["$resourceId"], "AutomationAssumeRole": [ROLE]},
            "regexPattern": "(sg-\\w+)", "automationStatus": enabled
        }))
    }

    fn safety() -> SafetyConfig {
        SafetyConfig {
            allowed_roles: vec![ROLE.to_owned()],
            ..SafetyConfig::default()
        }
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
        let safety = safety();
        assert_eq!(plan(&red, None, &safety), Remediation::NotMapped);
        let Remediation::Approval { start, reason } = plan(&red, Some(&mapping(false)), &safety)
        else {
            panic!("automationStatus false is approval");
        };
        assert_eq!(start.parameters["GroupId"], vec!["sg-0ab".to_owned()]);
        assert!(reason.contains("automationStatus false"), "{reason}");
        let approval = plan(&red, Some(&mapping(false)), &safety).describe();
        assert!(
            approval.contains("aws ssm start-automation-execution --region 'eu-west-1' --document-name 'AWS-DisablePublicAccessForSecurityGroup' --parameters '{\"AutomationAssumeRole\":[\"arn:aws:iam::111122223333:role/Tarem\"],\"GroupId\":[\"sg-0ab\"]}'"),
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
            ..safety()
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
        let Remediation::Blocked { reason, .. } = plan(&red, Some(&with_role), &safety()) else {
            panic!("a role outside the allowlist must not be passed");
        };
        assert!(
            reason.contains("role/Other is not one of the stack's automation roles"),
            "{reason}"
        );
        assert!(matches!(
            plan(&red, Some(&mapping(true)), &safety()),
            Remediation::Start(_)
        ));
    }

    #[test]
    fn automated_mode_without_an_allowed_role_waits_for_approval() {
        let red = finding(Status::Red, 1_000, SG);
        // An empty allowlist fails closed.
        let Remediation::Approval { reason, .. } =
            plan(&red, Some(&mapping(true)), &SafetyConfig::default())
        else {
            panic!("an empty role allowlist must not start");
        };
        assert!(reason.contains("allowlist is empty"), "{reason}");
        // A mapping that passes no role would run as the function itself.
        let no_role = Mapping::from_json(&json!({
            "checkName": "check", "ssmAutomationDocument": "AWS-DisablePublicAccessForSecurityGroup",
            "automationParameters": {"GroupId": ["$resourceId"]},
            "regexPattern": "(sg-\\w+)", "automationStatus": true
        }));
        let Remediation::Approval { reason, .. } = plan(&red, Some(&no_role), &safety()) else {
            panic!("no AutomationAssumeRole must not start");
        };
        assert!(reason.contains("function's own permissions"), "{reason}");
        // Approval and dry run need no role to describe the start.
        assert!(matches!(
            plan_remediation(&red, Some(&no_role), Mode::DryRun, None, &safety()),
            Remediation::DryRun(_)
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
            plan(&instance, Some(&mapping(true)), &safety())
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
    fn client_tokens_are_uuids_that_differ_by_finding_episode_and_attempt() {
        let token = client_token("key", "e1", 1);
        assert!(uuid::Uuid::parse_str(&token).is_ok());
        assert_eq!(token, client_token("key", "e1", 1));
        assert_ne!(token, client_token("key", "e1", 2));
        assert_ne!(
            token,
            client_token("key", "e2", 1),
            "a new episode, a new token"
        );
        assert_ne!(token, client_token("other", "e1", 1));
    }

    #[test]
    fn an_account_owned_document_starts_only_pinned_to_a_version() {
        let red = finding(Status::Red, 1_000, SG);
        let own = |version: Option<&str>| {
            let mut item = json!({
                "checkName": "check", "ssmAutomationDocument": "Team-RevokeOpenSsh",
                "automationParameters": {"GroupId": ["$resourceId"], "AutomationAssumeRole": [ROLE]},
                "regexPattern": "(sg-\\w+)", "automationStatus": true
            });
            if let Some(version) = version {
                item["documentVersion"] = json!(version);
            }
            Mapping::from_json(&item)
        };
        let Remediation::Blocked { reason, .. } = plan(&red, Some(&own(None)), &safety()) else {
            panic!("an unpinned account document must not start");
        };
        assert!(reason.contains("pin the version"), "{reason}");
        assert!(matches!(
            plan(&red, Some(&own(Some("3"))), &safety()),
            Remediation::Start(_)
        ));
        // AWS's own documents are versioned by AWS.
        assert!(matches!(
            plan(&red, Some(&mapping(true)), &safety()),
            Remediation::Start(_)
        ));
    }
}
