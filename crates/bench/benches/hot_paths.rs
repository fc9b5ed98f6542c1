//! Micro benchmarks of the pure hot paths: a Trusted Advisor event into a finding, the
//! lifecycle's decision for a new episode, and a mapping's regex and parameter template filled
//! for a finding. `cargo bench -p tarem-bench` (scripts/bench runs it with `--micro`).

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::Value;
use std::collections::BTreeMap;
use std::hint::black_box;
use tarem_shared::finding::{TrackingRules, finding_from_event, parse_time};
use tarem_shared::lifecycle::{Facts, Happening, Lifecycle, LifecycleConfig};
use tarem_shared::mapping::Mapping;
use tarem_shared::mapping::template::TemplateInput;

fn repository_file(path: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn hot_paths(c: &mut Criterion) {
    let event = repository_file("events/01-security-group-port-22-open.json");
    let mapping = Mapping::from_any_json(&repository_file("events/mappings.json")[0]).unwrap();
    let said = event["time"].as_str().and_then(parse_time).unwrap();
    let rules = TrackingRules::default();
    let finding = finding_from_event(&event, said, &rules).unwrap();

    c.bench_function("parse a Trusted Advisor event into a finding", |b| {
        b.iter(|| finding_from_event(black_box(&event), said, &rules).unwrap())
    });

    let mut config = LifecycleConfig::default();
    config.safety.allowed_documents = vec![mapping.document.clone()];
    config.safety.allowed_roles = vec!["arn:aws:iam::123456789012:role/TaremAutomationRole".into()];
    let lifecycle = Lifecycle {
        config: &config,
        now: said,
    };
    let found = Ok(mapping.clone());
    let tags = BTreeMap::new();
    let facts = Facts {
        mapping: Some(Some(&found)),
        tags: Some(&tags),
        starts_allowed: Some(true),
        ops_items_this_month: Some(0),
        breaker_queue: None,
        execution: None,
        resource_busy: None,
        ops_item: None,
        member: Some(&tarem_shared::ports::MemberStanding::Ready),
        member_gate: Some(None),
        units: Some(&[]),
    };
    let decision = lifecycle
        .decide(None, Happening::Tracked(&finding), &facts)
        .unwrap();
    assert!(
        decision.start.is_some(),
        "the bench decides a start: {}",
        decision.why
    );
    c.bench_function("decide a new episode's start", |b| {
        b.iter(|| {
            lifecycle
                .decide(None, Happening::Tracked(black_box(&finding)), &facts)
                .unwrap()
        })
    });

    c.bench_function("fill a mapping's regex and parameters", |b| {
        b.iter(|| {
            let finding = black_box(&finding);
            let resource_id = mapping
                .regex
                .as_ref()
                .and_then(|regex| regex.extract(&finding.resource));
            mapping
                .parameters
                .render(TemplateInput {
                    finding,
                    resource_id,
                })
                .unwrap()
        })
    });
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
