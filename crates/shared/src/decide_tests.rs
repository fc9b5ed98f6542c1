//! `decide`'s tests.

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
    let Remediation::Approval { start, reason } = plan(&red, Some(&mapping(false)), &safety) else {
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

#[test]
fn a_member_passes_only_its_own_member_local_automation_roles() {
    let b = Some("444455556666");
    for role in [
        "arn:aws:iam::444455556666:role/tarem/tarem-automation-default",
        "arn:aws:iam::444455556666:role/tarem/tarem-automation-sg-pack",
        "arn:aws-us-gov:iam::444455556666:role/tarem/tarem-automation-default",
    ] {
        assert!(is_member_role(role, b), "{role}");
    }
    for role in [
        // Another account's, another path's, an empty name, a path below.
        "arn:aws:iam::111122223333:role/tarem/tarem-automation-default",
        "arn:aws:iam::444455556666:role/Admin",
        "arn:aws:iam::444455556666:role/tarem-automation-default",
        "arn:aws:iam::444455556666:role/tarem/tarem-automation-",
        "arn:aws:iam::444455556666:role/tarem/tarem-automation-x/../Admin",
    ] {
        assert!(!is_member_role(role, b), "{role}");
    }
    // Not a member's finding (the hub's own, or a local run): never by this rule.
    assert!(!is_member_role(
        "arn:aws:iam::444455556666:role/tarem/tarem-automation-default",
        None
    ));
}
