//! Grants that match the code. The adapters' source is read: every AWS call a method makes must
//! be granted to that method (`tarem_shared::aws::grants::ADAPTERS`), and every grant must have
//! its call. Each function's wiring builds exactly the adapters it lists, and its handler calls
//! exactly the methods it lists. Each function's role in template.yaml grants exactly what those
//! methods need (plus the platform's grants: logs, the stream mapping, PassRole, the failure
//! destination), on the resource the grant names. docs/operations.md's permissions table is the
//! generated one.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use tarem_e2e::source::{block, code, read};
use tarem_e2e::template::{load_template, one_or_many};
use tarem_shared::aws::grants::{ADAPTERS, FUNCTIONS, On, of, of_function, permissions_table};

/// Where each adapter is written.
fn source_of(adapter: &str) -> &'static str {
    match adapter {
        "DynamoTracker" => "crates/shared/src/aws/dynamodb/tracker.rs",
        "DynamoMappings" => "crates/shared/src/aws/dynamodb/mappings.rs",
        "DynamoExecutions" => "crates/shared/src/aws/dynamodb/executions.rs",
        "DynamoCounters" => "crates/shared/src/aws/dynamodb/counters.rs",
        "DynamoLocks" => "crates/shared/src/aws/dynamodb/locks.rs",
        "DynamoAccounts" => "crates/shared/src/aws/dynamodb/accounts.rs",
        "SsmOpsCenter" | "SsmParameterKillSwitch" | "SsmAutomation" | "SsmDocuments" => {
            "crates/shared/src/aws/ssm.rs"
        }
        "TaggingResourceTags" => "crates/shared/src/aws/tagging.rs",
        "SupportTrustedAdvisor" => "crates/shared/src/aws/support.rs",
        "TrustedAdvisorApi" => "crates/shared/src/aws/trustedadvisor.rs",
        "SqsQueue" => "crates/shared/src/aws/sqs.rs",
        "StsMembers" => "crates/shared/src/aws/members.rs",
        other => panic!("no source for {other}"),
    }
}

/// An SDK operation (or the DynamoDB module's helper that makes it) as its IAM actions.
fn actions_of(service: &str, operation: &str) -> Vec<String> {
    let pascal: String = operation
        .split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    let mut actions = vec![format!("{service}:{pascal}")];
    // Tags given with the start are written by it, under their own action.
    if operation == "start_automation_execution" {
        actions.push("ssm:AddTagsToResource".into());
    }
    actions
}

const SDK_OPERATIONS: &[(&str, &[&str])] = &[
    (
        "dynamodb",
        &[
            "get_item",
            "put_item",
            "update_item",
            "delete_item",
            "query",
            "scan",
        ],
    ),
    (
        "ssm",
        &[
            "create_ops_item",
            "update_ops_item",
            "get_ops_item",
            "describe_ops_items",
            "get_parameter",
            "start_automation_execution",
            "describe_automation_executions",
            "list_tags_for_resource",
            "get_automation_execution",
            "describe_document",
        ],
    ),
    (
        "support",
        &[
            "describe_trusted_advisor_checks",
            "describe_trusted_advisor_check_result",
        ],
    ),
    (
        "trustedadvisor",
        &[
            "list_checks",
            "list_recommendations",
            "list_recommendation_resources",
        ],
    ),
    ("tag", &["get_resources"]),
    ("sts", &["assume_role"]),
    ("organizations", &["describe_account", "list_parents"]),
    (
        "sqs",
        &[
            "send_message",
            "receive_message",
            "delete_message",
            "change_message_visibility",
        ],
    ),
];

