//! The starter packs: every entry reads, validates offline, is in approval mode, and plans its
//! sample event (`events/pack/<x-id>.json`) to the parameters the sample itself says
//! (`tests/fixtures/pack-expected.json`, written from each sample's columns and resource).

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use tarem::pack::{PACKS, ROLE_PLACEHOLDER, load, role_needs};
use tarem::plan::{plan, playground_stack};
use tarem_shared::mapping::{Mapping, Mode};
use tarem_shared::validate::offline;

mod support;
use support::{client, mapping_table, tarem, text};

const ROLE: &str = "arn:aws:iam::123456789012:role/TaremPackAutomation";

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn every_entry() -> Vec<Value> {
    PACKS
        .iter()
        .flat_map(|(name, _)| load(name, ROLE).unwrap())
        .collect()
}

#[test]
fn every_pack_entry_validates_offline_and_waits_for_approval() {
    let entries = every_entry();
    assert!(entries.len() >= 20, "{} entries", entries.len());
    let document_name =
        regex::Regex::new(r"^(AWS|AWSConfigRemediation|AWSSupport)-[A-Za-z0-9]+$").unwrap();
    let mut checks = BTreeSet::new();
    for entry in &entries {
        let id = entry["x-id"].as_str().unwrap();
        let (mapping, problems) = offline(entry);
        assert_eq!(problems, vec![], "{id}");
        let mapping: Mapping = mapping.unwrap();
        assert_eq!(
            mapping.mode,
            Mode::Approval,
            "{id} must ship in approval mode"
        );
        assert!(
            document_name.is_match(&mapping.document),
            "{id}: {}",
            mapping.document
        );
        assert!(
            checks.insert(mapping.check_name.clone()),
            "{id}: check mapped twice"
        );
        for key in ["x-pack", "x-changes", "x-reference"] {
            assert!(
                entry[key].as_str().is_some_and(|v| !v.is_empty()),
                "{id} lacks {key}"
            );
        }
        assert!(
            entry["x-reference"]
                .as_str()
                .unwrap()
                .starts_with("https://docs.aws.amazon.com/systems-manager-automation-runbooks/"),
            "{id}"
        );
        assert!(
            entry["x-permissions"]
                .as_array()
                .is_some_and(|p| !p.is_empty()),
            "{id} names no permission"
        );
        assert!(!entry.to_string().contains(ROLE_PLACEHOLDER), "{id}");
    }
}

#[test]
fn each_sample_event_plans_to_the_parameters_it_carries() {
    let entries = every_entry();
    let expected: BTreeMap<String, Value> =
        serde_json::from_value(read_json(&repo().join("tests/fixtures/pack-expected.json")))
            .unwrap();
    assert_eq!(expected.len(), entries.len(), "one expectation per entry");
    let stack = playground_stack(&entries);
    for entry in &entries {
        let id = entry["x-id"].as_str().unwrap();
        let event = read_json(&repo().join(format!("events/pack/{id}.json")));
        let planned = plan(id, &event, &entries, &stack);
        assert!(planned.tracked, "{id}: {:?}", planned.reason);
        let parameters = serde_json::to_value(&planned.parameters).unwrap();
        assert_eq!(parameters, expected[id]["parameters"], "{id}: {planned:?}");
        // The runbook runs where the resource is: the ARN's region, else the item's region
        // column (`Region`, `Region API Parameter`, the region of `Region/AZ`).
        assert_eq!(
            planned.finding.as_ref().map(|f| f.region.as_str()),
            expected[id]["region"].as_str(),
            "{id}: the region its runbook runs in"
        );
        assert_eq!(
            planned
                .episode
                .as_ref()
                .map(|e| (e.state.as_str(), e.control.as_deref())),
            Some(("held", Some("approval"))),
            "{id}: nothing starts before an operator approves"
        );
    }
}

