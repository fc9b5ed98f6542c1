//! Starting a claimed attempt: StartAutomationExecution, paced and backed off within the
//! invocation's time budget, then the execution row, the OpsItem and the attempt's link.
//!
//! One retry policy on this path: the SSM clients that start automations have the SDK's own
//! retries turned off ([`crate::aws::ssm::SsmAutomation`]), and this module retries throttling
//! and the concurrency limit with exponential backoff and jitter, up to [`START_TRIES`] calls.

use super::common::{DEADLINE_MARGIN_SECONDS, Failure, Pass, StartPacer, Step, stage_step};
use super::results::ResultsHandler;
use super::{Reserved, TRIES, ignore_missing, record_outcome};
use crate::automation_event::is_final;
use crate::clock::Clock;
use crate::episode::Episode;
use crate::error::{ErrorKind, PortError};
use crate::finding::{Finding, format_time};
use crate::lifecycle::{Outcome, REFUSED, Start, Withdrawal};
use crate::opsitem::started_update;
use crate::ports::{Automation, ExecutionRecord, StartAutomation, TAG_OPS_ITEM};
use chrono::{DateTime, Duration, Utc};

/// Start calls per record for retryable SSM errors (throttling, the concurrency limit).
pub const START_TRIES: u32 = 6;
const MAX_BACKOFF_SECONDS: i64 = 20;

/// Why a start did not happen.
#[derive(Debug)]
pub enum StartFailure {
    /// Try again later (throttled past the budget, or no time left): the claimed attempt stays
    /// and resumes with the same ClientToken.
    Later(String),
    /// SSM refused it for good (access denied, unknown document, bad parameters).
    Refused(PortError),
    /// A resumed attempt the controls no longer allow, and SSM has no execution for its token.
    Withdrawn,
}

impl From<PortError> for StartFailure {
    fn from(error: PortError) -> Self {
        if error.is_retryable() {
            StartFailure::Later(error.to_string())
        } else {
            StartFailure::Refused(error)
        }
    }
}

pub struct Starter<'a> {
    pub automation: &'a dyn Automation,
    pub clock: &'a dyn Clock,
    pub pacer: &'a StartPacer,
    /// The start's account and region: its pacing lane.
    pub lane: String,
    pub interval: Duration,
    pub deadline: Option<DateTime<Utc>>,
}

impl Starter<'_> {
    /// Starts (or, with `resume`, first looks for) the execution of `request`'s ClientToken.
    /// Returns its id and whether this call started it. Without `may_start`, only looks.
    pub async fn start(
        &self,
        request: &StartAutomation,
        resume: bool,
        may_start: bool,
    ) -> Result<(String, bool), StartFailure> {
        // A resumed attempt may have started before a crash: ask SSM first.
        if resume
            && let Some(id) = self
                .automation
                .find_by_client_token(&request.region, &request.client_token)
                .await?
        {
            return Ok((id, false));
        }
        if !may_start {
            return Err(StartFailure::Withdrawn);
        }
        let mut backoff = Duration::seconds(1);
        let mut last_error = None;
        for try_number in 0..START_TRIES {
            let wait = self
                .pacer
                .reserve(&self.lane, self.clock.now(), self.interval);
            self.wait_within_budget(wait, "pacing StartAutomationExecution")
                .await?;
            match self.automation.start(request).await {
                Ok(id) => return Ok((id, true)),
                // The token was used with other parameters, or by a start that got through:
                // the execution it made, if SSM has one.
                Err(error) if error.kind == ErrorKind::Conflict => {
                    return match self
                        .automation
                        .find_by_client_token(&request.region, &request.client_token)
                        .await?
                    {
                        Some(id) => Ok((id, false)),
                        None => Err(StartFailure::Refused(error)),
                    };
                }
                Err(error) if !error.is_retryable() => return Err(StartFailure::Refused(error)),
                Err(error) => {
                    tracing::warn!(%error, try_number, "start failed retryably; backing off");
                    let wait = backoff + jitter(&request.client_token, try_number);
                    last_error = Some(error);
                    self.wait_within_budget(wait, "backing off after a retryable start error")
                        .await?;
                    backoff = (backoff * 2).min(Duration::seconds(MAX_BACKOFF_SECONDS));
                }
            }
        }
        Err(StartFailure::Later(last_error.map_or_else(
            || "start not attempted".into(),
            |error| error.to_string(),
        )))
    }

    async fn wait_within_budget(&self, wait: Duration, what: &str) -> Result<(), StartFailure> {
        if wait <= Duration::zero() {
            return Ok(());
        }
        if let Some(deadline) = self.deadline
            && self.clock.now() + wait + Duration::seconds(DEADLINE_MARGIN_SECONDS) > deadline
        {
            return Err(StartFailure::Later(format!(
                "the invocation's time budget cannot cover {what}; the record is retried later"
            )));
        }
        self.clock.sleep(wait).await;
        Ok(())
    }
}

