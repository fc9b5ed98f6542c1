//! automation-execution-handler: SSM automation status changes → the OpsItem of the finding.
//!
//! Environment: `TRACKER_TABLE` (a success is judged against the finding's current row),
//! `EXECUTION_TABLE`, `PARKING_QUEUE_URL` (where unusable events are parked), and
//! the stack's `TUNING` (`ExecutionRetentionDays`, `VerifyWindowHours`, `ResolveOn`,
//! `ExecutionSweepAfterMinutes`: see `tarem_shared::config`). A call that
//! fails returns a function error, so EventBridge's retries and the dead-letter queue keep the event.
//! The stack's schedule runs the execution sweep: rows with no final status are looked up with
//! GetAutomationExecution in their region.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use std::sync::Arc;
use tarem_shared::aws::dynamodb::{DynamoExecutions, DynamoLocks, DynamoTracker};
use tarem_shared::aws::members::StsMembers;
use tarem_shared::aws::sdk_config;
use tarem_shared::aws::sqs::SqsQueue;
use tarem_shared::aws::ssm::{SsmAutomation, SsmOpsCenter};
use tarem_shared::aws::support::SupportTrustedAdvisor;
use tarem_shared::aws::tagging::TaggingResourceTags;
use tarem_shared::clock::SystemClock;
use tarem_shared::config::{ConfigError, Settings};
use tarem_shared::handlers::ExecutionHandler;
use tarem_shared::lifecycle::LifecycleConfig;
use tarem_shared::ports::{MemberClients, NoGate};
use tarem_shared::telemetry::Emf;

struct Config {
    sweep_after: tarem_shared::Duration,
    parking_queue_url: String,
    tracker_table: String,
    execution_table: String,
    home_account: String,
    lifecycle: LifecycleConfig,
}

impl Config {
    fn from_env() -> Result<Self, ConfigError> {
        let settings = Settings::from_env()?;
        Ok(Self {
            parking_queue_url: settings.required("PARKING_QUEUE_URL")?,
            tracker_table: settings.required("TRACKER_TABLE")?,
            execution_table: settings.required("EXECUTION_TABLE")?,
            home_account: settings.home_account()?,
            // Outcomes are judged by the limits each attempt recorded when it started, so this
            // function needs the verification settings, not the stack's safety controls.
            lifecycle: settings.lifecycle(Default::default())?,
            sweep_after: settings.execution_sweep_after()?,
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
    let handler = Arc::new(ExecutionHandler {
        tracker: Arc::new(DynamoTracker::new(dynamodb.clone(), config.tracker_table)),
        executions: Arc::new(DynamoExecutions::new(
            dynamodb.clone(),
            &config.execution_table,
        )),
        locks: Arc::new(DynamoLocks::new(dynamodb, config.execution_table)),
        members: Arc::new(StsMembers::new(
            &sdk,
            &config.home_account,
            MemberClients {
                automation: Arc::new(SsmAutomation::new(&sdk)),
                ops_center: Arc::new(SsmOpsCenter::new(aws_sdk_ssm::Client::new(&sdk))),
                tags: Arc::new(TaggingResourceTags::new(&sdk)),
                gate: Arc::new(NoGate),
                // Built for the account's clients; the findings sweep (check-tracker) reads it.
                advisor: Arc::new(SupportTrustedAdvisor::for_config(&sdk)),
            },
        )),
        clock: Arc::new(SystemClock),
        config: config.lifecycle,
        parking: Arc::new(SqsQueue::new(
            aws_sdk_sqs::Client::new(&sdk),
            config.parking_queue_url,
        )),
    });
    let sweep_after = config.sweep_after;
    let emf = Emf::install()?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = handler.clone();
        async move {
            let reply = async {
                if tarem_shared::handlers::is_scheduled(&event.payload) {
                    let outcomes = handler.sweep(sweep_after).await?;
                    let summaries: Vec<Value> = outcomes.iter().map(|o| o.summary()).collect();
                    return Ok::<_, Error>(serde_json::json!({ "swept": summaries }));
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
