//! The projected service-account token: reading it safely and decoding its
//! claims.
//!
//! The token is a bearer credential. It lives in [`RawToken`], whose `Debug`
//! is redacted and which has no `Display`, so it cannot reach a log line or a
//! report by accident; only `peers/sts.rs` and `peers/agent.rs` call [`RawToken::expose`].
//!
//! Reading is bounded: STS accepts at most 20000 characters, so at most
//! 20001 bytes are read, and only from a regular file (a FIFO at the token
//! path would otherwise block forever). Claims are decoded, never verified:
//! the signature is STS's business, and ours is to explain what it will see.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::guard::files::{read_bounded, NotAFile, ReadProblem};

/// STS's limit on `WebIdentityToken`.
pub const MAX_TOKEN_BYTES: usize = 20_000;

/// The token's text. Deliberately not `Display`, and `Debug` shows no byte of it.
#[derive(Clone)]
pub struct RawToken {
    text: String,
    /// The file's bytes, untrimmed, can travel as an HTTP header value: no
    /// CR, LF or other control character. The SDKs send the Pod Identity
    /// token file's bytes as they are in `Authorization`, and refuse it
    /// otherwise (the AWS SDK for Rust with `InvalidAuthToken`).
    header_safe: bool,
}

impl RawToken {
    /// The token itself, trimmed, for the places that must send it: the STS
    /// call and the Pod Identity agent.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// Whether the file's bytes, as an SDK would send them in a header,
    /// are a valid header value.
    pub fn header_safe(&self) -> bool {
        self.header_safe
    }
}

impl fmt::Debug for RawToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawToken(** redacted, {} bytes **)", self.text.len())
    }
}

/// Our own uid, gid and supplementary groups: what the kernel compares with
/// the token file's owner and mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessIds {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

impl ProcessIds {
    /// Reads `/proc/self/status`; `None` where there is no procfs.
    pub fn current() -> Option<Self> {
        Self::parse_status(&fs::read_to_string("/proc/self/status").ok()?)
    }

    fn parse_status(status: &str) -> Option<Self> {
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|rest| {
                    rest.split_whitespace()
                        .filter_map(|n| n.parse::<u32>().ok())
                        .collect::<Vec<_>>()
                })
        };
        // The effective ids are the second column of Uid: and Gid:.
        let uid = *field("Uid:")?.get(1)?;
        let gid = *field("Gid:")?.get(1)?;
        let groups = field("Groups:").unwrap_or_default();
        Some(ProcessIds { uid, gid, groups })
    }
}

/// Why the token could not be read. Each variant maps to one finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenFileProblem {
    /// Nothing at the path, or a symlink chain that ends nowhere.
    Missing { path: PathBuf, detail: String },
    /// Something is there, but not a file: the variable names the volume's
    /// directory, a device, a FIFO, or a symlink loop.
    NotAFile { path: PathBuf, kind: NotAFile },
    /// A file we may not read.
    Unreadable {
        path: PathBuf,
        detail: String,
        /// `(mode, uid, gid)` of the file, where `stat` worked.
        file: Option<(u32, u32, u32)>,
        process: Option<ProcessIds>,
    },
    /// Read, but over STS's size limit or empty.
    Malformed { path: PathBuf, detail: String },
}

