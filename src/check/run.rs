//! What the check's steps share: one check's inputs ([`Run`]), what the
//! environment step lets them send ([`Sending`]), what the mechanism's
//! steps found out for the steps after them ([`Acting`]), the token as
//! read, the default chain's resolution, and the judgements each mechanism
//! makes the same way (the subject, the credentials' expiry, the proxy).
//!
//! It sits beside the steps so that they import it, and not the pipeline
//! (`mod.rs`) that runs them: a step never calls back into `check::check`.

use std::time::{Duration, Instant, SystemTime};

use super::issuer::IssuerCheck;
use super::permissions::PermissionsMemo;
use super::retry::{self, deadline};
use crate::findings::chain::ChainResult;
use crate::identity::arn::{Requirement, RoleArn};
use crate::identity::mechanism::SessionTags;
use crate::identity::session_policy::SessionPolicy;
use crate::identity::token::RawToken;
use crate::peers::sts::Sts;
use crate::report::{Finding, Report, SeenFrom};
use crate::settings::env::AwsEnv;

/// What one check needs besides the environment and STS.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    /// The role the pod must act as; with a Pod Identity target role, the
    /// target role.
    pub expected_role_arn: Option<RoleArn>,
    /// `--association-role-arn`: a Pod Identity association's own role,
    /// the first of two hops when the association has a target role.
    pub association_role_arn: Option<RoleArn>,
    /// `--session-tags`: whether the Pod Identity association sends its
    /// session tags.
    pub session_tags: SessionTags,
    /// The audience given with `--audience`: checked in the token before
    /// STS is asked. `None` leaves the audience to STS, as the app does.
    pub audience: Option<String>,
    pub session_name: String,
    pub namespace: Option<String>,
    pub service_account: Option<String>,
    /// `--node-name`: the node the pod runs on (Downward API
    /// `spec.nodeName`), where EKS Pod Identity may not work (Fargate).
    pub node_name: Option<String>,
    pub timeout: Duration,
    pub retry_denied_for: Duration,
    /// Whose container this is, for the findings' wording.
    pub seen_from: SeenFrom,
    /// `--trust-policy`: a copy of the role's trust policy, evaluated when
    /// STS or the agent refuses the role.
    pub trust_policy: Option<std::path::PathBuf>,
    /// `--require`: what the role must be allowed to do, asked of IAM's
    /// policy simulator once the identity is proven.
    pub require: Vec<Requirement>,
    /// `--session-policy`: the Pod Identity association's session policy,
    /// which `--require`'s entries must pass too (`SimulateCustomPolicy`).
    pub session_policy: Option<SessionPolicy>,
    /// `--verify-issuer`: the token's signature checked against what its
    /// issuer publishes, with what was fetched kept across `serve`'s
    /// checks. `None` when off.
    pub issuer: Option<IssuerCheck>,
}

/// What `serve` keeps between checks: the default chain's outcome and
/// IAM's answer to `--require`, each shown again while it stands. The
/// loop drops both when a file the chain reads changes (a token rotation
/// among them).
#[derive(Debug, Clone, Default)]
pub struct Kept {
    pub chain: Option<ChainMemo>,
    pub permissions: Option<PermissionsMemo>,
}

/// A default-chain outcome `serve` may show again instead of resolving
/// the chain anew: the chain landed on web identity, when irsa-doctor's own
/// `AssumeRoleWithWebIdentity` assumed `assumed_arn`.
///
/// It stands only while nothing the chain reads has changed (`serve` drops
/// it when the token or a profile file changes) and while irsa-doctor's own
/// call, made on every check with the same token, role and endpoint as the
/// chain's web identity provider, still assumes the same role. Any other
/// outcome (another provider, no credentials, a failure, a timeout) is
/// never kept: the chain is resolved again at the next check.
#[derive(Debug, Clone)]
pub struct ChainMemo {
    pub(super) assumed_arn: String,
    /// When the chain was last resolved.
    pub(super) resolved_at: SystemTime,
}

impl ChainMemo {
    /// Whether this check's own call says what it said when the chain was
    /// resolved.
    pub(super) fn holds_for(&self, outcome: &retry::AssumeOutcome) -> bool {
        matches!(&outcome.result, Ok(assumed) if assumed.arn == self.assumed_arn)
    }
}

