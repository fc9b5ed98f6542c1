//! Resource tags (the Resource Groups Tagging API).

use super::{Faults, lock};
use crate::error::PortError;
use crate::ports::ResourceTags;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Resource tags by ARN.
#[derive(Default)]
pub struct InMemoryResourceTags {
    pub(crate) faults: Arc<Faults>,
    tags: Mutex<HashMap<String, BTreeMap<String, String>>>,
}

impl InMemoryResourceTags {
    pub fn set(&self, arn: &str, tags: BTreeMap<String, String>) {
        lock(&self.tags).insert(arn.to_owned(), tags);
    }
}

#[async_trait]
impl ResourceTags for InMemoryResourceTags {
    async fn tags(&self, _region: &str, arn: &str) -> Result<BTreeMap<String, String>, PortError> {
        self.faults.check("tags.tags")?;
        Ok(lock(&self.tags).get(arn).cloned().unwrap_or_default())
    }
}
