//! One hub governing three member accounts (issue "Organisation scale"), on the in-memory
//! organisation: each member has its own Automation, OpsCenter and tags, and the faults an
//! organisation has (a member role missing, an account gone, an owner's pause, a template too
//! old, an SCP's deny, STS throttling). Each test is the order in which its case would happen.
//!
//! Account ids are the examples AWS's documentation uses (111122223333, 444455556666,
//! 777788889999); events are the Trusted Advisor refresh shape of `tests/support` with the
//! member's `account`, as a member's forwarding rule delivers it to the hub bus unchanged
//! (EventBridge keeps `account` across buses: ORGANISATION.md §2, "verify live").
//!
//! Long on purpose: the catalogue of an organisation's failure modes, one order each, read
//! together against the same three-account set-up.

use chrono::Duration;
use serde_json::{Value, json};
use tarem_e2e::*;
use tarem_shared::clock::ManualClock;
use tarem_shared::episode::{Episode, Stage};
use tarem_shared::error::{ErrorKind, PortError};
use tarem_shared::handlers::{RecordOutcome, Tracked};
use tarem_shared::lifecycle::LifecycleConfig;
use tarem_shared::local::LocalLoop;
use tarem_shared::memory::{InMemoryAutomation, MemberRole};
use tarem_shared::ports::OpsItemStatus;

const A: &str = "111122223333";
const B: &str = "444455556666";
const C: &str = "777788889999";
/// The member-local automation role (member/global.yaml), named in the mapping with the
/// finding's account: each member's own, without allowlisting every account's.
const MEMBER_ROLE: &str = "arn:aws:iam::$accountId:role/tarem/tarem-automation-default";

fn member_arn(account: &str, group: &str) -> String {
    format!("arn:aws:ec2:ap-southeast-2:{account}:security-group/{group}")
}

/// A Red/Green refresh of a security group in `account`, as its forwarding rule delivers it.
fn member_event(account: &str, group: &str, status: &str, seconds: i64) -> Value {
    let mut event = ta_event(SG_CHECK, &member_arn(account, group), status, at(seconds));
    event["account"] = json!(account);
    event
}

