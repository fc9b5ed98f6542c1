//! The organisation, in memory: the hub's own account and its members, each with its own SSM
//! Automation, OpsCenter and tags (what a start or an OpsItem in one account does is invisible
//! in another, as in AWS), its member parameters, and the faults the organisation has: a member
//! role missing or denying the hub, an account gone from the organisation, an owner's pause, a
//! member template too old.

use super::{
    Faults, InMemoryAutomation, InMemoryOpsCenter, InMemoryResourceTags, InMemoryTrustedAdvisor,
    WithFaults, lock,
};
use crate::clock::Clock;
use crate::error::PortError;
use crate::ports::{MemberClients, MemberGate, MemberParameters, MemberReach, Members};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What AssumeRole of `tarem-member` meets in an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberRole {
    /// The member stacks are there: the hub gets in.
    Deployed,
    /// No role (StackSet instance missing or failed, the management account) or one that denies
    /// the hub: AccessDenied.
    Missing,
}

/// One member account, as its owner and the organisation left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberAccount {
    pub role: MemberRole,
    /// Still in the organisation and active.
    pub active: bool,
    /// `/tarem/member/paused`.
    pub paused: String,
    /// `/tarem/member/version`; `None`: no such parameter.
    pub version: Option<String>,
    /// Its OUs, nearest first, then the root.
    pub units: Vec<String>,
}

impl Default for MemberAccount {
    fn default() -> Self {
        Self {
            role: MemberRole::Deployed,
            active: true,
            paused: "off".into(),
            version: Some(crate::ports::MEMBER_TEMPLATE_VERSION.to_string()),
            units: vec![],
        }
    }
}

/// A member account's services.
pub struct InMemoryMember {
    pub automation: Arc<InMemoryAutomation>,
    pub ops_center: Arc<InMemoryOpsCenter>,
    pub tags: Arc<InMemoryResourceTags>,
    /// The account's Trusted Advisor (what its reconcile reads).
    pub advisor: Arc<InMemoryTrustedAdvisor>,
    account: Arc<Mutex<MemberAccount>>,
}

impl InMemoryMember {
    /// How the account stands now.
    pub fn account(&self) -> MemberAccount {
        lock(&self.account).clone()
    }

    /// Changes how the account stands (a fault, or its repair).
    pub fn update(&self, change: impl FnOnce(&mut MemberAccount)) {
        change(&mut lock(&self.account));
    }

    fn clients(&self) -> MemberClients {
        MemberClients {
            automation: self.automation.clone(),
            ops_center: self.ops_center.clone(),
            tags: self.tags.clone(),
            gate: Arc::new(Gate(self.account.clone())),
            advisor: self.advisor.clone(),
        }
    }
}

struct Gate(Arc<Mutex<MemberAccount>>);

#[async_trait]
impl MemberGate for Gate {
    async fn parameters(&self) -> Result<MemberParameters, PortError> {
        let account = lock(&self.0).clone();
        Ok(MemberParameters {
            paused: Some(account.paused),
            version: account.version,
        })
    }
}

/// The hub's own account and its members. With no member added, every finding is the hub's
/// own (the organisation of one); once members are added, an account the hub has no member
/// stacks in is out of reach, as AssumeRole would answer.
pub struct InMemoryMembers {
    home: Mutex<String>,
    home_clients: MemberClients,
    clock: Arc<dyn Clock>,
    faults: Arc<Faults>,
    members: Mutex<BTreeMap<String, Arc<InMemoryMember>>>,
}

impl InMemoryMembers {
    pub fn new(
        home: &str,
        home_clients: MemberClients,
        clock: Arc<dyn Clock>,
        faults: Arc<Faults>,
    ) -> Self {
        Self {
            home: Mutex::new(home.to_owned()),
            home_clients,
            clock,
            faults,
            members: Mutex::new(BTreeMap::new()),
        }
    }

    /// Deploys the member stacks in `account` (its services start empty); the member, as it is
    /// when it already was.
    pub fn add(&self, account: &str) -> Arc<InMemoryMember> {
        lock(&self.members)
            .entry(account.to_owned())
            .or_insert_with(|| {
                Arc::new(InMemoryMember {
                    automation: Arc::new(
                        InMemoryAutomation::default()
                            .in_account(account)
                            .with_clock(self.clock.clone())
                            .with_faults(self.faults.clone()),
                    ),
                    ops_center: Arc::new(
                        InMemoryOpsCenter::default().with_faults(self.faults.clone()),
                    ),
                    tags: Arc::new(
                        InMemoryResourceTags::default().with_faults(self.faults.clone()),
                    ),
                    advisor: Arc::new(
                        InMemoryTrustedAdvisor::default().with_faults(self.faults.clone()),
                    ),
                    account: Arc::new(Mutex::new(MemberAccount::default())),
                })
            })
            .clone()
    }

    /// A member account, if the hub has member stacks there.
    pub fn member(&self, account: &str) -> Option<Arc<InMemoryMember>> {
        lock(&self.members).get(account).cloned()
    }

    /// The member accounts, by id.
    pub fn accounts(&self) -> Vec<(String, Arc<InMemoryMember>)> {
        lock(&self.members)
            .iter()
            .map(|(id, member)| (id.clone(), member.clone()))
            .collect()
    }

    /// The hub's own account.
    pub fn home(&self) -> String {
        lock(&self.home).clone()
    }

    /// Makes `account` the hub's own (its services are the home clients).
    pub fn set_home(&self, account: &str) {
        *lock(&self.home) = account.to_owned();
    }
}

#[async_trait]
impl Members for InMemoryMembers {
    async fn reach(&self, account: Option<&str>) -> Result<MemberReach, PortError> {
        let home = self.home();
        let Some(account) = account.filter(|account| *account != home) else {
            return Ok(MemberReach::Ready(self.home_clients.clone()));
        };
        let members = lock(&self.members);
        if members.is_empty() {
            return Ok(MemberReach::Ready(self.home_clients.clone()));
        }
        self.faults.check("members.assume_role")?;
        let Some(member) = members.get(account) else {
            return Ok(MemberReach::Held(
                "AccessDenied on sts:AssumeRole of tarem-member: the account has no member stacks (not onboarded)".into(),
            ));
        };
        let standing = member.account();
        Ok(if !standing.active {
            MemberReach::Gone("the account left the organisation, or is suspended or closed".into())
        } else if standing.role == MemberRole::Missing {
            MemberReach::Held(
                "AccessDenied on sts:AssumeRole of tarem-member: its member role is missing or does not trust the hub (a StackSet instance missing or failed, or the management account, which service-managed StackSets never target)".into(),
            )
        } else {
            MemberReach::Ready(member.clients())
        })
    }

    async fn units(&self, account: &str) -> Result<Vec<String>, PortError> {
        self.faults.check("members.units")?;
        Ok(self
            .member(account)
            .map(|member| member.account().units)
            .unwrap_or_default())
    }
}
