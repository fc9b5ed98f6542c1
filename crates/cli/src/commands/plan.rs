//! `tarem plan`: what each event would trigger, with no side effects.

use super::{AwsArgs, Output, print_json};
use crate::CliError;
use crate::plan::{plan, plan_text, playground_stack, read_events};
use std::path::PathBuf;
use tarem_shared::aws::dynamodb::DynamoMappings;
use tarem_shared::ports::MappingStore;

#[derive(clap::Args)]
pub struct PlanArgs {
    /// Mapping items (JSON or YAML) instead of the table; without it, a mapping file beside the
    /// events is used, else the table.
    #[arg(long, value_name = "FILE", conflicts_with = "table")]
    mappings: Option<PathBuf>,
    /// Read the mappings from this table.
    #[arg(long, value_name = "NAME", default_value = "AutomationMappingTable")]
    table: String,
    /// The documents the deployed stack allows (its AllowedAutomationDocuments), comma
    /// separated; default: the documents the mappings name.
    #[arg(long, value_name = "DOCUMENTS", value_delimiter = ',')]
    allowed_documents: Vec<String>,
    /// The roles the deployed stack allows (its AllowedAutomationRoles), comma separated;
    /// default: the roles the mappings name.
    #[arg(long, value_name = "ROLE_ARNS", value_delimiter = ',')]
    allowed_roles: Vec<String>,
    #[command(flatten)]
    aws: AwsArgs,
    /// text for people, json for scripts.
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
    /// Trusted Advisor event files, or folders of them (read in name order).
    #[arg(required = true, value_name = "EVENTS")]
    events: Vec<PathBuf>,
}

pub async fn run(args: PlanArgs) -> Result<(), CliError> {
    let inputs = crate::inputs::event_files(&args.events, args.mappings.as_deref())?;
    let items = match crate::inputs::mapping_file(args.mappings.as_deref(), &inputs)? {
        Some(path) => crate::mapping_file::read_unvalidated(&path)?,
        None => {
            let sdk = args.aws.load().await?;
            DynamoMappings::new(args.aws.dynamodb(&sdk), &args.table)
                .list()
                .await
                .map_err(|error| {
                    CliError::from(error).at(&args.aws.dynamodb_target(&sdk, &args.table))
                })?
        }
    };
    let mut stack = playground_stack(&items);
    if !args.allowed_documents.is_empty() {
        stack.safety.allowed_documents = args.allowed_documents.clone();
    }
    if !args.allowed_roles.is_empty() {
        stack.safety.allowed_roles = args.allowed_roles.clone();
    }
    let mut plans = vec![];
    for path in &inputs.events {
        for (source, event) in read_events(path)? {
            plans.push(plan(&source, &event, &items, &stack));
        }
    }
    match args.output {
        Output::Json => print_json(&plans),
        Output::Text => {
            for plan in &plans {
                crate::out!("{}", plan_text(plan));
            }
        }
    }
    Ok(())
}
