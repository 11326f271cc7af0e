//! The webhook's lookups against loopback stand-ins of the Kubernetes API
//! (testkit::kube_api) and the EKS API (testkit::eks_api, SigV4 checked):
//! found and not found, every fault answered within 1.5 s with the right
//! outcome and a warning, the cache, the association over the annotation,
//! no secret in a warning or a log line, and the EKS webhook's raw fixture
//! pods injected with the role the lookups found.
//!
//! The clients are built from explicit configuration (a kubeconfig value,
//! an EKS config with endpoint and static credentials), never from the
//! process environment, since the tests run side by side in threads;
//! `tests/lookups_env.rs` covers `connect`'s environment path.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_eks::config::{Credentials, Region};
use irsa_doctor_injector::lookup::{
    Associations, CachePolicy, LookupKind, LookupOutcome, LookupRecord, Lookups, Resolve, Resolved,
    ServiceAccounts,
};
use irsa_doctor_injector::{inject, Association, Identity, Mode, Outcome};
use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;
use testkit::eks_api::{self, EksApi};
use testkit::kube_api::{self, KubeApi};
use testkit::world::{CLUSTER, NAMESPACE, ROLE_ARN, SERVICE_ACCOUNT};

const KUBE_TOKEN: &str = "kube-bearer-Zq81vX0pLmT3";
const KEY_ID: &str = "AKIAINJECTORTEST0001";
const SECRET: &str = "eks-secret-Hk29dPw0qYv7Ls";
const TARGET_ROLE: &str = "arn:aws:iam::444455556666:role/payments-target";
const HOP_ROLE: &str = "arn:aws:iam::111122223333:role/payments-hop";
/// A fault must be answered within this, the lookups' 1 s budget and some
/// scheduling slack.
const FAULT_LIMIT: Duration = Duration::from_millis(1500);

async fn kube_client(api: &KubeApi, token: &str) -> kube::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&api.kubeconfig_yaml(token)).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    ServiceAccounts::client(config).unwrap()
}

fn eks_config(url: &str, secret: &str) -> aws_sdk_eks::config::Builder {
    aws_sdk_eks::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(Credentials::new(KEY_ID, secret, None, None, "test"))
}

struct World {
    kube: KubeApi,
    eks: EksApi,
}

impl World {
    async fn start() -> World {
        World {
            kube: KubeApi::start(KUBE_TOKEN).await,
            eks: EksApi::start(SECRET).await,
        }
    }

    async fn lookups(&self) -> Lookups {
        self.lookups_with(KUBE_TOKEN, SECRET, CachePolicy::default())
            .await
    }

    async fn lookups_with(&self, token: &str, secret: &str, policy: CachePolicy) -> Lookups {
        let sa = ServiceAccounts::new(kube_client(&self.kube, token).await);
        let eks = Associations::new(eks_config(&self.eks.url(), secret), CLUSTER.to_owned());
        Lookups::with_cache(sa, Some(eks), policy)
    }

    fn association(&self, namespace: &str, sa: &str, target: Option<&str>) {
        self.eks.add(eks_api::Association {
            cluster: CLUSTER.into(),
            namespace: namespace.into(),
            service_account: sa.into(),
            role_arn: HOP_ROLE.into(),
            target_role_arn: target.map(Into::into),
            disable_session_tags: true,
            policy: Some("{\"Version\":\"2012-10-17\",\"Statement\":[]}".into()),
        });
    }
}

fn record(kind: LookupKind, outcome: LookupOutcome, cached: bool) -> LookupRecord {
    LookupRecord {
        kind,
        outcome,
        cached,
    }
}

fn outcomes(r: &Resolved) -> Vec<(LookupKind, LookupOutcome)> {
    r.records.iter().map(|r| (r.kind, r.outcome)).collect()
}

async fn resolve(lookups: &Lookups) -> Resolved {
    lookups.resolve(NAMESPACE, SERVICE_ACCOUNT).await
}

