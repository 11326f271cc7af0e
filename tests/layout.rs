//! The layout ARCHITECTURE.md promises, checked on the source: `src/` is
//! a stack of folders, each with one job, and every import points down.
//! This file is the one list of the folders; ARCHITECTURE.md and `lib.rs`
//! describe them and do not list imports again.
//!
//! The graph is read from `crate::<folder>` paths in `src/` (unit tests at
//! the bottom of a file excluded). Run with `--nocapture` to print it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

mod source_graph;
use source_graph::{find_cycle, first_segments, rust_files, without_comments};

/// The longest a function may be, in lines, outside the wording tables.
const MAX_FUNCTION_LINES: usize = 80;

/// The longest a product file may be, in lines, not counting the unit
/// tests at its bottom.
const MAX_FILE_LINES: usize = 800;

/// The layers, top down: each may import only what is after it. The
/// top-level files `time` (a leaf) and `fuzzing` (nothing imports it) sit
/// beside them.
const LAYERS: [&str; 12] = [
    "cli", "http", "monitor", "check", "findings", "trust", "peers", "settings", "report",
    "identity", "guard", "time",
];

/// What may sit at the top of `src/` besides the layers.
const TOP_FILES: [&str; 4] = ["main.rs", "lib.rs", "fuzzing.rs", "time.rs"];

/// Files allowed past [`MAX_FILE_LINES`], with the reason: none.
const LONG_FILES: [&str; 0] = [];

fn rank(unit: &str) -> Option<usize> {
    LAYERS.iter().position(|l| *l == unit)
}

/// Functions that are tables of wording, where a long function is a long
/// table (ARCHITECTURE.md: "pure tables of wording"): one arm per case,
/// each a finding's text.
const WORDING: [&str; 3] = ["sts_failure", "token_file_finding", "agent_failure"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The folder (or top-level file) a file belongs to; `None` for lib.rs and
/// main.rs.
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

/// Names the crate root re-exports or imports, and the folder each comes
/// from (`pub use cli::{main, serve}` makes `crate::serve` an edge to
/// `cli`).
fn root_reexports() -> BTreeMap<String, String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let mut names = BTreeMap::new();
    for line in without_comments(&lib).lines() {
        // A private `use` at the root makes a path of `crate::` too.
        let line = line.trim();
        let Some(rest) = line
            .strip_prefix("pub use ")
            .or_else(|| line.strip_prefix("use "))
        else {
            continue;
        };
        let rest = rest.trim_end_matches(';');
        // `pub use cli::config::X`: the folder is the first segment, the
        // items after the last `::`.
        let module = rest.split("::").next().unwrap_or(rest);
        let items = rest.rsplit_once("::").map_or("", |(_, items)| items);
        for item in items.trim_matches(|c| c == '{' || c == '}').split(',') {
            let item = item.trim();
            if !item.is_empty() {
                names.insert(item.to_owned(), module.to_owned());
            }
        }
    }
    names
}

struct Source {
    /// Folder (or top-level file) to the folders it imports.
    graph: BTreeMap<String, BTreeSet<String>>,
    long_functions: Vec<String>,
    /// Each file, relative to `src/`, with its text without its unit tests
    /// and comments.
    files: Vec<(String, String)>,
}

fn read_source() -> Source {
    let mut files = vec![];
    rust_files(&src(), None, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut long_functions = vec![];
    let mut texts = vec![];
    let reexports = root_reexports();
    for path in files {
        let Some(module) = module_of(&path) else {
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap();
        let text = without_comments(without_tests(&text));
        let deps = graph.entry(module.clone()).or_default();
        for name in first_segments(&text, "crate::") {
            let name = reexports.get(&name).cloned().unwrap_or(name);
            if name != module {
                deps.insert(name);
            }
        }
        long_functions.extend(long_functions_in(&src(), &path, &text));
        let rel = path.strip_prefix(src()).unwrap().display().to_string();
        texts.push((rel, text));
    }
    // Only edges to modules: `crate::main` and the like are not modules.
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for deps in graph.values_mut() {
        deps.retain(|d| modules.contains(d));
    }
    Source {
        graph,
        long_functions,
        files: texts,
    }
}

/// Functions longer than [`MAX_FUNCTION_LINES`]: from the `fn` line to the
/// closing brace at the same indentation.
fn long_functions_in(base: &Path, path: &Path, text: &str) -> Vec<String> {
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
                    path.strip_prefix(base).unwrap().display(),
                    i + 1,
                    end + 1
                ));
            }
        }
    }
    found
}