/// Up to a second of jitter, spread by ClientToken and try, so retries of many records do not
/// move in lockstep.
fn jitter(client_token: &str, try_number: u32) -> Duration {
    let spread = client_token
        .bytes()
        .fold(u64::from(try_number) + 1, |hash, byte| {
            hash.wrapping_mul(1_099_511_628_211)
                .wrapping_add(u64::from(byte))
        });
    Duration::milliseconds((spread % 1000) as i64)
}

impl ResultsHandler {
    /// Starts the claimed attempt, records the execution, and links it to the attempt.
    pub(super) async fn start(
        &self,
        row: &Finding,
        episode: &Episode,
        start: Start,
        steps: &mut Vec<Step>,
        pass: &Pass,
        reserved: &Reserved,
    ) -> Result<(), Failure> {
        let lock = start.lock.clone();
        let mut request = start.request;
        if let Some(id) = &episode.ops_item_id {
            request.tags.insert(TAG_OPS_ITEM.to_owned(), id.clone());
        }
        // The finding's account: its runbook, its OpsItem.
        let clients = self.member(row).await?;
        let starter = Starter {
            automation: &*clients.automation,
            clock: &*self.clock,
            pacer: &self.pacer,
            lane: format!(
                "{}|{}",
                row.account_id.as_deref().unwrap_or_default(),
                request.region
            ),
            interval: self.config.safety.start_interval,
            deadline: pass.deadline,
        };
        let may_start = start.withdraw.is_none();
        let (execution_id, started) = match starter.start(&request, start.resume, may_start).await {
            Ok(found) => found,
            Err(StartFailure::Withdrawn) => {
                let withdrawal = start
                    .withdraw
                    .expect("only a withdrawable start is withdrawn");
                self.withdraw(&*clients.ops_center, episode, *withdrawal, steps)
                    .await?;
                // It never reached SSM: as if its lock had never been taken.
                if let Some(key) = &lock {
                    self.locks.abandon(key, &request.client_token).await?;
                }
                return Ok(());
            }
            Err(StartFailure::Later(reason)) => return Err(Failure::Retry(reason)),
            Err(StartFailure::Refused(error)) => {
                let reason = format!(
                    "{} could not start in {}: {error}",
                    request.document, request.region
                );
                tracing::error!(%reason, metric = "automations.refused", "start refused");
                // A failed attempt: the lifecycle holds for the cool-down or escalates.
                let outcome = Outcome {
                    execution_id: String::new(),
                    client_token: Some(request.client_token.clone()),
                    status: REFUSED.into(),
                    region: request.region.clone(),
                    document: Some(request.document.clone()),
                    failure: Some(reason.clone()),
                    failure_type: None,
                    at: self.clock.now(),
                    lock: lock.clone(),
                };
                // It never ran: its place under the breaker is given back (the lock goes with
                // the refused attempt, below).
                if let Some(breaker) = &reserved.breaker
                    && let Err(error) = self.counters.decrement(breaker).await
                {
                    tracing::warn!(%error, "could not give back the breaker's count");
                }
                let decision = record_outcome(
                    self.stores(&*clients.ops_center),
                    &self.config,
                    &row.hash_key,
                    &outcome,
                )
                .await?;
                if let Some(episode) = &decision.episode {
                    steps.push(stage_step(episode, &decision.why));
                }
                steps.push(Step::NoAutomation {
                    reason: reason.clone(),
                });
                return Err(Failure::Park(reason));
            }
        };
        let now = self.clock.now();
        if started {
            tracing::info!(execution = %execution_id, document = %request.document, metric = "automations.started", "automation started");
            crate::telemetry::count(crate::telemetry::AUTOMATIONS_STARTED);
            steps.push(Step::AutomationStarted {
                execution_id: execution_id.clone(),
                document: request.document.clone(),
                region: request.region.clone(),
                parameters: request.parameters.clone(),
                client_token: request.client_token.clone(),
            });
        } else {
            steps.push(Step::AutomationAlreadyStarted {
                execution_id: execution_id.clone(),
            });
        }
        let record = ExecutionRecord {
            automation_execution_id: execution_id.clone(),
            account: row.account_id.clone(),
            ops_item_id: episode.ops_item_id.clone(),
            finding_key: row.hash_key.clone(),
            region: request.region.clone(),
            document: Some(request.document.clone()),
            check_name: Some(row.check_name.clone()),
            resource: Some(row.resource.clone()),
            client_token: Some(request.client_token.clone()),
            parameters: Some(request.parameters.clone()),
            resource_lock: lock,
            status: "Pending".into(),
            started_at: Some(format_time(now)),
            updated_at: format_time(now),
            expires_at: (now + self.config.retention).timestamp(),
        };
        let status = self.executions.record_started(&record).await?;
        // The status handler may already have written the outcome: never undo it.
        if !is_final(&status)
            && let Some(id) = &episode.ops_item_id
        {
            ignore_missing(
                clients
                    .ops_center
                    .update(id, &started_update(&request, &execution_id))
                    .await,
            )?;
        }
        self.link(episode, &request.client_token, &execution_id)
            .await
    }

