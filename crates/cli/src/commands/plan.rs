//! `tarem plan`: what each event would trigger, with no side effects.

use super::{AwsArgs, Output, print_json};
use crate::CliError;
use crate::blast;
use crate::plan::{plan, plan_text, playground_stack, read_events};
use crate::stack::StackArgs;
use std::path::PathBuf;
use tarem_shared::aws::dynamodb::{DynamoMappings, DynamoTracker};
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
    /// The blast radius instead of events: every resource the tracker holds flagged now, for
    /// each mapped check, and what the mappings would do with it.
    #[arg(long, conflicts_with = "events")]
    flagged: bool,
    /// With --flagged: only this check's flagged resources.
    #[arg(long, value_name = "NAME", requires = "flagged")]
    check: Option<String>,
    /// With --flagged: the tracker table [default: the stack's].
    #[arg(long, value_name = "NAME", requires = "flagged")]
    tracker_table: Option<String>,
    /// With --flagged: the account whose findings [default: the stack's; with --tracker-table
    /// and no stack, every account's].
    #[arg(long, value_name = "ID", requires = "flagged")]
    account: Option<String>,
    /// Trusted Advisor event files, or folders of them (read in name order).
    #[arg(required_unless_present = "flagged", value_name = "EVENTS")]
    events: Vec<PathBuf>,
}

pub async fn run(args: PlanArgs) -> Result<(), CliError> {
    let inputs = if args.flagged {
        crate::inputs::Inputs::default()
    } else {
        crate::inputs::event_files(&args.events, args.mappings.as_deref())?
    };
    let local = crate::inputs::local_mappings(
        args.mappings.as_deref(),
        args.pack.as_deref(),
        &inputs,
        false,
    )?;
    // The deployed stack is read for its table, and for its settings when asked (--stack); the
    // blast radius reads its tracker unless given one.
    let deployed = local.is_none()
        || args.stack.stack.is_some()
        || (args.flagged && args.tracker_table.is_none());
    let (stack, sdk) = if deployed {
        let sdk = args.aws.load().await?;
        (Some(args.stack.read(&args.aws, &sdk).await?), Some(sdk))
    } else if args.flagged {
        (None, Some(args.aws.load().await?))
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
    if args.flagged {
        let sdk = sdk.as_ref().expect("loaded for --flagged");
        let table = match (&args.tracker_table, &stack) {
            (Some(table), _) => table.clone(),
            (None, Some(stack)) => stack.tracker_table(),
            (None, None) => unreachable!("the stack is read when no tracker table is given"),
        };
        let account = args.account.clone().or_else(|| {
            stack
                .as_ref()
                .and_then(|s| s.deployed.as_ref())
                .map(|d| d.account.clone())
                .filter(|a| !a.is_empty())
        });
        let target = args.aws.dynamodb_target(sdk, &table);
        let tracker = DynamoTracker::new(args.aws.dynamodb(sdk), &table);
        let checks = blast::checks(&items, args.check.as_deref());
        let rows = blast::flagged_rows(&tracker, account.as_deref(), &checks)
            .await
            .map_err(|error| error.at(&target))?;
        let radius = blast::blast_radius(&rows, &items, &config);
        match args.output {
            Output::Json => print_json(&radius),
            Output::Text => {
                crate::out!("mappings   {mappings_said}");
                crate::out!("settings   {settings_said}");
                crate::out!(
                    "tracker    {target}{}",
                    account
                        .as_deref()
                        .map(|a| format!(", account {a}"))
                        .unwrap_or_default()
                );
                for plan in &radius.plans {
                    crate::out!("{}", plan_text(plan));
                }
                crate::out!("{}", blast::summary(&radius));
            }
        }
        return Ok(());
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
