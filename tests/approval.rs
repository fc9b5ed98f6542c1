//! Approving an approval-mode episode where the operator works (issue "From approval to
//! automated"): the person sets `tarem:approve` to `yes` on the OpsItem, OpsCenter sends its
//! "OpsItem Update" event, the results handler answers. Each test is an order an operator would
//! produce: approve once, twice, after a Green, after escalation, with the kill switch off, two
//! handlers at once, and from a member account's OpsItem.
//!
//! The event is AWS's own sample (tests/fixtures/reference/ssm-opsitem-update.json: Systems
//! Manager user guide, "Amazon EventBridge event examples for Systems Manager", OpsCenter OpsItem
//! update notification), with the OpsItem id and account of the test's OpsItem.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use tarem_e2e::*;
use tarem_shared::episode::{Episode, Stage};
use tarem_shared::handlers::{Approved, OpsItemUpdated};
use tarem_shared::local::LocalLoop;
use tarem_shared::memory::InMemoryOpsCenter;
use tarem_shared::ports::{DATA_APPROVAL, DATA_APPROVE, OpsCenter, OpsData, OpsItemUpdate};

const JOHN: &str = "arn:aws:iam::123456789012:user/JohnDoe";

fn aws_sample() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/reference/ssm-opsitem-update.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// OpsCenter's event for a change to `ops_item` in `account`.
fn update_event(account: &str, ops_item: &str) -> Value {
    let mut event = aws_sample();
    event["account"] = json!(account);
    event["detail"]["ops-item-id"] = json!(ops_item);
    event["resources"] = json!([format!(
        "arn:aws:ssm:us-east-1:{account}:opsitem/{ops_item}"
    )]);
    event
}

/// The walkthrough's security-group mapping in approval mode (`automationStatus: false`).
fn approval_mapping() -> Value {
    let mut mapping = sg_mapping();
    mapping["automationStatus"] = json!({ "BOOL": false });
    mapping
}

fn approval_loop() -> (LocalLoop, std::sync::Arc<tarem_shared::clock::ManualClock>) {
    let (local, clock) = local_loop();
    local.mappings.put(&approval_mapping()).unwrap();
    (local, clock)
}

fn episode(local: &LocalLoop) -> Episode {
    local
        .executions
        .episodes()
        .into_iter()
        .next()
        .expect("an episode")
}

/// What a person does in the console: the OpsItem's operational data `tarem:approve` = `yes`.
async fn ask(ops_center: &InMemoryOpsCenter, ops_item: &str, value: &str) {
    ops_center
        .update(
            ops_item,
            &OpsItemUpdate {
                operational_data: BTreeMap::from([(
                    DATA_APPROVE.to_owned(),
                    OpsData {
                        value: value.into(),
                        searchable: false,
                    },
                )]),
                ..OpsItemUpdate::default()
            },
        )
        .await
        .unwrap();
}

/// The person's change, and OpsCenter's event for it, handled.
async fn approve_in_opscenter(
    local: &LocalLoop,
    ops_center: &InMemoryOpsCenter,
    account: &str,
    ops_item: &str,
) -> Value {
    ask(ops_center, ops_item, "yes").await;
    local
        .results
        .invoke(&update_event(account, ops_item), None)
        .await
        .unwrap()
}

fn answer_on(ops_center: &InMemoryOpsCenter, ops_item: &str) -> Value {
    let item = ops_center.get(ops_item).unwrap();
    assert!(
        !item.operational_data.contains_key(DATA_APPROVE),
        "the request is removed once answered"
    );
    serde_json::from_str(&item.operational_data[DATA_APPROVAL].value).unwrap()
}

async fn flagged_and_held(local: &LocalLoop) -> String {
    deliver(local, &ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0))).await;
    assert!(
        local.automation.executions().is_empty(),
        "approval mode starts nothing"
    );
    let held = episode(local);
    assert!(
        matches!(&held.stage, Stage::Held { control, .. } if control == "approval"),
        "{held:?}"
    );
    held.ops_item_id.clone().expect("an approval OpsItem")
}

#[test]
fn the_aws_sample_reads_as_who_changed_which_opsitem_when() {
    let update = OpsItemUpdated::from_event(&aws_sample()).unwrap();
    assert_eq!(update.ops_item_id, "oi-123456abcdef");
    assert_eq!(update.by, JOHN);
    assert_eq!(update.at, "2024-10-19T02:46:54.337354Z");
    assert_eq!(update.account.as_deref(), Some("123456789012"));
    let mut other = aws_sample();
    other["detail-type"] = json!("OpsItem Create");
    assert_eq!(OpsItemUpdated::from_event(&other), None);
}

