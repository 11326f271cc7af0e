//! Entry points for the fuzz targets in `fuzz/`, compiled only with the
//! `fuzzing` feature (which only `fuzz/Cargo.toml` enables), so that the
//! binary and the dead-code lint never see them.
//!
//! Each function feeds arbitrary input to one parser or handler the way
//! the real world would reach it, and returns what came out as plain
//! values; the targets assert the invariants. None of them panics on any
//! input: a panic is a finding. Nothing here leaves the process: STS's
//! answers come from a canned connector, requests to `serve` go through
//! an in-memory pipe.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::Credentials;
use aws_sdk_sts::config::Region;
use aws_smithy_runtime_api::client::http::{
    http_client_fn, HttpConnector, HttpConnectorFuture, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::monitor::state::{Settings, Shared};

/// The longest one input may take in the async targets before it counts
/// as a hang: far above anything they do (a few milliseconds at most).
const HANG: Duration = Duration::from_secs(10);

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
}

/// An input that took longer than [`HANG`]: the targets fail on it.
#[derive(Debug)]
pub struct Hung;

fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, Hung> {
    // The timeout is made inside the runtime, whose timer it needs.
    RUNTIME
        .with(|rt| rt.block_on(async { tokio::time::timeout(HANG, future).await }))
        .map_err(|_| Hung)
}

/// What the issuer's parsers made of a document's bytes: as a discovery
/// document, its issuer and key set URL; as a key set, each key's `kid`
/// and whether it is usable; and whether a signature (the input's last 64
/// bytes, over the rest) verified with any key of the set, for RS256 or
/// ES256.
#[derive(Debug)]
pub struct IssuerDocuments {
    pub discovery: Result<(String, String), String>,
    pub keys: Result<Vec<(Option<String>, bool)>, String>,
    pub verified: bool,
}

/// Feeds `bytes` to `jwks::parse_discovery` and `jwks::parse_jwks`, and
/// checks a made-up signature with every key the set holds.
pub fn issuer_documents(bytes: &[u8]) -> IssuerDocuments {
    let discovery = crate::identity::jwks::parse_discovery(bytes).map(|d| (d.issuer, d.jwks_uri));
    let jwks = crate::identity::jwks::parse_jwks(bytes);
    let mut verified = false;
    if let Ok(jwks) = &jwks {
        let (message, signature) = bytes.split_at(bytes.len().saturating_sub(64));
        for key in &jwks.keys {
            for alg in crate::identity::jwks::ACCEPTED_ALGS {
                let kid = key.kid.as_deref();
                verified |=
                    crate::identity::jwks::verify(jwks, Some(alg), kid, message, signature).is_ok();
            }
        }
    }
    let keys = jwks.map(|j| {
        j.keys
            .into_iter()
            .map(|k| {
                (
                    k.kid,
                    !matches!(k.key, crate::identity::jwks::Key::Unusable(_)),
                )
            })
            .collect()
    });
    IssuerDocuments {
        discovery,
        keys,
        verified,
    }
}

/// What the token reader and the claims decoder made of a file's bytes.
#[derive(Debug)]
pub struct TokenOutcome {
    /// The trimmed token, or why the bytes are not one.
    pub token: Result<String, &'static str>,
    pub header_safe: bool,
    /// The claims as `--output json` would show them, or the decoder's
    /// message.
    pub claims: Option<Result<String, String>>,
}

/// The token file's bytes through `token::token_of_bytes`, then the claims
/// decoder.
pub fn token(bytes: &[u8]) -> TokenOutcome {
    match crate::identity::token::token_of_bytes(bytes.to_vec()) {
        Err(why) => TokenOutcome {
            token: Err(why),
            header_safe: false,
            claims: None,
        },
        Ok(raw) => TokenOutcome {
            token: Ok(raw.expose().to_owned()),
            header_safe: raw.header_safe(),
            claims: Some(
                crate::identity::token::decode_claims(&raw)
                    .map(|c| serde_json::to_string(&c).unwrap_or_default())
                    .map_err(|e| e.to_string()),
            ),
        },
    }
}

/// An assumed-role ARN as `(partition, account, role name, session)`.
pub fn assumed_role_arn(s: &str) -> Option<[String; 4]> {
    crate::identity::arn::AssumedRoleArn::parse(s)
        .map(|a| [a.partition, a.account, a.role_name, a.session])
}

/// Whether STS assuming `role` could yield `assumed`, by `RoleArn::matches`.
pub fn role_matches(role: &crate::identity::arn::RoleArn, assumed: &str) -> Option<bool> {
    crate::identity::arn::AssumedRoleArn::parse(assumed).map(|a| role.matches(&a))
}