/// Reads the token at `path`, following the kubelet's symlinks
/// (`token -> ..data/token`, `..data -> ..<timestamp>`) afresh on every call:
/// after a rotation the same path names a new file. Whatever is read is
/// registered for redaction before anything else sees it.
pub fn read_token_file(path: &Path) -> Result<RawToken, TokenFileProblem> {
    let malformed = |detail: &str| TokenFileProblem::Malformed {
        path: path.to_owned(),
        detail: detail.to_owned(),
    };
    let buf =
        match read_bounded(path, MAX_TOKEN_BYTES) {
            Ok(buf) => buf,
            Err(ReadProblem::Missing) => {
                return Err(TokenFileProblem::Missing {
                    path: path.to_owned(),
                    detail: describe_missing(path),
                })
            }
            Err(ReadProblem::NotAFile(kind)) => {
                return Err(TokenFileProblem::NotAFile {
                    path: path.to_owned(),
                    kind,
                })
            }
            Err(ReadProblem::TooLarge { .. }) => return Err(malformed(
                "the file is larger than 20000 bytes, the most STS accepts as a WebIdentityToken",
            )),
            Err(ReadProblem::Denied { detail, file }) => {
                return Err(TokenFileProblem::Unreadable {
                    path: path.to_owned(),
                    detail,
                    file,
                    process: ProcessIds::current(),
                })
            }
            Err(ReadProblem::Failed(detail)) => {
                return Err(TokenFileProblem::Unreadable {
                    path: path.to_owned(),
                    detail,
                    file: None,
                    process: ProcessIds::current(),
                })
            }
        };
    token_of_bytes(buf).map_err(malformed)
}

/// The token in a file's bytes, once read: registered for redaction first,
/// then trimmed; or why the bytes are not a token (completes "the file
/// ..."). Pure apart from the registration, so that it can be fuzzed.
pub(crate) fn token_of_bytes(buf: Vec<u8>) -> Result<RawToken, &'static str> {
    let text = String::from_utf8_lossy(&buf);
    crate::guard::redact::register_token(text.trim());
    // What http's HeaderValue accepts: visible ASCII, space, tab and
    // obs-text; no control character.
    let header_safe = buf.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f));
    let text = String::from_utf8(buf).map_err(|_| "the file is not UTF-8 text")?;
    let token = text.trim();
    if token.is_empty() {
        return Err("the file is empty");
    }
    Ok(RawToken {
        text: token.to_owned(),
        header_safe,
    })
}

/// Says where a path's symlink chain breaks: the usual sight is a `..data`
/// link whose timestamped target the kubelet has already removed.
fn describe_missing(path: &Path) -> String {
    if let Ok(target) = fs::read_link(path) {
        let resolved = path.parent().unwrap_or(Path::new("/")).join(&target);
        let mut detail = format!(
            "{} is a symlink to {}, which does not exist",
            path.display(),
            target.display()
        );
        // token -> ..data/token: name the broken ..data link too.
        if let Some(first) = target.components().next() {
            let link = path.parent().unwrap_or(Path::new("/")).join(first);
            if let Ok(inner) = fs::read_link(&link) {
                let state = if link.is_dir() {
                    "which exists but holds no such file"
                } else {
                    "which is gone"
                };
                detail.push_str(&format!(
                    " ({} points to {}, {state})",
                    link.display(),
                    inner.display()
                ));
            }
        }
        if !resolved.exists() {
            return detail;
        }
    }
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => format!(
            "the directory {} does not exist: the projected token volume is not mounted",
            dir.display()
        ),
        _ => format!("no file at {}", path.display()),
    }
}

/// The claims irsa-doctor reads from the token's payload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Claims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub aud: Vec<String>,
    pub exp: Option<i64>,
    pub iat: Option<i64>,
    pub nbf: Option<i64>,
    pub kubernetes: Option<KubernetesClaims>,
}

/// The nested `kubernetes.io` claim, flattened to names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KubernetesClaims {
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub service_account: Option<String>,
    pub node: Option<String>,
}

