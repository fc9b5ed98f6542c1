//! The execution table: execution rows, episodes and the sweep's cursor, with TTL.

use crate::automation_event::is_final;
use crate::clock::Clock;
use crate::episode::Episode;
use crate::error::PortError;
use crate::memory::{Faults, lock};
use crate::ports::{
    DueEpisode, EpisodePage, ExecutionRecord, ExecutionStore, Page, StatusWrite, SweepState,
    due_shard,
};

/// Where a replaced episode is kept.
pub fn archive_key(episode: &Episode) -> String {
    format!(
        "{}#{}",
        episode.finding_key,
        crate::finding::short_hash(&episode.episode)
    )
}

/// An RFC 3339 time as the index's epoch seconds (0 when unreadable, as the adapter writes it).
fn epoch(time: &str) -> i64 {
    crate::finding::parse_time(time).map_or(0, |at| at.timestamp())
}

/// A due index position: the due time (fixed width, so it sorts) and the key.
fn due_cursor(at: i64, key: &str) -> String {
    format!("{at:015}|{key}")
}
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// The execution table: execution rows and each finding's remediation state, with DynamoDB's TTL
/// on the simulated clock.
///
/// DynamoDB deletes an expired item "typically within a few days", and until then it still
/// appears in reads. So expired items stay readable here until [`InMemoryExecutions::expire_ttl`]
/// (the TTL process) runs; tests run the loop both with and without it.
#[derive(Default)]
pub struct InMemoryExecutions {
    pub(crate) faults: Arc<Faults>,
    clock: Option<Arc<dyn Clock>>,
    state: Mutex<ExecutionState>,
}

#[derive(Default)]
struct ExecutionState {
    rows: BTreeMap<String, ExecutionRecord>,
    episodes: BTreeMap<String, Episode>,
    /// The due index in its query order (shard, due, key): only episodes with a due time, kept
    /// with every episode write, so a query reads what is due, not the table.
    due: BTreeSet<(u32, i64, String)>,
    /// The running part of the due index: execution rows whose status is not final, by id,
    /// with their last update (epoch seconds), as the DynamoDB adapter marks them.
    running: BTreeMap<String, i64>,
    /// Replaced episodes, by `<finding key>#<episode hash>`.
    archive: BTreeMap<String, Episode>,
    sweep_state: SweepState,
}

impl InMemoryExecutions {
    /// TTL is measured against this clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    pub fn rows(&self) -> Vec<ExecutionRecord> {
        lock(&self.state).rows.values().cloned().collect()
    }

    pub fn episodes(&self) -> Vec<Episode> {
        lock(&self.state).episodes.values().cloned().collect()
    }

    /// Whether any episode waits on time (has a due time): what is left for the sweeps.
    pub fn waits_on_time(&self) -> bool {
        !lock(&self.state).due.is_empty()
    }

    pub fn episode(&self, finding_key: &str) -> Option<Episode> {
        lock(&self.state).episodes.get(finding_key).cloned()
    }

    /// DynamoDB's TTL process: deletes every item whose `expiresAt` (epoch seconds, when set)
    /// has passed. Returns how many it deleted.
    pub fn expire_ttl(&self) -> usize {
        let Some(now) = self.clock.as_ref().map(|clock| clock.now().timestamp()) else {
            return 0;
        };
        let expired = |expires_at: i64| expires_at > 0 && expires_at <= now;
        let mut state = lock(&self.state);
        let before = state.rows.len() + state.episodes.len();
        state.rows.retain(|_, row| !expired(row.expires_at));
        state
            .episodes
            .retain(|_, episode| !expired(episode.expires_at));
        // The index forgets what the table deleted.
        let ExecutionState {
            episodes,
            due,
            rows,
            running,
            ..
        } = &mut *state;
        due.retain(|(_, _, key)| episodes.contains_key(key));
        running.retain(|id, _| rows.contains_key(id));
        before - state.rows.len() - state.episodes.len()
    }
}

