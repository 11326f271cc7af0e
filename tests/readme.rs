//! The documents describe the binary as it is: the reference's pasted
//! `--help` output is the real one, every finding code the binary can emit
//! has a row in its table, the README's quickstart names commands that
//! exist, and every relative link and anchor in README.md and `docs/`
//! leads somewhere.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use irsa_doctor::Code;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `docs/reference.md`, where `--help`, the exit codes and the finding
/// codes live.
fn reference() -> String {
    fs::read_to_string(root().join("docs/reference.md")).unwrap()
}

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_irsa-doctor"))
        .args(args)
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_pasted_help_is_the_real_help() {
    let reference = reference();
    for args in [
        &["--help"][..],
        &["check", "--help"],
        &["serve", "--help"],
        &["exec", "--help"],
        &["install", "--help"],
        &["explain", "--help"],
    ] {
        let text = help(args);
        let pasted = format!("$ irsa-doctor {}\n{text}", args.join(" "));
        assert!(
            reference.contains(&pasted),
            "docs/reference.md's `irsa-doctor {}` differs from the binary's:\n{text}",
            args.join(" ")
        );
    }
}

#[test]
fn every_finding_code_has_a_row_in_the_reference_that_matches_its_declaration() {
    let reference = reference();
    for code in Code::ALL {
        let start = format!("| `{}` |", code.as_str());
        let row = reference
            .lines()
            .find(|l| l.starts_with(&start))
            .unwrap_or_else(|| {
                panic!(
                    "{} is not in docs/reference.md's finding-code table",
                    code.as_str()
                )
            });
        let cells: Vec<&str> = row.split(" | ").collect();
        assert!(
            cells[1].starts_with(code.kind().as_str()),
            "{}: docs/reference.md's kind is {:?}, the code's is {}",
            code.as_str(),
            cells[1],
            code.kind().as_str()
        );
        assert_eq!(
            cells[2],
            code.step().as_str(),
            "{}: docs/reference.md's step differs from the code's",
            code.as_str()
        );
    }
}

/// The Quickstart's promise: two commands on a fresh machine, the demo and
/// the tests, and both exist.
#[test]
fn the_quickstart_is_two_commands_that_exist() {
    let readme = fs::read_to_string(root().join("README.md")).unwrap();
    let quickstart = readme
        .split_once("\n## Quickstart\n")
        .expect("a Quickstart section")
        .1;
    let block = quickstart
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("a sh block in the Quickstart")
        .0;
    let commands: Vec<&str> = block
        .lines()
        .map(|l| l.split_once(" #").map_or(l, |(c, _)| c).trim())
        .collect();
    assert_eq!(commands, ["cargo run --example demo", "bash .ci/run"]);
    assert!(root().join("examples/demo.rs").is_file());
    assert!(root().join(".ci/run").is_file());
}

/// What `.ci/run` installs, by the names a reader would look for: apt
/// packages, `.venv` packages (`-bin` wrappers named by their tool),
/// `cargo install`s and the nightly toolchain.
fn what_ci_installs() -> Vec<String> {
    let script = fs::read_to_string(root().join(".ci/run")).unwrap();
    let mut names = vec![];
    for line in script.lines().map(str::trim) {
        if let Some((_, rest)) = line.split_once("apt-get install") {
            let package = rest.split_whitespace().filter(|w| !w.starts_with('-'));
            names.extend(package.take_while(|w| *w != ">/dev/null").map(String::from));
        }
        if let Some((_, rest)) = line.split_once("cargo install") {
            let krate = rest.split_whitespace().find(|w| !w.starts_with('-'));
            names.extend(krate.map(|k| k.split('@').next().unwrap_or(k).to_owned()));
        }
        for quoted in line.split('\'').skip(1).step_by(2) {
            let name = quoted.split(['[', '=', '>', '<']).next().unwrap_or(quoted);
            if line.contains("pip install") || line.starts_with('\'') {
                let tool = name.trim_end_matches("-bin").trim_end_matches("-cli");
                names.push(tool.to_owned());
            }
        }
        if line.contains("rustup toolchain install nightly") {
            names.push("nightly".to_owned());
        }
    }
    names
}

