//! A loopback stand-in for the EKS Pod Identity agent
//! (eks-pod-identity-agent), answering with the statuses and bodies of
//! `shared/pod-identity-facts.md` section 2: the agent's own checks (the
//! `Host` header, an empty, unparsable or expired token), then what EKS
//! Auth would answer (audience, issuer, association, the role's trust), and
//! on success the credentials JSON. The credentials are a session of the
//! associated role minted by the STS stand-in ([`FakeAws::mint_session`]),
//! or by moto's `AssumeRole` for the cross-check, so that a signed
//! GetCallerIdentity names `assumed-role/<role>/eks-<cluster>-<pod>-...`.
//!
//! Differences from the real agent, all so that tests stay on loopback:
//! it listens on 127.0.0.1 and ::1 (not 169.254.170.23 and fd00:ec2::23),
//! and its `Host` check also admits loopback names. Faults ([`Fault`])
//! stand in for everything a test cannot provoke with a token alone.
//! Messages the facts file marks unobserved are plausible, not verbatim.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use tokio::sync::watch;

use crate::clock::{now, rfc3339};
use crate::fake_aws::FakeAws;
use crate::http::{response, serve_at, Handler, Req, Resp, Server, WAIT_LIMIT};
use crate::sigv4::{self, Credentials};
use crate::world::{
    ACCOUNT, CLUSTER, ISSUER, NAMESPACE, NODE_ROLE, POD_IDENTITY_AUDIENCE, ROLE_ARN,
    SERVICE_ACCOUNT,
};
use crate::Moto;

/// The agent's addresses on a node; the `Host` header must name one.
pub const AGENT_IPV4: &str = "169.254.170.23";
pub const AGENT_IPV6: &str = "fd00:ec2::23";
/// The one path the agent serves; others answer 404.
pub const PATH: &str = "/v1/credentials";
/// `AWS_CONTAINER_CREDENTIALS_FULL_URI` as the webhook injects it (IPv4
/// and IPv6 clusters). Unreachable from tests: use [`AgentServer::url`].
pub const FULL_URI: &str = "http://169.254.170.23/v1/credentials";
pub const FULL_URI_IPV6: &str = "http://[fd00:ec2::23]/v1/credentials";
/// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` as the webhook injects it.
pub const TOKEN_FILE: &str =
    "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token";
/// The size of [`Fault::HugeBody`]'s answer.
pub const HUGE_BODY: usize = 10 * 1024 * 1024;

/// An answer other than the normal one. "EKS Auth" faults answer once the
/// agent's own checks (path, `Host`, token parsing and expiry) have passed,
/// in place of EKS Auth's checks of the token, association and trust.
#[derive(Clone, Debug)]
pub enum Fault {
    /// No answer until [`Agent::release`] (or the server is dropped), then
    /// the normal one: an agent that accepted the connection and hangs.
    Hang,
    /// The normal answer, after this delay.
    Delay(Duration),
    /// 429 `Too Many Requests`: the agent's own rate limiter, before any
    /// other check.
    TooManyRequests,
    /// EKS Auth: 429 `(ThrottlingException): Rate exceeded, fault: client`.
    Throttling,
    /// EKS Auth unreachable (private cluster without the `eks-auth`
    /// endpoint, no egress): 500 with the body `[]`.
    EksAuthUnreachable,
    /// EKS Auth: 500 `(InternalServerException) ..., fault: server`.
    InternalServerError,
    /// EKS Auth: 503 `(ServiceUnavailableException) ..., fault: server`.
    ServiceUnavailable,
    /// EKS Auth: 400 `(AccessDeniedException): Unauthorized Exception! EKS
    /// does not have permissions to assume the associated role., fault:
    /// client`, whatever the role trusts. (An agent on the STS stand-in
    /// answers this by itself when the role does not trust Pod Identity.)
    TrustDenied,
    /// EKS Auth: 400 `(AccessDeniedException)` naming the node role, which
    /// lacks `eks-auth:AssumeRoleForPodIdentity` (message unverified).
    NodeRoleDenied,
    /// EKS Auth: 400 `(InvalidTokenException)` (message unverified).
    TokenRejected,
    /// EKS Auth: 404 `(ResourceNotFoundException)`, the association is gone
    /// (status and message unverified).
    AssociationMissing,
    /// EKS Auth: 400 `(ExpiredTokenException): The token included in the
    /// request is expired: ..., fault: client`.
    ExpiredToken,
    /// This status with exactly this body (no newline added), text/plain.
    Status(u16, String),
    /// 200 `application/json` of [`HUGE_BODY`] bytes that never closes its
    /// JSON.
    HugeBody,
    /// 200 with the credentials JSON lacking these fields.
    Omit(&'static [&'static str]),
    /// 200 with the session's credentials but this `AccountId`.
    AccountId(String),
    /// 200 with the session's credentials but an `Expiration` this many
    /// seconds from now (negative: already past), as an agent serving a
    /// stale cache would answer.
    ExpiresIn(i64),
}

/// One request as the agent saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: hyper::HeaderMap,
}

impl Seen {
    pub fn host(&self) -> Option<&str> {
        self.headers.get("host").and_then(|v| v.to_str().ok())
    }

    /// The `Authorization` header as sent: the pod's token, raw.
    pub fn authorization(&self) -> Option<&str> {
        self.headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
    }
}

/// Who mints the credentials.
enum Source {
    Sts(FakeAws),
    /// moto's server at this URL, through its `AssumeRole`.
    Moto(String),
}

