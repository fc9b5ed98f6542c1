//! The third review's twelve holes, each as the delivery order that broke it on the in-memory
//! backend: classic identity, verification against the tracker, one runbook per resource,
//! OpsItems that converge, nothing waiting on another event, the accounts governed, the edges
//! of time and size, mapping names, and what the counts count.
//!
//! Long on purpose: one test per hole, side by side with the schedule helpers they share.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use tarem_e2e::*;
use tarem_shared::automation_event::status_event;
use tarem_shared::clock::{Clock, ManualClock};
use tarem_shared::error::{ErrorKind, PortError};
use tarem_shared::finding::format_time;
use tarem_shared::handlers::{ExecutionOutcome, Tracked};
use tarem_shared::local::LocalLoop;
use tarem_shared::ports::{CheckInfo, CheckResult, OpsItemStatus};
use tarem_shared::ports::{DATA_AUTOMATION, DATA_REMEDIATION};

const ACCOUNT: &str = "123456789012";
const EBS_CHECK: &str = "Amazon EBS Snapshots";
const VOLUME: &str = "vol-05991234567891";
const CLASSIC_SG_CHECK: &str = "Security Groups - Specific Ports Unrestricted";

fn remediation(local: &LocalLoop, id: &str) -> Value {
    let item = local.ops_center.get(id).expect("OpsItem exists");
    serde_json::from_str(&item.operational_data[DATA_REMEDIATION].value).expect("JSON")
}

fn state(local: &LocalLoop) -> Vec<String> {
    local
        .executions
        .episodes()
        .iter()
        .map(|e| e.stage.name().to_owned())
        .collect()
}

/// The episode sweep every 15 minutes until `to`; running automations end with `status`
/// (`None`: they keep running).
async fn sweeps_until(
    local: &LocalLoop,
    clock: &ManualClock,
    to: DateTime<Utc>,
    status: Option<&str>,
) {
    while clock.now() + Duration::minutes(15) <= to {
        clock.advance(Duration::minutes(15));
        local.sweep_episodes().await.unwrap();
        if let Some(status) = status {
            finish_all(local, status).await;
        }
    }
    clock.set(to);
}

/// An "Amazon EBS Snapshots" (H7IgTzjTYb) item as Trusted Advisor emits it: the columns of
/// AWS's DescribeTrustedAdvisorChecks dump (aws/Trusted-Advisor-Tools,
/// TA-WellArchitected/tawa-eisenhower-matrix-app/src/data/ta_checks.json), values shaped like
/// its my_hri.json rows, `resource_id` the volume's ARN as in AWSEBSSnapshots' mock payload.
/// Classic checks carry no "Last Updated Time": the envelope's time is the observation's.
fn ebs_event(
    status: &str,
    snapshot: Option<&str>,
    age: Option<&str>,
    reason: &str,
    time: DateTime<Utc>,
) -> Value {
    json!({
        "version": "0", "id": format!("ebs-{status}-{}", time.timestamp_millis()),
        "detail-type": "Trusted Advisor Check Item Refresh Notification",
        "source": "aws.trustedadvisor", "account": ACCOUNT, "time": format_time(time),
        "region": "us-east-1", "resources": [],
        "detail": {
            "check-name": EBS_CHECK,
            "check-item-detail": {
                "Region": "eu-west-1", "Volume ID": VOLUME, "Volume Name": null,
                "Snapshot ID": snapshot, "Snapshot Name": null, "Snapshot Age": age,
                "Volume Attachment": "", "Status": status, "Reason": reason
            },
            "status": match status { "Red" => "ERROR", "Yellow" => "WARN", _ => "OK" },
            "resource_id": format!("arn:aws:ec2:eu-west-1:{ACCOUNT}:volume/{VOLUME}"),
            "uuid": "0a2b7c1e-5d4f-4e7a-9b3c-6f8e1d2c3b4a"
        }
    })
}

/// The reliability pack's entry for the check, switched to automated.
fn ebs_mapping() -> Value {
    json!({
        "checkName": EBS_CHECK, "ssmAutomationDocument": "AWS-CreateSnapshot",
        "automationParameters": {"VolumeId": ["${detail.Volume ID}"], "Description": ["tarem: $checkName"],
            "AutomationAssumeRole": [AUTOMATION_ROLE]},
        "mode": "automated"
    })
}

