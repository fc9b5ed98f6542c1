//! The organisation's templates (org.yaml, member/global.yaml, member/regional.yaml) and the
//! hub's bus in template.yaml, checked as CloudFormation reads them: every trust says whose
//! principals inside the organisation, every service trust names the account, no wildcard
//! principal goes without the organisation, the forwarding reaches the bus the hub makes, and
//! the StackSets deploy the member templates with every parameter they need.
//! (ORGANISATION.md §3 and §10; cfn-lint and checkov run on them in scripts/test.)

use serde_json::Value;
use std::path::PathBuf;
use tarem_e2e::template::*;

fn load(relative: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse_template(&text).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn resources(template: &Value) -> impl Iterator<Item = (&String, &Value)> {
    template["Resources"].as_object().unwrap().iter()
}

/// Every IAM policy statement of a template, with where it is: role trusts, role policies, and
/// resource policies (the hub bus's).
fn statements(template: &Value) -> Vec<(String, &Value)> {
    let mut found = vec![];
    for (name, resource) in resources(template) {
        let properties = &resource["Properties"];
        for statement in one_or_many(&properties["AssumeRolePolicyDocument"]["Statement"]) {
            found.push((format!("{name} trust"), statement));
        }
        for policy in one_or_many(&properties["Policies"]) {
            for statement in one_or_many(&policy["PolicyDocument"]["Statement"]) {
                found.push((name.clone(), statement));
            }
        }
        if resource["Type"] == "AWS::Events::EventBusPolicy" {
            found.push((name.clone(), &properties["Statement"]));
        }
    }
    found
}

fn condition<'a>(statement: &'a Value, operator: &str, key: &str) -> Option<&'a Value> {
    statement.pointer(&format!("/Condition/{operator}/{key}"))
}

fn actions(statement: &Value) -> Vec<&str> {
    one_or_many(&statement["Action"])
        .into_iter()
        .filter_map(Value::as_str)
        .collect()
}

/// The rules a policy's conditions must meet wherever it is.
fn trust_problems(template: &Value) -> Vec<String> {
    let mut problems = vec![];
    for (at, statement) in statements(template) {
        let principal = &statement["Principal"];
        let in_org = condition(statement, "StringEquals", "aws:PrincipalOrgID").is_some();
        if principal.get("AWS").is_some() && !in_org {
            problems.push(format!("{at}: an AWS principal without aws:PrincipalOrgID"));
        }
        if principal == "*" && !in_org {
            problems.push(format!(
                "{at}: a wildcard principal without aws:PrincipalOrgID"
            ));
        }
        if principal.get("Service").is_some()
            && condition(statement, "StringEquals", "aws:SourceAccount").is_none()
        {
            problems.push(format!("{at}: a service trust without aws:SourceAccount"));
        }
        let acts = actions(statement);
        if acts.contains(&"iam:PassRole")
            && condition(statement, "StringEquals", "iam:PassedToService").is_none()
        {
            problems.push(format!("{at}: iam:PassRole without iam:PassedToService"));
        }
        if acts.iter().any(|a| a.ends_with('*') || *a == "*") {
            problems.push(format!("{at}: a wildcard action {acts:?}"));
        }
        if acts.contains(&"ssm:StartAutomationExecution") && statement["Resource"] == "*" {
            problems.push(format!(
                "{at}: ssm:StartAutomationExecution on every document"
            ));
        }
    }
    problems
}

#[test]
fn every_trust_is_conditioned_on_the_organisation_or_the_account() {
    for path in [
        "member/global.yaml",
        "member/regional.yaml",
        "template.yaml",
    ] {
        assert_eq!(trust_problems(&load(path)), Vec::<String>::new(), "{path}");
    }
}

/// The checks fail on the trusts AWS's own solutions ship and ORGANISATION.md warns against.
#[test]
fn the_trust_checks_catch_the_unconditioned_trusts() {
    let mut member = load("member/global.yaml");
    let trust = member
        .pointer_mut("/Resources/MemberRole/Properties/AssumeRolePolicyDocument/Statement/0")
        .unwrap();
    trust["Condition"]
        .as_object_mut()
        .unwrap()
        .remove("StringEquals");
    let automation = member
        .pointer_mut(
            "/Resources/DefaultAutomationRole/Properties/AssumeRolePolicyDocument/Statement/0",
        )
        .unwrap();
    automation.as_object_mut().unwrap().remove("Condition");
    assert_eq!(
        trust_problems(&member),
        [
            "MemberRole trust: an AWS principal without aws:PrincipalOrgID",
            "DefaultAutomationRole trust: a service trust without aws:SourceAccount",
        ]
    );
}

