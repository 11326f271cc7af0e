//! The webhook over HTTPS with its real lookups against the Kubernetes API
//! and EKS API stand-ins, each faulted in turn (hang, 403, 500, 429 or
//! throttling, garbage): every pod is admitted (`allowed: true`, its
//! `uid`) within the 2 s the issue allows, with a warning that names the
//! failed lookup, and the failure is counted. A pod whose containers show
//! IRSA's variables still gets the doctor from them; one that shows
//! nothing is admitted unpatched as `error`, the outcome the
//! "admitted without the doctor" alert counts.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_eks::config::{Credentials, Region};
use irsa_doctor_injector::lookup::{Associations, CachePolicy, Lookups, ServiceAccounts};
use irsa_doctor_injector::webhook::server::Limits;
use serde_json::Value;
use support::webhook::{irsa_pod, patch_of, plain_pod, review_of, series, Running};
use testkit::eks_api::{self, EksApi};
use testkit::kube_api::{self, KubeApi};
use testkit::world::{CLUSTER, NAMESPACE, ROLE_ARN, SERVICE_ACCOUNT};

const KUBE_TOKEN: &str = "kube-bearer-faults-7Qm2";
const KEY_ID: &str = "AKIAINJECTORFAULTS01";
const SECRET: &str = "eks-secret-faults-Wd81xLq0";
/// What the issue allows the webhook for one review.
const ANSWER_LIMIT: Duration = Duration::from_secs(2);

struct World {
    kube: KubeApi,
    eks: EksApi,
    webhook: Running,
}

impl World {
    async fn start(
        kube_fault: Option<kube_api::Fault>,
        eks_fault: Option<eks_api::Fault>,
    ) -> World {
        let kube = KubeApi::start(KUBE_TOKEN).await;
        let eks = EksApi::start(SECRET).await;
        kube.add_service_account(NAMESPACE, SERVICE_ACCOUNT, Some(ROLE_ARN));
        kube.set_fault(kube_fault);
        eks.set_fault(eks_fault);
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let kubeconfig =
            kube::config::Kubeconfig::from_yaml(&kube.kubeconfig_yaml(KUBE_TOKEN)).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        let service_accounts = ServiceAccounts::new(ServiceAccounts::client(config).unwrap());
        let sdk = aws_sdk_eks::Config::builder()
            .behavior_version_latest()
            .region(Region::new("us-east-1"))
            .endpoint_url(eks.url())
            .credentials_provider(Credentials::new(KEY_ID, SECRET, None, None, "test"));
        let associations = Associations::new(sdk, CLUSTER.to_owned());
        let lookups =
            Lookups::with_cache(service_accounts, Some(associations), CachePolicy::default());
        let webhook = Running::start(Arc::new(lookups), Limits::default()).await;
        World { kube, eks, webhook }
    }

    /// Reviews `pod`; the answer's JSON and how long it took.
    async fn review(&self, pod: Value) -> (Value, Duration) {
        let started = Instant::now();
        let answer = self
            .webhook
            .mutate(&review_of(pod, NAMESPACE, "CREATE"))
            .await;
        let took = started.elapsed();
        assert_eq!(answer.status, 200, "{}", answer.body);
        (answer.json(), took)
    }
}

/// Allowed, the uid echoed, within the limit, and a warning naming
/// `names` without the token or the secret key.
fn assert_admitted_with_warning(answer: &Value, took: Duration, names: &str, case: &str) {
    let response = &answer["response"];
    assert_eq!(response["allowed"], true, "{case}: {answer}");
    assert_eq!(
        response["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002",
        "{case}"
    );
    assert!(took < ANSWER_LIMIT, "{case}: answered in {took:?}");
    let warnings: Vec<&str> = response["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("{case}: no warnings in {answer}"))
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains(names)),
        "{case}: {warnings:?}"
    );
    let text = answer.to_string();
    assert!(
        !text.contains(KUBE_TOKEN) && !text.contains(SECRET),
        "{case}: {text}"
    );
}

#[tokio::test]
async fn each_kubernetes_api_fault_admits_the_pod_in_time_with_a_warning() {
    use kube_api::Fault::*;
    let faults = [
        (Hang, "timeout"),
        (Status(403), "denied"),
        (Status(500), "error"),
        (
            TooManyRequests {
                retry_after_seconds: 5,
            },
            "throttled",
        ),
        (Garbage, "error"),
    ];
    for (fault, outcome) in faults {
        let case = format!("{fault:?}");
        let w = World::start(Some(fault), None).await;
        // The containers show IRSA: the doctor is injected from them.
        let (answer, took) = w.review(irsa_pod()).await;
        assert_admitted_with_warning(&answer, took, "ServiceAccount payments/app", &case);
        assert!(patch_of(&answer).is_some(), "{case}: {answer}");
        let metrics = w.webhook.scrape().await;
        let failed = format!(
            "irsa_doctor_injector_lookups_total{{lookup=\"service_account\",outcome=\"{outcome}\"}}"
        );
        assert_eq!(series(&metrics, &failed), 1.0, "{case}:\n{metrics}");
        assert_eq!(
            series(
                &metrics,
                "irsa_doctor_injector_admissions_total{outcome=\"injected\",mechanism=\"irsa\"}"
            ),
            1.0,
            "{case}:\n{metrics}"
        );
        assert!(w.kube.requests() >= 1, "{case}");
    }
}

#[tokio::test]
async fn each_eks_api_fault_admits_the_pod_in_time_with_a_warning() {
    use eks_api::Fault::*;
    let faults = [
        (Hang, "timeout"),
        (AccessDenied, "denied"),
        (Error(500, "ServerException".into()), "error"),
        (Throttling, "throttled"),
        (Garbage, "error"),
    ];
    for (fault, outcome) in faults {
        let case = format!("{fault:?}");
        let w = World::start(None, Some(fault)).await;
        let (answer, took) = w.review(irsa_pod()).await;
        assert_admitted_with_warning(&answer, took, "association of payments/app", &case);
        // The annotation still names the expected role.
        let patch = patch_of(&answer).unwrap_or_else(|| panic!("{case}: {answer}"));
        assert!(patch.to_string().contains(ROLE_ARN), "{case}: {patch}");
        let metrics = w.webhook.scrape().await;
        let failed = format!(
            "irsa_doctor_injector_lookups_total{{lookup=\"association\",outcome=\"{outcome}\"}}"
        );
        assert_eq!(series(&metrics, &failed), 1.0, "{case}:\n{metrics}");
        assert!(w.eks.requests() >= 1, "{case}");
    }
}

#[tokio::test]
async fn both_apis_hanging_admit_a_pod_without_identity_unpatched_as_an_error() {
    let w = World::start(Some(kube_api::Fault::Hang), Some(eks_api::Fault::Hang)).await;
    let (answer, took) = w.review(plain_pod(SERVICE_ACCOUNT)).await;
    assert_admitted_with_warning(&answer, took, "ServiceAccount payments/app", "both hang");
    assert!(patch_of(&answer).is_none(), "{answer}");
    let metrics = w.webhook.scrape().await;
    assert_eq!(
        series(
            &metrics,
            "irsa_doctor_injector_admissions_total{outcome=\"error\",mechanism=\"none\"}"
        ),
        1.0,
        "{metrics}"
    );
    // /healthz is answered while the APIs hang.
    assert_eq!(w.webhook.get("/healthz").await.status, 200);
}
