//! Mappings as operators write them: both item shapes, every field's rule, the templates.

use super::*;
use crate::finding::{Finding, Status};
use serde_json::json;
use std::collections::BTreeMap;

/// The item exactly as AWS's walkthrough `put-item` writes it.
fn walkthrough_item() -> Value {
    json!({
        "checkName": {"S": "Security Groups - Specific Ports Unrestricted"},
        "ssmAutomationDocument": {"S": "AWS-DisablePublicAccessForSecurityGroup"},
        "automationParameters": {"S": "{\"GroupId\": [\"$resourceId\"], \"AutomationAssumeRole\": [\"arn:aws:iam::111122223333:role/Example\"]}"},
        "regexPattern": {"S": "(sg-\\w+)"},
        "automationStatus": {"BOOL": true}
    })
}

fn finding(resource: &str) -> Finding {
    let at = chrono::DateTime::UNIX_EPOCH;
    Finding {
        check_item_detail: BTreeMap::from([("Port".to_owned(), "22".to_owned())]),
        ..Finding::new(
            "111122223333",
            "Security Groups - Specific Ports Unrestricted",
            resource,
            "eu-west-1",
        )
        .at(Status::Red, at, at)
    }
}

fn render(
    mapping: &Mapping,
    resource: &str,
) -> Result<BTreeMap<String, Vec<String>>, TemplateError> {
    let finding = finding(resource);
    let id = mapping.regex.as_ref().and_then(|r| r.extract(resource));
    mapping.parameters.render(TemplateInput {
        finding: &finding,
        resource_id: id,
    })
}

#[test]
fn the_walkthrough_item_and_its_plain_twin_read_the_same() {
    let typed = Mapping::from_any_json(&walkthrough_item()).unwrap();
    let plain = Mapping::from_json(&json!({
        "checkName": "Security Groups - Specific Ports Unrestricted",
        "ssmAutomationDocument": "AWS-DisablePublicAccessForSecurityGroup",
        "automationParameters": {"GroupId": ["$resourceId"], "AutomationAssumeRole": ["arn:aws:iam::111122223333:role/Example"]},
        "regexPattern": "(sg-\\w+)",
        "automationStatus": true
    }))
    .unwrap();
    assert_eq!((typed.mode, plain.mode), (Mode::Automated, Mode::Automated));
    assert_eq!(typed.document, plain.document);
    assert_eq!(typed.parameters, plain.parameters);
    let arn = "arn:aws:ec2:eu-west-1:111122223333:security-group/sg-0abc";
    let expected = BTreeMap::from([
        (
            "AutomationAssumeRole".to_owned(),
            vec!["arn:aws:iam::111122223333:role/Example".to_owned()],
        ),
        ("GroupId".to_owned(), vec!["sg-0abc".to_owned()]),
    ]);
    assert_eq!(render(&typed, arn).unwrap(), expected);
    assert_eq!(render(&plain, arn).unwrap(), expected);
}

#[test]
fn broken_mappings_name_the_field() {
    let with = |key: &str, value: Value| {
        let mut item = plain_json(&walkthrough_item());
        item[key] = value;
        Mapping::from_json(&item).unwrap_err()
    };
    let cases = [
        (
            with("regexPattern", json!("(sg-\\w+")),
            "regexPattern",
            "does not compile",
        ),
        (
            with("regexPattern", json!("(sg)-(\\w+)")),
            "regexPattern",
            "2 capture groups",
        ),
        (
            with("automationParameters", json!("{GroupId: [")),
            "automationParameters",
            "not valid JSON",
        ),
        (
            with("automationParameters", json!("[1]")),
            "automationParameters",
            "must be a JSON object",
        ),
        (
            with("automationParameters", json!({"GroupId": "$resourceId"})),
            "automationParameters",
            "must be a list of strings",
        ),
        (
            with("automationParameters", json!({"GroupId": [7]})),
            "automationParameters",
            "found a number in the list",
        ),
        (
            with("automationParameters", json!({"GroupId": ["$resourceID"]})),
            "automationParameters",
            "unknown variable `$resourceID`",
        ),
        (
            with("automationParameters", json!({"GroupId": ["${resource"]})),
            "automationParameters",
            "unterminated",
        ),
        (
            with("automationStatus", json!("true")),
            "automationStatus",
            "found the string \"true\"",
        ),
        (
            with("ssmAutomationDocument", json!("")),
            "ssmAutomationDocument",
            "non-empty string",
        ),
        (with("checkName", json!(5)), "checkName", "found a number"),
    ];
    for (error, field, problem) in cases {
        assert_eq!(error.field, field, "{error}");
        assert!(
            error.to_string().contains(problem),
            "{error} should say {problem:?}"
        );
    }
    let mut no_regex = plain_json(&walkthrough_item());
    no_regex.as_object_mut().unwrap().remove("regexPattern");
    assert_eq!(
        Mapping::from_json(&no_regex).unwrap_err().field,
        "regexPattern"
    );
}

#[test]
fn an_absent_automation_status_means_off() {
    let mut item = plain_json(&walkthrough_item());
    item.as_object_mut().unwrap().remove("automationStatus");
    assert_eq!(Mapping::from_json(&item).unwrap().mode, Mode::Approval);
}

