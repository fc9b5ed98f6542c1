//! A flagged episode of a finding: from the moment Trusted Advisor flags it (absent or Green →
//! Red/Yellow) until it reports it Green again. Red↔Yellow and Red→Red refreshes stay inside.
//!
//! The episode is named by the tracker row itself (`episode`, `flaggedSince`: see
//! [`crate::finding`]); its state lives in the execution table under `finding#<finding key>`:
//! its OpsItem, its attempts and its [`Stage`]. One state per finding: a new episode replaces the
//! closed one. An open episode's state carries no TTL (it must outlive any quiet period of
//! Trusted Advisor); a closed one expires after the retention period.
//!
//! ```text
//! flagged ─┬─▶ held ──▶ remediating ──▶ verifying ──▶ fixed
//!          │     ▲  ◀──── (failed) ◀──┘     │  ▲ (window passes)
//!          │     └────────────── (fix did not hold) ──┘  unconfirmed
//!          └─▶ escalated (attempt cap reached, or nothing more the mapping can do)
//! ```

use crate::finding::{Finding, Status};
use serde::{Deserialize, Serialize};

/// Where an episode stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Stage {
    /// No remediation applies (no mapping, mode inactive, a broken mapping, a regex miss, a
    /// document outside the allowlist): the OpsItem says why. The sweep looks again, so a mapping
    /// added or fixed later takes effect.
    Flagged { reason: String },
    /// Remediation applies but a control holds the start (approval, dry run, cool-down, kill
    /// switch, circuit breaker, opt-in…); the sweep starts it once the control agrees.
    Held {
        control: String,
        reason: String,
        /// When the control names an end (cool-down, breaker window), RFC 3339.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<String>,
    },
    /// The last attempt is running.
    Remediating,
    /// The runbook succeeded; waiting for Trusted Advisor to report Green until `until`.
    Verifying { until: String },
    /// The verify window passed without a word from Trusted Advisor: the OpsItem is resolved as
    /// "succeeded, not yet confirmed"; a later flagged refresh reopens it.
    Unconfirmed,
    /// Remediation cannot fix this (attempt cap reached): a person must. Nothing starts again in
    /// this episode.
    Escalated { reason: String },
    /// Trusted Advisor reports the resource Green: the episode is over.
    Fixed { at: String },
    /// The finding's account left the organisation, or was suspended or closed: the episode is
    /// over, unfixed, and nothing more can be done or written there.
    Gone { reason: String },
}

impl Stage {
    /// The state's name, as OpsItems, logs and `tarem status` show it.
    pub fn name(&self) -> &'static str {
        match self {
            Stage::Flagged { .. } => "flagged",
            Stage::Held { .. } => "held",
            Stage::Remediating => "remediating",
            Stage::Verifying { .. } => "verifying",
            Stage::Unconfirmed => "unconfirmed",
            Stage::Escalated { .. } => "escalated",
            Stage::Fixed { .. } => "fixed",
            Stage::Gone { .. } => "gone",
        }
    }

    pub fn is_open(&self) -> bool {
        !matches!(self, Stage::Fixed { .. } | Stage::Gone { .. })
    }

    /// Every state name, for counts.
    pub const NAMES: [&'static str; 8] = [
        "flagged",
        "held",
        "remediating",
        "verifying",
        "unconfirmed",
        "escalated",
        "fixed",
        "gone",
    ];
}

/// One remediation attempt of an episode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub number: u32,
    /// A UUID of (finding, episode, number): unique across episodes even when numbering restarts.
    pub client_token: String,
    /// Epoch seconds.
    pub started_at: i64,
    pub document: String,
    pub region: String,
    /// The limits in force when it started (the mapping's, within the stack's), so an outcome is
    /// judged without reading the mapping again.
    pub max_attempts: u32,
    pub cool_down_minutes: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
    /// The execution's final status, once known (`Refused` when SSM refused the start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The resource lock it holds while it runs ([`crate::ports::ResourceLocks`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
}

impl Attempt {
    pub fn is_over(&self) -> bool {
        self.status.is_some()
    }
}