/// Rule 12: no cycle between folders (rule 2 implies it; this says where
/// a cycle runs if one appears).
#[test]
fn folders_depend_on_each_other_without_a_cycle() {
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

/// Rule 1: the top of `src/` shows the layers, and nothing else but the
/// entry points, the clock and the fuzz targets' door. A new folder is
/// added to [`LAYERS`], at its place in the stack.
#[test]
fn the_top_of_src_is_the_layers_and_four_files() {
    let mut unknown = vec![];
    for entry in std::fs::read_dir(src()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let known = if path.is_dir() {
            LAYERS.contains(&name.as_str())
        } else {
            TOP_FILES.contains(&name.as_str())
        };
        if !known {
            unknown.push(name);
        }
    }
    assert!(unknown.is_empty(), "not in this test's list: {unknown:?}");
}

/// Rule 2: a folder imports only what is below it. `fuzzing` (feature
/// `fuzzing` only) reaches into the parsers and handlers it feeds, and
/// nothing imports it.
#[test]
fn a_folder_imports_only_what_is_below_it() {
    let wrong = upward_edges(&read_source().graph);
    assert!(wrong.is_empty(), "edges pointing up or sideways: {wrong:?}");
}

/// The edges of `graph` that do not point down the [`LAYERS`].
fn upward_edges(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut wrong = vec![];
    for (unit, deps) in graph {
        if unit == "fuzzing" {
            continue;
        }
        let Some(at) = rank(unit) else {
            wrong.push(format!("{unit} is in no layer"));
            continue;
        };
        for dep in deps {
            if dep == "fuzzing" || rank(dep).is_none_or(|d| d <= at) {
                wrong.push(format!("{unit} -> {dep}"));
            }
        }
    }
    wrong
}

#[test]
fn the_layer_rule_finds_an_edge_pointing_up() {
    let edge = |a: &str, b: &[&str]| (a.to_owned(), b.iter().map(|s| (*s).to_owned()).collect());
    let graph: BTreeMap<String, BTreeSet<String>> = [
        edge("cli", &["check", "guard"]),
        edge("peers", &["settings", "check"]),
        edge("trust", &["guard"]),
        edge("guard", &[]),
    ]
    .into_iter()
    .collect();
    assert_eq!(upward_edges(&graph), ["peers -> check"]);
}

/// The folders (or top-level files) whose files mention any of `needles`,
/// outside unit tests and comments.
fn files_naming(needles: &[&str]) -> BTreeSet<String> {
    read_source()
        .files
        .into_iter()
        .filter(|(_, text)| needles.iter().any(|n| text.contains(n)))
        .map(|(path, _)| path)
        .collect()
}

fn set(paths: &[&str]) -> BTreeSet<String> {
    paths.iter().map(|p| (*p).to_owned()).collect()
}

/// Rule 3: only `peers/sts.rs` talks to STS (`fuzzing` feeds its answer
/// parser a fuzzed body).
#[test]
fn only_peers_sts_talks_to_sts() {
    assert_eq!(
        files_naming(&["aws_sdk_sts"]),
        set(&["fuzzing.rs", "peers/sts.rs"])
    );
}

/// Rule 4: only `peers/iam.rs` talks to IAM.
#[test]
fn only_peers_iam_talks_to_iam() {
    assert_eq!(files_naming(&["aws_sdk_iam"]), set(&["peers/iam.rs"]));
}

/// Rule 5: only `peers/traffic.rs` builds the HTTPS client every peer's
/// connection goes through (bounded, counted, proxied as the SDK would);
/// `settings/proxy.rs` judges the proxy the client will use.
#[test]
fn only_the_bounded_client_builds_an_http_client() {
    let found = files_naming(&["hyper_util::client", "Client::builder"]);
    let allowed = set(&[
        "peers/traffic.rs",
        "settings/proxy.rs",
        "guard/telemetry.rs",
    ]);
    assert!(found.is_subset(&allowed), "{found:?}");
}

/// Rule 6: the environment is read by the command line (`cli/`), by what
/// judges the SDK's settings (`settings/`, and `peers/sts.rs` loading the
/// configuration as the SDK does), and by logging's `RUST_LOG`.
#[test]
fn only_the_command_line_and_the_settings_read_the_environment() {
    let found = files_naming(&["std::env::var", "env::var("]);
    let wrong: Vec<&String> = found
        .iter()
        .filter(|p| {
            !p.starts_with("cli/")
                && !p.starts_with("settings/")
                && *p != "peers/sts.rs"
                && *p != "guard/telemetry.rs"
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:?}");
}

/// Rule 7: what serve answers never runs a check or decides a verdict: it
/// reads the loop's state.
#[test]
fn http_reads_the_state_and_never_checks() {
    let graph = read_source().graph;
    let http = &graph["http"];
    for forbidden in ["check", "findings", "settings"] {
        assert!(!http.contains(forbidden), "http -> {forbidden}");
    }
}

/// Rule 8: the pure layers do no I/O: no runtime, no sockets, no clock
/// of their own (the time is passed in), no files but through `guard`.
#[test]
fn the_pure_folders_do_no_io() {
    let io = [
        "tokio::",
        "std::net",
        "std::fs",
        "SystemTime::now",
        "Instant::now",
    ];
    let wrong: Vec<String> = read_source()
        .files
        .into_iter()
        .filter(|(path, _)| {
            [
                "findings/",
                "report/",
                "trust/",
                "identity/arn",
                "identity/jwks",
                "identity/session_policy",
                "identity/wildcard",
            ]
            .iter()
            .any(|p| path.starts_with(p))
        })
        .filter(|(_, text)| io.iter().any(|n| text.contains(n)))
        .map(|(path, _)| path)
        .collect();
    assert!(wrong.is_empty(), "{wrong:?}");
}

/// Rule 9: `guard/` is the floor: it imports nothing from the crate
/// outside itself, so that every layer may lean on it.
#[test]
fn guard_imports_nothing_else() {
    let graph = read_source().graph;
    assert_eq!(graph["guard"], BTreeSet::new());
}

/// Rule 10: the trust-policy evaluator is pure: it imports only the text
/// cleaning it quotes values through (`guard`) and the mechanism's name
/// (`identity`).
#[test]
fn trust_imports_only_guard_and_identity() {
    let graph = read_source().graph;
    let deps = &graph["trust"];
    assert!(
        deps.iter().all(|d| d == "guard" || d == "identity"),
        "trust -> {deps:?}"
    );
}

/// Rule 11: no product file is longer than [`MAX_FILE_LINES`], its unit
/// tests aside: a file longer than that does more than one job.
#[test]
fn no_product_file_is_over_800_lines() {
    let mut files = vec![];
    rust_files(&src(), None, &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let rel = path.strip_prefix(src()).unwrap().display().to_string();
            let text = std::fs::read_to_string(path).unwrap();
            let lines = without_tests(&text).lines().count();
            (lines > MAX_FILE_LINES && !LONG_FILES.contains(&rel.as_str()))
                .then(|| format!("{rel}: {lines} lines"))
        })
        .collect();
    assert!(long.is_empty(), "{long:#?}");
}

#[test]
fn the_import_reader_follows_nested_use_trees_and_skips_comments() {
    let text = without_comments(
        "use crate::{report::{Code, Finding}, sts::Failure};\n\
         // crate::app in a comment\n\
         let url = \"http://x\"; crate::time::now();\n",
    );
    let names: Vec<String> = first_segments(&text, "crate::").into_iter().collect();
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

/// The injector (`injector/src`, a crate of its own) keeps the house rules
/// too: each module opens with `//!`, no function is past
/// [`MAX_FUNCTION_LINES`] and no file past [`MAX_FILE_LINES`]. Its modules'
/// order is its own `lib.rs`'s to state; nothing in `src/` may use it.
#[test]
fn the_injector_keeps_the_house_rules_and_src_does_not_use_it() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("injector/src");
    let mut files = vec![];
    rust_files(&dir, None, &mut files);
    assert!(files.len() >= 6, "{files:?}");
    let mut wrong = vec![];
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        if !text.starts_with("//!") {
            wrong.push(format!("{}: no //! opening", path.display()));
        }
        let body = without_comments(without_tests(&text));
        if body.lines().count() > MAX_FILE_LINES {
            wrong.push(format!("{}: past {MAX_FILE_LINES} lines", path.display()));
        }
        wrong.extend(long_functions_in(&dir, path, &body));
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert!(files_naming(&["irsa_doctor_injector"]).is_empty());
}

/// Rule 13: the AWS configuration is loaded in one place,
/// `settings/aws.rs`, with the client the peers hand it; only
/// `peers/sts.rs` builds an STS client from it.
#[test]
fn one_file_loads_the_aws_configuration_and_one_builds_an_sts_client() {
    assert_eq!(
        files_naming(&["aws_config::defaults", "aws_config::load"]),
        set(&["settings/aws.rs"])
    );
    assert_eq!(
        files_naming(&["aws_sdk_sts::Client", "aws_sdk_sts::{"]),
        set(&["peers/sts.rs"])
    );
}

/// Log fields are an API (README, "Logs"): an error is `error` everywhere,
/// never `e` (what `%e` names the field) or `err`; `code` is a finding's
/// code, and STS's own code is `error_code`, as in the JSON report.
#[test]
fn log_fields_name_an_error_error_and_a_code_a_finding_code() {
    let mut files = vec![];
    rust_files(&src(), None, &mut files);
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

/// Rule 14: the check's steps share what they share through `check/run.rs`
/// (or a sibling), never by calling back into the pipeline that runs them:
/// no item defined in `check/mod.rs` is named from another file of
/// `check/`.
#[test]
fn the_checks_steps_never_call_back_into_the_pipeline() {
    let source = read_source();
    let text_of = |name: &str| {
        source
            .files
            .iter()
            .find(|(path, _)| path == name)
            .map(|(_, text)| text.clone())
            .unwrap()
    };
    let pipeline = text_of("check/mod.rs");
    let defined: Vec<String> = pipeline
        .lines()
        .filter_map(|line| {
            let line = line.strip_prefix("pub ").unwrap_or(line);
            let line = line.strip_prefix("async ").unwrap_or(line);
            ["fn ", "struct ", "enum ", "const "]
                .iter()
                .find_map(|k| line.strip_prefix(k))
                .map(|rest| {
                    rest.chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect()
                })
        })
        .collect();
    assert!(defined.iter().any(|d| d == "check"), "{defined:?}");
    let mut wrong = vec![];
    for (path, text) in &source.files {
        if !path.starts_with("check/") || path == "check/mod.rs" {
            continue;
        }
        for name in &defined {
            let direct = text.contains(&format!("super::{name}"));
            let listed = text.match_indices("use super::{").any(|(at, _)| {
                let list = &text[at..];
                let list = &list[..list.find('}').unwrap_or(list.len())];
                list.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .any(|word| word == name)
            });
            if direct || listed {
                wrong.push(format!("{path} -> check::{name}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:?}");
}
