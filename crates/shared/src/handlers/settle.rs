//! A finding's episode, moved along: read it, ask the lifecycle (gathering each fact it needs),
//! and carry the decision out in order: the previous episode's OpsItem, this one's, the episode
//! itself (the claim, when starting), then the start. Shared by the stream records and the
//! sweep.

use super::common::{CachedMapping, Failure, Pass, Step, stage_step};
use super::results::ResultsHandler;
use super::{Reserved, TRIES, ignore_missing, lock_lease, release_ended};
use crate::episode::{Episode, Stage};
use crate::finding::Finding;
use crate::lifecycle::{Decision, Facts, Happening, Lifecycle, Need};
use crate::ports::{
    ExecutionInfo, LockHolder, MemberClients, MemberReach, MemberStanding, OpsItemView,
};
use crate::safety::{breaker_counter, breaker_queue, ops_item_counter};
use std::collections::{BTreeMap, HashSet};

/// The facts a decision asked for, held while it is asked again.
#[derive(Default)]
struct Gathered {
    mapping: Option<CachedMapping>,
    tags: Option<BTreeMap<String, String>>,
    starts_allowed: Option<bool>,
    ops_items_this_month: Option<u64>,
    breaker_queue: Option<u64>,
    execution: Option<Option<ExecutionInfo>>,
    resource_busy: Option<LockHolder>,
    ops_item: Option<Option<OpsItemView>>,
    member: Option<MemberStanding>,
    member_gate: Option<Option<String>>,
    units: Option<Vec<String>>,
    /// The account's clients, once it was reached.
    clients: Option<MemberClients>,
}

impl Gathered {
    fn facts(&self) -> Facts<'_> {
        Facts {
            mapping: self.mapping.as_ref().map(|m| m.as_deref()),
            tags: self.tags.as_ref(),
            starts_allowed: self.starts_allowed,
            ops_items_this_month: self.ops_items_this_month,
            breaker_queue: self.breaker_queue,
            execution: self.execution.as_ref().map(Option::as_ref),
            resource_busy: self.resource_busy.as_ref(),
            ops_item: self.ops_item.as_ref().map(Option::as_ref),
            member: self.member.as_ref(),
            member_gate: self.member_gate.as_ref().map(Option::as_deref),
            units: self.units.as_deref(),
        }
    }
}

impl ResultsHandler {
    /// Reads the finding's episode, decides, and carries the decision out; retried from the
    /// start when another writer changed the episode in between.
    pub(super) async fn settle(
        &self,
        row: &Finding,
        tick: bool,
        steps: &mut Vec<Step>,
        pass: &mut Pass,
    ) -> Result<(), Failure> {
        for _ in 0..TRIES {
            let current = self.executions.get_episode(&row.hash_key).await?;
            let happening = if tick {
                Happening::Tick(row)
            } else {
                Happening::Tracked(row)
            };
            let mut gathered = Gathered::default();
            let mut decision = self
                .decide(current.as_ref(), happening, row, &mut gathered)
                .await?;
            let mut reserved = Reserved::default();
            if let Err(failure) = self
                .reserve(
                    current.as_ref(),
                    happening,
                    row,
                    &mut gathered,
                    &mut decision,
                    &mut reserved,
                )
                .await
            {
                self.undo(&reserved).await;
                return Err(failure);
            }
            if let Some(episode) = decision.episode.as_ref().or(current.as_ref()) {
                crate::telemetry::mark_episode(episode);
            }
            match self
                .carry_out(current.as_ref(), decision, row, steps, pass, &mut reserved)
                .await
            {
                Ok(true) => return Ok(()),
                // Another writer moved the episode: this start will not happen as decided.
                Ok(false) => self.undo(&reserved).await,
                Err(failure) => {
                    if !reserved.claimed {
                        self.undo(&reserved).await;
                    }
                    return Err(failure);
                }
            }
        }
        Err(Failure::Retry(format!(
            "the episode of this finding changed under {TRIES} writes in a row"
        )))
    }

