//! `tarem doctor`: the preflight ([`crate::doctor`]).

use super::{AwsArgs, Output, print_json};
use crate::CliError;
use crate::doctor::{Clients, Health, diagnose, text};
use crate::stack::StackArgs;

#[derive(clap::Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    aws: AwsArgs,
    /// text for people, json for scripts.
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

pub async fn run(args: DoctorArgs) -> Result<(), CliError> {
    let sdk = args.aws.load_unchecked().await?;
    let clients = Clients {
        sts: aws_sdk_sts::Client::new(&sdk),
        cloudformation: aws_sdk_cloudformation::Client::new(&sdk),
        dynamodb: args.aws.dynamodb(&sdk),
        logs: aws_sdk_cloudwatchlogs::Client::new(&sdk),
        sns: aws_sdk_sns::Client::new(&sdk),
        ssm: aws_sdk_ssm::Client::new(&sdk),
        support: aws_sdk_support::Client::new(&sdk),
    };
    let lines = diagnose(
        &clients,
        args.stack.name(),
        &AwsArgs::region_of(&sdk),
        chrono::Utc::now(),
    )
    .await;
    match args.output {
        Output::Json => print_json(&lines),
        Output::Text => crate::out!("{}", text(&lines)),
    }
    let failed = lines.iter().filter(|l| l.health == Health::Fail).count();
    match failed {
        0 => Ok(()),
        n => Err(CliError::Problems(format!(
            "{} to fix",
            crate::output::plural(n, "check")
        ))),
    }
}