#[test]
fn mode_wins_over_automation_status_and_limits_are_checked() {
    let with = |extra: Value| {
        let mut item = plain_json(&walkthrough_item());
        for (key, value) in extra.as_object().unwrap() {
            item[key] = value.clone();
        }
        Mapping::from_json(&item)
    };
    assert_eq!(
        with(json!({"automationStatus": false})).unwrap().mode,
        Mode::Approval
    );
    assert_eq!(with(json!({"mode": "dry-run"})).unwrap().mode, Mode::DryRun);
    assert_eq!(
        with(json!({"mode": "Inactive", "automationStatus": true}))
            .unwrap()
            .mode,
        Mode::Inactive
    );
    assert_eq!(
        with(json!({"mode": "approval", "automationStatus": true}))
            .unwrap()
            .mode,
        Mode::Approval
    );
    let limits =
        with(json!({"maxAttempts": 1, "coolDownMinutes": 90, "modeTagKey": "tarem-sg-mode"}))
            .unwrap();
    assert_eq!(
        (limits.max_attempts, limits.cool_down_minutes),
        (Some(1), Some(90))
    );
    assert_eq!(limits.mode_tag_key.as_deref(), Some("tarem-sg-mode"));
    // The account scope: a list, or one string of ids for a hand-written put-item.
    let scoped = with(json!({"accounts": ["111122223333", "444455556666"]})).unwrap();
    let listed = with(json!({"accounts": "111122223333, 444455556666"})).unwrap();
    assert_eq!(scoped.accounts, listed.accounts);
    assert_eq!(scoped.accounts.unwrap().len(), 2);
    let units = with(json!({"accounts": ["ou-ab12-cdef3456", "r-ab12", "111122223333"]})).unwrap();
    assert_eq!(units.accounts.unwrap().len(), 3);
    for (bad, says) in [
        (json!([]), "remediate nowhere"),
        (json!(["ou-AB12-cdef3456"]), "OU ids"),
        (json!(["1111-2222-3333"]), "12-digit"),
        (json!([111122223333u64]), "a list of 12-digit account ids"),
    ] {
        let error = with(json!({ "accounts": bad })).unwrap_err();
        assert_eq!(error.field, "accounts");
        assert!(error.problem.contains(says), "{bad}: {error}");
    }
    assert_eq!(with(json!({"mode": "yolo"})).unwrap_err().field, "mode");
    assert_eq!(
        with(json!({"maxAttempts": 0})).unwrap_err().field,
        "maxAttempts"
    );
    assert_eq!(
        with(json!({"coolDownMinutes": "30"})).unwrap_err().field,
        "coolDownMinutes"
    );
}

#[test]
fn substituted_values_stay_inside_their_own_string() {
    let mapping = Mapping::from_json(&json!({
        "checkName": "c", "ssmAutomationDocument": "D",
        "automationParameters": {"Id": ["$resourceId"], "Other": ["fixed"]},
        "regexPattern": "instance/(.+)$", "automationStatus": true
    }))
    .unwrap();
    let hostile = "x\"], \"Other\": [\"evil\"], \"Id\": [\"$resourceArn$$";
    let rendered = render(
        &mapping,
        &format!("arn:aws:ec2:eu-west-1:1:instance/{hostile}"),
    )
    .unwrap();
    assert_eq!(rendered.len(), 2);
    assert_eq!(rendered["Id"], vec![hostile.to_owned()]);
    assert_eq!(rendered["Other"], vec!["fixed".to_owned()]);
}

#[test]
fn every_variable_form_renders() {
    let mapping = Mapping::from_json(&json!({
        "checkName": "c", "ssmAutomationDocument": "D",
        "automationParameters": {"All": ["$resourceId|${resourceId}|$resourceArn|$region|$accountId|${detail.Port}|$$|$5|$"]},
        "regexPattern": "sg-\\w+", "automationStatus": true
    }))
    .unwrap();
    let arn = "arn:aws:ec2:eu-west-1:111122223333:security-group/sg-1";
    assert_eq!(
        render(&mapping, arn).unwrap()["All"],
        vec![format!("sg-1|sg-1|{arn}|eu-west-1|111122223333|22|$|$5|$")]
    );
}

#[test]
fn values_a_finding_lacks_are_template_errors() {
    let mapping = Mapping::from_json(&json!({
        "checkName": "c", "ssmAutomationDocument": "D",
        "automationParameters": {"Port": ["${detail.Ports}"]}, "automationStatus": true
    }))
    .unwrap();
    let error = render(&mapping, "arn:aws:ec2:eu-west-1:1:security-group/sg-1").unwrap_err();
    assert_eq!(error.parameter, "Port");
    assert!(
        error.problem.contains("no check-item column \"Ports\""),
        "{error}"
    );
    let arn_only = Mapping::from_json(&json!({
        "checkName": "c", "ssmAutomationDocument": "D",
        "automationParameters": {"Arn": ["$resourceArn"]}, "automationStatus": true
    }))
    .unwrap();
    assert!(
        render(&arn_only, "ta-item/0123")
            .unwrap_err()
            .problem
            .contains("not an ARN")
    );
}

#[test]
fn the_regex_extracts_the_group_or_the_whole_match_and_never_an_empty_id() {
    let group = ResourceRegex::new("(sg-\\w+)").unwrap();
    assert_eq!(
        group.extract("arn:aws:ec2:r:1:security-group/sg-0ab"),
        Some("sg-0ab")
    );
    assert_eq!(group.extract("arn:aws:ec2:r:1:instance/i-0ab"), None);
    let whole = ResourceRegex::new("i-[0-9a-f]+").unwrap();
    assert_eq!(
        whole.extract("arn:aws:ec2:r:1:instance/i-0ab"),
        Some("i-0ab")
    );
    let empty = ResourceRegex::new("(x*)").unwrap();
    assert_eq!(empty.extract("abc"), None);
    let optional = ResourceRegex::new("a(b)?").unwrap();
    assert_eq!(optional.extract("a"), None);
}
