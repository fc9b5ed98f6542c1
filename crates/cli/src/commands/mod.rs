//! The commands: each module has its arguments (`clap::Args`) and its `run()`.

pub mod accounts;
pub mod approve;
pub mod completions;
pub mod dlq;
pub mod doctor;
mod episodes;
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
    /// Approve an approval-mode episode's next start (as setting its OpsItem's tarem:approve to
    /// yes in OpsCenter does): the start passes every control as an automated one would.
    Approve(approve::ApproveArgs),
    /// The organisation's coverage: each governed account, what its findings are doing, and
    /// what keeps the hub out of it (a member role refused, a pause, an account gone).
    Accounts(accounts::AccountsArgs),
    /// A preflight of the account and the stack: credentials, support plan, the stack and its
    /// tables, Trusted Advisor events, OpsCenter, the kill switch, alarms and mappings.
    Doctor(doctor::DoctorArgs),
    /// Shell completions: tarem completions bash > /etc/bash_completion.d/tarem (or zsh, fish).
    Completions(completions::CompletionsArgs),
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
            Command::Accounts(args) => accounts::run(args).await,
            Command::Approve(args) => approve::run(args).await,
            Command::Doctor(args) => doctor::run(args).await,
            Command::Completions(args) => completions::run(args),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// Where the stack lives, and where the CLI looks unless told otherwise: Trusted Advisor
/// publishes its events in us-east-1 only, so the stack is deployed there (the template refuses
/// any other region).
pub const STACK_REGION: &str = "us-east-1";

/// Where to reach AWS: credentials resolved as the AWS CLI resolves them; the region is the
/// stack's (us-east-1) unless `--region` names another.
#[derive(clap::Args, Clone, Debug)]
pub struct AwsArgs {
    /// The AWS region. Default: us-east-1, where the stack lives (the profile's region and
    /// AWS_REGION are not used: a stack elsewhere would hear no Trusted Advisor event).
    #[arg(long, global = true, env = "TAREM_REGION", value_name = "REGION")]
    pub region: Option<String>,
    /// A named profile of ~/.aws/config; wins over credentials in the environment, as with the
    /// AWS CLI. An unknown profile is a usage error (exit code 2).
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Another endpoint for DynamoDB only (a local DynamoDB, say); without --stack the tables
    /// then keep their default names. Other services keep theirs; the SDK's
    /// AWS_ENDPOINT_URL_<SERVICE> variables redirect them.
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Seconds one AWS request may take, retries included, before it is given up (the command
    /// then fails with exit code 3).
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
    /// The SDK configuration: region, credentials and timeouts. The credentials are resolved
    /// now, so a command without any (or with an unknown `--profile`) stops with the reason
    /// before anything is read or written. With `--profile`, the profile's credentials are used
    /// even when the environment holds others (the SDK's default chain would prefer the
    /// environment's).
    pub async fn load(&self) -> Result<aws_config::SdkConfig, CliError> {
        use aws_credential_types::provider::ProvideCredentials;
        let sdk = self.load_unchecked().await?;
        if self.profile.is_none() {
            match sdk.credentials_provider() {
                Some(provider) => provider
                    .provide_credentials()
                    .await
                    .map(|_| ())
                    .map_err(|error| no_credentials(&error))?,
                None => return Err(no_credentials_said(None)),
            }
        }
        Ok(sdk)
    }

    /// The SDK configuration without resolving the default chain's credentials (`tarem
    /// doctor` reports their absence as a check); a named profile is still resolved.
    pub async fn load_unchecked(&self) -> Result<aws_config::SdkConfig, CliError> {
        use aws_config::timeout::TimeoutConfig;
        use aws_credential_types::provider::ProvideCredentials;
        let limit = std::time::Duration::from_secs(self.timeout.max(1));
        let region = self.region.clone().unwrap_or_else(|| STACK_REGION.into());
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(limit.min(std::time::Duration::from_secs(5)))
                    .read_timeout(limit)
                    .operation_attempt_timeout(limit)
                    // --timeout N gives up after N seconds, however many attempts that holds.
                    .operation_timeout(limit)
                    .build(),
            );
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

    /// The region the configuration resolved to.
    pub fn region_of(config: &aws_config::SdkConfig) -> String {
        config
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| STACK_REGION.into())
    }
}

/// Why a named profile gives no credentials: unknown or empty (a usage error), or its source
/// failed (SSO expired, a role it could not assume).
fn profile_error(
    profile: &str,
    error: &aws_credential_types::provider::error::CredentialsError,
) -> CliError {
    use aws_credential_types::provider::error::CredentialsError;
    let reason = tarem_shared::error::error_chain(error);
    // "Not loaded" is the SDK's word for a profile it has nothing for: none defined, no such
    // profile, or one without credentials ("the credential provider was not enabled").
    if matches!(error, CredentialsError::CredentialsNotLoaded(_))
        || reason.contains(&format!("profile `{profile}` was not defined"))
    {
        CliError::usage(format!(
            "--profile {profile}: no such profile with credentials in the AWS config or \
             credentials files (~/.aws/config, ~/.aws/credentials, or AWS_CONFIG_FILE)"
        ))
    } else {
        CliError::Aws(format!(
            "--profile {profile}: cannot get its credentials: {reason}"
        ))
    }
}

/// No credentials anywhere the SDK looks: said as such, not as a network failure.
fn no_credentials(error: &aws_credential_types::provider::error::CredentialsError) -> CliError {
    use aws_credential_types::provider::error::CredentialsError;
    match error {
        CredentialsError::CredentialsNotLoaded(_) => no_credentials_said(None),
        other => no_credentials_said(Some(tarem_shared::error::error_chain(other))),
    }
}

fn no_credentials_said(reason: Option<String>) -> CliError {
    let base = "no AWS credentials: none in the environment (AWS_ACCESS_KEY_ID), the default \
                profile, SSO or an instance role";
    let hint = "run `aws configure` or `aws sso login`, or name a profile with --profile";
    CliError::usage(match reason {
        Some(reason) => format!("{base} ({reason})\n  {hint}"),
        None => format!("{base}\n  {hint}"),
    })
}

/// Prints a value as pretty JSON.
pub fn print_json(value: &impl serde::Serialize) {
    crate::out!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}
