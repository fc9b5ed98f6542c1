//! The safety controls (issue: "Safe automation"), each proven on the in-memory backend with a
//! controllable clock.
//!
//! Long on purpose: the catalogue of controls, one delivery order each (and their edges: the
//! cool-down's last millisecond, the breaker window's end), read together.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tarem_e2e::*;
use tarem_shared::clock::Clock;
use tarem_shared::episode::Stage;
use tarem_shared::error::{ErrorKind, PortError};
use tarem_shared::finding::{Finding, Status, format_time, parse_time};
use tarem_shared::handlers::{RecordOutcome, Step};
use tarem_shared::lifecycle::LifecycleConfig;
use tarem_shared::lifecycle::{Facts, Happening, Lifecycle, Need};
use tarem_shared::local::LocalLoop;
use tarem_shared::mapping::Mapping;
use tarem_shared::memory::InMemoryAutomation;
use tarem_shared::ports::DATA_REMEDIATION;
use tarem_shared::safety::{OptIn, SafetyConfig, UnmappedOpsItems};

fn remediation(local: &LocalLoop, id: &str) -> Value {
    let item = local.ops_center.get(id).expect("OpsItem exists");
    serde_json::from_str(&item.operational_data[DATA_REMEDIATION].value).expect("JSON")
}

fn held_controls(report: &tarem_shared::handlers::BatchReport) -> Vec<String> {
    report
        .records
        .iter()
        .flat_map(|r| &r.steps)
        .filter_map(|step| match step {
            Step::Held { control, .. } => Some(control.clone()),
            _ => None,
        })
        .collect()
}

fn configured(
    safety: SafetyConfig,
) -> (LocalLoop, std::sync::Arc<tarem_shared::clock::ManualClock>) {
    local_loop_configured(
        InMemoryAutomation::default(),
        LifecycleConfig {
            safety,
            ..LifecycleConfig::default()
        },
    )
}

#[tokio::test]
async fn refreshes_while_a_runbook_runs_start_nothing_and_the_next_attempt_waits_for_the_cool_down()
{
    let (local, clock) = local_loop();
    let arn = sg_arn("sg-1");
    deliver(&local, &ta_event(SG_CHECK, &arn, "Red", at(0))).await;
    clock.advance(Duration::hours(2));
    let report = deliver(&local, &ta_event(SG_CHECK, &arn, "Red", at(7200))).await;
    assert!(
        !report.records[0]
            .steps
            .iter()
            .any(|s| matches!(s, Step::AutomationStarted { .. })),
        "a refresh while the runbook runs starts nothing"
    );
    assert_eq!(local.automation.executions().len(), 1);
    // It fails 10 minutes after its start: the next attempt waits for the 30-minute cool-down.
    clock.set(at(3600) + Duration::minutes(10));
    finish_all(&local, "Failed").await;
    local.sweep_episodes().await.unwrap();
    assert_eq!(local.automation.executions().len(), 1, "cool-down");
    let episode = &local.executions.episodes()[0];
    assert_eq!(episode.stage.name(), "held");
    // The first start was at 10:00:00 (whole seconds); at exactly 10:30:00 the 30 minutes
    // between two starts have passed: the edge itself starts.
    let cool_down_end = parse_time("2026-11-02T10:30:00Z").unwrap();
    clock.set(cool_down_end - Duration::milliseconds(1));
    local.sweep_episodes().await.unwrap();
    assert_eq!(
        local.automation.executions().len(),
        1,
        "a millisecond early"
    );
    clock.set(cool_down_end);
    local.sweep_episodes().await.unwrap();
    assert_eq!(
        local.automation.executions().len(),
        2,
        "the hold ended: the sweep starts the next attempt"
    );
}

/// A runbook whose status never arrives (no event, no answer from SSM) does not block the
/// finding for good: after the in-flight timeout the sweep counts it failed and moves on.
#[tokio::test]
async fn the_in_flight_guard_times_out() {
    let (local, clock) = local_loop();
    deliver(&local, &ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0))).await;
    assert_eq!(local.automation.executions().len(), 1);
    clock.advance(Duration::hours(5));
    local.sweep_episodes().await.unwrap();
    assert_eq!(
        local.executions.episodes()[0].stage.name(),
        "remediating",
        "still in flight before the timeout"
    );
    // SSM will not say (access denied in that region): only the timeout can end the attempt.
    local.faults.fail(
        "automation.describe",
        1,
        PortError::new(
            "DescribeAutomationExecutions",
            ErrorKind::AccessDenied,
            "not authorized",
        ),
    );
    clock.advance(Duration::hours(1) + Duration::minutes(1));
    local.sweep_episodes().await.unwrap();
    let episode = &local.executions.episodes()[0];
    assert_eq!(
        episode.attempts[0].status.as_deref(),
        Some("TimedOut"),
        "{episode:?}"
    );
    assert!(
        episode.attempts[0]
            .failure
            .as_deref()
            .unwrap()
            .contains("in-flight timeout")
    );
    local.sweep_episodes().await.unwrap();
    assert_eq!(
        local.automation.executions().len(),
        2,
        "the next attempt starts once the timed-out one is counted"
    );
}

