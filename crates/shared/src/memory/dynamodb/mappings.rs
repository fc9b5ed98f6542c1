//! The mapping table, holding plain JSON items.

use crate::error::{ErrorKind, PortError};
use crate::memory::{Faults, lock};
use crate::ports::MappingStore;
use async_trait::async_trait;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The mapping table, holding plain JSON items.
#[derive(Default)]
pub struct InMemoryMappings {
    pub(crate) faults: Arc<Faults>,
    items: Mutex<BTreeMap<String, Value>>,
}

impl InMemoryMappings {
    /// Stores an item (plain or DynamoDB-typed JSON) under its `checkName`.
    pub fn put(&self, item: &Value) -> Result<(), PortError> {
        let plain = crate::mapping::plain_json(item);
        let check = plain
            .get("checkName")
            .and_then(Value::as_str)
            .filter(|name| !name.is_empty())
            .ok_or_else(|| {
                PortError::new(
                    "PutItem",
                    ErrorKind::Invalid,
                    "the item has no string `checkName` key",
                )
            })?
            .to_owned();
        lock(&self.items).insert(check, plain);
        Ok(())
    }
}

#[async_trait]
impl MappingStore for InMemoryMappings {
    async fn check_names(&self) -> Result<Vec<String>, PortError> {
        self.faults.check("mappings.check_names")?;
        Ok(lock(&self.items).keys().cloned().collect())
    }

    async fn list(&self) -> Result<Vec<Value>, PortError> {
        self.faults.check("mappings.list")?;
        Ok(lock(&self.items).values().cloned().collect())
    }

    async fn put(&self, item: &Value) -> Result<(), PortError> {
        self.faults.check("mappings.put")?;
        InMemoryMappings::put(self, item)
    }

    async fn delete(&self, check_name: &str) -> Result<(), PortError> {
        self.faults.check("mappings.delete")?;
        lock(&self.items).remove(check_name);
        Ok(())
    }

    async fn get(&self, check_name: &str) -> Result<Option<Value>, PortError> {
        self.faults.check("mappings.get")?;
        Ok(lock(&self.items).get(check_name).cloned())
    }
}
