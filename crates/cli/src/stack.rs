//! The deployed stack, read through CloudFormation (`DescribeStacks`): its outputs name the
//! tables, queues, functions and kill switch, and its parameters hold the allowlists, the opt-in
//! and the tuning. From them the CLI builds the very settings the results handler runs with
//! ([`tarem_shared::config::Settings`], as the template sets its environment), so `plan`,
//! `status`, `dlq replay` and `mapping add/enable` say what the *deployed* stack would do.

use crate::CliError;
use crate::commands::AwsArgs;
use std::collections::BTreeMap;
use tarem_shared::config::Settings;
use tarem_shared::lifecycle::LifecycleConfig;

/// The stack's name when none is given (samconfig.toml's `stack_name`).
pub const DEFAULT_STACK: &str = "tarem";

/// Which stack the command works with.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct StackArgs {
    /// The deployed stack whose tables, queues, allowlists and tuning the command uses (read
    /// with CloudFormation DescribeStacks) [default: tarem]. With --endpoint-url and no
    /// --stack, no stack is read: the tables keep their default names.
    #[arg(long, global = true, env = "TAREM_STACK", value_name = "NAME")]
    pub stack: Option<String>,
}

impl StackArgs {
    pub fn named(name: &str) -> Self {
        StackArgs {
            stack: Some(name.into()),
        }
    }

    /// The stack's name, given or default.
    pub fn name(&self) -> &str {
        self.stack.as_deref().unwrap_or(DEFAULT_STACK)
    }

    /// The stack, read; none when the command works on a local DynamoDB (`--endpoint-url`)
    /// and no stack was named.
    pub async fn read(
        &self,
        aws: &AwsArgs,
        sdk: &aws_config::SdkConfig,
    ) -> Result<Stack, CliError> {
        if aws.endpoint_url.is_some() && self.stack.is_none() {
            return Ok(Stack::local());
        }
        let client = aws_sdk_cloudformation::Client::new(sdk);
        Stack::describe(&client, self.name(), &AwsArgs::region_of(sdk)).await
    }
}

/// A deployed stack's outputs and parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Deployed {
    pub name: String,
    pub region: String,
    /// The account the stack lives in (from its id).
    pub account: String,
    pub status: String,
    pub outputs: BTreeMap<String, String>,
    pub parameters: BTreeMap<String, String>,
}

/// The stack a command works with: deployed, or none (a local DynamoDB, default names).
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    pub deployed: Option<Deployed>,
}

impl Stack {
    /// No stack: the template's default names.
    pub fn local() -> Self {
        Stack { deployed: None }
    }

    /// `DescribeStacks` for `name`. A stack CloudFormation does not have is a usage error
    /// that names the region looked in.
    pub async fn describe(
        client: &aws_sdk_cloudformation::Client,
        name: &str,
        region: &str,
    ) -> Result<Stack, CliError> {
        let described = client
            .describe_stacks()
            .stack_name(name)
            .send()
            .await
            .map_err(|error| {
                let error = tarem_shared::aws::errors::port_error("DescribeStacks", &error);
                // CloudFormation says "Stack with id X does not exist" as a ValidationError.
                if error.message.contains("does not exist") {
                    not_found(name, region)
                } else {
                    CliError::from(error).at(&format!("stack {name} in {region}"))
                }
            })?;
        let Some(stack) = described.stacks().first() else {
            return Err(not_found(name, region));
        };
        let pairs = |key: Option<&str>, value: Option<&str>| {
            key.map(|k| (k.to_owned(), value.unwrap_or_default().to_owned()))
        };
        let id = stack.stack_id().unwrap_or_default();
        Ok(Stack {
            deployed: Some(Deployed {
                name: stack.stack_name().unwrap_or(name).to_owned(),
                region: region.to_owned(),
                account: id.split(':').nth(4).unwrap_or_default().to_owned(),
                status: stack
                    .stack_status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                outputs: stack
                    .outputs()
                    .iter()
                    .filter_map(|o| pairs(o.output_key(), o.output_value()))
                    .collect(),
                parameters: stack
                    .parameters()
                    .iter()
                    .filter_map(|p| pairs(p.parameter_key(), p.parameter_value()))
                    .collect(),
            }),
        })
    }

