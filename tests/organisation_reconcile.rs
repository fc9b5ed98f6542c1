//! The findings sweep of a whole organisation (issue "Organisation scale": reconcile per
//! account, bounded fan-out, the account registry, "no events while reconcile finds flagged
//! items"), on the in-memory organisation. Each test is the order in which its case happens.
//!
//! Long on purpose: the catalogue of a whole organisation's sweep, one order per case, read
//! together against the same set-up.
//!
//! Account ids are the examples AWS's documentation uses; each member's Trusted Advisor holds
//! results in the Support API's shape (`tests/support`: `sg_check`, `flagged_resource`).

use chrono::Duration;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tarem_e2e::*;
use tarem_shared::error::{ErrorKind, PortError};
use tarem_shared::finding::format_time;
use tarem_shared::local::LocalLoop;
use tarem_shared::memory::MemberRole;
use tarem_shared::ports::{
    AccountRecord, AccountStanding, AdvisorAccess, CheckResult, MemberReach, Members,
};
use tarem_shared::reconcile::accounts::{ACCOUNTS_AT_ONCE, AccountSweep};

const HUB: &str = "123456789012";
const A: &str = "111122223333";
const B: &str = "444455556666";
const C: &str = "777788889999";

fn member_arn(account: &str, group: &str) -> String {
    format!("arn:aws:ec2:ap-southeast-2:{account}:security-group/{group}")
}

type Time = chrono::DateTime<chrono::Utc>;

/// `account`'s Trusted Advisor: the security-group check's result of `time`, flagging `groups`
/// (each last updated then).
fn advisor_flags(local: &LocalLoop, account: &str, time: Time, groups: &[&str]) {
    let items: Vec<(&str, Time)> = groups.iter().map(|group| (*group, time)).collect();
    advisor_result(local, account, time, &items);
}

/// `account`'s Trusted Advisor: the check's result of `time`, flagging each group with its own
/// `Last Updated Time`.
fn advisor_result(local: &LocalLoop, account: &str, time: Time, items: &[(&str, Time)]) {
    let result = CheckResult {
        timestamp: format_time(time),
        flagged: items
            .iter()
            .map(|(group, updated)| {
                flagged_resource(&member_arn(account, group), &format_time(*updated))
            })
            .collect(),
    };
    match local.members.member(account) {
        Some(member) => member.advisor.set_check(sg_check(), result),
        None => local.advisor.set_check(sg_check(), result),
    }
}

fn organisation() -> (LocalLoop, Arc<tarem_shared::clock::ManualClock>) {
    let (mut local, clock) = local_loop();
    local.govern(&[A, B, C]);
    (local, clock)
}

async fn sweep(local: &LocalLoop) -> Vec<AccountSweep> {
    local
        .accounts_sweep(false)
        .sweep()
        .await
        .expect("some account swept")
}

fn record_of<'a>(swept: &'a [AccountSweep], account: &str) -> &'a AccountRecord {
    &swept
        .iter()
        .find(|s| s.record.account == account)
        .unwrap_or_else(|| panic!("no sweep of {account}"))
        .record
}

fn tracked_accounts(local: &LocalLoop) -> Vec<String> {
    let mut accounts: Vec<String> = local
        .tracker
        .rows()
        .into_iter()
        .filter_map(|row| row.account_id)
        .collect();
    accounts.sort();
    accounts
}

