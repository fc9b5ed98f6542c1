//! The loop end to end on the in-memory backend: the properties of GUIDE.md §3 that the core
//! guarantees, each checked the way a user would notice it.
//!
//! Long on purpose: one test per property of the loop, sharing its helpers.

use serde_json::{Value, json};
use tarem_e2e::*;
use tarem_shared::automation_event::status_event;
use tarem_shared::clock::Clock;
use tarem_shared::episode::Episode;
use tarem_shared::error::PortError;
use tarem_shared::finding::Status;
use tarem_shared::handlers::ExecutionHandler;
use tarem_shared::handlers::{ExecutionOutcome, RecordOutcome, Step, Tracked};
use tarem_shared::memory::InMemoryAutomation;
use tarem_shared::ports::OpsItemStatus;
use tarem_shared::ports::{DATA_AUTOMATION, DATA_REMEDIATION};
use tarem_shared::ports::{EpisodePage, ExecutionRecord, ExecutionStore, StatusWrite};

fn data(local: &tarem_shared::local::LocalLoop, id: &str, key: &str) -> Value {
    let item = local.ops_center.get(id).expect("OpsItem exists");
    serde_json::from_str(&item.operational_data[key].value).expect("operational data is JSON")
}

#[tokio::test]
async fn a_mapped_red_finding_is_remediated_once_and_resolved_when_trusted_advisor_confirms() {
    let (local, clock) = local_loop();
    let arn = sg_arn("sg-0a1b2c3d4e5f67890");
    deliver(&local, &ta_event(SG_CHECK, &arn, "Red", at(0))).await;

    let executions = local.automation.executions();
    assert_eq!(executions.len(), 1);
    let execution = &executions[0];
    assert_eq!(execution.document, SG_DOCUMENT);
    assert_eq!(
        execution.region, "ap-southeast-2",
        "runs in the resource's region"
    );
    assert_eq!(
        execution.parameters["GroupId"],
        vec!["sg-0a1b2c3d4e5f67890".to_owned()]
    );
    let items = local.ops_center.items();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].title, format!("[TA] [{SG_CHECK}] [{arn}]"));
    assert_eq!(items[0].status, OpsItemStatus::InProgress);
    assert_eq!(execution.tags["tarem:opsItemId"], items[0].id);
    assert_eq!(
        local.executions.rows()[0].ops_item_id.as_deref(),
        Some(items[0].id.as_str())
    );

    // A Success is verified, not assumed: the OpsItem waits for Trusted Advisor.
    finish_all(&local, "Success").await;
    let item = local.ops_center.get(&items[0].id).unwrap();
    assert_eq!(item.status, OpsItemStatus::InProgress);
    assert_eq!(data(&local, &item.id, DATA_AUTOMATION)["status"], "Success");
    let note = data(&local, &item.id, DATA_REMEDIATION);
    assert_eq!(note["state"], "verifying");
    assert!(
        note["detail"]
            .as_str()
            .unwrap()
            .contains("waiting for Trusted Advisor to confirm"),
        "{note}"
    );
    assert_eq!(
        local.executions.rows()[0].status,
        "Success",
        "the row is kept and updated"
    );

    clock.advance(chrono::Duration::hours(2));
    deliver(&local, &ta_event(SG_CHECK, &arn, "Green", at(3600))).await;
    let item = local.ops_center.get(&items[0].id).unwrap();
    assert_eq!(item.status, OpsItemStatus::Resolved);
    assert_eq!(data(&local, &item.id, DATA_REMEDIATION)["state"], "fixed");
    assert_eq!(local.automation.executions().len(), 1);
}

