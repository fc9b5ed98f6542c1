//! `tarem dlq replay`: parked and failed messages back through the deployed functions.

use super::{AwsArgs, Output};
use crate::CliError;
use crate::replay_aws::{DynamoStreamReader, LambdaRedrive};
use crate::stack::{QUEUES, Stack, StackArgs};
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
        /// The queue: tracker-stream, check-tracker, execution-events or raw-event-log (its
        /// URL read from the stack's outputs), or a queue URL.
        #[arg(value_name = "QUEUE")]
        queue: String,
        /// Read and classify only: invoke nothing, delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// At most this many messages.
        #[arg(long, default_value_t = 100)]
        max: usize,
        #[command(flatten)]
        stack: StackArgs,
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
    let named_url = queue.starts_with("https://") || queue.starts_with("http://");
    if !named_url && !QUEUES.iter().any(|(short, _)| *short == queue) {
        return Err(CliError::usage(unknown_queue(&queue)));
    }
    if !dry_run && let Some(why) = tarem_shared::replay::refused(&queue) {
        return Err(CliError::usage(why));
    }
    let sdk = aws.load().await?;
    // The stack gives a short name's URL and the functions a replay invokes; a dry run of a
    // queue named by its URL needs neither.
    let deployed = if named_url && dry_run {
        Stack::local()
    } else {
        stack.read(&aws, &sdk).await?
    };
    let url = if named_url {
        queue
    } else {
        queue_url(&deployed, &queue)?
    };
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), url);
    let stream = DynamoStreamReader::new(aws.dynamodb_streams(&sdk), AwsArgs::region_of(&sdk));
    let redrive =
        LambdaRedrive::for_stack(aws_sdk_lambda::Client::new(&sdk), stack.name(), deployed);
    let replayer = Replayer {
        queue: &queue,
        stream: &stream,
        redrive: &redrive,
    };
    crate::output::progress("reading the queue and replaying its messages…");
    let replayed = replayer.replay(max, dry_run).await?;
    crate::output::progress_done();
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

fn unknown_queue(queue: &str) -> String {
    format!(
        "{queue:?} is not one of the stack's queues ({}) nor a queue URL",
        QUEUES
            .iter()
            .map(|(short, _)| *short)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// A queue's URL, from the stack's outputs.
fn queue_url(stack: &Stack, short: &str) -> Result<String, CliError> {
    stack
        .queues()
        .into_iter()
        .find(|(name, _)| *name == short)
        .map(|(_, url)| url)
        .ok_or_else(|| {
            CliError::usage(format!(
                "{}: no output gives the {short} queue's URL; pass the queue URL instead",
                stack.describe_source()
            ))
        })
}
