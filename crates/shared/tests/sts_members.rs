//! The hub reaching member accounts through STS (aws-smithy-mocks; moto's STS would let any role
//! be assumed, so refusals are played here): the stack's own account needs no STS call, a
//! member's credentials are kept until shortly before they expire, a refusal is kept a while and
//! says why, and a throttled STS is a passing failure. A refusal asks Organizations whether the
//! account is gone (suspended, closed, left): then its episodes end instead of waiting.

use aws_sdk_organizations::operation::describe_account::{
    DescribeAccountError, DescribeAccountOutput,
};
use aws_sdk_organizations::types::{Account, AccountState};
use aws_sdk_sts::Client;
use aws_sdk_sts::operation::assume_role::{AssumeRoleError, AssumeRoleOutput};
use aws_sdk_sts::types::Credentials;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_types::error::ErrorMetadata;
use std::sync::Arc;
use tarem_shared::aws::members::StsMembers;
use tarem_shared::aws::ssm::{SsmAutomation, SsmOpsCenter};
use tarem_shared::aws::support::SupportTrustedAdvisor;
use tarem_shared::aws::tagging::TaggingResourceTags;
use tarem_shared::error::ErrorKind;
use tarem_shared::ports::{MemberClients, MemberReach, Members, NoGate};

const HUB: &str = "111122223333";
const MEMBER: &str = "444455556666";

fn sts(rules: &[&aws_smithy_mocks::Rule]) -> Client {
    mock_client!(aws_sdk_sts, RuleMode::MatchAny, rules, |config| config
        .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled()))
}

fn organizations(rules: &[&aws_smithy_mocks::Rule]) -> aws_sdk_organizations::Client {
    mock_client!(aws_sdk_organizations, RuleMode::MatchAny, rules, |config| {
        config.retry_config(aws_sdk_organizations::config::retry::RetryConfig::disabled())
    })
}

/// Organizations' answer for the member: an account in this state.
fn described(state: AccountState) -> aws_smithy_mocks::Rule {
    mock!(aws_sdk_organizations::Client::describe_account).then_output(move || {
        DescribeAccountOutput::builder()
            .account(Account::builder().id(MEMBER).state(state.clone()).build())
            .build()
    })
}

fn refused() -> aws_smithy_mocks::Rule {
    mock!(Client::assume_role).then_error(|| {
        AssumeRoleError::generic(
            ErrorMetadata::builder()
                .code("AccessDenied")
                .message(format!("User: arn:aws:sts::{HUB}:assumed-role/tarem-ResultsHandlerRole-X/fn is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::{MEMBER}:role/tarem/tarem-member"))
                .build(),
        )
    })
}

fn members(client: Client) -> StsMembers {
    members_with(client, organizations(&[]))
}

fn members_with(client: Client, organizations: aws_sdk_organizations::Client) -> StsMembers {
    let base = aws_config::SdkConfig::builder()
        .region(aws_config::Region::new("us-east-1"))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    // The hub's own clients (built, never called here).
    let home = MemberClients {
        automation: Arc::new(SsmAutomation::new(&base)),
        ops_center: Arc::new(SsmOpsCenter::new(aws_sdk_ssm::Client::new(&base))),
        tags: Arc::new(TaggingResourceTags::new(&base)),
        gate: Arc::new(NoGate),
        advisor: Arc::new(SupportTrustedAdvisor::for_config(&base)),
    };
    StsMembers::with_clients(client, organizations, &base, HUB, home)
}

/// AssumeRole's answer, with credentials valid for an hour (the default session).
fn assumed() -> AssumeRoleOutput {
    let expires = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    AssumeRoleOutput::builder()
        .credentials(
            Credentials::builder()
                .access_key_id("ASIAEXAMPLE")
                .secret_access_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
                .session_token("token")
                .expiration(expires.into())
                .build()
                .unwrap(),
        )
        .build()
}

#[tokio::test]
async fn the_hubs_own_account_needs_no_sts_call_and_a_member_is_assumed_once() {
    let assume = mock!(Client::assume_role)
        .match_requests(|request| {
            request.role_arn() == Some(&format!("arn:aws:iam::{MEMBER}:role/tarem/tarem-member"))
                && request.role_session_name() == Some("tarem-hub")
        })
        .then_output(assumed);
    let members = members(sts(&[&assume]));
    assert!(matches!(
        members.reach(Some(HUB)).await.unwrap(),
        MemberReach::Ready(_)
    ));
    assert!(matches!(
        members.reach(None).await.unwrap(),
        MemberReach::Ready(_)
    ));
    assert_eq!(assume.num_calls(), 0, "the hub's own account");
    for _ in 0..3 {
        assert!(matches!(
            members.reach(Some(MEMBER)).await.unwrap(),
            MemberReach::Ready(_)
        ));
    }
    assert_eq!(
        assume.num_calls(),
        1,
        "credentials kept, not assumed per finding"
    );
}

