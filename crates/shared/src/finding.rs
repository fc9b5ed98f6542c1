//! Trusted Advisor "Check Item Refresh Notification" events and the finding they describe.
//!
//! A [`Finding`] is one (check, resource, region) with its latest status; it is also the tracker
//! table's row, attribute for attribute, so the stream image decodes straight back into it.
//!
//! ## Resource identity
//! 1. `check-item-detail.Resource` when it is a non-empty string (Config / Security Hub sourced
//!    checks put the resource's ARN there);
//! 2. otherwise the top-level `resource_id` when it is non-empty (classic checks);
//! 3. otherwise `ta-item/<16 hex digits>`, a hash of the check-item columns that identify the item:
//!    every non-null column except `Status`, `Last Updated Time` and columns whose value holds no
//!    letter (counts, costs, percentages, dates change between refreshes and must not create a new
//!    finding). An item with no such column is rejected: it cannot be told apart from the others.
//!
//! ## Region
//! `check-item-detail.Region` when it is a region code, else the region inside the resource ARN,
//! else the envelope's region (always us-east-1 for Trusted Advisor: global resources live there).
//!
//! ## Finding time
//! `check-item-detail."Last Updated Time"` (RFC 3339, sub-second precision kept to the millisecond)
//! when present, else the envelope's `time`. A present but unparseable time rejects the event:
//! guessing would let an old finding overwrite a newer one.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

pub const TA_SOURCE: &str = "aws.trustedadvisor";
pub const TA_DETAIL_TYPE: &str = "Trusted Advisor Check Item Refresh Notification";
/// DynamoDB's item size limit.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// Trusted Advisor's traffic light.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    Red,
    Yellow,
    Green,
}

impl Status {
    /// Red and Yellow findings want attention; Green means fixed.
    pub fn is_flagged(self) -> bool {
        !matches!(self, Status::Green)
    }

    /// Reads both vocabularies: the item's `Status` column (Red/Yellow/Green) and the classic
    /// top-level `status` (ERROR/WARN/OK).
    pub fn parse(text: &str) -> Option<Status> {
        match text.trim().to_ascii_lowercase().as_str() {
            "red" | "error" => Some(Status::Red),
            "yellow" | "warn" | "warning" => Some(Status::Yellow),
            "green" | "ok" => Some(Status::Green),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Red => "Red",
            Status::Yellow => "Yellow",
            Status::Green => "Green",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the tracker learnt about a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingSource {
    #[default]
    Event,
    Reconcile,
}

/// One tracked finding: the tracker table's row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Hash of check, resource and region: the table's partition key.
    pub hash_key: String,
    /// The resource identity (an ARN when Trusted Advisor gave one): the table's sort key.
    pub resource: String,
    pub check_name: String,
    pub resource_status: Status,
    /// RFC 3339, milliseconds, UTC.
    pub last_updated_time: String,
    /// Seconds since the epoch (the attribute AWS's reference implementation writes).
    pub last_updated_time_epoch: i64,
    /// Milliseconds since the epoch: what "newer" means for the conditional write. Absent in rows
    /// written by other tools; [`Finding::time_millis`] falls back to the epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding_time_millis: Option<i64>,
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The check-item columns as Trusted Advisor sent them (nulls dropped), for templates and
    /// OpsItems.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub check_item_detail: BTreeMap<String, String>,
    #[serde(default)]
    pub source: FindingSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracked_at: Option<String>,
}

impl Finding {
    pub fn time_millis(&self) -> i64 {
        self.finding_time_millis
            .unwrap_or(self.last_updated_time_epoch.saturating_mul(1000))
    }

    /// The resource's ARN, when its identity is one.
    pub fn resource_arn(&self) -> Option<&str> {
        self.resource
            .starts_with("arn:")
            .then_some(self.resource.as_str())
    }
}

/// The tracker key of a finding: hex SHA-256 of check, resource and region, separated by a byte
/// that none of them contains.
pub fn finding_key(check_name: &str, resource: &str, region: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [check_name, resource, region] {
        hasher.update(part.as_bytes());
        hasher.update([0x1f]);
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            // Writing to a String cannot fail.
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// Why an event cannot become a finding. Each names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the event is not a JSON object")]
    NotAnObject,
    #[error(
        "not a Trusted Advisor check item event: source {event_source:?}, detail-type {detail_type:?} (expected {TA_SOURCE:?}, {TA_DETAIL_TYPE:?})"
    )]
    NotTrustedAdvisor {
        event_source: Option<String>,
        detail_type: Option<String>,
    },
    #[error("`detail` is missing")]
    MissingDetail,
    #[error("`{field}` must be {expected}, found {found}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
        found: &'static str,
    },
    #[error("`detail.check-name` is missing or empty")]
    MissingCheckName,
    #[error(
        "no status: neither `detail.check-item-detail.Status` nor `detail.status` holds Red/Yellow/Green or OK/WARN/ERROR (found {found:?})"
    )]
    MissingStatus { found: Option<String> },
    #[error("`{field}` is not an RFC 3339 time: {value:?}")]
    BadTime { field: &'static str, value: String },
    #[error(
        "no finding time: `detail.check-item-detail.Last Updated Time` and the envelope `time` are both missing"
    )]
    MissingTime,
    #[error(
        "no resource identity: `Resource` and `resource_id` are empty and no check-item column identifies the item"
    )]
    NoResourceIdentity,
    #[error(
        "the tracker row would be {bytes} bytes, over DynamoDB's {MAX_ITEM_BYTES}-byte item limit"
    )]
    TooLarge { bytes: usize },
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Text of a non-null column; other JSON types keep their JSON spelling.
fn column_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn non_empty_str<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    object
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

