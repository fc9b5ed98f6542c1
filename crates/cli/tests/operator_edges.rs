//! The CLI at its edges, as an operator meets them: no silent typos, nothing hidden, nothing
//! done without a word, no panic. Table commands run against moto (MOTO_ENDPOINT); reaching AWS
//! (profiles, timeouts, errors) is in reaching_aws.rs.

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use std::io::Read;
use std::process::Stdio;

mod support;
use support::*;

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// 1 and 10: misspelled attributes are errors with the known name suggested, every problem of
/// the item at once, each naming its attribute once; `x-` annotations are kept.
#[test]
fn misspelled_attributes_are_errors_with_the_name_meant_all_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "typos.json",
        r#"[{"checkName": "c", "ssmAutomationDocument": "D", "Mode": "approval",
             "maxAttemps": 1, "cooldownMinutes": 600, "regexPattern": "(a)(b)",
             "x-owner": "platform team"}]"#,
    );
    let output = bare_tarem()
        .args(["mapping", "validate", &file, "--offline"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let said = text(&output);
    for expected in [
        "`Mode` is not an attribute tarem knows; did you mean `mode`?",
        "`maxAttemps` is not an attribute tarem knows; did you mean `maxAttempts`?",
        "`cooldownMinutes` is not an attribute tarem knows; did you mean `coolDownMinutes`?",
        "`regexPattern` has 2 capture groups",
    ] {
        assert!(said.contains(expected), "missing {expected:?} in:\n{said}");
    }
    assert!(!said.contains("x-owner"), "{said}");
    assert_eq!(
        said.matches("\"c\"").count(),
        1,
        "the check is named once: {said}"
    );
    assert!(!said.contains("mappings valid"), "{said}");

    let fine = write(
        &dir,
        "fine.json",
        r#"[{"checkName": "c", "ssmAutomationDocument": "D", "x-owner": "platform team"}]"#,
    );
    let output = bare_tarem()
        .args(["mapping", "validate", &fine, "--offline"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("1 mapping valid"),
        "{}",
        text(&output)
    );
}

/// 8: a reader that goes away early (`| head`) ends the command quietly, without a panic.
#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    let mut child = bare_tarem()
        .args([
            "simulate",
            "--mappings",
            "events/mappings.json",
            "--output",
            "json",
            "events/",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader leaves before the first byte is written.
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.code(), Some(0), "{stderr}");
}

async fn put_raw(client: &aws_sdk_dynamodb::Client, table: &str, item: &[(&str, AttributeValue)]) {
    let mut request = client.put_item().table_name(table);
    for (name, value) in item {
        request = request.item(*name, value.clone());
    }
    request.send().await.unwrap();
}

/// 4: export writes the same text run after run, attributes in a fixed order, whatever order
/// the items were written in.
#[tokio::test]
async fn export_is_deterministic() {
    let client = client().await;
    let table = mapping_table(&client).await;
    let s = |text: &str| AttributeValue::S(text.to_owned());
    put_raw(
        &client,
        &table,
        &[
            ("regexPattern", s("(sg-\\w+)")),
            ("automationStatus", AttributeValue::Bool(true)),
            (
                "automationParameters",
                s(r#"{"GroupId": ["$resourceId"], "AutomationAssumeRole": ["arn:aws:iam::111122223333:role/R"]}"#),
            ),
            ("ssmAutomationDocument", s("AWS-DisablePublicAccessForSecurityGroup")),
            ("checkName", s("b check")),
        ],
    )
    .await;
    put_raw(
        &client,
        &table,
        &[
            ("checkName", s("a check")),
            ("ssmAutomationDocument", s("AWS-X")),
            ("x-owner", s("team")),
        ],
    )
    .await;
    let first = tarem(&table, &["export"]);
    assert!(first.status.success(), "{}", text(&first));
    let second = tarem(&table, &["export"]);
    assert_eq!(first.stdout, second.stdout);
    let items: Vec<serde_json::Map<String, Value>> = serde_json::from_slice(&first.stdout).unwrap();
    let keys: Vec<Vec<&str>> = items
        .iter()
        .map(|item| item.keys().map(String::as_str).collect())
        .collect();
    assert_eq!(
        keys,
        [
            vec!["checkName", "ssmAutomationDocument", "x-owner"],
            vec![
                "checkName",
                "ssmAutomationDocument",
                "automationParameters",
                "regexPattern",
                "automationStatus"
            ],
        ]
    );
    assert_eq!(
        items[1]["automationParameters"],
        r#"{"AutomationAssumeRole":["arn:aws:iam::111122223333:role/R"],"GroupId":["$resourceId"]}"#
    );
}

/// 6: the import diff names the attributes that change; without a terminal and without --yes
/// nothing is written and the command says so with a usage error; applying says what it did.
#[tokio::test]
async fn import_shows_each_changed_attribute_and_never_does_nothing_silently() {
    let client = client().await;
    let table = mapping_table(&client).await;
    assert!(
        tarem(
            &table,
            &[
                "add",
                "--check-name",
                "c",
                "--document",
                "D",
                "--max-attempts",
                "3",
                "--offline"
            ]
        )
        .status
        .success()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "change.json",
        r#"[{"checkName": "c", "ssmAutomationDocument": "D", "automationParameters": {}, "automationStatus": false, "maxAttempts": 1}]"#,
    );
    let unconfirmed = tarem(&table, &["import", &file, "--offline"]);
    assert_eq!(unconfirmed.status.code(), Some(2), "{}", text(&unconfirmed));
    let said = text(&unconfirmed);
    assert!(said.contains("~ c\n    maxAttempts: 3 -> 1"), "{said}");
    assert!(said.contains("pass --yes"), "{said}");
    let stored: Value = serde_json::from_slice(&tarem(&table, &["show", "c"]).stdout).unwrap();
    assert_eq!(stored["maxAttempts"], 3, "nothing was written");

    let applied = tarem(&table, &["import", &file, "--yes", "--offline"]);
    assert!(applied.status.success(), "{}", text(&applied));
    assert!(
        text(&applied).contains(&format!(
            "applied to {table}: 0 added, 1 changed, 0 removed"
        )),
        "{}",
        text(&applied)
    );
    let stored: Value = serde_json::from_slice(&tarem(&table, &["show", "c"]).stdout).unwrap();
    assert_eq!(stored["maxAttempts"], 1);
}

/// `mapping update` changes the attributes it is given and keeps the others; `--from` takes
/// the whole item, so it goes with no other item flag.
#[tokio::test]
async fn update_changes_one_attribute_and_from_stands_alone() {
    let client = client().await;
    let table = mapping_table(&client).await;
    let added = tarem(
        &table,
        &[
            "add",
            "--check-name",
            "c",
            "--document",
            "AWS-X",
            "--param",
            "Id=$resourceId",
            "--regex",
            "(i-\\w+)",
            "--mode",
            "approval",
            "--offline",
        ],
    );
    assert!(added.status.success(), "{}", text(&added));
    let updated = tarem(
        &table,
        &[
            "update",
            "--check-name",
            "c",
            "--max-attempts",
            "1",
            "--offline",
        ],
    );
    assert!(updated.status.success(), "{}", text(&updated));
    let stored: Value = serde_json::from_slice(&tarem(&table, &["show", "c"]).stdout).unwrap();
    assert_eq!(stored["maxAttempts"], 1);
    assert_eq!(stored["ssmAutomationDocument"], "AWS-X");
    assert_eq!(stored["regexPattern"], "(i-\\w+)");
    assert_eq!(stored["mode"], "approval");

    let nothing = tarem(&table, &["update", "--check-name", "c", "--offline"]);
    assert_eq!(nothing.status.code(), Some(2));
    assert!(
        text(&nothing).contains("nothing to change"),
        "{}",
        text(&nothing)
    );

    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "other.json",
        r#"[{"checkName": "other", "ssmAutomationDocument": "D"}]"#,
    );
    let both = tarem(
        &table,
        &["update", "--from", &file, "--check-name", "c", "--offline"],
    );
    assert_eq!(both.status.code(), Some(2), "{}", text(&both));
    assert!(
        text(&both).contains("cannot be used with"),
        "{}",
        text(&both)
    );
}

/// An empty table says so; counts read as English.
#[tokio::test]
async fn an_empty_table_says_so() {
    let client = client().await;
    let table = mapping_table(&client).await;
    let listed = tarem(&table, &["list"]);
    assert!(listed.status.success());
    assert!(
        text(&listed).contains("holds no mappings yet"),
        "{}",
        text(&listed)
    );
    let validated = tarem(&table, &["validate", "--offline"]);
    assert!(
        text(&validated).contains("holds no mappings"),
        "{}",
        text(&validated)
    );
}

/// 3: `dlq replay --dry-run` hides nothing: run twice, it sees every message both times.
#[tokio::test]
async fn a_dry_run_leaves_every_message_visible() {
    use tarem_shared::aws::sqs::SqsQueue;
    use tarem_shared::ports::{ParkingLot, Target};
    let sdk = moto_harness::sdk_loader().load().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let url = sqs
        .create_queue()
        .queue_name(moto_harness::unique_name("dry-run"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let queue = SqsQueue::new(sqs, &url);
    for reason in ["one", "two"] {
        queue
            .park(
                Target::ResultsHandler,
                &serde_json::json!({"Records": [{"n": reason}]}),
                reason,
            )
            .await
            .unwrap();
    }
    let dry_run = || {
        bare_tarem()
            .args(["dlq", "replay", &url, "--dry-run"])
            .env("AWS_ENDPOINT_URL_SQS", endpoint())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .output()
            .unwrap()
    };
    for run in ["first", "second"] {
        let output = dry_run();
        assert!(output.status.success(), "{}", text(&output));
        assert!(
            text(&output).contains("2 messages (dry run)"),
            "{run} dry run: {}",
            text(&output)
        );
    }
}

/// The smaller edges of `plan` and `simulate`.
#[test]
fn plan_and_simulate_read_what_the_operator_points_them_at() {
    // plan takes a folder, and uses the mapping file it finds there.
    let plan = bare_tarem()
        .args(["plan", "--output", "json", "events/"])
        .output()
        .unwrap();
    assert!(plan.status.success(), "{}", text(&plan));
    let plans: Vec<Value> = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(
        plans.len(),
        4,
        "one plan per event file, the mapping file left out"
    );
    assert!(
        plans[0]["would"].as_str().unwrap().starts_with("starting "),
        "{plans:?}"
    );

    // plan honours the deployed stack's allowlist.
    let refused = bare_tarem()
        .args([
            "plan",
            "--mappings",
            "events/mappings.json",
            "--allowed-documents",
            "AWS-SomethingElse",
            "--output",
            "json",
            "events/01-security-group-port-22-open.json",
        ])
        .output()
        .unwrap();
    let plans: Vec<Value> = serde_json::from_slice(&refused.stdout).unwrap();
    assert!(
        !plans[0]["would"].as_str().unwrap().starts_with("starting "),
        "a document the stack refuses would start: {plans:?}"
    );

    // simulate without --mappings uses the mapping file beside the events, and says so.
    let simulated = bare_tarem().args(["simulate", "events/"]).output().unwrap();
    assert!(simulated.status.success(), "{}", text(&simulated));
    let story = text(&simulated);
    assert!(
        story.contains("mappings   events/mappings.json (found beside the events)"),
        "{story}"
    );
    assert!(!story.contains("rejected   "), "{story}");
    assert!(story.contains("automations 1 started"), "{story}");

    // a mapping file named as an event is a usage error.
    let mixed = bare_tarem()
        .args(["simulate", "events/mappings.json"])
        .output()
        .unwrap();
    assert_eq!(mixed.status.code(), Some(2));
    assert!(
        text(&mixed).contains("pass it with --mappings"),
        "{}",
        text(&mixed)
    );

    // a misspelled --outcome document is an error, not a silent Success.
    let misspelled = bare_tarem()
        .args([
            "simulate",
            "--mappings",
            "events/mappings.json",
            "--outcome",
            "AWS-DisablePublicAccesForSecurityGroup=Failed",
            "events/",
        ])
        .output()
        .unwrap();
    assert_eq!(misspelled.status.code(), Some(2), "{}", text(&misspelled));
    assert!(
        text(&misspelled).contains("no mapping uses the document"),
        "{}",
        text(&misspelled)
    );
}