/// A finding's episode state (the item `finding#<key>` of the execution table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Episode {
    pub finding_key: String,
    /// Optimistic concurrency: every write is conditional on the version read.
    pub version: u64,
    /// The tracker row's `episode` when it opened (the opening observation's order key).
    pub episode: String,
    /// When Trusted Advisor first flagged it (RFC 3339).
    pub flagged_since: String,
    pub check_name: String,
    /// The finding's account (its counters, its OpsItems and its runbooks are that account's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The tracker row's sort key: the sweep reads the row again with it.
    pub resource: String,
    /// The status last seen (Red or Yellow while open).
    pub status: Status,
    pub stage: Stage,
    /// The episode's OpsItem, once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops_item_id: Option<String>,
    /// An OpsItem is due but could not be created (quota, throttling, the monthly budget): the
    /// sweep creates it later.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ops_item_owed: bool,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// The last start of the finding's previous episode (epoch seconds): the cool-down spans
    /// episodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_start: Option<i64>,
    /// When the stage last changed (RFC 3339).
    pub updated_at: String,
    /// TTL (epoch seconds), set only once the episode is over.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub expires_at: i64,
    /// When the sweep must look at it next (epoch seconds): the earliest of its stage's own time
    /// (a hold's end, the verify deadline, the in-flight timeout) and `recheck_at`. `None`: it
    /// waits for an event (Trusted Advisor's Green, a mapping change) and the sweep never reads
    /// it. Derived by [`crate::lifecycle::schedule`]; the due index holds only episodes with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<i64>,
    /// A look the stage does not name: an owed OpsItem's retry, a hold a resource tag decides,
    /// an OpsItem to check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recheck_at: Option<i64>,
    /// The OpsItem's status changed in this write: at `recheck_at` the sweep checks that the
    /// OpsItem says what the episode says (a write that lost a race may have said otherwise).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub check_ops_item: bool,
    /// The latest approval a person gave for one start of this episode (from its OpsItem or
    /// `tarem approve`): who and when, and the attempt it is for. Kept after that start, as its
    /// record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
}

/// A person's approval of an approval-mode episode's next start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// Who approved (the IAM identity OpsCenter names as the OpsItem's modifier).
    pub by: String,
    /// When (RFC 3339).
    pub at: String,
    /// The attempt it approves: the episode's attempts when it was given (0: the first start).
    pub attempt: usize,
}

/// An episode's key in the execution table (also the sweep's cursor).
pub fn episode_key(finding_key: &str) -> String {
    format!("finding#{finding_key}")
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

/// The episode a flagged tracker row is in: its `episode` and `flaggedSince`; a row another
/// tool wrote (no markers) is an episode of its own observation.
pub fn episode_of(row: &Finding) -> (String, String) {
    (
        row.episode.clone().unwrap_or_else(|| row.order().encode()),
        row.flagged_since
            .clone()
            .unwrap_or_else(|| row.last_updated_time.clone()),
    )
}

impl Episode {
    /// The approval of this episode's next start, if one was given and not yet used.
    pub fn pending_approval(&self) -> Option<&Approval> {
        self.approval
            .as_ref()
            .filter(|approval| approval.attempt == self.attempts.len())
    }

    /// The approval the last attempt was started (or claimed) on, if it was.
    pub fn approval_of_last_attempt(&self) -> Option<&Approval> {
        self.approval
            .as_ref()
            .filter(|approval| approval.attempt + 1 == self.attempts.len())
    }

    /// The episode a flagged row opens, following `previous` (the finding's last state, if any).
    pub fn opened_by(row: &Finding, previous: Option<&Episode>, now: &str) -> Episode {
        let (episode, flagged_since) = episode_of(row);
        Episode {
            finding_key: row.hash_key.clone(),
            version: previous.map_or(0, |p| p.version),
            episode,
            flagged_since,
            check_name: row.check_name.clone(),
            account: row.account_id.clone(),
            resource: row.resource.clone(),
            status: row.resource_status,
            stage: Stage::Flagged {
                reason: "just flagged".into(),
            },
            ops_item_id: None,
            ops_item_owed: false,
            attempts: vec![],
            previous_start: previous.and_then(Episode::last_start),
            updated_at: now.to_owned(),
            expires_at: 0,
            due_at: None,
            recheck_at: None,
            check_ops_item: false,
            approval: None,
        }
    }

    /// Whether `row` (flagged) belongs to this episode.
    pub fn is_episode_of(&self, row: &Finding) -> bool {
        self.stage.is_open() && episode_of(row).0 == self.episode
    }

    /// The finding's last start: this episode's, else the previous episode's.
    pub fn last_start(&self) -> Option<i64> {
        self.attempts
            .last()
            .map(|a| a.started_at)
            .or(self.previous_start)
    }

    pub fn last_attempt(&self) -> Option<&Attempt> {
        self.attempts.last()
    }

    /// This episode under another finding key (tests and fixtures).
    pub fn with_key(mut self, finding_key: &str) -> Episode {
        self.finding_key = finding_key.to_owned();
        self
    }

    pub fn attempt_mut(&mut self, client_token: &str) -> Option<&mut Attempt> {
        self.attempts
            .iter_mut()
            .find(|a| a.client_token.eq_ignore_ascii_case(client_token))
    }
}
