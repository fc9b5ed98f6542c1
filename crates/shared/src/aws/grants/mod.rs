//! What each AWS adapter calls, as IAM actions on the resources the stack names: the one source
//! of the functions' grants. Each adapter declares the action of every AWS call its methods make
//! ([`ADAPTERS`]); each function's wiring lists the adapters it builds ([`FUNCTIONS`]); the
//! template's roles, docs/operations.md's permissions table and the CLI's documented permissions
//! are checked against (or generated from) these two, and a test reads the adapters' source so a
//! call added without its grant, or a grant left without a call, fails. The operator's and the
//! deployer's permissions are in [`operators`].

mod adapters;
mod operators;

pub use adapters::ADAPTERS;
pub use operators::{CLI, Call, Command, DEPLOY, cli_permissions_table, deploy_permissions_table};

/// What a call acts on, as the template names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum On {
    TrackerTable,
    /// The tracker's sparse `work-index`.
    TrackerIndex,
    MappingTable,
    ExecutionTable,
    /// The execution table's sparse `due-index`.
    ExecutionIndex,
    /// The function's own failure queue.
    OwnQueue,
    /// The stack's kill switch parameter.
    KillSwitch,
    /// OpsItems of the stack's account and region.
    OpsItems,
    /// The allowed documents (`automation-definition/<name>:*`, AWS's and the account's).
    AllowedDocuments,
    /// Automation executions of the stack's account, any region.
    AutomationExecutions,
    /// Each member account's `role/tarem/tarem-member`, inside the organisation.
    MemberRoles,
    /// The organisation's accounts, as Organizations names them.
    OrganisationAccounts,
    /// The organisation's organisational units.
    OrganisationUnits,
    /// An action without resource-level permissions (the Service Authorization Reference).
    Anything,
}

impl On {
    /// How the permissions table names it.
    pub fn describe(self) -> &'static str {
        match self {
            On::TrackerTable => "tracker table",
            On::TrackerIndex => "tracker table's work-index",
            On::MappingTable => "mapping table",
            On::ExecutionTable => "execution table",
            On::ExecutionIndex => "execution table's due-index",
            On::OwnQueue => "its own failure queue",
            On::KillSwitch => "the kill switch parameter",
            On::OpsItems => "OpsItems of this account and region",
            On::AllowedDocuments => "each allowed document (AWS's and this account's)",
            On::AutomationExecutions => "automation executions of this account",
            On::MemberRoles => {
                "each member's `role/tarem/tarem-member`, in the organisation (a hub only)"
            }
            On::OrganisationAccounts => "the organisation's accounts (a hub only)",
            On::OrganisationUnits => "the organisation's OUs (a hub only)",
            On::Anything => "`*` (no resource-level permissions)",
        }
    }
}

/// One IAM action an adapter's calls need, on what, for which of its methods, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub action: &'static str,
    pub on: On,
    /// The adapter's methods whose calls need it.
    pub methods: &'static [&'static str],
    pub why: &'static str,
}

const fn grant(
    action: &'static str,
    on: On,
    methods: &'static [&'static str],
    why: &'static str,
) -> Grant {
    Grant {
        action,
        on,
        methods,
        why,
    }
}

/// How a function uses an adapter: its type, the handler field (or local) that holds it, and
/// the methods the function's code calls on it.
pub type Use = (&'static str, &'static str, &'static [&'static str]);

