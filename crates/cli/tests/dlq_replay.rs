//! `tarem dlq replay`'s AWS side: SQS and DynamoDB Streams against moto (started by
//! scripts/test, named by MOTO_ENDPOINT), Lambda with the SDK's request/response mocking.

use aws_smithy_mocks::{RuleMode, mock, mock_client};
use serde_json::{Value, json};
use tarem::replay_aws::{DynamoStreamReader, LambdaRedrive};
use tarem_shared::aws::dynamodb::DynamoTracker;
use tarem_shared::aws::sqs::SqsQueue;
use tarem_shared::finding::{Status, finding_from_event, parse_time};
use tarem_shared::ports::TrackerStore;
use tarem_shared::ports::{
    ParkedQueue, ParkingLot, Redrive, Redriven, StreamBatch, StreamReader, Target,
};
use tarem_shared::stream::decode_record;

async fn sdk() -> aws_config::SdkConfig {
    moto_harness::sdk_loader()
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

async fn queue_url(sdk: &aws_config::SdkConfig) -> String {
    aws_sdk_sqs::Client::new(sdk)
        .create_queue()
        .queue_name(moto_harness::unique_name("tarem-parked"))
        .send()
        .await
        .expect("moto creates the queue")
        .queue_url
        .expect("a queue URL")
}

#[tokio::test]
async fn parked_messages_go_to_sqs_and_come_back() {
    let sdk = sdk().await;
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), queue_url(&sdk).await);
    let event = json!({"source": "aws.trustedadvisor", "detail": "broken"});
    queue
        .park(Target::CheckTracker, &event, "`detail` must be an object")
        .await
        .unwrap();
    let messages = queue.receive(10).await.unwrap();
    assert_eq!(messages.len(), 1);
    let body: Value = serde_json::from_str(&messages[0].body).unwrap();
    assert_eq!(body["payload"], event);
    assert_eq!(body["taremParked"]["target"], "check-tracker");
    assert_eq!(body["taremParked"]["reason"], "`detail` must be an object");
    queue.delete(&messages[0].receipt).await.unwrap();
}

/// A released message is visible again at once: what lets a dry run leave the queue as it was.
#[tokio::test]
async fn a_released_message_can_be_received_again_at_once() {
    let sdk = sdk().await;
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), queue_url(&sdk).await);
    queue
        .park(Target::CheckTracker, &json!({"detail": "broken"}), "broken")
        .await
        .unwrap();
    let first = queue.receive(10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        queue.receive(10).await.unwrap().is_empty(),
        "a received message is invisible"
    );
    queue.release(&first[0].receipt).await.unwrap();
    let again = queue.receive(10).await.unwrap();
    assert_eq!(again.len(), 1, "released: visible again");
    assert_eq!(again[0].id, first[0].id);
}

fn finding(status: &str, time: &str) -> tarem_shared::finding::Finding {
    let event = json!({
        "source": "aws.trustedadvisor", "detail-type": "Trusted Advisor Check Item Refresh Notification",
        "account": "123456789012", "region": "us-east-1", "time": time, "id": "e",
        "detail": {"check-name": "c", "check-item-detail": {"Status": status, "Last Updated Time": time},
            "resource_id": "arn:aws:ec2:eu-west-1:123456789012:security-group/sg-1"}
    });
    finding_from_event(
        &event,
        parse_time("2026-11-28T00:00:00Z").unwrap(),
        &Default::default(),
    )
    .unwrap()
}

/// The stream records a parked range names are read again and decoded by the results handler's
/// own parser.
#[tokio::test]
async fn a_parked_stream_range_is_read_again_from_dynamodb_streams() {
    let sdk = sdk().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = moto_harness::unique_name("tarem-tracker");
    let stream_arn =
        moto_harness::create_table(&dynamodb, &table, moto_harness::TRACKER_KEYS, true)
            .await
            .expect("the tracker table has a stream");
    let tracker = DynamoTracker::new(dynamodb, &table);
    let red = finding("Red", "2026-11-02T09:00:00.000Z");
    tracker.put_if_newer(&red).await.unwrap();
    tracker.put_if_newer(&red).await.unwrap();
    tracker
        .put_if_newer(&finding("Green", "2026-11-02T10:00:00.000Z"))
        .await
        .unwrap();
    tracker
        .put_if_newer(&finding("Red", "2026-11-02T11:00:00.000Z"))
        .await
        .unwrap();

    let streams = aws_sdk_dynamodbstreams::Client::new(&sdk);
    let shard = streams
        .describe_stream()
        .stream_arn(&stream_arn)
        .send()
        .await
        .unwrap();
    let shard = &shard.stream_description().unwrap().shards()[0];
    let reader = DynamoStreamReader::new(streams.clone(), "us-east-1");
    let all = reader
        .records(&StreamBatch {
            stream_arn: stream_arn.clone(),
            shard_id: shard.shard_id().unwrap().to_owned(),
            start_sequence_number: shard
                .sequence_number_range()
                .unwrap()
                .starting_sequence_number()
                .unwrap()
                .to_owned(),
            end_sequence_number: "99999999999999999999999999999".into(),
        })
        .await
        .unwrap();
    // moto creates an item for an UpdateItem by first putting its bare key (a stream record of
    // its own) and then updating it; DynamoDB emits one record per write. Leave moto's out.
    let all: Vec<_> = all
        .into_iter()
        .filter(|record| {
            record
                .pointer("/dynamodb/NewImage/resourceStatus")
                .is_some()
        })
        .collect();
    assert_eq!(all.len(), 3, "the duplicate wrote nothing: {all:#?}");
    let changes: Vec<_> = all
        .iter()
        .map(|record| decode_record(record).unwrap())
        .collect();
    assert_eq!(changes[0].event_name, "INSERT");
    assert_eq!(changes[0].new.as_ref(), Some(&red));
    assert_eq!(
        changes[1].old.as_ref().map(|f| f.resource_status),
        Some(Status::Red)
    );
    assert_eq!(
        changes[1].new.as_ref().map(|f| f.resource_status),
        Some(Status::Green)
    );
    // A parked range of one record: the middle one.
    let middle = changes[1].sequence_number.clone().unwrap();
    let one = reader
        .records(&StreamBatch {
            stream_arn,
            shard_id: shard.shard_id().unwrap().to_owned(),
            start_sequence_number: middle.clone(),
            end_sequence_number: middle,
        })
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(
        decode_record(&one[0]).unwrap().new.unwrap().resource_status,
        Status::Green
    );
}