/// Each method of an adapter (its port methods and its public ones) and the IAM actions of the
/// AWS calls its body makes, through the private methods it calls too (a private helper's calls
/// are its callers').
fn methods_of(adapter: &str) -> BTreeMap<String, BTreeSet<String>> {
    let text = code(&read(source_of(adapter)));
    let impl_header = regex::Regex::new(&format!(
        r"impl(?:<[^>]*>)?\s+(?:([\w:]+)\s+for\s+)?{adapter}\s*\{{"
    ))
    .unwrap();
    let function = regex::Regex::new(r"(pub\s+)?(?:async\s+)?fn\s+(\w+)\s*[(<]").unwrap();
    let mut bodies: BTreeMap<String, (bool, String)> = BTreeMap::new();
    for header in impl_header.captures_iter(&text) {
        let of_a_port = header.get(1).is_some();
        let body = block(&text, header.get(0).unwrap().start());
        for found in function.captures_iter(body) {
            let start = found.get(0).unwrap().start();
            let public = of_a_port || found.get(1).is_some();
            bodies.insert(found[2].to_owned(), (public, block(body, start).to_owned()));
        }
    }
    assert!(!bodies.is_empty(), "{adapter}'s methods were found");
    let helper_call = |operation: &str| {
        regex::Regex::new(&format!(r"[^.\w]{operation}\(\s*&self\.client")).unwrap()
    };
    let direct = |body: &str| -> BTreeSet<String> {
        let mut actions = BTreeSet::new();
        for (service, operations) in SDK_OPERATIONS {
            for operation in *operations {
                let called = body.contains(&format!(".{operation}()"))
                    || (*service == "dynamodb"
                        && ["get_item", "scan"].contains(operation)
                        && helper_call(operation).is_match(body));
                if called {
                    actions.extend(actions_of(service, operation));
                }
            }
        }
        actions
    };
    bodies
        .iter()
        .filter(|(_, (public, _))| *public)
        .map(|(name, (_, body))| {
            let mut actions = direct(body);
            for (other, (_, other_body)) in &bodies {
                if other != name && body.contains(&format!("self.{other}(")) {
                    actions.extend(direct(other_body));
                }
            }
            (name.clone(), actions)
        })
        .collect()
}

#[test]
fn every_adapter_call_is_granted_to_its_method_and_every_grant_has_its_call() {
    for (adapter, grants) in ADAPTERS {
        let methods = methods_of(adapter);
        for (method, called) in &methods {
            let granted: BTreeSet<String> = grants
                .iter()
                .filter(|g| g.methods.contains(&method.as_str()))
                .map(|g| g.action.to_owned())
                .collect();
            assert_eq!(
                &granted, called,
                "{adapter}::{method}: the grants (left) are not the AWS calls its code makes (right)"
            );
        }
        for grant in *grants {
            for method in grant.methods {
                assert!(
                    methods.contains_key(*method),
                    "{adapter}: a grant names {method}, which it has not"
                );
            }
        }
    }
}

/// Each function's `main.rs` builds exactly the adapters its wiring lists; its handler calls
/// exactly the methods listed for each, on the field (or local) that holds the adapter.
#[test]
fn each_function_calls_exactly_what_its_wiring_lists() {
    let registered: Vec<&str> = ADAPTERS.iter().map(|(name, _)| *name).collect();
    for (function, files, uses) in FUNCTIONS {
        let main = code(&read(&format!("functions/{function}/src/main.rs")));
        let built: BTreeSet<&str> = registered
            .iter()
            .copied()
            .filter(|adapter| main.contains(&format!("{adapter}::")))
            .collect();
        let listed: BTreeSet<&str> = uses.iter().map(|(adapter, _, _)| *adapter).collect();
        assert_eq!(built, listed, "{function}: built (left) and listed (right)");
        let handler: String = files
            .iter()
            .map(|file| code(&read(&format!("crates/shared/src/{file}"))))
            .collect::<Vec<_>>()
            .join("\n");
        for (adapter, field, methods) in *uses {
            for method in methods_of(adapter).keys() {
                let called = handler.contains(&format!("{field}.{method}("));
                assert_eq!(
                    called,
                    methods.contains(&method.as_str()),
                    "{function}: {field}.{method}( is {} in its handler, and {} in its wiring",
                    if called { "called" } else { "not called" },
                    if methods.contains(&method.as_str()) {
                        "listed"
                    } else {
                        "not listed"
                    }
                );
            }
        }
    }
}