#[async_trait]
impl ExecutionStore for InMemoryExecutions {
    async fn record_started(&self, record: &ExecutionRecord) -> Result<String, PortError> {
        self.faults.check("executions.record_started")?;
        let mut state = lock(&self.state);
        // `status` and `updatedAt` only where missing; the rest filled where missing.
        let merged = match state.rows.get(&record.automation_execution_id) {
            Some(existing) => existing.filled_from(record),
            None => record.clone(),
        };
        let status = merged.status.clone();
        let id = &record.automation_execution_id;
        if !is_final(&record.status) {
            state
                .running
                .entry(id.clone())
                .or_insert_with(|| epoch(&record.updated_at));
        }
        if is_final(&status) {
            state.running.remove(id);
        }
        state.rows.insert(id.clone(), merged);
        Ok(status)
    }

    async fn get(&self, execution_id: &str) -> Result<Option<ExecutionRecord>, PortError> {
        self.faults.check("executions.get")?;
        Ok(lock(&self.state).rows.get(execution_id).cloned())
    }

    async fn record_status(&self, record: &ExecutionRecord) -> Result<StatusWrite, PortError> {
        self.faults.check("executions.record_status")?;
        let mut state = lock(&self.state);
        let updated = match state.rows.get(&record.automation_execution_id) {
            Some(existing) if is_final(&existing.status) => return Ok(StatusWrite::AlreadyFinal),
            // `status` and `updatedAt` set; the rest filled where missing (if_not_exists).
            Some(existing) => ExecutionRecord {
                status: record.status.clone(),
                updated_at: record.updated_at.clone(),
                ..existing.filled_from(record)
            },
            None => record.clone(),
        };
        let id = &record.automation_execution_id;
        if is_final(&record.status) {
            state.running.remove(id);
        } else {
            state.running.insert(id.clone(), epoch(&record.updated_at));
        }
        state.rows.insert(id.clone(), updated);
        Ok(StatusWrite::Updated)
    }

    async fn unfinished(&self, updated_before: &str) -> Result<Vec<ExecutionRecord>, PortError> {
        self.faults.check("executions.unfinished")?;
        // The running index, not the table: rows written before it are not in it (the episode
        // sweep asks SSM about their attempts at the in-flight timeout).
        let before = epoch(updated_before);
        let state = lock(&self.state);
        Ok(state
            .running
            .iter()
            .filter(|(_, at)| **at < before)
            .filter_map(|(id, _)| state.rows.get(id))
            .filter(|row| !is_final(&row.status))
            .cloned()
            .collect())
    }

    async fn get_episode(&self, finding_key: &str) -> Result<Option<Episode>, PortError> {
        self.faults.check("executions.get_episode")?;
        Ok(lock(&self.state).episodes.get(finding_key).cloned())
    }

    async fn put_episode(&self, new: &Episode) -> Result<bool, PortError> {
        self.faults.check("executions.put_episode")?;
        let mut state = lock(&self.state);
        let stored = state.episodes.get(&new.finding_key).map(|e| e.version);
        // The condition: attribute_not_exists (version 1) or version = new.version - 1.
        let expected = new.version.checked_sub(1).filter(|v| *v > 0);
        if stored != expected {
            return Ok(false);
        }
        let shard = due_shard(&new.finding_key);
        if let Some(at) = state.episodes.get(&new.finding_key).and_then(|e| e.due_at) {
            state.due.remove(&(shard, at, new.finding_key.clone()));
        }
        if let Some(at) = new.due_at {
            state.due.insert((shard, at, new.finding_key.clone()));
        }
        state.episodes.insert(new.finding_key.clone(), new.clone());
        Ok(true)
    }