/// 1. One EBS volume: Yellow (no snapshot), Red (an old one), Green (a new one). Its Reason,
/// Snapshot ID and Snapshot Age change each time; its runbook keeps failing. One finding, one
/// episode, one OpsItem, at most the cap of starts, and the Green closes it.
#[tokio::test]
async fn a_classic_volume_whose_runbook_fails_is_one_finding_with_one_opsitem_and_the_cap() {
    let (local, clock) = local_loop();
    local.mappings.put(&ebs_mapping()).unwrap();
    let start = clock.now();
    deliver(
        &local,
        &ebs_event("Yellow", None, None, "No snapshot", start),
    )
    .await;
    finish_all(&local, "Failed").await;
    sweeps_until(&local, &clock, start + Duration::hours(2), Some("Failed")).await;
    deliver(
        &local,
        &ebs_event(
            "Red",
            Some("snap-05991234567891"),
            Some("243"),
            "Age",
            clock.now(),
        ),
    )
    .await;
    sweeps_until(&local, &clock, start + Duration::hours(4), Some("Failed")).await;
    deliver(
        &local,
        &ebs_event(
            "Red",
            Some("snap-05991234567891"),
            Some("244"),
            "Age",
            clock.now(),
        ),
    )
    .await;
    sweeps_until(&local, &clock, start + Duration::hours(6), Some("Failed")).await;
    deliver(
        &local,
        &ebs_event(
            "Green",
            Some("snap-0aa1234567891"),
            Some("1"),
            "Age",
            clock.now(),
        ),
    )
    .await;

    assert_eq!(local.tracker.rows().len(), 1, "one volume, one finding");
    assert_eq!(
        local.automation.executions().len(),
        3,
        "MaxAttempts starts in all"
    );
    let items = local.ops_center.items();
    assert_eq!(items.len(), 1, "one episode, one OpsItem");
    assert_eq!(
        items[0].status,
        OpsItemStatus::Resolved,
        "the Green closed it"
    );
    assert_eq!(state(&local), ["fixed"]);
}

/// 2. The runbook ends, then Trusted Advisor flags the resource again, and that Red arrives
/// before the outcome (the status event of another region comes only with the poll). The
/// outcome is judged against the tracker: the fix did not hold.
#[tokio::test]
async fn a_red_after_the_fix_that_arrives_before_the_outcome_fails_the_verification() {
    let (local, clock) = local_loop();
    let arn = sg_arn("sg-1");
    deliver(&local, &ta_event(SG_CHECK, &arn, "Red", clock.now())).await;
    let ended = clock.now();
    let events = local.complete_automations(|_| ("Success".into(), None));
    clock.advance(Duration::minutes(45));
    // Observed 40 minutes after the runbook ended: past the 30-minute grace.
    deliver(
        &local,
        &ta_event(SG_CHECK, &arn, "Red", ended + Duration::minutes(40)),
    )
    .await;
    assert_eq!(state(&local), ["remediating"]);
    for event in &events {
        local.execution_handler.handle(event).await.unwrap();
    }
    assert_eq!(
        state(&local),
        ["held"],
        "not verifying: the tracker already says Red"
    );
    let item = &local.ops_center.items()[0];
    let note = remediation(&local, &item.id);
    assert!(
        note["detail"]
            .as_str()
            .unwrap()
            .contains("succeeded but the fix did not hold"),
        "{note}"
    );
    // A day later it is not resolved as "succeeded, not yet confirmed": the next attempt ran.
    sweeps_until(&local, &clock, ended + Duration::hours(25), None).await;
    assert_eq!(local.automation.executions().len(), 2);
    assert_ne!(local.ops_center.items()[0].status, OpsItemStatus::Resolved);
}

