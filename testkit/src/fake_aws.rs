//! A loopback stand-in for STS (Query protocol, XML answers) backed by a
//! small model of IAM: OIDC providers with their client IDs, roles with
//! web-identity trust statements (and whether they trust EKS Pod Identity),
//! and access keys. It refuses tokens the way STS does, with STS's verbatim
//! codes and messages, and can inject every fault: delays, throttling, 5xx,
//! garbage, transient IdP errors, IAM's propagation delay.
//!
//! Sessions minted for Pod Identity ([`FakeAws::mint_session`]) are checked
//! as AWS checks them: GetCallerIdentity must carry their session token and
//! a SigV4 signature made with their secret. Other keys are recognised by
//! their key ID alone.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

use crate::clock::{now, rfc3339};
use crate::http::{response, serve, serve_tls, Handler, Req, Resp, Server};
use crate::sigv4::{self, Credentials};
use crate::world::{ACCOUNT, ISSUER, NAMESPACE, ROLE_ARN, SERVICE_ACCOUNT, STS_AUDIENCE};

mod assume_role;
mod iam;
pub use iam::{IamFault, Stmt};

/// Secrets the stand-in hands out, so leak tests can look for them.
pub const SECRET_PREFIX: &str = "STANDINSECRETKEY";
pub const SESSION_TOKEN_PREFIX: &str = "STANDINSESSIONTOKEN";

/// A web-identity trust statement: provider issuer (no scheme), and the
/// `sub` and `aud` conditions. `sub_like` is StringLike (with `*`).
#[derive(Clone, Debug)]
pub struct Trust {
    pub issuer: String,
    pub sub: String,
    pub sub_like: bool,
    pub aud: String,
}

impl Trust {
    pub fn for_sa(namespace: &str, sa: &str) -> Self {
        Trust {
            issuer: strip_scheme(ISSUER),
            sub: format!("system:serviceaccount:{namespace}:{sa}"),
            sub_like: false,
            aud: STS_AUDIENCE.into(),
        }
    }

    fn admits(&self, issuer: &str, sub: &str, aud: &[String]) -> bool {
        let sub_ok = if self.sub_like {
            let prefix = self.sub.trim_end_matches('*');
            sub.starts_with(prefix)
        } else {
            self.sub == sub
        };
        self.issuer == issuer && sub_ok && aud.contains(&self.aud)
    }
}

/// A fault injected into AssumeRoleWithWebIdentity answers.
#[derive(Clone, Debug)]
pub enum Fault {
    Throttle,
    ServerError,
    Garbage,
    HtmlError,
    Delay(Duration),
    IdpCommunication,
    VerificationKey,
    AccessDenied,
    RegionDisabled,
    Thumbprint,
    /// `IDPRejectedClaim`.
    IdpRejectedClaim,
    /// The generic `InvalidIdentityToken`.
    InvalidToken,
    /// A 2 MiB answer, as from a proxy serving something else entirely.
    HugeBody,
    /// STS's clock is ahead of the node's: the token has expired for STS.
    ExpiredToken,
    /// Hold each call until a second one is in flight (or 10 s pass, then
    /// answer 500): proves two calls were made concurrently, not in turn.
    Rendezvous,
    /// Holds each call until [`FakeAws::release`].
    Hold,
    /// An endpoint that echoes the request it got, token and all, in its
    /// error message.
    Echo,
    /// A 200 whose XML names no assumed role.
    NoAssumedRole,
    /// An error whose message quotes the token cut 5 characters short, as
    /// a peer that truncates what it echoes would.
    EchoTokenCut,
    /// The normal answer, but with credentials that expire this many
    /// seconds from now (negative: already past), as an endpoint that
    /// replays an old answer would give.
    ExpiresIn(i64),
}

