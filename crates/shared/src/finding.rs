//! Trusted Advisor "Check Item Refresh Notification" events and the finding they describe.
//!
//! A [`Finding`] is one resource's latest status for one check; it is also the tracker table's
//! row, attribute for attribute, so the stream image decodes straight back into it.
//!
//! ## Identity: one resource, one finding
//! The finding key is a hash of the account, the check and the resource:
//! - the account is the event's `account` (the same table can hold many accounts' findings);
//! - the resource is `check-item-detail.Resource` when it is a non-empty string (Config / Security
//!   Hub sourced checks put the ARN there), else the top-level `resource_id` when non-empty
//!   (classic checks), else `ta-item/<16 hex digits>`, a hash of the check-item columns that
//!   identify the item (every non-null column except `Status`, `Last Updated Time` and columns
//!   whose value holds no letter: counts, costs and dates change between refreshes);
//! - when the resource is an ARN, the ARN alone names it: no column can split it in two. A
//!   resource without an ARN (`ta-item/…`, or a plain id) keeps its region in the key, since the
//!   same id can exist in two regions.
//!
//! ## Region (where its runbook runs)
//! The region inside the ARN. For an ARN without one: global services (IAM, CloudFront,
//! Route 53, Organizations…) use the stack's region for API calls; others (S3 buckets) take the
//! `Region` column when it is a region code. Without an ARN: the `Region` column, else the
//! envelope's region (us-east-1 for Trusted Advisor). A `Region` column that contradicts the ARN
//! is ignored (the ARN wins) and check-tracker logs both ([`Finding::region_column_conflict`]).
//!
//! ## Order: which state is latest
//! A total order per finding ([`Order`]): the item's `Last Updated Time`, then the event's
//! envelope `time` (when Trusted Advisor said it), then, for a full tie, Red over Yellow over
//! Green. A different status is never a duplicate. A time more than the tolerance ahead of the
//! receiving clock (15 minutes by default) rejects the event: it would freeze the finding. A
//! present but unparseable time rejects it too: guessing would let an old state win.
//!
//! ## Episodes
//! A flagged row carries `flaggedSince` (when the finding became flagged) and `episode` (the
//! order key of the observation that opened it). The tracker write keeps both while the finding
//! stays flagged and removes them when it turns Green, so a remediation episode is named by the
//! tracker itself and survives any state row's TTL.