/// A Pod Identity association: this service account gets this role.
struct Association {
    namespace: String,
    service_account: String,
    role_arn: String,
    /// `targetRoleArn`: the role EKS Auth assumes second, with the first
    /// one's session, and whose credentials the pod gets.
    target_role_arn: Option<String>,
}

struct State {
    source: Source,
    association: Option<Association>,
    issuer: String,
    queued: VecDeque<Fault>,
    always: Option<Fault>,
    seen: Vec<Seen>,
    session_names: Vec<String>,
    handed_out: Vec<Credentials>,
}

/// The agent's model and controls; clones share them. Start it with
/// [`Agent::start`]; the controls work while it runs.
#[derive(Clone)]
pub struct Agent {
    state: Arc<Mutex<State>>,
    /// How many requests have arrived.
    arrived: watch::Sender<usize>,
    /// How many times [`Agent::release`] was called.
    released: watch::Sender<u64>,
}

impl Agent {
    /// An agent on the STS stand-in, associating `payments/app` with
    /// [`ROLE_ARN`]. It does not touch the role's trust: see
    /// [`Agent::healthy`].
    pub fn new(aws: &FakeAws) -> Agent {
        Agent::with_source(Source::Sts(aws.clone()))
    }

    /// A healthy Pod Identity setup on the STS stand-in: [`ROLE_ARN`]
    /// trusts Pod Identity, `payments/app` is associated with it, and the
    /// agent is running.
    pub async fn healthy(aws: &FakeAws) -> AgentServer {
        aws.trust_pod_identity(ROLE_ARN);
        Agent::new(aws).start().await
    }

    /// An agent whose credentials come from moto's `AssumeRole` of
    /// `role_arn` (moto needs no role to exist), associated with
    /// `payments/app`, running. GetCallerIdentity against moto with them
    /// names `assumed-role/<role name>/eks-...`.
    pub async fn from_moto(moto: &Moto, role_arn: &str) -> AgentServer {
        let agent = Agent::with_source(Source::Moto(moto.url.clone()));
        agent.associate(NAMESPACE, SERVICE_ACCOUNT, role_arn);
        agent.start().await
    }

    fn with_source(source: Source) -> Agent {
        Agent {
            state: Arc::new(Mutex::new(State {
                source,
                association: Some(Association {
                    namespace: NAMESPACE.into(),
                    service_account: SERVICE_ACCOUNT.into(),
                    role_arn: ROLE_ARN.into(),
                    target_role_arn: None,
                }),
                issuer: ISSUER.into(),
                queued: VecDeque::new(),
                always: None,
                seen: vec![],
                session_names: vec![],
                handed_out: vec![],
            })),
            arrived: watch::channel(0).0,
            released: watch::channel(0).0,
        }
    }

    /// Serves on 127.0.0.1 and, when the machine has it, on ::1 (the same
    /// port where it is free, so that `localhost` reaches it either way).
    pub async fn start(self) -> AgentServer {
        let v4 = serve_at(([127, 0, 0, 1], 0).into(), self.handler())
            .await
            .expect("bind 127.0.0.1");
        let v6_at = |port: u16| SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
        let v6 = match serve_at(v6_at(v4.addr.port()), self.handler()).await {
            Ok(server) => Some(server),
            Err(_) => serve_at(v6_at(0), self.handler()).await.ok(),
        };
        AgentServer {
            v4: v4.addr,
            v6: v6.as_ref().map(|s| s.addr),
            servers: Mutex::new([Some(v4), v6].into_iter().flatten().collect()),
            agent: self,
        }
    }

    /// The service account `namespace/service_account` gets `role_arn`
    /// (the only association; a token of another account is answered
    /// `ResourceNotFoundException`).
    pub fn associate(&self, namespace: &str, service_account: &str, role_arn: &str) {
        self.state.lock().unwrap().association = Some(Association {
            namespace: namespace.into(),
            service_account: service_account.into(),
            role_arn: role_arn.into(),
            target_role_arn: None,
        });
    }

    /// The association gets a target role (cross-account): EKS Auth
    /// assumes the association's role, then `target_role_arn` with that
    /// session (which the target must trust, [`FakeAws::trust_role`]), and
    /// hands out the target's credentials.
    pub fn target(&self, target_role_arn: &str) {
        if let Some(a) = self.state.lock().unwrap().association.as_mut() {
            a.target_role_arn = Some(target_role_arn.into());
        }
    }

    /// No association at all: every valid token is answered
    /// `ResourceNotFoundException`, as after the association was deleted.
    pub fn dissociate(&self) {
        self.state.lock().unwrap().association = None;
    }

    /// Tokens must come from this issuer (default: the kit's
    /// [`ISSUER`]); others are `InvalidTokenException`, as a
    /// token of another cluster is.
    pub fn set_issuer(&self, issuer: &str) {
        self.state.lock().unwrap().issuer = issuer.into();
    }

