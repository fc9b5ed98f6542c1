//! `tarem reconcile`: the findings sweep, from the operator's credentials.

use super::{AwsArgs, Output, print_json};
use crate::CliError;
use crate::stack::StackArgs;
use std::sync::Arc;
use tarem_shared::aws::dynamodb::{DynamoMappings, DynamoTracker};
use tarem_shared::aws::support::SupportTrustedAdvisor;
use tarem_shared::reconcile::FindingsSweep;

#[derive(clap::Args)]
pub struct ReconcileArgs {
    /// Show what would change; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Every check, not only the mapped ones.
    #[arg(long)]
    all_checks: bool,
    /// The tracker table [default: the stack's].
    #[arg(long, value_name = "NAME")]
    tracker_table: Option<String>,
    /// The mapping table [default: the stack's].
    #[arg(long, value_name = "NAME")]
    mapping_table: Option<String>,
    /// The account the findings belong to [default: the stack's, else the caller's (STS)].
    #[arg(long)]
    account: Option<String>,
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    aws: AwsArgs,
    /// text for people, json for scripts.
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

pub async fn run(args: ReconcileArgs) -> Result<(), CliError> {
    let sdk = args.aws.load().await?;
    let stack = args.stack.read(&args.aws, &sdk).await?;
    let dynamodb = args.aws.dynamodb(&sdk);
    let stack_account = stack.deployed.as_ref().map(|d| d.account.clone());
    let account = match args.account.or(stack_account) {
        Some(account) => account,
        None => aws_sdk_sts::Client::new(&sdk)
            .get_caller_identity()
            .send()
            .await
            .map_err(|error| {
                CliError::Aws(format!(
                    "cannot tell the account (pass --account): {}",
                    tarem_shared::error::error_chain(&error)
                ))
            })?
            .account
            .unwrap_or_default(),
    };
    let sweep = FindingsSweep {
        tracker: Arc::new(DynamoTracker::new(
            dynamodb.clone(),
            args.tracker_table.unwrap_or_else(|| stack.tracker_table()),
        )),
        mappings: Arc::new(DynamoMappings::new(
            dynamodb,
            args.mapping_table.unwrap_or_else(|| stack.mapping_table()),
        )),
        advisor: Arc::new(SupportTrustedAdvisor::for_config(&sdk)),
        clock: Arc::new(tarem_shared::clock::SystemClock),
        all_checks: args.all_checks,
        account,
        rules: tarem_shared::finding::TrackingRules {
            home_region: AwsArgs::region_of(&sdk),
            ..Default::default()
        },
        // An operator's sweep of one account: what the events missed is the schedule's to count.
        watched_since: None,
        watched_checks: Default::default(),
    };
    crate::output::progress("reading Trusted Advisor's results (one call per check)…");
    let report = sweep.sweep(args.dry_run).await?;
    crate::output::progress_done();
    match args.output {
        Output::Json => print_json(&report),
        Output::Text => {
            if let Some(reason) = &report.unavailable {
                crate::out!("reconcile unavailable: {reason}");
            }
            let verb = if args.dry_run {
                "would track"
            } else {
                "tracked"
            };
            for line in &report.written {
                crate::out!("{verb}   {line}");
            }
            for line in &report.cleared {
                let verb = if args.dry_run {
                    "would clear"
                } else {
                    "cleared"
                };
                crate::out!("{verb}  {line}");
            }
            for line in &report.skipped_checks {
                crate::out!("skipped   {line}");
            }
            for name in &report.unknown_mapped_checks {
                crate::out!(
                    "unknown   {name}: mapped, but not a Trusted Advisor check; check its name with `tarem mapping validate`"
                );
            }
            crate::out!(
                "{} checks: {} new or newer, {} cleared, {} unchanged",
                report.checks,
                report.written.len(),
                report.cleared.len(),
                report.unchanged
            );
        }
    }
    if let Some(reason) = report.unavailable {
        return Err(CliError::Problems(format!(
            "reconcile unavailable: {reason}"
        )));
    }
    match report.unknown_mapped_checks.len() {
        0 => Ok(()),
        n => Err(CliError::Problems(format!(
            "{} Trusted Advisor does not know",
            crate::output::plural(n, "mapped check")
        ))),
    }
}
