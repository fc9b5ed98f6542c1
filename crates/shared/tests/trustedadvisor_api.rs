//! The Trusted Advisor API adapter on aws-smithy-mocks, with the shapes of aws-cli's examples
//! (`awscli/examples/trustedadvisor/list-checks.rst`, `list-recommendation-resources.rst`):
//! positional metadata read into the Support API's column order, only flagged resources kept,
//! an excluded one suppressed, no recommendation never read as "nothing flagged", and the
//! Support API where the plan refuses the Trusted Advisor API.

use aws_sdk_support::operation::describe_trusted_advisor_check_result::DescribeTrustedAdvisorCheckResultError;
use aws_sdk_trustedadvisor::Client;
use aws_sdk_trustedadvisor::operation::list_checks::ListChecksError;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::error::ErrorMetadata;
use tarem_shared::aws::support::SupportTrustedAdvisor;
use tarem_shared::aws::trustedadvisor::{AdvisorWithFallback, TrustedAdvisorApi};
use tarem_shared::error::ErrorKind;
use tarem_shared::ports::{AdvisorAccess, TrustedAdvisor};

fn json(body: &str) -> HttpResponse {
    HttpResponse::new(
        StatusCode::try_from(200).unwrap(),
        SdkBody::from(body.to_owned()),
    )
}

fn api(rules: &[&aws_smithy_mocks::Rule]) -> TrustedAdvisorApi {
    TrustedAdvisorApi::new(mock_client!(
        aws_sdk_trustedadvisor,
        RuleMode::MatchAny,
        rules,
        |c| c.retry_config(aws_sdk_trustedadvisor::config::retry::RetryConfig::disabled())
    ))
}

const CHECK_ARN: &str = "arn:aws:trustedadvisor:::check/1iG5NDGVre";
const RECOMMENDATION: &str =
    "arn:aws:trustedadvisor::123456789012:recommendation/55fa4d2e-bbb7-491a-833b-5773e9589578";

/// "Security Groups - Unrestricted Access", as list-checks shows it (its metadata out of order,
/// as a JSON map may be).
fn checks() -> aws_smithy_mocks::Rule {
    mock!(Client::list_checks).then_http_response(|| {
        json(&format!(
            r#"{{"checkSummaries":[{{"arn":"{CHECK_ARN}","awsServices":["EC2"],"description":"Checks security groups for rules that allow unrestricted access to a resource.","id":"1iG5NDGVre","metadata":{{"6":"IP Range","0":"Region","1":"Security Group Name","2":"Security Group ID","3":"Protocol","4":"Port","5":"Status"}},"name":"Security Groups - Unrestricted Access","pillars":["security"],"source":"ta_check"}}]}}"#
        ))
    })
}

fn recommendations(body: &'static str) -> aws_smithy_mocks::Rule {
    mock!(Client::list_recommendations)
        .match_requests(|request| request.check_identifier() == Some(CHECK_ARN))
        .then_http_response(move || json(body))
}

fn resource(id: &str, status: &str, exclusion: &str, group: &str) -> String {
    format!(
        r#"{{"arn":"arn:aws:trustedadvisor::123456789012:recommendation-resource/55fa4d2e-bbb7-491a-833b-5773e9589578/{id}","id":"{id}","awsResourceId":"{group}","lastUpdatedAt":"2026-11-01T15:09:51.891Z","metadata":{{"0":"eu-west-1","1":"web","2":"{group}","3":"tcp","4":"22","5":"Red","6":"0.0.0.0/0"}},"recommendationArn":"{RECOMMENDATION}","regionCode":"eu-west-1","status":"{status}","exclusionStatus":"{exclusion}"}}"#
    )
}

#[tokio::test]
async fn a_checks_flagged_resources_read_in_the_support_apis_column_order() {
    let recommendation = recommendations(Box::leak(
        format!(
            r#"{{"recommendationSummaries":[{{"arn":"{RECOMMENDATION}","checkArn":"{CHECK_ARN}","id":"55fa4d2e","lastUpdatedAt":"2026-11-01T15:10:00Z","name":"Security Groups - Unrestricted Access","pillars":["security"],"resourcesAggregates":{{"errorCount":2,"okCount":1,"warningCount":0}},"source":"ta_check","status":"error","type":"standard"}}]}}"#
        )
        .into_boxed_str(),
    ));
    let first_page = mock!(Client::list_recommendation_resources)
        .match_requests(|r| {
            r.recommendation_identifier() == Some(RECOMMENDATION) && r.next_token().is_none()
        })
        .then_http_response(|| {
            json(&format!(
                r#"{{"recommendationResourceSummaries":[{},{}],"nextToken":"page-2"}}"#,
                resource("a1", "error", "included", "sg-0a1b2c3d"),
                resource("a2", "ok", "included", "sg-00000000")
            ))
        });
    let second_page = mock!(Client::list_recommendation_resources)
        .match_requests(|r| r.next_token() == Some("page-2"))
        .then_http_response(|| {
            json(&format!(
                r#"{{"recommendationResourceSummaries":[{}]}}"#,
                resource("a3", "error", "excluded", "sg-0e0e0e0e")
            ))
        });
    let api = api(&[&checks(), &recommendation, &first_page, &second_page]);
    let listed = api.checks().await.unwrap();
    assert_eq!(listed[0].id, "1iG5NDGVre", "the Support API's id");
    assert_eq!(
        listed[0].columns,
        [
            "Region",
            "Security Group Name",
            "Security Group ID",
            "Protocol",
            "Port",
            "Status",
            "IP Range"
        ]
    );
    let result = api.check_result("1iG5NDGVre").await.unwrap();
    assert_eq!(result.timestamp, "2026-11-01T15:10:00Z");
    assert_eq!(result.flagged.len(), 2, "the ok resource is not flagged");
    assert_eq!(result.flagged[0].status, "error");
    assert_eq!(result.flagged[0].region.as_deref(), Some("eu-west-1"));
    assert_eq!(
        result.flagged[0].metadata[2].as_deref(),
        Some("sg-0a1b2c3d")
    );
    assert_eq!(result.flagged[0].metadata.len(), 7);
    assert!(!result.flagged[0].suppressed);
    assert!(result.flagged[1].suppressed, "excluded is suppressed");
    assert_eq!(api.access(), AdvisorAccess::TrustedAdvisor);
}

