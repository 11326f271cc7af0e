//! A loopback OIDC issuer, as a cluster's service-account issuer publishes
//! itself: `/.well-known/openid-configuration` and its key set, with keys
//! that really sign (RS256 and ES256, made with aws-lc-rs), fault
//! injection (another issuer published, a hang, an oversized answer, a
//! status) and a count of the requests it got.

use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use base64::Engine as _;
use serde_json::{json, Value};

use crate::http::{response, serve, serve_tls, Handler, Server};
use crate::jwt::Jwt;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

enum KeyKind {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// A signing key with its `kid`.
pub struct Signer {
    pub kid: String,
    key: KeyKind,
}

impl Signer {
    /// A fresh 2048-bit RSA key, for RS256 (what EKS signs with).
    pub fn rs256(kid: &str) -> Self {
        Signer {
            kid: kid.into(),
            key: KeyKind::Rsa(
                RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("an RSA key"),
            ),
        }
    }

    /// A fresh P-256 key, for ES256.
    pub fn es256(kid: &str) -> Self {
        Signer {
            kid: kid.into(),
            key: KeyKind::Ec(
                EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                    .expect("a P-256 key"),
            ),
        }
    }

    pub fn alg(&self) -> &'static str {
        match self.key {
            KeyKind::Rsa(_) => "RS256",
            KeyKind::Ec(_) => "ES256",
        }
    }

    /// The public key as a JWK, as the key set publishes it.
    pub fn jwk(&self) -> Value {
        match &self.key {
            KeyKind::Rsa(key) => {
                let (n, e) = rsa_public_key(key.public_key().as_ref());
                json!({
                    "use": "sig", "kty": "RSA", "kid": self.kid, "alg": "RS256",
                    "n": b64(n), "e": b64(e),
                })
            }
            KeyKind::Ec(key) => {
                let point = key.public_key().as_ref();
                json!({
                    "use": "sig", "kty": "EC", "crv": "P-256", "kid": self.kid, "alg": "ES256",
                    "x": b64(&point[1..33]), "y": b64(&point[33..65]),
                })
            }
        }
    }

    /// `jwt` signed with this key, its header naming the key's `kid`.
    pub fn sign(&self, jwt: &Jwt) -> String {
        self.sign_with_header(&json!({"alg": self.alg(), "kid": self.kid}), jwt)
    }

    /// `jwt` under `header`, signed with this key whatever the header says.
    pub fn sign_with_header(&self, header: &Value, jwt: &Jwt) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(jwt.claims.to_string().as_bytes())
        );
        format!("{input}.{}", b64(&self.sign_bytes(input.as_bytes())))
    }

    /// The signature of `message` as JWS carries it (ES256's fixed-size
    /// r and s).
    pub fn sign_bytes(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.key {
            KeyKind::Rsa(key) => {
                let mut sig = vec![0; key.public_modulus_len()];
                key.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .expect("RSA signing");
                sig
            }
            KeyKind::Ec(key) => key
                .sign(&rng, message)
                .expect("ECDSA signing")
                .as_ref()
                .to_vec(),
        }
    }
}

/// The modulus and exponent of a DER `RSAPublicKey` (RFC 8017: a SEQUENCE
/// of two INTEGERs), without the sign byte, as a JWK carries them.
fn rsa_public_key(der: &[u8]) -> (&[u8], &[u8]) {
    // A DER length at `at`: the value's length and where the value starts.
    fn length(der: &[u8], at: usize) -> (usize, usize) {
        match der[at] {
            short if short < 0x80 => (usize::from(short), at + 1),
            long => {
                let n = usize::from(long & 0x7f);
                let len = der[at + 1..at + 1 + n]
                    .iter()
                    .fold(0, |acc, &b| (acc << 8) | usize::from(b));
                (len, at + 1 + n)
            }
        }
    }
    let integer = |at: usize| {
        assert_eq!(der[at], 0x02, "an INTEGER");
        let (len, start) = length(der, at + 1);
        let value = &der[start..start + len];
        let value = value.strip_prefix(&[0]).unwrap_or(value);
        (value, start + len)
    };
    assert_eq!(der[0], 0x30, "a SEQUENCE");
    let (_, first) = length(der, 1);
    let (n, next) = integer(first);
    let (e, _) = integer(next);
    (n, e)
}

/// What the issuer does wrong, on command.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Never answers.
    Hang,
    /// Answers the discovery document with more than 64 KiB.
    Oversize,
    /// Answers every request with this status and no document.
    Status(u16),
}

