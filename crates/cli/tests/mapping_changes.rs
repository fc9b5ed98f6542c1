//! `tarem mapping` showing what it changes (the first hour's smaller items): a header and
//! aligned columns, keys in a fixed order, a suggestion for a misspelt check, a diff and
//! `--dry-run` for every change, "1 problem", and a declined import that does not exit 0.

mod support;

use serde_json::Value;
use std::process::{Command, Output};
use support::{MotoStack, text};

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn mapping_commands_show_what_they_change() {
    let stack = MotoStack::deploy(&[(
        "AllowedAutomationDocuments",
        "AWSConfigRemediation-RemoveUnrestrictedSourceIngressRules,AWS-StopRdsInstance",
    )])
    .await;
    let check = "Security groups should not allow unrestricted access to ports with high risk";
    let added = stack.tarem(&[
        "mapping",
        "add",
        "--check-name",
        check,
        "--document",
        "AWSConfigRemediation-RemoveUnrestrictedSourceIngressRules",
        "--param",
        "SecurityGroupId=$resourceId",
        "--param",
        "AutomationAssumeRole=arn:aws:iam::123456789012:role/tarem-example",
        "--regex",
        "(sg-\\w+)",
        "--offline",
    ]);
    assert!(added.status.success(), "{}", text(&added));
    assert!(
        text(&added).contains(&format!("+ {check}")),
        "the diff: {}",
        text(&added)
    );
    let other = stack.tarem(&[
        "mapping",
        "add",
        "--check-name",
        "Amazon RDS Idle DB Instances",
        "--document",
        "AWS-StopRdsInstance",
        "--param",
        "InstanceId=$resourceId",
        "--regex",
        "Instance=([a-z0-9-]+)",
        "--offline",
    ]);
    assert!(other.status.success(), "{}", text(&other));

    let listed = stdout(&stack.tarem(&["mapping", "list"]));
    let lines: Vec<&str> = listed.lines().collect();
    assert!(lines[0].starts_with("MODE"), "{listed}");
    let column = lines[0].find("CHECK").unwrap();
    for line in &lines[1..] {
        assert!(
            line[column..].starts_with("Amazon RDS") || line[column..].starts_with("Security"),
            "the check column lines up under its header, whatever the document's length:\n{listed}"
        );
    }

    let shown = stdout(&stack.tarem(&["mapping", "show", check]));
    let keys: Vec<&str> = shown
        .lines()
        .filter_map(|line| line.trim().strip_prefix('"')?.split('"').next())
        .filter(|key| !key.is_empty())
        .collect::<Vec<_>>();
    let top: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| {
            [
                "automationParameters",
                "automationStatus",
                "checkName",
                "mode",
                "regexPattern",
                "ssmAutomationDocument",
            ]
            .contains(k)
        })
        .collect();
    let mut sorted = top.clone();
    sorted.sort();
    assert_eq!(top, sorted, "keys in a fixed order: {shown}");

    let misspelt = stack.tarem(&["mapping", "show", "Amazon RDS Idle DB Instance"]);
    assert_eq!(misspelt.status.code(), Some(2));
    assert!(
        text(&misspelt).contains("did you mean \"Amazon RDS Idle DB Instances\"?"),
        "{}",
        text(&misspelt)
    );

    for args in [
        vec![
            "mapping",
            "update",
            "--check-name",
            check,
            "--max-attempts",
            "1",
            "--offline",
            "--dry-run",
        ],
        vec!["mapping", "enable", check, "--dry-run"],
        vec!["mapping", "remove", check, "--dry-run"],
    ] {
        let output = stack.tarem(&args);
        assert!(output.status.success(), "{args:?}: {}", text(&output));
        assert!(
            text(&output).contains(&format!("~ {check}"))
                || text(&output).contains(&format!("- {check}")),
            "{args:?} shows the change: {}",
            text(&output)
        );
        assert!(
            text(&output).contains("dry run, nothing written"),
            "{}",
            text(&output)
        );
    }
    let update = stack.tarem(&["mapping", "enable", check, "--dry-run"]);
    assert!(
        text(&update).contains("automationStatus: false -> true"),
        "{}",
        text(&update)
    );
    let unchanged: Value =
        serde_json::from_slice(&stack.tarem(&["mapping", "show", check]).stdout).unwrap();
    assert_eq!(
        unchanged["automationStatus"], false,
        "the dry runs wrote nothing"
    );
    assert!(unchanged.get("maxAttempts").is_none());

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("one.json");
    std::fs::write(
        &file,
        serde_json::json!([{"checkName": "c", "ssmAutomationDocument": "AWS-StopEC2Instance",
            "automationParameters": {"InstanceId": ["$resourceId"]}, "regexPattern": "(",
            "mode": "approval"}])
        .to_string(),
    )
    .unwrap();
    let one = stack.tarem(&["mapping", "import", &file.to_string_lossy(), "--offline"]);
    assert_eq!(one.status.code(), Some(1));
    assert!(text(&one).contains("1 problem found"), "{}", text(&one));

    // Declined at the prompt (a terminal, from `script`): nothing written, and not exit 0.
    std::fs::write(
        &file,
        serde_json::json!([{"checkName": "c", "ssmAutomationDocument": "AWS-StopEC2Instance",
            "automationParameters": {"InstanceId": ["$resourceId"]}, "regexPattern": "(i-\\w+)",
            "mode": "approval"}])
        .to_string(),
    )
    .unwrap();
    let command = format!(
        "{} mapping import {} --offline --stack {}",
        env!("CARGO_BIN_EXE_tarem"),
        file.display(),
        stack.name
    );
    let declined = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("AWS_ENDPOINT_URL", support::endpoint())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"n\n")?;
            child.wait_with_output()
        })
        .unwrap();
    assert_eq!(declined.status.code(), Some(1), "{}", stdout(&declined));
    assert!(
        stdout(&declined).contains("declined: nothing written"),
        "{:?}",
        stdout(&declined)
    );
    let table: Value =
        serde_json::from_slice(&stack.tarem(&["mapping", "list", "--output", "json"]).stdout)
            .unwrap();
    assert_eq!(
        table.as_array().unwrap().len(),
        2,
        "the import wrote nothing"
    );
}

