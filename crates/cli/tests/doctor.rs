//! `tarem doctor` against a stack moto holds (CloudFormation, DynamoDB, CloudWatch Logs, SNS,
//! STS and the Support API are moto's) and the SDK's mocks where moto has no service (OpsCenter)
//! or where the failure is AWS's to give (no support plan): each check passes on a healthy
//! stack, and each fails with its own message when its part is broken.

mod support;

use aws_smithy_mocks::{RuleMode, mock, mock_client};
use chrono::{Duration, Utc};
use support::MotoStack;
use tarem::doctor::{Clients, Health, Line, diagnose};

/// The kill switch's value, and whether OpsCenter answers.
fn ssm(kill_switch: Option<&'static str>, ops_center: bool) -> aws_sdk_ssm::Client {
    use aws_sdk_ssm::operation::describe_ops_items::DescribeOpsItemsOutput;
    use aws_sdk_ssm::operation::get_parameter::{GetParameterError, GetParameterOutput};
    use aws_sdk_ssm::types::Parameter;
    let parameter = mock!(aws_sdk_ssm::Client::get_parameter).then_output(move || {
        GetParameterOutput::builder()
            .parameter(
                Parameter::builder()
                    .value(kill_switch.unwrap_or("on"))
                    .build(),
            )
            .build()
    });
    let missing = mock!(aws_sdk_ssm::Client::get_parameter).then_error(|| {
        GetParameterError::ParameterNotFound(
            aws_sdk_ssm::types::error::ParameterNotFound::builder()
                .message("Parameter not found")
                .build(),
        )
    });
    let ops_items = mock!(aws_sdk_ssm::Client::describe_ops_items)
        .then_output(|| DescribeOpsItemsOutput::builder().build());
    let denied = mock!(aws_sdk_ssm::Client::describe_ops_items).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
            aws_smithy_types::body::SdkBody::from(
                r#"{"__type":"AccessDeniedException","message":"User is not authorized to perform: ssm:DescribeOpsItems"}"#,
            ),
        )
    });
    let rules = [
        if kill_switch.is_some() {
            &parameter
        } else {
            &missing
        },
        if ops_center { &ops_items } else { &denied },
    ];
    mock_client!(aws_sdk_ssm, RuleMode::MatchAny, &rules, |config| config
        .retry_config(aws_sdk_ssm::config::retry::RetryConfig::disabled()))
}

async fn clients(ssm: aws_sdk_ssm::Client) -> Clients {
    let config = moto_harness::sdk_loader().load().await;
    Clients {
        sts: aws_sdk_sts::Client::new(&config),
        cloudformation: aws_sdk_cloudformation::Client::new(&config),
        dynamodb: aws_sdk_dynamodb::Client::new(&config),
        logs: aws_sdk_cloudwatchlogs::Client::new(&config),
        sns: aws_sdk_sns::Client::new(&config),
        ssm,
        support: aws_sdk_support::Client::new(&config),
    }
}

/// A stack with what a healthy one has: a recent Trusted Advisor event in its audit log and a
/// mapping that agrees with its allowlists.
async fn healthy_stack() -> MotoStack {
    let stack =
        MotoStack::deploy(&[("AutomationRoleArns", "arn:aws:iam::123456789012:role/Fixer")]).await;
    let config = moto_harness::sdk_loader().load().await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    logs.create_log_stream()
        .log_group_name(&stack.log_group)
        .log_stream_name("events")
        .send()
        .await
        .unwrap();
    logs.put_log_events()
        .log_group_name(&stack.log_group)
        .log_stream_name("events")
        .log_events(
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(Utc::now().timestamp_millis())
                .message(r#"{"source":"aws.trustedadvisor"}"#)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    put_mapping(&stack, "automated", "arn:aws:iam::123456789012:role/Fixer").await;
    stack
}

async fn put_mapping(stack: &MotoStack, mode: &str, role: &str) {
    let item = serde_json::json!({
        "checkName": "Security groups should not allow unrestricted access to ports with high risk",
        "ssmAutomationDocument": "AWS-DisablePublicAccessForSecurityGroup",
        "automationParameters": {"GroupId": ["$resourceId"], "AutomationAssumeRole": [role]},
        "regexPattern": "(sg-\\w+)",
        "mode": mode
    });
    use tarem_shared::ports::MappingStore;
    tarem_shared::aws::dynamodb::DynamoMappings::new(
        moto_harness::dynamodb().await,
        &stack.mapping_table,
    )
    .put(&item)
    .await
    .unwrap();
}

fn the<'a>(lines: &'a [Line], check: &str) -> &'a Line {
    lines
        .iter()
        .find(|line| line.check == check)
        .unwrap_or_else(|| panic!("no {check} line in {lines:#?}"))
}

#[tokio::test]
async fn a_healthy_stack_passes_every_check() {
    let stack = healthy_stack().await;
    let lines = diagnose(
        &clients(ssm(Some("on"), true)).await,
        &stack.name,
        "us-east-1",
        Utc::now(),
    )
    .await;
    for line in &lines {
        assert_eq!(line.health, Health::Ok, "{line:#?}");
    }
    assert_eq!(lines.len(), 9, "{lines:#?}");
    assert!(
        the(&lines, "credentials")
            .said
            .contains("account 123456789012")
    );
    assert!(
        the(&lines, "mappings")
            .said
            .contains("1 mapping, each agreeing with the stack's allowlists")
    );
}