#[tokio::test]
async fn each_governed_account_is_swept_through_its_own_trusted_advisor_and_recorded() {
    let (local, _) = organisation();
    for account in [A, B, C] {
        advisor_flags(&local, account, at(0), &["sg-1"]);
    }
    let swept = sweep(&local).await;
    assert_eq!(
        swept
            .iter()
            .map(|s| s.record.account.as_str())
            .collect::<Vec<_>>(),
        [HUB, A, B, C],
        "the hub's own account first, then each member"
    );
    assert_eq!(
        tracked_accounts(&local),
        [A, B, C],
        "each member's finding, in its account"
    );
    for account in [A, B, C] {
        let record = record_of(&swept, account);
        assert_eq!(record.standing, Some(AccountStanding::Ready));
        assert_eq!(record.advisor, Some(AdvisorAccess::Support));
        assert_eq!(record.flagged, 1);
        assert_eq!(
            record.regions,
            ["ap-southeast-2"],
            "where its flagged finding is"
        );
        assert_eq!(record.member_version.as_deref(), Some("1"));
        assert_eq!(
            record.missed_by_events, 0,
            "a first sweep finds what came before any event"
        );
        assert_eq!(
            local
                .registry
                .all()
                .iter()
                .filter(|r| r.account == account)
                .count(),
            1
        );
    }
    // The loop takes the swept findings on: each starts in its own account.
    deliver_stream(&local).await;
    for account in [A, B, C] {
        let member = local.members.member(account).unwrap();
        assert_eq!(
            member.automation.executions().len(),
            1,
            "one start in {account}"
        );
        assert_eq!(
            member.ops_center.items().len(),
            1,
            "its OpsItem in {account}"
        );
    }
    assert!(
        local.automation.executions().is_empty(),
        "nothing runs in the hub"
    );
    // A second sweep changes nothing and keeps each account's first sweep.
    let again = sweep(&local).await;
    for account in [A, B, C] {
        let report = again.iter().find(|s| s.record.account == account).unwrap();
        assert!(report.report.as_ref().unwrap().written.is_empty());
        assert_eq!(
            report.record.first_swept_at,
            record_of(&swept, account).first_swept_at
        );
    }
}

async fn deliver_stream(local: &LocalLoop) {
    let report = local.deliver_stream().await;
    assert!(report.batch_item_failures().is_empty(), "{report:?}");
}

/// Members whose every `reach` takes a few turns of the runtime, counting how many are in
/// flight at once.
struct Slow {
    inner: Arc<dyn Members>,
    in_flight: AtomicUsize,
    most: AtomicUsize,
}

#[async_trait::async_trait]
impl Members for Slow {
    async fn reach(&self, account: Option<&str>) -> Result<MemberReach, PortError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.inner.reach(account).await
    }
}

#[tokio::test]
async fn a_dozen_accounts_are_swept_a_few_at_a_time_never_all_at_once() {
    let (mut local, _) = local_loop();
    let members: Vec<String> = (1..=12)
        .map(|n| format!("{:012}", 100_000_000_000u64 + n))
        .collect();
    local.govern(&members.iter().map(String::as_str).collect::<Vec<_>>());
    for account in &members {
        advisor_flags(&local, account, at(0), &["sg-1"]);
    }
    let slow = Arc::new(Slow {
        inner: local.members.clone(),
        in_flight: AtomicUsize::new(0),
        most: AtomicUsize::new(0),
    });
    let mut sweep = local.accounts_sweep(false);
    sweep.members = slow.clone();
    let swept = sweep.sweep().await.unwrap();
    assert_eq!(swept.len(), 13);
    assert_eq!(tracked_accounts(&local).len(), 12, "every member swept");
    assert_eq!(
        slow.most.load(Ordering::SeqCst),
        ACCOUNTS_AT_ONCE,
        "at most {ACCOUNTS_AT_ONCE} accounts at once, and not one by one"
    );
}

