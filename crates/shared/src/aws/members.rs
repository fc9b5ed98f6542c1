//! The organisation on AWS: the hub reaches a member account by assuming its
//! `role/tarem/tarem-member` (STS in the function's region: regional endpoints, which opt-in
//! regions need), and keeps each account's credentials and clients until shortly before they
//! expire. The stack's own account is reached with the function's own clients.
//!
//! When a member's role refuses the hub, Organizations says why: an account suspended, closed or
//! no longer in the organisation is gone (its episodes end); any other is held (its member
//! stacks are missing or broken). Only a refusal costs that call.

use super::errors::port_error;
use super::ssm::{SsmAutomation, SsmOpsCenter};
use super::tagging::TaggingResourceTags;
use super::trustedadvisor::AdvisorWithFallback;
use crate::error::{ErrorKind, PortError};
use crate::ports::{MemberClients, MemberGate, MemberParameters, MemberReach, Members};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// The member role every member account has (member/global.yaml).
pub const MEMBER_ROLE: &str = "role/tarem/tarem-member";
/// The session name the hub's calls carry in members (member/regional.yaml forwards the status
/// events of executions whose `ExecutedBy` is a `tarem-member` session).
const SESSION: &str = "tarem-hub";
/// Credentials are renewed this long before they expire.
const RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);
/// An account that refused the hub is asked again after this long, not on every finding.
const REFUSAL_KEPT: Duration = Duration::from_secs(5 * 60);

pub struct StsMembers {
    home: String,
    home_clients: MemberClients,
    sts: aws_sdk_sts::Client,
    organizations: aws_sdk_organizations::Client,
    base: aws_config::SdkConfig,
    partition: String,
    cache: Mutex<HashMap<String, (SystemTime, MemberReach)>>,
    /// Each account's OUs, kept an hour (accounts move between OUs rarely).
    units: Mutex<HashMap<String, (SystemTime, Vec<String>)>>,
}

impl StsMembers {
    /// `home` is the stack's own account (reached with `home_clients`).
    pub fn new(base: &aws_config::SdkConfig, home: &str, home_clients: MemberClients) -> Self {
        Self::with_clients(
            aws_sdk_sts::Client::new(base),
            aws_sdk_organizations::Client::new(base),
            base,
            home,
            home_clients,
        )
    }

    /// With these STS and Organizations clients (tests point them at mocks).
    pub fn with_clients(
        sts: aws_sdk_sts::Client,
        organizations: aws_sdk_organizations::Client,
        base: &aws_config::SdkConfig,
        home: &str,
        home_clients: MemberClients,
    ) -> Self {
        Self {
            home: home.to_owned(),
            home_clients,
            sts,
            organizations,
            base: base.clone(),
            partition: "aws".into(),
            cache: Mutex::new(HashMap::new()),
            units: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, account: &str) -> Option<MemberReach> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let (until, reach) = cache.get(account)?;
        (SystemTime::now() < *until).then(|| reach.clone())
    }

    async fn assume(&self, account: &str) -> Result<(SystemTime, MemberReach), PortError> {
        let role = format!("arn:{}:iam::{account}:{MEMBER_ROLE}", self.partition);
        let answer = self
            .sts
            .assume_role()
            .role_arn(&role)
            .role_session_name(SESSION)
            .send()
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => {
                let error = port_error("AssumeRole", &error);
                if error.kind == ErrorKind::AccessDenied {
                    let until = SystemTime::now() + REFUSAL_KEPT;
                    // Not onboarded, failed, excluded, or the management account.
                    let reason = format!(
                        "AccessDenied on sts:AssumeRole of {role}: its member stacks are missing or do not trust this hub ({})",
                        error.message
                    );
                    return Ok((until, MemberReach::Held(reason)));
                }
                return Err(error);
            }
        };
        let Some(credentials) = answer.credentials else {
            return Err(PortError::new(
                "AssumeRole",
                ErrorKind::Unavailable,
                "STS answered without credentials",
            ));
        };
        let expires = SystemTime::try_from(credentials.expiration)
            .unwrap_or_else(|_| SystemTime::now() + Duration::from_secs(15 * 60));
        let provider = aws_sdk_sts::config::Credentials::new(
            credentials.access_key_id,
            credentials.secret_access_key,
            Some(credentials.session_token),
            Some(expires),
            "tarem-member",
        );
        let config = self
            .base
            .to_builder()
            .credentials_provider(aws_sdk_sts::config::SharedCredentialsProvider::new(
                provider,
            ))
            .build();
        let ssm = aws_sdk_ssm::Client::new(&config);
        let clients = MemberClients {
            automation: Arc::new(SsmAutomation::new(&config)),
            ops_center: Arc::new(SsmOpsCenter::new(ssm.clone())),
            tags: Arc::new(TaggingResourceTags::new(&config)),
            gate: Arc::new(SsmMemberGate { client: ssm }),
            advisor: Arc::new(AdvisorWithFallback::for_config(&config)),
        };
        let until = expires
            .checked_sub(RENEW_BEFORE)
            .unwrap_or_else(SystemTime::now);
        Ok((until, MemberReach::Ready(clients)))
    }
}

