//! The floor plan, checked: the core's modules import one another without a circle, the
//! adapters (real and in-memory) never import a decision, and no source file grows past about
//! 500 lines unless a comment in it says why (`Long on purpose:`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            if !matches!(
                path.file_name().and_then(|n| n.to_str()),
                Some("target" | "fixtures" | ".git" | ".venv-ci" | "fuzz")
            ) {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file, without comments and without its test module.
fn code(text: &str) -> String {
    let text = text
        .split("#[cfg(test)]\nmod tests {")
        .next()
        .unwrap_or(text);
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Top-level module of `tarem-shared` → the top-level modules it uses.
fn core_imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = workspace().join("crates/shared/src");
    let mut files = vec![];
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let reference = regex::Regex::new(r"crate::([a-z_]+)").unwrap();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let module = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap()
            .trim_end_matches(".rs")
            .to_owned();
        if module == "lib" || relative.ends_with("tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let uses = graph.entry(module.clone()).or_default();
        for capture in reference.captures_iter(&code(&text)) {
            if capture[1] != module {
                uses.insert(capture[1].to_owned());
            }
        }
    }
    graph
}

#[test]
fn the_core_has_no_import_circle() {
    let graph = core_imports();
    fn visit(
        graph: &BTreeMap<String, BTreeSet<String>>,
        module: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut circle = path[start..].to_vec();
            circle.push(module.to_owned());
            return Some(circle);
        }
        if !done.insert(module.to_owned()) {
            return None;
        }
        path.push(module.to_owned());
        for next in graph.get(module).into_iter().flatten() {
            if let Some(circle) = visit(graph, next, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        let circle = visit(&graph, module, &mut vec![], &mut done);
        assert_eq!(circle, None, "an import circle");
    }
    assert!(graph.len() > 15, "the walk found the modules: {graph:?}");
}

#[test]
fn adapters_never_import_a_decision() {
    let graph = core_imports();
    let decisions = [
        "decide",
        "lifecycle",
        "safety",
        "opsitem",
        "handlers",
        "reconcile",
        "validate",
    ];
    for adapter in ["aws", "memory"] {
        let uses = &graph[adapter];
        let wrong: Vec<&str> = decisions
            .into_iter()
            .filter(|d| uses.contains(*d))
            .collect();
        assert!(wrong.is_empty(), "{adapter} imports {wrong:?}");
        assert!(uses.contains("ports"), "{adapter} implements the ports");
    }
}

/// The handlers' files import one another without a circle: what several of them share lives in
/// `handlers/common.rs`, and none reaches into the findings sweep's module.
#[test]
fn the_handlers_import_each_other_without_a_circle() {
    let dir = workspace().join("crates/shared/src/handlers");
    let mut files = vec![];
    rust_files(&dir, &mut files);
    let names: BTreeSet<String> = files
        .iter()
        .filter_map(|f| f.file_stem()?.to_str().map(str::to_owned))
        .filter(|name| name != "mod")
        .collect();
    let sibling = regex::Regex::new(r"super::\{?([a-z_]+)").unwrap();
    let grouped = regex::Regex::new(r"use super::\{([^}]*)\}").unwrap();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let module = file.file_stem().unwrap().to_str().unwrap().to_owned();
        if module == "mod" {
            continue;
        }
        let text = code(&std::fs::read_to_string(file).unwrap());
        let uses = graph.entry(module.clone()).or_default();
        let mut referenced: Vec<String> = sibling
            .captures_iter(&text)
            .map(|c| c[1].to_owned())
            .collect();
        for group in grouped.captures_iter(&text) {
            referenced.extend(group[1].split(',').map(|part| {
                part.trim()
                    .split("::")
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            }));
        }
        for name in referenced {
            if names.contains(&name) && name != module {
                uses.insert(name);
            }
        }
        assert!(
            !text.contains("crate::reconcile"),
            "handlers/{module}.rs imports the findings sweep"
        );
    }
    for (module, uses) in &graph {
        for other in uses {
            assert!(
                !graph[other].contains(module),
                "handlers/{module}.rs and handlers/{other}.rs import each other: {graph:?}"
            );
        }
    }
    assert!(graph.len() >= 6, "{graph:?}");
}

#[test]
fn no_source_file_is_long_without_saying_why() {
    let mut files = vec![];
    for dir in ["crates", "functions", "tests"] {
        rust_files(&workspace().join(dir), &mut files);
    }
    assert!(files.len() > 40, "the walk found the files");
    let long: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let text = std::fs::read_to_string(file).ok()?;
            let lines = text.lines().count();
            (lines > 550 && !text.contains("Long on purpose:"))
                .then(|| format!("{} ({lines} lines)", file.display()))
        })
        .collect();
    assert!(long.is_empty(), "files over ~500 lines: {long:?}");
}
