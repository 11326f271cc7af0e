//! EKS Pod Identity's node agent, asked the way the SDKs' container
//! credentials provider asks it: `GET <AWS_CONTAINER_CREDENTIALS_FULL_URI>`
//! with the raw token in `Authorization` (no `Bearer `) and the URI's host
//! as `Host`. Unlike the AWS SDK for Rust, which keeps only the status, this
//! keeps the agent's answer, so the check can quote it.
//!
//! Invariant: the only module that talks to the agent. Never through a
//! proxy (the token must not reach one), with the connect time and the
//! whole request bounded, and at most [`MAX_BODY_BYTES`] of answer read.
//! Credentials in an answer are registered for redaction as they are
//! parsed and never kept in anything that is logged or serialized.
//! Imports `token`, `redact`, `traffic`'s rule on ports and `sts`'s text
//! helpers; nothing above them. It connects to exactly the port the URI
//! names, or to none.

use std::time::Duration;

use aws_credential_types::Credentials;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::header::{AUTHORIZATION, HOST};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::identity::token::RawToken;

/// The most of an answer read: the agent's are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How long a connection to the agent may take: it is on the node, so a
/// connection that takes longer is not coming.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest one request to the agent may take: the AWS SDK for Rust
/// gives up after 2 s to connect and 5 s to read, so an answer slower than
/// that is no answer for an app either. Asked again while time remains.
pub const ATTEMPT_LIMIT: Duration = Duration::from_secs(7);

/// The audience of EKS Pod Identity's token.
pub const AUDIENCE: &str = "pods.eks.amazonaws.com";

/// What one request to the agent gave.
pub enum Answer {
    /// An HTTP answer: its status and its body, cut at [`MAX_BODY_BYTES`].
    Http {
        status: u16,
        body: Bytes,
        /// The body was longer than [`MAX_BODY_BYTES`].
        cut: bool,
    },
    /// No HTTP answer: refused, timed out, no route. Says why.
    NoAnswer(String),
}

impl std::fmt::Debug for Answer {
    // The body of a 200 holds credentials: never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Http { status, body, .. } => {
                write!(f, "Answer::Http({status}, {} bytes)", body.len())
            }
            Answer::NoAnswer(why) => write!(f, "Answer::NoAnswer({why})"),
        }
    }
}

/// Asks the agent at `uri` for credentials with `token`, giving up after
/// `timeout`. Only `http` URIs are asked (the EKS agent's); the caller has
/// judged the URI.
pub async fn ask(uri: &Uri, token: &RawToken, timeout: Duration) -> Answer {
    let limit = timeout.min(ATTEMPT_LIMIT);
    match tokio::time::timeout(limit, request(uri, token, limit)).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(why)) => Answer::NoAnswer(why),
        Err(_) => Answer::NoAnswer(format!("no answer within {:.1} s", limit.as_secs_f64())),
    }
}

/// Where a request to `uri` goes: the host to resolve, the port to connect
/// to, and the `Host` header. Refuses a port no connection can use exactly
/// (`http::Uri` keeps `:99999`, and reads it as no port: the token went to
/// port 80). `Host` never carries the URI's userinfo, which is no part of a
/// host and may hold a password.
fn target(uri: &Uri) -> Result<(&str, u16, String), String> {
    let host = uri.host().ok_or("the URI has no host")?;
    let authority = uri.authority().map_or(host, |a| a.as_str());
    let named = crate::peers::traffic::named_port(authority)
        .map_err(|why| format!("irsa-doctor sent nothing: the URI's {why}"))?;
    let port = named.unwrap_or(80);
    // As hyper-util's client (the SDKs') writes it: the default port left out.
    let host_header = match named {
        Some(port) if port != 80 => format!("{host}:{port}"),
        _ => host.to_owned(),
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    Ok((bare, port, host_header))
}

async fn request(uri: &Uri, token: &RawToken, timeout: Duration) -> Result<Answer, String> {
    let (bare, port, authority) = target(uri)?;
    let authority = authority.as_str();
    let connect_limit = CONNECT_TIMEOUT.min(timeout);
    let stream = tokio::time::timeout(connect_limit, connect(bare, port))
        .await
        .map_err(|_| {
            format!(
                "no connection to {authority} within {:.1} s",
                connect_limit.as_secs_f64()
            )
        })??;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {authority} failed: {e}"))?;
    let driver = tokio::spawn(conn);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let req = Request::get(path)
        .header(HOST, authority)
        .header(AUTHORIZATION, token.expose())
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("the request cannot be built: {e}"))?;
    let result = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("{authority} closed the connection without an answer: {e}"))?;
        let status = resp.status().as_u16();
        let (body, cut) = match Limited::new(resp.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
        {
            Ok(collected) => (collected.to_bytes(), false),
            Err(e)
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                (Bytes::new(), true)
            }
            Err(e) => return Err(format!("the answer from {authority} broke off: {e}")),
        };
        Ok(Answer::Http { status, body, cut })
    }
    .await;
    driver.abort();
    result
}