/// The walkthrough's security-group mapping, passing `role` as its AutomationAssumeRole.
fn sg_mapping_passing(role: &str) -> Value {
    walkthrough_mapping(
        SG_CHECK,
        SG_DOCUMENT,
        &format!(r#"{{"GroupId": ["$resourceId"], "AutomationAssumeRole": ["{role}"]}}"#),
        r"(sg-\w+)",
        true,
    )
}

/// The tests' stack: its allowlist names only the hub's own role.
fn org_stack() -> LifecycleConfig {
    test_stack()
}

/// A hub governing A, B and C, with the walkthrough's security-group mapping passing each
/// account's own automation role.
fn organisation_with(stack: LifecycleConfig) -> (LocalLoop, std::sync::Arc<ManualClock>) {
    let (mut local, clock) = local_loop_configured(InMemoryAutomation::default(), stack);
    local.govern(&[A, B, C]);
    local
        .mappings
        .put(&sg_mapping_passing(MEMBER_ROLE))
        .unwrap();
    (local, clock)
}

fn organisation() -> (LocalLoop, std::sync::Arc<ManualClock>) {
    organisation_with(org_stack())
}

fn episode_of(local: &LocalLoop, account: &str, group: &str) -> Episode {
    let arn = member_arn(account, group);
    local
        .executions
        .episodes()
        .into_iter()
        .find(|e| e.resource == arn)
        .unwrap_or_else(|| panic!("no episode for {arn}"))
}

fn held_by(episode: &Episode) -> Option<(&str, &str)> {
    match &episode.stage {
        Stage::Held {
            control, reason, ..
        } => Some((control.as_str(), reason.as_str())),
        _ => None,
    }
}

#[tokio::test]
async fn each_account_is_remediated_in_itself_with_its_own_role_and_its_own_opsitem() {
    let (local, _) = organisation();
    for account in [A, B, C] {
        deliver(&local, &member_event(account, "sg-1", "Red", 0)).await;
    }
    assert!(
        local.automation.executions().is_empty(),
        "nothing runs in the hub"
    );
    assert!(local.ops_center.items().is_empty(), "no OpsItem in the hub");
    for account in [A, B, C] {
        let member = local.members.member(account).unwrap();
        let runs = member.automation.executions();
        assert_eq!(runs.len(), 1, "one start in {account}");
        assert_eq!(runs[0].parameters["GroupId"], ["sg-1"]);
        assert_eq!(
            runs[0].parameters["AutomationAssumeRole"],
            [format!(
                "arn:aws:iam::{account}:role/tarem/tarem-automation-default"
            )],
            "the role of the finding's own account"
        );
        assert_eq!(
            member.ops_center.items().len(),
            1,
            "its OpsItem in {account}"
        );
    }
    finish_all(&local, "Success").await;
    for account in [A, B, C] {
        let verifying = episode_of(&local, account, "sg-1").stage;
        assert!(
            matches!(verifying, Stage::Verifying { .. }),
            "{account}: {verifying:?}"
        );
        deliver(&local, &member_event(account, "sg-1", "Green", 3000)).await;
        let member = local.members.member(account).unwrap();
        assert_eq!(member.ops_center.items()[0].status, OpsItemStatus::Resolved);
        assert!(matches!(
            episode_of(&local, account, "sg-1").stage,
            Stage::Fixed { .. }
        ));
    }
}

#[tokio::test]
async fn a_member_role_never_passes_for_another_account_nor_in_the_hub() {
    let (local, _) = organisation();
    // A mapping that hard-codes A's role: B's finding must not run with it.
    local
        .mappings
        .put(&sg_mapping_passing(&format!(
            "arn:aws:iam::{A}:role/tarem/tarem-automation-default"
        )))
        .unwrap();
    deliver(&local, &member_event(A, "sg-1", "Red", 0)).await;
    deliver(&local, &member_event(B, "sg-1", "Red", 0)).await;
    assert_eq!(
        local
            .members
            .member(A)
            .unwrap()
            .automation
            .executions()
            .len(),
        1
    );
    assert!(
        local
            .members
            .member(B)
            .unwrap()
            .automation
            .executions()
            .is_empty()
    );
    let b = episode_of(&local, B, "sg-1");
    assert!(
        matches!(&b.stage, Stage::Flagged { reason } if reason.contains("not one of the stack's automation roles")),
        "{:?}",
        b.stage
    );
    // The hub's own finding does not get the member-local role either: its allowlist decides.
    let mut own = ta_event(SG_CHECK, &sg_arn("sg-9"), "Red", at(0));
    own["account"] = json!("123456789012");
    local
        .mappings
        .put(&sg_mapping_passing(MEMBER_ROLE))
        .unwrap();
    deliver(&local, &own).await;
    assert!(local.automation.executions().is_empty());
    // And a member's own role under another path is not one of them.
    local
        .mappings
        .put(&sg_mapping_passing("arn:aws:iam::$accountId:role/Admin"))
        .unwrap();
    deliver(&local, &member_event(C, "sg-1", "Red", 0)).await;
    assert!(
        local
            .members
            .member(C)
            .unwrap()
            .automation
            .executions()
            .is_empty()
    );
}

#[tokio::test]
async fn a_member_role_missing_holds_only_that_accounts_episodes_until_it_is_deployed() {
    let (local, clock) = organisation();
    let b = local.members.member(B).unwrap();
    b.update(|account| account.role = MemberRole::Missing);
    for account in [A, B, C] {
        deliver(&local, &member_event(account, "sg-1", "Red", 0)).await;
    }
    assert_eq!(
        local
            .members
            .member(A)
            .unwrap()
            .automation
            .executions()
            .len(),
        1
    );
    assert_eq!(
        local
            .members
            .member(C)
            .unwrap()
            .automation
            .executions()
            .len(),
        1
    );
    assert!(b.automation.executions().is_empty());
    assert!(
        b.ops_center.items().is_empty(),
        "nothing written where the hub cannot go"
    );
    let held = episode_of(&local, B, "sg-1");
    let (control, reason) = held_by(&held).expect("held");
    assert_eq!(control, "member-account");
    assert!(
        reason.contains(B) && reason.contains("AccessDenied"),
        "{reason}"
    );
    assert!(held.ops_item_owed, "its OpsItem is owed, not lost");

    // A sweep inside the hour leaves it; the StackSet instance is repaired; the next look
    // starts it and opens its OpsItem in B.
    clock.advance(Duration::minutes(15));
    local.sweep_episodes().await.unwrap();
    assert!(b.automation.executions().is_empty());
    b.update(|account| account.role = MemberRole::Deployed);
    clock.advance(Duration::minutes(50));
    local.sweep_episodes().await.unwrap();
    assert_eq!(
        b.automation.executions().len(),
        1,
        "started once the role is there"
    );
    assert_eq!(b.ops_center.items().len(), 1);
    assert_eq!(episode_of(&local, B, "sg-1").stage, Stage::Remediating);
}

#[tokio::test]
async fn an_account_leaving_the_organisation_ends_its_episodes_and_only_its_own() {
    let (local, clock) = organisation();
    // A's owner paused tarem, so one of A's episodes waits (held) while another runs.
    let a = local.members.member(A).unwrap();
    deliver(&local, &member_event(A, "sg-1", "Red", 0)).await;
    a.update(|account| account.paused = "on".into());
    deliver(&local, &member_event(A, "sg-2", "Red", 0)).await;
    deliver(&local, &member_event(B, "sg-1", "Red", 0)).await;
    assert_eq!(episode_of(&local, A, "sg-1").stage, Stage::Remediating);
    assert_eq!(held_by(&episode_of(&local, A, "sg-2")).unwrap().0, "member");

    // A leaves the organisation (or is suspended): its next refresh, and the sweep, end its
    // episodes as gone; B's runs on.
    a.update(|account| account.active = false);
    deliver(&local, &member_event(A, "sg-1", "Red", 600)).await;
    clock.advance(Duration::minutes(15));
    local.sweep_episodes().await.unwrap();
    for group in ["sg-1", "sg-2"] {
        let gone = episode_of(&local, A, group);
        assert!(
            matches!(&gone.stage, Stage::Gone { reason } if reason.contains("left the organisation")),
            "{group}: {:?}",
            gone.stage
        );
        assert!(gone.expires_at > 0, "kept for the retention, then expired");
    }
    assert_eq!(episode_of(&local, B, "sg-1").stage, Stage::Remediating);
    assert_eq!(
        a.automation.executions().len(),
        1,
        "nothing new started in A"
    );

    // A Red from the gone account opens nothing.
    deliver(&local, &member_event(A, "sg-3", "Red", 900)).await;
    assert!(
        local
            .executions
            .episodes()
            .iter()
            .all(|e| e.resource != member_arn(A, "sg-3") || !e.stage.is_open())
    );
}

#[tokio::test]
async fn a_member_owners_pause_holds_starts_there_and_lifting_it_lets_them_go() {
    let (local, clock) = organisation();
    let a = local.members.member(A).unwrap();
    a.update(|account| account.paused = "on".into());
    deliver(&local, &member_event(A, "sg-1", "Red", 0)).await;
    deliver(&local, &member_event(B, "sg-1", "Red", 0)).await;
    let (control, reason) = held_by(&episode_of(&local, A, "sg-1"))
        .map(|(c, r)| (c.to_owned(), r.to_owned()))
        .unwrap();
    assert_eq!(control, "member");
    assert!(reason.contains("/tarem/member/paused"), "{reason}");
    assert_eq!(a.ops_center.items().len(), 1, "the OpsItem says why, in A");
    assert!(a.automation.executions().is_empty());
    assert_eq!(
        local
            .members
            .member(B)
            .unwrap()
            .automation
            .executions()
            .len(),
        1
    );

    a.update(|account| account.paused = "off".into());
    clock.advance(Duration::minutes(15));
    local.sweep_episodes().await.unwrap();
    assert_eq!(
        a.automation.executions().len(),
        1,
        "started at the next sweep"
    );
}

#[tokio::test]
async fn a_member_template_too_old_is_refused_before_the_start() {
    let (local, clock) = organisation();
    let c = local.members.member(C).unwrap();
    c.update(|account| account.version = Some("0".into()));
    deliver(&local, &member_event(C, "sg-1", "Red", 0)).await;
    let episode = episode_of(&local, C, "sg-1");
    let (control, reason) = held_by(&episode).unwrap();
    assert_eq!(control, "member");
    assert!(reason.contains("refused before the start"), "{reason}");
    assert!(c.automation.executions().is_empty());
    // A template from before versions (no parameter) is as old.
    c.update(|account| account.version = None);
    clock.advance(Duration::minutes(15));
    local.sweep_episodes().await.unwrap();
    assert!(c.automation.executions().is_empty());
    c.update(|account| account.version = Some("1".into()));
    clock.advance(Duration::minutes(15));
    local.sweep_episodes().await.unwrap();
    assert_eq!(c.automation.executions().len(), 1);
}

#[tokio::test]
async fn an_scp_deny_fails_for_good_in_that_account_and_trips_no_other_accounts_breaker() {
    let mut stack = org_stack();
    stack.safety.breaker_limit = 1;
    let (local, _) = organisation_with(stack);
    let b = local.members.member(B).unwrap();
    // Organizations' explicit deny, as SSM reports it after a successful AssumeRole.
    b.automation.fail_next_starts([PortError::new(
        "StartAutomationExecution",
        ErrorKind::AccessDenied,
        format!("AccessDeniedException: User: arn:aws:sts::{B}:assumed-role/tarem-member/tarem-hub is not authorized to perform: ssm:StartAutomationExecution with an explicit deny in a service control policy"),
    )]);
    let mut pipeline = Pipeline::new(&local);
    pipeline
        .deliver_event(&member_event(B, "sg-1", "Red", 0))
        .await;
    let denied = episode_of(&local, B, "sg-1");
    assert!(
        matches!(&denied.stage, Stage::Escalated { reason } if reason.contains("refused")),
        "{:?}",
        denied.stage
    );
    let item = &b.ops_center.items()[0];
    assert!(
        item.updates.iter().any(|u| u
            .description
            .as_deref()
            .is_some_and(|d| d.contains("service control policy"))),
        "the reason is on B's OpsItem"
    );
    // A's first start of the same check is its own breaker's, untouched by B's refusal.
    deliver(&local, &member_event(A, "sg-1", "Red", 0)).await;
    assert_eq!(
        local
            .members
            .member(A)
            .unwrap()
            .automation
            .executions()
            .len(),
        1
    );
    // A's breaker (limit 1) holds A's second; C's first still starts.
    deliver(&local, &member_event(A, "sg-2", "Red", 0)).await;
    deliver(&local, &member_event(C, "sg-1", "Red", 0)).await;
    assert_eq!(
        held_by(&episode_of(&local, A, "sg-2")).unwrap().0,
        "circuit-breaker"
    );
    assert_eq!(
        local
            .members
            .member(C)
            .unwrap()
            .automation
            .executions()
            .len(),
        1
    );
}

#[tokio::test]
async fn the_opsitem_budget_is_each_accounts_own() {
    let mut stack = org_stack();
    stack.safety.monthly_ops_item_budget = 1;
    let (local, _) = organisation_with(stack);
    // Unmapped findings: OpsItems only, within the month's budget.
    for (account, instance) in [(A, "i-1"), (A, "i-2"), (B, "i-1")] {
        let mut event = ta_event(
            EC2_CHECK,
            &format!("arn:aws:ec2:eu-west-1:{account}:instance/{instance}"),
            "Red",
            at(0),
        );
        event["account"] = json!(account);
        deliver(&local, &event).await;
    }
    assert_eq!(
        local.members.member(A).unwrap().ops_center.items().len(),
        1,
        "A's budget spent"
    );
    assert_eq!(
        local.members.member(B).unwrap().ops_center.items().len(),
        1,
        "B's budget is its own"
    );
}

#[tokio::test]
async fn sts_throttled_is_retried_and_an_ungoverned_account_is_refused() {
    let (local, _) = organisation();
    local.faults.fail(
        "members.assume_role",
        1,
        PortError::new("AssumeRole", ErrorKind::Throttled, "Rate exceeded"),
    );
    local
        .track(&member_event(A, "sg-1", "Red", 0))
        .await
        .unwrap();
    let batch = local.pending_stream_batch();
    let first = local.results.handle_batch(&batch, None).await;
    assert!(matches!(first.records[0].outcome, RecordOutcome::Retry(_)));
    let again = local.results.handle_batch(&batch, None).await;
    assert_eq!(again.records[0].outcome, RecordOutcome::Done);
    assert_eq!(
        local
            .members
            .member(A)
            .unwrap()
            .automation
            .executions()
            .len(),
        1
    );

    let stranger = member_event("999988887777", "sg-1", "Red", 0);
    assert!(matches!(
        local.track(&stranger).await.unwrap(),
        Tracked::Rejected(_)
    ));
    assert!(local.members.member("999988887777").is_none());
}

#[tokio::test]
async fn the_execution_poll_skips_an_account_gone_or_out_of_reach_without_parking_it_each_time() {
    let (local, clock) = organisation();
    deliver(&local, &member_event(A, "sg-1", "Red", 0)).await;
    deliver(&local, &member_event(B, "sg-1", "Red", 0)).await;
    let a = local.members.member(A).unwrap();
    let b = local.members.member(B).unwrap();
    a.update(|account| account.active = false);
    b.update(|account| account.role = MemberRole::Missing);
    let parked_before = local.parked.messages().len();
    clock.advance(Duration::hours(1));
    for _ in 0..3 {
        local.sweep_executions(Duration::minutes(30)).await.unwrap();
        clock.advance(Duration::minutes(30));
    }
    assert_eq!(
        local.parked.messages().len(),
        parked_before,
        "nothing parked"
    );
    // B's role is back: the poll reads its runbook's end and the episode moves on.
    b.update(|account| account.role = MemberRole::Deployed);
    for execution in b.automation.running() {
        b.automation
            .complete(&execution.execution_id, "Success", None);
    }
    local.sweep_executions(Duration::minutes(30)).await.unwrap();
    assert!(matches!(
        episode_of(&local, B, "sg-1").stage,
        Stage::Verifying { .. }
    ));
}

/// The hub's own refresh reaches it twice when the hub also runs the member stacks: on its
/// default bus and, forwarded, on the hub bus (ASR #243's duplicate findings). One episode, one
/// start, one OpsItem.
#[tokio::test]
async fn the_hubs_own_refresh_heard_on_both_buses_starts_once() {
    let (local, _) = organisation();
    // The hub's own findings pass the hub's allowlisted role (the walkthrough's).
    local.mappings.put(&sg_mapping()).unwrap();
    let mut own = ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0));
    own["account"] = json!("123456789012");
    let mut pipeline = Pipeline::new(&local);
    pipeline.deliver_event(&own).await;
    pipeline.deliver_event(&own).await;
    assert_eq!(local.automation.executions().len(), 1);
    assert_eq!(local.ops_center.items().len(), 1);
    assert!(pipeline.parked.is_empty(), "{:?}", pipeline.parked);
}