use chrono::{DateTime, Duration, NaiveDateTime, SecondsFormat, Utc};
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

    /// The last tie-breaker of the order: with the same item and event times, the more severe
    /// status wins (a finding is never hidden by a tie).
    fn rank(self) -> u8 {
        match self {
            Status::Green => 0,
            Status::Yellow => 1,
            Status::Red => 2,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A finding's place in the total order of its states (module docs, "Order"): item time, then
/// event time, then status rank. The one comparison both table adapters use: the in-memory one
/// compares these values, DynamoDB compares their [`Order::encode`]d strings, which sort the
/// same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Order {
    item_millis: i64,
    event_millis: i64,
    rank: u8,
}

/// Fifteen digits of milliseconds reach the year 33658: every encoded key has the same width, so
/// string order is numeric order.
const ORDER_MAX_MILLIS: i64 = 999_999_999_999_999;

impl Order {
    /// The order of an observation. Event times are at least 1 ms, so every observation sorts
    /// after a [legacy](Order::legacy) row with the same item time.
    pub fn new(item_millis: i64, event_millis: i64, status: Status) -> Self {
        Self {
            item_millis: item_millis.clamp(0, ORDER_MAX_MILLIS),
            event_millis: event_millis.clamp(1, ORDER_MAX_MILLIS),
            rank: status.rank(),
        }
    }

    /// A row written by another tool (AWS's reference writes only `lastUpdatedTimeEpoch`): its
    /// item time, nothing else known.
    pub fn legacy(item_millis: i64) -> Self {
        Self {
            item_millis: item_millis.clamp(0, ORDER_MAX_MILLIS),
            event_millis: 0,
            rank: 0,
        }
    }

    /// `iiiiiiiiiiiiiii.eeeeeeeeeeeeeee.r`: fixed width, so strings compare as the values do.
    pub fn encode(&self) -> String {
        format!(
            "{:015}.{:015}.{}",
            self.item_millis, self.event_millis, self.rank
        )
    }

    pub fn decode(text: &str) -> Option<Self> {
        let mut parts = text.split('.');
        let (item, event, rank) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || item.len() != 15 || event.len() != 15 || rank.len() != 1 {
            return None;
        }
        Some(Self {
            item_millis: item.parse().ok()?,
            event_millis: event.parse().ok()?,
            rank: rank.parse().ok()?,
        })
    }

    pub fn item_millis(&self) -> i64 {
        self.item_millis
    }

    pub fn event_millis(&self) -> i64 {
        self.event_millis
    }
}

/// A stored row's place in the order, from its attributes: its order key; a row without one
/// (another tool's) is a [legacy](Order::legacy) row at `findingTimeMillis`, else at
/// `lastUpdatedTimeEpoch` seconds. `None` when the row has none of them.
pub fn stored_order(
    order_key: Option<&str>,
    finding_time_millis: Option<i64>,
    epoch_seconds: Option<i64>,
) -> Option<Order> {
    order_key.and_then(Order::decode).or_else(|| {
        finding_time_millis
            .or(epoch_seconds.map(|seconds| seconds.saturating_mul(1000)))
            .map(Order::legacy)
    })
}

/// What a tracker write does with a finding, given the stored row's order: the one rule both
/// table adapters follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Later in the order (or no row yet): it replaces the row.
    Newer,
    /// The very same observation: nothing changes.
    Same,
    /// Earlier in the order: dropped.
    Older,
}