fn lambda(rules: &[&aws_smithy_mocks::Rule]) -> aws_sdk_lambda::Client {
    mock_client!(aws_sdk_lambda, RuleMode::MatchAny, rules, |config| config
        .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled()))
}

#[tokio::test]
async fn replays_invoke_the_stacks_functions_and_read_their_answers() {
    use aws_sdk_lambda::operation::invoke::InvokeOutput;
    use aws_sdk_lambda::primitives::Blob;
    let tracked = mock!(aws_sdk_lambda::Client::invoke)
        .match_requests(|request| {
            request.function_name() == Some("prod-check-tracker")
                && request
                    .payload()
                    .is_some_and(|p| p.as_ref() == br#"{"source":"aws.trustedadvisor"}"#)
        })
        .then_output(|| {
            InvokeOutput::builder()
                .status_code(200)
                .payload(Blob::new(
                    r#"{"outcome":"rejected","reason":"`detail` is missing"}"#,
                ))
                .build()
        });
    let results = mock!(aws_sdk_lambda::Client::invoke)
        .match_requests(|request| request.function_name() == Some("prod-results-handler"))
        .then_output(|| {
            InvokeOutput::builder()
                .status_code(200)
                .payload(Blob::new(
                    r#"{"batchItemFailures":[{"itemIdentifier":"42"}]}"#,
                ))
                .build()
        });
    let failing = mock!(aws_sdk_lambda::Client::invoke)
        .match_requests(|request| {
            request.function_name() == Some("prod-automation-execution-handler")
        })
        .then_output(|| {
            InvokeOutput::builder()
                .status_code(200)
                .function_error("Unhandled")
                .payload(Blob::new(
                    r#"{"errorMessage":"UpdateOpsItem failed (throttled)"}"#,
                ))
                .build()
        });
    let redrive = LambdaRedrive::new(lambda(&[&tracked, &results, &failing]), "prod");
    assert_eq!(
        redrive
            .invoke(
                Target::CheckTracker,
                &json!({"source": "aws.trustedadvisor"})
            )
            .await,
        Ok(Redriven::ParkedAgain("`detail` is missing".into()))
    );
    let error = redrive
        .invoke(Target::ResultsHandler, &json!({"Records": []}))
        .await
        .unwrap_err();
    assert!(error.message.contains("1 records failed again"), "{error}");
    let error = redrive
        .invoke(Target::AutomationExecutionHandler, &json!({}))
        .await
        .unwrap_err();
    assert!(
        error
            .message
            .contains("prod-automation-execution-handler failed (Unhandled)"),
        "{error}"
    );
}

/// The command as an operator runs it: a dry run against a real queue reads and classifies,
/// invokes nothing and deletes nothing.
#[tokio::test]
async fn the_dry_run_command_lists_what_it_would_replay() {
    let sdk = sdk().await;
    let url = queue_url(&sdk).await;
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), &url);
    queue
        .park(
            Target::ResultsHandler,
            &json!({"Records": [{}]}),
            "CreateOpsItem failed",
        )
        .await
        .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tarem"))
        .args(["dlq", "replay", &url, "--dry-run", "--region", "us-east-1"])
        // --endpoint-url is DynamoDB's; SQS is redirected the SDK's own way.
        .env("AWS_ENDPOINT_URL_SQS", moto_harness::endpoint())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("results-handler  would replay"), "{text}");
    assert!(
        text.contains("1 message (dry run): 0 replayed, 0 failed"),
        "{text}"
    );
}
