//! Trusted Advisor through its own API (`trustedadvisor`, served from us-east-1; needs Business
//! Support+, Enterprise or Unified Operations in the calling account), shaped as the Support
//! API's results so the findings sweep reads both alike ([`AdvisorWithFallback`] prefers it and
//! falls back to the Support API where the plan refuses it).
//!
//! Shapes (aws-cli's examples `trustedadvisor/list-checks.rst` and
//! `list-recommendation-resources.rst`): a check's `metadata` maps column positions ("0", "1", …)
//! to column names, a resource's maps the same positions to values; a check's id is the Support
//! API's (`1iG5NDGVre`). A resource's `status` is `ok`, `warning` or `error` as the Support
//! API's; `exclusionStatus: excluded` is the Support API's suppressed.

use super::errors::port_error;
use super::support::SupportTrustedAdvisor;
use crate::error::{ErrorKind, PortError};
use crate::ports::{AdvisorAccess, CheckInfo, CheckResult, FlaggedResource, TrustedAdvisor};
use async_trait::async_trait;
use aws_sdk_trustedadvisor::Client;
use aws_sdk_trustedadvisor::types::{ExclusionStatus, ResourceStatus};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The check list, and each check's ARN by its id.
type CheckList = (Vec<CheckInfo>, HashMap<String, String>);

pub struct TrustedAdvisorApi {
    client: Client,
    /// Read once per process.
    checks: Mutex<Option<CheckList>>,
}

impl TrustedAdvisorApi {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            checks: Mutex::new(None),
        }
    }

    /// A client for the API's region, whatever the stack's.
    pub fn for_config(config: &aws_config::SdkConfig) -> Self {
        let config = aws_sdk_trustedadvisor::config::Builder::from(config)
            .region(aws_sdk_trustedadvisor::config::Region::new("us-east-1"))
            .build();
        Self::new(Client::from_conf(config))
    }
}

/// The values of a positional map (`"0"`, `"1"`, …) in column order, `count` of them.
fn positional(map: &HashMap<String, String>, count: usize) -> Vec<Option<String>> {
    (0..count)
        .map(|i| map.get(&i.to_string()).cloned())
        .collect()
}

/// How many columns a check's positional metadata names.
fn column_count(map: &HashMap<String, String>) -> usize {
    map.keys()
        .filter_map(|key| key.parse::<usize>().ok())
        .max()
        .map_or(0, |last| last + 1)
}

#[async_trait]
impl TrustedAdvisor for TrustedAdvisorApi {
    async fn checks(&self) -> Result<Vec<CheckInfo>, PortError> {
        if let Some((checks, _)) = self
            .checks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Ok(checks);
        }
        let mut checks = vec![];
        let mut arns = HashMap::new();
        let mut next: Option<String> = None;
        loop {
            let output = self
                .client
                .list_checks()
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|error| port_error("ListChecks", &error))?;
            for check in output.check_summaries() {
                let count = column_count(check.metadata());
                checks.push(CheckInfo {
                    id: check.id().to_owned(),
                    name: check.name().to_owned(),
                    columns: positional(check.metadata(), count)
                        .into_iter()
                        .map(Option::unwrap_or_default)
                        .collect(),
                });
                arns.insert(check.id().to_owned(), check.arn().to_owned());
            }
            match output.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                _ => break,
            }
        }
        *self.checks.lock().unwrap_or_else(|p| p.into_inner()) = Some((checks.clone(), arns));
        Ok(checks)
    }

    async fn check_result(&self, check_id: &str) -> Result<CheckResult, PortError> {
        let (columns, arn) = {
            let cached = self
                .checks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let Some((checks, arns)) = cached else {
                return Err(PortError::new(
                    "ListRecommendations",
                    ErrorKind::Invalid,
                    "the check list was not read first",
                ));
            };
            let columns = checks
                .iter()
                .find(|c| c.id == check_id)
                .map_or(0, |c| c.columns.len());
            (columns, arns.get(check_id).cloned().unwrap_or_default())
        };
        let recommendations = self
            .client
            .list_recommendations()
            .check_identifier(&arn)
            .send()
            .await
            .map_err(|error| port_error("ListRecommendations", &error))?;
        // No recommendation of the check in this account: no time to clear anything at (an empty
        // timestamp: the sweep skips the check, it clears nothing).
        let Some(recommendation) = recommendations.recommendation_summaries().first() else {
            return Ok(CheckResult {
                timestamp: String::new(),
                flagged: vec![],
            });
        };
        let timestamp = recommendation
            .last_updated_at()
            .and_then(|t| {
                t.fmt(aws_sdk_trustedadvisor::primitives::DateTimeFormat::DateTime)
                    .ok()
            })
            .unwrap_or_default();
        let mut flagged = vec![];
        let mut next: Option<String> = None;
        loop {
            let output = self
                .client
                .list_recommendation_resources()
                .recommendation_identifier(recommendation.arn())
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|error| port_error("ListRecommendationResources", &error))?;
            for resource in output.recommendation_resource_summaries() {
                if *resource.status() == ResourceStatus::Ok {
                    continue;
                }
                flagged.push(FlaggedResource {
                    status: resource.status().as_str().to_owned(),
                    region: Some(resource.region_code().to_owned()),
                    suppressed: *resource.exclusion_status() == ExclusionStatus::Excluded,
                    metadata: positional(resource.metadata(), columns),
                });
            }
            match output.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                _ => break,
            }
        }
        Ok(CheckResult { timestamp, flagged })
    }

    fn access(&self) -> AdvisorAccess {
        AdvisorAccess::TrustedAdvisor
    }
}