    /// The next `n` requests get `fault`, then the `always` one if any.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let mut s = self.state.lock().unwrap();
        s.queued.extend(std::iter::repeat_n(fault, n));
    }

    /// Every request gets `fault` (after those queued by `fail_next`).
    pub fn always(&self, fault: Fault) {
        self.state.lock().unwrap().always = Some(fault);
    }

    pub fn clear_always(&self) {
        self.state.lock().unwrap().always = None;
    }

    /// Answers the requests [`Fault::Hang`] holds now (normally), and stops
    /// `always(Hang)`. Requests queued with `fail_next` still hang.
    pub fn release(&self) {
        let mut s = self.state.lock().unwrap();
        if matches!(s.always, Some(Fault::Hang)) {
            s.always = None;
        }
        self.released.send_modify(|n| *n += 1);
    }

    /// Every request so far, in order of arrival.
    pub fn requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    pub fn request_count(&self) -> usize {
        *self.arrived.borrow()
    }

    /// Waits until `n` requests have arrived (they may still be in
    /// progress, or held); panics after [`WAIT_LIMIT`].
    pub async fn wait_for_requests(&self, n: usize) {
        let mut arrived = self.arrived.subscribe();
        tokio::time::timeout(WAIT_LIMIT, arrived.wait_for(|c| *c >= n))
            .await
            .unwrap_or_else(|_| {
                panic!("the agent saw {} requests, not {n}", *self.arrived.borrow())
            })
            .expect("the agent's counter lives as long as the agent");
    }

    /// The role session names of the credentials handed out.
    pub fn session_names(&self) -> Vec<String> {
        self.state.lock().unwrap().session_names.clone()
    }

    /// Every set of credentials handed out, for leak tests (moto's secrets
    /// carry no known prefix).
    pub fn handed_out(&self) -> Vec<Credentials> {
        self.state.lock().unwrap().handed_out.clone()
    }

    fn handler(&self) -> Handler {
        let agent = self.clone();
        Arc::new(move |req| {
            let agent = agent.clone();
            Box::pin(async move { agent.handle(req).await })
        })
    }

    async fn handle(&self, req: Req) -> Resp {
        let (fault, request_id, released) = self.arrive(&req);
        match &fault {
            Some(Fault::Hang) => {
                let mut rx = self.released.subscribe();
                let _ = rx.wait_for(|n| *n > released).await;
            }
            Some(Fault::Delay(d)) => tokio::time::sleep(*d).await,
            _ => {}
        }
        if req.path != PATH {
            // Go's ServeMux, for any path but the one registered.
            return text(404, "404 page not found");
        }
        if let Some(Fault::TooManyRequests) = fault {
            return text(429, "Too Many Requests");
        }
        let host = host_name(req.headers.get("host").map(|h| h.as_bytes()));
        if !ALLOWED_HOSTS.contains(&host.as_str()) {
            return text(
                403,
                &format!("Access Denied. Called agent through invalid address, please use either [{AGENT_IPV4} {AGENT_IPV6}] address not {host}"),
            );
        }
        let token = req.headers.get("authorization").map(|t| t.as_bytes());
        let claims = match agent_checks(token.unwrap_or_default()) {
            Ok(claims) => claims,
            Err(message) => return text(400, &message),
        };
        if let Some(answer) = fault.as_ref().and_then(|f| eks_auth_fault(f, &request_id)) {
            return answer;
        }
        let (role_arn, session_name) = match self.eks_auth(&claims) {
            Ok(found) => found,
            Err((status, code, message)) => {
                return eks_auth_error(status, &request_id, code, &message, "client")
            }
        };
        let creds = match self.mint(&role_arn, &session_name).await {
            Ok(creds) => creds,
            Err(why) => {
                return text(
                    500,
                    &format!("[{request_id}]: (InternalServerException): the stand-in could not mint credentials: {why}, fault: server"),
                )
            }
        };
        let mut s = self.state.lock().unwrap();
        s.session_names.push(session_name);
        s.handed_out.push(creds.clone());
        drop(s);
        let account = role_arn.split(':').nth(4).unwrap_or_default();
        success(&creds, account, fault.as_ref())
    }

    /// Records the request and takes its fault: `(fault, request ID, the
    /// release count it arrived under)`.
    fn arrive(&self, req: &Req) -> (Option<Fault>, String, u64) {
        let mut s = self.state.lock().unwrap();
        s.seen.push(Seen {
            method: req.method.to_string(),
            path: req.path.clone(),
            headers: req.headers.clone(),
        });
        let n = s.seen.len();
        let fault = s.queued.pop_front().or_else(|| s.always.clone());
        // Read under the lock `release` holds, so a release either frees
        // this request or has already cleared `always(Hang)`.
        let released = *self.released.borrow();
        drop(s);
        self.arrived.send_replace(n);
        let id = format!("{n:08x}-5e1d-4c3b-9a2f-{n:012x}");
        (fault, id, released)
    }

    /// EKS Auth's checks of a parsed token: its issuer and audience, the
    /// association of its service account, and the role's trust. The role
    /// and the session name, or EKS Auth's error (`fault: client`):
    /// status, code and message.
    fn eks_auth(&self, claims: &Value) -> Result<(String, String), (u16, &'static str, String)> {
        let s = self.state.lock().unwrap();
        if claims["iss"].as_str() != Some(s.issuer.as_str()) {
            let message = "Token issuer is not valid for this cluster";
            return Err((400, "InvalidTokenException", message.into()));
        }
        let aud_ok = match &claims["aud"] {
            Value::String(a) => a == POD_IDENTITY_AUDIENCE,
            Value::Array(a) => a.iter().any(|v| v == POD_IDENTITY_AUDIENCE),
            _ => false,
        };
        if !aud_ok {
            let message = "Token audience is not valid";
            return Err((400, "InvalidTokenException", message.into()));
        }
        let sub = claims["sub"].as_str().unwrap_or_default();
        let association = s.association.as_ref().filter(|a| {
            sub == format!(
                "system:serviceaccount:{}:{}",
                a.namespace, a.service_account
            )
        });
        let Some(association) = association else {
            let message = format!("Pod Identity association not found for {sub}");
            return Err((404, "ResourceNotFoundException", message));
        };
        if let Source::Sts(aws) = &s.source {
            if !aws.trusts_pod_identity(&association.role_arn) {
                return Err((400, "AccessDeniedException", TRUST_DENIED.into()));
            }
            if let Some(target) = &association.target_role_arn {
                if !aws.trusts_role(target, &association.role_arn) {
                    let message = format!("{TARGET_TRUST_DENIED} {target}.");
                    return Err((400, "AccessDeniedException", message));
                }
            }
        }
        let role = association.target_role_arn.as_ref();
        let role = role.unwrap_or(&association.role_arn).clone();
        Ok((role, session_name(claims)))
    }

    async fn mint(&self, role_arn: &str, session_name: &str) -> Result<Credentials, String> {
        let moto_url = match &self.state.lock().unwrap().source {
            Source::Sts(aws) => return Ok(aws.mint_session(role_arn, session_name)),
            Source::Moto(url) => url.clone(),
        };
        moto_assume_role(&moto_url, role_arn, session_name).await
    }
}

