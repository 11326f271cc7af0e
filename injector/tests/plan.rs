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

fn plan_of(pod: &Pod, identity: &Identity, mode: Mode) -> (PodSpec, irsa_doctor_injector::Plan) {
    inject(
        &pod.metadata,
        pod.spec.as_ref().unwrap(),
        identity,
        &options(mode),
    )
}

fn aws_names(c: &Container) -> Vec<String> {
    c.env
        .iter()
        .flatten()
        .filter(|v| v.name.starts_with("AWS_"))
        .map(|v| v.name.clone())
        .collect()
}

const TOKEN_FILE: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token";
const PI_TOKEN_FILE: &str =
    "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token";

fn pod_identity_app() -> serde_json::Value {
    json!({"name": "app", "image": "app", "env": [
        {"name": "AWS_CONTAINER_CREDENTIALS_FULL_URI", "value": "http://169.254.170.23/v1/credentials"},
        {"name": "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "value": PI_TOKEN_FILE}
    ]})
}

#[test]
fn a_region_alone_or_static_keys_are_no_identity_and_get_no_doctor() {
    for env in [
        json!([{"name": "AWS_REGION", "value": "eu-west-1"}]),
        json!([{"name": "AWS_ACCESS_KEY_ID", "value": "AKIAEXAMPLE"}, {"name": "AWS_SECRET_ACCESS_KEY", "value": "s"}]),
        json!([{"name": "AWS_ROLE_ARN", "value": ROLE}]),
    ] {
        let pod = irsa_pod(
            json!({}),
            json!([{"name": "app", "image": "app", "env": env}]),
        );
        let (spec, plan) = plan_of(&pod, &Identity::Unknown, Mode::Sidecar);
        assert_eq!(plan.outcome, Outcome::NoIdentity, "{env}");
        assert_eq!(&spec, pod.spec.as_ref().unwrap());
    }
}

#[test]
fn the_source_is_the_first_container_with_an_identity_pair_not_one_with_a_region() {
    let region_only = json!({"name": "proxy", "image": "p", "env": [{"name": "AWS_REGION", "value": "us-east-1"}]});
    let pod = irsa_pod(json!({}), json!([region_only, app_with_env("app")]));
    let (spec, plan) = plan_of(&pod, &Identity::Unknown, Mode::Sidecar);
    assert_eq!(plan.outcome, Outcome::Injected(Mode::Sidecar));
    let env = env(the_doctor(&spec));
    assert_eq!(env["AWS_ROLE_ARN"].as_deref(), Some(ROLE));
    assert!(!env.contains_key("AWS_REGION"), "not from the proxy");
}

#[test]
fn only_the_variables_the_eks_webhook_writes_are_copied() {
    let mut app = app_with_env("app");
    let extra = [
        ("AWS_SECURITY_TOKEN", "t"),
        ("AWS_SECRET_KEY", "s"),
        ("AWS_ACCESS_KEY", "a"),
        ("AWS_BEARER_TOKEN_BEDROCK", "b"),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "c"),
        ("AWS_CA_BUNDLE", "/etc/ca/bundle.pem"),
        ("AWS_CONFIG_FILE", "/etc/aws/config"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/etc/aws/credentials"),
        ("AWS_PROFILE", "prod"),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
    ];
    let vars = app["env"].as_array_mut().unwrap();
    for (name, value) in extra {
        vars.push(json!({"name": name, "value": value}));
    }
    let pod = irsa_pod(json!({}), json!([app]));
    let identity = Identity::ServiceAccount {
        role_arn: ROLE.into(),
    };
    let (spec, _) = plan_of(&pod, &identity, Mode::Sidecar);
    assert_eq!(
        aws_names(the_doctor(&spec)),
        [
            "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_STS_REGIONAL_ENDPOINTS",
            "AWS_DEFAULT_REGION"
        ]
    );
}

#[test]
fn a_token_for_another_audience_is_not_mounted_into_the_doctor() {
    let mut app = app_with_env("app");
    app["volumeMounts"].as_array_mut().unwrap().push(
        json!({"name": "vault-token", "mountPath": "/var/run/secrets/vault", "readOnly": true}),
    );
    let mut pod = irsa_pod(json!({}), json!([app]));
    pod.spec.as_mut().unwrap().volumes.as_mut().unwrap().push(
        serde_json::from_value(json!({"name": "vault-token", "projected": {"sources": [{"serviceAccountToken": {"audience": "vault", "path": "token"}}]}})).unwrap(),
    );
    let (spec, _) = plan_of(&pod, &Identity::Unknown, Mode::Sidecar);
    let mounts: Vec<&str> = the_doctor(&spec)
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(mounts, ["aws-iam-token"]);
}

#[test]
fn a_host_network_pod_gets_no_sidecar_port_on_the_node() {
    let mut pod = irsa_pod(json!({}), json!([app_with_env("app")]));
    pod.spec.as_mut().unwrap().host_network = Some(true);
    let identity = Identity::ServiceAccount {
        role_arn: ROLE.into(),
    };
    let (spec, plan) = plan_of(&pod, &identity, Mode::Sidecar);
    assert!(plan.changes.is_empty(), "{:?}", plan.outcome);
    assert_eq!(&spec, pod.spec.as_ref().unwrap());
    // The check opens no port: init mode is injected.
    let (spec, plan) = plan_of(&pod, &identity, Mode::Init);
    assert_eq!(plan.outcome, Outcome::Injected(Mode::Init));
    assert!(the_doctor(&spec).ports.is_none());
}

#[test]
fn the_annotations_role_is_not_expected_when_the_pod_runs_on_pod_identity() {
    let identity = Identity::ServiceAccount {
        role_arn: ROLE.into(),
    };
    // The association won at the EKS webhook: only Pod Identity's pair.
    let pod = irsa_pod(json!({}), json!([pod_identity_app()]));
    let (spec, plan) = plan_of(&pod, &identity, Mode::Sidecar);
    assert_eq!(plan.outcome, Outcome::Injected(Mode::Sidecar));
    assert!(
        !env(the_doctor(&spec)).contains_key("IRSA_DOCTOR_EXPECTED_ROLE_ARN"),
        "the annotation's role is not the one the pod gets"
    );
    assert!(
        plan.warnings.iter().any(|w| w.contains("unused")),
        "{:?}",
        plan.warnings
    );
    // Both pairs (IRSA by hand): web identity wins, the annotation stands.
    let mut both = pod_identity_app();
    both["env"].as_array_mut().unwrap().extend([
        json!({"name": "AWS_ROLE_ARN", "value": ROLE}),
        json!({"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": TOKEN_FILE}),
    ]);
    let pod = irsa_pod(json!({}), json!([both]));
    let (spec, _) = plan_of(&pod, &identity, Mode::Sidecar);
    assert_eq!(
        env(the_doctor(&spec))["IRSA_DOCTOR_EXPECTED_ROLE_ARN"].as_deref(),
        Some(ROLE)
    );
}

#[test]
fn skip_containers_leaving_the_doctor_nothing_while_the_identity_is_unknown_means_no_doctor() {
    for skip in ["irsa-doctor", "app", "app,irsa-doctor"] {
        let pod = irsa_pod(
            json!({"eks.amazonaws.com/skip-containers": skip}),
            json!([app_with_env("app")]),
        );
        let (_, plan) = plan_of(&pod, &Identity::Unknown, Mode::Sidecar);
        assert_eq!(plan.outcome, Outcome::NoIdentity, "{skip}");
    }
}

#[test]
fn a_variable_named_twice_in_the_source_is_copied_once_with_the_value_kubernetes_uses() {
    let mut app = app_with_env("app");
    app["env"].as_array_mut().unwrap().extend([
        json!({"name": "AWS_DEFAULT_REGION", "value": "us-east-1"}),
        json!({"name": "AWS_DEFAULT_REGION", "value": "eu-west-1"}),
    ]);
    let pod = irsa_pod(json!({}), json!([app]));
    let (spec, _) = plan_of(&pod, &Identity::Unknown, Mode::Sidecar);
    let doctor = the_doctor(&spec);
    let regions: Vec<&str> = doctor
        .env
        .iter()
        .flatten()
        .filter(|v| v.name == "AWS_DEFAULT_REGION")
        .filter_map(|v| v.value.as_deref())
        .collect();
    assert_eq!(regions, ["eu-west-1"]);
}
