//! The pure function on hand-made pods: idempotence, an existing
//! irsa-doctor, skip-containers, both modes and the mode annotation,
//! credentials never copied, Pod Identity associations.

mod support;

use std::collections::BTreeMap;

use irsa_doctor_injector::{inject, Association, Identity, Mode, Outcome};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use serde_json::json;
use support::{options, IMAGE};

const ROLE: &str = "arn:aws:iam::111122223333:role/app";

/// A pod as the EKS webhook leaves it for IRSA, plus whatever `extra`
/// merges into its first container.
fn irsa_pod(annotations: serde_json::Value, containers: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "app", "namespace": "payments", "annotations": annotations},
        "spec": {
            "serviceAccountName": "app",
            "containers": containers,
            "volumes": [
                {"name": "aws-iam-token", "projected": {"sources": [{"serviceAccountToken": {"audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"}}]}},
                {"name": "kube-api-access-x", "projected": {"sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}, {"configMap": {"name": "kube-root-ca.crt"}}]}}
            ]
        }
    }))
    .unwrap()
}

fn app_with_env(name: &str) -> serde_json::Value {
    json!({
        "name": name, "image": "app",
        "env": [
            {"name": "AWS_ROLE_ARN", "value": ROLE},
            {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"},
            {"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"},
            {"name": "AWS_ACCESS_KEY_ID", "value": "AKIAEXAMPLE"},
            {"name": "AWS_SECRET_ACCESS_KEY", "value": "not-for-the-doctor"},
            {"name": "AWS_REGION", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            {"name": "DB_URL", "value": "postgres://"}
        ],
        "volumeMounts": [
            {"name": "aws-iam-token", "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount", "readOnly": true},
            {"name": "kube-api-access-x", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}
        ]
    })
}

fn the_doctor(spec: &PodSpec) -> &Container {
    spec.init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .find(|c| c.name == "irsa-doctor")
        .unwrap()
}

fn env(c: &Container) -> BTreeMap<String, Option<String>> {
    c.env
        .iter()
        .flatten()
        .map(|v| (v.name.clone(), v.value.clone()))
        .collect()
}

#[test]
fn the_doctor_gets_the_files_and_endpoints_never_a_credential_nor_the_api_token() {
    let pod = irsa_pod(json!({}), json!([app_with_env("app")]));
    let identity = Identity::ServiceAccount {
        role_arn: ROLE.into(),
    };
    let (spec, plan) = inject(
        &pod.metadata,
        pod.spec.as_ref().unwrap(),
        &identity,
        &options(Mode::Sidecar),
    );
    assert_eq!(plan.outcome, Outcome::Injected(Mode::Sidecar));
    let doctor = the_doctor(&spec);
    let env = env(doctor);
    assert_eq!(env["AWS_ROLE_ARN"].as_deref(), Some(ROLE));
    assert!(env.contains_key("AWS_WEB_IDENTITY_TOKEN_FILE"));
    assert!(env.contains_key("AWS_STS_REGIONAL_ENDPOINTS"));
    for never in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "DB_URL",
    ] {
        assert!(!env.contains_key(never), "{never} copied");
    }
    let mounts: Vec<&str> = doctor
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(mounts, ["aws-iam-token"]);
    assert_eq!(doctor.image.as_deref(), Some(IMAGE));
    assert_eq!(env["IRSA_DOCTOR_EXPECTED_ROLE_ARN"].as_deref(), Some(ROLE));
}

#[test]
fn applying_twice_equals_applying_once() {
    for mode in [Mode::Sidecar, Mode::Init] {
        let pod = irsa_pod(json!({}), json!([app_with_env("app")]));
        let identity = Identity::ServiceAccount {
            role_arn: ROLE.into(),
        };
        let (once, _) = inject(
            &pod.metadata,
            pod.spec.as_ref().unwrap(),
            &identity,
            &options(mode),
        );
        let (twice, plan) = inject(&pod.metadata, &once, &identity, &options(mode));
        assert_eq!(plan.outcome, Outcome::AlreadyPresent);
        assert_eq!(once, twice);
    }
}

#[test]
fn a_doctor_injected_before_the_eks_webhook_ran_gets_only_what_it_lacks() {
    // Our webhook first, EKS second without reinvocation (#91): the app has
    // the variables, the doctor has one of them and the mode's own vars.
    let doctor = json!({"name": "irsa-doctor", "image": "mine", "restartPolicy": "Always",
        "env": [{"name": "AWS_ROLE_ARN", "value": ROLE}, {"name": "IRSA_DOCTOR_EXPECTED_ROLE_ARN", "value": ROLE}]});
    let mut pod = irsa_pod(json!({}), json!([app_with_env("app")]));
    pod.spec.as_mut().unwrap().init_containers =
        Some(vec![serde_json::from_value(doctor).unwrap()]);
    let identity = Identity::ServiceAccount {
        role_arn: "arn:aws:iam::111122223333:role/other".into(),
    };
    let (spec, plan) = inject(
        &pod.metadata,
        pod.spec.as_ref().unwrap(),
        &identity,
        &options(Mode::Init),
    );
    assert_eq!(plan.outcome, Outcome::Completed);
    assert_eq!(
        spec.init_containers.as_ref().unwrap().len(),
        1,
        "nothing duplicated"
    );
    let doctor = the_doctor(&spec);
    let names: Vec<&str> = doctor
        .env
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "AWS_ROLE_ARN",
            "IRSA_DOCTOR_EXPECTED_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_STS_REGIONAL_ENDPOINTS"
        ]
    );
    assert_eq!(
        env(doctor)["IRSA_DOCTOR_EXPECTED_ROLE_ARN"].as_deref(),
        Some(ROLE),
        "the user's own value is kept"
    );
    assert_eq!(doctor.image.as_deref(), Some("mine"));
    assert_eq!(doctor.volume_mounts.as_ref().unwrap().len(), 1);
    let (_, again) = inject(&pod.metadata, &spec, &identity, &options(Mode::Init));
    assert_eq!(again.outcome, Outcome::AlreadyPresent);
}