async fn connect(host: &str, port: u16) -> Result<TcpStream, String> {
    let addrs: Vec<_> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let mut last = format!("{host} resolves to no address");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    Err(last)
}

/// Why the agent gave no credentials, as its answer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No HTTP answer. Transient.
    Unreachable,
    /// `AccessDeniedException`: EKS may not assume the associated role.
    TrustDenied,
    /// The token is empty, not a JWT, or `InvalidTokenException`.
    TokenRejected,
    /// The agent's or EKS Auth's expiry answer.
    TokenExpired,
    /// `ResourceNotFoundException` or 404: no association (unverified).
    AssociationMissing,
    /// 429. Transient.
    Throttled,
    /// EKS Auth could not be reached or failed: a 500 with `[]`,
    /// `ServiceUnavailableException`, `InternalServerException`. Transient.
    EksAuthUnreachable,
    /// Anything else, a 200 without credentials included.
    Other,
}

impl FailureKind {
    /// Whether asking again could give another answer.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            FailureKind::Unreachable | FailureKind::Throttled | FailureKind::EksAuthUnreachable
        )
    }
}

/// An answer without credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub status: Option<u16>,
    /// The agent's body, or why there was none: one line, bounded, cleaned
    /// of control characters, redacted.
    pub detail: String,
}

/// Classifies an error answer by its status and body, with the bodies the
/// agent and EKS Auth are known to send (pod-identity-facts.md).
pub fn classify(status: u16, body: &str) -> FailureKind {
    let has = |s: &str| body.contains(s);
    if status == 429 || has("(ThrottlingException)") {
        FailureKind::Throttled
    } else if body.trim() == "[]"
        || has("(ServiceUnavailableException)")
        || has("(InternalServerException)")
        || (500..=599).contains(&status)
    {
        FailureKind::EksAuthUnreachable
    } else if has("(AccessDeniedException)") && has("EKS does not have permissions to assume") {
        // "the associated role" is the verified wording; a target role's
        // refusal is worded likewise, as far as is known (unverified).
        FailureKind::TrustDenied
    } else if has("token is expired") || has("(ExpiredTokenException)") {
        FailureKind::TokenExpired
    } else if has("cannot be empty") || has("cannot be parsed") || has("(InvalidTokenException)") {
        FailureKind::TokenRejected
    } else if has("(ResourceNotFoundException)") {
        // A bare 404 is the agent's answer for another path than
        // /v1/credentials: a wrong URI, not a missing association.
        FailureKind::AssociationMissing
    } else {
        FailureKind::Other
    }
}

/// The credentials of a 200, with what the agent said of them. Not
/// `Debug`: it holds a secret key.
pub struct Issued {
    pub credentials: Credentials,
    pub account_id: Option<String>,
    pub expiration: Option<String>,
}