/// How long an account whose plan refused the Trusted Advisor API is read with the Support API
/// before the API is asked again (plans change).
const REFUSAL_KEPT: Duration = Duration::from_secs(6 * 3600);

/// The Trusted Advisor API where the account's plan allows it, else the Support API.
pub struct AdvisorWithFallback {
    api: TrustedAdvisorApi,
    support: SupportTrustedAdvisor,
    /// Since when the API refused this account.
    refused: Mutex<Option<Instant>>,
    /// Which answered the last `checks()`: a sweep reads its results from the same API.
    on_support: Mutex<bool>,
}

impl AdvisorWithFallback {
    pub fn new(api: TrustedAdvisorApi, support: SupportTrustedAdvisor) -> Self {
        Self {
            api,
            support,
            refused: Mutex::new(None),
            on_support: Mutex::new(false),
        }
    }

    pub fn for_config(config: &aws_config::SdkConfig) -> Self {
        Self::new(
            TrustedAdvisorApi::for_config(config),
            SupportTrustedAdvisor::for_config(config),
        )
    }

    fn refused_lately(&self) -> bool {
        self.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|since| since.elapsed() < REFUSAL_KEPT)
    }

    fn answered_by_support(&self) -> bool {
        *self.on_support.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_support(&self, on_support: bool) {
        *self.on_support.lock().unwrap_or_else(|p| p.into_inner()) = on_support;
    }
}

#[async_trait]
impl TrustedAdvisor for AdvisorWithFallback {
    async fn checks(&self) -> Result<Vec<CheckInfo>, PortError> {
        if !self.refused_lately() {
            match self.api.checks().await {
                Err(error)
                    if matches!(
                        error.kind,
                        ErrorKind::SubscriptionRequired | ErrorKind::AccessDenied
                    ) =>
                {
                    tracing::info!(%error, "the Trusted Advisor API refused (support plan): the Support API instead");
                    *self.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                }
                answer => {
                    self.set_support(false);
                    return answer;
                }
            }
        }
        self.set_support(true);
        self.support.checks().await
    }

    async fn check_result(&self, check_id: &str) -> Result<CheckResult, PortError> {
        if self.answered_by_support() {
            return self.support.check_result(check_id).await;
        }
        let result = self.api.check_result(check_id).await?;
        if !result.timestamp.is_empty() {
            return Ok(result);
        }
        // No recommendation of the check in the API: the Support API's result, where the plan
        // allows it, says whether anything is flagged; else the check is skipped, nothing cleared.
        match self.support.check_result(check_id).await {
            Ok(support) => Ok(support),
            Err(error) => {
                tracing::info!(check = check_id, %error, "no recommendation and no Support API result: the check is skipped");
                Ok(result)
            }
        }
    }

    fn access(&self) -> AdvisorAccess {
        if self.answered_by_support() {
            AdvisorAccess::Support
        } else {
            AdvisorAccess::TrustedAdvisor
        }
    }
}
