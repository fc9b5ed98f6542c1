//! The commands: each module has its arguments (`clap::Args`) and its `run()`.

pub mod dlq;
pub mod mapping;
pub mod plan;
pub mod reconcile;
pub mod simulate;
pub mod status;

use crate::CliError;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "tarem",
    version,
    about = "Trusted Advisor remediation: mappings, plans and a local run of the loop",
    after_help = "Exit codes: 0 success, 1 problems found, 2 usage error, 3 AWS or network failure."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the whole loop locally on the embedded in-memory backend.
    Simulate(simulate::SimulateArgs),
    /// Manage the mapping table: mappings as code, validated before they are written.
    Mapping(mapping::MappingArgs),
    /// What the loop would do for each Trusted Advisor event, with no side effects.
    Plan(plan::PlanArgs),
    /// Sweep Trusted Advisor's results (Support API) into the tracker: findings no event reported.
    Reconcile(reconcile::ReconcileArgs),
    /// The stack's failure queues.
    Dlq(dlq::DlqArgs),
    /// The loop on one screen: flagged findings, episodes, the last 24 hours, time to fix,
    /// breakers, the kill switch, the OpsItem budget.
    Status(status::StatusArgs),
}

impl Command {
    pub async fn run(self) -> Result<(), CliError> {
        match self {
            Command::Simulate(args) => simulate::run(args).await,
            Command::Mapping(args) => mapping::run(args).await,
            Command::Plan(args) => plan::run(args).await,
            Command::Reconcile(args) => reconcile::run(args).await,
            Command::Dlq(args) => dlq::run(args).await,
            Command::Status(args) => status::run(args).await,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// Where to reach AWS, resolved as the AWS CLI resolves it.
#[derive(clap::Args, Clone, Debug)]
pub struct AwsArgs {
    /// The AWS region (else AWS_REGION, else the profile's).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// A named profile of ~/.aws/config; wins over credentials in the environment, as with the
    /// AWS CLI. An unknown profile is an error.
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Another endpoint for DynamoDB only (a local DynamoDB, say). Other services keep theirs;
    /// the SDK's AWS_ENDPOINT_URL_<SERVICE> variables redirect them.
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Seconds one AWS request may take before it is given up (the command then fails with
    /// exit code 3).
    #[arg(long, global = true, default_value_t = 30, value_name = "SECONDS")]
    pub timeout: u64,
}

impl Default for AwsArgs {
    fn default() -> Self {
        Self {
            region: None,
            profile: None,
            endpoint_url: None,
            timeout: 30,
        }
    }
}

impl AwsArgs {
    /// The SDK configuration: region, credentials and timeouts. With `--profile`, the profile's
    /// credentials are used even when the environment holds others (the SDK's default chain
    /// would prefer the environment's), and they are resolved now, so an unknown profile stops
    /// the command before anything is read or written.
    pub async fn load(&self) -> Result<aws_config::SdkConfig, CliError> {
        use aws_config::timeout::TimeoutConfig;
        use aws_credential_types::provider::ProvideCredentials;
        let limit = std::time::Duration::from_secs(self.timeout.max(1));
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(limit.min(std::time::Duration::from_secs(5)))
                    .read_timeout(limit)
                    .operation_attempt_timeout(limit)
                    .operation_timeout(limit * 3)
                    .build(),
            );
        if let Some(region) = &self.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(profile) = &self.profile {
            let credentials = aws_config::profile::ProfileFileCredentialsProvider::builder()
                .profile_name(profile)
                .build();
            credentials
                .provide_credentials()
                .await
                .map_err(|error| profile_error(profile, &error))?;
            loader = loader
                .profile_name(profile)
                .credentials_provider(credentials);
        }
        Ok(loader.load().await)
    }

    /// A DynamoDB client, at `--endpoint-url` when one is given.
    pub fn dynamodb(&self, sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
        let mut config = aws_sdk_dynamodb::config::Builder::from(sdk);
        if let Some(url) = &self.endpoint_url {
            config = config.endpoint_url(url);
        }
        aws_sdk_dynamodb::Client::from_conf(config.build())
    }

    /// A DynamoDB Streams client, at `--endpoint-url` when one is given (it is DynamoDB's).
    pub fn dynamodb_streams(&self, sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodbstreams::Client {
        let mut config = aws_sdk_dynamodbstreams::config::Builder::from(sdk);
        if let Some(url) = &self.endpoint_url {
            config = config.endpoint_url(url);
        }
        aws_sdk_dynamodbstreams::Client::from_conf(config.build())
    }

    /// Where the DynamoDB calls go, for error messages.
    pub fn dynamodb_target(&self, sdk: &aws_config::SdkConfig, table: &str) -> String {
        match &self.endpoint_url {
            Some(url) => format!("table {table} at {url}"),
            None => format!("table {table} in {}", Self::region_of(sdk)),
        }
    }

    /// The region the configuration resolved to (us-east-1 when none).
    pub fn region_of(config: &aws_config::SdkConfig) -> String {
        config
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".into())
    }
}

/// Why a named profile gives no credentials: unknown (a usage error), or its source failed.
fn profile_error(
    profile: &str,
    error: &aws_credential_types::provider::error::CredentialsError,
) -> CliError {
    let reason = tarem_shared::error::error_chain(error);
    // The SDK says so in words only: "profile `x` was not defined", "No profiles were defined".
    if reason.contains(&format!("profile `{profile}` was not defined"))
        || reason.contains("No profiles were defined")
    {
        CliError::usage(format!(
            "--profile {profile}: no such profile in the AWS config or credentials files"
        ))
    } else {
        CliError::Aws(format!(
            "--profile {profile}: cannot get its credentials: {reason}"
        ))
    }
}

/// Prints a value as pretty JSON.
pub fn print_json(value: &impl serde::Serialize) {
    crate::out!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}
