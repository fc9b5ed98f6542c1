//! The SSM and Tagging adapters against the SDK's own request/response mocking: the request
//! fields that matter, and each error mapping, with response bodies shaped like the real API's.
//!
//! Long on purpose: one file per adapter family keeps each request's assertions beside the
//! response body it is answered with; the mock set-up is shared.

use aws_sdk_ssm::Client;
use aws_sdk_ssm::config::http::HttpResponse;
use aws_sdk_ssm::types::{OpsItemDataType, OpsItemStatus as SdkStatus};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use std::collections::BTreeMap;
use tarem_shared::aws::ssm::{SsmAutomation, SsmOpsCenter};
use tarem_shared::aws::tagging::TaggingResourceTags;
use tarem_shared::decide::automation_tags;
use tarem_shared::error::ErrorKind;
use tarem_shared::ports::attempt_tag;
use tarem_shared::ports::{
    Automation, CreatedOpsItem, NewOpsItem, OpsCenter, OpsData, OpsItemStatus, OpsItemUpdate,
    ResourceTags, StartAutomation,
};

/// An awsJson1.1 response as SSM sends it.
fn json_response(status: u16, body: &str) -> HttpResponse {
    HttpResponse::new(
        StatusCode::try_from(status).expect("valid status"),
        SdkBody::from(body.to_owned()),
    )
}

fn ssm(rules: &[&aws_smithy_mocks::Rule]) -> Client {
    mock_client!(aws_sdk_ssm, RuleMode::MatchAny, rules, |config| config
        .retry_config(aws_sdk_ssm::config::retry::RetryConfig::disabled()))
}

const TOKEN: &str = "6f9619ff-8b86-4011-b42d-00c04fc964ff";

fn new_item() -> NewOpsItem {
    NewOpsItem {
        title: "[TA] [check] [arn:aws:ec2:ap-southeast-2:123456789012:security-group/sg-1]".into(),
        description: "Trusted Advisor reports ...".into(),
        source: "TrustedAdvisor".into(),
        severity: Some("2".into()),
        dedup_string: "tarem:abc".into(),
        operational_data: BTreeMap::from([
            (
                "/aws/dedup".to_owned(),
                OpsData {
                    value: r#"{"dedupString":"tarem:abc"}"#.into(),
                    searchable: true,
                },
            ),
            (
                "tarem:finding".to_owned(),
                OpsData {
                    value: "{}".into(),
                    searchable: false,
                },
            ),
        ]),
    }
}