#[test]
fn the_role_a_pack_needs_is_the_union_of_its_entries() {
    let security = load("security", ROLE).unwrap();
    let needs = role_needs(&security, "123456789012");
    let actions: Vec<&str> = needs.permissions_policy["Statement"][0]["Action"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for entry in &security {
        for permission in entry["x-permissions"].as_array().unwrap() {
            assert!(actions.contains(&permission.as_str().unwrap()));
        }
    }
    assert!(actions.contains(&"ec2:RevokeSecurityGroupIngress"));
    assert!(
        !actions.iter().any(|a| a.starts_with("elb:")),
        "elb: is not an IAM prefix"
    );
    assert!(
        needs
            .allowed_automation_documents
            .split(',')
            .any(|d| d == "AWSConfigRemediation-RemoveUnrestrictedSourceIngressRules")
    );
    assert_eq!(
        needs.trust_policy["Statement"][0]["Principal"]["Service"],
        "ssm.amazonaws.com"
    );
}

/// An operator imports a pack: every entry lands in approval mode with the role given, the list
/// says what is installed, and a second import changes nothing.
#[tokio::test]
async fn importing_a_pack_installs_it_in_approval_mode() {
    let client = client().await;
    let table = mapping_table(&client).await;
    let without_role = tarem(&table, &["import", "--pack", "cost", "--yes", "--offline"]);
    assert_eq!(
        without_role.status.code(),
        Some(2),
        "{}",
        text(&without_role)
    );
    let imported = tarem(
        &table,
        &[
            "import",
            "--pack",
            "cost",
            "--role",
            ROLE,
            "--yes",
            "--offline",
        ],
    );
    assert!(imported.status.success(), "{}", text(&imported));
    assert!(text(&imported).contains("2 added"), "{}", text(&imported));
    let listed: Vec<Value> = serde_json::from_slice(
        &tarem(&table, &["list", "--pack", "cost", "--output", "json"]).stdout,
    )
    .unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed.iter().all(|e| e["state"] == "installed (approval)"),
        "{listed:?}"
    );
    let stored: Value = serde_json::from_slice(
        &tarem(&table, &["show", "Low Utilization Amazon EC2 Instances"]).stdout,
    )
    .unwrap();
    assert!(
        stored["automationParameters"]
            .as_str()
            .unwrap()
            .contains(ROLE)
    );
    assert_eq!(stored["x-pack"], "cost");
    let again = tarem(
        &table,
        &[
            "import",
            "--pack",
            "cost",
            "--role",
            ROLE,
            "--yes",
            "--offline",
        ],
    );
    assert!(
        text(&again).contains("0 to add, 0 to change, 2 unchanged"),
        "{}",
        text(&again)
    );
    let policy: Value = serde_json::from_slice(
        &tarem(
            &table,
            &["pack-policy", "--installed", "--account", "123456789012"],
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(
        policy["AllowedAutomationDocuments"],
        "AWS-StopEC2Instance,AWS-StopRdsInstance"
    );
}

/// The README's pack table lists every entry as the pack says it: check, runbook, what it
/// changes and the mode it ships in.
#[test]
fn the_readme_lists_every_pack_entry() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    for entry in every_entry() {
        let changes = entry["x-changes"].as_str().unwrap();
        let row = format!(
            "| {} | {} | `{}` | {} | {} |",
            entry["x-pack"].as_str().unwrap(),
            entry["checkName"].as_str().unwrap(),
            entry["ssmAutomationDocument"].as_str().unwrap(),
            changes.split_whitespace().collect::<Vec<_>>().join(" "),
            entry["mode"].as_str().unwrap()
        );
        assert!(readme.contains(&row), "README lacks {row}");
    }
}

/// Each AWS-owned document a pack names is one AWS publishes, spelled as AWS spells it (SSM
/// finds a document by its exact name: `AWS-StopRDSInstance` is no document, `AWS-StopRdsInstance`
/// is), and its entry's reference page is that runbook's page. Names recorded from AWS's runbook
/// reference (`tests/fixtures/aws-runbooks.json` says where).
#[test]
fn every_pack_document_is_an_aws_runbook_spelled_as_aws_spells_it() {
    let recorded = read_json(&repo().join("tests/fixtures/aws-runbooks.json"));
    let runbooks = recorded["runbooks"].as_object().unwrap();
    for entry in every_entry() {
        let id = entry["x-id"].as_str().unwrap();
        let document = entry["ssmAutomationDocument"].as_str().unwrap();
        let page = runbooks.get(document).unwrap_or_else(|| {
            let close: Vec<&String> = runbooks
                .keys()
                .filter(|name| name.eq_ignore_ascii_case(document))
                .collect();
            panic!("{id}: {document} is not an AWS runbook (AWS's spelling: {close:?})")
        });
        assert_eq!(
            entry["x-reference"].as_str().unwrap().to_lowercase(),
            page.as_str().unwrap().to_lowercase(),
            "{id}: its reference page is {document}'s"
        );
    }
}
