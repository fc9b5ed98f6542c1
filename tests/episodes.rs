//! Episodes: one remediation lifecycle per flagged episode, with the fix verified. Each test is a
//! delivery order a user would see (refreshes, outcomes, sweeps on the stack's schedule) on the
//! in-memory backend.
//!
//! Long on purpose: one test per lifecycle rule, as a delivery order, sharing the schedule and
//! outcome helpers; the rules read best side by side.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use tarem_e2e::*;
use tarem_shared::clock::{Clock, ManualClock};
use tarem_shared::error::{ErrorKind, PortError};
use tarem_shared::lifecycle::{LifecycleConfig, ResolveOn};
use tarem_shared::local::LocalLoop;
use tarem_shared::memory::InMemoryAutomation;
use tarem_shared::ports::OpsItemStatus;
use tarem_shared::ports::{DATA_REMEDIATION, TAG_FINDING};

fn note(local: &LocalLoop, id: &str) -> Value {
    let item = local.ops_center.get(id).expect("OpsItem exists");
    serde_json::from_str(&item.operational_data[DATA_REMEDIATION].value).expect("JSON")
}

fn stage(local: &LocalLoop) -> String {
    local.executions.episodes()[0].stage.name().to_owned()
}

/// The stack's schedule: the episode sweep every 15 minutes from `from` to `to`.
async fn sweeps_until(local: &LocalLoop, clock: &ManualClock, to: DateTime<Utc>) {
    while clock.now() + Duration::minutes(15) <= to {
        clock.advance(Duration::minutes(15));
        local.sweep_episodes().await.unwrap();
        finish_pending(local).await;
    }
    clock.set(to);
}

/// SSM finishes whatever runs, with the outcome the test set for the loop.
async fn finish_pending(local: &LocalLoop) {
    let status = OUTCOME.with(|o| o.borrow().clone());
    finish_all(local, &status).await;
}

thread_local! {
    static OUTCOME: std::cell::RefCell<String> = std::cell::RefCell::new("Success".into());
}

fn runbook_ends(status: &str) {
    OUTCOME.with(|o| *o.borrow_mut() = status.to_owned());
}

/// 144 Red refreshes 35 minutes apart over 3.5 days, never Green, with the sweep running on
/// its schedule in between: the review's reproduction gave 12 starts and 13 OpsItems.
async fn a_long_red_episode(outcome: &str) -> LocalLoop {
    runbook_ends(outcome);
    let (local, clock) = local_loop();
    let arn = sg_arn("sg-1");
    let start = clock.now();
    for refresh in 0..144 {
        let item_time = start + Duration::minutes(35 * refresh);
        sweeps_until(&local, &clock, item_time + Duration::seconds(30)).await;
        deliver(
            &local,
            &ta_event(
                SG_CHECK,
                &arn,
                "Red",
                item_time - Duration::milliseconds(250),
            ),
        )
        .await;
        finish_pending(&local).await;
    }
    local
}

#[tokio::test]
async fn a_long_red_episode_whose_runbook_succeeds_is_remediated_at_most_the_cap() {
    let local = a_long_red_episode("Success").await;
    assert_eq!(
        local.automation.executions().len(),
        3,
        "MaxAttempts (3) starts per episode, not per day"
    );
    let items = local.ops_center.items();
    assert_eq!(items.len(), 1, "one OpsItem per episode");
    assert_eq!(
        items[0].status,
        OpsItemStatus::Open,
        "left open for a person"
    );
    let note = note(&local, &items[0].id);
    assert_eq!(note["state"], "escalated");
    assert!(
        note["detail"].as_str().unwrap().contains("a person must"),
        "{note}"
    );
    assert_eq!(stage(&local), "escalated");
}

#[tokio::test]
async fn a_long_red_episode_whose_runbook_fails_is_remediated_at_most_the_cap() {
    let local = a_long_red_episode("Failed").await;
    assert_eq!(local.automation.executions().len(), 3);
    let items = local.ops_center.items();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].status, OpsItemStatus::Open);
    assert_eq!(note(&local, &items[0].id)["state"], "escalated");
}

