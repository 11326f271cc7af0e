//! One verification, as a pipeline of named steps, each returning its
//! findings into one report:
//!
//! 1. [`environment`]: the endpoint, region and file settings, judged
//!    before anything is sent;
//! 2. [`mechanism::choose`]: how this pod gets credentials (IRSA's web
//!    identity, EKS Pod Identity, or nothing);
//! 3. the mechanism's own steps ([`irsa::verify`]: role ARN, token, STS,
//!    with the default chain resolved beside them; [`pod_identity::verify`]:
//!    the agent's URI, the token, the agent, `GetCallerIdentity`, then the
//!    default chain); with `--verify-issuer`, [`issuer::beside`] runs the issuer step beside
//!    them once the token is read;
//! 4. [`expected_role`]: whether the pod acts as the role it should;
//! 5. [`app_view`]: what an AWS SDK in this container would do;
//! 6. [`permissions::verify`]: with `--require`, what IAM's policy
//!    simulator says the role may do.
//!
//! Invariant: the steps decide which findings apply; what a finding says
//! lives in `findings`, and what the verdict is, in `report`. Only `sts`
//! talks to AWS; the deadline and retries live in `retry`.

mod irsa;
mod issuer;
mod mechanism;
mod permissions;
mod pod_identity;
mod retry;
mod trust;

use std::time::{Duration, Instant, SystemTime};

use crate::arn::{AssumedRoleArn, Requirement, RoleArn};
use crate::env::AwsEnv;
use crate::findings::chain::ChainResult;
use crate::findings::{chain, env as env_findings, role as role_findings};
use crate::report::{
    ChainReport, Code, Finding, MechanismName, Report, SeenFrom, StsReport, Verdict,
};
use crate::sts::{ChainOutcome, ChainSource, Sts};
use crate::token::RawToken;

pub use issuer::IssuerCheck;
use mechanism::Mechanism;
pub use permissions::PermissionsMemo;
pub use retry::deadline;

/// What one check needs besides the environment and STS.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    pub expected_role_arn: Option<RoleArn>,
    /// The audience given with `--audience`: checked in the token before
    /// STS is asked. `None` leaves the audience to STS, as the app does.
    pub audience: Option<String>,
    pub session_name: String,
    pub namespace: Option<String>,
    pub service_account: Option<String>,
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
    assumed_arn: String,
    /// When the chain was last resolved.
    resolved_at: SystemTime,
}

impl ChainMemo {
    /// Whether this check's own call says what it said when the chain was
    /// resolved.
    fn holds_for(&self, outcome: &retry::AssumeOutcome) -> bool {
        matches!(&outcome.result, Ok(assumed) if assumed.arn == self.assumed_arn)
    }
}

/// One check's inputs, handed to every step.
struct Run<'a> {
    cfg: &'a CheckConfig,
    env: &'a AwsEnv,
    sts: &'a Sts,
    /// The chain's outcome `serve` kept, if any (never for `check`).
    memo: Option<&'a ChainMemo>,
    /// IAM's answer to `--require` `serve` kept, if any.
    kept_permissions: Option<&'a PermissionsMemo>,
    /// The wall clock, for token expiry.
    now: SystemTime,
    /// When the command started: `--timeout` also covers loading the AWS
    /// configuration.
    started: Instant,
    deadline: Instant,
}

/// What the environment step allows the later steps to send.
#[derive(Debug, Clone, Copy)]
struct Sending {
    /// Nothing at all is sent: a setting the SDK would use to reach STS is
    /// unusable, and an SDK handed it logs and retries requests it could
    /// not send.
    offline: bool,
    /// The default chain is not resolved: it is offline, or would read a
    /// file we judged unusable.
    no_chain: bool,
}

/// What the mechanism's steps found out, for the steps after them.
struct Acting {
    /// The role the pod asked for, when it parsed.
    role: Option<RoleArn>,
    /// Who STS says the pod is, when it said so.
    assumed_arn: Option<String>,
    /// What the default chain would do.
    chain: ChainResult,
    /// What `serve` may keep of the chain's outcome for later checks.
    memo: Option<ChainMemo>,
    /// The chain's outcome was not resolved in this check but kept from
    /// an earlier one.
    reused: bool,
    /// The credentials irsa-doctor got as the pod (IRSA's session, the
    /// agent's answer), kept only with `--require`, for its signed call;
    /// dropped with the check.
    credentials: Option<aws_credential_types::Credentials>,
}

