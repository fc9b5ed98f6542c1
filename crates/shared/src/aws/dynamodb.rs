//! The three tables on DynamoDB.
//!
//! - Tracker: one conditional `PutItem` per finding; a failed condition is "not newer", told
//!   apart as duplicate or stale from the stored item DynamoDB returns with the failure.
//! - Mapping: `GetItem`, typed attributes unwrapped to plain JSON, so both `automationParameters`
//!   shapes (a JSON string, or a map) reach the one validator.
//! - Execution: rows keyed by `automationExecutionId`. The same table holds each finding's
//!   episode under `finding#<finding key>` (written with a version condition: the claim that
//!   makes each start happen once), the named counters (`breaker#…`, `opsitems#…`) and the
//!   episode sweep's cursor (`sweep#episodes`). Rows, counters and closed episodes carry
//!   `expiresAt` (TTL, epoch seconds); open episodes do not.

use super::errors::port_error;
use crate::automation_event::FINAL_STATUSES;
use crate::episode::{Episode, episode_key};
use crate::error::{ErrorKind, PortError};
use crate::finding::{Finding, Order, Placement, Status, placement, stored_order};
use crate::ports::{
    Counters, EpisodePage, ExecutionRecord, ExecutionStore, MappingStore, StatusWrite,
    TrackerStore, WriteOutcome,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
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

/// `GetItem` by key (the key's values are strings in every table here).
async fn get_item(
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
async fn scan(
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

/// Replaces the row only when the finding is later in the order ([`crate::finding::placement`]):
/// the encoded order keys compare as the orders do. A row without `orderKey` (another tool's) is
/// a legacy row at `findingTimeMillis`, else `lastUpdatedTimeEpoch` seconds; every observation
/// sorts after a legacy row of the same item time ([`crate::finding::Order::legacy`]).
const LATER_IN_ORDER: &str = "attribute_not_exists(hashKey) OR #orderKey < :orderKey \
     OR (attribute_not_exists(#orderKey) AND (#findingTimeMillis <= :itemMillis \
     OR (attribute_not_exists(#findingTimeMillis) AND #lastUpdatedTimeEpoch <= :itemSeconds)))";

/// The attributes a stored row's order is read from.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredRow {
    order_key: Option<String>,
    finding_time_millis: Option<i64>,
    last_updated_time_epoch: Option<i64>,
    resource_status: Option<Status>,
}

impl StoredRow {
    fn read(item: Item) -> Result<Self, PortError> {
        from_item("UpdateItem", item)
    }

    fn order(&self) -> Option<Order> {
        stored_order(
            self.order_key.as_deref(),
            self.finding_time_millis,
            self.last_updated_time_epoch,
        )
    }

    /// Status and item time, for telling a refresh from a change.
    fn state(&self) -> Option<(Status, i64)> {
        let time = self
            .finding_time_millis
            .or(self.last_updated_time_epoch.map(|s| s.saturating_mul(1000)))?;
        Some((self.resource_status?, time))
    }
}

/// The update expression that writes `finding` over the stored row: every attribute set, the
/// episode markers kept when the row has them (flagged) or removed (Green), as
/// [`Finding::written_over`] does.
fn tracker_update(finding: &Finding) -> Result<(String, HashMap<String, String>, Item), PortError> {
    let mut attributes = to_item("UpdateItem", finding)?;
    for key in ["hashKey", "resource", "flaggedSince", "episode"] {
        attributes.remove(key);
    }
    let mut names = HashMap::new();
    let mut values = Item::new();
    let mut sets = vec![];
    // Sorted, so the expression is the same for the same finding.
    let mut attributes: Vec<_> = attributes.into_iter().collect();
    attributes.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, value) in attributes {
        sets.push(format!("#{name} = :{name}"));
        names.insert(format!("#{name}"), name.clone());
        values.insert(format!(":{name}"), value);
    }
    let mut expression = String::new();
    let markers = [
        ("flaggedSince", finding.flagged_since.as_ref()),
        ("episode", finding.episode.as_ref()),
    ];
    if finding.resource_status.is_flagged() {
        for (name, value) in markers {
            if let Some(value) = value {
                sets.push(format!("#{name} = if_not_exists(#{name}, :{name})"));
                names.insert(format!("#{name}"), name.to_owned());
                values.insert(format!(":{name}"), s(value));
            }
        }
        expression.push_str(&format!("SET {}", sets.join(", ")));
    } else {
        expression.push_str(&format!(
            "SET {} REMOVE #flaggedSince, #episode",
            sets.join(", ")
        ));
        for (name, _) in markers {
            names.insert(format!("#{name}"), name.to_owned());
        }
    }
    for name in ["orderKey", "findingTimeMillis", "lastUpdatedTimeEpoch"] {
        names.insert(format!("#{name}"), name.to_owned());
    }
    let order = finding.order();
    values.insert(":orderKey".into(), s(order.encode()));
    values.insert(":itemMillis".into(), n(order.item_millis()));
    values.insert(
        ":itemSeconds".into(),
        n(order.item_millis().div_euclid(1000)),
    );
    Ok((expression, names, values))
}

#[async_trait]
impl TrackerStore for DynamoTracker {
    async fn put_if_newer(&self, finding: &Finding) -> Result<WriteOutcome, PortError> {
        let (expression, names, values) = tracker_update(finding)?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("hashKey", s(&finding.hash_key))
            .key("resource", s(&finding.resource))
            .update_expression(expression)
            .condition_expression(LATER_IN_ORDER)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let error = match result {
            Ok(output) => {
                let stored = match output.attributes {
                    Some(item) if !item.is_empty() => StoredRow::read(item)?.state(),
                    _ => None,
                };
                return Ok(WriteOutcome::replacing(stored, finding));
            }
            Err(error) => error,
        };
        match error.as_service_error() {
            Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                let stored = failed
                    .item()
                    .map(|item| StoredRow::read(item.clone()))
                    .transpose()?
                    .and_then(|row| row.order());
                Ok(match placement(finding.order(), stored) {
                    Placement::Same => WriteOutcome::Duplicate,
                    _ => WriteOutcome::Stale,
                })
            }
            _ => Err(port_error("UpdateItem", &error)),
        }
    }

    async fn flagged(&self, check_name: &str) -> Result<Vec<Finding>, PortError> {
        let items = scan(
            &self.client,
            &self.table,
            "checkName = :check AND resourceStatus IN (:red, :yellow)",
            &[],
            vec![
                (":check", s(check_name)),
                (":red", s("Red")),
                (":yellow", s("Yellow")),
            ],
        )
        .await?;
        items
            .into_iter()
            .map(|item| from_item("Scan", item))
            .collect()
    }

    async fn get(&self, hash_key: &str, resource: &str) -> Result<Option<Finding>, PortError> {
        let item = get_item(
            &self.client,
            &self.table,
            &[("hashKey", hash_key), ("resource", resource)],
            true,
        )
        .await?;
        item.map(|item| from_item("GetItem", item)).transpose()
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

const FINAL_PLACEHOLDERS: [&str; 9] = [
    ":final0", ":final1", ":final2", ":final3", ":final4", ":final5", ":final6", ":final7",
    ":final8",
];

/// `SET` clauses that fill attributes only where the row lacks them, so whichever of the results
/// handler and the status handler writes first, the row ends up complete.
fn fill_missing(
    record: &ExecutionRecord,
) -> Result<Vec<(&'static str, AttributeValue)>, PortError> {
    let mut values = vec![
        ("findingKey", s(&record.finding_key)),
        ("region", s(&record.region)),
    ];
    let optional = [
        ("opsItemId", record.ops_item_id.as_ref()),
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
    async fn record_started(&self, record: &ExecutionRecord) -> Result<String, PortError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("automationExecutionId", s(&record.automation_execution_id))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(&record.status))
            .expression_attribute_values(":updatedAt", s(&record.updated_at))
            .expression_attribute_values(":expiresAt", n(record.expires_at))
            .return_values(ReturnValue::AllNew);
        let mut clauses = vec![
            "#status = if_not_exists(#status, :status)".to_owned(),
            "updatedAt = if_not_exists(updatedAt, :updatedAt)".to_owned(),
            "expiresAt = :expiresAt".to_owned(),
        ];
        for (name, value) in fill_missing(record)? {
            // Names go through placeholders: `region`, `resource` and others are reserved words.
            clauses.push(format!("#{name} = if_not_exists(#{name}, :{name})"));
            update = update
                .expression_attribute_names(format!("#{name}"), name)
                .expression_attribute_values(format!(":{name}"), value);
        }
        let output = update
            .update_expression(format!("SET {}", clauses.join(", ")))
            .send()
            .await
            .map_err(|error| port_error("UpdateItem", &error))?;
        Ok(output
            .attributes
            .as_ref()
            .and_then(|item| item.get("status"))
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_else(|| record.status.clone()))
    }

    async fn get(&self, execution_id: &str) -> Result<Option<ExecutionRecord>, PortError> {
        let item = get_item(
            &self.client,
            &self.table,
            &[("automationExecutionId", execution_id)],
            true,
        )
        .await?;
        item.map(|item| from_item("GetItem", item)).transpose()
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

    async fn unfinished(&self, updated_before: &str) -> Result<Vec<ExecutionRecord>, PortError> {
        let mut values = vec![(":before", s(updated_before))];
        let mut finals = vec![];
        for (i, status) in FINAL_STATUSES.iter().enumerate() {
            finals.push(format!(":final{i}"));
            values.push((FINAL_PLACEHOLDERS[i], s(*status)));
        }
        // Execution rows only: states and counters carry no `status`.
        let filter = format!(
            "attribute_exists(#status) AND attribute_not_exists(recordType) AND updatedAt < :before AND NOT (#status IN ({}))",
            finals.join(", ")
        );
        let items = scan(
            &self.client,
            &self.table,
            &filter,
            &[("#status", "status")],
            values,
        )
        .await?;
        items
            .into_iter()
            .map(|item| from_item("Scan", item))
            .collect()
    }

    async fn get_episode(&self, finding_key: &str) -> Result<Option<Episode>, PortError> {
        let item = get_item(
            &self.client,
            &self.table,
            &[("automationExecutionId", &episode_key(finding_key))],
            true,
        )
        .await?;
        item.map(|item| from_item("GetItem", item)).transpose()
    }

    async fn put_episode(&self, episode: &Episode) -> Result<bool, PortError> {
        let mut item = to_item("PutItem", episode)?;
        item.insert(
            "automationExecutionId".into(),
            s(episode_key(&episode.finding_key)),
        );
        item.insert("recordType".into(), s("finding"));
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let request = match episode.version {
            0 | 1 => request.condition_expression("attribute_not_exists(automationExecutionId)"),
            version => request
                .condition_expression("version = :previous")
                .expression_attribute_values(
                    ":previous",
                    AttributeValue::N((version - 1).to_string()),
                ),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(error) => match error.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => Ok(false),
                _ => Err(port_error("PutItem", &error)),
            },
        }
    }

    async fn open_episodes(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<EpisodePage, PortError> {
        let output = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("recordType = :finding AND #stage.#state <> :fixed")
            .expression_attribute_names("#stage", "stage")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":finding", s("finding"))
            .expression_attribute_values(":fixed", s("fixed"))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(
                after.map(|key| HashMap::from([("automationExecutionId".to_owned(), s(key))])),
            )
            .send()
            .await
            .map_err(|error| port_error("Scan", &error))?;
        let episodes = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| from_item("Scan", item))
            .collect::<Result<_, _>>()?;
        let next = output
            .last_evaluated_key
            .and_then(|key| key.get("automationExecutionId")?.as_s().ok().cloned());
        Ok(EpisodePage { episodes, next })
    }

    async fn sweep_cursor(&self) -> Result<Option<String>, PortError> {
        let item = get_item(
            &self.client,
            &self.table,
            &[("automationExecutionId", SWEEP_CURSOR_KEY)],
            true,
        )
        .await?;
        Ok(item
            .as_ref()
            .and_then(|item| item.get("cursor"))
            .and_then(|v| v.as_s().ok())
            .cloned())
    }

    async fn set_sweep_cursor(&self, cursor: Option<&str>) -> Result<(), PortError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("automationExecutionId", s(SWEEP_CURSOR_KEY));
        let request = match cursor {
            Some(cursor) => request
                .update_expression("SET #cursor = :cursor")
                .expression_attribute_values(":cursor", s(cursor)),
            None => request.update_expression("REMOVE #cursor"),
        };
        request
            .expression_attribute_names("#cursor", "cursor")
            .send()
            .await
            .map_err(|error| port_error("UpdateItem", &error))?;
        Ok(())
    }
}

/// Where the episode sweep stopped last time (an item of the execution table).
const SWEEP_CURSOR_KEY: &str = "sweep#episodes";

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

    async fn increment(&self, name: &str, expires_at: i64) -> Result<(), PortError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("automationExecutionId", s(name))
            .update_expression("SET expiresAt = :expiresAt ADD #count :one")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":expiresAt", n(expires_at))
            .send()
            .await
            .map_err(|error| port_error("UpdateItem", &error))?;
        Ok(())
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