/// The fields of a 200 that the SDKs read, each a string or absent.
///
/// Read as the SDKs read them, so that a verdict is the app's verdict:
/// - a field that is not a string counts as absent: the AWS SDK for Rust
///   skips it, and botocore keeps it but cannot sign with a number (so a
///   numeric `AccountId`, which neither needs, is no failure, and is not
///   shown as an account);
/// - a duplicated key: the last one counts, as in Python's `json` and the
///   Rust SDK's reader;
/// - unknown fields are ignored; anything but one JSON object (an array,
///   trailing text) is refused, as both do;
/// - names are matched exactly (botocore does; the Rust SDK would also take
///   `accesskeyid` and `SessionToken`, which botocore apps then fail on);
/// - `Code` other than `Success` is refused, and `Expiration` must be an
///   RFC 3339 time: the Rust SDK refuses both, where botocore reads any
///   date `dateutil` parses and ignores `Code`.
///
/// Where the two disagree, the stricter reading is kept only when apps on
/// that SDK really fail; docs/reliability.md lists each difference.
struct Body {
    code: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    token: Option<String>,
    account_id: Option<String>,
    expiration: Option<String>,
}

impl Body {
    /// The body read as JSON, or why it cannot be. serde's message can
    /// quote the input: only where it broke is said.
    fn parse(bytes: &[u8]) -> Result<Body, String> {
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            format!(
                "a 200 whose body is not the agent's JSON ({:?} error at line {}, column {})",
                e.classify(),
                e.line(),
                e.column()
            )
        })?;
        let serde_json::Value::Object(map) = value else {
            return Err(
                "a 200 whose body is not the agent's JSON (not an object), which SDKs refuse"
                    .to_owned(),
            );
        };
        let text = |name: &str| {
            map.get(name)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        Ok(Body {
            code: text("Code"),
            access_key_id: text("AccessKeyId"),
            secret_access_key: text("SecretAccessKey"),
            token: text("Token"),
            account_id: text("AccountId"),
            expiration: text("Expiration"),
        })
    }
}

/// Reads an answer: the credentials of a 200, or why there are none.
pub fn judge(answer: Answer) -> Result<Issued, Failure> {
    let (status, body, cut) = match answer {
        Answer::Http { status, body, cut } => (status, body, cut),
        Answer::NoAnswer(why) => {
            return Err(Failure {
                kind: FailureKind::Unreachable,
                status: None,
                detail: clean(&why),
            })
        }
    };
    let failure = |kind, detail: String| Failure {
        kind,
        status: Some(status),
        detail,
    };
    if cut {
        return Err(failure(
            FailureKind::Other,
            format!(
                "an answer longer than {MAX_BODY_BYTES} bytes, which irsa-doctor stopped reading"
            ),
        ));
    }
    if !(200..300).contains(&status) {
        let text = String::from_utf8_lossy(&body);
        let detail = if text.trim().is_empty() {
            "(an empty body)".to_owned()
        } else {
            clean(&text)
        };
        return Err(failure(classify(status, &text), detail));
    }
    if status != 200 {
        // A 2xx may carry credentials: never quoted.
        return Err(failure(
            FailureKind::Other,
            format!("HTTP {status} instead of 200 (the body is not shown)"),
        ));
    }
    let parsed = Body::parse(&body).map_err(|why| failure(FailureKind::Other, why))?;
    for secret in [&parsed.secret_access_key, &parsed.token]
        .into_iter()
        .flatten()
    {
        crate::guard::redact::register(crate::guard::redact::Kind::Credential, secret);
    }
    // `issued` quotes the answer's Code or Expiration, which can be any
    // length: cleaned like any quote of the agent.
    issued(parsed).map_err(|why| failure(FailureKind::Other, clean(&why)))
}