/// Past the in-flight timeout the sweep asks SSM first: a runbook still running (long waits)
/// is waited for, never run a second time beside itself; one whose end was missed (no event,
/// no poll yet) gets SSM's outcome, not "timed out".
#[tokio::test]
async fn past_the_in_flight_timeout_ssm_is_asked_before_anything_starts_again() {
    let (local, clock) = local_loop();
    deliver(&local, &ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0))).await;
    let execution = local.automation.executions()[0].clone();
    clock.advance(Duration::hours(6) + Duration::minutes(1));
    local.sweep_episodes().await.unwrap();
    clock.advance(Duration::hours(1));
    local.sweep_episodes().await.unwrap();
    assert_eq!(
        local.automation.executions().len(),
        1,
        "still running in SSM: no second run beside it"
    );
    let episode = &local.executions.episodes()[0];
    assert_eq!(episode.stage.name(), "remediating", "{episode:?}");
    assert!(episode.attempts[0].status.is_none());

    // A passing SSM failure is not an answer either: the next sweep asks again.
    local.faults.fail(
        "automation.describe",
        1,
        PortError::new(
            "DescribeAutomationExecutions",
            ErrorKind::Throttled,
            "slow down",
        ),
    );
    clock.advance(Duration::minutes(15));
    let _ = local.sweep_episodes().await;
    assert_eq!(local.executions.episodes()[0].stage.name(), "remediating");

    // It ended in Success, and neither its event nor the poll has told us: SSM's answer counts.
    local
        .automation
        .complete(&execution.execution_id, "Success", None);
    clock.advance(Duration::minutes(15));
    local.sweep_episodes().await.unwrap();
    let episode = &local.executions.episodes()[0];
    assert_eq!(episode.attempts[0].status.as_deref(), Some("Success"));
    assert_eq!(episode.stage.name(), "verifying", "{episode:?}");
    assert_eq!(local.automation.executions().len(), 1);
}

#[tokio::test]
async fn ten_thousand_red_findings_start_paced_trip_the_breaker_and_lose_nothing() {
    let (local, clock) = local_loop();
    let began = clock.now();
    for batch in 0..1000 {
        for i in 0..10 {
            let group = format!("sg-{:05}", batch * 10 + i);
            local
                .track(&ta_event(SG_CHECK, &sg_arn(&group), "Red", at(0)))
                .await
                .unwrap();
        }
        let report = local.deliver_stream().await;
        assert!(report.batch_item_failures().is_empty());
    }
    let executions = local.automation.executions();
    assert_eq!(
        executions.len(),
        50,
        "the breaker stops starts at 50 per hour for one check"
    );
    let times: Vec<_> = executions.iter().map(|e| e.started_at.unwrap()).collect();
    assert!(
        times
            .windows(2)
            .all(|pair| pair[1] - pair[0] >= Duration::seconds(1)),
        "starts are paced at least a second apart"
    );
    assert!(times[49] - began >= Duration::seconds(49));
    assert_eq!(
        local.tracker.rows().len(),
        10_000,
        "every finding is tracked"
    );
    let items = local.ops_center.items();
    assert_eq!(items.len(), 10_000, "every finding has its OpsItem");
    let tripped = items
        .iter()
        .filter(|item| remediation(&local, &item.id)["control"] == "circuit-breaker")
        .count();
    assert_eq!(
        tripped, 9_950,
        "the rest wait for approval, and their OpsItems say why"
    );
    let note = remediation(&local, &items[9_999].id);
    assert!(
        note["detail"].as_str().unwrap().contains("circuit breaker"),
        "{note}"
    );
}

#[tokio::test]
async fn the_kill_switch_stops_the_next_record_and_tracking_goes_on() {
    let (local, _) = local_loop();
    deliver(&local, &ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0))).await;
    local.kill_switch.set_off(true);
    let report = deliver(&local, &ta_event(SG_CHECK, &sg_arn("sg-2"), "Red", at(0))).await;
    assert_eq!(held_controls(&report), ["kill-switch"]);
    assert_eq!(local.automation.executions().len(), 1);
    assert_eq!(local.tracker.rows().len(), 2);
    assert_eq!(
        local.ops_center.items().len(),
        2,
        "OpsItems keep being written"
    );
    local.kill_switch.set_off(false);
    deliver(&local, &ta_event(SG_CHECK, &sg_arn("sg-3"), "Red", at(0))).await;
    assert_eq!(local.automation.executions().len(), 2);
    // The held one is not forgotten: the next sweep starts it.
    local.sweep_episodes().await.unwrap();
    let groups: Vec<String> = local
        .automation
        .executions()
        .iter()
        .map(|e| e.parameters["GroupId"][0].clone())
        .collect();
    assert_eq!(groups, ["sg-1", "sg-3", "sg-2"]);
}

