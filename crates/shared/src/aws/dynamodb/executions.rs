//! The execution table: execution rows, each finding's episode, and the sweep's cursor.

use super::{Item, from_item, get_item, n, s, to_item};
use crate::automation_event::FINAL_STATUSES;
use crate::aws::errors::port_error;
use crate::episode::{Episode, episode_key};
use crate::error::{ErrorKind, PortError};
use crate::finding::parse_time;
use crate::ports::{
    DUE_SHARDS, DueEpisode, EpisodePage, ExecutionRecord, ExecutionStore, Page, StatusWrite,
    SweepState, due_shard,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use std::collections::HashMap;

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
        ("account", record.account.as_ref()),
        ("document", record.document.as_ref()),
        ("checkName", record.check_name.as_ref()),
        ("resource", record.resource.as_ref()),
        ("clientToken", record.client_token.as_ref()),
        ("startedAt", record.started_at.as_ref()),
        ("resourceLock", record.resource_lock.as_ref()),
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
        if let Some((shard, at)) = running_mark(record) {
            clauses.push("dueShard = if_not_exists(dueShard, :dueShard)".to_owned());
            clauses.push("dueAt = if_not_exists(dueAt, :dueAt)".to_owned());
            update = update
                .expression_attribute_values(":dueShard", shard)
                .expression_attribute_values(":dueAt", at);
        }
        let output = update
            .update_expression(format!("SET {}", clauses.join(", ")))
            .send()
            .await
            .map_err(|error| port_error("UpdateItem", &error))?;
        let status = output
            .attributes
            .as_ref()
            .and_then(|item| item.get("status"))
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_else(|| record.status.clone());
        let marked = output
            .attributes
            .as_ref()
            .is_some_and(|item| item.contains_key("dueShard"));
        if marked && crate::automation_event::is_final(&status) {
            // The final status came first (its event beat this write): the row leaves the
            // running index it was just put in.
            self.unmark_running(&record.automation_execution_id).await?;
        }
        Ok(status)
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
        let (mut update, finals) = with_final_statuses(update);
        // In the running index while the status is not final, out of it once it is.
        let expression = match running_mark(record) {
            Some((shard, at)) => {
                clauses.push("dueShard = :dueShard".to_owned());
                clauses.push("dueAt = :dueAt".to_owned());
                update = update
                    .expression_attribute_values(":dueShard", shard)
                    .expression_attribute_values(":dueAt", at);
                format!("SET {}", clauses.join(", "))
            }
            None => format!("SET {} REMOVE dueShard, dueAt", clauses.join(", ")),
        };
        let result = update
            .update_expression(expression)
            .condition_expression(format!(
                "attribute_not_exists(#status) OR NOT (#status IN ({finals}))"
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
        let before = parse_time(updated_before).map_or(0, |at| at.timestamp());
        let mut rows = vec![];
        for shard in 0..DUE_SHARDS {
            let mut after = None;
            loop {
                let output = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(DUE_INDEX)
                    .key_condition_expression("dueShard = :shard AND dueAt < :before")
                    .expression_attribute_values(":shard", s(running_shard(shard)))
                    .expression_attribute_values(":before", n(before))
                    .set_exclusive_start_key(after)
                    .send()
                    .await
                    .map_err(|error| port_error("Query", &error))?;
                for item in output.items.unwrap_or_default() {
                    let Some(id) = item
                        .get("automationExecutionId")
                        .and_then(|v| v.as_s().ok())
                    else {
                        continue;
                    };
                    // The index projects the key only: the row itself, read consistently (it
                    // may have ended since the index saw it).
                    if let Some(row) = self.get(id).await?
                        && !crate::automation_event::is_final(&row.status)
                    {
                        rows.push(row);
                    }
                }
                after = output.last_evaluated_key.filter(|key| !key.is_empty());
                if after.is_none() {
                    break;
                }
            }
        }
        Ok(rows)
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
        // The due index holds only episodes with a due time, spread over its shards.
        if episode.due_at.is_some() {
            item.insert(
                "dueShard".into(),
                s(format!("due#{}", due_shard(&episode.finding_key))),
            );
        }
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
        self.scan_episodes(after, limit, true).await
    }

    async fn archive_episode(&self, episode: &Episode) -> Result<(), PortError> {
        let mut item = to_item("PutItem", episode)?;
        item.insert(
            "automationExecutionId".into(),
            s(format!(
                "episode#{}#{}",
                episode.finding_key,
                crate::finding::short_hash(&episode.episode)
            )),
        );
        // Not an episode the sweep or the index reads: history, until its TTL.
        item.insert("recordType".into(), s("archive"));
        item.remove("dueAt");
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|error| port_error("PutItem", &error))?;
        Ok(())
    }

    async fn episodes(&self, after: Option<&str>, limit: usize) -> Result<EpisodePage, PortError> {
        self.scan_episodes(after, limit, false).await
    }

    async fn due_episodes(
        &self,
        shard: u32,
        due_by: i64,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<DueEpisode>, PortError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(DUE_INDEX)
            .key_condition_expression("dueShard = :shard AND dueAt <= :by")
            .expression_attribute_values(":shard", s(format!("due#{shard}")))
            .expression_attribute_values(":by", n(due_by))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(after.map(decode_cursor).transpose()?)
            .send()
            .await
            .map_err(|error| port_error("Query", &error))?;
        let items = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                let text = |name: &str| {
                    item.get(name)
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default()
                };
                DueEpisode {
                    finding_key: text("findingKey"),
                    resource: text("resource"),
                    due_at: item
                        .get("dueAt")
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or_default(),
                }
            })
            .collect();
        Ok(Page {
            items,
            next: output
                .last_evaluated_key
                .filter(|key| !key.is_empty())
                .map(|key| encode_cursor(&key)),
        })
    }

    async fn sweep_state(&self) -> Result<SweepState, PortError> {
        let item = get_item(
            &self.client,
            &self.table,
            &[("automationExecutionId", SWEEP_STATE_KEY)],
            true,
        )
        .await?;
        match item {
            Some(item) => from_item("GetItem", item),
            None => Ok(SweepState::default()),
        }
    }

    async fn set_sweep_state(&self, state: &SweepState) -> Result<(), PortError> {
        let mut item = to_item("PutItem", state)?;
        item.insert("automationExecutionId".into(), s(SWEEP_STATE_KEY));
        item.insert("recordType".into(), s("sweep"));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|error| port_error("PutItem", &error))?;
        Ok(())
    }
}

