//! The account registry, in the execution table: one item per account
//! (`automationExecutionId = account#<id>`, `recordType = account`), written with UpdateItem so a
//! sweep and an event never overwrite each other's fields.

use super::{from_item, get_item, n, s, to_item};
use crate::aws::errors::port_error;
use crate::error::PortError;
use crate::ports::{ACCOUNT_RECORD_DAYS, AccountRecord, AccountRegistry};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;

/// The fields a sweep does not own.
const KEPT: [&str; 2] = ["lastEventAt", "firstSweptAt"];

#[derive(Clone)]
pub struct DynamoAccounts {
    client: Client,
    table: String,
}

impl DynamoAccounts {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn key(account: &str) -> String {
    format!("account#{account}")
}

fn expires(at: i64) -> i64 {
    at + ACCOUNT_RECORD_DAYS * 86_400
}

#[async_trait]
impl AccountRegistry for DynamoAccounts {
    async fn record_sweep(&self, record: &AccountRecord) -> Result<(), PortError> {
        let swept = record.swept_at.unwrap_or_default();
        let mut sets = vec![
            "recordType = :recordType".to_owned(),
            "expiresAt = :expiresAt".to_owned(),
        ];
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("automationExecutionId", s(key(&record.account)))
            .expression_attribute_values(":recordType", s("account"))
            .expression_attribute_values(":expiresAt", n(expires(swept)));
        if let Some(first) = record.first_swept_at {
            sets.push("firstSweptAt = if_not_exists(firstSweptAt, :first)".to_owned());
            update = update.expression_attribute_values(":first", n(first));
        }
        for (name, value) in to_item("UpdateItem", record)? {
            if KEPT.contains(&name.as_str()) {
                continue;
            }
            sets.push(format!("#{name} = :{name}"));
            update = update
                .expression_attribute_names(format!("#{name}"), &name)
                .expression_attribute_values(format!(":{name}"), value);
        }
        update
            .update_expression(format!("SET {}", sets.join(", ")))
            .send()
            .await
            .map_err(|error| port_error("UpdateItem", &error))?;
        Ok(())
    }

    async fn saw_event(&self, account: &str, at: i64) -> Result<(), PortError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("automationExecutionId", s(key(account)))
            .update_expression(
                "SET lastEventAt = :at, #account = :account, recordType = :recordType, expiresAt = :expiresAt",
            )
            .condition_expression("attribute_not_exists(lastEventAt) OR lastEventAt < :at")
            .expression_attribute_names("#account", "account")
            .expression_attribute_values(":at", n(at))
            .expression_attribute_values(":account", s(account))
            .expression_attribute_values(":recordType", s("account"))
            .expression_attribute_values(":expiresAt", n(expires(at)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) => match error.as_service_error() {
                // A later event is already noted.
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(()),
                _ => Err(port_error("UpdateItem", &error)),
            },
        }
    }

    async fn get(&self, account: &str) -> Result<Option<AccountRecord>, PortError> {
        get_item(
            &self.client,
            &self.table,
            &[("automationExecutionId", &key(account))],
            true,
        )
        .await?
        .map(|item| from_item("GetItem", item))
        .transpose()
    }
}
