//! The three tables on DynamoDB.
//!
//! - Tracker: one conditional `PutItem` per finding; a failed condition is "not newer", told
//!   apart as duplicate or stale from the stored item DynamoDB returns with the failure.
//! - Mapping: `GetItem`, typed attributes unwrapped to plain JSON, so both `automationParameters`
//!   shapes (a JSON string, or a map) reach the one validator.
//! - Execution: rows keyed by `automationExecutionId`; attempt claims live in the same table
//!   under `attempt#<ClientToken>`, written with `attribute_not_exists` before SSM is called.
//!   Both carry `expiresAt` (TTL, epoch seconds).

use super::errors::port_error;
use crate::automation_event::is_final;
use crate::error::{ErrorKind, PortError};
use crate::finding::Finding;
use crate::ports::{
    AttemptClaim, Claim, ExecutionRecord, ExecutionStore, MappingStore, StatusWrite, TrackerStore,
    WriteOutcome,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use serde_json::Value;
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

fn to_item<T: serde::Serialize>(operation: &'static str, value: &T) -> Result<Item, PortError> {
    serde_dynamo::to_item(value)
        .map_err(|error| PortError::new(operation, ErrorKind::Invalid, error.to_string()))
}

fn from_item<T: serde::de::DeserializeOwned>(
    operation: &'static str,
    item: Item,
) -> Result<T, PortError> {
    serde_dynamo::from_item(item).map_err(|error| {
        PortError::new(
            operation,
            ErrorKind::Invalid,
            format!("the stored item does not read back: {error}"),
        )
    })
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn number_attribute(item: Option<&Item>, name: &str) -> Option<i64> {
    item?.get(name)?.as_n().ok()?.parse().ok()
}

/// The tracker table.
#[derive(Clone)]
pub struct DynamoTracker {
    client: Client,
    table: String,
}

impl DynamoTracker {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

/// Replaces the row only when the finding is strictly newer. Rows written by other tools carry
/// no `findingTimeMillis`; their `lastUpdatedTimeEpoch` (seconds) is compared instead.
const NEWER_CONDITION: &str = "attribute_not_exists(hashKey) OR findingTimeMillis < :millis \
     OR (attribute_not_exists(findingTimeMillis) AND lastUpdatedTimeEpoch < :seconds)";

#[async_trait]
impl TrackerStore for DynamoTracker {
    async fn put_if_newer(&self, finding: &Finding) -> Result<WriteOutcome, PortError> {
        let millis = finding.time_millis();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item("PutItem", finding)?))
            .condition_expression(NEWER_CONDITION)
            .expression_attribute_values(":millis", n(millis))
            .expression_attribute_values(":seconds", n(finding.last_updated_time_epoch))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let error = match result {
            Ok(_) => return Ok(WriteOutcome::Written),
            Err(error) => error,
        };
        match error.as_service_error() {
            Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                let stored = number_attribute(failed.item(), "findingTimeMillis");
                Ok(if stored == Some(millis) {
                    WriteOutcome::Duplicate
                } else {
                    WriteOutcome::Stale
                })
            }
            _ => Err(port_error("PutItem", &error)),
        }
    }

    async fn get(&self, hash_key: &str, resource: &str) -> Result<Option<Finding>, PortError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("hashKey", s(hash_key))
            .key("resource", s(resource))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| port_error("GetItem", &error))?;
        output
            .item
            .map(|item| from_item("GetItem", item))
            .transpose()
    }
}

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
    async fn get(&self, check_name: &str) -> Result<Option<Value>, PortError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("checkName", s(check_name))
            .send()
            .await
            .map_err(|error| port_error("GetItem", &error))?;
        output
            .item
            .map(|item| from_item("GetItem", item))
            .transpose()
    }
}

/// The execution table.
#[derive(Clone)]
pub struct DynamoExecutions {
    client: Client,
    table: String,
}

impl DynamoExecutions {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

/// The key of an attempt claim in the execution table.
pub fn claim_key(client_token: &str) -> String {
    format!("attempt#{client_token}")
}

const FINAL_STATUSES: [&str; 9] = [
    "Success",
    "Failed",
    "TimedOut",
    "Cancelled",
    "Rejected",
    "CompletedWithSuccess",
    "CompletedWithFailure",
    "ChangeCalendarOverrideRejected",
    "Exited",
];

/// `SET` clauses that fill attributes only where the row lacks them, so whichever of the results
/// handler and the status handler writes first, the row ends up complete.
fn fill_missing(
    record: &ExecutionRecord,
) -> Result<Vec<(&'static str, AttributeValue)>, PortError> {
    let mut values = vec![
        ("opsItemId", s(&record.ops_item_id)),
        ("findingKey", s(&record.finding_key)),
        ("region", s(&record.region)),
    ];
    let optional = [
        ("document", record.document.as_ref()),
        ("checkName", record.check_name.as_ref()),
        ("resource", record.resource.as_ref()),
        ("clientToken", record.client_token.as_ref()),
        ("startedAt", record.started_at.as_ref()),
    ];
    values.extend(
        optional
            .into_iter()
            .filter_map(|(name, value)| value.map(|v| (name, s(v)))),
    );
    if let Some(parameters) = &record.parameters {
        values.push((
            "parameters",
            serde_dynamo::to_attribute_value(parameters).map_err(|error| {
                PortError::new("UpdateItem", ErrorKind::Invalid, error.to_string())
            })?,
        ));
    }
    Ok(values)
}

#[async_trait]
impl ExecutionStore for DynamoExecutions {
    async fn claim(&self, claim: &AttemptClaim) -> Result<Claim, PortError> {
        let mut item = to_item("PutItem", claim)?;
        item.insert(
            "automationExecutionId".into(),
            s(claim_key(&claim.client_token)),
        );
        item.insert("recordType".into(), s("attempt"));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(automationExecutionId)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let error = match result {
            Ok(_) => return Ok(Claim::New),
            Err(error) => error,
        };
        match error.as_service_error() {
            Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                let execution_id = match failed.item() {
                    Some(item) => item.get("executionId").and_then(|v| v.as_s().ok()).cloned(),
                    // Servers that do not return the old item: read it.
                    None => self.claimed_execution(&claim.client_token).await?,
                };
                Ok(Claim::Existing { execution_id })
            }
            _ => Err(port_error("PutItem", &error)),
        }
    }

