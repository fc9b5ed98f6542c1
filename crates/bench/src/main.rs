//! `scripts/bench`: each release function binary driven through a local Lambda Runtime API
//! (HTTP/1.1 keep-alive, as the real one) on a stream of generated events, DynamoDB served by
//! moto through a counting proxy and the SSM, Tagging and SQS calls answered by a local stub.
//!
//! The loop runs as in AWS: check-tracker writes N Red findings of a mapped check; the tracker
//! table's stream (read back from moto) goes to the results handler in batches of 10, each record
//! opening an episode, an OpsItem and a start; each start's Success goes to the automation
//! execution handler. Per function it prints init (spawn → first `/next`, the median of 7 cold
//! starts), CPU per event after init (utime + stime from `/proc`), peak RSS, calls per event to
//! each service and the binary's size. Numbers, not pass/fail.
//!
//! Usage: `tarem-bench [--events N] [--functions DIR] [--log-level LEVEL]` with `MOTO_ENDPOINT`
//! set (scripts/bench starts moto and builds the release binaries). The functions log at INFO, as
//! deployed; `--log-level ERROR` shows what the log lines cost.

mod http;

use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use http::{Counts, Message, counting_proxy, json_stub};
use lambda_harness::{Function, Reply, RuntimeApi};
use moto_harness::{EXECUTION_KEYS, MAPPING_KEYS, TRACKER_KEYS, create_table};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tarem_shared::automation_event::status_event;
use tarem_shared::aws::dynamodb::DynamoMappings;
use tarem_shared::finding::format_time;
use tarem_shared::mapping::plain_json;
use tarem_shared::ports::MappingStore;

const ACCOUNT: &str = "123456789012";
const REGION: &str = "eu-west-1";
const BATCH: usize = 10;
const ROLE: &str = "arn:aws:iam::123456789012:role/TaremAutomationRole";

struct Measured {
    function: &'static str,
    unit: &'static str,
    units: usize,
    init: Duration,
    cpu_micros_per_unit: f64,
    peak_rss_kb: u64,
    calls: BTreeMap<String, u64>,
    binary_bytes: u64,
    failures: usize,
}

fn main() {
    let mut events = 2000usize;
    let mut functions = "target/release".to_owned();
    let mut log_level = "INFO".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--events" => {
                events = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--events N")
            }
            "--functions" => functions = args.next().expect("--functions DIR"),
            "--log-level" => log_level = args.next().expect("--log-level LEVEL"),
            other => panic!(
                "unknown argument {other}; usage: tarem-bench [--events N] [--functions DIR] [--log-level LEVEL]"
            ),
        }
    }
    let moto = moto_harness::endpoint();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sdk = runtime.block_on(moto_harness::sdk_loader().load());
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let suffix = std::process::id();
    let tracker_table = format!("bench-tracker-{suffix}");
    let mapping_table = format!("bench-mappings-{suffix}");
    let execution_table = format!("bench-executions-{suffix}");
    let stream_arn = runtime.block_on(async {
        let arn = create_table(&dynamodb, &tracker_table, TRACKER_KEYS, true).await;
        create_table(&dynamodb, &mapping_table, MAPPING_KEYS, false).await;
        create_table(&dynamodb, &execution_table, EXECUTION_KEYS, false).await;
        let mapping = repository_json("events/mappings.json")[0].clone();
        DynamoMappings::new(dynamodb.clone(), &mapping_table)
            .put(&plain_json(&mapping))
            .await
            .expect("the mapping is written");
        arn.expect("the tracker table has a stream")
    });

    let dynamodb_calls = Counts::default();
    let stub_calls = Counts::default();
    let started: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let proxy = counting_proxy(&moto, dynamodb_calls.clone()).unwrap();
    let stub = json_stub(stub_answer(started.clone()), stub_calls.clone()).unwrap();
    let common: Vec<(&str, String)> = vec![
        ("AWS_ENDPOINT_URL", stub.clone()),
        ("AWS_ENDPOINT_URL_DYNAMODB", proxy.clone()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
        ("AWS_LAMBDA_LOG_LEVEL", log_level.clone()),
        ("METRICS_NAMESPACE", "tarem".into()),
        ("METRICS_STACK", "bench".into()),
        ("PARKING_QUEUE_URL", format!("{stub}/{ACCOUNT}/parked")),
        ("TRACKER_TABLE", tracker_table.clone()),
        ("MAPPING_TABLE", mapping_table.clone()),
        ("EXECUTION_TABLE", execution_table.clone()),
        ("GOVERNED_ACCOUNTS", ACCOUNT.into()),
        ("HOME_ACCOUNT", ACCOUNT.into()),
    ];
    let counters = [("DynamoDB", &dynamodb_calls), ("stub", &stub_calls)];
    let mut results = vec![];

    // check-tracker: one Trusted Advisor event per invocation, each a new Red finding.
    let now = chrono::Utc::now();
    let template = repository_json("events/01-security-group-port-22-open.json");
    let ta_events: Vec<Value> = (0..events)
        .map(|n| {
            let mut event = template.clone();
            let arn = format!("arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-{n:017x}");
            event["time"] = json!(format_time(now));
            event["id"] = json!(format!("00000000-0000-4000-8000-{n:012}"));
            let detail = &mut event["detail"];
            detail["resource_id"] = json!(arn);
            detail["check-item-detail"]["Resource"] = json!(arn);
            detail["check-item-detail"]["Region"] = json!(REGION);
            detail["check-item-detail"]["Last Updated Time"] =
                json!(format_time(now - chrono::Duration::minutes(2)));
            event
        })
        .collect();
    results.push(measure(
        "check-tracker",
        "event",
        &functions,
        &common,
        &[],
        &ta_events,
        |_| 1,
        &counters,
    ));

    // The results handler: the stream check-tracker wrote, as Lambda delivers it.
    let records = runtime.block_on(stream_records(&sdk, &stream_arn));
    assert_eq!(
        records.len(),
        events,
        "one stream record per tracked finding"
    );
    let batches: Vec<Value> = records
        .chunks(BATCH)
        .map(|chunk| json!({ "Records": chunk }))
        .collect();
    results.push(measure(
        "results-handler",
        "record with a start",
        &functions,
        &common,
        &[
            (
                "ALLOWED_AUTOMATION_DOCUMENTS",
                "AWS-DisablePublicAccessForSecurityGroup",
            ),
            ("ALLOWED_AUTOMATION_ROLES", ROLE),
            ("KILL_SWITCH_PARAMETER", "/bench/automation-starts"),
            // The bench counts CPU, not the pacing between starts or the safety caps.
            ("START_INTERVAL_MS", "0"),
            ("BREAKER_LIMIT", "100000000"),
            ("MONTHLY_OPS_ITEM_BUDGET", "100000000"),
        ],
        &batches,
        |batch| batch["Records"].as_array().map_or(0, Vec::len),
        &counters,
    ));
    let started = started.lock().unwrap().clone();
    assert_eq!(started.len(), events, "one start per flagged finding");

    // The automation execution handler: each start's Success.
    let outcomes: Vec<Value> = started
        .iter()
        .map(|(id, region, document)| {
            status_event(ACCOUNT, region, id, document, "Success", chrono::Utc::now())
        })
        .collect();
    results.push(measure(
        "automation-execution-handler",
        "status event",
        &functions,
        &common,
        &[],
        &outcomes,
        |_| 1,
        &counters,
    ));
    report(&results, events, &log_level);
}

