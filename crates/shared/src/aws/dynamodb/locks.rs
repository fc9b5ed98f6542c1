//! Resource locks in the execution table: one item per resource (`lock#<hash>`), taken with a
//! conditional put and released by its holder.

use super::{from_item, n, s, to_item};
use crate::aws::errors::port_error;
use crate::error::PortError;
use crate::ports::{LockHolder, ResourceLocks};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

#[derive(Clone)]
pub struct DynamoLocks {
    client: Client,
    table: String,
}

impl DynamoLocks {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

/// The lock's item key: a fixed-size name for a resource of any length.
pub fn lock_item_key(key: &str) -> String {
    format!("lock#{}", crate::finding::short_hash(key))
}

/// Free: never held, held by this attempt, its lease passed, or released by the same finding or
/// long enough ago for another ([`ResourceLocks::acquire`]).
const FREE: &str = "attribute_not_exists(automationExecutionId) OR clientToken = :token \
     OR leaseUntil < :now OR (attribute_exists(releasedAt) AND (findingKey = :finding \
     OR releasedAt <= :cooled))";

#[async_trait]
impl ResourceLocks for DynamoLocks {
    async fn acquire(
        &self,
        key: &str,
        holder: &LockHolder,
        now: i64,
        cooled: i64,
        expires_at: i64,
    ) -> Result<Option<LockHolder>, PortError> {
        let mut item = to_item("PutItem", holder)?;
        item.insert("automationExecutionId".into(), s(lock_item_key(key)));
        item.insert("recordType".into(), s("lock"));
        item.insert("lockKey".into(), s(key));
        item.insert("expiresAt".into(), n(expires_at));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(FREE)
            .expression_attribute_values(":token", s(&holder.client_token))
            .expression_attribute_values(":finding", s(&holder.finding_key))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":cooled", n(cooled))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(error) => match error.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    match failed.item() {
                        Some(item) => from_item("PutItem", item.clone()).map(Some),
                        // Not said why: read as held by an unknown attempt, so nothing starts.
                        None => Ok(Some(LockHolder {
                            finding_key: String::new(),
                            client_token: String::new(),
                            check_name: String::new(),
                            document: String::new(),
                            acquired_at: now,
                            lease_until: now,
                            released_at: None,
                        })),
                    }
                }
                _ => Err(port_error("PutItem", &error)),
            },
        }
    }

    async fn abandon(&self, key: &str, client_token: &str) -> Result<(), PortError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("automationExecutionId", s(lock_item_key(key)))
            .condition_expression("clientToken = :token AND attribute_not_exists(releasedAt)")
            .expression_attribute_values(":token", s(client_token))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) => match error.as_service_error() {
                Some(DeleteItemError::ConditionalCheckFailedException(_)) => Ok(()),
                _ => Err(port_error("DeleteItem", &error)),
            },
        }
    }

    async fn release(&self, key: &str, client_token: &str, now: i64) -> Result<(), PortError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("automationExecutionId", s(lock_item_key(key)))
            .update_expression("SET releasedAt = :now")
            .condition_expression("clientToken = :token AND attribute_not_exists(releasedAt)")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":token", s(client_token))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) => match error.as_service_error() {
                // Another attempt holds it now, or it is released already.
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(()),
                _ => Err(port_error("UpdateItem", &error)),
            },
        }
    }
}