#[tokio::test]
async fn no_recommendation_of_a_check_is_never_read_as_nothing_flagged() {
    let none = recommendations(r#"{"recommendationSummaries":[]}"#);
    let api = api(&[&checks(), &none]);
    api.checks().await.unwrap();
    let result = api.check_result("1iG5NDGVre").await.unwrap();
    assert!(result.flagged.is_empty());
    assert_eq!(
        result.timestamp, "",
        "no time to clear at: the sweep skips the check and clears nothing"
    );
}

fn support(rules: &[&aws_smithy_mocks::Rule]) -> SupportTrustedAdvisor {
    SupportTrustedAdvisor::new(mock_client!(
        aws_sdk_support,
        RuleMode::MatchAny,
        rules,
        |c| c.retry_config(aws_sdk_support::config::retry::RetryConfig::disabled())
    ))
}

#[tokio::test]
async fn where_the_plan_refuses_the_api_the_support_api_answers_and_a_throttle_is_an_error() {
    let refused = mock!(Client::list_checks).then_error(|| {
        ListChecksError::generic(
            ErrorMetadata::builder()
                .code("AccessDeniedException")
                .message("Your account does not have the required support level to access the Trusted Advisor API")
                .build(),
        )
    });
    let support_checks = mock!(aws_sdk_support::Client::describe_trusted_advisor_checks)
        .then_http_response(|| {
            json(r#"{"checks":[{"id":"1iG5NDGVre","name":"Security Groups - Unrestricted Access","description":"","category":"security","metadata":["Region","Security Group Name","Security Group ID","Protocol","Port","Status","IP Range"]}]}"#)
        });
    let advisor = AdvisorWithFallback::new(api(&[&refused]), support(&[&support_checks]));
    let listed = advisor.checks().await.unwrap();
    assert_eq!(listed[0].columns.len(), 7);
    assert_eq!(advisor.access(), AdvisorAccess::Support);

    let throttled = mock!(Client::list_checks).then_error(|| {
        ListChecksError::generic(
            ErrorMetadata::builder()
                .code("ThrottlingException")
                .message("Rate exceeded")
                .build(),
        )
    });
    let advisor = AdvisorWithFallback::new(api(&[&throttled]), support(&[]));
    let error = advisor.checks().await.unwrap_err();
    assert_eq!(
        error.kind,
        ErrorKind::Throttled,
        "retried by the schedule, not a fallback"
    );
    assert_eq!(advisor.access(), AdvisorAccess::TrustedAdvisor);
}

#[tokio::test]
async fn a_check_without_a_recommendation_is_read_from_the_support_api_where_the_plan_allows_it() {
    let none = recommendations(r#"{"recommendationSummaries":[]}"#);
    let support_result = mock!(aws_sdk_support::Client::describe_trusted_advisor_check_result)
        .then_http_response(|| {
            json(r#"{"result":{"checkId":"1iG5NDGVre","timestamp":"2026-11-02T09:12:41Z","status":"ok","resourcesSummary":{"resourcesProcessed":3,"resourcesFlagged":0,"resourcesIgnored":0,"resourcesSuppressed":0},"categorySpecificSummary":{},"flaggedResources":[]}}"#)
        });
    let advisor = AdvisorWithFallback::new(api(&[&checks(), &none]), support(&[&support_result]));
    advisor.checks().await.unwrap();
    let result = advisor.check_result("1iG5NDGVre").await.unwrap();
    assert_eq!(
        result.timestamp, "2026-11-02T09:12:41Z",
        "the Support API's word"
    );
    assert!(result.flagged.is_empty());
    // Without a Support API answer either: skipped (no time to clear at).
    let none = recommendations(r#"{"recommendationSummaries":[]}"#);
    let no_plan =
        mock!(aws_sdk_support::Client::describe_trusted_advisor_check_result).then_error(|| {
            DescribeTrustedAdvisorCheckResultError::generic(
                ErrorMetadata::builder()
                    .code("SubscriptionRequiredException")
                    .message("AWS Premium Support Subscription is required to use this service.")
                    .build(),
            )
        });
    let advisor = AdvisorWithFallback::new(api(&[&checks(), &none]), support(&[&no_plan]));
    advisor.checks().await.unwrap();
    assert_eq!(
        advisor.check_result("1iG5NDGVre").await.unwrap().timestamp,
        ""
    );
}