#[derive(Default)]
struct State {
    /// `http` or `https`, for the URLs the documents name.
    scheme: &'static str,
    keys: Vec<Value>,
    /// The `issuer` the document names, when not the stand-in's own URL.
    published: Option<String>,
    fault: Option<Fault>,
    discovery_requests: u64,
    jwks_requests: u64,
}

impl State {
    fn publishing(keys: &[&Signer], scheme: &'static str) -> Arc<Mutex<State>> {
        Arc::new(Mutex::new(State {
            scheme,
            keys: keys.iter().map(|k| k.jwk()).collect(),
            ..State::default()
        }))
    }
}

/// The issuer stand-in, on `http://127.0.0.1:<port>`.
pub struct Issuer {
    state: Arc<Mutex<State>>,
    server: Server,
}

impl Issuer {
    /// An issuer publishing `keys`, over plain HTTP.
    pub async fn start(keys: &[&Signer]) -> Issuer {
        let state = State::publishing(keys, "http");
        let server = serve(handler(state.clone())).await;
        Issuer { state, server }
    }

    /// An issuer publishing `keys`, over HTTPS with `acceptor`'s
    /// certificate (`crate::test_ca_and_acceptor`).
    pub async fn start_tls(keys: &[&Signer], acceptor: tokio_rustls::TlsAcceptor) -> Issuer {
        let state = State::publishing(keys, "https");
        let server = serve_tls(handler(state.clone()), acceptor).await;
        Issuer { state, server }
    }

    /// The issuer URL, as the token's `iss`: `http://127.0.0.1:<port>`
    /// (or `https://`).
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// A kubelet-like token of `namespace`/`sa` for `audience` from this
    /// issuer, unsigned (the caller signs it).
    pub fn jwt(&self, namespace: &str, sa: &str) -> Jwt {
        Jwt::for_sa(namespace, sa).set("iss", json!(self.url()))
    }

    /// Publishes `keys` instead (a key rotation).
    pub fn set_keys(&self, keys: &[&Signer]) {
        self.state.lock().unwrap().keys = keys.iter().map(|k| k.jwk()).collect();
    }

    /// Names `issuer` in the discovery document instead of its own URL.
    pub fn publish_issuer(&self, issuer: &str) {
        self.state.lock().unwrap().published = Some(issuer.into());
    }

    pub fn fault(&self, fault: Option<Fault>) {
        self.state.lock().unwrap().fault = fault;
    }

    /// Requests for the discovery document and for the key set so far.
    pub fn requests(&self) -> (u64, u64) {
        let state = self.state.lock().unwrap();
        (state.discovery_requests, state.jwks_requests)
    }

    /// Stops the issuer: its port then refuses connections.
    pub async fn close(self) {
        self.server.close().await;
    }
}

fn handler(state: Arc<Mutex<State>>) -> Handler {
    Arc::new(move |req| {
        let state = state.clone();
        Box::pin(async move {
            let host = req
                .headers
                .get("host")
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let (fault, published, keys, scheme) = {
                let mut s = state.lock().unwrap();
                match req.path.as_str() {
                    "/.well-known/openid-configuration" => s.discovery_requests += 1,
                    "/keys" => s.jwks_requests += 1,
                    _ => {}
                }
                (
                    s.fault.clone(),
                    s.published.clone(),
                    s.keys.clone(),
                    s.scheme,
                )
            };
            let own = format!("{scheme}://{host}");
            match (fault, req.path.as_str()) {
                (Some(Fault::Hang), _) => std::future::pending::<crate::http::Resp>().await,
                (Some(Fault::Status(status)), _) => response(status, "text/plain", "no"),
                (fault, "/.well-known/openid-configuration") => {
                    let mut doc = json!({
                        "issuer": published.unwrap_or_else(|| own.clone()),
                        "jwks_uri": format!("{own}/keys"),
                        "response_types_supported": ["id_token"],
                        "subject_types_supported": ["public"],
                        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                    });
                    if matches!(fault, Some(Fault::Oversize)) {
                        doc["padding"] = json!("x".repeat(100 * 1024));
                    }
                    response(200, "application/json", doc.to_string())
                }
                (_, "/keys") => response(
                    200,
                    "application/jwk-set+json",
                    json!({ "keys": keys }).to_string(),
                ),
                _ => response(404, "text/plain", "not found"),
            }
        })
    })
}
