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
    /// An RSA key too small for aws-lc-rs to sign with (it makes and loads
    /// 2048 to 8192 bits): the modulus and private exponent, big-endian.
    SmallRsa {
        n: Vec<u8>,
        d: Vec<u8>,
    },
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

    /// A 1024-bit RSA key, for RS256: too small for irsa-doctor (and for
    /// aws-lc-rs, which signs here by hand, `small_rsa`). The key is fixed,
    /// made once with `openssl genrsa 1024` for these tests; it signs
    /// nothing else.
    pub fn rs256_1024(kid: &str) -> Self {
        let hex = |parts: &[&str]| {
            let text = parts.concat();
            (0..text.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
                .collect()
        };
        Signer {
            kid: kid.into(),
            key: KeyKind::SmallRsa {
                n: hex(&SMALL_RSA_N),
                d: hex(&SMALL_RSA_D),
            },
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
            KeyKind::Rsa(_) | KeyKind::SmallRsa { .. } => "RS256",
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
            KeyKind::SmallRsa { n, .. } => json!({
                "use": "sig", "kty": "RSA", "kid": self.kid, "alg": "RS256",
                "n": b64(n), "e": b64(&[1, 0, 1]),
            }),
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
            KeyKind::SmallRsa { n, d } => small_rsa::sign(n, d, message),
            KeyKind::Ec(key) => key
                .sign(&rng, message)
                .expect("ECDSA signing")
                .as_ref()
                .to_vec(),
        }
    }
}

/// `Signer::rs256_1024`'s key (public exponent 65537), in hex.
const SMALL_RSA_N: [&str; 4] = [
    "b6a3e47b955dc0982b1f7dfc2046b6021f7e8b44e8af7ae2eafe9c9cf3ec4477",
    "cb2c217818132703db22ed49ea260dec68773bf6083e91411efa2877ebd4b3ec",
    "e2d103cd48258059ec0b27005e78a300af91c3c1fdbdcda9d47f906d8a373ceb",
    "d7e5b4feb90fcc76f4778fbfad55ce1c6bde67259a055f5a91de999802d89427",
];
const SMALL_RSA_D: [&str; 4] = [
    "17b5d727a41073bc4d7cdd222a1e83ea6aa446f83f2ce8cb24aec12e2f0c7127",
    "0c1d428b10b50bcf9857446ee012e8a3d43c0670be49411a2f2752b19ed0123b",
    "6a5f1dd811a526cf8d8c645bbc97f534b52c0943eeea9ecf6ade607e5ec2c9e4",
    "5b29cc75311bde9e2c5c95ba12b666468e19cfb00d913beb10d696a91571b921",
];

/// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017, 8.2.1) for a key aws-lc-rs
/// will not sign with: the encoded digest raised to `d` modulo `n` by
/// Montgomery multiplication on 32-bit limbs. Test-only arithmetic: not
/// constant-time.
mod small_rsa {
    use sha2::{Digest, Sha256};

    /// DigestInfo's DER prefix for SHA-256 (RFC 8017, 9.2, note 1).
    const SHA256_PREFIX: [u8; 19] = [
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];

    pub fn sign(n: &[u8], d: &[u8], message: &[u8]) -> Vec<u8> {
        let k = n.len();
        let mut em = vec![0xff; k];
        em[0] = 0;
        em[1] = 1;
        let t: Vec<u8> = SHA256_PREFIX
            .iter()
            .copied()
            .chain(Sha256::digest(message))
            .collect();
        em[k - t.len() - 1] = 0;
        em[k - t.len()..].copy_from_slice(&t);
        let limbs = limbs(n);
        let s = pow(&self::limbs(&em), d, &limbs);
        let mut out = vec![0; k];
        for (i, limb) in s.iter().enumerate() {
            for (b, byte) in limb.to_le_bytes().iter().enumerate() {
                let at = i * 4 + b;
                if at < k {
                    out[k - 1 - at] = *byte;
                }
            }
        }
        out
    }

    /// Big-endian bytes as little-endian 32-bit limbs.
    fn limbs(bytes: &[u8]) -> Vec<u32> {
        bytes
            .rchunks(4)
            .map(|c| c.iter().fold(0, |acc, &b| (acc << 8) | u32::from(b)))
            .collect()
    }

    fn at_least(a: &[u32], n: &[u32]) -> bool {
        for i in (0..n.len()).rev() {
            if a[i] != n[i] {
                return a[i] > n[i];
            }
        }
        true
    }

    fn subtract(a: &mut [u32], n: &[u32]) {
        let mut borrow = 0i64;
        for i in 0..n.len() {
            let x = i64::from(a[i]) - i64::from(n[i]) - borrow;
            a[i] = x as u32;
            borrow = i64::from(x < 0);
        }
    }

    /// a * b / 2^(32 len) mod n (CIOS).
    fn mont_mul(a: &[u32], b: &[u32], n: &[u32], n0: u32) -> Vec<u32> {
        let s = n.len();
        let mut t = vec![0u32; s + 2];
        for &bi in b {
            let mut carry = 0u64;
            for j in 0..s {
                let x = u64::from(t[j]) + u64::from(a[j]) * u64::from(bi) + carry;
                t[j] = x as u32;
                carry = x >> 32;
            }
            let x = u64::from(t[s]) + carry;
            t[s] = x as u32;
            t[s + 1] = (x >> 32) as u32;
            let m = t[0].wrapping_mul(n0);
            let mut carry = (u64::from(t[0]) + u64::from(m) * u64::from(n[0])) >> 32;
            for j in 1..s {
                let x = u64::from(t[j]) + u64::from(m) * u64::from(n[j]) + carry;
                t[j - 1] = x as u32;
                carry = x >> 32;
            }
            let x = u64::from(t[s]) + carry;
            t[s - 1] = x as u32;
            t[s] = t[s + 1] + (x >> 32) as u32;
            t[s + 1] = 0;
        }
        let mut r = t[..s + 1].to_vec();
        if r[s] != 0 || at_least(&r, n) {
            subtract(&mut r, n);
        }
        r.truncate(s);
        r
    }

    /// base^exp mod n; `exp` big-endian bytes.
    fn pow(base: &[u32], exp: &[u8], n: &[u32]) -> Vec<u32> {
        let s = n.len();
        // -n^-1 mod 2^32, by Newton's iteration.
        let mut inv = 1u32;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u32.wrapping_sub(n[0].wrapping_mul(inv)));
        }
        let n0 = inv.wrapping_neg();
        // R^2 mod n, R = 2^(32 s), by doubling.
        let mut r2 = vec![0u32; s + 1];
        r2[0] = 1;
        for _ in 0..64 * s {
            let mut carry = 0;
            for limb in r2.iter_mut() {
                let next = *limb >> 31;
                *limb = (*limb << 1) | carry;
                carry = next;
            }
            if r2[s] != 0 || at_least(&r2, n) {
                subtract(&mut r2, n);
                r2[s] = 0;
            }
        }
        r2.truncate(s);
        let mut base = base.to_vec();
        base.resize(s, 0);
        let x = mont_mul(&base, &r2, n, n0);
        let mut one = vec![0u32; s];
        one[0] = 1;
        let mut acc = mont_mul(&one, &r2, n, n0);
        for byte in exp {
            for bit in (0..8).rev() {
                acc = mont_mul(&acc, &acc, n, n0);
                if byte >> bit & 1 == 1 {
                    acc = mont_mul(&acc, &x, n, n0);
                }
            }
        }
        mont_mul(&acc, &one, n, n0)
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