#[tokio::test]
async fn an_unmapped_finding_gets_an_open_ops_item_that_a_green_event_resolves() {
    let (local, _) = local_loop();
    let arn = instance_arn("i-0f1e2d3c4b5a69788");
    deliver(&local, &ta_event(EC2_CHECK, &arn, "Red", at(0))).await;
    let items = local.ops_center.items();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].status, OpsItemStatus::Open);
    assert_eq!(
        data(&local, &items[0].id, "/aws/resources"),
        json!([{ "arn": arn }])
    );
    assert!(local.automation.executions().is_empty());

    let report = deliver(&local, &ta_event(EC2_CHECK, &arn, "Green", at(60))).await;
    assert!(
        report.records[0].steps.contains(&Step::OpsItemUpdated {
            id: items[0].id.clone(),
            status: Some("Resolved".into())
        }),
        "{:?}",
        report.records[0].steps
    );
    assert_eq!(
        local.ops_center.get(&items[0].id).unwrap().status,
        OpsItemStatus::Resolved
    );
    assert!(
        data(&local, &items[0].id, DATA_REMEDIATION)["detail"]
            .as_str()
            .unwrap()
            .contains("Trusted Advisor reported the resource Green")
    );
}

#[tokio::test]
async fn the_same_event_five_times_tracks_once_starts_once_and_opens_one_ops_item() {
    let (local, _) = local_loop();
    let event = ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0));
    let mut outcomes = vec![];
    for _ in 0..5 {
        outcomes.push(local.track(&event).await.unwrap());
        local.deliver_stream().await;
    }
    assert!(matches!(outcomes[0], Tracked::Written(_)));
    assert!(
        outcomes[1..]
            .iter()
            .all(|o| matches!(o, Tracked::Duplicate(_)))
    );
    assert_eq!(local.tracker.rows().len(), 1);
    assert_eq!(local.automation.executions().len(), 1);
    assert_eq!(local.ops_center.items().len(), 1);
}

/// Every order of the same deliveries (duplicates included) ends in the same rows, one automation
/// per finding and one OpsItem per finding.
#[tokio::test]
async fn shuffled_and_duplicated_deliveries_converge() {
    let events: Vec<Value> = ["sg-a", "sg-b"]
        .iter()
        .flat_map(|group| {
            let arn = sg_arn(group);
            [
                ta_event(SG_CHECK, &arn, "Red", at(0)),
                ta_event(SG_CHECK, &arn, "Red", at(0)),
                ta_event(SG_CHECK, &arn, "Red", at(30)),
                ta_event(SG_CHECK, &arn, "Yellow", at(60)),
            ]
        })
        .collect();
    let mut expected_rows = None;
    // 40 deterministic shuffles (a linear congruential generator keeps the test repeatable).
    let mut seed: u64 = 0x5eed;
    for _ in 0..40 {
        let mut order: Vec<usize> = (0..events.len()).collect();
        for i in (1..order.len()).rev() {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            order.swap(i, (seed >> 33) as usize % (i + 1));
        }
        let (local, _) = local_loop();
        for &i in &order {
            deliver(&local, &events[i]).await;
        }
        let rows: Vec<(String, Status, String)> = local
            .tracker
            .rows()
            .into_iter()
            .map(|f| (f.resource, f.resource_status, f.last_updated_time))
            .collect();
        assert_eq!(rows.len(), 2, "order {order:?}");
        assert!(
            rows.iter().all(|(_, status, _)| *status == Status::Yellow),
            "order {order:?}: {rows:?}"
        );
        assert_eq!(local.automation.executions().len(), 2, "order {order:?}");
        assert_eq!(local.ops_center.items().len(), 2, "order {order:?}");
        match &expected_rows {
            None => expected_rows = Some(rows),
            Some(expected) => assert_eq!(&rows, expected, "order {order:?}"),
        }
    }
}

#[tokio::test]
async fn an_older_event_after_a_newer_one_leaves_the_newer_status() {
    let (local, _) = local_loop();
    let arn = instance_arn("i-1");
    deliver(&local, &ta_event(EC2_CHECK, &arn, "Green", at(60))).await;
    let stale = local
        .track(&ta_event(EC2_CHECK, &arn, "Red", at(0)))
        .await
        .unwrap();
    assert!(matches!(stale, Tracked::Stale(_)));
    assert!(
        local.tracker.take_stream().is_empty(),
        "a stale event writes nothing"
    );
    assert_eq!(local.tracker.rows()[0].resource_status, Status::Green);
    assert!(local.ops_center.items().is_empty());
}