/// The template's expression for what a grant acts on.
fn resource_matches(on: On, function: &str, resource: &Value) -> bool {
    let text = resource.to_string();
    let queue = match function {
        "check-tracker" => "CheckTrackerDeadLetterQueue",
        "results-handler" => "TrackerStreamFailureQueue",
        _ => "ExecutionEventsDeadLetterQueue",
    };
    match on {
        On::TrackerTable => text == r#"{"Fn::GetAtt":["TrackerTable","Arn"]}"#,
        On::TrackerIndex => text == r#"{"Fn::Sub":"${TrackerTable.Arn}/index/work-index"}"#,
        On::MappingTable => text == r#"{"Fn::GetAtt":["MappingTable","Arn"]}"#,
        On::ExecutionTable => text == r#"{"Fn::GetAtt":["ExecutionTable","Arn"]}"#,
        On::ExecutionIndex => text == r#"{"Fn::Sub":"${ExecutionTable.Arn}/index/due-index"}"#,
        On::OwnQueue => text == format!(r#"{{"Fn::GetAtt":["{queue}","Arn"]}}"#),
        On::KillSwitch => text.contains(":parameter/${AWS::StackName}/automation-starts"),
        On::OpsItems => text.contains(":opsitem/*"),
        On::AllowedDocuments => text.contains("automation-definition/"),
        On::AutomationExecutions => text.contains(":automation-execution/*"),
        On::MemberRoles => text.contains(":role/tarem/tarem-member"),
        On::OrganisationAccounts => text.contains(":account/${OrganizationId}/*"),
        On::OrganisationUnits => text.contains(":ou/${OrganizationId}/ou-*"),
        On::Anything => text == r#""*""#,
    }
}

/// A function's role statements in the template: its own policies, and the policies attached
/// to its role.
fn statements(template: &Value, function: &str) -> Vec<Value> {
    let logical = match function {
        "check-tracker" => "CheckTrackerFunction",
        "results-handler" => "ResultsHandlerFunction",
        _ => "AutomationExecutionHandlerFunction",
    };
    let resources = &template["Resources"];
    let role = format!("{logical}Role");
    let mut found = vec![];
    let mut documents = vec![];
    for policy in one_or_many(&resources[logical]["Properties"]["Policies"]) {
        // A hub's policy (`Fn::If` [OrganisationHub, policy, AWS::NoValue]) counts as granted.
        let policy = policy.pointer("/Fn::If/1").unwrap_or(policy);
        documents.push(policy.get("PolicyDocument").unwrap_or(policy).clone());
    }
    for (_, resource) in resources.as_object().unwrap() {
        let roles = &resource["Properties"]["Roles"];
        if resource["Type"] == "AWS::IAM::Policy" && roles.to_string().contains(&role) {
            documents.push(resource["Properties"]["PolicyDocument"].clone());
        }
    }
    for document in documents {
        found.extend(one_or_many(&document["Statement"]).into_iter().cloned());
    }
    found
}

/// Actions the platform needs beyond the code's calls (grants::PLATFORM).
fn platform(function: &str) -> BTreeSet<&'static str> {
    let mut actions = BTreeSet::from(["logs:CreateLogStream", "logs:PutLogEvents"]);
    if function == "results-handler" {
        actions.extend([
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
            "dynamodb:ListStreams",
            "iam:PassRole",
        ]);
    }
    actions
}