/// Runs one check. `now` is the wall clock used for token expiry;
/// `started` is when the command started, so that `--timeout` also covers
/// loading the AWS configuration. The default chain is always resolved.
pub async fn check(
    cfg: &CheckConfig,
    env: &AwsEnv,
    sts: &Sts,
    now: SystemTime,
    started: Instant,
) -> Report {
    let nothing_kept = Kept::default();
    let run = Run::new(cfg, env, sts, now, started, &nothing_kept);
    run_steps(&run).await.0
}

/// [`check`], showing what `kept` holds again where it still stands (see
/// [`ChainMemo`] and [`PermissionsMemo`]) instead of asking anew; `kept` is
/// left with what the next check may reuse.
pub async fn check_reusing(
    cfg: &CheckConfig,
    env: &AwsEnv,
    sts: &Sts,
    now: SystemTime,
    started: Instant,
    kept: &mut Kept,
) -> Report {
    let run = Run::new(cfg, env, sts, now, started, kept);
    let (report, now_kept) = run_steps(&run).await;
    *kept = now_kept;
    report
}

impl<'a> Run<'a> {
    fn new(
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

/// The steps, in order: the report, and what `serve` may keep for the
/// next check.
async fn run_steps(run: &Run<'_>) -> (Report, Kept) {
    let (cfg, env, started) = (run.cfg, run.env, run.started);
    let mut report = empty_report(cfg, env, Some(run.sts.region()));
    report.sts.ca_bundle = run.sts.ca_bundle().map(str::to_owned);
    let (findings, sending) = environment(run);
    report.findings.extend(findings);

    let mechanism = mechanism::choose(env);
    report.mechanism = mechanism.name();
    let acting = match &mechanism {
        Mechanism::None { half } => {
            let chain = resolve_chain(run, sending, ChainToken::None, None).await;
            report
                .findings
                .push(not_injected(run, &report, half, &chain));
            record_chain(&mut report, &chain, None);
            report.permissions = permissions::not_evaluated(cfg);
            return (finish(report, started), Kept::default());
        }
        Mechanism::WebIdentity(irsa) => {
            if let Some(uri) = &irsa.pod_identity_too {
                report
                    .findings
                    .push(crate::findings::pod_identity::unused(uri));
            }
            irsa::verify(run, sending, irsa, &mut report).await
        }
        Mechanism::PodIdentity(pi) => pod_identity::verify(run, sending, pi, &mut report).await,
    };
    let name = mechanism.name().unwrap_or(MechanismName::Irsa);

    report.findings.extend(expected_role(
        cfg,
        env,
        acting.role.as_ref(),
        acting.assumed_arn.as_deref(),
    ));
    let findings = app_view(env, &acting, &report, name);
    report.findings.extend(findings);
    let web_identity_arn = (name == MechanismName::Irsa)
        .then_some(acting.assumed_arn.as_deref())
        .flatten();
    record_chain(&mut report, &acting.chain, web_identity_arn);
    if acting.reused {
        report.default_chain.reused_since = acting
            .memo
            .as_ref()
            .map(|m| crate::time::rfc3339(m.resolved_at));
    }
    let permissions = permissions::verify(run, &acting, &mut report).await;
    let kept = Kept {
        chain: acting.memo,
        permissions,
    };
    (finish(report, started), kept)
}

/// The token file the pod's mechanism reads: the one `serve` watches for
/// the kubelet's rotation.
pub fn watched_token_file(env: &AwsEnv) -> Option<std::path::PathBuf> {
    mechanism::choose(env).token_file().cloned()
}

/// Step 1: the settings, judged before anything is sent. When the STS
/// endpoint cannot be built, nothing is sent at all.
fn environment(run: &Run<'_>) -> (Vec<Finding>, Sending) {
    let (env, sts) = (run.env, run.sts);
    let mut findings = Vec::new();
    if sts.region_missing() {
        findings.push(env_findings::region_missing(&sts.region()));
    }
    findings.extend(env.settings.findings.iter().cloned());
    findings.extend(sts.file_findings().iter().cloned());
    // A region from the shared config file, which the variables' judge
    // could not see.
    let profile_region_bad = !findings.iter().any(|f| f.code == Code::RegionInvalid)
        && !crate::endpoint::is_valid_region(&sts.region());
    if profile_region_bad {
        findings.push(crate::endpoint::profile_region_invalid(&sts.region()));
    }
    let offline = env.settings.stop_sending
        || sts.stop_sending()
        || (profile_region_bad && !env.settings.custom_sts_endpoint);
    let sending = Sending {
        offline,
        no_chain: offline || sts.skip_chain(),
    };
    (findings, sending)
}

/// `ENV_NOT_INJECTED`, naming who the pod is instead.
fn not_injected(
    run: &Run<'_>,
    report: &Report,
    half: &[env_findings::Half],
    chain: &ChainResult,
) -> Finding {
    env_findings::env_not_injected(
        &env_findings::NotInjected {
            half,
            namespace: run.cfg.namespace.as_deref(),
            service_account: run.cfg.service_account.as_deref(),
            expected_role: report.expected_role_arn.as_deref(),
        },
        chain,
    )
}

/// Step 4: is it the expected role? Compared on what STS assumed, or,
/// when STS refused, on the role the webhook injected: a refusal of the
/// wrong role is first of all the wrong role.
fn expected_role(
    cfg: &CheckConfig,
    env: &AwsEnv,
    role: Option<&RoleArn>,
    assumed_arn: Option<&str>,
) -> Option<Finding> {
    let expected = cfg.expected_role_arn.as_ref().or(role)?;
    let found = match (assumed_arn, role) {
        (Some(arn), _) => AssumedRoleArn::parse(arn)
            .is_none_or(|a| !expected.matches(&a))
            .then(|| format!("this pod acts as {arn}")),
        (None, Some(role)) => {
            (!expected.same_role(role)).then(|| format!("AWS_ROLE_ARN names {role}"))
        }
        (None, None) => None,
    }?;
    let found_arn = assumed_arn
        .map(str::to_owned)
        .unwrap_or_else(|| env.role_arn.clone().unwrap_or_default());
    Some(role_findings::role_mismatch(expected, &found, &found_arn))
}

/// Step 5: the app's view. What shadows the mechanism, whether SDKs agree
/// on the proxy, and whether the default chain lands where we did.
fn app_view(
    env: &AwsEnv,
    acting: &Acting,
    report: &Report,
    mechanism: MechanismName,
) -> Vec<Finding> {
    let mut findings = chain::shadows(env, &acting.chain, mechanism);
    if let Some(endpoint) = report.sts.endpoint.as_deref() {
        findings.extend(crate::proxy::finding(|n| env.proxy_var(n), endpoint));
    }
    findings.extend(chain::chain_mismatch(
        &acting.chain,
        mechanism,
        acting.assumed_arn.as_deref(),
        report.expected_role_arn.as_deref(),
    ));
    findings
}

/// The proxy the requests to the STS `endpoint` went through, as the AWS
/// SDK for Rust reads the proxy variables; never its credentials.
fn sts_proxy(env: &AwsEnv, endpoint: Option<&str>) -> Option<String> {
    crate::proxy::rust_proxy(|name| env.proxy_var(name), endpoint?)
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
fn subject(cfg: &CheckConfig, report: &Report) -> Option<Finding> {
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
fn credentials_expiry(
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

fn log_claims(claims: &crate::token::Claims) {
    tracing::debug!(
        iss = claims.iss.as_deref().unwrap_or(""),
        sub = claims.sub.as_deref().unwrap_or(""),
        aud = ?claims.aud,
        exp = claims.exp,
        "token claims decoded"
    );
}

/// The token the default chain would read, as far as the token step let it.
enum ChainToken<'a> {
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
async fn resolve_chain(
    run: &Run<'_>,
    sending: Sending,
    token: ChainToken<'_>,
    known: Option<&crate::sts::Known>,
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

/// A report with no findings yet.
fn empty_report(cfg: &CheckConfig, env: &AwsEnv, region: Option<String>) -> Report {
    Report {
        verdict: Verdict::Pass,
        seen_from: cfg.seen_from,
        mechanism: None,
        findings: vec![],
        role_arn: env.role_arn.clone(),
        expected_role_arn: cfg
            .expected_role_arn
            .as_ref()
            .map(ToString::to_string)
            .or_else(|| env.role_arn.clone()),
        assumed_role_arn: None,
        token: None,
        issuer: None,
        agent: None,
        sts: StsReport {
            region,
            session_name: Some(cfg.session_name.clone()),
            ..StsReport::default()
        },
        default_chain: ChainReport::default(),
        permissions: None,
        duration_ms: 0,
        version: env!("CARGO_PKG_VERSION"),
    }
}

/// The report for a check that did not finish by its deadline.
pub fn timed_out(cfg: &CheckConfig, env: &AwsEnv, started: Instant) -> Report {
    let mut report = empty_report(cfg, env, None);
    report
        .findings
        .push(crate::findings::sts::check_timeout(cfg.timeout));
    finish(report, started)
}

fn finish(mut report: Report, started: Instant) -> Report {
    crate::findings::seen_from(&mut report.findings, report.seen_from);
    report.verdict = Verdict::of(&report.findings);
    report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    report
}

fn record_chain(report: &mut Report, chain: &ChainResult, web_identity_arn: Option<&str>) {
    report.default_chain = match chain {
        Err(e) => ChainReport {
            error: Some(e.clone()),
            ..ChainReport::default()
        },
        Ok(ChainOutcome::NoCredentials) => ChainReport::default(),
        Ok(ChainOutcome::Failed { message, .. }) => ChainReport {
            error: Some(message.clone()),
            ..ChainReport::default()
        },
        Ok(ChainOutcome::WebIdentity) => ChainReport {
            provider: Some(ChainSource::WebIdentity.as_str().to_owned()),
            arn: web_identity_arn.map(str::to_owned),
            ..ChainReport::default()
        },
        Ok(ChainOutcome::Other { source, identity }) => ChainReport {
            provider: Some(source.as_str().to_owned()),
            arn: identity.as_ref().ok().cloned(),
            error: identity.as_ref().err().cloned(),
            ..ChainReport::default()
        },
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::sts::Issuer;

    const NOW: u64 = 1_800_000_000;

    /// The code (if any) for credentials expiring `left` seconds after
    /// `NOW` on this clock, with STS's clock `offset` seconds off ours.
    fn judged(left: i64, offset: Option<i64>, window: i64) -> Option<Code> {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW);
        let expiry = if left < 0 {
            now - Duration::from_secs(left.unsigned_abs())
        } else {
            now + Duration::from_secs(left.unsigned_abs())
        };
        credentials_expiry(Issuer::Agent("u"), expiry, now, offset, window).map(|f| f.code)
    }

    #[test]
    fn expired_expiring_and_fresh_credentials() {
        assert_eq!(judged(-1, None, 900), Some(Code::CredentialsExpired));
        assert_eq!(judged(0, Some(0), 900), Some(Code::CredentialsExpired));
        assert_eq!(judged(300, None, 900), Some(Code::CredentialsExpiring));
        assert_eq!(judged(899, Some(30), 900), Some(Code::CredentialsExpiring));
        assert_eq!(judged(900, None, 900), None);
        assert_eq!(judged(700, None, 600), None);
    }

    /// Past CLOCK_SKEW's tolerance the expiry is judged by STS's clock:
    /// a clock 20 minutes ahead (offset -1200) does not make a fresh
    /// 15-minute session expired, and one 20 minutes behind does not
    /// hide an expired one.
    #[test]
    fn a_skewed_clock_judges_by_sts_s_clock() {
        assert_eq!(judged(-300, Some(-1200), 600), None);
        assert_eq!(judged(900, Some(1200), 600), Some(Code::CredentialsExpired));
        // Within the tolerance, this container's clock, as the app's SDK.
        assert_eq!(judged(-10, Some(-300), 600), Some(Code::CredentialsExpired));
    }

    #[test]
    fn a_defaulted_expiry_is_no_expiry() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW);
        let expiry = SystemTime::UNIX_EPOCH;
        assert!(credentials_expiry(Issuer::Sts(None), expiry, now, None, 600).is_none());
    }
}