    /// Takes what a new start needs before it is claimed: the resource's lock (one runbook per
    /// resource at a time) and a place under the circuit breaker. Either refused: the lifecycle
    /// decides again with that fact (a hold). Both are given back if the start does not happen.
    async fn reserve(
        &self,
        current: Option<&Episode>,
        happening: Happening<'_>,
        row: &Finding,
        gathered: &mut Gathered,
        decision: &mut Decision,
        reserved: &mut Reserved,
    ) -> Result<(), Failure> {
        let new_start = |decision: &Decision| {
            decision
                .start
                .as_ref()
                .filter(|start| !start.resume)
                .map(|start| (start.lock.clone(), start.request.clone()))
        };
        let Some((lock, request)) = new_start(decision) else {
            return Ok(());
        };
        let safety = &self.config.safety;
        let now = self.clock.now();
        let expires_at = (now + self.config.retention).timestamp();
        if let Some(key) = lock {
            let holder = LockHolder {
                finding_key: row.hash_key.clone(),
                client_token: request.client_token.clone(),
                check_name: row.check_name.clone(),
                document: request.document.clone(),
                acquired_at: now.timestamp(),
                lease_until: (now + lock_lease(safety)).timestamp(),
                released_at: None,
            };
            let cooled = (now - safety.cool_down).timestamp();
            match self
                .locks
                .acquire(&key, &holder, now.timestamp(), cooled, expires_at)
                .await?
            {
                Some(busy) => {
                    tracing::info!(holder = %busy.client_token, metric = "automations.resource_busy", "another runbook holds the resource");
                    gathered.resource_busy = Some(busy);
                    *decision = self.decide(current, happening, row, gathered).await?;
                    return Ok(());
                }
                None => reserved.lock = Some((key, request.client_token.clone())),
            }
        }
        let account = row.account_id.as_deref().unwrap_or_default();
        let breaker = breaker_counter(account, &row.check_name, now, safety.breaker_window);
        if self
            .counters
            .increment_below(&breaker, safety.breaker_limit, expires_at)
            .await?
        {
            reserved.breaker = Some(breaker);
        } else {
            tracing::warn!(metric = "automations.breaker", "circuit breaker tripped");
            crate::telemetry::count(crate::telemetry::BREAKER_TRIPPED);
            self.undo(&std::mem::take(reserved)).await;
            // A place in the window's queue; without one (the count failed) the hold wakes when
            // the window turns, as the first in the queue would.
            let place = match self
                .counters
                .increment(&breaker_queue(&breaker), expires_at)
                .await
            {
                Ok(place) => place,
                Err(error) => {
                    tracing::warn!(%error, "could not take a place in the breaker's queue; waking when the window turns");
                    1
                }
            };
            gathered.breaker_queue = Some(place);
            *decision = self.decide(current, happening, row, gathered).await?;
        }
        Ok(())
    }

    /// Gives back what a start that did not happen reserved. Best effort: a lock left behind
    /// frees at its lease, a breaker count with its window.
    pub(super) async fn undo(&self, reserved: &Reserved) {
        if let Some((key, token)) = &reserved.lock
            && let Err(error) = self.locks.abandon(key, token).await
        {
            tracing::warn!(%error, "could not give back the resource lock; it frees at its lease");
        }
        if let Some(breaker) = &reserved.breaker
            && let Err(error) = self.counters.decrement(breaker).await
        {
            tracing::warn!(%error, "could not give back the breaker's count");
        }
    }

