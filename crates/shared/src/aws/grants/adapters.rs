//! Every adapter's AWS calls, method by method, as IAM actions on what the stack names.

use super::{Grant, On, grant};

/// Every adapter the functions (and the CLI) build, by type name, with the grants its methods'
/// calls need.
pub const ADAPTERS: &[(&str, &[Grant])] = &[
    (
        "DynamoTracker",
        &[
            grant(
                "dynamodb:UpdateItem",
                On::TrackerTable,
                &["put_if_newer", "settled", "mark_pending"],
                "one conditional write per finding; moving a checked row in the work index",
            ),
            grant(
                "dynamodb:GetItem",
                On::TrackerTable,
                &["get"],
                "a finding's current row",
            ),
            grant(
                "dynamodb:Query",
                On::TrackerIndex,
                &["flagged_keys", "pending"],
                "a check's flagged rows; the writes still to check",
            ),
            grant(
                "dynamodb:Scan",
                On::TrackerTable,
                &["flagged_keys", "unindexed"],
                "rows an older version wrote (once, after an upgrade); a local run without accounts",
            ),
        ],
    ),
    (
        "DynamoMappings",
        &[
            grant(
                "dynamodb:GetItem",
                On::MappingTable,
                &["get"],
                "a check's mapping",
            ),
            grant(
                "dynamodb:Scan",
                On::MappingTable,
                &["list", "check_names"],
                "the mapping table, read whole (the mapping cache, its fingerprints, the mapped checks)",
            ),
            grant(
                "dynamodb:PutItem",
                On::MappingTable,
                &["put"],
                "writing a mapping",
            ),
            grant(
                "dynamodb:DeleteItem",
                On::MappingTable,
                &["delete"],
                "removing a mapping",
            ),
        ],
    ),
    (
        "DynamoExecutions",
        &[
            grant(
                "dynamodb:GetItem",
                On::ExecutionTable,
                &["get", "get_episode", "sweep_state", "unfinished"],
                "episodes, execution rows, the sweep's state",
            ),
            grant(
                "dynamodb:PutItem",
                On::ExecutionTable,
                &["put_episode", "archive_episode", "set_sweep_state"],
                "episodes (a versioned conditional write: the claim), replaced episodes, the sweep's state",
            ),
            grant(
                "dynamodb:UpdateItem",
                On::ExecutionTable,
                &["record_started", "record_status"],
                "execution rows",
            ),
            grant(
                "dynamodb:Scan",
                On::ExecutionTable,
                &["open_episodes", "episodes"],
                "episodes an older version wrote (once); every episode (status)",
            ),
            grant(
                "dynamodb:Query",
                On::ExecutionIndex,
                &["due_episodes", "unfinished"],
                "the episodes due now; the executions still running",
            ),
        ],
    ),
    (
        "DynamoCounters",
        &[
            grant(
                "dynamodb:UpdateItem",
                On::ExecutionTable,
                &["increment_below", "increment", "decrement"],
                "the breaker's and the OpsItem budget's counters",
            ),
            grant(
                "dynamodb:GetItem",
                On::ExecutionTable,
                &["value"],
                "a counter's value",
            ),
        ],
    ),
    (
        "DynamoAccounts",
        &[
            grant(
                "dynamodb:UpdateItem",
                On::ExecutionTable,
                &["record_sweep", "saw_event"],
                "the account registry: each account's latest sweep and latest event",
            ),
            grant(
                "dynamodb:GetItem",
                On::ExecutionTable,
                &["get"],
                "an account's record (its first sweep: what its events should have brought since)",
            ),
        ],
    ),
    (
        "DynamoLocks",
        &[
            grant(
                "dynamodb:PutItem",
                On::ExecutionTable,
                &["acquire"],
                "taking a resource's lock (a conditional put)",
            ),
            grant(
                "dynamodb:UpdateItem",
                On::ExecutionTable,
                &["release"],
                "releasing it when the runbook ends",
            ),
            grant(
                "dynamodb:DeleteItem",
                On::ExecutionTable,
                &["abandon"],
                "giving back the lock of a start that never ran",
            ),
        ],
    ),
    (
        "SsmOpsCenter",
        &[
            grant(
                "ssm:CreateOpsItem",
                On::Anything,
                &["create"],
                "an OpsItem per episode",
            ),
            grant(
                "ssm:UpdateOpsItem",
                On::OpsItems,
                &["update"],
                "keeping the OpsItem honest",
            ),
            grant(
                "ssm:GetOpsItem",
                On::OpsItems,
                &["view"],
                "what it says, before an outcome and at its check",
            ),
        ],
    ),
    (
        "SsmParameterKillSwitch",
        &[grant(
            "ssm:GetParameter",
            On::KillSwitch,
            &["starts_allowed"],
            "read before every start",
        )],
    ),
    (
        "SsmAutomation",
        &[
            grant(
                "ssm:StartAutomationExecution",
                On::AllowedDocuments,
                &["start"],
                "only the allowlisted runbooks",
            ),
            grant(
                "ssm:StartAutomationExecution",
                On::AutomationExecutions,
                &["start"],
                "the execution it creates",
            ),
            grant(
                "ssm:AddTagsToResource",
                On::AutomationExecutions,
                &["start"],
                "starting it tagged (its finding, its ClientToken)",
            ),
            grant(
                "ssm:ListTagsForResource",
                On::AutomationExecutions,
                &["tags", "find_by_client_token"],
                "an execution's finding, from its tags",
            ),
            grant(
                "ssm:GetAutomationExecution",
                On::AutomationExecutions,
                &["describe"],
                "an execution's status, end and failure (the sweeps, the in-flight timeout)",
            ),
            grant(
                "ssm:DescribeAutomationExecutions",
                On::Anything,
                &["find_by_client_token"],
                "finding an execution by its ClientToken's tag",
            ),
        ],
    ),
    (
        "TaggingResourceTags",
        &[grant(
            "tag:GetResources",
            On::Anything,
            &["tags"],
            "a resource's opt-in and mode tags",
        )],
    ),
    (
        "SupportTrustedAdvisor",
        &[
            grant(
                "support:DescribeTrustedAdvisorChecks",
                On::Anything,
                &["checks"],
                "the findings sweep: the checks and their columns",
            ),
            grant(
                "support:DescribeTrustedAdvisorCheckResult",
                On::Anything,
                &["check_result"],
                "the findings sweep: a check's flagged resources",
            ),
        ],
    ),
    (
        "TrustedAdvisorApi",
        &[
            grant(
                "trustedadvisor:ListChecks",
                On::Anything,
                &["checks"],
                "the findings sweep: the checks and their columns (Trusted Advisor API)",
            ),
            grant(
                "trustedadvisor:ListRecommendations",
                On::Anything,
                &["check_result"],
                "the findings sweep: the account's recommendation of a check",
            ),
            grant(
                "trustedadvisor:ListRecommendationResources",
                On::Anything,
                &["check_result"],
                "the findings sweep: a recommendation's flagged resources",
            ),
        ],
    ),
    (
        "SsmDocuments",
        &[grant(
            "ssm:DescribeDocument",
            On::Anything,
            &["parameters"],
            "a mapped document's parameters (mapping validation)",
        )],
    ),
    (
        "SqsQueue",
        &[
            grant(
                "sqs:SendMessage",
                On::OwnQueue,
                &["park"],
                "parking what it cannot use, with the reason",
            ),
            grant(
                "sqs:ReceiveMessage",
                On::OwnQueue,
                &["receive"],
                "reading parked messages (dlq replay)",
            ),
            grant(
                "sqs:DeleteMessage",
                On::OwnQueue,
                &["delete"],
                "a message replayed (dlq replay)",
            ),
            grant(
                "sqs:ChangeMessageVisibility",
                On::OwnQueue,
                &["release"],
                "a message looked at and kept (dlq replay)",
            ),
        ],
    ),
    (
        "StsMembers",
        &[
            grant(
                "sts:AssumeRole",
                On::MemberRoles,
                &["reach"],
                "acting in a member account (tags, OpsItems, starts, polls) through its own role",
            ),
            grant(
                "organizations:DescribeAccount",
                On::OrganisationAccounts,
                &["reach"],
                "whether a member whose role refuses the hub is suspended, closed or gone",
            ),
            grant(
                "organizations:ListParents",
                On::OrganisationAccounts,
                &["units"],
                "the OUs an account sits in, for a mapping scoped to an OU",
            ),
            grant(
                "organizations:ListParents",
                On::OrganisationUnits,
                &["units"],
                "each OU's parent, up to the root",
            ),
        ],
    ),
];
