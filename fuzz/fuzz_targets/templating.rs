//! Parameter templating and mappings. The input is up to four fields separated by the byte 0xFF
//! (which never occurs in UTF-8, so seeds stay readable):
//!
//!     template JSON 0xFF resource id 0xFF regex pattern 0xFF resource (ARN)
//!
//! The first field may also be a whole mapping item (plain or DynamoDB-typed JSON with a
//! `checkName`), read with `Mapping::from_any_json`.
//!
//! Checked, besides "no panic":
//! - any template that parses renders (or gives a TemplateError) for any resource id;
//! - `{"P": ["$resourceId"], "Q": ["fixed"]}` (as a map and as AWS's JSON-string form, and through
//!   a mapping whose regex captures the whole resource) renders to exactly P = [id] and
//!   Q = ["fixed"], whatever the id holds (quotes, commas, brackets, `$`...): no injection.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::LazyLock;
use tarem_shared::finding::{Finding, Status, arn_region_and_account};
use tarem_shared::mapping::{Mapping, ParameterTemplate, TemplateInput, plain_json};

/// `{"P": ["$resourceId"], "Q": ["fixed"]}` in AWS's JSON-string form, with a regex that captures
/// the whole resource. Read once: it does not depend on the input.
static FIXED_MAPPING: LazyLock<Mapping> = LazyLock::new(|| {
    Mapping::from_json(&json!({
        "checkName": "c",
        "ssmAutomationDocument": "D",
        "automationParameters": "{\"P\": [\"$resourceId\"], \"Q\": [\"fixed\"]}",
        "regexPattern": "^(?s)(.+)$",
        "automationStatus": true,
    }))
    .expect("the fixed mapping reads")
});

fn finding(resource: &str) -> Finding {
    let account = arn_region_and_account(resource)
        .map(|(_, account)| account.to_owned())
        .unwrap_or_default();
    let at = chrono::DateTime::from_timestamp_millis(1_793_610_000_000).expect("a fixed time");
    Finding {
        check_item_detail: BTreeMap::from([
            ("Port".to_owned(), "22".to_owned()),
            ("Resource".to_owned(), resource.to_owned()),
        ]),
        ..Finding::new(
            &account,
            "Security Groups - Specific Ports Unrestricted",
            resource,
            "eu-west-1",
        )
        .at(Status::Red, at, at)
    }
}

fn render_any(template: &ParameterTemplate, finding: &Finding, id: &str) {
    for resource_id in [Some(id), None] {
        let _ = template.render(TemplateInput {
            finding,
            resource_id,
        });
    }
}

fn assert_no_injection(template: &ParameterTemplate, finding: &Finding, id: &str) {
    let rendered = template
        .render(TemplateInput {
            finding,
            resource_id: Some(id),
        })
        .unwrap_or_else(|error| panic!("the fixed template failed to render for {id:?}: {error}"));
    let expected = BTreeMap::from([
        ("P".to_owned(), vec![id.to_owned()]),
        ("Q".to_owned(), vec!["fixed".to_owned()]),
    ]);
    assert_eq!(
        rendered, expected,
        "resource id {id:?} changed the parameters"
    );
}

fuzz_target!(|data: &[u8]| {
    let mut fields = data.splitn(4, |&b| b == 0xFF).map(String::from_utf8_lossy);
    let template_text = fields.next().unwrap_or_default();
    let id = fields.next().unwrap_or_default();
    let pattern = fields.next().unwrap_or_default();
    let resource = fields.next().unwrap_or_default();
    let finding = finding(&resource);

    // Any template, as parsed JSON (map or anything else) and as AWS's JSON-string form.
    let parsed_json = serde_json::from_str::<Value>(&template_text).ok();
    let mut templates = vec![Value::String(template_text.to_string())];
    templates.extend(parsed_json.iter().cloned());
    for value in &templates {
        if let Ok(template) = ParameterTemplate::parse(value) {
            render_any(&template, &finding, &id);
        }
    }

    // The fixed template: the id lands in P, whole, and nowhere else.
    let fixed = json!({"P": ["$resourceId"], "Q": ["fixed"]});
    for value in [fixed.clone(), Value::String(fixed.to_string())] {
        let template = ParameterTemplate::parse(&value).expect("the fixed template parses");
        assert_no_injection(&template, &finding, &id);
    }

    // Whole mappings, read from the fuzzed template and pattern. Compiling a regex is the costly
    // step (it dominates the run time), so each input compiles the fuzzed pattern once: a mapping
    // whose template is rejected is rejected before its regex is compiled, and is then read
    // again without a template to reach the regex.
    let mut item = json!({
        "checkName": "c",
        "ssmAutomationDocument": "AWS-DisablePublicAccessForSecurityGroup",
        "regexPattern": pattern,
        "automationStatus": true,
        "automationParameters": parsed_json.clone().unwrap_or_else(|| Value::String(template_text.to_string())),
    });
    let mapping = Mapping::from_json(&item).or_else(|error| {
        if error.field == "automationParameters" {
            item["automationParameters"] = Value::Null;
            Mapping::from_json(&item)
        } else {
            Err(error)
        }
    });
    if let Ok(mapping) = mapping {
        let id = mapping.regex.as_ref().and_then(|r| r.extract(&resource));
        let _ = mapping.parameters.render(TemplateInput {
            finding: &finding,
            resource_id: id,
        });
    }
    // The DynamoDB typed-JSON reader, on the template; and when the first field is a whole
    // mapping item (it names a checkName), the item itself, typed or plain.
    if let Some(parsed) = &parsed_json {
        let _ = plain_json(parsed);
        if parsed.get("checkName").is_some() {
            if let Ok(mapping) = Mapping::from_any_json(parsed) {
                let id = mapping.regex.as_ref().and_then(|r| r.extract(&resource));
                let _ = mapping.parameters.render(TemplateInput {
                    finding: &finding,
                    resource_id: id,
                });
            }
        }
    }

    // The fixed template through a mapping whose regex captures the whole resource: the
    // resource, whatever it holds, lands in P untouched.
    if let Some(whole) = FIXED_MAPPING
        .regex
        .as_ref()
        .and_then(|regex| regex.extract(&resource))
    {
        assert_no_injection(&FIXED_MAPPING.parameters, &finding, whole);
    }
});
