//! The operator's first hour, as a new user meets it (issue "The operator's first hour"): each
//! test is one of the gaps it found, run as the user ran it.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::{Listener, MotoStack, text};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tarem` in the repository, with no AWS credentials, profile or region anywhere: what a
/// machine before its first deploy has.
fn without_aws() -> Command {
    let home = tempfile::tempdir().unwrap().keep();
    let mut command = Command::new(env!("CARGO_BIN_EXE_tarem"));
    command
        .current_dir(repo())
        .env("HOME", &home)
        .env("AWS_CONFIG_FILE", home.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("TAREM_STACK");
    command
}

fn run(command: &mut Command) -> Output {
    command.output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Item 1: `tarem plan --pack NAME events/pack/<entry>.json` shows a pack entry on its sample event
/// before any deploy: no table, no credentials, the placeholder role named.
#[test]
fn plan_and_simulate_play_a_built_in_pack_without_aws() {
    let output = run(without_aws().args([
        "plan",
        "--pack",
        "security",
        "events/pack/sg-specific-ports-classic.json",
    ]));
    assert!(output.status.success(), "{}", text(&output));
    let said = stdout(&output);
    assert!(
        said.contains("mappings   the security pack, AutomationAssumeRole arn:aws:iam::123456789012:role/PLACEHOLDER-pack-role (a placeholder"),
        "{said}"
    );
    assert!(
        said.contains("AWS-DisablePublicAccessForSecurityGroup"),
        "{said}"
    );

    // Every sample event of the packs finds its entry when all packs are played.
    let every =
        run(without_aws().args(["plan", "--pack", "all", "--output", "json", "events/pack/"]));
    assert!(every.status.success(), "{}", text(&every));
    let plans: Vec<Value> = serde_json::from_slice(&every.stdout).unwrap();
    assert!(plans.len() >= 28, "{}", plans.len());
    for plan in &plans {
        assert!(
            plan["mapping"]["document"].is_string(),
            "{} has no pack entry: {plan}",
            plan["event"]
        );
    }

    let simulated = run(without_aws().args(["simulate", "--pack", "all", "events/pack/"]));
    assert!(simulated.status.success(), "{}", text(&simulated));
    assert!(
        stdout(&simulated).starts_with("mappings   the security, reliability, cost packs"),
        "{}",
        stdout(&simulated)
    );
}

/// Item 2: The mapping file beside an event file is used as the one beside a folder's events, and
/// plan says where its mappings came from.
#[test]
fn a_mapping_file_beside_an_event_file_is_used() {
    let planned = run(without_aws().args(["plan", "events/01-security-group-port-22-open.json"]));
    assert!(planned.status.success(), "{}", text(&planned));
    let said = stdout(&planned);
    assert!(
        said.starts_with("mappings   events/mappings.json (found beside the events)"),
        "{said}"
    );
    assert!(
        said.contains("would      starting AWS-DisablePublicAccessForSecurityGroup"),
        "{said}"
    );
    let simulated = run(without_aws().args([
        "simulate",
        "events/01-security-group-port-22-open.json",
        "--outcome",
        "AWS-DisablePublicAccessForSecurityGroup=Failed",
    ]));
    assert!(simulated.status.success(), "{}", text(&simulated));
    assert!(
        stdout(&simulated).contains("automations 3 started, 0 succeeded, 3 failed"),
        "{}",
        stdout(&simulated)
    );
}

/// Item 3: `--timeout N` bounds the whole request, retries included: an endpoint that never
/// answers gets one attempt in N seconds, not three attempts of N each.
#[test]
fn the_timeout_bounds_the_whole_request() {
    let silent = Listener::start(None);
    let output = run(without_aws()
        .args([
            "mapping",
            "list",
            "--timeout",
            "2",
            "--endpoint-url",
            &silent.url,
        ])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test"));
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert_eq!(
        silent.heads().len(),
        1,
        "one attempt within --timeout: {:?}",
        silent.heads()
    );
}

/// Item 4: An unknown --profile on a machine without any AWS config is a usage error (2), as
/// documented, not an AWS failure.
#[test]
fn an_unknown_profile_without_any_config_is_a_usage_error() {
    let output = run(without_aws().args(["mapping", "list", "--profile", "nosuch"]));
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("--profile nosuch: no such profile"),
        "{}",
        text(&output)
    );
}

/// Item 5: No credentials at all: said as such, with what to do, not as a network failure.
#[test]
fn missing_credentials_are_said_as_such() {
    let output = run(without_aws().args(["mapping", "list"]));
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let said = text(&output);
    assert!(said.contains("no AWS credentials"), "{said}");
    assert!(said.contains("aws sso login"), "{said}");
    assert!(
        !said.contains("check the endpoint and the network"),
        "{said}"
    );
}

/// Item 6: The region trap: with the profile's region elsewhere, the CLI still works where the
/// stack lives (us-east-1) unless --region says otherwise.
#[test]
fn the_cli_works_in_us_east_1_whatever_the_environment_says() {
    let endpoint = Listener::start(Some(r#"{"Items":[],"Count":0,"ScannedCount":0}"#));
    let output = run(without_aws()
        .args(["mapping", "list", "--endpoint-url", &endpoint.url])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_DEFAULT_REGION", "eu-west-1"));
    assert!(output.status.success(), "{}", text(&output));
    let heads = endpoint.heads();
    assert!(
        heads[0].contains("/us-east-1/dynamodb/aws4_request"),
        "signed for us-east-1: {heads:?}"
    );
    let elsewhere = Listener::start(Some(r#"{"Items":[],"Count":0,"ScannedCount":0}"#));
    let output = run(without_aws()
        .args([
            "mapping",
            "list",
            "--region",
            "eu-west-1",
            "--endpoint-url",
            &elsewhere.url,
        ])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test"));
    assert!(output.status.success(), "{}", text(&output));
    assert!(elsewhere.heads()[0].contains("/eu-west-1/dynamodb/aws4_request"));
}

/// Item 7: plan knows the deployed stack's allowlists; its help names the stack's real parameters;
/// an automated mapping without a role is refused before it is written.
#[tokio::test]
async fn plan_and_mapping_add_say_what_the_deployed_stack_would_do() {
    let stack = MotoStack::deploy(&[("AllowedAutomationDocuments", "AWS-StopEC2Instance")]).await;
    // The walkthrough's mapping, on the deployed stack whose allowlist does not have its
    // document: "would start" becomes the refusal.
    let planned = stack.tarem(&[
        "plan",
        "--mappings",
        "events/mappings.json",
        "events/01-security-group-port-22-open.json",
    ]);
    assert!(planned.status.success(), "{}", text(&planned));
    let said = stdout(&planned);
    assert!(
        said.contains(&format!("settings   stack {} in us-east-1", stack.name)),
        "{said}"
    );
    assert!(
        said.contains(
            "is not one of the stack's allowed automation documents (AWS-StopEC2Instance)"
        ),
        "{said}"
    );
    assert!(!said.contains("would      starting"), "{said}");

    let help = run(without_aws().args(["plan", "--help"]));
    assert!(
        stdout(&help).contains("AutomationRoleArns"),
        "{}",
        stdout(&help)
    );
    assert!(!stdout(&help).contains("AllowedAutomationRoles"));

    // Automated without an AutomationAssumeRole would always be held: refused, nothing written.
    let added = stack.tarem(&[
        "mapping",
        "add",
        "--check-name",
        "Amazon EC2 instances stopped",
        "--document",
        "AWS-StopEC2Instance",
        "--param",
        "InstanceId=$resourceId",
        "--regex",
        "(i-[0-9a-f]+)",
        "--mode",
        "automated",
        "--offline",
    ]);
    assert_eq!(added.status.code(), Some(1), "{}", text(&added));
    assert!(
        text(&added).contains("needs the mapping to pass an AutomationAssumeRole"),
        "{}",
        text(&added)
    );
    let listed = stack.tarem(&["mapping", "list", "--output", "json"]);
    assert!(listed.status.success(), "{}", text(&listed));
    assert_eq!(
        serde_json::from_slice::<Value>(&listed.stdout).unwrap(),
        serde_json::json!([]),
        "nothing written to the stack's mapping table"
    );
    // A document the deployed stack does not allow is refused for automated mode too.
    let refused = stack.tarem(&[
        "mapping",
        "add",
        "--check-name",
        "Security groups should not allow unrestricted access to ports with high risk",
        "--document",
        "AWS-DisablePublicAccessForSecurityGroup",
        "--param",
        "GroupId=$resourceId",
        "--param",
        "AutomationAssumeRole=arn:aws:iam::123456789012:role/tarem-example",
        "--regex",
        "(sg-\\w+)",
        "--mode",
        "automated",
        "--offline",
    ]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("not one of the stack's allowed automation documents"),
        "{}",
        text(&refused)
    );
}

/// Item 8: status reads the stack's Tuning and kill switch; a wrong --stack is said, not shown as
/// "kill switch on"; dlq replay finds a queue by its short name.
#[tokio::test]
async fn status_and_dlq_replay_find_the_stack() {
    let stack = MotoStack::deploy(&[("Tuning", "BreakerLimit=7, MonthlyOpsItemBudget=123")]).await;
    let config = moto_harness::sdk_loader().load().await;
    aws_sdk_ssm::Client::new(&config)
        .put_parameter()
        .name(&stack.kill_switch)
        .value("off")
        .overwrite(true)
        .send()
        .await
        .unwrap();
    let status = stack.tarem(&["status", "--output", "json"]);
    assert!(status.status.success(), "{}", text(&status));
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["killSwitch"], "off: no runbook starts", "{status}");
    assert_eq!(status["opsItems"]["budget"], 123, "{status}");

    let wrong = Command::new(env!("CARGO_BIN_EXE_tarem"))
        .args(["status", "--stack", "no-such-stack"])
        .env("AWS_ENDPOINT_URL", support::endpoint())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(2), "{}", text(&wrong));
    assert!(
        text(&wrong).contains("no stack \"no-such-stack\" in us-east-1"),
        "{}",
        text(&wrong)
    );
    assert!(!text(&wrong).contains("kill switch"));

    let sqs = aws_sdk_sqs::Client::new(&config);
    let url = sqs
        .get_queue_url()
        .queue_name(format!("{}-CheckTrackerDeadLetterQueue", stack.name))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    sqs.send_message()
        .queue_url(&url)
        .message_body(r#"{"source":"aws.trustedadvisor","detail-type":"Trusted Advisor Check Item Refresh Notification","detail":{}}"#)
        .send()
        .await
        .unwrap();
    let replay = stack.tarem(&["dlq", "replay", "check-tracker", "--dry-run"]);
    assert!(replay.status.success(), "{}", text(&replay));
    assert!(
        text(&replay).contains("1 message (dry run)"),
        "{}",
        text(&replay)
    );
    let unknown = stack.tarem(&["dlq", "replay", "tracker", "--dry-run"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        text(&unknown).contains("tracker-stream, check-tracker, execution-events, raw-event-log"),
        "{}",
        text(&unknown)
    );
}

/// Item 9: pack-policy --installed with no pack entry is not a policy (exit 1); without --account the
/// trust policy names the caller's account (STS), never a made-up one.
#[tokio::test]
async fn pack_policy_is_a_policy_for_the_callers_account_or_nothing() {
    let stack = MotoStack::deploy(&[]).await;
    let empty = stack.tarem(&["mapping", "pack-policy", "--installed"]);
    assert_eq!(empty.status.code(), Some(1), "{}", text(&empty));
    assert!(
        text(&empty).contains("holds no entry of"),
        "{}",
        text(&empty)
    );
    let policy = stack.tarem(&["mapping", "pack-policy", "cost"]);
    assert!(policy.status.success(), "{}", text(&policy));
    let policy: Value = serde_json::from_slice(&policy.stdout).unwrap();
    assert_eq!(
        policy["TrustPolicy"]["Statement"][0]["Condition"]["StringEquals"]["aws:SourceAccount"],
        "123456789012",
        "moto's account, from STS"
    );
    let bad = run(without_aws().args(["mapping", "pack-policy", "--account", "1234"]));
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
}
