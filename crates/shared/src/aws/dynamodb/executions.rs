//! The execution table: execution rows, each finding's episode, and the sweep's cursor.

use super::{from_item, get_item, n, s, scan, to_item};
use crate::automation_event::FINAL_STATUSES;
use crate::aws::errors::port_error;
use crate::episode::{Episode, episode_key};
use crate::error::{ErrorKind, PortError};
use crate::ports::{EpisodePage, ExecutionRecord, ExecutionStore, StatusWrite};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
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
        self.scan_episodes(after, limit, true).await
    }

    async fn episodes(&self, after: Option<&str>, limit: usize) -> Result<EpisodePage, PortError> {
        self.scan_episodes(after, limit, false).await
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
            scan.filter_expression("recordType = :finding")
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