/// Red → fixed → Green → Red again within the cool-down: the second episode opens its own
/// OpsItem at once, and its runbook starts only when the cool-down (which spans episodes) ends,
/// picked up by the sweep.
#[tokio::test]
async fn a_second_episode_inside_the_cool_down_starts_when_the_cool_down_ends() {
    runbook_ends("Success");
    let (local, clock) = local_loop();
    let arn = sg_arn("sg-1");
    deliver(&local, &ta_event(SG_CHECK, &arn, "Red", at(0))).await;
    finish_pending(&local).await;
    clock.advance(Duration::minutes(5));
    deliver(&local, &ta_event(SG_CHECK, &arn, "Green", at(3900))).await;
    assert_eq!(stage(&local), "fixed");
    clock.advance(Duration::minutes(5));
    deliver(&local, &ta_event(SG_CHECK, &arn, "Red", at(4200))).await;
    let items = local.ops_center.items();
    assert_eq!(items.len(), 2, "a new episode, a new OpsItem");
    assert_eq!(items[0].status, OpsItemStatus::Resolved);
    assert_eq!(note(&local, &items[1].id)["control"], "cool-down");
    assert_eq!(local.automation.executions().len(), 1);
    let started = clock.now();
    sweeps_until(&local, &clock, started + Duration::minutes(10)).await;
    assert_eq!(local.automation.executions().len(), 1, "still cooling down");
    sweeps_until(&local, &clock, started + Duration::minutes(30)).await;
    assert_eq!(
        local.automation.executions().len(),
        2,
        "the hold ended: the second episode's attempt 1"
    );
    let executions = local.automation.executions();
    assert_ne!(executions[0].client_token, executions[1].client_token);
}

/// An episode's state expires after the retention once the episode is over; the next episode's
/// attempts start again at 1, and its ClientTokens are still new (SSM would otherwise return the
/// old execution, or refuse the token). Run with the TTL process having deleted the old state
/// and with it still lingering: DynamoDB does either.
#[tokio::test]
async fn a_new_episode_after_the_old_state_expired_gets_fresh_client_tokens() {
    for ttl_has_run in [true, false] {
        runbook_ends("Success");
        let (local, clock) = local_loop();
        let arn = sg_arn("sg-1");
        deliver(&local, &ta_event(SG_CHECK, &arn, "Red", at(0))).await;
        finish_pending(&local).await;
        clock.advance(Duration::hours(1));
        deliver(&local, &ta_event(SG_CHECK, &arn, "Green", at(7000))).await;
        clock.advance(Duration::days(91));
        if ttl_has_run {
            assert_eq!(
                local.executions.expire_ttl(),
                2,
                "the closed state and its row"
            );
            assert!(local.executions.episodes().is_empty());
        }
        let later = clock.now() - Duration::minutes(5);
        deliver(&local, &ta_event(SG_CHECK, &arn, "Red", later)).await;
        let executions = local.automation.executions();
        assert_eq!(executions.len(), 2, "ttl_has_run {ttl_has_run}");
        assert_ne!(
            executions[0].client_token, executions[1].client_token,
            "ttl_has_run {ttl_has_run}"
        );
        assert_eq!(local.executions.episodes()[0].attempts[0].number, 1);
    }
}

