//! The README documents the binary as it is: its pasted `--help` output is
//! the real one, and every finding code the binary can emit has a row in
//! the README's table.

use std::path::Path;
use std::process::Command;

use irsa_doctor::Code;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
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
    let readme = readme();
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
            readme.contains(&pasted),
            "README.md's `irsa-doctor {}` differs from the binary's:\n{text}",
            args.join(" ")
        );
    }
}

#[test]
fn every_finding_code_has_a_row_in_the_readme_that_matches_its_declaration() {
    let readme = readme();
    for code in Code::ALL {
        let start = format!("| `{}` |", code.as_str());
        let row = readme
            .lines()
            .find(|l| l.starts_with(&start))
            .unwrap_or_else(|| {
                panic!(
                    "{} is not in the README's finding-code table",
                    code.as_str()
                )
            });
        let cells: Vec<&str> = row.split(" | ").collect();
        assert!(
            cells[1].starts_with(code.kind().as_str()),
            "{}: the README's kind is {:?}, the code's is {}",
            code.as_str(),
            cells[1],
            code.kind().as_str()
        );
        assert_eq!(
            cells[2],
            code.step().as_str(),
            "{}: the README's step differs from the code's",
            code.as_str()
        );
    }
}