    /// An output's value, if the stack has it (and it is not empty).
    pub fn output_value(&self, key: &str) -> Option<&str> {
        self.deployed
            .as_ref()
            .and_then(|d| d.outputs.get(key))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn parameter(&self, key: &str) -> Option<&str> {
        self.deployed
            .as_ref()
            .and_then(|d| d.parameters.get(key))
            .map(String::as_str)
    }

    /// The stack's own account, when a stack was read.
    pub fn account(&self) -> Option<&str> {
        self.deployed.as_ref().map(|d| d.account.as_str())
    }

    /// The member accounts a hub governs (its `MemberAccounts` parameter), in order.
    pub fn member_accounts(&self) -> Vec<String> {
        self.parameter("MemberAccounts")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|account| !account.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The mapping table's name: the stack's output, else the template's default.
    pub fn mapping_table(&self) -> String {
        self.output_value("MappingTableName")
            .unwrap_or("AutomationMappingTable")
            .to_owned()
    }

    pub fn tracker_table(&self) -> String {
        self.output_value("TrackerTableName")
            .unwrap_or("TrustedAdvisorCheckTrackerTable")
            .to_owned()
    }

    pub fn execution_table(&self) -> String {
        self.output_value("ExecutionTableName")
            .unwrap_or("AutomationExecutionTrackerTable")
            .to_owned()
    }

    /// The kill switch's parameter name; none without a stack.
    pub fn kill_switch(&self) -> Option<String> {
        self.output_value("KillSwitchParameterName")
            .map(str::to_owned)
    }

    /// The function a replay invokes for `target` (check-tracker, results-handler,
    /// automation-execution-handler): the stack's output, else `<stack>-<target>`.
    pub fn function(&self, target: &str, stack_name: &str) -> String {
        let key = match target {
            "check-tracker" => "CheckTrackerFunctionName",
            "results-handler" => "ResultsHandlerFunctionName",
            _ => "AutomationExecutionHandlerFunctionName",
        };
        self.output_value(key)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{stack_name}-{target}"))
    }

    /// The failure queues the stack names, by their short name.
    pub fn queues(&self) -> Vec<(&'static str, String)> {
        QUEUES
            .iter()
            .filter_map(|(short, key)| self.output_value(key).map(|url| (*short, url.to_owned())))
            .collect()
    }

    /// The stack's own description for output: `stack tarem (us-east-1)`.
    pub fn describe_source(&self) -> String {
        match &self.deployed {
            Some(d) => format!("stack {} in {}", d.name, d.region),
            None => "no stack (--endpoint-url): the template's defaults".into(),
        }
    }

    /// The settings the results handler runs with, built from the stack's parameters as the
    /// template builds its environment. None without a stack.
    pub fn settings(&self) -> Result<Option<Settings>, CliError> {
        let Some(deployed) = &self.deployed else {
            return Ok(None);
        };
        let parameter = |key: &str| self.parameter(key).unwrap_or_default().to_owned();
        let mut roles: Vec<String> = parameter("AutomationRoleArns")
            .split(',')
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect();
        roles.extend(
            self.output_value("ExampleAutomationRoleArn")
                .map(str::to_owned),
        );
        let tag = parameter("OptInTag");
        let (tag_key, tag_value) = tag.split_once('=').unwrap_or(("", ""));
        Settings::from_pairs([
            (
                "ALLOWED_AUTOMATION_DOCUMENTS",
                parameter("AllowedAutomationDocuments"),
            ),
            ("ALLOWED_AUTOMATION_ROLES", roles.join(",")),
            ("OPT_IN", parameter("OptIn")),
            ("OPT_IN_TAG_KEY", tag_key.to_owned()),
            ("OPT_IN_TAG_VALUE", tag_value.to_owned()),
            ("TUNING", parameter("Tuning")),
            (
                "GOVERNED_ACCOUNTS",
                std::iter::once(deployed.account.clone())
                    .chain(self.member_accounts())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("HOME_ACCOUNT", deployed.account.clone()),
        ])
        .map(Some)
        .map_err(|error| self.unreadable(error))
    }

    /// The lifecycle settings the deployed results handler runs with; none without a stack.
    pub fn lifecycle(&self) -> Result<Option<LifecycleConfig>, CliError> {
        let Some(settings) = self.settings()? else {
            return Ok(None);
        };
        settings
            .safety()
            .and_then(|safety| settings.lifecycle(safety))
            .map(Some)
            .map_err(|error| self.unreadable(error))
    }

    fn unreadable(&self, error: impl std::fmt::Display) -> CliError {
        CliError::Problems(format!(
            "{}: its parameters do not make settings the functions accept: {error}",
            self.describe_source()
        ))
    }
}

/// The failure queues: the short name `dlq replay` takes, and the stack's output holding the URL.
pub const QUEUES: &[(&str, &str)] = &[
    ("tracker-stream", "TrackerStreamFailureQueueUrl"),
    ("check-tracker", "CheckTrackerDeadLetterQueueUrl"),
    ("execution-events", "ExecutionEventsDeadLetterQueueUrl"),
    ("raw-event-log", "RawEventLogDeadLetterQueueUrl"),
];

fn not_found(name: &str, region: &str) -> CliError {
    CliError::usage(format!(
        "no stack {name:?} in {region} (CloudFormation): deploy it (README, \"Deploy in five \
         minutes\"), name yours with --stack (or TAREM_STACK), or pass --region if it lives \
         elsewhere"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployed(parameters: &[(&str, &str)], outputs: &[(&str, &str)]) -> Stack {
        Stack {
            deployed: Some(Deployed {
                name: "tarem".into(),
                region: "us-east-1".into(),
                account: "111122223333".into(),
                status: "CREATE_COMPLETE".into(),
                outputs: outputs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                parameters: parameters
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            }),
        }
    }

    #[test]
    fn the_settings_are_built_as_the_template_builds_the_environment() {
        let stack = deployed(
            &[
                (
                    "AllowedAutomationDocuments",
                    "AWS-DisablePublicAccessForSecurityGroup,AWS-StopRdsInstance",
                ),
                ("AutomationRoleArns", "arn:aws:iam::111122223333:role/Mine"),
                ("OptIn", "opt-in"),
                ("OptInTag", "fixme=yes"),
                ("Tuning", "BreakerLimit=7, MaxAttempts=2"),
            ],
            &[(
                "ExampleAutomationRoleArn",
                "arn:aws:iam::111122223333:role/tarem-example",
            )],
        );
        let config = stack.lifecycle().unwrap().unwrap();
        assert_eq!(
            config.safety.allowed_documents,
            [
                "AWS-DisablePublicAccessForSecurityGroup",
                "AWS-StopRdsInstance"
            ]
        );
        assert_eq!(
            config.safety.allowed_roles,
            [
                "arn:aws:iam::111122223333:role/Mine",
                "arn:aws:iam::111122223333:role/tarem-example"
            ]
        );
        assert_eq!(config.safety.breaker_limit, 7);
        assert_eq!(config.safety.max_attempts, 2);
        assert_eq!(
            config.safety.opt_in,
            tarem_shared::safety::OptIn::Tagged {
                key: "fixme".into(),
                value: "yes".into()
            }
        );
        assert_eq!(
            config.safety.governed_accounts,
            Some(["111122223333".to_owned()].into())
        );
    }

    #[test]
    fn a_stack_whose_tuning_the_functions_refuse_is_said_so() {
        let stack = deployed(
            &[
                ("AllowedAutomationDocuments", "AWS-X"),
                ("Tuning", "BreakerLimt=7"),
            ],
            &[],
        );
        let error = stack.lifecycle().unwrap_err().to_string();
        assert!(error.contains("did you mean BreakerLimit"), "{error}");
    }

    #[test]
    fn without_a_stack_the_names_are_the_templates_defaults() {
        let stack = Stack::local();
        assert_eq!(stack.mapping_table(), "AutomationMappingTable");
        assert_eq!(stack.tracker_table(), "TrustedAdvisorCheckTrackerTable");
        assert_eq!(stack.execution_table(), "AutomationExecutionTrackerTable");
        assert_eq!(stack.kill_switch(), None);
        assert_eq!(stack.lifecycle().unwrap(), None);
        let named = deployed(&[], &[("MappingTableName", "Mine")]);
        assert_eq!(named.mapping_table(), "Mine");
        assert_eq!(
            named.function("results-handler", "tarem"),
            "tarem-results-handler"
        );
    }
}
