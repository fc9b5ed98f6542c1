//! The deploy, hardened: every event delivered, every permission scoped, the region enforced, the
//! parameters a first deploy asks for, and the documentation saying what the template does.
//!
//! Each check is a function returning what is wrong; the tests run it on `template.yaml` (nothing
//! wrong) and on a copy broken the way the template used to be (the problem named), so no check
//! passes by looking at nothing.
//!
//! Long on purpose: each check sits beside the broken copy it must catch, and splitting them by
//! resource would scatter the deploy's one story.

use serde_json::{Value, json};
use tarem_e2e::template::*;
use tarem_shared::config::TUNING;

fn resource<'a>(template: &'a Value, name: &str) -> &'a Value {
    template
        .pointer(&format!("/Resources/{name}"))
        .unwrap_or_else(|| panic!("no resource {name}"))
}

fn statements(policy: &Value) -> Vec<&Value> {
    one_or_many(policy.get("Statement").unwrap_or(&Value::Null))
}

fn actions(statement: &Value) -> Vec<&str> {
    one_or_many(statement.get("Action").unwrap_or(&Value::Null))
        .into_iter()
        .filter_map(Value::as_str)
        .collect()
}

/// Every statement of every inline policy a SAM function carries.
fn function_statements<'a>(template: &'a Value, function: &str) -> Vec<&'a Value> {
    resource(template, function)
        .pointer("/Properties/Policies")
        .map(one_or_many)
        .unwrap_or_default()
        .into_iter()
        .flat_map(statements)
        .collect()
}

// ------------------------------------------------------------------ the raw-event log

/// The logs resource policy lets EventBridge create streams without a source condition (the
/// condition applies to PutLogEvents only; under it CreateLogStream is denied and every event's
/// delivery goes to the dead-letter queue) and put events from the Trusted Advisor rule only.
fn log_policy_problems(template: &Value) -> Vec<String> {
    let policy = resource(template, "TrustedAdvisorEventLogGroupPolicy");
    let text = match policy.pointer("/Properties/PolicyDocument") {
        Some(Value::Object(sub)) => sub.get("Fn::Sub").and_then(Value::as_str),
        Some(Value::String(text)) => Some(text.as_str()),
        _ => None,
    };
    let Some(document) = text.and_then(|t| serde_json::from_str::<Value>(t).ok()) else {
        return vec!["the log resource policy is not a JSON document".into()];
    };
    let mut problems = vec![];
    let mut creates = false;
    let mut puts_from_rule = false;
    for statement in statements(&document) {
        let acts = actions(statement);
        let source = statement.pointer("/Condition/ArnEquals/aws:SourceArn");
        if acts.contains(&"logs:CreateLogStream") {
            creates = true;
            if source.is_some() {
                problems.push(
                    "logs:CreateLogStream is under an aws:SourceArn condition, which only PutLogEvents carries: EventBridge is denied and every event goes to the dead-letter queue".into(),
                );
            }
        }
        if acts.contains(&"logs:PutLogEvents") {
            // The rules' ARNs, from their names (the tables wait for this policy, so it may not
            // wait for the rules): the default bus's rule, and the hub bus's (on a custom bus a
            // rule's ARN names the bus).
            let name = |rule: &str| {
                resource(template, rule)
                    .pointer("/Properties/Name/Fn::Sub")
                    .and_then(Value::as_str)
                    .unwrap_or("(unnamed)")
                    .to_owned()
            };
            let prefix = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/";
            let default_rule = format!("{prefix}{}", name("TrustedAdvisorEventRule"));
            let hub_rule = format!(
                "{prefix}${{AWS::StackName}}-hub/{}",
                name("HubTrustedAdvisorRule")
            );
            let sources: Vec<&str> = source
                .map(one_or_many)
                .unwrap_or_default()
                .into_iter()
                .filter_map(Value::as_str)
                .collect();
            if sources.contains(&default_rule.as_str())
                && sources.iter().all(|s| *s == default_rule || *s == hub_rule)
            {
                puts_from_rule = true;
            } else {
                problems
                    .push("logs:PutLogEvents is not limited to the Trusted Advisor rules".into());
            }
        }
    }
    if !creates || !puts_from_rule {
        problems.push("EventBridge cannot both create log streams and put events".into());
    }
    problems
}