/// OpsCenter's quota is spent (or CreateOpsItem is throttled): the runbook still starts under
/// the safety controls, the episode owes its OpsItem, and the sweep creates it once OpsCenter
/// takes it.
#[tokio::test]
async fn an_ops_item_quota_error_still_remediates_and_the_sweep_creates_it_later() {
    runbook_ends("Success");
    let (local, clock) = local_loop();
    local.faults.fail(
        "ops_center.create",
        1,
        PortError::new(
            "CreateOpsItem",
            ErrorKind::LimitExceeded,
            "OpsItemLimitExceededException: The OpsItem limit was exceeded",
        ),
    );
    let report = deliver(&local, &ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0))).await;
    assert!(report.batch_item_failures().is_empty());
    assert_eq!(
        local.automation.executions().len(),
        1,
        "the start proceeded"
    );
    assert!(local.ops_center.items().is_empty());
    let episode = &local.executions.episodes()[0];
    assert!(episode.ops_item_owed);
    assert!(
        !local.automation.executions()[0]
            .tags
            .contains_key("tarem:opsItemId"),
        "no OpsItem to name yet"
    );
    finish_pending(&local).await;
    assert_eq!(
        stage(&local),
        "verifying",
        "the outcome reached the episode"
    );
    clock.advance(Duration::minutes(15));
    local.sweep_episodes().await.unwrap();
    let items = local.ops_center.items();
    assert_eq!(items.len(), 1, "created by the sweep");
    assert_eq!(note(&local, &items[0].id)["state"], "verifying");
    assert_eq!(items[0].status, OpsItemStatus::InProgress);
    assert!(!local.executions.episodes()[0].ops_item_owed);
}

/// The sweep handles each episode on its own: one whose row cannot be read is logged and parked
/// (to be replayed), the others go on.
#[tokio::test]
async fn one_bad_row_does_not_stop_a_sweep() {
    let (local, clock) = local_loop();
    local.kill_switch.set_off(true);
    for group in ["sg-1", "sg-2", "sg-3"] {
        deliver(&local, &ta_event(SG_CHECK, &sg_arn(group), "Red", at(0))).await;
    }
    assert!(local.automation.executions().is_empty());
    local.kill_switch.set_off(false);
    local.faults.fail(
        "tracker.get",
        1,
        PortError::new(
            "GetItem",
            ErrorKind::AccessDenied,
            "AccessDeniedException: injected",
        ),
    );
    clock.advance(Duration::minutes(15));
    let report = local.sweep_episodes().await.unwrap();
    assert_eq!(report.episodes, 3);
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(local.automation.executions().len(), 2, "the others went on");
    let parked = local.parked.messages();
    assert_eq!(parked.len(), 1);
    assert!(parked[0].body.contains("AccessDeniedException"));
    // The operator replays it: the one finding is swept again.
    let replayer = tarem_shared::replay::Replayer {
        queue: &*local.parked,
        stream: &local,
        redrive: &local,
    };
    let replayed = replayer.replay(10, false).await.unwrap();
    assert_eq!(replayed[0].outcome, "replayed", "{replayed:?}");
    assert_eq!(local.automation.executions().len(), 3);
}

/// A sweep stops cleanly before the invocation's deadline and the next run continues where it
/// stopped; an open episode is never skipped for good.
#[tokio::test]
async fn a_sweep_stops_before_its_deadline_and_the_next_run_continues() {
    let (local, clock) = local_loop();
    local.kill_switch.set_off(true);
    for i in 0..250 {
        local
            .track(&ta_event(
                SG_CHECK,
                &sg_arn(&format!("sg-{i:03}")),
                "Red",
                at(0),
            ))
            .await
            .unwrap();
    }
    local.deliver_stream().await;
    local.kill_switch.set_off(false);
    // Each start takes a second of the simulated clock (the pacing): a 60-second budget ends
    // the first run early.
    let deadline = clock.now() + Duration::seconds(60);
    let first = local.results.sweep(Some(deadline), None).await.unwrap();
    assert!(first.stopped_early, "{first:?}");
    let after_first = local.automation.executions().len();
    assert!(after_first > 0 && after_first < 250, "{after_first}");
    let second = local.results.sweep(None, None).await.unwrap();
    assert!(!second.stopped_early);
    let groups: std::collections::HashSet<String> = local
        .automation
        .executions()
        .iter()
        .map(|e| e.parameters["GroupId"][0].clone())
        .collect();
    assert_eq!(groups.len(), 50, "the breaker's 50 per hour, none twice");
    assert_eq!(local.automation.executions().len(), groups.len());
}

