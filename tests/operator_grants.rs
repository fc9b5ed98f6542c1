//! The people's permissions from the same registry as the functions' grants: each `tarem`
//! command calls exactly what its permissions list (its source is read), the operator's and the
//! deployer's tables in docs/operations.md are the generated ones, and every resource type the
//! template declares has the deployer's permissions for it.

use std::collections::BTreeSet;
use tarem_e2e::source::{code, read, repository};
use tarem_e2e::template::load_template;
use tarem_shared::aws::grants::{
    ADAPTERS, CLI, DEPLOY, cli_permissions_table, deploy_permissions_table,
};

/// The SDK operations a piece of code calls itself: each `.send()`'s builder, named by the first
/// `.operation()` of its chain, as the IAM action's name (`describe_stacks` → `DescribeStacks`;
/// Lambda's `invoke` is `InvokeFunction`).
fn direct_calls(code: &str) -> BTreeSet<String> {
    let chain = regex::Regex::new(
        r"\.([a-z][a-z_]*)\(\)(?:\.[a-z_]+\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\))*\.send\(\)",
    )
    .unwrap();
    chain
        .captures_iter(code)
        .map(|found| {
            let operation = &found[1];
            if operation == "invoke" {
                return "InvokeFunction".to_owned();
            }
            operation
                .split('_')
                .map(|part| {
                    let mut chars = part.chars();
                    chars
                        .next()
                        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                        .unwrap_or_default()
                })
                .collect()
        })
        .collect()
}

#[test]
fn each_cli_command_calls_exactly_what_its_permissions_list() {
    let registered: Vec<&str> = ADAPTERS.iter().map(|(name, _)| *name).collect();
    let mut every_file = BTreeSet::new();
    for (command, files, uses, calls) in CLI {
        let source: String = files
            .iter()
            .map(|file| code(&read(&format!("crates/cli/src/{file}"))))
            .collect::<Vec<_>>()
            .join("\n");
        every_file.extend(files.iter().copied());
        let built: BTreeSet<&str> = registered
            .iter()
            .copied()
            .filter(|adapter| {
                source.contains(&format!("{adapter}::new("))
                    || source.contains(&format!("{adapter}::for_config("))
            })
            .collect();
        let listed: BTreeSet<&str> = uses.iter().map(|(adapter, _, _)| *adapter).collect();
        assert_eq!(
            built, listed,
            "tarem {command}: adapters built (left) and listed (right)"
        );
        let called = direct_calls(&source);
        let granted: BTreeSet<String> = calls
            .iter()
            .flat_map(|(actions, _, _)| actions.split(", "))
            .map(|action| action.split(':').nth(1).unwrap().to_owned())
            .collect();
        assert_eq!(
            called, granted,
            "tarem {command}: the calls its code makes (left) and its permissions list (right)"
        );
    }
    // No file of the CLI makes an AWS call that no command's permissions cover.
    let cli = repository("crates/cli/src");
    let mut stack = vec![cli.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let relative = path
                .strip_prefix(&cli)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let calls = direct_calls(&code(&std::fs::read_to_string(&path).unwrap()));
            assert!(
                calls.is_empty() || every_file.contains(relative.as_str()),
                "crates/cli/src/{relative} calls {calls:?} but no command in grants::CLI lists the file"
            );
        }
    }
}

#[test]
fn the_operators_and_the_deployers_permissions_are_generated() {
    let docs = read("docs/operations.md");
    for (name, table) in [
        ("operator's", cli_permissions_table()),
        ("deployer's", deploy_permissions_table()),
    ] {
        assert!(
            docs.contains(&table),
            "docs/operations.md's {name} permissions table is not the generated one; it should read:\n{table}"
        );
    }
}

#[test]
fn every_resource_type_the_template_declares_has_its_deploy_permissions() {
    let template = load_template();
    let declared: BTreeSet<String> = template["Resources"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|resource| resource["Type"].as_str())
        .map(str::to_owned)
        .collect();
    let listed: BTreeSet<String> = DEPLOY
        .iter()
        .map(|(what, _)| (*what).to_owned())
        .filter(|what| what.starts_with("AWS::"))
        .collect();
    assert_eq!(
        declared, listed,
        "the template's resource types (left) and grants::DEPLOY's (right)"
    );
}
