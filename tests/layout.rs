//! The layout ARCHITECTURE.md promises, checked on the source: modules
//! depend on each other without a cycle, each module imports only what its
//! invariant allows, and no function outside the wording tables is longer
//! than a screen.
//!
//! The graph is read from `crate::<module>` paths in `src/` (unit tests at
//! the bottom of a file excluded). Run with `--nocapture` to print it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest a function may be, in lines, outside the wording tables.
const MAX_FUNCTION_LINES: usize = 80;

/// Modules that are tables of wording, where a long function is a long
/// table (ARCHITECTURE.md: "pure tables of wording").
const WORDING: [&str; 1] = ["findings"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to; `None` for lib.rs and main.rs.
fn module_of(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(src()).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.trim_end_matches(".rs");
    (name != "lib" && name != "main").then(|| name.to_owned())
}

/// The file without its unit tests, which may import anything.
fn without_tests(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod tests")
        .map_or(text, |i| &text[..i])
}

/// Every `crate::name` in `text`, and every name in `use crate::{a, b::c}`.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(list) = rest.strip_prefix('{') {
            let list = &list[..list.find('}').unwrap_or(list.len())];
            for item in list.split(',') {
                let name = ident(item.trim());
                if !name.is_empty() {
                    names.insert(name);
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                names.insert(name);
            }
        }
    }
    names
}

struct Source {
    graph: BTreeMap<String, BTreeSet<String>>,
    long_functions: Vec<String>,
}

fn read_source() -> Source {
    let mut files = vec![];
    rust_files(&src(), &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut long_functions = vec![];
    for path in files {
        let Some(module) = module_of(&path) else {
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap();
        let text = without_tests(&text);
        let deps = graph.entry(module.clone()).or_default();
        deps.extend(crate_paths(text).into_iter().filter(|d| *d != module));
        if !WORDING.contains(&module.as_str()) {
            long_functions.extend(long_functions_in(&path, text));
        }
    }
    // Only edges to modules: `crate::main` and the like are not modules.
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for deps in graph.values_mut() {
        deps.retain(|d| modules.contains(d));
    }
    Source {
        graph,
        long_functions,
    }
}

/// Functions longer than [`MAX_FUNCTION_LINES`]: from the `fn` line to the
/// closing brace at the same indentation.
fn long_functions_in(path: &Path, text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = vec![];
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let signature = [
            "fn ",
            "pub fn ",
            "pub(crate) fn ",
            "pub(super) fn ",
            "async fn ",
        ]
        .iter()
        .chain(&[
            "pub async fn ",
            "pub(crate) async fn ",
            "pub(super) async fn ",
        ])
        .any(|p| trimmed.starts_with(p));
        if !signature || trimmed.ends_with(';') {
            continue;
        }
        let close = format!("{indent}}}");
        if let Some(end) = lines[i..].iter().position(|l| *l == close) {
            if end + 1 > MAX_FUNCTION_LINES {
                let name: String = trimmed
                    .split("fn ")
                    .nth(1)
                    .unwrap_or("")
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                found.push(format!(
                    "{}:{} {name}: {} lines",
                    path.strip_prefix(src()).unwrap().display(),
                    i + 1,
                    end + 1
                ));
            }
        }
    }
    found
}

/// A cycle in `graph`, if there is one, as the path around it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for dep in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(dep, graph, done, path) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut vec![]))
}

#[test]
fn modules_depend_on_each_other_without_a_cycle() {
    let source = read_source();
    for (module, deps) in &source.graph {
        let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
        println!("{module} -> {}", deps.join(", "));
    }
    assert_eq!(find_cycle(&source.graph), None);
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let edge = |a: &str, b: &[&str]| (a.to_owned(), b.iter().map(|s| (*s).to_owned()).collect());
    let graph: BTreeMap<String, BTreeSet<String>> = [
        edge("app", &["monitor"]),
        edge("monitor", &["report", "app"]),
        edge("report", &[]),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        find_cycle(&graph),
        Some(vec!["app".into(), "monitor".into(), "app".into()])
    );
}

/// Each module's invariant in ARCHITECTURE.md says what it may not import.
#[test]
fn dependencies_point_down() {
    let graph = read_source().graph;
    let forbidden: [(&str, &[&str]); 9] = [
        // The lowest layers know nothing of checks, serving or the CLI.
        (
            "report",
            &["sts", "check", "monitor", "app", "config", "server"],
        ),
        ("findings", &["check", "monitor", "app", "config", "server"]),
        ("telemetry", &["config", "app", "monitor"]),
        ("time", &["report", "sts", "check"]),
        // The check knows nothing of serving or of the command line.
        ("check", &["config", "app", "monitor", "server", "metrics"]),
        // The loop runs checks; it neither answers probes nor parses flags.
        ("monitor", &["app", "server", "metrics", "config"]),
        // The HTTP side reads the state; it never runs a check or talks to AWS.
        ("server", &["check", "sts", "app"]),
        ("metrics", &["check", "sts", "app", "server"]),
        // Only `sts` builds SDK clients; nothing below it calls back up.
        ("sts", &["check", "monitor", "app", "findings"]),
    ];
    let mut wrong = vec![];
    for (module, not) in forbidden {
        let deps = graph
            .get(module)
            .unwrap_or_else(|| panic!("no module {module}"));
        wrong.extend(
            not.iter()
                .filter(|n| deps.contains(**n))
                .map(|n| format!("{module} -> {n}")),
        );
    }
    assert!(wrong.is_empty(), "edges pointing up: {wrong:?}");
}

#[test]
fn no_function_outside_the_wording_tables_is_longer_than_a_screen() {
    let long = read_source().long_functions;
    assert!(
        long.is_empty(),
        "longer than {MAX_FUNCTION_LINES} lines: {long:#?}"
    );
}

#[test]
fn only_sts_builds_an_sdk_client() {
    let mut files = vec![];
    rust_files(&src(), &mut files);
    let clients: Vec<String> = files
        .iter()
        .filter(|p| module_of(p).as_deref() != Some("sts"))
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            without_tests(&text).contains("aws_sdk_sts::Client")
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(clients.is_empty(), "{clients:?}");
}