#[tokio::test]
async fn an_annotated_service_account_without_association_gives_its_role() {
    let w = World::start().await;
    w.kube
        .add_service_account(NAMESPACE, SERVICE_ACCOUNT, Some(ROLE_ARN));
    let r = resolve(&w.lookups().await).await;
    assert_eq!(
        r.identity,
        Identity::ServiceAccount {
            role_arn: ROLE_ARN.into()
        }
    );
    assert_eq!(
        r.records,
        vec![
            record(LookupKind::ServiceAccount, LookupOutcome::Found, false),
            record(LookupKind::Association, LookupOutcome::NotFound, false),
        ]
    );
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[tokio::test]
async fn neither_service_account_nor_association_is_not_found_and_unknown() {
    let w = World::start().await;
    let r = resolve(&w.lookups().await).await;
    assert_eq!(r.identity, Identity::Unknown);
    assert_eq!(
        outcomes(&r),
        vec![
            (LookupKind::ServiceAccount, LookupOutcome::NotFound),
            (LookupKind::Association, LookupOutcome::NotFound),
        ]
    );
    assert!(r.warnings.is_empty() && !r.any_failed());
}

#[tokio::test]
async fn a_service_account_without_the_annotation_is_found_with_no_role() {
    let w = World::start().await;
    w.kube.add_service_account(NAMESPACE, SERVICE_ACCOUNT, None);
    let r = resolve(&w.lookups().await).await;
    assert_eq!(r.identity, Identity::Unknown);
    assert_eq!(r.records[0].outcome, LookupOutcome::Found);
}

#[tokio::test]
async fn the_association_wins_over_the_annotation_with_all_its_options() {
    let w = World::start().await;
    w.kube
        .add_service_account(NAMESPACE, SERVICE_ACCOUNT, Some(ROLE_ARN));
    // Another service account's association must not be taken.
    w.association(NAMESPACE, "other", None);
    w.association(NAMESPACE, SERVICE_ACCOUNT, Some(TARGET_ROLE));
    let r = resolve(&w.lookups().await).await;
    assert_eq!(
        r.identity,
        Identity::Association(Association {
            role_arn: HOP_ROLE.into(),
            target_role_arn: Some(TARGET_ROLE.into()),
            disable_session_tags: true,
            session_policy: Some("{\"Version\":\"2012-10-17\",\"Statement\":[]}".into()),
        })
    );
    assert_eq!(r.identity.expected_role_arn(), Some(TARGET_ROLE));
    assert_eq!(
        outcomes(&r),
        vec![
            (LookupKind::ServiceAccount, LookupOutcome::Found),
            (LookupKind::Association, LookupOutcome::Found),
        ]
    );
    // List, then Describe.
    assert_eq!(w.eks.requests(), 2);
}

#[tokio::test]
async fn without_a_cluster_name_only_the_service_account_is_asked() {
    let w = World::start().await;
    w.association(NAMESPACE, SERVICE_ACCOUNT, None);
    let sa = ServiceAccounts::new(kube_client(&w.kube, KUBE_TOKEN).await);
    let r = resolve(&Lookups::new(sa, None)).await;
    assert_eq!(r.records.len(), 1);
    assert_eq!(r.records[0].kind, LookupKind::ServiceAccount);
    assert_eq!(w.eks.requests(), 0);
}

#[tokio::test]
async fn answers_are_cached_and_a_second_call_sends_nothing() {
    let w = World::start().await;
    w.kube
        .add_service_account(NAMESPACE, SERVICE_ACCOUNT, Some(ROLE_ARN));
    let lookups = w.lookups().await;
    let first = resolve(&lookups).await;
    let (kube, eks) = (w.kube.requests(), w.eks.requests());
    let second = resolve(&lookups).await;
    assert_eq!((w.kube.requests(), w.eks.requests()), (kube, eks));
    assert_eq!(second.identity, first.identity);
    assert!(second.records.iter().all(|r| r.cached), "{second:?}");
    // Another service account is another key.
    lookups.resolve(NAMESPACE, "other").await;
    assert_eq!(w.kube.requests(), kube + 1);
}

#[tokio::test]
async fn a_failure_is_kept_five_seconds_and_is_still_a_warning() {
    let w = World::start().await;
    w.kube.set_fault(Some(kube_api::Fault::Status(500)));
    w.eks.set_fault(Some(eks_api::Fault::Throttling));
    let lookups = w.lookups().await;
    let first = resolve(&lookups).await;
    w.kube.set_fault(None);
    w.eks.set_fault(None);
    let (kube, eks) = (w.kube.requests(), w.eks.requests());
    let second = resolve(&lookups).await;
    assert_eq!((w.kube.requests(), w.eks.requests()), (kube, eks));
    assert_eq!(outcomes(&second), outcomes(&first));
    assert!(second.records.iter().all(|r| r.cached));
    assert_eq!(second.warnings.len(), 2, "{:?}", second.warnings);
    // With failures not kept, the next call asks again.
    let no_failures = CachePolicy {
        failure_ttl: Duration::ZERO,
        ..CachePolicy::default()
    };
    let lookups = w.lookups_with(KUBE_TOKEN, SECRET, no_failures).await;
    w.kube.set_fault(Some(kube_api::Fault::Status(500)));
    resolve(&lookups).await;
    w.kube.set_fault(None);
    let r = resolve(&lookups).await;
    assert!(!r.any_failed() && !r.records[0].cached, "{r:?}");
}

#[tokio::test]
async fn concurrent_admissions_for_one_service_account_send_one_request() {
    let w = World::start().await;
    w.kube
        .add_service_account(NAMESPACE, SERVICE_ACCOUNT, Some(ROLE_ARN));
    let lookups = Arc::new(w.lookups().await);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let lookups = lookups.clone();
        tasks.spawn(async move { resolve(&lookups).await });
    }
    let mut cached = 0;
    while let Some(r) = tasks.join_next().await {
        let r = r.unwrap();
        assert!(r.identity.is_known(), "{r:?}");
        cached += usize::from(r.records[0].cached);
    }
    assert_eq!(w.kube.requests(), 1);
    assert_eq!(w.eks.requests(), 1, "one List, nothing found");
    assert_eq!(cached, 19);
}

