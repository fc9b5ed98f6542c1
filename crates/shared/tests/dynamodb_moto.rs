//! The DynamoDB adapters against a real DynamoDB-speaking server: moto in server mode, started by
//! `scripts/test` on a free loopback port and named by `MOTO_ENDPOINT`. (The stream moto emits
//! is read back and decoded in crates/cli/tests/dlq_replay.rs.)
//!
//! Long on purpose: every rule of the DynamoDB adapters is checked against one real server here,
//! and the tests share its table set-up; split, they would repeat it.

use aws_sdk_dynamodb::Client;
use moto_harness::{EXECUTION_KEYS, MAPPING_KEYS, TRACKER_KEYS};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tarem_shared::aws::dynamodb::{
    DynamoCounters, DynamoExecutions, DynamoMappings, DynamoTracker,
};
use tarem_shared::episode::{Attempt, Episode, Stage, episode_key};
use tarem_shared::finding::{Finding, finding_from_event, parse_time};
use tarem_shared::mapping::{Mapping, Mode};
use tarem_shared::ports::{
    Counters, DUE_SHARDS, ExecutionRecord, ExecutionStore, MappingStore, RowKey, StatusWrite,
    SweepState, TrackerStore, WriteOutcome, due_shard,
};

async fn sdk() -> aws_config::SdkConfig {
    moto_harness::sdk_loader()
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

async fn client() -> Client {
    Client::new(&sdk().await)
}

async fn create_table(client: &Client, keys: &[&str], stream: bool) -> String {
    moto_harness::fresh_table(client, "tarem", keys, stream).await
}

async fn tracker_table(client: &Client, stream: bool) -> String {
    create_table(client, TRACKER_KEYS, stream).await
}

fn finding(status: &str, last_updated: &str) -> Finding {
    let event = json!({
        "source": "aws.trustedadvisor",
        "detail-type": "Trusted Advisor Check Item Refresh Notification",
        "account": "123456789012", "region": "us-east-1", "time": "2026-11-02T10:00:00Z", "id": "e",
        "detail": {
            "check-name": "Security groups should not allow unrestricted access to ports with high risk",
            "check-item-detail": {
                "Status": status, "Region": "ap-southeast-2", "Last Updated Time": last_updated,
                "Resource": "arn:aws:ec2:ap-southeast-2:123456789012:security-group/sg-1",
                "Protocol": "tcp", "Note": null
            },
            "resource_id": "arn:aws:ec2:ap-southeast-2:123456789012:security-group/sg-1"
        }
    });
    finding_from_event(
        &event,
        parse_time("2026-11-28T00:00:00Z").unwrap(),
        &Default::default(),
    )
    .unwrap()
}

#[tokio::test]
async fn tracker_writes_are_conditional_on_a_strictly_newer_finding() {
    let client = client().await;
    let table = tracker_table(&client, false).await;
    let tracker = DynamoTracker::new(client.clone(), &table);
    let first = finding("Red", "2026-11-02T09:00:00.500Z");
    assert_eq!(
        tracker.put_if_newer(&first).await,
        Ok(WriteOutcome::Written)
    );
    assert_eq!(
        tracker.put_if_newer(&first).await,
        Ok(WriteOutcome::Duplicate)
    );
    let older = finding("Green", "2026-11-02T09:00:00.499Z");
    assert_eq!(tracker.put_if_newer(&older).await, Ok(WriteOutcome::Stale));
    let newer = finding("Yellow", "2026-11-02T09:00:00.501Z");
    assert_eq!(
        tracker.put_if_newer(&newer).await,
        Ok(WriteOutcome::Written)
    );
    let stored = tracker
        .get(&newer.hash_key, &newer.resource)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored,
        newer.written_over(Some(&first)),
        "the row reads back as written, columns included, in the episode the first Red opened"
    );
    assert_eq!(stored.flagged_since, first.flagged_since);
    assert_eq!(stored.check_item_detail["Protocol"], "tcp");
    assert_eq!(tracker.get("missing", "r").await, Ok(None));
}

/// The same ordering script the in-memory tracker passes (`tarem_shared::contract`): ties,
/// replays, the reconcile base and the episode markers, on DynamoDB's condition expression.
#[tokio::test]
async fn the_conditional_write_follows_the_order_rules() {
    let client = client().await;
    let table = tracker_table(&client, false).await;
    let tracker = DynamoTracker::new(client, &table);
    tarem_shared::contract::tracker_order_script(
        &tracker,
        "arn:aws:ec2:eu-west-1:123456789012:security-group/sg-order",
    )
    .await
    .unwrap();
}