#[tokio::test]
async fn create_ops_item_sends_the_dedup_string_as_searchable_data() {
    let rule = mock!(Client::create_ops_item)
        .match_requests(|request| {
            let data = request.operational_data().expect("operational data");
            request.title() == Some("[TA] [check] [arn:aws:ec2:ap-southeast-2:123456789012:security-group/sg-1]")
                && request.source() == Some("TrustedAdvisor")
                && request.severity() == Some("2")
                && data["/aws/dedup"].value() == Some(r#"{"dedupString":"tarem:abc"}"#)
                && data["/aws/dedup"].r#type() == Some(&OpsItemDataType::SearchableString)
                && data["tarem:finding"].r#type() == Some(&OpsItemDataType::String)
        })
        .then_http_response(|| {
            json_response(200, r#"{"OpsItemId":"oi-1a2b3c4d5e6f","OpsItemArn":"arn:aws:ssm:us-east-1:123456789012:opsitem/oi-1a2b3c4d5e6f"}"#)
        });
    let ops = SsmOpsCenter::new(ssm(&[&rule]));
    assert_eq!(
        ops.create(&new_item()).await,
        Ok(CreatedOpsItem {
            id: "oi-1a2b3c4d5e6f".into(),
            created: true
        })
    );
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn an_open_duplicate_yields_the_existing_ops_item() {
    let rule = mock!(Client::create_ops_item)
        .match_requests(|request| {
            request.operational_data().is_some_and(|data| {
                data["/aws/dedup"].value() == Some(r#"{"dedupString":"tarem:abc"}"#)
            })
        })
        .then_http_response(|| {
        json_response(
            400,
            r#"{"__type":"OpsItemAlreadyExistsException","Message":"The OpsItem already exists.","OpsItemId":"oi-0000feedbeef"}"#,
        )
    });
    let ops = SsmOpsCenter::new(ssm(&[&rule]));
    assert_eq!(
        ops.create(&new_item()).await,
        Ok(CreatedOpsItem {
            id: "oi-0000feedbeef".into(),
            created: false
        })
    );
}

#[tokio::test]
async fn update_sends_the_status_and_the_data() {
    let update = mock!(Client::update_ops_item)
        .match_requests(|request| {
            request.ops_item_id() == Some("oi-1")
                && request.status() == Some(&SdkStatus::Resolved)
                && request
                    .operational_data()
                    .is_some_and(|d| d.contains_key("tarem:automation"))
        })
        .then_http_response(|| json_response(200, "{}"));
    let ops = SsmOpsCenter::new(ssm(&[&update]));
    let change = OpsItemUpdate {
        status: Some(OpsItemStatus::Resolved),
        description: None,
        operational_data: BTreeMap::from([(
            "tarem:automation".to_owned(),
            OpsData {
                value: "{}".into(),
                searchable: false,
            },
        )]),
        delete: vec![],
    };
    assert_eq!(ops.update("oi-1", &change).await, Ok(()));
    assert_eq!(update.num_calls(), 1);
}

fn start_request(region: &str) -> StartAutomation {
    StartAutomation {
        document: "AWS-DisablePublicAccessForSecurityGroup".into(),
        document_version: None,
        region: region.into(),
        parameters: BTreeMap::from([("GroupId".to_owned(), vec!["sg-1".to_owned()])]),
        client_token: TOKEN.into(),
        tags: automation_tags("finding-key", Some("oi-1"), TOKEN),
    }
}

#[tokio::test]
async fn start_sends_the_client_token_parameters_and_tags() {
    let rule = mock!(Client::start_automation_execution)
        .match_requests(|request| {
            let tags: BTreeMap<&str, &str> = request
                .tags()
                .iter()
                .map(|t| (t.key(), t.value()))
                .collect();
            request.document_name() == Some("AWS-DisablePublicAccessForSecurityGroup")
                && request.client_token() == Some(TOKEN)
                && request
                    .parameters()
                    .is_some_and(|p| p["GroupId"] == ["sg-1"])
                && tags.get("tarem:opsItemId") == Some(&"oi-1")
                && tags.get("tarem:findingKey") == Some(&"finding-key")
                && tags.contains_key(attempt_tag(TOKEN).as_str())
        })
        .then_http_response(|| {
            json_response(
                200,
                r#"{"AutomationExecutionId":"e0c5a7d2-1111-4000-8000-000000000001"}"#,
            )
        });
    let automation = SsmAutomation::with_client(ssm(&[&rule]));
    assert_eq!(
        automation.start(&start_request("ap-southeast-2")).await,
        Ok("e0c5a7d2-1111-4000-8000-000000000001".to_owned())
    );
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn start_goes_to_the_resources_region() {
    let (http, request) = aws_smithy_http_client::test_util::capture_request(None);
    let sdk = aws_config::SdkConfig::builder()
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_ssm::config::SharedCredentialsProvider::new(
            aws_sdk_ssm::config::Credentials::new("test", "test", None, None, "test"),
        ))
        .http_client(http)
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let automation = SsmAutomation::new(&sdk);
    // The captured reply is empty; only the request matters here.
    let _ = automation.start(&start_request("ap-southeast-2")).await;
    let sent = request.expect_request();
    assert_eq!(sent.uri(), "https://ssm.ap-southeast-2.amazonaws.com/");
}

#[tokio::test]
async fn start_errors_map_to_retryable_or_permanent() {
    let cases = [
        (
            400,
            "AutomationExecutionLimitExceededException",
            ErrorKind::LimitExceeded,
            true,
        ),
        (400, "ThrottlingException", ErrorKind::Throttled, true),
        (500, "InternalServerError", ErrorKind::Unavailable, true),
        (503, "ServiceUnavailable", ErrorKind::Unavailable, true),
        (
            400,
            "IdempotentParameterMismatch",
            ErrorKind::Conflict,
            false,
        ),
        (400, "InvalidDocument", ErrorKind::NotFound, false),
        (400, "AccessDeniedException", ErrorKind::AccessDenied, false),
        (
            400,
            "InvalidAutomationExecutionParametersException",
            ErrorKind::Invalid,
            false,
        ),
    ];
    for (status, code, kind, retryable) in cases {
        let body = format!(r#"{{"__type":"{code}","Message":"reason from SSM"}}"#);
        let rule = mock!(Client::start_automation_execution)
            .match_requests(|request| request.client_token() == Some(TOKEN))
            .then_http_response(move || json_response(status, &body));
        let automation = SsmAutomation::with_client(ssm(&[&rule]));
        let error = automation
            .start(&start_request("eu-west-1"))
            .await
            .unwrap_err();
        assert_eq!(error.kind, kind, "{code}: {error}");
        assert_eq!(error.is_retryable(), retryable, "{code}");
        assert!(
            error.message.contains(code) && error.message.contains("reason from SSM"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn a_conflicting_token_is_found_again_by_its_tags() {
    let describe = mock!(Client::describe_automation_executions)
        .match_requests(|request| {
            request.filters().iter().any(|f| {
                f.key() == &aws_sdk_ssm::types::AutomationExecutionFilterKey::TagKey && f.values() == [attempt_tag(TOKEN)]
            })
        })
        .then_http_response(|| {
            json_response(
                200,
                r#"{"AutomationExecutionMetadataList":[{"AutomationExecutionId":"other-exec","DocumentName":"D"},{"AutomationExecutionId":"our-exec","DocumentName":"D"}]}"#,
            )
        });
    let tags = mock!(Client::list_tags_for_resource).then_compute_response(|request| {
        let token = if request.resource_id() == Some("our-exec") { TOKEN } else { "another-token" };
        aws_smithy_mocks::MockResponse::Http(json_response(
            200,
            &format!(r#"{{"TagList":[{{"Key":"tarem:clientToken","Value":"{token}"}},{{"Key":"tarem:opsItemId","Value":"oi-1"}}]}}"#),
        ))
    });
    let automation = SsmAutomation::with_client(ssm(&[&describe, &tags]));
    assert_eq!(
        automation.find_by_client_token("eu-west-1", TOKEN).await,
        Ok(Some("our-exec".to_owned()))
    );
    assert_eq!(
        automation
            .tags("eu-west-1", "our-exec")
            .await
            .unwrap()
            .unwrap()["tarem:opsItemId"],
        "oi-1"
    );
}

#[tokio::test]
async fn unknown_executions_read_as_absent_and_failures_carry_their_message() {
    let tags = mock!(Client::list_tags_for_resource).then_http_response(|| {
        json_response(
            400,
            r#"{"__type":"InvalidResourceId","Message":"The resource ID is not valid."}"#,
        )
    });
    let get = mock!(Client::get_automation_execution)
        .match_requests(|request| request.automation_execution_id() == Some("failed-exec"))
        .then_http_response(|| {
            json_response(
                200,
                r#"{"AutomationExecution":{"AutomationExecutionId":"failed-exec","DocumentName":"AWS-DisablePublicAccessForSecurityGroup","AutomationExecutionStatus":"Failed","FailureMessage":"Step fails when it is Executing. Fail to execute step ModifySecurityGroup."}}"#,
            )
        });
    let missing = mock!(Client::get_automation_execution)
        .match_requests(|request| request.automation_execution_id() == Some("missing"))
        .then_http_response(|| {
            json_response(
                400,
                r#"{"__type":"AutomationExecutionNotFoundException","Message":"not found"}"#,
            )
        });
    let automation = SsmAutomation::with_client(ssm(&[&tags, &get, &missing]));
    assert_eq!(automation.tags("eu-west-1", "not-ours").await, Ok(None));
    let info = automation
        .describe("eu-west-1", "failed-exec")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.status, "Failed");
    assert!(
        info.failure_message
            .unwrap()
            .contains("ModifySecurityGroup")
    );
    assert_eq!(automation.describe("eu-west-1", "missing").await, Ok(None));
}

#[tokio::test]
async fn resource_tags_come_from_the_tagging_api() {
    use aws_sdk_resourcegroupstagging::Client as Tagging;
    let arn = "arn:aws:ec2:eu-west-1:123456789012:instance/i-1";
    let rule = mock!(Tagging::get_resources)
        .match_requests(move |request| request.resource_arn_list() == [arn])
        .then_http_response(move || {
            json_response(
                200,
                &format!(
                    r#"{{"PaginationToken":"","ResourceTagMappingList":[{{"ResourceARN":"{arn}","Tags":[{{"Key":"automaticRemediation","Value":"True"}}]}}]}}"#
                ),
            )
        });
    let throttled = mock!(Tagging::get_resources)
        .match_requests(|request| {
            request.resource_arn_list() == ["arn:aws:ec2:eu-west-1:123456789012:instance/i-2"]
        })
        .then_http_response(|| {
            json_response(
                400,
                r#"{"__type":"ThrottledException","Message":"Rate exceeded"}"#,
            )
        });
    let client = mock_client!(
        aws_sdk_resourcegroupstagging,
        RuleMode::MatchAny,
        &[&rule, &throttled],
        |config| config
            .retry_config(aws_sdk_resourcegroupstagging::config::retry::RetryConfig::disabled())
    );
    let tags = TaggingResourceTags::with_client(client);
    assert_eq!(
        tags.tags("eu-west-1", arn).await,
        Ok(BTreeMap::from([(
            "automaticRemediation".to_owned(),
            "True".to_owned()
        )]))
    );
    let error = tags
        .tags(
            "eu-west-1",
            "arn:aws:ec2:eu-west-1:123456789012:instance/i-2",
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Throttled);
}

#[tokio::test]
async fn an_ops_items_view_reads_its_status_and_tarems_state_from_get_ops_item() {
    let resolved = mock!(Client::get_ops_item)
        .match_requests(|request| request.ops_item_id() == Some("oi-resolved"))
        .then_http_response(|| {
            json_response(
                200,
                r#"{"OpsItem":{"OpsItemId":"oi-resolved","Status":"Resolved","Title":"t","Source":"TrustedAdvisor","OperationalData":{"tarem:remediation":{"Value":"{\"state\":\"fixed\",\"detail\":\"Green\"}","Type":"String"},"tarem:findingKey":{"Value":"k1","Type":"SearchableString"},"tarem:approve":{"Value":"yes","Type":"String"}}}}"#,
            )
        });
    let missing = mock!(Client::get_ops_item)
        .match_requests(|request| request.ops_item_id() == Some("oi-missing"))
        .then_http_response(|| {
            json_response(
                400,
                r#"{"__type":"OpsItemNotFoundException","Message":"not found"}"#,
            )
        });
    let ops = SsmOpsCenter::new(ssm(&[&resolved, &missing]));
    assert_eq!(
        ops.view("oi-resolved").await,
        Ok(Some(tarem_shared::ports::OpsItemView {
            status: OpsItemStatus::Resolved,
            state: Some("fixed".into()),
            finding_key: Some("k1".into()),
            approve: Some("yes".into()),
        }))
    );
    assert_eq!(ops.view("oi-missing").await, Ok(None));
}

#[tokio::test]
async fn the_kill_switch_is_the_parameter_value() {
    use tarem_shared::aws::ssm::SsmParameterKillSwitch;
    use tarem_shared::ports::KillSwitch;
    let answer = |value: &'static str| {
        mock!(Client::get_parameter)
            .match_requests(|request| request.name() == Some("/tarem/automation-starts"))
            .then_http_response(move || {
                json_response(
                    200,
                    &format!(r#"{{"Parameter":{{"Name":"/tarem/automation-starts","Type":"String","Value":"{value}","Version":2}}}}"#),
                )
            })
    };
    for (value, allowed) in [("on", true), ("off", false), (" OFF ", false)] {
        let rule = answer(value);
        let switch = SsmParameterKillSwitch::new(ssm(&[&rule]), "/tarem/automation-starts");
        assert_eq!(switch.starts_allowed().await, Ok(allowed), "{value:?}");
    }
    let deleted = mock!(Client::get_parameter).then_http_response(|| {
        json_response(
            400,
            r#"{"__type":"ParameterNotFound","Message":"not found"}"#,
        )
    });
    let switch = SsmParameterKillSwitch::new(ssm(&[&deleted]), "/tarem/automation-starts");
    assert_eq!(switch.starts_allowed().await, Ok(true));
    let throttled = mock!(Client::get_parameter).then_http_response(|| {
        json_response(
            400,
            r#"{"__type":"ThrottlingException","Message":"Rate exceeded"}"#,
        )
    });
    let switch = SsmParameterKillSwitch::new(ssm(&[&throttled]), "/tarem/automation-starts");
    assert!(
        switch.starts_allowed().await.unwrap_err().is_retryable(),
        "unknown means no start, retried"
    );
}

#[tokio::test]
async fn trusted_advisor_results_come_from_the_support_api() {
    use aws_sdk_support::Client as Support;
    use tarem_shared::aws::support::SupportTrustedAdvisor;
    use tarem_shared::ports::TrustedAdvisor;
    let checks = mock!(Support::describe_trusted_advisor_checks)
        .match_requests(|request| request.language() == Some("en"))
        .then_http_response(|| {
            json_response(
                200,
                r#"{"checks":[{"id":"1iG5NDGVre","name":"Security groups should not allow unrestricted access to ports with high risk","description":"...","category":"security","metadata":["Status","Region","Resource","Last Updated Time"]}]}"#,
            )
        });
    let result = mock!(Support::describe_trusted_advisor_check_result)
        .match_requests(|request| request.check_id() == Some("1iG5NDGVre"))
        .then_http_response(|| {
            json_response(
                200,
                r#"{"result":{"checkId":"1iG5NDGVre","timestamp":"2026-11-02T10:00:00Z","status":"error","resourcesSummary":{"resourcesProcessed":12,"resourcesFlagged":1,"resourcesIgnored":0,"resourcesSuppressed":0},"categorySpecificSummary":{},"flaggedResources":[{"status":"error","region":"ap-southeast-2","resourceId":"a1b2c3d4e5","isSuppressed":false,"metadata":["Red","ap-southeast-2","arn:aws:ec2:ap-southeast-2:123456789012:security-group/sg-1",null]}]}}"#,
            )
        });
    let client = mock_client!(
        aws_sdk_support,
        RuleMode::MatchAny,
        &[&checks, &result],
        |config| config.retry_config(aws_sdk_support::config::retry::RetryConfig::disabled())
    );
    let advisor = SupportTrustedAdvisor::new(client);
    let listed = advisor.checks().await.unwrap();
    assert_eq!(
        listed[0].columns,
        ["Status", "Region", "Resource", "Last Updated Time"]
    );
    advisor.checks().await.unwrap();
    assert_eq!(checks.num_calls(), 1, "the check list is read once");
    let got = advisor.check_result("1iG5NDGVre").await.unwrap();
    assert_eq!(got.timestamp, "2026-11-02T10:00:00Z");
    assert_eq!(
        got.flagged[0].metadata[2].as_deref(),
        Some("arn:aws:ec2:ap-southeast-2:123456789012:security-group/sg-1")
    );
    assert_eq!(got.flagged[0].metadata[3], None);

    let no_plan = mock!(Support::describe_trusted_advisor_checks).then_http_response(|| {
        json_response(
            400,
            r#"{"__type":"SubscriptionRequiredException","message":"AWS Premium Support Subscription is required to use this service."}"#,
        )
    });
    let client = mock_client!(aws_sdk_support, RuleMode::MatchAny, &[&no_plan], |config| {
        config.retry_config(aws_sdk_support::config::retry::RetryConfig::disabled())
    });
    let error = SupportTrustedAdvisor::new(client)
        .checks()
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::SubscriptionRequired);
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn document_parameters_come_from_describe_document() {
    use tarem_shared::aws::ssm::SsmDocuments;
    use tarem_shared::ports::{DocumentCatalog, DocumentParameter};
    let found = mock!(Client::describe_document)
        .match_requests(|request| request.name() == Some("AWS-DisablePublicAccessForSecurityGroup"))
        .then_http_response(|| {
            json_response(
                200,
                r#"{"Document":{"Name":"AWS-DisablePublicAccessForSecurityGroup","DocumentType":"Automation","Status":"Active","Parameters":[{"Name":"GroupId","Type":"String","Description":"(Required) The security group ID."},{"Name":"AutomationAssumeRole","Type":"String","Description":"(Optional) The ARN of the role.","DefaultValue":""}]}}"#,
            )
        });
    let missing = mock!(Client::describe_document)
        .match_requests(|request| request.name() == Some("AWS-NoSuchRunbook"))
        .then_http_response(|| json_response(400, r#"{"__type":"InvalidDocument","Message":"Document with name AWS-NoSuchRunbook does not exist."}"#));
    let documents = SsmDocuments::with_client(ssm(&[&found, &missing]));
    assert_eq!(
        documents
            .parameters("eu-west-1", "AWS-DisablePublicAccessForSecurityGroup")
            .await,
        Ok(Some(vec![
            DocumentParameter {
                name: "GroupId".into(),
                required: true
            },
            DocumentParameter {
                name: "AutomationAssumeRole".into(),
                required: false
            },
        ]))
    );
    assert_eq!(
        documents.parameters("eu-west-1", "AWS-NoSuchRunbook").await,
        Ok(None)
    );
}
