//! Nothing lost, nothing started twice: faults at every port, random delivery orders, and bad
//! input, each checked the way an operator would notice it.
//!
//! Long on purpose: the fault matrix, the random orders and the bad-input corpora share the
//! seed scenarios and the outcome an operator sees; one file keeps them comparable.

use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use tarem_e2e::*;
use tarem_shared::error::{ErrorKind, PortError};
use tarem_shared::finding::{MAX_ITEM_BYTES, Status};
use tarem_shared::handlers::{RecordOutcome, Step, Tracked};
use tarem_shared::local::LocalLoop;
use tarem_shared::memory::OPERATIONS;
use tarem_shared::ports::OpsItemStatus;
use tarem_shared::ports::{DATA_FINDING_KEY, DATA_REMEDIATION, TAG_FINDING};

/// What an operator sees at the end of the seed scenarios.
#[derive(Debug, PartialEq)]
struct Outcome {
    rows: Vec<(String, Status)>,
    executions_per_finding: BTreeMap<String, usize>,
    automation_statuses: Vec<String>,
    ops_items: Vec<(String, OpsItemStatus)>,
}

fn outcome(local: &LocalLoop) -> Outcome {
    let mut executions_per_finding = BTreeMap::new();
    for execution in local.automation.executions() {
        *executions_per_finding
            .entry(execution.tags[TAG_FINDING].clone())
            .or_default() += 1;
    }
    Outcome {
        rows: local
            .tracker
            .rows()
            .into_iter()
            .map(|f| (f.resource, f.resource_status))
            .collect(),
        executions_per_finding,
        automation_statuses: local
            .automation
            .executions()
            .into_iter()
            .map(|e| e.status)
            .collect(),
        ops_items: local
            .ops_center
            .items()
            .into_iter()
            .map(|i| (i.title, i.status))
            .collect(),
    }
}

/// The seed scenarios: a mapped security group remediated and confirmed, an unmapped instance
/// opened and later fixed.
async fn seed_scenarios(pipeline: &mut Pipeline<'_>) {
    pipeline
        .deliver_event(&ta_event(
            SG_CHECK,
            &sg_arn("sg-0a1b2c3d4e5f67890"),
            "Red",
            at(0),
        ))
        .await;
    pipeline.finish("Success").await;
    // Trusted Advisor confirms the fix.
    pipeline
        .deliver_event(&ta_event(
            SG_CHECK,
            &sg_arn("sg-0a1b2c3d4e5f67890"),
            "Green",
            at(300),
        ))
        .await;
    pipeline
        .deliver_event(&ta_event(
            EC2_CHECK,
            &instance_arn("i-0f1e2d3c4b5a69788"),
            "Red",
            at(0),
        ))
        .await;
    pipeline
        .deliver_event(&ta_event(
            EC2_CHECK,
            &instance_arn("i-0f1e2d3c4b5a69788"),
            "Green",
            at(600),
        ))
        .await;
}

const RETRYABLE: [ErrorKind; 4] = [
    ErrorKind::Throttled,
    ErrorKind::Unavailable,
    ErrorKind::Timeout,
    ErrorKind::LimitExceeded,
];
const PERMANENT: [ErrorKind; 3] = [
    ErrorKind::Invalid,
    ErrorKind::NotFound,
    ErrorKind::AccessDenied,
];