/// The execution poll reads the running part of the due index, not the table: the same script
/// the in-memory store passes.
#[tokio::test]
async fn the_execution_poll_reads_only_running_rows_whatever_the_write_order() {
    let client = client().await;
    let table = create_table(&client, EXECUTION_KEYS, false).await;
    tarem_shared::contract::running_executions_script(&DynamoExecutions::new(client, &table))
        .await
        .unwrap();
}

#[tokio::test]
async fn rows_written_by_other_tools_are_replaced_only_by_newer_findings() {
    let client = client().await;
    let table = tracker_table(&client, false).await;
    let current = finding("Red", "2026-11-02T09:00:00.000Z");
    // The shape AWS's reference implementation writes: no findingTimeMillis.
    client
        .put_item()
        .table_name(&table)
        .item(
            "hashKey",
            aws_sdk_dynamodb::types::AttributeValue::S(current.hash_key.clone()),
        )
        .item(
            "resource",
            aws_sdk_dynamodb::types::AttributeValue::S(current.resource.clone()),
        )
        .item(
            "resourceStatus",
            aws_sdk_dynamodb::types::AttributeValue::S("Red".into()),
        )
        .item(
            "lastUpdatedTimeEpoch",
            aws_sdk_dynamodb::types::AttributeValue::N(current.last_updated_time_epoch.to_string()),
        )
        .send()
        .await
        .unwrap();
    let tracker = DynamoTracker::new(client.clone(), &table);
    assert_eq!(
        tracker
            .put_if_newer(&finding("Green", "2026-11-01T09:00:00.000Z"))
            .await,
        Ok(WriteOutcome::Stale)
    );
    assert_eq!(
        tracker
            .put_if_newer(&finding("Green", "2026-11-03T09:00:00.000Z"))
            .await,
        Ok(WriteOutcome::Written)
    );
}

