//! Every `tarem` command README.md and docs/operations.md show, run: a promise the docs make
//! and the CLI breaks fails here.
//!
//! The commands in `bash` blocks run in the order the page gives them, against a stack moto
//! holds (CloudFormation, DynamoDB, SQS, SNS, CloudWatch Logs, STS), with SSM and the Support API
//! answered by a local stub that knows the documents and checks the pages and the packs name
//! (moto has neither OpsItems nor AWS's runbooks). Placeholders (`<check>`, `<role ARN>`…) are
//! filled in; a synopsis (`[--max 100]`) is parsed, not run. Commands quoted in the prose must
//! parse, and those that need no AWS run.

mod support;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{Listener, MotoStack, text};
use tarem::commands::Cli;

const SG_CHECK: &str =
    "Security groups should not allow unrestricted access to ports with high risk";
const EXAMPLE_ROLE: &str = "arn:aws:iam::123456789012:role/tarem-example";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One command a page shows.
#[derive(Debug, Clone)]
struct Shown {
    /// The command as the page writes it (continuations joined, the comment dropped).
    said: String,
    /// In a `bash` block (run in order), or quoted in the prose.
    in_block: bool,
}

/// Splits a shell line as bash would, for what the pages use: quotes, backslash continuations
/// already joined, a comment after `#`, a `>` redirect (dropped with its target).
fn words(line: &str) -> Vec<String> {
    let mut words = vec![];
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '#') if !in_word => break,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    if let Some(redirect) = words.iter().position(|w| w == ">") {
        words.truncate(redirect);
    }
    words
}

fn shown(page: &'static str) -> Vec<Shown> {
    let text = std::fs::read_to_string(repo().join(page)).unwrap();
    let mut found = vec![];
    let block = regex::Regex::new(r"(?s)```bash\n(.*?)```").unwrap();
    let continuation = regex::Regex::new(r"\\\n\s*").unwrap();
    for captured in block.captures_iter(&text) {
        let joined = continuation.replace_all(&captured[1], " ").into_owned();
        for line in joined.lines().map(str::trim) {
            if line.starts_with("tarem ") || line.starts_with("cargo run -p tarem -- ") {
                found.push(Shown {
                    said: line.to_owned(),
                    in_block: true,
                });
            }
        }
    }
    let prose = regex::Regex::new(r"(?s)```.*?```")
        .unwrap()
        .replace_all(&text, "")
        .replace('\n', " ");
    for quoted in regex::Regex::new(r"`(tarem [^`]+)`")
        .unwrap()
        .captures_iter(&prose)
    {
        found.push(Shown {
            said: quoted[1].to_owned(),
            in_block: false,
        });
    }
    found
}

/// The page's words with its placeholders filled, for the stack the test deployed.
fn filled(said: &str, stack: &str) -> (Vec<String>, bool) {
    let synopsis = said.contains('[');
    let text = said
        .replace("<queue URL from the stack outputs>", "check-tracker")
        .replace("<queue URL>", "check-tracker")
        .replace("QUEUE", "check-tracker")
        .replace("<role ARN>", EXAMPLE_ROLE)
        .replace("<ExampleAutomationRoleArn>", EXAMPLE_ROLE)
        .replace("<check>", SG_CHECK)
        .replace('…', SG_CHECK)
        .replace("<id>", "123456789012")
        .replace("<entry>", "sg-specific-ports-classic")
        .replace("--stack tarem", &format!("--stack {stack}"))
        .replace(['[', ']'], "");
    let mut words = words(&text);
    if words.first().map(String::as_str) == Some("cargo") {
        words.drain(..5); // cargo run -p tarem --
        words.insert(0, "tarem".into());
    }
    (words, synopsis)
}

/// What the stub answers every SSM and Support call with: the documents' parameters (every
/// parameter the pages and packs use, none required), the checks they name, the kill switch on,
/// no OpsItems, and an empty check result.
fn stub_reply() -> &'static str {
    let mut parameters = std::collections::BTreeSet::new();
    let mut checks = std::collections::BTreeSet::from([SG_CHECK.to_owned()]);
    for (_, pack) in tarem::pack::PACKS {
        let items: Value = serde_yaml_ng::from_str(pack).unwrap();
        for item in items.as_array().unwrap() {
            checks.insert(item["checkName"].as_str().unwrap().to_owned());
            for name in item["automationParameters"].as_object().unwrap().keys() {
                parameters.insert(name.clone());
            }
        }
    }
    parameters.extend(["GroupId".to_owned(), "AutomationAssumeRole".to_owned()]);
    let reply = json!({
        "Document": {
            "Name": "stub",
            "Parameters": parameters.iter().map(|name| json!({"Name": name, "Type": "String", "DefaultValue": ""})).collect::<Vec<_>>()
        },
        "Parameter": {"Name": "kill-switch", "Type": "String", "Value": "on"},
        "OpsItemSummaries": [],
        "checks": checks.iter().enumerate().map(|(i, name)| json!({
            "id": format!("check{i}"), "name": name, "description": "", "category": "security",
            "metadata": ["Region", "Resource", "Status"]
        })).collect::<Vec<_>>(),
        "result": {
            "checkId": "check0", "timestamp": "2026-11-02T09:12:41Z", "status": "ok",
            "resourcesSummary": {"resourcesProcessed": 0, "resourcesFlagged": 0, "resourcesIgnored": 0, "resourcesSuppressed": 0},
            "categorySpecificSummary": {}, "flaggedResources": []
        }
    });
    Box::leak(reply.to_string().into_boxed_str())
}

