//! `tarem accounts`: the organisation's coverage at a glance ([`crate::accounts`]).

use super::{AwsArgs, Output, print_json};
use crate::CliError;
use crate::accounts::{coverage, text};
use crate::stack::StackArgs;
use tarem_shared::aws::dynamodb::DynamoExecutions;
use tarem_shared::ports::ExecutionStore;

#[derive(clap::Args)]
pub struct AccountsArgs {
    /// The execution table (episodes) [default: the stack's].
    #[arg(long, value_name = "NAME")]
    execution_table: Option<String>,
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    aws: AwsArgs,
    /// text for people, json for scripts.
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

pub async fn run(args: AccountsArgs) -> Result<(), CliError> {
    let sdk = args.aws.load().await?;
    let stack = args.stack.read(&args.aws, &sdk).await?;
    let table = args
        .execution_table
        .clone()
        .unwrap_or_else(|| stack.execution_table());
    let target = args.aws.dynamodb_target(&sdk, &table);
    let executions = DynamoExecutions::new(args.aws.dynamodb(&sdk), &table);
    let episodes = read_episodes(&executions)
        .await
        .map_err(|error| CliError::from(error).at(&target))?;
    // Without a stack (a local table) no account is known to be the hub: every account the
    // table names is listed as a member, in order.
    let members = match stack.account() {
        Some(_) => stack.member_accounts(),
        None => episodes
            .iter()
            .filter_map(|e| e.account.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    let lines = coverage(
        stack.account(),
        &members,
        &episodes,
        chrono::Utc::now().timestamp(),
    );
    match args.output {
        Output::Json => print_json(&lines),
        Output::Text => crate::out!("{}", text(&lines)),
    }
    Ok(())
}

/// Every episode the execution table keeps, page by page.
pub(super) async fn read_episodes(
    executions: &DynamoExecutions,
) -> Result<Vec<tarem_shared::episode::Episode>, tarem_shared::error::PortError> {
    let mut episodes = vec![];
    let mut after = None;
    loop {
        let page = executions.episodes(after.as_deref(), 500).await?;
        episodes.extend(page.episodes);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(episodes),
        }
    }
}
