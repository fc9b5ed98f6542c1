//! The people's permissions: the operator's, per `tarem` command (the adapters it builds and
//! the calls it makes itself), and the deployer's, per resource type of the template.

use super::{On, Use, of_uses};

/// A call the CLI makes itself rather than through an adapter: the IAM action, on what, why.
pub type Call = (&'static str, &'static str, &'static str);

const DESCRIBE_STACK: Call = (
    "cloudformation:DescribeStacks",
    "the stack",
    "its tables, queues, allowlists and tuning (`--stack`)",
);

/// Each `tarem` command that reaches AWS: the files that make its calls (under
/// `crates/cli/src/`), the adapters it builds with the methods it calls, and the calls it makes
/// itself. The operator's permissions (docs/operations.md) are generated from these, and
/// tests/grants.rs reads those files so a call without its line here fails.
/// A command: its name, its files, the adapters it uses, the calls it makes itself.
pub type Command = (
    &'static str,
    &'static [&'static str],
    &'static [Use],
    &'static [Call],
);

pub const CLI: &[Command] = &[
    (
        "mapping",
        &[
            "commands/mapping/mod.rs",
            "commands/mapping/files.rs",
            "commands/mapping/change.rs",
            "blast.rs",
            "stack.rs",
        ],
        &[
            (
                "DynamoMappings",
                "store",
                &["get", "list", "put", "delete", "check_names"],
            ),
            (
                "DynamoTracker",
                "tracker (enable's blast radius)",
                &["flagged_keys", "pending", "get"],
            ),
            ("SsmDocuments", "documents", &["parameters"]),
            ("SupportTrustedAdvisor", "advisor", &["checks"]),
        ],
        &[
            DESCRIBE_STACK,
            (
                "sts:GetCallerIdentity",
                "`*`",
                "pack-policy's account when --account is not given",
            ),
        ],
    ),
    (
        "plan",
        &["commands/plan.rs", "blast.rs", "stack.rs"],
        &[
            ("DynamoMappings", "store", &["list"]),
            (
                "DynamoTracker",
                "tracker (--flagged)",
                &["flagged_keys", "pending", "get"],
            ),
        ],
        &[DESCRIBE_STACK],
    ),
    (
        "reconcile",
        &["commands/reconcile.rs", "stack.rs"],
        &[
            (
                "DynamoTracker",
                "tracker",
                &["put_if_newer", "get", "flagged_keys", "pending"],
            ),
            ("DynamoMappings", "mappings", &["check_names"]),
            (
                "SupportTrustedAdvisor",
                "advisor",
                &["checks", "check_result"],
            ),
        ],
        &[
            DESCRIBE_STACK,
            (
                "sts:GetCallerIdentity",
                "`*`",
                "the findings' account when neither --account nor the stack gives it",
            ),
        ],
    ),
    (
        "status",
        &["commands/status.rs", "commands/episodes.rs", "stack.rs"],
        &[
            ("DynamoExecutions", "executions", &["episodes"]),
            ("DynamoCounters", "counters", &["value"]),
            ("SsmParameterKillSwitch", "kill_switch", &["starts_allowed"]),
        ],
        &[DESCRIBE_STACK],
    ),
    (
        "accounts",
        &["commands/accounts.rs", "commands/episodes.rs", "stack.rs"],
        &[
            ("DynamoExecutions", "executions", &["episodes"]),
            ("DynamoAccounts", "registry", &["get"]),
        ],
        &[DESCRIBE_STACK],
    ),
    (
        "approve",
        &["commands/approve.rs", "stack.rs"],
        &[
            ("DynamoExecutions", "executions", &["get_episode"]),
            ("SsmOpsCenter", "ops_center", &["update"]),
        ],
        &[DESCRIBE_STACK],
    ),
    (
        "dlq replay",
        &["commands/dlq.rs", "replay_aws.rs", "stack.rs"],
        &[("SqsQueue", "queue", &["receive", "delete", "release"])],
        &[
            DESCRIBE_STACK,
            (
                "dynamodb:GetShardIterator, dynamodb:GetRecords",
                "the tracker table's stream",
                "a parked stream batch, read again",
            ),
            (
                "lambda:InvokeFunction",
                "the stack's three functions",
                "a parked message sent back through its function",
            ),
        ],
    ),
    (
        "doctor",
        &["doctor.rs", "commands/doctor.rs", "stack.rs"],
        &[("DynamoMappings", "store", &["list"])],
        &[
            DESCRIBE_STACK,
            ("sts:GetCallerIdentity", "`*`", "the credentials"),
            (
                "support:DescribeTrustedAdvisorChecks",
                "`*`",
                "the support plan",
            ),
            ("dynamodb:DescribeTable", "the stack's tables", "the tables"),
            (
                "logs:DescribeLogStreams",
                "the raw Trusted Advisor event log group",
                "the last Trusted Advisor event",
            ),
            ("ssm:DescribeOpsItems", "`*`", "OpsCenter"),
            (
                "ssm:GetParameter",
                "the kill switch parameter",
                "the kill switch",
            ),
            (
                "sns:ListSubscriptionsByTopic",
                "the alarm topic",
                "the alarms' subscribers",
            ),
        ],
    ),
];

