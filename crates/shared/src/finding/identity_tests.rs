//! The identity, time and account rules of the third review, each as the event shapes AWS
//! publishes show them.

use super::*;
use serde_json::{Value, json};

fn now() -> DateTime<Utc> {
    parse_time("2026-11-28T12:00:00Z").unwrap()
}

fn parse(event: &Value) -> Result<Finding, Rejection> {
    finding_from_event(event, now(), &TrackingRules::default())
}

fn event(detail: Value) -> Value {
    json!({
        "version": "0", "id": "e-1", "detail-type": TA_DETAIL_TYPE, "source": TA_SOURCE,
        "account": "111122223333", "time": "2026-11-02T09:00:00Z", "region": "us-east-1",
        "resources": [], "detail": detail
    })
}

/// A classic check's event as AWS's Trusted Advisor tools show it (columns from the
/// `DescribeTrustedAdvisorChecks` metadata: aws/Trusted-Advisor-Tools,
/// `TA-WellArchitected/tawa-eisenhower-matrix-app/src/data/ta_checks.json`; values from the
/// same folder's `my_hri.json` and the tools' sample events).
fn classic(check: &str, status: &str, columns: Value, resource_id: &str) -> Value {
    event(json!({
        "check-name": check,
        "check-item-detail": columns,
        "status": match status { "Red" => "ERROR", "Yellow" => "WARN", _ => "OK" },
        "resource_id": resource_id,
        "uuid": "aa12345f-55c7-498e-b7ac-123456789012"
    }))
}

/// The third review's EBS volume: Yellow with no snapshot, Red with an old one, Green with a
/// new one. Its `Reason`, `Snapshot ID` and `Snapshot Age` change each time (my_hri.json rows of
/// H7IgTzjTYb); one volume is one finding throughout.
#[test]
fn a_classic_item_keeps_its_key_while_its_state_columns_change() {
    let ebs = |status: &str, snapshot: Value, age: Value, reason: &str| {
        parse(&classic(
            "Amazon EBS Snapshots",
            status,
            json!({"Region": "ap-southeast-2", "Volume ID": "vol-05991234567891", "Volume Name": null,
                "Snapshot ID": snapshot, "Snapshot Name": null, "Snapshot Age": age,
                "Volume Attachment": "", "Status": status, "Reason": reason}),
            "",
        ))
        .unwrap()
    };
    let yellow = ebs("Yellow", json!(null), json!(null), "No snapshot");
    let red = ebs("Red", json!("snap-05991234567891"), json!("243"), "Age");
    let green = ebs("Green", json!("snap-0aa1234567891"), json!("1"), "Age");
    assert_eq!(
        yellow.resource,
        "Region=ap-southeast-2; Volume ID=vol-05991234567891"
    );
    assert_eq!(yellow.hash_key, red.hash_key);
    assert_eq!(red.hash_key, green.hash_key);
    assert_eq!(yellow.region, "ap-southeast-2");

    // S3 Bucket Permissions (Pfx0RwqBli): the ACL columns change with the fix.
    let bucket = |list: &str, status: &str| {
        parse(&classic(
            "Amazon S3 Bucket Permissions",
            status,
            json!({"Region Name": "US East (N. Virginia)", "Region API Parameter": "us-east-1",
                "Bucket Name": "example-bucket", "ACL Allows List": list,
                "ACL Allows Upload/Delete": "No", "Status": status, "Policy Allows Access": "No",
                "Ignored Bucket Name": null}),
            "",
        ))
        .unwrap()
    };
    assert_eq!(
        bucket("Yes", "Yellow").hash_key,
        bucket("No", "Green").hash_key
    );
    // ELB Connection Draining (7qGXsKIUw): the Reason is there while flagged, gone once fixed.
    let elb = |status: &str, reason: Option<&str>| {
        parse(&classic(
            "ELB Connection Draining",
            status,
            json!({"Region": "eu-west-1", "Load Balancer Name": "legacy-clb", "Status": status, "Reason": reason}),
            "",
        ))
        .unwrap()
    };
    assert_eq!(
        elb("Yellow", Some("Connection draining is not enabled")).hash_key,
        elb("Green", None).hash_key
    );
    // Two rules of one security group are two items (HCP4007jGY reports each rule).
    let rule = |ports: &str| {
        parse(&classic(
            "Security Groups - Specific Ports Unrestricted",
            "Yellow",
            json!({"Region": "ap-southeast-1", "Security Group Name": "launch-wizard-3",
                "Security Group ID": "sg-abc123456789 (vpc-01234567)", "Protocol": "tcp",
                "Status": "Yellow", "Ports": ports}),
            "",
        ))
        .unwrap()
    };
    let ssh = rule("22");
    assert_ne!(ssh.hash_key, rule("3389").hash_key);
    assert_eq!(
        ssh.resource,
        "Region=ap-southeast-1; Security Group ID=sg-abc123456789 (vpc-01234567); Protocol=tcp; Ports=22"
    );
    assert_eq!(ssh.region, "ap-southeast-1");
}

