//! One finding, one truth: identity, order and replay, each written as the delivery order a user
//! would see (events, stream records, replays, sweeps) on the in-memory backend.

use chrono::Duration;
use serde_json::{Value, json};
use tarem_e2e::*;
use tarem_shared::error::{ErrorKind, PortError};
use tarem_shared::finding::{Rejection, Status, format_time};
use tarem_shared::handlers::Tracked;
use tarem_shared::local::LocalLoop;
use tarem_shared::memory::DuplicateAnswer;
use tarem_shared::ports::DATA_FINDING_KEY;
use tarem_shared::ports::{CheckResult, FlaggedResource, OpsItemStatus};
use tarem_shared::replay::Replayer;

const IAM_CHECK: &str = "IAM users' access keys should be rotated every 90 days or less";

fn open_items(local: &LocalLoop) -> Vec<String> {
    local
        .ops_center
        .items()
        .into_iter()
        .filter(|i| i.status != OpsItemStatus::Resolved)
        .map(|i| i.id)
        .collect()
}

/// A mapping that waits for an operator (nothing starts), so OpsItems stay open until Trusted
/// Advisor says Green.
fn approval_mapping(local: &LocalLoop, check: &str) {
    local
        .mappings
        .put(
            &json!({"checkName": check, "ssmAutomationDocument": SG_DOCUMENT,
            "automationParameters": {"GroupId": ["$resourceId"]}, "regexPattern": "(sg-\\w+)",
            "mode": "approval"}),
        )
        .unwrap();
}

#[tokio::test]
async fn one_iam_user_reported_with_two_region_columns_is_one_finding() {
    let (local, _) = local_loop();
    local
        .mappings
        .put(&walkthrough_mapping(
            IAM_CHECK,
            SG_DOCUMENT,
            r#"{"GroupId": ["$resourceId"], "AutomationAssumeRole": ["arn:aws:iam::123456789012:role/TaremAutomationRole"]}"#,
            r"user/(.+)$",
            true,
        ))
        .unwrap();
    let user = "arn:aws:iam::123456789012:user/bob";
    let mut pipeline = Pipeline::new(&local);
    pipeline
        .deliver_event(&ta_event_at(
            IAM_CHECK,
            user,
            "us-east-1",
            "Red",
            at(0),
            at(60),
        ))
        .await;
    pipeline
        .deliver_event(&ta_event_at(
            IAM_CHECK,
            user,
            "eu-west-1",
            "Red",
            at(300),
            at(360),
        ))
        .await;
    assert!(pipeline.parked.is_empty(), "{:?}", pipeline.parked);
    assert_eq!(local.tracker.rows().len(), 1, "one user, one finding");
    assert_eq!(local.ops_center.items().len(), 1, "one OpsItem");
    let executions = local.automation.executions();
    assert_eq!(executions.len(), 1, "one runbook start");
    assert_eq!(
        executions[0].region, "us-east-1",
        "IAM is global: the stack's region"
    );
}

#[tokio::test]
async fn a_security_group_is_remediated_in_its_arns_region_whatever_the_column_says() {
    let (local, _) = local_loop();
    let group = sg_arn("sg-0a1b2c3d4e5f67890");
    assert!(group.contains(":ap-southeast-2:"));
    deliver(
        &local,
        &ta_event_at(SG_CHECK, &group, "us-west-2", "Red", at(0), at(60)),
    )
    .await;
    let executions = local.automation.executions();
    assert_eq!(executions.len(), 1);
    assert_eq!(executions[0].region, "ap-southeast-2");
    assert_eq!(local.tracker.rows()[0].region, "ap-southeast-2");
    // The same group with the right column is the same finding.
    deliver(
        &local,
        &ta_event_at(SG_CHECK, &group, "ap-southeast-2", "Red", at(120), at(180)),
    )
    .await;
    assert_eq!(local.tracker.rows().len(), 1);
}

