//! The reconcile sweeps on the in-memory backend: what events missed, the sweeps make true.

use chrono::Duration;
use tarem_e2e::*;
use tarem_shared::error::{ErrorKind, PortError};
use tarem_shared::finding::{FindingSource, Status, format_time};
use tarem_shared::handlers::ExecutionOutcome;
use tarem_shared::local::LocalLoop;
use tarem_shared::ports::{CheckInfo, CheckResult, FlaggedResource, OpsItemStatus};

fn flagged(group: &str, time: &str) -> FlaggedResource {
    flagged_resource(&sg_arn(group), time)
}

fn result(
    timestamp: chrono::DateTime<chrono::Utc>,
    resources: Vec<FlaggedResource>,
) -> CheckResult {
    CheckResult {
        timestamp: format_time(timestamp),
        flagged: resources,
    }
}

async fn sweep_and_deliver(local: &LocalLoop) -> tarem_shared::reconcile::SweepReport {
    let report = local.findings_sweep(false).sweep(false).await.unwrap();
    let mut pipeline = Pipeline::new(local);
    pipeline.pump_stream().await;
    assert!(pipeline.parked.is_empty(), "{:?}", pipeline.parked);
    report
}

#[tokio::test]
async fn a_finding_missed_by_events_appears_after_a_sweep_and_a_second_sweep_changes_nothing() {
    let (local, _) = local_loop();
    let time = format_time(at(0));
    local.advisor.set_check(
        sg_check(),
        result(at(60), vec![flagged("sg-missed", &time)]),
    );
    let report = sweep_and_deliver(&local).await;
    assert_eq!(report.written.len(), 1);
    let rows = local.tracker.rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].resource, sg_arn("sg-missed"));
    assert_eq!(rows[0].source, FindingSource::Reconcile);
    assert_eq!(
        rows[0].last_updated_time, time,
        "the same finding time an event would carry"
    );
    // The loop takes it from there: OpsItem and remediation.
    assert_eq!(local.automation.executions().len(), 1);
    assert_eq!(local.ops_center.items().len(), 1);

    let again = sweep_and_deliver(&local).await;
    assert!(
        again.written.is_empty() && again.cleared.is_empty(),
        "{again:?}"
    );
    assert_eq!(again.unchanged, 1);
    assert_eq!(local.automation.executions().len(), 1);
    assert_eq!(local.ops_center.items().len(), 1);
}

#[tokio::test]
async fn the_same_finding_from_an_event_and_a_sweep_is_one_finding() {
    let (local, _) = local_loop();
    let mut pipeline = Pipeline::new(&local);
    pipeline
        .deliver_event(&ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0)))
        .await;
    local.advisor.set_check(
        sg_check(),
        result(at(60), vec![flagged("sg-1", &format_time(at(0)))]),
    );
    let report = sweep_and_deliver(&local).await;
    assert_eq!(report.unchanged, 1, "{report:?}");
    assert_eq!(local.tracker.rows().len(), 1);
    assert_eq!(local.ops_center.items().len(), 1);
}

#[tokio::test]
async fn a_fixed_resource_turns_green_and_its_ops_item_resolves() {
    let (local, clock) = local_loop();
    // Unmapped (remediation would resolve it): the OpsItem stays open until Trusted Advisor says so.
    local.mappings.put(&serde_json::json!({"checkName": SG_CHECK, "ssmAutomationDocument": SG_DOCUMENT, "mode": "approval"})).unwrap();
    let mut pipeline = Pipeline::new(&local);
    pipeline
        .deliver_event(&ta_event(SG_CHECK, &sg_arn("sg-fixed"), "Red", at(0)))
        .await;
    pipeline
        .deliver_event(&ta_event(SG_CHECK, &sg_arn("sg-still"), "Red", at(0)))
        .await;
    assert_eq!(local.ops_center.items().len(), 2);
    clock.advance(Duration::hours(6));
    // The Green event for sg-fixed never came; the check's result no longer lists it.
    local.advisor.set_check(
        sg_check(),
        result(at(3600), vec![flagged("sg-still", &format_time(at(0)))]),
    );
    let report = sweep_and_deliver(&local).await;
    assert_eq!(report.cleared.len(), 1, "{report:?}");
    let rows = local.tracker.rows();
    let fixed = rows
        .iter()
        .find(|r| r.resource == sg_arn("sg-fixed"))
        .unwrap();
    assert_eq!(fixed.resource_status, Status::Green);
    let statuses: Vec<(bool, OpsItemStatus)> = local
        .ops_center
        .items()
        .iter()
        .map(|i| (i.title.contains("sg-fixed"), i.status))
        .collect();
    assert!(
        statuses.contains(&(true, OpsItemStatus::Resolved)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&(false, OpsItemStatus::Open)),
        "{statuses:?}"
    );
    // A newer event wins over an older result: a Red event after the result keeps it Red.
    pipeline
        .deliver_event(&ta_event(SG_CHECK, &sg_arn("sg-fixed"), "Red", at(7200)))
        .await;
    let again = sweep_and_deliver(&local).await;
    assert!(
        again.cleared.is_empty(),
        "the result is older than the event: {again:?}"
    );
}