/// A newcomer read the Quickstart's list of what `bash .ci/run` installs
/// and found half of it missing: every tool the script installs is named
/// there, with how long a cold run takes.
#[test]
fn the_quickstart_names_everything_ci_installs() {
    let readme = fs::read_to_string(root().join("README.md")).unwrap();
    let quickstart = readme
        .split_once("\n## Quickstart\n")
        .and_then(|(_, rest)| rest.split_once("\n## "))
        .expect("a Quickstart section")
        .0;
    let installs = what_ci_installs();
    for expected in [
        "musl-tools",
        "prometheus",
        "moto",
        "hadolint",
        "cargo-deny",
        "nightly",
    ] {
        assert!(
            installs.iter().any(|n| n == expected),
            "the parse of .ci/run misses {expected}: {installs:?}"
        );
    }
    for name in &installs {
        assert!(
            quickstart.contains(name.as_str()),
            "the README's Quickstart does not say that `bash .ci/run` installs {name}"
        );
    }
    assert!(
        quickstart.contains("minutes on 2 cores"),
        "how long a cold run takes"
    );
}

/// GitHub's anchor for a heading: lower case, spaces to `-`, punctuation
/// other than `-` and `_` dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The lines of a Markdown file outside its fenced code blocks.
fn prose(text: &str) -> impl Iterator<Item = &str> {
    let mut in_code = false;
    text.lines().filter(move |line| {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            return false;
        }
        !in_code
    })
}

/// The anchors of a Markdown file's headings; a repeated heading gets
/// `-1`, `-2`, ... as on GitHub.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for line in prose(text) {
        let hashes = line.len() - line.trim_start_matches('#').len();
        if hashes == 0 || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(&line[hashes..]);
        let n = seen.entry(base.clone()).or_default();
        out.insert(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    out
}

/// The targets of a line's inline links, `[text](target)`.
fn link_targets(line: &str) -> Vec<&str> {
    let mut out = vec![];
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let Some(end) = after.find(')') else { break };
        out.push(after[..end].trim());
        rest = &after[end..];
    }
    out
}

/// README.md and every Markdown file under `docs/`.
fn documents() -> Vec<PathBuf> {
    let mut out = vec![root().join("README.md")];
    let mut dirs = vec![root().join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `dir/target` with `.` and `..` resolved by hand, so that a link that
/// climbs out of the repository is caught rather than followed.
fn resolve(dir: &Path, target: &str) -> Option<PathBuf> {
    let mut path = dir.to_path_buf();
    for part in Path::new(target).components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if path == root() || !path.pop() {
                    return None;
                }
            }
            Component::Normal(p) => path.push(p),
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(path)
}

/// A reader who follows a link lands on a file and a heading that exist:
/// the README was split into `docs/`, and each move could strand a link.
#[test]
fn every_relative_link_and_anchor_in_the_documents_resolves() {
    let documents = documents();
    assert!(documents.len() > 10, "{documents:?}");
    let mut broken = vec![];
    let mut checked = 0;
    for doc in &documents {
        let text = fs::read_to_string(doc).unwrap();
        let dir = doc.parent().unwrap();
        let name = doc.strip_prefix(root()).unwrap().display().to_string();
        for target in prose(&text).flat_map(link_targets) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
            let file = if path.is_empty() {
                Some(doc.clone())
            } else {
                resolve(dir, path)
            };
            let Some(file) = file.filter(|f| f.exists()) else {
                broken.push(format!("{name}: {target}: no such file"));
                continue;
            };
            if anchor.is_empty() {
                continue;
            }
            let known = file.extension().is_some_and(|e| e == "md")
                && anchors(&fs::read_to_string(&file).unwrap()).contains(anchor);
            if !known {
                broken.push(format!("{name}: {target}: no such heading"));
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} links found: is the parser right?"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn anchors_follow_githubs_rules() {
    let text = "# Run it as a sidecar (`serve`)\n```sh\n# not a heading\n```\n\
                ## Behind a TLS-inspecting proxy (`AWS_CA_BUNDLE`)\n## Limits\n## Limits\n";
    let found = anchors(text);
    let expected: BTreeSet<String> = [
        "run-it-as-a-sidecar-serve",
        "behind-a-tls-inspecting-proxy-aws_ca_bundle",
        "limits",
        "limits-1",
    ]
    .map(String::from)
    .into();
    assert_eq!(found, expected);
    assert_eq!(
        link_targets("see [a](x.md#b) and [c](#d)."),
        ["x.md#b", "#d"]
    );
}