fn repository_json(path: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Every record of the stream's shards, oldest first, in the Lambda event shape.
async fn stream_records(sdk: &aws_config::SdkConfig, stream_arn: &str) -> Vec<Value> {
    let client = aws_sdk_dynamodbstreams::Client::new(sdk);
    let description = client
        .describe_stream()
        .stream_arn(stream_arn)
        .send()
        .await
        .expect("moto describes the stream");
    let mut records = vec![];
    let mut seen = std::collections::HashMap::new();
    for shard in description
        .stream_description()
        .map_or(&[][..], |d| d.shards())
    {
        let mut iterator = client
            .get_shard_iterator()
            .stream_arn(stream_arn)
            .shard_id(shard.shard_id().unwrap_or_default())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("a shard iterator")
            .shard_iterator;
        while let Some(current) = iterator {
            let page = client
                .get_records()
                .shard_iterator(current)
                .limit(1000)
                .send()
                .await
                .expect("the stream's records");
            if page.records().is_empty() {
                break;
            }
            // moto emits two records for an UpdateItem that creates an item (AWS emits one):
            // keep the last record of each item.
            for record in page.records() {
                if let Some(record) =
                    tarem::replay_aws::lambda_record(record, stream_arn, "us-east-1")
                {
                    let keys = &record["dynamodb"]["Keys"];
                    let key = format!("{}|{}", keys["hashKey"]["S"], keys["resource"]["S"]);
                    if let Some(previous) = seen.insert(key, records.len()) {
                        records[previous] = Value::Null;
                    }
                    records.push(record);
                }
            }
            iterator = page.next_shard_iterator;
        }
    }
    records.retain(|r| !r.is_null());
    records
}

/// The answers AWS would give, with the executions started remembered.
fn stub_answer(
    started: Arc<Mutex<Vec<(String, String, String)>>>,
) -> impl Fn(&str, &Message) -> Value + Send + Sync + 'static {
    move |target, request| {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        match target.rsplit('.').next().unwrap_or_default() {
            "StartAutomationExecution" => {
                // The region is the credential scope's: Credential=KEY/DATE/REGION/ssm/aws4_request.
                let region = request
                    .header("authorization")
                    .and_then(|a| a.split("Credential=").nth(1))
                    .and_then(|c| c.split('/').nth(2))
                    .unwrap_or("us-east-1")
                    .to_owned();
                let mut started = started.lock().unwrap();
                let id = format!("00000000-0000-4000-9000-{:012}", started.len() + 1);
                let document = body["DocumentName"].as_str().unwrap_or_default().to_owned();
                started.push((id.clone(), region, document));
                json!({ "AutomationExecutionId": id })
            }
            "CreateOpsItem" => {
                let n = started.lock().unwrap().len();
                json!({ "OpsItemId": format!("oi-{n:012x}"), "OpsItemArn": "arn:aws:ssm:us-east-1:123456789012:opsitem/oi-0" })
            }
            "GetParameter" => json!({ "Parameter": {
                "Name": body["Name"], "Type": "String", "Value": "on", "Version": 1
            }}),
            "DescribeOpsItems" => json!({ "OpsItemSummaries": [] }),
            "GetResources" => json!({ "ResourceTagMappingList": [] }),
            _ => json!({}),
        }
    }
}

