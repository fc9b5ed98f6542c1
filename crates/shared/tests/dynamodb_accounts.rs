//! The account registry on DynamoDB (moto) and in memory: the same orders give the same records.
//! A sweep and an event write different fields of one item and never undo each other; an event
//! older than the one noted never moves the time back.

use moto_harness::EXECUTION_KEYS;
use tarem_shared::aws::dynamodb::DynamoAccounts;
use tarem_shared::ports::{AccountRecord, AccountRegistry, AccountStanding, AdvisorAccess};

async fn dynamo() -> DynamoAccounts {
    let sdk = moto_harness::sdk_loader()
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let table = moto_harness::fresh_table(&client, "tarem", EXECUTION_KEYS, false).await;
    DynamoAccounts::new(client, table)
}

fn swept(at: i64, standing: AccountStanding, reason: Option<&str>) -> AccountRecord {
    AccountRecord {
        swept_at: Some(at),
        // As the sweep sets it: only a sweep that read the account's results starts the watch.
        first_swept_at: (standing == AccountStanding::Ready).then_some(at),
        swept_checks: vec!["Security Groups - Unrestricted Access".into()],
        standing: Some(standing),
        reason: reason.map(str::to_owned),
        advisor: Some(AdvisorAccess::Support),
        member_version: Some("1".into()),
        flagged: 3,
        ..AccountRecord::new("111122223333")
    }
}

/// The orders, and what each registry holds after them.
async fn orders(registry: &dyn AccountRegistry) -> Vec<Option<AccountRecord>> {
    let account = "111122223333";
    let mut seen = vec![registry.get(account).await.unwrap()];
    // An event before any sweep makes the record.
    registry.saw_event(account, 1_000).await.unwrap();
    seen.push(registry.get(account).await.unwrap());
    // The first sweep: held, with why; the event is kept.
    registry
        .record_sweep(&swept(2_000, AccountStanding::Held, Some("AccessDenied")))
        .await
        .unwrap();
    seen.push(registry.get(account).await.unwrap());
    // A later sweep: ready, the reason gone, the first sweep kept.
    registry
        .record_sweep(&swept(3_000, AccountStanding::Ready, None))
        .await
        .unwrap();
    seen.push(registry.get(account).await.unwrap());
    // An event noted late (an older instance's) never moves the time back; a newer one does.
    registry.saw_event(account, 500).await.unwrap();
    seen.push(registry.get(account).await.unwrap());
    registry.saw_event(account, 4_000).await.unwrap();
    seen.push(registry.get(account).await.unwrap());
    seen
}

#[tokio::test]
async fn a_sweep_and_an_event_keep_each_others_fields_on_dynamodb_as_in_memory() {
    let on_dynamo = orders(&dynamo().await).await;
    let in_memory = orders(&tarem_shared::memory::InMemoryAccounts::default()).await;
    assert_eq!(on_dynamo, in_memory);

    assert_eq!(on_dynamo[0], None);
    assert_eq!(on_dynamo[1].as_ref().unwrap().last_event_at, Some(1_000));
    let held = on_dynamo[2].as_ref().unwrap();
    assert_eq!(held.standing, Some(AccountStanding::Held));
    assert_eq!(held.reason.as_deref(), Some("AccessDenied"));
    assert_eq!(
        held.last_event_at,
        Some(1_000),
        "a sweep keeps the last event"
    );
    assert_eq!(held.first_swept_at, None, "held: its results were not read");
    let ready = on_dynamo[3].as_ref().unwrap();
    assert_eq!(ready.standing, Some(AccountStanding::Ready));
    assert_eq!(ready.reason, None, "a cleared reason is cleared");
    assert_eq!(
        ready.first_swept_at,
        Some(3_000),
        "the first sweep that read it"
    );
    assert_eq!(ready.swept_at, Some(3_000));
    assert_eq!(on_dynamo[4].as_ref().unwrap().last_event_at, Some(1_000));
    assert_eq!(on_dynamo[5].as_ref().unwrap().last_event_at, Some(4_000));
    assert_eq!(on_dynamo[5].as_ref().unwrap().flagged, 3);
    // A later sweep does not move the watch's start.
    let again = orders_again(&dynamo().await).await;
    assert_eq!(
        again,
        orders_again(&tarem_shared::memory::InMemoryAccounts::default()).await
    );
    assert_eq!(again.unwrap().first_swept_at, Some(3_000));
}

async fn orders_again(registry: &dyn AccountRegistry) -> Option<AccountRecord> {
    registry
        .record_sweep(&swept(3_000, AccountStanding::Ready, None))
        .await
        .unwrap();
    registry
        .record_sweep(&swept(4_000, AccountStanding::Ready, None))
        .await
        .unwrap();
    registry.get("111122223333").await.unwrap()
}