/// Why a token is not a JWT we can read; the message completes "the token ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedToken {
    #[error("is not a JWT: it has {0} dot-separated segments, a JWT has 3")]
    Segments(usize),
    #[error("has a {0} segment that is not base64url")]
    Base64(&'static str),
    #[error("has a {0} segment that is not a JSON object: {1}")]
    Json(&'static str, String),
}

// Wire shapes, kept apart from the public `Claims` so that `aud` as string or
// array and the nested `kubernetes.io` object stay a decoding detail.
#[derive(Deserialize)]
struct WireClaims {
    iss: Option<String>,
    sub: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    exp: Option<i64>,
    iat: Option<i64>,
    nbf: Option<i64>,
    #[serde(rename = "kubernetes.io")]
    kubernetes: Option<WireKubernetes>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct WireKubernetes {
    namespace: Option<String>,
    pod: Option<WireRef>,
    serviceaccount: Option<WireRef>,
    node: Option<WireRef>,
}

#[derive(Deserialize)]
struct WireRef {
    name: Option<String>,
}

fn decode_segment(segment: &str, which: &'static str) -> Result<Vec<u8>, MalformedToken> {
    // RFC 7515 says unpadded, but some issuers pad; accept both.
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment.trim_end_matches('='))
        .map_err(|_| MalformedToken::Base64(which))
}

/// What a signature check needs of the token, and nothing it may send:
/// the protected header's `alg` and `kid`, the signing input (the first two
/// segments as they are in the token) and the decoded signature.
pub struct Signed<'a> {
    pub alg: Option<String>,
    pub kid: Option<String>,
    pub signing_input: &'a str,
    pub signature: Vec<u8>,
}

impl std::fmt::Debug for Signed<'_> {
    // The signing input and the signature are the token: never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signed(alg {:?}, kid {:?})", self.alg, self.kid)
    }
}

#[derive(Deserialize)]
struct WireHeader {
    alg: Option<String>,
    kid: Option<String>,
}

/// The token split for a signature check (`issuer.rs`): the header's `alg`
/// and `kid`, the signing input and the signature's bytes. The token is
/// never sent or shown from here; the signature check is local.
pub fn signed_parts(token: &RawToken) -> Result<Signed<'_>, MalformedToken> {
    let segments: Vec<&str> = token.text.split('.').collect();
    if segments.len() != 3 {
        return Err(MalformedToken::Segments(segments.len()));
    }
    let header = decode_segment(segments[0], "header")?;
    let header: WireHeader = serde_json::from_slice(&header)
        .map_err(|e| MalformedToken::Json("header", e.to_string()))?;
    let signature = decode_segment(segments[2], "signature")?;
    let cut = segments[0].len() + 1 + segments[1].len();
    Ok(Signed {
        alg: header.alg,
        kid: header.kid,
        signing_input: &token.text[..cut],
        signature,
    })
}

/// Decodes the claims of a compact JWT without verifying it.
pub fn decode_claims(token: &RawToken) -> Result<Claims, MalformedToken> {
    let segments: Vec<&str> = token.text.split('.').collect();
    if segments.len() != 3 {
        return Err(MalformedToken::Segments(segments.len()));
    }
    let header = decode_segment(segments[0], "header")?;
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&header)
        .map_err(|e| MalformedToken::Json("header", e.to_string()))?;
    let payload = decode_segment(segments[1], "payload")?;
    let wire: WireClaims = serde_json::from_slice(&payload)
        .map_err(|e| MalformedToken::Json("payload", e.to_string()))?;
    // The issuer is a URL `--verify-issuer` connects to: a password in it
    // is masked wherever it is printed, from its first reading on.
    if let Some(iss) = &wire.iss {
        crate::guard::redact::register_url_userinfo(iss);
    }
    let k8s = wire.kubernetes.map(|k| KubernetesClaims {
        namespace: k.namespace,
        pod: k.pod.and_then(|r| r.name),
        service_account: k.serviceaccount.and_then(|r| r.name),
        node: k.node.and_then(|r| r.name),
    });
    Ok(Claims {
        iss: wire.iss,
        sub: wire.sub,
        aud: match wire.aud {
            None => vec![],
            Some(Audience::One(a)) => vec![a],
            Some(Audience::Many(v)) => v,
        },
        exp: wire.exp,
        iat: wire.iat,
        nbf: wire.nbf,
        kubernetes: k8s,
    })
}

