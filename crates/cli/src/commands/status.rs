//! `tarem status`: the loop on one screen ([`crate::status`]).

use super::{AwsArgs, Output, print_json};
use crate::CliError;
use crate::stack::StackArgs;
use crate::status::{Breaker, Budget, summarize, text};
use tarem_shared::aws::dynamodb::{DynamoCounters, DynamoExecutions};
use tarem_shared::aws::ssm::SsmParameterKillSwitch;
use tarem_shared::ports::{Counters, KillSwitch};
use tarem_shared::safety::{breaker_counter, ops_item_counter};

#[derive(clap::Args)]
pub struct StatusArgs {
    /// The execution table (episodes, attempts, counters) [default: the stack's].
    #[arg(long, value_name = "NAME")]
    execution_table: Option<String>,
    #[command(flatten)]
    stack: StackArgs,
    /// The breaker's limit, to tell an open breaker [default: the stack's BreakerLimit].
    #[arg(long)]
    breaker_limit: Option<u64>,
    /// [default: the stack's BreakerWindowMinutes]
    #[arg(long)]
    breaker_window_minutes: Option<i64>,
    /// [default: the stack's MonthlyOpsItemBudget]
    #[arg(long)]
    ops_item_budget: Option<u64>,
    /// Only this account's findings (an organisation's hub governs several; episodes that
    /// name no account are the stack's own).
    #[arg(long, value_name = "ID")]
    account: Option<String>,
    #[command(flatten)]
    aws: AwsArgs,
    /// text for people, json for scripts.
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

pub async fn run(args: StatusArgs) -> Result<(), CliError> {
    let sdk = args.aws.load().await?;
    let stack = args.stack.read(&args.aws, &sdk).await?;
    // The stack's Tuning, as its functions read it; flags win.
    let safety = stack
        .lifecycle()?
        .map(|config| config.safety)
        .unwrap_or_default();
    let breaker_limit = args.breaker_limit.unwrap_or(safety.breaker_limit);
    let breaker_window = args
        .breaker_window_minutes
        .map(chrono::Duration::minutes)
        .unwrap_or(safety.breaker_window)
        .max(chrono::Duration::minutes(1));
    let ops_item_budget = args
        .ops_item_budget
        .unwrap_or(safety.monthly_ops_item_budget);
    let table = args
        .execution_table
        .clone()
        .unwrap_or_else(|| stack.execution_table());
    let target = args.aws.dynamodb_target(&sdk, &table);
    let dynamodb = args.aws.dynamodb(&sdk);
    let executions = DynamoExecutions::new(dynamodb.clone(), &table);
    let counters = DynamoCounters::new(dynamodb, &table);
    let now = chrono::Utc::now();
    if let Some(account) = &args.account
        && (account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(CliError::Usage(format!(
            "--account {account:?}: expected a 12-digit AWS account id"
        )));
    }
    let home = stack.account().unwrap_or_default().to_owned();
    let read = async {
        let mut episodes = super::episodes::read_episodes(&executions).await?;
        if let Some(account) = &args.account {
            episodes.retain(|e| e.account.as_deref().unwrap_or(&home) == account);
        }
        let mut status = summarize(&episodes, now);
        let window = breaker_window;
        // Breakers and budgets are counted per account: each account's open checks.
        let accounts: std::collections::BTreeSet<String> = episodes
            .iter()
            .map(|e| e.account.clone().unwrap_or_default())
            .collect();
        let checks: std::collections::BTreeSet<(String, String)> = episodes
            .iter()
            .filter(|e| e.stage.is_open())
            .map(|e| (e.account.clone().unwrap_or_default(), e.check_name.clone()))
            .collect();
        for (account, check) in checks {
            let starts = counters
                .value(&breaker_counter(&account, &check, now, window))
                .await?;
            if starts > 0 {
                status.breakers.push(Breaker {
                    open: starts >= breaker_limit,
                    check,
                    starts,
                    limit: breaker_limit,
                });
            }
        }
        let mut this_month = 0;
        for account in &accounts {
            this_month += counters.value(&ops_item_counter(account, now)).await?;
        }
        status.ops_items = Budget {
            this_month,
            budget: ops_item_budget,
        };
        Ok::<_, CliError>(status)
    };
    let mut status = read.await.map_err(|error| error.at(&target))?;
    // The kill switch is an SSM parameter the stack names: a status without it still says
    // everything else.
    status.kill_switch = match stack.kill_switch() {
        None => "unknown: no stack read (--endpoint-url without --stack)".into(),
        Some(parameter) => {
            let kill_switch =
                SsmParameterKillSwitch::new(aws_sdk_ssm::Client::new(&sdk), parameter);
            match kill_switch.starts_allowed().await {
                Ok(true) => "on".into(),
                Ok(false) => "off: no runbook starts".into(),
                Err(error) => format!("unknown: {error}"),
            }
        }
    };
    match args.output {
        Output::Json => print_json(&status),
        Output::Text => crate::out!("{}", text(&status)),
    }
    Ok(())
}