#[derive(Default)]
struct State {
    providers: Vec<(String, String, Vec<String>)>, // account, issuer without scheme, client ids
    roles: HashMap<String, Vec<Trust>>,
    keys: HashMap<String, String>, // access key id -> principal ARN
    /// Keys whose requests are verified: access key id -> secret and token.
    sessions: HashMap<String, Credentials>,
    /// Roles whose trust policy admits `pods.eks.amazonaws.com`.
    trust_pods: Vec<String>,
    queued: VecDeque<Fault>,
    always: Option<Fault>,
    /// A fault for the default chain's calls alone (not irsa-doctor's own).
    chain_fault: Option<Fault>,
    next_key: u64,
    assume_calls: u64,
    /// Calls asking for 900 s sessions: irsa-doctor's own (the default
    /// chain's web identity provider asks for the SDK default).
    short_session_calls: u64,
    caller_identity_calls: u64,
    session_names: Vec<String>,
    in_flight: Option<tokio::sync::watch::Sender<u64>>,
    released: Option<tokio::sync::watch::Sender<bool>>,
    signature_mismatch: bool,
    /// IAM's policy simulator: policies, faults, calls.
    iam: iam::IamState,
    /// Who each role admits for `sts:AssumeRole` (profile chains).
    role_trust: assume_role::RoleTrust,
    assume_role_calls: u64,
    assume_role_throttled: bool,
}

#[derive(Clone)]
pub struct FakeAws {
    state: Arc<Mutex<State>>,
}

pub struct FakeAwsServer {
    pub aws: FakeAws,
    pub server: Server,
}

impl FakeAwsServer {
    pub fn url(&self) -> String {
        self.server.url()
    }
}

pub fn strip_scheme(issuer: &str) -> String {
    issuer
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_owned()
}

impl FakeAws {
    /// An account with the cluster's OIDC provider and the role for
    /// `payments/app`: a healthy IRSA setup.
    pub async fn healthy() -> FakeAwsServer {
        let aws = FakeAws::empty();
        aws.add_provider(ACCOUNT, ISSUER, &[STS_AUDIENCE]);
        aws.add_role(ROLE_ARN, Trust::for_sa(NAMESPACE, SERVICE_ACCOUNT));
        aws.start().await
    }

    /// [`FakeAws::healthy`], for tokens from `issuer` (the OIDC issuer
    /// stand-in's URL) instead of the EKS-like one.
    pub async fn healthy_for_issuer(issuer: &str) -> FakeAwsServer {
        let aws = FakeAws::empty();
        aws.add_provider(ACCOUNT, issuer, &[STS_AUDIENCE]);
        aws.add_role(
            ROLE_ARN,
            Trust {
                issuer: strip_scheme(issuer),
                ..Trust::for_sa(NAMESPACE, SERVICE_ACCOUNT)
            },
        );
        aws.start().await
    }

    pub fn empty() -> Self {
        FakeAws {
            state: Arc::new(Mutex::new(State::default())),
        }
    }

    pub async fn start(self) -> FakeAwsServer {
        let server = serve(self.handler()).await;
        FakeAwsServer { aws: self, server }
    }

    /// Serves over HTTPS with `acceptor`'s certificate.
    pub async fn start_tls(self, acceptor: tokio_rustls::TlsAcceptor) -> FakeAwsServer {
        let server = serve_tls(self.handler(), acceptor).await;
        FakeAwsServer { aws: self, server }
    }

    fn handler(&self) -> Handler {
        let aws = self.clone();
        Arc::new(move |req| {
            let aws = aws.clone();
            Box::pin(async move { aws.handle(req).await })
        })
    }

    pub fn add_provider(&self, account: &str, issuer: &str, client_ids: &[&str]) {
        self.state.lock().unwrap().providers.push((
            account.into(),
            strip_scheme(issuer),
            client_ids.iter().map(|s| s.to_string()).collect(),
        ));
    }

    pub fn remove_providers(&self) {
        self.state.lock().unwrap().providers.clear();
    }

    pub fn add_role(&self, arn: &str, trust: Trust) {
        self.state
            .lock()
            .unwrap()
            .roles
            .insert(arn.into(), vec![trust]);
    }

    pub fn set_trust(&self, arn: &str, trust: Trust) {
        self.add_role(arn, trust);
    }

