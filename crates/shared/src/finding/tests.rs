//! The finding rules, one test per rule a user would notice.

use super::*;
use serde_json::{Value, json};

fn now() -> DateTime<Utc> {
    parse_time("2026-11-28T12:00:00Z").unwrap()
}

fn parse(event: &Value) -> Result<Finding, Rejection> {
    finding_from_event(event, now(), &TrackingRules::default())
}

fn reference(name: &str) -> Value {
    let path = format!(
        "{}/../../tests/fixtures/reference/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn event(detail: Value) -> Value {
    json!({
        "version": "0", "id": "e-1", "detail-type": TA_DETAIL_TYPE, "source": TA_SOURCE,
        "account": "111122223333", "time": "2026-11-02T09:00:00Z", "region": "us-east-1",
        "resources": [], "detail": detail
    })
}

#[test]
fn classic_event_takes_status_region_and_time_from_the_rules() {
    let finding = parse(&reference("ta-classic-s3-bucket-versioning.json")).unwrap();
    assert_eq!(finding.check_name, "Amazon S3 Bucket Versioning");
    // A classic check's item is named by its columns; the ARN the event gave is kept beside it.
    assert_eq!(finding.resource, "Region=us-east-1; Bucket Name=tpbucket");
    assert_eq!(finding.resource_arn(), Some("arn:aws:s3:::tpbucket"));
    assert_eq!(finding.resource_status, Status::Yellow);
    assert_eq!(finding.region, "us-east-1");
    // S3 ARNs carry no account: the envelope's is used.
    assert_eq!(finding.account_id.as_deref(), Some("083010608567"));
    // No "Last Updated Time" column: the envelope time.
    assert_eq!(finding.last_updated_time, "2018-09-26T17:25:07.000Z");
    assert_eq!(finding.check_item_detail["Bucket Name"], "tpbucket");
    assert_eq!(
        finding.hash_key,
        finding_key(
            "083010608567",
            "Amazon S3 Bucket Versioning",
            "Region=us-east-1; Bucket Name=tpbucket",
            "us-east-1"
        )
    );
}

#[test]
fn config_sourced_event_keeps_sub_second_time_and_resource_region() {
    let finding = parse(&reference("ta-config-sourced-security-group.json")).unwrap();
    assert_eq!(finding.resource_status, Status::Red);
    assert_eq!(finding.region, "ap-southeast-2");
    assert_eq!(finding.account_id.as_deref(), Some("012345678901"));
    assert_eq!(finding.last_updated_time, "2024-05-13T04:08:32.687Z");
    assert_eq!(finding.finding_time_millis, Some(1_715_573_312_687));
    assert_eq!(finding.last_updated_time_epoch, 1_715_573_312);
}

#[test]
fn top_level_status_is_used_when_the_column_is_missing_and_nulls_are_dropped() {
    let finding = parse(&event(json!({
            "check-name": "Low Utilization Amazon EC2 Instances",
            "check-item-detail": {"Region": "eu-west-1", "Instance ID": "i-1", "Estimated Monthly Savings": null, "Extra Column": 3},
            "status": "WARN",
            "resource_id": "arn:aws:ec2:eu-west-1:111122223333:instance/i-1"
        })),
    )
    .unwrap();
    assert_eq!(finding.resource_status, Status::Yellow);
    assert!(
        !finding
            .check_item_detail
            .contains_key("Estimated Monthly Savings")
    );
    assert_eq!(finding.check_item_detail["Extra Column"], "3");
    assert_eq!(finding.event_id.as_deref(), Some("e-1"));
}

#[test]
fn items_without_an_arn_get_a_stable_identity_from_their_identifying_columns() {
    let item = |savings: &str, status: &str| {
        event(json!({
            "check-name": "Idle Load Balancers",
            "check-item-detail": {"Status": status, "Region": "eu-west-1", "Load Balancer Name": "web", "Estimated Monthly Savings": savings},
            "status": "WARN", "resource_id": ""
        }))
    };
    let first = parse(&item("$18.00", "Yellow")).unwrap();
    let later = parse(&item("$21.60", "Red")).unwrap();
    assert_eq!(first.resource, "Region=eu-west-1; Load Balancer Name=web");
    assert_eq!(
        first.resource, later.resource,
        "volatile columns must not change the identity"
    );
    let other = parse(&event(json!({
            "check-name": "Idle Load Balancers",
            "check-item-detail": {"Status": "Yellow", "Region": "eu-west-1", "Load Balancer Name": "api"},
            "status": "WARN", "resource_id": ""
        })),
    )
    .unwrap();
    assert_ne!(first.resource, other.resource);
}

#[test]
fn region_falls_back_to_the_arn_then_the_envelope() {
    let from_arn = parse(&event(
        json!({"check-name": "c", "check-item-detail": {"Status": "Red", "Region": "-"},
            "resource_id": "arn:aws:ec2:sa-east-1:111122223333:volume/vol-1"}),
    ))
    .unwrap();
    assert_eq!(from_arn.region, "sa-east-1");
    let global = parse(&event(
        json!({"check-name": "c", "check-item-detail": {"Status": "Red"},
            "resource_id": "arn:aws:iam::111122223333:user/bob"}),
    ))
    .unwrap();
    assert_eq!(global.region, "us-east-1");
    assert_eq!(global.account_id.as_deref(), Some("111122223333"));
}

#[test]
fn unusable_events_are_rejected_with_the_field_at_fault() {
    let cases: Vec<(Value, &str)> = vec![
        (json!("text"), "not a JSON object"),
        (
            json!({"source": "aws.ec2", "detail-type": TA_DETAIL_TYPE}),
            "source \"aws.ec2\"",
        ),
        (
            json!({"source": TA_SOURCE, "detail-type": TA_DETAIL_TYPE}),
            "`detail` is missing",
        ),
        (
            json!({"source": TA_SOURCE, "detail-type": TA_DETAIL_TYPE, "detail": [1]}),
            "`detail` must be an object, found an array",
        ),
        (
            event(json!({"check-item-detail": {"Status": "Red"}, "resource_id": "r"})),
            "check-name",
        ),
        (
            event(json!({"check-name": "c", "check-item-detail": "x", "resource_id": "r"})),
            "check-item-detail` must be an object",
        ),
        (
            event(
                json!({"check-name": "c", "check-item-detail": {"Status": "Purple"}, "resource_id": "r"}),
            ),
            "found \"Purple\"",
        ),
        (
            event(
                json!({"check-name": "c", "check-item-detail": {"Status": "Red", "Last Updated Time": "yesterday"}, "resource_id": "r"}),
            ),
            "\"yesterday\"",
        ),
        (
            event(
                json!({"check-name": "c", "check-item-detail": {"Status": "Red", "Count": "3"}, "resource_id": ""}),
            ),
            "no resource identity",
        ),
    ];
    for (input, expected) in cases {
        let error = parse(&input).unwrap_err().to_string();
        assert!(
            error.contains(expected),
            "{input}: {error:?} should mention {expected:?}"
        );
    }
    let mut no_time = event(
        json!({"check-name": "c", "check-item-detail": {"Status": "Red"}, "resource_id": "r"}),
    );
    no_time.as_object_mut().unwrap().remove("time");
    assert_eq!(parse(&no_time), Err(Rejection::MissingTime));
}

#[test]
fn a_row_over_the_item_limit_is_rejected() {
    let huge = "x".repeat(MAX_ITEM_BYTES);
    let error = parse(&event(json!({"check-name": "c", "check-item-detail": {"Status": "Red", "Notes": huge}, "resource_id": "r"})),
    )
    .unwrap_err();
    assert!(
        matches!(error, Rejection::TooLarge { bytes } if bytes > MAX_ITEM_BYTES),
        "{error}"
    );
}

#[test]
fn finding_keys_separate_their_parts() {
    assert_ne!(
        finding_key("1", "ab", "c", "r"),
        finding_key("1", "a", "bc", "r")
    );
    assert_ne!(
        finding_key("1", "c", "r", "x"),
        finding_key("2", "c", "r", "x")
    );
    assert_eq!(finding_key("1", "a", "b", "c").len(), 64);
    // An ARN names the resource alone; any other id keeps its region.
    let arn = "arn:aws:iam::111122223333:user/bob";
    assert_eq!(
        finding_key("1", "c", arn, "us-east-1"),
        finding_key("1", "c", arn, "eu-west-1")
    );
    assert_ne!(
        finding_key("1", "c", "ta-item/01", "us-east-1"),
        finding_key("1", "c", "ta-item/01", "eu-west-1")
    );
}

fn sourced(resource: &str, region_column: &str, status: &str, item: &str, said: &str) -> Value {
    let mut event = event(json!({
        "check-name": "c",
        "check-item-detail": {"Status": status, "Region": region_column, "Resource": resource, "Last Updated Time": item},
        "resource_id": resource
    }));
    event["time"] = json!(said);
    event
}

#[test]
fn an_arn_is_one_finding_whatever_its_region_column_says() {
    let user = "arn:aws:iam::111122223333:user/bob";
    let east = parse(&sourced(
        user,
        "us-east-1",
        "Red",
        "2026-11-02T09:00:00Z",
        "2026-11-02T09:01:00Z",
    ))
    .unwrap();
    let west = parse(&sourced(
        user,
        "eu-west-1",
        "Red",
        "2026-11-02T09:00:00Z",
        "2026-11-02T09:01:00Z",
    ))
    .unwrap();
    assert_eq!(east.hash_key, west.hash_key, "one IAM user, one finding");
    assert_eq!(
        (east.region.as_str(), west.region.as_str()),
        ("us-east-1", "us-east-1"),
        "global: the stack's region"
    );
    let rules = TrackingRules {
        home_region: "eu-central-1".into(),
        ..TrackingRules::default()
    };
    let home = finding_from_event(
        &sourced(
            user,
            "eu-west-1",
            "Red",
            "2026-11-02T09:00:00Z",
            "2026-11-02T09:01:00Z",
        ),
        now(),
        &rules,
    )
    .unwrap();
    assert_eq!(home.region, "eu-central-1");

    let group = "arn:aws:ec2:ap-southeast-2:111122223333:security-group/sg-1";
    let wrong = parse(&sourced(
        group,
        "us-west-2",
        "Red",
        "2026-11-02T09:00:00Z",
        "2026-11-02T09:01:00Z",
    ))
    .unwrap();
    assert_eq!(
        wrong.region, "ap-southeast-2",
        "the ARN wins over the column"
    );
    assert_eq!(wrong.region_column_conflict(), Some("us-west-2"));
    let right = parse(&sourced(
        group,
        "ap-southeast-2",
        "Red",
        "2026-11-02T09:00:00Z",
        "2026-11-02T09:01:00Z",
    ))
    .unwrap();
    assert_eq!(right.hash_key, wrong.hash_key);
    assert_eq!(right.region_column_conflict(), None);

    // An S3 ARN carries no region: the column says where the bucket lives.
    let bucket = parse(&sourced(
        "arn:aws:s3:::logs",
        "eu-west-3",
        "Red",
        "2026-11-02T09:00:00Z",
        "2026-11-02T09:01:00Z",
    ))
    .unwrap();
    assert_eq!(bucket.region, "eu-west-3");
    assert_eq!(bucket.region_column_conflict(), None);
}

#[test]
fn the_account_is_part_of_the_identity() {
    let group = "arn:aws:ec2:eu-west-1:111122223333:security-group/sg-1";
    let mine = parse(&sourced(
        group,
        "eu-west-1",
        "Red",
        "2026-11-02T09:00:00Z",
        "2026-11-02T09:01:00Z",
    ))
    .unwrap();
    let mut other = sourced(
        group,
        "eu-west-1",
        "Red",
        "2026-11-02T09:00:00Z",
        "2026-11-02T09:01:00Z",
    );
    other["account"] = json!("444455556666");
    let theirs = parse(&other).unwrap();
    assert_ne!(mine.hash_key, theirs.hash_key);
    assert_eq!(theirs.account_id.as_deref(), Some("444455556666"));
}

#[test]
fn times_beyond_the_tolerance_are_rejected_naming_the_field() {
    let group = "arn:aws:ec2:eu-west-1:111122223333:security-group/sg-1";
    // now() is 2026-11-28T12:00:00Z; the tolerance is 15 minutes.
    let future_item = parse(&sourced(
        group,
        "eu-west-1",
        "Red",
        "2099-01-01T00:00:00Z",
        "2026-11-28T12:00:00Z",
    ))
    .unwrap_err();
    assert!(
        matches!(
            future_item,
            Rejection::FutureTime {
                field: "detail.check-item-detail.Last Updated Time",
                ..
            }
        ),
        "{future_item}"
    );
    assert!(
        future_item.to_string().contains("2099-01-01T00:00:00Z"),
        "{future_item}"
    );
    let future_envelope = parse(&sourced(
        group,
        "eu-west-1",
        "Red",
        "2026-11-28T11:00:00Z",
        "2026-11-28T12:16:00Z",
    ))
    .unwrap_err();
    assert!(
        matches!(future_envelope, Rejection::FutureTime { field: "time", .. }),
        "{future_envelope}"
    );
    // Within the tolerance (clock skew) is fine.
    assert!(
        parse(&sourced(
            group,
            "eu-west-1",
            "Red",
            "2026-11-28T12:14:00Z",
            "2026-11-28T12:14:30Z"
        ))
        .is_ok()
    );
}

#[test]
fn the_order_is_item_time_then_event_time_then_severity() {
    let group = "arn:aws:ec2:eu-west-1:111122223333:security-group/sg-1";
    let at = |status: &str, item: &str, said: &str| {
        parse(&sourced(group, "eu-west-1", status, item, said))
            .unwrap()
            .order()
    };
    let red = at("Red", "2026-11-02T09:00:00Z", "2026-11-02T09:01:00Z");
    let green_later_said = at("Green", "2026-11-02T09:00:00Z", "2026-11-02T09:02:00Z");
    let green_same = at("Green", "2026-11-02T09:00:00Z", "2026-11-02T09:01:00Z");
    let yellow_later_item = at("Yellow", "2026-11-02T09:00:00.001Z", "2026-11-02T09:00:30Z");
    assert!(
        green_later_said > red,
        "same item time: the later event wins, whatever its status"
    );
    assert!(red > green_same, "a full tie: the more severe status wins");
    assert!(
        yellow_later_item > green_later_said,
        "the item time decides first"
    );
    assert_eq!(placement(red, Some(red)), Placement::Same);
    assert_eq!(placement(red, Some(green_later_said)), Placement::Older);
    assert_eq!(placement(red, None), Placement::Newer);
    // A row of another tool (seconds only) is replaced by any observation of that second.
    assert!(red > Order::legacy(red.item_millis()));
    assert!(Order::legacy(red.item_millis() + 1) > red);
}

#[test]
fn encoded_orders_sort_as_the_orders_do() {
    let orders = [
        Order::legacy(0),
        Order::new(0, 1, Status::Green),
        Order::new(5, 1, Status::Red),
        Order::new(5, 2, Status::Green),
        Order::new(5, 2, Status::Yellow),
        Order::new(1_715_573_312_687, 1_715_573_400_000, Status::Green),
        Order::new(1_715_573_312_687, 1_715_573_400_000, Status::Red),
        Order::new(i64::MAX, i64::MAX, Status::Red),
    ];
    for a in &orders {
        assert_eq!(Order::decode(&a.encode()), Some(*a));
        for b in &orders {
            assert_eq!(a.cmp(b), a.encode().cmp(&b.encode()), "{a:?} vs {b:?}");
        }
    }
    assert_eq!(
        Order::new(-5, -5, Status::Red),
        Order::new(0, 1, Status::Red)
    );
    for bad in [
        "",
        "1.2.3",
        "000000000000001.000000000000001",
        "00000000000000x.000000000000001.1",
        // Each width rule alone: a key of another width would not sort as its order does.
        "000000000000001.000000000000001.1.1",
        "1.000000000000001.1",
        "000000000000001.1.1",
        "000000000000001.000000000000001.12",
    ] {
        assert_eq!(Order::decode(bad), None, "{bad:?}");
    }
}

#[test]
fn a_flagged_write_keeps_the_episode_it_continues_and_green_ends_it() {
    let group = "arn:aws:ec2:eu-west-1:111122223333:security-group/sg-1";
    let first = parse(&sourced(
        group,
        "eu-west-1",
        "Red",
        "2026-11-02T09:00:00Z",
        "2026-11-02T09:01:00Z",
    ))
    .unwrap();
    assert_eq!(
        first.flagged_since.as_deref(),
        Some("2026-11-02T09:00:00.000Z")
    );
    assert_eq!(first.episode, first.order_key);
    let row = first.written_over(None);
    let refresh = parse(&sourced(
        group,
        "eu-west-1",
        "Yellow",
        "2026-11-03T09:00:00Z",
        "2026-11-03T09:01:00Z",
    ))
    .unwrap();
    let row = refresh.written_over(Some(&row));
    assert_eq!(
        row.flagged_since, first.flagged_since,
        "Red to Yellow stays in the episode"
    );
    assert_eq!(row.episode, first.episode);
    let green = parse(&sourced(
        group,
        "eu-west-1",
        "Green",
        "2026-11-04T09:00:00Z",
        "2026-11-04T09:01:00Z",
    ))
    .unwrap();
    let row = green.written_over(Some(&row));
    assert_eq!((&row.flagged_since, &row.episode), (&None, &None));
    let again = parse(&sourced(
        group,
        "eu-west-1",
        "Red",
        "2026-11-05T09:00:00Z",
        "2026-11-05T09:01:00Z",
    ))
    .unwrap();
    let next = again.written_over(Some(&row));
    assert_eq!(
        next.flagged_since.as_deref(),
        Some("2026-11-05T09:00:00.000Z")
    );
    assert_ne!(next.episode, first.episode, "a new episode");
}
