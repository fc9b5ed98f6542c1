//! What the CLI's tests share: moto (MOTO_ENDPOINT, started by scripts/test), a fresh mapping
//! table, and the `tarem` binary run as an operator runs it.
#![allow(dead_code)]

use std::process::{Command, Output};

pub use moto_harness::endpoint;

pub async fn client() -> aws_sdk_dynamodb::Client {
    moto_harness::dynamodb().await
}

pub async fn mapping_table(client: &aws_sdk_dynamodb::Client) -> String {
    table_keyed_by(client, "checkName").await
}

/// A fresh table in moto whose hash key is `key`.
pub async fn table_keyed_by(client: &aws_sdk_dynamodb::Client, key: &str) -> String {
    moto_harness::fresh_table(client, "mappings", &[key], false).await
}

pub fn tarem(table: &str, args: &[&str]) -> Output {
    let endpoint = endpoint();
    let mut all = vec!["mapping"];
    all.extend_from_slice(args);
    all.extend_from_slice(&[
        "--table",
        table,
        "--region",
        "us-east-1",
        "--endpoint-url",
        &endpoint,
    ]);
    Command::new(env!("CARGO_BIN_EXE_tarem"))
        .args(&all)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .unwrap()
}

pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A loopback HTTP server standing in for AWS: it records each request's head (request line
/// and headers) and answers every request with `reply` as a JSON 200, or never answers at all.
pub struct Listener {
    pub url: String,
    heads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Listener {
    pub fn start(reply: Option<&'static str>) -> Listener {
        use std::io::{BufRead, BufReader, Read, Write};
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", socket.local_addr().unwrap());
        let heads: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let recorded = heads.clone();
        std::thread::spawn(move || {
            for stream in socket.incoming().flatten() {
                let recorded = recorded.clone();
                std::thread::spawn(move || {
                    let mut writer = stream.try_clone().unwrap();
                    let mut reader = BufReader::new(stream);
                    loop {
                        let mut head = String::new();
                        let mut length = 0usize;
                        loop {
                            let mut line = String::new();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            if line == "\r\n" {
                                break;
                            }
                            if let Some((name, value)) = line.split_once(':')
                                && name.eq_ignore_ascii_case("content-length")
                            {
                                length = value.trim().parse().unwrap_or(0);
                            }
                            head.push_str(&line);
                        }
                        let mut body = vec![0; length];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        recorded.lock().unwrap().push(head);
                        match reply {
                            Some(reply) => {
                                let _ = write!(
                                    writer,
                                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\n\r\n{reply}",
                                    reply.len()
                                );
                            }
                            // Accept, read, and never answer.
                            None => std::thread::sleep(std::time::Duration::from_secs(3600)),
                        }
                    }
                });
            }
        });
        Listener { url, heads }
    }

    /// The heads of the requests received so far.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

/// The `tarem` binary with no credentials, profile or endpoint of the machine leaking in.
pub fn bare_tarem() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tarem"));
    command
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", "us-east-1");
    command
}

/// A deployed stack as moto holds it: a CloudFormation stack with the template's parameters
/// and outputs, whose resources moto creates (the kill switch parameter, the failure queues,
/// the audit log group, the alarm topic with a subscriber) and whose tables are fresh moto
/// tables with the stack's keys and indexes. `tarem --stack NAME` reads it with DescribeStacks.
pub struct MotoStack {
    pub name: String,
    pub mapping_table: String,
    pub tracker_table: String,
    pub execution_table: String,
    pub kill_switch: String,
    pub log_group: String,
    pub topic: String,
}

impl MotoStack {
    /// `parameters`: the template's parameters this stack was deployed with (the rest take
    /// the template's defaults). `CommaDelimitedList` parameters are declared as strings:
    /// DescribeStacks gives their value as the text that was passed (`a,b`), which moto
    /// renders as a Python list for a list type.
    pub async fn deploy(parameters: &[(&str, &str)]) -> MotoStack {
        let config = moto_harness::sdk_loader().load().await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let name = moto_harness::unique_name("stack").replace('-', "x");
        let mapping_table =
            moto_harness::fresh_table(&dynamodb, "mappings", moto_harness::MAPPING_KEYS, false)
                .await;
        let tracker_table =
            moto_harness::fresh_table(&dynamodb, "tracker", moto_harness::TRACKER_KEYS, true).await;
        let execution_table =
            moto_harness::fresh_table(&dynamodb, "executions", moto_harness::EXECUTION_KEYS, false)
                .await;
        let kill_switch = format!("/{name}/automation-starts");
        let log_group = format!("/{name}/trusted-advisor-events");
        let defaults = [
            (
                "AllowedAutomationDocuments",
                "AWS-DisablePublicAccessForSecurityGroup",
            ),
            ("AutomationRoleArns", ""),
            ("OptIn", "all"),
            ("OptInTag", "automaticRemediation=True"),
            ("Tuning", ""),
        ];
        let mut declared = serde_json::Map::new();
        let mut given = vec![];
        for (key, default) in defaults {
            let value = parameters
                .iter()
                .find(|(k, _)| *k == key)
                .map_or(default, |(_, v)| *v);
            declared.insert(
                key.into(),
                serde_json::json!({"Type": "String", "Default": ""}),
            );
            given.push(
                aws_sdk_cloudformation::types::Parameter::builder()
                    .parameter_key(key)
                    .parameter_value(value)
                    .build(),
            );
        }
        let template = serde_json::json!({
            "Parameters": declared,
            "Resources": {
                "KillSwitchParameter": {"Type": "AWS::SSM::Parameter",
                    "Properties": {"Name": kill_switch, "Type": "String", "Value": "on"}},
                "TrackerStreamFailureQueue": {"Type": "AWS::SQS::Queue",
                    "Properties": {"QueueName": format!("{name}-TrackerStreamFailureQueue")}},
                "CheckTrackerDeadLetterQueue": {"Type": "AWS::SQS::Queue",
                    "Properties": {"QueueName": format!("{name}-CheckTrackerDeadLetterQueue")}},
                "TrustedAdvisorEventLogGroup": {"Type": "AWS::Logs::LogGroup",
                    "Properties": {"LogGroupName": log_group}},
                "AlarmTopic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": format!("{name}-alarms")}}
            },
            "Outputs": {
                "MappingTableName": {"Value": mapping_table},
                "TrackerTableName": {"Value": tracker_table},
                "ExecutionTableName": {"Value": execution_table},
                "KillSwitchParameterName": {"Value": {"Ref": "KillSwitchParameter"}},
                "TrackerStreamFailureQueueUrl": {"Value": {"Ref": "TrackerStreamFailureQueue"}},
                "CheckTrackerDeadLetterQueueUrl": {"Value": {"Ref": "CheckTrackerDeadLetterQueue"}},
                "TrustedAdvisorEventLogGroupName": {"Value": {"Ref": "TrustedAdvisorEventLogGroup"}},
                "AlarmTopicArn": {"Value": {"Ref": "AlarmTopic"}},
                "ExampleAutomationRoleArn": {"Value": "arn:aws:iam::123456789012:role/tarem-example"}
            }
        });
        aws_sdk_cloudformation::Client::new(&config)
            .create_stack()
            .stack_name(&name)
            .template_body(template.to_string())
            .set_parameters(Some(given))
            .send()
            .await
            .expect("moto creates the stack");
        // The AlarmEmail subscription (moto confirms an email subscription at once).
        let topic = format!("arn:aws:sns:us-east-1:123456789012:{name}-alarms");
        aws_sdk_sns::Client::new(&config)
            .subscribe()
            .topic_arn(&topic)
            .protocol("email")
            .endpoint("ops@example.com")
            .send()
            .await
            .expect("moto subscribes");
        MotoStack {
            topic,
            name,
            mapping_table,
            tracker_table,
            execution_table,
            kill_switch,
            log_group,
        }
    }

    /// `tarem ARGS --stack NAME` in the repository, every AWS service at moto
    /// (AWS_ENDPOINT_URL).
    pub fn tarem(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_tarem"))
            .current_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
            .args(args)
            .args(["--stack", &self.name])
            .env("AWS_ENDPOINT_URL", endpoint())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env_remove("AWS_REGION")
            .env_remove("AWS_PROFILE")
            .output()
            .unwrap()
    }
}