#[tokio::test]
async fn an_empty_role_allowlist_holds_automated_mappings_for_approval() {
    let (local, _) =
        local_loop_configured(InMemoryAutomation::default(), LifecycleConfig::default());
    let report = deliver(&local, &ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0))).await;
    assert!(local.automation.executions().is_empty(), "fails closed");
    let items = local.ops_center.items();
    let note = note(&local, &items[0].id);
    assert_eq!(note["control"], "approval");
    assert!(
        note["detail"]
            .as_str()
            .unwrap()
            .contains("AutomationRoleArns"),
        "the reason is on the OpsItem: {note}"
    );
    assert!(format!("{:?}", report.records[0].steps).contains("approval"));
}

/// The approval command on the OpsItem, pasted into a shell: a column value that holds quotes
/// and shell syntax stays inside its one argument.
#[tokio::test]
async fn a_hostile_value_in_an_approval_command_stays_one_argument_in_a_shell() {
    let (local, _) = local_loop();
    local
        .mappings
        .put(
            &json!({"checkName": SG_CHECK, "ssmAutomationDocument": SG_DOCUMENT,
            "automationParameters": {"GroupId": ["${detail.Note}"]}, "mode": "approval"}),
        )
        .unwrap();
    let hostile = "x'; touch /tmp/tarem-e2e-pwned; echo '$(id)";
    let mut event = ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0));
    event["detail"]["check-item-detail"]["Note"] = json!(hostile);
    deliver(&local, &event).await;
    let detail = note(&local, &local.ops_center.items()[0].id)["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    let command = &detail[detail.find("aws ssm").expect("a command")..];
    let script = format!("aws() {{ printf '%s\\0' \"$@\"; }}\n{command}");
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(output.status.success(), "{command}");
    let arguments: Vec<String> = output
        .stdout
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    assert_eq!(
        arguments.last().unwrap(),
        &json!({"GroupId": [hostile]}).to_string()
    );
    assert!(!std::path::Path::new("/tmp/tarem-e2e-pwned").exists());
}

/// A mapping may lower the stack's attempt cap and raise its cool-down, never the other way.
#[tokio::test]
async fn a_mapping_may_lower_the_caps_but_never_raise_them() {
    runbook_ends("Failed");
    let with_limits = |limits: Value| {
        let mut item = json!({"checkName": SG_CHECK, "ssmAutomationDocument": SG_DOCUMENT,
            "automationParameters": {"GroupId": ["$resourceId"], "AutomationAssumeRole": [AUTOMATION_ROLE]},
            "regexPattern": "(sg-\\w+)", "automationStatus": true});
        for (key, value) in limits.as_object().unwrap() {
            item[key] = value.clone();
        }
        item
    };
    let mut starts = vec![];
    for limits in [
        json!({"maxAttempts": 1}),
        json!({"maxAttempts": 10}),
        json!({"coolDownMinutes": 120}),
        json!({"coolDownMinutes": 1}),
    ] {
        let (local, clock) = local_loop();
        local.mappings.put(&with_limits(limits.clone())).unwrap();
        deliver(&local, &ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0))).await;
        finish_pending(&local).await;
        let after = clock.now() + Duration::hours(2) - Duration::minutes(1);
        sweeps_until(&local, &clock, after).await;
        starts.push((limits, local.automation.executions().len()));
    }
    assert_eq!(starts[0].1, 1, "maxAttempts 1 lowers the cap: {starts:?}");
    assert_eq!(
        starts[1].1, 3,
        "maxAttempts 10 cannot raise the stack's 3: {starts:?}"
    );
    assert_eq!(
        starts[2].1, 1,
        "a 120-minute cool-down: one start in two hours: {starts:?}"
    );
    assert_eq!(
        starts[3].1, 3,
        "1 minute cannot shorten the stack's 30: {starts:?}"
    );
}