#[tokio::test]
async fn a_member_whose_role_is_missing_is_marked_held_and_the_others_are_swept() {
    let (local, _) = organisation();
    for account in [A, B, C] {
        advisor_flags(&local, account, at(0), &["sg-1"]);
    }
    local
        .members
        .member(B)
        .unwrap()
        .update(|b| b.role = MemberRole::Missing);
    let swept = sweep(&local).await;
    let b = record_of(&swept, B);
    assert_eq!(b.standing, Some(AccountStanding::Held));
    assert!(
        b.reason.as_deref().unwrap().contains("AccessDenied"),
        "{b:?}"
    );
    assert_eq!(b.advisor, None, "its Trusted Advisor was never read");
    assert_eq!(tracked_accounts(&local), [A, C]);
    // Its StackSet instance is deployed: the next sweep reads it.
    local
        .members
        .member(B)
        .unwrap()
        .update(|b| b.role = MemberRole::Deployed);
    let swept = sweep(&local).await;
    assert_eq!(record_of(&swept, B).standing, Some(AccountStanding::Ready));
    assert_eq!(
        record_of(&swept, B).reason,
        None,
        "the old reason is not kept"
    );
    assert_eq!(tracked_accounts(&local), [A, B, C]);
}

#[tokio::test]
async fn an_account_gone_from_the_organisation_is_recorded_gone_and_not_swept() {
    let (local, _) = organisation();
    advisor_flags(&local, C, at(0), &["sg-1"]);
    local
        .members
        .member(C)
        .unwrap()
        .update(|c| c.active = false);
    let swept = sweep(&local).await;
    assert_eq!(record_of(&swept, C).standing, Some(AccountStanding::Gone));
    assert!(tracked_accounts(&local).is_empty());
}

#[tokio::test]
async fn an_account_without_a_support_plan_is_marked_and_covered_by_its_events_alone() {
    let (local, _) = organisation();
    advisor_flags(&local, A, at(0), &["sg-1"]);
    // No account's plan includes the Support API (the in-memory faults are the organisation's:
    // the four accounts' first `checks` calls each answer SubscriptionRequiredException).
    local.faults.fail(
        "advisor.checks",
        4,
        PortError::new(
            "DescribeTrustedAdvisorChecks",
            ErrorKind::SubscriptionRequired,
            "AWS Premium Support Subscription is required to use this service.",
        ),
    );
    let swept = sweep(&local).await;
    for account in [HUB, A, B, C] {
        let record = record_of(&swept, account);
        assert_eq!(record.advisor, Some(AdvisorAccess::None), "{account}");
        assert_eq!(
            record.standing,
            Some(AccountStanding::Ready),
            "reachable all the same"
        );
        assert!(record.reason.as_deref().unwrap().contains("Subscription"));
    }
    assert!(tracked_accounts(&local).is_empty());
    // B's events still arrive and are acted on.
    let mut event = ta_event(SG_CHECK, &member_arn(B, "sg-9"), "Red", at(100));
    event["account"] = json!(B);
    deliver(&local, &event).await;
    assert_eq!(tracked_accounts(&local), [B]);
    // Plans change: the next sweep reads it again.
    let swept = sweep(&local).await;
    assert_eq!(record_of(&swept, A).advisor, Some(AdvisorAccess::Support));
    assert_eq!(tracked_accounts(&local), [A, B]);
}

#[tokio::test]
async fn one_accounts_failing_sweep_is_its_own_and_every_account_failing_is_retried() {
    let (local, _) = organisation();
    for account in [A, B, C] {
        advisor_flags(&local, account, at(0), &["sg-1"]);
    }
    let throttled = PortError::new(
        "DescribeTrustedAdvisorCheckResult",
        ErrorKind::Throttled,
        "Rate exceeded",
    );
    local
        .faults
        .fail("advisor.check_result", 1, throttled.clone());
    let swept = sweep(&local).await;
    let failed: Vec<&AccountSweep> = swept.iter().filter(|s| s.error.is_some()).collect();
    assert_eq!(failed.len(), 1, "one account's sweep failed: {swept:?}");
    assert_eq!(
        tracked_accounts(&local).len(),
        2,
        "the other two were swept"
    );
    let unswept = failed[0].record.account.clone();
    assert!(
        local.registry.all().iter().all(|r| r.account != unswept),
        "a failed sweep writes no record that says it was swept"
    );
    // The next sweep catches it up.
    sweep(&local).await;
    assert_eq!(tracked_accounts(&local), [A, B, C]);

    // Every account failing: the scheduled invocation fails, and is retried.
    local.faults.fail("accounts.get", 4, throttled);
    assert!(local.accounts_sweep(false).sweep().await.is_err());
}