fn mapping_with(extra: Value) -> Value {
    let mut item = json!({
        "checkName": SG_CHECK,
        "ssmAutomationDocument": SG_DOCUMENT,
        "automationParameters": {"GroupId": ["$resourceId"], "AutomationAssumeRole": [AUTOMATION_ROLE]},
        "regexPattern": "(sg-\\w+)",
        "automationStatus": true
    });
    for (key, value) in extra.as_object().unwrap() {
        item[key] = value.clone();
    }
    item
}

#[tokio::test]
async fn approval_dry_run_and_inactive_modes_start_nothing() {
    for (mode, control) in [
        ("approval", Some("approval")),
        ("dry-run", Some("dry-run")),
        ("inactive", None),
    ] {
        let (local, _) = local_loop();
        local
            .mappings
            .put(&mapping_with(json!({"mode": mode})))
            .unwrap();
        deliver(&local, &ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0))).await;
        assert!(local.automation.executions().is_empty(), "{mode}");
        let items = local.ops_center.items();
        match control {
            None => assert!(items.is_empty(), "inactive tracks only"),
            Some(control) => {
                let note = remediation(&local, &items[0].id);
                assert_eq!(note["state"], "held", "{mode}");
                assert_eq!(note["control"], control, "{mode}");
                assert_eq!(
                    note["parameters"]["GroupId"][0], "sg-1",
                    "{mode}: the parameters are filled in"
                );
            }
        }
    }
    let (local, _) = local_loop();
    local
        .mappings
        .put(&mapping_with(json!({"mode": "approval"})))
        .unwrap();
    deliver(&local, &ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0))).await;
    let item = &local.ops_center.items()[0];
    assert!(
        item.description.contains(&format!("--document-name 'AWS-DisablePublicAccessForSecurityGroup' --parameters '{{\"AutomationAssumeRole\":[\"{AUTOMATION_ROLE}\"],\"GroupId\":[\"sg-1\"]}}'")),
        "{}",
        item.description
    );
    assert!(
        item.operational_data["/aws/automations"]
            .value
            .contains(SG_DOCUMENT),
        "the runbook is linked"
    );
}

