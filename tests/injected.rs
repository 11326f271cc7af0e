//! The container irsa-doctor-injector writes, run as the real irsa-doctor:
//! the injector (its library, as `inject` calls it) patches a Deployment
//! whose ServiceAccount is in the stream, and the `irsa-doctor` container
//! it adds is run with exactly the plain variables it was given. This is
//! what no in-pod check could do alone: the expected role comes from the
//! ServiceAccount, so a pod the EKS webhook never reached says which role
//! it should have had (`ENV_NOT_INJECTED`), and a pod handed another role
//! fails (`ROLE_MISMATCH`) instead of passing as whatever `AWS_ROLE_ARN`
//! says.

use irsa_doctor_injector::{inject_stream, Mode, Options, Template};
use serde_json::{json, Value};
use testkit::doctor;
use testkit::fake_aws::FakeAws;
use testkit::jwt::{good_token, TokenVolume};
use testkit::world::ROLE_ARN;

/// Where the EKS webhook mounts IRSA's token; the test's token volume
/// stands in for it.
const TOKEN_FILE: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token";

/// A ServiceAccount naming `annotated`, and a Deployment running as it
/// whose app container carries `app_env` (the EKS webhook's variables, or
/// none when it never ran).
fn stream(annotated: &str, app_env: Value) -> String {
    let sa = json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "app", "namespace": "payments",
                     "annotations": {"eks.amazonaws.com/role-arn": annotated}}
    });
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "app", "namespace": "payments"},
        "spec": {
            "selector": {"matchLabels": {"app": "app"}},
            "template": {
                "metadata": {"labels": {"app": "app"}},
                "spec": {
                    "serviceAccountName": "app",
                    "containers": [{"name": "app", "image": "registry.example.com/app:1", "env": app_env,
                        "volumeMounts": [{"name": "aws-iam-token", "readOnly": true,
                            "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount"}]}],
                    "volumes": [{"name": "aws-iam-token", "projected": {"sources": [{"serviceAccountToken": {
                        "audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"}}]}}]
                }
            }
        }
    });
    format!("{sa}\n{deployment}\n")
}

/// The plain variables of the `irsa-doctor` container the injector adds
/// (init mode: it runs `check`).
fn injected_env(input: &str) -> Vec<(String, String)> {
    let options = Options {
        template: Template::embedded().unwrap(),
        image: Some("registry.example.com/irsa-doctor:test".to_owned()),
        mode: Mode::Init,
    };
    let (output, report) = inject_stream(input.as_bytes(), &options).unwrap();
    assert!(
        report
            .entries
            .iter()
            .any(|e| e.result.starts_with("injected")),
        "{:?}",
        report.entries.iter().map(|e| &e.result).collect::<Vec<_>>()
    );
    let deployment = serde_json::Deserializer::from_str(&output)
        .into_iter::<Value>()
        .map(Result::unwrap)
        .find(|d| d["kind"] == "Deployment")
        .unwrap();
    let spec = &deployment["spec"]["template"]["spec"];
    let doctor = spec["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "irsa-doctor")
        .expect("the injected container");
    assert_eq!(doctor["args"][0], "check", "{doctor}");
    doctor["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| {
            Some((
                v["name"].as_str()?.to_owned(),
                v["value"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// Runs `check` with the injected container's variables (the region and
/// STS endpoint point at the stand-in, as every test's do; the token file
/// at the test's volume).
async fn run_injected(
    env: &[(String, String)],
    sts: &testkit::fake_aws::FakeAwsServer,
    volume: &TokenVolume,
) -> testkit::Outcome {
    let mut d = doctor!(&sts.url());
    for (name, value) in env {
        let value = if value == TOKEN_FILE {
            volume.path().to_str().unwrap().to_owned()
        } else {
            value.clone()
        };
        if name != "AWS_REGION" && name != "AWS_DEFAULT_REGION" {
            d = d.env(name, &value);
        }
    }
    d.json().await
}

#[tokio::test]
async fn a_pod_the_eks_webhook_never_reached_names_the_service_account_s_role() {
    let env = injected_env(&stream(ROLE_ARN, json!([])));
    assert!(
        env.iter()
            .any(|(n, v)| n == "IRSA_DOCTOR_EXPECTED_ROLE_ARN" && v == ROLE_ARN),
        "{env:?}"
    );
    assert!(
        !env.iter().any(|(n, _)| n.starts_with("AWS_ROLE")),
        "{env:?}"
    );
    let sts = FakeAws::healthy().await;
    let volume = TokenVolume::new(&good_token());
    let out = run_injected(&env, &sts, &volume).await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let f = out.finding("ENV_NOT_INJECTED");
    assert!(f["expected"].as_str().unwrap().contains(ROLE_ARN), "{f}");
    let remedy = f["remedy"].as_str().unwrap();
    assert!(
        remedy.contains(&format!("eks.amazonaws.com/role-arn={ROLE_ARN}")),
        "{remedy}"
    );
}

fn irsa_env(role: &str) -> Value {
    json!([
        {"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"},
        {"name": "AWS_REGION", "value": "us-east-1"},
        {"name": "AWS_ROLE_ARN", "value": role},
        {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": TOKEN_FILE}
    ])
}

#[tokio::test]
async fn a_pod_that_got_the_service_account_s_role_passes() {
    let env = injected_env(&stream(ROLE_ARN, irsa_env(ROLE_ARN)));
    assert!(
        env.iter()
            .any(|(n, v)| n == "AWS_ROLE_ARN" && v == ROLE_ARN),
        "{env:?}"
    );
    let sts = FakeAws::healthy().await;
    let volume = TokenVolume::new(&good_token());
    let out = run_injected(&env, &sts, &volume).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.json()["verdict"], "pass", "{}", out.stdout);
}

#[tokio::test]
async fn a_pod_handed_another_role_than_its_service_account_names_fails() {
    // The ServiceAccount says billing; the container was given app (a
    // hand-set AWS_ROLE_ARN, or an annotation changed after the pod was
    // made). Without the injector's expected role this would pass.
    let billing = "arn:aws:iam::111122223333:role/billing";
    let env = injected_env(&stream(billing, irsa_env(ROLE_ARN)));
    let sts = FakeAws::healthy().await;
    let volume = TokenVolume::new(&good_token());
    let out = run_injected(&env, &sts, &volume).await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let f = out.finding("ROLE_MISMATCH");
    assert!(
        f["expected"]
            .as_str()
            .unwrap()
            .contains("assumed-role/billing/"),
        "{f}"
    );
}