#[tokio::test]
async fn a_regex_miss_starts_nothing_and_the_ops_item_says_why() {
    let (local, _) = local_loop();
    // The check is mapped to the security-group runbook, but this resource is not a group.
    let arn = "arn:aws:ec2:ap-southeast-2:123456789012:network-interface/eni-1";
    let report = deliver(&local, &ta_event(SG_CHECK, arn, "Red", at(0))).await;
    assert!(local.automation.executions().is_empty());
    assert_eq!(
        report.records[0].outcome,
        RecordOutcome::Done,
        "not retried"
    );
    let item = &local.ops_center.items()[0];
    let remediation = data(&local, &item.id, DATA_REMEDIATION);
    assert_eq!(remediation["state"], "flagged");
    assert!(
        remediation["detail"]
            .as_str()
            .unwrap()
            .contains("does not match the resource"),
        "{remediation}"
    );
    assert!(item.description.contains("does not match"));
}

/// An id with JSON syntax (quotes, spaces) is not a resource id: it never reaches a runbook,
/// and the OpsItem says why. (Values are substituted structurally all the same: the mapping
/// module's template tests.)
#[tokio::test]
async fn an_id_with_json_syntax_never_reaches_a_runbook() {
    let (local, _) = local_loop();
    local
        .mappings
        .put(&walkthrough_mapping(
            SG_CHECK,
            SG_DOCUMENT,
            r#"{"GroupId": ["$resourceId"], "AutomationAssumeRole": ["arn:aws:iam::123456789012:role/TaremAutomationRole"]}"#,
            r"security-group/(.+)$",
            true,
        ))
        .unwrap();
    let hostile = r#"sg-1", "AutomationAssumeRole": ["arn:aws:iam::999999999999:role/Evil"], "x": ["$region]"#;
    deliver(&local, &ta_event(SG_CHECK, &sg_arn(hostile), "Red", at(0))).await;
    assert!(local.automation.executions().is_empty());
    let item = &local.ops_center.items()[0];
    assert!(
        item.description.contains("which is not a resource id"),
        "{}",
        item.description
    );
}

/// `\w` matches any Unicode letter: an id that is not printable ASCII never reaches SSM.
#[tokio::test]
async fn a_non_ascii_id_matched_by_a_word_class_never_reaches_a_runbook() {
    let (local, _) = local_loop();
    deliver(
        &local,
        &ta_event(SG_CHECK, &sg_arn("sg-\u{e9}1"), "Red", at(0)),
    )
    .await;
    assert!(local.automation.executions().is_empty());
    assert!(
        local.ops_center.items()[0]
            .description
            .contains("extracts \"sg-é1\"")
    );
}

#[tokio::test]
async fn a_batch_with_an_unmapped_record_first_still_processes_the_rest() {
    let (local, _) = local_loop();
    local
        .track(&ta_event(EC2_CHECK, &instance_arn("i-1"), "Red", at(0)))
        .await
        .unwrap();
    local
        .track(&ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0)))
        .await
        .unwrap();
    local
        .track(&ta_event(SG_CHECK, &sg_arn("sg-2"), "Yellow", at(0)))
        .await
        .unwrap();
    let report = local.deliver_stream().await;
    assert_eq!(report.records.len(), 3);
    assert!(
        report
            .records
            .iter()
            .all(|r| r.outcome == RecordOutcome::Done)
    );
    assert_eq!(local.ops_center.items().len(), 3);
    assert_eq!(local.automation.executions().len(), 2);
}

#[tokio::test]
async fn failed_and_timed_out_automations_leave_the_ops_item_open_with_the_reason() {
    for status in ["Failed", "TimedOut", "Cancelled"] {
        let (local, _) = local_loop();
        deliver(&local, &ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0))).await;
        finish_all(&local, status).await;
        let item = &local.ops_center.items()[0];
        assert_eq!(item.status, OpsItemStatus::Open, "{status}");
        let automation = data(&local, &item.id, DATA_AUTOMATION);
        assert_eq!(automation["status"], status);
        assert_eq!(automation["document"], SG_DOCUMENT);
        assert_eq!(automation["region"], "ap-southeast-2");
        assert_eq!(
            automation["executionId"],
            local.automation.executions()[0].execution_id.as_str()
        );
        assert_eq!(
            automation["reason"],
            format!("Step failed in {SG_DOCUMENT}")
        );
    }
}