#[tokio::test]
async fn a_far_future_event_is_rejected_and_parked_and_the_finding_stays_live() {
    let (local, clock) = local_loop();
    approval_mapping(&local, SG_CHECK);
    let group = sg_arn("sg-1");
    let far = chrono::DateTime::parse_from_rfc3339("2099-01-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let bogus = ta_event_at(SG_CHECK, &group, "ap-southeast-2", "Red", far, at(60));
    let Tracked::Rejected(rejection) = local.track(&bogus).await.unwrap() else {
        panic!("a 2099 item time must be rejected");
    };
    assert!(
        matches!(rejection, Rejection::FutureTime { .. }),
        "{rejection}"
    );
    let parked = local.parked.messages();
    assert_eq!(parked.len(), 1, "parked, not dropped");
    assert!(
        parked[0].body.contains("receiving clock"),
        "{}",
        parked[0].body
    );
    assert!(local.tracker.rows().is_empty());

    // The real events that follow are tracked as if the bogus one never came.
    deliver(
        &local,
        &ta_event_at(SG_CHECK, &group, "ap-southeast-2", "Red", at(0), at(60)),
    )
    .await;
    assert_eq!(open_items(&local).len(), 1);
    clock.advance(Duration::hours(1));
    deliver(
        &local,
        &ta_event_at(
            SG_CHECK,
            &group,
            "ap-southeast-2",
            "Green",
            at(3000),
            at(3060),
        ),
    )
    .await;
    assert_eq!(local.tracker.rows()[0].resource_status, Status::Green);
    assert!(open_items(&local).is_empty(), "the OpsItem is not frozen");
}

/// A Red and a Green with the same item time: the one Trusted Advisor said later wins, in
/// either delivery order; a full tie (same said time too) keeps the finding flagged.
#[tokio::test]
async fn a_red_and_a_green_with_the_same_item_time_end_as_the_later_one_says() {
    let group = sg_arn("sg-1");
    let red = ta_event_at(SG_CHECK, &group, "ap-southeast-2", "Red", at(0), at(60));
    let green_later = ta_event_at(SG_CHECK, &group, "ap-southeast-2", "Green", at(0), at(120));
    for order in [[&red, &green_later], [&green_later, &red]] {
        let (local, _) = local_loop();
        approval_mapping(&local, SG_CHECK);
        for event in order {
            deliver(&local, event).await;
        }
        let rows = local.tracker.rows();
        assert_eq!(rows[0].resource_status, Status::Green, "{order:?}");
        assert!(open_items(&local).is_empty(), "{order:?}");
    }
    let green_tied = ta_event_at(SG_CHECK, &group, "ap-southeast-2", "Green", at(0), at(60));
    for order in [[&red, &green_tied], [&green_tied, &red]] {
        let (local, _) = local_loop();
        approval_mapping(&local, SG_CHECK);
        for event in order {
            deliver(&local, event).await;
        }
        assert_eq!(
            local.tracker.rows()[0].resource_status,
            Status::Red,
            "a full tie never hides a finding"
        );
        assert_eq!(open_items(&local).len(), 1);
    }
}

fn flagged(resource: &str, time: &str) -> FlaggedResource {
    flagged_resource(resource, time)
}

async fn sweep(
    local: &LocalLoop,
    timestamp: chrono::DateTime<chrono::Utc>,
    resources: Vec<FlaggedResource>,
) {
    local.advisor.set_check(
        sg_check(),
        CheckResult {
            timestamp: format_time(timestamp),
            flagged: resources,
        },
    );
    local.findings_sweep(false).sweep(false).await.unwrap();
    let mut pipeline = Pipeline::new(local);
    pipeline.pump_stream().await;
    assert!(pipeline.parked.is_empty(), "{:?}", pipeline.parked);
}

/// The sweep's Green and the events around it agree: a Red that Trusted Advisor emitted after
/// the sweep's result is applied even though its item time is earlier than the result's, while a
/// Red from before the sweep, replayed, is not.
#[tokio::test]
async fn a_red_emitted_after_a_sweep_is_applied_and_one_from_before_is_not() {
    let (local, clock) = local_loop();
    approval_mapping(&local, SG_CHECK);
    let group = sg_arn("sg-1");
    let first_red = ta_event_at(SG_CHECK, &group, "ap-southeast-2", "Red", at(0), at(60));
    deliver(&local, &first_red).await;
    assert_eq!(open_items(&local).len(), 1);

    // The sweep at 10:00 no longer lists the group: Green.
    clock.advance(Duration::hours(2));
    sweep(&local, at(3600), vec![]).await;
    assert_eq!(local.tracker.rows()[0].resource_status, Status::Green);
    assert!(open_items(&local).is_empty());

    // Flagged again; Security Hub's update (item time 09:50) reaches Trusted Advisor's event
    // at 10:20, after the sweep's result.
    let late_red = ta_event_at(
        SG_CHECK,
        &group,
        "ap-southeast-2",
        "Red",
        at(3000),
        at(4800),
    );
    deliver(&local, &late_red).await;
    assert_eq!(
        local.tracker.rows()[0].resource_status,
        Status::Red,
        "a flagged resource must not show Green"
    );
    assert_eq!(open_items(&local).len(), 1);

    // The first Red again, from a failure queue: it is older than everything since.
    assert!(matches!(
        local.track(&first_red).await.unwrap(),
        Tracked::Stale(_)
    ));
}

/// A flagged item whose data the sweep cannot read counts as still flagged: its row is not
/// turned Green and its OpsItem stays open.
#[tokio::test]
async fn a_flagged_item_the_sweep_cannot_read_is_never_cleared() {
    let (local, clock) = local_loop();
    approval_mapping(&local, SG_CHECK);
    let unreadable = sg_arn("sg-unreadable");
    let future = sg_arn("sg-future");
    let fixed = sg_arn("sg-fixed");
    for group in [&unreadable, &future, &fixed] {
        deliver(
            &local,
            &ta_event_at(SG_CHECK, group, "ap-southeast-2", "Red", at(0), at(60)),
        )
        .await;
    }
    assert_eq!(open_items(&local).len(), 3);
    clock.advance(Duration::hours(6));
    sweep(
        &local,
        at(20_000),
        vec![
            flagged(&unreadable, "yesterday"),
            flagged(&future, "2099-01-01T00:00:00Z"),
        ],
    )
    .await;
    let status = |arn: &str| {
        local
            .tracker
            .rows()
            .into_iter()
            .find(|row| row.resource == arn)
            .unwrap()
            .resource_status
    };
    assert_eq!(status(&unreadable), Status::Red);
    assert_eq!(status(&future), Status::Red);
    assert_eq!(
        status(&fixed),
        Status::Green,
        "the one the sweep no longer lists"
    );
    assert_eq!(open_items(&local).len(), 2);
}

/// The delivery path parks the first try of `event`'s record (the given operation refused once,
/// for good), then a later event moves the finding on; returns the parked message count.
async fn park_one_record(local: &LocalLoop, operation: &str, event: &Value) {
    local.faults.fail(
        operation,
        1,
        PortError::new(
            "injected",
            ErrorKind::AccessDenied,
            "AccessDeniedException: injected",
        ),
    );
    let mut pipeline = Pipeline::new(local);
    pipeline.deliver_event(event).await;
    assert_eq!(pipeline.parked.len(), 1, "{:?}", pipeline.parked);
    assert_eq!(local.parked.messages().len(), 1);
}

async fn replay_everything(local: &LocalLoop) {
    let replayer = Replayer {
        queue: &*local.parked,
        stream: local,
        redrive: local,
    };
    let replayed = replayer.replay(10, false).await.unwrap();
    assert!(
        replayed.iter().all(|r| r.outcome == "replayed"),
        "{replayed:?}"
    );
}

#[tokio::test]
async fn a_replayed_old_green_does_not_resolve_a_newer_episodes_ops_item() {
    let (local, clock) = local_loop();
    approval_mapping(&local, SG_CHECK);
    let group = sg_arn("sg-1");
    deliver(
        &local,
        &ta_event_at(SG_CHECK, &group, "ap-southeast-2", "Red", at(0), at(60)),
    )
    .await;
    // The Green's record fails for good on its first try (resolving the OpsItem): parked.
    park_one_record(
        &local,
        "ops_center.update",
        &ta_event_at(
            SG_CHECK,
            &group,
            "ap-southeast-2",
            "Green",
            at(600),
            at(660),
        ),
    )
    .await;
    clock.advance(Duration::hours(3));
    deliver(
        &local,
        &ta_event_at(
            SG_CHECK,
            &group,
            "ap-southeast-2",
            "Red",
            at(9000),
            at(9060),
        ),
    )
    .await;
    let open_before = open_items(&local);
    assert!(!open_before.is_empty());
    // Hours later, an operator replays the failure queue.
    replay_everything(&local).await;
    assert_eq!(
        open_items(&local),
        open_before,
        "the newer episode's OpsItem stays open"
    );
    assert_eq!(local.tracker.rows()[0].resource_status, Status::Red);
}

#[tokio::test]
async fn a_replayed_old_red_does_not_open_an_ops_item_for_a_green_resource() {
    let (local, clock) = local_loop();
    approval_mapping(&local, SG_CHECK);
    let group = sg_arn("sg-1");
    // The Red's record fails for good on its first try (reading the tracker): parked.
    park_one_record(
        &local,
        "tracker.get",
        &ta_event_at(SG_CHECK, &group, "ap-southeast-2", "Red", at(0), at(60)),
    )
    .await;
    clock.advance(Duration::hours(1));
    deliver(
        &local,
        &ta_event_at(
            SG_CHECK,
            &group,
            "ap-southeast-2",
            "Green",
            at(600),
            at(660),
        ),
    )
    .await;
    replay_everything(&local).await;
    assert!(
        open_items(&local).is_empty(),
        "{:?}",
        local.ops_center.items()
    );
    assert!(local.automation.executions().is_empty());
}

/// OpsCenter answers a duplicate CreateOpsItem either with an error naming the open item or with
/// a plain success naming it; a record retried after its OpsItem was created ends with one
/// OpsItem and one start either way.
#[tokio::test]
async fn a_retried_record_makes_one_ops_item_whichever_way_dedup_answers() {
    for answer in [DuplicateAnswer::AlreadyExists, DuplicateAnswer::ExistingId] {
        let (local, _) = local_loop();
        local.ops_center.answer_duplicates(answer);
        // The first try creates the OpsItem, then fails to record it: retried as a whole.
        local.faults.fail(
            "executions.put_state",
            1,
            PortError::new("injected", ErrorKind::Unavailable, "injected"),
        );
        let mut pipeline = Pipeline::new(&local);
        pipeline
            .deliver_event(&ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0)))
            .await;
        assert!(
            pipeline.parked.is_empty(),
            "{answer:?}: {:?}",
            pipeline.parked
        );
        let items = local.ops_center.items();
        assert_eq!(items.len(), 1, "{answer:?}");
        assert_eq!(local.automation.executions().len(), 1, "{answer:?}");
        let finding_key = &local.tracker.rows()[0].hash_key;
        assert_eq!(
            &items[0].operational_data[DATA_FINDING_KEY].value,
            finding_key
        );
    }
}

