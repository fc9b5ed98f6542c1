//! The tracker table: one conditional write per finding.

use super::executions::{decode_cursor, encode_cursor};
use super::{Item, from_item, get_item, n, s, scan, to_item};
use crate::aws::errors::port_error;
use crate::error::PortError;
use crate::finding::{Finding, Order, Placement, Status, placement, stored_order};
use crate::ports::{Page, RowKey, TrackerStore, WriteOutcome, due_shard};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use std::collections::HashMap;

/// The tracker's one sparse index (keys only; one, since CloudFormation adds a single index per
/// update). A row is in one of its two parts, or in none:
/// - pending (`workKey` = `pending#<shard>`, `workSort` = when its check is due): every write
///   puts its row there, checked by the sweep a little later;
/// - flagged (`workKey` = `flagged#<account>#<check>`): a checked Red or Yellow row, what the
///   findings sweep and a mapping change read; a checked Green row leaves the index, so Green
///   findings cost no index storage.
pub const WORK_INDEX: &str = "work-index";
/// How long after a write its check is due (the in-memory tracker's rule too).
const SETTLE_AFTER_SECONDS: i64 = 15 * 60;

/// The flagged part's key of a check in an account.
pub fn flagged_key(account: &str, check_name: &str) -> String {
    format!("flagged#{account}#{check_name}")
}

/// The pending part's key of a row (its shard).
fn pending_key(hash_key: &str) -> String {
    format!("pending#{}", due_shard(hash_key))
}

fn row_key(item: &Item) -> Option<RowKey> {
    Some(RowKey {
        hash_key: item.get("hashKey")?.as_s().ok()?.clone(),
        resource: item.get("resource")?.as_s().ok()?.clone(),
    })
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
    // Pending its check: the write moves the row to the work index's pending part, due a
    // little later; a row already pending keeps its time (`if_not_exists` reads the stored one).
    let settle_by = finding
        .tracked_at
        .as_deref()
        .and_then(crate::finding::parse_time)
        .unwrap_or_else(chrono::Utc::now)
        .timestamp()
        + SETTLE_AFTER_SECONDS;
    sets.push("settleBy = if_not_exists(settleBy, :settleBy)".into());
    sets.push("workSort = if_not_exists(settleBy, :settleBy)".into());
    sets.push("workKey = :pending".into());
    values.insert(":settleBy".into(), n(settle_by));
    values.insert(":pending".into(), s(pending_key(&finding.hash_key)));
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

    async fn flagged_keys(
        &self,
        account: Option<&str>,
        check_name: &str,
    ) -> Result<Vec<RowKey>, PortError> {
        let Some(account) = account else {
            // No accounts list (a local run): the legacy Scan.
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
            return Ok(items.iter().filter_map(row_key).collect());
        };
        let mut keys = vec![];
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(WORK_INDEX)
                .key_condition_expression("workKey = :check")
                .expression_attribute_values(":check", s(flagged_key(account, check_name)))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|error| port_error("Query", &error))?;
            keys.extend(output.items.unwrap_or_default().iter().filter_map(row_key));
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(keys),
            }
        }
    }

    async fn pending(
        &self,
        shard: u32,
        due_by: i64,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<RowKey>, PortError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(WORK_INDEX)
            .key_condition_expression("workKey = :shard AND workSort <= :by")
            .expression_attribute_values(":shard", s(format!("pending#{shard}")))
            .expression_attribute_values(":by", n(due_by))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(after.map(decode_cursor).transpose()?)
            .send()
            .await
            .map_err(|error| port_error("Query", &error))?;
        Ok(Page {
            items: output
                .items
                .unwrap_or_default()
                .iter()
                .filter_map(row_key)
                .collect(),
            next: output
                .last_evaluated_key
                .filter(|key| !key.is_empty())
                .map(|key| encode_cursor(&key)),
        })
    }

    async fn settled(&self, row: &Finding) -> Result<(), PortError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("hashKey", s(&row.hash_key))
            .key("resource", s(&row.resource));
        let request = if row.resource_status.is_flagged() {
            request
                .update_expression("SET workKey = :flagged, workSort = :zero REMOVE settleBy")
                .expression_attribute_values(
                    ":flagged",
                    s(flagged_key(
                        row.account_id.as_deref().unwrap_or_default(),
                        &row.check_name,
                    )),
                )
                .expression_attribute_values(":zero", n(0))
        } else {
            request.update_expression("REMOVE workKey, workSort, settleBy")
        };
        let request = match &row.order_key {
            Some(order) => request
                .condition_expression("orderKey = :order")
                .expression_attribute_values(":order", s(order)),
            None => request.condition_expression(
                "attribute_exists(hashKey) AND attribute_not_exists(orderKey)",
            ),
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(error) => match error.as_service_error() {
                // The row changed since it was checked: it stays pending for the next look.
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(()),
                _ => Err(port_error("UpdateItem", &error)),
            },
        }
    }

    async fn unindexed(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Finding>, PortError> {
        let output = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression(
                "resourceStatus IN (:red, :yellow) AND attribute_not_exists(workKey)",
            )
            .expression_attribute_values(":red", s("Red"))
            .expression_attribute_values(":yellow", s("Yellow"))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(after.map(decode_cursor).transpose()?)
            .send()
            .await
            .map_err(|error| port_error("Scan", &error))?;
        Ok(Page {
            items: output
                .items
                .unwrap_or_default()
                .into_iter()
                .map(|item| from_item("Scan", item))
                .collect::<Result<_, _>>()?,
            next: output
                .last_evaluated_key
                .filter(|key| !key.is_empty())
                .map(|key| encode_cursor(&key)),
        })
    }

    async fn mark_pending(&self, row: &Finding, due: i64) -> Result<(), PortError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("hashKey", s(&row.hash_key))
            .key("resource", s(&row.resource))
            .update_expression("SET workKey = :pending, workSort = :due, settleBy = :due")
            .condition_expression("attribute_exists(hashKey) AND attribute_not_exists(workKey)")
            .expression_attribute_values(":pending", s(pending_key(&row.hash_key)))
            .expression_attribute_values(":due", n(due))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) => match error.as_service_error() {
                // Written (and so indexed) since the Scan.
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(()),
                _ => Err(port_error("UpdateItem", &error)),
            },
        }
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
