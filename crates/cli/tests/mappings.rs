//! `tarem mapping …` and `tarem plan` as operators run them: the table commands against moto
//! (MOTO_ENDPOINT, started by scripts/test), the AWS look-ups with in-memory catalogs.

use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use tarem::mappings::{Online, validate};
use tarem_shared::aws::dynamodb::DynamoMappings;
use tarem_shared::mapping::{Mapping, Mode};
use tarem_shared::memory::InMemoryTrustedAdvisor;
use tarem_shared::ports::{CheckInfo, CheckResult, MappingStore};
use tarem_shared::ports::{DocumentCatalog, DocumentParameter};

mod support;
use support::*;

const SG_CHECK: &str =
    "Security groups should not allow unrestricted access to ports with high risk";

/// A mapping written by `tarem mapping add` and one written with the walkthrough's `put-item`
/// are read identically by the results handler.
#[tokio::test]
async fn add_writes_what_the_walkthrough_writes() {
    let client = client().await;
    let table = mapping_table(&client).await;
    let added = tarem(
        &table,
        &[
            "add",
            "--check-name",
            SG_CHECK,
            "--document",
            "AWS-DisablePublicAccessForSecurityGroup",
            "--param",
            "GroupId=$resourceId",
            "--param",
            "AutomationAssumeRole=arn:aws:iam::111122223333:role/Example",
            "--regex",
            r"(sg-\w+)",
            "--enabled",
            "--offline",
        ],
    );
    assert!(added.status.success(), "{}", text(&added));
    let walkthrough = json!({
        "checkName": {"S": "the walkthrough's copy"},
        "ssmAutomationDocument": {"S": "AWS-DisablePublicAccessForSecurityGroup"},
        "automationParameters": {"S": "{\"GroupId\": [\"$resourceId\"], \"AutomationAssumeRole\": [\"arn:aws:iam::111122223333:role/Example\"]}"},
        "regexPattern": {"S": "(sg-\\w+)"},
        "automationStatus": {"BOOL": true}
    });
    let typed: serde_dynamo::Item = serde_json::from_value(walkthrough).unwrap();
    client
        .put_item()
        .table_name(&table)
        .set_item(Some(typed.into()))
        .send()
        .await
        .unwrap();
    let store = DynamoMappings::new(client.clone(), &table);
    let ours = Mapping::from_json(&store.get(SG_CHECK).await.unwrap().unwrap()).unwrap();
    let theirs =
        Mapping::from_json(&store.get("the walkthrough's copy").await.unwrap().unwrap()).unwrap();
    assert_eq!(ours.parameters, theirs.parameters);
    assert_eq!(ours.regex.unwrap().as_str(), theirs.regex.unwrap().as_str());
    assert_eq!((ours.mode, theirs.mode), (Mode::Automated, Mode::Automated));
    assert_eq!(ours.document, theirs.document);
    // The stored shape is the walkthrough's: automationParameters as a JSON string.
    let stored = store.get(SG_CHECK).await.unwrap().unwrap();
    assert!(stored["automationParameters"].is_string());
}

