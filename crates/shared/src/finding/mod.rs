//! Trusted Advisor "Check Item Refresh Notification" events and the finding they describe.
//!
//! A [`Finding`] is one resource's latest status for one check; it is also the tracker table's
//! row, attribute for attribute, so the stream image decodes straight back into it.
//!
//! ## Identity: one resource, one finding
//! The finding key is a hash of the account, the check and the resource:
//! - the account is the event's `account` (the same table can hold many accounts' findings);
//! - the resource is `check-item-detail.Resource` when it is a non-empty string (Config / Security
//!   Hub sourced checks put the ARN there). A classic check's item is named by the columns that
//!   name its resource and never by one that changes with its state ([`classic`]): written
//!   `Region=eu-west-1; Volume ID=vol-1`, or `AWS::::Account:<id>` for an account-level check.
//!   Only a classic check whose columns name nothing falls back to `resource_id`, then to
//!   `ta-item/<16 hex digits>`, a hash of its columns (all but `Status`, `Last Updated Time` and
//!   those whose value holds no letter). A `resource_id` that is an ARN is kept beside it
//!   (`resourceArn`: tags, `$resourceArn`, the region);
//! - when the resource is an ARN, the ARN alone names it: no column can split it in two. So do
//!   column identities (their region column is part of them) and accounts. A bare id
//!   (`resource_id`) or a hash keeps its region in the key, since the same id can exist in two
//!   regions.
//! - the resource must fit the tracker's sort key (1,024 bytes) and hold no control character;
//!   an event whose account the stack does not govern is refused.
//!
//! ## Region (where its runbook runs)
//! The region inside the ARN. For an ARN without one: global services (IAM, CloudFront,
//! Route 53, Organizations…) use the stack's region for API calls; others (S3 buckets) take the
//! `Region` column when it is a region code. Without an ARN: the `Region` column, else the
//! envelope's region (us-east-1 for Trusted Advisor). A classic item's region column may be
//! `Region`, `Region API Parameter` or `Region/AZ` (`eu-central-1a` is `eu-central-1`); an
//! account-level check runs in the stack's region. A `Region` column that contradicts the ARN
//! is ignored (the ARN wins) and check-tracker logs both ([`Finding::region_column_conflict`]).
//!
//! ## Order: which state is latest
//! A total order per finding ([`Order`]): the item's `Last Updated Time`, then the event's
//! envelope `time` (when Trusted Advisor said it), then, for a full tie, Red over Yellow over
//! Green. A different status is never a duplicate. An item time later than its own event's time
//! is the event's time (an observation cannot postdate the event that carries it). A time more
//! than the tolerance ahead of the
//! receiving clock (15 minutes by default) rejects the event: it would freeze the finding. A
//! present but unparseable time rejects it too: guessing would let an old state win.
//!
//! ## Episodes
//! A flagged row carries `flaggedSince` (when the finding became flagged) and `episode` (the
//! order key of the observation that opened it). The tracker write keeps both while the finding
//! stays flagged and removes them when it turns Green, so a remediation episode is named by the
//! tracker itself and survives any state row's TTL.

pub mod classic;
mod event;
mod order;
mod row;

pub use event::{
    Identity, MAX_CHECK_NAME_BYTES, Rejection, TrackingRules, account_resource, finding_from_event,
    resource_identity, resource_region,
};
pub use order::{Order, Placement, placement, stored_order};
pub use row::{item_size, to_item};

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

pub const TA_SOURCE: &str = "aws.trustedadvisor";
pub const TA_DETAIL_TYPE: &str = "Trusted Advisor Check Item Refresh Notification";
/// DynamoDB's item size limit.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// DynamoDB's limit on a sort key's value: the tracker's `resource`.
pub const MAX_RESOURCE_BYTES: usize = 1024;
/// How an account-level check names its resource (Security Hub's notation).
pub const ACCOUNT_RESOURCE_PREFIX: &str = "AWS::::Account:";

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
    pub(crate) fn rank(self) -> u8 {
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
    /// The resource's ARN when the event gave one (`resource_id`) and the identity is not that
    /// ARN itself (a classic check's columns name the item).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_arn: Option<String>,
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
            resource_arn: None,
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

    /// The same observation of the resource: its status at the same item time. A later write of
    /// the same observation (a sweep's refresh, a re-emitted event) only says it again.
    pub fn same_observation(&self, other: &Finding) -> bool {
        self.resource_status == other.resource_status && self.time_millis() == other.time_millis()
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

    /// The resource's ARN: its identity when that is one, else the ARN its event gave.
    pub fn resource_arn(&self) -> Option<&str> {
        if is_arn(&self.resource) {
            Some(self.resource.as_str())
        } else {
            self.resource_arn.as_deref()
        }
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

/// Whether a resource identity stands for one resource wherever it is said: an ARN, a classic
/// item's columns (`Name=value; …`, its region column among them) or an account.
fn names_its_region(resource: &str) -> bool {
    is_arn(resource)
        || resource.starts_with(ACCOUNT_RESOURCE_PREFIX)
        || resource.split("; ").all(|part| {
            part.split_once('=')
                .is_some_and(|(name, _)| !name.is_empty())
        })
}

/// The tracker key of a finding: hex SHA-256 of account, check and resource, plus the region
/// when the resource does not name its own (a bare id or a hash: module docs), separated by a
/// byte none of them contains.
pub fn finding_key(account: &str, check_name: &str, resource: &str, region: &str) -> String {
    let mut hasher = Sha256::new();
    let region = if names_its_region(resource) {
        ""
    } else {
        region
    };
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

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            // Writing to a String cannot fail.
            let _ = write!(out, "{b:02x}");
            out
        })
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

#[cfg(test)]
mod identity_tests;
#[cfg(test)]
mod tests;
