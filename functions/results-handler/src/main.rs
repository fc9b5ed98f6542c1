//! results-handler: tracker stream batches → episodes, OpsItems and automations, with a partial
//! batch response naming only the records that failed retryably; the stack's schedule → the
//! episode sweep (holds that ended, verify windows, owed OpsItems).
//!
//! Environment: `TRACKER_TABLE`, `MAPPING_TABLE`, `EXECUTION_TABLE`,
//! `ALLOWED_AUTOMATION_DOCUMENTS` (comma-separated, required: the allowlist fails closed),
//! `KILL_SWITCH_PARAMETER`, `PARKING_QUEUE_URL` (records that failed permanently), optionally
//! `ALLOWED_AUTOMATION_ROLES`, `OPT_IN` with `OPT_IN_TAG_KEY`/`OPT_IN_TAG_VALUE`,
//! `OPS_ITEM_SOURCE` (TrustedAdvisor), and the stack's `TUNING` (the safety and verification
//! settings, the mapping cache: see `tarem_shared::config`).

use aws_sdk_dynamodb::Client as DynamoDb;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use std::sync::Arc;
use tarem_shared::aws::dynamodb::{
    DynamoCounters, DynamoExecutions, DynamoLocks, DynamoMappings, DynamoTracker,
};
use tarem_shared::aws::members::StsMembers;
use tarem_shared::aws::sdk_config;
use tarem_shared::aws::sqs::SqsQueue;
use tarem_shared::aws::ssm::{SsmAutomation, SsmOpsCenter, SsmParameterKillSwitch};
use tarem_shared::aws::support::SupportTrustedAdvisor;
use tarem_shared::aws::tagging::TaggingResourceTags;
use tarem_shared::clock::SystemClock;
use tarem_shared::config::{ConfigError, Settings};
use tarem_shared::handlers::{MappingCache, ResultsHandler};
use tarem_shared::lifecycle::LifecycleConfig;
use tarem_shared::ports::{MemberClients, NoGate};
use tarem_shared::telemetry::Emf;

struct Config {
    parking_queue_url: String,
    tracker_table: String,
    mapping_table: String,
    execution_table: String,
    kill_switch_parameter: String,
    home_account: String,
    mapping_cache: tarem_shared::Duration,
    lifecycle: LifecycleConfig,
}

impl Config {
    fn from_env() -> Result<Self, ConfigError> {
        let settings = Settings::from_env()?;
        Ok(Self {
            parking_queue_url: settings.required("PARKING_QUEUE_URL")?,
            tracker_table: settings.required("TRACKER_TABLE")?,
            mapping_table: settings.required("MAPPING_TABLE")?,
            execution_table: settings.required("EXECUTION_TABLE")?,
            kill_switch_parameter: settings.required("KILL_SWITCH_PARAMETER")?,
            home_account: settings.home_account()?,
            mapping_cache: settings.mapping_cache()?,
            lifecycle: settings.lifecycle(settings.safety()?)?,
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
    let dynamodb = DynamoDb::new(&sdk);
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let clock = Arc::new(SystemClock);
    let handler = Arc::new(ResultsHandler {
        tracker: Arc::new(DynamoTracker::new(dynamodb.clone(), config.tracker_table)),
        mappings: MappingCache::new(
            Arc::new(DynamoMappings::new(dynamodb.clone(), config.mapping_table)),
            clock.clone(),
            config.mapping_cache,
        ),
        executions: Arc::new(DynamoExecutions::new(
            dynamodb.clone(),
            &config.execution_table,
        )),
        counters: Arc::new(DynamoCounters::new(
            dynamodb.clone(),
            &config.execution_table,
        )),
        locks: Arc::new(DynamoLocks::new(dynamodb, config.execution_table)),
        members: Arc::new(StsMembers::new(
            &sdk,
            &config.home_account,
            MemberClients {
                automation: Arc::new(SsmAutomation::new(&sdk)),
                ops_center: Arc::new(SsmOpsCenter::new(ssm.clone())),
                tags: Arc::new(TaggingResourceTags::new(&sdk)),
                gate: Arc::new(NoGate),
                // Built for the account's clients; the findings sweep (check-tracker) reads it.
                advisor: Arc::new(SupportTrustedAdvisor::for_config(&sdk)),
            },
        )),
        kill_switch: Arc::new(SsmParameterKillSwitch::new(
            ssm,
            config.kill_switch_parameter,
        )),
        clock,
        config: config.lifecycle,
        pacer: Default::default(),
        parking: Arc::new(SqsQueue::new(
            aws_sdk_sqs::Client::new(&sdk),
            config.parking_queue_url,
        )),
    });
    let emf = Emf::install()?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = handler.clone();
        async move {
            let deadline = tarem_shared::chrono_from_millis(event.context.deadline);
            let reply = handler.invoke(&event.payload, deadline).await;
            // The invocation's metrics, before Lambda freezes the environment at the next /next.
            emf.flush();
            Ok::<_, Error>(reply?)
        }
    }))
    .await
}