static REGION_CODE: LazyLock<regex::Regex> = LazyLock::new(|| {
    // A literal pattern: compiling it cannot fail.
    regex::Regex::new(r"^[a-z]{2}(-[a-z]+)+-\d+$").expect("static region pattern")
});

pub fn is_region_code(text: &str) -> bool {
    REGION_CODE.is_match(text)
}

/// The parts of an ARN we use: region and account.
pub fn arn_region_and_account(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.splitn(6, ':');
    (parts.next()? == "arn").then_some(())?;
    let _partition = parts.next()?;
    let _service = parts.next()?;
    let region = parts.next()?;
    let account = parts.next()?;
    parts.next()?;
    Some((region, account))
}

/// Parses RFC 3339, or an ISO date-time without offset read as UTC.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
}

pub fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Normalises a Trusted Advisor event into a finding (see the module docs for the rules).
pub fn finding_from_event(event: &Value, now: DateTime<Utc>) -> Result<Finding, Rejection> {
    let envelope = event.as_object().ok_or(Rejection::NotAnObject)?;
    let source = envelope.get("source").and_then(Value::as_str);
    let detail_type = envelope.get("detail-type").and_then(Value::as_str);
    if source != Some(TA_SOURCE) || detail_type != Some(TA_DETAIL_TYPE) {
        return Err(Rejection::NotTrustedAdvisor {
            event_source: source.map(str::to_owned),
            detail_type: detail_type.map(str::to_owned),
        });
    }
    let detail = match envelope.get("detail") {
        None | Some(Value::Null) => return Err(Rejection::MissingDetail),
        Some(Value::Object(detail)) => detail,
        Some(other) => {
            return Err(Rejection::WrongType {
                field: "detail",
                expected: "an object",
                found: type_name(other),
            });
        }
    };
    let check_name = non_empty_str(detail, "check-name").ok_or(Rejection::MissingCheckName)?;
    let empty = Map::new();
    let item = match detail.get("check-item-detail") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(item)) => item,
        Some(other) => {
            return Err(Rejection::WrongType {
                field: "detail.check-item-detail",
                expected: "an object",
                found: type_name(other),
            });
        }
    };
    let columns: BTreeMap<String, String> = item
        .iter()
        .filter_map(|(name, value)| column_text(value).map(|text| (name.clone(), text)))
        .collect();

    let status_column = non_empty_str(item, "Status");
    let status_top = non_empty_str(detail, "status");
    let status = status_column
        .and_then(Status::parse)
        .or_else(|| status_top.and_then(Status::parse))
        .ok_or_else(|| Rejection::MissingStatus {
            found: status_column.or(status_top).map(str::to_owned),
        })?;

    let time = match non_empty_str(item, "Last Updated Time") {
        Some(text) => parse_time(text).ok_or_else(|| Rejection::BadTime {
            field: "detail.check-item-detail.Last Updated Time",
            value: text.to_owned(),
        })?,
        None => match non_empty_str(envelope, "time") {
            Some(text) => parse_time(text).ok_or_else(|| Rejection::BadTime {
                field: "time",
                value: text.to_owned(),
            })?,
            None => return Err(Rejection::MissingTime),
        },
    };

    let resource =
        match non_empty_str(item, "Resource").or_else(|| non_empty_str(detail, "resource_id")) {
            Some(resource) => resource.to_owned(),
            None => synthetic_identity(&columns).ok_or(Rejection::NoResourceIdentity)?,
        };
    let arn_parts = arn_region_and_account(&resource);
    let envelope_region = non_empty_str(envelope, "region").unwrap_or("us-east-1");
    let region = non_empty_str(item, "Region")
        .filter(|r| is_region_code(r))
        .or_else(|| {
            arn_parts
                .map(|(region, _)| region)
                .filter(|r| is_region_code(r))
        })
        .unwrap_or(envelope_region)
        .to_owned();
    let account_id = arn_parts
        .map(|(_, account)| account)
        .filter(|a| !a.is_empty())
        .or_else(|| non_empty_str(envelope, "account"))
        .map(str::to_owned);

    let finding = Finding {
        hash_key: finding_key(check_name, &resource, &region),
        resource,
        check_name: check_name.to_owned(),
        resource_status: status,
        last_updated_time: format_time(time),
        last_updated_time_epoch: time.timestamp(),
        finding_time_millis: Some(time.timestamp_millis()),
        region,
        account_id,
        check_item_detail: columns,
        source: FindingSource::Event,
        event_id: non_empty_str(envelope, "id").map(str::to_owned),
        tracked_at: Some(format_time(now)),
    };
    let bytes = crate::stream::item_size(&finding);
    if bytes > MAX_ITEM_BYTES {
        return Err(Rejection::TooLarge { bytes });
    }
    Ok(finding)
}