/// 2. The execution sweep brings an outcome with SSM's own end time, not the poll's: a Red
/// observed after the end (past the grace) but before the poll fails the verification.
#[tokio::test]
async fn the_execution_sweep_judges_an_outcome_by_ssms_end_time() {
    let (local, clock) = local_loop();
    let arn = sg_arn("sg-1");
    deliver(&local, &ta_event(SG_CHECK, &arn, "Red", clock.now())).await;
    let ended = clock.now();
    // The status event never comes (another region, no forwarding).
    local.complete_automations(|_| ("Success".into(), None));
    clock.advance(Duration::minutes(40));
    deliver(
        &local,
        &ta_event(SG_CHECK, &arn, "Red", ended + Duration::minutes(35)),
    )
    .await;
    clock.advance(Duration::minutes(20));
    local.sweep_executions(Duration::minutes(30)).await.unwrap();
    assert_eq!(state(&local), ["held"]);
    let episode = &local.executions.episodes()[0];
    assert_eq!(
        episode.attempts[0].ended_at,
        Some(ended.timestamp()),
        "SSM's ExecutionEndTime, not the poll's time"
    );
}

/// 3. Runbook A runs longer than the cool-down; a Green closes its episode; a Red opens the
/// next. Nothing starts beside A; A's outcome reaches A's OpsItem; B starts once A ends.
#[tokio::test]
async fn a_runbook_still_running_holds_the_next_episodes_start_on_its_resource() {
    let (local, clock) = local_loop();
    let arn = sg_arn("sg-1");
    let t0 = clock.now();
    deliver(&local, &ta_event(SG_CHECK, &arn, "Red", t0)).await;
    let first_item = local.ops_center.items()[0].id.clone();
    clock.advance(Duration::hours(1));
    deliver(
        &local,
        &ta_event(SG_CHECK, &arn, "Green", t0 + Duration::minutes(50)),
    )
    .await;
    clock.advance(Duration::hours(1));
    deliver(
        &local,
        &ta_event(SG_CHECK, &arn, "Red", t0 + Duration::minutes(110)),
    )
    .await;
    sweeps_until(&local, &clock, t0 + Duration::hours(3), None).await;
    assert_eq!(
        local.automation.executions().len(),
        1,
        "never a second run beside the first"
    );
    assert_eq!(state(&local), ["held"]);
    let second_item = local.ops_center.items()[1].id.clone();
    let note = remediation(&local, &second_item);
    assert_eq!(note["control"], "in-flight", "{note}");
    assert!(
        note["detail"]
            .as_str()
            .unwrap()
            .contains("another runbook runs on this resource"),
        "{note}"
    );

    // A ends: its outcome is written on its own OpsItem, and B may start.
    finish_all(&local, "Success").await;
    let automation = &local.ops_center.get(&first_item).unwrap().operational_data[DATA_AUTOMATION];
    assert!(automation.value.contains("Success"), "{}", automation.value);
    sweeps_until(
        &local,
        &clock,
        t0 + Duration::hours(3) + Duration::minutes(30),
        None,
    )
    .await;
    assert_eq!(
        local.automation.executions().len(),
        2,
        "B starts once A has ended"
    );
}

/// 3. Two checks name one security group (a classic check by its columns, a Security Hub one by
/// its ARN), both mapped to the same runbook: it starts once, and the other waits for the first
/// run and the cool-down after it.
#[tokio::test]
async fn two_checks_on_one_resource_run_one_runbook_at_a_time() {
    let (local, clock) = local_loop();
    local
        .mappings
        .put(&json!({
            "checkName": CLASSIC_SG_CHECK, "ssmAutomationDocument": SG_DOCUMENT,
            "automationParameters": {"GroupId": ["$resourceId"], "AutomationAssumeRole": [AUTOMATION_ROLE]},
            "regexPattern": "(sg-[0-9a-f]+)", "mode": "automated"
        }))
        .unwrap();
    let group = "sg-0a1b2c3d4e5f67890";
    let t0 = clock.now();
    // HCP4007jGY's columns; the group id as my_hri.json shows it, "sg-… (vpc-…)".
    let classic = json!({
        "version": "0", "id": "classic-1", "detail-type": "Trusted Advisor Check Item Refresh Notification",
        "source": "aws.trustedadvisor", "account": ACCOUNT, "time": format_time(t0),
        "region": "us-east-1", "resources": [],
        "detail": {"check-name": CLASSIC_SG_CHECK,
            "check-item-detail": {"Region": "ap-southeast-2", "Security Group Name": "launch-wizard-1",
                "Security Group ID": format!("{group} (vpc-01234567)"), "Protocol": "tcp",
                "Status": "Red", "Ports": "22"},
            "status": "ERROR", "resource_id": "", "uuid": "d206140f-f5f9-50fe-aa5f-8960cbceb096"}
    });
    deliver(&local, &classic).await;
    deliver(&local, &ta_event(SG_CHECK, &sg_arn(group), "Red", t0)).await;
    let executions = local.automation.executions();
    assert_eq!(executions.len(), 1, "one runbook on the group at a time");
    assert_eq!(executions[0].parameters["GroupId"], [group]);
    assert!(
        state(&local).contains(&"held".to_owned()),
        "{:?}",
        state(&local)
    );

    finish_all(&local, "Success").await;
    sweeps_until(&local, &clock, t0 + Duration::minutes(15), None).await;
    assert_eq!(
        local.automation.executions().len(),
        1,
        "the cool-down after the first run"
    );
    sweeps_until(&local, &clock, t0 + Duration::minutes(45), None).await;
    assert_eq!(local.automation.executions().len(), 2);
}