/// Each function, the source files of its handler (under `crates/shared/src/`), and the
/// adapters its wiring (`functions/<name>/src/main.rs`) builds, with the methods it calls.
pub const FUNCTIONS: &[(&str, &[&str], &[Use])] = &[
    (
        "check-tracker",
        &[
            "handlers/check_tracker.rs",
            "reconcile/mod.rs",
            "reconcile/accounts.rs",
            "handlers/mod.rs",
        ],
        &[
            (
                "DynamoTracker",
                "tracker",
                &["put_if_newer", "get", "flagged_keys", "pending"],
            ),
            ("DynamoMappings", "mappings", &["check_names"]),
            (
                "DynamoAccounts",
                "registry",
                &["record_sweep", "saw_event", "get"],
            ),
            // The Trusted Advisor API where the plan allows it, else the Support API.
            (
                "TrustedAdvisorApi",
                "advisor",
                &["checks", "check_result", "access"],
            ),
            (
                "SupportTrustedAdvisor",
                "advisor",
                &["checks", "check_result"],
            ),
            ("StsMembers", "members", &["reach"]),
            // Built for the account's clients; never called here.
            ("SsmAutomation", "automation", &[]),
            ("SsmOpsCenter", "ops_center", &[]),
            ("TaggingResourceTags", "tags", &[]),
            ("SqsQueue", "parking", &["park"]),
        ],
    ),
    (
        "results-handler",
        &[
            "handlers/results.rs",
            "handlers/settle.rs",
            "handlers/start.rs",
            "handlers/sweep.rs",
            "handlers/common.rs",
            "handlers/outcome.rs",
            "handlers/approve.rs",
            "handlers/mod.rs",
        ],
        &[
            (
                "DynamoTracker",
                "tracker",
                &[
                    "get",
                    "flagged_keys",
                    "pending",
                    "settled",
                    "unindexed",
                    "mark_pending",
                ],
            ),
            ("DynamoMappings", "store", &["list"]),
            (
                "DynamoExecutions",
                "executions",
                &[
                    "get_episode",
                    "put_episode",
                    "archive_episode",
                    "record_started",
                    "due_episodes",
                    "open_episodes",
                    "sweep_state",
                    "set_sweep_state",
                ],
            ),
            (
                "DynamoCounters",
                "counters",
                &["increment_below", "increment", "decrement", "value"],
            ),
            ("DynamoLocks", "locks", &["acquire", "release", "abandon"]),
            ("SsmOpsCenter", "ops_center", &["create", "update", "view"]),
            ("SsmParameterKillSwitch", "kill_switch", &["starts_allowed"]),
            (
                "SsmAutomation",
                "automation",
                &["start", "find_by_client_token", "describe"],
            ),
            ("TaggingResourceTags", "tags", &["tags"]),
            ("StsMembers", "members", &["reach", "units"]),
            // Built for the account's clients; never called here.
            ("SupportTrustedAdvisor", "advisor", &[]),
            ("SqsQueue", "parking", &["park"]),
        ],
    ),
    (
        "automation-execution-handler",
        &[
            "handlers/executions.rs",
            "handlers/outcome.rs",
            "handlers/mod.rs",
        ],
        &[
            ("DynamoTracker", "tracker", &["get"]),
            (
                "DynamoExecutions",
                "executions",
                &[
                    "get",
                    "record_status",
                    "unfinished",
                    "get_episode",
                    "put_episode",
                ],
            ),
            ("DynamoLocks", "locks", &["release", "abandon"]),
            ("SsmOpsCenter", "ops_center", &["update", "view"]),
            ("SsmAutomation", "automation", &["tags", "describe"]),
            ("StsMembers", "members", &["reach"]),
            // Built for the account's clients; never called here.
            ("TaggingResourceTags", "tags", &[]),
            ("SupportTrustedAdvisor", "advisor", &[]),
            ("SqsQueue", "parking", &["park"]),
        ],
    ),
];

/// The grants of an adapter, by type name.
pub fn of(adapter: &str) -> &'static [Grant] {
    ADAPTERS
        .iter()
        .find(|(name, _)| *name == adapter)
        .map_or(&[], |(_, grants)| grants)
}

/// The grants the given uses of adapters need: each (action, resource) once, in a fixed order,
/// with every reason.
pub fn of_uses(uses: &[Use]) -> Vec<(Grant, Vec<&'static str>)> {
    let mut grants: Vec<(Grant, Vec<&'static str>)> = vec![];
    for (adapter, _, methods) in uses {
        for grant in of(adapter)
            .iter()
            .filter(|g| g.methods.iter().any(|m| methods.contains(m)))
        {
            match grants
                .iter_mut()
                .find(|(g, _)| g.action == grant.action && g.on == grant.on)
            {
                Some((_, whys)) if !whys.contains(&grant.why) => whys.push(grant.why),
                Some(_) => {}
                None => grants.push((*grant, vec![grant.why])),
            }
        }
    }
    grants.sort_by_key(|(g, _)| (g.on, g.action));
    grants
}

/// A function's grants ([`of_uses`] of its wiring).
pub fn of_function(function: &str) -> Vec<(Grant, Vec<&'static str>)> {
    FUNCTIONS
        .iter()
        .find(|(name, _, _)| *name == function)
        .map(|(_, _, uses)| of_uses(uses))
        .unwrap_or_default()
}

/// Grants a function's code does not make but its deployment needs: its logs, the stream
/// mapping's reads, the role it passes to SSM, its async failure destination.
pub const PLATFORM: &[(&str, &str, &str, &str)] = &[
    (
        "every function",
        "logs:CreateLogStream, logs:PutLogEvents",
        "its own log group",
        "its logs (not AWSLambdaBasicExecutionRole, which writes to every log group)",
    ),
    (
        "every function",
        "sqs:SendMessage",
        "its own failure queue",
        "the async on-failure destination",
    ),
    (
        "results-handler",
        "dynamodb:DescribeStream, GetRecords, GetShardIterator",
        "the tracker table's stream",
        "the stream mapping",
    ),
    (
        "results-handler",
        "dynamodb:ListStreams",
        "`*` (no resource-level permissions)",
        "the stream mapping",
    ),
    (
        "results-handler",
        "iam:PassRole to ssm.amazonaws.com",
        "the example role and AutomationRoleArns",
        "the runbook's AutomationAssumeRole",
    ),
];

/// docs/operations.md's permissions table, generated: every function's grants, action by
/// action, then the platform's.
pub fn permissions_table() -> String {
    let mut rows = vec![
        "| Who | Actions | Resources | Why |".to_owned(),
        "| --- | --- | --- | --- |".to_owned(),
    ];
    for (function, _, _) in FUNCTIONS {
        for (grant, whys) in of_function(function) {
            rows.push(format!(
                "| {function} | `{}` | {} | {} |",
                grant.action,
                grant.on.describe(),
                whys.join("; ")
            ));
        }
    }
    for (who, actions, resources, why) in PLATFORM {
        rows.push(format!("| {who} | `{actions}` | {resources} | {why} |"));
    }
    rows.join("\n")
}