#[tokio::test]
async fn approved_once_in_opscenter_the_runbook_starts_once_and_says_who_and_when() {
    let (local, _) = approval_loop();
    let ops_item = flagged_and_held(&local).await;
    let reply = approve_in_opscenter(&local, &local.ops_center, "123456789012", &ops_item).await;
    assert_eq!(reply["outcome"], "approved", "{reply}");
    assert_eq!(reply["started"], true, "{reply}");
    let runs = local.automation.executions();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].parameters["GroupId"], ["sg-1"]);
    let approved = episode(&local);
    assert_eq!(approved.stage, Stage::Remediating);
    let approval = approved.approval.clone().unwrap();
    assert_eq!(approval.by, JOHN);
    assert_eq!(approval.at, "2024-10-19T02:46:54.337354Z");
    assert_eq!(approval.attempt, 0);
    let answer = answer_on(&local.ops_center, &ops_item);
    assert_eq!(answer["approved"], true);
    assert_eq!(answer["by"], JOHN);

    // tarem's own answer is an OpsItem update too: its event finds nothing asked.
    let updates = local.ops_center.get(&ops_item).unwrap().updates.len();
    let echo = local
        .results
        .invoke(&update_event("123456789012", &ops_item), None)
        .await
        .unwrap();
    assert_eq!(echo["outcome"], "ignored", "{echo}");
    assert_eq!(
        local.ops_center.get(&ops_item).unwrap().updates.len(),
        updates,
        "no write"
    );
    assert_eq!(local.automation.executions().len(), 1);
}

#[tokio::test]
async fn approved_twice_it_starts_once_and_the_second_says_why() {
    let (local, _) = approval_loop();
    let ops_item = flagged_and_held(&local).await;
    approve_in_opscenter(&local, &local.ops_center, "123456789012", &ops_item).await;
    let again = approve_in_opscenter(&local, &local.ops_center, "123456789012", &ops_item).await;
    assert_eq!(again["outcome"], "already", "{again}");
    let why = again["why"].as_str().unwrap();
    assert!(why.contains("attempt 1 already started"), "{why}");
    assert!(
        why.contains("approved by arn:aws:iam::123456789012:user/JohnDoe"),
        "{why}"
    );
    assert_eq!(local.automation.executions().len(), 1);
    assert_eq!(
        answer_on(&local.ops_center, &ops_item)["approved"],
        true,
        "the approval that started it stays said"
    );
}

