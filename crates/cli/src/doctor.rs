//! `tarem doctor`: a preflight of the account and the stack the CLI is pointed at, one line per
//! check with what to do. Each check reads what it needs and decides from it; a check whose
//! prerequisite failed (no credentials, no stack) says it was not checked rather than failing
//! twice.

use crate::stack::Stack;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use tarem_shared::aws::errors::port_error;
use tarem_shared::error::ErrorKind;

/// The AWS clients the checks read through.
pub struct Clients {
    pub sts: aws_sdk_sts::Client,
    pub cloudformation: aws_sdk_cloudformation::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub sns: aws_sdk_sns::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub support: aws_sdk_support::Client,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Ok,
    /// Not wrong yet, worth knowing (no event so far on a new stack, an unconfirmed subscriber).
    Warn,
    Fail,
    /// Its prerequisite failed.
    Skipped,
}

/// One check's line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub check: &'static str,
    pub health: Health,
    pub said: String,
    /// What to do, when something is to be done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn line(check: &'static str, health: Health, said: impl Into<String>) -> Line {
    Line {
        check,
        health,
        said: said.into(),
        fix: None,
    }
}

impl Line {
    fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

/// How long without a Trusted Advisor event before it is a failure: Trusted Advisor refreshes
/// most checks at least weekly.
pub const EVENT_SILENCE: i64 = 8;

/// Every check, in the order an operator fixes them.
pub async fn diagnose(
    clients: &Clients,
    stack_name: &str,
    region: &str,
    now: DateTime<Utc>,
) -> Vec<Line> {
    let mut lines = vec![credentials(clients, region).await];
    let credentials_ok = lines[0].health == Health::Ok;
    let skipped = |check: &'static str, why: &str| line(check, Health::Skipped, why);
    if !credentials_ok {
        for check in [
            "support plan",
            "stack",
            "tables",
            "events",
            "OpsCenter",
            "kill switch",
            "alarms",
            "mappings",
        ] {
            lines.push(skipped(check, "not checked: no credentials"));
        }
        return lines;
    }
    lines.push(support_plan(clients).await);
    let stack = match Stack::describe(&clients.cloudformation, stack_name, region).await {
        Ok(stack) => {
            let status = stack
                .deployed
                .as_ref()
                .map(|d| d.status.clone())
                .unwrap_or_default();
            lines.push(stack_line(stack_name, region, &status));
            Some(stack)
        }
        Err(error) => {
            lines.push(
                line("stack", Health::Fail, error.to_string())
                    .fix("sam build && sam deploy --guided (README), or name yours with --stack"),
            );
            None
        }
    };
    let Some(stack) = stack else {
        for check in [
            "tables",
            "events",
            "OpsCenter",
            "kill switch",
            "alarms",
            "mappings",
        ] {
            lines.push(skipped(check, "not checked: no stack"));
        }
        return lines;
    };
    lines.push(tables(clients, &stack).await);
    lines.push(events(clients, &stack, now).await);
    lines.push(ops_center(clients).await);
    lines.push(kill_switch(clients, &stack).await);
    lines.push(alarms(clients, &stack).await);
    lines.push(mappings(clients, &stack).await);
    lines
}

async fn credentials(clients: &Clients, region: &str) -> Line {
    match clients.sts.get_caller_identity().send().await {
        Ok(identity) => line(
            "credentials",
            Health::Ok,
            format!(
                "account {} as {}, region {region}",
                identity.account().unwrap_or("?"),
                identity.arn().unwrap_or("?")
            ),
        ),
        Err(error) => {
            let error = port_error("GetCallerIdentity", &error);
            // The SDK's chain lists every provider it tried: one sentence says it.
            let none = [
                "no credentials found in chain",
                "the credential provider was not enabled",
                "there was no identity resolver",
            ];
            let said = if none.iter().any(|said| error.message.contains(said)) {
                "no AWS credentials: none in the environment, the default profile, SSO or an instance role".to_owned()
            } else {
                error.to_string()
            };
            line("credentials", Health::Fail, said)
                .fix("aws configure or aws sso login, or name a profile with --profile")
        }
    }
}

async fn support_plan(clients: &Clients) -> Line {
    let check = "support plan";
    match clients
        .support
        .describe_trusted_advisor_checks()
        .language("en")
        .send()
        .await
    {
        Ok(checks) => line(
            check,
            Health::Ok,
            format!(
                "the Support API answers: {} Trusted Advisor checks",
                checks.checks().len()
            ),
        ),
        Err(error) => {
            let error = port_error("DescribeTrustedAdvisorChecks", &error);
            let fix = match error.kind {
                ErrorKind::SubscriptionRequired => {
                    "Trusted Advisor's full checks, their events and the Support API need a Business, Enterprise On-Ramp or Enterprise support plan"
                }
                ErrorKind::AccessDenied => {
                    "grant support:DescribeTrustedAdvisorChecks to the credentials in use (docs/operations.md, Permissions)"
                }
                _ => "try again; the Support API lives in us-east-1",
            };
            line(check, Health::Fail, error.to_string()).fix(fix)
        }
    }
}

fn stack_line(name: &str, region: &str, status: &str) -> Line {
    let said = format!("{name} in {region}: {status}");
    if status.ends_with("_COMPLETE") && !status.contains("ROLLBACK") {
        line("stack", Health::Ok, said)
    } else if status.ends_with("_IN_PROGRESS") {
        line("stack", Health::Warn, said).fix("wait for the deploy to finish")
    } else {
        line("stack", Health::Fail, said).fix(
            "the last deploy did not complete: read its events (aws cloudformation describe-stack-events), fix the cause and sam deploy again (docs/operations.md, \"A first deploy that fails\")",
        )
    }
}

async fn tables(clients: &Clients, stack: &Stack) -> Line {
    let mut missing = vec![];
    let names = [
        stack.tracker_table(),
        stack.mapping_table(),
        stack.execution_table(),
    ];
    for table in &names {
        match clients
            .dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
        {
            Ok(described) => {
                let status = described
                    .table()
                    .and_then(|t| t.table_status())
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default();
                if status != "ACTIVE" {
                    missing.push(format!("{table} is {status}"));
                }
            }
            Err(error) => missing.push(format!(
                "{table}: {}",
                port_error("DescribeTable", &error).message
            )),
        }
    }
    if missing.is_empty() {
        line("tables", Health::Ok, format!("{} active", names.join(", ")))
    } else {
        line("tables", Health::Fail, missing.join("; ")).fix(
            "sam deploy again; a table deleted by hand comes back empty (the findings come back with the next refresh or tarem reconcile)",
        )
    }
}

async fn events(clients: &Clients, stack: &Stack, now: DateTime<Utc>) -> Line {
    let check = "events";
    let Some(group) = stack.output_value("TrustedAdvisorEventLogGroupName") else {
        return line(check, Health::Skipped, "the stack names no audit log group");
    };
    let streams = clients
        .logs
        .describe_log_streams()
        .log_group_name(group)
        .order_by(aws_sdk_cloudwatchlogs::types::OrderBy::LastEventTime)
        .descending(true)
        .limit(1)
        .send()
        .await;
    let last = match streams {
        Ok(streams) => streams
            .log_streams()
            .first()
            .and_then(|s| s.last_event_timestamp())
            .and_then(DateTime::<Utc>::from_timestamp_millis),
        Err(error) => {
            return line(
                check,
                Health::Fail,
                port_error("DescribeLogStreams", &error).to_string(),
            )
            .fix("grant logs:DescribeLogStreams on the stack's log group, or check it exists");
        }
    };
    match last {
        None => line(
            check,
            Health::Warn,
            format!("no Trusted Advisor event in {group} yet"),
        )
        .fix(
            "events arrive as Trusted Advisor refreshes its checks (most weekly); tarem reconcile reads the current findings now",
        ),
        Some(last) if now - last > Duration::days(EVENT_SILENCE) => line(
            check,
            Health::Fail,
            format!(
                "the last Trusted Advisor event reached {group} at {}, {} days ago",
                last.format("%Y-%m-%dT%H:%MZ"),
                (now - last).num_days()
            ),
        )
        .fix(
            "check the stack's EventBridge rule (enabled, in us-east-1) and the support plan; tarem reconcile fills in meanwhile",
        ),
        Some(last) => line(
            check,
            Health::Ok,
            format!(
                "last Trusted Advisor event at {}",
                last.format("%Y-%m-%dT%H:%MZ")
            ),
        ),
    }
}

async fn ops_center(clients: &Clients) -> Line {
    match clients.ssm.describe_ops_items().max_results(1).send().await {
        Ok(_) => line(
            "OpsCenter",
            Health::Ok,
            "OpsItems can be read in this region",
        ),
        Err(error) => {
            let error = port_error("DescribeOpsItems", &error);
            line("OpsCenter", Health::Fail, error.to_string()).fix(
                "open Systems Manager > OpsCenter once in us-east-1 to set it up, and grant ssm:DescribeOpsItems to the credentials in use",
            )
        }
    }
}

async fn kill_switch(clients: &Clients, stack: &Stack) -> Line {
    let check = "kill switch";
    let Some(name) = stack.kill_switch() else {
        return line(
            check,
            Health::Fail,
            "the stack names no kill switch parameter",
        )
        .fix("sam deploy the current template");
    };
    match clients.ssm.get_parameter().name(&name).send().await {
        Ok(parameter) => {
            let value = parameter
                .parameter()
                .and_then(|p| p.value())
                .unwrap_or_default()
                .trim()
                .to_owned();
            if value.eq_ignore_ascii_case("off") {
                line(check, Health::Warn, format!("{name} is off: no runbook starts"))
                    .fix(format!(
                        "aws ssm put-parameter --overwrite --name {name} --value on (when starts may resume)"
                    ))
            } else {
                line(
                    check,
                    Health::Ok,
                    format!("{name} is {value}: starts allowed"),
                )
            }
        }
        Err(error) => line(
            check,
            Health::Fail,
            port_error("GetParameter", &error).to_string(),
        )
        .fix("sam deploy recreates it; grant ssm:GetParameter on it to the credentials in use"),
    }
}

async fn alarms(clients: &Clients, stack: &Stack) -> Line {
    let check = "alarms";
    let Some(topic) = stack.output_value("AlarmTopicArn") else {
        return line(check, Health::Fail, "the stack names no alarm topic")
            .fix("sam deploy the current template");
    };
    match clients
        .sns
        .list_subscriptions_by_topic()
        .topic_arn(topic)
        .send()
        .await
    {
        Ok(listed) => {
            let subscriptions = listed.subscriptions();
            let confirmed = subscriptions
                .iter()
                .filter(|s| {
                    s.subscription_arn()
                        .is_some_and(|arn| arn.starts_with("arn:"))
                })
                .count();
            let pending = subscriptions.len() - confirmed;
            match (confirmed, pending) {
                (0, 0) => line(check, Health::Fail, format!("no one subscribes to {topic}"))
                    .fix(format!(
                        "aws sns subscribe --topic-arn {topic} --protocol email --notification-endpoint <you> (or the AlarmEmail parameter)"
                    )),
                (0, _) => line(
                    check,
                    Health::Warn,
                    format!("{topic}: {pending} subscription(s) not confirmed"),
                )
                .fix("confirm the subscription from the email AWS sent"),
                (n, _) => line(
                    check,
                    Health::Ok,
                    format!("{topic}: {}", crate::output::plural(n, "confirmed subscriber")),
                ),
            }
        }
        Err(error) => line(
            check,
            Health::Fail,
            port_error("ListSubscriptionsByTopic", &error).to_string(),
        )
        .fix("grant sns:ListSubscriptionsByTopic on the topic to the credentials in use"),
    }
}

async fn mappings(clients: &Clients, stack: &Stack) -> Line {
    use tarem_shared::ports::MappingStore;
    let check = "mappings";
    let table = stack.mapping_table();
    let store = tarem_shared::aws::dynamodb::DynamoMappings::new(clients.dynamodb.clone(), &table);
    let items = match store.list().await {
        Ok(items) => items,
        Err(error) => return line(check, Health::Fail, error.to_string()),
    };
    let safety = match stack.lifecycle() {
        Ok(config) => config.map(|c| c.safety),
        Err(error) => {
            return line(check, Health::Fail, error.to_string())
                .fix("correct the stack's Tuning parameter and sam deploy");
        }
    };
    if items.is_empty() {
        return line(
            check,
            Health::Warn,
            format!("{table} holds no mappings: nothing is remediated"),
        )
        .fix("tarem mapping add, or tarem mapping import --pack (README, Starter packs)");
    }
    let checked = match crate::mappings::validate(&items, None, safety.as_ref()).await {
        Ok(checked) => checked,
        Err(error) => return line(check, Health::Fail, error.to_string()),
    };
    let count = crate::output::plural(items.len(), "mapping");
    if !checked.problems.is_empty() {
        let first = &checked.problems[0];
        line(
            check,
            Health::Fail,
            format!(
                "{count}, {}: {:?} `{}` {}",
                crate::output::plural(checked.problems.len(), "problem"),
                first.check,
                first.field,
                first.message
            ),
        )
        .fix("tarem mapping validate lists every one; fix the mapping or the stack's allowlists (AllowedAutomationDocuments, AutomationRoleArns)")
    } else if !checked.notes.is_empty() {
        let first = &checked.notes[0];
        line(
            check,
            Health::Warn,
            format!(
                "{count}; the stack would block {} awaiting approval: {:?} {}",
                crate::output::plural(checked.notes.len(), "one"),
                first.check,
                first.message
            ),
        )
        .fix("add the document or role to the stack's allowlists before enabling it")
    } else {
        line(
            check,
            Health::Ok,
            format!("{count}, each agreeing with the stack's allowlists"),
        )
    }
}

/// The lines as text: a mark, the check, what was found, and on the next line what to do.
pub fn text(lines: &[Line]) -> String {
    let mut out = vec![];
    for line in lines {
        let mark = match line.health {
            Health::Ok => "ok  ",
            Health::Warn => "warn",
            Health::Fail => "FAIL",
            Health::Skipped => "-   ",
        };
        out.push(format!("{mark}  {:<13} {}", line.check, line.said));
        if let Some(fix) = &line.fix {
            out.push(format!("      {:<13} → {fix}", ""));
        }
    }
    out.join("\n")
}
