//! The identity of a classic Trusted Advisor check's item: the columns that name the resource,
//! never a column that changes with its state.
//!
//! Classic checks (those without a `Resource` column) describe each item with check-specific
//! columns: some name the resource (`Region`, `Volume ID`, `Bucket Name`, the `Protocol` and
//! `Ports` of a security group rule), others change as the resource's state does (`Reason`,
//! `ACL Allows List`, `Snapshot Age`, a day's utilisation, a cost). Hashing every text column,
//! as tarem once did, put the Yellow, the Red and the Green of one EBS volume on three keys.
//!
//! The rule, in this order:
//! 1. A check in [`CLASSIC_CHECKS`] (its columns from AWS's Trusted Advisor check reference, the
//!    source named beside each): exactly the columns listed, in that order. An empty list is an
//!    account-level check (the account is the resource).
//! 2. Any other classic check: its region column, and the columns whose name ends in `ID` or
//!    `ARN`; when it has none of those, the columns whose name ends in `Name`.
//! 3. Neither: the event's `resource_id` when it has one, else a hash of the columns
//!    ([`super::event`]).
//!
//! The identity is written readably (`Region=eu-west-1; Volume ID=vol-1`) so that an OpsItem's
//! title names the resource and a mapping's `regexPattern` can pick the id out of it. The same
//! columns come back from the Support API (`DescribeTrustedAdvisorChecks` names them,
//! `DescribeTrustedAdvisorCheckResult` gives the values in that order), so the findings sweep
//! keys a classic item exactly as its event does.

use std::collections::BTreeMap;

/// Region columns, most specific first: the API's region code before its display name; an
/// availability zone (`Region/AZ`, `Zone`) names its region too.
pub const REGION_COLUMNS: [&str; 4] = ["Region", "Region API Parameter", "Region/AZ", "Zone"];

/// Columns that qualify a rule-level item (a security group's rule, a listener): they name the
/// item as much as its resource does.
const QUALIFIERS: [&str; 8] = [
    "Protocol",
    "Port",
    "Ports",
    "IP Range",
    "Load Balancer Port",
    "Ingress Rule",
    "Resource Record Set Type",
    "Resource Record Set Identifier",
];

/// ID columns that describe something else than the item, or change with its state.
const NOT_IDENTITY: [&str; 2] = ["VPC ID", "Case ID"];