#[test]
fn the_raw_event_log_accepts_the_rules_events() {
    let template = load_template();
    assert_eq!(log_policy_problems(&template), Vec::<String>::new());

    // The form the template had: one statement, both actions under the condition.
    let mut old = template.clone();
    old["Resources"]["TrustedAdvisorEventLogGroupPolicy"]["Properties"]["PolicyDocument"] = json!({
        "Fn::Sub": json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": ["events.amazonaws.com", "delivery.logs.amazonaws.com"]},
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "${TrustedAdvisorEventLogGroup.Arn}",
            "Condition": {"ArnEquals": {"aws:SourceArn": "${TrustedAdvisorEventRule.Arn}"}}
        }]}).to_string()
    });
    assert!(
        log_policy_problems(&old)[0].starts_with("logs:CreateLogStream is under an aws:SourceArn"),
        "{:?}",
        log_policy_problems(&old)
    );
}

// ------------------------------------------------------------------ the tracker stream

/// The results handler reads the tracker table's stream and no other: no SAM DynamoDB event
/// (it attaches AWSLambdaDynamoDBExecutionRole, stream reads on "*"), an explicit mapping, and
/// stream reads scoped to the stream's ARN.
fn stream_scope_problems(template: &Value) -> Vec<String> {
    let mut problems = vec![];
    for (name, r) in template["Resources"].as_object().into_iter().flatten() {
        let events = r.pointer("/Properties/Events").and_then(Value::as_object);
        for (event, e) in events.into_iter().flatten() {
            if e.get("Type").and_then(Value::as_str) == Some("DynamoDB") {
                problems.push(format!(
                    "{name}'s SAM DynamoDB event {event} attaches AWSLambdaDynamoDBExecutionRole (stream reads on every table)"
                ));
            }
        }
    }
    let mapped = template["Resources"]
        .as_object()
        .into_iter()
        .flatten()
        .any(|(_, r)| {
            r.get("Type").and_then(Value::as_str) == Some("AWS::Lambda::EventSourceMapping")
                && is_get_att(
                    r.pointer("/Properties/EventSourceArn")
                        .unwrap_or(&Value::Null),
                    "TrackerTable",
                    "StreamArn",
                )
                && ref_to(
                    r.pointer("/Properties/FunctionName")
                        .unwrap_or(&Value::Null),
                ) == Some("ResultsHandlerFunction")
        });
    if !mapped {
        problems
            .push("no event source mapping from the tracker stream to the results handler".into());
    }
    for statement in function_statements(template, "ResultsHandlerFunction") {
        for action in actions(statement) {
            let scoped = one_or_many(&statement["Resource"])
                .iter()
                .all(|r| is_get_att(r, "TrackerTable", "StreamArn"));
            let reads = matches!(
                action,
                "dynamodb:DescribeStream" | "dynamodb:GetRecords" | "dynamodb:GetShardIterator"
            );
            if reads && !scoped {
                problems.push(format!(
                    "{action} is not scoped to the tracker table's stream"
                ));
            }
        }
    }
    problems
}

#[test]
fn the_stream_read_is_the_tracker_streams_only() {
    let template = load_template();
    assert_eq!(stream_scope_problems(&template), Vec::<String>::new());

    let mut old = template.clone();
    old["Resources"]["ResultsHandlerFunction"]["Properties"]["Events"] = json!({
        "TrackerStream": {"Type": "DynamoDB", "Properties": {"Stream": {"Fn::GetAtt": ["TrackerTable", "StreamArn"]}}}
    });
    assert!(stream_scope_problems(&old)[0].contains("attaches AWSLambdaDynamoDBExecutionRole"));
}

// ------------------------------------------------------------------ the region

