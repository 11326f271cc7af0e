//! The EKS pod identity webhook's own fixtures (fixtures/eks-webhook, see
//! its README): each raw pod with the webhook's expected patch applied is a
//! pod exactly as EKS hands it on. The injector must give irsa-doctor the
//! same AWS variables and token mounts the app got, and every result must
//! be a valid pod.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use irsa_doctor_injector::plan::apply_to_json;
use irsa_doctor_injector::{inject, Identity, Mode, Outcome};
use k8s_openapi::api::core::v1::{Container, EnvVar, Pod, PodSpec, VolumeMount};
use support::{assert_valid, options};

const ROLE: &str = "testing.eks.amazonaws.com/serviceAccount/roleArn";
/// What the EKS webhook writes, listed here by hand from its fixtures (not
/// taken from the product's filter): the doctor gets these and no other
/// `AWS_*` variable.
const WEBHOOK_WRITES: [&str; 7] = [
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];

/// A fixture as EKS hands it on, and the identity the webhook's test
/// gives its ServiceAccount (none for the Pod Identity fixtures, whose
/// identity shows only in the variables).
fn mutated(path: &Path) -> (Pod, Identity) {
    let doc = support::as_eks_hands_it_on(path);
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
        .filter(|v: &&EnvVar| WEBHOOK_WRITES.contains(&v.name.as_str()))
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
/// from: the first one not named in skip-containers that has a whole
/// identity, the role and token file of IRSA or the URI and token file of
/// Pod Identity (rawPodHasAll sets AWS_ROLE_ARN by hand and gets no token
/// file: no SDK acts on that, so it is no source).
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
        .find(|c| {
            let vars = aws_env(c);
            let has = |n: &str| vars.contains_key(n);
            (has("AWS_ROLE_ARN") && has("AWS_WEB_IDENTITY_TOKEN_FILE"))
                || (has("AWS_CONTAINER_CREDENTIALS_FULL_URI")
                    && has("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"))
        })
}

#[test]
fn irsa_doctor_gets_exactly_the_app_variables_and_token_mounts_on_every_eks_fixture() {
    let mut results = Vec::new();
    let mut injected = 0;
    let mut with_source = 0;
    for path in support::eks_fixtures() {
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
            let every_aws: Vec<&str> = doc
                .env
                .iter()
                .flatten()
                .map(|v| v.name.as_str())
                .filter(|n| n.starts_with("AWS_"))
                .collect();
            assert!(
                every_aws.iter().all(|n| WEBHOOK_WRITES.contains(n)),
                "{name}: {every_aws:?}"
            );
            assert_eq!(
                patched.init_containers.as_ref().unwrap().last().unwrap(),
                doc,
                "{name}: appended last"
            );
            let app = app(&pod);
            assert!(
                app.is_some() || identity.is_known(),
                "{name}: injected with no identity"
            );
            with_source += usize::from(app.is_some());
            assert_eq!(
                aws_env(doc),
                app.map(aws_env).unwrap_or_default(),
                "{name} ({mode:?}): the variables"
            );
            assert_eq!(
                doc.volume_mounts.clone().unwrap_or_default(),
                app.map(|app| token_mounts(app, spec)).unwrap_or_default(),
                "{name} ({mode:?}): the mounts"
            );
            // The webhook gives Pod Identity's variables only, never the
            // annotation's role, when the association wins
            // (rawPodWithRoleArn): the pod will not act as that role.
            let on_pod_identity = {
                let vars = app.map(aws_env).unwrap_or_default();
                vars.contains_key("AWS_CONTAINER_CREDENTIALS_FULL_URI")
                    && !vars.contains_key("AWS_ROLE_ARN")
            };
            let expected = identity
                .expected_role_arn()
                .filter(|_| !on_pod_identity)
                .map(str::to_owned);
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
    assert!(
        with_source >= 30,
        "only {with_source} had variables to copy"
    );
    assert_valid(&results);
}

#[test]
fn the_raw_pods_get_the_doctor_when_the_service_account_names_the_role() {
    // Before the EKS webhook ran (or if it never does): no AWS variables,
    // but the annotation is known, so the doctor goes in and will report
    // ENV_NOT_INJECTED naming the role if EKS never fills them.
    let mut exercised = 0;
    for path in support::eks_fixtures() {
        let doc = support::load_fixture(&path);
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
        exercised += 1;
    }
    // Not vacuous: the fixtures name a role for most of their pods.
    assert!(exercised >= 15, "only {exercised} fixtures named a role");
}