    async fn open_episodes(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<EpisodePage, PortError> {
        self.faults.check("executions.open_episodes")?;
        Ok(self.episode_page(after, limit, true))
    }

    async fn archive_episode(&self, episode: &Episode) -> Result<(), PortError> {
        self.faults.check("executions.archive_episode")?;
        lock(&self.state)
            .archive
            .insert(archive_key(episode), episode.clone());
        Ok(())
    }

    async fn episodes(&self, after: Option<&str>, limit: usize) -> Result<EpisodePage, PortError> {
        self.faults.check("executions.episodes")?;
        // Like a Scan: the current episodes and the archived ones, in one key order.
        let state = lock(&self.state);
        let all: BTreeMap<String, &Episode> = state
            .episodes
            .iter()
            .map(|(key, e)| (crate::episode::episode_key(key), e))
            .chain(
                state
                    .archive
                    .iter()
                    .map(|(key, e)| (format!("episode#{key}"), e)),
            )
            .collect();
        let mut read = all
            .iter()
            .filter(|(key, _)| after.is_none_or(|after| key.as_str() > after));
        let page: Vec<(&String, &&Episode)> = read.by_ref().take(limit.max(1)).collect();
        let more = read.next().is_some();
        Ok(EpisodePage {
            episodes: page.iter().map(|(_, e)| (**e).clone()).collect(),
            next: more
                .then(|| page.last().map(|(key, _)| (*key).clone()))
                .flatten(),
        })
    }

    async fn due_episodes(
        &self,
        shard: u32,
        due_by: i64,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<DueEpisode>, PortError> {
        self.faults.check("executions.due_episodes")?;
        // The sparse index: only episodes with a due time, in this shard, by (due, key); a
        // page is read from the cursor's due time on.
        let state = lock(&self.state);
        let resume_at = after
            .and_then(|after| after.get(..15))
            .and_then(|at| at.parse().ok())
            .unwrap_or(i64::MIN);
        let mut read = state
            .due
            .range((shard, resume_at, String::new())..)
            .take_while(|(s, at, _)| *s == shard && *at <= due_by)
            .filter(|(_, at, key)| after.is_none_or(|after| due_cursor(*at, key).as_str() > after));
        let page: Vec<&(u32, i64, String)> = read.by_ref().take(limit.max(1)).collect();
        let more = read.next().is_some();
        Ok(Page {
            items: page
                .iter()
                .filter_map(|(_, at, key)| {
                    let episode = state.episodes.get(key)?;
                    Some(DueEpisode {
                        finding_key: key.clone(),
                        resource: episode.resource.clone(),
                        due_at: *at,
                    })
                })
                .collect(),
            next: more
                .then(|| page.last().map(|(_, at, key)| due_cursor(*at, key)))
                .flatten(),
        })
    }

    async fn sweep_state(&self) -> Result<SweepState, PortError> {
        self.faults.check("executions.sweep_state")?;
        Ok(lock(&self.state).sweep_state.clone())
    }

    async fn set_sweep_state(&self, sweep_state: &SweepState) -> Result<(), PortError> {
        self.faults.check("executions.set_sweep_state")?;
        lock(&self.state).sweep_state = sweep_state.clone();
        Ok(())
    }
}

impl InMemoryExecutions {
    /// Like a Scan with a Limit: `limit` episodes read after `after`, the open ones (or all)
    /// returned.
    fn episode_page(&self, after: Option<&str>, limit: usize, open_only: bool) -> EpisodePage {
        let state = lock(&self.state);
        // Cursors are table keys (`finding#<key>`), as on DynamoDB.
        let after = after.map(|key| key.strip_prefix("finding#").unwrap_or(key));
        let mut keys = state
            .episodes
            .range::<str, _>((
                after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded),
                std::ops::Bound::Unbounded,
            ))
            .map(|(key, _)| key);
        // Like a Scan with a Limit: `limit` items are read, and only the open ones returned.
        let read: Vec<&String> = keys.by_ref().take(limit.max(1)).collect();
        let more = keys.next().is_some();
        EpisodePage {
            episodes: read
                .iter()
                .filter_map(|key| state.episodes.get(*key))
                .filter(|episode| !open_only || episode.stage.is_open())
                .cloned()
                .collect(),
            next: more
                .then(|| read.last().map(|key| crate::episode::episode_key(key)))
                .flatten(),
        }
    }
}

#[cfg(test)]
#[path = "executions_tests.rs"]
mod tests;
