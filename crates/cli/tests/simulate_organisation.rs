//! `tarem simulate --accounts`: a hub and three members on the embedded backend, from the
//! sample in events/organisation (events in the shape of events/01, AWS's documented example
//! account ids).

use serde_json::Value;
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

const ORGANISATION: &[&str] = &[
    "simulate",
    "--accounts",
    "events/organisation/accounts.json",
    "--mappings",
    "events/organisation/mappings.json",
    "events/organisation/events/",
];

#[test]
fn each_member_is_remediated_held_or_paused_on_its_own_and_the_report_says_so_per_account() {
    let mut args = ORGANISATION.to_vec();
    args.extend(["--output", "json"]);
    let output = tarem(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let account = |id: &str| report["byAccount"][id].clone();
    // The deployed member: its own role, its OpsItem, fixed by the Green.
    assert_eq!(account("444455556666")["started"], 1);
    assert_eq!(account("444455556666")["opsItems"], 1);
    assert_eq!(account("444455556666")["episodes"]["fixed"], 1);
    let started = &report["automationsDetail"][0];
    assert_eq!(started["account"], "444455556666");
    assert_eq!(
        started["parameters"]["AutomationAssumeRole"][0],
        "arn:aws:iam::444455556666:role/tarem/tarem-automation-default"
    );
    // The member without its role: held, nothing written there.
    assert_eq!(account("777788889999")["started"], 0);
    assert_eq!(account("777788889999")["opsItems"], 0);
    assert_eq!(account("777788889999")["episodes"]["held"], 1);
    // The member whose owner paused tarem: its OpsItem says why; nothing started.
    assert_eq!(account("111122223333")["started"], 0);
    assert_eq!(account("111122223333")["opsItems"], 1);
    let controls: Vec<&str> = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["control"].as_str())
        .collect();
    assert!(
        controls.contains(&"member-account") && controls.contains(&"member"),
        "{controls:?}"
    );
    // Nothing ran in the hub.
    assert!(report["byAccount"].get("123456789012").is_none());
}

#[test]
fn the_story_names_each_accounts_outcome() {
    let output = tarem(ORGANISATION);
    assert!(output.status.success());
    let story = String::from_utf8_lossy(&output.stdout);
    for line in [
        "held       member-account: the hub cannot act in account 777788889999",
        "held       member: the account's owner paused tarem here",
        "by account 444455556666: findings 1, runbooks started 1, OpsItems 1; episodes 1 fixed",
    ] {
        assert!(story.contains(line), "{line}\n{story}");
    }
}

#[test]
fn an_unusable_accounts_file_exits_2_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    for (text, says) in [
        (
            r#"{"members": {"4444": {}}}"#,
            "is not a 12-digit AWS account id",
        ),
        (
            r#"{"members": {"444455556666": {"role": "admin"}}}"#,
            "role \"admin\" is not `deployed` or `missing`",
        ),
        (
            r#"{"hub": "444455556666", "members": {"444455556666": {}}}"#,
            "a hub is not its own member",
        ),
        (
            r#"{"members": {"444455556666": {"pause": true}}}"#,
            "unknown field `pause`",
        ),
    ] {
        let file = dir.path().join("accounts.json");
        std::fs::write(&file, text).unwrap();
        let output = tarem(&["simulate", "--accounts", file.to_str().unwrap(), "events/"]);
        assert_eq!(output.status.code(), Some(2), "{text}");
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(message.contains(says), "{text}: {message}");
    }
}