/// A classic check is reconciled: the Support API gives its columns in the check's metadata
/// order (`DescribeTrustedAdvisorChecks`; columns of R365s2Qddf as AWS's dump of it in
/// aws/Trusted-Advisor-Tools lists them), and the item gets the key its event gave it, though
/// the event also carried an ARN (`resource_id`, as AWS's S3BucketVersioning sample event does).
#[tokio::test]
async fn a_classic_check_is_reconciled_under_the_key_its_events_use() {
    let (local, _) = local_loop();
    let versioning = CheckInfo {
        id: "R365s2Qddf".into(),
        name: "Amazon S3 Bucket Versioning".into(),
        columns: vec![
            "Region".into(),
            "Bucket Name".into(),
            "Versioning".into(),
            "MFA Delete Enabled".into(),
            "Status".into(),
        ],
    };
    local
        .mappings
        .put(&walkthrough_mapping(
            &versioning.name,
            "AWS-ConfigureS3BucketVersioning",
            r#"{"BucketName": ["${detail.Bucket Name}"]}"#,
            "(.*)",
            false,
        ))
        .unwrap();
    let item = |bucket: &str| FlaggedResource {
        status: "warning".into(),
        region: Some("us-east-1".into()),
        suppressed: false,
        metadata: vec![
            Some("us-east-1".into()),
            Some(bucket.into()),
            Some("Not enabled".into()),
            Some("No".into()),
            Some("Yellow".into()),
        ],
    };
    let mut event = ta_event(&versioning.name, "arn:aws:s3:::tpbucket", "Yellow", at(0));
    event["detail"]["check-item-detail"] = serde_json::json!({"Region": "us-east-1",
        "Bucket Name": "tpbucket", "Versioning": "Not enabled", "MFA Delete Enabled": "No",
        "Status": "Yellow"});
    deliver(&local, &event).await;
    assert_eq!(local.ops_center.items().len(), 1);

    local.advisor.set_check(
        versioning.clone(),
        result(at(600), vec![item("tpbucket"), item("missed-bucket")]),
    );
    let report = sweep_and_deliver(&local).await;
    assert!(report.skipped_checks.is_empty(), "{report:?}");
    // Classic items carry no item time: the result's time is their observation's, so both are
    // written, and the event's bucket is the same finding (one row, one OpsItem).
    assert_eq!(report.written.len(), 2, "{report:?}");
    let mut resources: Vec<String> = local
        .tracker
        .rows()
        .into_iter()
        .map(|r| r.resource)
        .collect();
    resources.sort();
    assert_eq!(
        resources,
        [
            "Region=us-east-1; Bucket Name=missed-bucket",
            "Region=us-east-1; Bucket Name=tpbucket"
        ]
    );
    assert_eq!(
        local.ops_center.items().len(),
        2,
        "one new OpsItem, the missed bucket's"
    );
    assert_eq!(local.executions.episodes().len(), 2);

    // Versioning enabled on tpbucket: the next result no longer flags it.
    local
        .advisor
        .set_check(versioning, result(at(7200), vec![item("missed-bucket")]));
    let report = sweep_and_deliver(&local).await;
    assert_eq!(report.cleared.len(), 1, "{report:?}");
    let resolved: Vec<_> = local
        .ops_center
        .items()
        .into_iter()
        .filter(|item| item.status == OpsItemStatus::Resolved)
        .collect();
    assert_eq!(resolved.len(), 1);
    assert!(
        resolved[0].title.contains("tpbucket"),
        "{}",
        resolved[0].title
    );
}