/// Every operation of every port fails once (then twice), each way: a retryable failure is
/// retried and the run ends exactly as a clean one; a permanent one is parked with its reason.
/// In no case a panic, a lost finding, or a second start.
#[tokio::test]
async fn every_port_failing_every_way_loses_nothing_and_never_starts_twice() {
    let (clean, _) = local_loop();
    let mut pipeline = Pipeline::new(&clean);
    seed_scenarios(&mut pipeline).await;
    assert!(pipeline.parked.is_empty());
    let expected = outcome(&clean);
    assert_eq!(expected.automation_statuses, ["Success"]);
    assert!(
        expected
            .ops_items
            .iter()
            .all(|(_, status)| *status == OpsItemStatus::Resolved)
    );

    let mut exercised = 0;
    for operation in OPERATIONS {
        for times in [1, 2] {
            for kind in RETRYABLE.into_iter().chain(PERMANENT) {
                let (local, _) = local_loop();
                local.faults.fail(
                    operation,
                    times,
                    PortError::new("injected", kind, format!("injected {kind} in {operation}")),
                );
                let mut pipeline = Pipeline::new(&local);
                seed_scenarios(&mut pipeline).await;
                let got = outcome(&local);
                let case = format!("{operation} failing {times}x with {kind}");
                if local.faults.calls(operation) > 0 {
                    exercised += 1;
                }
                assert!(
                    got.executions_per_finding.values().all(|n| *n == 1),
                    "{case}: a finding started more than once: {got:?}"
                );
                assert_eq!(
                    got.rows.len(),
                    2,
                    "{case}: a finding went missing from the tracker"
                );
                if kind.is_retryable() {
                    assert!(
                        pipeline.parked.is_empty(),
                        "{case}: parked {:?}",
                        pipeline.parked
                    );
                    assert_eq!(
                        got, expected,
                        "{case}: a retried fault must end like a clean run"
                    );
                } else {
                    for parked in &pipeline.parked {
                        assert!(
                            parked.reason.contains("injected"),
                            "{case}: {parked:?} must say why"
                        );
                    }
                    if pipeline.parked.is_empty() {
                        assert_eq!(
                            got, expected,
                            "{case}: nothing parked, so nothing may differ"
                        );
                    }
                }
            }
        }
    }
    assert!(
        exercised > 200,
        "the scenarios must reach the operations ({exercised} cases did)"
    );
}

/// A permanent refusal of the start is parked, and the OpsItem says why.
#[tokio::test]
async fn a_refused_start_is_parked_and_the_ops_item_says_why() {
    let (local, _) = local_loop();
    local.faults.fail(
        "automation.start",
        1,
        PortError::new(
            "StartAutomationExecution",
            ErrorKind::AccessDenied,
            "AccessDeniedException: not allowed",
        ),
    );
    let mut pipeline = Pipeline::new(&local);
    pipeline
        .deliver_event(&ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0)))
        .await;
    assert_eq!(pipeline.parked.len(), 1);
    assert!(pipeline.parked[0].reason.contains("AccessDeniedException"));
    let item = &local.ops_center.items()[0];
    let note: Value = serde_json::from_str(&item.operational_data[DATA_REMEDIATION].value).unwrap();
    // Refused for good, it would be refused again: escalated at once, not retried to the cap.
    assert_eq!(note["state"], "escalated", "{note}");
    assert!(
        note["detail"]
            .as_str()
            .unwrap()
            .contains("AccessDeniedException"),
        "{note}"
    );
    assert!(local.automation.executions().is_empty());
}

#[derive(Debug, Clone)]
enum Op {
    Event(usize),
    /// SSM finishes what is running; its status events are delivered twice, the second time late.
    Complete(bool),
}

/// One Trusted Advisor event of the scenario, with what it says written down beside it: the
/// test's expectations come from these fields, never from the parser under test.
struct Said {
    resource: String,
    seconds: i64,
    status: Status,
    event: Value,
}

fn finding_events() -> Vec<Said> {
    let mut events = vec![];
    for (index, (check, resource)) in [
        (SG_CHECK, sg_arn("sg-a")),
        (SG_CHECK, sg_arn("sg-b")),
        (EC2_CHECK, instance_arn("i-c")),
    ]
    .into_iter()
    .enumerate()
    {
        for (step, (text, status)) in [
            ("Red", Status::Red),
            ("Yellow", Status::Yellow),
            ("Green", Status::Green),
            ("Red", Status::Red),
        ]
        .into_iter()
        .enumerate()
        {
            let seconds = (index * 10 + step) as i64 * 60;
            events.push(Said {
                event: ta_event(check, &resource, text, at(seconds)),
                resource: resource.clone(),
                seconds,
                status,
            });
        }
    }
    events
}

