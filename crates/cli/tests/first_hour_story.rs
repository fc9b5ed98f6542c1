//! The simulate story's smaller items (the first hour): an approval hold said once, each retry's
//! start with its ClientToken, the escalation on a line of its own, cool-down holds in `skipped`.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn tarem(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tarem"))
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_simulate_story_tells_each_start_hold_and_escalation() {
    let approval = tarem(&[
        "simulate",
        "--pack",
        "security",
        "events/pack/sg-specific-ports-classic.json",
    ]);
    assert!(approval.status.success(), "{}", stdout(&approval));
    let story = stdout(&approval);
    assert!(
        story.contains("held       approval: automatic remediation is off"),
        "{story}"
    );
    assert!(!story.contains("approval: approval:"), "{story}");

    let failing = [
        "simulate",
        "--mappings",
        "events/mappings.json",
        "events/",
        "--outcome",
        "AWS-DisablePublicAccessForSecurityGroup=Failed",
    ];
    let told = tarem(&failing);
    let story = stdout(&told);
    assert_eq!(
        story
            .matches(" started: AWS-DisablePublicAccessForSecurityGroup")
            .count(),
        3,
        "each attempt's start is told: {story}"
    );
    assert_eq!(story.matches("(ClientToken ").count(), 3, "{story}");
    assert!(
        story.contains("  episode    escalated: simulated outcome Failed"),
        "{story}"
    );
    let json = tarem(&[&failing[..], &["--output", "json"]].concat());
    let report: Value = serde_json::from_slice(&json.stdout).unwrap();
    let skipped = report["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 2, "two cool-down holds: {skipped:?}");
    assert!(skipped.iter().all(|s| s["control"] == "cool-down"));
    assert!(
        skipped[0]["finding"]
            .as_str()
            .unwrap()
            .contains("sg-0a1b2c3d4e5f67890")
    );
}
