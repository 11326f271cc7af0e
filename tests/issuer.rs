//! `--verify-issuer`, black-box: the real binary against the kit's OIDC
//! issuer stand-in (discovery document and key set on loopback, keys that
//! really sign RS256 and ES256) and its STS and agent stand-ins. Each of
//! the issuer's codes provoked as the world provokes it; an issuer that
//! cannot be reached never changes the verdict; `serve` fetches once and
//! again only for a key it has not seen.

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::json;
use testkit::fake_aws::{FakeAws, FakeAwsServer};
use testkit::jwt::{Jwt, TokenVolume};
use testkit::oidc::{Fault, Issuer, Signer};
use testkit::serving::{metric, until};
use testkit::world::{NAMESPACE, ROLE_ARN, SERVICE_ACCOUNT};
use testkit::{doctor, Doctor, Outcome};

/// A pod whose token is `token`, checked with `--verify-issuer` and plain
/// HTTP allowed to the loopback stand-in.
fn pod(sts: &FakeAwsServer, volume: &TokenVolume) -> Doctor {
    doctor!(&sts.url())
        .irsa(ROLE_ARN, &volume.path())
        .arg("--verify-issuer")
        .arg("--allow-http-issuer")
}

/// Runs `check --output json` for `token`, with STS trusting `iss`.
async fn check(iss: &str, token: &str) -> Outcome {
    let sts = FakeAws::healthy_for_issuer(iss).await;
    let volume = TokenVolume::new(token);
    pod(&sts, &volume).json().await
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `token` with its payload replaced by `claims`, the signature kept.
fn with_payload(token: &str, claims: &serde_json::Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    format!(
        "{}.{}.{}",
        parts[0],
        b64(claims.to_string().as_bytes()),
        parts[2]
    )
}

async fn passes_with(signer: Signer) {
    let issuer = Issuer::start(&[&signer]).await;
    let token = signer.sign(&issuer.jwt(NAMESPACE, SERVICE_ACCOUNT));
    let out = check(&issuer.url(), &token).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    assert_eq!(report["findings"], json!([]), "{report:#}");
    let seen = &report["issuer"];
    assert_eq!(seen["url"], issuer.url());
    assert_eq!(seen["jwks_uri"], format!("{}/keys", issuer.url()));
    assert_eq!(seen["alg"], signer.alg());
    assert_eq!(seen["kid"], signer.kid);
    assert_eq!(seen["signature_verified"], true);
    assert_eq!(seen["cached"], false);
    assert_eq!(
        issuer.requests(),
        (1, 1),
        "check fetches each document once"
    );
}

#[tokio::test]
async fn a_token_its_issuer_signed_with_rs256_passes() {
    passes_with(Signer::rs256("rsa-1")).await;
}

#[tokio::test]
async fn a_token_its_issuer_signed_with_es256_passes() {
    passes_with(Signer::es256("ec-1")).await;
}

#[tokio::test]
async fn the_text_report_has_an_issuer_row_only_when_asked() {
    let signer = Signer::rs256("k1");
    let issuer = Issuer::start(&[&signer]).await;
    let token = signer.sign(&issuer.jwt(NAMESPACE, SERVICE_ACCOUNT));
    let sts = FakeAws::healthy_for_issuer(&issuer.url()).await;
    let volume = TokenVolume::new(&token);
    let out = pod(&sts, &volume).run().await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("ok            issuer"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("signature verified"), "{}", out.stdout);
    let out = doctor!(&sts.url())
        .irsa(ROLE_ARN, &volume.path())
        .run()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        !out.stdout.contains("            issuer "),
        "{}",
        out.stdout
    );
    assert_eq!(issuer.requests(), (1, 1), "off by default: not asked");
}

#[tokio::test]
async fn a_discovery_document_naming_another_issuer_is_issuer_mismatch() {
    let signer = Signer::rs256("k1");
    let issuer = Issuer::start(&[&signer]).await;
    let other = "https://oidc.eks.eu-west-1.amazonaws.com/id/OTHERCLUSTER";
    issuer.publish_issuer(other);
    let token = signer.sign(&issuer.jwt(NAMESPACE, SERVICE_ACCOUNT));
    let out = check(&issuer.url(), &token).await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let f = out.finding("ISSUER_MISMATCH");
    assert_eq!(f["severity"], "error");
    assert_eq!(f["expected"], issuer.url());
    assert_eq!(f["found"], other);
    assert_eq!(out.json()["issuer"]["signature_verified"], false);
    assert_eq!(
        issuer.requests(),
        (1, 0),
        "no key set from a mismatched issuer"
    );
}