fn scenario() -> impl Strategy<Value = (Vec<Op>, bool)> {
    let events = finding_events().len();
    (
        proptest::collection::vec((0..events, 1..=5usize), 1..16),
        proptest::collection::vec(any::<bool>(), 16),
        any::<bool>(),
    )
        .prop_flat_map(|(picks, completes, duplicate_batches)| {
            let mut ops = vec![];
            for (i, (event, copies)) in picks.into_iter().enumerate() {
                ops.extend(std::iter::repeat_n(Op::Event(event), copies));
                if completes[i] {
                    ops.push(Op::Complete(i % 2 == 0));
                }
            }
            (Just(ops).prop_shuffle(), Just(duplicate_batches))
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random interleavings, duplications (up to ×5) and reorderings of findings and status
    /// events converge: the newest finding wins the row, at most one start per finding attempt,
    /// at most one open OpsItem per finding and none for a finding that is Green.
    #[test]
    fn deliveries_in_any_order_converge((ops, duplicate_batches) in scenario()) {
        let events = finding_events();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let (local, _) = local_loop();
            let mut pipeline = Pipeline::new(&local);
            pipeline.duplicate_batches = duplicate_batches;
            let mut late = vec![];
            // The oracle: per resource, the state of the latest event delivered.
            let mut newest: HashMap<String, (i64, Status)> = HashMap::new();
            for op in &ops {
                match op {
                    Op::Event(i) => {
                        let said = &events[*i];
                        pipeline.deliver_event(&said.event).await;
                        let entry = newest.entry(said.resource.clone()).or_insert((i64::MIN, Status::Green));
                        if said.seconds > entry.0 {
                            *entry = (said.seconds, said.status);
                        }
                    }
                    Op::Complete(delay) => {
                        let statuses = local.complete_automations(|_| ("Success".to_owned(), None));
                        for status in &statuses {
                            pipeline.deliver_status(status).await;
                        }
                        if *delay {
                            late.extend(statuses);
                        }
                    }
                }
            }
            for status in &late {
                pipeline.deliver_status(status).await;
            }
            prop_assert!(pipeline.parked.is_empty(), "parked: {:?}", pipeline.parked);
            let rows = local.tracker.rows();
            prop_assert_eq!(rows.len(), newest.len());
            for row in &rows {
                prop_assert_eq!(row.resource_status, newest[&row.resource].1, "row {}", row.resource);
            }
            let mut starts: HashMap<String, usize> = HashMap::new();
            for execution in local.automation.executions() {
                *starts.entry(execution.tags[TAG_FINDING].clone()).or_default() += 1;
            }
            // The clock stands still, so the cool-down allows one attempt per finding.
            prop_assert!(starts.values().all(|n| *n == 1), "starts {:?}", starts);
            for row in &rows {
                let open = local
                    .ops_center
                    .items()
                    .into_iter()
                    .filter(|i| i.status != OpsItemStatus::Resolved)
                    .filter(|i| i.operational_data.get(DATA_FINDING_KEY).is_some_and(|d| d.value == row.hash_key))
                    .count();
                prop_assert!(open <= 1, "{} open OpsItems for {}", open, row.resource);
                if row.resource_status == Status::Green {
                    prop_assert_eq!(open, 0, "a Green finding keeps an open OpsItem: {}", &row.resource);
                }
            }
            Ok(())
        })?;
    }
}

fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!("{}/fixtures/{path}", env!("CARGO_MANIFEST_DIR")))
        .expect("fixture exists")
}