/// The identity columns of the classic checks tarem knows. Column lists: the
/// `DescribeTrustedAdvisorChecks` metadata, as AWS's own dump of it in aws/Trusted-Advisor-Tools
/// (`TA-WellArchitected/tawa-eisenhower-matrix-app/src/data/ta_checks.json`) has them; the
/// event's `check-item-detail` keys are the same names. Check reference:
/// <https://docs.aws.amazon.com/awssupport/latest/user/trusted-advisor-check-reference.html>.
pub const CLASSIC_CHECKS: &[(&str, &[&str])] = &[
    // HCP4007jGY: Region, Security Group Name, Security Group ID, Protocol, Status, Ports.
    // One item per group and rule; the ID reads `sg-… (vpc-…)` (my_hri.json, same folder).
    (
        "Security Groups - Specific Ports Unrestricted",
        &["Region", "Security Group ID", "Protocol", "Ports"],
    ),
    // 1iG5NDGVre: Region, Security Group Name, Security Group ID, Protocol, Port, Status,
    // IP Range.
    (
        "Security Groups - Unrestricted Access",
        &[
            "Region",
            "Security Group ID",
            "Protocol",
            "Port",
            "IP Range",
        ],
    ),
    // ePs02jT06w: Status, Region, Volume ID, Snapshot ID, Description. The snapshot is the item.
    ("Amazon EBS Public Snapshots", &["Region", "Snapshot ID"]),
    // rSs93HQwa1: Status, Region, DB Instance or Cluster ID, Snapshot ID.
    ("Amazon RDS Public Snapshots", &["Region", "Snapshot ID"]),
    // Pfx0RwqBli: Region Name, Region API Parameter, Bucket Name, ACL Allows List,
    // ACL Allows Upload/Delete, Status, Policy Allows Access, Ignored Bucket Name.
    (
        "Amazon S3 Bucket Permissions",
        &["Region API Parameter", "Bucket Name"],
    ),
    // Yw2K9puPzl: Password Policy, Uppercase, Lowercase, Number, Non-alphanumeric, Status,
    // Reason: every column is the account's state.
    ("IAM Password Policy", &[]),
    // zXCkfM1nI3 and 7DAFEmoDos: no columns.
    ("IAM Use", &[]),
    ("MFA on Root Account", &[]),
    // DqdJqYeRm5: Status, IAM User, Access Key, Key Last Rotated, Reason.
    ("IAM Access Key Rotation", &["IAM User", "Access Key"]),
    // 12Fnkpl8Y5: Access Key ID, User Name (IAM or Root), Fraud Type, Case ID, Time Updated,
    // Location, Deadline, Usage (USD per Day). The case and location change; the key does not.
    ("Exposed Access Keys", &["Access Key ID"]),
    // H7IgTzjTYb: Region, Volume ID, Volume Name, Snapshot ID, Snapshot Name, Snapshot Age,
    // Volume Attachment, Status, Reason. The snapshot columns describe the latest backup.
    ("Amazon EBS Snapshots", &["Region", "Volume ID"]),
    // R365s2Qddf: Region, Bucket Name, Versioning, MFA Delete Enabled, Status.
    ("Amazon S3 Bucket Versioning", &["Region", "Bucket Name"]),
    // BueAdJ7NrP: Region, Bucket Name, Target Name, Target Exists, Same Owner, Write Enabled,
    // Status, Reason.
    ("Amazon S3 Bucket Logging", &["Region", "Bucket Name"]),
    // 7qGXsKIUw and xdeXZKIUy: Region, Load Balancer Name, Status, Reason.
    ("ELB Connection Draining", &["Region", "Load Balancer Name"]),
    (
        "ELB Cross-Zone Load Balancing",
        &["Region", "Load Balancer Name"],
    ),
    // a2sEc6ILx: Region, Load Balancer Name, Load Balancer Port, Status, Reason.
    (
        "ELB Listener Security",
        &["Region", "Load Balancer Name", "Load Balancer Port"],
    ),
    // xSqX82fQu: Region, Load Balancer Name, Status, Security Group IDs, Reason.
    ("ELB Security Groups", &["Region", "Load Balancer Name"]),
    // iqdCTZKCUp: Region, Load Balancer Name, # of Zones, Instances in Zone a…f, Status, Reason.
    (
        "Load Balancer Optimization",
        &["Region", "Load Balancer Name"],
    ),
    // vjafUGJ9H0: Region, Trail Name, Logging Status, Bucket Name, Last Delivery Error, Status.
    ("AWS CloudTrail Logging", &["Region", "Trail Name"]),
    // Qch7DwouX1: Region/AZ, Instance ID, Instance Name, Instance Type, Estimated Monthly
    // Savings, Day 1 … Day 14, 14-Day Average CPU Utilization, 14-Day Average Network I/O,
    // Number of Days Low Utilization (no Status column). The name is a tag: it can change.
    (
        "Low Utilization Amazon EC2 Instances",
        &["Region/AZ", "Instance ID"],
    ),
    // Ti39halfu8: Region, DB Instance Name, Multi-AZ, Instance Type, Storage Provisioned (GB),
    // Days Since Last Connection, Estimated Monthly Savings (On Demand).
    (
        "Amazon RDS Idle DB Instances",
        &["Region", "DB Instance Name"],
    ),
    // DAvU99Dc4C: Region, Volume ID, Volume Name, Volume Type, Volume Size, Monthly Storage
    // Cost, Snapshot ID, Snapshot Name, Snapshot Age.
    ("Underutilized Amazon EBS Volumes", &["Region", "Volume ID"]),
    // Z4AUBRNSmz: Region, IP Address.
    (
        "Unassociated Elastic IP Addresses",
        &["Region", "IP Address"],
    ),
    // hjLMh88uM8: Region, Load Balancer Name, Reason, Estimated Monthly Savings.
    ("Idle Load Balancers", &["Region", "Load Balancer Name"]),
];

