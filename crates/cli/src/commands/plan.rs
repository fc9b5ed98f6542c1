//! `tarem plan`: what each event would trigger, with no side effects.

use super::{AwsArgs, Output, print_json};
use crate::CliError;
use crate::plan::{plan, plan_text, playground_stack, read_events};
use crate::stack::StackArgs;
use std::path::PathBuf;
use tarem_shared::aws::dynamodb::DynamoMappings;
use tarem_shared::ports::MappingStore;

#[derive(clap::Args)]
pub struct PlanArgs {
    /// Mapping items (JSON or YAML) instead of the table; without it (or --pack), a mapping
    /// file beside the events is used, else the deployed stack's table.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["table", "pack"])]
    mappings: Option<PathBuf>,
    /// A built-in starter pack's entries instead of the table (security, reliability, cost, or all), with
    /// a placeholder AutomationAssumeRole the output names: evaluate before deploying.
    #[arg(long, value_name = "PACK", conflicts_with = "table")]
    pack: Option<String>,
    /// Read the mappings from this table [default: the stack's mapping table].
    #[arg(long, value_name = "NAME")]
    table: Option<String>,
    #[command(flatten)]
    stack: StackArgs,
    /// The documents the stack allows (its AllowedAutomationDocuments parameter), comma
    /// separated [default: the deployed stack's when the mappings are its table's or --stack is
    /// given, else the documents the mappings name].
    #[arg(long, value_name = "DOCUMENTS", value_delimiter = ',')]
    allowed_documents: Vec<String>,
    /// The roles the stack allows (its AutomationRoleArns parameter and example role), comma
    /// separated [default: as --allowed-documents, the roles the mappings name].
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
    let local = crate::inputs::local_mappings(
        args.mappings.as_deref(),
        args.pack.as_deref(),
        &inputs,
        false,
    )?;
    // The deployed stack is read for its table, and for its settings when asked (--stack).
    let deployed = local.is_none() || args.stack.stack.is_some();
    let (stack, sdk) = if deployed {
        let sdk = args.aws.load().await?;
        (Some(args.stack.read(&args.aws, &sdk).await?), Some(sdk))
    } else {
        (None, None)
    };
    let (items, mappings_said) = match (local, &stack, &sdk) {
        (Some(local), _, _) => (local.items, local.said),
        (None, Some(stack), Some(sdk)) => {
            let table = args.table.clone().unwrap_or_else(|| stack.mapping_table());
            let target = args.aws.dynamodb_target(sdk, &table);
            let items = DynamoMappings::new(args.aws.dynamodb(sdk), &table)
                .list()
                .await
                .map_err(|error| CliError::from(error).at(&target))?;
            (items, target)
        }
        _ => unreachable!("the stack is read whenever the mappings are the table's"),
    };
    let deployed_config = match &stack {
        Some(stack) => stack.lifecycle()?,
        None => None,
    };
    let (mut config, settings_said) = match (deployed_config, &stack) {
        (Some(config), Some(stack)) => (
            config,
            format!(
                "{}: its allowlists, opt-in and tuning",
                stack.describe_source()
            ),
        ),
        _ => (
            playground_stack(&items),
            "the playground's: it allows the documents and roles the mappings name (--stack \
             reads the deployed stack's)"
                .to_owned(),
        ),
    };
    if !args.allowed_documents.is_empty() {
        config.safety.allowed_documents = args.allowed_documents.clone();
    }
    if !args.allowed_roles.is_empty() {
        config.safety.allowed_roles = args.allowed_roles.clone();
    }
    let mut plans = vec![];
    for path in &inputs.events {
        for (source, event) in read_events(path)? {
            plans.push(plan(&source, &event, &items, &config));
        }
    }
    match args.output {
        Output::Json => print_json(&plans),
        Output::Text => {
            crate::out!("mappings   {mappings_said}");
            crate::out!("settings   {settings_said}");
            for plan in &plans {
                crate::out!("{}", plan_text(plan));
            }
        }
    }
    Ok(())
}
