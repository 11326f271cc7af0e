//! What the webhook's tests share: a fake `Resolve`, AdmissionReview
//! builders, certificates from a throwaway CA written as cert-manager
//! writes them (through a `..data` symlink), an HTTPS client that trusts
//! only that CA and checks the name the API server would, the server run
//! in-process, and the stand-in Kubernetes API (404 to everything) that
//! `serve` binary tests name in KUBECONFIG.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use irsa_doctor_injector::lookup::{Resolve, ResolveFuture, Resolved};
use irsa_doctor_injector::webhook::server::Limits;
use irsa_doctor_injector::webhook::{serve, ServeConfig};
use irsa_doctor_injector::{Identity, Mode};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;

pub use testkit::http::WAIT_LIMIT;

/// What the peer sends until it closes the connection (or the read
/// fails), within [`WAIT_LIMIT`].
pub async fn read_until_closed<R: tokio::io::AsyncRead + Unpin>(reader: &mut R) -> Vec<u8> {
    let mut bytes = Vec::new();
    tokio::time::timeout(WAIT_LIMIT, reader.read_to_end(&mut bytes))
        .await
        .expect("the webhook did not close the connection")
        .ok();
    bytes
}

/// The name the API server checks: the Service's DNS name.
pub const SERVICE_NAME: &str = "irsa-doctor-injector.irsa-doctor.svc";

/// Identities by (namespace, service account); optionally never answers,
/// for the budget test.
#[derive(Default)]
pub struct FakeResolve {
    pub identities: HashMap<(String, String), Resolved>,
    pub hang: bool,
}

impl FakeResolve {
    /// Lookups that never answer: every review waits out its budget.
    pub fn hanging() -> Self {
        FakeResolve {
            hang: true,
            ..FakeResolve::default()
        }
    }

    pub fn with(mut self, ns: &str, sa: &str, identity: Identity) -> Self {
        self.identities.insert(
            (ns.to_owned(), sa.to_owned()),
            Resolved {
                identity,
                ..Resolved::default()
            },
        );
        self
    }

    pub fn with_resolved(mut self, ns: &str, sa: &str, resolved: Resolved) -> Self {
        self.identities
            .insert((ns.to_owned(), sa.to_owned()), resolved);
        self
    }
}

impl Resolve for FakeResolve {
    fn resolve<'a>(&'a self, namespace: &'a str, service_account: &'a str) -> ResolveFuture<'a> {
        let found = self
            .identities
            .get(&(namespace.to_owned(), service_account.to_owned()))
            .cloned()
            .unwrap_or_default();
        let hang = self.hang;
        Box::pin(async move {
            if hang {
                std::future::pending::<()>().await;
            }
            found
        })
    }
}

pub fn irsa(role: &str) -> Identity {
    Identity::ServiceAccount {
        role_arn: role.to_owned(),
    }
}

/// An AdmissionReview for `object` as the API server sends it.
pub fn review_of(object: Value, namespace: &str, operation: &str) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "",
            "namespace": namespace,
            "operation": operation,
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": object,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    })
}

/// A pod whose app container has IRSA's variables and token mount, as
/// the EKS webhook leaves it.
pub fn irsa_pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "app-", "labels": {"app": "app"}},
        "spec": {
            "serviceAccountName": "app",
            "containers": [{
                "name": "app",
                "image": "registry.example.com/app:1",
                "env": [
                    {"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::111122223333:role/app"},
                    {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"},
                    {"name": "AWS_REGION", "value": "eu-west-1"}
                ],
                "volumeMounts": [{"name": "aws-iam-token", "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount", "readOnly": true}]
            }],
            "volumes": [{"name": "aws-iam-token", "projected": {"sources": [{"serviceAccountToken": {"audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"}}]}}]
        }
    })
}

/// A pod with no AWS variables at all.
pub fn plain_pod(service_account: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "plain"},
        "spec": {
            "serviceAccountName": service_account,
            "containers": [{"name": "app", "image": "registry.example.com/app:1"}]
        }
    })
}

/// Applies the response's patch (base64 JSON patch) to `object`; the
/// object unchanged when there is none.
pub fn apply_response(object: &Value, answer: &Value) -> Value {
    let mut doc = object.clone();
    if let Some(patch) = patch_of(answer) {
        let patch: json_patch::Patch = serde_json::from_value(patch).unwrap();
        json_patch::patch(&mut doc, &patch).unwrap();
    }
    doc
}

/// The response's patch, decoded, when there is one.
pub fn patch_of(answer: &Value) -> Option<Value> {
    let response = &answer["response"];
    let patch = response["patch"].as_str()?;
    assert_eq!(response["patchType"], "JSONPatch");
    let bytes = base64_decode(patch);
    Some(serde_json::from_slice(&bytes).unwrap())
}

/// Standard base64 with padding, as the API server expects `patch`
/// (serde's encoding of kube's `Vec<u8>`); decoded by hand rather than a
/// crate for one test helper.
pub fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c).expect("base64") as u32;
        buf = (buf << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    out
}

/// A CA and the server certificates it signs.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pub pem: String,
    pub der: CertificateDer<'static>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A serving certificate for the Service's name and 127.0.0.1, PEM
    /// (certificate, key), and its DER to compare with what a client saw.
    pub fn serving(&self, common_name: &str) -> (String, String, Vec<u8>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![SERVICE_NAME.to_owned()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }
}

/// A Secret volume as the kubelet writes it: `tls.crt` and `tls.key` are
/// symlinks through `..data`, itself a symlink to a timestamped folder;
/// a rotation writes a new folder and swaps `..data` in one rename.
pub struct SecretVolume {
    pub dir: tempfile::TempDir,
    version: usize,
}