/// How a classic item is identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClassicIdentity {
    /// The named columns' values, readably: `Region=eu-west-1; Volume ID=vol-1`.
    Columns(String),
    /// An account-level check: the account is the resource.
    Account,
    /// No column names the resource (an unknown check with no ID, ARN or Name column).
    Unknown,
}

/// The identity columns of `check` ([`CLASSIC_CHECKS`], else the fallback rule), in order.
/// `None`: an unknown check whose columns name nothing.
pub fn identity_columns<'c>(
    check: &str,
    columns: impl IntoIterator<Item = &'c str>,
) -> Option<Vec<String>> {
    if let Some((_, known)) = CLASSIC_CHECKS.iter().find(|(name, _)| *name == check) {
        return Some(known.iter().map(|c| (*c).to_owned()).collect());
    }
    let names: Vec<&str> = columns.into_iter().collect();
    let ends_with = |name: &str, suffixes: &[&str]| {
        let lower = name.trim().to_ascii_lowercase();
        suffixes
            .iter()
            .any(|suffix| lower == *suffix || lower.ends_with(&format!(" {suffix}")))
    };
    // A volume's latest snapshot (its ID beside its age) changes with every backup.
    let snapshot_is_state = names.contains(&"Snapshot Age");
    let mut chosen: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| ends_with(name, &["id", "arn"]))
        .filter(|name| !NOT_IDENTITY.contains(name))
        .filter(|name| !(snapshot_is_state && name.starts_with("Snapshot")))
        .collect();
    if chosen.is_empty() {
        chosen = names
            .iter()
            .copied()
            .filter(|name| ends_with(name, &["name"]) && !name.starts_with("Region"))
            .collect();
    }
    if chosen.is_empty() {
        return None;
    }
    chosen.extend(
        names
            .iter()
            .copied()
            .filter(|name| QUALIFIERS.contains(name)),
    );
    if let Some(region) = REGION_COLUMNS.iter().find(|r| names.contains(r)) {
        chosen.insert(0, region);
    }
    Some(chosen.into_iter().map(str::to_owned).collect())
}

/// A classic item's identity from its columns (module docs).
pub fn classic_identity(check: &str, columns: &BTreeMap<String, String>) -> ClassicIdentity {
    let Some(identity) = identity_columns(check, columns.keys().map(String::as_str)) else {
        return ClassicIdentity::Unknown;
    };
    if identity.is_empty() {
        return ClassicIdentity::Account;
    }
    let parts: Vec<String> = identity
        .iter()
        .filter_map(|name| {
            let value = columns.get(name)?.trim();
            (!value.is_empty()).then(|| format!("{name}={value}"))
        })
        .collect();
    if parts.is_empty() {
        ClassicIdentity::Unknown
    } else {
        ClassicIdentity::Columns(parts.join("; "))
    }
}

/// A region code from a classic region column: `eu-central-1a` (Region/AZ) is `eu-central-1`.
pub fn region_from_columns(columns: &BTreeMap<String, String>) -> Option<String> {
    REGION_COLUMNS.iter().find_map(|name| {
        let value = columns.get(*name)?.trim();
        if super::is_region_code(value) {
            return Some(value.to_owned());
        }
        // An availability zone: the region code and one letter.
        let region = value.strip_suffix(|c: char| c.is_ascii_lowercase())?;
        super::is_region_code(region).then(|| region.to_owned())
    })
}
