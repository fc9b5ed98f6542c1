//! Work that grows with what is due, not with what is open: the sweeps counted, call by call,
//! on the in-memory backend (whose indexes are the sparse ones the stack declares).

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use tarem_e2e::*;
use tarem_shared::clock::{Clock, ManualClock};
use tarem_shared::episode::{Episode, Stage};
use tarem_shared::finding::{Finding, Status, format_time};
use tarem_shared::lifecycle::LifecycleConfig;
use tarem_shared::local::LocalLoop;
use tarem_shared::memory::InMemoryAutomation;
use tarem_shared::ports::{CheckInfo, CheckResult, ExecutionStore, FlaggedResource};
use tarem_shared::safety::{SafetyConfig, UnmappedOpsItems};

/// Calls of each operation since `before` (a snapshot of the counts).
fn calls(local: &LocalLoop, operations: &[&str]) -> Vec<u64> {
    operations.iter().map(|o| local.faults.calls(o)).collect()
}

async fn sweeps_until(local: &LocalLoop, clock: &ManualClock, to: DateTime<Utc>) {
    while clock.now() + Duration::minutes(15) <= to {
        clock.advance(Duration::minutes(15));
        local.sweep_episodes().await.unwrap();
    }
    clock.set(to);
}

fn quiet_stack() -> LifecycleConfig {
    LifecycleConfig {
        safety: SafetyConfig {
            unmapped_ops_items: UnmappedOpsItems::None,
            ..test_safety()
        },
        ..test_stack()
    }
}

/// 10,000 open episodes wait for Trusted Advisor's Green (an unmapped check's findings), and 3
/// wait for their cool-down. Once the cool-down ends, a sweep reads the 3 due episodes and one
/// page of each index shard, and not one of the 10,000.
#[tokio::test]
async fn a_sweep_reads_the_due_episodes_and_its_pages_and_nothing_else() {
    let (local, clock) = local_loop_configured(InMemoryAutomation::default(), quiet_stack());
    let t0 = clock.now();
    for batch in 0..100 {
        for i in 0..100 {
            let instance = format!("i-{:05}", batch * 100 + i);
            local
                .track(&ta_event(EC2_CHECK, &instance_arn(&instance), "Red", t0))
                .await
                .unwrap();
        }
        local.deliver_stream().await;
    }
    for group in ["sg-1", "sg-2", "sg-3"] {
        deliver(&local, &ta_event(SG_CHECK, &sg_arn(group), "Red", t0)).await;
    }
    finish_all(&local, "Failed").await;
    assert_eq!(local.executions.episodes().len(), 10_003);
    // The first sweep after the upgrade migrates once and checks the writes of the last minutes.
    clock.advance(Duration::minutes(16));
    local.sweep_episodes().await.unwrap();

    let operations = [
        "executions.due_episodes",
        "tracker.pending",
        "executions.get_episode",
        "tracker.get",
        "executions.open_episodes",
        "tracker.unindexed",
        "tracker.flagged_keys",
    ];
    let before = calls(&local, &operations);
    clock.advance(Duration::minutes(15));
    let report = local.sweep_episodes().await.unwrap();
    let after = calls(&local, &operations);
    let delta: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert_eq!(report.episodes, 3, "{report:?}");
    assert_eq!(local.automation.executions().len(), 6, "the 3 held starts");
    assert_eq!(
        delta,
        [
            10, // one page of each due-index shard
            10, // one page of each settle-index shard
            9,  // each due episode: before, in the decision, after
            3,  // each due episode's tracker row
            0,  // no Scan of the open episodes
            0, 0, // no mapping changed: no check's flagged rows read
        ],
        "{operations:?}"
    );
}

