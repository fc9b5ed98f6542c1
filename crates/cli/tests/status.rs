//! `tarem status` against moto tables filled the way the functions fill them: one flagged
//! episode being remediated, one escalated, one fixed, a breaker counting starts and the month's
//! OpsItems; the kill switch (SSM) unreachable, said as unknown rather than failing the screen.

use serde_json::Value;
use tarem_shared::aws::dynamodb::{DynamoAccounts, DynamoCounters, DynamoExecutions};
use tarem_shared::episode::{Attempt, Episode, Stage};
use tarem_shared::finding::{Status, format_time};
use tarem_shared::ports::{
    AccountRecord, AccountRegistry, AccountStanding, AdvisorAccess, Counters, ExecutionStore,
};
use tarem_shared::safety::{breaker_counter, ops_item_counter};

mod support;
use support::*;

/// One clock for the whole test: an episode that read its own `Utc::now()` would be a few
/// milliseconds younger than its fix time and make "6 hours to fix" 5.9997.
fn episode(
    key: &str,
    check: &str,
    stage: Stage,
    flagged_hours_ago: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> Episode {
    Episode {
        finding_key: key.into(),
        version: 1,
        episode: key.into(),
        flagged_since: format_time(now - chrono::Duration::hours(flagged_hours_ago)),
        check_name: check.into(),
        account: None,
        resource: format!("arn:aws:ec2:eu-west-1:123456789012:security-group/{key}"),
        status: Status::Red,
        stage,
        ops_item_id: None,
        ops_item_owed: false,
        attempts: vec![],
        previous_start: None,
        updated_at: format_time(now),
        expires_at: 0,
        due_at: None,
        recheck_at: None,
        check_ops_item: false,
        approval: None,
    }
}

#[tokio::test]
async fn status_reads_the_loop_from_the_tables() {
    let client = client().await;
    let table = table_keyed_by(&client, "automationExecutionId").await;
    let executions = DynamoExecutions::new(client.clone(), &table);
    let counters = DynamoCounters::new(client.clone(), &table);
    let now = chrono::Utc::now();
    let mut running = episode("sg-1", "SG check", Stage::Remediating, 3, now);
    running.attempts.push(Attempt {
        number: 1,
        client_token: "t1".into(),
        started_at: (now - chrono::Duration::hours(2)).timestamp(),
        document: "AWS-DisablePublicAccessForSecurityGroup".into(),
        region: "eu-west-1".into(),
        max_attempts: 3,
        cool_down_minutes: 30,
        execution_id: Some("e1".into()),
        status: None,
        ended_at: None,
        failure: None,
        lock: None,
    });
    let escalated = episode(
        "sg-2",
        "SG check",
        Stage::Escalated {
            reason: "cap".into(),
        },
        30,
        now,
    );
    let fixed = episode(
        "sg-3",
        "SG check",
        Stage::Fixed {
            at: format_time(now - chrono::Duration::hours(1)),
        },
        7,
        now,
    );
    for e in [&running, &escalated, &fixed] {
        assert!(executions.put_episode(e).await.unwrap());
    }
    let expires = (now + chrono::Duration::days(1)).timestamp();
    // The CLI reads the counters at its own clock, a moment later: fill the bucket it may have
    // crossed into (next hour, next month) as well, so the test does not depend on the minute.
    let moments = [now, now + chrono::Duration::seconds(30)];
    let breakers: std::collections::BTreeSet<_> = moments
        .iter()
        .map(|at| breaker_counter("", "SG check", *at, chrono::Duration::minutes(60)))
        .collect();
    let budgets: std::collections::BTreeSet<_> =
        moments.iter().map(|at| ops_item_counter("", *at)).collect();
    for breaker in breakers {
        for _ in 0..3 {
            counters.increment(&breaker, expires).await.unwrap();
        }
    }
    for budget in budgets {
        counters.increment(&budget, expires).await.unwrap();
    }

    let unreachable = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", socket.local_addr().unwrap())
    };
    let output = bare_tarem()
        .args([
            "status",
            "--execution-table",
            &table,
            "--endpoint-url",
            &endpoint(),
            "--breaker-limit",
            "3",
            "--output",
            "json",
        ])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_ENDPOINT_URL_SSM", &unreachable)
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let status: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(status["flaggedByCheck"]["SG check"], 2, "{status}");
    assert_eq!(status["episodes"]["remediating"], 1);
    assert_eq!(status["episodes"]["escalated"], 1);
    assert_eq!(status["episodes"]["fixed"], 1);
    assert_eq!(status["last24Hours"]["starts"], 1);
    assert_eq!(status["last24Hours"]["escalated"], 1);
    assert_eq!(status["last24Hours"]["fixed"], 1);
    assert_eq!(status["timeToFix"]["fixes"], 1);
    assert_eq!(status["timeToFix"]["p50Hours"], 6.0);
    assert_eq!(status["breakers"][0]["check"], "SG check");
    assert_eq!(status["breakers"][0]["open"], true);
    assert_eq!(status["opsItems"]["thisMonth"], 1);
    assert!(
        status["killSwitch"]
            .as_str()
            .unwrap()
            .starts_with("unknown: "),
        "{status}"
    );

    let screen = bare_tarem()
        .args([
            "status",
            "--execution-table",
            &table,
            "--endpoint-url",
            &endpoint(),
        ])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_ENDPOINT_URL_SSM", &unreachable)
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .unwrap();
    let said = text(&screen);
    assert!(said.contains("flagged now    2 findings"), "{said}");
    assert!(said.contains("time to fix    p50 6.0 h"), "{said}");
}