#[tokio::test]
async fn a_mapping_scoped_to_some_accounts_tracks_only_in_the_others() {
    let (local, _) = organisation();
    // As a hand-written `aws dynamodb put-item` gives it: one string of ids.
    let mut scoped = sg_mapping_passing(MEMBER_ROLE);
    scoped["accounts"] = json!({ "S": format!("{A}, {B}") });
    local.mappings.put(&scoped).unwrap();
    for account in [A, B, C] {
        deliver(&local, &member_event(account, "sg-1", "Red", 0)).await;
    }
    for account in [A, B] {
        let member = local.members.member(account).unwrap();
        assert_eq!(
            member.automation.executions().len(),
            1,
            "{account} in scope"
        );
    }
    let c = local.members.member(C).unwrap();
    assert!(
        c.automation.executions().is_empty(),
        "C is outside the scope"
    );
    assert!(c.ops_center.items().is_empty(), "tracked only: no OpsItem");
    let episode = episode_of(&local, C, "sg-1");
    match &episode.stage {
        Stage::Flagged { reason } => {
            assert!(reason.contains("scoped to"), "{reason}");
            assert!(reason.contains(C), "{reason}");
        }
        other => panic!("C's episode: {other:?}"),
    }
    // The hub's own finding is outside a scope that does not list the hub.
    local
        .mappings
        .put(&{
            let mut hub_scoped = sg_mapping();
            hub_scoped["accounts"] = json!({ "L": [{ "S": A }] });
            hub_scoped
        })
        .unwrap();
    let mut own = ta_event(SG_CHECK, &sg_arn("sg-7"), "Red", at(0));
    own["account"] = json!("123456789012");
    deliver(&local, &own).await;
    assert!(local.automation.executions().is_empty());
}