/// The credentials of a 200, as the SDKs require them: every field, an
/// RFC 3339 `Expiration`, and a `Code` of `Success` where there is one.
fn issued(body: Body) -> Result<Issued, String> {
    if let Some(code) = body.code.as_deref().filter(|c| *c != "Success") {
        return Err(format!("a 200 whose Code is {code:?}, not \"Success\""));
    }
    let present = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    let missing: Vec<&str> = [
        ("AccessKeyId", present(&body.access_key_id)),
        ("SecretAccessKey", present(&body.secret_access_key)),
        ("Token", present(&body.token)),
        ("Expiration", present(&body.expiration)),
    ]
    .into_iter()
    .filter_map(|(name, here)| (!here).then_some(name))
    .collect();
    if !missing.is_empty() {
        return Err(format!(
            "a 200 without {}, which SDKs refuse",
            missing.join(", ")
        ));
    }
    let expiration = body.expiration.unwrap_or_default();
    let expires = aws_smithy_types::DateTime::from_str(
        &expiration,
        aws_smithy_types::date_time::Format::DateTime,
    )
    .map_err(|_| {
        format!("a 200 whose Expiration {expiration:?} is not an RFC 3339 time, which SDKs refuse")
    })?;
    let expiry = std::time::SystemTime::try_from(expires).ok();
    Ok(Issued {
        credentials: Credentials::new(
            body.access_key_id.unwrap_or_default(),
            body.secret_access_key.unwrap_or_default(),
            body.token,
            expiry,
            "eks-pod-identity",
        ),
        account_id: body.account_id,
        expiration: Some(expiration),
    })
}

