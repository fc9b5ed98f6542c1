//! The tracker table: one conditional write per finding.

use super::{Item, from_item, get_item, n, s, scan, to_item};
use crate::aws::errors::port_error;
use crate::error::PortError;
use crate::finding::{Finding, Order, Placement, Status, placement, stored_order};
use crate::ports::{TrackerStore, WriteOutcome};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use std::collections::HashMap;

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