#[tokio::test]
async fn a_redelivered_batch_never_starts_a_second_automation() {
    let (local, _) = local_loop();
    local
        .track(&ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0)))
        .await
        .unwrap();
    let batch = local.pending_stream_batch();
    let first = local.results.handle_batch(&batch, None).await;
    assert!(
        first.records[0]
            .steps
            .iter()
            .any(|s| matches!(s, Step::AutomationStarted { .. })),
        "{:?}",
        first.records[0].steps
    );
    let again = local.results.handle_batch(&batch, None).await;
    assert!(
        !again.records[0]
            .steps
            .iter()
            .any(|s| matches!(s, Step::AutomationStarted { .. })),
        "the episode already made its attempt: {:?}",
        again.records[0].steps
    );
    assert_eq!(local.automation.executions().len(), 1);
    assert_eq!(local.ops_center.items().len(), 1);
}

/// The status event can beat the execution row: the results handler started the runbook but
/// failed to write the row (retried later), and SSM's Success arrives first. The execution's own
/// tags name the finding and the attempt.
#[tokio::test]
async fn a_status_event_before_the_execution_row_reaches_the_episode_through_tags() {
    let (local, clock) = local_loop();
    local.faults.fail(
        "executions.record_started",
        1,
        tarem_shared::error::PortError::new(
            "UpdateItem",
            tarem_shared::error::ErrorKind::Unavailable,
            "injected",
        ),
    );
    local
        .track(&ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0)))
        .await
        .unwrap();
    let batch = local.pending_stream_batch();
    let first = local.results.handle_batch(&batch, None).await;
    assert_eq!(first.batch_item_failures().len(), 1, "{first:?}");
    assert!(local.executions.rows().is_empty(), "no row yet");
    let execution = local.automation.executions()[0].clone();
    local
        .automation
        .complete(&execution.execution_id, "Success", None);
    let event = status_event(
        "123456789012",
        &execution.region,
        &execution.execution_id,
        SG_DOCUMENT,
        "Success",
        clock.now(),
    );
    let outcome = local.execution_handler.handle(&event).await.unwrap();
    let ops_item = local.ops_center.items()[0].id.clone();
    assert!(
        matches!(&outcome, ExecutionOutcome::Recorded { ops_item_id, state, .. }
            if ops_item_id.as_deref() == Some(ops_item.as_str()) && state.as_deref() == Some("verifying")),
        "{outcome:?}"
    );
    // Lambda retries the record: it finds its attempt started and writes the row.
    let again = local.results.handle_batch(&batch, None).await;
    assert!(again.batch_item_failures().is_empty(), "{again:?}");
    assert_eq!(local.automation.executions().len(), 1);
    assert_eq!(local.executions.rows()[0].status, "Success");
    assert_eq!(
        local.ops_center.get(&ops_item).unwrap().status,
        OpsItemStatus::InProgress,
        "the outcome is not undone: still verifying"
    );
}

#[tokio::test]
async fn status_events_for_other_executions_and_late_statuses_change_nothing() {
    let (local, clock) = local_loop();
    let foreign = status_event(
        "123456789012",
        "eu-west-1",
        "00000000-aaaa-4000-8000-000000000000",
        "X",
        "Success",
        clock.now(),
    );
    assert!(matches!(
        local.execution_handler.handle(&foreign).await.unwrap(),
        ExecutionOutcome::NotOurs { .. }
    ));

    deliver(&local, &ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0))).await;
    finish_all(&local, "Success").await;
    let execution = &local.automation.executions()[0];
    let late = status_event(
        "123456789012",
        &execution.region,
        &execution.execution_id,
        SG_DOCUMENT,
        "InProgress",
        clock.now(),
    );
    assert!(matches!(
        local.execution_handler.handle(&late).await.unwrap(),
        ExecutionOutcome::Late { .. }
    ));
    assert_eq!(
        local.ops_center.items()[0].status,
        OpsItemStatus::InProgress,
        "still verifying the Success"
    );
    assert_eq!(local.executions.episodes()[0].stage.name(), "verifying");
    assert_eq!(local.executions.rows()[0].status, "Success");
    let ops_item = local.ops_center.items()[0].id.clone();
    assert_eq!(
        data(&local, &ops_item, DATA_AUTOMATION)["status"],
        "Success",
        "the OpsItem keeps the final status"
    );

    let rejected = local
        .execution_handler
        .handle(&json!({"source": "aws.ec2"}))
        .await
        .unwrap();
    assert!(matches!(rejected, ExecutionOutcome::Rejected(_)));
}