/// `check` of a token `signer` signed, from an issuer publishing
/// `published`'s key: a failing one.
async fn signed_by(published: &Signer, signer: &Signer) -> Outcome {
    let issuer = Issuer::start(&[published]).await;
    let token = signer.sign(&issuer.jwt(NAMESPACE, SERVICE_ACCOUNT));
    let out = check(&issuer.url(), &token).await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    out
}

#[tokio::test]
async fn a_token_signed_by_another_clusters_key_is_signing_key_unknown() {
    let ours = Signer::rs256("this-cluster");
    let out = signed_by(&ours, &Signer::rs256("other-cluster")).await;
    let f = out.finding("SIGNING_KEY_UNKNOWN");
    assert_eq!(f["found"], "keys this-cluster");
    assert!(
        f["message"].as_str().unwrap().contains("other-cluster"),
        "{f:#}"
    );
    assert_eq!(out.codes(), ["SIGNING_KEY_UNKNOWN"]);
}

#[tokio::test]
async fn a_tampered_payload_is_token_signature_invalid() {
    let signer = Signer::es256("k1");
    let issuer = Issuer::start(&[&signer]).await;
    let jwt = issuer.jwt(NAMESPACE, SERVICE_ACCOUNT);
    let signed = signer.sign(
        &jwt.clone()
            .set("sub", json!("system:serviceaccount:payments:batch")),
    );
    // The payload says `payments/app`, which the role trusts; the signature
    // was made over another: STS's stand-in does not check signatures, so
    // only the issuer step can tell.
    let token = with_payload(&signed, &jwt.claims);
    let out = check(&issuer.url(), &token).await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let f = out.finding("TOKEN_SIGNATURE_INVALID");
    assert!(
        f["message"].as_str().unwrap().contains("does not verify"),
        "{f:#}"
    );
    assert!(
        out.json()["assumed_role_arn"].is_string(),
        "STS alone passed it"
    );
}

#[tokio::test]
async fn another_key_under_the_right_kid_is_token_signature_invalid() {
    let out = signed_by(&Signer::rs256("k1"), &Signer::rs256("k1")).await;
    assert_eq!(out.codes(), ["TOKEN_SIGNATURE_INVALID"]);
}

#[tokio::test]
async fn a_token_signed_by_a_1024_bit_rsa_key_says_the_key_is_too_small() {
    // The issuer's own key signed it, unaltered: before, the finding said
    // "the token was altered, or signed by another key under the same kid".
    let small = Signer::rs256_1024("small-key");
    let out = signed_by(&small, &small).await;
    assert_eq!(out.codes(), ["TOKEN_SIGNATURE_INVALID"], "{}", out.stdout);
    let f = out.finding("TOKEN_SIGNATURE_INVALID");
    let message = f["message"].as_str().unwrap();
    assert!(
        message.contains(
            "the issuer's key small-key is a 1024-bit RSA key, and irsa-doctor checks RS256 \
             only with RSA keys of 2048 to 8192 bits (the signature does match that key"
        ),
        "{f:#}"
    );
    assert!(!message.contains("altered,"), "{f:#}");
    assert_eq!(
        f["expected"],
        "an RSA key of 2048 to 8192 bits under kid small-key"
    );
    assert!(
        f["remedy"].as_str().unwrap().contains("2048 bits or more"),
        "{f:#}"
    );
    assert_eq!(out.json()["issuer"]["signature_verified"], false);
}