/// A Success waits for Trusted Advisor. No word within the verify window: the OpsItem resolves
/// as "succeeded, not yet confirmed". A flagged refresh later in the episode reopens the same
/// OpsItem and counts as a failed verification: the next attempt starts.
#[tokio::test]
async fn an_unconfirmed_fix_resolves_and_a_later_flagged_refresh_reopens_the_same_ops_item() {
    runbook_ends("Success");
    let (local, clock) = local_loop();
    let arn = sg_arn("sg-1");
    let began = clock.now();
    deliver(&local, &ta_event(SG_CHECK, &arn, "Red", at(0))).await;
    finish_pending(&local).await;
    let id = local.ops_center.items()[0].id.clone();
    assert_eq!(
        local.ops_center.get(&id).unwrap().status,
        OpsItemStatus::InProgress
    );
    sweeps_until(&local, &clock, began + Duration::hours(25)).await;
    assert_eq!(stage(&local), "unconfirmed");
    let item = local.ops_center.get(&id).unwrap();
    assert_eq!(item.status, OpsItemStatus::Resolved);
    assert!(
        note(&local, &id)["detail"]
            .as_str()
            .unwrap()
            .contains("not yet confirmed")
    );
    deliver(
        &local,
        &ta_event(SG_CHECK, &arn, "Red", clock.now() - Duration::minutes(1)),
    )
    .await;
    assert_eq!(local.ops_center.items().len(), 1, "the same OpsItem");
    assert_eq!(
        local.ops_center.get(&id).unwrap().status,
        OpsItemStatus::InProgress,
        "reopened"
    );
    assert_eq!(
        local.automation.executions().len(),
        2,
        "a failed verification"
    );
    assert!(
        note(&local, &id)["detail"]
            .as_str()
            .unwrap()
            .contains("the fix did not hold"),
        "{}",
        note(&local, &id)
    );
}

/// `ResolveOn: success` keeps AWS's walkthrough behaviour: a Success resolves the OpsItem at
/// once; verification still runs and a later flagged refresh reopens it.
#[tokio::test]
async fn resolve_on_success_resolves_at_once_and_still_verifies() {
    runbook_ends("Success");
    let (local, clock) = local_loop_configured(
        InMemoryAutomation::default(),
        LifecycleConfig {
            resolve_on: ResolveOn::Success,
            ..test_stack()
        },
    );
    let arn = sg_arn("sg-1");
    deliver(&local, &ta_event(SG_CHECK, &arn, "Red", at(0))).await;
    finish_pending(&local).await;
    let id = local.ops_center.items()[0].id.clone();
    assert_eq!(
        local.ops_center.get(&id).unwrap().status,
        OpsItemStatus::Resolved
    );
    clock.advance(Duration::hours(2));
    deliver(
        &local,
        &ta_event(SG_CHECK, &arn, "Red", clock.now() - Duration::minutes(1)),
    )
    .await;
    assert_eq!(
        local.ops_center.get(&id).unwrap().status,
        OpsItemStatus::InProgress
    );
    assert_eq!(local.automation.executions().len(), 2);
}

/// A late failure never reopens a resolved OpsItem: not one Trusted Advisor's Green resolved,
/// nor one an operator resolved by hand.
#[tokio::test]
async fn a_late_failure_never_reopens_a_resolved_ops_item() {
    runbook_ends("Failed");
    // Trusted Advisor reports Green before the runbook's failure arrives.
    let (local, clock) = local_loop();
    let arn = sg_arn("sg-1");
    deliver(&local, &ta_event(SG_CHECK, &arn, "Red", at(0))).await;
    clock.advance(Duration::minutes(10));
    deliver(&local, &ta_event(SG_CHECK, &arn, "Green", at(4000))).await;
    let id = local.ops_center.items()[0].id.clone();
    assert_eq!(
        local.ops_center.get(&id).unwrap().status,
        OpsItemStatus::Resolved
    );
    finish_pending(&local).await;
    assert_eq!(
        local.ops_center.get(&id).unwrap().status,
        OpsItemStatus::Resolved
    );
    assert_eq!(stage(&local), "fixed");
    assert_eq!(
        local.executions.episodes()[0].attempts[0].status.as_deref(),
        Some("Failed"),
        "the late failure is recorded on its attempt (tarem status counts it)"
    );

    // An operator resolves the OpsItem by hand while the runbook runs.
    let (local, _) = local_loop();
    deliver(&local, &ta_event(SG_CHECK, &arn, "Red", at(0))).await;
    let id = local.ops_center.items()[0].id.clone();
    local.ops_center.set_status(&id, OpsItemStatus::Resolved);
    finish_pending(&local).await;
    assert_eq!(
        local.ops_center.get(&id).unwrap().status,
        OpsItemStatus::Resolved,
        "the failure is recorded, not reopened"
    );
}