/// One check's inputs, handed to every step.
pub(super) struct Run<'a> {
    pub(super) cfg: &'a CheckConfig,
    pub(super) env: &'a AwsEnv,
    pub(super) sts: &'a Sts,
    /// The chain's outcome `serve` kept, if any (never for `check`).
    pub(super) memo: Option<&'a ChainMemo>,
    /// IAM's answer to `--require` `serve` kept, if any.
    pub(super) kept_permissions: Option<&'a PermissionsMemo>,
    /// The wall clock, for token expiry.
    pub(super) now: SystemTime,
    /// When the command started: `--timeout` also covers loading the AWS
    /// configuration.
    pub(super) started: Instant,
    pub(super) deadline: Instant,
}

/// What the environment step allows the later steps to send.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sending {
    /// Nothing at all is sent: a setting the SDK would use to reach STS is
    /// unusable, and an SDK handed it logs and retries requests it could
    /// not send.
    pub(super) offline: bool,
    /// The default chain is not resolved: it is offline, or would read a
    /// file we judged unusable.
    pub(super) no_chain: bool,
}

/// What the mechanism's steps found out, for the steps after them.
pub(super) struct Acting {
    /// The role the pod asked for, when it parsed.
    pub(super) role: Option<RoleArn>,
    /// Who STS says the pod is, when it said so.
    pub(super) assumed_arn: Option<String>,
    /// What the default chain would do.
    pub(super) chain: ChainResult,
    /// What `serve` may keep of the chain's outcome for later checks.
    pub(super) memo: Option<ChainMemo>,
    /// The chain's outcome was not resolved in this check but kept from
    /// an earlier one.
    pub(super) reused: bool,
    /// The credentials irsa-doctor got as the pod (IRSA's session, the
    /// agent's answer), kept only with `--require`, for its signed call;
    /// dropped with the check.
    pub(super) credentials: Option<aws_credential_types::Credentials>,
    /// The role chain `AWS_PROFILE` selects, as far as it was followed.
    pub(super) profile_chain: Option<ProfileChainSeen>,
}

/// How far irsa-doctor followed the selected profile's role chain.
pub(super) enum ProfileChainSeen {
    /// Every hop assumed: the app acts as `arn`, a session of
    /// `final_role`.
    Assumed { final_role: RoleArn, arn: String },
    /// A hop failed; its finding says which and why.
    Broken,
    /// The chain starts where irsa-doctor cannot follow (see
    /// `PROFILE_CHAIN_UNVERIFIABLE`); it names `final_role` last.
    NotFollowed { final_role: Option<RoleArn> },
}

impl ProfileChainSeen {
    /// The role the chain ends in, when known.
    pub(super) fn final_role(&self) -> Option<&RoleArn> {
        match self {
            ProfileChainSeen::Assumed { final_role, .. } => Some(final_role),
            ProfileChainSeen::NotFollowed { final_role } => final_role.as_ref(),
            ProfileChainSeen::Broken => None,
        }
    }
}

impl<'a> Run<'a> {
    pub(super) fn new(
        cfg: &'a CheckConfig,
        env: &'a AwsEnv,
        sts: &'a Sts,
        now: SystemTime,
        started: Instant,
        kept: &'a Kept,
    ) -> Self {
        Run {
            cfg,
            env,
            sts,
            memo: kept.chain.as_ref(),
            kept_permissions: kept.permissions.as_ref(),
            now,
            started,
            deadline: deadline(started, cfg.timeout),
        }
    }
}

/// The proxy the requests to the STS `endpoint` went through, as the AWS
/// SDK for Rust reads the proxy variables; never its credentials.
pub(super) fn sts_proxy(env: &AwsEnv, endpoint: Option<&str>) -> Option<String> {
    crate::settings::proxy::rust_proxy(|name| env.proxy_var(name), endpoint?)
}

/// What reading the token gave.
pub(super) enum TokenRead {
    /// The file could not be read within our bounds.
    Unusable,
    /// Read, but not worth sending: malformed, expired, or (for Pod
    /// Identity) bytes no SDK sends in a header.
    Rejected(RawToken),
    /// Read and decoded; STS may see it.
    Sendable(RawToken),
}