/// Resolves with both stand-ins faulted and checks the outcomes, the time
/// and the warnings.
async fn faulted(
    kube: Option<kube_api::Fault>,
    eks: Option<eks_api::Fault>,
) -> (Resolved, Duration) {
    let w = World::start().await;
    w.kube
        .add_service_account(NAMESPACE, SERVICE_ACCOUNT, Some(ROLE_ARN));
    w.kube.set_fault(kube);
    w.eks.set_fault(eks);
    let lookups = w.lookups().await;
    let started = Instant::now();
    let r = resolve(&lookups).await;
    let took = started.elapsed();
    assert!(took < FAULT_LIMIT, "took {took:?}: {r:?}");
    (r, took)
}

#[tokio::test]
async fn each_kubernetes_fault_is_its_outcome_within_the_budget_with_a_warning() {
    use kube_api::Fault::*;
    let cases = [
        (Hang, LookupOutcome::Timeout),
        (Status(403), LookupOutcome::Denied),
        (Status(500), LookupOutcome::Error),
        (
            TooManyRequests {
                retry_after_seconds: 5,
            },
            LookupOutcome::Throttled,
        ),
        (Garbage, LookupOutcome::Error),
        // A valid ServiceAccount with the role, 8 MiB long: `found` to a
        // client that reads it all.
        (Huge, LookupOutcome::Error),
        (HugeChunked, LookupOutcome::Error),
    ];
    for (fault, outcome) in cases {
        let (r, _) = faulted(Some(fault.clone()), None).await;
        assert_eq!(r.records[0].outcome, outcome, "{fault:?}: {r:?}");
        assert_eq!(r.identity, Identity::Unknown, "{fault:?}");
        assert_eq!(r.warnings.len(), 1, "{fault:?}: {:?}", r.warnings);
        let warning = &r.warnings[0];
        assert!(
            warning.starts_with("ServiceAccount payments/app could not be read (")
                && warning.contains("the doctor's expected role is not set")
                && !warning.contains('\n'),
            "{fault:?}: {warning}"
        );
        if matches!(fault, Huge | HugeChunked) {
            assert!(
                warning.contains("past the 1048576 bytes the injector reads"),
                "{fault:?}: {warning}"
            );
        }
    }
}