#[tokio::test]
async fn a_member_role_that_refuses_the_hub_holds_with_the_reason_and_is_not_asked_per_finding() {
    let refused = refused();
    let active = described(AccountState::Active);
    let members = members_with(sts(&[&refused]), organizations(&[&active]));
    let MemberReach::Held(reason) = members.reach(Some(MEMBER)).await.unwrap() else {
        panic!("held");
    };
    assert!(
        reason.contains("AccessDenied") && reason.contains(MEMBER),
        "{reason}"
    );
    members.reach(Some(MEMBER)).await.unwrap();
    assert_eq!(refused.num_calls(), 1, "the refusal is kept a while");
    assert_eq!(active.num_calls(), 1);
}

#[tokio::test]
async fn a_refusing_account_suspended_closed_or_gone_from_the_organisation_is_gone() {
    for state in [
        AccountState::Suspended,
        AccountState::Closed,
        AccountState::PendingClosure,
    ] {
        let refused = refused();
        let ended = described(state.clone());
        let members = members_with(sts(&[&refused]), organizations(&[&ended]));
        let MemberReach::Gone(reason) = members.reach(Some(MEMBER)).await.unwrap() else {
            panic!("{state:?}: gone");
        };
        assert!(reason.contains(state.as_str()), "{reason}");
    }
    let refused = refused();
    let left = mock!(aws_sdk_organizations::Client::describe_account).then_error(|| {
        DescribeAccountError::AccountNotFoundException(
            aws_sdk_organizations::types::error::AccountNotFoundException::builder()
                .message("You specified an account that doesn't exist.")
                .build(),
        )
    });
    let members = members_with(sts(&[&refused]), organizations(&[&left]));
    let MemberReach::Gone(reason) = members.reach(Some(MEMBER)).await.unwrap() else {
        panic!("an account no longer in the organisation is gone");
    };
    assert!(reason.contains("left the organisation"), "{reason}");
}

#[tokio::test]
async fn an_organizations_that_will_not_answer_leaves_the_account_held() {
    let refused = refused();
    let denied = mock!(aws_sdk_organizations::Client::describe_account).then_error(|| {
        DescribeAccountError::generic(
            ErrorMetadata::builder()
                .code("AccessDeniedException")
                .message("You don't have permissions to access this resource.")
                .build(),
        )
    });
    let members = members_with(sts(&[&refused]), organizations(&[&denied]));
    assert!(matches!(
        members.reach(Some(MEMBER)).await.unwrap(),
        MemberReach::Held(_)
    ));
}

#[tokio::test]
async fn a_throttled_sts_is_a_passing_failure_and_the_next_call_gets_in() {
    let throttled = mock!(Client::assume_role).then_error(|| {
        AssumeRoleError::generic(
            ErrorMetadata::builder()
                .code("Throttling")
                .message("Rate exceeded")
                .build(),
        )
    });
    let members = members(sts(&[&throttled]));
    let error = match members.reach(Some(MEMBER)).await {
        Err(error) => error,
        Ok(_) => panic!("throttled"),
    };
    assert_eq!(error.kind, ErrorKind::Throttled);
    assert!(error.is_retryable());
}

/// ListParents up to the root (the shape of Organizations' API reference: `Parents: [{Id, Type}]`),
/// kept an hour; an Organizations that will not answer gives no OU, so an OU-scoped mapping
/// acts only in the accounts it names.
#[tokio::test]
async fn an_accounts_ous_are_read_up_to_the_root_once_and_a_refusal_names_none() {
    use aws_sdk_organizations::operation::list_parents::{ListParentsError, ListParentsOutput};
    use aws_sdk_organizations::types::{Parent, ParentType};
    let parent = |child: &'static str, id: &'static str, kind: ParentType| {
        mock!(aws_sdk_organizations::Client::list_parents)
            .match_requests(move |request| request.child_id() == Some(child))
            .then_output(move || {
                ListParentsOutput::builder()
                    .parents(Parent::builder().id(id).r#type(kind.clone()).build())
                    .build()
            })
    };
    let first = parent(MEMBER, "ou-ab12-prod0001", ParentType::OrganizationalUnit);
    let second = parent(
        "ou-ab12-prod0001",
        "ou-ab12-workload",
        ParentType::OrganizationalUnit,
    );
    let root = parent("ou-ab12-workload", "r-ab12", ParentType::Root);
    let members = members_with(sts(&[]), organizations(&[&first, &second, &root]));
    let path = ["ou-ab12-prod0001", "ou-ab12-workload", "r-ab12"];
    assert_eq!(members.units(MEMBER).await.unwrap(), path);
    assert_eq!(members.units(MEMBER).await.unwrap(), path);
    assert_eq!(first.num_calls(), 1, "kept, not asked per finding");

    let denied = mock!(aws_sdk_organizations::Client::list_parents).then_error(|| {
        ListParentsError::generic(
            ErrorMetadata::builder()
                .code("AccessDeniedException")
                .message("You don't have permissions to access this resource.")
                .build(),
        )
    });
    let members = members_with(sts(&[]), organizations(&[&denied]));
    assert!(members.units(MEMBER).await.unwrap().is_empty());
}
