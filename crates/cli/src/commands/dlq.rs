//! `tarem dlq replay`: parked and failed messages back through the deployed functions.

use super::{AwsArgs, Output};
use crate::CliError;
use crate::replay_aws::{DynamoStreamReader, LambdaRedrive};
use tarem_shared::aws::sqs::SqsQueue;
use tarem_shared::replay::Replayer;

#[derive(clap::Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    command: DlqCommand,
}

#[derive(clap::Subcommand)]
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
        /// text for people, json for scripts.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
}

pub async fn run(args: DlqArgs) -> Result<(), CliError> {
    let DlqCommand::Replay {
        queue,
        dry_run,
        max,
        stack,
        aws,
        output,
    } = args.command;
    if !dry_run && let Some(why) = tarem_shared::replay::refused(&queue) {
        return Err(CliError::usage(why));
    }
    let sdk = aws.load().await?;
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), queue);
    let stream = DynamoStreamReader::new(aws.dynamodb_streams(&sdk), AwsArgs::region_of(&sdk));
    let redrive = LambdaRedrive::new(aws_sdk_lambda::Client::new(&sdk), &stack);
    let replayer = Replayer {
        queue: &queue,
        stream: &stream,
        redrive: &redrive,
    };
    let replayed = replayer.replay(max, dry_run).await?;
    let failed = replayed
        .iter()
        .filter(|r| r.outcome.starts_with("failed"))
        .count();
    match output {
        Output::Json => crate::out!(
            "{}",
            serde_json::json!({ "replayed": replayed, "failed": failed })
        ),
        Output::Text => {
            for message in &replayed {
                crate::out!(
                    "{}  {}  {}",
                    message.message_id,
                    message.target,
                    message.outcome
                );
            }
            crate::out!(
                "{}{}: {} replayed, {} failed",
                crate::output::plural(replayed.len(), "message"),
                if dry_run { " (dry run)" } else { "" },
                replayed.iter().filter(|r| r.deleted).count(),
                failed
            );
        }
    }
    if failed == 0 {
        Ok(())
    } else {
        Err(CliError::Problems(format!(
            "{} failed again",
            crate::output::plural(failed, "message")
        )))
    }
}