/// Rule 3 of the resource identity (module docs).
fn synthetic_identity(columns: &BTreeMap<String, String>) -> Option<String> {
    let mut hasher = Sha256::new();
    let mut identifying = 0;
    for (name, value) in columns {
        let volatile = matches!(name.as_str(), "Status" | "Last Updated Time")
            || !value.chars().any(char::is_alphabetic);
        if !volatile {
            identifying += 1;
            for part in [name, value] {
                hasher.update(part.as_bytes());
                hasher.update([0x1f]);
            }
        }
    }
    (identifying > 0).then(|| format!("ta-item/{}", &hex(&hasher.finalize())[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        parse_time("2026-11-28T12:00:00Z").unwrap()
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
        let finding =
            finding_from_event(&reference("ta-classic-s3-bucket-versioning.json"), now()).unwrap();
        assert_eq!(finding.check_name, "Amazon S3 Bucket Versioning");
        assert_eq!(finding.resource, "arn:aws:s3:::tpbucket");
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
                "Amazon S3 Bucket Versioning",
                "arn:aws:s3:::tpbucket",
                "us-east-1"
            )
        );
    }

    #[test]
    fn config_sourced_event_keeps_sub_second_time_and_resource_region() {
        let finding =
            finding_from_event(&reference("ta-config-sourced-security-group.json"), now()).unwrap();
        assert_eq!(finding.resource_status, Status::Red);
        assert_eq!(finding.region, "ap-southeast-2");
        assert_eq!(finding.account_id.as_deref(), Some("012345678901"));
        assert_eq!(finding.last_updated_time, "2024-05-13T04:08:32.687Z");
        assert_eq!(finding.finding_time_millis, Some(1_715_573_312_687));
        assert_eq!(finding.last_updated_time_epoch, 1_715_573_312);
    }

    #[test]
    fn top_level_status_is_used_when_the_column_is_missing_and_nulls_are_dropped() {
        let finding = finding_from_event(
            &event(json!({
                "check-name": "Low Utilization Amazon EC2 Instances",
                "check-item-detail": {"Region": "eu-west-1", "Instance ID": "i-1", "Estimated Monthly Savings": null, "Extra Column": 3},
                "status": "WARN",
                "resource_id": "arn:aws:ec2:eu-west-1:111122223333:instance/i-1"
            })),
            now(),
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
        let first = finding_from_event(&item("$18.00", "Yellow"), now()).unwrap();
        let later = finding_from_event(&item("$21.60", "Red"), now()).unwrap();
        assert!(first.resource.starts_with("ta-item/"), "{}", first.resource);
        assert_eq!(
            first.resource, later.resource,
            "volatile columns must not change the identity"
        );
        let other = finding_from_event(
            &event(json!({
                "check-name": "Idle Load Balancers",
                "check-item-detail": {"Status": "Yellow", "Region": "eu-west-1", "Load Balancer Name": "api"},
                "status": "WARN", "resource_id": ""
            })),
            now(),
        )
        .unwrap();
        assert_ne!(first.resource, other.resource);
    }

    #[test]
    fn region_falls_back_to_the_arn_then_the_envelope() {
        let from_arn = finding_from_event(
            &event(
                json!({"check-name": "c", "check-item-detail": {"Status": "Red", "Region": "-"},
                "resource_id": "arn:aws:ec2:sa-east-1:111122223333:volume/vol-1"}),
            ),
            now(),
        )
        .unwrap();
        assert_eq!(from_arn.region, "sa-east-1");
        let global = finding_from_event(
            &event(
                json!({"check-name": "c", "check-item-detail": {"Status": "Red"},
                "resource_id": "arn:aws:iam::111122223333:user/bob"}),
            ),
            now(),
        )
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
                "source Some(\"aws.ec2\")",
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
                "found Some(\"Purple\")",
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
            let error = finding_from_event(&input, now()).unwrap_err().to_string();
            assert!(
                error.contains(expected),
                "{input}: {error:?} should mention {expected:?}"
            );
        }
        let mut no_time = event(
            json!({"check-name": "c", "check-item-detail": {"Status": "Red"}, "resource_id": "r"}),
        );
        no_time.as_object_mut().unwrap().remove("time");
        assert_eq!(
            finding_from_event(&no_time, now()),
            Err(Rejection::MissingTime)
        );
    }

    #[test]
    fn a_row_over_the_item_limit_is_rejected() {
        let huge = "x".repeat(MAX_ITEM_BYTES);
        let error = finding_from_event(
            &event(json!({"check-name": "c", "check-item-detail": {"Status": "Red", "Notes": huge}, "resource_id": "r"})),
            now(),
        )
        .unwrap_err();
        assert!(
            matches!(error, Rejection::TooLarge { bytes } if bytes > MAX_ITEM_BYTES),
            "{error}"
        );
    }

    #[test]
    fn finding_keys_separate_their_parts() {
        assert_ne!(finding_key("ab", "c", "r"), finding_key("a", "bc", "r"));
        assert_eq!(finding_key("a", "b", "c").len(), 64);
    }
}