#[cfg(test)]
pub(crate) mod tests_support {
    /// A token from text, for unit tests elsewhere in the crate.
    pub fn raw(text: &str) -> super::RawToken {
        super::RawToken {
            text: text.to_owned(),
            header_safe: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    fn jwt(payload: &str) -> RawToken {
        tests_support::raw(&format!(
            "{}.{}.c2lnbmF0dXJl",
            b64(r#"{"alg":"RS256"}"#),
            b64(payload)
        ))
    }

    #[test]
    fn kubernetes_token_claims_decode() {
        let claims = decode_claims(&jwt(
            r#"{"iss":"https://oidc.eks.eu-west-1.amazonaws.com/id/ABC","sub":"system:serviceaccount:pay:app",
                "aud":["sts.amazonaws.com"],"exp":2000000000,"iat":1999913600,"nbf":1999913600,
                "kubernetes.io":{"namespace":"pay","pod":{"name":"app-1","uid":"u"},
                "serviceaccount":{"name":"app","uid":"v"},"node":{"name":"ip-10-0-0-1"}}}"#,
        ))
        .unwrap();
        assert_eq!(claims.aud, vec!["sts.amazonaws.com"]);
        assert_eq!(claims.exp, Some(2_000_000_000));
        let k = claims.kubernetes.unwrap();
        assert_eq!(k.namespace.as_deref(), Some("pay"));
        assert_eq!(k.pod.as_deref(), Some("app-1"));
        assert_eq!(k.service_account.as_deref(), Some("app"));
        assert_eq!(k.node.as_deref(), Some("ip-10-0-0-1"));
    }

    #[test]
    fn audience_may_be_a_single_string() {
        let claims = decode_claims(&jwt(r#"{"aud":"sts.amazonaws.com"}"#)).unwrap();
        assert_eq!(claims.aud, vec!["sts.amazonaws.com"]);
    }

    #[test]
    fn garbage_tokens_are_malformed_not_panics() {
        for bad in [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "!!!.e30.x",
            "e30.!!!.x",
            "e30.bm90IGpzb24.x",
        ] {
            assert!(decode_claims(&tests_support::raw(bad)).is_err(), "{bad:?}");
        }
        assert_eq!(
            decode_claims(&jwt(r#"{"exp":"tomorrow"}"#))
                .unwrap_err()
                .to_string()[..40],
            "has a payload segment that is not a JSON"[..40]
        );
    }

    #[test]
    fn debug_of_a_token_shows_no_byte_of_it() {
        let token = tests_support::raw("eyJhbGciOiJSUzI1NiJ9.e30.SECRETSIG");
        assert!(!format!("{token:?}").contains("SECRET"));
    }

    #[test]
    fn proc_status_gives_effective_ids_and_groups() {
        let ids = ProcessIds::parse_status(
            "Uid:\t1000\t1001\t1001\t1001\nGid:\t5\t6\t6\t6\nGroups:\t2000 3000 \n",
        )
        .unwrap();
        assert_eq!(
            ids,
            ProcessIds {
                uid: 1001,
                gid: 6,
                groups: vec![2000, 3000]
            }
        );
    }

    #[test]
    fn oversized_file_is_read_only_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        fs::write(&path, vec![b'a'; 10 * 1024 * 1024]).unwrap();
        match read_token_file(&path) {
            Err(TokenFileProblem::Malformed { detail, .. }) => assert!(detail.contains("20000")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_token_missing_from_an_existing_data_dir_does_not_call_the_dir_gone() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("..2026_01_01")).unwrap();
        std::os::unix::fs::symlink("..2026_01_01", dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/token", dir.path().join("token")).unwrap();
        match read_token_file(&dir.path().join("token")) {
            Err(TokenFileProblem::Missing { detail, .. }) => {
                assert!(detail.contains("exists but holds no such file"), "{detail}");
                assert!(!detail.contains("gone"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dangling_data_symlink_is_missing_and_named() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("..2026_01_01", dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/token", dir.path().join("token")).unwrap();
        match read_token_file(&dir.path().join("token")) {
            Err(TokenFileProblem::Missing { detail, .. }) => {
                assert!(detail.contains("..data/token"), "{detail}");
                assert!(detail.contains("..2026_01_01"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
    }
}
