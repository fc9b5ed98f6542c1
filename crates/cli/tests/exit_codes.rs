//! Every exit code `tarem` promises (README, "Exit codes"), each from a situation that gives it:
//! 0 success, 1 problems found, 2 usage error, 3 AWS or network failure.

use aws_smithy_mocks::{RuleMode, mock, mock_client};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tarem(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tarem"))
        .current_dir(repo())
        .args(args)
        // No credentials or profile of the machine running the tests may leak in.
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .output()
        .expect("the tarem binary runs")
}

#[test]
fn zero_when_the_command_succeeds() {
    let output = tarem(&["simulate", "--mappings", "events/mappings.json", "events/"]);
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn one_when_the_command_finds_problems() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.json");
    std::fs::write(
        &file,
        r#"[{"checkName": "c", "ssmAutomationDocument": "D", "automationStatus": "yes"}]"#,
    )
    .unwrap();
    let output = tarem(&["mapping", "validate", file.to_str().unwrap(), "--offline"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("automationStatus"), "{stderr}");
}

#[test]
fn two_for_a_usage_error() {
    assert_eq!(
        tarem(&["simulate", "--no-such-flag"]).status.code(),
        Some(2)
    );
    let missing = tarem(&["simulate", "no/such/events"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no/such/events"));
}

/// An endpoint nobody listens on: a network failure, not a usage error.
#[test]
fn three_when_aws_cannot_be_reached() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let output = tarem(&[
        "mapping",
        "list",
        "--endpoint-url",
        &format!("http://127.0.0.1:{port}"),
    ]);
    assert_eq!(output.status.code(), Some(3), "{output:?}");
}

/// DynamoDB throttles the read (the SDK's own mock): an AWS failure, exit code 3.
#[tokio::test]
async fn three_when_aws_refuses() {
    // What DynamoDB answers, on the wire.
    let throttled = mock!(aws_sdk_dynamodb::Client::scan).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
            aws_smithy_types::body::SdkBody::from(
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"Rate of requests exceeds the allowed throughput"}"#,
            ),
        )
    });
    let client = mock_client!(
        aws_sdk_dynamodb,
        RuleMode::MatchAny,
        &[&throttled],
        |config| { config.retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled()) }
    );
    let store = tarem_shared::aws::dynamodb::DynamoMappings::new(client, "AutomationMappingTable");
    let error = tarem::mappings::list(&store).await.unwrap_err();
    assert_eq!(error.exit_code(), 3);
    assert!(
        error
            .to_string()
            .contains("ProvisionedThroughputExceededException"),
        "{error}"
    );
}

/// The raw-event audit log's dead-letter queue holds copies check-tracker already received:
/// replay refuses it (exit 2) with the reason, before reaching AWS.
#[test]
fn two_when_asked_to_replay_the_audit_logs_queue() {
    let output = tarem(&[
        "dlq",
        "replay",
        "https://sqs.us-east-1.amazonaws.com/123456789012/tarem-RawEventLogDeadLetterQueue-AbCdEf",
        "--endpoint-url",
        "http://127.0.0.1:9",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("raw-event audit log") && stderr.contains("--dry-run"),
        "{stderr}"
    );
}