/// Each malformed event is rejected with its own reason; odd but valid ones are tracked; none
/// panics, and the good event after them is still handled.
#[tokio::test]
async fn malformed_events_are_rejected_each_with_its_reason() {
    let (local, _) = local_loop();
    let cases: Vec<Value> = serde_json::from_str(&fixture("bad-events/expected.json")).unwrap();
    assert!(cases.len() >= 15);
    for case in &cases {
        let file = case["file"].as_str().unwrap();
        let expected = case["expected"].as_str().unwrap();
        let text = fixture(&format!("bad-events/{file}"));
        let reason = match serde_json::from_str::<Value>(&text) {
            Err(error) => format!("not JSON: {error}"),
            Ok(event) => match local.track(&event).await.unwrap() {
                Tracked::Rejected(rejection) => rejection.to_string(),
                other => panic!("{file} was not rejected: {other:?}"),
            },
        };
        assert!(
            reason.contains(expected),
            "{file}: {reason:?} should contain {expected:?}"
        );
    }
    let huge = {
        let mut event = ta_event(SG_CHECK, &sg_arn("sg-huge"), "Red", at(0));
        event["detail"]["check-item-detail"]["Notes"] = json!("x".repeat(MAX_ITEM_BYTES));
        event
    };
    assert!(matches!(
        local.track(&huge).await.unwrap(),
        Tracked::Rejected(tarem_shared::finding::Rejection::TooLarge { .. })
    ));
    assert!(
        local.tracker.rows().is_empty(),
        "nothing was written for a rejected event"
    );

    let odd: Vec<Value> = serde_json::from_str(&fixture("bad-events/valid.json")).unwrap();
    let mut pipeline = Pipeline::new(&local);
    for case in &odd {
        let event: Value = serde_json::from_str(&fixture(&format!(
            "bad-events/{}",
            case["file"].as_str().unwrap()
        )))
        .unwrap();
        pipeline.deliver_event(&event).await;
    }
    pipeline
        .deliver_event(&ta_event(SG_CHECK, &sg_arn("sg-good"), "Red", at(0)))
        .await;
    assert!(pipeline.parked.is_empty(), "{:?}", pipeline.parked);
    let rows: Vec<String> = local
        .tracker
        .rows()
        .into_iter()
        .map(|f| f.resource)
        .collect();
    for case in &odd {
        assert!(
            rows.contains(&case["resource"].as_str().unwrap().to_owned()),
            "{case}"
        );
    }
    // The injected ARN's "id" stays inside GroupId; no parameter was added.
    for execution in local.automation.executions() {
        assert_eq!(
            execution.parameters.keys().collect::<Vec<_>>(),
            ["AutomationAssumeRole", "GroupId"]
        );
        assert_eq!(
            execution.parameters["AutomationAssumeRole"],
            ["arn:aws:iam::123456789012:role/TaremAutomationRole"]
        );
    }
    // The odd-Unicode event names another (unmapped) check: the two odd ARNs and the good one start.
    assert_eq!(local.automation.executions().len(), 3);
}

/// Each broken mapping starts nothing, its OpsItem names the field at fault, and the other
/// records of the same batch are processed.
#[tokio::test]
async fn broken_mappings_start_nothing_and_say_which_field() {
    let cases: Vec<Value> = serde_json::from_str(&fixture("bad-mappings/expected.json")).unwrap();
    assert!(cases.len() >= 12);
    for case in &cases {
        let file = case["file"].as_str().unwrap();
        let (local, _) = local_loop();
        let item: Value = serde_json::from_str(&fixture(&format!("bad-mappings/{file}"))).unwrap();
        local.mappings.put(&item).unwrap();
        local
            .mappings
            .put(&walkthrough_mapping(
                EC2_CHECK,
                "AWS-StopEC2Instance",
                &format!(r#"{{"InstanceId": ["$resourceId"], "AutomationAssumeRole": ["{AUTOMATION_ROLE}"]}}"#),
                r"(i-\w+)",
                true,
            ))
            .unwrap();
        local
            .track(&ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0)))
            .await
            .unwrap();
        local
            .track(&ta_event(EC2_CHECK, &instance_arn("i-1"), "Red", at(0)))
            .await
            .unwrap();
        let report = local.deliver_stream().await;
        assert!(
            report.batch_item_failures().is_empty(),
            "{file}: a broken mapping is not retried"
        );
        assert!(
            report
                .records
                .iter()
                .all(|r| r.outcome == RecordOutcome::Done),
            "{file}"
        );
        let executions = local.automation.executions();
        assert_eq!(
            executions.len(),
            1,
            "{file}: only the healthy mapping starts"
        );
        assert_eq!(executions[0].document, "AWS-StopEC2Instance");
        let item = &local.ops_center.items()[0];
        let note: Value =
            serde_json::from_str(&item.operational_data[DATA_REMEDIATION].value).unwrap();
        let detail = note["detail"].as_str().unwrap();
        let field = case["field"].as_str().unwrap();
        let expected = case["expected"].as_str().unwrap();
        assert!(
            detail.contains(&format!("`{field}`")) && detail.contains(expected),
            "{file}: {detail}"
        );
        assert!(
            report.records[0]
                .steps
                .iter()
                .any(|s| matches!(s, Step::NoAutomation { .. })),
            "{file}"
        );
    }
}

