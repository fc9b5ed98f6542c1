//! `tarem mapping …`: the mapping table as code, validated before anything is written.

mod change;
mod files;

use super::{AwsArgs, Output, print_json};
use crate::CliError;
use crate::mappings::list;
use serde_json::Value;
use std::path::PathBuf;
use tarem_shared::aws::dynamodb::DynamoMappings;
use tarem_shared::mapping::Mode;
use tarem_shared::ports::MappingStore;

#[derive(clap::Args)]
pub struct MappingArgs {
    #[command(subcommand)]
    command: MappingCommand,
    /// The mapping table (the stack's default name).
    #[arg(
        long,
        visible_alias = "mapping-table",
        global = true,
        default_value = "AutomationMappingTable",
        value_name = "NAME"
    )]
    table: String,
    #[command(flatten)]
    aws: AwsArgs,
    /// text for people, json for scripts.
    #[arg(long, global = true, value_enum, default_value = "text")]
    output: Output,
}

/// The item a command writes: flags, or a file.
#[derive(clap::Args, Clone)]
pub struct ItemFlags {
    /// The Trusted Advisor check, exactly as its events name it.
    #[arg(long)]
    check_name: Option<String>,
    /// The SSM Automation document (runbook).
    #[arg(long)]
    document: Option<String>,
    /// A runbook parameter, Name=value (repeatable; e.g. --param GroupId='$resourceId').
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// The regex that pulls $resourceId out of the resource ARN.
    #[arg(long)]
    regex: Option<String>,
    /// Start the runbook automatically (automationStatus true).
    #[arg(long)]
    enabled: bool,
    /// automated, approval, dry-run or inactive (wins over --enabled).
    #[arg(long)]
    mode: Option<String>,
    /// Starts per flagged episode (lowers the stack's MaxAttempts).
    #[arg(long)]
    max_attempts: Option<u32>,
    /// Minutes between two starts (lengthens the stack's CoolDownMinutes).
    #[arg(long)]
    cool_down_minutes: Option<u32>,
    /// A resource tag whose value overrides the mode for that resource.
    #[arg(long)]
    mode_tag_key: Option<String>,
    /// Read the whole item from a file (JSON or YAML, plain or DynamoDB-typed); the file names
    /// the check, so no other item flag goes with it.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["check_name", "document", "params", "regex", "enabled", "mode", "max_attempts", "cool_down_minutes", "mode_tag_key"]
    )]
    from: Option<PathBuf>,
    /// Skip the AWS look-ups (document parameters, check names).
    #[arg(long)]
    offline: bool,
}

impl ItemFlags {
    fn args(&self) -> crate::mappings::ItemArgs {
        crate::mappings::ItemArgs {
            check_name: self.check_name.clone(),
            document: self.document.clone(),
            params: self.params.clone(),
            regex: self.regex.clone(),
            enabled: self.enabled,
            mode: self.mode.clone(),
            max_attempts: self.max_attempts,
            cool_down_minutes: self.cool_down_minutes,
            mode_tag_key: self.mode_tag_key.clone(),
            from: self.from.clone(),
        }
    }
}

#[derive(clap::Subcommand)]
enum MappingCommand {
    /// Every mapping, one line each; with --pack, the starter packs' entries and whether each
    /// is installed.
    List {
        /// List the starter packs (all of them, or the one named) instead of the table.
        #[arg(long, value_name = "PACK", num_args = 0..=1, default_missing_value = "")]
        pack: Option<String>,
    },
    /// One mapping, as stored.
    Show {
        /// The check name.
        check: String,
    },
    /// Add a mapping (validated first; refuses an existing check: use update).
    Add(ItemFlags),
    /// Change an existing mapping: only the attributes given (or the whole item with --from);
    /// validated first.
    Update(ItemFlags),
    /// Start the check's runbook automatically (mode automated).
    Enable {
        /// The check name.
        check: String,
    },
    /// Stop starting it (mode approval: the OpsItem links the runbook).
    Disable {
        /// The check name.
        check: String,
    },
    /// Delete a mapping: its check is tracked, but nothing is remediated.
    Remove {
        /// The check name.
        check: String,
    },
    /// Make the table match a file: shows the diff and asks first.
    Import {
        /// A mapping file (JSON or YAML).
        #[arg(required_unless_present = "pack", conflicts_with = "pack")]
        file: Option<PathBuf>,
        /// A starter pack (security, reliability, cost) instead of a file: every entry in
        /// approval mode.
        #[arg(long, value_name = "PACK", requires = "role")]
        pack: Option<String>,
        /// The automation role the pack's runbooks assume (see `tarem mapping pack-policy`).
        #[arg(long, value_name = "ROLE_ARN")]
        role: Option<String>,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
        /// Remove mappings the file does not have.
        #[arg(long)]
        prune: bool,
        /// Skip the AWS look-ups (document parameters, check names).
        #[arg(long)]
        offline: bool,
    },
    /// What a starter pack's runbooks need: the automation role's permissions and trust
    /// policies, and the stack's AllowedAutomationDocuments.
    PackPolicy {
        /// The packs (default: all), or pack files.
        #[arg(value_name = "PACK")]
        packs: Vec<String>,
        /// Only the pack entries the table holds.
        #[arg(long)]
        installed: bool,
        /// The account the role lives in (goes into its trust policy).
        #[arg(long, default_value = "123456789012")]
        account: String,
    },
    /// The whole table as JSON (or YAML for a .yaml/.yml FILE); to standard output without FILE.
    Export {
        /// Where to write it.
        file: Option<PathBuf>,
    },
    /// Validate a file's items, or a stored check, or the whole table.
    Validate {
        /// A mapping file, or a check name in the table.
        target: Option<String>,
        /// Skip the AWS look-ups (document parameters, check names).
        #[arg(long)]
        offline: bool,
    },
}

