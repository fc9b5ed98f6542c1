//! The mapping table: items read as plain JSON, both `automationParameters` shapes.

use super::{from_item, get_item, s, scan, to_item};
use crate::aws::errors::port_error;
use crate::error::PortError;
use crate::ports::MappingStore;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use serde_json::Value;

/// The mapping table.
#[derive(Clone)]
pub struct DynamoMappings {
    client: Client,
    table: String,
}

impl DynamoMappings {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl MappingStore for DynamoMappings {
    async fn list(&self) -> Result<Vec<Value>, PortError> {
        let items = scan(
            &self.client,
            &self.table,
            "attribute_exists(checkName)",
            &[],
            vec![],
        )
        .await?;
        items
            .into_iter()
            .map(|item| from_item("Scan", item))
            .collect()
    }

    async fn put(&self, item: &Value) -> Result<(), PortError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item("PutItem", item)?))
            .send()
            .await
            .map_err(|error| port_error("PutItem", &error))?;
        Ok(())
    }

    async fn delete(&self, check_name: &str) -> Result<(), PortError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("checkName", s(check_name))
            .send()
            .await
            .map_err(|error| port_error("DeleteItem", &error))?;
        Ok(())
    }

    async fn check_names(&self) -> Result<Vec<String>, PortError> {
        let items = scan(
            &self.client,
            &self.table,
            "attribute_exists(checkName)",
            &[],
            vec![],
        )
        .await?;
        Ok(items
            .iter()
            .filter_map(|item| item.get("checkName")?.as_s().ok().cloned())
            .collect())
    }

    async fn get(&self, check_name: &str) -> Result<Option<Value>, PortError> {
        let item = get_item(
            &self.client,
            &self.table,
            &[("checkName", check_name)],
            false,
        )
        .await?;
        item.map(|item| from_item("GetItem", item)).transpose()
    }
}
