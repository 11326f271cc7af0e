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

/// Functions that are tables of wording, where a long function is a long
/// table (ARCHITECTURE.md: "pure tables of wording"): one arm per case,
/// each a finding's text.
const WORDING: [&str; 3] = ["sts_failure", "token_file_finding", "agent_failure"];

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

/// `text` without its comments: `//` to the end of the line (doc comments
/// included), so that a path named in prose is not an import.
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            // A `//` inside a string literal ("http://...") is not a
            // comment: only cut where the quotes before it are balanced.
            Some(at) if line[..at].matches('"').count() % 2 == 0 => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Names the crate root re-exports, and the module each comes from
/// (`pub use app::{main, serve}` makes `crate::serve` an edge to `app`).
fn root_reexports() -> BTreeMap<String, String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let mut names = BTreeMap::new();
    for line in without_comments(&lib).lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let rest = rest.trim_end_matches(';');
        let (module, items) = rest.split_once("::").unwrap_or((rest, ""));
        for item in items.trim_matches(|c| c == '{' || c == '}').split(',') {
            let item = item.trim();
            if !item.is_empty() {
                names.insert(item.to_owned(), module.to_owned());
            }
        }
    }
    names
}

/// The first path segment of every `crate::` path in `text`, following
/// nested `use crate::{a::{b, c}, d}` trees to their first segments.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let Some(list) = rest.strip_prefix('{') else {
            names.insert(ident(rest));
            continue;
        };
        // The top level of a braced list: split at commas outside braces.
        let mut depth = 0;
        let mut start = 0;
        for (j, c) in list.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    names.insert(ident(&list[start..j]));
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    names.insert(ident(&list[start..j]));
                    start = j + 1;
                }
                _ => {}
            }
        }
    }
    names.remove("");
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
    let reexports = root_reexports();
    for path in files {
        let Some(module) = module_of(&path) else {
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap();
        let text = without_comments(without_tests(&text));
        let deps = graph.entry(module.clone()).or_default();
        for name in crate_paths(&text) {
            let name = reexports.get(&name).cloned().unwrap_or(name);
            if name != module {
                deps.insert(name);
            }
        }
        long_functions.extend(long_functions_in(&path, &text));
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
        // Any visibility, then any of const/async/unsafe, then `fn `.
        let mut rest = trimmed;
        if let Some(after) = rest.strip_prefix("pub") {
            rest = after.trim_start();
            if rest.starts_with('(') {
                rest = rest.split_once(')').map_or("", |(_, r)| r.trim_start());
            }
        }
        for qualifier in ["const ", "async ", "unsafe "] {
            rest = rest.strip_prefix(qualifier).unwrap_or(rest);
        }
        if !rest.starts_with("fn ") || trimmed.ends_with(';') {
            continue;
        }
        let close = format!("{indent}}}");
        if let Some(end) = lines[i..].iter().position(|l| *l == close) {
            let name: String = rest["fn ".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if end + 1 > MAX_FUNCTION_LINES && !WORDING.contains(&name.as_str()) {
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

/// Each module's invariant in ARCHITECTURE.md says what it may import;
/// anything else is an edge pointing the wrong way. A new module must be
/// added here, with what it may import.
#[test]
fn each_module_imports_only_what_its_invariant_allows() {
    let graph = read_source().graph;
    let allowed: BTreeMap<&str, &[&str]> = [
        // The command line: anything below it.
        (
            "app",
            &[
                "agent",
                "arn",
                "check",
                "config",
                "endpoint",
                "env",
                "explain",
                "files",
                "launch",
                "monitor",
                "redact",
                "report",
                "server",
                "sts",
                "telemetry",
                "time",
                "token",
            ][..],
        ),
        // The check's configuration names whose container it sees
        // (`report::SeenFrom`).
        (
            "config",
            &["arn", "check", "env", "files", "report", "telemetry"][..],
        ),
        // The fuzz targets' entry points (feature `fuzzing` only): they
        // reach into the parsers and handlers they feed, and nothing
        // imports them, so they can point at anything without a cycle.
        (
            "fuzzing",
            &[
                "agent", "arn", "config", "jwks", "monitor", "report", "server", "sts", "token",
                "trust",
            ][..],
        ),
        // explain's I/O: its flags (config), the policy file read within
        // bounds (files), the token read and decoded as check reads it
        // (token), the role's partition and account (arn), the pure
        // evaluator (trust), and the claims it prints cleaned (redact).
        (
            "explain",
            &["arn", "config", "files", "redact", "token", "trust"][..],
        ),
        // The trust-policy evaluator: pure; it quotes the policy's values
        // through `redact::one_line`, as peers' text is quoted, and names
        // the mechanism as `report::MechanismName` declares it.
        ("trust", &["redact", "report"][..]),
        // exec's execve and install's copy: process-level, a leaf.
        ("launch", &[][..]),
        // Serving: reads the state; never runs a check or reaches AWS.
        (
            "server",
            &[
                "histogram",
                "metrics",
                "monitor",
                "redact",
                "report",
                "time",
            ][..],
        ),
        (
            "metrics",
            &[
                "histogram",
                "monitor",
                "process",
                "report",
                "time",
                "traffic",
            ][..],
        ),
        (
            "monitor",
            &["check", "env", "histogram", "report", "sts", "traffic"][..],
        ),
        // The check: never the command line or serving. `files` and
        // `trust`: --trust-policy's file, read within bounds when the role
        // is refused, and evaluated.
        (
            "check",
            &[
                "agent", "arn", "endpoint", "env", "files", "findings", "iam", "issuer", "jwks",
                "proxy", "report", "sts", "time", "token", "traffic", "trust",
            ][..],
        ),
        (
            "findings",
            &[
                "agent", "arn", "env", "files", "iam", "jwks", "report", "sts", "time", "token",
                "trust",
            ][..],
        ),
        // Talking to AWS and the agent, and the settings it uses.
        (
            "sts",
            &[
                "endpoint", "profile", "redact", "report", "time", "token", "traffic",
            ][..],
        ),
        // `traffic` for its rule on ports, which every connection obeys.
        ("agent", &["redact", "sts", "token", "traffic"][..]),
        // IAM's simulator, through the configuration and failure
        // reduction STS's calls use.
        ("iam", &["arn", "sts"][..]),
        // The token's issuer (--verify-issuer): its documents through the
        // SDK's HTTPS stack (traffic), checked by the pure `jwks`; the
        // token's signed parts (token) and `sts`'s text helpers.
        // `redact` for the key set URL's userinfo, a secret once read.
        ("issuer", &["jwks", "redact", "sts", "token", "traffic"][..]),
        // Discovery documents, key sets and signatures: pure, a leaf.
        ("jwks", &[][..]),
        ("endpoint", &["report"][..]),
        (
            "profile",
            &["ca_bundle", "files", "redact", "report", "token"][..],
        ),
        // AWS_CA_BUNDLE, read within bounds (files) and worded beside its
        // rule (report), as profile's files are.
        ("ca_bundle", &["files", "report"][..]),
        ("proxy", &["report"][..]),
        ("env", &["endpoint", "redact"][..]),
        ("token", &["files", "redact"][..]),
        ("report", &["time", "token"][..]),
        ("telemetry", &["redact"][..]),
        // Leaves.
        ("arn", &[][..]),
        ("files", &[][..]),
        ("histogram", &[][..]),
        ("process", &[][..]),
        ("redact", &[][..]),
        ("time", &[][..]),
        ("traffic", &[][..]),
    ]
    .into_iter()
    .collect();
    let mut wrong = vec![];
    for (module, deps) in &graph {
        let Some(may) = allowed.get(module.as_str()) else {
            wrong.push(format!("{module} is not in this test's list"));
            continue;
        };
        wrong.extend(
            deps.iter()
                .filter(|d| !may.contains(&d.as_str()))
                .map(|d| format!("{module} -> {d}")),
        );
    }
    assert!(wrong.is_empty(), "edges the invariants forbid: {wrong:?}");
}

#[test]
fn the_import_reader_follows_nested_use_trees_and_skips_comments() {
    let text = without_comments(
        "use crate::{report::{Code, Finding}, sts::Failure};\n\
         // crate::app in a comment\n\
         let url = \"http://x\"; crate::time::now();\n",
    );
    let names: Vec<String> = crate_paths(&text).into_iter().collect();
    assert_eq!(names, ["report", "sts", "time"]);
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
            let text = without_comments(without_tests(&text));
            [
                "aws_sdk_sts::Client",
                "aws_sdk_sts::{",
                "aws_config::defaults",
                "aws_config::load",
            ]
            .iter()
            .any(|needle| text.contains(needle))
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(clients.is_empty(), "{clients:?}");
}

/// Log fields are an API (README, "Logs"): an error is `error` everywhere,
/// never `e` (what `%e` names the field) or `err`; `code` is a finding's
/// code, and STS's own code is `error_code`, as in the JSON report.
#[test]
fn log_fields_name_an_error_error_and_a_code_a_finding_code() {
    let mut files = vec![];
    rust_files(&src(), &mut files);
    let mut wrong = vec![];
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        for (n, line) in without_comments(without_tests(&text)).lines().enumerate() {
            let field = |name: &str| {
                line.match_indices(name).any(|(at, _)| {
                    !line[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                })
            };
            // A bare `%e` names its field `e`: it follows `(`, `,` or
            // nothing, never `=`.
            let bare = |name: &str| {
                line.match_indices(name).any(|(at, _)| {
                    let before = line[..at].trim_end();
                    before.is_empty() || before.ends_with(['(', ','])
                })
            };
            let bad = ["%e,", "%e)", "?e,", "?e)", "%err", "?err"]
                .iter()
                .any(|f| bare(f))
                || field("err =")
                || field("err=")
                || (field("code = ")
                    && !line.trim_start().starts_with("let ")
                    && !line.contains(".code.as_str()"));
            if bad {
                wrong.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
