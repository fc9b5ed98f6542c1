//! The in-memory execution table's rules, each as AWS keeps them.

use super::*;

use crate::finding::Finding;
use crate::finding::Status;

fn finding(millis: i64, status: Status) -> Finding {
    let at = |millis| chrono::DateTime::from_timestamp_millis(millis).unwrap();
    Finding::new("1", "c", "r", "eu-west-1").at(status, at(millis), at(millis))
}

#[tokio::test]
async fn the_execution_poll_reads_only_running_rows_whatever_the_write_order() {
    crate::contract::running_executions_script(&InMemoryExecutions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn expired_items_stay_readable_until_the_ttl_process_deletes_them() {
    let clock = Arc::new(crate::clock::ManualClock::new(
        chrono::DateTime::from_timestamp(1_000, 0).unwrap(),
    ));
    let store = InMemoryExecutions::default().with_clock(clock.clone());
    let episode = |key: &str, expires_at: i64| {
        Episode {
            version: 1,
            expires_at,
            ..Episode::opened_by(&finding(1, Status::Red), None, "t")
        }
        .with_key(key)
    };
    assert!(store.put_episode(&episode("k", 1_500)).await.unwrap());
    assert!(store.put_episode(&episode("open", 0)).await.unwrap());
    clock.advance(chrono::Duration::seconds(600));
    assert!(
        store.get_episode("k").await.unwrap().is_some(),
        "past its TTL but not deleted yet: DynamoDB still returns it"
    );
    assert_eq!(store.expire_ttl(), 1);
    assert_eq!(store.get_episode("k").await.unwrap(), None);
    assert!(
        store.get_episode("open").await.unwrap().is_some(),
        "no TTL, never expires"
    );
}

/// The in-memory due index as DynamoDB's (crates/shared/tests/dynamodb_moto.rs): pages in
/// (due, key) order that lose nothing when many share a due time, an episode rescheduled is
/// found at its new time only, and one the TTL process deleted is gone from the index.
#[tokio::test]
async fn the_due_index_pages_through_ties_follows_a_reschedule_and_forgets_the_expired() {
    let clock = Arc::new(crate::clock::ManualClock::new(
        chrono::DateTime::from_timestamp(1_000, 0).unwrap(),
    ));
    let store = InMemoryExecutions::default().with_clock(clock.clone());
    let mut wanted = vec![];
    for i in 0..200 {
        let key = format!("k{i}");
        let mut episode = Episode {
            version: 1,
            ..Episode::opened_by(&finding(1, Status::Red), None, "t")
        }
        .with_key(&key);
        // Ties: 4 due times among 200 episodes; every 10th idle.
        episode.due_at = (i % 10 != 0).then_some(500 + i64::from(i % 4));
        if i % 10 != 0 {
            wanted.push(key);
        }
        assert!(store.put_episode(&episode).await.unwrap());
    }
    let read_all = |due_by: i64| {
        let store = &store;
        async move {
            let mut found = vec![];
            for shard in 0..crate::ports::DUE_SHARDS {
                let mut after: Option<String> = None;
                loop {
                    let page = store
                        .due_episodes(shard, due_by, after.as_deref(), 3)
                        .await
                        .unwrap();
                    found.extend(page.items.into_iter().map(|d| (d.finding_key, d.due_at)));
                    match page.next {
                        Some(next) => after = Some(next),
                        None => break,
                    }
                }
            }
            found
        }
    };
    let mut found: Vec<String> = read_all(600).await.into_iter().map(|(k, _)| k).collect();
    found.sort();
    wanted.sort();
    assert_eq!(found, wanted, "every due episode once, none idle");

    // Rescheduled to later: out of an earlier read, in a later one at its new time.
    let mut moved = store.get_episode("k1").await.unwrap().unwrap();
    moved.due_at = Some(5_000);
    moved.version += 1;
    assert!(store.put_episode(&moved).await.unwrap());
    assert!(read_all(600).await.iter().all(|(k, _)| k != "k1"));
    assert!(read_all(6_000).await.contains(&("k1".into(), 5_000)));

    // Deleted by the TTL process: gone from the index too.
    let mut expiring = store.get_episode("k2").await.unwrap().unwrap();
    expiring.expires_at = 1_100;
    expiring.version += 1;
    assert!(store.put_episode(&expiring).await.unwrap());
    clock.advance(chrono::Duration::seconds(600));
    assert_eq!(store.expire_ttl(), 1);
    assert!(read_all(6_000).await.iter().all(|(k, _)| k != "k2"));
}

#[tokio::test]
async fn a_status_write_fills_what_the_row_lacks_and_keeps_what_it_has() {
    let store = InMemoryExecutions::default();
    let bare = ExecutionRecord {
        account: None,
        automation_execution_id: "e".into(),
        ops_item_id: Some("oi-1".into()),
        finding_key: "k".into(),
        region: "eu-west-1".into(),
        document: None,
        check_name: None,
        resource: None,
        client_token: None,
        parameters: None,
        resource_lock: None,
        status: "Pending".into(),
        started_at: None,
        updated_at: "t1".into(),
        expires_at: 1,
    };
    store.record_status(&bare).await.unwrap();
    let fuller = ExecutionRecord {
        document: Some("D".into()),
        client_token: Some("token".into()),
        status: "InProgress".into(),
        updated_at: "t2".into(),
        expires_at: 2,
        ..bare.clone()
    };
    store.record_status(&fuller).await.unwrap();
    let row = store.get("e").await.unwrap().unwrap();
    assert_eq!(
        (
            row.status.as_str(),
            row.document.as_deref(),
            row.client_token.as_deref(),
            row.updated_at.as_str(),
            row.expires_at
        ),
        ("InProgress", Some("D"), Some("token"), "t2", 2)
    );
    let other = ExecutionRecord {
        document: Some("Other".into()),
        status: "Success".into(),
        ..fuller
    };
    store.record_status(&other).await.unwrap();
    assert_eq!(
        store.get("e").await.unwrap().unwrap().document.as_deref(),
        Some("D"),
        "a value already there is kept"
    );
}

#[tokio::test]
async fn execution_rows_keep_a_final_status_and_states_are_versioned() {
    let store = InMemoryExecutions::default();
    let row = ExecutionRecord {
        account: None,
        automation_execution_id: "e".into(),
        ops_item_id: Some("oi-1".into()),
        finding_key: "k".into(),
        region: "eu-west-1".into(),
        document: None,
        check_name: None,
        resource: None,
        client_token: Some("t".into()),
        parameters: None,
        resource_lock: None,
        status: "Success".into(),
        started_at: None,
        updated_at: String::new(),
        expires_at: 0,
    };
    assert_eq!(
        store.record_status(&row).await.unwrap(),
        StatusWrite::Updated
    );
    let started = ExecutionRecord {
        status: "Pending".into(),
        document: Some("D".into()),
        ..row.clone()
    };
    assert_eq!(store.record_started(&started).await.unwrap(), "Success");
    let stored = store.get("e").await.unwrap().unwrap();
    assert_eq!(
        (stored.status.as_str(), stored.document.as_deref()),
        ("Success", Some("D"))
    );
    let late = ExecutionRecord {
        status: "InProgress".into(),
        ..row
    };
    assert_eq!(
        store.record_status(&late).await.unwrap(),
        StatusWrite::AlreadyFinal
    );

    let first = Episode {
        version: 1,
        ..Episode::opened_by(&finding(1, Status::Red), None, "t")
    };
    assert!(store.put_episode(&first).await.unwrap());
    assert!(
        !store.put_episode(&first).await.unwrap(),
        "a second writer of version 1 loses"
    );
    let second = Episode {
        version: 2,
        ..first.clone()
    };
    assert!(store.put_episode(&second).await.unwrap());
    assert!(
        !store
            .put_episode(&Episode {
                version: 2,
                ..first
            })
            .await
            .unwrap()
    );
}