#[tokio::test]
async fn each_eks_fault_is_its_outcome_within_the_budget_and_the_annotation_stays() {
    use eks_api::Fault::*;
    let cases = [
        (Hang, LookupOutcome::Timeout),
        (AccessDenied, LookupOutcome::Denied),
        (Error(500, "ServerException".into()), LookupOutcome::Error),
        (Throttling, LookupOutcome::Throttled),
        (Garbage, LookupOutcome::Error),
        (Huge, LookupOutcome::Error),
        // No associations, 8 MiB long: `not_found` to a client that reads
        // it all.
        (HugeChunked, LookupOutcome::Error),
    ];
    for (fault, outcome) in cases {
        let (r, _) = faulted(None, Some(fault.clone())).await;
        assert_eq!(r.records[1].outcome, outcome, "{fault:?}: {r:?}");
        assert_eq!(r.identity.expected_role_arn(), Some(ROLE_ARN), "{fault:?}");
        assert_eq!(r.warnings.len(), 1, "{fault:?}: {:?}", r.warnings);
        assert!(
            r.warnings[0].starts_with(
                "the EKS Pod Identity association of payments/app in cluster payments-prod could not be read ("
            ),
            "{fault:?}: {}",
            r.warnings[0]
        );
        assert!(
            r.warnings[0].ends_with(
                "the doctor expects the ServiceAccount's annotated role, which an association \
                 would override"
            ),
            "{fault:?}: {}",
            r.warnings[0]
        );
    }
    let (huge, _) = faulted(None, Some(Huge)).await;
    assert!(
        huge.warnings[0].contains("an answer of 8388608 bytes, past the 1048576"),
        "{}",
        huge.warnings[0]
    );
    let (chunked, _) = faulted(None, Some(HugeChunked)).await;
    assert!(
        chunked.warnings[0].contains("an answer past the 1048576 bytes the injector reads"),
        "{}",
        chunked.warnings[0]
    );
    let (denied, _) = faulted(None, Some(AccessDenied)).await;
    assert!(
        denied.warnings[0].contains(
            "the injector's role needs eks:ListPodIdentityAssociations and \
             eks:DescribePodIdentityAssociation"
        ),
        "{}",
        denied.warnings[0]
    );
}

/// A loopback port nothing listens on.
fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test]
async fn a_refused_connection_is_an_error_for_both_within_the_budget() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let url = refused_url();
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {url}\n\
         users:\n- name: u\n  user:\n    token: {KUBE_TOKEN}\n\
         contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n"
    );
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::from_yaml(&kubeconfig).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    let sa = ServiceAccounts::new(ServiceAccounts::client(config).unwrap());
    let eks = Associations::new(eks_config(&url, SECRET), CLUSTER.into());
    let started = Instant::now();
    let r = resolve(&Lookups::new(sa, Some(eks))).await;
    assert!(started.elapsed() < FAULT_LIMIT);
    assert_eq!(
        outcomes(&r),
        vec![
            (LookupKind::ServiceAccount, LookupOutcome::Error),
            (LookupKind::Association, LookupOutcome::Error),
        ]
    );
    assert_eq!(r.warnings.len(), 2);
}

#[tokio::test]
async fn a_wrong_token_or_secret_is_denied() {
    let w = World::start().await;
    w.kube
        .add_service_account(NAMESPACE, SERVICE_ACCOUNT, Some(ROLE_ARN));
    w.association(NAMESPACE, SERVICE_ACCOUNT, None);
    let lookups = w
        .lookups_with("not-the-token", "not-the-secret", CachePolicy::default())
        .await;
    let r = resolve(&lookups).await;
    assert_eq!(
        outcomes(&r),
        vec![
            (LookupKind::ServiceAccount, LookupOutcome::Denied),
            (LookupKind::Association, LookupOutcome::Denied),
        ]
    );
    assert!(r.warnings[1].contains("InvalidSignatureException"), "{r:?}");
}