#[tokio::test]
async fn two_handlers_answering_the_same_approval_at_once_start_once() {
    let (local, _) = approval_loop();
    let ops_item = flagged_and_held(&local).await;
    ask(&local.ops_center, &ops_item, "yes").await;
    let event = update_event("123456789012", &ops_item);
    let (first, second) = tokio::join!(
        local.results.invoke(&event, None),
        local.results.invoke(&event, None)
    );
    let outcomes = [first.unwrap(), second.unwrap()];
    assert_eq!(local.automation.executions().len(), 1, "{outcomes:?}");
    assert!(
        outcomes.iter().any(|o| o["outcome"] == "approved"),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn an_approval_after_the_green_is_refused_with_the_reason_on_the_opsitem() {
    let (local, _) = approval_loop();
    let ops_item = flagged_and_held(&local).await;
    deliver(
        &local,
        &ta_event(SG_CHECK, &sg_arn("sg-1"), "Green", at(600)),
    )
    .await;
    assert!(matches!(episode(&local).stage, Stage::Fixed { .. }));
    let reply = approve_in_opscenter(&local, &local.ops_center, "123456789012", &ops_item).await;
    assert_eq!(reply["outcome"], "refused");
    assert!(reply["why"].as_str().unwrap().contains("fixed"), "{reply}");
    let answer = answer_on(&local.ops_center, &ops_item);
    assert_eq!(answer["approved"], false);
    assert!(answer["detail"].as_str().unwrap().contains("Green"));
    assert!(local.automation.executions().is_empty());
}

#[tokio::test]
async fn an_approval_after_escalation_is_refused_and_starts_nothing() {
    let mut stack = test_stack();
    stack.safety.max_attempts = 1;
    let (local, _) = local_loop_configured(Default::default(), stack);
    local.mappings.put(&approval_mapping()).unwrap();
    let ops_item = flagged_and_held(&local).await;
    approve_in_opscenter(&local, &local.ops_center, "123456789012", &ops_item).await;
    finish_all(&local, "Failed").await;
    assert!(
        matches!(episode(&local).stage, Stage::Escalated { .. }),
        "{:?}",
        episode(&local).stage
    );
    let reply = approve_in_opscenter(&local, &local.ops_center, "123456789012", &ops_item).await;
    assert_eq!(reply["outcome"], "refused");
    assert!(
        reply["why"].as_str().unwrap().contains("escalated"),
        "{reply}"
    );
    assert_eq!(local.automation.executions().len(), 1);
}

#[tokio::test]
async fn an_approval_with_the_kill_switch_off_waits_for_it_and_then_starts_once() {
    let (local, clock) = approval_loop();
    let ops_item = flagged_and_held(&local).await;
    local.kill_switch.set_off(true);
    let reply = approve_in_opscenter(&local, &local.ops_center, "123456789012", &ops_item).await;
    assert_eq!(reply["outcome"], "approved");
    assert_eq!(reply["started"], false, "{reply}");
    assert!(local.automation.executions().is_empty());
    let held = episode(&local);
    assert!(
        matches!(&held.stage, Stage::Held { control, .. } if control == "kill-switch"),
        "{held:?}"
    );
    assert!(
        answer_on(&local.ops_center, &ops_item)["detail"]
            .as_str()
            .unwrap()
            .contains("under every control")
    );
    // Asked again while it waits: the same approval, nothing new.
    let again = approve_in_opscenter(&local, &local.ops_center, "123456789012", &ops_item).await;
    assert_eq!(again["outcome"], "already", "{again}");
    // The switch back on: the sweep starts it, once.
    local.kill_switch.set_off(false);
    clock.advance(chrono::Duration::minutes(16));
    local.sweep_episodes().await.unwrap();
    local.sweep_episodes().await.unwrap();
    assert_eq!(local.automation.executions().len(), 1);
    assert_eq!(episode(&local).approval.unwrap().by, JOHN);
}

#[tokio::test]
async fn a_value_other_than_yes_and_an_opsitem_of_another_tool_are_answered_not_acted_on() {
    let (local, _) = approval_loop();
    let ops_item = flagged_and_held(&local).await;
    ask(&local.ops_center, &ops_item, "maybe").await;
    let reply = local
        .results
        .invoke(&update_event("123456789012", &ops_item), None)
        .await
        .unwrap();
    assert_eq!(reply["outcome"], "refused");
    assert!(reply["why"].as_str().unwrap().contains("set it to yes"));
    assert!(local.automation.executions().is_empty());
    // An OpsItem tarem does not know: nothing asked of tarem, nothing written there.
    let reply = local
        .results
        .invoke(&update_event("123456789012", "oi-not-tarems"), None)
        .await
        .unwrap();
    assert_eq!(reply["outcome"], "ignored");
}

#[tokio::test]
async fn in_an_organisation_the_approval_comes_from_the_member_accounts_opsitem() {
    const MEMBER: &str = "111122223333";
    let (mut local, _) = local_loop();
    local.govern(&[MEMBER]);
    let mut mapping = walkthrough_mapping(
        SG_CHECK,
        SG_DOCUMENT,
        r#"{"GroupId": ["$resourceId"], "AutomationAssumeRole": ["arn:aws:iam::$accountId:role/tarem/tarem-automation-default"]}"#,
        r"(sg-\w+)",
        false,
    );
    mapping["mode"] = json!({ "S": "approval" });
    local.mappings.put(&mapping).unwrap();
    let arn = format!("arn:aws:ec2:ap-southeast-2:{MEMBER}:security-group/sg-1");
    let mut event = ta_event(SG_CHECK, &arn, "Red", at(0));
    event["account"] = json!(MEMBER);
    deliver(&local, &event).await;
    let member = local.members.member(MEMBER).unwrap();
    let ops_item = member.ops_center.items()[0].id.clone();
    let reply = approve_in_opscenter(&local, &member.ops_center, MEMBER, &ops_item).await;
    assert_eq!(reply["outcome"], "approved", "{reply}");
    assert_eq!(
        member.automation.executions().len(),
        1,
        "started in the member"
    );
    assert!(local.automation.executions().is_empty(), "not in the hub");
    assert_eq!(answer_on(&member.ops_center, &ops_item)["approved"], true);
}

#[tokio::test]
async fn approved_is_the_approvals_outcome_by_name() {
    // The reply's shape is what `tarem approve` and the logs read.
    let value = serde_json::to_value(Approved::Already {
        why: "already approved".into(),
    })
    .unwrap();
    assert_eq!(
        value,
        json!({"outcome": "already", "why": "already approved"})
    );
}

/// The answer could not be written (OpsCenter throttled): nothing has started yet, the event is
/// retried, and the retry answers and starts once. The runbook then fails and the next attempt
/// waits for a new approval: the first one's event, redelivered hours later, approves nothing.
#[tokio::test]
async fn an_answer_that_failed_starts_nothing_until_it_is_written_and_never_approves_the_next_attempt()
 {
    let (local, clock) = approval_loop();
    let ops_item = flagged_and_held(&local).await;
    ask(&local.ops_center, &ops_item, "yes").await;
    let event = update_event("123456789012", &ops_item);
    local.faults.fail(
        "ops_center.update",
        1,
        tarem_shared::error::PortError::new(
            "UpdateOpsItem",
            tarem_shared::error::ErrorKind::Throttled,
            "Rate exceeded",
        ),
    );
    assert!(
        local.results.invoke(&event, None).await.is_err(),
        "retried by EventBridge"
    );
    assert!(
        local.automation.executions().is_empty(),
        "nothing started before the answer"
    );
    let retried = local.results.invoke(&event, None).await.unwrap();
    assert_eq!(retried["outcome"], "already", "{retried}");
    assert_eq!(local.automation.executions().len(), 1);
    // The runbook fails: the next attempt is held for a new approval.
    finish_all(&local, "Failed").await;
    clock.advance(chrono::Duration::hours(3));
    local.sweep_episodes().await.unwrap();
    let held = episode(&local);
    assert!(
        matches!(&held.stage, Stage::Held { control, .. } if control == "approval"),
        "{held:?}"
    );
    let replayed = local.results.invoke(&event, None).await.unwrap();
    assert_eq!(replayed["outcome"], "ignored", "{replayed}");
    local.sweep_episodes().await.unwrap();
    assert_eq!(
        local.automation.executions().len(),
        1,
        "no second start unasked"
    );
    // A new approval starts the second attempt.
    let second = approve_in_opscenter(&local, &local.ops_center, "123456789012", &ops_item).await;
    assert_eq!(second["outcome"], "approved", "{second}");
    assert_eq!(local.automation.executions().len(), 2);
    assert_eq!(episode(&local).approval.unwrap().attempt, 1);
}

#[tokio::test]
async fn an_approval_from_another_accounts_opsitem_naming_this_finding_is_refused() {
    let (local, _) = approval_loop();
    let ops_item = flagged_and_held(&local).await;
    ask(&local.ops_center, &ops_item, "yes").await;
    // The same OpsItem id, said by an event of another account (a member copying the key).
    let reply = local
        .results
        .invoke(&update_event("444455556666", &ops_item), None)
        .await
        .unwrap();
    assert!(
        reply["outcome"] == "refused" || reply["outcome"] == "ignored",
        "{reply}"
    );
    assert!(local.automation.executions().is_empty());
}

/// SSM throttles the approved start past its tries: the claim stays, and the sweep resumes it as
/// the approved start it is (not withdrawn as "the mapping asks for approval").
#[tokio::test]
async fn an_approved_start_that_ssm_throttled_is_resumed_not_withdrawn() {
    let (local, clock) = approval_loop();
    let ops_item = flagged_and_held(&local).await;
    local.faults.fail(
        "automation.start",
        20,
        tarem_shared::error::PortError::new(
            "StartAutomationExecution",
            tarem_shared::error::ErrorKind::Throttled,
            "Rate exceeded",
        ),
    );
    let _ = approve_in_opscenter(&local, &local.ops_center, "123456789012", &ops_item).await;
    assert!(local.automation.executions().is_empty(), "throttled");
    // The throttling passes (the planned failures left are used up).
    for _ in local.faults.calls("automation.start")..20 {
        let _ = local.faults.check("automation.start");
    }
    clock.advance(chrono::Duration::minutes(10));
    local.sweep_episodes().await.unwrap();
    assert_eq!(
        local.automation.executions().len(),
        1,
        "{:?}",
        episode(&local).stage
    );
    assert_eq!(episode(&local).approval.unwrap().attempt, 0);
}
