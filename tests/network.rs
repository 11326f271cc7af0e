//! Black-box tests of the way to STS: `AWS_CA_BUNDLE` (trusted besides the
//! system's roots, as botocore and the Go, Java and JavaScript SDKs trust
//! it) and HTTP proxies (`HTTP_PROXY`, `HTTPS_PROXY`), with the loopback
//! STS stand-in behind a TLS certificate of a throwaway CA or behind the
//! kit's loopback proxy. Endpoints under `.invalid` cannot resolve, so a
//! run that passes with one went through the proxy.

use std::path::{Path, PathBuf};

use testkit::fake_aws::{FakeAws, FakeAwsServer, Trust};
use testkit::jwt::{Jwt, TokenVolume};
use testkit::proxy::{Mode, Proxy};
use testkit::world::ISSUER;
use testkit::world::{ACCOUNT, NAMESPACE, ROLE_ARN, SERVICE_ACCOUNT};
use testkit::{doctor, Doctor};

/// A password no output may show.
const PROXY_PASSWORD: &str = "s3cr3t-proxy-pass";

fn healthy_token() -> TokenVolume {
    TokenVolume::new(&Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).encode())
}

/// The healthy account, served over HTTPS with a certificate of a
/// throwaway CA; and that CA's PEM written to a file in `dir`.
async fn https_sts(dir: &Path, name: &str) -> (FakeAwsServer, PathBuf) {
    let (ca_pem, acceptor) = testkit::test_ca_and_acceptor();
    let aws = FakeAws::empty();
    aws.add_provider(ACCOUNT, ISSUER, &["sts.amazonaws.com"]);
    aws.add_role(ROLE_ARN, Trust::for_sa(NAMESPACE, SERVICE_ACCOUNT));
    let ca = dir.join(name);
    std::fs::write(&ca, ca_pem).unwrap();
    (aws.start_tls(acceptor).await, ca)
}

fn pod(sts_url: &str, vol: &TokenVolume) -> Doctor {
    doctor!(sts_url).irsa(ROLE_ARN, &vol.path())
}

#[tokio::test]
async fn aws_ca_bundle_lets_a_pod_behind_a_tls_inspecting_proxy_pass() {
    let dir = tempfile::tempdir().unwrap();
    let (sts, ca) = https_sts(dir.path(), "proxy-ca.pem").await;
    let vol = healthy_token();

    // The AWS SDK for Rust alone does not trust the CA.
    let out = pod(&sts.url(), &vol).json().await;
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let f = out.finding("STS_UNREACHABLE");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("TLS handshake failed"),
        "{f}"
    );
    assert!(
        f["remedy"].as_str().unwrap().contains("AWS_CA_BUNDLE"),
        "{f}"
    );

    // With the CA in AWS_CA_BUNDLE, as botocore and the other SDKs read it,
    // both our call and the default chain's trust it.
    let out = pod(&sts.url(), &vol)
        .env("AWS_CA_BUNDLE", ca.to_str().unwrap())
        .json()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    assert_eq!(report["sts"]["ca_bundle"], ca.to_str().unwrap());
    assert_eq!(report["default_chain"]["provider"], "web_identity");
    assert_eq!(sts.aws.assume_calls(), 2, "ours and the default chain's");
    assert!(
        out.stderr
            .contains("AWS_CA_BUNDLE's certificates are trusted"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn aws_ca_bundle_is_added_to_the_system_roots_not_put_in_their_place() {
    let dir = tempfile::tempdir().unwrap();
    // The system's roots (SSL_CERT_FILE, read by rustls-native-certs) hold
    // the CA that signed the endpoint; AWS_CA_BUNDLE holds another one.
    let (sts, system_ca) = https_sts(dir.path(), "system-ca.pem").await;
    let (_other, other_ca) = https_sts(dir.path(), "other-ca.pem").await;
    let vol = healthy_token();
    let out = pod(&sts.url(), &vol)
        .env("SSL_CERT_FILE", system_ca.to_str().unwrap())
        .env("AWS_CA_BUNDLE", other_ca.to_str().unwrap())
        .arg("--output")
        .arg("text")
        .run()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let sts_row = out.stdout.lines().find(|l| l.contains("STS")).unwrap();
    assert!(
        sts_row.contains(&format!("trusting AWS_CA_BUNDLE {}", other_ca.display())),
        "{}",
        out.stdout
    );
}

#[tokio::test]
async fn an_unusable_aws_ca_bundle_is_ca_bundle_invalid_and_nothing_is_sent() {
    let sts = FakeAws::healthy().await;
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, contents: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    };
    let fifo = dir.path().join("fifo");
    testkit::mkfifo(&fifo);
    let garbage = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
    let cases = [
        (dir.path().join("missing.pem"), "it does not exist"),
        (
            file("notes.txt", "not PEM at all\n"),
            "holds no PEM certificate",
        ),
        (file("empty.pem", ""), "holds no PEM certificate"),
        (
            file("garbage.pem", garbage),
            "certificate 1 is not a certificate rustls can trust",
        ),
        (PathBuf::from("/dev/zero"), "character device"),
        (fifo, "FIFO"),
    ];
    let vol = healthy_token();
    for (path, want) in cases {
        let out = pod(&sts.url(), &vol)
            .env("AWS_CA_BUNDLE", path.to_str().unwrap())
            .json()
            .await;
        assert_eq!(
            out.code,
            1,
            "{}: {}\n{}",
            path.display(),
            out.stdout,
            out.stderr
        );
        let f = out.finding("CA_BUNDLE_INVALID");
        let message = f["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("AWS_CA_BUNDLE names {}", path.display())),
            "{message}"
        );
        assert!(message.contains(want), "{}: {message}", path.display());
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
    assert_eq!(sts.aws.assume_calls(), 0, "nothing is sent");

    // Set but empty is not set, for every SDK.
    let out = pod(&sts.url(), &vol).env("AWS_CA_BUNDLE", "").json().await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.json()["sts"]["ca_bundle"].is_null());
}

#[tokio::test]
async fn sts_behind_http_proxy_is_reached_through_it_and_named_without_its_password() {
    let sts = FakeAws::healthy().await;
    let proxy = Proxy::start(Mode::Forward(sts.server.addr)).await;
    let with_password = format!("http://app:{PROXY_PASSWORD}@{}", proxy.addr);
    let vol = healthy_token();
    let out = pod("http://sts.example.invalid", &vol)
        .env("HTTP_PROXY", &with_password)
        .env("RUST_LOG", "trace")
        .json()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.json()["sts"]["proxy"], proxy.url());
    assert!(
        proxy
            .requests()
            .iter()
            .any(|r| r == "POST http://sts.example.invalid/ HTTP/1.1 auth=true"),
        "{:?}",
        proxy.requests()
    );
    assert!(
        !out.all_output().contains(PROXY_PASSWORD),
        "{}",
        out.all_output()
    );
}

