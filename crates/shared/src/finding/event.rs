//! Trusted Advisor events normalised into findings (module docs of [`crate::finding`]).

use super::classic::{ClassicIdentity, classic_identity, region_from_columns};
use super::{
    ACCOUNT_RESOURCE_PREFIX, Finding, MAX_ITEM_BYTES, MAX_RESOURCE_BYTES, Status, TA_DETAIL_TYPE,
    TA_SOURCE, arn_region_and_account, format_time, hex, is_arn, is_region_code, parse_time,
};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// What normalisation needs beyond the event: the stack's region (global resources' API calls
/// go there) and how far ahead of the receiving clock a time may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingRules {
    pub home_region: String,
    pub future_tolerance: Duration,
    /// The accounts whose findings the stack acts for; `None`: any (a local run without an
    /// accounts list). The functions always set it: the stack's own account, or the
    /// organisation's governed accounts.
    pub governed_accounts: Option<BTreeSet<String>>,
}

impl Default for TrackingRules {
    fn default() -> Self {
        Self {
            home_region: "us-east-1".into(),
            future_tolerance: Duration::minutes(15),
            governed_accounts: None,
        }
    }
}

/// Why an event cannot become a finding. Each names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the event is not a JSON object")]
    NotAnObject,
    #[error(
        "not a Trusted Advisor check item event: source {}, detail-type {} (expected {TA_SOURCE:?}, {TA_DETAIL_TYPE:?})",
        said(event_source),
        said(detail_type)
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
        "no status: neither `detail.check-item-detail.Status` nor `detail.status` holds Red/Yellow/Green or OK/WARN/ERROR (found {})",
        said(found)
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
    #[error(
        "the resource identity is {bytes} bytes, over the {MAX_RESOURCE_BYTES}-byte limit of the tracker's sort key: {preview:?}…"
    )]
    ResourceTooLong { bytes: usize, preview: String },
    #[error(
        "the resource identity holds a control character at byte {at}: {preview:?}; no AWS resource id does"
    )]
    ResourceCharacters { at: usize, preview: String },
    #[error(
        "`detail.check-name` is {bytes} bytes, over the {MAX_CHECK_NAME_BYTES}-byte limit; no Trusted Advisor check has such a name"
    )]
    CheckNameTooLong { bytes: usize },
    #[error(
        "account {account:?} is not governed by this stack (it acts only for the accounts it governs); refused"
    )]
    NotGoverned { account: String },
}

/// The longest check name accepted: Trusted Advisor's are under 200 bytes, and the name is part
/// of index keys.
pub const MAX_CHECK_NAME_BYTES: usize = 512;

/// A resource identity must fit the tracker's sort key and hold no control character.
fn check_resource(resource: &str) -> Result<(), Rejection> {
    let preview = || resource.chars().take(80).collect::<String>();
    if resource.len() > MAX_RESOURCE_BYTES {
        return Err(Rejection::ResourceTooLong {
            bytes: resource.len(),
            preview: preview(),
        });
    }
    if let Some((at, _)) = resource.char_indices().find(|(_, c)| c.is_control()) {
        return Err(Rejection::ResourceCharacters {
            at,
            preview: preview(),
        });
    }
    Ok(())
}

/// A value an event gave, quoted, or `none` when it gave none.
fn said(value: &Option<String>) -> String {
    match value {
        Some(text) => format!("{text:?}"),
        None => "none".into(),
    }
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

/// How an item names its resource: the resource (the tracker's sort key) and, when it has
/// one, its ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub resource: String,
    pub arn: Option<String>,
}