#[tokio::test]
async fn resource_tags_opt_in_opt_out_and_override_the_mode() {
    let tagged = |local: &LocalLoop, group: &str, tags: &[(&str, &str)]| {
        local.resource_tags.set(
            &sg_arn(group),
            tags.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        );
    };
    let (local, _) = configured(SafetyConfig {
        allowed_roles: vec![AUTOMATION_ROLE.into()],
        opt_in: OptIn::Tagged {
            key: "automaticRemediation".into(),
            value: "True".into(),
        },
        ..SafetyConfig::default()
    });
    tagged(&local, "sg-in", &[("automaticRemediation", "True")]);
    deliver(&local, &ta_event(SG_CHECK, &sg_arn("sg-in"), "Red", at(0))).await;
    deliver(&local, &ta_event(SG_CHECK, &sg_arn("sg-out"), "Red", at(0))).await;
    assert_eq!(local.automation.executions().len(), 1);
    assert_eq!(
        local.automation.executions()[0].parameters["GroupId"],
        ["sg-in"]
    );
    let note = remediation(&local, &local.ops_center.items()[1].id);
    assert!(
        note["detail"]
            .as_str()
            .unwrap()
            .contains("has not opted in"),
        "{note}"
    );

    let (local, _) = configured(SafetyConfig {
        allowed_roles: vec![AUTOMATION_ROLE.into()],
        opt_in: OptIn::ExceptTagged {
            key: "automaticRemediation".into(),
            value: "False".into(),
        },
        ..SafetyConfig::default()
    });
    local
        .mappings
        .put(&mapping_with(json!({"modeTagKey": "tarem-sg-mode"})))
        .unwrap();
    tagged(&local, "sg-opted-out", &[("automaticRemediation", "False")]);
    tagged(&local, "sg-dry", &[("tarem-sg-mode", "dry-run")]);
    for group in ["sg-opted-out", "sg-dry", "sg-plain"] {
        deliver(&local, &ta_event(SG_CHECK, &sg_arn(group), "Red", at(0))).await;
    }
    let started: Vec<_> = local
        .automation
        .executions()
        .iter()
        .map(|e| e.parameters["GroupId"][0].clone())
        .collect();
    assert_eq!(started, ["sg-plain"]);
    let states: Vec<_> = local
        .ops_center
        .items()
        .iter()
        .map(|i| {
            remediation(&local, &i.id)["control"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(states[..2], ["approval", "dry-run"]);
}

#[tokio::test]
async fn roles_and_documents_outside_the_allowlists_are_refused_with_a_reason() {
    let (local, clock) = configured(SafetyConfig {
        allowed_roles: vec![AUTOMATION_ROLE.into()],
        allowed_documents: vec![SG_DOCUMENT.into()],
        ..SafetyConfig::default()
    });
    local
        .mappings
        .put(&mapping_with(json!({"automationParameters": {"GroupId": ["$resourceId"], "AutomationAssumeRole": ["arn:aws:iam::123456789012:role/Admin"]}})))
        .unwrap();
    deliver(&local, &ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0))).await;
    local
        .mappings
        .put(&json!({"checkName": EC2_CHECK, "ssmAutomationDocument": "AWS-TerminateEC2Instance", "automationStatus": true}))
        .unwrap();
    // The new mapping is read once the mapping cache's minute has passed.
    clock.advance(chrono::Duration::seconds(61));
    deliver(
        &local,
        &ta_event(EC2_CHECK, &instance_arn("i-1"), "Red", at(0)),
    )
    .await;
    assert!(local.automation.executions().is_empty());
    let reasons: Vec<String> = local
        .ops_center
        .items()
        .iter()
        .map(|i| {
            remediation(&local, &i.id)["detail"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        reasons[0].contains("role/Admin is not one of the stack's automation roles"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains(
            "AWS-TerminateEC2Instance is not one of the stack's allowed automation documents"
        ),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn unmapped_findings_get_ops_items_as_the_stack_says_within_the_monthly_budget() {
    let (local, _) = configured(SafetyConfig {
        unmapped_ops_items: UnmappedOpsItems::RedOnly,
        ..test_safety()
    });
    deliver(
        &local,
        &ta_event(EC2_CHECK, &instance_arn("i-yellow"), "Yellow", at(0)),
    )
    .await;
    deliver(
        &local,
        &ta_event(EC2_CHECK, &instance_arn("i-red"), "Red", at(0)),
    )
    .await;
    let items = local.ops_center.items();
    assert_eq!(items.len(), 1);
    assert!(
        items[0].title.contains("i-red"),
        "the Red one: {}",
        items[0].title
    );

    let (local, _) = configured(SafetyConfig {
        unmapped_ops_items: UnmappedOpsItems::None,
        ..test_safety()
    });
    let report = deliver(
        &local,
        &ta_event(EC2_CHECK, &instance_arn("i-red"), "Red", at(0)),
    )
    .await;
    assert_eq!(held_controls(&report), ["ops-items"]);
    assert!(local.ops_center.items().is_empty());

    let (local, _) = configured(SafetyConfig {
        monthly_ops_item_budget: 2,
        ..test_safety()
    });
    for i in 0..4 {
        deliver(
            &local,
            &ta_event(EC2_CHECK, &instance_arn(&format!("i-{i}")), "Red", at(0)),
        )
        .await;
    }
    deliver(&local, &ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0))).await;
    let items = local.ops_center.items();
    assert_eq!(
        items.len(),
        3,
        "two unmapped within the budget, then only the mapped finding"
    );
    assert!(items[2].title.contains("sg-1"));
}

fn throttled() -> PortError {
    PortError::new(
        "StartAutomationExecution",
        ErrorKind::Throttled,
        "ThrottlingException: Rate exceeded",
    )
}

fn at_limit() -> PortError {
    PortError::new(
        "StartAutomationExecution",
        ErrorKind::LimitExceeded,
        "AutomationExecutionLimitExceededException: 100 concurrent executions",
    )
}

#[tokio::test]
async fn throttled_starts_back_off_and_succeed_within_the_budget() {
    let (local, clock) = local_loop();
    local
        .automation
        .fail_next_starts([throttled(), at_limit(), throttled()]);
    let before = clock.now();
    deliver(&local, &ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0))).await;
    assert_eq!(local.automation.executions().len(), 1);
    assert!(
        clock.now() - before >= Duration::seconds(1 + 2 + 4),
        "backoff doubles: {}",
        clock.now() - before
    );
}

#[tokio::test]
async fn a_start_that_cannot_finish_before_the_deadline_is_retried_never_dropped() {
    let (local, clock) = local_loop();
    local
        .automation
        .fail_next_starts(std::iter::repeat_n(at_limit(), 3));
    local
        .track(&ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0)))
        .await
        .unwrap();
    let batch = local.pending_stream_batch();
    let deadline = Some(clock.now() + Duration::seconds(15));
    let report = local.results.handle_batch(&batch, deadline).await;
    assert!(
        matches!(&report.records[0].outcome, RecordOutcome::Retry(reason) if reason.contains("time budget"))
    );
    assert_eq!(
        report.batch_item_failures().len(),
        1,
        "the record is named for a retry"
    );
    assert!(local.automation.executions().is_empty());
    // Lambda redelivers it; the claimed attempt resumes with the same ClientToken.
    let again = local.results.handle_batch(&batch, None).await;
    assert!(again.batch_item_failures().is_empty(), "{again:?}");
    let executions = local.automation.executions();
    assert_eq!(executions.len(), 1);
    let claimed = &local.executions.episodes()[0].attempts[0];
    assert_eq!(executions[0].client_token, claimed.client_token);
    assert_eq!(
        claimed.execution_id.as_deref(),
        Some(executions[0].execution_id.as_str())
    );
}