/// Trusted Advisor's data lags the fix: flagged refreshes within the grace period after a
/// successful runbook are not failed verifications. One start, one OpsItem, still verifying.
#[tokio::test]
async fn refreshes_within_the_verify_grace_do_not_run_the_runbook_again() {
    let (local, clock) = local_loop();
    let arn = sg_arn("sg-1");
    deliver(&local, &ta_event(SG_CHECK, &arn, "Red", at(0))).await;
    finish_all(&local, "Success").await;
    for minute in 1..5 {
        clock.advance(chrono::Duration::minutes(5));
        deliver(
            &local,
            &ta_event(SG_CHECK, &arn, "Red", at(3600 + minute * 300)),
        )
        .await;
        local.sweep_episodes().await.unwrap();
    }
    assert_eq!(local.automation.executions().len(), 1);
    let items = local.ops_center.items();
    assert_eq!(items.len(), 1, "one OpsItem per episode");
    assert_eq!(items[0].status, OpsItemStatus::InProgress);
    assert_eq!(
        data(&local, &items[0].id, DATA_REMEDIATION)["state"],
        "verifying"
    );
}

#[tokio::test]
async fn a_record_retried_after_the_resource_turned_green_starts_nothing() {
    let (local, _) = local_loop();
    let arn = sg_arn("sg-1");
    local
        .track(&ta_event(SG_CHECK, &arn, "Red", at(0)))
        .await
        .unwrap();
    let red_batch = local.pending_stream_batch();
    local
        .track(&ta_event(SG_CHECK, &arn, "Green", at(60)))
        .await
        .unwrap();
    let green_batch = local.pending_stream_batch();
    let report = local.results.handle_batch(&red_batch, None).await;
    assert!(local.automation.executions().is_empty(), "{report:?}");
    assert!(
        matches!(&report.records[0].steps[..], [Step::Skipped { reason }] if reason.starts_with("stale")),
        "the late Red acts on nothing: {report:?}"
    );
    local.results.handle_batch(&green_batch, None).await;
    // The Red never reached an episode, so there is no OpsItem to open or resolve.
    assert!(local.ops_center.items().is_empty());
    assert!(local.automation.executions().is_empty());
}

#[tokio::test]
async fn broken_mappings_and_refused_starts_are_parked_with_a_reason_not_retried() {
    let (local, _) = local_loop_with(InMemoryAutomation::with_documents(&["AWS-SomethingElse"]));
    local
        .mappings
        .put(&json!({"checkName": EC2_CHECK, "ssmAutomationDocument": "AWS-StopEC2Instance", "automationStatus": "yes"}))
        .unwrap();
    local
        .track(&ta_event(EC2_CHECK, &instance_arn("i-1"), "Red", at(0)))
        .await
        .unwrap();
    local
        .track(&ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0)))
        .await
        .unwrap();
    let report = local.deliver_stream().await;
    assert!(report.batch_item_failures().is_empty());
    assert_eq!(report.records[0].outcome, RecordOutcome::Done);
    let broken = data(&local, &local.ops_center.items()[0].id, DATA_REMEDIATION);
    assert!(
        broken["detail"]
            .as_str()
            .unwrap()
            .contains("`automationStatus` must be a boolean"),
        "{broken}"
    );
    assert!(
        matches!(&report.records[1].outcome, RecordOutcome::Parked(reason) if reason.contains("InvalidDocument"))
    );
    let refused = data(&local, &local.ops_center.items()[1].id, DATA_REMEDIATION);
    assert_eq!(refused["state"], "escalated", "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("InvalidDocument"),
        "the OpsItem says why: {refused}"
    );
}

