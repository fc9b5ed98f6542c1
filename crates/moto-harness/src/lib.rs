//! moto in server mode, which `scripts/test` and `scripts/bench` start on a free loopback port
//! and name in `MOTO_ENDPOINT`: the endpoint, an SDK config pointed at it, and fresh tables with
//! the stack's key shapes. One place for what every moto-backed test and the benchmark need.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
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

/// The stack's sparse indexes of a table with these keys, as template.yaml declares them:
/// (name, partition key, sort key and its type, projected attributes; none: keys only).
#[allow(clippy::type_complexity)]
pub fn indexes(
    keys: &[&str],
) -> Vec<(
    &'static str,
    &'static str,
    &'static str,
    ScalarAttributeType,
    &'static [&'static str],
)> {
    if keys == TRACKER_KEYS {
        vec![(
            "work-index",
            "workKey",
            "workSort",
            ScalarAttributeType::N,
            &[],
        )]
    } else if keys == EXECUTION_KEYS {
        vec![(
            "due-index",
            "dueShard",
            "dueAt",
            ScalarAttributeType::N,
            &["findingKey", "resource"],
        )]
    } else {
        vec![]
    }
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
    for (index, partition, sort, sort_type, projected) in indexes(keys) {
        for (attribute, kind) in [(partition, ScalarAttributeType::S), (sort, sort_type)] {
            if !keys.contains(&attribute) {
                request = request.attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(attribute)
                        .attribute_type(kind)
                        .build()
                        .expect("name and type are set"),
                );
            }
        }
        let projection = if projected.is_empty() {
            Projection::builder().projection_type(ProjectionType::KeysOnly)
        } else {
            projected.iter().fold(
                Projection::builder().projection_type(ProjectionType::Include),
                |builder, attribute| builder.non_key_attributes(*attribute),
            )
        };
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index)
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(partition)
                        .key_type(KeyType::Hash)
                        .build()
                        .expect("name and key type are set"),
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(sort)
                        .key_type(KeyType::Range)
                        .build()
                        .expect("name and key type are set"),
                )
                .projection(projection.build())
                .build()
                .expect("name, keys and projection are set"),
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
