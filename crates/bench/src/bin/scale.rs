//! `scripts/bench --scale`: the loop's work at 10,000, 50,000 and 100,000 findings, and the
//! monthly bill it projects.
//!
//! The handlers' own code (a release build) runs on the in-memory backend, whose tables keep the
//! stack's sparse indexes, so every port call the functions would make is counted. One run per
//! size: N Red findings arrive (half of a mapped check whose runbook succeeds, half of an
//! unmapped one), then days on the stack's schedules: Trusted Advisor refreshes each finding
//! weekly (a seventh of them a day, spread over the hours; the mapped ones come back Green,
//! fixed), one finding in a hundred is new each day, the mapped check itself refreshes daily
//! (the findings sweep reads it), the episode sweep runs every 15 minutes, the execution sweep
//! every 30 and the findings sweep every 6 hours. The first two days settle the arrival (its
//! fixes' verify deadlines fall in them); the third is counted. Printed per size: the wall
//! time and CPU of the whole run, the
//! memory the backend holds per finding, the DynamoDB reads and writes per finding for the day,
//! and the reads of one episode sweep. Then the bill for 1 × 1,000, 100 × 1,000 and
//! 1,000 × 1,000 findings, from the largest run's per-finding figures and AWS's prices.
//!
//! Controls that pace starts (the breaker, the start interval, the OpsItem budget) are opened
//! wide: they bound how fast work happens, and this counts how much there is.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use tarem_shared::clock::{Clock, ManualClock};
use tarem_shared::finding::format_time;
use tarem_shared::lifecycle::LifecycleConfig;
use tarem_shared::local::LocalLoop;
use tarem_shared::memory::InMemoryAutomation;
use tarem_shared::ports::{CheckInfo, CheckResult};
use tarem_shared::safety::SafetyConfig;

const MAPPED: &str = "Security groups should not allow unrestricted access to ports with high risk";
const UNMAPPED: &str = "EC2 instances should not have a public IPv4 address";
const DOCUMENT: &str = "AWS-DisablePublicAccessForSecurityGroup";
const ROLE: &str = "arn:aws:iam::123456789012:role/TaremAutomationRole";
const ACCOUNT: &str = "123456789012";
/// The tracker stream mapping's batch size (template.yaml).
const STREAM_BATCH: usize = 10;

/// The port operations that are DynamoDB calls: reads, and writes (each write also counts one
/// index write where the row sits in a sparse index: an upper bound).
const DYNAMODB_READS: &[&str] = &[
    "tracker.get",
    "tracker.flagged_keys",
    "tracker.pending",
    "tracker.unindexed",
    "executions.get",
    "executions.get_episode",
    "executions.due_episodes",
    "executions.open_episodes",
    "executions.episodes",
    "executions.sweep_state",
    "executions.unfinished",
    "counters.value",
    "mappings.get",
    "mappings.list",
    "mappings.check_names",
];
const DYNAMODB_WRITES: &[&str] = &[
    "tracker.put_if_newer",
    "tracker.mark_pending",
    "tracker.settled",
    "executions.put_episode",
    "executions.archive_episode",
    "executions.record_started",
    "executions.record_status",
    "executions.set_sweep_state",
    "counters.increment",
    "counters.increment_below",
    "counters.decrement",
    "locks.acquire",
    "locks.release",
    "locks.abandon",
];
/// Writes to a table with a sparse index the row may sit in (one more write unit each).
const INDEXED_WRITES: &[&str] = &[
    "tracker.put_if_newer",
    "tracker.mark_pending",
    "tracker.settled",
    "executions.put_episode",
];

/// Prices in us-east-1 (docs/operations.md, "Cost", cites the pages).
mod price {
    pub const LAMBDA_GB_SECOND_ARM: f64 = 0.000_013_333_4;
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    pub const DYNAMODB_WRITE_UNIT: f64 = 0.625 / 1e6;
    pub const DYNAMODB_READ_UNIT: f64 = 0.125 / 1e6;
    pub const OPS_ITEM: f64 = 2.97 / 1000.0;
    pub const OPS_CENTER_CALL: f64 = 0.039 / 1000.0;
    pub const AUTOMATION_STEP: f64 = 0.002;
    /// An event sent to another account's bus (an organisation's members to the hub); AWS
    /// services' events on an account's own default bus are free.
    pub const CROSS_ACCOUNT_EVENT: f64 = 1.00 / 1e6;
    /// Alarms (16, 10 free), metrics (~20, 10 free), the dashboard, the key: one stack's.
    pub const FIXED_PER_STACK: f64 = 0.6 + 3.0 + 1.0 + 3.0;
}