fn sample(name: &str) -> Value {
    let path = format!("{}/../events/lambda/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("sample event exists"))
        .expect("sample event is JSON")
}

/// `events/lambda/` holds one ready event per function (`cargo lambda invoke --data-file`).
#[tokio::test]
async fn the_sample_lambda_events_are_what_each_handler_expects() {
    let (local, _) = local_loop();
    let tracked = local.track(&sample("check-tracker.json")).await.unwrap();
    let Tracked::Written(from_event) = tracked else {
        panic!("the sample TA event must be tracked: {tracked:?}");
    };

    let batch = sample("results-handler.json");
    let change = tarem_shared::stream::decode_record(&batch["Records"][0]).unwrap();
    let from_stream = change.new.unwrap();
    assert_eq!(
        tarem_shared::finding::Finding {
            tracked_at: None,
            ..from_stream
        },
        tarem_shared::finding::Finding {
            tracked_at: None,
            ..*from_event
        },
        "the sample stream record is the row check-tracker writes for the sample event"
    );
    let report = local.results.handle_batch(&batch, None).await;
    assert!(report.batch_item_failures().is_empty());
    assert!(
        report.records[0]
            .steps
            .iter()
            .any(|s| matches!(s, Step::AutomationStarted { .. }))
    );

    let outcome = local
        .execution_handler
        .handle(&sample("automation-execution-handler.json"))
        .await
        .unwrap();
    assert!(
        matches!(outcome, ExecutionOutcome::NotOurs { .. }),
        "{outcome:?}"
    );
}

/// The execution table as the results handler meets it when SSM's Success is handled in the
/// moment between the execution row's write and the attempt's link: the outcome moves the
/// episode to verifying first.
struct OutcomeArrivesBeforeTheLink {
    inner: std::sync::Arc<dyn ExecutionStore>,
    outcomes: ExecutionHandler,
    automation: std::sync::Arc<InMemoryAutomation>,
}

#[async_trait::async_trait]
impl ExecutionStore for OutcomeArrivesBeforeTheLink {
    async fn record_started(&self, record: &ExecutionRecord) -> Result<String, PortError> {
        let status = self.inner.record_started(record).await?;
        let id = &record.automation_execution_id;
        self.automation.complete(id, "Success", None);
        let event = status_event(
            "123456789012",
            &record.region,
            id,
            SG_DOCUMENT,
            "Success",
            self.outcomes.clock.now(),
        );
        self.outcomes
            .handle(&event)
            .await
            .expect("the outcome is recorded");
        Ok(status)
    }
    async fn get(&self, id: &str) -> Result<Option<ExecutionRecord>, PortError> {
        self.inner.get(id).await
    }
    async fn record_status(&self, record: &ExecutionRecord) -> Result<StatusWrite, PortError> {
        self.inner.record_status(record).await
    }
    async fn get_episode(&self, key: &str) -> Result<Option<Episode>, PortError> {
        self.inner.get_episode(key).await
    }
    async fn put_episode(&self, episode: &Episode) -> Result<bool, PortError> {
        self.inner.put_episode(episode).await
    }
    async fn open_episodes(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<EpisodePage, PortError> {
        self.inner.open_episodes(after, limit).await
    }
    async fn episodes(&self, after: Option<&str>, limit: usize) -> Result<EpisodePage, PortError> {
        self.inner.episodes(after, limit).await
    }
    async fn due_episodes(
        &self,
        shard: u32,
        due_by: i64,
        after: Option<&str>,
        limit: usize,
    ) -> Result<tarem_shared::ports::Page<tarem_shared::ports::DueEpisode>, PortError> {
        self.inner.due_episodes(shard, due_by, after, limit).await
    }
    async fn archive_episode(&self, e: &Episode) -> Result<(), PortError> {
        self.inner.archive_episode(e).await
    }
    async fn sweep_state(&self) -> Result<tarem_shared::ports::SweepState, PortError> {
        self.inner.sweep_state().await
    }
    async fn set_sweep_state(
        &self,
        state: &tarem_shared::ports::SweepState,
    ) -> Result<(), PortError> {
        self.inner.set_sweep_state(state).await
    }
    async fn unfinished(&self, updated_before: &str) -> Result<Vec<ExecutionRecord>, PortError> {
        self.inner.unfinished(updated_before).await
    }
}

/// The results handler links the execution to its attempt from the episode it just wrote,
/// without reading it again; an outcome written in between must survive that link: the episode
/// stays verifying with the execution linked, and nothing starts twice.
#[tokio::test]
async fn an_outcome_that_lands_before_the_link_is_kept() {
    let (mut local, clock) = local_loop();
    let outcomes = ExecutionHandler {
        tracker: local.tracker.clone(),
        executions: local.executions.clone(),
        locks: local.locks.clone(),
        members: local.members.clone(),
        clock: local.clock.clone(),
        config: test_stack(),
        parking: local.parked.clone(),
    };
    local.results.executions = std::sync::Arc::new(OutcomeArrivesBeforeTheLink {
        inner: local.executions.clone(),
        outcomes,
        automation: local.automation.clone(),
    });
    local
        .track(&ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0)))
        .await
        .unwrap();
    let report = local.deliver_stream().await;
    assert!(report.batch_item_failures().is_empty(), "{report:?}");

    let execution = local.automation.executions()[0].clone();
    let episodes = local.executions.episodes();
    assert_eq!(episodes.len(), 1);
    let episode = &episodes[0];
    assert_eq!(episode.stage.name(), "verifying", "{episode:?}");
    assert_eq!(episode.attempts.len(), 1);
    assert_eq!(
        episode.attempts[0].execution_id.as_deref(),
        Some(execution.execution_id.as_str())
    );
    assert_eq!(episode.attempts[0].status.as_deref(), Some("Success"));

    // The next refresh inside the verify grace starts nothing.
    clock.advance(chrono::Duration::minutes(30));
    local
        .track(&ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(30)))
        .await
        .unwrap();
    local.deliver_stream().await;
    assert_eq!(local.automation.executions().len(), 1);
    assert_eq!(local.ops_center.items().len(), 1);
}

