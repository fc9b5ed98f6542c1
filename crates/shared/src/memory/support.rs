//! Trusted Advisor through the Support API.

use super::{Faults, lock};
use crate::error::{ErrorKind, PortError};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Trusted Advisor as the Support API shows it: checks and their latest results.
#[derive(Default)]
pub struct InMemoryTrustedAdvisor {
    pub(crate) faults: Arc<Faults>,
    state: Mutex<(
        Vec<crate::ports::CheckInfo>,
        HashMap<String, crate::ports::CheckResult>,
    )>,
}

impl InMemoryTrustedAdvisor {
    pub fn set_check(&self, check: crate::ports::CheckInfo, result: crate::ports::CheckResult) {
        let mut state = lock(&self.state);
        state.0.retain(|c| c.id != check.id);
        state.1.insert(check.id.clone(), result);
        state.0.push(check);
    }
}

#[async_trait]
impl crate::ports::TrustedAdvisor for InMemoryTrustedAdvisor {
    async fn checks(&self) -> Result<Vec<crate::ports::CheckInfo>, PortError> {
        self.faults.check("advisor.checks")?;
        Ok(lock(&self.state).0.clone())
    }

    async fn check_result(&self, check_id: &str) -> Result<crate::ports::CheckResult, PortError> {
        self.faults.check("advisor.check_result")?;
        lock(&self.state).1.get(check_id).cloned().ok_or_else(|| {
            PortError::new(
                "DescribeTrustedAdvisorCheckResult",
                ErrorKind::NotFound,
                format!("no check {check_id}"),
            )
        })
    }
}