fn region_problems(template: &Value, samconfig: &str) -> Vec<String> {
    let mut problems = vec![];
    let asserted = template
        .get("Rules")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .flat_map(|(_, rule)| one_or_many(&rule["Assertions"]))
        .any(|assertion| {
            assertion["Assert"] == json!({"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]})
                && assertion["AssertDescription"]
                    .as_str()
                    .is_some_and(|d| d.contains("us-east-1"))
        });
    if !asserted {
        problems.push("no rule refuses a deploy outside us-east-1".into());
    }
    if !samconfig.contains("region = \"us-east-1\"") {
        problems.push("samconfig.toml does not set region = \"us-east-1\"".into());
    }
    problems
}

#[test]
fn the_stack_deploys_in_us_east_1_only() {
    let template = load_template();
    let samconfig =
        std::fs::read_to_string(template_path().with_file_name("samconfig.toml")).unwrap();
    assert_eq!(region_problems(&template, &samconfig), Vec::<String>::new());

    let mut old = template.clone();
    old.as_object_mut().unwrap().remove("Rules");
    assert_eq!(
        region_problems(
            &old,
            "[default.global.parameters]\nstack_name = \"tarem\"\n"
        ),
        [
            "no rule refuses a deploy outside us-east-1",
            "samconfig.toml does not set region = \"us-east-1\""
        ]
    );
}

// ------------------------------------------------------------------ automations

/// The status rule hears only the allowed documents; the start permission names each allowed
/// document with a pinned account (empty for AWS-owned ones, this account's for the others).
fn automation_problems(template: &Value) -> Vec<String> {
    let mut problems = vec![];
    let pattern = resource(template, "AutomationStatusEventRule")
        .pointer("/Properties/EventPattern/detail/Definition");
    if pattern.and_then(ref_to) != Some("AllowedAutomationDocuments") {
        problems
            .push("the automation status rule hears every document, not the allowed ones".into());
    }
    let start = function_statements(template, "ResultsHandlerFunction")
        .into_iter()
        .find(|s| s["Sid"] == "StartAllowedAutomationDocuments");
    let text = start.map(|s| s["Resource"].to_string()).unwrap_or_default();
    if !text.contains("arn:aws:ssm:*::automation-definition/")
        || !text.contains("arn:aws:ssm:*:${aws:PrincipalAccount}:automation-definition/")
    {
        problems
            .push("the allowed documents are not pinned to the empty account and this one".into());
    }
    if text.contains("ssm:*:*:automation-definition") {
        problems.push("the allowed documents may come from any account".into());
    }
    problems
}

#[test]
fn automations_are_pinned_to_the_allowed_documents() {
    let template = load_template();
    assert_eq!(automation_problems(&template), Vec::<String>::new());

    let mut old = template.clone();
    old["Resources"]["AutomationStatusEventRule"]["Properties"]["EventPattern"]["detail"]
        .as_object_mut()
        .unwrap()
        .remove("Definition");
    let policies = old["Resources"]["ResultsHandlerFunction"]["Properties"]["Policies"]
        .as_array_mut()
        .unwrap();
    let own = policies
        .iter_mut()
        .find(|policy| policy.get("Statement").is_some())
        .unwrap();
    for statement in own["Statement"].as_array_mut().unwrap() {
        if statement["Sid"] == "StartAllowedAutomationDocuments" {
            statement["Resource"] = json!("arn:aws:ssm:*:*:automation-definition/AWS-X:*");
        }
    }
    assert_eq!(
        automation_problems(&old),
        [
            "the automation status rule hears every document, not the allowed ones",
            "the allowed documents are not pinned to the empty account and this one",
            "the allowed documents may come from any account"
        ]
    );
}

// ------------------------------------------------------------------ tables and log groups

fn tables_and_logs_problems(template: &Value) -> Vec<String> {
    let mut problems = vec![];
    for (name, r) in template["Resources"].as_object().into_iter().flatten() {
        match r.get("Type").and_then(Value::as_str) {
            Some("AWS::DynamoDB::Table")
                if r.pointer("/Properties/DeletionProtectionEnabled") != Some(&json!(true)) =>
            {
                problems.push(format!("{name} can be deleted (no deletion protection)"));
            }
            Some("AWS::Serverless::Function") => {
                let function_name = r.pointer("/Properties/FunctionName").cloned();
                let group = r
                    .pointer("/Properties/LoggingConfig/LogGroup")
                    .and_then(ref_to)
                    .map(|g| resource(template, g));
                let Some(group) = group else {
                    problems.push(format!("{name} does not name its log group"));
                    continue;
                };
                let group_name = group
                    .pointer("/Properties/LogGroupName")
                    .map(Value::to_string)
                    .unwrap_or_default();
                if group_name.contains("Function}") {
                    problems.push(format!(
                        "{name}'s log group name is derived from the function: it is made after the function, racing the group Lambda makes"
                    ));
                }
                let expected = function_name
                    .as_ref()
                    .and_then(|f| f.get("Fn::Sub"))
                    .and_then(Value::as_str)
                    .map(|f| format!("\"/aws/lambda/{f}\""));
                if expected.is_none_or(|e| !group_name.contains(&e)) {
                    problems.push(format!("{name}'s log group is not /aws/lambda/<its name>"));
                }
                if r.pointer("/Properties/CodeUri")
                    .and_then(Value::as_str)
                    .is_none_or(|c| !c.starts_with("functions/"))
                {
                    problems.push(format!(
                        "{name}'s CodeUri is not its package folder (SAM hashes all of it)"
                    ));
                }
            }
            _ => {}
        }
    }
    problems
}

#[test]
fn tables_are_protected_and_log_groups_exist_before_their_functions() {
    let template = load_template();
    assert_eq!(tables_and_logs_problems(&template), Vec::<String>::new());

    let mut old = template.clone();
    old["Resources"]["MappingTable"]["Properties"]
        .as_object_mut()
        .unwrap()
        .remove("DeletionProtectionEnabled");
    old["Resources"]["CheckTrackerLogGroup"]["Properties"]["LogGroupName"] =
        json!({"Fn::Sub": "/aws/lambda/${CheckTrackerFunction}"});
    assert_eq!(
        tables_and_logs_problems(&old),
        [
            "MappingTable can be deleted (no deletion protection)",
            "CheckTrackerFunction's log group name is derived from the function: it is made after the function, racing the group Lambda makes",
            "CheckTrackerFunction's log group is not /aws/lambda/<its name>",
        ]
    );
}

// ------------------------------------------------------------------ the first deploy

/// What a first `sam deploy --guided` asks: every parameter (SAM prompts them all), in the
/// order of the groups, decisions first, and few.
#[test]
fn a_first_deploy_asks_only_what_a_user_decides_in_a_documented_order() {
    let template = load_template();
    let parameters: Vec<&String> = template["Parameters"].as_object().unwrap().keys().collect();
    // 14 for one account, and the organisation's id and member accounts (empty unless the
    // stack is a hub).
    assert!(
        parameters.len() <= 16,
        "{} parameters: {parameters:?}",
        parameters.len()
    );
    let groups = template
        .pointer("/Metadata/AWS::CloudFormation::Interface/ParameterGroups")
        .unwrap()
        .as_array()
        .unwrap();
    let grouped: Vec<&str> = groups
        .iter()
        .flat_map(|g| g["Parameters"].as_array().unwrap())
        .map(|p| p.as_str().unwrap())
        .collect();
    // Guided asks in the Parameters section's order: it must be the groups' order.
    assert_eq!(
        parameters.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        grouped,
        "every parameter in one group, in the same order"
    );
    assert_eq!(
        groups[0]["Label"]["default"],
        "Decide before the first deploy"
    );
}

/// The documented first mapping (the example role) works on a default deploy: the role exists,
/// the function may pass it, and the output the README names is there.
#[test]
fn the_documented_first_mapping_works_on_a_default_deploy() {
    let template = load_template();
    assert_eq!(
        template["Parameters"]["CreateExampleAutomationRole"]["Default"],
        "true"
    );
    assert!(template["Outputs"]["ExampleAutomationRoleArn"].is_object());
    let pass = resource(&template, "ResultsHandlerPassRolePolicy");
    assert_eq!(pass["Condition"], "HasPassableRoles");
    assert!(mentions(
        pass,
        &json!({"Fn::GetAtt": ["ExampleAutomationRole", "Arn"]})
    ));
    let allowed = resource(&template, "ResultsHandlerFunction")
        .pointer("/Properties/Environment/Variables/ALLOWED_AUTOMATION_ROLES")
        .unwrap();
    assert!(mentions(
        allowed,
        &json!({"Fn::GetAtt": ["ExampleAutomationRole", "Arn"]})
    ));
    let readme = std::fs::read_to_string(template_path().with_file_name("README.md")).unwrap();
    assert!(readme.contains("ExampleAutomationRoleArn"));
    assert!(readme.contains("sam deploy --guided"));
}

// ------------------------------------------------------------------ the docs agree

fn operations_guide() -> String {
    std::fs::read_to_string(template_path().with_file_name("docs").join("operations.md")).unwrap()
}

fn default_text(value: &Value) -> String {
    match value {
        Value::String(text) if text.is_empty() => "(empty)".into(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[test]
fn the_operations_guide_lists_every_parameter_and_tuning_setting_with_its_default() {
    let template = load_template();
    let guide = operations_guide();
    let documented = table_after(&guide, "### Parameters");
    let expected: Vec<(String, String)> = template["Parameters"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, p)| (name.clone(), default_text(&p["Default"])))
        .collect();
    assert_eq!(documented, expected, "docs/operations.md ### Parameters");

    let documented = table_after(&guide, "### Tuning");
    let expected: Vec<(String, String)> = TUNING
        .iter()
        .map(|t| (t.name.to_owned(), t.default.to_owned()))
        .collect();
    assert_eq!(documented, expected, "docs/operations.md ### Tuning");
}

// ------------------------------------------------------------------ a first deploy that fails

/// A rolled-back create must not leave tables that block the retry: the known triggers (a stack
/// name too long for the function names, an account at CloudWatch Logs' resource-policy quota)
/// fail before any table exists. The longest function name fits Lambda's 64 characters with
/// the longest stack name the check admits, and the check admits no longer one.
#[test]
fn a_failed_first_deploy_leaves_no_table_behind_for_the_known_triggers() {
    let template = load_template();
    for table in ["TrackerTable", "MappingTable", "ExecutionTable"] {
        let waits = resource(&template, table)["DependsOn"].to_string();
        for trigger in ["StackNameLengthCheck", "TrustedAdvisorEventLogGroupPolicy"] {
            assert!(
                waits.contains(trigger),
                "{table} does not wait for {trigger}"
            );
        }
    }
    let check = resource(&template, "StackNameLengthCheck");
    let pattern = regex::Regex::new(
        check["Properties"]["AllowedPattern"]
            .as_str()
            .expect("the check has a pattern"),
    )
    .unwrap();
    let longest_allowed = format!("t{}", "a".repeat(34));
    assert!(pattern.is_match(&longest_allowed));
    assert!(!pattern.is_match(&format!("{longest_allowed}b")));
    for (_, resource) in template["Resources"].as_object().unwrap() {
        if let Some(name) = resource
            .pointer("/Properties/FunctionName/Fn::Sub")
            .and_then(Value::as_str)
        {
            let real = name.replace("${AWS::StackName}", &longest_allowed);
            assert!(real.len() <= 64, "{real} ({} characters)", real.len());
        }
    }
    // And the log resource policy does not wait for the rule (which waits for the tables).
    let policy = resource(&template, "TrustedAdvisorEventLogGroupPolicy").to_string();
    assert!(!policy.contains("TrustedAdvisorEventRule.Arn"), "{policy}");
}

/// A parameter's AllowedPattern, compiled (CloudFormation matches the whole value).
fn allowed(template: &Value, parameter: &str) -> regex::Regex {
    let pattern = template["Parameters"][parameter]["AllowedPattern"]
        .as_str()
        .unwrap_or_else(|| panic!("{parameter} has no pattern"));
    regex::Regex::new(pattern).unwrap()
}

/// `KEY=` would become the tag value `True` in silence; `KEY=a=b` would be cut at the second
/// `=`: both are refused when the stack is deployed, with the reason.
#[test]
fn the_opt_in_tag_is_one_key_and_one_value() {
    let template = load_template();
    let tag = allowed(&template, "OptInTag");
    for good in ["automaticRemediation=True", "team=platform", "a=b c"] {
        assert!(tag.is_match(good), "{good}");
    }
    for bad in ["automaticRemediation=", "=True", "KEY=a=b", "KEY", ""] {
        assert!(!tag.is_match(bad), "{bad}");
    }
}

/// A trailing comma in the roles to pass (an empty entry) failed the deploy as an empty
/// PassRole resource; it is refused at the parameter, with the reason.
#[test]
fn the_roles_to_pass_have_no_empty_entry() {
    let template = load_template();
    let roles = allowed(&template, "AutomationRoleArns");
    let role = "arn:aws:iam::123456789012:role/Tarem";
    for good in ["".to_owned(), role.to_owned(), format!("{role},{role}2")] {
        assert!(roles.is_match(&good), "{good}");
    }
    for bad in [
        format!("{role},"),
        format!(",{role}"),
        format!("{role},,{role}"),
        format!("{role}, {role}"),
        "not-an-arn".to_owned(),
    ] {
        assert!(!roles.is_match(&bad), "{bad}");
    }
    assert_eq!(
        template["Parameters"]["AutomationRoleArns"]["Type"],
        "String"
    );
}

/// The lint result must not depend on the cfn-lint release: the one IAM policy variable in a
/// Join (`${aws:PrincipalAccount}`) that newer releases warn about (W1033) is ignored on its
/// resource, with the reason beside it.
#[test]
fn the_policy_variable_newer_cfn_lint_warns_about_is_ignored_where_it_is() {
    let template = load_template();
    for (name, resource) in template["Resources"].as_object().unwrap() {
        if resource.to_string().contains("${aws:PrincipalAccount}") {
            let ignored = resource
                .pointer("/Metadata/cfn-lint/config/ignore_checks")
                .map(|v| v.to_string())
                .unwrap_or_default();
            assert!(ignored.contains("W1033"), "{name} does not ignore W1033");
        }
    }
}
