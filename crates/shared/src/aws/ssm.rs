//! OpsCenter and Automation on SSM. OpsItems live in the stack's region; automations start and
//! are looked up in the resource's region, with one client per region built once.

use super::RegionalClients;
use super::errors::port_error;
use crate::error::{ErrorKind, PortError};
use crate::ports::{
    Automation, CreatedOpsItem, ExecutionInfo, KillSwitch, NewOpsItem, OpsCenter, OpsData,
    OpsItemStatus as Status, OpsItemUpdate, OpsItemView, StartAutomation,
};
use crate::ports::{TAG_CLIENT_TOKEN, attempt_tag};
use async_trait::async_trait;
use aws_sdk_ssm::Client;
use aws_sdk_ssm::operation::create_ops_item::CreateOpsItemError;
use aws_sdk_ssm::operation::get_automation_execution::GetAutomationExecutionError;
use aws_sdk_ssm::operation::get_ops_item::GetOpsItemError;
use aws_sdk_ssm::operation::get_parameter::GetParameterError;
use aws_sdk_ssm::operation::list_tags_for_resource::ListTagsForResourceError;
use aws_sdk_ssm::types::{
    AutomationExecutionFilter, AutomationExecutionFilterKey, OpsItemDataType, OpsItemDataValue,
    OpsItemStatus, ResourceTypeForTagging, Tag,
};
use std::collections::{BTreeMap, HashMap};

fn invalid(operation: &'static str, error: impl std::fmt::Display) -> PortError {
    PortError::new(operation, ErrorKind::Invalid, error.to_string())
}

fn data_values(data: &BTreeMap<String, OpsData>) -> HashMap<String, OpsItemDataValue> {
    data.iter()
        .map(|(key, data)| {
            let kind = if data.searchable {
                OpsItemDataType::SearchableString
            } else {
                OpsItemDataType::String
            };
            (
                key.clone(),
                OpsItemDataValue::builder()
                    .value(&data.value)
                    .r#type(kind)
                    .build(),
            )
        })
        .collect()
}

fn status(status: Status) -> OpsItemStatus {
    match status {
        Status::Open => OpsItemStatus::Open,
        Status::InProgress => OpsItemStatus::InProgress,
        Status::Resolved => OpsItemStatus::Resolved,
    }
}

/// OpsCenter in the stack's region.
#[derive(Clone)]
pub struct SsmOpsCenter {
    client: Client,
}

impl SsmOpsCenter {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl OpsCenter for SsmOpsCenter {
    async fn create(&self, item: &NewOpsItem) -> Result<CreatedOpsItem, PortError> {
        let result = self
            .client
            .create_ops_item()
            .title(&item.title)
            .description(&item.description)
            .source(&item.source)
            .set_severity(item.severity.clone())
            .set_operational_data(Some(data_values(&item.operational_data)))
            .send()
            .await;
        match result {
            Ok(output) => output
                .ops_item_id
                .map(|id| CreatedOpsItem { id, created: true })
                .ok_or_else(|| invalid("CreateOpsItem", "the response has no OpsItemId")),
            Err(error) => match error.as_service_error() {
                // /aws/dedup matched an open item: that item is the finding's OpsItem.
                Some(CreateOpsItemError::OpsItemAlreadyExistsException(exists)) => exists
                    .ops_item_id
                    .clone()
                    .map(|id| CreatedOpsItem { id, created: false })
                    .ok_or_else(|| {
                        invalid(
                            "CreateOpsItem",
                            "OpsItemAlreadyExistsException without an OpsItemId",
                        )
                    }),
                _ => Err(port_error("CreateOpsItem", &error)),
            },
        }
    }

    async fn update(&self, id: &str, update: &OpsItemUpdate) -> Result<(), PortError> {
        self.client
            .update_ops_item()
            .ops_item_id(id)
            .set_status(update.status.map(status))
            .set_description(update.description.clone())
            .set_operational_data(
                (!update.operational_data.is_empty())
                    .then(|| data_values(&update.operational_data)),
            )
            .set_operational_data_to_delete(
                (!update.delete.is_empty()).then(|| update.delete.clone()),
            )
            .send()
            .await
            .map_err(|error| port_error("UpdateOpsItem", &error))?;
        Ok(())
    }

