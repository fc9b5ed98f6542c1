//! `tarem approve <OpsItem id | finding key>`: approves an approval-mode episode's next start
//! the way OpsCenter's console does, by setting the OpsItem's `tarem:approve` to `yes`. SSM names
//! the caller as the OpsItem's modifier, and its "OpsItem Update" event brings the approval to the
//! results handler, which answers on the OpsItem (`tarem:approval`): one path, whoever approves.

use super::{AwsArgs, Output, print_json};
use crate::CliError;
use crate::stack::StackArgs;
use serde_json::json;
use std::collections::BTreeMap;
use tarem_shared::aws::dynamodb::DynamoExecutions;
use tarem_shared::aws::ssm::SsmOpsCenter;
use tarem_shared::ports::{DATA_APPROVE, ExecutionStore, OpsCenter, OpsData, OpsItemUpdate};

#[derive(clap::Args)]
pub struct ApproveArgs {
    /// The episode's OpsItem (`oi-…`), or its finding key (`tarem status` and the OpsItem's
    /// `tarem:findingKey` show it).
    #[arg(value_name = "OPSITEM_ID|FINDING_KEY")]
    target: String,
    /// The execution table (episodes), to find a finding's OpsItem [default: the stack's].
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

/// Whether `target` names an OpsItem (else a finding key).
fn is_ops_item_id(target: &str) -> bool {
    target.starts_with("oi-")
}

pub async fn run(args: ApproveArgs) -> Result<(), CliError> {
    let sdk = args.aws.load().await?;
    let stack = args.stack.read(&args.aws, &sdk).await?;
    let ops_item = if is_ops_item_id(&args.target) {
        args.target.clone()
    } else {
        let table = args
            .execution_table
            .clone()
            .unwrap_or_else(|| stack.execution_table());
        let target = args.aws.dynamodb_target(&sdk, &table);
        let executions = DynamoExecutions::new(args.aws.dynamodb(&sdk), &table);
        let episode = executions
            .get_episode(&args.target)
            .await
            .map_err(|error| CliError::from(error).at(&target))?
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "no episode of finding {:?} in {table}; pass its OpsItem id (oi-…) instead",
                    args.target
                ))
            })?;
        if let (Some(account), Some(home)) = (&episode.account, stack.account())
            && account != home
        {
            return Err(CliError::Usage(format!(
                "the finding is in account {account}: its OpsItem is there; approve it in that account's OpsCenter (or with tarem approve <OpsItem id> and that account's credentials)"
            )));
        }
        episode.ops_item_id.ok_or_else(|| {
            CliError::Usage(format!(
                "the episode of {:?} has no OpsItem (yet): nothing to approve from",
                args.target
            ))
        })?
    };
    let ask = OpsItemUpdate {
        operational_data: BTreeMap::from([(
            DATA_APPROVE.to_owned(),
            OpsData {
                value: "yes".into(),
                searchable: false,
            },
        )]),
        ..OpsItemUpdate::default()
    };
    let ops_center = SsmOpsCenter::new(aws_sdk_ssm::Client::new(&sdk));
    ops_center
        .update(&ops_item, &ask)
        .await
        .map_err(CliError::from)?;
    match args.output {
        Output::Json => print_json(&json!({ "opsItem": ops_item, "asked": true })),
        Output::Text => crate::out!(
            "approval asked on {ops_item}: OpsCenter's update event brings it to the results handler, which answers on the OpsItem (tarem:approval) within seconds; the start passes every control as an automated one would"
        ),
    }
    Ok(())
}