/// What every subcommand works with.
struct Context {
    table: String,
    output: Output,
    sdk: aws_config::SdkConfig,
    store: DynamoMappings,
}

pub async fn run(args: MappingArgs) -> Result<(), CliError> {
    let sdk = args.aws.load().await?;
    let target = args.aws.dynamodb_target(&sdk, &args.table);
    let context = Context {
        store: DynamoMappings::new(args.aws.dynamodb(&sdk), &args.table),
        table: args.table,
        output: args.output,
        sdk,
    };
    run_command(&context, args.command)
        .await
        .map_err(|error| error.at(&target))
}

async fn run_command(context: &Context, command: MappingCommand) -> Result<(), CliError> {
    match command {
        MappingCommand::List { pack: None } => list_table(context).await,
        MappingCommand::List { pack: Some(pack) } => list_packs(context, &pack).await,
        MappingCommand::PackPolicy {
            packs,
            installed,
            account,
        } => pack_policy(context, &packs, installed, &account).await,
        MappingCommand::Show { check } => show(context, &check).await,
        MappingCommand::Add(flags) => change::write_item(context, &flags, false).await,
        MappingCommand::Update(flags) => change::write_item(context, &flags, true).await,
        MappingCommand::Enable { check } => {
            change::set_mode(context, &check, Mode::Automated).await
        }
        MappingCommand::Disable { check } => {
            change::set_mode(context, &check, Mode::Approval).await
        }
        MappingCommand::Remove { check } => change::remove(context, &check).await,
        MappingCommand::Import {
            file,
            pack,
            role,
            yes,
            prune,
            offline,
        } => {
            let source = match (&file, &pack, &role) {
                (_, Some(pack), Some(role)) => files::Source::Pack { pack, role },
                (Some(file), _, _) => files::Source::File(file),
                _ => return Err(CliError::usage("name a mapping file or --pack with --role")),
            };
            files::import(context, source, yes, prune, offline).await
        }
        MappingCommand::Export { file } => files::export(context, file).await,
        MappingCommand::Validate { target, offline } => {
            files::validate(context, target.as_deref(), offline).await
        }
    }
}

async fn list_table(context: &Context) -> Result<(), CliError> {
    let rows = list(&context.store).await?;
    match context.output {
        Output::Json => print_json(&rows),
        Output::Text if rows.is_empty() => crate::out!(
            "{} holds no mappings yet; add one with `tarem mapping add` or `tarem mapping import`",
            context.table
        ),
        Output::Text => {
            for row in &rows {
                crate::out!(
                    "{:<10} {:<45} {}{}",
                    row.mode,
                    row.document,
                    row.check_name,
                    row.problem
                        .as_ref()
                        .map(|p| format!("  (broken: {p})"))
                        .unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}

fn pack_names(pack: &str) -> Vec<&str> {
    if pack.is_empty() {
        crate::pack::PACKS.iter().map(|(name, _)| *name).collect()
    } else {
        vec![pack]
    }
}

async fn list_packs(context: &Context, pack: &str) -> Result<(), CliError> {
    let table = context.store.list().await?;
    let entries = crate::pack::entries(&pack_names(pack), &table)?;
    match context.output {
        Output::Json => print_json(&entries),
        Output::Text => {
            for entry in &entries {
                crate::out!(
                    "{:<12} {:<22} {:<58} {}",
                    entry.pack,
                    entry.state,
                    entry.document,
                    entry.check_name
                );
            }
        }
    }
    Ok(())
}

async fn pack_policy(
    context: &Context,
    packs: &[String],
    installed: bool,
    account: &str,
) -> Result<(), CliError> {
    let names: Vec<&str> = if packs.is_empty() {
        pack_names("")
    } else {
        packs.iter().map(String::as_str).collect()
    };
    let mut items = vec![];
    for name in &names {
        items.extend(crate::pack::items(name)?);
    }
    if installed {
        let table = context.store.list().await?;
        let ids: Vec<Value> = table
            .iter()
            .map(tarem_shared::mapping::plain_json)
            .filter_map(|item| item.get("x-id").cloned())
            .collect();
        items.retain(|item| item.get("x-id").is_some_and(|id| ids.contains(id)));
    }
    print_json(&crate::pack::role_needs(&items, account));
    Ok(())
}

async fn show(context: &Context, check: &str) -> Result<(), CliError> {
    match context.store.get(check).await? {
        Some(item) => {
            print_json(&item);
            Ok(())
        }
        None => Err(CliError::usage(format!(
            "no mapping for {check:?} in {}",
            context.table
        ))),
    }
}
