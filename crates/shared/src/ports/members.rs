//! The accounts the stack acts in. A finding is remediated in its own account: its tags are read
//! there, its OpsItem lives there, its runbook starts there. The hub reaches a member account
//! through the member's `tarem-member` role (the AWS adapter: `crate::aws::members`); a stack that
//! governs only itself is the organisation of one, reached with its own clients ([`OwnAccount`]).

use super::{Automation, OpsCenter, ResourceTags, TrustedAdvisor};
use crate::error::PortError;
use async_trait::async_trait;
use std::sync::Arc;

/// The member template version this code needs (`/tarem/member/version` in each member): a start
/// in an account whose template is older is refused before it reaches SSM.
pub const MEMBER_TEMPLATE_VERSION: u32 = 1;

/// What the stack acts through in one account.
#[derive(Clone)]
pub struct MemberClients {
    pub automation: Arc<dyn Automation>,
    pub ops_center: Arc<dyn OpsCenter>,
    pub tags: Arc<dyn ResourceTags>,
    /// The account's own stop, read before each start there.
    pub gate: Arc<dyn MemberGate>,
    /// The account's Trusted Advisor results, for its reconcile.
    pub advisor: Arc<dyn TrustedAdvisor>,
}

/// Whether the stack can reach an account now.
#[derive(Clone)]
pub enum MemberReach {
    Ready(MemberClients),
    /// Not now, and why (its member role is missing, or denies the hub): its episodes are held
    /// and looked at again; the account is marked.
    Held(String),
    /// The account left the organisation, or is suspended or closed: its episodes end.
    Gone(String),
}

impl MemberReach {
    /// What the lifecycle is told.
    pub fn standing(&self) -> MemberStanding {
        match self {
            MemberReach::Ready(_) => MemberStanding::Ready,
            MemberReach::Held(reason) => MemberStanding::Held(reason.clone()),
            MemberReach::Gone(reason) => MemberStanding::Gone(reason.clone()),
        }
    }
}

/// [`MemberReach`] without the clients: the lifecycle's fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberStanding {
    Ready,
    Held(String),
    Gone(String),
}

/// The accounts the stack acts in.
#[async_trait]
pub trait Members: Send + Sync {
    /// The clients acting in `account` (`None`: a finding whose event named no account, acted on
    /// in the stack's own), or why it cannot be reached. A passing failure (STS throttled) is an
    /// error, retried like any other.
    async fn reach(&self, account: Option<&str>) -> Result<MemberReach, PortError>;

    /// The organisational units `account` sits in, nearest first, then the organisation's root
    /// (`r-…`): what a mapping scoped to an OU is matched against. Empty where the stack cannot
    /// ask Organizations (a stack that governs only itself): such a mapping then acts only in
    /// the accounts it names.
    async fn units(&self, _account: &str) -> Result<Vec<String>, PortError> {
        Ok(vec![])
    }
}

/// A member's own parameters, as its member template and its owner left them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberParameters {
    /// `/tarem/member/paused`.
    pub paused: Option<String>,
    /// `/tarem/member/version` (`None`: missing, a template from before versions).
    pub version: Option<String>,
}

impl MemberParameters {
    /// Why no start may happen in the account now ([`gate_refusal`]).
    pub fn refusal(&self) -> Option<String> {
        gate_refusal(self.paused.as_deref(), self.version.as_deref())
    }

    /// The account's owner paused tarem there.
    pub fn is_paused(&self) -> bool {
        is_paused(self.paused.as_deref())
    }
}

/// An account owner's stop on tarem's starts there.
#[async_trait]
pub trait MemberGate: Send + Sync {
    /// The member's parameters, read now (one call).
    async fn parameters(&self) -> Result<MemberParameters, PortError>;

    /// Why no start may happen in the account now (its owner paused tarem, or its member template
    /// is older than this code needs); `None` when starts may go ahead.
    async fn refusal(&self) -> Result<Option<String>, PortError> {
        Ok(self.parameters().await?.refusal())
    }
}

/// The stop of an account whose owner is the stack itself: none (the stack's kill switch is its
/// stop).
pub struct NoGate;

#[async_trait]
impl MemberGate for NoGate {
    async fn parameters(&self) -> Result<MemberParameters, PortError> {
        // The stack's own account has no member template: nothing paused, this code's version.
        Ok(MemberParameters {
            paused: None,
            version: Some(MEMBER_TEMPLATE_VERSION.to_string()),
        })
    }
}

/// The organisation of one: every finding is acted on with the stack's own clients. (Findings of
/// accounts the stack does not govern never get this far: the check tracker refuses them.)
pub struct OwnAccount {
    clients: MemberClients,
}

impl OwnAccount {
    pub fn new(
        automation: Arc<dyn Automation>,
        ops_center: Arc<dyn OpsCenter>,
        tags: Arc<dyn ResourceTags>,
        advisor: Arc<dyn TrustedAdvisor>,
    ) -> Self {
        Self {
            clients: MemberClients {
                automation,
                ops_center,
                tags,
                gate: Arc::new(NoGate),
                advisor,
            },
        }
    }
}

#[async_trait]
impl Members for OwnAccount {
    async fn reach(&self, _account: Option<&str>) -> Result<MemberReach, PortError> {
        Ok(MemberReach::Ready(self.clients.clone()))
    }
}

/// The refusal a member's parameters give: `paused` is `/tarem/member/paused`, `version`
/// `/tarem/member/version` (`None`: missing, a template from before versions). One place, for
/// both the AWS adapter and the in-memory one.
pub fn gate_refusal(paused: Option<&str>, version: Option<&str>) -> Option<String> {
    if is_paused(paused) {
        return Some(
            "the account's owner paused tarem here (/tarem/member/paused is `on`)".to_owned(),
        );
    }
    let deployed = version.and_then(|v| v.trim().parse::<u32>().ok());
    match deployed {
        Some(deployed) if deployed >= MEMBER_TEMPLATE_VERSION => None,
        _ => Some(format!(
            "the account's member template is version {} and this hub needs {MEMBER_TEMPLATE_VERSION}: refused before the start; update the member StackSets",
            version.map_or("(none)".to_owned(), |v| format!("{:?}", v.trim()))
        )),
    }
}

fn is_paused(paused: Option<&str>) -> bool {
    paused.is_some_and(|value| value.trim().eq_ignore_ascii_case("on"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paused_or_old_member_refuses_and_a_current_one_does_not() {
        assert_eq!(gate_refusal(Some("off"), Some("1")), None);
        assert_eq!(gate_refusal(Some("off"), Some("2")), None);
        assert!(
            gate_refusal(Some("on"), Some("1"))
                .unwrap()
                .contains("paused")
        );
        assert!(
            gate_refusal(Some(" ON "), Some("1"))
                .unwrap()
                .contains("paused")
        );
        assert!(
            gate_refusal(Some("off"), Some("0"))
                .unwrap()
                .contains("version \"0\"")
        );
        assert!(gate_refusal(Some("off"), None).unwrap().contains("(none)"));
        assert!(
            gate_refusal(None, Some("one"))
                .unwrap()
                .contains("refused before the start")
        );
    }
}