#[test]
fn a_classic_sidecar_doctor_in_containers_is_completed_not_duplicated() {
    let pod = irsa_pod(
        json!({}),
        json!([app_with_env("app"), {"name": "irsa-doctor", "image": "mine"}]),
    );
    let (spec, plan) = inject(
        &pod.metadata,
        pod.spec.as_ref().unwrap(),
        &Identity::Unknown,
        &options(Mode::Sidecar),
    );
    assert_eq!(plan.outcome, Outcome::Completed);
    assert!(spec.init_containers.is_none());
    assert!(env(&spec.containers[1]).contains_key("AWS_WEB_IDENTITY_TOKEN_FILE"));
}

#[test]
fn skip_containers_chooses_the_source_and_can_exclude_the_doctor() {
    let first = json!({"name": "sidecar", "image": "x", "env": [{"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::111122223333:role/sidecar"}]});
    let pod = irsa_pod(
        json!({"eks.amazonaws.com/skip-containers": "sidecar"}),
        json!([first, app_with_env("app")]),
    );
    let (spec, _) = inject(
        &pod.metadata,
        pod.spec.as_ref().unwrap(),
        &Identity::Unknown,
        &options(Mode::Sidecar),
    );
    assert_eq!(
        env(the_doctor(&spec))["AWS_ROLE_ARN"].as_deref(),
        Some(ROLE),
        "the skipped sidecar is not the source"
    );

    let pod = irsa_pod(
        json!({"eks.amazonaws.com/skip-containers": "istio-proxy, irsa-doctor"}),
        json!([app_with_env("app")]),
    );
    let identity = Identity::ServiceAccount {
        role_arn: ROLE.into(),
    };
    let (spec, plan) = inject(
        &pod.metadata,
        pod.spec.as_ref().unwrap(),
        &identity,
        &options(Mode::Sidecar),
    );
    assert_eq!(plan.outcome, Outcome::Injected(Mode::Sidecar));
    let doctor = the_doctor(&spec);
    assert!(
        !env(doctor).keys().any(|k| k.starts_with("AWS_")),
        "skip-containers names irsa-doctor: no AWS variables"
    );
    assert!(doctor.volume_mounts.is_none());
}