/// The duration parsers of `config`: any duration, `--timeout`'s and
/// `--interval`'s.
pub fn duration(s: &str) -> [Option<Duration>; 3] {
    [
        crate::cli::config::parse_duration(s).ok(),
        crate::cli::config::parse_positive_duration(s).ok(),
        crate::cli::config::parse_interval(s).ok(),
    ]
}

/// A duration as humantime writes it, for the round trip.
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// `--session-name`'s parser, and the name chosen when `s` is both
/// `AWS_ROLE_SESSION_NAME` and the pod's name.
pub fn session_name(s: &str) -> (Option<String>, String) {
    (
        crate::cli::config::parse_session_name(s).ok(),
        crate::cli::config::resolve_session_name(None, Some(s), Some(s)),
    )
}

/// STS's rule for `RoleSessionName`.
pub fn is_valid_session_name(s: &str) -> bool {
    crate::identity::arn::is_valid_session_name(s)
}

/// An answer given as text: a first line with the status (and, for the
/// agent, `cut` when the body was cut), header lines, an empty line, the
/// body. `None` when the first line holds no status.
#[derive(Clone)]
struct Answer {
    status: u16,
    flags: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Answer {
    fn parse(bytes: &[u8]) -> Option<Answer> {
        let split = bytes.windows(2).position(|w| w == b"\n\n");
        let (head, body) = match split {
            Some(at) => (&bytes[..at], &bytes[at + 2..]),
            None => (bytes, &b""[..]),
        };
        let head = String::from_utf8_lossy(head);
        let mut lines = head.lines();
        let first = lines.next()?;
        let (status, flags) = first.split_once(' ').unwrap_or((first, ""));
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        Some(Answer {
            status: status.trim().parse().ok()?,
            flags: flags.to_owned(),
            headers,
            body: Bytes::copy_from_slice(body),
        })
    }
}

/// What `agent::judge` made of an answer.
#[derive(Debug)]
pub enum AgentOutcome {
    /// Credentials: the access key ID and the account.
    Issued(String, Option<String>),
    /// No credentials: the failure's kind and detail.
    Failed(String, String),
}

/// The agent's answer, in [`Answer`]'s text form (`cut` on the first line
/// marks a body cut at the limit; `none` as the status is no answer, the
/// body its reason), through `agent::judge`.
pub fn agent_answer(bytes: &[u8]) -> Option<AgentOutcome> {
    let answer = if let Some(why) = bytes.strip_prefix(b"none\n") {
        crate::peers::agent::Answer::NoAnswer(String::from_utf8_lossy(why).into_owned())
    } else {
        let a = Answer::parse(bytes)?;
        crate::peers::agent::Answer::Http {
            status: a.status,
            body: a.body,
            cut: a.flags.contains("cut"),
        }
    };
    Some(match crate::peers::agent::judge(answer) {
        Ok(issued) => AgentOutcome::Issued(
            issued.credentials.access_key_id().to_owned(),
            issued.account_id,
        ),
        Err(f) => AgentOutcome::Failed(format!("{:?}", f.kind), f.detail),
    })
}

/// The token the STS target sends, and the secret key of the credentials
/// it asks `GetCallerIdentity` about: neither may come back in a message.
pub const STS_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJmdXp6In0.RlVaWlNJR05BVFVSRQ";
pub const STS_SECRET_KEY: &str = "FUZZSECRETKEY0123456789abcdef";

/// What the STS client made of one answer, for each call that gets it.
#[derive(Debug)]
pub struct StsOutcome {
    /// `AssumeRoleWithWebIdentity`: the assumed role's ARN, or the
    /// failure's kind and message.
    pub assume: Result<String, (String, String)>,
    /// `GetCallerIdentity`: the ARN, or the failure's kind and message.
    pub identity: Result<String, (String, String)>,
}

/// The next answer the canned connector gives.
static STS_ANSWER: Mutex<Option<Answer>> = Mutex::new(None);

#[derive(Debug)]
struct Canned;

impl HttpConnector for Canned {
    fn call(
        &self,
        _request: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
    ) -> HttpConnectorFuture {
        let answer = STS_ANSWER.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let response = answer
            .ok_or_else(|| ConnectorError::other("no canned answer".into(), None))
            .and_then(|a| {
                let status = aws_smithy_runtime_api::http::StatusCode::try_from(a.status)
                    .map_err(|e| ConnectorError::other(e.into(), None))?;
                let mut response = HttpResponse::new(status, SdkBody::from(a.body));
                for (name, value) in a.headers {
                    // A header that is not valid HTTP cannot arrive.
                    let _ = response.headers_mut().try_insert(name, value);
                }
                Ok(response)
            });
        HttpConnectorFuture::ready(response)
    }
}

fn sts_client() -> &'static crate::peers::sts::Sts {
    static STS: OnceLock<crate::peers::sts::Sts> = OnceLock::new();
    STS.get_or_init(|| {
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::from_static("eu-west-1"))
            .http_client(http_client_fn(|_, _| SharedHttpConnector::new(Canned)))
            .build();
        crate::peers::sts::Sts::from_sdk_config(sdk)
    })
}

