//! Resource locks, with DynamoDB's conditional put.

use crate::error::PortError;
use crate::memory::{Faults, lock};
use crate::ports::{LockHolder, ResourceLocks};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Resource locks (one item per resource, as in the execution table).
#[derive(Default)]
pub struct InMemoryLocks {
    pub(crate) faults: Arc<Faults>,
    held: Mutex<HashMap<String, LockHolder>>,
}

impl InMemoryLocks {
    pub fn holder(&self, key: &str) -> Option<LockHolder> {
        lock(&self.held).get(key).cloned()
    }
}

#[async_trait]
impl ResourceLocks for InMemoryLocks {
    async fn acquire(
        &self,
        key: &str,
        holder: &LockHolder,
        now: i64,
        cooled: i64,
        _expires_at: i64,
    ) -> Result<Option<LockHolder>, PortError> {
        self.faults.check("locks.acquire")?;
        let mut held = lock(&self.held);
        // The condition the DynamoDB adapter writes.
        let free = match held.get(key) {
            None => true,
            Some(current) => {
                current.client_token == holder.client_token
                    || current.lease_until < now
                    || current.released_at.is_some_and(|released| {
                        current.finding_key == holder.finding_key || released <= cooled
                    })
            }
        };
        if !free {
            return Ok(held.get(key).cloned());
        }
        held.insert(key.to_owned(), holder.clone());
        Ok(None)
    }

    async fn abandon(&self, key: &str, client_token: &str) -> Result<(), PortError> {
        self.faults.check("locks.abandon")?;
        let mut held = lock(&self.held);
        if held.get(key).is_some_and(|current| {
            current.client_token == client_token && current.released_at.is_none()
        }) {
            held.remove(key);
        }
        Ok(())
    }

    async fn release(&self, key: &str, client_token: &str, now: i64) -> Result<(), PortError> {
        self.faults.check("locks.release")?;
        if let Some(current) = lock(&self.held).get_mut(key)
            && current.client_token == client_token
            && current.released_at.is_none()
        {
            current.released_at = Some(now);
        }
        Ok(())
    }
}