/// A running agent stand-in.
pub struct AgentServer {
    pub agent: Agent,
    v4: SocketAddr,
    v6: Option<SocketAddr>,
    /// The listeners while they listen.
    servers: Mutex<Vec<Server>>,
}

impl AgentServer {
    /// `http://127.0.0.1:<port>/v1/credentials`
    pub fn url(&self) -> String {
        format!("http://{}{PATH}", self.v4)
    }

    /// `http://[::1]:<port>/v1/credentials`, standing in for
    /// `http://[fd00:ec2::23]/v1/credentials`; panics on a machine without
    /// IPv6 loopback (see [`AgentServer::has_ipv6`]).
    pub fn url_v6(&self) -> String {
        let addr = self
            .v6
            .expect("this machine has no IPv6 loopback (::1) to serve on");
        format!("http://{addr}{PATH}")
    }

    pub fn has_ipv6(&self) -> bool {
        self.v6.is_some()
    }

    /// The IPv4 listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.v4
    }

    /// Stops listening, on both addresses, and closes the connections it
    /// holds (requests in progress get no answer): new connections are
    /// refused, as when the agent is not running.
    pub async fn refuse(&self) {
        let servers = std::mem::take(&mut *self.servers.lock().unwrap());
        for server in servers {
            server.close().await;
        }
    }

    /// Listens again on the same addresses after [`AgentServer::refuse`].
    pub async fn listen_again(&self) {
        let mut servers = vec![];
        for addr in [Some(self.v4), self.v6].into_iter().flatten() {
            let server = serve_at(addr, self.agent.handler())
                .await
                .unwrap_or_else(|e| panic!("cannot listen on {addr} again: {e}"));
            servers.push(server);
        }
        *self.servers.lock().unwrap() = servers;
    }
}

impl Drop for AgentServer {
    fn drop(&mut self) {
        self.agent.release();
    }
}

/// A credentials URL on which nothing listens: connections are refused.
pub fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}{PATH}")
}

/// `Host` names the stand-in admits: the agent's two addresses, and
/// loopback because that is where tests reach it.
const ALLOWED_HOSTS: &[&str] = &[AGENT_IPV4, AGENT_IPV6, "127.0.0.1", "::1", "localhost"];

/// The host of a `Host` header, without port or brackets, as the agent
/// reads it (Go's `net.SplitHostPort`, then the brackets dropped).
fn host_name(header: Option<&[u8]>) -> String {
    let host = String::from_utf8_lossy(header.unwrap_or_default()).into_owned();
    let without_port = match host.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or(rest, |(inner, _)| inner),
        None if host.matches(':').count() == 1 => host.split(':').next().unwrap_or_default(),
        None => &host,
    };
    without_port.to_owned()
}

/// The agent's own checks before it calls EKS Auth (golang-jwt's
/// `ParseUnverified` and basic claim validation): the claims, or the
/// message of its 400.
fn agent_checks(token: &[u8]) -> Result<Value, String> {
    if token.is_empty() {
        return Err("Service account token cannot be empty".into());
    }
    let malformed =
        |why: String| format!("Service account token cannot be parsed: token is malformed: {why}");
    let token = String::from_utf8_lossy(token);
    let segments: Vec<&str> = token.split('.').collect();
    if segments.len() != 3 {
        return Err(malformed(
            "token contains an invalid number of segments".into(),
        ));
    }
    let decode = |segment: &str, what: &str| -> Result<Value, String> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(segment)
            .map_err(|_| {
                let at = segment
                    .bytes()
                    .position(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
                    .unwrap_or(segment.len());
                malformed(format!(
                    "could not base64 decode {what}: illegal base64 data at input byte {at}"
                ))
            })?;
        serde_json::from_slice(&bytes)
            .map_err(|e| malformed(format!("could not JSON decode {what}: {e}")))
    };
    decode(segments[0], "header")?;
    let claims = decode(segments[1], "claim")?;
    if claims["exp"].as_i64().is_some_and(|exp| exp <= now()) {
        return Err(
            "Service account token failed basic claim validations: token is expired".into(),
        );
    }
    Ok(claims)
}

/// `eks-<cluster>-<pod>-<pod uid>`, cut to STS's 64 characters (EKS's own
/// rule for long names is unverified).
fn session_name(claims: &Value) -> String {
    let pod = &claims["kubernetes.io"]["pod"];
    let mut name = format!(
        "eks-{CLUSTER}-{}-{}",
        pod["name"].as_str().unwrap_or("pod"),
        pod["uid"].as_str().unwrap_or("0")
    );
    name.truncate(64);
    name
}

/// An error as the agent writes one (Go's `http.Error`).
fn text(status: u16, body: &str) -> Resp {
    raw_text(status, format!("{body}\n"))
}

