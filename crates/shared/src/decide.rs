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

/// The member-local automation roles: the member templates make them (member/global.yaml),
/// trusted by SSM in that account only, and the member role may pass only them.
const MEMBER_AUTOMATION_ROLE: &str = ":role/tarem/tarem-automation-";

/// Whether a finding in a member account (`member`: its id, when the finding is not the hub's
/// own) passes one of its own account's member-local automation roles. Roles are not passed
/// across accounts: another account's is never one.
fn is_member_role(role: &str, member: Option<&str>) -> bool {
    let Some(account) = member else {
        return false;
    };
    ["aws", "aws-us-gov", "aws-cn"].iter().any(|partition| {
        role.strip_prefix(&format!(
            "arn:{partition}:iam::{account}{MEMBER_AUTOMATION_ROLE}"
        ))
        .is_some_and(|name| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
        })
    })
}

const NO_ROLE: &str = "automated remediation needs the mapping to pass an AutomationAssumeRole from the stack's role allowlist; without one SSM would run the runbook with the function's own permissions";

fn check_role(
    parameters: &BTreeMap<String, Vec<String>>,
    allowed_roles: &[String],
    mode: Mode,
    member: Option<&str>,
) -> RoleCheck {
    let roles = parameters
        .get("AutomationAssumeRole")
        .map(Vec::as_slice)
        .unwrap_or_default();
    if roles.len() == 1 && is_member_role(&roles[0], member) {
        return RoleCheck::Allowed;
    }
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
        return RoleCheck::NeedsApproval(NO_ROLE.into());
    }
    RoleCheck::Allowed
}

/// Why the stack would not start a mapping's document, if it would not. An account's own
/// document is whatever its latest version says, and anyone who may update it changes what
/// runs: it starts only pinned to a version. AWS's own (its reserved prefixes) are versioned by
/// AWS. Past that, the document must be on the stack's allowlist (empty: not known here).
fn document_refusal(mapping: &Mapping, allowed: &[String]) -> Option<String> {
    let document = &mapping.document;
    let aws_owned = ["AWS", "Amazon", "amzn"]
        .iter()
        .any(|prefix| document.starts_with(prefix));
    if !aws_owned && mapping.document_version.is_none() {
        return Some(format!(
            "{document} is this account's own document: pin the version that was reviewed (the mapping's documentVersion), since anyone who may update the document would change what runs"
        ));
    }
    if !allowed.is_empty() && !allowed.contains(document) {
        return Some(format!(
            "{document} is not one of the stack's allowed automation documents ({})",
            allowed.join(", ")
        ));
    }
    None
}

/// What a stack would refuse about a mapping whatever the finding, said before it is written
/// (`tarem mapping add`, `enable`, `validate`): the document ([`document_refusal`]), the roles
/// and automated mode without a role ([`check_role`]), the same decisions
/// [`plan_remediation`] takes. Without the stack's settings (`None`), only what every stack
/// refuses. Each refusal names the mapping attribute it is about.
pub fn mapping_refusals(
    mapping: &Mapping,
    safety: Option<&SafetyConfig>,
) -> Vec<(&'static str, String)> {
    let no_allowlist: &[String] = &[];
    let mut refusals: Vec<(&'static str, String)> = document_refusal(
        mapping,
        safety.map_or(no_allowlist, |s| &s.allowed_documents),
    )
    .map(|reason| ("ssmAutomationDocument", reason))
    .into_iter()
    .collect();
    let held = |reason: &str| {
        (
            "automationParameters",
            format!("{reason}: the episodes would be held for approval"),
        )
    };
    let has_role = mapping
        .parameters
        .names()
        .iter()
        .any(|name| name == "AutomationAssumeRole");
    let literal = mapping.parameters.literal_values("AutomationAssumeRole");
    let parameters = BTreeMap::from([("AutomationAssumeRole".to_owned(), literal)]);
    match safety {
        // A role given through a variable is checked when it is filled.
        Some(safety) => match check_role(&parameters, &safety.allowed_roles, mapping.mode, None) {
            RoleCheck::Blocked(reason) => refusals.push(("automationParameters", reason)),
            RoleCheck::NeedsApproval(reason) if !has_role || safety.allowed_roles.is_empty() => {
                refusals.push(held(&reason))
            }
            _ => {}
        },
        None if mapping.mode == Mode::Automated && !has_role => refusals.push(held(NO_ROLE)),
        None => {}
    }
    refusals
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
    if let Some(reason) = document_refusal(mapping, &safety.allowed_documents) {
        return Remediation::Blocked {
            reason,
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
    // A member's finding: neither a local run's (no home known) nor the hub's own.
    let member = finding.account_id.as_deref().filter(|account| {
        safety
            .home_account
            .as_deref()
            .is_some_and(|home| home != *account)
    });
    let role = check_role(&parameters, &safety.allowed_roles, mode, member);
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
#[path = "decide_tests.rs"]
mod tests;
