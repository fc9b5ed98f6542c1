//! check-tracker: Trusted Advisor check item events → one conditional write of the tracker row.
//!
//! Environment: `TRACKER_TABLE`. A call that fails returns a function error, so EventBridge's
//! retries and the dead-letter queue keep the event; an unusable event is logged and counted.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use std::sync::Arc;
use tarem_shared::aws::{dynamodb::DynamoTracker, sdk_config};
use tarem_shared::clock::SystemClock;
use tarem_shared::config::{ConfigError, required};
use tarem_shared::handlers::CheckTracker;

struct Config {
    tracker_table: String,
}

impl Config {
    fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
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
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = handler.clone();
        async move {
            handler.handle(&event.payload).await?;
            Ok::<(), Error>(())
        }
    }))
    .await
}