    async fn view(&self, id: &str) -> Result<Option<OpsItemView>, PortError> {
        let result = self.client.get_ops_item().ops_item_id(id).send().await;
        match result {
            Ok(output) => Ok(output.ops_item.map(|item| OpsItemView {
                status: match item.status() {
                    Some(OpsItemStatus::Resolved) => Status::Resolved,
                    Some(OpsItemStatus::InProgress) => Status::InProgress,
                    _ => Status::Open,
                },
                state: OpsItemView::state_of(
                    item.operational_data()
                        .and_then(|data| data.get(crate::ports::DATA_REMEDIATION))
                        .and_then(|value| value.value()),
                ),
                finding_key: data_value(&item, crate::ports::DATA_FINDING_KEY),
                approve: data_value(&item, crate::ports::DATA_APPROVE),
            })),
            Err(error) => match error.as_service_error() {
                Some(GetOpsItemError::OpsItemNotFoundException(_)) => Ok(None),
                _ => Err(port_error("GetOpsItem", &error)),
            },
        }
    }
}

fn data_value(item: &aws_sdk_ssm::types::OpsItem, key: &str) -> Option<String> {
    item.operational_data()?
        .get(key)?
        .value()
        .map(str::to_owned)
}

/// The kill switch: an SSM parameter in the stack's region; `off` stops all starts.
#[derive(Clone)]
pub struct SsmParameterKillSwitch {
    client: Client,
    name: String,
}

impl SsmParameterKillSwitch {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }
}

#[async_trait]
impl KillSwitch for SsmParameterKillSwitch {
    async fn starts_allowed(&self) -> Result<bool, PortError> {
        let result = self.client.get_parameter().name(&self.name).send().await;
        match result {
            Ok(output) => Ok(!output
                .parameter
                .and_then(|parameter| parameter.value)
                .is_some_and(|value| value.trim().eq_ignore_ascii_case("off"))),
            Err(error) => match error.as_service_error() {
                // A deleted parameter is not an "off": the stack creates it "on".
                Some(GetParameterError::ParameterNotFound(_)) => {
                    tracing::warn!(parameter = %self.name, "kill switch parameter not found; starts allowed");
                    Ok(true)
                }
                _ => Err(port_error("GetParameter", &error)),
            },
        }
    }
}

/// SSM Automation in every region, one client per region.
///
/// One retry policy per call path: StartAutomationExecution is retried by the results handler's
/// own pacing and backoff ([`crate::handlers`]), so its clients have the SDK's retries turned
/// off (else one start could make about 18 calls); the look-ups keep the SDK's standard retries.
pub struct SsmAutomation {
    starts: RegionalClients<Client>,
    lookups: RegionalClients<Client>,
}

impl SsmAutomation {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        let regional = |retries: Option<aws_sdk_ssm::config::retry::RetryConfig>| {
            let config = config.clone();
            RegionalClients::new(move |region| {
                let mut builder = aws_sdk_ssm::config::Builder::from(&config)
                    .region(aws_sdk_ssm::config::Region::new(region.to_owned()));
                if let Some(retries) = retries.clone() {
                    builder = builder.retry_config(retries);
                }
                Client::from_conf(builder.build())
            })
        };
        Self {
            starts: regional(Some(aws_sdk_ssm::config::retry::RetryConfig::disabled())),
            lookups: regional(None),
        }
    }

    /// For tests: every region and call uses this client.
    pub fn with_client(client: Client) -> Self {
        Self {
            starts: RegionalClients::single(client.clone()),
            lookups: RegionalClients::single(client),
        }
    }
}

