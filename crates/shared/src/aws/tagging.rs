//! Resource tags through the Resource Groups Tagging API, in the resource's region.

use super::RegionalClients;
use super::errors::port_error;
use crate::error::PortError;
use crate::ports::ResourceTags;
use async_trait::async_trait;
use aws_sdk_resourcegroupstagging::Client;
use std::collections::BTreeMap;

pub struct TaggingResourceTags {
    clients: RegionalClients<Client>,
}

impl TaggingResourceTags {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        let config = config.clone();
        Self {
            clients: RegionalClients::new(move |region| {
                let regional = aws_sdk_resourcegroupstagging::config::Builder::from(&config)
                    .region(aws_sdk_resourcegroupstagging::config::Region::new(
                        region.to_owned(),
                    ))
                    .build();
                Client::from_conf(regional)
            }),
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
impl ResourceTags for TaggingResourceTags {
    async fn tags(&self, region: &str, arn: &str) -> Result<BTreeMap<String, String>, PortError> {
        let output = self
            .clients
            .get(region)
            .get_resources()
            .resource_arn_list(arn)
            .send()
            .await
            .map_err(|error| port_error("GetResources", &error))?;
        Ok(output
            .resource_tag_mapping_list()
            .iter()
            .filter(|mapping| mapping.resource_arn() == Some(arn))
            .flat_map(|mapping| mapping.tags())
            .map(|tag| (tag.key().to_owned(), tag.value().to_owned()))
            .collect())
    }
}
