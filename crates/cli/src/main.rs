//! `tarem`: the operator CLI.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use tarem::simulate::{self, SimulateOptions};

#[derive(Parser)]
#[command(
    name = "tarem",
    version,
    about = "Trusted Advisor remediation: mappings, plans and a local run of the loop"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole loop locally on the embedded in-memory backend.
    Simulate {
        /// Mapping items: a JSON or YAML list, plain or DynamoDB-typed.
        #[arg(long, value_name = "FILE")]
        mappings: Option<PathBuf>,
        /// How automations of a document end (default Success); repeatable.
        #[arg(long, value_name = "DOCUMENT=STATUS")]
        outcome: Vec<String>,
        /// After the last event, run the clock on (sweeps, verify windows, cool-downs) until
        /// nothing waits on time, at most this long: 48h, 90m, 2d, or 0.
        #[arg(long, value_name = "DURATION", default_value = "48h")]
        settle: String,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
        /// Trusted Advisor event files, or folders of them (read in name order).
        #[arg(required = true, value_name = "EVENTS")]
        events: Vec<PathBuf>,
    },
    /// Manage the mapping table: mappings as code, validated before they are written.
    Mapping {
        #[command(subcommand)]
        command: MappingCommand,
        /// The mapping table (the stack's default name).
        #[arg(long, global = true, default_value = "AutomationMappingTable")]
        table: String,
        #[command(flatten)]
        aws: AwsArgs,
        #[arg(long, global = true, value_enum, default_value = "text")]
        output: Output,
    },
    /// What the loop would do for each Trusted Advisor event, with no side effects.
    Plan {
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
        #[arg(required = true, value_name = "EVENT")]
        events: Vec<PathBuf>,
    },
    /// Sweep Trusted Advisor's results (Support API) into the tracker: findings no event reported.
    Reconcile {
        /// Show what would change; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Every check, not only the mapped ones.
        #[arg(long)]
        all_checks: bool,
        #[arg(long, default_value = "TrustedAdvisorCheckTrackerTable")]
        tracker_table: String,
        #[arg(long, default_value = "AutomationMappingTable")]
        mapping_table: String,
        /// The account the findings belong to (default: the caller's, from STS).
        #[arg(long)]
        account: Option<String>,
        #[command(flatten)]
        aws: AwsArgs,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// The stack's failure queues.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
}

#[derive(clap::Args, Clone)]
struct ItemFlags {
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
    #[arg(long)]
    max_attempts: Option<u32>,
    #[arg(long)]
    cool_down_minutes: Option<u32>,
    #[arg(long)]
    mode_tag_key: Option<String>,
    /// Read the item from a file (JSON or YAML, plain or DynamoDB-typed).
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,
    /// Skip the AWS look-ups (document parameters, check names).
    #[arg(long)]
    offline: bool,
}