/// 6. An event for account 999999999999's IAM user alice reaches the stack: refused, parked
/// with the reason, counted; nothing is tracked, opened or started. A row of that account
/// already in the tracker (written before the rule existed) starts nothing either.
#[tokio::test]
async fn another_accounts_finding_is_refused_kept_and_never_remediated() {
    let (mut local, _) = local_loop();
    let governed = Some(std::collections::BTreeSet::from([ACCOUNT.to_owned()]));
    local.check_tracker.rules.governed_accounts = governed.clone();
    local.results.config.safety.governed_accounts = governed;
    let mut foreign = ta_event(
        SG_CHECK,
        &sg_arn("sg-1").replace(ACCOUNT, "999999999999"),
        "Red",
        at(0),
    );
    foreign["account"] = json!("999999999999");
    let tracked = local.track(&foreign).await.unwrap();
    assert!(matches!(tracked, Tracked::Rejected(_)), "{tracked:?}");
    let parked = local.parked.messages();
    assert_eq!(parked.len(), 1);
    assert!(
        parked[0].body.contains("999999999999") && parked[0].body.contains("not governed"),
        "{}",
        parked[0].body
    );
    assert!(local.tracker.rows().is_empty());

    let row = tarem_shared::finding::Finding::new(
        "999999999999",
        SG_CHECK,
        &sg_arn("sg-2"),
        "ap-southeast-2",
    )
    .at(tarem_shared::finding::Status::Red, at(0), at(0));
    tarem_shared::ports::TrackerStore::put_if_newer(&*local.tracker, &row)
        .await
        .unwrap();
    local.deliver_stream().await;
    assert!(local.automation.executions().is_empty());
    let item = &local.ops_center.items()[0];
    assert!(
        item.description.contains("is not governed by this stack"),
        "{}",
        item.description
    );
}

/// 7. A status event stamped a day ahead is refused like a Trusted Advisor one; the execution
/// sweep brings the outcome with SSM's end time instead, so the episode is not left verifying
/// until a far-future deadline.
#[tokio::test]
async fn a_status_event_from_the_far_future_is_refused() {
    let (local, clock) = local_loop();
    deliver(
        &local,
        &ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", clock.now()),
    )
    .await;
    let execution = local.automation.executions()[0].clone();
    local
        .automation
        .complete(&execution.execution_id, "Success", None);
    let skewed = status_event(
        ACCOUNT,
        &execution.region,
        &execution.execution_id,
        SG_DOCUMENT,
        "Success",
        clock.now() + Duration::days(1),
    );
    let outcome = local.execution_handler.handle(&skewed).await.unwrap();
    assert!(
        matches!(&outcome, ExecutionOutcome::Rejected(r) if r.to_string().contains("after the receiving clock")),
        "{outcome:?}"
    );
    assert_eq!(state(&local), ["remediating"]);
    clock.advance(Duration::minutes(31));
    local.sweep_executions(Duration::minutes(30)).await.unwrap();
    let episode = &local.executions.episodes()[0];
    let tarem_shared::episode::Stage::Verifying { until } = &episode.stage else {
        panic!("{:?}", episode.stage);
    };
    assert_eq!(
        *until,
        format_time(clock.now() - Duration::minutes(31) + Duration::hours(24))
    );
}

