//! Builders for the end-to-end tests: Trusted Advisor events, mapping items as operators write
//! them, and a local loop on a controllable clock.

pub mod source;
pub mod template;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::sync::Arc;
use tarem_shared::clock::ManualClock;
use tarem_shared::finding::{format_time, parse_time};
use tarem_shared::lifecycle::LifecycleConfig;
use tarem_shared::local::LocalLoop;
use tarem_shared::memory::InMemoryAutomation;
use tarem_shared::safety::SafetyConfig;

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

/// The security-group check as the Support API describes it (DescribeTrustedAdvisorChecks: a
/// Security Hub sourced check's columns, `Status`, `Region`, `Resource`, `Last Updated Time`).
pub fn sg_check() -> tarem_shared::ports::CheckInfo {
    tarem_shared::ports::CheckInfo {
        id: "1iG5NDGVre".into(),
        name: SG_CHECK.into(),
        columns: vec![
            "Status".into(),
            "Region".into(),
            "Resource".into(),
            "Last Updated Time".into(),
        ],
    }
}

/// A flagged (Red) resource of [`sg_check`]'s result, as DescribeTrustedAdvisorCheckResult gives
/// it: `status` "error", its metadata in the check's column order.
pub fn flagged_resource(arn: &str, time: &str) -> tarem_shared::ports::FlaggedResource {
    tarem_shared::ports::FlaggedResource {
        status: "error".into(),
        region: Some("ap-southeast-2".into()),
        suppressed: false,
        metadata: vec![
            Some("Red".into()),
            Some("ap-southeast-2".into()),
            Some(arn.into()),
            Some(time.into()),
        ],
    }
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

/// A Config/Security-Hub sourced event with every field a test may want to vary: the `Region`
/// column, the item time and the time Trusted Advisor said it (the envelope `time`).
pub fn ta_event_at(
    check: &str,
    resource: &str,
    region_column: &str,
    status: &str,
    item_time: DateTime<Utc>,
    said: DateTime<Utc>,
) -> Value {
    let mut event = ta_event(check, resource, status, item_time);
    event["time"] = json!(format_time(said));
    event["id"] = json!(format!(
        "{status}-{}-{}",
        item_time.timestamp_millis(),
        said.timestamp_millis()
    ));
    event["detail"]["check-item-detail"]["Region"] = json!(region_column);
    event
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
    local_loop_configured(automation, test_stack())
}

/// The role the walkthrough mapping passes as `AutomationAssumeRole`.
pub const AUTOMATION_ROLE: &str = "arn:aws:iam::123456789012:role/TaremAutomationRole";

/// The stack the tests play: the defaults, with the walkthrough mapping's role allowed (an
/// empty role allowlist holds every automated start for approval).
pub fn test_stack() -> LifecycleConfig {
    LifecycleConfig {
        safety: test_safety(),
        ..LifecycleConfig::default()
    }
}

/// The default safety settings with the walkthrough mapping's role allowed.
pub fn test_safety() -> SafetyConfig {
    SafetyConfig {
        allowed_roles: vec![AUTOMATION_ROLE.to_owned()],
        ..SafetyConfig::default()
    }
}

/// A local loop with the given lifecycle configuration (safety settings included).
pub fn local_loop_configured(
    automation: InMemoryAutomation,
    config: LifecycleConfig,
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

/// Something a delivery path gave up on, with why.
#[derive(Debug, Clone)]
pub struct Parked {
    pub stage: &'static str,
    pub reason: String,
}

/// The local loop driven with AWS's delivery semantics: EventBridge → Lambda async invokes are
/// retried twice and then parked (on-failure destination); a stream batch with failures is
/// redelivered from its first failed record, up to five times, then parked (on-failure queue);
/// permanently failed records are parked by the handler itself.
pub struct Pipeline<'a> {
    pub local: &'a LocalLoop,
    pub parked: Vec<Parked>,
    /// Deliver every stream batch twice (at-least-once delivery).
    pub duplicate_batches: bool,
    /// Deliver every Trusted Advisor and status event twice (EventBridge is at-least-once too).
    pub duplicate_events: bool,
}

const ASYNC_RETRIES: usize = 2;
const STREAM_RETRIES: usize = 5;

impl<'a> Pipeline<'a> {
    pub fn new(local: &'a LocalLoop) -> Self {
        Self {
            local,
            parked: vec![],
            duplicate_batches: false,
            duplicate_events: false,
        }
    }

    /// A Trusted Advisor event through check-tracker, then the stream it wrote through the
    /// results handler.
    pub async fn deliver_event(&mut self, event: &Value) {
        for _ in 0..self.deliveries() {
            self.deliver_event_once(event).await;
        }
    }

    fn deliveries(&self) -> usize {
        if self.duplicate_events { 2 } else { 1 }
    }

    async fn deliver_event_once(&mut self, event: &Value) {
        let mut last_error = None;
        for _ in 0..=ASYNC_RETRIES {
            match self.local.track(event).await {
                Ok(_) => {
                    last_error = None;
                    break;
                }
                Err(error) => last_error = Some(error),
            }
        }
        if let Some(error) = last_error {
            self.parked.push(Parked {
                stage: "check-tracker",
                reason: error.to_string(),
            });
        }
        self.pump_stream().await;
    }

    pub async fn pump_stream(&mut self) {
        let mut records: Vec<Value> = match self.local.pending_stream_batch()["Records"].as_array()
        {
            Some(records) if !records.is_empty() => records.clone(),
            _ => return,
        };
        for attempt in 0..=STREAM_RETRIES {
            let batch = json!({ "Records": records });
            let report = self.local.results.handle_batch(&batch, None).await;
            if self.duplicate_batches {
                self.local.results.handle_batch(&batch, None).await;
            }
            for record in &report.records {
                if let tarem_shared::handlers::RecordOutcome::Parked(reason) = &record.outcome {
                    self.parked.push(Parked {
                        stage: "results-handler",
                        reason: reason.clone(),
                    });
                }
            }
            let failures = report.batch_item_failures();
            let Some(first) = failures.first() else {
                return;
            };
            // Lambda restarts from the lowest failed sequence number.
            let from = records
                .iter()
                .position(|r| r["dynamodb"]["SequenceNumber"].as_str() == Some(first.as_str()))
                .unwrap_or(0);
            records = records.split_off(from);
            if attempt == STREAM_RETRIES {
                self.parked.push(Parked {
                    stage: "tracker-stream",
                    reason: format!(
                        "{} records left after {STREAM_RETRIES} retries",
                        records.len()
                    ),
                });
            }
        }
    }

    /// An SSM status event through the automation-execution handler.
    pub async fn deliver_status(&mut self, event: &Value) {
        for _ in 0..self.deliveries() {
            self.deliver_status_once(event).await;
        }
    }

    async fn deliver_status_once(&mut self, event: &Value) {
        let mut last_error = None;
        for _ in 0..=ASYNC_RETRIES {
            match self.local.execution_handler.handle(event).await {
                Ok(_) => {
                    last_error = None;
                    break;
                }
                Err(error) => last_error = Some(error),
            }
        }
        if let Some(error) = last_error {
            self.parked.push(Parked {
                stage: "automation-execution-handler",
                reason: error.to_string(),
            });
        }
    }

    /// Ends the running automations with `status` and delivers their status events.
    pub async fn finish(&mut self, status: &str) {
        let events = self.local.complete_automations(|document| {
            let failure = (status != "Success").then(|| format!("Step failed in {document}"));
            (status.to_owned(), failure)
        });
        for event in events {
            self.deliver_status(&event).await;
        }
    }
}
