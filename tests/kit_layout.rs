//! The test kit's layout, checked on its source: its modules import each
//! other without a cycle, and `world` and `clock`, which the stand-ins share
//! instead of importing each other, import nothing from the kit.
//!
//! The graph is read from `crate::<name>` paths in `testkit/src/` (the
//! binaries in `src/bin/` are crates of their own and excluded), unit tests
//! included: a cycle through a test module is still a cycle a reader has to
//! untangle. A name at the crate root (`crate::Moto`) is an edge to `lib`.
//! Run with `--nocapture` to print the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

mod source_graph;
use source_graph::{find_cycle, first_segments, rust_files, without_comments};

fn kit_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testkit/src")
}

/// The top-level module a file belongs to (`fake_aws/iam.rs` is part of
/// `fake_aws`); `lib` for the crate root.
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(kit_src()).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_str()
        .unwrap();
    first.trim_end_matches(".rs").to_owned()
}

/// The kit's modules and what each imports from the kit.
fn kit_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = vec![];
    // The binaries reach the kit as `testkit::`, like any user.
    rust_files(&kit_src(), Some(&kit_src().join("bin")), &mut files);
    let lib = without_comments(&std::fs::read_to_string(kit_src().join("lib.rs")).unwrap());
    let modules: BTreeSet<String> = lib
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            l.strip_prefix("pub mod ")
                .or_else(|| l.strip_prefix("mod "))?
                .strip_suffix(';')
        })
        .map(str::to_owned)
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in files {
        let module = module_of(&path);
        let text = without_comments(&std::fs::read_to_string(&path).unwrap());
        let mut names = first_segments(&text, "crate::");
        if module == "lib" {
            // At the root, a module is named without `crate::`: `jwt::Jwt`.
            let declarations: String = text
                .lines()
                .filter(|l| {
                    !l.trim_start().starts_with("pub mod ") && !l.trim().starts_with("mod ")
                })
                .collect::<Vec<_>>()
                .join("\n");
            for m in &modules {
                if !first_segments(&declarations, &format!("{m}::")).is_empty() {
                    names.insert(m.clone());
                }
            }
        }
        let deps = graph.entry(module.clone()).or_default();
        for name in names {
            let target = if modules.contains(&name) {
                name
            } else {
                "lib".to_owned()
            };
            if target != module {
                deps.insert(target);
            }
        }
    }
    graph
}

#[test]
fn the_test_kit_imports_have_no_cycle() {
    let graph = kit_graph();
    for (module, deps) in &graph {
        println!("{module} -> {deps:?}");
    }
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "the test kit's modules import each other in a circle: {}",
            cycle.join(" -> ")
        );
    }
    // No cycle because no edge was read would prove nothing: the stand-ins'
    // edges to what they share must be there.
    for (module, dep) in [("agent", "world"), ("fake_aws", "clock"), ("jwt", "world")] {
        assert!(
            graph.get(module).is_some_and(|deps| deps.contains(dep)),
            "no edge {module} -> {dep}; the graph was not read: {graph:?}"
        );
    }
}

#[test]
fn world_and_clock_import_nothing_from_the_kit() {
    let graph = kit_graph();
    for module in ["world", "clock"] {
        let deps = graph
            .get(module)
            .unwrap_or_else(|| panic!("the kit has no `{module}` module: {graph:?}"));
        assert_eq!(
            deps,
            &BTreeSet::new(),
            "{module} is what the stand-ins share; it must sit below all of them"
        );
    }
}

#[test]
fn the_cycle_finder_finds_the_kit_s_old_circle() {
    // Before `world` and `clock`, jwt took the audience from agent and the
    // pod's names from fake_aws, which took the issuer and the clock from
    // jwt.
    let edges = [
        ("agent", "jwt"),
        ("agent", "fake_aws"),
        ("fake_aws", "jwt"),
        ("jwt", "agent"),
        ("jwt", "fake_aws"),
    ];
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, to) in edges {
        graph.entry(from.into()).or_default().insert(to.into());
    }
    let cycle = find_cycle(&graph).expect("a cycle");
    assert_eq!(cycle.first(), cycle.last());
    assert!(cycle.len() >= 3, "{cycle:?}");
}
