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
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
        /// Trusted Advisor event files, or folders of them (read in name order).
        #[arg(required = true, value_name = "EVENTS")]
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
    #[arg(long)]
    region: Option<String>,
    #[arg(long)]
    profile: Option<String>,
    #[arg(long)]
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
            output,
            events,
        } => {
            let options = SimulateOptions {
                mappings,
                outcomes: outcome,
                inputs: events,
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