    /// Asks the lifecycle, gathering each fact it needs, once.
    async fn decide(
        &self,
        current: Option<&Episode>,
        happening: Happening<'_>,
        row: &Finding,
        gathered: &mut Gathered,
    ) -> Result<Decision, Failure> {
        let lifecycle = Lifecycle {
            config: &self.config,
            now: self.clock.now(),
        };
        let mut asked = HashSet::new();
        loop {
            let need = match lifecycle.decide(current, happening, &gathered.facts()) {
                Ok(decision) => return Ok(decision),
                Err(need) => need,
            };
            if !asked.insert(need) {
                return Err(Failure::Park(format!(
                    "the lifecycle asked twice for {need:?}"
                )));
            }
            match need {
                Need::Mapping => {
                    gathered.mapping = Some(self.mappings.get(&row.check_name).await?);
                }
                Need::Member => {
                    let reach = self.members.reach(row.account_id.as_deref()).await?;
                    gathered.member = Some(reach.standing());
                    match reach {
                        MemberReach::Ready(clients) => gathered.clients = Some(clients),
                        MemberReach::Held(reason) => {
                            tracing::warn!(%reason, account = row.account_id.as_deref(), metric = "accounts.unreachable", "the finding's account cannot be reached");
                        }
                        MemberReach::Gone(reason) => {
                            tracing::warn!(%reason, account = row.account_id.as_deref(), metric = "accounts.gone", "the finding's account is gone");
                        }
                    }
                }
                Need::Tags => {
                    gathered.tags = Some(match row.resource_arn() {
                        Some(arn) => {
                            let clients = self.reached(row, gathered).await?;
                            clients.tags.tags(&row.region, arn).await?
                        }
                        None => BTreeMap::new(),
                    });
                }
                Need::KillSwitch => {
                    gathered.starts_allowed = Some(self.kill_switch.starts_allowed().await?);
                }
                Need::Units => {
                    let account = row
                        .account_id
                        .as_deref()
                        .or(self.config.safety.home_account.as_deref())
                        .unwrap_or_default();
                    gathered.units = Some(self.members.units(account).await?);
                }
                Need::MemberGate => {
                    let clients = self.reached(row, gathered).await?;
                    gathered.member_gate = Some(clients.gate.refusal().await?);
                }
                Need::OpsItemState => {
                    let id = current.and_then(|e| e.ops_item_id.as_deref());
                    gathered.ops_item = Some(match id {
                        Some(id) => {
                            self.reached(row, gathered)
                                .await?
                                .ops_center
                                .view(id)
                                .await?
                        }
                        None => None,
                    });
                }
                Need::ExecutionStatus => {
                    let clients = self.reached(row, gathered).await?;
                    gathered.execution = Some(last_execution(&*clients.automation, current).await?);
                }
                Need::OpsItemBudget => {
                    gathered.ops_items_this_month = Some(
                        self.counters
                            .value(&ops_item_counter(
                                row.account_id.as_deref().unwrap_or_default(),
                                self.clock.now(),
                            ))
                            .await?,
                    );
                }
            }
        }
    }

    /// The clients of the row's account, reached once per decision.
    async fn reached(
        &self,
        row: &Finding,
        gathered: &mut Gathered,
    ) -> Result<MemberClients, Failure> {
        if let Some(clients) = &gathered.clients {
            return Ok(clients.clone());
        }
        let clients = self.member(row).await?;
        gathered.clients = Some(clients.clone());
        Ok(clients)
    }

    /// The clients of the row's account; an account out of reach is a passing failure here
    /// (the lifecycle, told first, holds or ends its episodes without calling this).
    pub(super) async fn member(&self, row: &Finding) -> Result<MemberClients, Failure> {
        match self.members.reach(row.account_id.as_deref()).await? {
            MemberReach::Ready(clients) => Ok(clients),
            MemberReach::Held(reason) | MemberReach::Gone(reason) => Err(Failure::Retry(format!(
                "account {} is out of reach: {reason}",
                row.account_id.as_deref().unwrap_or("(none)")
            ))),
        }
    }