/// An earlier attempt's outcome, delivered late (a retried event, a poll), is recorded on its
/// attempt and never replaces what the OpsItem says of the attempt running now; nor does an
/// execution the episode did not start.
#[tokio::test]
async fn a_late_outcome_of_an_earlier_attempt_does_not_overwrite_the_running_one() {
    let (local, clock) = local_loop();
    deliver(&local, &ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0))).await;
    finish_all(&local, "Failed").await;
    let first = local.automation.executions()[0].clone();
    clock.advance(chrono::Duration::minutes(31));
    local.sweep_episodes().await.unwrap();
    let executions = local.automation.executions();
    assert_eq!(executions.len(), 2, "attempt 2 after the cool-down");
    let second = executions[1].clone();
    let ops_item = local.ops_center.items()[0].id.clone();
    let running = status_event(
        "123456789012",
        &second.region,
        &second.execution_id,
        SG_DOCUMENT,
        "InProgress",
        clock.now(),
    );
    local.execution_handler.handle(&running).await.unwrap();
    assert_eq!(
        data(&local, &ops_item, DATA_AUTOMATION)["executionId"],
        second.execution_id.as_str()
    );

    // Attempt 1's Failed again (EventBridge delivers at least once), and a TimedOut for it.
    for status in ["Failed", "TimedOut"] {
        let late = status_event(
            "123456789012",
            &first.region,
            &first.execution_id,
            SG_DOCUMENT,
            status,
            clock.now(),
        );
        local.execution_handler.handle(&late).await.unwrap();
        let said = data(&local, &ops_item, DATA_AUTOMATION);
        assert_eq!(
            said["executionId"],
            second.execution_id.as_str(),
            "{status}: {said}"
        );
        assert_eq!(said["status"], "InProgress", "{status}: {said}");
    }
    assert_eq!(local.executions.episodes()[0].stage.name(), "remediating");
    assert_eq!(local.automation.executions().len(), 2);
}
