//! The account registry, in memory: one record per account, merged as the DynamoDB adapter's
//! UpdateItem merges (a sweep keeps the last event and the first sweep; an event never moves the
//! last event back).

use super::{Faults, lock};
use crate::error::PortError;
use crate::ports::{AccountRecord, AccountRegistry};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct InMemoryAccounts {
    pub(crate) faults: Arc<Faults>,
    records: Mutex<BTreeMap<String, AccountRecord>>,
}

impl InMemoryAccounts {
    /// Every record, by account.
    pub fn all(&self) -> Vec<AccountRecord> {
        lock(&self.records).values().cloned().collect()
    }
}

#[async_trait]
impl AccountRegistry for InMemoryAccounts {
    async fn record_sweep(&self, record: &AccountRecord) -> Result<(), PortError> {
        self.faults.check("accounts.record_sweep")?;
        let mut records = lock(&self.records);
        let stored = records.get(&record.account);
        let merged = AccountRecord {
            last_event_at: stored.and_then(|s| s.last_event_at),
            first_swept_at: stored
                .and_then(|s| s.first_swept_at)
                .or(record.first_swept_at),
            ..record.clone()
        };
        records.insert(record.account.clone(), merged);
        Ok(())
    }

    async fn saw_event(&self, account: &str, at: i64) -> Result<(), PortError> {
        self.faults.check("accounts.saw_event")?;
        let mut records = lock(&self.records);
        let record = records
            .entry(account.to_owned())
            .or_insert_with(|| AccountRecord::new(account));
        if record.last_event_at.is_none_or(|last| last < at) {
            record.last_event_at = Some(at);
        }
        Ok(())
    }

    async fn get(&self, account: &str) -> Result<Option<AccountRecord>, PortError> {
        self.faults.check("accounts.get")?;
        Ok(lock(&self.records).get(account).cloned())
    }
}