    async fn record_started(&self, record: &ExecutionRecord) -> Result<(), PortError> {
        let fields = fill_missing(record)?;
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("automationExecutionId", s(&record.automation_execution_id))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(&record.status))
            .expression_attribute_values(":updatedAt", s(&record.updated_at))
            .expression_attribute_values(":expiresAt", n(record.expires_at));
        let mut clauses = vec![
            "#status = if_not_exists(#status, :status)".to_owned(),
            "updatedAt = if_not_exists(updatedAt, :updatedAt)".to_owned(),
            "expiresAt = :expiresAt".to_owned(),
        ];
        for (name, value) in fields {
            // Names go through placeholders: `region`, `resource` and others are reserved words.
            clauses.push(format!("#{name} = :{name}"));
            update = update
                .expression_attribute_names(format!("#{name}"), name)
                .expression_attribute_values(format!(":{name}"), value);
        }
        update
            .update_expression(format!("SET {}", clauses.join(", ")))
            .send()
            .await
            .map_err(|error| port_error("UpdateItem", &error))?;
        if let Some(token) = &record.client_token {
            self.client
                .update_item()
                .table_name(&self.table)
                .key("automationExecutionId", s(claim_key(token)))
                .update_expression("SET executionId = :id")
                .condition_expression("attribute_exists(automationExecutionId)")
                .expression_attribute_values(":id", s(&record.automation_execution_id))
                .send()
                .await
                .map(|_| ())
                .or_else(|error| match error.as_service_error() {
                    // No claim (an execution found through its tags): nothing to link.
                    Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(()),
                    _ => Err(port_error("UpdateItem", &error)),
                })?;
        }
        Ok(())
    }

    async fn get(&self, execution_id: &str) -> Result<Option<ExecutionRecord>, PortError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("automationExecutionId", s(execution_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| port_error("GetItem", &error))?;
        output
            .item
            .map(|item| from_item("GetItem", item))
            .transpose()
    }

    async fn record_status(&self, record: &ExecutionRecord) -> Result<StatusWrite, PortError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("automationExecutionId", s(&record.automation_execution_id))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(&record.status))
            .expression_attribute_values(":updatedAt", s(&record.updated_at))
            .expression_attribute_values(":expiresAt", n(record.expires_at));
        let mut clauses = vec![
            "#status = :status".to_owned(),
            "updatedAt = :updatedAt".to_owned(),
            "expiresAt = :expiresAt".to_owned(),
        ];
        for (name, value) in fill_missing(record)? {
            clauses.push(format!("#{name} = if_not_exists(#{name}, :{name})"));
            update = update
                .expression_attribute_names(format!("#{name}"), name)
                .expression_attribute_values(format!(":{name}"), value);
        }
        let mut finals = vec![];
        for (i, status) in FINAL_STATUSES.iter().enumerate() {
            finals.push(format!(":final{i}"));
            update = update.expression_attribute_values(format!(":final{i}"), s(*status));
        }
        debug_assert!(FINAL_STATUSES.iter().all(|status| is_final(status)));
        let result = update
            .update_expression(format!("SET {}", clauses.join(", ")))
            .condition_expression(format!(
                "attribute_not_exists(#status) OR NOT (#status IN ({}))",
                finals.join(", ")
            ))
            .send()
            .await;
        match result {
            Ok(_) => Ok(StatusWrite::Updated),
            Err(error) => match error.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => {
                    Ok(StatusWrite::AlreadyFinal)
                }
                _ => Err(port_error("UpdateItem", &error)),
            },
        }
    }
}

impl DynamoExecutions {
    async fn claimed_execution(&self, client_token: &str) -> Result<Option<String>, PortError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("automationExecutionId", s(claim_key(client_token)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| port_error("GetItem", &error))?;
        Ok(output
            .item
            .and_then(|item| item.get("executionId").and_then(|v| v.as_s().ok()).cloned()))
    }
}