/// Only the hub stack's own functions' roles may assume tarem-member: SAM names them
/// `<stack>-<Function>Role-<suffix>`, which the trust's pattern follows.
#[test]
fn the_member_role_trusts_only_the_hub_stacks_roles_in_the_hub_account() {
    let member = load("member/global.yaml");
    let trust = member
        .pointer("/Resources/MemberRole/Properties/AssumeRolePolicyDocument/Statement/0")
        .unwrap();
    assert_eq!(
        trust.pointer("/Principal/AWS/Fn::Sub"),
        Some(&Value::from(
            "arn:${AWS::Partition}:iam::${HubAccountId}:root"
        ))
    );
    assert_eq!(
        condition(trust, "ArnLike", "aws:PrincipalArn").and_then(|v| v.get("Fn::Sub")),
        Some(&Value::from(
            "arn:${AWS::Partition}:iam::${HubAccountId}:role/${HubStackName}-*"
        ))
    );
    let role = member.pointer("/Resources/MemberRole/Properties").unwrap();
    assert_eq!(role["RoleName"], "tarem-member");
    assert_eq!(role["Path"], "/tarem/");
    // The roles it may pass are the member-local ones this template makes.
    let automation = member
        .pointer("/Resources/DefaultAutomationRole/Properties")
        .unwrap();
    assert!(
        automation["RoleName"]
            .as_str()
            .unwrap()
            .starts_with("tarem-automation-")
            && automation["Path"] == "/tarem/"
    );
}

/// The member rules put events on `<hub stack>-hub` in us-east-1 of the hub account, with the
/// forwarding role; the hub's template makes that bus, and its policy admits each of the two
/// event types only from the organisation.
#[test]
fn the_forwarding_reaches_the_bus_the_hub_makes_and_its_policy_admits_only_the_three_event_types() {
    let bus_arn =
        "arn:${AWS::Partition}:events:us-east-1:${HubAccountId}:event-bus/${HubStackName}-hub";
    let global = load("member/global.yaml");
    let regional = load("member/regional.yaml");
    for (template, rule) in [
        (&global, "TrustedAdvisorForwardRule"),
        (&regional, "AutomationStatusForwardRule"),
    ] {
        let target = template
            .pointer(&format!("/Resources/{rule}/Properties/Targets/0"))
            .unwrap();
        assert_eq!(
            target.pointer("/Arn/Fn::Sub"),
            Some(&Value::from(bus_arn)),
            "{rule}"
        );
        assert!(
            !target["RoleArn"].is_null(),
            "{rule}: a role is required by an org bus"
        );
    }
    assert_eq!(
        global.pointer("/Resources/ForwarderRole/Properties/Policies/0/PolicyDocument/Statement/0/Resource/Fn::Sub"),
        Some(&Value::from(bus_arn)),
        "the forwarding role may put events on the hub bus only"
    );
    // The regional rules use the global template's role by its fixed name.
    assert_eq!(
        global["Resources"]["ForwarderRole"]["Properties"]["RoleName"],
        "tarem-fwd"
    );

    let hub = load("template.yaml");
    assert_eq!(
        hub.pointer("/Resources/HubEventBus/Properties/Name/Fn::Sub"),
        Some(&Value::from("${AWS::StackName}-hub"))
    );
    let mut admitted = vec![];
    for (name, resource) in resources(&hub) {
        if resource["Type"] != "AWS::Events::EventBusPolicy" {
            continue;
        }
        let statement = &resource["Properties"]["Statement"];
        assert_eq!(statement["Principal"], "*", "{name}");
        assert_eq!(actions(statement), ["events:PutEvents"], "{name}");
        assert_eq!(
            condition(statement, "StringEquals", "aws:PrincipalOrgID").and_then(ref_to),
            Some("OrganizationId"),
            "{name}"
        );
        admitted.push((
            condition(statement, "StringEquals", "events:source")
                .unwrap()
                .clone(),
            condition(statement, "StringEquals", "events:detail-type")
                .unwrap()
                .clone(),
        ));
    }
    admitted.sort_by_key(|pair| pair.0.to_string());
    assert_eq!(
        admitted,
        [
            (
                Value::from("aws.ssm"),
                Value::from("EC2 Automation Execution Status-change Notification")
            ),
            // Approvals given on a member's OpsItem.
            (Value::from("aws.ssm"), Value::from("OpsItem Update")),
            (
                Value::from("aws.trustedadvisor"),
                Value::from("Trusted Advisor Check Item Refresh Notification")
            ),
        ]
    );
    // Each admitted pair has a rule on the hub bus, and the member rules send only those.
    for (template, rule) in [
        (&global, "/Resources/TrustedAdvisorForwardRule"),
        (&regional, "/Resources/AutomationStatusForwardRule"),
        (&hub, "/Resources/HubTrustedAdvisorRule"),
        (&hub, "/Resources/HubAutomationStatusRule"),
    ] {
        let pattern = &template.pointer(rule).unwrap()["Properties"]["EventPattern"];
        let pair = (
            pattern["source"][0].clone(),
            pattern["detail-type"][0].clone(),
        );
        assert!(admitted.contains(&pair), "{rule}: {pair:?}");
    }
}

