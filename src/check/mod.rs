//! One verification, as a pipeline of named steps, each returning its
//! findings into one report:
//!
//! 1. [`environment`]: the endpoint, region and file settings, judged
//!    before anything is sent, and [`endpoints::record`], the switches
//!    that chose the STS endpoint;
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
//! What the steps share (the run's inputs, what they may send, what the
//! mechanism found out, the token as read) lives beside them in `run.rs`,
//! so that a step never calls back into this file.
//!
//! Invariant: the steps decide which findings apply; what a finding says
//! lives in `findings`, and what the verdict is, in `report`. Only
//! `peers/` talks to AWS; the deadline and retries live in `retry`.

mod endpoints;
mod irsa;
mod issuer;
mod mechanism;
mod permissions;
mod pod_identity;
mod profile_chain;
mod retry;
mod run;
mod trust;

use std::time::{Instant, SystemTime};

use crate::findings::chain::ChainResult;
use crate::findings::{chain, env as env_findings, role as role_findings};
use crate::identity::arn::{AssumedRoleArn, RoleArn};
use crate::peers::sts::{ChainOutcome, ChainSource, Sts};
use crate::report::{ChainReport, Code, Finding, MechanismName, Report, StsReport, Verdict};
use crate::settings::env::AwsEnv;

pub use issuer::IssuerCheck;
use mechanism::Mechanism;
pub use retry::deadline;
use run::{resolve_chain, Acting, ChainToken, Run, Sending};
pub use run::{CheckConfig, Kept};

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
/// [`run::ChainMemo`] and [`permissions::PermissionsMemo`]) instead of asking anew; `kept` is
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

/// The steps, in order: the environment, the mechanism's own steps (the
/// token among them), the expected role and the app's view, the
/// permissions, the verdict. Returns the report, and what `serve` may keep
/// for the next check.
async fn run_steps(run: &Run<'_>) -> (Report, Kept) {
    let (cfg, env, started) = (run.cfg, run.env, run.started);
    let mut report = empty_report(cfg, env, Some(run.sts.region()));
    report.sts.ca_bundle = run.sts.ca_bundle().map(str::to_owned);
    let (findings, mut sending) = environment(run);
    report.findings.extend(findings);
    endpoints::record(run, &mut sending, &mut report).await;
    let mechanism = mechanism::choose(env);
    report.mechanism = mechanism.name();
    let Some(mut acting) = mechanism_steps(run, sending, &mechanism, &mut report).await else {
        return (finish(report, started), Kept::default());
    };
    let name = mechanism.name().unwrap_or(MechanismName::Irsa);
    if name == MechanismName::Irsa {
        profile_chain::verify(run, sending, &mut acting, &mut report).await;
    }
    // With a profile's role chain, `acting.role` is the role it names
    // last, not AWS_ROLE_ARN.
    let named_by = match &report.profile_chain {
        Some(chain) => Named::Chain(&chain.profile),
        None => Named::Env(env),
    };
    report.findings.extend(expected_role(
        cfg,
        named_by,
        name,
        acting.role.as_ref(),
        acting.assumed_arn.as_deref(),
    ));
    record_app_view(run, &acting, name, &mut report);
    let permissions = permissions::verify(run, &acting, &mut report).await;
    let kept = Kept {
        chain: acting.memo,
        permissions,
    };
    (finish(report, started), kept)
}

/// The mechanism's own steps, which end in who the pod acts as; `None`
/// when no mechanism is configured, after the finding that says which
/// half is missing and what the default chain lands on instead.
async fn mechanism_steps(
    run: &Run<'_>,
    sending: Sending,
    mechanism: &Mechanism,
    report: &mut Report,
) -> Option<Acting> {
    match mechanism {
        Mechanism::None { half } => {
            let chain = resolve_chain(run, sending, ChainToken::None, None).await;
            report
                .findings
                .push(not_injected(run, report, half, &chain));
            record_chain(report, &chain, None);
            report.permissions = permissions::not_evaluated(run.cfg);
            None
        }
        Mechanism::WebIdentity(irsa) => {
            if let Some(uri) = &irsa.pod_identity_too {
                report
                    .findings
                    .push(crate::findings::pod_identity::unused(uri));
            }
            Some(irsa::verify(run, sending, irsa, report).await)
        }
        Mechanism::PodIdentity(pi) => Some(pod_identity::verify(run, sending, pi, report).await),
    }
}