/// Unreadable stream records are parked; the good records around them are processed.
#[tokio::test]
async fn unreadable_stream_records_do_not_block_the_batch() {
    let (local, _) = local_loop();
    local
        .track(&ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0)))
        .await
        .unwrap();
    let good = local.pending_stream_batch()["Records"][0].clone();
    let mut bad_image = good.clone();
    bad_image["dynamodb"]["NewImage"]["resourceStatus"] = json!({"S": "Purple"});
    bad_image["dynamodb"]["SequenceNumber"] = json!("000000000000000000001");
    let batch = json!({ "Records": ["not a record", {"eventName": 7}, bad_image, good] });
    let report = local.results.handle_batch(&batch, None).await;
    assert_eq!(report.records.len(), 4);
    assert!(
        matches!(&report.records[2].outcome, RecordOutcome::Parked(reason) if reason.contains("NewImage"))
    );
    assert_eq!(report.records[3].outcome, RecordOutcome::Done);
    assert!(
        report.batch_item_failures().is_empty(),
        "permanent problems are not retried"
    );
    assert_eq!(local.automation.executions().len(), 1);
}

/// The stream records written so far, never delivered: Lambda gave up on their batch, and its
/// on-failure record (which names the sequence range only) is parked.
fn park_pending_stream_range(local: &LocalLoop) {
    let lost = local.pending_stream_batch();
    let sequence = lost["Records"][0]["dynamodb"]["SequenceNumber"]
        .as_str()
        .unwrap()
        .to_owned();
    local.parked.send(
        json!({
            "requestContext": {"condition": "RetryAttemptsExhausted"},
            "DDBStreamBatchInfo": {"shardId": "shardId-1", "startSequenceNumber": sequence,
                "endSequenceNumber": sequence, "streamArn": "arn:aws:dynamodb:us-east-1:123456789012:table/T/stream/1"}
        })
        .to_string(),
    );
}

/// What a handler parked comes back through the same handler after the fix, and leaves the
/// queue; a dry run reads without touching anything.
#[tokio::test]
async fn parked_messages_replay_through_the_same_handlers_after_a_fix() {
    use tarem_shared::replay::Replayer;
    let (local, _) = local_loop();
    // Reading the tracker is refused (say an IAM mistake) for the first record only.
    local.faults.fail(
        "tracker.get",
        1,
        PortError::new(
            "GetItem",
            ErrorKind::AccessDenied,
            "AccessDeniedException: not allowed",
        ),
    );
    let mut pipeline = Pipeline::new(&local);
    pipeline
        .deliver_event(&ta_event(EC2_CHECK, &instance_arn("i-1"), "Red", at(0)))
        .await;
    assert!(local.ops_center.items().is_empty());
    // A malformed event, parked by check-tracker.
    local
        .track(&json!({"source": "aws.trustedadvisor"}))
        .await
        .unwrap();
    // A stream batch Lambda gave up on (its on-failure record names the range only).
    local
        .track(&ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0)))
        .await
        .unwrap();
    park_pending_stream_range(&local);
    assert_eq!(local.parked.messages().len(), 3);

    let replayer = Replayer {
        queue: &*local.parked,
        stream: &local,
        redrive: &local,
    };
    let dry = replayer.replay(10, true).await.unwrap();
    assert_eq!(dry.len(), 3);
    assert!(
        dry.iter()
            .all(|r| r.outcome == "would replay" && !r.deleted)
    );
    assert_eq!(
        local.parked.messages().len(),
        3,
        "a dry run deletes nothing"
    );
    assert!(
        local.ops_center.items().is_empty(),
        "a dry run invokes nothing"
    );

    // A dry run hides nothing: a second one right after sees every message again, and so does
    // the real replay (no waiting out the queue's visibility timeout).
    let again = replayer.replay(10, true).await.unwrap();
    assert_eq!(again.len(), 3, "{again:?}");
    let replayed = replayer.replay(10, false).await.unwrap();
    let outcomes: Vec<(&str, &str)> = replayed
        .iter()
        .map(|r| (r.target.as_str(), r.outcome.as_str()))
        .collect();
    assert_eq!(outcomes[0], ("results-handler", "replayed"));
    assert_eq!(outcomes[1].0, "check-tracker");
    assert!(
        outcomes[1].1.starts_with("parked again: "),
        "still malformed: {outcomes:?}"
    );
    assert_eq!(outcomes[2], ("results-handler", "replayed"));
    assert_eq!(
        replayed.len(),
        3,
        "a message parked again waits for the next run"
    );
    assert_eq!(
        local.parked.messages().len(),
        1,
        "only the still-malformed event is left"
    );
    assert_eq!(
        local.ops_center.items().len(),
        2,
        "both findings now have their OpsItem"
    );
    assert_eq!(
        local.automation.executions().len(),
        1,
        "the recovered security group is remediated once"
    );
}