/// EventBridge's `wildcard` matching, as far as these patterns use it (`*` for any run).
fn wildcard(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(after) = rest.strip_prefix(part) else {
                return false;
            };
            rest = after;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else {
                return false;
            };
            rest = &rest[at + part.len()..];
        }
    }
    rest.is_empty()
}

/// The status rule forwards executions tarem started (through tarem-member in a member, or the
/// hub's results handler in the hub account) and nothing a person started. The `ExecutedBy`
/// shapes are those of an assumed-role session (AWS's sample, in
/// tests/fixtures/reference/ssm-automation-status-change.json, shows a user's ARN there).
#[test]
fn the_status_rule_forwards_taremss_executions_only() {
    let regional = load("member/regional.yaml");
    let patterns: Vec<String> = one_or_many(
        regional
            .pointer(
                "/Resources/AutomationStatusForwardRule/Properties/EventPattern/detail/ExecutedBy",
            )
            .unwrap(),
    )
    .into_iter()
    .map(|p| {
        let w = &p["wildcard"];
        w.as_str()
            .map(str::to_owned)
            .or_else(|| {
                w["Fn::Sub"]
                    .as_str()
                    .map(|s| s.replace("${HubStackName}", "tarem"))
            })
            .unwrap()
    })
    .collect();
    let forwarded = |executed_by: &str| patterns.iter().any(|p| wildcard(p, executed_by));
    assert!(forwarded(
        "arn:aws:sts::210987654321:assumed-role/tarem-member/tarem-results-handler"
    ));
    assert!(forwarded(
        "arn:aws:sts::123456789012:assumed-role/tarem-ResultsHandlerFunctionRole-AbC123/tarem-results-handler"
    ));
    assert!(!forwarded("arn:aws:iam::123456789012:user/userName"));
    assert!(!forwarded(
        "arn:aws:sts::123456789012:assumed-role/Admin/alice"
    ));
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/reference/ssm-automation-status-change.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(!forwarded(
        fixture["detail"]["ExecutedBy"].as_str().unwrap()
    ));
}

/// Both StackSets are service-managed and follow the OUs (a new account gets them, a leaving
/// one loses them), deploy the member templates that exist, and pass every parameter those
/// need that has no default.
#[test]
fn the_stacksets_deploy_the_member_templates_with_every_parameter_they_need() {
    let org = load("org.yaml");
    let mut deployed = vec![];
    for (name, resource) in resources(&org) {
        assert_eq!(resource["Type"], "AWS::CloudFormation::StackSet", "{name}");
        let properties = &resource["Properties"];
        assert_eq!(properties["PermissionModel"], "SERVICE_MANAGED", "{name}");
        assert_eq!(properties["AutoDeployment"]["Enabled"], true, "{name}");
        assert_eq!(
            properties["AutoDeployment"]["RetainStacksOnAccountRemoval"], false,
            "{name}"
        );
        let url = properties["TemplateURL"].as_str().unwrap();
        let member = load(url);
        let given: Vec<&str> = one_or_many(&properties["Parameters"])
            .into_iter()
            .filter_map(|p| p["ParameterKey"].as_str())
            .collect();
        for (parameter, declared) in member["Parameters"].as_object().unwrap() {
            if declared.get("Default").is_none() {
                assert!(
                    given.contains(&parameter.as_str()),
                    "{name} leaves {parameter} out"
                );
            }
        }
        for parameter in &given {
            assert!(
                member["Parameters"].get(*parameter).is_some(),
                "{name} passes {parameter}, which {url} does not declare"
            );
        }
        deployed.push(url.to_owned());
    }
    deployed.sort();
    assert_eq!(deployed, ["member/global.yaml", "member/regional.yaml"]);
    // The global set in us-east-1 only (Trusted Advisor's region; IAM is global).
    assert_eq!(
        org.pointer("/Resources/MemberGlobalStackSet/Properties/StackInstancesGroup/0/Regions"),
        Some(&serde_json::json!(["us-east-1"]))
    );
}

/// Single-account mode stays the default: with no organisation id, the hub's bus and rules
/// are not made.
#[test]
fn a_plain_deploy_makes_no_hub_bus() {
    let hub = load("template.yaml");
    assert_eq!(hub["Parameters"]["OrganizationId"]["Default"], "");
    for (name, resource) in resources(&hub) {
        if name.starts_with("Hub") {
            assert_eq!(resource["Condition"], "OrganisationHub", "{name}");
        }
    }
    assert_eq!(
        hub.pointer("/Conditions/OrganisationHub/Fn::Not/0/Fn::Equals/0/Ref"),
        Some(&Value::from("OrganizationId"))
    );
}