#[tokio::test]
async fn a_mapping_scoped_to_an_ou_acts_in_the_accounts_under_it_at_any_depth() {
    let (local, _) = organisation();
    // A sits in a nested OU of the workloads OU; B in the sandbox OU; C directly under the root.
    let units = |account: &str, path: &[&str]| {
        local
            .members
            .member(account)
            .unwrap()
            .update(|m| m.units = path.iter().map(|u| (*u).to_owned()).collect());
    };
    units(A, &["ou-ab12-prod0001", "ou-ab12-workload", "r-ab12"]);
    units(B, &["ou-ab12-sandbox1", "r-ab12"]);
    units(C, &["r-ab12"]);
    let mut scoped = sg_mapping_passing(MEMBER_ROLE);
    scoped["accounts"] = json!({ "L": [{ "S": "ou-ab12-workload" }] });
    local.mappings.put(&scoped).unwrap();
    for account in [A, B, C] {
        deliver(&local, &member_event(account, "sg-1", "Red", 0)).await;
    }
    let started = |account: &str| {
        local
            .members
            .member(account)
            .unwrap()
            .automation
            .executions()
            .len()
    };
    assert_eq!(
        started(A),
        1,
        "A is under the workloads OU, two levels down"
    );
    assert_eq!((started(B), started(C)), (0, 0), "B and C are not");
    assert!(
        local.faults.calls("members.units") >= 3,
        "asked for each account's finding"
    );
    match &episode_of(&local, B, "sg-1").stage {
        Stage::Flagged { reason } => assert!(reason.contains("ou-ab12-workload"), "{reason}"),
        other => panic!("B's episode: {other:?}"),
    }
    // A scope naming accounts only never asks Organizations.
    let (local, _) = organisation();
    let mut scoped = sg_mapping_passing(MEMBER_ROLE);
    scoped["accounts"] = json!({ "L": [{ "S": B }] });
    local.mappings.put(&scoped).unwrap();
    deliver(&local, &member_event(B, "sg-2", "Red", 10)).await;
    assert_eq!(
        local
            .members
            .member(B)
            .unwrap()
            .automation
            .executions()
            .len(),
        1
    );
    assert_eq!(local.faults.calls("members.units"), 0);
}