#[tokio::test]
async fn alg_none_and_hs256_are_refused_without_asking_the_issuer() {
    let signer = Signer::rs256("k1");
    let issuer = Issuer::start(&[&signer]).await;
    let claims = issuer.jwt(NAMESPACE, SERVICE_ACCOUNT).claims;
    let payload = b64(claims.to_string().as_bytes());
    for (alg, signature) in [("none", String::new()), ("HS256", b64(&[7; 32]))] {
        let header = b64(json!({"alg": alg, "kid": "k1"}).to_string().as_bytes());
        let token = format!("{header}.{payload}.{signature}");
        let out = check(&issuer.url(), &token).await;
        assert_eq!(out.code, 1, "{alg}: {}\n{}", out.stdout, out.stderr);
        let f = out.finding("TOKEN_SIGNATURE_INVALID");
        assert!(
            f["message"]
                .as_str()
                .unwrap()
                .contains(&format!("alg {alg}, which is never accepted")),
            "{f:#}"
        );
    }
    // An RS256 header over an HMAC-made signature is no better.
    let header = b64(json!({"alg": "RS256", "kid": "k1"}).to_string().as_bytes());
    let out = check(
        &issuer.url(),
        &format!("{header}.{payload}.{}", b64(&[7; 256])),
    )
    .await;
    assert_eq!(out.codes(), ["TOKEN_SIGNATURE_INVALID"], "{}", out.stdout);
    assert_eq!(
        issuer.requests(),
        (1, 1),
        "none and HS256 were refused unasked"
    );
}

/// An issuer that cannot be had is a warning: the verdict is STS's.
fn assert_unreachable_warning(out: &Outcome, says: &str) -> serde_json::Value {
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    assert_eq!(report["verdict"], "pass");
    assert_eq!(out.codes(), ["ISSUER_UNREACHABLE"], "{report:#}");
    let f = out.finding("ISSUER_UNREACHABLE");
    assert_eq!(f["severity"], "warning");
    assert!(f["found"].as_str().unwrap().contains(says), "{f:#}");
    assert!(
        f["remedy"].as_str().unwrap().contains("on purpose"),
        "{f:#}"
    );
    f
}

#[tokio::test]
async fn an_issuer_on_a_closed_port_is_a_warning_and_the_pod_still_passes() {
    let signer = Signer::rs256("k1");
    let issuer = Issuer::start(&[&signer]).await;
    let token = signer.sign(&issuer.jwt(NAMESPACE, SERVICE_ACCOUNT));
    let url = issuer.url();
    issuer.close().await;
    let out = check(&url, &token).await;
    assert_unreachable_warning(&out, "could not be reached");
}

#[tokio::test]
async fn an_issuer_whose_name_does_not_resolve_is_a_warning() {
    let iss = "https://oidc.eks.invalid/id/NOWHERE";
    let jwt = Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).set("iss", json!(iss));
    let token = Signer::rs256("k1").sign(&jwt);
    let out = check(iss, &token).await;
    assert_unreachable_warning(&out, "could not be reached");
}