#[tokio::test]
async fn both_mapping_shapes_read_the_same() {
    let client = client().await;
    let table = create_table(&client, MAPPING_KEYS, false).await;
    let walkthrough: Value = json!({
        "checkName": {"S": "check A"},
        "ssmAutomationDocument": {"S": "AWS-DisablePublicAccessForSecurityGroup"},
        "automationParameters": {"S": "{\"GroupId\": [\"$resourceId\"], \"AutomationAssumeRole\": [\"arn:aws:iam::111122223333:role/Example\"]}"},
        "regexPattern": {"S": "(sg-\\w+)"},
        "automationStatus": {"BOOL": true}
    });
    let as_map: Value = json!({
        "checkName": {"S": "check B"},
        "ssmAutomationDocument": {"S": "AWS-DisablePublicAccessForSecurityGroup"},
        "automationParameters": {"M": {
            "GroupId": {"L": [{"S": "$resourceId"}]},
            "AutomationAssumeRole": {"L": [{"S": "arn:aws:iam::111122223333:role/Example"}]}
        }},
        "regexPattern": {"S": "(sg-\\w+)"},
        "automationStatus": {"BOOL": true}
    });
    for item in [&walkthrough, &as_map] {
        let typed: serde_dynamo::Item = serde_json::from_value(item.clone()).unwrap();
        let item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
            typed.into();
        client
            .put_item()
            .table_name(&table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }
    let store = DynamoMappings::new(client.clone(), &table);
    let a = Mapping::from_json(&store.get("check A").await.unwrap().unwrap()).unwrap();
    let b = Mapping::from_json(&store.get("check B").await.unwrap().unwrap()).unwrap();
    assert_eq!((a.mode, b.mode), (Mode::Automated, Mode::Automated));
    assert_eq!(a.parameters, b.parameters);
    assert_eq!(store.get("unmapped").await, Ok(None));
}

fn execution(id: &str, status: &str, token: Option<&str>) -> ExecutionRecord {
    ExecutionRecord {
        account: None,
        automation_execution_id: id.into(),
        ops_item_id: Some("oi-0123456789ab".into()),
        finding_key: "finding".into(),
        region: "ap-southeast-2".into(),
        document: Some("AWS-DisablePublicAccessForSecurityGroup".into()),
        check_name: Some("check".into()),
        resource: Some("arn:aws:ec2:ap-southeast-2:1:security-group/sg-1".into()),
        client_token: token.map(str::to_owned),
        parameters: Some(BTreeMap::from([(
            "GroupId".to_owned(),
            vec!["sg-1".to_owned()],
        )])),
        resource_lock: None,
        status: status.into(),
        started_at: Some("2026-11-02T09:00:00.000Z".into()),
        updated_at: "2026-11-02T09:00:00.000Z".into(),
        expires_at: 1_800_000_000,
    }
}

fn episode(key: &str) -> Episode {
    let row = finding("Red", "2026-11-02T09:00:00.000Z");
    Episode::opened_by(&row, None, "2026-11-02T09:15:00.000Z").with_key(key)
}

#[tokio::test]
async fn episodes_are_written_once_per_version_and_expire_only_once_closed() {
    let client = client().await;
    let table = create_table(&client, EXECUTION_KEYS, false).await;
    let store = DynamoExecutions::new(client.clone(), &table);
    assert_eq!(store.get_episode("finding").await, Ok(None));
    let mut claimed = Episode {
        version: 1,
        stage: Stage::Remediating,
        ..episode("finding")
    };
    claimed.attempts.push(Attempt {
        number: 1,
        client_token: "6f9619ff-8b86-4011-b42d-00c04fc964ff".into(),
        started_at: 1_793_610_900,
        document: "AWS-DisablePublicAccessForSecurityGroup".into(),
        region: "ap-southeast-2".into(),
        max_attempts: 3,
        cool_down_minutes: 30,
        execution_id: None,
        status: None,
        ended_at: None,
        failure: None,
        lock: None,
    });
    assert_eq!(store.put_episode(&claimed).await, Ok(true));
    assert_eq!(
        store.put_episode(&claimed).await,
        Ok(false),
        "a second claim of the same attempt loses"
    );
    assert_eq!(
        store.get_episode("finding").await,
        Ok(Some(claimed.clone()))
    );
    let raw = |client: Client, table: String| async move {
        client
            .get_item()
            .table_name(&table)
            .key(
                "automationExecutionId",
                aws_sdk_dynamodb::types::AttributeValue::S(episode_key("finding")),
            )
            .send()
            .await
            .unwrap()
            .item
            .unwrap()
    };
    assert!(
        !raw(client.clone(), table.clone())
            .await
            .contains_key("expiresAt"),
        "an open episode never expires"
    );
    let mut fixed = claimed.clone();
    fixed.version = 2;
    fixed
        .attempt_mut("6f9619ff-8b86-4011-b42d-00c04fc964ff")
        .unwrap()
        .execution_id = Some("exec-1".into());
    fixed.stage = Stage::Fixed {
        at: "2026-11-03T00:00:00.000Z".into(),
    };
    fixed.expires_at = 1_800_000_000;
    assert_eq!(store.put_episode(&fixed).await, Ok(true));
    assert_eq!(
        store.put_episode(&fixed).await,
        Ok(false),
        "a stale version loses"
    );
    assert_eq!(store.get_episode("finding").await, Ok(Some(fixed)));
    assert_eq!(
        raw(client, table).await["expiresAt"].as_n().unwrap(),
        "1800000000"
    );
}

/// The sweep's Scan pages through a table that also holds execution rows and counters, returns
/// only open episodes, and keeps its place between runs.
#[tokio::test]
async fn open_episodes_page_through_the_table_and_the_cursor_is_kept() {
    let client = client().await;
    let table = create_table(&client, EXECUTION_KEYS, false).await;
    let store = DynamoExecutions::new(client.clone(), &table);
    for i in 0..7 {
        let mut item = Episode {
            version: 1,
            ..episode(&format!("open-{i}"))
        };
        if i % 3 == 0 {
            item.stage = Stage::Fixed { at: "t".into() };
        }
        assert!(store.put_episode(&item).await.unwrap());
        store
            .record_started(&execution(&format!("exec-{i}"), "Pending", None))
            .await
            .unwrap();
    }
    DynamoCounters::new(client.clone(), &table)
        .increment("opsitems#2026-11", 1)
        .await
        .unwrap();
    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let page = store.open_episodes(cursor.as_deref(), 4).await.unwrap();
        seen.extend(page.episodes.iter().map(|e| e.finding_key.clone()));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["open-1", "open-2", "open-4", "open-5"]);
    assert_eq!(store.sweep_state().await, Ok(SweepState::default()));
    let state = SweepState {
        migration_cursor: Some(episode_key("open-2")),
        migrated_episodes: true,
        migrated_tracker: false,
        fingerprints: [("check".to_owned(), "0123456789abcdef".to_owned())].into(),
    };
    store.set_sweep_state(&state).await.unwrap();
    assert_eq!(store.sweep_state().await, Ok(state));
}