    /// Carries a decision out: OpsItems first, then the episode (the claim), then the start.
    /// `false` when another writer changed the episode first (decide again).
    async fn carry_out(
        &self,
        current: Option<&Episode>,
        decision: Decision,
        row: &Finding,
        steps: &mut Vec<Step>,
        pass: &Pass,
        reserved: &mut Reserved,
    ) -> Result<bool, Failure> {
        let Some(mut next) = decision.episode else {
            steps.push(Step::Skipped {
                reason: decision.why,
            });
            return Ok(true);
        };
        let touches_ops_items = decision.close_previous.is_some()
            || decision.open_ops_item.is_some()
            || (decision.update_ops_item.is_some() && next.ops_item_id.is_some());
        let ops_center = match touches_ops_items {
            true => Some(self.member(row).await?.ops_center),
            false => None,
        };
        let ops_center = ops_center.as_deref();
        if let (Some((id, update)), Some(ops_center)) = (&decision.close_previous, ops_center) {
            ignore_missing(ops_center.update(id, update).await)?;
        }
        if let (Some(item), Some(ops_center)) = (&decision.open_ops_item, ops_center) {
            match ops_center.create(item).await {
                Ok(created) => {
                    next.ops_item_id = Some(created.id.clone());
                    next.ops_item_owed = false;
                    if created.created {
                        let expires_at = (self.clock.now() + self.config.retention).timestamp();
                        self.counters
                            .increment(
                                &ops_item_counter(
                                    row.account_id.as_deref().unwrap_or_default(),
                                    self.clock.now(),
                                ),
                                expires_at,
                            )
                            .await?;
                        tracing::info!(ops_item = %created.id, metric = "opsitems.created", "OpsItem created");
                        steps.push(Step::OpsItemCreated {
                            id: created.id,
                            title: item.title.clone(),
                        });
                    } else {
                        steps.push(Step::OpsItemReused { id: created.id });
                    }
                }
                // A closed episode's record can wait for a retry; nothing else does.
                Err(error) if !next.stage.is_open() => return Err(error.into()),
                // Never blocks the remediation: owed, and created by the sweep later.
                Err(error) => {
                    tracing::warn!(%error, metric = "opsitems.owed", "OpsItem not created now; owed");
                    next.ops_item_owed = true;
                    steps.push(Step::OpsItemOwed {
                        reason: error.to_string(),
                    });
                }
            }
        }
        if let Some(reason) = &decision.no_ops_item {
            tracing::info!(%reason, metric = "opsitems.skipped", "no OpsItem for this finding");
            steps.push(Step::Held {
                control: "ops-items".into(),
                reason: reason.clone(),
            });
        }
        if let (Some(update), Some(id), Some(ops_center)) =
            (&decision.update_ops_item, &next.ops_item_id, ops_center)
        {
            ignore_missing(ops_center.update(id, update).await)?;
            steps.push(Step::OpsItemUpdated {
                id: id.clone(),
                status: update.status.map(|s| s.as_str().to_owned()),
            });
        }
        if Some(&next) != current {
            next.version = current.map_or(0, |c| c.version) + 1;
            if !self.executions.put_episode(&next).await? {
                return Ok(false);
            }
            // A new episode replaced the finding's last: that one is kept, closed, for the counts.
            if let Some(replaced) = current.filter(|c| c.episode != next.episode) {
                self.executions
                    .archive_episode(&archived(replaced, &self.config, self.clock.now()))
                    .await?;
            }
            reserved.claimed = true;
            crate::telemetry::episode_written(current, &next);
            release_ended(&*self.locks, current, &next).await?;
        }
        steps.push(stage_step(&next, &decision.why));
        if let Some(start) = decision.start {
            self.start(row, &next, start, steps, pass, reserved).await?;
        }
        Ok(true)
    }
}

/// What SSM says of the episode's last execution. A permanent refusal (access denied in that
/// region) reads as unknown, so the in-flight timeout still ends the attempt; a passing failure
/// is retried by the next sweep.
async fn last_execution(
    automation: &dyn crate::ports::Automation,
    current: Option<&Episode>,
) -> Result<Option<ExecutionInfo>, Failure> {
    let Some(attempt) = current.and_then(Episode::last_attempt) else {
        return Ok(None);
    };
    let Some(id) = &attempt.execution_id else {
        return Ok(None);
    };
    match automation.describe(&attempt.region, id).await {
        Ok(info) => Ok(info),
        Err(error) if error.is_retryable() => Err(error.into()),
        Err(error) => {
            tracing::warn!(%error, execution = %id, "SSM will not describe the execution; its status is unknown");
            Ok(None)
        }
    }
}

/// A replaced episode as it is kept: closed (an open one was ended by the new episode's flag:
/// Trusted Advisor reported it fixed in between), with a TTL.
fn archived(
    replaced: &Episode,
    config: &crate::lifecycle::LifecycleConfig,
    now: chrono::DateTime<chrono::Utc>,
) -> Episode {
    let mut kept = replaced.clone();
    if kept.stage.is_open() {
        kept.stage = Stage::Fixed {
            at: crate::finding::format_time(now),
        };
    }
    kept.due_at = None;
    kept.recheck_at = None;
    kept.check_ops_item = false;
    if kept.expires_at == 0 {
        kept.expires_at = (now + config.retention).timestamp();
    }
    kept
}
