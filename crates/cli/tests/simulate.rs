//! `tarem simulate` as users run it: the binary, its exit codes and its output.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tarem(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tarem"))
        .current_dir(repo())
        .args(args)
        .output()
        .expect("the tarem binary runs")
}

fn json_run(args: &[&str]) -> Value {
    let output = tarem(args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("--output json prints one JSON object")
}

#[test]
fn the_readme_command_tells_the_seed_story() {
    let output = tarem(&["simulate", "--mappings", "events/mappings.json", "events/"]);
    assert!(output.status.success());
    let story = String::from_utf8(output.stdout).unwrap();
    for line in [
        "episode    remediating: new episode; attempt 1 of 3: AWS-DisablePublicAccessForSecurityGroup in ap-southeast-2",
        "automation 00000001-0000-4000-8000-000000000001 started: AWS-DisablePublicAccessForSecurityGroup in ap-southeast-2 with {\"AutomationAssumeRole\":[\"arn:aws:iam::123456789012:role/TaremAutomationRole\"],\"GroupId\":[\"sg-0a1b2c3d4e5f67890\"]}",
        "opsitem    oi-000000000001 in progress: the runbook succeeded; waiting for Trusted Advisor to confirm",
        "automation none: no runbook is mapped to this check",
        "opsitem    oi-000000000001 resolved\n  episode    fixed: Trusted Advisor reported the resource Green at 2026-11-02T13:41:09.512Z",
        "opsitem    oi-000000000002 resolved\n  episode    fixed: Trusted Advisor reported the resource Green at 2026-11-03T10:01:47.115Z",
        "summary: findings 4 tracked, 0 duplicate, 0 stale, 0 rejected; automations 1 started, 1 succeeded, 0 failed; OpsItems 2 created, 2 resolved, 0 open; episodes 2 fixed",
    ] {
        assert!(story.contains(line), "missing {line:?} in\n{story}");
    }
}

#[test]
fn json_output_counts_and_details_the_run() {
    let report = json_run(&[
        "simulate",
        "--mappings",
        "events/mappings.json",
        "--output",
        "json",
        "events/",
    ]);
    assert_eq!(report["findings"]["tracked"], 4);
    assert_eq!(report["findings"]["stale"], 0);
    assert_eq!(report["findings"]["rejected"], 0);
    assert_eq!(report["automations"]["started"], 1);
    assert_eq!(report["automations"]["succeeded"], 1);
    assert_eq!(report["opsItems"]["created"], 2);
    assert_eq!(report["opsItems"]["resolved"], 2);
    assert_eq!(report["opsItems"]["open"], 0);
    assert_eq!(report["opsItems"]["verifying"], 0);
    assert_eq!(report["episodes"]["fixed"], 2);
    assert_eq!(report["episodes"]["escalated"], 0);
    let automation = &report["automationsDetail"][0];
    assert_eq!(
        automation["document"],
        "AWS-DisablePublicAccessForSecurityGroup"
    );
    assert_eq!(automation["region"], "ap-southeast-2");
    assert_eq!(
        automation["parameters"]["GroupId"][0],
        "sg-0a1b2c3d4e5f67890"
    );
    assert_eq!(automation["outcome"], "Success");
    assert!(automation["clientToken"].as_str().unwrap().len() == 36);
    let item = &report["opsItemsDetail"][0];
    assert_eq!(item["status"], "Resolved");
    assert!(
        item["title"]
            .as_str()
            .unwrap()
            .starts_with("[TA] [Security groups should not allow")
    );
    assert_eq!(
        item["operationalData"]["tarem:automation"]["status"],
        "Success"
    );
}

/// A runbook that fails every time: the episode plays out on the simulated clock (each next
/// attempt after the cool-down) until the attempt cap, and its OpsItem is left open for a person.
#[test]
fn a_runbook_that_keeps_failing_is_escalated_with_its_ops_item_open() {
    let report = json_run(&[
        "simulate",
        "--mappings",
        "events/mappings.json",
        "--outcome",
        "AWS-DisablePublicAccessForSecurityGroup=Failed",
        "--output",
        "json",
        "events/01-security-group-port-22-open.json",
    ]);
    assert_eq!(report["automations"]["started"], 3);
    assert_eq!(report["automations"]["failed"], 3);
    assert_eq!(report["opsItems"]["created"], 1);
    assert_eq!(report["opsItems"]["open"], 1);
    assert_eq!(report["episodes"]["escalated"], 1);
    let data = &report["opsItemsDetail"][0]["operationalData"];
    assert_eq!(data["tarem:automation"]["status"], "Failed");
    assert_eq!(data["tarem:remediation"]["state"], "escalated");
    assert!(
        data["tarem:remediation"]["detail"]
            .as_str()
            .unwrap()
            .contains("a person must"),
        "{data}"
    );
    // Without settling, the run ends after the first failure, holding for the cool-down.
    let at_once = json_run(&[
        "simulate",
        "--mappings",
        "events/mappings.json",
        "--outcome",
        "AWS-DisablePublicAccessForSecurityGroup=Failed",
        "--settle",
        "0",
        "--output",
        "json",
        "events/01-security-group-port-22-open.json",
    ]);
    assert_eq!(at_once["automations"]["started"], 1);
    assert_eq!(at_once["episodes"]["held"], 1);
}

#[test]
fn rejected_events_are_listed_and_the_run_still_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a-not-json.json"), "{ nope").unwrap();
    std::fs::write(
        dir.path().join("b-wrong-source.json"),
        r#"{"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification", "detail": {}}"#,
    )
    .unwrap();
    let report = json_run(&["simulate", "--output", "json", dir.path().to_str().unwrap()]);
    assert_eq!(report["findings"]["rejected"], 2);
    let reasons: Vec<&str> = report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert!(reasons[0].starts_with("not JSON"), "{reasons:?}");
    assert!(
        reasons[1].contains("not a Trusted Advisor check item event"),
        "{reasons:?}"
    );
    assert!(
        report["rejected"][1]["source"]
            .as_str()
            .unwrap()
            .ends_with("b-wrong-source.json")
    );
}

#[test]
fn a_far_future_event_is_listed_as_rejected_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let seed =
        std::fs::read_to_string(repo().join("events/01-security-group-port-22-open.json")).unwrap();
    let mut event: Value = serde_json::from_str(&seed).unwrap();
    event["detail"]["check-item-detail"]["Last Updated Time"] = json!("2099-01-01T00:00:00.000Z");
    std::fs::write(dir.path().join("future.json"), event.to_string()).unwrap();
    let report = json_run(&["simulate", "--output", "json", dir.path().to_str().unwrap()]);
    assert_eq!(report["findings"]["rejected"], 1);
    assert_eq!(report["findings"]["tracked"], 0);
    let reason = report["rejected"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("Last Updated Time") && reason.contains("2099-01-01"),
        "{reason}"
    );
    assert!(reason.contains("future"), "{reason}");
}