/// The due index on DynamoDB: only episodes with a due time are in it, earliest first, a page
/// at a time, per shard; one whose due time goes is gone from it.
#[tokio::test]
async fn the_due_index_holds_only_episodes_with_a_due_time() {
    let client = client().await;
    let table = create_table(&client, EXECUTION_KEYS, false).await;
    let store = DynamoExecutions::new(client.clone(), &table);
    let mut due_keys = vec![];
    for i in 0..30 {
        let key = format!("due-{i}");
        let mut item = Episode {
            version: 1,
            ..episode(&key)
        };
        // A third idle, a third due at 1,000, a third due later than asked.
        item.due_at = match i % 3 {
            0 => None,
            1 => Some(1_000 + i64::from(i)),
            _ => Some(9_000),
        };
        if i % 3 == 1 {
            due_keys.push(key);
        }
        assert!(store.put_episode(&item).await.unwrap());
    }
    let mut found = vec![];
    for shard in 0..DUE_SHARDS {
        let mut after: Option<String> = None;
        loop {
            let page = store
                .due_episodes(shard, 2_000, after.as_deref(), 2)
                .await
                .unwrap();
            assert!(page.items.len() <= 2);
            for due in &page.items {
                assert_eq!(due_shard(&due.finding_key), shard);
                assert!(due.due_at <= 2_000);
                assert!(due.resource.contains("security-group/sg-1"));
            }
            found.extend(page.items.into_iter().map(|d| d.finding_key));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    found.sort();
    due_keys.sort();
    assert_eq!(found, due_keys);
    // Its due time gone: out of the index.
    let mut idle = store.get_episode("due-1").await.unwrap().unwrap();
    idle.due_at = None;
    idle.version += 1;
    assert!(store.put_episode(&idle).await.unwrap());
    let shard = due_shard("due-1");
    let page = store.due_episodes(shard, 2_000, None, 100).await.unwrap();
    assert!(page.items.iter().all(|d| d.finding_key != "due-1"));
}

#[tokio::test]
async fn counters_stop_at_their_limit() {
    let client = client().await;
    let table = create_table(&client, EXECUTION_KEYS, false).await;
    let counters = DynamoCounters::new(client.clone(), &table);
    assert_eq!(counters.value("breaker#x#1").await, Ok(0));
    for _ in 0..3 {
        assert_eq!(
            counters
                .increment_below("breaker#x#1", 3, 1_800_000_000)
                .await,
            Ok(true)
        );
    }
    assert_eq!(
        counters
            .increment_below("breaker#x#1", 3, 1_800_000_000)
            .await,
        Ok(false)
    );
    assert_eq!(counters.value("breaker#x#1").await, Ok(3));
    // `increment` answers the count afterwards: the breaker queue's places come from it.
    assert_eq!(
        counters.increment("opsitems#2026-11", 1_800_000_000).await,
        Ok(1)
    );
    assert_eq!(
        counters.increment("opsitems#2026-11", 1_800_000_000).await,
        Ok(2)
    );
    assert_eq!(counters.value("opsitems#2026-11").await, Ok(2));
}

#[tokio::test]
async fn a_final_status_is_kept_whichever_write_comes_first() {
    let client = client().await;
    let table = create_table(&client, EXECUTION_KEYS, false).await;
    let store = DynamoExecutions::new(client.clone(), &table);
    // The status event beat the results handler: it writes the row from the execution's tags.
    let from_tags = ExecutionRecord {
        check_name: None,
        resource: None,
        parameters: None,
        started_at: None,
        ..execution("exec-2", "Success", None)
    };
    assert_eq!(
        store.record_status(&from_tags).await,
        Ok(StatusWrite::Updated)
    );
    store
        .record_started(&execution("exec-2", "Pending", None))
        .await
        .unwrap();
    let row = store.get("exec-2").await.unwrap().unwrap();
    assert_eq!(row.status, "Success");
    assert_eq!(
        row.check_name.as_deref(),
        Some("check"),
        "the start fills what the tags lacked"
    );
    assert_eq!(
        store
            .record_status(&execution("exec-2", "InProgress", None))
            .await,
        Ok(StatusWrite::AlreadyFinal)
    );
    assert_eq!(
        store.get("exec-2").await.unwrap().unwrap().status,
        "Success"
    );
    assert_eq!(store.get("missing").await, Ok(None));
}

#[tokio::test]
async fn the_sweeps_scans_find_flagged_rows_mapped_checks_and_unfinished_executions() {
    let client = client().await;
    let tracker_table = tracker_table(&client, false).await;
    let tracker = DynamoTracker::new(client.clone(), &tracker_table);
    tracker
        .put_if_newer(&finding("Red", "2026-11-02T09:00:00.000Z"))
        .await
        .unwrap();
    let check = "Security groups should not allow unrestricted access to ports with high risk";
    // Every write puts its row in the work index's pending part, checked a sweep later.
    let red = finding("Red", "2026-11-02T09:00:00.000Z");
    let key = RowKey {
        hash_key: red.hash_key.clone(),
        resource: red.resource.clone(),
    };
    let shard = due_shard(&red.hash_key);
    // Tracked at 2026-11-28T00:00:00Z (the helper's clock): due 15 minutes later.
    let settle_by = parse_time("2026-11-28T00:15:00Z").unwrap().timestamp();
    let pending = tracker.pending(shard, settle_by, None, 10).await.unwrap();
    assert_eq!(pending.items, std::slice::from_ref(&key));
    assert!(
        tracker
            .pending(shard, settle_by - 3600, None, 10)
            .await
            .unwrap()
            .items
            .is_empty(),
        "not due yet"
    );
    assert!(
        tracker
            .flagged_keys(Some("123456789012"), check)
            .await
            .unwrap()
            .is_empty(),
        "pending, not yet in the flagged part"
    );
    // A settled row moves only if it is the row that was checked.
    let stored = tracker
        .get(&key.hash_key, &key.resource)
        .await
        .unwrap()
        .unwrap();
    let mut other = stored.clone();
    other.order_key = Some("not the row's order".into());
    tracker.settled(&other).await.unwrap();
    assert_eq!(
        tracker
            .pending(shard, settle_by, None, 10)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    tracker.settled(&stored).await.unwrap();
    assert!(
        tracker
            .pending(shard, settle_by, None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        tracker
            .flagged_keys(Some("123456789012"), check)
            .await
            .unwrap(),
        std::slice::from_ref(&key)
    );
    assert!(
        tracker
            .flagged_keys(Some("999999999999"), check)
            .await
            .unwrap()
            .is_empty(),
        "another account's partition"
    );
    let green = finding("Green", "2026-11-02T10:00:00.000Z");
    tracker.put_if_newer(&green).await.unwrap();
    assert!(
        tracker
            .flagged_keys(Some("123456789012"), check)
            .await
            .unwrap()
            .is_empty(),
        "a new write is pending again"
    );
    let stored = tracker
        .get(&key.hash_key, &key.resource)
        .await
        .unwrap()
        .unwrap();
    tracker.settled(&stored).await.unwrap();
    assert!(
        tracker
            .pending(shard, settle_by, None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        tracker
            .flagged_keys(Some("123456789012"), check)
            .await
            .unwrap()
            .is_empty(),
        "a checked Green row leaves the index"
    );

    let mapping_table = create_table(&client, MAPPING_KEYS, false).await;
    for name in ["check A", "check B"] {
        client
            .put_item()
            .table_name(&mapping_table)
            .item(
                "checkName",
                aws_sdk_dynamodb::types::AttributeValue::S(name.into()),
            )
            .send()
            .await
            .unwrap();
    }
    let mut names = DynamoMappings::new(client.clone(), &mapping_table)
        .check_names()
        .await
        .unwrap();
    names.sort();
    assert_eq!(names, ["check A", "check B"]);

    let execution_table = create_table(&client, EXECUTION_KEYS, false).await;
    let store = DynamoExecutions::new(client.clone(), &execution_table);
    store
        .record_started(&execution("running", "Pending", None))
        .await
        .unwrap();
    store
        .record_started(&execution("done", "Pending", None))
        .await
        .unwrap();
    store
        .record_status(&execution("done", "Success", None))
        .await
        .unwrap();
    store
        .put_episode(&Episode {
            version: 1,
            ..episode("f")
        })
        .await
        .unwrap();
    DynamoCounters::new(client.clone(), &execution_table)
        .increment("opsitems#2026-11", 1)
        .await
        .unwrap();
    let unfinished = store.unfinished("2026-11-03T00:00:00.000Z").await.unwrap();
    assert_eq!(
        unfinished
            .iter()
            .map(|r| r.automation_execution_id.as_str())
            .collect::<Vec<_>>(),
        ["running"]
    );
    assert!(
        store
            .unfinished("2026-11-01T00:00:00.000Z")
            .await
            .unwrap()
            .is_empty(),
        "updated too recently"
    );
}