#[async_trait]
impl Automation for SsmAutomation {
    async fn start(&self, request: &StartAutomation) -> Result<String, PortError> {
        let tags = request
            .tags
            .iter()
            .map(|(key, value)| Tag::builder().key(key).value(value).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| invalid("StartAutomationExecution", error))?;
        let parameters: HashMap<String, Vec<String>> = request
            .parameters
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let output = self
            .starts
            .get(&request.region)
            .start_automation_execution()
            .document_name(&request.document)
            .set_document_version(request.document_version.clone())
            .set_parameters(Some(parameters))
            .client_token(&request.client_token)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|error| port_error("StartAutomationExecution", &error))?;
        output.automation_execution_id.ok_or_else(|| {
            invalid(
                "StartAutomationExecution",
                "the response has no AutomationExecutionId",
            )
        })
    }

    async fn find_by_client_token(
        &self,
        region: &str,
        client_token: &str,
    ) -> Result<Option<String>, PortError> {
        let filter = AutomationExecutionFilter::builder()
            .key(AutomationExecutionFilterKey::TagKey)
            .values(attempt_tag(client_token))
            .build()
            .map_err(|error| invalid("DescribeAutomationExecutions", error))?;
        let output = self
            .lookups
            .get(region)
            .describe_automation_executions()
            .filters(filter)
            .send()
            .await
            .map_err(|error| port_error("DescribeAutomationExecutions", &error))?;
        // Confirm by the tag's value: the filter is only a narrowing.
        for candidate in output.automation_execution_metadata_list() {
            let Some(id) = candidate.automation_execution_id() else {
                continue;
            };
            let tags = self.tags(region, id).await?.unwrap_or_default();
            if tags.get(TAG_CLIENT_TOKEN).map(String::as_str) == Some(client_token) {
                return Ok(Some(id.to_owned()));
            }
        }
        Ok(None)
    }

    async fn tags(
        &self,
        region: &str,
        execution_id: &str,
    ) -> Result<Option<BTreeMap<String, String>>, PortError> {
        let result = self
            .lookups
            .get(region)
            .list_tags_for_resource()
            .resource_type(ResourceTypeForTagging::Automation)
            .resource_id(execution_id)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Some(
                output
                    .tag_list()
                    .iter()
                    .map(|tag| (tag.key().to_owned(), tag.value().to_owned()))
                    .collect(),
            )),
            Err(error) => match error.as_service_error() {
                Some(ListTagsForResourceError::InvalidResourceId(_)) => Ok(None),
                _ => Err(port_error("ListTagsForResource", &error)),
            },
        }
    }

    async fn describe(
        &self,
        region: &str,
        execution_id: &str,
    ) -> Result<Option<ExecutionInfo>, PortError> {
        let result = self
            .lookups
            .get(region)
            .get_automation_execution()
            .automation_execution_id(execution_id)
            .send()
            .await;
        match result {
            Ok(output) => Ok(output.automation_execution.map(|execution| ExecutionInfo {
                status: execution
                    .automation_execution_status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                document: execution.document_name().unwrap_or_default().to_owned(),
                failure_message: execution.failure_message().map(str::to_owned),
                end_time: execution
                    .execution_end_time()
                    .and_then(|t| chrono::DateTime::from_timestamp_millis(t.to_millis().ok()?)),
                failed_step: execution
                    .step_executions()
                    .iter()
                    .find(|step| {
                        step.step_status().is_some_and(|status| {
                            matches!(status.as_str(), "Failed" | "TimedOut" | "Cancelled")
                        })
                    })
                    .map(|step| crate::ports::FailedStep {
                        name: step.step_name().unwrap_or("unnamed").to_owned(),
                        message: step.failure_message().map(str::to_owned),
                        failure_type: step
                            .failure_details()
                            .and_then(|d| d.failure_type())
                            .map(str::to_owned),
                    }),
            })),
            Err(error) => match error.as_service_error() {
                Some(GetAutomationExecutionError::AutomationExecutionNotFoundException(_)) => {
                    Ok(None)
                }
                _ => Err(port_error("GetAutomationExecution", &error)),
            },
        }
    }
}

/// SSM documents' parameters (`DescribeDocument`), in any region.
pub struct SsmDocuments {
    clients: RegionalClients<Client>,
}

impl SsmDocuments {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            clients: SsmAutomation::new(config).lookups,
        }
    }

    /// For tests: every region uses this client.
    pub fn with_client(client: Client) -> Self {
        Self {
            clients: RegionalClients::single(client),
        }
    }
}

#[async_trait]
impl crate::ports::DocumentCatalog for SsmDocuments {
    async fn parameters(
        &self,
        region: &str,
        document: &str,
    ) -> Result<Option<Vec<crate::ports::DocumentParameter>>, PortError> {
        let result = self
            .clients
            .get(region)
            .describe_document()
            .name(document)
            .send()
            .await;
        match result {
            Ok(output) => Ok(output.document.map(|description| {
                description
                    .parameters()
                    .iter()
                    .map(|parameter| crate::ports::DocumentParameter {
                        name: parameter.name().unwrap_or_default().to_owned(),
                        required: parameter.default_value().is_none(),
                    })
                    .collect()
            })),
            Err(error) => match error.as_service_error() {
                Some(aws_sdk_ssm::operation::describe_document::DescribeDocumentError::InvalidDocument(_)) => Ok(None),
                _ => Err(port_error("DescribeDocument", &error)),
            },
        }
    }
}