#[tokio::test]
async fn a_hanging_issuer_does_not_push_the_check_past_its_timeout() {
    let signer = Signer::rs256("k1");
    let issuer = Issuer::start(&[&signer]).await;
    issuer.fault(Some(Fault::Hang));
    let token = signer.sign(&issuer.jwt(NAMESPACE, SERVICE_ACCOUNT));
    let sts = FakeAws::healthy_for_issuer(&issuer.url()).await;
    let volume = TokenVolume::new(&token);
    let started = Instant::now();
    let out = pod(&sts, &volume).arg("--timeout").arg("2s").json().await;
    let took = started.elapsed();
    assert_unreachable_warning(&out, "gave no answer in time");
    let report = out.json();
    assert!(
        report["duration_ms"].as_u64().unwrap() < 2_500,
        "{report:#}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[tokio::test]
async fn an_oversized_discovery_document_is_a_warning() {
    let signer = Signer::rs256("k1");
    let issuer = Issuer::start(&[&signer]).await;
    issuer.fault(Some(Fault::Oversize));
    let token = signer.sign(&issuer.jwt(NAMESPACE, SERVICE_ACCOUNT));
    let out = check(&issuer.url(), &token).await;
    assert_unreachable_warning(&out, "more than 65536 bytes");
}

#[tokio::test]
async fn an_issuer_answering_an_error_status_is_a_warning() {
    let signer = Signer::rs256("k1");
    let issuer = Issuer::start(&[&signer]).await;
    issuer.fault(Some(Fault::Status(503)));
    let token = signer.sign(&issuer.jwt(NAMESPACE, SERVICE_ACCOUNT));
    let out = check(&issuer.url(), &token).await;
    assert_unreachable_warning(&out, "answered HTTP 503");
}

#[tokio::test]
async fn plain_http_is_refused_off_loopback_and_on_loopback_without_the_flag() {
    let iss = "http://oidc.eks.invalid/id/PLAIN";
    let jwt = Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).set("iss", json!(iss));
    let out = check(iss, &Signer::rs256("k1").sign(&jwt)).await;
    let f = assert_unreachable_warning(&out, "not loopback");
    assert!(
        f["message"].as_str().unwrap().contains("was not asked"),
        "{f:#}"
    );

    let signer = Signer::rs256("k1");
    let issuer = Issuer::start(&[&signer]).await;
    let token = signer.sign(&issuer.jwt(NAMESPACE, SERVICE_ACCOUNT));
    let sts = FakeAws::healthy_for_issuer(&issuer.url()).await;
    let volume = TokenVolume::new(&token);
    let out = doctor!(&sts.url())
        .irsa(ROLE_ARN, &volume.path())
        .arg("--verify-issuer")
        .json()
        .await;
    assert_unreachable_warning(&out, "--allow-http-issuer");
    assert_eq!(issuer.requests(), (0, 0));

    // The test-only flag means nothing alone.
    let out = doctor!(&sts.url())
        .irsa(ROLE_ARN, &volume.path())
        .arg("--allow-http-issuer")
        .run()
        .await;
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[tokio::test]
async fn an_https_issuer_is_trusted_through_aws_ca_bundle_as_sts_is() {
    let (ca_pem, acceptor) = testkit::test_ca_and_acceptor();
    let signer = Signer::rs256("k1");
    let issuer = Issuer::start_tls(&[&signer], acceptor).await;
    assert!(issuer.url().starts_with("https://127.0.0.1:"));
    let token = signer.sign(&issuer.jwt(NAMESPACE, SERVICE_ACCOUNT));
    let sts = FakeAws::healthy_for_issuer(&issuer.url()).await;
    let volume = TokenVolume::new(&token);
    let pod = || {
        doctor!(&sts.url())
            .irsa(ROLE_ARN, &volume.path())
            .arg("--verify-issuer")
    };
    // The system's roots alone do not trust the test CA: only a warning.
    let out = pod().json().await;
    assert_unreachable_warning(&out, "could not be reached");
    assert_eq!(issuer.requests(), (0, 0), "no request got through TLS");

    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let out = pod()
        .env("AWS_CA_BUNDLE", ca.to_str().unwrap())
        .json()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    assert_eq!(report["findings"], json!([]), "{report:#}");
    assert_eq!(report["issuer"]["signature_verified"], true, "{report:#}");
    assert_eq!(issuer.requests(), (1, 1));
}

#[tokio::test]
async fn a_pod_identity_token_is_checked_against_its_issuer_too() {
    let ours = Signer::es256("this-cluster");
    let issuer = Issuer::start(&[&ours]).await;
    let sts = FakeAws::healthy().await;
    let agent = testkit::agent::Agent::healthy(&sts.aws).await;
    agent.agent.set_issuer(&issuer.url());
    let claims = Jwt::for_pod_identity(NAMESPACE, SERVICE_ACCOUNT).set("iss", json!(issuer.url()));
    let run = |token: &str| {
        let volume = TokenVolume::pod_identity(token);
        let d = doctor!(&sts.url())
            .pod_identity(&agent.url(), &volume.path())
            .arg("--verify-issuer")
            .arg("--allow-http-issuer");
        async move {
            let out = d.json().await;
            drop(volume);
            out
        }
    };
    let out = run(&ours.sign(&claims)).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.json()["issuer"]["signature_verified"], true);
    let out = run(&Signer::es256("other-cluster").sign(&claims)).await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.codes().contains(&"SIGNING_KEY_UNKNOWN".to_owned()),
        "{}",
        out.stdout
    );
}

