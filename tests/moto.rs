//! The same checks against moto's server, a third-party STS implementation
//! (PyPI `moto[server]`), so the verdicts are not only our stand-in agreeing
//! with itself. moto accepts any token, so it serves the healthy path and
//! the default-chain check, not the refusals.

use testkit::jwt::{Jwt, TokenVolume};
use testkit::world::{NAMESPACE, SERVICE_ACCOUNT};
use testkit::{doctor, start_moto};

const MOTO_ROLE: &str = "arn:aws:iam::123456789012:role/platform/moto-app";

#[tokio::test]
async fn healthy_pod_passes_against_moto() {
    let moto = start_moto().await;
    let vol = TokenVolume::new(&Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).encode());
    let out = doctor!(&moto.url).irsa(MOTO_ROLE, &vol.path()).json().await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    assert_eq!(report["verdict"], "pass");
    assert_eq!(
        report["assumed_role_arn"],
        "arn:aws:sts::123456789012:assumed-role/moto-app/irsa-doctor-app-7d9f8c-x2x4q"
    );
    assert_eq!(report["default_chain"]["provider"], "web_identity");
    assert!(report["sts"]["endpoint"]
        .as_str()
        .unwrap()
        .starts_with(&moto.url));
}

#[tokio::test]
async fn moto_assumes_a_role_other_than_expected_is_role_mismatch() {
    let moto = start_moto().await;
    let vol = TokenVolume::new(&Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).encode());
    let out = doctor!(&moto.url)
        .irsa(MOTO_ROLE, &vol.path())
        .arg("--expected-role-arn")
        .arg("arn:aws:iam::123456789012:role/billing")
        .json()
        .await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.codes(), ["ROLE_MISMATCH"]);
}

#[tokio::test]
async fn static_keys_make_moto_name_another_identity() {
    let moto = start_moto().await;
    let vol = TokenVolume::new(&Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).encode());
    let out = doctor!(&moto.url)
        .irsa(MOTO_ROLE, &vol.path())
        .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        )
        .json()
        .await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    assert_eq!(report["default_chain"]["provider"], "environment");
    // moto's GetCallerIdentity names unknown keys as its default user.
    let arn = report["default_chain"]["arn"].as_str().unwrap();
    assert!(
        arn.starts_with("arn:aws:") && !arn.contains("assumed-role/moto-app"),
        "{arn}"
    );
    let mismatch = out.finding("DEFAULT_CHAIN_MISMATCH");
    assert!(mismatch["found"].as_str().unwrap().contains(arn));
    out.finding("STATIC_CREDENTIALS_SHADOW");
}