/// Step 5, the app's view: what an AWS SDK in this container would do,
/// and the default chain's section of the report.
fn record_app_view(run: &Run<'_>, acting: &Acting, name: MechanismName, report: &mut Report) {
    let findings = app_view(run.env, acting, report, name);
    report.findings.extend(findings);
    let web_identity_arn = (name == MechanismName::Irsa)
        .then_some(acting.assumed_arn.as_deref())
        .flatten();
    record_chain(report, &acting.chain, web_identity_arn);
    if acting.reused {
        report.default_chain.reused_since = acting
            .memo
            .as_ref()
            .map(|m| crate::time::rfc3339(m.resolved_at));
    }
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
        && !crate::settings::endpoint::is_valid_region(&sts.region());
    if profile_region_bad {
        findings.push(crate::settings::endpoint::profile_region_invalid(
            &sts.region(),
        ));
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

/// Who names the role the pod asked for: the webhook's `AWS_ROLE_ARN`, or
/// the profile's role chain (its last role).
#[derive(Clone, Copy)]
enum Named<'a> {
    Env(&'a AwsEnv),
    Chain(&'a str),
}

/// Step 4: is it the expected role? Compared on what STS assumed, or,
/// when STS refused, on the role the webhook injected: a refusal of the
/// wrong role is first of all the wrong role.
fn expected_role(
    cfg: &CheckConfig,
    named_by: Named<'_>,
    name: MechanismName,
    role: Option<&RoleArn>,
    assumed_arn: Option<&str>,
) -> Option<Finding> {
    let expected = cfg.expected_role_arn.as_ref().or(role)?;
    let found = match (assumed_arn, role) {
        (Some(arn), _) => AssumedRoleArn::parse(arn)
            .is_none_or(|a| !expected.matches(&a))
            .then(|| format!("this pod acts as {arn}")),
        (None, Some(role)) => (!expected.same_role(role)).then(|| match named_by {
            Named::Env(_) => format!("AWS_ROLE_ARN names {role}"),
            Named::Chain(profile) => format!("profile {profile}'s role chain ends in {role}"),
        }),
        (None, None) => None,
    }?;
    let found_arn = assumed_arn
        .map(str::to_owned)
        .unwrap_or_else(|| match named_by {
            Named::Env(env) => env.role_arn.clone().unwrap_or_default(),
            Named::Chain(_) => role.map(ToString::to_string).unwrap_or_default(),
        });
    if name == MechanismName::PodIdentity {
        let association = cfg.association_role_arn.as_ref();
        return Some(role_findings::role_mismatch_pod_identity(
            expected,
            &found,
            &found_arn,
            association,
        ));
    }
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
    // A profile's role chain the default chain follows to the role it
    // names, or fails on where irsa-doctor's own walk failed or could not
    // go (its finding says why), is the app using the chain as set up:
    // judged as web identity reached.
    let stand_in = Ok(ChainOutcome::WebIdentity);
    let chain = match &acting.profile_chain {
        Some(seen) if profile_chain_agrees(seen, &acting.chain) => &stand_in,
        _ => &acting.chain,
    };
    let mut findings = chain::shadows(env, chain, mechanism);
    // A role chain rooted at a profile's static keys is not IRSA, whether
    // or not the default chain got through it: the app signs with those
    // keys (and gets nothing when a hop is refused), never with the token.
    let static_root = report
        .profile_chain
        .as_ref()
        .is_some_and(|c| c.root == "static_keys");
    let landed_on_profile = matches!(
        chain,
        Ok(ChainOutcome::Other {
            source: ChainSource::Profile,
            ..
        })
    );
    if static_root && !landed_on_profile {
        findings.push(chain::profile_shadow(env.profile.as_deref(), mechanism));
    }
    if let Some(endpoint) = report.sts.endpoint.as_deref() {
        findings.extend(crate::settings::proxy::finding(
            |n| env.proxy_var(n),
            endpoint,
        ));
    }
    findings.extend(chain::chain_mismatch(
        chain,
        mechanism,
        acting.assumed_arn.as_deref(),
        report.expected_role_arn.as_deref(),
    ));
    findings
}

/// Whether the default chain did what the profile's role chain says: it
/// landed on the chain's last role, or it failed where irsa-doctor's own
/// walk of the chain failed or could not go.
fn profile_chain_agrees(seen: &run::ProfileChainSeen, outcome: &ChainResult) -> bool {
    match outcome {
        Ok(ChainOutcome::Other {
            source: ChainSource::Profile,
            identity: Ok(arn),
        }) => AssumedRoleArn::parse(arn)
            .zip(seen.final_role())
            .is_some_and(|(assumed, role)| role.matches(&assumed)),
        Ok(ChainOutcome::Failed { .. }) => !matches!(seen, run::ProfileChainSeen::Assumed { .. }),
        _ => false,
    }
}

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
        profile_chain: None,
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
    use super::run::credentials_expiry;
    use super::*;
    use crate::findings::sts::Issuer;
    use std::time::Duration;

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