/// One line of at most 600 characters, control characters replaced,
/// secrets removed: safe to quote in a finding.
fn clean(text: &str) -> String {
    crate::guard::redact::one_line(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_no_connection_can_use_is_refused_before_any_connect() {
        // `http::Uri` took these, `port_u16()` was `None`, and the token
        // went to port 80.
        for uri in [
            "http://127.0.0.1:0/v1/credentials",
            "http://127.0.0.1:65536/v1/credentials",
            "http://127.0.0.1:99999/v1/credentials",
            "http://127.0.0.1:8o80/v1/credentials",
            "http://[::1]:99999/v1/credentials",
        ] {
            let parsed: Uri = uri.parse().unwrap();
            let why = target(&parsed).unwrap_err();
            assert!(why.contains("sent nothing"), "{uri}: {why}");
        }
    }

    #[tokio::test]
    async fn a_refused_port_sends_nothing_at_all() {
        let token =
            crate::identity::token::tests_support::raw("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln");
        let uri: Uri = "http://127.0.0.1:99999/v1/credentials".parse().unwrap();
        match ask(&uri, &token, Duration::from_secs(5)).await {
            Answer::NoAnswer(why) => assert!(why.contains("sent nothing"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_host_header_never_carries_userinfo() {
        for (uri, host, port) in [
            (
                "http://u:s3cr3tpassw0rd@127.0.0.1:8080/v1",
                "127.0.0.1:8080",
                8080,
            ),
            (
                "http://u:s3cr3tpassw0rd@169.254.170.23/v1",
                "169.254.170.23",
                80,
            ),
            ("http://169.254.170.23:80/v1", "169.254.170.23", 80),
            (
                "http://tok3n0nly@[fd00:ec2::23]:81/v1",
                "[fd00:ec2::23]:81",
                81,
            ),
        ] {
            let parsed: Uri = uri.parse().unwrap();
            let (_, to, header) = target(&parsed).unwrap();
            assert_eq!((header.as_str(), to), (host, port), "{uri}");
        }
    }

    #[test]
    fn the_known_bodies_are_classified() {
        let cases = [
            (400, "Service account token cannot be empty\n", FailureKind::TokenRejected),
            (400, "Service account token cannot be parsed: token is malformed: x\n", FailureKind::TokenRejected),
            (400, "Service account token failed basic claim validations: token is expired\n", FailureKind::TokenExpired),
            (400, "[r-1]: (ExpiredTokenException): The token included in the request is expired: x, fault: client\n", FailureKind::TokenExpired),
            (400, "[r-1]: (InvalidTokenException): bad, fault: client\n", FailureKind::TokenRejected),
            (400, "[r-1]: (AccessDeniedException): Unauthorized Exception! EKS does not have permissions to assume the associated role., fault: client\n", FailureKind::TrustDenied),
            (400, "[r-1]: (AccessDeniedException): not authorized to perform eks-auth:AssumeRoleForPodIdentity, fault: client\n", FailureKind::Other),
            (404, "[r-1]: (ResourceNotFoundException): no association, fault: client\n", FailureKind::AssociationMissing),
            (404, "404 page not found\n", FailureKind::Other),
            (502, "Bad Gateway\n", FailureKind::EksAuthUnreachable),
            (429, "Too Many Requests\n", FailureKind::Throttled),
            (400, "[r-1]: (ThrottlingException): Rate exceeded, fault: client\n", FailureKind::Throttled),
            (500, "[]\n", FailureKind::EksAuthUnreachable),
            (503, "[r-1]: (ServiceUnavailableException): down, fault: server\n", FailureKind::EksAuthUnreachable),
            (500, "[r-1]: (InternalServerException): oops, fault: server\n", FailureKind::EksAuthUnreachable),
            (403, "Access Denied. Called agent through invalid address, please use either [169.254.170.23 fd00:ec2::23] address not 10.0.0.1\n", FailureKind::Other),
        ];
        for (status, body, kind) in cases {
            assert_eq!(classify(status, body), kind, "{status} {body}");
        }
    }

    #[test]
    fn a_200_gives_credentials_registered_for_redaction() {
        let body = r#"{"AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"AGENTSECRETKEY0123456789","Token":"AGENTSESSIONTOKEN0123456789","AccountId":"111122223333","Expiration":"2030-01-01T00:00:00Z"}"#;
        let issued = judge(Answer::Http {
            status: 200,
            body: Bytes::from(body),
            cut: false,
        })
        .unwrap_or_else(|f| panic!("{f:?}"));
        assert_eq!(issued.credentials.access_key_id(), "ASIAEXAMPLE");
        assert_eq!(issued.account_id.as_deref(), Some("111122223333"));
        let shown = crate::guard::redact::redact(
            "key AGENTSECRETKEY0123456789 token AGENTSESSIONTOKEN0123456789",
        );
        assert!(
            !shown.contains("AGENTSECRETKEY") && !shown.contains("AGENTSESSIONTOKEN"),
            "{shown}"
        );
    }

    fn judged(body: &str) -> Result<Issued, Failure> {
        judge(Answer::Http {
            status: 200,
            body: Bytes::from(body.to_owned()),
            cut: false,
        })
    }

    #[test]
    fn answers_the_sdks_take_are_taken_as_they_take_them() {
        // A numeric AccountId and a duplicated key were definite failures
        // where botocore and the AWS SDK for Rust get credentials.
        let creds = r#""AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"S3CR3TKEY-lenient","Token":"T0KEN-lenient","Expiration":"2030-01-01T00:00:00Z""#;
        for (body, account) in [
            (format!(r#"{{{creds},"AccountId":111122223333}}"#), None),
            (
                format!(r#"{{{creds},"AccountId":"1","AccountId":"2"}}"#),
                Some("2"),
            ),
            (format!(r#"{{"AccessKeyId":"OLD",{creds}}}"#), None),
            (format!(r#"{{{creds},"Code":7,"Extra":[1,{{}}]}}"#), None),
            (
                format!(r#"{{{creds},"Code":"Success","AccountId":null}}"#),
                None,
            ),
        ] {
            let issued = judged(&body).unwrap_or_else(|f| panic!("{body}: {f:?}"));
            assert_eq!(issued.credentials.access_key_id(), "ASIAEXAMPLE", "{body}");
            assert_eq!(issued.account_id.as_deref(), account, "{body}");
        }
    }

    #[test]
    fn answers_the_sdks_refuse_are_refused() {
        let rest = r#""SecretAccessKey":"S","Token":"T","Expiration":"2030-01-01T00:00:00Z""#;
        for (body, words) in [
            (format!(r#"{{"AccessKeyId":5,{rest}}}"#), "without AccessKeyId"),
            (format!(r#"{{"AccessKeyId":"A","AccessKeyId":null,{rest}}}"#), "without AccessKeyId"),
            (format!(r#"{{"accesskeyid":"A",{rest}}}"#), "without AccessKeyId"),
            (format!(r#"{{"AccessKeyId":"A",{rest}}} trailing"#), "not the agent's JSON"),
            (format!(r#"[{{"AccessKeyId":"A",{rest}}}]"#), "not an object"),
            (
                r#"{"AccessKeyId":"A","SecretAccessKey":"S","Token":"T","Expiration":1893456000}"#.to_owned(),
                "without Expiration",
            ),
            (
                r#"{"AccessKeyId":"A","SecretAccessKey":"S","SessionToken":"T","Expiration":"2030-01-01T00:00:00Z"}"#.to_owned(),
                "without Token",
            ),
        ] {
            let failure = judged(&body).err().unwrap_or_else(|| panic!("{body} passed"));
            assert_eq!(failure.kind, FailureKind::Other);
            assert!(failure.detail.contains(words), "{body}: {}", failure.detail);
        }
    }

    #[test]
    fn a_huge_code_or_expiration_in_a_200_is_quoted_within_bounds() {
        // Found with the agent_answer fuzz target's bound on a detail: a
        // 200 whose Code or Expiration was 2000 characters was quoted whole.
        let long = "F".repeat(2000);
        for body in [
            format!(r#"{{"Code":"{long}"}}"#),
            format!(
                r#"{{"AccessKeyId":"A","SecretAccessKey":"S","Token":"T","Expiration":"{long}\u001b"}}"#
            ),
        ] {
            let failure = judge(Answer::Http {
                status: 200,
                body: Bytes::from(body),
                cut: false,
            })
            .err()
            .unwrap();
            assert!(failure.detail.chars().count() <= 603, "{}", failure.detail);
            assert!(
                failure.detail.starts_with("a 200 whose "),
                "{}",
                failure.detail
            );
            assert!(!failure.detail.chars().any(char::is_control));
        }
    }

    #[test]
    fn odd_answers_are_failures_that_quote_them_safely() {
        let missing = judge(Answer::Http {
            status: 200,
            body: Bytes::from(r#"{"AccountId":"1"}"#),
            cut: false,
        })
        .err()
        .unwrap();
        assert_eq!(missing.kind, FailureKind::Other);
        assert!(
            missing
                .detail
                .contains("without AccessKeyId, SecretAccessKey, Token, Expiration"),
            "{}",
            missing.detail
        );
        let no_token = judge(Answer::Http {
            status: 200,
            body: Bytes::from(
                r#"{"AccessKeyId":"A","SecretAccessKey":"S","Expiration":"2030-01-01T00:00:00Z"}"#,
            ),
            cut: false,
        })
        .err()
        .unwrap();
        assert!(
            no_token.detail.contains("without Token"),
            "{}",
            no_token.detail
        );
        let bad_expiry = judge(Answer::Http {
            status: 200,
            body: Bytes::from(
                r#"{"AccessKeyId":"A","SecretAccessKey":"S","Token":"T","Expiration":"tomorrow"}"#,
            ),
            cut: false,
        })
        .err()
        .unwrap();
        assert!(
            bad_expiry.detail.contains("not an RFC 3339 time"),
            "{}",
            bad_expiry.detail
        );
        let quoted = judge(Answer::Http {
            status: 200,
            body: Bytes::from(r#""SECRETINASTRINGBODY""#),
            cut: false,
        })
        .err()
        .unwrap();
        assert!(
            !quoted.detail.contains("SECRETINASTRINGBODY"),
            "{}",
            quoted.detail
        );
        let huge = judge(Answer::Http {
            status: 200,
            body: Bytes::new(),
            cut: true,
        })
        .err()
        .unwrap();
        assert!(huge.detail.contains("65536 bytes"), "{}", huge.detail);
        let forged = judge(Answer::Http {
            status: 400,
            body: Bytes::from("bad\nINFO forged line\u{1b}[31m"),
            cut: false,
        })
        .err()
        .unwrap();
        assert!(
            !forged.detail.contains('\n') && !forged.detail.contains('\u{1b}'),
            "{}",
            forged.detail
        );
        let refused = judge(Answer::NoAnswer("connection refused".into()))
            .err()
            .unwrap();
        assert_eq!(
            (refused.kind, refused.status),
            (FailureKind::Unreachable, None)
        );
        assert!(refused.kind.is_transient());
    }
}