/// docs/operations.md's table of the operator's permissions, generated: per command, each
/// action once.
pub fn cli_permissions_table() -> String {
    let mut rows = vec![
        "| Command | Actions | Resources | Why |".to_owned(),
        "| --- | --- | --- | --- |".to_owned(),
    ];
    for (command, _, uses, calls) in CLI {
        for (grant, whys) in of_uses(uses) {
            // The functions' "own" queue is, for the operator, any of the stack's.
            let on = match grant.on {
                On::OwnQueue => "the stack's failure queues",
                on => on.describe(),
            };
            rows.push(format!(
                "| `tarem {command}` | `{}` | {on} | {} |",
                grant.action,
                whys.join("; ")
            ));
        }
        for (action, on, why) in *calls {
            rows.push(format!("| `tarem {command}` | `{action}` | {on} | {why} |"));
        }
    }
    rows.join("\n")
}

/// What deploying the stack asks of the deployer, by the template's resource types: the
/// actions CloudFormation calls for each to create, update and delete it (its resource
/// handlers' permissions), and the deploy itself. tests/grants.rs checks every resource type
/// the template declares has its row and no row outlives its resources.
pub const DEPLOY: &[(&str, &[&str])] = &[
    (
        "the deploy (sam deploy)",
        &[
            "cloudformation:CreateChangeSet",
            "cloudformation:DescribeChangeSet",
            "cloudformation:ExecuteChangeSet",
            "cloudformation:DescribeStacks",
            "cloudformation:DescribeStackEvents",
            "cloudformation:GetTemplateSummary",
            "cloudformation:DeleteStack",
            "s3:CreateBucket",
            "s3:PutObject",
            "s3:GetObject",
        ],
    ),
    (
        "AWS::Serverless::Function",
        &[
            "lambda:CreateFunction",
            "lambda:GetFunction",
            "lambda:UpdateFunctionCode",
            "lambda:UpdateFunctionConfiguration",
            "lambda:DeleteFunction",
            "lambda:TagResource",
            "lambda:PutFunctionEventInvokeConfig",
            "lambda:UpdateFunctionEventInvokeConfig",
            "lambda:DeleteFunctionEventInvokeConfig",
            "iam:CreateRole",
            "iam:GetRole",
            "iam:DeleteRole",
            "iam:TagRole",
            "iam:AttachRolePolicy",
            "iam:DetachRolePolicy",
            "iam:PutRolePermissionsBoundary",
            "iam:DeleteRolePermissionsBoundary",
            "iam:PassRole",
        ],
    ),
    (
        "AWS::Lambda::EventSourceMapping",
        &[
            "lambda:CreateEventSourceMapping",
            "lambda:GetEventSourceMapping",
            "lambda:UpdateEventSourceMapping",
            "lambda:DeleteEventSourceMapping",
        ],
    ),
    (
        "AWS::Lambda::Permission",
        &["lambda:AddPermission", "lambda:RemovePermission"],
    ),
    (
        "AWS::IAM::Role",
        &[
            "iam:CreateRole",
            "iam:GetRole",
            "iam:UpdateAssumeRolePolicy",
            "iam:PutRolePolicy",
            "iam:DeleteRolePolicy",
            "iam:DeleteRole",
            "iam:TagRole",
        ],
    ),
    (
        "AWS::IAM::Policy",
        &[
            "iam:PutRolePolicy",
            "iam:GetRolePolicy",
            "iam:DeleteRolePolicy",
        ],
    ),
    (
        "AWS::IAM::ManagedPolicy",
        &[
            "iam:CreatePolicy",
            "iam:GetPolicy",
            "iam:CreatePolicyVersion",
            "iam:DeletePolicyVersion",
            "iam:ListPolicyVersions",
            "iam:DeletePolicy",
        ],
    ),
    (
        "AWS::DynamoDB::Table",
        &[
            "dynamodb:CreateTable",
            "dynamodb:DescribeTable",
            "dynamodb:UpdateTable",
            "dynamodb:DeleteTable",
            "dynamodb:UpdateTimeToLive",
            "dynamodb:DescribeTimeToLive",
            "dynamodb:UpdateContinuousBackups",
            "dynamodb:DescribeContinuousBackups",
            "dynamodb:TagResource",
            "dynamodb:ListTagsOfResource",
        ],
    ),
    (
        "AWS::Events::EventBus",
        &[
            "events:CreateEventBus",
            "events:DescribeEventBus",
            "events:DeleteEventBus",
        ],
    ),
    (
        "AWS::Events::EventBusPolicy",
        &[
            "events:PutPermission",
            "events:RemovePermission",
            "events:DescribeEventBus",
        ],
    ),
    (
        "AWS::Events::Rule",
        &[
            "events:PutRule",
            "events:DescribeRule",
            "events:PutTargets",
            "events:RemoveTargets",
            "events:DeleteRule",
        ],
    ),
    (
        "AWS::KMS::Key",
        &[
            "kms:CreateKey",
            "kms:DescribeKey",
            "kms:PutKeyPolicy",
            "kms:GetKeyPolicy",
            "kms:EnableKeyRotation",
            "kms:GetKeyRotationStatus",
            "kms:TagResource",
            "kms:ScheduleKeyDeletion",
            "kms:CreateGrant",
        ],
    ),
    (
        "AWS::Logs::LogGroup",
        &[
            "logs:CreateLogGroup",
            "logs:DescribeLogGroups",
            "logs:PutRetentionPolicy",
            "logs:TagResource",
            "logs:DeleteLogGroup",
        ],
    ),
    (
        "AWS::Logs::ResourcePolicy",
        &[
            "logs:PutResourcePolicy",
            "logs:DescribeResourcePolicies",
            "logs:DeleteResourcePolicy",
        ],
    ),
    (
        "AWS::SNS::Topic",
        &[
            "sns:CreateTopic",
            "sns:GetTopicAttributes",
            "sns:SetTopicAttributes",
            "sns:TagResource",
            "sns:DeleteTopic",
        ],
    ),
    (
        "AWS::SNS::Subscription",
        &[
            "sns:Subscribe",
            "sns:GetSubscriptionAttributes",
            "sns:Unsubscribe",
        ],
    ),
    (
        "AWS::SQS::Queue",
        &[
            "sqs:CreateQueue",
            "sqs:GetQueueAttributes",
            "sqs:SetQueueAttributes",
            "sqs:TagQueue",
            "sqs:DeleteQueue",
        ],
    ),
    (
        "AWS::SQS::QueuePolicy",
        &["sqs:SetQueueAttributes", "sqs:GetQueueAttributes"],
    ),
    (
        "AWS::SSM::Parameter",
        &[
            "ssm:PutParameter",
            "ssm:GetParameters",
            "ssm:AddTagsToResource",
            "ssm:DeleteParameter",
        ],
    ),
    (
        "AWS::CloudWatch::Alarm",
        &[
            "cloudwatch:PutMetricAlarm",
            "cloudwatch:DescribeAlarms",
            "cloudwatch:TagResource",
            "cloudwatch:DeleteAlarms",
        ],
    ),
    (
        "AWS::CloudWatch::Dashboard",
        &[
            "cloudwatch:PutDashboard",
            "cloudwatch:GetDashboard",
            "cloudwatch:DeleteDashboards",
        ],
    ),
];

/// docs/operations.md's table of the deployer's permissions, generated from [`DEPLOY`].
pub fn deploy_permissions_table() -> String {
    let mut rows = vec!["| For | Actions |".to_owned(), "| --- | --- |".to_owned()];
    for (what, actions) in DEPLOY {
        let shown = if what.starts_with("AWS::") {
            format!("`{what}`")
        } else {
            (*what).to_owned()
        };
        rows.push(format!("| {shown} | `{}` |", actions.join("`, `")));
    }
    rows.join("\n")
}
