//! moto in server mode, which `scripts/test` and `scripts/bench` start on a free loopback port
//! and name in `MOTO_ENDPOINT`: the endpoint, an SDK config pointed at it, and fresh tables with
//! the stack's key shapes. One place for what every moto-backed test and the benchmark need.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType,
};
use std::sync::atomic::{AtomicU32, Ordering};

/// The tracker table's keys: the finding's hash key and its resource.
pub const TRACKER_KEYS: &[&str] = &["hashKey", "resource"];
/// The mapping table's key.
pub const MAPPING_KEYS: &[&str] = &["checkName"];
/// The execution table's key (execution rows, episodes and counters share it).
pub const EXECUTION_KEYS: &[&str] = &["automationExecutionId"];

/// `MOTO_ENDPOINT`, or a panic that says how to get one.
pub fn endpoint() -> String {
    std::env::var("MOTO_ENDPOINT").expect(
        "MOTO_ENDPOINT is not set: this needs a DynamoDB-speaking server; run scripts/test (or scripts/bench), which starts moto",
    )
}

/// The SDK's loader pointed at moto, in us-east-1, with test credentials; callers add what
/// they need (for example retries off) and `load()` it.
pub fn sdk_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "moto",
        ))
}

/// A DynamoDB client for moto.
pub async fn dynamodb() -> Client {
    Client::new(&sdk_loader().load().await)
}

/// A table name no other test of this run (or an earlier one on the same server) uses.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        chrono::Utc::now().timestamp_micros()
    )
}

/// Creates `name` with string keys (`keys[0]` the hash key, `keys[1]` the range key if any) and,
/// with `stream`, a NEW_AND_OLD_IMAGES stream as the stack's tracker table has. Returns the
/// stream's ARN when there is one.
pub async fn create_table(
    client: &Client,
    name: &str,
    keys: &[&str],
    stream: bool,
) -> Option<String> {
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
    for (index, key) in keys.iter().enumerate() {
        let kind = if index == 0 {
            KeyType::Hash
        } else {
            KeyType::Range
        };
        request = request
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(*key)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("name and type are set"),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(*key)
                    .key_type(kind)
                    .build()
                    .expect("name and key type are set"),
            );
    }
    if stream {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .expect("stream_enabled is set"),
        );
    }
    let created = request.send().await.expect("moto creates the table");
    created
        .table_description()
        .and_then(|t| t.latest_stream_arn())
        .map(str::to_owned)
}

/// A fresh table named from `prefix` (see [`create_table`]); returns its name.
pub async fn fresh_table(client: &Client, prefix: &str, keys: &[&str], stream: bool) -> String {
    let name = unique_name(prefix);
    create_table(client, &name, keys, stream).await;
    name
}