impl ItemFlags {
    fn args(&self) -> tarem::mappings::ItemArgs {
        tarem::mappings::ItemArgs {
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

#[derive(Subcommand)]
enum MappingCommand {
    /// Every mapping, one line each.
    List,
    /// One mapping, as stored.
    Show {
        check: String,
    },
    /// Add a mapping (validated first; refuses an existing check: use update).
    Add(ItemFlags),
    /// Replace an existing mapping (validated first).
    Update(ItemFlags),
    /// Start the check's runbook automatically (mode automated).
    Enable {
        check: String,
    },
    /// Stop starting it (mode approval: the OpsItem links the runbook).
    Disable {
        check: String,
    },
    Remove {
        check: String,
    },
    /// Make the table match a file: shows the diff and asks first.
    Import {
        file: PathBuf,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
        /// Remove mappings the file does not have.
        #[arg(long)]
        prune: bool,
        #[arg(long)]
        offline: bool,
    },
    /// The whole table as JSON (or YAML for a .yaml/.yml FILE); to standard output without FILE.
    Export {
        file: Option<PathBuf>,
    },
    /// Validate a file's items, or a stored check, or the whole table.
    Validate {
        /// A mapping file, or a check name in the table.
        target: Option<String>,
        #[arg(long)]
        offline: bool,
    },
}

#[derive(Subcommand)]
enum DlqCommand {
    /// Send parked and failed messages back through the deployed functions, after a fix.
    Replay {
        /// The queue's URL (the stack's outputs name the three).
        #[arg(value_name = "QUEUE_URL")]
        queue: String,
        /// Read and classify only: invoke nothing, delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// At most this many messages.
        #[arg(long, default_value_t = 100)]
        max: usize,
        /// The stack whose functions replay (functions are named <stack>-check-tracker etc.).
        #[arg(long, default_value = "tarem")]
        stack: String,
        #[command(flatten)]
        aws: AwsArgs,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
}

/// Where to reach AWS, as the AWS CLI takes it.
#[derive(clap::Args)]
struct AwsArgs {
    #[arg(long, global = true)]
    region: Option<String>,
    #[arg(long, global = true)]
    profile: Option<String>,
    #[arg(long, global = true)]
    endpoint_url: Option<String>,
}

impl AwsArgs {
    async fn load(&self) -> aws_config::SdkConfig {
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
}

/// Prints a usage or validation failure and picks the exit code: 2 for usage, 1 for problems.
fn fail(error: tarem::UsageError) -> ExitCode {
    eprintln!("tarem: {error}");
    ExitCode::from(2)
}

async fn validate_or_report(
    items: &[serde_json::Value],
    offline: bool,
    sdk: &aws_config::SdkConfig,
    output: Output,
) -> Result<bool, tarem::UsageError> {
    use tarem::mappings::{DiskCachedChecks, Online, validate};
    use tarem_shared::aws::ssm::SsmDocuments;
    use tarem_shared::aws::support::SupportTrustedAdvisor;
    let documents = SsmDocuments::new(sdk);
    let advisor = DiskCachedChecks {
        inner: SupportTrustedAdvisor::for_config(sdk),
        path: DiskCachedChecks::<SupportTrustedAdvisor>::default_path(),
    };
    let region = sdk
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".into());
    let online = (!offline).then_some(Online {
        region,
        documents: &documents,
        advisor: &advisor,
    });
    let problems = validate(items, online.as_ref()).await?;
    match output {
        Output::Json => println!("{}", serde_json::json!({ "problems": problems })),
        Output::Text if !problems.is_empty() => {
            eprintln!("{}", tarem::mappings::problems_text(&problems))
        }
        Output::Text => {}
    }
    Ok(problems.is_empty())
}

async fn mapping(command: MappingCommand, table: &str, aws: &AwsArgs, output: Output) -> ExitCode {
    match mapping_inner(command, table, aws, output).await {
        Ok(code) => code,
        Err(error) => fail(error),
    }
}

async fn mapping_inner(
    command: MappingCommand,
    table: &str,
    aws: &AwsArgs,
    output: Output,
) -> Result<ExitCode, tarem::UsageError> {
    use tarem::UsageError;
    use tarem::mappings::{apply_import, export_text, import_diff, list};
    use tarem_shared::aws::dynamodb::DynamoMappings;
    use tarem_shared::mapping::Mode;
    use tarem_shared::ports::MappingStore;
    let sdk = aws.load().await;
    let store = DynamoMappings::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    let port = |e: tarem_shared::error::PortError| UsageError(e.to_string());
    let print = |value: serde_json::Value| {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        )
    };
    match command {
        MappingCommand::List => {
            let rows = list(&store).await?;
            match output {
                Output::Json => print(serde_json::json!(rows)),
                Output::Text => {
                    for row in &rows {
                        println!(
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
            Ok(ExitCode::SUCCESS)
        }
        MappingCommand::Show { check } => match store.get(&check).await.map_err(port)? {
            Some(item) => {
                print(item);
                Ok(ExitCode::SUCCESS)
            }
            None => Err(UsageError(format!("no mapping for {check:?} in {table}"))),
        },
        MappingCommand::Add(flags) | MappingCommand::Update(flags)
            if flags.check_name.is_none() && flags.from.is_none() =>
        {
            Err(UsageError(
                "--check-name (or --from FILE) is required".into(),
            ))
        }
        MappingCommand::Add(flags) => write_item(&store, &flags, false, &sdk, output).await,
        MappingCommand::Update(flags) => write_item(&store, &flags, true, &sdk, output).await,
        MappingCommand::Enable { check } => set_mode(&store, &check, Mode::Automated).await,
        MappingCommand::Disable { check } => set_mode(&store, &check, Mode::Approval).await,
        MappingCommand::Remove { check } => {
            if store.get(&check).await.map_err(port)?.is_none() {
                return Err(UsageError(format!("no mapping for {check:?} in {table}")));
            }
            store.delete(&check).await.map_err(port)?;
            println!("removed {check:?}");
            Ok(ExitCode::SUCCESS)
        }
        MappingCommand::Import {
            file,
            yes,
            prune,
            offline,
        } => {
            let items = tarem::mapping_file::read_unvalidated(&file)?;
            if !validate_or_report(&items, offline, &sdk, output).await? {
                return Ok(ExitCode::from(1));
            }
            let diff = import_diff(&store, &items, prune).await?;
            for (sign, checks) in [
                ("+", &diff.added),
                ("~", &diff.changed),
                ("-", &diff.removed),
            ] {
                for check in checks {
                    eprintln!("{sign} {check}");
                }
            }
            eprintln!(
                "{} to add, {} to change, {} unchanged, {} to remove",
                diff.added.len(),
                diff.changed.len(),
                diff.unchanged.len(),
                diff.removed.len()
            );
            if diff.added.is_empty() && diff.changed.is_empty() && diff.removed.is_empty() {
                return Ok(ExitCode::SUCCESS);
            }
            if !yes {
                eprint!("Apply these changes to {table}? [y/N] ");
                let mut answer = String::new();
                let _ = std::io::stdin().read_line(&mut answer);
                if !matches!(answer.trim(), "y" | "Y" | "yes") {
                    eprintln!("nothing written");
                    return Ok(ExitCode::SUCCESS);
                }
            }
            apply_import(&store, &items, &diff).await?;
            if matches!(output, Output::Json) {
                print(serde_json::json!(diff));
            }
            Ok(ExitCode::SUCCESS)
        }
        MappingCommand::Export { file } => {
            let mut items = store.list().await.map_err(port)?;
            items.sort_by_key(|i| i["checkName"].as_str().unwrap_or_default().to_owned());
            let text = export_text(&items, file.as_deref())?;
            match file {
                Some(path) => std::fs::write(&path, text)
                    .map_err(|e| UsageError(format!("{}: {e}", path.display())))?,
                None => println!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        MappingCommand::Validate { target, offline } => {
            let items = match &target {
                Some(path) if std::path::Path::new(path).is_file() => {
                    tarem::mapping_file::read_unvalidated(std::path::Path::new(path))?
                }
                Some(check) => vec![store.get(check).await.map_err(port)?.ok_or_else(|| {
                    UsageError(format!(
                        "no mapping for {check:?} in {table}, and no such file"
                    ))
                })?],
                None => store.list().await.map_err(port)?,
            };
            let ok = validate_or_report(&items, offline, &sdk, output).await?;
            if ok && matches!(output, Output::Text) {
                println!("{} mappings valid", items.len());
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

async fn write_item(
    store: &tarem_shared::aws::dynamodb::DynamoMappings,
    flags: &ItemFlags,
    replace: bool,
    sdk: &aws_config::SdkConfig,
    output: Output,
) -> Result<ExitCode, tarem::UsageError> {
    use tarem::UsageError;
    use tarem_shared::ports::MappingStore;
    let item = tarem::mappings::build_item(&flags.args())?;
    let check = item["checkName"].as_str().unwrap_or_default().to_owned();
    let exists = store
        .get(&check)
        .await
        .map_err(|e| UsageError(e.to_string()))?
        .is_some();
    if exists && !replace {
        return Err(UsageError(format!(
            "{check:?} is already mapped; use `tarem mapping update`"
        )));
    }
    if !exists && replace {
        return Err(UsageError(format!(
            "{check:?} is not mapped; use `tarem mapping add`"
        )));
    }
    if !validate_or_report(std::slice::from_ref(&item), flags.offline, sdk, output).await? {
        return Ok(ExitCode::from(1));
    }
    store
        .put(&item)
        .await
        .map_err(|e| UsageError(e.to_string()))?;
    println!("{} {check:?}", if replace { "updated" } else { "added" });
    Ok(ExitCode::SUCCESS)
}

async fn set_mode(
    store: &tarem_shared::aws::dynamodb::DynamoMappings,
    check: &str,
    mode: tarem_shared::mapping::Mode,
) -> Result<ExitCode, tarem::UsageError> {
    use tarem::UsageError;
    use tarem_shared::ports::MappingStore;
    let item = store
        .get(check)
        .await
        .map_err(|e| UsageError(e.to_string()))?
        .ok_or_else(|| UsageError(format!("no mapping for {check:?}")))?;
    store
        .put(&tarem::mappings::with_mode(&item, mode))
        .await
        .map_err(|e| UsageError(e.to_string()))?;
    println!("{check:?} is now {mode}");
    Ok(ExitCode::SUCCESS)
}

async fn plan(
    mappings: Option<PathBuf>,
    table: Option<String>,
    aws: &AwsArgs,
    output: Output,
    events: &[PathBuf],
) -> ExitCode {
    use tarem_shared::ports::MappingStore;
    let items = match (mappings, table) {
        (Some(path), _) => match tarem::mapping_file::read_unvalidated(&path) {
            Ok(items) => items,
            Err(error) => return fail(error),
        },
        (None, Some(table)) => {
            let sdk = aws.load().await;
            let store = tarem_shared::aws::dynamodb::DynamoMappings::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                table,
            );
            match store.list().await {
                Ok(items) => items,
                Err(error) => return fail(tarem::UsageError(error.to_string())),
            }
        }
        (None, None) => {
            return fail(tarem::UsageError(
                "--mappings FILE or --table NAME is required".into(),
            ));
        }
    };
    let mut plans = vec![];
    for path in events {
        let event = match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                serde_json::from_str::<serde_json::Value>(&text)
                    .map_err(|e| format!("not JSON: {e}"))
            }) {
            Ok(event) => event,
            Err(reason) => return fail(tarem::UsageError(format!("{}: {reason}", path.display()))),
        };
        let mut plan = tarem::mappings::plan(&event, &items);
        plan["event"] = serde_json::json!(path.display().to_string());
        plans.push(plan);
    }
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&plans).unwrap_or_default()
        ),
        Output::Text => {
            for plan in &plans {
                println!("{}", plan["event"].as_str().unwrap_or_default());
                if plan["tracked"] == false {
                    println!(
                        "  rejected   {}",
                        plan["reason"].as_str().unwrap_or_default()
                    );
                    continue;
                }
                let finding = &plan["finding"];
                println!(
                    "  finding    {} | {} | {} | {}",
                    finding["checkName"].as_str().unwrap_or_default(),
                    finding["resource"].as_str().unwrap_or_default(),
                    finding["region"].as_str().unwrap_or_default(),
                    finding["status"].as_str().unwrap_or_default()
                );
                if let Some(id) = plan["resourceId"].as_str() {
                    println!("  id         {id}");
                }
                if !plan["parameters"].is_null() {
                    println!("  parameters {}", plan["parameters"]);
                }
                if let Some(state) = plan["episode"]["state"].as_str() {
                    match plan["episode"]["control"].as_str() {
                        Some(control) => println!("  episode    {state} ({control})"),
                        None => println!("  episode    {state}"),
                    }
                }
                println!(
                    "  would      {}",
                    plan["would"].as_str().unwrap_or_default()
                );
                if let Some(title) = plan["opsItem"]["title"].as_str() {
                    println!("  opsitem    {title}");
                }
            }
        }
    }
    ExitCode::SUCCESS
}

async fn reconcile(
    dry_run: bool,
    all_checks: bool,
    tracker_table: String,
    mapping_table: String,
    account: Option<String>,
    aws: &AwsArgs,
    output: Output,
) -> ExitCode {
    use std::sync::Arc;
    use tarem_shared::aws::dynamodb::{DynamoMappings, DynamoTracker};
    use tarem_shared::aws::support::SupportTrustedAdvisor;
    use tarem_shared::reconcile::FindingsSweep;
    let sdk = aws.load().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let account = match account {
        Some(account) => account,
        None => match aws_sdk_sts::Client::new(&sdk)
            .get_caller_identity()
            .send()
            .await
        {
            Ok(identity) => identity.account.unwrap_or_default(),
            Err(error) => {
                eprintln!(
                    "tarem reconcile: cannot tell the account (pass --account): {}",
                    aws_sdk_sts::error::DisplayErrorContext(&error)
                );
                return ExitCode::from(1);
            }
        },
    };
    let sweep = FindingsSweep {
        tracker: Arc::new(DynamoTracker::new(dynamodb.clone(), tracker_table)),
        mappings: Arc::new(DynamoMappings::new(dynamodb, mapping_table)),
        advisor: Arc::new(SupportTrustedAdvisor::for_config(&sdk)),
        clock: Arc::new(tarem_shared::clock::SystemClock),
        all_checks,
        account,
        rules: tarem_shared::finding::TrackingRules {
            home_region: sdk
                .region()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "us-east-1".into()),
            ..Default::default()
        },
    };
    match sweep.sweep(dry_run).await {
        Ok(report) => {
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                ),
                Output::Text => {
                    if let Some(reason) = &report.unavailable {
                        println!("reconcile unavailable: {reason}");
                    }
                    let verb = if dry_run { "would track" } else { "tracked" };
                    for line in &report.written {
                        println!("{verb}   {line}");
                    }
                    for line in &report.cleared {
                        println!(
                            "{}  {line}",
                            if dry_run { "would clear" } else { "cleared" }
                        );
                    }
                    for line in &report.skipped_checks {
                        println!("skipped   {line}");
                    }
                    println!(
                        "{} checks: {} new or newer, {} cleared, {} unchanged",
                        report.checks,
                        report.written.len(),
                        report.cleared.len(),
                        report.unchanged
                    );
                }
            }
            if report.unavailable.is_some() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(error) => {
            eprintln!("tarem reconcile: {error}");
            ExitCode::from(1)
        }
    }
}

async fn dlq_replay(
    queue: &str,
    dry_run: bool,
    max: usize,
    stack: &str,
    aws: &AwsArgs,
    output: Output,
) -> ExitCode {
    use tarem::replay_aws::{DynamoStreamReader, LambdaRedrive};
    use tarem_shared::aws::sqs::SqsQueue;
    use tarem_shared::replay::Replayer;
    let sdk = aws.load().await;
    let region = sdk
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".into());
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), queue);
    let stream = DynamoStreamReader::new(aws_sdk_dynamodbstreams::Client::new(&sdk), region);
    let redrive = LambdaRedrive::new(aws_sdk_lambda::Client::new(&sdk), stack);
    let replayer = Replayer {
        queue: &queue,
        stream: &stream,
        redrive: &redrive,
    };
    match replayer.replay(max, dry_run).await {
        Ok(replayed) => {
            let failed = replayed
                .iter()
                .filter(|r| r.outcome.starts_with("failed"))
                .count();
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::json!({ "replayed": replayed, "failed": failed })
                ),
                Output::Text => {
                    for message in &replayed {
                        println!(
                            "{}  {}  {}",
                            message.message_id, message.target, message.outcome
                        );
                    }
                    println!(
                        "{} messages{}: {} replayed, {} failed",
                        replayed.len(),
                        if dry_run { " (dry run)" } else { "" },
                        replayed.iter().filter(|r| r.deleted).count(),
                        failed
                    );
                }
            }
            if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(error) => {
            eprintln!("tarem dlq replay: {error}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // clap exits 2 for usage errors and 0 for --help/--version.
            error.exit();
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tarem: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match cli.command {
        Command::Simulate {
            mappings,
            outcome,
            settle,
            output,
            events,
        } => {
            let settle = match simulate::parse_duration(&settle) {
                Ok(settle) => settle,
                Err(error) => return fail(error),
            };
            let options = SimulateOptions {
                mappings,
                outcomes: outcome,
                inputs: events,
                settle,
            };
            match runtime.block_on(simulate::run(&options)) {
                Ok(simulation) => {
                    match output {
                        Output::Text => println!("{}", simulation.story.join("\n")),
                        Output::Json => println!(
                            "{}",
                            serde_json::to_string_pretty(&simulation.report).unwrap_or_default()
                        ),
                    }
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("tarem simulate: {error}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Mapping {
            command,
            table,
            aws,
            output,
        } => runtime.block_on(mapping(command, &table, &aws, output)),
        Command::Plan {
            mappings,
            table,
            aws,
            output,
            events,
        } => runtime.block_on(plan(mappings, table, &aws, output, &events)),
        Command::Reconcile {
            dry_run,
            all_checks,
            tracker_table,
            mapping_table,
            account,
            aws,
            output,
        } => runtime.block_on(reconcile(
            dry_run,
            all_checks,
            tracker_table,
            mapping_table,
            account,
            &aws,
            output,
        )),
        Command::Dlq {
            command:
                DlqCommand::Replay {
                    queue,
                    dry_run,
                    max,
                    stack,
                    aws,
                    output,
                },
        } => runtime.block_on(dlq_replay(&queue, dry_run, max, &stack, &aws, output)),
    }
}