/// The final statuses as the update's `:final0`… values, and their list for an `IN (…)`.
fn with_final_statuses(mut update: UpdateItemFluentBuilder) -> (UpdateItemFluentBuilder, String) {
    let mut finals = vec![];
    for (i, status) in FINAL_STATUSES.iter().enumerate() {
        finals.push(format!(":final{i}"));
        update = update.expression_attribute_values(format!(":final{i}"), s(*status));
    }
    (update, finals.join(", "))
}

/// The due index's partition for running executions of `shard`: an execution row sits there,
/// by its last update, while its status is not final, so the execution poll reads only
/// executions still running (not the table). One index serves both: CloudFormation adds one
/// index per table update.
fn running_shard(shard: u32) -> String {
    format!("running#{shard}")
}

/// The running index's key values for a row whose status is not final.
fn running_mark(record: &ExecutionRecord) -> Option<(AttributeValue, AttributeValue)> {
    if crate::automation_event::is_final(&record.status) {
        return None;
    }
    let at = parse_time(&record.updated_at).map_or(0, |at| at.timestamp());
    Some((
        s(running_shard(due_shard(&record.automation_execution_id))),
        n(at),
    ))
}

impl DynamoExecutions {
    /// Takes a row out of the running index, if its status is final.
    async fn unmark_running(&self, execution_id: &str) -> Result<(), PortError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("automationExecutionId", s(execution_id))
            .update_expression("REMOVE dueShard, dueAt")
            .expression_attribute_names("#status", "status");
        let (update, finals) = with_final_statuses(update);
        match update
            .condition_expression(format!("#status IN ({finals})"))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error) => match error.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(()),
                _ => Err(port_error("UpdateItem", &error)),
            },
        }
    }
}

/// The sparse index of episodes with a due time (`dueShard`, `dueAt`; projects `findingKey` and
/// `resource`).
pub const DUE_INDEX: &str = "due-index";

/// A Query's LastEvaluatedKey as the port's cursor (every key attribute here is a string or a
/// number), and back.
pub(super) fn encode_cursor(key: &Item) -> String {
    let plain: serde_json::Map<String, serde_json::Value> = key
        .iter()
        .map(|(name, value)| {
            let value = match value {
                AttributeValue::N(number) => serde_json::json!({ "N": number }),
                AttributeValue::S(text) => serde_json::json!({ "S": text }),
                _ => serde_json::Value::Null,
            };
            (name.clone(), value)
        })
        .collect();
    serde_json::Value::Object(plain).to_string()
}

pub(super) fn decode_cursor(cursor: &str) -> Result<Item, PortError> {
    let invalid = || {
        PortError::new(
            "Query",
            ErrorKind::Invalid,
            format!("not a page cursor: {cursor}"),
        )
    };
    let value: serde_json::Value = serde_json::from_str(cursor).map_err(|_| invalid())?;
    value
        .as_object()
        .ok_or_else(invalid)?
        .iter()
        .map(|(name, value)| {
            let attribute = match (value.get("S"), value.get("N")) {
                (Some(serde_json::Value::String(text)), _) => s(text),
                (_, Some(serde_json::Value::String(number))) => AttributeValue::N(number.clone()),
                _ => return Err(invalid()),
            };
            Ok((name.clone(), attribute))
        })
        .collect()
}

/// What the episode sweep remembers between runs (an item of the execution table).
const SWEEP_STATE_KEY: &str = "sweep#episodes";

impl DynamoExecutions {
    /// The episode rows (open ones only, or all), one Scan page after `after`.
    async fn scan_episodes(
        &self,
        after: Option<&str>,
        limit: usize,
        open_only: bool,
    ) -> Result<EpisodePage, PortError> {
        let mut scan = self
            .client
            .scan()
            .table_name(&self.table)
            .expression_attribute_values(":finding", s("finding"))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX));
        scan = if open_only {
            scan.filter_expression("recordType = :finding AND #stage.#state <> :fixed")
                .expression_attribute_names("#stage", "stage")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":fixed", s("fixed"))
        } else {
            scan.filter_expression("recordType IN (:finding, :archive)")
                .expression_attribute_values(":archive", s("archive"))
        };
        let output = scan
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
}
