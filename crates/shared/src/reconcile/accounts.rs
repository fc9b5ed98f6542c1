//! The findings sweep of every governed account, a few accounts at a time, each through its own
//! clients ([`Members`]): the hub's own account as any other, so a stack that governs only itself
//! is the organisation of one. Each account's outcome goes to the account registry: how it could
//! be reached, which API read its results, its member template, what it holds flagged and what
//! its events missed.

use super::{FindingsSweep, SweepReport, pending_flagged};
use crate::clock::Clock;
use crate::error::PortError;
use crate::finding::TrackingRules;
use crate::ports::{
    AccountRecord, AccountRegistry, AccountStanding, AdvisorAccess, MappingStore, MemberReach,
    Members, TrackerStore,
};
use crate::telemetry;
use chrono::DateTime;
use futures_util::StreamExt;
use serde::Serialize;
use std::sync::Arc;

/// How many accounts are swept at once. Trusted Advisor publishes no rate; AWS's own per-account
/// collectors run a handful at a time (ORGANISATION.md §6).
pub const ACCOUNTS_AT_ONCE: usize = 5;

/// One account's sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountSweep {
    /// What the registry now holds for the account (unchanged when the sweep failed).
    pub record: AccountRecord,
    pub report: Option<SweepReport>,
    /// A failure that left the account unswept this time (retried at the next sweep).
    pub error: Option<String>,
}

pub struct AccountsSweep {
    pub tracker: Arc<dyn TrackerStore>,
    pub mappings: Arc<dyn MappingStore>,
    pub members: Arc<dyn Members>,
    pub registry: Arc<dyn AccountRegistry>,
    pub clock: Arc<dyn Clock>,
    pub all_checks: bool,
    pub rules: TrackingRules,
    /// The governed accounts (the stack's own among them).
    pub accounts: Vec<String>,
}

impl AccountsSweep {
    /// Sweeps every governed account, [`ACCOUNTS_AT_ONCE`] at a time. One account's failure
    /// is its own (logged, counted, retried at the next sweep); `Err` only when every account
    /// failed, so the scheduled invocation is retried when nothing could be swept at all.
    pub async fn sweep(&self) -> Result<Vec<AccountSweep>, PortError> {
        let pending = pending_flagged(&*self.tracker).await?;
        let mut swept: Vec<(usize, Result<AccountSweep, PortError>)> =
            futures_util::stream::iter(self.accounts.iter().enumerate())
                .map(|(at, account)| {
                    let pending = &pending;
                    async move { (at, self.sweep_account(account, pending).await) }
                })
                .buffer_unordered(ACCOUNTS_AT_ONCE)
                .collect()
                .await;
        swept.sort_by_key(|(at, _)| *at);
        let mut outcomes = vec![];
        let mut last_error = None;
        for ((_, outcome), account) in swept.into_iter().zip(&self.accounts) {
            match outcome {
                Ok(sweep) => outcomes.push(sweep),
                Err(error) => {
                    tracing::warn!(%account, %error, metric = "reconcile.account_failed", "an account's findings sweep failed; retried at the next sweep");
                    outcomes.push(AccountSweep {
                        record: AccountRecord::new(account),
                        report: None,
                        error: Some(error.to_string()),
                    });
                    last_error = Some(error);
                }
            }
        }
        match last_error {
            Some(error) if outcomes.iter().all(|o| o.error.is_some()) => Err(error),
            _ => Ok(outcomes),
        }
    }

    async fn sweep_account(
        &self,
        account: &str,
        pending: &[crate::finding::Finding],
    ) -> Result<AccountSweep, PortError> {
        let now = self.clock.now();
        let previous = self.registry.get(account).await?;
        let mut record = AccountRecord {
            swept_at: Some(now.timestamp()),
            first_swept_at: previous.as_ref().and_then(|p| p.first_swept_at),
            last_event_at: previous.as_ref().and_then(|p| p.last_event_at),
            ..AccountRecord::new(account)
        };
        let clients = match self.members.reach(Some(account)).await? {
            MemberReach::Ready(clients) => clients,
            MemberReach::Held(reason) => {
                tracing::warn!(%account, %reason, metric = "reconcile.account_unreachable", "a governed account cannot be reached: its episodes are held");
                telemetry::count(telemetry::ACCOUNTS_UNREACHABLE);
                record.standing = Some(AccountStanding::Held);
                record.reason = Some(reason);
                return self.recorded(record, None).await;
            }
            MemberReach::Gone(reason) => {
                record.standing = Some(AccountStanding::Gone);
                record.reason = Some(reason);
                return self.recorded(record, None).await;
            }
        };
        record.standing = Some(AccountStanding::Ready);
        // The member's template and pause, for the registry; a start reads them again itself.
        match clients.gate.parameters().await {
            Ok(parameters) => {
                record.paused = parameters.is_paused();
                record.member_version = parameters.version;
            }
            Err(error) => {
                tracing::warn!(%account, %error, "the member's parameters could not be read");
            }
        }
        let sweep = FindingsSweep {
            tracker: self.tracker.clone(),
            mappings: self.mappings.clone(),
            advisor: clients.advisor.clone(),
            clock: self.clock.clone(),
            all_checks: self.all_checks,
            account: account.to_owned(),
            rules: self.rules.clone(),
            watched_since: record
                .first_swept_at
                .and_then(|at| DateTime::from_timestamp(at, 0)),
            watched_checks: previous
                .iter()
                .flat_map(|p| p.swept_checks.iter().cloned())
                .collect(),
        };
        let report = sweep.sweep_with(false, pending).await?;
        // Watched from the first sweep that read its results (not one that found it out of
        // reach, or without a plan: its flags then were never owed as events).
        if report.unavailable.is_none() {
            record.first_swept_at = record.first_swept_at.or(record.swept_at);
        }
        let mut checks: std::collections::BTreeSet<String> = previous
            .iter()
            .flat_map(|p| p.swept_checks.iter().cloned())
            .collect();
        checks.extend(report.swept_checks.iter().cloned());
        record.swept_checks = checks.into_iter().collect();
        record.advisor = Some(match report.unavailable {
            Some(_) => AdvisorAccess::None,
            None => clients.advisor.access(),
        });
        record.reason = report.unavailable.clone();
        record.flagged = report.flagged as u64;
        record.regions = report.regions.iter().cloned().collect();
        record.missed_by_events = report.missed_by_events.len() as u64;
        for _ in &report.missed_by_events {
            telemetry::count(telemetry::FINDINGS_MISSED_BY_EVENTS);
        }
        self.recorded(record, Some(report)).await
    }

    async fn recorded(
        &self,
        record: AccountRecord,
        report: Option<SweepReport>,
    ) -> Result<AccountSweep, PortError> {
        self.registry.record_sweep(&record).await?;
        Ok(AccountSweep {
            record,
            report,
            error: None,
        })
    }
}