fn raw_text(status: u16, body: String) -> Resp {
    let mut resp = response(status, "text/plain; charset=utf-8", body);
    resp.headers_mut()
        .insert("x-content-type-options", "nosniff".parse().unwrap());
    resp
}

/// An EKS Auth error as the agent passes it on.
fn eks_auth_error(status: u16, request_id: &str, code: &str, message: &str, fault: &str) -> Resp {
    text(
        status,
        &format!("[{request_id}]: ({code}): {message}, fault: {fault}"),
    )
}

/// EKS Auth's message when the role's trust policy does not admit
/// `pods.eks.amazonaws.com`, seen verbatim in several reports.
const TRUST_DENIED: &str =
    "Unauthorized Exception! EKS does not have permissions to assume the associated role.";

/// EKS Auth's message when the target role's trust policy does not admit
/// the association's role. Not seen in a report: the stand-in's own
/// wording (unverified), which names the target role, so that
/// irsa-doctor's attribution of the hop is exercised; irsa-doctor treats
/// any trust refusal that does not name the target as the first hop's.
const TARGET_TRUST_DENIED: &str =
    "Unauthorized Exception! EKS does not have permissions to assume the target role";

/// The answer of an EKS Auth fault; `None` for faults that are not one.
fn eks_auth_fault(fault: &Fault, id: &str) -> Option<Resp> {
    let client = |status, code, message: &str| eks_auth_error(status, id, code, message, "client");
    let server = |status, code, message: &str| eks_auth_error(status, id, code, message, "server");
    Some(match fault {
        Fault::Throttling => client(429, "ThrottlingException", "Rate exceeded"),
        Fault::EksAuthUnreachable => text(500, "[]"),
        Fault::InternalServerError => server(500, "InternalServerException", "An internal error occurred"),
        Fault::ServiceUnavailable => server(503, "ServiceUnavailableException", "Service is unavailable, please try again later"),
        Fault::TrustDenied => client(400, "AccessDeniedException", TRUST_DENIED),
        Fault::NodeRoleDenied => client(400, "AccessDeniedException", &format!("User: arn:aws:sts::{ACCOUNT}:assumed-role/{NODE_ROLE}/i-0123456789abcdef0 is not authorized to perform: eks-auth:AssumeRoleForPodIdentity on resource: arn:aws:eks:us-east-1:{ACCOUNT}:cluster/{CLUSTER}")),
        Fault::TokenRejected => client(400, "InvalidTokenException", "The token is not valid"),
        Fault::AssociationMissing => client(404, "ResourceNotFoundException", "Pod Identity association not found"),
        Fault::ExpiredToken => client(400, "ExpiredTokenException", "The token included in the request is expired: token exp is in the past"),
        Fault::Status(status, body) => raw_text(*status, body.clone()),
        Fault::Hang
        | Fault::Delay(_)
        | Fault::TooManyRequests
        | Fault::HugeBody
        | Fault::Omit(_)
        | Fault::AccountId(_)
        | Fault::ExpiresIn(_) => return None,
    })
}

/// The 200, shaped by a success-time fault if there is one.
fn success(creds: &Credentials, account: &str, fault: Option<&Fault>) -> Resp {
    if let Some(Fault::HugeBody) = fault {
        let mut body = br#"{"AccessKeyId":""#.to_vec();
        body.resize(HUGE_BODY, b'A');
        return response(200, "application/json", body);
    }
    let account = match fault {
        Some(Fault::AccountId(other)) => other.as_str(),
        _ => account,
    };
    let omitted: &[&str] = match fault {
        Some(Fault::Omit(fields)) => fields,
        _ => &[],
    };
    let expiration = match fault {
        Some(Fault::ExpiresIn(secs)) => rfc3339(now() + secs),
        _ => rfc3339(creds.expiration),
    };
    let fields = [
        ("AccessKeyId", creds.access_key_id.as_str()),
        ("SecretAccessKey", &creds.secret_access_key),
        ("Token", &creds.session_token),
        ("AccountId", account),
        ("Expiration", &expiration),
    ];
    let body: Vec<String> = fields
        .iter()
        .filter(|(name, _)| !omitted.contains(name))
        .map(|(name, value)| format!("{}:{}", Value::from(*name), Value::from(*value)))
        .collect();
    response(200, "application/json", format!("{{{}}}", body.join(",")))
}