/// The same item, as the Support API reports it to the findings sweep, has the same key: the
/// columns name it, not the event's `resource_id`.
#[test]
fn a_classic_item_has_the_same_key_with_or_without_its_arn() {
    let columns = json!({"Region": "us-east-1", "Bucket Name": "tpbucket", "Versioning": "Not enabled",
        "MFA Delete Enabled": "No", "Status": "Yellow"});
    let with_arn = parse(&classic(
        "Amazon S3 Bucket Versioning",
        "Yellow",
        columns.clone(),
        "arn:aws:s3:::tpbucket",
    ))
    .unwrap();
    let without = parse(&classic(
        "Amazon S3 Bucket Versioning",
        "Yellow",
        columns,
        "",
    ))
    .unwrap();
    assert_eq!(with_arn.hash_key, without.hash_key);
    assert_eq!(with_arn.resource_arn(), Some("arn:aws:s3:::tpbucket"));
    assert_eq!(without.resource_arn(), None);
}

#[test]
fn classic_region_columns_name_the_region_where_the_runbook_runs() {
    // Low Utilization Amazon EC2 Instances (Qch7DwouX1): only Region/AZ, an availability zone
    // (the CloudWatch Events guide's sample: "ca-central-1a").
    let instance = parse(&classic(
        "Low Utilization Amazon EC2 Instances",
        "Yellow",
        json!({"Region/AZ": "ca-central-1a", "Instance ID": "i-01234567890abcdef",
            "Instance Name": null, "Instance Type": "t2.micro",
            "Estimated Monthly Savings": "$9.22", "Number of Days Low Utilization": "14 days"}),
        "",
    ))
    .unwrap();
    assert_eq!(instance.region, "ca-central-1");
    assert_eq!(
        instance.resource,
        "Region/AZ=ca-central-1a; Instance ID=i-01234567890abcdef"
    );
    // S3 Bucket Permissions: the region code is the "Region API Parameter" column.
    let bucket = parse(&classic(
        "Amazon S3 Bucket Permissions",
        "Yellow",
        json!({"Region Name": "EU (Ireland)", "Region API Parameter": "eu-west-1",
            "Bucket Name": "b", "Status": "Yellow"}),
        "",
    ))
    .unwrap();
    assert_eq!(bucket.region, "eu-west-1");
}

#[test]
fn an_account_level_check_names_the_account() {
    // IAM Password Policy (Yw2K9puPzl): every column is the account's state (my_hri.json).
    let policy = |uppercase: &str, status: &str| {
        parse(&classic(
            "IAM Password Policy",
            status,
            json!({"Password Policy": "Enabled", "Uppercase": uppercase, "Lowercase": "Enabled",
                "Number": "Enabled", "Non-alphanumeric": "Disabled", "Status": status,
                "Reason": "Password policy does not require uppercase"}),
            "",
        ))
        .unwrap()
    };
    let before = policy("Disabled", "Yellow");
    assert_eq!(before.resource, "AWS::::Account:111122223333");
    assert_eq!(
        before.region, "us-east-1",
        "IAM is global: the stack's region"
    );
    assert_eq!(before.hash_key, policy("Enabled", "Green").hash_key);
}

