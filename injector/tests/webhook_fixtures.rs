//! The EKS pod identity webhook's own fixtures (fixtures/eks-webhook),
//! through our webhook: each pod as EKS hands it on (its expectedPatch
//! applied), in an AdmissionReview, must come back with a patch that,
//! applied, gives the pod phase 1's `inject()` gives; a second review of
//! the result adds nothing; and `kubernetes-validate --strict` accepts
//! every result.

mod support;

use std::sync::Arc;
use std::time::Duration;

use irsa_doctor_injector::webhook::{Metrics, Webhook};
use irsa_doctor_injector::{Identity, Mode};
use serde_json::Value;
use support::webhook::*;

const ROLE: &str = "testing.eks.amazonaws.com/serviceAccount/roleArn";

async fn review(hook: &Webhook, pod: &Value) -> Value {
    let body = serde_json::to_vec(&review_of(pod.clone(), "default", "CREATE")).unwrap();
    let answer: Value = serde_json::from_slice(&hook.review(&body).await.unwrap()).unwrap();
    assert_eq!(answer["response"]["allowed"], true);
    answer
}

#[tokio::test]
async fn every_eks_fixture_through_the_webhook_equals_phase_one_and_validates() {
    let mut results = Vec::new();
    let mut patched_count = 0;
    for path in support::eks_fixtures() {
        let name = path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".pod.yaml", "");
        let pod = support::as_eks_hands_it_on(&path);
        let service_account = pod["spec"]["serviceAccountName"]
            .as_str()
            .unwrap_or("default")
            .to_owned();
        let identity = match pod["metadata"]["annotations"][ROLE].as_str() {
            Some(role) => irsa(role),
            None => Identity::Unknown,
        };
        for mode in [Mode::Sidecar, Mode::Init] {
            let hook = Webhook {
                options: support::options(mode),
                own_namespace: Some("irsa-doctor".to_owned()),
                lookup_budget: Duration::from_secs(2),
                resolver: Arc::new(FakeResolve::default().with(
                    "default",
                    &service_account,
                    identity.clone(),
                )),
                inspecting: Webhook::inspecting(),
                metrics: Arc::new(Metrics::default()),
            };
            let answer = review(&hook, &pod).await;
            let result = apply_response(&pod, &answer);
            assert_eq!(
                result,
                phase_one(&pod, &identity, mode),
                "{name} ({mode:?})"
            );
            if name.contains("indows") {
                assert_eq!(
                    patch_of(&answer),
                    None,
                    "{name}: Windows pods are left alone"
                );
                continue;
            }
            assert!(patch_of(&answer).is_some(), "{name} ({mode:?}): patched");
            patched_count += 1;
            let again = review(&hook, &result).await;
            assert_eq!(
                patch_of(&again),
                None,
                "{name} ({mode:?}): a second review adds nothing"
            );
            results.push((format!("{name}-{mode:?}"), result));
        }
    }
    assert!(patched_count >= 36, "only {patched_count} fixtures patched");
    support::assert_valid(&results);
}
