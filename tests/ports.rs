//! Every URL irsa-doctor connects to (STS, IAM, the Pod Identity agent,
//! the issuer, a proxy) is connected to at exactly the host and port it
//! names, or refused with a finding and nothing sent.
//!
//! `http::Uri` accepts `host:99999` and `host:x`, and reads their port as
//! absent; the clients then connected to the scheme's default port (80),
//! and the Pod Identity token went to whatever listened there. Each URL is
//! tried with the ports 0, 65536, 99999, a word, and its stand-in's own
//! port plus 65536, which a client that wrapped the port would reach: the
//! stand-in must see nothing. Port 80 itself is watched in a network
//! namespace of the test's own, where it may be bound.

use serde_json::json;
use testkit::agent::Agent;
use testkit::fake_aws::FakeAws;
use testkit::jwt::{Jwt, TokenVolume};
use testkit::oidc::{Issuer, Signer};
use testkit::proxy::{Mode, Proxy};
use testkit::world::{NAMESPACE, ROLE_ARN, SERVICE_ACCOUNT};
use testkit::{doctor, Outcome};

/// `http://127.0.0.1:<port>` for each port no connection can use exactly,
/// `wrapping` being a stand-in's port: that plus 65536 reaches it if
/// anything wraps the port.
fn bad_ports(wrapping: u16) -> Vec<String> {
    let wrapped = u32::from(wrapping) + 65536;
    ["0", "65536", "99999", "eighty", &wrapped.to_string()]
        .iter()
        .map(|port| format!("http://127.0.0.1:{port}"))
        .collect()
}

#[track_caller]
fn says(out: &Outcome, code: &str, words: &str) {
    let f = out.finding(code);
    assert!(
        f["message"].as_str().unwrap_or_default().contains(words),
        "{words}: {f:#}\n{}",
        out.stderr
    );
}

#[tokio::test]
async fn an_agent_uri_port_no_connection_can_use_is_invalid_and_asked_nowhere() {
    let sts = FakeAws::healthy().await;
    let agent = Agent::healthy(&sts.aws).await;
    let volume =
        TokenVolume::pod_identity(&Jwt::for_pod_identity(NAMESPACE, SERVICE_ACCOUNT).encode());
    for base in bad_ports(agent.addr().port()) {
        let uri = format!("{base}/v1/credentials");
        let out = doctor!(&sts.url())
            .pod_identity(&uri, &volume.path())
            .json()
            .await;
        assert_eq!(out.code, 1, "{uri}: {}\n{}", out.stdout, out.stderr);
        says(
            &out,
            "POD_IDENTITY_URI_INVALID",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        );
        assert_eq!(out.json()["verdict"], "fail", "{uri}");
    }
    assert_eq!(agent.agent.request_count(), 0, "not ours, not the chain's");
    assert_eq!(
        sts.aws.caller_identity_calls(),
        0,
        "no credentials to ask about"
    );
}

#[tokio::test]
async fn an_sts_endpoint_port_no_connection_can_use_is_invalid_and_nothing_is_sent() {
    let sts = FakeAws::healthy().await;
    let volume = TokenVolume::new(&Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).encode());
    for endpoint in bad_ports(sts.server.addr.port()) {
        let out = doctor!(&endpoint)
            .irsa(ROLE_ARN, &volume.path())
            .json()
            .await;
        assert_eq!(out.code, 1, "{endpoint}: {}\n{}", out.stdout, out.stderr);
        says(&out, "ENDPOINT_INVALID", "AWS_ENDPOINT_URL_STS");
        assert_eq!(out.json()["sts"]["attempts"], 0, "{endpoint}");
    }
    assert_eq!(sts.aws.assume_calls(), 0, "not ours, not the chain's");
}

#[tokio::test]
async fn an_iam_endpoint_port_no_connection_can_use_is_invalid_and_iam_is_not_asked() {
    let sts = FakeAws::healthy().await;
    let volume = TokenVolume::new(&Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).encode());
    for endpoint in bad_ports(sts.server.addr.port()) {
        let out = doctor!(&sts.url())
            .irsa(ROLE_ARN, &volume.path())
            .env("AWS_ENDPOINT_URL_IAM", &endpoint)
            .arg("--require")
            .arg("s3:GetObject@arn:aws:s3:::orders/*")
            .json()
            .await;
        assert_eq!(out.code, 1, "{endpoint}: {}\n{}", out.stdout, out.stderr);
        says(&out, "ENDPOINT_INVALID", "AWS_ENDPOINT_URL_IAM");
        let permissions = &out.json()["permissions"];
        assert_eq!(permissions["requests"], 0, "{permissions:#}");
    }
    // Without --require IAM is never asked, and its endpoint not judged.
    let out = doctor!(&sts.url())
        .irsa(ROLE_ARN, &volume.path())
        .env("AWS_ENDPOINT_URL_IAM", "http://127.0.0.1:99999")
        .json()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
}