/// A held start says when it can go: the circuit breaker's hold ends when its window turns.
#[tokio::test]
async fn a_breaker_hold_names_the_end_of_its_window() {
    let (local, clock) = configured(SafetyConfig {
        breaker_limit: 1,
        ..test_safety()
    });
    clock.set(parse_time("2026-11-02T10:20:00Z").unwrap());
    deliver(&local, &ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0))).await;
    let report = deliver(&local, &ta_event(SG_CHECK, &sg_arn("sg-2"), "Red", at(0))).await;
    assert_eq!(held_controls(&report), ["circuit-breaker"]);
    let held = local
        .executions
        .episodes()
        .into_iter()
        .find(|e| e.stage.name() == "held")
        .expect("the second finding is held");
    match held.stage {
        tarem_shared::episode::Stage::Held { until, .. } => assert_eq!(
            until,
            Some(format_time(parse_time("2026-11-02T11:00:00Z").unwrap())),
            "the hour-long window that began at 10:00 ends at 11:00"
        ),
        other => panic!("{other:?}"),
    }
}

/// The breaker's queue: with one start an hour, the second finding waits for 11:00, the third
/// for 12:00 and the fourth for 13:00, each for the window that can start it.
#[tokio::test]
async fn breaker_holds_wake_one_windows_share_at_a_time() {
    let (local, clock) = configured(SafetyConfig {
        breaker_limit: 1,
        ..test_safety()
    });
    clock.set(parse_time("2026-11-02T10:20:00Z").unwrap());
    for group in ["sg-1", "sg-2", "sg-3", "sg-4"] {
        deliver(&local, &ta_event(SG_CHECK, &sg_arn(group), "Red", at(0))).await;
    }
    let mut ends: Vec<String> = local
        .executions
        .episodes()
        .into_iter()
        .filter_map(|e| match e.stage {
            tarem_shared::episode::Stage::Held { until, reason, .. } => {
                assert!(reason.contains("place "), "{reason}");
                until
            }
            _ => None,
        })
        .collect();
    ends.sort();
    assert_eq!(
        ends,
        [
            "2026-11-02T11:00:00.000Z",
            "2026-11-02T12:00:00.000Z",
            "2026-11-02T13:00:00.000Z",
        ]
    );
}

/// Resource tags cost a Tagging API call per finding: the lifecycle asks for them only when a
/// control reads them (opt-in or opt-out, a mapping's mode tag).
#[test]
fn tags_are_read_only_when_a_control_needs_them() {
    let mapping = Ok(Mapping::from_any_json(&sg_mapping()).unwrap());
    let finding = Finding::new("123456789012", SG_CHECK, &sg_arn("sg-1"), "eu-west-1").at(
        Status::Red,
        at(0),
        at(0),
    );
    let facts = Facts {
        mapping: Some(Some(&mapping)),
        tags: None,
        starts_allowed: Some(true),
        ops_items_this_month: Some(0),
        breaker_queue: None,
        execution: None,
        resource_busy: None,
        ops_item: None,
        member: Some(&tarem_shared::ports::MemberStanding::Ready),
        member_gate: Some(None),
        units: None,
    };
    let decide = |config: &LifecycleConfig| {
        Lifecycle {
            config,
            now: at(60),
        }
        .decide(None, Happening::Tracked(&finding), &facts)
        .map(|decision| decision.start.is_some())
    };
    assert_eq!(decide(&test_stack()), Ok(true), "no control reads tags");
    let mut opt_in = test_stack();
    opt_in.safety.opt_in = OptIn::Tagged {
        key: "automaticRemediation".into(),
        value: "True".into(),
    };
    assert_eq!(decide(&opt_in), Err(Need::Tags));
}

/// A claimed start that has not reached SSM yet (it failed retryably, or the function stopped)
/// is resumed only while every control still agrees. `claim_then_stop` leaves one such claim:
/// the first StartAutomationExecution is refused (or answered into the void) and the deadline
/// leaves no time to retry.
async fn claim_then_stop(local: &tarem_shared::local::LocalLoop, now: DateTime<Utc>) -> Value {
    local
        .track(&ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0)))
        .await
        .unwrap();
    let batch = local.pending_stream_batch();
    let report = local
        .results
        .handle_batch(&batch, Some(now + Duration::seconds(5)))
        .await;
    assert_eq!(report.batch_item_failures().len(), 1, "{report:?}");
    let episode = &local.executions.episodes()[0];
    assert_eq!(episode.stage.name(), "remediating");
    assert_eq!(episode.attempts.len(), 1);
    assert!(episode.attempts[0].execution_id.is_none());
    batch
}

