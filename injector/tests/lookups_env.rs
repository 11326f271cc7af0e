//! `lookup::connect`, the webhook's constructor, through the process
//! environment as a pod has it: `KUBECONFIG` for kube, and the AWS SDK's
//! default chain with `AWS_ENDPOINT_URL_EKS` and static keys. A test binary
//! of its own with one test, because it sets the process environment,
//! which tests running side by side in threads would share.

use irsa_doctor_injector::lookup::{connect, LookupKind, LookupOutcome};
use irsa_doctor_injector::Identity;
use testkit::eks_api::{self, EksApi};
use testkit::kube_api::KubeApi;
use testkit::world::{CLUSTER, NAMESPACE, ROLE_ARN, SERVICE_ACCOUNT};

const KUBE_TOKEN: &str = "kube-bearer-env-Wd40rT5y";
const SECRET: &str = "eks-secret-env-Pq93mZ1x";
const TARGET_ROLE: &str = "arn:aws:iam::444455556666:role/payments-target";

#[tokio::test]
async fn connect_reads_kubeconfig_and_aws_endpoint_url_eks_from_the_environment() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // Nothing of the developer's machine: no kubeconfig, no AWS profile,
    // no IMDS, no in-cluster configuration.
    for var in [
        "KUBECONFIG",
        "KUBERNETES_SERVICE_HOST",
        "KUBERNETES_SERVICE_PORT",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        std::env::remove_var(var);
    }
    std::env::set_var("HOME", h);
    std::env::set_var("AWS_CONFIG_FILE", h.join("aws-config"));
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", h.join("aws-credentials"));
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");

    let error = connect(None).await.err().expect("no configuration fails");
    assert!(
        error.contains("not in a cluster") && error.contains("KUBECONFIG"),
        "{error}"
    );

    let kube = KubeApi::start(KUBE_TOKEN).await;
    kube.add_service_account(NAMESPACE, SERVICE_ACCOUNT, Some(ROLE_ARN));
    std::env::set_var("KUBECONFIG", kube.write_kubeconfig(h));
    let eks = EksApi::start(SECRET).await;
    eks.add(eks_api::Association {
        cluster: CLUSTER.into(),
        namespace: NAMESPACE.into(),
        service_account: SERVICE_ACCOUNT.into(),
        role_arn: ROLE_ARN.into(),
        target_role_arn: Some(TARGET_ROLE.into()),
        ..Default::default()
    });
    std::env::set_var("AWS_ACCESS_KEY_ID", "AKIAINJECTORENV00001");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET);
    std::env::set_var("AWS_ENDPOINT_URL_EKS", eks.url());
    // Were the service's own variable ignored, the SDK would fall back to
    // this one, which cannot resolve: nothing leaves the machine.
    std::env::set_var("AWS_ENDPOINT_URL", "http://eks.invalid");

    let error = connect(Some(CLUSTER.into()))
        .await
        .err()
        .expect("no region fails");
    assert!(error.contains("AWS_REGION"), "{error}");

    std::env::set_var("AWS_REGION", "us-east-1");
    let lookups = connect(Some(CLUSTER.into())).await.unwrap();
    let r = lookups.resolve(NAMESPACE, SERVICE_ACCOUNT).await;
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(r.identity.expected_role_arn(), Some(TARGET_ROLE));
    assert!(matches!(r.identity, Identity::Association(_)));
    assert_eq!(
        r.records
            .iter()
            .map(|r| (r.kind, r.outcome))
            .collect::<Vec<_>>(),
        vec![
            (LookupKind::ServiceAccount, LookupOutcome::Found),
            (LookupKind::Association, LookupOutcome::Found),
        ]
    );
    // The SDK sent both calls to the endpoint the variable named, signed
    // with the key from the environment (the stand-in checks SigV4).
    assert_eq!(eks.requests(), 2);
    assert_eq!(kube.requests(), 1);
}