#[test]
fn an_unknown_classic_check_is_named_by_its_id_columns() {
    // Large Number of Rules in an EC2 Security Group (tfg86AVHAZ), were tarem not to know it.
    let item = |inbound: &str| {
        parse(&classic(
            "A check tarem does not know",
            "Yellow",
            json!({"Region": "eu-west-1", "Security Group Name": "web", "Group ID": "sg-1",
                "Description": "d", "Instance Count": "3", "VPC ID": "vpc-1",
                "Total Inbound Rules": inbound, "Total Outbound Rules": "2"}),
            "",
        ))
        .unwrap()
    };
    assert_eq!(item("60").resource, "Region=eu-west-1; Group ID=sg-1");
    assert_eq!(item("60").hash_key, item("61").hash_key);
}

/// The third review's Red sent at 09:30 but stamped 09:44: the observation cannot be later than
/// the event that carries it.
#[test]
fn an_item_time_ahead_of_its_event_time_is_the_event_time() {
    let finding = parse(&json!({
        "version": "0", "id": "e-2", "detail-type": TA_DETAIL_TYPE, "source": TA_SOURCE,
        "account": "111122223333", "time": "2026-11-28T09:30:00Z", "region": "us-east-1",
        "resources": [], "detail": {"check-name": "c",
            "check-item-detail": {"Status": "Red", "Resource": "arn:aws:ec2:eu-west-1:111122223333:instance/i-1",
                "Last Updated Time": "2026-11-28T09:44:00Z"}}
    }))
    .unwrap();
    assert_eq!(finding.last_updated_time, "2026-11-28T09:30:00.000Z");
    assert_eq!(
        finding.order(),
        Order::new(finding.time_millis(), finding.time_millis(), Status::Red)
    );
}

#[test]
fn resource_identities_that_no_key_can_hold_are_rejected_with_why() {
    let long = format!(
        "arn:aws:s3:::{}",
        "b".repeat(MAX_RESOURCE_BYTES - "arn:aws:s3:::".len() + 1)
    );
    let error = parse(&event(json!({"check-name": "c",
        "check-item-detail": {"Status": "Red", "Resource": long}})))
    .unwrap_err();
    assert!(
        matches!(error, Rejection::ResourceTooLong { bytes, .. } if bytes == MAX_RESOURCE_BYTES + 1),
        "{error}"
    );
    assert!(error.to_string().contains("1024-byte limit"), "{error}");
    let exact = format!(
        "arn:aws:s3:::{}",
        "b".repeat(MAX_RESOURCE_BYTES - "arn:aws:s3:::".len())
    );
    assert!(
        parse(&event(json!({"check-name": "c",
        "check-item-detail": {"Status": "Red", "Resource": exact}})))
        .is_ok()
    );
    let control = parse(&event(json!({"check-name": "c",
        "check-item-detail": {"Status": "Red", "Resource": "arn:aws:s3:::b\u{7}x"}})))
    .unwrap_err();
    assert!(
        control.to_string().contains("control character at byte 14"),
        "{control}"
    );
    let name = parse(&event(
        json!({"check-name": "c".repeat(MAX_CHECK_NAME_BYTES + 1),
        "check-item-detail": {"Status": "Red", "Resource": "arn:aws:s3:::b"}}),
    ))
    .unwrap_err();
    assert!(matches!(name, Rejection::CheckNameTooLong { .. }), "{name}");
}

#[test]
fn a_finding_of_an_account_the_stack_does_not_govern_is_refused() {
    let rules = TrackingRules {
        governed_accounts: Some(["123456789012".to_owned()].into()),
        ..TrackingRules::default()
    };
    // `event` is account 111122223333's.
    let error = finding_from_event(
        &event(json!({"check-name": "c",
            "check-item-detail": {"Status": "Red", "Resource": "arn:aws:iam::111122223333:user/alice"}})),
        now(),
        &rules,
    )
    .unwrap_err();
    assert_eq!(
        error,
        Rejection::NotGoverned {
            account: "111122223333".into()
        }
    );
    let mut own = event(json!({"check-name": "c",
        "check-item-detail": {"Status": "Red", "Resource": "arn:aws:iam::123456789012:user/alice"}}));
    own["account"] = json!("123456789012");
    assert!(finding_from_event(&own, now(), &rules).is_ok());
}
