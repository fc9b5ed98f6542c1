//! The results handler's real Lambda reply: the function's own binary, run against a local
//! Runtime API ([`lambda_harness`]), DynamoDB served by moto (`MOTO_ENDPOINT`, started by
//! scripts/test) and every other AWS service unreachable. The reply Lambda reads is what decides
//! whether a failed record is retried; the handler's own report cannot show that.

use aws_sdk_dynamodb::Client;
use chrono::{DateTime, TimeZone, Utc};
use lambda_harness::{Function, Reply, RuntimeApi};
use moto_harness::{EXECUTION_KEYS, MAPPING_KEYS, TRACKER_KEYS};
use serde_json::{Value, json};
use std::time::Duration;
use tarem_shared::aws::dynamodb::{DynamoMappings, DynamoTracker};
use tarem_shared::finding::{Finding, Status};
use tarem_shared::ports::{MappingStore, TrackerStore};
use tarem_shared::stream::stream_record;

const ACCOUNT: &str = "123456789012";
const MAPPED_CHECK: &str =
    "Security groups should not allow unrestricted access to ports with high risk";
const UNMAPPED_CHECK: &str = "IAM Access Key Rotation";

async fn table(client: &Client, purpose: &str, keys: &[&str]) -> String {
    moto_harness::fresh_table(client, &format!("lambda-reply-{purpose}"), keys, false).await
}

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, hour, 0, 0).unwrap()
}

fn finding(check: &str, group: &str, status: Status, hour: u32) -> Finding {
    let arn = format!("arn:aws:ec2:ap-southeast-2:{ACCOUNT}:security-group/{group}");
    Finding::new(ACCOUNT, check, &arn, "ap-southeast-2").at(status, at(hour), at(hour))
}

fn record(sequence: u64, new: &Finding, old: Option<&Finding>) -> Value {
    serde_json::to_value(stream_record(sequence, "us-east-1", Some(new), old, at(12))).unwrap()
}