/// Billed time per invocation and per AWS call, in seconds: in-region calls take a few
/// milliseconds each; the CPU between them is what scripts/bench measures (about 1 ms).
const SECONDS_PER_INVOCATION: f64 = 0.005;
const SECONDS_PER_CALL: f64 = 0.008;
/// The runbook's steps per start (AWS-DisablePublicAccessForSecurityGroup).
const STEPS_PER_START: f64 = 3.0;

fn event(check: &str, resource: &str, status: &str, time: DateTime<Utc>) -> Value {
    json!({
        "version": "0",
        "id": format!("{resource}-{}", time.timestamp_millis()),
        "detail-type": "Trusted Advisor Check Item Refresh Notification",
        "source": "aws.trustedadvisor",
        "account": ACCOUNT,
        "time": format_time(time + Duration::seconds(90)),
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "check-name": check,
            "check-item-detail": {
                "Status": status, "Region": "eu-west-1", "Resource": resource,
                "Last Updated Time": format_time(time),
            },
            "status": if status == "Green" { "OK" } else { "ERROR" },
            "resource_id": resource,
        }
    })
}

fn resource(n: usize) -> (String, &'static str) {
    if n.is_multiple_of(2) {
        (
            format!("arn:aws:ec2:eu-west-1:{ACCOUNT}:security-group/sg-{n:017x}"),
            MAPPED,
        )
    } else {
        (
            format!("arn:aws:ec2:eu-west-1:{ACCOUNT}:instance/i-{n:017x}"),
            UNMAPPED,
        )
    }
}

/// This process's CPU so far, in seconds.
fn cpu_seconds() -> f64 {
    tarem_bench::cpu_micros(std::process::id()) as f64 / 1e6
}

/// This process's resident memory now, in KB.
fn rss_kb() -> u64 {
    tarem_bench::memory_kb(std::process::id(), "VmRSS")
}

fn counts(local: &LocalLoop) -> BTreeMap<&'static str, u64> {
    DYNAMODB_READS
        .iter()
        .chain(DYNAMODB_WRITES)
        .chain(&[
            "ops_center.create",
            "ops_center.update",
            "ops_center.status",
            "automation.start",
            "automation.describe",
            "automation.tags",
            "automation.find_by_client_token",
            "kill_switch.starts_allowed",
            "advisor.checks",
            "advisor.check_result",
        ])
        .map(|op| (*op, local.faults.calls(op)))
        .collect()
}

fn since(after: &BTreeMap<&str, u64>, before: &BTreeMap<&str, u64>, ops: &[&str]) -> u64 {
    ops.iter().map(|op| after[op] - before[op]).sum()
}

/// One size's figures.
struct Run {
    findings: usize,
    wall: std::time::Duration,
    cpu_seconds: f64,
    kb_per_finding: f64,
    /// The steady day's calls, by operation.
    day: BTreeMap<&'static str, u64>,
    invocations: f64,
    /// Trusted Advisor's and SSM's events of the day.
    events: f64,
    episode_sweep_reads: Vec<u64>,
}

impl Run {
    fn day(&self, ops: &[&str]) -> f64 {
        ops.iter().map(|op| self.day[op] as f64).sum()
    }

    fn aws_calls(&self) -> f64 {
        self.day.values().sum::<u64>() as f64
    }
}