pub fn placement(new: Order, stored: Option<Order>) -> Placement {
    match stored {
        None => Placement::Newer,
        Some(stored) => match new.cmp(&stored) {
            std::cmp::Ordering::Greater => Placement::Newer,
            std::cmp::Ordering::Equal => Placement::Same,
            std::cmp::Ordering::Less => Placement::Older,
        },
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
    /// Hash of account, check and resource (module docs): the table's partition key.
    pub hash_key: String,
    /// The resource identity (an ARN when Trusted Advisor gave one): the table's sort key.
    pub resource: String,
    pub check_name: String,
    pub resource_status: Status,
    /// The item time, RFC 3339, milliseconds, UTC.
    pub last_updated_time: String,
    /// Seconds since the epoch (the attribute AWS's reference implementation writes).
    pub last_updated_time_epoch: i64,
    /// The item time in milliseconds. Absent in rows written by other tools;
    /// [`Finding::time_millis`] falls back to the epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding_time_millis: Option<i64>,
    /// When Trusted Advisor said it: the event's envelope `time` (a sweep's result time for
    /// reconciled rows), milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time_millis: Option<i64>,
    /// [`Order::encode`] of this observation: what the conditional write compares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_key: Option<String>,
    /// While flagged: when the finding became flagged (RFC 3339), kept across refreshes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flagged_since: Option<String>,
    /// While flagged: the order key of the observation that opened this flagged episode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episode: Option<String>,
    /// The region the resource lives in (where its runbook runs).
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
    /// A finding of `check_name` for `resource`, keyed as events key it; [`Finding::at`] sets
    /// its state.
    pub fn new(account: &str, check_name: &str, resource: &str, region: &str) -> Finding {
        Finding {
            hash_key: finding_key(account, check_name, resource, region),
            resource: resource.to_owned(),
            check_name: check_name.to_owned(),
            resource_status: Status::Green,
            last_updated_time: format_time(DateTime::UNIX_EPOCH),
            last_updated_time_epoch: 0,
            finding_time_millis: Some(0),
            event_time_millis: None,
            order_key: None,
            flagged_since: None,
            episode: None,
            region: region.to_owned(),
            account_id: (!account.is_empty()).then(|| account.to_owned()),
            check_item_detail: BTreeMap::new(),
            source: FindingSource::Event,
            event_id: None,
            tracked_at: None,
        }
    }

    /// This finding in `status` as of `item` (the item time), said at `said` (the event time):
    /// the time attributes, the order key and the episode markers, derived in one place.
    pub fn at(mut self, status: Status, item: DateTime<Utc>, said: DateTime<Utc>) -> Finding {
        let order = Order::new(item.timestamp_millis(), said.timestamp_millis(), status);
        let flagged = status.is_flagged();
        self.resource_status = status;
        self.last_updated_time = format_time(item);
        self.last_updated_time_epoch = item.timestamp();
        self.finding_time_millis = Some(item.timestamp_millis());
        self.event_time_millis = Some(said.timestamp_millis());
        self.order_key = Some(order.encode());
        self.flagged_since = flagged.then(|| format_time(item));
        self.episode = flagged.then(|| order.encode());
        self
    }

    pub fn time_millis(&self) -> i64 {
        self.finding_time_millis
            .unwrap_or(self.last_updated_time_epoch.saturating_mul(1000))
    }

    /// This row's place in the order ([`stored_order`]).
    pub fn order(&self) -> Order {
        stored_order(
            self.order_key.as_deref(),
            self.finding_time_millis,
            Some(self.last_updated_time_epoch),
        )
        .unwrap_or_else(|| Order::legacy(0))
    }

    /// The resource's ARN, when its identity is one.
    pub fn resource_arn(&self) -> Option<&str> {
        is_arn(&self.resource).then_some(self.resource.as_str())
    }

    /// The row a tracker write leaves when this finding replaces `stored`: while flagged, the
    /// episode markers of a flagged row are kept (`if_not_exists` on DynamoDB); a Green finding
    /// carries none.
    pub fn written_over(&self, stored: Option<&Finding>) -> Finding {
        let mut row = self.clone();
        if row.resource_status.is_flagged() {
            if let Some(since) = stored.and_then(|s| s.flagged_since.clone()) {
                row.flagged_since = Some(since);
            }
            if let Some(episode) = stored.and_then(|s| s.episode.clone()) {
                row.episode = Some(episode);
            }
        } else {
            row.flagged_since = None;
            row.episode = None;
        }
        row
    }

    /// The `Region` column, when it names a region other than the one the ARN carries (the ARN
    /// wins; check-tracker logs both).
    pub fn region_column_conflict(&self) -> Option<&str> {
        let (arn_region, _) = arn_region_and_account(self.resource_arn()?)?;
        let column = self.check_item_detail.get("Region")?.trim();
        (is_region_code(arn_region) && is_region_code(column) && column != arn_region)
            .then_some(column)
    }
}

pub fn is_arn(resource: &str) -> bool {
    arn_region_and_account(resource).is_some()
}

/// The tracker key of a finding: hex SHA-256 of account, check and resource, plus the region
/// when the resource is not an ARN (module docs), separated by a byte none of them contains.
pub fn finding_key(account: &str, check_name: &str, resource: &str, region: &str) -> String {
    let mut hasher = Sha256::new();
    let region = if is_arn(resource) { "" } else { region };
    for part in ["finding/v2", account, check_name, resource, region] {
        hasher.update(part.as_bytes());
        hasher.update([0x1f]);
    }
    hex(&hasher.finalize())
}

/// 16 hex digits of SHA-256: a fixed-size name for a text of any length (counter names).
pub fn short_hash(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))[..16].to_owned()
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

/// What normalisation needs beyond the event: the stack's region (global resources' API calls
/// go there) and how far ahead of the receiving clock a time may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingRules {
    pub home_region: String,
    pub future_tolerance: Duration,
}

impl Default for TrackingRules {
    fn default() -> Self {
        Self {
            home_region: "us-east-1".into(),
            future_tolerance: Duration::minutes(15),
        }
    }
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
        "`{field}` is {value}, more than {tolerance_minutes} minutes after the receiving clock ({now}): a time in the future would freeze the finding"
    )]
    FutureTime {
        field: &'static str,
        value: String,
        now: String,
        tolerance_minutes: i64,
    },
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