    /// Registers static keys for GetCallerIdentity.
    pub fn add_key(&self, access_key_id: &str, principal_arn: &str) {
        self.state
            .lock()
            .unwrap()
            .keys
            .insert(access_key_id.into(), principal_arn.into());
    }

    /// The role's trust policy also admits EKS Pod Identity: the principal
    /// `pods.eks.amazonaws.com` with `sts:AssumeRole` and `sts:TagSession`.
    /// Roles need not exist otherwise (an association may name any role).
    pub fn trust_pod_identity(&self, role_arn: &str) {
        self.state.lock().unwrap().trust_pods.push(role_arn.into());
    }

    /// Whether [`FakeAws::trust_pod_identity`] was called for the role.
    pub fn trusts_pod_identity(&self, role_arn: &str) -> bool {
        self.state
            .lock()
            .unwrap()
            .trust_pods
            .iter()
            .any(|r| r == role_arn)
    }

    /// Whether `role_arn` trusts sessions of `principal_role` (`Principal`
    /// `AWS`), as [`FakeAws::trust_role`] set it: a Pod Identity target role
    /// trusting the association's role, whatever external id it asks for.
    pub fn trusts_role(&self, role_arn: &str, principal_role: &str) -> bool {
        let s = self.state.lock().unwrap();
        s.role_trust
            .get(role_arn)
            .is_some_and(|admitted| admitted.iter().any(|(p, _)| p == principal_role))
    }

    /// A session of `role_arn` named `session_name`, valid for 6 hours, as
    /// EKS Auth mints one for a pod; trust is not checked here. The
    /// credentials name
    /// `arn:aws:sts::<account>:assumed-role/<role name>/<session_name>` in
    /// GetCallerIdentity, which checks their token and signature.
    pub fn mint_session(&self, role_arn: &str, session_name: &str) -> Credentials {
        let account = role_arn.split(':').nth(4).unwrap_or_default();
        let name = role_arn.rsplit('/').next().unwrap_or_default();
        let assumed = format!("arn:aws:sts::{account}:assumed-role/{name}/{session_name}");
        let key = self.issue_key(&assumed);
        let creds = Credentials {
            secret_access_key: format!("{SECRET_PREFIX}{key}"),
            session_token: format!("{SESSION_TOKEN_PREFIX}{key}"),
            expiration: now() + 6 * 3600,
            access_key_id: key,
        };
        self.state
            .lock()
            .unwrap()
            .sessions
            .insert(creds.access_key_id.clone(), creds.clone());
        creds
    }

