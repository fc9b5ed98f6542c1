//! AWS adapters for the ports: DynamoDB for the three tables, SSM for OpsCenter and Automation
//! (one client per region, built once), the Resource Groups Tagging API for resource tags.

pub mod dynamodb;
pub mod errors;
pub mod grants;
pub mod members;
pub mod sqs;
pub mod ssm;
pub mod support;
pub mod tagging;
pub mod trustedadvisor;

use std::collections::HashMap;
use std::sync::Mutex;

/// The functions' SDK configuration, loaded once per process: credentials, region and
/// `AWS_ENDPOINT_URL` from the environment.
///
/// Stalled-stream protection is off: every response here is a few kilobytes read at once, and
/// the protection's per-request throughput timers cost CPU on every call for nothing the
/// function's own deadline does not already bound.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .stalled_stream_protection(
            aws_config::stalled_stream_protection::StalledStreamProtectionConfig::disabled(),
        )
        .load()
        .await
}

/// Clients per region, each built once on first use and kept for the life of the process.
pub struct RegionalClients<C> {
    build: Box<dyn Fn(&str) -> C + Send + Sync>,
    clients: Mutex<HashMap<String, C>>,
}

impl<C: Clone> RegionalClients<C> {
    pub fn new(build: impl Fn(&str) -> C + Send + Sync + 'static) -> Self {
        Self {
            build: Box::new(build),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// One client for every region (tests point it at a mock).
    pub fn single(client: C) -> Self
    where
        C: Send + Sync + 'static,
    {
        Self::new(move |_| client.clone())
    }

    pub fn get(&self, region: &str) -> C {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        clients
            .entry(region.to_owned())
            .or_insert_with(|| (self.build)(region))
            .clone()
    }
}