fn arn_service(arn: &str) -> Option<&str> {
    arn.split(':').nth(2)
}

/// Services whose ARNs carry no region because the service is global: their API calls go to
/// the stack's region.
const GLOBAL_SERVICES: [&str; 9] = [
    "iam",
    "cloudfront",
    "route53",
    "organizations",
    "globalaccelerator",
    "waf",
    "shield",
    "sts",
    "support",
];

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

/// A time field of the event: absent, or parsed and not in the future.
fn event_time(
    object: &Map<String, Value>,
    key: &str,
    field: &'static str,
    now: DateTime<Utc>,
    rules: &TrackingRules,
) -> Result<Option<DateTime<Utc>>, Rejection> {
    let Some(text) = non_empty_str(object, key) else {
        return Ok(None);
    };
    let time = parse_time(text).ok_or_else(|| Rejection::BadTime {
        field,
        value: text.to_owned(),
    })?;
    if time > now + rules.future_tolerance {
        return Err(Rejection::FutureTime {
            field,
            value: text.to_owned(),
            now: format_time(now),
            tolerance_minutes: rules.future_tolerance.num_minutes(),
        });
    }
    Ok(Some(time))
}

/// The resource identity an item's columns give (module docs), with the `resource_id` fallback.
pub fn resource_identity(
    columns: &BTreeMap<String, String>,
    resource_id: Option<&str>,
) -> Option<String> {
    columns
        .get("Resource")
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
        .or(resource_id.map(str::trim).filter(|r| !r.is_empty()))
        .map(str::to_owned)
        .or_else(|| synthetic_identity(columns))
}

/// Where the resource lives (module docs, "Region").
pub fn resource_region(
    resource: &str,
    columns: &BTreeMap<String, String>,
    envelope_region: &str,
    rules: &TrackingRules,
) -> String {
    let column = columns
        .get("Region")
        .map(|r| r.trim())
        .filter(|r| is_region_code(r));
    if let Some((region, _)) = arn_region_and_account(resource) {
        if is_region_code(region) {
            return region.to_owned();
        }
        if arn_service(resource).is_some_and(|service| GLOBAL_SERVICES.contains(&service)) {
            return rules.home_region.clone();
        }
    }
    column.unwrap_or(envelope_region).to_owned()
}

/// Normalises a Trusted Advisor event into a finding (see the module docs for the rules).
pub fn finding_from_event(
    event: &Value,
    now: DateTime<Utc>,
    rules: &TrackingRules,
) -> Result<Finding, Rejection> {
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

    let said_at = event_time(envelope, "time", "time", now, rules)?;
    let item_time = event_time(
        item,
        "Last Updated Time",
        "detail.check-item-detail.Last Updated Time",
        now,
        rules,
    )?;
    let time = item_time.or(said_at).ok_or(Rejection::MissingTime)?;
    let said_at = said_at.unwrap_or(time);

    let resource = resource_identity(&columns, non_empty_str(detail, "resource_id"))
        .ok_or(Rejection::NoResourceIdentity)?;
    let envelope_region = non_empty_str(envelope, "region").unwrap_or("us-east-1");
    let region = resource_region(&resource, &columns, envelope_region, rules);
    let account_id = non_empty_str(envelope, "account")
        .or_else(|| arn_region_and_account(&resource).map(|(_, account)| account))
        .filter(|a| !a.is_empty())
        .map(str::to_owned);

    let account = account_id.as_deref().unwrap_or_default();
    let finding = Finding {
        check_item_detail: columns,
        event_id: non_empty_str(envelope, "id").map(str::to_owned),
        tracked_at: Some(format_time(now)),
        ..Finding::new(account, check_name, &resource, &region).at(status, time, said_at)
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
                "083010608567",
                "Amazon S3 Bucket Versioning",
                "arn:aws:s3:::tpbucket",
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
        assert!(first.resource.starts_with("ta-item/"), "{}", first.resource);
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
}
