//! The metrics the functions emit, as CloudWatch reads them: Embedded Metric Format documents,
//! captured from the recorder the functions install and parsed back, for the scenarios an
//! operator watches (a start, a hold, a failure, a fix), delivered once and delivered twice.
//!
//! One test: the recorder is process-wide, so this binary holds nothing else.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use tarem_e2e::*;
use tarem_shared::telemetry::{Emf, METRICS};

/// Every metric value in the documents, summed per (name, extra dimension); time histograms as
/// their sample counts.
fn totals(documents: &[Value]) -> BTreeMap<(String, Option<String>), f64> {
    let mut totals = BTreeMap::new();
    for document in documents {
        let directive = &document["_aws"]["CloudWatchMetrics"][0];
        let dimensions: Vec<&str> = directive["Dimensions"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        let extra = dimensions
            .iter()
            .find(|d| **d != "Stack")
            .map(|d| format!("{d}={}", document[*d].as_str().unwrap()));
        for metric in directive["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap().to_owned();
            let value = match &document[&name] {
                Value::Array(samples) => samples.len() as f64,
                other => other.as_f64().unwrap(),
            };
            *totals.entry((name, extra.clone())).or_default() += value;
        }
    }
    totals
}

/// The operator's scenarios (a start confirmed fixed, a start that fails, a hold, an unusable
/// event) through the loop; with `duplicated`, every delivery happens twice, as EventBridge and
/// the stream are allowed to. Returns the EMF documents the recorder wrote.
async fn scenario(emf: &Emf, duplicated: bool) -> Vec<Value> {
    let (local, _) = local_loop();
    local
        .mappings
        .put(&json!({
            "checkName": EC2_CHECK, "ssmAutomationDocument": "AWS-StopEC2Instance",
            "automationParameters": {"InstanceId": ["$resourceId"]},
            "regexPattern": "(i-[0-9a-f]+)", "mode": "approval"
        }))
        .unwrap();
    let mut pipeline = Pipeline::new(&local);
    pipeline.duplicate_batches = duplicated;
    pipeline.duplicate_events = duplicated;
    // A start that succeeds and is confirmed fixed.
    pipeline
        .deliver_event(&ta_event(SG_CHECK, &sg_arn("sg-1"), "Red", at(0)))
        .await;
    pipeline.finish("Success").await;
    pipeline
        .deliver_event(&ta_event(SG_CHECK, &sg_arn("sg-1"), "Green", at(600)))
        .await;
    // A start that fails.
    pipeline
        .deliver_event(&ta_event(SG_CHECK, &sg_arn("sg-2"), "Red", at(0)))
        .await;
    pipeline.finish("Failed").await;
    // A hold: the instance check waits for approval.
    pipeline
        .deliver_event(&ta_event(EC2_CHECK, &instance_arn("i-0abc"), "Red", at(0)))
        .await;
    // An event that cannot become a finding (delivered once: twice would be parked twice).
    pipeline.duplicate_events = false;
    pipeline
        .deliver_event(&json!({"source": "aws.trustedadvisor", "detail-type": "Trusted Advisor Check Item Refresh Notification"}))
        .await;

    let mut out = vec![];
    emf.flush_to(&mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is one JSON document"))
        .collect()
}

#[tokio::test]
async fn the_loop_is_counted_in_valid_emf_once_however_often_it_is_delivered() {
    let emf = Emf::install().expect("the first recorder of this process");
    for duplicated in [false, true] {
        let documents = scenario(&emf, duplicated).await;
        check_documents(&documents);
        let totals = totals(&documents);
        let total = |name: &str, extra: Option<&str>| {
            totals
                .get(&(name.to_owned(), extra.map(str::to_owned)))
                .copied()
                .unwrap_or(0.0)
        };
        let said = format!("duplicated: {duplicated}; {totals:?}");
        assert_eq!(total("FindingsTracked", None), 4.0, "{said}");
        // Each second delivery of a Trusted Advisor event is older-or-equal: stale, not tracked.
        let stale = if duplicated { 4.0 } else { 0.0 };
        assert_eq!(total("FindingsStale", None), stale, "{said}");
        assert_eq!(total("FindingsRejected", None), 1.0, "{said}");
        assert_eq!(
            total("RecordsParked", Some("Function=check-tracker")),
            1.0,
            "{said}"
        );
        assert_eq!(total("EpisodesOpened", None), 3.0, "{said}");
        assert_eq!(total("AutomationsStarted", None), 2.0, "{said}");
        assert_eq!(
            total("TimeToStart", None),
            2.0,
            "one sample per first start; {said}"
        );
        assert_eq!(total("ExecutionsSucceeded", None), 1.0, "{said}");
        assert_eq!(total("ExecutionsFailed", None), 1.0, "{said}");
        assert_eq!(total("StartsHeld", Some("Control=approval")), 1.0, "{said}");
        assert_eq!(total("EpisodesFixed", None), 1.0, "{said}");
        assert_eq!(total("TimeToFix", None), 1.0, "{said}");
        // The failed start waits for its cool-down before the next attempt.
        assert_eq!(
            total("StartsHeld", Some("Control=cool-down")),
            1.0,
            "{said}"
        );
    }
}

/// Every document is valid EMF: the namespace, a timestamp, its dimensions present, and only
/// documented metrics with their documented units.
fn check_documents(documents: &[Value]) {
    assert!(!documents.is_empty());
    let known: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
    for document in documents {
        let directive = &document["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "tarem");
        assert!(document["_aws"]["Timestamp"].as_u64().is_some());
        for dimension in directive["Dimensions"][0].as_array().unwrap() {
            assert!(
                document[dimension.as_str().unwrap()].is_string(),
                "{document}"
            );
        }
        for metric in directive["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(known.contains(&name), "an undocumented metric {name}");
            let unit = METRICS.iter().find(|m| m.name == name).unwrap().unit;
            assert_eq!(metric["Unit"], unit, "{name}");
        }
    }
}