/// 8. A Red sent at 09:30 but stamped 09:44, then the Green observed at 09:39: the Green is
/// later, and the finding is fixed.
#[tokio::test]
async fn an_item_time_ahead_of_its_event_does_not_outrank_a_later_observation() {
    let (local, _) = local_loop();
    let arn = sg_arn("sg-1");
    let nine = |minutes: i64| {
        tarem_shared::finding::parse_time("2026-11-02T09:00:00Z").unwrap()
            + Duration::minutes(minutes)
    };
    deliver(
        &local,
        &ta_event_at(SG_CHECK, &arn, "ap-southeast-2", "Red", nine(44), nine(30)),
    )
    .await;
    deliver(
        &local,
        &ta_event_at(
            SG_CHECK,
            &arn,
            "ap-southeast-2",
            "Green",
            nine(39),
            nine(40),
        ),
    )
    .await;
    let rows = local.tracker.rows();
    assert_eq!(
        rows[0].resource_status,
        tarem_shared::finding::Status::Green
    );
    assert_eq!(state(&local), ["fixed"]);
}

/// 9. A resource id no sort key can hold: refused at the edge with the reason (not retried and
/// parked without one), and a findings sweep that meets one goes on with the rest.
#[tokio::test]
async fn an_over_long_resource_is_refused_with_why_and_reconcile_goes_on() {
    let (local, _) = local_loop();
    let long = sg_arn(&format!("sg-{}", "a".repeat(1100)));
    let tracked = local
        .track(&ta_event(SG_CHECK, &long, "Red", at(0)))
        .await
        .unwrap();
    assert!(
        matches!(&tracked, Tracked::Rejected(r) if r.to_string().contains("1024-byte limit")),
        "{tracked:?}"
    );
    assert!(local.parked.messages()[0].body.contains("1024-byte limit"));

    let check = CheckInfo {
        id: "Hs4Ma3G1xx".into(),
        name: SG_CHECK.into(),
        columns: vec![
            "Status".into(),
            "Region".into(),
            "Resource".into(),
            "Last Updated Time".into(),
        ],
    };
    let flagged = |arn: &str| flagged_resource(arn, &format_time(at(0)));
    local.advisor.set_check(
        check,
        CheckResult {
            timestamp: format_time(at(60)),
            flagged: vec![flagged(&long), flagged(&sg_arn("sg-ok"))],
        },
    );
    let report = local
        .findings_sweep(false)
        .sweep(false)
        .await
        .expect("one bad row does not abort the sweep");
    assert_eq!(report.written.len(), 1, "{report:?}");
    assert_eq!(report.unreadable.len(), 1, "{report:?}");
}

/// 10. A walkthrough put-item whose checkName ends with a space: validation says so, and the
/// check's findings say why nothing starts instead of reading as unmapped.
#[tokio::test]
async fn a_mapping_name_with_stray_spaces_is_an_error_and_found_by_its_trimmed_name() {
    let (local, _) = local_loop();
    let item = walkthrough_mapping(
        &format!("{SG_CHECK} "),
        SG_DOCUMENT,
        r#"{"GroupId": ["$resourceId"], "AutomationAssumeRole": ["arn:aws:iam::123456789012:role/TaremAutomationRole"]}"#,
        r"(sg-\w+)",
        true,
    );
    let problems = tarem_shared::mapping::Mapping::read(&tarem_shared::mapping::plain_json(&item))
        .unwrap_err();
    assert!(
        problems[0]
            .to_string()
            .contains("leading or trailing whitespace"),
        "{problems:?}"
    );
    // Only the misnamed item: the walkthrough's own is gone.
    let (local, _) = {
        let _ = local;
        let (fresh, clock) = local_loop();
        use tarem_shared::ports::MappingStore;
        fresh.mappings.delete(SG_CHECK).await.unwrap();
        fresh.mappings.put(&item).unwrap();
        (fresh, clock)
    };
    deliver(&local, &ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0))).await;
    assert!(local.automation.executions().is_empty());
    let note = remediation(&local, &local.ops_center.items()[0].id);
    assert!(
        note["detail"]
            .as_str()
            .unwrap()
            .contains("leading or trailing whitespace"),
        "{note}"
    );
}

