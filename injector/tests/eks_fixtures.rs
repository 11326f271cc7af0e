//! The EKS pod identity webhook's own fixtures (fixtures/eks-webhook, see
//! its README): each raw pod with the webhook's expected patch applied is a
//! pod exactly as EKS hands it on. The injector must give irsa-doctor the
//! same AWS variables and token mounts the app got, and every result must
//! be a valid pod.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use irsa_doctor_injector::plan::apply_to_json;
use irsa_doctor_injector::{inject, Identity, Mode, Outcome};
use k8s_openapi::api::core::v1::{Container, EnvVar, Pod, PodSpec, VolumeMount};
use serde_json::Value;
use serde_saphyr::options::DuplicateKeyPolicy;
use support::{assert_valid, options};

const EXPECTED_PATCH: &str = "testing.eks.amazonaws.com/expectedPatch";
const ROLE: &str = "testing.eks.amazonaws.com/serviceAccount/roleArn";
const CREDENTIAL_NAMES: [&str; 4] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
];

fn fixtures() -> Vec<PathBuf> {
    let root = support::manifest_dir().join("tests/fixtures/eks-webhook");
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

/// The webhook's fixture files are read the way the webhook's own tests
/// read them (sigs.k8s.io/yaml: a repeated key's last value wins); one of
/// them repeats `serviceAccountName`.
fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    let options = serde_saphyr::options! { duplicate_keys: DuplicateKeyPolicy::LastWins };
    serde_saphyr::from_str_with_options(&text, options).unwrap()
}

/// RFC 6902 `add`, the only operation the fixtures use; a minimal applier
/// rather than a crate for one test.
fn apply_patch(doc: &mut Value, patch: &str) {
    let ops: Vec<Value> = serde_json::from_str(patch).unwrap();
    for op in ops {
        assert_eq!(op["op"], "add", "only add is implemented: {op}");
        let path: Vec<String> = op["path"]
            .as_str()
            .unwrap()
            .split('/')
            .skip(1)
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect();
        let (last, parents) = path.split_last().unwrap();
        let mut target = &mut *doc;
        for key in parents {
            target = match target {
                Value::Array(a) => &mut a[key.parse::<usize>().unwrap()],
                other => other.get_mut(key).unwrap(),
            };
        }
        let value = op["value"].clone();
        match target {
            Value::Array(a) if last == "-" => a.push(value),
            Value::Array(a) => a.insert(last.parse().unwrap(), value),
            Value::Object(o) => {
                o.insert(last.clone(), value);
            }
            other => panic!("cannot add to {other}"),
        }
    }
}

/// A fixture as EKS hands it on, and the identity the webhook's test
/// gives its ServiceAccount (none for the Pod Identity fixtures, whose
/// identity shows only in the variables).
fn mutated(path: &Path) -> (Pod, Identity) {
    let mut doc = load(path);
    let patch = doc["metadata"]["annotations"][EXPECTED_PATCH]
        .as_str()
        .map(str::to_owned);
    if let Some(patch) = patch {
        apply_patch(&mut doc, &patch);
    }
    let identity = match doc["metadata"]["annotations"][ROLE].as_str() {
        Some(role) => Identity::ServiceAccount {
            role_arn: role.to_owned(),
        },
        None => Identity::Unknown,
    };
    (serde_json::from_value(doc).unwrap(), identity)
}

fn doctor(spec: &PodSpec) -> Vec<&Container> {
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .filter(|c| c.name == "irsa-doctor")
        .collect()
}

fn aws_env(c: &Container) -> BTreeMap<String, String> {
    c.env
        .iter()
        .flatten()
        .filter(|v: &&EnvVar| {
            v.name.starts_with("AWS_") && !CREDENTIAL_NAMES.contains(&v.name.as_str())
        })
        .map(|v| (v.name.clone(), v.value.clone().unwrap_or_default()))
        .collect()
}

/// The app's mounts of volumes that hold a projected token with an
/// audience, the ones the EKS webhook adds.
fn token_mounts(c: &Container, spec: &PodSpec) -> Vec<VolumeMount> {
    let token_volumes: Vec<&str> = spec
        .volumes
        .iter()
        .flatten()
        .filter(|v| {
            v.projected
                .as_ref()
                .and_then(|p| p.sources.as_ref())
                .is_some_and(|s| {
                    s.iter().all(|s| {
                        s.service_account_token
                            .as_ref()
                            .is_some_and(|t| t.audience.is_some())
                    })
                })
        })
        .map(|v| v.name.as_str())
        .collect();
    c.volume_mounts
        .iter()
        .flatten()
        .filter(|m| token_volumes.contains(&m.name.as_str()))
        .cloned()
        .collect()
}