#[test]
fn each_functions_role_grants_what_its_code_calls_and_nothing_else() {
    let template = load_template();
    for (function, _, _) in FUNCTIONS {
        let statements = statements(&template, function);
        assert!(!statements.is_empty(), "{function} has its own statements");
        let needed = of_function(function);
        for (grant, _) in &needed {
            let granted = statements.iter().any(|statement| {
                one_or_many(&statement["Action"])
                    .iter()
                    .any(|a| a.as_str() == Some(grant.action))
                    && one_or_many(&statement["Resource"])
                        .iter()
                        .any(|r| resource_matches(grant.on, function, r))
            });
            assert!(
                granted,
                "{function}: its code calls {} on {:?}, and its role does not grant it there",
                grant.action, grant.on
            );
        }
        let code_actions: BTreeSet<&str> = needed.iter().map(|(g, _)| g.action).collect();
        for statement in &statements {
            for action in one_or_many(&statement["Action"]) {
                let action = action.as_str().unwrap_or_default();
                assert!(
                    code_actions.contains(action) || platform(function).contains(action),
                    "{function}: its role grants {action} ({}), which nothing it runs calls",
                    statement["Sid"]
                );
                // Each statement's resources are the ones its code's grants name.
                if let Some((grant, _)) = needed.iter().find(|(g, _)| g.action == action) {
                    let _ = grant;
                }
            }
        }
    }
}

/// The results handler's sweep asks SSM about a runbook past the in-flight timeout: its role
/// must allow it (the third review found it denied, read as "unknown", and a second run started
/// beside the first).
#[test]
fn the_results_handler_may_ask_ssm_about_an_execution() {
    let needed = of_function("results-handler");
    assert!(
        needed
            .iter()
            .any(|(g, _)| g.action == "ssm:GetAutomationExecution"),
        "the sweep's in-flight timeout calls it"
    );
    let statements = statements(&load_template(), "results-handler");
    assert!(
        statements.iter().any(|s| one_or_many(&s["Action"])
            .iter()
            .any(|a| a.as_str() == Some("ssm:GetAutomationExecution"))),
        "results-handler's role grants ssm:GetAutomationExecution"
    );
}

#[test]
fn the_permissions_table_is_generated_from_the_grants() {
    let docs = read("docs/operations.md");
    let table = permissions_table();
    assert!(
        docs.contains(&table),
        "docs/operations.md's permissions table is not the generated one; it should read:\n{table}"
    );
    // Every adapter the CLI or a function may build is in the registry.
    for (adapter, _) in ADAPTERS {
        assert!(!of(adapter).is_empty());
    }
}

/// SAM gives each function AWSLambdaBasicExecutionRole, whose logs actions reach every log group
/// (the audit log included): each function's permissions boundary caps its logs to its own.
#[test]
fn each_function_writes_only_to_its_own_log_group() {
    let template = load_template();
    let resources = &template["Resources"];
    for (logical, log_group) in [
        ("CheckTrackerFunction", "CheckTrackerLogGroup"),
        ("ResultsHandlerFunction", "ResultsHandlerLogGroup"),
        (
            "AutomationExecutionHandlerFunction",
            "AutomationExecutionHandlerLogGroup",
        ),
    ] {
        let boundary = resources[logical]["Properties"]["PermissionsBoundary"]["Ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{logical} has no permissions boundary"));
        let document = &resources[boundary]["Properties"]["PolicyDocument"];
        let statements = one_or_many(&document["Statement"]);
        for statement in &statements {
            let actions = statement["Action"].to_string() + &statement["NotAction"].to_string();
            if actions.contains("logs:") && statement.get("NotAction").is_none() {
                assert_eq!(
                    statement["Resource"].to_string(),
                    format!(r#"{{"Fn::GetAtt":["{log_group}","Arn"]}}"#),
                    "{logical}'s logs reach only its own log group"
                );
            }
            if statement.get("NotAction").is_some() {
                assert_eq!(statement["NotAction"], "logs:*", "{logical}: {statement}");
            }
        }
        assert_eq!(statements.len(), 2, "{logical}: {document}");
    }
}