#[tokio::test]
async fn the_table_commands_validate_first_and_say_what_is_wrong() {
    let client = client().await;
    let table = mapping_table(&client).await;
    let broken = tarem(
        &table,
        &[
            "add",
            "--check-name",
            "c",
            "--document",
            "D",
            "--regex",
            "(a)(b)",
            "--offline",
        ],
    );
    assert_eq!(broken.status.code(), Some(1), "{}", text(&broken));
    assert!(
        text(&broken).contains("\"c\":\n  `regexPattern` has 2 capture groups"),
        "{}",
        text(&broken)
    );
    let bad_param = tarem(
        &table,
        &[
            "add",
            "--check-name",
            "c",
            "--document",
            "D",
            "--param",
            "GroupId",
            "--offline",
        ],
    );
    assert_eq!(bad_param.status.code(), Some(2));
    assert!(text(&bad_param).contains("expected Name=value"));
    let ok = tarem(
        &table,
        &["add", "--check-name", "c", "--document", "D", "--offline"],
    );
    assert!(ok.status.success(), "{}", text(&ok));
    let again = tarem(
        &table,
        &["add", "--check-name", "c", "--document", "D", "--offline"],
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again).contains("already mapped; use `tarem mapping update`"));

    // Automated, this mapping would always be held: an account's own document without a
    // pinned version, and no AutomationAssumeRole. enable says so and writes nothing.
    let refused = tarem(&table, &["enable", "c"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("needs the mapping to pass an AutomationAssumeRole"),
        "{}",
        text(&refused)
    );
    assert!(
        text(&refused).contains("pin the version"),
        "{}",
        text(&refused)
    );
    let fixed = tarem(
        &table,
        &[
            "update",
            "--check-name",
            "c",
            "--document",
            "AWS-RestartEC2Instance",
            "--param",
            "AutomationAssumeRole=arn:aws:iam::123456789012:role/Fixer",
            "--offline",
        ],
    );
    assert!(fixed.status.success(), "{}", text(&fixed));
    assert!(tarem(&table, &["enable", "c", "--yes"]).status.success());
    let listed: Value =
        serde_json::from_slice(&tarem(&table, &["list", "--output", "json"]).stdout).unwrap();
    assert_eq!(listed[0]["mode"], "automated");
    assert!(tarem(&table, &["disable", "c"]).status.success());
    let shown: Value = serde_json::from_slice(&tarem(&table, &["show", "c"]).stdout).unwrap();
    assert_eq!(
        (shown["mode"].as_str(), shown["automationStatus"].as_bool()),
        (Some("approval"), Some(false))
    );
    assert!(tarem(&table, &["remove", "c"]).status.success());
    assert_eq!(tarem(&table, &["show", "c"]).status.code(), Some(2));
}

