//! `tarem status`: the loop on one screen ([`crate::status`]).

use super::{AwsArgs, Output, print_json};
use crate::CliError;
use crate::status::{Breaker, Budget, summarize, text};
use tarem_shared::aws::dynamodb::{DynamoCounters, DynamoExecutions};
use tarem_shared::aws::ssm::SsmParameterKillSwitch;
use tarem_shared::ports::{Counters, ExecutionStore, KillSwitch};
use tarem_shared::safety::{breaker_counter, ops_item_counter};

#[derive(clap::Args)]
pub struct StatusArgs {
    /// The execution table (episodes, attempts, counters).
    #[arg(
        long,
        default_value = "AutomationExecutionTrackerTable",
        value_name = "NAME"
    )]
    execution_table: String,
    /// The stack (its kill switch is /<stack>/automation-starts).
    #[arg(long, default_value = "tarem")]
    stack: String,
    /// The stack's BreakerLimit and BreakerWindowMinutes (Tuning), to tell an open breaker.
    #[arg(long, default_value_t = 50)]
    breaker_limit: u64,
    #[arg(long, default_value_t = 60)]
    breaker_window_minutes: i64,
    /// The stack's MonthlyOpsItemBudget (Tuning).
    #[arg(long, default_value_t = 9000)]
    ops_item_budget: u64,
    #[command(flatten)]
    aws: AwsArgs,
    /// text for people, json for scripts.
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

pub async fn run(args: StatusArgs) -> Result<(), CliError> {
    let sdk = args.aws.load().await?;
    let target = args.aws.dynamodb_target(&sdk, &args.execution_table);
    let dynamodb = args.aws.dynamodb(&sdk);
    let executions = DynamoExecutions::new(dynamodb.clone(), &args.execution_table);
    let counters = DynamoCounters::new(dynamodb, &args.execution_table);
    let now = chrono::Utc::now();
    let read = async {
        let mut episodes = vec![];
        let mut after = None;
        loop {
            let page = executions.episodes(after.as_deref(), 500).await?;
            episodes.extend(page.episodes);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let mut status = summarize(&episodes, now);
        let window = chrono::Duration::minutes(args.breaker_window_minutes.max(1));
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
                    open: starts >= args.breaker_limit,
                    check,
                    starts,
                    limit: args.breaker_limit,
                });
            }
        }
        let mut this_month = 0;
        for account in &accounts {
            this_month += counters.value(&ops_item_counter(account, now)).await?;
        }
        status.ops_items = Budget {
            this_month,
            budget: args.ops_item_budget,
        };
        Ok::<_, CliError>(status)
    };
    let mut status = read.await.map_err(|error| error.at(&target))?;
    // The kill switch is an SSM parameter: a status without it still says everything else.
    let kill_switch = SsmParameterKillSwitch::new(
        aws_sdk_ssm::Client::new(&sdk),
        format!("/{}/automation-starts", args.stack),
    );
    status.kill_switch = match kill_switch.starts_allowed().await {
        Ok(true) => "on".into(),
        Ok(false) => "off: no runbook starts".into(),
        Err(error) => format!("unknown: {error}"),
    };
    match args.output {
        Output::Json => print_json(&status),
        Output::Text => crate::out!("{}", text(&status)),
    }
    Ok(())
}