#[tokio::test]
async fn each_check_fails_with_its_own_message() {
    let stack = healthy_stack().await;
    let healthy = clients(ssm(Some("on"), true)).await;

    // No stack of that name: said, and what needs one is not checked.
    let lines = diagnose(&healthy, "no-such-stack", "us-east-1", Utc::now()).await;
    assert_eq!(the(&lines, "stack").health, Health::Fail);
    assert!(
        the(&lines, "stack")
            .said
            .contains("no stack \"no-such-stack\"")
    );
    assert_eq!(the(&lines, "tables").health, Health::Skipped);

    // Trusted Advisor silent for more than a week.
    let later = Utc::now() + Duration::days(9);
    let lines = diagnose(&healthy, &stack.name, "us-east-1", later).await;
    let events = the(&lines, "events");
    assert_eq!(events.health, Health::Fail, "{events:#?}");
    assert!(events.said.contains("9 days ago"), "{events:#?}");

    // The kill switch off (a warning, with the command to turn it on), then missing.
    let off = diagnose(
        &clients(ssm(Some("off"), true)).await,
        &stack.name,
        "us-east-1",
        Utc::now(),
    )
    .await;
    let switch = the(&off, "kill switch");
    assert_eq!(switch.health, Health::Warn);
    assert!(switch.fix.as_deref().unwrap().contains("--value on"));
    let missing = diagnose(
        &clients(ssm(None, true)).await,
        &stack.name,
        "us-east-1",
        Utc::now(),
    )
    .await;
    assert_eq!(the(&missing, "kill switch").health, Health::Fail);

    // OpsCenter refuses the credentials.
    let denied = diagnose(
        &clients(ssm(Some("on"), false)).await,
        &stack.name,
        "us-east-1",
        Utc::now(),
    )
    .await;
    let ops = the(&denied, "OpsCenter");
    assert_eq!(ops.health, Health::Fail);
    assert!(ops.said.contains("AccessDenied"), "{ops:#?}");

    // No support plan.
    let unsupported = mock!(aws_sdk_support::Client::describe_trusted_advisor_checks)
        .then_http_response(|| {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
                aws_smithy_types::body::SdkBody::from(
                    r#"{"__type":"SubscriptionRequiredException","message":"AWS Premium Support Subscription is required to use this service."}"#,
                ),
            )
        });
    let mut no_plan = clients(ssm(Some("on"), true)).await;
    no_plan.support = mock_client!(aws_sdk_support, RuleMode::MatchAny, &[&unsupported]);
    let lines = diagnose(&no_plan, &stack.name, "us-east-1", Utc::now()).await;
    let plan = the(&lines, "support plan");
    assert_eq!(plan.health, Health::Fail);
    assert!(
        plan.fix
            .as_deref()
            .unwrap()
            .contains("Business, Enterprise On-Ramp or Enterprise")
    );

    // No credentials.
    let mut anonymous = clients(ssm(Some("on"), true)).await;
    anonymous.sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_sts::config::Region::new("us-east-1"))
            .endpoint_url(moto_harness::endpoint())
            .build(),
    );
    let lines = diagnose(&anonymous, &stack.name, "us-east-1", Utc::now()).await;
    assert_eq!(the(&lines, "credentials").health, Health::Fail);
    assert!(
        the(&lines, "credentials")
            .said
            .starts_with("no AWS credentials"),
        "{lines:#?}"
    );
    assert!(lines[1..].iter().all(|l| l.health == Health::Skipped));

    // An automated mapping whose role the stack does not allow.
    put_mapping(&stack, "automated", "arn:aws:iam::123456789012:role/Other").await;
    let lines = diagnose(&healthy, &stack.name, "us-east-1", Utc::now()).await;
    let mappings = the(&lines, "mappings");
    assert_eq!(mappings.health, Health::Fail);
    assert!(
        mappings
            .said
            .contains("is not one of the stack's automation roles"),
        "{mappings:#?}"
    );

    // Nobody hears the alarms.
    let config = moto_harness::sdk_loader().load().await;
    let sns = aws_sdk_sns::Client::new(&config);
    for subscription in sns
        .list_subscriptions_by_topic()
        .topic_arn(&stack.topic)
        .send()
        .await
        .unwrap()
        .subscriptions()
    {
        sns.unsubscribe()
            .subscription_arn(subscription.subscription_arn().unwrap())
            .send()
            .await
            .unwrap();
    }
    // A table gone.
    moto_harness::dynamodb()
        .await
        .delete_table()
        .table_name(&stack.execution_table)
        .send()
        .await
        .unwrap();
    let lines = diagnose(&healthy, &stack.name, "us-east-1", Utc::now()).await;
    let alarms = the(&lines, "alarms");
    assert_eq!(alarms.health, Health::Fail);
    assert!(alarms.said.contains("no one subscribes"), "{alarms:#?}");
    let tables = the(&lines, "tables");
    assert_eq!(tables.health, Health::Fail);
    assert!(tables.said.contains(&stack.execution_table), "{tables:#?}");
}

/// A new stack before Trusted Advisor's first refresh, with nothing mapped yet: warnings with
/// what to do, not failures.
#[tokio::test]
async fn a_new_stack_is_warned_not_failed() {
    let stack = MotoStack::deploy(&[]).await;
    let lines = diagnose(
        &clients(ssm(Some("on"), true)).await,
        &stack.name,
        "us-east-1",
        Utc::now(),
    )
    .await;
    assert_eq!(the(&lines, "events").health, Health::Warn);
    assert_eq!(the(&lines, "mappings").health, Health::Warn);
    assert!(lines.iter().all(|l| l.health != Health::Fail), "{lines:#?}");
}