#[test]
fn unusable_arguments_exit_2_naming_the_file_and_problem() {
    let missing = tarem(&["simulate", "events/does-not-exist.json"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("events/does-not-exist.json"));

    let dir = tempfile::tempdir().unwrap();
    let mappings = dir.path().join("mappings.yaml");
    std::fs::write(
        &mappings,
        "- checkName: ok\n  ssmAutomationDocument: AWS-X\n- checkName: broken\n  ssmAutomationDocument: AWS-Y\n  regexPattern: '(a)(b)'\n",
    )
    .unwrap();
    let broken = tarem(&[
        "simulate",
        "--mappings",
        mappings.to_str().unwrap(),
        "events/",
    ]);
    assert_eq!(broken.status.code(), Some(2));
    let message = String::from_utf8_lossy(&broken.stderr);
    assert!(
        message.contains(
            "mappings.yaml: item 2: mapping \"broken\": `regexPattern` has 2 capture groups"
        ),
        "{message}"
    );

    let bad_outcome = tarem(&["simulate", "--outcome", "AWS-X=Running", "events/"]);
    assert_eq!(bad_outcome.status.code(), Some(2));
}

#[test]
fn safety_decisions_are_in_the_story_and_the_json() {
    let seed =
        std::fs::read_to_string(repo().join("events/01-security-group-port-22-open.json")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("1.json"), seed).unwrap();
    let mappings: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("events/mappings.json")).unwrap(),
    )
    .unwrap();
    let mut approval = mappings.clone();
    approval[0]["mode"] = json!({"S": "approval"});
    let mapping_file = dir.path().join("approval.json");
    std::fs::write(&mapping_file, approval.to_string()).unwrap();
    let folder = dir.path().join("1.json");
    let args = [
        "simulate",
        "--mappings",
        mapping_file.to_str().unwrap(),
        folder.to_str().unwrap(),
    ];
    let report = json_run(&[&args[..], &["--output", "json"]].concat());
    assert_eq!(report["automations"]["started"], 0);
    let skipped = &report["skipped"][0];
    assert_eq!(skipped["control"], "approval");
    assert!(
        skipped["finding"]
            .as_str()
            .unwrap()
            .contains("sg-0a1b2c3d4e5f67890")
    );
    assert!(
        skipped["reason"]
            .as_str()
            .unwrap()
            .contains("aws ssm start-automation-execution"),
        "{skipped}"
    );
    assert_eq!(report["episodes"]["held"], 1);
    let story = String::from_utf8(tarem(&args).stdout).unwrap();
    assert!(story.contains("held       approval: "), "{story}");
}

/// The backtest: the raw-event audit log exported as log records (the events, in arrival order,
/// which need not be their time order) replays to the same report as `tarem simulate` on the
/// same events, per check included.
#[test]
fn a_backtest_from_an_audit_log_export_matches_the_simulation_of_its_events() {
    let mut records = vec![];
    let mut names: Vec<PathBuf> = std::fs::read_dir(repo().join("events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_name().is_some_and(|n| n != "mappings.json")
        })
        .collect();
    names.sort();
    for (i, path) in names.iter().enumerate() {
        let event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        // CloudWatch Logs' record: the event whole, as text, in `message`.
        records.push(
            json!({"timestamp": 1_793_613_600_000_i64 + i as i64, "message": event.to_string()}),
        );
    }
    // Delivered out of order: the backtest puts them back in their time order.
    records.reverse();
    let export = std::env::temp_dir().join(format!("tarem-audit-{}.jsonl", std::process::id()));
    std::fs::write(
        &export,
        records
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();

    let simulated = json_run(&[
        "simulate",
        "--mappings",
        "events/mappings.json",
        "--output",
        "json",
        "events/",
    ]);
    let backtest = json_run(&[
        "simulate",
        "--mappings",
        "events/mappings.json",
        "--output",
        "json",
        "--from-logs",
        export.to_str().unwrap(),
    ]);
    assert_eq!(backtest, simulated);
    let sg = &backtest["byCheck"]["Security groups should not allow unrestricted access to ports with high risk"];
    assert_eq!(sg["started"], 1, "{sg}");
    assert_eq!(sg["episodes"]["fixed"], 1, "{sg}");
}
