//! Named counters.

use crate::error::PortError;
use crate::memory::{Faults, lock};
use crate::ports::Counters;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Named counters.
#[derive(Default)]
pub struct InMemoryCounters {
    pub(crate) faults: Arc<Faults>,
    values: Mutex<HashMap<String, u64>>,
}

#[async_trait]
impl Counters for InMemoryCounters {
    async fn increment_below(
        &self,
        name: &str,
        limit: u64,
        _expires_at: i64,
    ) -> Result<bool, PortError> {
        self.faults.check("counters.increment_below")?;
        let mut values = lock(&self.values);
        let value = values.entry(name.to_owned()).or_default();
        if *value >= limit {
            return Ok(false);
        }
        *value += 1;
        Ok(true)
    }

    async fn increment(&self, name: &str, _expires_at: i64) -> Result<u64, PortError> {
        self.faults.check("counters.increment")?;
        let mut values = lock(&self.values);
        let value = values.entry(name.to_owned()).or_default();
        *value += 1;
        Ok(*value)
    }

    async fn decrement(&self, name: &str) -> Result<(), PortError> {
        self.faults.check("counters.decrement")?;
        if let Some(value) = lock(&self.values).get_mut(name) {
            *value = value.saturating_sub(1);
        }
        Ok(())
    }

    async fn value(&self, name: &str) -> Result<u64, PortError> {
        self.faults.check("counters.value")?;
        Ok(lock(&self.values).get(name).copied().unwrap_or(0))
    }
}