#[tokio::test]
async fn a_flagged_resource_no_event_brought_is_counted_once_and_only_after_the_first_sweep() {
    let (local, clock) = organisation();
    // Flagged before the hub watched A: the first sweep brings it, and that is no fault of the
    // events (Trusted Advisor sends one only when a status changes).
    advisor_flags(&local, A, at(0), &["sg-old"]);
    let first = sweep(&local).await;
    assert_eq!(record_of(&first, A).missed_by_events, 0);

    // An hour later Trusted Advisor refreshes the check: sg-heard's event arrives, sg-lost's
    // does not (its forwarding is broken).
    clock.advance(Duration::hours(1));
    let refresh = clock_now(&local) - Duration::minutes(20);
    let mut heard = ta_event(SG_CHECK, &member_arn(A, "sg-heard"), "Red", refresh);
    heard["account"] = json!(A);
    let arrived = clock_now(&local).timestamp();
    deliver(&local, &heard).await;
    advisor_result(
        &local,
        A,
        refresh,
        &[
            ("sg-old", at(0)),
            ("sg-heard", refresh),
            ("sg-lost", refresh),
        ],
    );
    let swept = sweep(&local).await;
    let a = record_of(&swept, A);
    assert_eq!(a.missed_by_events, 1, "{swept:?}");
    let report = swept
        .iter()
        .find(|s| s.record.account == A)
        .unwrap()
        .report
        .clone()
        .unwrap();
    assert_eq!(report.missed_by_events.len(), 1);
    assert!(report.missed_by_events[0].contains("sg-lost"), "{report:?}");
    assert_eq!(a.last_event_at, Some(arrived), "sg-heard's event");

    // Counted once: the next sweep finds it tracked.
    clock.advance(Duration::minutes(15));
    let again = sweep(&local).await;
    assert_eq!(record_of(&again, A).missed_by_events, 0);

    // A refresh a minute old may still have its event on the way: written, not counted.
    let fresh = clock_now(&local) - Duration::minutes(1);
    advisor_result(
        &local,
        A,
        fresh,
        &[
            ("sg-old", at(0)),
            ("sg-heard", refresh),
            ("sg-lost", refresh),
            ("sg-new", fresh),
        ],
    );
    let swept = sweep(&local).await;
    let report = swept
        .iter()
        .find(|s| s.record.account == A)
        .unwrap()
        .report
        .clone()
        .unwrap();
    assert_eq!(report.written.len(), 1, "{report:?}");
    assert!(report.missed_by_events.is_empty());
}

fn clock_now(local: &LocalLoop) -> chrono::DateTime<chrono::Utc> {
    local.clock.now()
}