/// An organisation's table: the hub's finding runs, a member's is held because its member role
/// refused the hub. `status --account` counts one account; `accounts` says what keeps the hub
/// out of the member.
#[tokio::test]
async fn status_of_one_account_and_the_accounts_coverage() {
    let client = client().await;
    let table = table_keyed_by(&client, "automationExecutionId").await;
    let executions = DynamoExecutions::new(client.clone(), &table);
    let now = chrono::Utc::now();
    let mut hub = episode("sg-1", "SG check", Stage::Remediating, 3, now);
    hub.account = Some("111122223333".into());
    let mut member = episode(
        "sg-2",
        "SG check",
        Stage::Held {
            control: "member-account".into(),
            reason: "the hub cannot act in account 444455556666: AccessDenied on sts:AssumeRole"
                .into(),
            until: None,
        },
        1,
        now,
    );
    member.account = Some("444455556666".into());
    for e in [&hub, &member] {
        assert!(executions.put_episode(e).await.unwrap());
    }
    // The account registry, as check-tracker writes it: the hub's latest event and sweep.
    let registry = DynamoAccounts::new(client.clone(), &table);
    registry
        .saw_event("111122223333", 1_796_212_800)
        .await
        .unwrap();
    registry
        .record_sweep(&AccountRecord {
            swept_at: Some(1_796_213_700),
            standing: Some(AccountStanding::Ready),
            advisor: Some(AdvisorAccess::Support),
            member_version: Some("1".into()),
            flagged: 1,
            ..AccountRecord::new("111122223333")
        })
        .await
        .unwrap();
    let run = |args: &[&str]| {
        let output = bare_tarem()
            .args(args)
            .args(["--execution-table", &table, "--endpoint-url", &endpoint()])
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:9")
            .env("AWS_MAX_ATTEMPTS", "1")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        output
    };
    let one: Value = serde_json::from_slice(
        &run(&["status", "--account", "444455556666", "--output", "json"]).stdout,
    )
    .unwrap();
    assert_eq!(one["episodes"]["held"], 1, "{one}");
    assert!(one["episodes"].get("remediating").is_none(), "{one}");

    let coverage: Value =
        serde_json::from_slice(&run(&["accounts", "--output", "json"]).stdout).unwrap();
    assert_eq!(coverage[0]["account"], "111122223333");
    assert_eq!(coverage[0]["remediating"], 1);
    assert_eq!(coverage[0]["standing"], "ok");
    assert_eq!(
        coverage[0]["lastEvent"], "2026-12-02T12:00:00Z",
        "{coverage}"
    );
    assert_eq!(coverage[0]["trustedAdvisor"], "support");
    assert_eq!(coverage[0]["memberVersion"], "1");
    assert_eq!(coverage[1]["lastEvent"], Value::Null, "never heard from");
    assert_eq!(coverage[1]["account"], "444455556666");
    assert_eq!(coverage[1]["held"]["member-account"], 1);
    assert!(
        coverage[1]["standing"]
            .as_str()
            .unwrap()
            .starts_with("unreachable: the hub cannot act in account 444455556666"),
        "{coverage}"
    );
    let screen = text(&run(&["accounts"]));
    assert!(screen.contains("444455556666   member"), "{screen}");

    let bad = bare_tarem()
        .args([
            "status",
            "--account",
            "4444",
            "--execution-table",
            &table,
            "--endpoint-url",
            &endpoint(),
        ])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
}

/// `tarem approve` asks as the console does: `UpdateOpsItem` on the episode's OpsItem (found
/// from the finding key in the execution table, or given), which the results handler answers.
#[tokio::test]
async fn approve_asks_on_the_episodes_opsitem_whether_named_by_finding_or_by_opsitem() {
    let client = client().await;
    let table = table_keyed_by(&client, "automationExecutionId").await;
    let executions = DynamoExecutions::new(client.clone(), &table);
    let now = chrono::Utc::now();
    let mut held = episode(
        "sg-1",
        "SG check",
        Stage::Held {
            control: "approval".into(),
            reason: "approval mode".into(),
            until: None,
        },
        1,
        now,
    );
    held.ops_item_id = Some("oi-0123456789ab".into());
    let opsitemless = episode(
        "sg-2",
        "SG check",
        Stage::Flagged {
            reason: "no mapping".into(),
        },
        1,
        now,
    );
    for e in [&held, &opsitemless] {
        assert!(executions.put_episode(e).await.unwrap());
    }
    let ssm = Listener::start(Some("{}"));
    let approve = |target: &str| {
        bare_tarem()
            .args(["approve", target, "--output", "json"])
            .args(["--execution-table", &table, "--endpoint-url", &endpoint()])
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_ENDPOINT_URL_SSM", &ssm.url)
            .env("AWS_MAX_ATTEMPTS", "1")
            .output()
            .unwrap()
    };
    let by_finding = approve("sg-1");
    assert!(by_finding.status.success(), "{}", text(&by_finding));
    let said: Value = serde_json::from_slice(&by_finding.stdout).unwrap();
    assert_eq!(said["opsItem"], "oi-0123456789ab");
    let by_id = approve("oi-fedcba987654");
    assert!(by_id.status.success(), "{}", text(&by_id));
    let calls: Vec<String> = ssm
        .heads()
        .into_iter()
        .filter(|head| head.contains("AmazonSSM.UpdateOpsItem"))
        .collect();
    assert_eq!(calls.len(), 2, "{:?}", ssm.heads());

    for (target, says) in [
        ("sg-2", "has no OpsItem"),
        ("sg-9", "no episode of finding"),
    ] {
        let refused = approve(target);
        assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
        assert!(text(&refused).contains(says), "{}", text(&refused));
    }
    assert_eq!(
        ssm.heads()
            .iter()
            .filter(|h| h.contains("UpdateOpsItem"))
            .count(),
        2,
        "nothing asked when there is nothing to approve"
    );
}