/// The hub's functions may assume exactly the member role, in member accounts of their own
/// organisation, and only when the stack is a hub; a plain stack governs only its own account.
#[test]
fn the_hub_assumes_only_the_member_role_inside_its_organisation_and_only_as_a_hub() {
    let hub = load("template.yaml");
    let mut found = 0;
    for function in [
        "ResultsHandlerFunction",
        "AutomationExecutionHandlerFunction",
    ] {
        for policy in one_or_many(&hub["Resources"][function]["Properties"]["Policies"]) {
            let Some(branches) = policy.get("Fn::If") else {
                let text = policy.to_string();
                assert!(
                    !text.contains("sts:AssumeRole"),
                    "{function}: unconditional AssumeRole"
                );
                continue;
            };
            assert_eq!(branches[0], "OrganisationHub", "{function}");
            assert_eq!(branches[2]["Ref"], "AWS::NoValue", "{function}");
            for statement in one_or_many(&branches[1]["Statement"]) {
                if actions(statement)
                    .iter()
                    .all(|action| action.starts_with("organizations:"))
                {
                    for resource in one_or_many(&statement["Resource"]) {
                        let text = resource.to_string();
                        assert!(
                            text.contains(":account/${OrganizationId}/*")
                                || text.contains(":ou/${OrganizationId}/ou-*"),
                            "{function}: only its own organisation's accounts and OUs: {text}"
                        );
                    }
                    continue;
                }
                assert_eq!(actions(statement), ["sts:AssumeRole"], "{function}");
                assert!(
                    statement["Resource"]
                        .to_string()
                        .ends_with(":role/tarem/tarem-member\"}"),
                    "{function}: {}",
                    statement["Resource"]
                );
                assert_eq!(
                    condition(statement, "StringEquals", "aws:ResourceOrgID"),
                    Some(&Value::from("${aws:PrincipalOrgID}")),
                    "{function}: only roles of its own organisation"
                );
                found += 1;
            }
        }
    }
    assert_eq!(found, 2, "both functions that act in members");
    let governed = &hub["Globals"]["Function"]["Environment"]["Variables"]["GOVERNED_ACCOUNTS"];
    assert_eq!(governed["Fn::If"][0], "HasMembers");
    assert_eq!(
        governed["Fn::If"][2]["Ref"], "AWS::AccountId",
        "a plain stack: its own"
    );
    assert_eq!(hub["Parameters"]["MemberAccounts"]["Default"], "");
}

/// What the hub does in a member, it does as `tarem-member`: the member role grants every call
/// the member-side adapters make (the grants registry's, for Automation, OpsCenter and tags) on
/// the resource kind each names, and the one GetParameters the member's gate reads.
#[test]
fn the_member_role_grants_every_call_the_hub_makes_in_a_member() {
    use tarem_shared::aws::grants::{On, of};
    let member = load("member/global.yaml");
    let statements: Vec<Value> =
        one_or_many(&member["Resources"]["MemberRole"]["Properties"]["Policies"])
            .into_iter()
            .flat_map(|policy| one_or_many(&policy["PolicyDocument"]["Statement"]))
            .cloned()
            .collect();
    let grants = |action: &str, resource: &str| {
        statements.iter().any(|statement| {
            actions(statement).contains(&action)
                && statement["Resource"].to_string().contains(resource)
        })
    };
    for adapter in [
        "SsmAutomation",
        "SsmOpsCenter",
        "TaggingResourceTags",
        // The findings sweep reads a member's results there (check-tracker).
        "TrustedAdvisorApi",
        "SupportTrustedAdvisor",
    ] {
        for grant in of(adapter) {
            let resource = match grant.on {
                On::AllowedDocuments => "automation-definition/",
                On::AutomationExecutions => ":automation-execution/*",
                On::OpsItems => ":opsitem/*",
                On::Anything => "*",
                other => panic!("{adapter}: {other:?} has no member counterpart"),
            };
            assert!(
                grants(grant.action, resource),
                "tarem-member lacks {} on {resource} ({adapter})",
                grant.action
            );
        }
    }
    assert!(
        grants("ssm:GetParameters", ":parameter/tarem/member/*"),
        "the member's gate reads its two parameters with one GetParameters"
    );
    let gate = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crates/shared/src/aws/members.rs"),
    )
    .unwrap();
    assert!(
        gate.contains(".get_parameters()"),
        "the gate's call is the one granted"
    );
}
