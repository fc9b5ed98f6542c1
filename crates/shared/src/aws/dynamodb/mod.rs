//! The three tables on DynamoDB.
//!
//! - Tracker: one conditional `UpdateItem` per finding; a failed condition is "not later in the
//!   order", told apart as duplicate or stale from the stored item DynamoDB returns with it.
//! - Mapping: `GetItem`, typed attributes unwrapped to plain JSON, so both `automationParameters`
//!   shapes (a JSON string, or a map) reach the one validator.
//! - Execution: rows keyed by `automationExecutionId`. The same table holds each finding's
//!   episode under `finding#<finding key>` (written with a version condition: the claim that
//!   makes each start happen once), the named counters (`breaker#…`, `opsitems#…`) and the
//!   episode sweep's cursor (`sweep#episodes`), the resource locks (`lock#…`: one runbook per
//!   resource at a time) and the account registry (`account#<id>`). Rows, counters and closed episodes carry
//!   `expiresAt` (TTL, epoch seconds); open episodes do not.

mod accounts;
mod counters;
mod executions;
mod locks;
mod mappings;
mod tracker;

pub use accounts::DynamoAccounts;
pub use counters::DynamoCounters;
pub use executions::DynamoExecutions;
pub use locks::{DynamoLocks, lock_item_key};
pub use mappings::DynamoMappings;
pub use tracker::DynamoTracker;

use super::errors::port_error;
use crate::error::{ErrorKind, PortError};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) fn to_item<T: serde::Serialize>(
    operation: &'static str,
    value: &T,
) -> Result<Item, PortError> {
    serde_dynamo::to_item(value)
        .map_err(|error| PortError::new(operation, ErrorKind::Invalid, error.to_string()))
}

pub(super) fn from_item<T: serde::de::DeserializeOwned>(
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

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// `GetItem` by key (the key's values are strings in every table here).
pub(super) async fn get_item(
    client: &Client,
    table: &str,
    key: &[(&str, &str)],
    consistent: bool,
) -> Result<Option<Item>, PortError> {
    let mut request = client
        .get_item()
        .table_name(table)
        .consistent_read(consistent);
    for (name, value) in key {
        request = request.key(*name, s(*value));
    }
    let output = request
        .send()
        .await
        .map_err(|error| port_error("GetItem", &error))?;
    Ok(output.item)
}

/// Every item a filtered Scan returns, page by page (the sweeps run every few hours; a Scan is
/// cheaper there than an index written on every event).
pub(super) async fn scan(
    client: &Client,
    table: &str,
    filter: &str,
    names: &[(&str, &str)],
    values: Vec<(&str, AttributeValue)>,
) -> Result<Vec<Item>, PortError> {
    let mut items = vec![];
    let mut start: Option<Item> = None;
    loop {
        let mut request = client
            .scan()
            .table_name(table)
            .filter_expression(filter)
            .set_exclusive_start_key(start.take());
        for (placeholder, name) in names {
            request = request.expression_attribute_names(*placeholder, *name);
        }
        for (placeholder, value) in &values {
            request = request.expression_attribute_values(*placeholder, value.clone());
        }
        let output = request
            .send()
            .await
            .map_err(|error| port_error("Scan", &error))?;
        items.extend(output.items.unwrap_or_default());
        match output.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(items),
        }
    }
}
