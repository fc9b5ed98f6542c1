//! Trusted Advisor through the Support API (served from us-east-1; needs a Business, Enterprise
//! On-Ramp or Enterprise support plan, else `SubscriptionRequiredException`).

use super::errors::port_error;
use crate::error::PortError;
use crate::ports::{CheckInfo, CheckResult, FlaggedResource, TrustedAdvisor};
use async_trait::async_trait;
use aws_sdk_support::Client;
use std::sync::Mutex;

pub struct SupportTrustedAdvisor {
    client: Client,
    /// The check list changes rarely: read once per process.
    checks: Mutex<Option<Vec<CheckInfo>>>,
}

impl SupportTrustedAdvisor {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            checks: Mutex::new(None),
        }
    }

    /// A client for the Support API's region, whatever the stack's.
    pub fn for_config(config: &aws_config::SdkConfig) -> Self {
        let config = aws_sdk_support::config::Builder::from(config)
            .region(aws_sdk_support::config::Region::new("us-east-1"))
            .build();
        Self::new(Client::from_conf(config))
    }
}

#[async_trait]
impl TrustedAdvisor for SupportTrustedAdvisor {
    async fn checks(&self) -> Result<Vec<CheckInfo>, PortError> {
        if let Some(checks) = self
            .checks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Ok(checks);
        }
        let output = self
            .client
            .describe_trusted_advisor_checks()
            .language("en")
            .send()
            .await
            .map_err(|error| port_error("DescribeTrustedAdvisorChecks", &error))?;
        let checks: Vec<CheckInfo> = output
            .checks()
            .iter()
            .map(|check| CheckInfo {
                id: check.id().to_owned(),
                name: check.name().to_owned(),
                columns: check
                    .metadata()
                    .iter()
                    .map(|c| c.clone().unwrap_or_default())
                    .collect(),
            })
            .collect();
        *self.checks.lock().unwrap_or_else(|p| p.into_inner()) = Some(checks.clone());
        Ok(checks)
    }

    async fn check_result(&self, check_id: &str) -> Result<CheckResult, PortError> {
        let output = self
            .client
            .describe_trusted_advisor_check_result()
            .check_id(check_id)
            .language("en")
            .send()
            .await
            .map_err(|error| port_error("DescribeTrustedAdvisorCheckResult", &error))?;
        let Some(result) = output.result() else {
            return Ok(CheckResult {
                timestamp: String::new(),
                flagged: vec![],
            });
        };
        Ok(CheckResult {
            timestamp: result.timestamp().to_owned(),
            flagged: result
                .flagged_resources()
                .iter()
                .map(|resource| FlaggedResource {
                    status: resource.status().to_owned(),
                    region: resource.region().map(str::to_owned),
                    suppressed: resource.is_suppressed(),
                    metadata: resource.metadata().to_vec(),
                })
                .collect(),
        })
    }
}