/// Credentials from moto's `AssumeRole` (signed with made-up keys; moto
/// takes any).
async fn moto_assume_role(
    url: &str,
    role_arn: &str,
    session_name: &str,
) -> Result<Credentials, String> {
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "AssumeRole")
        .append_pair("Version", "2011-06-15")
        .append_pair("RoleArn", role_arn)
        .append_pair("RoleSessionName", session_name)
        .append_pair("DurationSeconds", "3600")
        .finish();
    let caller = Credentials {
        access_key_id: "AKIAMOTOPODAGENT0001".into(),
        secret_access_key: "moto-takes-any-secret".into(),
        session_token: String::new(),
        expiration: 0,
    };
    let answer = sigv4::post(url, &form, &caller).await;
    let field = |tag: &str| sigv4::xml_field(&answer.body, tag);
    let (Some(access_key_id), Some(secret_access_key), Some(session_token)) = (
        field("AccessKeyId"),
        field("SecretAccessKey"),
        field("SessionToken"),
    ) else {
        return Err(format!("moto answered {}: {}", answer.status, answer.body));
    };
    let expiration = field("Expiration")
        .and_then(|e| {
            aws_smithy_types::DateTime::from_str(&e, aws_smithy_types::date_time::Format::DateTime)
                .ok()
        })
        .map_or(now() + 3600, |e| e.secs());
    Ok(Credentials {
        access_key_id,
        secret_access_key,
        session_token,
        expiration,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_aws::{SECRET_PREFIX, SESSION_TOKEN_PREFIX};
    use crate::http::{exchange, Answer};
    use crate::jwt::Jwt;
    use serde_json::json;

    fn token() -> String {
        Jwt::for_pod_identity(NAMESPACE, SERVICE_ACCOUNT).encode()
    }

    /// A GET of the credentials path with this `Host` and, if given, this
    /// `Authorization`.
    async fn get(agent: &AgentServer, host: &str, auth: Option<&str>) -> Answer {
        get_at(&agent.addr().to_string(), PATH, host, auth).await
    }

    async fn get_at(addr: &str, path: &str, host: &str, auth: Option<&str>) -> Answer {
        let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
        let raw = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n");
        exchange(addr, raw.as_bytes()).await
    }

    async fn healthy() -> (crate::fake_aws::FakeAwsServer, AgentServer) {
        let sts = FakeAws::empty().start().await;
        let agent = Agent::healthy(&sts.aws).await;
        (sts, agent)
    }

    fn creds_of(answer: &Answer) -> Credentials {
        let v = answer.json();
        let field = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("no {k}: {v}"))
                .to_owned()
        };
        let expiration = aws_smithy_types::DateTime::from_str(
            &field("Expiration"),
            aws_smithy_types::date_time::Format::DateTime,
        )
        .unwrap()
        .secs();
        Credentials {
            access_key_id: field("AccessKeyId"),
            secret_access_key: field("SecretAccessKey"),
            session_token: field("Token"),
            expiration,
        }
    }

    const GET_CALLER_IDENTITY: &str = "Action=GetCallerIdentity&Version=2011-06-15";

    #[tokio::test]
    async fn hands_out_a_session_the_sts_stand_in_names_as_the_associated_role() {
        let (sts, agent) = healthy().await;
        let answer = get(&agent, &agent.addr().to_string(), Some(&token())).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(
            answer.header("content-type").as_deref(),
            Some("application/json")
        );
        let v = answer.json();
        assert_eq!(v["AccountId"], ACCOUNT);
        let creds = creds_of(&answer);
        assert!(creds.secret_access_key.starts_with(SECRET_PREFIX));
        assert!(creds.session_token.starts_with(SESSION_TOKEN_PREFIX));
        assert!(creds.expiration > now() + 3600);

        let identity = sigv4::post(&sts.url(), GET_CALLER_IDENTITY, &creds).await;
        assert_eq!(identity.status, 200, "{identity:?}");
        let arn = sigv4::xml_field(&identity.body, "Arn").unwrap();
        assert_eq!(
            arn,
            "arn:aws:sts::111122223333:assumed-role/app/eks-payments-prod-app-7d9f8c-x2x4q-0d4b0f54-1b3c-4d8e-9f6a-12345"
        );
        assert_eq!(
            agent.agent.session_names(),
            ["eks-payments-prod-app-7d9f8c-x2x4q-0d4b0f54-1b3c-4d8e-9f6a-12345"]
        );
        assert_eq!(
            agent.agent.handed_out()[0].access_key_id,
            creds.access_key_id
        );
    }

    #[tokio::test]
    async fn sts_refuses_a_session_signed_without_its_token_or_with_another_secret() {
        let (sts, agent) = healthy().await;
        let creds = creds_of(&get(&agent, "127.0.0.1", Some(&token())).await);
        let no_token = Credentials {
            session_token: String::new(),
            ..creds.clone()
        };
        let wrong_secret = Credentials {
            secret_access_key: creds.session_token.clone(),
            ..creds
        };
        for (creds, code) in [
            (no_token, "InvalidClientTokenId"),
            (wrong_secret, "SignatureDoesNotMatch"),
        ] {
            let answer = sigv4::post(&sts.url(), GET_CALLER_IDENTITY, &creds).await;
            assert_eq!(answer.status, 403, "{answer:?}");
            assert!(answer.body.contains(code), "{code}: {}", answer.body);
        }
    }

    #[tokio::test]
    async fn host_must_be_an_agent_address_or_loopback() {
        let (_sts, agent) = healthy().await;
        let port = agent.addr().port();
        for host in [
            format!("127.0.0.1:{port}"),
            "127.0.0.1".into(),
            "[::1]".into(),
            format!("[::1]:{port}"),
            "localhost".into(),
            format!("localhost:{port}"),
            "169.254.170.23".into(),
            "169.254.170.23:80".into(),
            "[fd00:ec2::23]".into(),
            "[fd00:ec2::23]:80".into(),
        ] {
            let answer = get(&agent, &host, Some(&token())).await;
            assert_eq!(answer.status, 200, "{host}: {answer:?}");
        }
        for (host, named) in [
            ("example.com", "example.com"),
            ("169.254.170.2:80", "169.254.170.2"),
            ("[::2]:80", "::2"),
            ("", ""),
        ] {
            let answer = get(&agent, host, Some(&token())).await;
            assert_eq!(answer.status, 403, "{host}");
            assert_eq!(
                answer.body,
                format!("Access Denied. Called agent through invalid address, please use either [169.254.170.23 fd00:ec2::23] address not {named}\n")
            );
        }
    }

    #[tokio::test]
    async fn records_the_host_and_the_raw_token_it_was_sent() {
        let (_sts, agent) = healthy().await;
        let token = token();
        get(&agent, "127.0.0.1:1234", Some(&token)).await;
        get(&agent, "127.0.0.1", Some(&format!("Bearer {token}"))).await;
        let seen = agent.agent.requests();
        assert_eq!(agent.agent.request_count(), 2);
        assert_eq!(
            (seen[0].method.as_str(), seen[0].path.as_str()),
            ("GET", PATH)
        );
        assert_eq!(seen[0].host(), Some("127.0.0.1:1234"));
        assert_eq!(seen[0].authorization(), Some(token.as_str()));
        assert!(seen[1].authorization().unwrap().starts_with("Bearer "));
    }

    #[tokio::test]
    async fn refuses_tokens_with_the_agents_and_eks_auths_bodies() {
        let (_sts, agent) = healthy().await;
        let expired = Jwt::for_pod_identity(NAMESPACE, SERVICE_ACCOUNT)
            .set("exp", json!(now() - 60))
            .encode();
        let irsa = Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).encode();
        let other_cluster = Jwt::for_pod_identity(NAMESPACE, SERVICE_ACCOUNT)
            .set(
                "iss",
                json!("https://oidc.eks.us-east-1.amazonaws.com/id/OTHER"),
            )
            .encode();
        let other_sa = Jwt::for_pod_identity(NAMESPACE, "billing").encode();
        let bearer = format!("Bearer {}", token());
        let cases: [(Option<&str>, u16, &str); 9] = [
            (None, 400, "Service account token cannot be empty\n"),
            (Some(""), 400, "Service account token cannot be empty\n"),
            (Some(&bearer), 400, "Service account token cannot be parsed: token is malformed: could not base64 decode header: illegal base64 data at input byte 6\n"),
            (Some("not-a-jwt"), 400, "Service account token cannot be parsed: token is malformed: token contains an invalid number of segments\n"),
            (Some("a.b c.d"), 400, "Service account token cannot be parsed: token is malformed: could not base64 decode header"),
            (Some(&expired), 400, "Service account token failed basic claim validations: token is expired\n"),
            (Some(&irsa), 400, "(InvalidTokenException): Token audience is not valid, fault: client\n"),
            (Some(&other_cluster), 400, "(InvalidTokenException): "),
            (Some(&other_sa), 404, "(ResourceNotFoundException): Pod Identity association not found for system:serviceaccount:payments:billing, fault: client\n"),
        ];
        for (auth, status, body) in cases {
            let answer = get(&agent, "169.254.170.23", auth).await;
            assert_eq!(answer.status, status, "{auth:?}: {answer:?}");
            assert!(answer.body.contains(body), "{auth:?}: {answer:?}");
            assert!(
                answer
                    .header("content-type")
                    .unwrap()
                    .starts_with("text/plain"),
                "{answer:?}"
            );
        }
        let eks_auth = get(&agent, "127.0.0.1", Some(&irsa)).await.body;
        assert!(
            eks_auth.starts_with("[") && eks_auth.contains("]: (InvalidTokenException)"),
            "{eks_auth}"
        );
    }

    #[tokio::test]
    async fn a_role_that_does_not_trust_pod_identity_is_trust_denied() {
        let sts = FakeAws::empty().start().await;
        let agent = Agent::new(&sts.aws).start().await;
        let answer = get(&agent, "127.0.0.1", Some(&token())).await;
        assert_eq!(answer.status, 400);
        assert!(answer.body.ends_with("]: (AccessDeniedException): Unauthorized Exception! EKS does not have permissions to assume the associated role., fault: client\n"), "{}", answer.body);
        sts.aws.trust_pod_identity(ROLE_ARN);
        assert_eq!(get(&agent, "127.0.0.1", Some(&token())).await.status, 200);
        agent.agent.dissociate();
        assert_eq!(get(&agent, "127.0.0.1", Some(&token())).await.status, 404);
    }

    #[tokio::test]
    async fn other_paths_are_not_found() {
        let (_sts, agent) = healthy().await;
        let answer = get_at(&agent.addr().to_string(), "/", "127.0.0.1", Some(&token())).await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (404, "404 page not found\n")
        );
    }

    #[tokio::test]
    async fn faults_answer_with_their_statuses_and_bodies() {
        let (_sts, agent) = healthy().await;
        let cases: Vec<(Fault, u16, &str)> = vec![
            (Fault::TooManyRequests, 429, "Too Many Requests\n"),
            (Fault::Throttling, 429, "]: (ThrottlingException): Rate exceeded, fault: client\n"),
            (Fault::EksAuthUnreachable, 500, "[]\n"),
            (Fault::InternalServerError, 500, "]: (InternalServerException): "),
            (Fault::ServiceUnavailable, 503, "]: (ServiceUnavailableException): "),
            (Fault::TrustDenied, 400, "]: (AccessDeniedException): Unauthorized Exception! EKS does not have permissions to assume the associated role., fault: client\n"),
            (Fault::NodeRoleDenied, 400, "eks-auth:AssumeRoleForPodIdentity"),
            (Fault::TokenRejected, 400, "]: (InvalidTokenException): "),
            (Fault::AssociationMissing, 404, "]: (ResourceNotFoundException): "),
            (Fault::ExpiredToken, 400, "]: (ExpiredTokenException): The token included in the request is expired: "),
            (Fault::Status(418, "teapot".into()), 418, "teapot"),
        ];
        for (fault, status, body) in cases {
            agent.agent.fail_next(1, fault.clone());
            let answer = get(&agent, "127.0.0.1", Some(&token())).await;
            assert_eq!(answer.status, status, "{fault:?}: {answer:?}");
            assert!(answer.body.contains(body), "{fault:?}: {answer:?}");
            if let Fault::Status(_, exact) = &fault {
                assert_eq!(&answer.body, exact);
            }
            if body.starts_with("]:") {
                assert!(answer.body.starts_with('['), "{fault:?}: {answer:?}");
                assert!(answer.body.ends_with("\n"), "{fault:?}: {answer:?}");
            }
        }
        // The queue is empty again, and every request was counted.
        assert_eq!(get(&agent, "127.0.0.1", Some(&token())).await.status, 200);
        assert_eq!(agent.agent.request_count(), 12);
    }

    #[tokio::test]
    async fn faults_that_shape_the_success() {
        let (_sts, agent) = healthy().await;
        agent
            .agent
            .fail_next(1, Fault::Omit(&["Token", "AccountId"]));
        agent
            .agent
            .fail_next(1, Fault::AccountId("999988887777".into()));
        agent.agent.fail_next(1, Fault::HugeBody);
        let v = get(&agent, "127.0.0.1", Some(&token())).await.json();
        assert!(
            v["AccessKeyId"].is_string() && v["Expiration"].is_string(),
            "{v}"
        );
        assert!(
            v.get("Token").is_none() && v.get("AccountId").is_none(),
            "{v}"
        );
        let v = get(&agent, "127.0.0.1", Some(&token())).await.json();
        assert_eq!(v["AccountId"], "999988887777");
        let huge = get(&agent, "127.0.0.1", Some(&token())).await;
        assert_eq!((huge.status, huge.body.len()), (200, HUGE_BODY));
    }

    #[tokio::test]
    async fn always_faults_until_cleared() {
        let (_sts, agent) = healthy().await;
        agent.agent.always(Fault::EksAuthUnreachable);
        agent.agent.fail_next(1, Fault::Throttling);
        let statuses = [
            get(&agent, "127.0.0.1", Some(&token())).await.status,
            get(&agent, "127.0.0.1", Some(&token())).await.status,
            get(&agent, "127.0.0.1", Some(&token())).await.status,
        ];
        assert_eq!(statuses, [429, 500, 500]);
        agent.agent.clear_always();
        assert_eq!(get(&agent, "127.0.0.1", Some(&token())).await.status, 200);
    }

    #[tokio::test]
    async fn a_hung_request_is_answered_once_released() {
        let (_sts, agent) = healthy().await;
        agent.agent.always(Fault::Hang);
        let addr = agent.addr().to_string();
        let token = token();
        let held =
            tokio::spawn(async move { get_at(&addr, PATH, "127.0.0.1", Some(&token)).await });
        agent.agent.wait_for_requests(1).await;
        assert!(!held.is_finished());
        agent.agent.release();
        assert_eq!(held.await.unwrap().status, 200);
        // `always(Hang)` ended with the release.
        assert_eq!(
            get(&agent, "127.0.0.1", Some(&super::tests::token()))
                .await
                .status,
            200
        );
    }

    #[tokio::test]
    async fn refuses_connections_until_it_listens_again() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let (_sts, agent) = healthy().await;
        // A kept-alive connection, answered once, must not outlive refuse().
        let mut kept = tokio::net::TcpStream::connect(agent.addr()).await.unwrap();
        let request = format!("GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        kept.write_all(request.as_bytes()).await.unwrap();
        let mut read = vec![];
        while !read.ends_with(b"cannot be empty\n") {
            let mut buf = [0; 1024];
            let n = kept.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before the answer");
            read.extend_from_slice(&buf[..n]);
        }
        agent.refuse().await;
        let after = tokio::time::timeout(WAIT_LIMIT, kept.read(&mut [0; 16])).await;
        assert!(matches!(after, Ok(Ok(0) | Err(_))), "still open: {after:?}");
        let refused = tokio::net::TcpStream::connect(agent.addr())
            .await
            .unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
        agent.listen_again().await;
        assert_eq!(get(&agent, "127.0.0.1", Some(&token())).await.status, 200);

        let url = refused_url();
        let addr = url.trim_start_matches("http://").trim_end_matches(PATH);
        let refused = tokio::net::TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    }

    #[tokio::test]
    async fn serves_on_ipv6_loopback() {
        let (_sts, agent) = healthy().await;
        assert!(agent.has_ipv6(), "this machine has no ::1");
        let url = agent.url_v6();
        let authority = url.trim_start_matches("http://").trim_end_matches(PATH);
        assert!(authority.starts_with("[::1]:"), "{url}");
        assert_eq!(agent.url(), format!("http://{}{PATH}", agent.addr()));
        let answer = get_at(authority, PATH, authority, Some(&token())).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(agent.agent.requests()[0].host(), Some(authority));
    }

    #[tokio::test]
    async fn from_moto_hands_out_credentials_moto_names_as_the_role() {
        let moto = crate::start_moto().await;
        let role = "arn:aws:iam::123456789012:role/platform/moto-app";
        let agent = Agent::from_moto(&moto, role).await;
        let answer = get(&agent, "127.0.0.1", Some(&token())).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.json()["AccountId"], "123456789012");
        let identity = sigv4::post(&moto.url, GET_CALLER_IDENTITY, &creds_of(&answer)).await;
        assert_eq!(
            sigv4::xml_field(&identity.body, "Arn").as_deref(),
            Some("arn:aws:sts::123456789012:assumed-role/moto-app/eks-payments-prod-app-7d9f8c-x2x4q-0d4b0f54-1b3c-4d8e-9f6a-12345"),
            "{identity:?}"
        );
    }
}