#[tokio::test]
async fn a_claimed_start_does_not_run_after_the_kill_switch_is_turned_off() {
    let (local, clock) = local_loop();
    local.automation.fail_next_starts([at_limit()]);
    let batch = claim_then_stop(&local, clock.now()).await;
    let token = local.executions.episodes()[0].attempts[0]
        .client_token
        .clone();

    local.kill_switch.set_off(true);
    // Lambda redelivers the record at once: the claim is young (its invocation may still be
    // pacing it), so it is left alone; the sweep withdraws it later.
    let again = local.results.handle_batch(&batch, None).await;
    assert!(again.batch_item_failures().is_empty(), "{again:?}");
    assert_eq!(local.executions.episodes()[0].attempts.len(), 1);
    clock.advance(Duration::minutes(6));
    local.sweep_episodes().await.unwrap();
    assert!(
        local.automation.executions().is_empty(),
        "nothing starts while the switch is off"
    );
    let episode = &local.executions.episodes()[0];
    assert!(
        matches!(&episode.stage, Stage::Held { control, .. } if control == "kill-switch"),
        "{episode:?}"
    );
    assert!(
        episode.attempts.is_empty(),
        "the withdrawn attempt never ran: it counts toward no cap and no cool-down"
    );
    assert_eq!(local.ops_center.items().len(), 1);

    local.kill_switch.set_off(false);
    clock.advance(Duration::minutes(15));
    local.sweep_episodes().await.unwrap();
    let executions = local.automation.executions();
    assert_eq!(executions.len(), 1, "switched on again: it starts once");
    assert_eq!(
        executions[0].client_token, token,
        "as attempt 1 again, with the token SSM may already know"
    );
}

#[tokio::test]
async fn a_start_whose_answer_was_lost_is_found_not_repeated_or_withdrawn() {
    let (local, clock) = local_loop();
    local.automation.lose_next_start_answers(
        1,
        PortError::new(
            "StartAutomationExecution",
            ErrorKind::Timeout,
            "read timed out",
        ),
    );
    let batch = claim_then_stop(&local, clock.now()).await;
    assert_eq!(
        local.automation.executions().len(),
        1,
        "SSM accepted the call"
    );

    local.kill_switch.set_off(true);
    let again = local.results.handle_batch(&batch, None).await;
    assert!(again.batch_item_failures().is_empty(), "{again:?}");
    assert_eq!(
        local.executions.episodes()[0].attempts.len(),
        1,
        "a young claim may still be in another invocation's hands: left alone"
    );
    clock.advance(Duration::minutes(6));
    local.sweep_episodes().await.unwrap();
    let executions = local.automation.executions();
    assert_eq!(executions.len(), 1, "found by its token, not started again");
    let episode = &local.executions.episodes()[0];
    assert_eq!(episode.stage.name(), "remediating", "{episode:?}");
    assert_eq!(
        episode.attempts[0].execution_id.as_deref(),
        Some(executions[0].execution_id.as_str()),
        "the running execution is tracked, not withdrawn"
    );
}

#[tokio::test]
async fn a_claimed_start_follows_the_mapping_when_it_changes_before_ssm_saw_it() {
    let (local, clock) = local_loop();
    local.automation.fail_next_starts([at_limit()]);
    let batch = claim_then_stop(&local, clock.now()).await;

    // The operator switches the check to approval: the claim is withdrawn, the OpsItem waits.
    let mut item = json!({"checkName": SG_CHECK, "ssmAutomationDocument": SG_DOCUMENT,
        "automationParameters": {"GroupId": ["$resourceId"], "AutomationAssumeRole": [AUTOMATION_ROLE]},
        "regexPattern": "(sg-\\w+)", "mode": "approval"});
    local.mappings.put(&item).unwrap();
    clock.advance(Duration::minutes(6));
    local.sweep_episodes().await.unwrap();
    let again = local.results.handle_batch(&batch, None).await;
    assert!(again.batch_item_failures().is_empty(), "{again:?}");
    assert!(local.automation.executions().is_empty());
    let episode = &local.executions.episodes()[0];
    assert!(
        matches!(&episode.stage, Stage::Held { control, .. } if control == "approval"),
        "{episode:?}"
    );

    // Automated again, with another runbook: the next sweep starts that one, once.
    item["mode"] = json!("automated");
    item["ssmAutomationDocument"] =
        json!("AWSConfigRemediation-RemoveUnrestrictedSourceIngressRules");
    local.mappings.put(&item).unwrap();
    clock.advance(Duration::minutes(15));
    local.sweep_episodes().await.unwrap();
    local.results.handle_batch(&batch, None).await;
    let executions = local.automation.executions();
    assert_eq!(executions.len(), 1, "{executions:?}");
    assert_eq!(
        executions[0].document,
        "AWSConfigRemediation-RemoveUnrestrictedSourceIngressRules"
    );
}

