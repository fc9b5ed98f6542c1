//! check-tracker: Trusted Advisor check item events → one conditional write of the tracker row;
//! the stack's schedule → the findings reconcile sweep (Support API), through the same write.
//!
//! Environment: `TRACKER_TABLE`, `MAPPING_TABLE`, `PARKING_QUEUE_URL` (where unusable events are
//! parked), and the stack's `TUNING` (`ReconcileChecks`, `FutureToleranceMinutes`: see
//! `tarem_shared::config`). A call that fails returns a function error, so EventBridge's
//! retries and the dead-letter queue keep the event; an unusable event is logged and counted.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use std::sync::Arc;
use tarem_shared::aws::dynamodb::DynamoMappings;
use tarem_shared::aws::sqs::SqsQueue;
use tarem_shared::aws::support::SupportTrustedAdvisor;
use tarem_shared::aws::{dynamodb::DynamoTracker, sdk_config};
use tarem_shared::clock::SystemClock;
use tarem_shared::config::{ConfigError, Settings};
use tarem_shared::finding::TrackingRules;
use tarem_shared::handlers::CheckTracker;
use tarem_shared::handlers::is_scheduled;
use tarem_shared::reconcile::FindingsSweep;
use tarem_shared::telemetry::Emf;

struct Config {
    parking_queue_url: String,
    tracker_table: String,
    mapping_table: String,
    reconcile_all_checks: bool,
    rules: TrackingRules,
}

impl Config {
    fn from_env() -> Result<Self, ConfigError> {
        let settings = Settings::from_env()?;
        Ok(Self {
            parking_queue_url: settings.required("PARKING_QUEUE_URL")?,
            tracker_table: settings.required("TRACKER_TABLE")?,
            mapping_table: settings.required("MAPPING_TABLE")?,
            reconcile_all_checks: settings.reconcile_all_checks()?,
            rules: settings.tracking_rules()?,
        })
    }
}

// One thread: a function handles one invocation at a time, and a multi-threaded runtime spends
// most of its CPU handing I/O wake-ups between threads (docs: README, Performance).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    // Display, not Debug: the startup error names the variable at fault.
    let config = Config::from_env().map_err(|error| Error::from(error.to_string()))?;
    let sdk = sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let tracker = Arc::new(DynamoTracker::new(dynamodb.clone(), config.tracker_table));
    let clock = Arc::new(SystemClock);
    let rules = config.rules.clone();
    let handler = Arc::new(CheckTracker {
        tracker: tracker.clone(),
        clock: clock.clone(),
        rules: config.rules,
        parking: Arc::new(SqsQueue::new(
            aws_sdk_sqs::Client::new(&sdk),
            config.parking_queue_url,
        )),
    });
    let mappings = Arc::new(DynamoMappings::new(dynamodb, config.mapping_table));
    let advisor = Arc::new(SupportTrustedAdvisor::for_config(&sdk));
    let all_checks = config.reconcile_all_checks;
    let emf = Emf::install()?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = handler.clone();
        let sweep = FindingsSweep {
            tracker: tracker.clone(),
            mappings: mappings.clone(),
            advisor: advisor.clone(),
            clock: clock.clone(),
            all_checks,
            rules: rules.clone(),
            account: event
                .payload
                .get("account")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        };
        async move {
            let reply = async {
                if is_scheduled(&event.payload) {
                    let report = sweep.sweep(false).await?;
                    return Ok::<_, Error>(serde_json::to_value(report)?);
                }
                Ok(handler.handle(&event.payload).await?.summary())
            }
            .await;
            // The invocation's metrics, before Lambda freezes the environment at the next /next.
            emf.flush();
            reply
        }
    }))
    .await
}
