//! `tarem accounts`: the organisation's coverage at a glance ([`crate::accounts`]).

use super::{AwsArgs, Output, print_json};
use crate::CliError;
use crate::accounts::{coverage, text, with_registry};
use crate::stack::StackArgs;
use tarem_shared::aws::dynamodb::{DynamoAccounts, DynamoExecutions};
use tarem_shared::ports::AccountRegistry;

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
    let episodes = super::episodes::read_episodes(&executions)
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
    let mut lines = coverage(
        stack.account(),
        &members,
        &episodes,
        chrono::Utc::now().timestamp(),
    );
    let registry = DynamoAccounts::new(args.aws.dynamodb(&sdk), &table);
    let mut records = vec![];
    for line in &lines {
        records.extend(
            registry
                .get(&line.account)
                .await
                .map_err(|error| CliError::from(error).at(&target))?,
        );
    }
    with_registry(&mut lines, &records);
    match args.output {
        Output::Json => print_json(&lines),
        Output::Text => crate::out!("{}", text(&lines)),
    }
    Ok(())
}