/// 12. The breaker counts starts that happen: a start SSM refuses, or a claim that loses a race,
/// gives its count back.
#[tokio::test]
async fn the_breaker_counts_only_starts_that_happen() {
    let (local, _) = local_loop_configured(
        tarem_shared::memory::InMemoryAutomation::default(),
        tarem_shared::lifecycle::LifecycleConfig {
            safety: tarem_shared::safety::SafetyConfig {
                breaker_limit: 2,
                ..test_safety()
            },
            ..test_stack()
        },
    );
    local.automation.fail_next_starts([PortError::new(
        "StartAutomationExecution",
        ErrorKind::AccessDenied,
        "AccessDeniedException: not authorized to perform ssm:StartAutomationExecution",
    )]);
    let mut pipeline = Pipeline::new(&local);
    pipeline
        .deliver_event(&ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0)))
        .await;
    assert!(local.automation.executions().is_empty());
    pipeline
        .deliver_event(&ta_event(SG_CHECK, &sg_arn("sg-2"), "Red", at(0)))
        .await;
    pipeline
        .deliver_event(&ta_event(SG_CHECK, &sg_arn("sg-3"), "Red", at(0)))
        .await;
    assert_eq!(
        local.automation.executions().len(),
        2,
        "the refused start took no place under the breaker"
    );
}

/// The execution table as the sweep meets it when the stream's Green wins the race: the sweep
/// reads the held episode, then the Green resolves its OpsItem and writes it fixed, before the
/// sweep (having decided to start) sets the OpsItem in progress and loses its claim.
struct GreenWinsTheRace {
    inner: std::sync::Arc<dyn tarem_shared::ports::ExecutionStore>,
    green: std::sync::Mutex<Option<(tarem_shared::handlers::ResultsHandler, Value)>>,
}