/// One answer, in [`Answer`]'s text form, given to both STS calls
/// irsa-doctor makes, through the SDK's own parsing and then `sts.rs`'s
/// (`read_answer`, `failure_of`, `classify`). `Ok(None)` when the first
/// line holds no status.
pub fn sts_answer(bytes: &[u8]) -> Result<Option<StsOutcome>, Hung> {
    let Some(a) = Answer::parse(bytes) else {
        return Ok(None);
    };
    *STS_ANSWER.lock().unwrap_or_else(|e| e.into_inner()) = Some(a);
    let Ok(token) = crate::identity::token::token_of_bytes(STS_TOKEN.as_bytes().to_vec()) else {
        return Ok(None);
    };
    let sts = sts_client();
    let failed = |f: crate::peers::failure::Failure| (format!("{:?}", f.kind), f.message);
    block_on(async {
        let arn = "arn:aws:iam::111122223333:role/app";
        let attempt = sts
            .assume_role_with_web_identity(arn, &token, "fuzz", HANG)
            .await;
        let creds = Credentials::new("AKIDFUZZ", STS_SECRET_KEY, None, None, "fuzz");
        let identity = sts.identity_with(creds).await;
        Some(StsOutcome {
            assume: attempt.result.map(|a| a.arn).map_err(failed),
            identity: identity.map(|i| i.arn).map_err(failed),
        })
    })
}

/// What `serve` answered to bytes sent on one connection, as it went on
/// the wire.
pub fn serve_request(bytes: &[u8]) -> Result<Vec<u8>, Hung> {
    thread_local! {
        static SHARED: RefCell<Option<Arc<Shared>>> = const { RefCell::new(None) };
    }
    let shared = SHARED.with(|s| {
        s.borrow_mut()
            .get_or_insert_with(|| {
                let (shared, mut recorder) = Shared::new(Settings {
                    interval: Duration::from_secs(300),
                    stale_after: Duration::from_secs(900),
                    timeout: Duration::from_secs(60),
                });
                recorder.record_at(crate::report::sample::pass(), Instant::now());
                shared
            })
            .clone()
    });
    block_on(async move {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let service = service_fn(move |req| {
            let response = crate::http::server::respond(&shared, 0, &req);
            async move { Ok::<_, std::convert::Infallible>(response) }
        });
        let conn =
            crate::http::server::http1_builder().serve_connection(TokioIo::new(server), service);
        let talk = async {
            // The server may close before it has read everything.
            let _ = client.write_all(bytes).await;
            let _ = client.shutdown().await;
            let mut answer = vec![];
            let _ = client.read_to_end(&mut answer).await;
            answer
        };
        let (_, answer) = tokio::join!(conn, talk);
        answer
    })
}

/// What the trust-policy evaluator made of one policy text, for an IRSA
/// request and a Pod Identity one.
#[derive(Debug)]
pub struct TrustOutcome {
    /// Whether the policy allows the request.
    pub allowed: bool,
    /// For a denied request: whether the corrected policy, written out
    /// and parsed again, allows it (it must).
    pub corrected_allows: Option<bool>,
    /// The denial's reason, one sentence.
    pub reason: Option<String>,
}

/// A policy's text, in any form `explain` reads, through `trust::parse`,
/// `evaluate` and `corrected_document`, for IRSA's request and EKS Pod
/// Identity's. `None` when the text is not a policy.
pub fn trust_policy(text: &str) -> Option<[TrustOutcome; 2]> {
    use crate::trust::{corrected_document, evaluate, parse, Request};
    let doc = parse(text).ok()?;
    let irsa = Request::web_identity(
        "aws",
        "111122223333",
        "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE",
        Some("system:serviceaccount:shop:cart"),
        &["sts.amazonaws.com".to_owned()],
    );
    let pod_identity = Request::pod_identity(&[
        ("kubernetes-namespace", "shop"),
        ("kubernetes-service-account", "cart"),
        ("eks-cluster-name", "prod"),
    ]);
    let judge = |request: &Request| {
        let eval = evaluate(&doc, request);
        let corrected_allows = (!eval.allowed).then(|| {
            let fixed = corrected_document(&doc, &eval, request).to_string();
            parse(&fixed).is_ok_and(|d| evaluate(&d, request).allowed)
        });
        TrustOutcome {
            allowed: eval.allowed,
            corrected_allows,
            reason: eval.reason,
        }
    };
    Some([judge(&irsa), judge(&pod_identity)])
}