/// A port nothing listens on: every SSM, Tagging and SQS call fails at once, retryably.
fn unreachable_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reply_names_the_failed_record_and_the_later_one_of_its_finding_and_nothing_else() {
    let client = moto_harness::dynamodb().await;
    let tracker_table = table(&client, "tracker", TRACKER_KEYS).await;
    let mapping_table = table(&client, "mappings", MAPPING_KEYS).await;
    let execution_table = table(&client, "executions", EXECUTION_KEYS).await;

    // Finding A is mapped and its role allowed: its new episode starts the runbook, which needs
    // the kill switch (SSM, unreachable), so its record fails retryably; its later record waits
    // behind it. Finding B is unmapped (and unmapped findings get no OpsItem): its record is done.
    let mapping: Value =
        serde_json::from_str(&std::fs::read_to_string("../../events/mappings.json").unwrap())
            .unwrap();
    DynamoMappings::new(client.clone(), &mapping_table)
        .put(&tarem_shared::mapping::plain_json(&mapping[0]))
        .await
        .unwrap();
    let a_red = finding(MAPPED_CHECK, "sg-0a1b2c3d4e5f67890", Status::Red, 9);
    let a_yellow = finding(MAPPED_CHECK, "sg-0a1b2c3d4e5f67890", Status::Yellow, 10);
    let b_red = finding(UNMAPPED_CHECK, "sg-0123456789abcdef0", Status::Red, 9);
    let tracker = DynamoTracker::new(client.clone(), &tracker_table);
    tracker.put_if_newer(&a_red).await.unwrap();
    tracker.put_if_newer(&b_red).await.unwrap();

    let endpoint = moto_harness::endpoint();
    let elsewhere = unreachable_endpoint();
    let api = RuntimeApi::start().unwrap();
    let _function = Function::spawn(
        env!("CARGO_BIN_EXE_results-handler"),
        &api,
        &[
            ("TRACKER_TABLE", tracker_table.as_str()),
            ("MAPPING_TABLE", mapping_table.as_str()),
            ("EXECUTION_TABLE", execution_table.as_str()),
            ("GOVERNED_ACCOUNTS", "123456789012"),
            ("HOME_ACCOUNT", "123456789012"),
            (
                "ALLOWED_AUTOMATION_DOCUMENTS",
                "AWS-DisablePublicAccessForSecurityGroup",
            ),
            ("KILL_SWITCH_PARAMETER", "/tarem/kill-switch"),
            ("PARKING_QUEUE_URL", "http://127.0.0.1:9/queue/parked"),
            ("AWS_ENDPOINT_URL", elsewhere.as_str()),
            ("AWS_ENDPOINT_URL_DYNAMODB", endpoint.as_str()),
            ("AWS_MAX_ATTEMPTS", "1"),
            ("UNMAPPED_OPS_ITEMS", "none"),
            (
                "ALLOWED_AUTOMATION_ROLES",
                "arn:aws:iam::123456789012:role/TaremAutomationRole",
            ),
        ],
    )
    .unwrap();

    let batch = json!({ "Records": [
        record(100, &a_red, None),
        record(101, &b_red, None),
        record(102, &a_yellow, Some(&a_red)),
    ]});
    let reply = api.invoke(&batch, Duration::from_secs(60)).unwrap();
    assert_eq!(
        reply,
        Reply::Response(json!({ "batchItemFailures": [
            { "itemIdentifier": "000000000000000000100" },
            { "itemIdentifier": "000000000000000000102" },
        ]})),
        "only finding A's records are retried, in order; finding B's is done"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_that_succeeds_replies_with_an_empty_failure_list() {
    let client = moto_harness::dynamodb().await;
    let tracker_table = table(&client, "tracker", TRACKER_KEYS).await;
    let mapping_table = table(&client, "mappings", MAPPING_KEYS).await;
    let execution_table = table(&client, "executions", EXECUTION_KEYS).await;
    let b_red = finding(UNMAPPED_CHECK, "sg-0123456789abcdef0", Status::Red, 9);
    DynamoTracker::new(client.clone(), &tracker_table)
        .put_if_newer(&b_red)
        .await
        .unwrap();
    let endpoint = moto_harness::endpoint();
    let elsewhere = unreachable_endpoint();
    let api = RuntimeApi::start().unwrap();
    let _function = Function::spawn(
        env!("CARGO_BIN_EXE_results-handler"),
        &api,
        &[
            ("TRACKER_TABLE", tracker_table.as_str()),
            ("MAPPING_TABLE", mapping_table.as_str()),
            ("EXECUTION_TABLE", execution_table.as_str()),
            ("GOVERNED_ACCOUNTS", "123456789012"),
            ("HOME_ACCOUNT", "123456789012"),
            (
                "ALLOWED_AUTOMATION_DOCUMENTS",
                "AWS-DisablePublicAccessForSecurityGroup",
            ),
            ("KILL_SWITCH_PARAMETER", "/tarem/kill-switch"),
            ("PARKING_QUEUE_URL", "http://127.0.0.1:9/queue/parked"),
            ("AWS_ENDPOINT_URL", elsewhere.as_str()),
            ("AWS_ENDPOINT_URL_DYNAMODB", endpoint.as_str()),
            ("AWS_MAX_ATTEMPTS", "1"),
            ("UNMAPPED_OPS_ITEMS", "none"),
        ],
    )
    .unwrap();
    let reply = api
        .invoke(
            &json!({ "Records": [record(200, &b_red, None)] }),
            Duration::from_secs(60),
        )
        .unwrap();
    assert_eq!(reply, Reply::Response(json!({ "batchItemFailures": [] })));
}

/// A connection per invocation is a connect and a close of CPU and latency on every batch: the
/// function keeps the one it opened (this caught the local Runtime API announcing its 202 one
/// byte longer than it was, which made every invocation reconnect).
#[test]
fn the_function_keeps_one_runtime_api_connection_across_invocations() {
    let elsewhere = unreachable_endpoint();
    let api = RuntimeApi::start().unwrap();
    let _function = Function::spawn(
        env!("CARGO_BIN_EXE_results-handler"),
        &api,
        &[
            // An empty batch touches no table and no service.
            ("TRACKER_TABLE", "unused-tracker"),
            ("MAPPING_TABLE", "unused-mappings"),
            ("EXECUTION_TABLE", "unused-executions"),
            ("GOVERNED_ACCOUNTS", "123456789012"),
            ("HOME_ACCOUNT", "123456789012"),
            (
                "ALLOWED_AUTOMATION_DOCUMENTS",
                "AWS-DisablePublicAccessForSecurityGroup",
            ),
            ("KILL_SWITCH_PARAMETER", "/tarem/kill-switch"),
            ("PARKING_QUEUE_URL", "http://127.0.0.1:9/queue/parked"),
            ("AWS_ENDPOINT_URL", elsewhere.as_str()),
        ],
    )
    .unwrap();
    for _ in 0..3 {
        let reply = api
            .invoke(&json!({ "Records": [] }), Duration::from_secs(60))
            .unwrap();
        assert_eq!(reply, Reply::Response(json!({ "batchItemFailures": [] })));
    }
    assert_eq!(
        api.connections(),
        1,
        "three invocations over the connection the function opened at init"
    );
}
