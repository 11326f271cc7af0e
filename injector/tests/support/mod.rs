//! What the injector's tests share: the options, the kubernetes-validate
//! runner, and fixture loading.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use irsa_doctor_injector::{Mode, Options, Template};
use serde_json::Value;

pub const IMAGE: &str = "registry.example.com/irsa-doctor:test";

pub fn options(mode: Mode) -> Options {
    Options {
        template: Template::embedded().unwrap(),
        image: Some(IMAGE.to_owned()),
        mode,
    }
}

pub fn manifest_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// kubernetes-validate: $KUBERNETES_VALIDATE (CI sets it), else the
/// workspace's .venv, else PATH; the same search as testkit::venv_tool,
/// repeated here so that the injector's tests do not build the test kit.
pub fn kubernetes_validate() -> PathBuf {
    if let Some(p) = std::env::var_os("KUBERNETES_VALIDATE") {
        return p.into();
    }
    let venv = manifest_dir().join("../.venv/bin/kubernetes-validate");
    if venv.exists() {
        return venv;
    }
    "kubernetes-validate".into()
}

/// Writes each document to its own file and runs `kubernetes-validate
/// --strict` once over all of them; fails with its output otherwise.
pub fn assert_valid(documents: &[(String, Value)]) {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (name, doc) in documents {
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
        files.push(path);
    }
    let out = Command::new(kubernetes_validate())
        .arg("--strict")
        .args(&files)
        .output()
        .expect("kubernetes-validate runs (bash .ci/run installs it into .venv)");
    assert!(
        out.status.success(),
        "kubernetes-validate --strict refused a result:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub mod webhook;

/// The EKS pod identity webhook's fixture pods (tests/fixtures/eks-webhook
/// and its containercredentials folder), sorted.
pub fn eks_fixtures() -> Vec<PathBuf> {
    let root = manifest_dir().join("tests/fixtures/eks-webhook");
    let mut files = Vec::new();
    for dir in [root.clone(), root.join("containercredentials")] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.to_string_lossy().ends_with(".pod.yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 20, "the fixtures are missing: {files:?}");
    files
}

/// A fixture read the way the webhook's own tests read it
/// (sigs.k8s.io/yaml: a repeated key's last value wins); one of them
/// repeats `serviceAccountName`.
pub fn load_fixture(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    let options = serde_saphyr::options! {
        duplicate_keys: serde_saphyr::options::DuplicateKeyPolicy::LastWins
    };
    serde_saphyr::from_str_with_options(&text, options).unwrap()
}

/// The annotation holding the patch the EKS webhook's test expects.
pub const EXPECTED_PATCH: &str = "testing.eks.amazonaws.com/expectedPatch";

/// A fixture as EKS hands it on: its expectedPatch applied.
pub fn as_eks_hands_it_on(path: &Path) -> Value {
    let mut pod = load_fixture(path);
    if let Some(patch) = pod["metadata"]["annotations"][EXPECTED_PATCH].as_str() {
        let patch: json_patch::Patch = serde_json::from_str(patch).unwrap();
        json_patch::patch(&mut pod, &patch).unwrap();
    }
    pod
}