/// The resource an item names (module docs of [`crate::finding`], "Identity"): the `Resource`
/// column (Config / Security Hub sourced checks); for a classic check, the columns that name the
/// resource ([`super::classic`]), else `resource_id`, else a hash of its columns. `resource_id`
/// is kept as the ARN when it is one, whatever names the resource.
pub fn resource_identity(
    check: &str,
    account: &str,
    columns: &BTreeMap<String, String>,
    resource_id: Option<&str>,
) -> Option<Identity> {
    let resource_id = resource_id.map(str::trim).filter(|r| !r.is_empty());
    let arn_of_id = resource_id.filter(|id| is_arn(id)).map(str::to_owned);
    if let Some(resource) = columns
        .get("Resource")
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
    {
        let arn = if is_arn(resource) {
            Some(resource.to_owned())
        } else {
            arn_of_id
        };
        return Some(Identity {
            resource: resource.to_owned(),
            arn,
        });
    }
    let resource = match classic_identity(check, columns) {
        ClassicIdentity::Columns(named) => named,
        ClassicIdentity::Account => account_resource(account),
        ClassicIdentity::Unknown => match resource_id {
            Some(id) => id.to_owned(),
            None => synthetic_identity(columns)?,
        },
    };
    Some(Identity {
        resource,
        arn: arn_of_id,
    })
}

/// The resource of an account-level check: the account, as Security Hub names it.
pub fn account_resource(account: &str) -> String {
    format!("{ACCOUNT_RESOURCE_PREFIX}{account}")
}

/// Where the resource lives (module docs, "Region"): the ARN's region; a global service's ARN,
/// the stack's region; else the item's region column (`Region`, `Region API Parameter`, or the
/// region of `Region/AZ`), else the envelope's.
pub fn resource_region(
    identity: &Identity,
    columns: &BTreeMap<String, String>,
    envelope_region: &str,
    rules: &TrackingRules,
) -> String {
    if let Some(arn) = &identity.arn
        && let Some((region, _)) = arn_region_and_account(arn)
    {
        if is_region_code(region) {
            return region.to_owned();
        }
        if arn_service(arn).is_some_and(|service| GLOBAL_SERVICES.contains(&service)) {
            return rules.home_region.clone();
        }
    }
    if identity.resource.starts_with(ACCOUNT_RESOURCE_PREFIX) {
        return rules.home_region.clone();
    }
    region_from_columns(columns).unwrap_or_else(|| envelope_region.to_owned())
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
    if check_name.len() > MAX_CHECK_NAME_BYTES {
        return Err(Rejection::CheckNameTooLong {
            bytes: check_name.len(),
        });
    }
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
    // An observation cannot be later than the event that carries it: an item time ahead of its
    // event's time is the event's time, so it never outranks a later real observation.
    let time = match (item_time, said_at) {
        (Some(item), Some(said)) => item.min(said),
        (item, said) => item.or(said).ok_or(Rejection::MissingTime)?,
    };
    let said_at = said_at.unwrap_or(time);

    let account_id = non_empty_str(envelope, "account").map(str::to_owned);
    let account = account_id.as_deref().unwrap_or_default();
    let identity = resource_identity(
        check_name,
        account,
        &columns,
        non_empty_str(detail, "resource_id"),
    )
    .ok_or(Rejection::NoResourceIdentity)?;
    check_resource(&identity.resource)?;
    let account_id = account_id.or_else(|| {
        identity
            .arn
            .as_deref()
            .and_then(arn_region_and_account)
            .map(|(_, account)| account.to_owned())
            .filter(|a| !a.is_empty())
    });
    if let Some(governed) = &rules.governed_accounts
        && !account_id.as_ref().is_some_and(|a| governed.contains(a))
    {
        return Err(Rejection::NotGoverned {
            account: account_id.unwrap_or_default(),
        });
    }
    let envelope_region = non_empty_str(envelope, "region").unwrap_or("us-east-1");
    let region = resource_region(&identity, &columns, envelope_region, rules);

    let account = account_id.as_deref().unwrap_or_default();
    let finding = Finding {
        check_item_detail: columns,
        event_id: non_empty_str(envelope, "id").map(str::to_owned),
        tracked_at: Some(format_time(now)),
        resource_arn: identity.arn.filter(|arn| *arn != identity.resource),
        ..Finding::new(account, check_name, &identity.resource, &region).at(status, time, said_at)
    };
    let bytes = super::item_size(&finding);
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