/// Captures what the injector's `tracing` calls write.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_token_or_secret_key_in_a_warning_or_a_trace_log() {
    let captured = Captured::default();
    let writer = captured.clone();
    // Global, not scoped to this thread: a callsite first reached by a
    // test on another thread would otherwise stay silent here. The other
    // tests' logs are captured too, and hold the same secrets.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let mut warnings = Vec::new();
    for (kube, eks) in [
        (None, None),
        (
            Some(kube_api::Fault::Status(403)),
            Some(eks_api::Fault::AccessDenied),
        ),
        (
            Some(kube_api::Fault::Garbage),
            Some(eks_api::Fault::Garbage),
        ),
        // The answers cut at 1 MiB: their warnings too.
        (
            Some(kube_api::Fault::HugeChunked),
            Some(eks_api::Fault::HugeChunked),
        ),
    ] {
        let w = World::start().await;
        w.kube
            .add_service_account(NAMESPACE, SERVICE_ACCOUNT, Some(ROLE_ARN));
        w.association(NAMESPACE, SERVICE_ACCOUNT, Some(TARGET_ROLE));
        w.kube.set_fault(kube);
        w.eks.set_fault(eks);
        warnings.extend(resolve(&w.lookups().await).await.warnings);
        // The wrong ones too: a client must not echo what it sent.
        let wrong = w
            .lookups_with(KUBE_TOKEN, "wrong-secret", CachePolicy::default())
            .await;
        warnings.extend(resolve(&wrong).await.warnings);
    }
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(warnings.len() >= 4, "{warnings:?}");
    assert!(
        logs.contains("irsa_doctor_injector::lookup::resolver: lookup"),
        "the capture did not see the injector's own lines"
    );
    assert!(logs.contains("kube_client"), "nor kube's");
    for text in warnings
        .iter()
        .chain(logs.lines().map(str::to_owned).collect::<Vec<_>>().iter())
    {
        for secret in [KUBE_TOKEN, SECRET] {
            assert!(!text.contains(secret), "a secret in: {text}");
        }
    }
}

fn fixture_pods() -> Vec<(String, Value)> {
    support::eks_fixtures()
        .into_iter()
        .map(|path| {
            let name = path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .replace(".pod.yaml", "");
            (name, support::load_fixture(&path))
        })
        .collect()
}

/// Each raw fixture pod (before the EKS webhook), its ServiceAccount
/// looked up through the stand-ins: annotated, then with an association.
#[tokio::test]
async fn raw_eks_fixture_pods_get_the_role_the_lookups_found() {
    let w = World::start().await;
    let mut results = Vec::new();
    for with_association in [false, true] {
        for (name, doc) in fixture_pods() {
            let pod: Pod = serde_json::from_value(doc.clone()).unwrap();
            let spec = pod.spec.as_ref().unwrap();
            let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
            let sa = spec.service_account_name.as_deref().unwrap_or("default");
            let role = format!("arn:aws:iam::111122223333:role/{name}");
            w.kube.add_service_account(namespace, sa, Some(&role));
            let expected = match with_association {
                false => role.clone(),
                true => {
                    w.association(namespace, sa, Some(TARGET_ROLE));
                    TARGET_ROLE.to_owned()
                }
            };
            // A fresh cache for each pod: the association was just added.
            let r = w.lookups().await.resolve(namespace, sa).await;
            assert!(!r.any_failed(), "{name}: {r:?}");
            let (patched, plan) = inject(
                &pod.metadata,
                spec,
                &r.identity,
                &support::options(Mode::Sidecar),
            );
            if name.contains("indows") {
                assert_eq!(plan.outcome, Outcome::Windows, "{name}");
                continue;
            }
            assert_eq!(plan.outcome, Outcome::Injected(Mode::Sidecar), "{name}");
            let doctor = patched
                .init_containers
                .iter()
                .flatten()
                .find(|c| c.name == "irsa-doctor")
                .unwrap();
            let got = doctor
                .env
                .iter()
                .flatten()
                .find(|v| v.name == "IRSA_DOCTOR_EXPECTED_ROLE_ARN")
                .and_then(|v| v.value.clone());
            assert_eq!(got.as_deref(), Some(expected.as_str()), "{name}");
            let mut out = doc.clone();
            out["spec"] = serde_json::to_value(&patched).unwrap();
            results.push((format!("{name}-{with_association}"), out));
        }
    }
    assert!(results.len() >= 36, "{}", results.len());
    support::assert_valid(&results);
}