/// A record is stale when the tracker holds a later state; but when the later write only said
/// the same state again (a sweep's refresh, whose own record is skipped as "nothing new"), the
/// older record is the only one that can act. The Red must still open its episode and start
/// once, and a Green behind such a refresh must still close it.
#[tokio::test]
async fn a_change_whose_record_waits_behind_a_refresh_of_the_same_state_is_acted_on() {
    let (local, clock) = local_loop();
    let group = sg_arn("sg-1");
    let refresh = |local: &LocalLoop, status: &str, item_time, said| {
        let flagged_now = if status == "Red" {
            vec![flagged(&group, &format_time(item_time))]
        } else {
            vec![]
        };
        local.advisor.set_check(
            sg_check(),
            CheckResult {
                timestamp: format_time(said),
                flagged: flagged_now,
            },
        );
    };
    // The Red is tracked; before the results handler gets to its record (a throttled or
    // retried batch), the reconcile sweep reports the same Red again, later.
    let red = ta_event_at(SG_CHECK, &group, "ap-southeast-2", "Red", at(0), at(60));
    local.track(&red).await.unwrap();
    clock.advance(Duration::hours(1));
    refresh(&local, "Red", at(0), at(3000));
    local.findings_sweep(false).sweep(false).await.unwrap();
    let mut pipeline = Pipeline::new(&local);
    pipeline.pump_stream().await;
    assert!(pipeline.parked.is_empty(), "{:?}", pipeline.parked);
    assert_eq!(
        local.automation.executions().len(),
        1,
        "the Red starts once"
    );
    assert_eq!(open_items(&local).len(), 1, "and has its OpsItem");
    finish_all(&local, "Success").await;

    // The Green, then the sweep saying Green again, before the Green's record is processed.
    let green = ta_event_at(
        SG_CHECK,
        &group,
        "ap-southeast-2",
        "Green",
        at(4000),
        at(4060),
    );
    local.track(&green).await.unwrap();
    clock.advance(Duration::hours(1));
    refresh(&local, "Green", at(4000), at(6000));
    local.findings_sweep(false).sweep(false).await.unwrap();
    pipeline.pump_stream().await;
    assert!(pipeline.parked.is_empty(), "{:?}", pipeline.parked);
    assert!(open_items(&local).is_empty(), "the fix is confirmed");
    assert_eq!(local.executions.episodes()[0].stage.name(), "fixed");
    assert_eq!(local.automation.executions().len(), 1);
}