#[async_trait::async_trait]
impl tarem_shared::ports::ExecutionStore for GreenWinsTheRace {
    async fn record_started(
        &self,
        r: &tarem_shared::ports::ExecutionRecord,
    ) -> Result<String, PortError> {
        self.inner.record_started(r).await
    }
    async fn get(
        &self,
        id: &str,
    ) -> Result<Option<tarem_shared::ports::ExecutionRecord>, PortError> {
        self.inner.get(id).await
    }
    async fn record_status(
        &self,
        r: &tarem_shared::ports::ExecutionRecord,
    ) -> Result<tarem_shared::ports::StatusWrite, PortError> {
        self.inner.record_status(r).await
    }
    async fn get_episode(
        &self,
        key: &str,
    ) -> Result<Option<tarem_shared::episode::Episode>, PortError> {
        let read = self.inner.get_episode(key).await?;
        let armed = read.as_ref().is_some_and(|e| e.stage.name() == "held");
        let green = if armed {
            self.green.lock().unwrap().take()
        } else {
            None
        };
        if let Some((handler, batch)) = green {
            let report = handler.handle_batch(&batch, None).await;
            assert!(report.batch_item_failures().is_empty(), "{report:?}");
        }
        Ok(read)
    }
    async fn put_episode(&self, e: &tarem_shared::episode::Episode) -> Result<bool, PortError> {
        self.inner.put_episode(e).await
    }
    async fn open_episodes(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<tarem_shared::ports::EpisodePage, PortError> {
        self.inner.open_episodes(after, limit).await
    }
    async fn episodes(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<tarem_shared::ports::EpisodePage, PortError> {
        self.inner.episodes(after, limit).await
    }
    async fn due_episodes(
        &self,
        shard: u32,
        by: i64,
        after: Option<&str>,
        limit: usize,
    ) -> Result<tarem_shared::ports::Page<tarem_shared::ports::DueEpisode>, PortError> {
        self.inner.due_episodes(shard, by, after, limit).await
    }
    async fn archive_episode(&self, e: &tarem_shared::episode::Episode) -> Result<(), PortError> {
        self.inner.archive_episode(e).await
    }
    async fn sweep_state(&self) -> Result<tarem_shared::ports::SweepState, PortError> {
        self.inner.sweep_state().await
    }
    async fn set_sweep_state(&self, s: &tarem_shared::ports::SweepState) -> Result<(), PortError> {
        self.inner.set_sweep_state(s).await
    }
    async fn unfinished(
        &self,
        before: &str,
    ) -> Result<Vec<tarem_shared::ports::ExecutionRecord>, PortError> {
        self.inner.unfinished(before).await
    }
}

/// 4. The sweep decides attempt 2 from the held episode; the Green resolves the OpsItem and
/// writes the episode fixed; the sweep's "in progress, attempt 2 of 3" lands after it and its
/// claim loses. The episode is the truth: a sweep later, the OpsItem says resolved again, and
/// nothing started.
#[tokio::test]
async fn an_opsitem_write_that_lost_the_race_is_repaired_by_the_sweep() {
    let (mut local, clock) = local_loop();
    let arn = sg_arn("sg-1");
    let t0 = clock.now();
    deliver(&local, &ta_event(SG_CHECK, &arn, "Red", t0)).await;
    finish_all(&local, "Failed").await;
    assert_eq!(state(&local), ["held"]);
    // The Green, tracked now; its record is delivered in the middle of the sweep.
    clock.advance(Duration::minutes(31));
    local
        .track(&ta_event(
            SG_CHECK,
            &arn,
            "Green",
            t0 + Duration::minutes(29),
        ))
        .await
        .unwrap();
    let batch = local.pending_stream_batch();
    let green = tarem_shared::handlers::ResultsHandler {
        tracker: local.tracker.clone(),
        mappings: tarem_shared::handlers::MappingCache::new(
            local.mappings.clone(),
            local.clock.clone(),
            Duration::seconds(60),
        ),
        executions: local.executions.clone(),
        members: local.members.clone(),
        counters: local.counters.clone(),
        locks: local.locks.clone(),
        kill_switch: local.kill_switch.clone(),
        clock: local.clock.clone(),
        config: test_stack(),
        pacer: Default::default(),
        parking: local.parked.clone(),
    };
    local.results.executions = std::sync::Arc::new(GreenWinsTheRace {
        inner: local.executions.clone(),
        green: std::sync::Mutex::new(Some((green, batch))),
    });
    // The sweep reaches the held episode at the end of its cool-down and reads it first.
    local.sweep_episodes().await.unwrap();
    assert_eq!(state(&local), ["fixed"]);
    assert_eq!(
        local.automation.executions().len(),
        1,
        "nothing started after the Green"
    );
    // The OpsItem the episode says is resolved, whichever write landed last; a sweep later at
    // the latest.
    sweeps_until(&local, &clock, clock.now() + Duration::minutes(30), None).await;
    let item = &local.ops_center.items()[0];
    assert_eq!(item.status, OpsItemStatus::Resolved, "{:?}", item.updates);
    assert_eq!(remediation(&local, &item.id)["state"], "fixed");
}

/// 5. A new finding's first record fails until its retries run out (the stream parks the
/// range); later refreshes say the same state again. The settle check a sweep later finds the
/// flagged row without an episode and acts on it.
#[tokio::test]
async fn a_lost_first_red_is_found_and_acted_on_by_the_sweep() {
    let (local, clock) = local_loop();
    let arn = sg_arn("sg-1");
    let t0 = clock.now();
    local.faults.fail(
        "executions.get_episode",
        6,
        PortError::new(
            "GetItem",
            ErrorKind::Throttled,
            "ProvisionedThroughputExceededException",
        ),
    );
    let mut pipeline = Pipeline::new(&local);
    pipeline
        .deliver_event(&ta_event(SG_CHECK, &arn, "Red", t0))
        .await;
    assert_eq!(pipeline.parked.len(), 1, "{:?}", pipeline.parked);
    // The same observation again, said later: a refresh, skipped.
    clock.advance(Duration::minutes(5));
    let mut refresh = ta_event(SG_CHECK, &arn, "Red", t0);
    refresh["time"] = json!(format_time(clock.now()));
    pipeline.deliver_event(&refresh).await;
    assert!(local.executions.episodes().is_empty());
    assert!(local.ops_center.items().is_empty());

    sweeps_until(&local, &clock, t0 + Duration::minutes(35), None).await;
    assert_eq!(state(&local), ["remediating"]);
    assert_eq!(local.ops_center.items().len(), 1);
    assert_eq!(local.automation.executions().len(), 1);
    assert_eq!(
        local.tracker.pending_count(),
        0,
        "every change checked once"
    );
}

/// Every episode kept, the replaced ones included, as `tarem status` reads them.
async fn all_episodes(local: &LocalLoop) -> Vec<tarem_shared::episode::Episode> {
    let mut all = vec![];
    let mut after = None;
    loop {
        let page =
            tarem_shared::ports::ExecutionStore::episodes(&*local.executions, after.as_deref(), 7)
                .await
                .unwrap();
        all.extend(page.episodes);
        match page.next {
            Some(next) => after = Some(next),
            None => return all,
        }
    }
}

/// 11. A finding flagged again every two hours, each time fixed: `tarem status` counts the 12
/// starts and 12 fixes of the day, not only the latest episode's one.
#[tokio::test]
async fn status_counts_every_episode_and_attempt_of_its_window() {
    let (local, clock) = local_loop();
    let arn = sg_arn("sg-1");
    let t0 = clock.now();
    for cycle in 0..12 {
        let red = t0 + Duration::hours(2 * cycle);
        clock.set(red + Duration::minutes(2));
        deliver(&local, &ta_event(SG_CHECK, &arn, "Red", red)).await;
        finish_all(&local, "Success").await;
        clock.set(red + Duration::hours(1));
        deliver(
            &local,
            &ta_event(SG_CHECK, &arn, "Green", red + Duration::minutes(50)),
        )
        .await;
    }
    assert_eq!(local.automation.executions().len(), 12);
    let status = tarem::status::summarize(&all_episodes(&local).await, clock.now());
    assert_eq!(status.last_24_hours.starts, 12, "{status:?}");
    assert_eq!(status.last_24_hours.succeeded, 12);
    assert_eq!(status.last_24_hours.fixed, 12);
    assert_eq!(status.time_to_fix.fixes, 12);
    assert!(status.flagged_by_check.is_empty(), "{status:?}");
}

/// A failure that will fail again the same way (the flagship runbook on a group in a non-default
/// VPC without all four SSH/RDP rules: AWS's reference page) escalates at once, the failing step
/// and its message on the OpsItem; a passing one (throttling) is retried after the cool-down.
#[tokio::test]
async fn a_runbook_failure_that_would_repeat_escalates_at_once_and_a_passing_one_is_retried() {
    let (local, clock) = local_loop();
    let t0 = clock.now();
    deliver(&local, &ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", t0)).await;
    deliver(&local, &ta_event(SG_CHECK, &sg_arn("sg-2"), "Red", t0)).await;
    let executions = local.automation.executions();
    let fail = |id: &str, kind: &str, message: &str| {
        local.automation.fail_step(
            id,
            "Failed",
            tarem_shared::ports::FailedStep {
                name: "RevokeSecurityGroupIngress".into(),
                message: Some(message.into()),
                failure_type: Some(kind.into()),
            },
        );
        status_event(
            ACCOUNT,
            "ap-southeast-2",
            id,
            SG_DOCUMENT,
            "Failed",
            clock.now(),
        )
    };
    let not_found = fail(
        &executions[0].execution_id,
        "Action",
        "Step fails when it is Executing. Fail reason: An error occurred (InvalidPermission.NotFound) when calling the RevokeSecurityGroupIngress operation: The specified rule does not exist in this security group.",
    );
    let throttled = fail(
        &executions[1].execution_id,
        "Throttling",
        "Step fails when it is Executing. Fail reason: Rate exceeded",
    );
    local.execution_handler.handle(&not_found).await.unwrap();
    local.execution_handler.handle(&throttled).await.unwrap();
    let stages: Vec<String> = local
        .executions
        .episodes()
        .iter()
        .map(|e| e.stage.name().to_owned())
        .collect();
    assert!(
        stages.contains(&"escalated".to_owned()) && stages.contains(&"held".to_owned()),
        "{stages:?}"
    );
    let escalated = local
        .ops_center
        .items()
        .into_iter()
        .find(|item| remediation(&local, &item.id)["state"] == "escalated")
        .unwrap();
    let detail = remediation(&local, &escalated.id)["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        detail.contains("step RevokeSecurityGroupIngress failed"),
        "{detail}"
    );
    assert!(detail.contains("InvalidPermission.NotFound"), "{detail}");
    assert!(detail.contains("cannot apply to this resource"), "{detail}");
    sweeps_until(&local, &clock, t0 + Duration::hours(1), None).await;
    assert_eq!(
        local.automation.executions().len(),
        3,
        "only the throttled one is retried"
    );
}