async fn run(findings: usize) -> Run {
    let started = std::time::Instant::now();
    let cpu_before = cpu_seconds();
    let rss_before = rss_kb();
    let t0 = Utc::now() - Duration::days(3);
    let clock = Arc::new(ManualClock::new(t0));
    let config = LifecycleConfig {
        safety: SafetyConfig {
            allowed_documents: vec![DOCUMENT.into()],
            allowed_roles: vec![ROLE.into()],
            breaker_limit: u64::MAX,
            monthly_ops_item_budget: u64::MAX,
            start_interval: Duration::zero(),
            ..SafetyConfig::default()
        },
        ..LifecycleConfig::default()
    };
    let local = LocalLoop::with_config(clock.clone(), InMemoryAutomation::default(), config);
    local
        .mappings
        .put(&json!({
            "checkName": MAPPED, "ssmAutomationDocument": DOCUMENT,
            "automationParameters": {"GroupId": ["$resourceId"], "AutomationAssumeRole": [ROLE]},
            "regexPattern": "(sg-\\w+)", "automationStatus": true
        }))
        .unwrap();

    // A fresh stack: its first sweep has nothing written before the indexes to migrate.
    local.sweep_episodes().await.unwrap();

    // Every finding arrives Red; the stream goes to the results handler in Lambda's batches.
    for n in 0..findings {
        arrive(&local, n, t0).await;
        if n % STREAM_BATCH == STREAM_BATCH - 1 {
            local.deliver_stream().await;
        }
    }
    local.deliver_stream().await;
    local.finish_automations(|_| ("Success".into(), None)).await;

    // Two days settle the arrival (the fixes' verification deadlines fall in them, a day after
    // the runbooks ended); the third is the steady day that is counted.
    let mut day = Day {
        findings,
        refreshed: 0,
        arrived: findings,
        events: 0,
        episode_sweep_reads: vec![],
    };
    day.run(&local, &clock).await;
    day.run(&local, &clock).await;
    let before = counts(&local);
    day.events = 0;
    day.episode_sweep_reads.clear();
    day.run(&local, &clock).await;
    let after = counts(&local);
    let day_calls: BTreeMap<&'static str, u64> =
        after.iter().map(|(op, n)| (*op, n - before[op])).collect();
    let rss_after = rss_kb();
    // Lambda invocations of the day: check-tracker per event; the results handler per stream
    // batch; the execution handler per status event; the schedules.
    let starts = day_calls["automation.start"] as f64;
    let events = day.events as f64;
    let invocations = events + (events / STREAM_BATCH as f64).ceil() + starts + 96.0 + 48.0 + 4.0;
    Run {
        findings,
        wall: started.elapsed(),
        cpu_seconds: cpu_seconds() - cpu_before,
        kb_per_finding: rss_after.saturating_sub(rss_before) as f64 / findings as f64,
        day: day_calls,
        invocations,
        events: events + starts,
        episode_sweep_reads: day.episode_sweep_reads,
    }
}

/// The mapped check as the Support API describes it (the reconcile sweeps mapped checks only).
fn check_info() -> CheckInfo {
    CheckInfo {
        id: "sg".into(),
        name: MAPPED.into(),
        columns: vec!["Status".into(), "Region".into(), "Resource".into()],
    }
}

/// Finding `n` arrives Red.
async fn arrive(local: &LocalLoop, n: usize, time: DateTime<Utc>) {
    let (resource, check) = resource(n);
    local
        .track(&event(check, &resource, "Red", time))
        .await
        .unwrap();
}

/// The stack's schedules over one day.
struct Day {
    findings: usize,
    /// Findings refreshed so far (they refresh in turn).
    refreshed: usize,
    /// Findings that exist so far (the first `findings` arrived before the first day).
    arrived: usize,
    events: usize,
    episode_sweep_reads: Vec<u64>,
}

impl Day {
    /// Trusted Advisor refreshes a seventh of the findings over the day (a mapped finding comes
    /// back Green: its fix held; an unmapped one is still Red), and one in a hundred is new:
    /// it arrives Red, and half of those are mapped and remediated.
    async fn run(&mut self, local: &LocalLoop, clock: &ManualClock) {
        let day_start = clock.now();
        let (refresh_from, arrive_from) = (self.refreshed, self.arrived);
        let (per_day, new_per_day) = (self.findings / 7, self.findings / 100);
        for quarter in 1..=96usize {
            let now = day_start + Duration::minutes(15 * quarter as i64);
            clock.set(now);
            while self.refreshed < refresh_from + per_day * quarter / 96 {
                let (resource, check) = resource(self.refreshed % self.arrived);
                let status = if check == MAPPED { "Green" } else { "Red" };
                let seen = now - Duration::minutes(5);
                local
                    .track(&event(check, &resource, status, seen))
                    .await
                    .unwrap();
                self.events += 1;
                self.refreshed += 1;
            }
            while self.arrived < arrive_from + new_per_day * quarter / 96 {
                arrive(local, self.arrived, now - Duration::minutes(5)).await;
                self.events += 1;
                self.arrived += 1;
            }
            local.deliver_stream().await;
            local.finish_automations(|_| ("Success".into(), None)).await;
            let sweep_before = counts(local);
            local.sweep_episodes().await.unwrap();
            let sweep_after = counts(local);
            self.episode_sweep_reads
                .push(since(&sweep_after, &sweep_before, DYNAMODB_READS));
            local.deliver_stream().await;
            if quarter % 2 == 0 {
                let _ = local.sweep_executions(Duration::minutes(30)).await;
            }
            if quarter % 24 == 0 {
                // The mapped check refreshed at the day's start and flagged nothing: every
                // runbook had fixed its resource. The sweep clears what the events have not.
                let answer = CheckResult {
                    timestamp: format_time(day_start),
                    flagged: vec![],
                };
                local.advisor.set_check(check_info(), answer);
                local.findings_sweep(false).sweep(false).await.unwrap();
                local.deliver_stream().await;
            }
        }
    }
}