fn snapshot(counters: &[(&str, &Counts)]) -> BTreeMap<String, u64> {
    counters
        .iter()
        .flat_map(|(service, counts)| {
            counts
                .lock()
                .unwrap()
                .iter()
                .map(|(op, n)| (format!("{service} {op}"), *n))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Cold starts per function; the init figure is their median.
const INIT_SAMPLES: usize = 7;

#[allow(clippy::too_many_arguments)]
fn measure(
    function: &'static str,
    unit: &'static str,
    directory: &str,
    common: &[(&str, String)],
    extra: &[(&str, &str)],
    invocations: &[Value],
    units_of: impl Fn(&Value) -> usize,
    counters: &[(&str, &Counts)],
) -> Measured {
    let binary = format!("{directory}/{function}");
    let binary_bytes = std::fs::metadata(&binary)
        .unwrap_or_else(|e| panic!("{binary}: {e}; scripts/bench builds it"))
        .len();
    let mut env: Vec<(&str, &str)> = common.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.extend_from_slice(extra);
    // Init varies from spawn to spawn (page cache, the other processes on the machine): the
    // median of a few cold starts, the last of which then serves the invocations.
    let mut inits = vec![];
    let (api, mut process) = loop {
        let api = RuntimeApi::start().unwrap();
        let mut process = Function::spawn(&binary, &api, &env).unwrap();
        let ready = api
            .wait_ready(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{function}: {e}"));
        inits.push(ready - process.spawned_at);
        if inits.len() == INIT_SAMPLES {
            break (api, process);
        }
        process.stop();
    };
    inits.sort();
    let init = inits[INIT_SAMPLES / 2];
    let pid = process.pid();
    let before = snapshot(counters);
    let cpu_before = tarem_bench::cpu_micros(pid);
    let connections_before = api.connections();
    let mut units = 0;
    let mut failures = 0;
    for invocation in invocations {
        units += units_of(invocation);
        match api.invoke(invocation, Duration::from_secs(120)) {
            Ok(Reply::Response(reply)) => {
                failures += reply["batchItemFailures"].as_array().map_or(0, Vec::len);
            }
            Ok(Reply::Error(error)) => panic!("{function} failed: {error}"),
            Err(error) => panic!("{function}: {error}"),
        }
    }
    let cpu = tarem_bench::cpu_micros(pid) - cpu_before;
    let peak_rss_kb = tarem_bench::memory_kb(pid, "VmHWM");
    // New connections to the Runtime API after init: each is a connect and a close of CPU.
    let runtime_connections = api.connections() - connections_before;
    process.stop();
    let after = snapshot(counters);
    let mut calls: BTreeMap<String, u64> = after
        .into_iter()
        .map(|(op, n)| (op.clone(), n - before.get(&op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    calls.insert("Runtime API (connections)".into(), runtime_connections);
    Measured {
        function,
        unit,
        units,
        init,
        cpu_micros_per_unit: cpu as f64 / units.max(1) as f64,
        peak_rss_kb,
        calls,
        binary_bytes,
        failures,
    }
}

fn report(results: &[Measured], events: usize, log_level: &str) {
    println!(
        "tarem-bench: {events} findings through the loop (release binaries, moto, SSM stub; functions log at {log_level})\n"
    );
    for m in results {
        println!("{} ({} {}s)", m.function, m.units, m.unit);
        println!(
            "  init (median of {INIT_SAMPLES}) {:.1} ms",
            m.init.as_secs_f64() * 1000.0
        );
        println!(
            "  CPU per {:<10} {:.0} µs",
            m.unit.split(' ').next().unwrap_or(m.unit),
            m.cpu_micros_per_unit
        );
        println!(
            "  peak RSS           {:.1} MB",
            m.peak_rss_kb as f64 / 1024.0
        );
        println!(
            "  binary             {:.1} MB",
            m.binary_bytes as f64 / 1_048_576.0
        );
        if m.failures > 0 {
            println!("  batch item failures {}", m.failures);
        }
        for (call, n) in &m.calls {
            println!(
                "  {:<40} {:.2} per {}",
                call,
                *n as f64 / m.units.max(1) as f64,
                m.unit
            );
        }
        println!();
    }
}
