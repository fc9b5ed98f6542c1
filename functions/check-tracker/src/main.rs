//! check-tracker: Trusted Advisor check item events → one conditional write of the tracker row;
//! the stack's schedule → the findings reconcile sweep of every governed account (each through
//! its own Trusted Advisor API, or its Support API where the plan refuses that: the hub's own
//! with the function's credentials, a member's through its `tarem-member` role), through the
//! same write.
//!
//! Environment: `TRACKER_TABLE`, `MAPPING_TABLE`, `EXECUTION_TABLE` (the account registry),
//! `PARKING_QUEUE_URL` (where unusable events are parked), `HOME_ACCOUNT`, `GOVERNED_ACCOUNTS`,
//! and the stack's `TUNING` (`ReconcileChecks`, `FutureToleranceMinutes`: see
//! `tarem_shared::config`). A call that fails returns a function error, so EventBridge's
//! retries and the dead-letter queue keep the event; an unusable event is logged and counted.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use std::sync::Arc;
use tarem_shared::aws::dynamodb::{DynamoAccounts, DynamoMappings};
use tarem_shared::aws::members::StsMembers;
use tarem_shared::aws::sqs::SqsQueue;
use tarem_shared::aws::ssm::{SsmAutomation, SsmOpsCenter};
use tarem_shared::aws::support::SupportTrustedAdvisor;
use tarem_shared::aws::tagging::TaggingResourceTags;
use tarem_shared::aws::trustedadvisor::{AdvisorWithFallback, TrustedAdvisorApi};
use tarem_shared::aws::{dynamodb::DynamoTracker, sdk_config};
use tarem_shared::clock::SystemClock;
use tarem_shared::config::{ConfigError, Settings};
use tarem_shared::finding::TrackingRules;
use tarem_shared::handlers::CheckTracker;
use tarem_shared::handlers::is_scheduled;
use tarem_shared::ports::{MemberClients, NoGate};
use tarem_shared::reconcile::accounts::AccountsSweep;
use tarem_shared::telemetry::Emf;

struct Config {
    parking_queue_url: String,
    tracker_table: String,
    mapping_table: String,
    execution_table: String,
    home_account: String,
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
            execution_table: settings.required("EXECUTION_TABLE")?,
            home_account: settings.home_account()?,
            reconcile_all_checks: settings.reconcile_all_checks()?,
            rules: settings.tracking_rules()?,
        })
    }

    /// The accounts the sweep reads: the stack's own first, then its members.
    fn accounts(&self) -> Vec<String> {
        let mut accounts = vec![self.home_account.clone()];
        accounts.extend(
            self.rules
                .governed_accounts
                .iter()
                .flatten()
                .filter(|account| **account != self.home_account)
                .cloned(),
        );
        accounts
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
    let tracker = Arc::new(DynamoTracker::new(
        dynamodb.clone(),
        config.tracker_table.clone(),
    ));
    let registry = Arc::new(DynamoAccounts::new(
        dynamodb.clone(),
        config.execution_table.clone(),
    ));
    let clock = Arc::new(SystemClock);
    let handler = CheckTracker {
        tracker: tracker.clone(),
        clock: clock.clone(),
        rules: config.rules.clone(),
        parking: Arc::new(SqsQueue::new(
            aws_sdk_sqs::Client::new(&sdk),
            config.parking_queue_url.clone(),
        )),
        registry: registry.clone(),
        seen: Default::default(),
    };
    let sweep = AccountsSweep {
        tracker,
        mappings: Arc::new(DynamoMappings::new(dynamodb, config.mapping_table.clone())),
        members: Arc::new(StsMembers::new(
            &sdk,
            &config.home_account,
            MemberClients {
                // Built for the account's clients; never called here.
                automation: Arc::new(SsmAutomation::new(&sdk)),
                ops_center: Arc::new(SsmOpsCenter::new(aws_sdk_ssm::Client::new(&sdk))),
                tags: Arc::new(TaggingResourceTags::new(&sdk)),
                gate: Arc::new(NoGate),
                // The Trusted Advisor API where the plan allows it, else the Support API.
                advisor: Arc::new(AdvisorWithFallback::new(
                    TrustedAdvisorApi::for_config(&sdk),
                    SupportTrustedAdvisor::for_config(&sdk),
                )),
            },
        )),
        registry,
        clock,
        all_checks: config.reconcile_all_checks,
        rules: config.rules.clone(),
        accounts: config.accounts(),
    };
    let (handler, sweep) = (Arc::new(handler), Arc::new(sweep));
    let emf = Emf::install()?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (handler, sweep) = (handler.clone(), sweep.clone());
        async move {
            let reply = async {
                if is_scheduled(&event.payload) {
                    let swept = sweep.sweep().await?;
                    return Ok::<_, Error>(serde_json::json!({ "accounts": swept }));
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