#[tokio::test]
async fn an_accounts_last_event_is_noted_once_an_hour_not_per_event() {
    let (local, clock) = organisation();
    for (n, group) in ["sg-1", "sg-2", "sg-3"].into_iter().enumerate() {
        let mut event = ta_event(SG_CHECK, &member_arn(A, group), "Red", at(n as i64));
        event["account"] = json!(A);
        deliver(&local, &event).await;
        clock.advance(Duration::minutes(5));
    }
    assert_eq!(
        local.faults.calls("accounts.saw_event"),
        1,
        "one note for three events"
    );
    let first = local.registry.all()[0].last_event_at.unwrap();
    assert_eq!(first, at(3600).timestamp(), "the first event's arrival");

    // A note that fails costs nothing but the note: the finding is tracked, nothing parked,
    // and the account's next event notes it.
    clock.advance(Duration::hours(1));
    local.faults.fail(
        "accounts.saw_event",
        1,
        PortError::new(
            "UpdateItem",
            ErrorKind::Throttled,
            "ProvisionedThroughputExceeded",
        ),
    );
    let mut event = ta_event(SG_CHECK, &member_arn(A, "sg-4"), "Red", at(10));
    event["account"] = json!(A);
    deliver(&local, &event).await;
    assert_eq!(tracked_accounts(&local).len(), 4);
    assert!(local.parked.messages().is_empty());
    assert_eq!(local.registry.all()[0].last_event_at, Some(first));
    let mut event = ta_event(SG_CHECK, &member_arn(A, "sg-5"), "Red", at(11));
    event["account"] = json!(A);
    let arrived = clock_now(&local).timestamp();
    deliver(&local, &event).await;
    assert_eq!(local.registry.all()[0].last_event_at, Some(arrived));

    // A sweep keeps the last event; an event from an account the hub does not govern is never
    // noted.
    sweep(&local).await;
    let mut stranger = ta_event(SG_CHECK, &member_arn("999999999999", "sg-1"), "Red", at(12));
    stranger["account"] = json!("999999999999");
    local.track(&stranger).await.unwrap();
    let records = local.registry.all();
    assert!(records.iter().all(|r| r.account != "999999999999"));
    assert_eq!(
        records
            .iter()
            .find(|r| r.account == A)
            .unwrap()
            .last_event_at,
        Some(arrived)
    );
}

#[tokio::test]
async fn a_stack_governing_only_itself_sweeps_its_own_account_as_before() {
    let (local, _) = local_loop();
    advisor_flags(&local, HUB, at(0), &["sg-1"]);
    let swept = sweep(&local).await;
    assert_eq!(swept.len(), 1);
    assert_eq!(swept[0].record.account, HUB);
    assert_eq!(
        swept[0].record.member_version.as_deref(),
        Some("1"),
        "this code's own"
    );
    assert_eq!(tracked_accounts(&local), [HUB]);
    assert_eq!(
        local.faults.calls("members.assume_role"),
        0,
        "no STS for the stack's own account"
    );
}

#[tokio::test]
async fn a_check_mapped_after_the_first_sweep_brings_its_old_flags_without_an_alarm() {
    let (local, clock) = organisation();
    // A second check of the same shape, not mapped yet.
    let other = tarem_shared::ports::CheckInfo {
        id: "Hs4Ma3G127".into(),
        name:
            "Security groups should only allow unrestricted incoming traffic for authorized ports"
                .into(),
        ..sg_check()
    };
    let flagged_long_ago = CheckResult {
        timestamp: format_time(at(0)),
        flagged: vec![flagged_resource(
            &member_arn(A, "sg-old"),
            &format_time(at(0)),
        )],
    };
    local
        .members
        .member(A)
        .unwrap()
        .advisor
        .set_check(other.clone(), flagged_long_ago);
    advisor_flags(&local, A, at(0), &["sg-1"]);
    let first = sweep(&local).await;
    assert_eq!(record_of(&first, A).missed_by_events, 0);
    // An hour later the operator maps the second check; Trusted Advisor refreshed it meanwhile.
    clock.advance(Duration::hours(1));
    let mut mapping = sg_mapping();
    mapping["checkName"] = json!({ "S": other.name });
    local.mappings.put(&mapping).unwrap();
    let refreshed = CheckResult {
        timestamp: format_time(clock_now(&local) - Duration::minutes(30)),
        flagged: vec![flagged_resource(
            &member_arn(A, "sg-old"),
            &format_time(at(0)),
        )],
    };
    local
        .members
        .member(A)
        .unwrap()
        .advisor
        .set_check(other, refreshed);
    let swept = sweep(&local).await;
    let report = swept
        .iter()
        .find(|s| s.record.account == A)
        .unwrap()
        .report
        .clone()
        .unwrap();
    assert_eq!(
        report.written.len(),
        1,
        "its old flag, tracked now: {report:?}"
    );
    assert!(
        report.missed_by_events.is_empty(),
        "no event was owed for it"
    );
}