/// A sweep that looks at a young claim (here because the mapping changed) leaves it to the
/// invocation that claimed it, which may still be pacing its call: withdrawing it now could let
/// that call start a runbook the episode no longer records; calling SSM again would start it
/// beside that call.
#[tokio::test]
async fn a_young_claim_is_left_to_its_invocation_even_when_the_mapping_changes() {
    let (local, clock) = local_loop();
    local.automation.fail_next_starts([at_limit()]);
    claim_then_stop(&local, clock.now()).await;
    let starts = local.faults.calls("automation.start");
    local
        .mappings
        .put(&mapping_with(json!({"mode": "approval"})))
        .unwrap();
    clock.advance(Duration::minutes(1));
    local.sweep_episodes().await.unwrap();
    assert_eq!(
        local.faults.calls("automation.start"),
        starts,
        "SSM not called again"
    );
    let episode = &local.executions.episodes()[0];
    assert_eq!(episode.stage.name(), "remediating", "{episode:?}");
    assert_eq!(episode.attempts.len(), 1, "the claim stands");

    // Once no invocation can hold it, the sweep withdraws it for the approval.
    clock.advance(Duration::minutes(5));
    local.sweep_episodes().await.unwrap();
    let episode = &local.executions.episodes()[0];
    assert!(
        matches!(&episode.stage, Stage::Held { control, .. } if control == "approval"),
        "{episode:?}"
    );
    assert!(local.automation.executions().is_empty());
}

/// A runbook still inside the in-flight timeout is not asked about when a sweep looks at its
/// episode (a mapping change): SSM is asked only once the timeout has passed.
#[tokio::test]
async fn a_sweep_asks_ssm_about_a_running_runbook_only_past_the_in_flight_timeout() {
    let (local, clock) = local_loop();
    local
        .track(&ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0)))
        .await
        .unwrap();
    local.deliver_stream().await;
    assert_eq!(local.automation.executions().len(), 1);
    let asked = local.faults.calls("automation.describe");
    local
        .mappings
        .put(&mapping_with(json!({"mode": "approval"})))
        .unwrap();
    clock.advance(Duration::minutes(10));
    local.sweep_episodes().await.unwrap();
    assert_eq!(
        local.faults.calls("automation.describe"),
        asked,
        "a young runbook: nothing to ask"
    );
    assert_eq!(local.executions.episodes()[0].stage.name(), "remediating");
    clock.advance(test_stack().safety.in_flight_timeout);
    local.sweep_episodes().await.unwrap();
    assert!(
        local.faults.calls("automation.describe") > asked,
        "past the timeout, SSM is asked"
    );
}

/// SSM as the results handler meets it when an operator turns the kill switch off right after
/// the first start of a sweep: every later call sees the switch off.
struct SwitchOffAfterFirstStart {
    inner: std::sync::Arc<InMemoryAutomation>,
    kill_switch: std::sync::Arc<tarem_shared::memory::InMemoryKillSwitch>,
}

#[async_trait::async_trait]
impl tarem_shared::ports::Automation for SwitchOffAfterFirstStart {
    async fn start(
        &self,
        request: &tarem_shared::ports::StartAutomation,
    ) -> Result<String, PortError> {
        let id = self.inner.start(request).await?;
        self.kill_switch.set_off(true);
        Ok(id)
    }
    async fn find_by_client_token(
        &self,
        region: &str,
        token: &str,
    ) -> Result<Option<String>, PortError> {
        self.inner.find_by_client_token(region, token).await
    }
    async fn tags(
        &self,
        region: &str,
        id: &str,
    ) -> Result<Option<BTreeMap<String, String>>, PortError> {
        self.inner.tags(region, id).await
    }
    async fn describe(
        &self,
        region: &str,
        id: &str,
    ) -> Result<Option<tarem_shared::ports::ExecutionInfo>, PortError> {
        self.inner.describe(region, id).await
    }
}