impl StsMembers {
    /// Why Organizations says the account is gone (suspended, closed, or not in the
    /// organisation), if it does. An Organizations that will not answer (the hub is neither the
    /// management account nor a delegated administrator) says nothing: the account is held.
    async fn gone(&self, account: &str) -> Result<Option<String>, PortError> {
        use aws_sdk_organizations::operation::describe_account::DescribeAccountError;
        use aws_sdk_organizations::types::{AccountState, AccountStatus};
        let answer = self
            .organizations
            .describe_account()
            .account_id(account)
            .send()
            .await;
        let described = match answer {
            Ok(described) => described,
            Err(error) => {
                if matches!(
                    error.as_service_error(),
                    Some(DescribeAccountError::AccountNotFoundException(_))
                ) {
                    return Ok(Some(
                        "the account left the organisation (Organizations: AccountNotFound)".into(),
                    ));
                }
                let error = port_error("DescribeAccount", &error);
                if error.is_retryable() {
                    return Err(error);
                }
                tracing::warn!(%error, "Organizations will not say whether the account is gone; it is held");
                return Ok(None);
            }
        };
        let Some(found) = described.account() else {
            return Ok(None);
        };
        let state = found.state().map(|s| s.as_str().to_owned());
        let ended = matches!(
            found.state(),
            Some(AccountState::Suspended | AccountState::PendingClosure | AccountState::Closed)
        ) || matches!(
            found.status(),
            Some(AccountStatus::Suspended | AccountStatus::PendingClosure)
        );
        Ok(ended.then(|| {
            format!(
                "the account is suspended or closed (Organizations: {})",
                state
                    .or_else(|| found.status().map(|s| s.as_str().to_owned()))
                    .unwrap_or_default()
            )
        }))
    }
}

#[async_trait]
impl Members for StsMembers {
    async fn reach(&self, account: Option<&str>) -> Result<MemberReach, PortError> {
        let Some(account) = account.filter(|account| *account != self.home) else {
            return Ok(MemberReach::Ready(self.home_clients.clone()));
        };
        if let Some(reach) = self.cached(account) {
            return Ok(reach);
        }
        let (until, mut reach) = self.assume(account).await?;
        if matches!(reach, MemberReach::Held(_))
            && let Some(gone) = self.gone(account).await?
        {
            reach = MemberReach::Gone(gone);
        }
        if let MemberReach::Held(reason) = &reach {
            tracing::warn!(%account, %reason, metric = "accounts.unreachable", "member role refused the hub");
        }
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(account.to_owned(), (until, reach.clone()));
        Ok(reach)
    }

    async fn units(&self, account: &str) -> Result<Vec<String>, PortError> {
        use aws_sdk_organizations::types::ParentType;
        if let Some((until, units)) = self
            .units
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(account)
            && SystemTime::now() < *until
        {
            return Ok(units.clone());
        }
        let mut units = vec![];
        let mut child = account.to_owned();
        // An organisation nests OUs five deep: the root is at most six parents up.
        for _ in 0..6 {
            let answer = self
                .organizations
                .list_parents()
                .child_id(&child)
                .send()
                .await;
            let parents = match answer {
                Ok(parents) => parents,
                Err(error) => {
                    let error = port_error("ListParents", &error);
                    if error.is_retryable() {
                        return Err(error);
                    }
                    // Not the management account nor a delegated administrator: an OU-scoped
                    // mapping then acts only in the accounts it names.
                    tracing::warn!(%account, %error, "Organizations will not say which OUs the account is in");
                    units.clear();
                    break;
                }
            };
            let Some(parent) = parents.parents().first() else {
                break;
            };
            let Some(id) = parent.id() else { break };
            units.push(id.to_owned());
            if parent.r#type() == Some(&ParentType::Root) {
                break;
            }
            child = id.to_owned();
        }
        self.units.lock().unwrap_or_else(|p| p.into_inner()).insert(
            account.to_owned(),
            (SystemTime::now() + UNITS_KEPT, units.clone()),
        );
        Ok(units)
    }
}

/// How long an account's OUs are kept.
const UNITS_KEPT: Duration = Duration::from_secs(3600);

/// The member's own stop: `/tarem/member/paused` and `/tarem/member/version`, read together
/// (one GetParameters) before each start there.
pub struct SsmMemberGate {
    client: aws_sdk_ssm::Client,
}

pub const MEMBER_PAUSED_PARAMETER: &str = "/tarem/member/paused";
pub const MEMBER_VERSION_PARAMETER: &str = "/tarem/member/version";

#[async_trait]
impl MemberGate for SsmMemberGate {
    async fn parameters(&self) -> Result<MemberParameters, PortError> {
        let answer = self
            .client
            .get_parameters()
            .names(MEMBER_PAUSED_PARAMETER)
            .names(MEMBER_VERSION_PARAMETER)
            .send()
            .await
            .map_err(|error| port_error("GetParameters", &error))?;
        let value = |name: &str| {
            answer
                .parameters()
                .iter()
                .find(|p| p.name() == Some(name))
                .and_then(|p| p.value())
                .map(str::to_owned)
        };
        Ok(MemberParameters {
            paused: value(MEMBER_PAUSED_PARAMETER),
            version: value(MEMBER_VERSION_PARAMETER),
        })
    }
}
