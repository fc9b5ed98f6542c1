//! `tarem mapping …`: the mapping table as code, validated before anything is written.

mod change;
mod files;

use super::{AwsArgs, Output, print_json};
use crate::CliError;
use crate::mappings::list;
use crate::stack::{Stack, StackArgs};
use serde_json::Value;
use std::path::PathBuf;
use tarem_shared::aws::dynamodb::DynamoMappings;
use tarem_shared::mapping::Mode;
use tarem_shared::ports::MappingStore;
use tarem_shared::safety::SafetyConfig;

#[derive(clap::Args)]
pub struct MappingArgs {
    #[command(subcommand)]
    command: MappingCommand,
    /// The mapping table [default: the stack's MappingTableName].
    #[arg(
        long,
        visible_alias = "mapping-table",
        global = true,
        value_name = "NAME"
    )]
    table: Option<String>,
    #[command(flatten)]
    stack: StackArgs,
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
    /// Show the change and write nothing.
    #[arg(long)]
    dry_run: bool,
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
    /// Start the check's runbook automatically (mode automated). Shows the blast radius (how
    /// many resources flagged now it would start on, and the first ones), then asks.
    Enable {
        /// The check name.
        check: String,
        /// Show the change and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Enable without asking (required without a terminal).
        #[arg(long)]
        yes: bool,
    },
    /// Stop starting it (mode approval: the OpsItem links the runbook).
    Disable {
        /// The check name.
        check: String,
        /// Show the change and write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete a mapping: its check is tracked, but nothing is remediated.
    Remove {
        /// The check name.
        check: String,
        /// Show the change and write nothing.
        #[arg(long)]
        dry_run: bool,
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
        /// The account the role lives in (goes into its trust policy) [default: the account
        /// of the credentials in use, from STS].
        #[arg(long, value_parser = account_id)]
        account: Option<String>,
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

/// What every subcommand works with: the table, reached only when a subcommand needs it (an
/// offline validation or a policy for a named account reads no AWS).
struct Context {
    aws: AwsArgs,
    stack: StackArgs,
    table: Option<String>,
    output: Output,
    connected: tokio::sync::OnceCell<Connected>,
}

/// The table and the stack, reached.
struct Connected {
    sdk: aws_config::SdkConfig,
    stack: Stack,
    table: String,
    /// Where the table is, for messages (`table X in us-east-1`).
    target: String,
    store: DynamoMappings,
    /// The deployed stack's settings, to say what it would refuse.
    safety: Option<SafetyConfig>,
}

impl Context {
    async fn connect(&self) -> Result<&Connected, CliError> {
        self.connected
            .get_or_try_init(|| async {
                let sdk = self.aws.load().await?;
                let stack = self.stack.read(&self.aws, &sdk).await?;
                let table = self.table.clone().unwrap_or_else(|| stack.mapping_table());
                let safety = stack.lifecycle()?.map(|config| config.safety);
                Ok(Connected {
                    target: self.aws.dynamodb_target(&sdk, &table),
                    store: DynamoMappings::new(self.aws.dynamodb(&sdk), &table),
                    table,
                    safety,
                    stack,
                    sdk,
                })
            })
            .await
    }

    /// Where a failed AWS call was reaching.
    fn place(&self, error: CliError) -> CliError {
        match self.connected.get() {
            Some(connected) => error.at(&connected.target),
            None => error,
        }
    }
}

fn account_id(text: &str) -> Result<String, String> {
    if text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()) {
        Ok(text.to_owned())
    } else {
        Err("an AWS account id is 12 digits".into())
    }
}

pub async fn run(args: MappingArgs) -> Result<(), CliError> {
    let context = Context {
        aws: args.aws,
        stack: args.stack,
        table: args.table,
        output: args.output,
        connected: tokio::sync::OnceCell::new(),
    };
    let result = run_command(&context, args.command).await;
    result.map_err(|error| context.place(error))
}

async fn run_command(context: &Context, command: MappingCommand) -> Result<(), CliError> {
    match command {
        MappingCommand::List { pack: None } => list_table(context).await,
        MappingCommand::List { pack: Some(pack) } => list_packs(context, &pack).await,
        MappingCommand::PackPolicy {
            packs,
            installed,
            account,
        } => pack_policy(context, &packs, installed, account).await,
        MappingCommand::Show { check } => show(context, &check).await,
        MappingCommand::Add(flags) => change::write_item(context, &flags, false).await,
        MappingCommand::Update(flags) => change::write_item(context, &flags, true).await,
        MappingCommand::Enable {
            check,
            dry_run,
            yes,
        } => change::set_mode(context, &check, Mode::Automated, dry_run, yes).await,
        MappingCommand::Disable { check, dry_run } => {
            change::set_mode(context, &check, Mode::Approval, dry_run, true).await
        }
        MappingCommand::Remove { check, dry_run } => change::remove(context, &check, dry_run).await,
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
    let table = context.connect().await?;
    let rows = list(&table.store).await?;
    match context.output {
        Output::Json => print_json(&rows),
        Output::Text if rows.is_empty() => crate::out!(
            "{} holds no mappings yet; add one with `tarem mapping add` or `tarem mapping import`",
            table.table
        ),
        Output::Text => {
            let table_rows: Vec<Vec<String>> = rows
                .iter()
                .map(|row| {
                    vec![
                        row.mode.clone(),
                        row.document.clone(),
                        format!(
                            "{}{}",
                            row.check_name,
                            row.problem
                                .as_ref()
                                .map(|p| format!("  (broken: {p})"))
                                .unwrap_or_default()
                        ),
                    ]
                })
                .collect();
            crate::out!(
                "{}",
                crate::output::columns(&["MODE", "DOCUMENT", "CHECK"], &table_rows)
            );
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
    let table = context.connect().await?.store.list().await?;
    let entries = crate::pack::entries(&pack_names(pack), &table)?;
    match context.output {
        Output::Json => print_json(&entries),
        Output::Text => {
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    vec![
                        e.pack.clone(),
                        e.state.clone(),
                        e.document.clone(),
                        e.check_name.clone(),
                    ]
                })
                .collect();
            crate::out!(
                "{}",
                crate::output::columns(&["PACK", "STATE", "DOCUMENT", "CHECK"], &rows)
            );
        }
    }
    Ok(())
}

async fn pack_policy(
    context: &Context,
    packs: &[String],
    installed: bool,
    account: Option<String>,
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
        let connected = context.connect().await?;
        let table = connected.store.list().await?;
        let ids: Vec<Value> = table
            .iter()
            .map(tarem_shared::mapping::plain_json)
            .filter_map(|item| item.get("x-id").cloned())
            .collect();
        items.retain(|item| item.get("x-id").is_some_and(|id| ids.contains(id)));
        if items.is_empty() {
            // A policy without actions is not a policy IAM accepts.
            return Err(CliError::Problems(format!(
                "{} holds no entry of {}: nothing to grant (import one with `tarem mapping import --pack`)",
                connected.table,
                names.join(", ")
            )));
        }
    }
    let account = match account {
        Some(account) => account,
        None => caller_account(context).await?,
    };
    print_json(&crate::pack::role_needs(&items, &account));
    Ok(())
}

/// The account of the credentials in use (STS GetCallerIdentity).
async fn caller_account(context: &Context) -> Result<String, CliError> {
    let sdk = &context.aws.load().await?;
    aws_sdk_sts::Client::new(sdk)
        .get_caller_identity()
        .send()
        .await
        .map_err(|error| {
            CliError::from(tarem_shared::aws::errors::port_error(
                "GetCallerIdentity",
                &error,
            ))
            .at("STS (the account for the trust policy; or pass --account)")
        })?
        .account()
        .map(str::to_owned)
        .ok_or_else(|| CliError::Aws("STS named no account: pass --account".into()))
}

async fn show(context: &Context, check: &str) -> Result<(), CliError> {
    let table = context.connect().await?;
    match table.store.get(check).await? {
        Some(item) => {
            // Keys in a fixed order: the item's own, sorted.
            let sorted: std::collections::BTreeMap<String, Value> = item
                .as_object()
                .map(|o| o.clone().into_iter().collect())
                .unwrap_or_default();
            print_json(&sorted);
            Ok(())
        }
        None => Err(no_mapping(table, check).await),
    }
}

/// "No mapping for X", with the closest mapped checks.
async fn no_mapping(table: &Connected, check: &str) -> CliError {
    let known: Vec<String> = table
        .store
        .check_names()
        .await
        .unwrap_or_default()
        .into_iter()
        .collect();
    let closest = tarem_shared::validate::suggestions(check, &known);
    let hint = match closest.as_slice() {
        [] => String::new(),
        [one, ..] => format!("; did you mean {one:?}?"),
    };
    CliError::usage(format!("no mapping for {check:?} in {}{hint}", table.table))
}