#[tokio::test]
async fn checks_whose_columns_name_nothing_are_skipped_and_no_support_plan_is_reported_not_looped()
{
    let (local, _) = local_loop();
    local
        .mappings
        .put(&walkthrough_mapping(
            "Amazon EC2 Availability Zone Balance",
            "AWS-X",
            "{}",
            "(.*)",
            false,
        ))
        .unwrap();
    // wuy7G1zxql: Region, Instances in Zone a…f, Status, Reason: nothing names an item, and its
    // events may name one by a resource_id the API does not give.
    local.advisor.set_check(
        CheckInfo {
            id: "wuy7G1zxql".into(),
            name: "Amazon EC2 Availability Zone Balance".into(),
            columns: vec![
                "Region".into(),
                "Instances in Zone a".into(),
                "Status".into(),
                "Reason".into(),
            ],
        },
        result(at(0), vec![]),
    );
    let report = local.findings_sweep(false).sweep(false).await.unwrap();
    assert!(
        report.skipped_checks[0].contains("no column of its results names the resource"),
        "{report:?}"
    );

    local.faults.fail(
        "advisor.checks",
        1,
        PortError::new(
            "DescribeTrustedAdvisorChecks",
            ErrorKind::SubscriptionRequired,
            "SubscriptionRequiredException: AWS Premium Support Subscription is required",
        ),
    );
    let report = local.findings_sweep(true).sweep(false).await.unwrap();
    assert!(
        report
            .unavailable
            .unwrap()
            .contains("SubscriptionRequiredException")
    );
    local.faults.fail(
        "advisor.check_result",
        1,
        PortError::new("x", ErrorKind::Throttled, "ThrottlingException"),
    );
    local.advisor.set_check(sg_check(), result(at(0), vec![]));
    assert!(
        local
            .findings_sweep(false)
            .sweep(false)
            .await
            .unwrap_err()
            .is_retryable(),
        "throttling is retried by the schedule"
    );
}

#[tokio::test]
async fn a_dry_run_sweep_writes_nothing() {
    let (local, _) = local_loop();
    local.advisor.set_check(
        sg_check(),
        result(at(60), vec![flagged("sg-1", &format_time(at(0)))]),
    );
    let report = local.findings_sweep(false).sweep(true).await.unwrap();
    assert_eq!(report.written.len(), 1);
    assert!(local.tracker.rows().is_empty());
}

#[tokio::test]
async fn an_execution_whose_event_never_came_reaches_its_episode() {
    let (local, clock) = local_loop();
    let mut pipeline = Pipeline::new(&local);
    // The automation ran in ap-southeast-2; its status event stayed there.
    pipeline
        .deliver_event(&ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0)))
        .await;
    let events = local.complete_automations(|_| ("Success".to_owned(), None));
    assert_eq!(events.len(), 1, "the event is never delivered");
    assert!(
        local
            .execution_handler
            .sweep(Duration::minutes(30))
            .await
            .unwrap()
            .is_empty(),
        "not stale yet"
    );
    clock.advance(Duration::minutes(31));
    let outcomes = local
        .execution_handler
        .sweep(Duration::minutes(30))
        .await
        .unwrap();
    assert!(
        matches!(&outcomes[..], [ExecutionOutcome::Recorded { status, state, .. }]
            if status == "Success" && state.as_deref() == Some("verifying")),
        "{outcomes:?}"
    );
    assert_eq!(
        local.ops_center.items()[0].status,
        OpsItemStatus::InProgress
    );
    assert_eq!(local.executions.rows()[0].status, "Success");
    assert!(
        local
            .execution_handler
            .sweep(Duration::minutes(30))
            .await
            .unwrap()
            .is_empty(),
        "a second sweep changes nothing"
    );
}

/// A mapped check Trusted Advisor does not know (a typo, a retired check) is reported by the
/// sweep: nothing would ever sweep or remediate it.
#[tokio::test]
async fn a_mapped_check_trusted_advisor_does_not_know_is_reported() {
    let (local, _) = local_loop();
    local.advisor.set_check(sg_check(), result(at(60), vec![]));
    local
        .mappings
        .put(&serde_json::json!({
            "checkName": "Security groups should not allow unrestricted acess",
            "ssmAutomationDocument": "AWS-DisablePublicAccessForSecurityGroup"
        }))
        .unwrap();
    let report = sweep_and_deliver(&local).await;
    assert_eq!(
        report.unknown_mapped_checks,
        ["Security groups should not allow unrestricted acess"]
    );
    assert_eq!(report.checks, 1, "the known mapped check is still swept");
}