#[tokio::test]
async fn https_through_a_connect_tunnel_with_aws_ca_bundle_passes() {
    let dir = tempfile::tempdir().unwrap();
    let (sts, ca) = https_sts(dir.path(), "ca.pem").await;
    let proxy = Proxy::start(Mode::Forward(sts.server.addr)).await;
    // Nothing listens on port 1: only the tunnel reaches the stand-in.
    let vol = healthy_token();
    let out = pod("https://127.0.0.1:1", &vol)
        .env("HTTPS_PROXY", &proxy.url())
        .env("AWS_CA_BUNDLE", ca.to_str().unwrap())
        .json()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    assert_eq!(report["sts"]["proxy"], proxy.url());
    assert_eq!(report["sts"]["ca_bundle"], ca.to_str().unwrap());
    assert!(
        proxy
            .requests()
            .iter()
            .any(|r| r.starts_with("CONNECT 127.0.0.1:1 ")),
        "{:?}",
        proxy.requests()
    );
}

#[tokio::test]
async fn a_closed_proxy_port_is_proxy_unreachable_naming_the_proxy() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let vol = healthy_token();
    let out = pod("https://sts.example.invalid", &vol)
        .env(
            "HTTPS_PROXY",
            &format!("http://app:{PROXY_PASSWORD}@{}", &proxy[7..]),
        )
        .env("IRSA_DOCTOR_TIMEOUT", "2s")
        .json()
        .await;
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let f = out.finding("PROXY_UNREACHABLE");
    let message = f["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "could not connect to the proxy {proxy} on the way to STS"
        )),
        "{message}"
    );
    assert!(f["remedy"].as_str().unwrap().contains("NO_PROXY"), "{f}");
    assert!(
        !out.codes().contains(&"STS_UNREACHABLE".to_owned()),
        "{}",
        out.stdout
    );
    assert!(
        !out.all_output().contains(PROXY_PASSWORD),
        "{}",
        out.all_output()
    );
}

#[tokio::test]
async fn a_proxy_refusing_connect_or_the_forwarded_request_is_proxy_unreachable() {
    let vol = healthy_token();
    // 403 to CONNECT, for an https endpoint.
    let refusing = Proxy::start(Mode::Refuse(403)).await;
    let out = pod("https://sts.example.invalid", &vol)
        .env("HTTPS_PROXY", &refusing.url())
        .env("IRSA_DOCTOR_TIMEOUT", "2s")
        .json()
        .await;
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let f = out.finding("PROXY_UNREACHABLE");
    assert!(
        f["message"].as_str().unwrap().starts_with(&format!(
            "the proxy {} would not open a tunnel (CONNECT) to STS at https://sts.example.invalid",
            refusing.url()
        )),
        "{f}"
    );

    // 407 to a forwarded request, for an http endpoint: final, and the
    // remedy says the proxy wants credentials.
    let asking = Proxy::start(Mode::Refuse(407)).await;
    let out = pod("http://sts.example.invalid", &vol)
        .env("HTTP_PROXY", &asking.url())
        .json()
        .await;
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.json()["sts"]["attempts"], 1, "a 407 is not retried");
    let f = out.finding("PROXY_UNREACHABLE");
    assert!(
        f["message"].as_str().unwrap().starts_with(&format!(
            "the proxy {} refused to forward the request to STS at http://sts.example.invalid",
            asking.url()
        )),
        "{f}"
    );
    assert!(
        f["remedy"]
            .as_str()
            .unwrap()
            .contains("asks for credentials"),
        "{f}"
    );
    assert!(f["found"].as_str().unwrap().contains("HTTP 407"), "{f}");
}
