//! `tarem plan`: what each event would trigger, with no side effects.

use super::{AwsArgs, Output, print_json};
use crate::CliError;
use crate::plan::{plan, plan_text, read_event};
use std::path::PathBuf;
use tarem_shared::aws::dynamodb::DynamoMappings;
use tarem_shared::ports::MappingStore;

#[derive(clap::Args)]
pub struct PlanArgs {
    /// Mapping items (JSON or YAML), instead of the table.
    #[arg(long, value_name = "FILE", conflicts_with = "table")]
    mappings: Option<PathBuf>,
    /// Read the mappings from this table.
    #[arg(long, value_name = "NAME")]
    table: Option<String>,
    #[command(flatten)]
    aws: AwsArgs,
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
    /// Trusted Advisor event files.
    #[arg(required = true, value_name = "EVENT")]
    events: Vec<PathBuf>,
}

pub async fn run(args: PlanArgs) -> Result<(), CliError> {
    let items = match (args.mappings, args.table) {
        (Some(path), _) => crate::mapping_file::read_unvalidated(&path)?,
        (None, Some(table)) => {
            let sdk = args.aws.load().await;
            DynamoMappings::new(aws_sdk_dynamodb::Client::new(&sdk), table)
                .list()
                .await?
        }
        (None, None) => {
            return Err(CliError::usage(
                "--mappings FILE or --table NAME is required",
            ));
        }
    };
    let mut plans = vec![];
    for path in &args.events {
        let event = read_event(path)?;
        plans.push(plan(&path.display().to_string(), &event, &items));
    }
    match args.output {
        Output::Json => print_json(&plans),
        Output::Text => {
            for plan in &plans {
                println!("{}", plan_text(plan));
            }
        }
    }
    Ok(())
}