/// The kill switch stops the very next start, also in the middle of one paced sweep (or one
/// stream batch), not only from the next invocation on.
#[tokio::test]
async fn the_kill_switch_stops_the_next_start_within_one_sweep() {
    let (mut local, clock) = local_loop();
    let mut item = json!({"checkName": SG_CHECK, "ssmAutomationDocument": SG_DOCUMENT,
        "automationParameters": {"GroupId": ["$resourceId"], "AutomationAssumeRole": [AUTOMATION_ROLE]},
        "regexPattern": "(sg-\\w+)", "mode": "approval"});
    local.mappings.put(&item).unwrap();
    for group in ["sg-1", "sg-2", "sg-3"] {
        deliver(&local, &ta_event(SG_CHECK, &sg_arn(group), "Red", at(0))).await;
    }
    local.results.members = std::sync::Arc::new(tarem_shared::ports::OwnAccount::new(
        std::sync::Arc::new(SwitchOffAfterFirstStart {
            inner: local.automation.clone(),
            kill_switch: local.kill_switch.clone(),
        }),
        local.ops_center.clone(),
        local.resource_tags.clone(),
        local.advisor.clone(),
    ));
    item["mode"] = json!("automated");
    local.mappings.put(&item).unwrap();
    clock.advance(Duration::minutes(15));
    local.sweep_episodes().await.unwrap();
    assert_eq!(
        local.automation.executions().len(),
        1,
        "the switch went off after the first start"
    );
    let held: Vec<String> = local
        .executions
        .episodes()
        .into_iter()
        .filter_map(|e| match e.stage {
            Stage::Held { control, .. } => Some(control),
            _ => None,
        })
        .collect();
    assert_eq!(held, ["kill-switch", "kill-switch"]);

    // Delivered as one stream batch, the same holds.
    let (mut local, _) = local_loop();
    local.results.members = std::sync::Arc::new(tarem_shared::ports::OwnAccount::new(
        std::sync::Arc::new(SwitchOffAfterFirstStart {
            inner: local.automation.clone(),
            kill_switch: local.kill_switch.clone(),
        }),
        local.ops_center.clone(),
        local.resource_tags.clone(),
        local.advisor.clone(),
    ));
    for group in ["sg-1", "sg-2", "sg-3"] {
        local
            .track(&ta_event(SG_CHECK, &sg_arn(group), "Red", at(0)))
            .await
            .unwrap();
    }
    let report = local.deliver_stream().await;
    assert!(report.batch_item_failures().is_empty(), "{report:?}");
    assert_eq!(local.automation.executions().len(), 1);
    assert_eq!(
        held_controls(&report),
        ["kill-switch", "kill-switch"],
        "{report:?}"
    );
}

/// A withdrawal decided by the sweep that also opens the episode's owed OpsItem keeps that
/// OpsItem on the episode, and the OpsItem says the episode is held, not remediating.
#[tokio::test]
async fn a_withdrawal_keeps_the_ops_item_opened_with_it() {
    let (local, clock) = local_loop();
    local.faults.fail(
        "ops_center.create",
        1,
        PortError::new("CreateOpsItem", ErrorKind::Throttled, "slow down"),
    );
    local.automation.fail_next_starts([at_limit()]);
    claim_then_stop(&local, clock.now()).await;
    assert!(local.ops_center.items().is_empty(), "the OpsItem is owed");
    assert!(local.executions.episodes()[0].ops_item_owed);

    local.kill_switch.set_off(true);
    clock.advance(Duration::minutes(6));
    local.sweep_episodes().await.unwrap();
    let episode = &local.executions.episodes()[0];
    assert!(
        matches!(&episode.stage, Stage::Held { control, .. } if control == "kill-switch"),
        "{episode:?}"
    );
    let items = local.ops_center.items();
    assert_eq!(items.len(), 1);
    assert_eq!(episode.ops_item_id.as_deref(), Some(items[0].id.as_str()));
    assert!(!episode.ops_item_owed);
    assert_eq!(
        remediation(&local, &items[0].id)["state"],
        "held",
        "{}",
        remediation(&local, &items[0].id)
    );
    assert!(local.automation.executions().is_empty());
}

/// A runbook SSM keeps reporting running (a pause or approval step nobody answers) is waited
/// for up to four in-flight timeouts, then escalated to a person: never run twice, never
/// remediating for good.
#[tokio::test]
async fn a_runbook_running_for_four_timeouts_is_escalated_not_run_again() {
    let (local, clock) = local_loop();
    deliver(&local, &ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0))).await;
    clock.advance(Duration::hours(23));
    local.sweep_episodes().await.unwrap();
    assert_eq!(local.executions.episodes()[0].stage.name(), "remediating");
    clock.advance(Duration::hours(1) + Duration::minutes(1));
    local.sweep_episodes().await.unwrap();
    let episode = &local.executions.episodes()[0];
    assert!(
        matches!(&episode.stage, Stage::Escalated { reason } if reason.contains("still Pending in SSM 24 hours")),
        "{episode:?}"
    );
    let ops_item = &local.ops_center.items()[0];
    assert_eq!(remediation(&local, &ops_item.id)["state"], "escalated");
    clock.advance(Duration::hours(2));
    local.sweep_episodes().await.unwrap();
    assert_eq!(local.automation.executions().len(), 1);
}
