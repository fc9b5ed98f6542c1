//! The account registry: what the hub last knew of each governed account (an item per account
//! in the execution table). The findings sweep writes it once per account per sweep; the check
//! tracker notes the last Trusted Advisor event heard from an account, at most once an hour per
//! function instance. `tarem accounts` reads it.

use crate::error::PortError;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// How the hub reads an account's Trusted Advisor results, as its latest reconcile found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdvisorAccess {
    /// The Trusted Advisor API answered (the plan allows it: Business Support+, Enterprise,
    /// Unified Operations).
    TrustedAdvisor,
    /// The Support API answered (the Trusted Advisor API refused the plan, or is not used).
    Support,
    /// Neither answered (no support plan that allows them): the account is covered by its events
    /// alone.
    None,
}

/// Whether the hub could act in the account at its latest reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccountStanding {
    Ready,
    /// Its member role is missing or refuses the hub: its episodes are held.
    Held,
    /// Suspended, closed or gone from the organisation: its episodes end.
    Gone,
}

/// The hub's view of one account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AccountRecord {
    pub account: String,
    /// The latest Trusted Advisor event heard from it (epoch seconds, to within the hour).
    pub last_event_at: Option<i64>,
    /// Its first reconcile that read its results: flagged resources Trusted Advisor refreshed
    /// after it should have come as events.
    pub first_swept_at: Option<i64>,
    /// The checks its reconciles have read (only their resources can be missed by events).
    pub swept_checks: Vec<String>,
    /// Its latest reconcile, and what that found.
    pub swept_at: Option<i64>,
    pub standing: Option<AccountStanding>,
    /// Why it is held or gone, or why its reconcile failed.
    pub reason: Option<String>,
    pub advisor: Option<AdvisorAccess>,
    /// `/tarem/member/version` there (the hub's own account: this code's).
    pub member_version: Option<String>,
    /// Its owner paused tarem there (`/tarem/member/paused` is `on`).
    pub paused: bool,
    /// Flagged resources its latest reconcile read.
    pub flagged: u64,
    /// The regions they are in (where its runbooks would run; each needs the member's regional
    /// stack for its status events, the execution poll covering the rest).
    pub regions: Vec<String>,
    /// Of those, the ones Trusted Advisor refreshed after the account's first reconcile that no
    /// event brought: its event path is broken.
    pub missed_by_events: u64,
}

impl AccountRecord {
    pub fn new(account: &str) -> Self {
        Self {
            account: account.to_owned(),
            ..Self::default()
        }
    }
}

/// How long an account's record outlives its latest reconcile or event (an account no longer
/// governed leaves the registry by itself).
pub const ACCOUNT_RECORD_DAYS: i64 = 30;

#[async_trait]
pub trait AccountRegistry: Send + Sync {
    /// Writes what a reconcile found (`record`'s sweep fields); keeps the account's
    /// `last_event_at`, and its `first_swept_at` once set (`record`'s sets it only when absent).
    async fn record_sweep(&self, record: &AccountRecord) -> Result<(), PortError>;
    /// Notes that an event from `account` arrived at `at`; never moves the time back.
    async fn saw_event(&self, account: &str, at: i64) -> Result<(), PortError>;
    async fn get(&self, account: &str) -> Result<Option<AccountRecord>, PortError>;
}