#[tokio::test]
async fn serve_fetches_the_issuer_once_and_again_only_for_a_key_it_has_not_seen() {
    let first = Signer::rs256("2026-11");
    let issuer = Issuer::start(&[&first]).await;
    let sts = FakeAws::healthy_for_issuer(&issuer.url()).await;
    let mut volume = TokenVolume::new(&first.sign(&issuer.jwt(NAMESPACE, SERVICE_ACCOUNT)));
    let serving = pod(&sts, &volume)
        .arg("--timeout")
        .arg("3s")
        .arg("--interval")
        .arg("1s")
        .serve()
        .await;
    until("four checks", || sts.aws.our_assume_calls() >= 4).await;
    assert_eq!(issuer.requests(), (1, 1), "one fetch for four checks");
    let status = serving.get("/status").await.json();
    assert_eq!(status["verdict"], "pass", "{status:#}");
    assert_eq!(status["issuer"]["cached"], true, "{status:#}");
    assert_eq!(status["issuer"]["signature_verified"], true, "{status:#}");

    // The issuer rotates its key, and the kubelet the token.
    let next = Signer::rs256("2026-12");
    issuer.set_keys(&[&first, &next]);
    volume.rotate(&next.sign(&issuer.jwt(NAMESPACE, SERVICE_ACCOUNT)));
    let status = serving
        .wait_for("/status", |a| a.json()["issuer"]["kid"] == "2026-12")
        .await
        .json();
    assert_eq!(status["issuer"]["signature_verified"], true, "{status:#}");
    assert_eq!(status["findings"], json!([]), "{status:#}");
    let before = sts.aws.our_assume_calls();
    until("three more checks", || {
        sts.aws.our_assume_calls() >= before + 3
    })
    .await;
    assert_eq!(
        issuer.requests(),
        (2, 2),
        "fetched again once, for the new kid"
    );
    let (code, logs) = serving.stop("TERM").await;
    assert_eq!(code, 0, "{logs}");
}

/// `serve`'s count of checks with `verdict` so far, from /metrics.
async fn checks(serving: &testkit::serving::Serving, verdict: &str) -> i64 {
    let metrics = serving.get("/metrics").await;
    metric(
        &metrics.body,
        &format!("irsa_doctor_checks_total{{verdict=\"{verdict}\"}}"),
    )
}

#[tokio::test]
async fn serve_asks_for_an_unknown_kid_once_not_at_every_check() {
    // A token from another cluster: its key is not, and will not be,
    // published. Before the fix, each check at --interval 1s fetched both
    // documents again.
    let ours = Signer::rs256("this-cluster");
    let issuer = Issuer::start(&[&ours]).await;
    let sts = FakeAws::healthy_for_issuer(&issuer.url()).await;
    let foreign = Signer::rs256("other-cluster");
    let mut volume = TokenVolume::new(&foreign.sign(&issuer.jwt(NAMESPACE, SERVICE_ACCOUNT)));
    let serving = pod(&sts, &volume)
        .arg("--timeout")
        .arg("3s")
        .arg("--interval")
        .arg("1s")
        .serve()
        .await;
    serving
        .wait_for("/metrics", |a| {
            metric(&a.body, "irsa_doctor_checks_total{verdict=\"fail\"}") >= 4
        })
        .await;
    assert_eq!(
        issuer.requests(),
        (1, 1),
        "one discovery and one key set for four checks of the same unknown kid"
    );
    let status = serving.get("/status").await.json();
    assert_eq!(
        status["findings"][0]["code"], "SIGNING_KEY_UNKNOWN",
        "{status:#}"
    );
    assert_eq!(status["issuer"]["cached"], true, "{status:#}");

    // The token rotates to yet another unknown key: asked for at once, not
    // held back by the first kid's five minutes.
    let other = Signer::rs256("another-cluster");
    volume.rotate(&other.sign(&issuer.jwt(NAMESPACE, SERVICE_ACCOUNT)));
    serving
        .wait_for("/status", |a| {
            a.json()["issuer"]["kid"] == "another-cluster"
        })
        .await;
    let before = checks(&serving, "fail").await;
    serving
        .wait_for("/metrics", |a| {
            metric(&a.body, "irsa_doctor_checks_total{verdict=\"fail\"}") >= before + 3
        })
        .await;
    assert_eq!(issuer.requests(), (2, 2), "once more, for the new kid");
    let (code, logs) = serving.stop("TERM").await;
    assert_eq!(code, 0, "{logs}");
}