/// The Green of an episode never reached the stack (lost, or still parked) and the finding is
/// flagged again: the new episode closes the old one's OpsItem and opens its own.
#[tokio::test]
async fn a_new_episode_closes_an_old_one_whose_green_never_came() {
    runbook_ends("Success");
    let (local, clock) = local_loop();
    let arn = sg_arn("sg-1");
    deliver(&local, &ta_event(SG_CHECK, &arn, "Red", at(0))).await;
    finish_pending(&local).await;
    // The Green is written but its stream record is lost.
    clock.advance(Duration::hours(1));
    local
        .track(&ta_event(SG_CHECK, &arn, "Green", at(3000)))
        .await
        .unwrap();
    local.tracker.take_stream();
    clock.advance(Duration::hours(1));
    deliver(&local, &ta_event(SG_CHECK, &arn, "Red", at(7000))).await;
    let items = local.ops_center.items();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].status, OpsItemStatus::Resolved);
    assert_eq!(note(&local, &items[0].id)["state"], "fixed");
    assert_ne!(items[1].status, OpsItemStatus::Resolved);
}

/// A Green whose stream record was lost is still seen: the sweep reads the tracker row and
/// closes the episode.
#[tokio::test]
async fn the_sweep_closes_an_episode_whose_green_record_was_lost() {
    runbook_ends("Success");
    let (local, clock) = local_loop();
    let arn = sg_arn("sg-1");
    deliver(&local, &ta_event(SG_CHECK, &arn, "Red", at(0))).await;
    finish_pending(&local).await;
    clock.advance(Duration::hours(1));
    local
        .track(&ta_event(SG_CHECK, &arn, "Green", at(3000)))
        .await
        .unwrap();
    local.tracker.take_stream();
    local.sweep_episodes().await.unwrap();
    assert_eq!(stage(&local), "fixed");
    assert_eq!(local.ops_center.items()[0].status, OpsItemStatus::Resolved);
}

/// A finding held for approval starts once an operator switches its check to automated: the
/// hold ends at the next sweep, within the circuit breaker.
#[tokio::test]
async fn switching_a_check_to_automated_starts_its_held_episodes_at_the_next_sweep() {
    let (local, clock) = local_loop();
    let mut item = json!({"checkName": SG_CHECK, "ssmAutomationDocument": SG_DOCUMENT,
        "automationParameters": {"GroupId": ["$resourceId"], "AutomationAssumeRole": [AUTOMATION_ROLE]},
        "regexPattern": "(sg-\\w+)", "mode": "approval"});
    local.mappings.put(&item).unwrap();
    deliver(&local, &ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0))).await;
    local.sweep_episodes().await.unwrap();
    assert!(local.automation.executions().is_empty());
    item["mode"] = json!("automated");
    local.mappings.put(&item).unwrap();
    clock.advance(Duration::minutes(15));
    local.sweep_episodes().await.unwrap();
    let executions = local.automation.executions();
    assert_eq!(executions.len(), 1);
    assert_eq!(
        executions[0].tags[TAG_FINDING],
        local.tracker.rows()[0].hash_key
    );
}