/// The container the webhook gave credentials to that the injector copies
/// from: the first one not named in skip-containers that has AWS variables.
fn app(pod: &Pod) -> Option<&Container> {
    let skipped = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("eks.amazonaws.com/skip-containers"))
        .cloned()
        .unwrap_or_default();
    let spec = pod.spec.as_ref().unwrap();
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .filter(|c| !skipped.split(',').any(|s| s.trim() == c.name))
        .find(|c| !aws_env(c).is_empty())
}

#[test]
fn irsa_doctor_gets_exactly_the_app_variables_and_token_mounts_on_every_eks_fixture() {
    let mut results = Vec::new();
    let mut injected = 0;
    for path in fixtures() {
        let name = path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".pod.yaml", "");
        let (pod, identity) = mutated(&path);
        let spec = pod.spec.as_ref().unwrap();
        for mode in [Mode::Sidecar, Mode::Init] {
            let (patched, plan) = inject(&pod.metadata, spec, &identity, &options(mode));
            if name.contains("indows") {
                assert_eq!(plan.outcome, Outcome::Windows, "{name}");
                assert_eq!(&patched, spec, "{name}");
                continue;
            }
            assert_eq!(plan.outcome, Outcome::Injected(mode), "{name}");
            injected += 1;
            let doctors = doctor(&patched);
            assert_eq!(doctors.len(), 1, "{name}: one irsa-doctor");
            let doc = doctors[0];
            assert_eq!(
                patched.init_containers.as_ref().unwrap().last().unwrap(),
                doc,
                "{name}: appended last"
            );
            let app = app(&pod)
                .unwrap_or_else(|| panic!("{name}: the webhook gave no container variables"));
            assert_eq!(
                aws_env(doc),
                aws_env(app),
                "{name} ({mode:?}): the variables"
            );
            assert_eq!(
                doc.volume_mounts.clone().unwrap_or_default(),
                token_mounts(app, spec),
                "{name} ({mode:?}): the mounts"
            );
            let expected = identity.expected_role_arn().map(str::to_owned);
            let got = doc
                .env
                .iter()
                .flatten()
                .find(|v| v.name == "IRSA_DOCTOR_EXPECTED_ROLE_ARN")
                .and_then(|v| v.value.clone());
            assert_eq!(got, expected, "{name}: the expected role");
            assert_eq!(
                doc.restart_policy.as_deref(),
                (mode == Mode::Sidecar).then_some("Always"),
                "{name}"
            );

            // Idempotent: planned again on its own result, nothing to do.
            let again =
                irsa_doctor_injector::plan(&pod.metadata, &patched, &identity, &options(mode));
            assert_eq!(
                again.outcome,
                Outcome::AlreadyPresent,
                "{name}: a second run"
            );
            assert!(again.changes.is_empty());

            // The raw-JSON path gives the pod the typed path gives.
            let mut raw = serde_json::to_value(&pod).unwrap();
            for change in &plan.changes {
                assert!(apply_to_json(&mut raw["spec"], change));
            }
            let typed = Pod {
                spec: Some(patched.clone()),
                ..pod.clone()
            };
            assert_eq!(
                raw,
                serde_json::to_value(&typed).unwrap(),
                "{name}: JSON and typed paths agree"
            );
            results.push((format!("{name}-{mode:?}"), raw));
        }
    }
    assert!(injected >= 36, "{injected} injections");
    assert_valid(&results);
}

#[test]
fn the_raw_pods_get_the_doctor_when_the_service_account_names_the_role() {
    // Before the EKS webhook ran (or if it never does): no AWS variables,
    // but the annotation is known, so the doctor goes in and will report
    // ENV_NOT_INJECTED naming the role if EKS never fills them.
    for path in fixtures() {
        let doc = load(&path);
        let Some(role) = doc["metadata"]["annotations"][ROLE]
            .as_str()
            .map(str::to_owned)
        else {
            continue;
        };
        let pod: Pod = serde_json::from_value(doc).unwrap();
        let spec = pod.spec.as_ref().unwrap();
        let identity = Identity::ServiceAccount {
            role_arn: role.clone(),
        };
        let (patched, plan) = inject(&pod.metadata, spec, &identity, &options(Mode::Sidecar));
        if matches!(plan.outcome, Outcome::Windows) {
            continue;
        }
        assert_eq!(plan.outcome, Outcome::Injected(Mode::Sidecar), "{path:?}");
        let doc = doctor(&patched)[0];
        let env: BTreeMap<_, _> = doc
            .env
            .iter()
            .flatten()
            .map(|v| (v.name.as_str(), v.value.as_deref()))
            .collect();
        assert_eq!(env["IRSA_DOCTOR_EXPECTED_ROLE_ARN"], Some(role.as_str()));
    }
}