impl TokenRead {
    pub(super) fn sendable(&self) -> Option<&RawToken> {
        match self {
            TokenRead::Sendable(token) => Some(token),
            _ => None,
        }
    }
}

/// The decoded claims, at debug level: never the token itself.
/// `SUBJECT_MISMATCH`, when the pod's namespace or service account is
/// known and the token names another.
pub(super) fn subject(cfg: &CheckConfig, report: &Report) -> Option<Finding> {
    let claims = &report.token.as_ref()?.claims;
    crate::findings::token::subject_mismatch(
        cfg.namespace.as_deref(),
        cfg.service_account.as_deref(),
        claims,
    )
}

/// `CREDENTIALS_EXPIRED` when credentials `issuer` handed out have
/// expired, `CREDENTIALS_EXPIRING` when they expire within `window`
/// seconds. Judged by this container's clock, as the app's SDK judges
/// them; but when that clock is off STS's by more than `CLOCK_SKEW`
/// allows (`offset`, STS's minus ours), by STS's, so that a skewed clock
/// is told once, as `CLOCK_SKEW`, and not again as credentials that only
/// look expired.
pub(super) fn credentials_expiry(
    issuer: crate::findings::sts::Issuer<'_>,
    expiry: SystemTime,
    now: SystemTime,
    offset: Option<i64>,
    window: i64,
) -> Option<Finding> {
    use crate::findings::sts::{self as words, Expiry};
    let expires = crate::time::unix_secs(expiry);
    // A defaulted expiry (a missing one reads as 1970) is no expiry at
    // all; the answer's other problems are told elsewhere.
    if expires < PLAUSIBLE_EPOCH {
        return None;
    }
    let skew = offset.filter(|o| o.abs() > words::MAX_CLOCK_SKEW_SECS);
    let reference = crate::time::unix_secs(now).saturating_add(skew.unwrap_or(0));
    let e = Expiry {
        expires,
        left: expires.saturating_sub(reference),
        by_sts_clock: skew.is_some(),
        clock_checked: offset.is_some(),
    };
    if e.left <= 0 {
        Some(words::credentials_expired(issuer, &e))
    } else if e.left < window {
        Some(words::credentials_expiring(issuer, &e, window))
    } else {
        None
    }
}

/// 2001-09-09: an expiry before this is not a real one.
const PLAUSIBLE_EPOCH: i64 = 1_000_000_000;

pub(super) fn log_claims(claims: &crate::identity::token::Claims) {
    tracing::debug!(
        iss = claims.iss.as_deref().unwrap_or(""),
        sub = claims.sub.as_deref().unwrap_or(""),
        aud = ?claims.aud,
        exp = claims.exp,
        "token claims decoded"
    );
}

/// The token the default chain would read, as far as the token step let it.
pub(super) enum ChainToken<'a> {
    /// No web identity configured.
    None,
    /// The token file cannot be used: the SDK would read it itself, without
    /// our size limit or our check for a FIFO, so the chain is not resolved.
    Unusable,
    /// The token as read, which the chain's web identity provider sends.
    Read(&'a RawToken),
}

/// Resolves the default chain within the deadline, if sending allows;
/// `known` spares asking STS again who credentials irsa-doctor already
/// named are.
pub(super) async fn resolve_chain(
    run: &Run<'_>,
    sending: Sending,
    token: ChainToken<'_>,
    known: Option<&crate::peers::sts::Known>,
) -> ChainResult {
    let token = match token {
        _ if sending.no_chain => return Err(NOT_SENT.to_owned()),
        ChainToken::Unusable => {
            return Err(
                "not resolved: the token file cannot be used (see the token step)".to_owned(),
            )
        }
        ChainToken::None => None,
        ChainToken::Read(raw) => Some(raw),
    };
    tokio::time::timeout_at(run.deadline.into(), run.sts.default_chain(token, known))
        .await
        .map_err(|_| "did not finish before the --timeout deadline".to_owned())
}

/// Why the default chain was not resolved when a setting stopped all
/// sending.
const NOT_SENT: &str = "not resolved: a setting it would use is not usable (see the environment \
                        step)";