    /// Writes the episode without the attempt that never reached SSM, at the stage the controls
    /// give it now, and says so on the OpsItem.
    async fn withdraw(
        &self,
        ops_center: &dyn crate::ports::OpsCenter,
        claimed: &Episode,
        withdrawal: Withdrawal,
        steps: &mut Vec<Step>,
    ) -> Result<(), Failure> {
        let mut next = withdrawal.episode;
        // The OpsItem this decision may have just opened (an owed one) is the episode's too.
        next.ops_item_id = claimed.ops_item_id.clone();
        next.ops_item_owed = claimed.ops_item_owed;
        next.version = claimed.version + 1;
        // The OpsItem first: written after the episode, a failed update would never be retried
        // (the episode no longer shows anything to do).
        if let Some(id) = &next.ops_item_id {
            let update = &withdrawal.update_ops_item;
            ignore_missing(ops_center.update(id, update).await)?;
            steps.push(Step::OpsItemUpdated {
                id: id.clone(),
                status: update.status.map(|s| s.as_str().to_owned()),
            });
        }
        if !self.executions.put_episode(&next).await? {
            return Err(Failure::Retry(
                "the episode changed while its attempt was being withdrawn".into(),
            ));
        }
        tracing::info!(why = %withdrawal.why, metric = "automations.withdrawn", "claimed start withdrawn");
        crate::telemetry::episode_written(Some(claimed), &next);
        steps.push(stage_step(&next, &withdrawal.why));
        Ok(())
    }

    /// Records the execution's id on its attempt. The episode as this record wrote it is the
    /// first guess (no read); the write is conditional on its version, so if anything moved the
    /// episode since, it is read again and the link retried on what is there.
    async fn link(
        &self,
        written: &Episode,
        token: &str,
        execution_id: &str,
    ) -> Result<(), Failure> {
        let mut known = Some(written.clone());
        // The guess, then TRIES reads.
        for _ in 0..=TRIES {
            let read = match known.take() {
                Some(episode) => Some(episode),
                None => self.executions.get_episode(&written.finding_key).await?,
            };
            let Some(mut episode) = read else {
                return Ok(());
            };
            let Some(attempt) = episode.attempt_mut(token) else {
                return Ok(());
            };
            if attempt.execution_id.is_some() {
                return Ok(());
            }
            attempt.execution_id = Some(execution_id.to_owned());
            episode.version += 1;
            if self.executions.put_episode(&episode).await? {
                return Ok(());
            }
        }
        Err(Failure::Retry(
            "the episode changed under every attempt to link its execution".into(),
        ))
    }
}