/// The monthly bill of `accounts × per_account` findings, from a run's per-finding day.
fn bill(run: &Run, accounts: usize, per_account: usize) -> BTreeMap<&'static str, f64> {
    let scale = (accounts * per_account) as f64 / run.findings as f64 * 30.0;
    let writes = run.day(DYNAMODB_WRITES) + run.day(INDEXED_WRITES);
    let reads = run.day(DYNAMODB_READS);
    let gb_seconds =
        (run.invocations * SECONDS_PER_INVOCATION + run.aws_calls() * SECONDS_PER_CALL) * 0.25;
    let ops_calls = run.day(&["ops_center.update", "ops_center.status"]);
    BTreeMap::from([
        (
            "DynamoDB",
            scale * (writes * price::DYNAMODB_WRITE_UNIT + reads * price::DYNAMODB_READ_UNIT),
        ),
        (
            "Lambda",
            scale
                * (run.invocations * price::LAMBDA_REQUEST
                    + gb_seconds * price::LAMBDA_GB_SECOND_ARM),
        ),
        (
            "OpsCenter",
            scale
                * (run.day(&["ops_center.create"]) * price::OPS_ITEM
                    + ops_calls * price::OPS_CENTER_CALL),
        ),
        (
            "Automation",
            scale * run.day(&["automation.start"]) * STEPS_PER_START * price::AUTOMATION_STEP,
        ),
        (
            "EventBridge",
            if accounts > 1 {
                scale * run.events * price::CROSS_ACCOUNT_EVENT
            } else {
                0.0
            },
        ),
        ("fixed (one stack)", price::FIXED_PER_STACK),
    ])
}

fn main() {
    let mut sizes = vec![10_000usize, 50_000, 100_000];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--findings" => {
                sizes = args
                    .next()
                    .expect("--findings N[,N…]")
                    .split(',')
                    .map(|n| n.parse().expect("a number of findings"))
                    .collect()
            }
            other => panic!("unknown argument {other}; usage: tarem-scale [--findings N,N,…]"),
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "| Findings | Wall | CPU per finding | Memory per finding | DynamoDB reads per finding-day | writes per finding-day | reads per episode sweep (median, max) | runbook starts in the day |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut largest = None;
    for findings in sizes {
        let run = runtime.block_on(run(findings));
        let mut sweeps = run.episode_sweep_reads.clone();
        sweeps.sort_unstable();
        println!(
            "| {} | {:.1} s | {:.0} µs | {:.2} KB | {:.2} | {:.2} | {}, {} | {} |",
            run.findings,
            run.wall.as_secs_f64(),
            run.cpu_seconds * 1e6 / findings as f64,
            run.kb_per_finding,
            run.day(DYNAMODB_READS) / findings as f64,
            (run.day(DYNAMODB_WRITES) + run.day(INDEXED_WRITES)) / findings as f64,
            sweeps[sweeps.len() / 2],
            sweeps.last().copied().unwrap_or(0),
            run.day["automation.start"],
        );
        largest = Some(run);
    }
    let run = largest.expect("at least one size");
    println!();
    println!(
        "Calls in the steady day of {} findings, by operation:",
        run.findings
    );
    for (op, n) in run.day.iter().filter(|(_, n)| **n > 0) {
        println!("  {op:<34} {n}");
    }
    println!();
    println!(
        "| Monthly bill (us-east-1) | DynamoDB | Lambda | OpsCenter | Automation | EventBridge | fixed (one stack) | total |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (accounts, per_account) in [(1usize, 1000usize), (100, 1000), (1000, 1000)] {
        let bill = bill(&run, accounts, per_account);
        let total: f64 = bill.values().sum();
        println!(
            "| {accounts} × {per_account} findings | ${:.2} | ${:.2} | ${:.2} | ${:.2} | ${:.2} | ${:.2} | ${total:.2} |",
            bill["DynamoDB"],
            bill["Lambda"],
            bill["OpsCenter"],
            bill["Automation"],
            bill["EventBridge"],
            bill["fixed (one stack)"],
        );
    }
    println!(
        "(Lambda: {SECONDS_PER_INVOCATION} s per invocation and {SECONDS_PER_CALL} s per AWS call at 256 MB, before the free tier; DynamoDB: one request unit per call and one more for a write to a table with a sparse index; EventBridge: the members' events sent to one hub's bus when there are several accounts; OpsCenter: one OpsItem per new flagged finding, mapped or not (UnmappedOpsItems=all); prices: docs/operations.md, Cost.)"
    );
}