impl SecretVolume {
    pub fn new(cert: &str, key: &str) -> SecretVolume {
        let dir = tempfile::tempdir().unwrap();
        let mut volume = SecretVolume { dir, version: 0 };
        volume.rotate(cert, key);
        std::os::unix::fs::symlink("..data/tls.crt", volume.dir.path().join("tls.crt")).unwrap();
        std::os::unix::fs::symlink("..data/tls.key", volume.dir.path().join("tls.key")).unwrap();
        volume
    }

    pub fn rotate(&mut self, cert: &str, key: &str) {
        self.version += 1;
        let folder = format!("..2026_12_06_{:02}", self.version);
        let path = self.dir.path().join(&folder);
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("tls.crt"), cert).unwrap();
        std::fs::write(path.join("tls.key"), key).unwrap();
        let tmp = self.dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&folder, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.path().join("..data")).unwrap();
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("tls.crt")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.path().join("tls.key")
    }
}

/// The webhook served in-process over TLS on 127.0.0.1.
pub struct Running {
    pub addr: String,
    pub metrics_addr: String,
    pub ca: Ca,
    pub volume: SecretVolume,
    pub leaf: Vec<u8>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<Result<(), irsa_doctor_injector::webhook::ServeError>>,
}

impl Running {
    pub async fn start(resolver: Arc<dyn Resolve>, limits: Limits) -> Running {
        let ca = Ca::new("irsa-doctor webhook test CA");
        let (cert, key, leaf) = ca.serving("first");
        let volume = SecretVolume::new(&cert, &key);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let metrics_addr = metrics.local_addr().unwrap().to_string();
        let config = ServeConfig {
            options: super::options(Mode::Sidecar),
            own_namespace: Some("irsa-doctor".to_owned()),
            tls_cert: volume.cert(),
            tls_key: volume.key(),
            limits,
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, Some(metrics), config, resolver, async {
            let _ = rx.await;
        }));
        Running {
            addr,
            metrics_addr,
            ca,
            volume,
            leaf,
            stop: Some(tx),
            task,
        }
    }

    /// Asks the server to stop (SIGTERM's path, in-process).
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    pub async fn connect(&self) -> TlsStream<TcpStream> {
        connect_tls(&self.addr, &self.ca.der).await
    }

    /// One request over a new TLS connection; the answer and the
    /// certificate the server showed.
    pub async fn https(&self, raw: &[u8]) -> (testkit::http::Answer, Vec<u8>) {
        let mut tls = self.connect().await;
        let peer = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
        tls.write_all(raw).await.unwrap();
        let bytes = read_until_closed(&mut tls).await;
        (testkit::http::parse(&bytes), peer)
    }

    /// POSTs an AdmissionReview to /mutate.
    pub async fn mutate(&self, review: &Value) -> testkit::http::Answer {
        let body = serde_json::to_vec(review).unwrap();
        self.https(&post("/mutate", &body)).await.0
    }

    pub async fn get(&self, path: &str) -> testkit::http::Answer {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        self.https(raw.as_bytes()).await.0
    }

    /// A scrape of the plain metrics port.
    pub async fn scrape(&self) -> String {
        let raw = b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let answer = testkit::http::exchange(&self.metrics_addr, raw).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body
    }
}

pub fn post(path: &str, body: &[u8]) -> Vec<u8> {
    let mut raw = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// A TLS connection to `addr` that trusts only `ca` and checks the
/// Service's name, as the API server does with the caBundle.
pub async fn connect_tls(addr: &str, ca: &CertificateDer<'static>) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(SERVICE_NAME).unwrap();
    tokio::time::timeout(WAIT_LIMIT, connector.connect(name, tcp))
        .await
        .expect("the TLS handshake hung")
        .expect("the TLS handshake failed")
}

/// The value of the series `name{labels}` in an exposition text.
pub fn series(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no series {name_and_labels} in\n{text}"))
        .parse()
        .unwrap()
}

/// A stand-in Kubernetes API that answers 404 to everything, and a
/// kubeconfig naming it: `serve` reads a Kubernetes config once the
/// lookups are connected, and its binary tests must not reach a real one.
pub async fn kubeconfig(dir: &Path) -> (testkit::http::Server, PathBuf) {
    let server = testkit::http::serve(Arc::new(|_req| {
        Box::pin(async {
            testkit::http::response(
                404,
                "application/json",
                "{\"kind\":\"Status\",\"code\":404}",
            )
        })
    }))
    .await;
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: stand-in\n  cluster:\n    server: {}\ncontexts:\n- name: stand-in\n  context:\n    cluster: stand-in\n    user: nobody\n    namespace: default\ncurrent-context: stand-in\nusers:\n- name: nobody\n  user: {{}}\n",
        server.url()
    );
    std::fs::write(&path, text).unwrap();
    (server, path)
}

/// The pod phase 1 makes of `pod` (`inject()`, applied to the raw JSON):
/// what the webhook's patch, applied, must equal.
pub fn phase_one(pod: &Value, identity: &Identity, mode: Mode) -> Value {
    let typed: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod.clone()).unwrap();
    let (_, plan) = irsa_doctor_injector::inject(
        &typed.metadata,
        typed.spec.as_ref().unwrap(),
        identity,
        &super::options(mode),
    );
    let mut raw = pod.clone();
    for change in &plan.changes {
        assert!(irsa_doctor_injector::plan::apply_to_json(
            &mut raw["spec"],
            change
        ));
    }
    raw
}