#[test]
fn no_identity_anywhere_means_no_doctor() {
    let pod = irsa_pod(json!({}), json!([{"name": "app", "image": "app"}]));
    let (spec, plan) = inject(
        &pod.metadata,
        pod.spec.as_ref().unwrap(),
        &Identity::Unknown,
        &options(Mode::Sidecar),
    );
    assert_eq!(plan.outcome, Outcome::NoIdentity);
    assert_eq!(&spec, pod.spec.as_ref().unwrap());
}

#[test]
fn the_mode_annotation_chooses_per_pod_and_a_wrong_one_warns() {
    let identity = Identity::ServiceAccount {
        role_arn: ROLE.into(),
    };
    let pod = irsa_pod(
        json!({"irsa-doctor.io/mode": "init"}),
        json!([app_with_env("app")]),
    );
    let (spec, plan) = inject(
        &pod.metadata,
        pod.spec.as_ref().unwrap(),
        &identity,
        &options(Mode::Sidecar),
    );
    assert_eq!(plan.outcome, Outcome::Injected(Mode::Init));
    let doctor = the_doctor(&spec);
    assert_eq!(doctor.args.as_deref(), Some(&["check".to_owned()][..]));
    assert_eq!(doctor.restart_policy, None);
    assert!(doctor.startup_probe.is_none());

    let pod = irsa_pod(
        json!({"irsa-doctor.io/mode": "sidecars"}),
        json!([app_with_env("app")]),
    );
    let plan = irsa_doctor_injector::plan(
        &pod.metadata,
        pod.spec.as_ref().unwrap(),
        &identity,
        &options(Mode::Init),
    );
    assert_eq!(plan.outcome, Outcome::Injected(Mode::Init));
    assert!(plan.warnings[0].contains("sidecars"), "{:?}", plan.warnings);
}

#[test]
fn an_association_gives_its_target_role_and_options_before_eks_fills_the_variables() {
    // The association race (aws/containers-roadmap#2507): no variables
    // yet, but the association is known, so the doctor goes in and can
    // name the expected role when EKS never fills them.
    let pod = irsa_pod(json!({}), json!([{"name": "app", "image": "app"}]));
    let identity = Identity::Association(Association {
        role_arn: "arn:aws:iam::111122223333:role/hop".into(),
        target_role_arn: Some("arn:aws:iam::444455556666:role/target".into()),
        disable_session_tags: true,
        session_policy: Some(r#"{"Version":"2012-10-17","Statement":[]}"#.into()),
    });
    let (spec, plan) = inject(
        &pod.metadata,
        pod.spec.as_ref().unwrap(),
        &identity,
        &options(Mode::Sidecar),
    );
    assert_eq!(plan.outcome, Outcome::Injected(Mode::Sidecar));
    let env = env(the_doctor(&spec));
    assert_eq!(
        env["IRSA_DOCTOR_EXPECTED_ROLE_ARN"].as_deref(),
        Some("arn:aws:iam::444455556666:role/target")
    );
    assert_eq!(
        env["IRSA_DOCTOR_ASSOCIATION_ROLE_ARN"].as_deref(),
        Some("arn:aws:iam::111122223333:role/hop")
    );
    assert_eq!(env["IRSA_DOCTOR_SESSION_TAGS"].as_deref(), Some("disabled"));
    assert!(env["IRSA_DOCTOR_SESSION_POLICY"]
        .as_deref()
        .unwrap()
        .contains("2012-10-17"));
}

#[test]
fn the_doctor_goes_after_existing_init_containers_and_sidecars() {
    // A mesh's init containers and proxy must be up before anything calls
    // STS through it.
    let mut pod = irsa_pod(json!({}), json!([app_with_env("app")]));
    pod.spec.as_mut().unwrap().init_containers = Some(vec![
        serde_json::from_value(json!({"name": "istio-init", "image": "proxy"})).unwrap(),
        serde_json::from_value(
            json!({"name": "istio-proxy", "image": "proxy", "restartPolicy": "Always"}),
        )
        .unwrap(),
    ]);
    let (spec, _) = inject(
        &pod.metadata,
        pod.spec.as_ref().unwrap(),
        &Identity::Unknown,
        &options(Mode::Sidecar),
    );
    let names: Vec<&str> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["istio-init", "istio-proxy", "irsa-doctor"]);
}
