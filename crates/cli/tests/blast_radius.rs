//! `tarem plan --flagged`: the blast radius of a mapping on a moto tracker filled the way
//! check-tracker fills it. Flagged rows of the mapped check (settled, and one whose write is
//! still to be checked), a Green one, another check's, another account's, and one whose
//! resource the mapping's regex cannot read: only the mapped check's flagged rows of the
//! account are listed, each with the exact document, region and parameters, or why not.
//! (Rows follow AWS's published event sample, events/01-security-group-port-22-open.json.)

use serde_json::Value;
use tarem_shared::aws::dynamodb::DynamoTracker;
use tarem_shared::finding::{Finding, Status};
use tarem_shared::ports::TrackerStore;

mod support;
use support::*;

const SG_CHECK: &str =
    "Security groups should not allow unrestricted access to ports with high risk";
const EC2_CHECK: &str = "EC2 instances should not have a public IPv4 address";
const ACCOUNT: &str = "123456789012";

fn row(account: &str, check: &str, resource: &str, status: Status) -> Finding {
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-02T10:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    Finding::new(account, check, resource, "ap-southeast-2").at(status, at, at)
}

fn sg(account: &str, id: &str) -> String {
    format!("arn:aws:ec2:ap-southeast-2:{account}:security-group/{id}")
}

#[tokio::test]
async fn the_blast_radius_lists_the_mapped_checks_flagged_resources_and_what_would_start() {
    let client = client().await;
    let table =
        moto_harness::fresh_table(&client, "tracker", moto_harness::TRACKER_KEYS, false).await;
    let tracker = DynamoTracker::new(client.clone(), &table);
    let settled = row(ACCOUNT, SG_CHECK, &sg(ACCOUNT, "sg-0a1b2c3d"), Status::Red);
    let rows = [
        settled.clone(),
        // Written a moment ago: its change is still to be checked (the pending part).
        row(
            ACCOUNT,
            SG_CHECK,
            &sg(ACCOUNT, "sg-0e0f0a0b"),
            Status::Yellow,
        ),
        row(
            ACCOUNT,
            SG_CHECK,
            &sg(ACCOUNT, "sg-0fixed00"),
            Status::Green,
        ),
        row(
            ACCOUNT,
            EC2_CHECK,
            &format!("arn:aws:ec2:ap-southeast-2:{ACCOUNT}:instance/i-0123456789abcdef0"),
            Status::Red,
        ),
        row(
            "999999999999",
            SG_CHECK,
            &sg("999999999999", "sg-0other00"),
            Status::Red,
        ),
        // A classic resource id the mapping's regex `(sg-\w+)` cannot read.
        row(
            ACCOUNT,
            SG_CHECK,
            "ap-southeast-2:unnamed-group",
            Status::Red,
        ),
    ];
    for finding in &rows {
        tracker.put_if_newer(finding).await.unwrap();
    }
    tracker.settled(&settled).await.unwrap();

    let mappings = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/mappings.json");
    let run = |output: &str| {
        bare_tarem()
            .args([
                "plan",
                "--flagged",
                "--mappings",
                mappings,
                "--tracker-table",
                &table,
                "--account",
                ACCOUNT,
                "--endpoint-url",
                &endpoint(),
                "--output",
                output,
            ])
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .output()
            .unwrap()
    };
    let output = run("json");
    assert!(output.status.success(), "{}", text(&output));
    let radius: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(radius["flagged"], 3, "{radius:#}");
    assert_eq!(radius["wouldStart"], 2, "{radius:#}");
    let plans = radius["plans"].as_array().unwrap();
    let resources: Vec<&str> = plans
        .iter()
        .map(|p| p["finding"]["resource"].as_str().unwrap())
        .collect();
    assert_eq!(
        resources,
        [
            "ap-southeast-2:unnamed-group",
            "arn:aws:ec2:ap-southeast-2:123456789012:security-group/sg-0a1b2c3d",
            "arn:aws:ec2:ap-southeast-2:123456789012:security-group/sg-0e0f0a0b",
        ],
        "the Green row, the other check's and the other account's are not in it"
    );
    let start = &plans[1];
    assert_eq!(start["parameters"]["GroupId"][0], "sg-0a1b2c3d");
    assert!(
        start["would"]
            .as_str()
            .unwrap()
            .starts_with("starting AWS-DisablePublicAccessForSecurityGroup in ap-southeast-2"),
        "{start:#}"
    );
    assert_eq!(plans[2]["parameters"]["GroupId"][0], "sg-0e0f0a0b");
    let refused = &plans[0];
    assert_ne!(refused["episode"]["state"], "remediating", "{refused:#}");
    assert!(refused["parameters"].is_null() || refused["parameters"]["GroupId"].is_null());

    let screen = text(&run("text"));
    assert!(
        screen.contains("blast radius: 3 flagged resources; 2 would start; held or refused: 1 "),
        "{screen}"
    );
}