/// A held episode is acted on by the first sweep at or after its hold's end.
#[tokio::test]
async fn a_due_episode_is_acted_on_within_one_sweep_of_its_time() {
    let (local, clock) = local_loop();
    let t0 = clock.now();
    deliver(&local, &ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", t0)).await;
    finish_all(&local, "Failed").await;
    let Stage::Held {
        until: Some(until), ..
    } = &local.executions.episodes()[0].stage
    else {
        panic!("held for the cool-down");
    };
    let until = tarem_shared::finding::parse_time(until).unwrap();
    // Sweeps at an odd phase: every 15 minutes from 7 minutes in.
    clock.advance(Duration::minutes(7));
    local.sweep_episodes().await.unwrap();
    while local.automation.executions().len() < 2 {
        clock.advance(Duration::minutes(15));
        local.sweep_episodes().await.unwrap();
        assert!(clock.now() < until + Duration::minutes(15), "late");
    }
    assert!(clock.now() >= until, "not before the cool-down ends");
}

/// A flood of 1,000 Red findings of one check against a breaker of 50 starts an hour: each
/// window wakes only the 50 it can start, so the sweeps look at each held episode about once,
/// not once per window (which would be 950 + 900 + … + 50 = 9,500 looks), and the breaker is
/// never exceeded.
#[tokio::test]
async fn a_breaker_flood_wakes_each_window_only_what_it_can_start() {
    let (local, clock) = local_loop_configured(InMemoryAutomation::default(), quiet_stack());
    let t0 = clock.now();
    for batch in 0..10 {
        for i in 0..100 {
            let group = format!("sg-{:05}", batch * 100 + i);
            local
                .track(&ta_event(SG_CHECK, &sg_arn(&group), "Red", t0))
                .await
                .unwrap();
        }
        local.deliver_stream().await;
    }
    assert_eq!(local.automation.executions().len(), 50);
    finish_all(&local, "Success").await;
    let mut looked = 0;
    let mut sweeps = 0;
    while local.automation.executions().len() < 1_000 {
        clock.advance(Duration::minutes(15));
        looked += local.sweep_episodes().await.unwrap().episodes;
        sweeps += 1;
        finish_all(&local, "Success").await;
        assert!(sweeps <= 4 * 20, "every start within 20 windows");
    }
    let mut per_hour = std::collections::BTreeMap::<i64, usize>::new();
    for execution in local.automation.executions() {
        *per_hour
            .entry(execution.started_at.unwrap().timestamp().div_euclid(3600))
            .or_default() += 1;
    }
    assert!(per_hour.values().all(|&n| n <= 50), "{per_hour:?}");
    assert_eq!(per_hour.len(), 20, "50 an hour: {per_hour:?}");
    // Each finding is looked at a bounded number of times whatever the number of windows: a
    // held one when its window comes, and each OpsItem once a sweep after a status write (the
    // start, the fix), to check it says what the episode says. Waking every held episode at
    // every window's end would be 9,500 looks more.
    assert!(looked <= 3 * 1_000, "{looked} looks for 1,000 findings");
}

/// The findings sweep for 30 mapped checks reads each check's flagged rows from the flagged
/// index and reads whole only those it clears: the same reads whether the tracker holds 1,000 or
/// 4,000 other rows.
#[tokio::test]
async fn reconcile_reads_grow_with_flagged_rows_not_with_checks_times_the_table() {
    let mut counted = vec![];
    for others in [1_000, 4_000] {
        let (local, clock) = local_loop_configured(InMemoryAutomation::default(), quiet_stack());
        for i in 0..others {
            let row = Finding::new(
                ACCOUNT,
                "Another check",
                &instance_arn(&format!("i-{i}")),
                "eu-west-1",
            )
            .at(
                if i % 2 == 0 {
                    Status::Green
                } else {
                    Status::Red
                },
                at(0),
                at(0),
            );
            tarem_shared::ports::TrackerStore::put_if_newer(&*local.tracker, &row)
                .await
                .unwrap();
        }
        for check in 0..30 {
            let name = format!("Check {check}");
            local
                .mappings
                .put(&json!({"checkName": name, "ssmAutomationDocument": "AWS-X", "mode": "inactive"}))
                .unwrap();
            let info = CheckInfo {
                id: format!("c{check}"),
                name: name.clone(),
                columns: vec![
                    "Status".into(),
                    "Region".into(),
                    "Resource".into(),
                    "Last Updated Time".into(),
                ],
            };
            // Two rows flagged; Trusted Advisor still flags one of them.
            for group in ["sg-a", "sg-b"] {
                let row = Finding::new(ACCOUNT, &name, &sg_arn(group), "ap-southeast-2").at(
                    Status::Red,
                    at(0),
                    at(0),
                );
                tarem_shared::ports::TrackerStore::put_if_newer(&*local.tracker, &row)
                    .await
                    .unwrap();
            }
            let still = FlaggedResource {
                status: "error".into(),
                region: Some("ap-southeast-2".into()),
                suppressed: false,
                metadata: vec![
                    Some("Red".into()),
                    Some("ap-southeast-2".into()),
                    Some(sg_arn("sg-a")),
                    Some(format_time(at(0))),
                ],
            };
            local.advisor.set_check(
                info,
                CheckResult {
                    timestamp: format_time(at(60)),
                    flagged: vec![still],
                },
            );
        }
        // The stack's sweep has checked these writes long before the findings sweep runs.
        clock.advance(Duration::minutes(16));
        local.sweep_episodes().await.unwrap();
        assert_eq!(local.tracker.pending_count(), 0);
        let operations = ["tracker.flagged_keys", "tracker.get"];
        let before = calls(&local, &operations);
        let report = local.findings_sweep(false).sweep(false).await.unwrap();
        assert_eq!(report.cleared.len(), 30);
        let after = calls(&local, &operations);
        counted.push(
            after
                .iter()
                .zip(&before)
                .map(|(a, b)| a - b)
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(
        counted[0],
        [30, 30],
        "one index read per check, one row read per clearing"
    );
    assert_eq!(counted[0], counted[1], "the table's size changes nothing");
}

const ACCOUNT: &str = "123456789012";

/// Episodes and tracker rows an older version wrote carry no due time and are in no index: the
/// first sweep after the upgrade picks each up once (a held start resumes, a flagged row without
/// an episode gets one), and the next sweeps never scan again.
#[tokio::test]
async fn rows_written_before_the_indexes_are_picked_up_once() {
    let (local, clock) = local_loop();
    let t0 = clock.now();
    // An episode held for its cool-down, written without a due time, its row not indexed.
    let held_row = Finding::new(ACCOUNT, SG_CHECK, &sg_arn("sg-old"), "ap-southeast-2").at(
        Status::Red,
        t0,
        t0,
    );
    local.tracker.insert_legacy(&held_row);
    let mut held = Episode::opened_by(&held_row, None, &format_time(t0));
    held.version = 1;
    held.stage = Stage::Held {
        control: "cool-down".into(),
        reason: "attempt 1 ended Failed".into(),
        until: Some(format_time(t0 + Duration::minutes(10))),
    };
    assert!(local.executions.put_episode(&held).await.unwrap());
    // A flagged row whose first record never made an episode.
    let lost = Finding::new(ACCOUNT, SG_CHECK, &sg_arn("sg-lost"), "ap-southeast-2").at(
        Status::Red,
        t0,
        t0,
    );
    local.tracker.insert_legacy(&lost);

    // The first sweep schedules the episode and puts the rows in the index's pending part; the
    // next checks them.
    sweeps_until(&local, &clock, t0 + Duration::minutes(30)).await;
    assert_eq!(
        local.automation.executions().len(),
        2,
        "the held start and the lost row's"
    );
    assert_eq!(local.executions.episodes().len(), 2);
    let scans = calls(&local, &["executions.open_episodes", "tracker.unindexed"]);
    sweeps_until(&local, &clock, t0 + Duration::hours(2)).await;
    assert_eq!(
        calls(&local, &["executions.open_episodes", "tracker.unindexed"]),
        scans,
        "migrated once: no more scans"
    );
}