/// A stream batch Lambda gave up on, replayed 25 hours later: DynamoDB Streams no longer holds
/// its records (it keeps them up to 24 hours). The replay says so and keeps the message; the
/// finding is not lost, because its row waited in the tracker's pending index and the sweep
/// acted on it long before.
#[tokio::test]
async fn a_stream_range_replayed_after_the_stream_trimmed_it_is_said_and_the_sweep_kept_the_finding()
 {
    use tarem_shared::replay::Replayer;
    let (local, clock) = local_loop();
    local
        .track(&ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0)))
        .await
        .unwrap();
    park_pending_stream_range(&local);
    // The sweeps run meanwhile: the row's settle check finds the change no record delivered.
    for _ in 0..4 {
        clock.advance(chrono::Duration::minutes(15));
        local.sweep_episodes().await.unwrap();
    }
    assert_eq!(
        local.automation.executions().len(),
        1,
        "the sweep started it"
    );
    let replayer = Replayer {
        queue: &*local.parked,
        stream: &local,
        redrive: &local,
    };
    // Within the day the records are still there: the replay goes through (and starts nothing
    // twice).
    let early = replayer.replay(10, true).await.unwrap();
    assert_eq!(early[0].outcome, "would replay");
    clock.advance(chrono::Duration::hours(25));
    let late = replayer.replay(10, false).await.unwrap();
    assert_eq!(
        late[0].outcome,
        "failed: the stream no longer holds these records (kept 24 hours)"
    );
    assert!(!late[0].deleted, "the message stays for a person to read");
    assert_eq!(local.parked.messages().len(), 1);
    assert_eq!(local.automation.executions().len(), 1);
}

/// A finding's later records wait behind its failed one: the reply names both, in order, and
/// the later state is not acted on before the earlier one; another finding's record in the same
/// batch is done. Lambda redelivers from the failed record and the batch converges.
#[tokio::test]
async fn a_findings_later_records_wait_behind_its_failed_one() {
    let (local, _) = local_loop();
    local
        .track(&ta_event(SG_CHECK, &sg_arn("sg-a"), "Red", at(0)))
        .await
        .unwrap();
    local
        .track(&ta_event(SG_CHECK, &sg_arn("sg-a"), "Yellow", at(60)))
        .await
        .unwrap();
    local
        .track(&ta_event(SG_CHECK, &sg_arn("sg-b"), "Red", at(0)))
        .await
        .unwrap();
    let batch = local.pending_stream_batch();
    let sequence = |i: usize| {
        batch["Records"][i]["dynamodb"]["SequenceNumber"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // The first record's read of the tracker row is throttled.
    local.faults.fail(
        "tracker.get",
        1,
        PortError::new("GetItem", ErrorKind::Throttled, "ThrottlingException"),
    );
    let report = local.results.handle_batch(&batch, None).await;
    assert_eq!(report.batch_item_failures(), [sequence(0), sequence(1)]);
    assert_eq!(
        report.records[1].outcome,
        RecordOutcome::Retry("an earlier record of this finding failed in this batch".into())
    );
    assert_eq!(report.records[2].outcome, RecordOutcome::Done);
    // Only sg-b has an OpsItem and a start so far: nothing acted on sg-a's later state.
    let started: Vec<String> = local
        .automation
        .executions()
        .into_iter()
        .map(|e| e.parameters["GroupId"][0].clone())
        .collect();
    assert_eq!(started, ["sg-b"]);
    assert_eq!(local.ops_center.items().len(), 1);

    // Lambda hands the batch back from the first failed record.
    let mut redelivered = batch.clone();
    redelivered["Records"].as_array_mut().unwrap().truncate(2);
    let report = local.results.handle_batch(&redelivered, None).await;
    assert!(report.batch_item_failures().is_empty(), "{report:?}");
    let mut started: Vec<String> = local
        .automation
        .executions()
        .into_iter()
        .map(|e| e.parameters["GroupId"][0].clone())
        .collect();
    started.sort();
    assert_eq!(started, ["sg-a", "sg-b"], "one start per finding");
    assert_eq!(local.ops_center.items().len(), 2);
}
