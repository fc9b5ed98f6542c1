//! check-tracker: Trusted Advisor check item events → one conditional write of the tracker row.
//!
//! Environment: `TRACKER_TABLE`, `PARKING_QUEUE_URL` (where unusable events are parked). A call that fails returns a function error, so EventBridge's
//! retries and the dead-letter queue keep the event; an unusable event is logged and counted.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use std::sync::Arc;
use tarem_shared::aws::sqs::SqsQueue;
use tarem_shared::aws::{dynamodb::DynamoTracker, sdk_config};
use tarem_shared::clock::SystemClock;
use tarem_shared::config::{ConfigError, required};
use tarem_shared::handlers::CheckTracker;

struct Config {
    parking_queue_url: String,
    tracker_table: String,
}

impl Config {
    fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            parking_queue_url: required("PARKING_QUEUE_URL")?,
            tracker_table: required("TRACKER_TABLE")?,
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    // Display, not Debug: the startup error names the variable at fault.
    let config = Config::from_env().map_err(|error| Error::from(error.to_string()))?;
    let sdk = sdk_config().await;
    let handler = Arc::new(CheckTracker {
        tracker: Arc::new(DynamoTracker::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            config.tracker_table,
        )),
        clock: Arc::new(SystemClock),
        parking: Arc::new(SqsQueue::new(
            aws_sdk_sqs::Client::new(&sdk),
            config.parking_queue_url,
        )),
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = handler.clone();
        async move { Ok::<_, Error>(handler.handle(&event.payload).await?.summary()) }
    }))
    .await
}
