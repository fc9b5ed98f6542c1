//! Named counters with a TTL, in the execution table: the circuit breaker's and the OpsItem
//! budget's.

use super::{get_item, n, s};
use crate::aws::errors::port_error;
use crate::error::PortError;
use crate::ports::Counters;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

/// Named counters, in the execution table (key = the counter's name).
#[derive(Clone)]
pub struct DynamoCounters {
    client: Client,
    table: String,
}

impl DynamoCounters {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl Counters for DynamoCounters {
    async fn increment_below(
        &self,
        name: &str,
        limit: u64,
        expires_at: i64,
    ) -> Result<bool, PortError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("automationExecutionId", s(name))
            .update_expression("SET expiresAt = :expiresAt ADD #count :one")
            .condition_expression("attribute_not_exists(#count) OR #count < :limit")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", AttributeValue::N(limit.to_string()))
            .expression_attribute_values(":expiresAt", n(expires_at))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) => match error.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(false),
                _ => Err(port_error("UpdateItem", &error)),
            },
        }
    }

    async fn increment(&self, name: &str, expires_at: i64) -> Result<u64, PortError> {
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("automationExecutionId", s(name))
            .update_expression("SET expiresAt = :expiresAt ADD #count :one")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":expiresAt", n(expires_at))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|error| port_error("UpdateItem", &error))?;
        Ok(output
            .attributes()
            .and_then(|item| item.get("count"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(1))
    }

    async fn decrement(&self, name: &str) -> Result<(), PortError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("automationExecutionId", s(name))
            .update_expression("ADD #count :minusOne")
            .condition_expression("#count > :zero")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":minusOne", n(-1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) => match error.as_service_error() {
                // Already zero (or gone with its TTL): nothing to take back.
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(()),
                _ => Err(port_error("UpdateItem", &error)),
            },
        }
    }

    async fn value(&self, name: &str) -> Result<u64, PortError> {
        let item = get_item(
            &self.client,
            &self.table,
            &[("automationExecutionId", name)],
            true,
        )
        .await?;
        Ok(item
            .as_ref()
            .and_then(|item| item.get("count"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }
}