    /// irsa-doctor's own next `n` AssumeRoleWithWebIdentity calls get
    /// `fault`; the default chain's calls are not counted or faulted, so
    /// retry tests stay deterministic.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let mut s = self.state.lock().unwrap();
        for _ in 0..n {
            s.queued.push_back(fault.clone());
        }
    }

    /// Every AssumeRoleWithWebIdentity call gets `fault`.
    pub fn always(&self, fault: Fault) {
        self.state.lock().unwrap().always = Some(fault);
    }

    /// Every AssumeRoleWithWebIdentity call is answered normally again.
    pub fn clear_always(&self) {
        self.state.lock().unwrap().always = None;
    }

    /// Every AssumeRoleWithWebIdentity call of the default chain's (one not
    /// asking for irsa-doctor's 900 s session) gets `fault`, until
    /// [`FakeAws::clear_chain_fault`]; irsa-doctor's own calls are answered
    /// as before.
    pub fn fail_chain(&self, fault: Fault) {
        self.state.lock().unwrap().chain_fault = Some(fault);
    }

    pub fn clear_chain_fault(&self) {
        self.state.lock().unwrap().chain_fault = None;
    }

    /// AssumeRoleWithWebIdentity calls the default chain made: all of them
    /// but irsa-doctor's own.
    pub fn chain_assume_calls(&self) -> u64 {
        let s = self.state.lock().unwrap();
        s.assume_calls - s.short_session_calls
    }

    /// Lets calls held by [`Fault::Hold`] go on, answered normally.
    pub fn release(&self) {
        let mut s = self.state.lock().unwrap();
        s.always = None;
        s.released
            .get_or_insert_with(|| tokio::sync::watch::channel(false).0)
            .send_replace(true);
    }

    /// GetCallerIdentity answers SignatureDoesNotMatch, quoting the
    /// canonical request with the session token, as AWS does.
    pub fn fail_signatures(&self) {
        self.state.lock().unwrap().signature_mismatch = true;
    }

    pub fn assume_calls(&self) -> u64 {
        self.state.lock().unwrap().assume_calls
    }

    /// AssumeRoleWithWebIdentity calls irsa-doctor itself made.
    pub fn our_assume_calls(&self) -> u64 {
        self.state.lock().unwrap().short_session_calls
    }

    pub fn caller_identity_calls(&self) -> u64 {
        self.state.lock().unwrap().caller_identity_calls
    }

    pub fn session_names(&self) -> Vec<String> {
        self.state.lock().unwrap().session_names.clone()
    }

    async fn handle(&self, req: Req) -> Resp {
        let form: HashMap<String, String> =
            form_urlencoded::parse(&req.body).into_owned().collect();
        match form.get("Action").map(String::as_str) {
            Some("AssumeRoleWithWebIdentity") => {
                let fault = {
                    let mut s = self.state.lock().unwrap();
                    s.assume_calls += 1;
                    let ours = form.get("DurationSeconds").map(String::as_str) == Some("900");
                    let queued = if ours {
                        s.short_session_calls += 1;
                        s.queued.pop_front()
                    } else {
                        s.chain_fault.clone()
                    };
                    queued.or_else(|| s.always.clone())
                };
                if let Some(Fault::Delay(d)) = fault {
                    tokio::time::sleep(d).await;
                    return self.assume(&form);
                }
                if let Some(Fault::ExpiresIn(secs)) = fault {
                    return self.assume_lasting(&form, secs);
                }
                if let Some(Fault::Rendezvous) = fault {
                    return self.rendezvous(&form).await;
                }
                if let Some(Fault::Hold) = fault {
                    let mut rx = self
                        .state
                        .lock()
                        .unwrap()
                        .released
                        .get_or_insert_with(|| tokio::sync::watch::channel(false).0)
                        .subscribe();
                    let _ =
                        tokio::time::timeout(Duration::from_secs(60), rx.wait_for(|r| *r)).await;
                    return self.assume(&form);
                }
                if let Some(Fault::EchoTokenCut) = fault {
                    let token = form.get("WebIdentityToken").cloned().unwrap_or_default();
                    let cut = &token[..token.len().saturating_sub(5)];
                    return error(400, "InvalidIdentityToken", &format!("bad token {cut}"));
                }
                if let Some(Fault::Echo) = fault {
                    return error(
                        400,
                        "InvalidParameterValue",
                        &format!(
                            "cannot handle the request {}",
                            String::from_utf8_lossy(&req.body)
                        ),
                    );
                }
                match fault {
                    Some(f) => fault_response(&f),
                    None => self.assume(&form),
                }
            }
            Some("GetCallerIdentity") => self.caller_identity(&req),
            Some("AssumeRole") => self.assume_role(&req, &form),
            Some("SimulatePrincipalPolicy") => self.simulate(&req, &form),
            Some("SimulateCustomPolicy") => self.simulate_custom(&req, &form),
            _ => error(400, "InvalidAction", "Could not find operation"),
        }
    }

    async fn rendezvous(&self, form: &HashMap<String, String>) -> Resp {
        let mut rx = {
            let mut s = self.state.lock().unwrap();
            let tx = s
                .in_flight
                .get_or_insert_with(|| tokio::sync::watch::channel(0).0);
            tx.send_modify(|n| *n += 1);
            tx.subscribe()
        };
        let met = tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|n| *n >= 2)).await;
        match met {
            Ok(Ok(_)) => self.assume(form),
            _ => error(
                500,
                "InternalFailure",
                "rendezvous: no concurrent call arrived",
            ),
        }
    }

    fn assume(&self, form: &HashMap<String, String>) -> Resp {
        self.assume_lasting(form, 900)
    }

    /// The answer to AssumeRoleWithWebIdentity, with credentials that
    /// expire `lifetime` seconds from now.
    fn assume_lasting(&self, form: &HashMap<String, String>, lifetime: i64) -> Resp {
        let get = |k: &str| form.get(k).cloned().unwrap_or_default();
        let (role_arn, session, token) = (
            get("RoleArn"),
            get("RoleSessionName"),
            get("WebIdentityToken"),
        );
        let session_ok = (2..=64).contains(&session.len())
            && session
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
        if !session_ok {
            return error(400, "ValidationError", &format!("1 validation error detected: Value '{session}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"));
        }
        let Some(account) = role_arn
            .strip_prefix("arn:aws:iam::")
            .and_then(|r| r.get(..12))
            .map(str::to_owned)
        else {
            return error(400, "ValidationError", "Request ARN is invalid");
        };
        let Some(claims) = token
            .split('.')
            .nth(1)
            .and_then(|p| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p)
                    .ok()
            })
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        else {
            return error(
                400,
                "InvalidIdentityToken",
                "The web identity token provided could not be validated",
            );
        };
        let iss = claims["iss"].as_str().unwrap_or("").to_owned();
        let sub = claims["sub"].as_str().unwrap_or("").to_owned();
        let aud: Vec<String> = match &claims["aud"] {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => vec![],
        };
        let now = now();
        if let Some(exp) = claims["exp"].as_i64() {
            if exp <= now {
                return error(400, "ExpiredTokenException", &format!("Token expired: current date/time {now} must be before the expiration date/time{exp}"));
            }
        }
        let s = self.state.lock().unwrap();
        let issuer = strip_scheme(&iss);
        let Some((_, _, client_ids)) = s
            .providers
            .iter()
            .find(|(a, i, _)| *a == account && *i == issuer)
        else {
            return error(
                400,
                "InvalidIdentityToken",
                &format!("No OpenIDConnect provider found in your account for {iss}"),
            );
        };
        if aud.is_empty() {
            return error(400, "InvalidIdentityToken", "Missing a required claim: aud");
        }
        if !aud.iter().any(|a| client_ids.contains(a)) {
            return error(400, "InvalidIdentityToken", "Incorrect token audience");
        }
        let admitted = s
            .roles
            .get(&role_arn)
            .is_some_and(|trusts| trusts.iter().any(|t| t.admits(&issuer, &sub, &aud)));
        if !admitted {
            return error(
                403,
                "AccessDenied",
                "Not authorized to perform sts:AssumeRoleWithWebIdentity",
            );
        }
        drop(s);
        let name = role_arn.rsplit('/').next().unwrap_or_default();
        let assumed = format!("arn:aws:sts::{account}:assumed-role/{name}/{session}");
        let key = self.issue_key(&assumed);
        self.state
            .lock()
            .unwrap()
            .session_names
            .push(session.clone());
        let expiration = rfc3339(now + lifetime);
        let body = format!(
            r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>{sub}</SubjectFromWebIdentityToken>
    <Audience>{aud}</Audience>
    <AssumedRoleUser>
      <Arn>{assumed}</Arn>
      <AssumedRoleId>AROAEXAMPLEROLEID:{session}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>{SESSION_TOKEN_PREFIX}{key}</SessionToken>
      <SecretAccessKey>{SECRET_PREFIX}{key}</SecretAccessKey>
      <Expiration>{expiration}</Expiration>
      <AccessKeyId>{key}</AccessKeyId>
    </Credentials>
    <Provider>arn:aws:iam::{account}:oidc-provider/{issuer}</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>req-assume-0001</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"#,
            aud = aud[0],
        );
        let mut resp = response(200, "text/xml", body);
        resp.headers_mut()
            .insert("x-amzn-requestid", "req-assume-0001".parse().unwrap());
        resp
    }

    fn issue_key(&self, principal: &str) -> String {
        let mut s = self.state.lock().unwrap();
        s.next_key += 1;
        let key = format!("ASIASTANDIN{:09}", s.next_key);
        s.keys.insert(key.clone(), principal.to_owned());
        key
    }

    fn caller_identity(&self, req: &Req) -> Resp {
        let mut s = self.state.lock().unwrap();
        s.caller_identity_calls += 1;
        if s.signature_mismatch {
            let token = req
                .headers
                .get("x-amz-security-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            return error(
                403,
                "SignatureDoesNotMatch",
                &format!(
                    "The request signature we calculated does not match the signature you provided.\n\nThe Canonical String for this request should have been\n'POST\n/\n\nhost:sts.us-east-1.amazonaws.com\nx-amz-security-token:{token}\n'"
                ),
            );
        }
        let key = sigv4::access_key_id(req).unwrap_or("");
        let invalid = || {
            error(
                403,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            )
        };
        let Some(arn) = s.keys.get(key).cloned() else {
            return invalid();
        };
        if let Some(session) = s.sessions.get(key) {
            let token = req.headers.get("x-amz-security-token");
            if token.is_none_or(|t| t.as_bytes() != session.session_token.as_bytes()) {
                return invalid();
            }
            if !sigv4::verify(req, &session.secret_access_key) {
                return error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.");
            }
        }
        let account = arn.split(':').nth(4).unwrap_or("").to_owned();
        response(
            200,
            "text/xml",
            format!(
                r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult><Arn>{arn}</Arn><UserId>AIDAEXAMPLE</UserId><Account>{account}</Account></GetCallerIdentityResult>
  <ResponseMetadata><RequestId>req-gci-0001</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>"#
            ),
        )
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn error(status: u16, code: &str, message: &str) -> Resp {
    let body = format!(
        r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>{code}</Code>
    <Message>{}</Message>
  </Error>
  <RequestId>req-error-0001</RequestId>
</ErrorResponse>"#,
        xml_escape(message)
    );
    let mut resp = response(status, "text/xml", body);
    resp.headers_mut()
        .insert("x-amzn-requestid", "req-error-0001".parse().unwrap());
    resp
}

fn fault_response(fault: &Fault) -> Resp {
    match fault {
        Fault::Throttle => error(400, "Throttling", "Rate exceeded"),
        Fault::ServerError => error(500, "InternalFailure", "An internal error occurred"),
        Fault::Garbage => response(200, "text/plain", "this is not xml at all {"),
        Fault::HtmlError => response(502, "text/html", "<html><body>Bad Gateway</body></html>"),
        Fault::IdpCommunication => error(400, "IDPCommunicationError", "The identity provider could not be reached."),
        Fault::VerificationKey => error(400, "InvalidIdentityToken", "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements"),
        Fault::AccessDenied => error(403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity"),
        Fault::RegionDisabled => error(403, "RegionDisabledException", "STS is not activated in this region for account:111122223333. Your account administrator can activate STS in this region using the IAM Console."),
        Fault::Thumbprint => error(400, "InvalidIdentityToken", "OpenIDConnect provider's HTTPS certificate doesn't match configured thumbprint"),
        Fault::IdpRejectedClaim => error(403, "IDPRejectedClaim", "The claim in the token was rejected by the identity provider."),
        Fault::InvalidToken => error(400, "InvalidIdentityToken", "The web identity token provided could not be validated"),
        Fault::HugeBody => response(200, "text/xml", vec![b'x'; 2 * 1024 * 1024]),
        Fault::ExpiredToken => error(400, "ExpiredTokenException", &format!("Token expired: current date/time {} must be before the expiration date/time{}", now() + 90_000, now() + 86_400)),
        Fault::NoAssumedRole => response(
            200,
            "text/xml",
            r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Audience>sts.amazonaws.com</Audience>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>req-odd-0001</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"#,
        ),
        Fault::Delay(_)
        | Fault::Rendezvous
        | Fault::Hold
        | Fault::Echo
        | Fault::EchoTokenCut
        | Fault::ExpiresIn(_) => {
            unreachable!("handled by the caller")
        }
    }
}
