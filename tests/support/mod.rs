//! Builders for the end-to-end tests: Trusted Advisor events, mapping items as operators write
//! them, and a local loop on a controllable clock.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::sync::Arc;
use tarem_shared::clock::ManualClock;
use tarem_shared::finding::{format_time, parse_time};
use tarem_shared::local::LocalLoop;
use tarem_shared::memory::InMemoryAutomation;

pub const SG_CHECK: &str =
    "Security groups should not allow unrestricted access to ports with high risk";
pub const SG_DOCUMENT: &str = "AWS-DisablePublicAccessForSecurityGroup";
pub const EC2_CHECK: &str = "EC2 instances should not have a public IPv4 address";

pub fn sg_arn(group: &str) -> String {
    format!("arn:aws:ec2:ap-southeast-2:123456789012:security-group/{group}")
}

pub fn instance_arn(instance: &str) -> String {
    format!("arn:aws:ec2:eu-west-1:123456789012:instance/{instance}")
}

/// Seconds after 2026-11-02T09:00:00Z, as a Trusted Advisor time with milliseconds.
pub fn at(seconds: i64) -> DateTime<Utc> {
    parse_time("2026-11-02T09:00:00Z").expect("literal time")
        + chrono::Duration::milliseconds(seconds * 1000 + 250)
}

/// A Config/Security-Hub sourced Trusted Advisor event.
pub fn ta_event(check: &str, resource: &str, status: &str, time: DateTime<Utc>) -> Value {
    let region = resource.split(':').nth(3).unwrap_or("us-east-1");
    json!({
        "version": "0",
        "id": format!("{}-{}", status, time.timestamp_millis()),
        "detail-type": "Trusted Advisor Check Item Refresh Notification",
        "source": "aws.trustedadvisor",
        "account": "123456789012",
        "time": format_time(time + chrono::Duration::seconds(90)),
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "check-name": check,
            "check-item-detail": {
                "Status": status,
                "Region": region,
                "Resource": resource,
                "Last Updated Time": format_time(time),
            },
            "status": match status { "Red" => "ERROR", "Yellow" => "WARN", _ => "OK" },
            "resource_id": resource,
        }
    })
}

/// The mapping item exactly as AWS's walkthrough writes it with `aws dynamodb put-item`.
pub fn walkthrough_mapping(
    check: &str,
    document: &str,
    parameters: &str,
    regex: &str,
    enabled: bool,
) -> Value {
    json!({
        "checkName": {"S": check},
        "ssmAutomationDocument": {"S": document},
        "automationParameters": {"S": parameters},
        "regexPattern": {"S": regex},
        "automationStatus": {"BOOL": enabled}
    })
}

pub fn sg_mapping() -> Value {
    walkthrough_mapping(
        SG_CHECK,
        SG_DOCUMENT,
        r#"{"GroupId": ["$resourceId"], "AutomationAssumeRole": ["arn:aws:iam::123456789012:role/TaremAutomationRole"]}"#,
        r"(sg-\w+)",
        true,
    )
}

/// A local loop on a manual clock, with the security-group mapping.
pub fn local_loop() -> (LocalLoop, Arc<ManualClock>) {
    local_loop_with(InMemoryAutomation::default())
}

pub fn local_loop_with(automation: InMemoryAutomation) -> (LocalLoop, Arc<ManualClock>) {
    local_loop_configured(automation, tarem_shared::handlers::ResultsConfig::default())
}

/// A local loop with the given results-handler configuration (safety settings included).
pub fn local_loop_configured(
    automation: InMemoryAutomation,
    config: tarem_shared::handlers::ResultsConfig,
) -> (LocalLoop, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(at(3600)));
    let local = LocalLoop::with_config(clock.clone(), automation, config);
    local
        .mappings
        .put(&sg_mapping())
        .expect("the walkthrough mapping has a checkName");
    (local, clock)
}

/// Tracks one event and delivers what it wrote to the results handler; panics on a retryable
/// failure, which the in-memory adapters never produce.
pub async fn deliver(local: &LocalLoop, event: &Value) -> tarem_shared::handlers::BatchReport {
    local
        .track(event)
        .await
        .expect("the in-memory tracker does not fail");
    let report = local.deliver_stream().await;
    assert!(
        report.batch_item_failures().is_empty(),
        "unexpected retry: {report:?}"
    );
    report
}

/// Ends every running automation with `status`.
pub async fn finish_all(local: &LocalLoop, status: &str) {
    for outcome in local
        .finish_automations(|document| {
            let failure = (status != "Success").then(|| format!("Step failed in {document}"));
            (status.to_owned(), failure)
        })
        .await
    {
        outcome.expect("the in-memory adapters do not fail");
    }
}
