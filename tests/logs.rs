//! The log lines one CloudWatch Logs Insights query follows (docs/operations.md, "Follow one
//! finding"): every line of a finding's work, in all three functions, carries its key as
//! `span.findingKey`; once the lifecycle has read the episode, the episode and the attempt too.
//! The lines are captured with the JSON layout the functions use in Lambda.

use serde_json::Value;
use std::sync::{Arc, Mutex};
use tarem_e2e::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON document per line"))
            .collect()
    }
}

#[tokio::test]
async fn one_query_follows_a_finding_through_the_three_functions() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (local, clock) = local_loop();
    let mut pipeline = Pipeline::new(&local);
    let resource = sg_arn("sg-1");
    // Two attempts (the first fails), then the fix; a second finding alongside.
    pipeline
        .deliver_event(&ta_event(SG_CHECK, &resource, "Red", at(0)))
        .await;
    pipeline.finish("Failed").await;
    pipeline
        .deliver_event(&ta_event(SG_CHECK, &sg_arn("sg-2"), "Red", at(10)))
        .await;
    // The cool-down over, the episode sweep starts the second attempt.
    clock.advance(chrono::Duration::hours(2));
    local.sweep_episodes().await.unwrap();
    pipeline.finish("Success").await;
    pipeline
        .deliver_event(&ta_event(SG_CHECK, &resource, "Green", at(3 * 3600)))
        .await;

    let lines = captured.lines();
    let key = lines
        .iter()
        .find(|l| l["fields"]["message"] == "tracked" && l["span"]["resource"] == resource)
        .map(|l| l["span"]["findingKey"].as_str().unwrap().to_owned())
        .expect("check-tracker's line names the finding's key");
    // What the documented query selects.
    let followed: Vec<&Value> = lines
        .iter()
        .filter(|l| l["span"]["findingKey"] == key.as_str())
        .collect();
    let said = |message: &str| {
        followed
            .iter()
            .filter(|l| {
                l["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(message))
            })
            .collect::<Vec<_>>()
    };
    assert!(!said("tracked").is_empty(), "check-tracker: {followed:#?}");
    let recorded = said("automation status recorded");
    assert_eq!(recorded.len(), 2, "both outcomes: {followed:#?}");
    let attempts: Vec<&Value> = recorded.iter().map(|l| &l["span"]["attempt"]).collect();
    assert_eq!(attempts, [1, 2], "{recorded:#?}");
    // Each says what the outcome did to the episode.
    let why = recorded[0]["fields"]["why"].as_str().unwrap_or_default();
    assert!(why.contains("attempt 1"), "{recorded:#?}");
    let episode = &recorded[0]["span"]["episode"];
    assert!(episode.is_string(), "{recorded:#?}");
    // The results handler's lines (a record and the sweep's retry) carry the same episode.
    let decided: Vec<&&Value> = followed
        .iter()
        .filter(|l| l["span"]["name"] == "finding" && !l["span"]["episode"].is_null())
        .collect();
    assert!(decided.len() >= 2, "{followed:#?}");
    assert!(decided.iter().all(|l| &l["span"]["episode"] == episode));
    // Every line of tarem's own work on a finding is selected by its key: none is lost to the
    // query, and none of the other finding's lines is.
    for line in &lines {
        let span = &line["span"];
        if span["name"] == "finding" || span["name"] == "execution" {
            assert!(
                span["findingKey"].is_string(),
                "a line without its key: {line}"
            );
        }
        if span["resource"] == sg_arn("sg-2").as_str() {
            assert_ne!(span["findingKey"], key.as_str());
        }
    }
}
