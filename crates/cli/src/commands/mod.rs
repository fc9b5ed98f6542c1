//! The commands: each module has its arguments (`clap::Args`) and its `run()`.

pub mod dlq;
pub mod mapping;
pub mod plan;
pub mod reconcile;
pub mod simulate;

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
}

impl Command {
    pub async fn run(self) -> Result<(), CliError> {
        match self {
            Command::Simulate(args) => simulate::run(args).await,
            Command::Mapping(args) => mapping::run(args).await,
            Command::Plan(args) => plan::run(args).await,
            Command::Reconcile(args) => reconcile::run(args).await,
            Command::Dlq(args) => dlq::run(args).await,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// Where to reach AWS, as the AWS CLI takes it.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct AwsArgs {
    /// The AWS region (else the profile's, or AWS_REGION).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// A named profile of ~/.aws/config.
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Another endpoint for DynamoDB (a local DynamoDB, say).
    #[arg(long, global = true)]
    pub endpoint_url: Option<String>,
}

impl AwsArgs {
    pub async fn load(&self) -> aws_config::SdkConfig {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &self.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(profile) = &self.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        loader.load().await
    }

    /// The region the configuration resolved to (us-east-1 when none).
    pub fn region_of(config: &aws_config::SdkConfig) -> String {
        config
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".into())
    }
}

/// Prints a value as pretty JSON.
pub fn print_json(value: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}