/// What a command shown in a block should end with, where it is not success, and why.
fn expected_exit(words: &[String]) -> i32 {
    let line = words.join(" ");
    // Without a terminal to confirm on, an import that would change the table needs --yes
    // (the pages say so: "asks, or --yes").
    if line.starts_with("tarem mapping import --pack") && !line.contains("--yes") {
        return 2;
    }
    0
}

/// A working folder with the files the pages name: the repository's events and mapping
/// files, an item file, and `event.json`/`my-mappings.json` as the prose calls them.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for folder in ["events", "mappings"] {
        std::os::unix::fs::symlink(repo().join(folder), dir.path().join(folder)).unwrap();
    }
    std::fs::copy(
        repo().join("events/01-security-group-port-22-open.json"),
        dir.path().join("event.json"),
    )
    .unwrap();
    std::fs::copy(
        repo().join("events/mappings.json"),
        dir.path().join("my-mappings.json"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("item.yaml"),
        format!(
            "checkName: {SG_CHECK}\nssmAutomationDocument: AWS-DisablePublicAccessForSecurityGroup\nautomationParameters:\n  GroupId: [\"$resourceId\"]\n  AutomationAssumeRole: [\"{EXAMPLE_ROLE}\"]\nregexPattern: '(sg-\\w+)'\nmode: approval\n"
        ),
    )
    .unwrap();
    dir
}

/// Runs the page's commands; `at_least` guards against a page whose commands stopped being
/// found.
fn run_page(page: &'static str, stack: &MotoStack, stub: &Listener, at_least: usize) {
    let dir = workspace();
    let home = tempfile::tempdir().unwrap();
    let mut ran = 0;
    for shown in shown(page) {
        let (words, synopsis) = filled(&shown.said, &stack.name);
        let parsed = <Cli as clap::Parser>::try_parse_from(&words)
            .map(|_| ())
            .or_else(|e| match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    Ok(())
                }
                _ => Err(e),
            });
        if let Err(error) = parsed {
            // A bare command named in the prose (`tarem dlq replay`) is a mention: it must name
            // a command that exists.
            let mut help = words.clone();
            help.push("--help".into());
            let exists = !shown.in_block
                && <Cli as clap::Parser>::try_parse_from(&help)
                    .err()
                    .is_some_and(|e| e.kind() == clap::error::ErrorKind::DisplayHelp);
            assert!(exists, "{page}: `{}` does not parse: {error}", shown.said);
            continue;
        }
        if synopsis || !shown.in_block {
            continue;
        }
        let output = Command::new(env!("CARGO_BIN_EXE_tarem"))
            .args(&words[1..])
            .current_dir(dir.path())
            .env("HOME", home.path())
            .env("TAREM_STACK", &stack.name)
            .env("AWS_ENDPOINT_URL", support::endpoint())
            .env("AWS_ENDPOINT_URL_SSM", &stub.url)
            .env("AWS_ENDPOINT_URL_SUPPORT", &stub.url)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env_remove("AWS_REGION")
            .env_remove("AWS_PROFILE")
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(expected_exit(&words)),
            "{page}: `{}` ran as {words:?}:\n{}",
            shown.said,
            text(&output)
        );
        ran += 1;
    }
    assert!(ran >= at_least, "{page}: {ran} commands ran");
}

#[tokio::test]
async fn every_command_the_readme_shows_works() {
    let stack = MotoStack::deploy(&[(
        "AutomationRoleArns",
        "arn:aws:iam::111122223333:role/TaremAutomationRole",
    )])
    .await;
    run_page("README.md", &stack, &Listener::start(Some(stub_reply())), 8);
}

#[tokio::test]
async fn every_command_the_operations_guide_shows_works() {
    let stack = MotoStack::deploy(&[(
        "AutomationRoleArns",
        "arn:aws:iam::111122223333:role/TaremAutomationRole",
    )])
    .await;
    run_page(
        "docs/operations.md",
        &stack,
        &Listener::start(Some(stub_reply())),
        19,
    );
}

/// The README's first command prints exactly the story the README shows under it.
#[test]
fn the_readme_shows_what_its_first_command_prints() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let start = readme.find("```text\nevents/01-").expect("the story block") + "```text\n".len();
    let shown = &readme[start..start + readme[start..].find("```").unwrap()];
    let output = Command::new(env!("CARGO_BIN_EXE_tarem"))
        .current_dir(repo())
        .args(["simulate", "--mappings", "events/mappings.json", "events/"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        shown,
        "README.md's story block is not what the command prints"
    );
}

#[test]
fn the_splitter_reads_lines_as_bash_does() {
    assert_eq!(
        words(
            r#"tarem mapping add --param GroupId='$resourceId' --regex '(sg-\w+)'   # a comment"#
        ),
        [
            "tarem",
            "mapping",
            "add",
            "--param",
            "GroupId=$resourceId",
            "--regex",
            r"(sg-\w+)"
        ]
    );
    assert_eq!(
        words(r#"tarem mapping show "a b" > out.txt"#),
        ["tarem", "mapping", "show", "a b"]
    );
    assert_eq!(words("tarem plan a#b"), ["tarem", "plan", "a#b"]);
}