#[tokio::test]
async fn import_shows_the_diff_prunes_on_request_and_export_round_trips() {
    let client = client().await;
    let table = mapping_table(&client).await;
    assert!(
        tarem(
            &table,
            &["add", "--check-name", "old", "--document", "D", "--offline"]
        )
        .status
        .success()
    );
    assert!(
        tarem(
            &table,
            &[
                "add",
                "--check-name",
                "kept",
                "--document",
                "D",
                "--offline"
            ]
        )
        .status
        .success()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mappings.yaml");
    std::fs::write(
        &file,
        "- checkName: kept\n  ssmAutomationDocument: D\n  automationParameters: {}\n  automationStatus: false\n\
         - checkName: new\n  ssmAutomationDocument: AWS-X\n  automationParameters:\n    Id: ['$resourceId']\n  regexPattern: '(i-\\w+)'\n  mode: dry-run\n",
    )
    .unwrap();
    let imported = tarem(
        &table,
        &[
            "import",
            file.to_str().unwrap(),
            "--yes",
            "--prune",
            "--offline",
        ],
    );
    assert!(imported.status.success(), "{}", text(&imported));
    let diff = text(&imported);
    assert!(
        diff.contains("+ new")
            && diff.contains("- old")
            && diff.contains("1 to add, 0 to change, 1 unchanged, 1 to remove"),
        "{diff}"
    );
    let exported = dir.path().join("export.yaml");
    assert!(
        tarem(&table, &["export", exported.to_str().unwrap()])
            .status
            .success()
    );
    let reimport = tarem(
        &table,
        &["import", exported.to_str().unwrap(), "--yes", "--offline"],
    );
    assert!(
        text(&reimport).contains("0 to add, 0 to change, 2 unchanged"),
        "{}",
        text(&reimport)
    );

    let invalid = dir.path().join("invalid.json");
    std::fs::write(
        &invalid,
        r#"[{"checkName": "x", "ssmAutomationDocument": "D", "automationStatus": "yes"}]"#,
    )
    .unwrap();
    let refused = tarem(
        &table,
        &["import", invalid.to_str().unwrap(), "--yes", "--offline"],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("`automationStatus`"));
    let validated = tarem(
        &table,
        &[
            "validate",
            invalid.to_str().unwrap(),
            "--offline",
            "--output",
            "json",
        ],
    );
    assert_eq!(validated.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&validated.stdout).unwrap();
    assert_eq!(report["problems"][0]["field"], "automationStatus");
}

struct Documents;

#[async_trait::async_trait]
impl DocumentCatalog for Documents {
    async fn parameters(
        &self,
        _region: &str,
        document: &str,
    ) -> Result<Option<Vec<DocumentParameter>>, tarem_shared::error::PortError> {
        Ok(
            (document == "AWS-DisablePublicAccessForSecurityGroup").then(|| {
                vec![
                    DocumentParameter {
                        name: "GroupId".into(),
                        required: true,
                    },
                    DocumentParameter {
                        name: "AutomationAssumeRole".into(),
                        required: false,
                    },
                    DocumentParameter {
                        name: "IpAddressToBlock".into(),
                        required: false,
                    },
                ]
            }),
        )
    }
}

#[tokio::test]
async fn online_validation_checks_the_document_and_the_check_name() {
    let advisor = InMemoryTrustedAdvisor::default();
    advisor.set_check(
        CheckInfo {
            id: "1".into(),
            name: SG_CHECK.into(),
            columns: vec![],
        },
        CheckResult {
            timestamp: String::new(),
            flagged: vec![],
        },
    );
    let online = Online {
        region: "eu-west-1".into(),
        documents: &Documents,
        advisor: &advisor,
    };
    let item = |check: &str, document: &str, parameters: Value| json!({"checkName": check, "ssmAutomationDocument": document, "automationParameters": parameters, "regexPattern": "(sg-\\w+)"});
    let good = item(
        SG_CHECK,
        "AWS-DisablePublicAccessForSecurityGroup",
        json!({"GroupId": ["$resourceId"]}),
    );
    let checked = validate(&[good], Some(&online), None).await.unwrap();
    assert!(checked.problems.is_empty() && checked.notes.is_empty());
    let problems = validate(
        &[
            item(
                SG_CHECK,
                "AWS-DisablePublicAccessForSecurityGroup",
                json!({"SecurityGroup": ["$resourceId"]}),
            ),
            item(SG_CHECK, "AWS-NoSuchRunbook", json!({})),
            item(
                "Security group should not allow unrestricted access to port with high risk",
                "AWS-DisablePublicAccessForSecurityGroup",
                json!({"GroupId": ["$resourceId"]}),
            ),
        ],
        Some(&online),
        None,
    )
    .await
    .unwrap()
    .problems;
    let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    assert!(
        messages[0].contains("takes no parameter \"SecurityGroup\""),
        "{messages:?}"
    );
    assert!(
        messages[1].contains("requires the parameter \"GroupId\""),
        "{messages:?}"
    );
    assert!(
        messages[2].contains("does not exist in eu-west-1"),
        "{messages:?}"
    );
    assert!(
        messages[3].contains(&format!("did you mean {SG_CHECK:?}")),
        "{messages:?}"
    );
    assert_eq!(problems[3].field, "checkName");
}

#[test]
fn plan_shows_what_each_event_would_trigger_without_side_effects() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(env!("CARGO_BIN_EXE_tarem"))
        .current_dir(&repo)
        .args([
            "plan",
            "--mappings",
            "events/mappings.json",
            "--output",
            "json",
            "events/01-security-group-port-22-open.json",
            "events/02-ec2-instance-public-ipv4.json",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let plans: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(plans[0]["resourceId"], "sg-0a1b2c3d4e5f67890");
    assert_eq!(plans[0]["parameters"]["GroupId"][0], "sg-0a1b2c3d4e5f67890");
    assert!(
        plans[0]["would"]
            .as_str()
            .unwrap()
            .starts_with("starting AWS-DisablePublicAccessForSecurityGroup in ap-southeast-2")
    );
    assert!(
        plans[0]["opsItem"]["title"]
            .as_str()
            .unwrap()
            .starts_with("[TA] [Security groups")
    );
    assert_eq!(plans[1]["would"], "no runbook is mapped to this check");
    let text_plan = Command::new(env!("CARGO_BIN_EXE_tarem"))
        .current_dir(&repo)
        .args([
            "plan",
            "--mappings",
            "events/mappings.json",
            "events/01-security-group-port-22-open.json",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&text_plan.stdout).contains("  id         sg-0a1b2c3d4e5f67890")
    );
}