#[tokio::test]
async fn a_proxy_port_no_connection_can_use_is_invalid_and_nothing_is_sent() {
    let sts = FakeAws::healthy().await;
    let proxy = Proxy::start(Mode::Forward(sts.server.addr)).await;
    let volume = TokenVolume::new(&Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).encode());
    for name in ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "ALL_PROXY"] {
        for value in bad_ports(proxy.addr.port()) {
            let value = value.replace("://", "://app:pr0xy-passw0rd@");
            let out = doctor!("https://sts.example.invalid")
                .irsa(ROLE_ARN, &volume.path())
                .env(name, &value)
                .json()
                .await;
            assert_eq!(
                out.code, 1,
                "{name}={value}: {}\n{}",
                out.stdout, out.stderr
            );
            says(&out, "ENDPOINT_INVALID", name);
            assert!(
                !out.all_output().contains("pr0xy-passw0rd"),
                "{}",
                out.all_output()
            );
        }
    }
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());
    assert_eq!(sts.aws.assume_calls(), 0);
}

#[tokio::test]
async fn an_issuer_port_no_connection_can_use_is_refused_unasked() {
    let signer = Signer::rs256("k1");
    let issuer = Issuer::start(&[&signer]).await;
    let port = issuer.url().rsplit(':').next().unwrap().parse().unwrap();
    for iss in bad_ports(port) {
        let token = signer.sign(
            &issuer
                .jwt(NAMESPACE, SERVICE_ACCOUNT)
                .set("iss", json!(iss)),
        );
        let sts = FakeAws::healthy_for_issuer(&iss).await;
        let volume = TokenVolume::new(&token);
        let out = doctor!(&sts.url())
            .irsa(ROLE_ARN, &volume.path())
            .arg("--verify-issuer")
            .arg("--allow-http-issuer")
            .json()
            .await;
        assert_eq!(out.codes(), ["ISSUER_UNREACHABLE"], "{iss}: {}", out.stdout);
        says(&out, "ISSUER_UNREACHABLE", "was not asked");
    }
    assert_eq!(issuer.requests(), (0, 0));
}

/// The guard the black-box tests above cannot watch: port 80. The binary
/// runs in a user and network namespace of its own (`unshare -rn`), where
/// a Python guard brings loopback up, listens on 127.0.0.1:80, runs the
/// binary, and then counts the connections waiting there and the bytes
/// they sent. Before the fix the token arrived there.
#[tokio::test]
async fn nothing_reaches_port_80_for_a_port_the_uri_parser_cannot_read() {
    const GUARD: &str = r#"
import fcntl, socket, struct, subprocess, sys
# SIOCSIFFLAGS: lo up and running (a new network namespace has it down).
fcntl.ioctl(socket.socket(), 0x8914, struct.pack("16sH", b"lo", 0x1 | 0x40))
listener = socket.socket()
listener.bind(("127.0.0.1", 80))
listener.listen(64)
listener.setblocking(False)
code = subprocess.run(sys.argv[1:]).returncode
connections, received = 0, b""
while True:
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        break
    connections += 1
    conn.setblocking(False)
    try:
        received += conn.recv(65536)
    except BlockingIOError:
        pass
sys.stderr.write(f"PORT80 connections={connections} bytes={len(received)}\n")
sys.exit(code)
"#;
    let token = Jwt::for_pod_identity(NAMESPACE, SERVICE_ACCOUNT).encode();
    let volume = TokenVolume::pod_identity(&token);
    let mut guarded = 0;
    for port in ["99999", "0", "65536", "x", "80"] {
        let uri = format!("http://127.0.0.1:{port}/v1/credentials");
        let out = doctor!("http://127.0.0.1:1")
            .pod_identity(&uri, &volume.path())
            .env("IRSA_DOCTOR_TIMEOUT", "3s")
            .under(&["unshare", "-rn", "python3", "-c", GUARD])
            .json()
            .await;
        let line = out
            .stderr
            .lines()
            .find(|l| l.starts_with("PORT80 "))
            .unwrap_or_else(|| {
                panic!(
                    "the guard did not run (unshare -rn and python3 are needed): {}",
                    out.stderr
                )
            });
        if port == "80" {
            // The control: port 80 named, port 80 asked. Proves the guard
            // sees a connection when there is one.
            assert!(!line.contains("connections=0"), "{line}");
            continue;
        }
        guarded += 1;
        assert_eq!(line, "PORT80 connections=0 bytes=0", "{uri}");
        says(&out, "POD_IDENTITY_URI_INVALID", "port");
    }
    assert_eq!(guarded, 4);
}
