//! The hub reaching member accounts through STS (aws-smithy-mocks; moto's STS would let any role
//! be assumed, so refusals are played here): the stack's own account needs no STS call, a
//! member's credentials are kept until shortly before they expire, a refusal is kept a while and
//! says why, and a throttled STS is a passing failure.

use aws_sdk_sts::Client;
use aws_sdk_sts::operation::assume_role::{AssumeRoleError, AssumeRoleOutput};
use aws_sdk_sts::types::Credentials;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_types::error::ErrorMetadata;
use std::sync::Arc;
use tarem_shared::aws::members::StsMembers;
use tarem_shared::error::ErrorKind;
use tarem_shared::memory::{InMemoryAutomation, InMemoryOpsCenter, InMemoryResourceTags};
use tarem_shared::ports::{MemberClients, MemberReach, Members, NoGate};

const HUB: &str = "111122223333";
const MEMBER: &str = "444455556666";

fn sts(rules: &[&aws_smithy_mocks::Rule]) -> Client {
    mock_client!(aws_sdk_sts, RuleMode::MatchAny, rules, |config| config
        .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled()))
}

fn members(client: Client) -> StsMembers {
    let base = aws_config::SdkConfig::builder()
        .region(aws_config::Region::new("us-east-1"))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let home = MemberClients {
        automation: Arc::new(InMemoryAutomation::default()),
        ops_center: Arc::new(InMemoryOpsCenter::default()),
        tags: Arc::new(InMemoryResourceTags::default()),
        gate: Arc::new(NoGate),
    };
    StsMembers::with_sts(client, &base, HUB, home)
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
    let refused = mock!(Client::assume_role).then_error(|| {
        AssumeRoleError::generic(
            ErrorMetadata::builder()
                .code("AccessDenied")
                .message(format!("User: arn:aws:sts::{HUB}:assumed-role/tarem-ResultsHandlerRole-X/fn is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::{MEMBER}:role/tarem/tarem-member"))
                .build(),
        )
    });
    let members = members(sts(&[&refused]));
    let MemberReach::Held(reason) = members.reach(Some(MEMBER)).await.unwrap() else {
        panic!("held");
    };
    assert!(
        reason.contains("AccessDenied") && reason.contains(MEMBER),
        "{reason}"
    );
    members.reach(Some(MEMBER)).await.unwrap();
    assert_eq!(refused.num_calls(), 1, "the refusal is kept a while");
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