/// Enabling says first how many resources flagged now the runbook would start on, and on which
/// (from the tracker, as `tarem plan --flagged` would), then asks: without a terminal nothing
/// is written until `--yes` is given.
#[tokio::test]
async fn enabling_shows_the_blast_radius_and_asks_first() {
    use tarem_shared::finding::{Finding, Status};
    use tarem_shared::ports::TrackerStore;
    let stack = MotoStack::deploy(&[]).await;
    let check = "Security groups should not allow unrestricted access to ports with high risk";
    let added = stack.tarem(&[
        "mapping",
        "add",
        "--check-name",
        check,
        "--document",
        "AWS-DisablePublicAccessForSecurityGroup",
        "--param",
        "GroupId=$resourceId",
        "--param",
        "AutomationAssumeRole=arn:aws:iam::123456789012:role/tarem-example",
        "--regex",
        r"(sg-\w+)",
        "--mode",
        "approval",
        "--offline",
    ]);
    assert!(added.status.success(), "{}", text(&added));
    // Two flagged security groups and a fixed one, as check-tracker writes them (AWS's sample
    // event's shape, events/01-security-group-port-22-open.json).
    let client = support::client().await;
    let tracker = tarem_shared::aws::dynamodb::DynamoTracker::new(client, &stack.tracker_table);
    let at = chrono::Utc::now() - chrono::Duration::hours(1);
    for (group, status) in [
        ("sg-0a1b2c3d4e5f67890", Status::Red),
        ("sg-0b2c3d4e5f6789012", Status::Yellow),
        ("sg-0c3d4e5f678901234", Status::Green),
    ] {
        let resource = format!("arn:aws:ec2:ap-southeast-2:123456789012:security-group/{group}");
        let row =
            Finding::new("123456789012", check, &resource, "ap-southeast-2").at(status, at, at);
        tracker.put_if_newer(&row).await.unwrap();
    }

    let asked = stack.tarem(&["mapping", "enable", check]);
    assert_eq!(asked.status.code(), Some(2), "{}", text(&asked));
    let said = text(&asked);
    assert!(
        said.contains("blast radius: 2 flagged resources; 2 would start"),
        "{said}"
    );
    assert!(
        said.contains("security-group/sg-0a1b2c3d4e5f67890 | starting AWS-DisablePublicAccessForSecurityGroup in ap-southeast-2"),
        "{said}"
    );
    assert!(
        !said.contains("sg-0c3d4e5f678901234"),
        "the Green one: {said}"
    );
    assert!(said.contains("pass --yes"), "{said}");
    let unchanged: Value =
        serde_json::from_slice(&stack.tarem(&["mapping", "show", check]).stdout).unwrap();
    assert_eq!(
        unchanged["mode"], "approval",
        "nothing written without --yes"
    );

    let enabled = stack.tarem(&["mapping", "enable", check, "--yes"]);
    assert!(enabled.status.success(), "{}", text(&enabled));
    let shown: Value =
        serde_json::from_slice(&stack.tarem(&["mapping", "show", check]).stdout).unwrap();
    assert_eq!(shown["mode"], "automated");
}
