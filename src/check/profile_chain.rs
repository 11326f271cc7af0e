//! IRSA through a profile's role chain (the user guide's cross-account
//! pattern): `AWS_PROFILE` selects a profile with `role_arn` and
//! `source_profile`, whose chain starts at a profile with `role_arn` and
//! `web_identity_token_file`. The app runs as the chain's last role.
//!
//! The chain is followed as aws-config follows it (`settings::profile_chain`):
//! the web-identity hop as IRSA's step does it (its answer reused when the
//! profile names `AWS_ROLE_ARN` and the same token file), then each further
//! hop with `sts:AssumeRole`, signed with the previous hop's credentials,
//! retried like every STS call until the deadline. Every hop's credentials
//! are dropped when the check ends (the last one's kept for `--require`).
//! A chain irsa-doctor cannot follow (`credential_process`, SSO,
//! `credential_source`) is a warning: the app's SDK may follow it.

use aws_credential_types::Credentials;

use super::retry::{assume_named, retry, Peer, Plan};
use super::run::{Acting, ProfileChainSeen, Run, Sending};
use crate::findings::profile_chain as words;
use crate::identity::arn::RoleArn;
use crate::identity::token::read_token_file;
use crate::peers::sts::ChainOutcome;
use crate::peers::sts::{Failure, FailureKind, RoleHop};
use crate::report::{Code, Finding, HopReport, ProfileChainReport, Report, Severity};
use crate::settings::profile_chain::{Hop, Problem, ProfileChain, Root};

/// Follows the selected profile's chain, if it is one, and leaves in
/// `acting` who the app finally acts as: the last hop's session when every
/// hop was assumed, no one when a hop failed or cannot be followed.
pub(super) async fn verify(
    run: &Run<'_>,
    sending: Sending,
    acting: &mut Acting,
    report: &mut Report,
) {
    let selected = run.env.profile.as_deref().unwrap_or("default");
    report.findings.extend(default_profile(run, selected));
    // IRSA's own findings, made before the chain is followed.
    let irsa_findings = report.findings.len();
    let Some(read) = run.sts.profile_chain() else {
        return;
    };
    let chain = match read {
        Ok(chain) => chain,
        Err(problem) => return report.findings.push(words::invalid(selected, problem)),
    };
    report.findings.extend(sdk_dependent(chain));
    let declared = chain.hops.last().map(|h| h.role_arn.as_str()).unwrap_or("");
    let mut shown = ProfileChainReport {
        profile: chain.selected.clone(),
        root: root_words(&chain.root),
        hops: vec![],
        final_arn: None,
    };
    // The last hop's credentials, for `--require` alone.
    let mut last_credentials = None;
    let seen = match &chain.root {
        // Static keys start the chain: the app ignores IRSA, as today's
        // STATIC_CREDENTIALS_SHADOW says.
        Root::AccessKey { .. } => None,
        Root::WebIdentity { .. } if !sending.offline => {
            let (seen, credentials) = follow(run, chain, acting, report, &mut shown).await;
            if matches!(seen, ProfileChainSeen::Assumed { .. }) {
                unused_role_refusals(run, chain, &mut report.findings[..irsa_findings]);
            }
            last_credentials = credentials;
            Some(seen)
        }
        Root::WebIdentity { .. } => Some(ProfileChainSeen::Broken),
        Root::NamedSource { profile, source } => Some(named_source(
            acting, report, selected, profile, source, declared,
        )),
        Root::Unbuilt { profile, what } => {
            report
                .findings
                .push(words::unverifiable(selected, profile, what, declared));
            Some(not_followed(declared))
        }
    };
    if shown.hops.is_empty() {
        shown.hops = chain.hops.iter().map(|h| hop_report(h, None)).collect();
    }
    let Some(seen) = seen else {
        report.profile_chain = Some(shown);
        return;
    };
    // The app acts as the chain's last role: that is who is compared with
    // `--expected-role-arn` (or, without it, with the role the chain names)
    // and whose permissions `--require` asks about.
    let (role, assumed) = match &seen {
        ProfileChainSeen::Assumed { final_role, arn } => {
            (Some(final_role.clone()), Some(arn.clone()))
        }
        ProfileChainSeen::Broken | ProfileChainSeen::NotFollowed { .. } => {
            (RoleArn::parse(declared).ok(), None)
        }
    };
    acting.role = role;
    acting.assumed_arn = assumed;
    // In place of the web-identity session's, kept only to sign the
    // first hop with.
    acting.credentials = last_credentials.filter(|_| !run.cfg.require.is_empty());
    if run.cfg.expected_role_arn.is_none() && !declared.is_empty() {
        report.expected_role_arn = Some(declared.to_owned());
    }
    shown.final_arn = acting.assumed_arn.clone();
    report.profile_chain = Some(shown);
    acting.profile_chain = Some(seen);
}

/// `AWS_DEFAULT_PROFILE` naming another profile than `selected`, the one
/// aws-config uses: botocore reads it first, so a Python app follows it.
fn default_profile(run: &Run<'_>, selected: &str) -> Option<crate::report::Finding> {
    let theirs = run.env.default_profile.as_deref()?;
    (theirs != selected).then(|| words::default_profile(theirs, selected))
}

/// What the hops set that aws-config ignores and botocore acts on, so that
/// the chain irsa-doctor follows is not the one a Python (or Go, or
/// JavaScript) app follows: `mfa_serial` (a prompt no pod can answer), a
/// `duration_seconds` STS refuses. A warning each, never a silent pass.
fn sdk_dependent(chain: &ProfileChain) -> Vec<crate::report::Finding> {
    let mut found = vec![];
    for (i, hop) in chain.hops.iter().enumerate() {
        if let Some(serial) = &hop.mfa_serial {
            found.push(words::hop_mfa(&chain.selected, &hop.profile, serial));
        }
        let Some(value) = &hop.duration_seconds else {
            continue;
        };
        // Every hop after a role session is role chaining; only the first
        // hop from static keys (or a named source's, which may be keys)
        // is not known to be.
        let chained = i > 0 || matches!(chain.root, Root::WebIdentity { .. });
        let high = if chained { 3600 } else { 43200 };
        // botocore drops a value int() cannot read.
        let refused = value
            .trim()
            .parse::<i64>()
            .is_ok_and(|n| !(900..=high).contains(&n));
        if refused {
            found.push(words::hop_duration(
                &chain.selected,
                &hop.profile,
                value,
                chained,
            ));
        }
    }
    found
}

/// How aws-config says a provider found nothing to work with
/// (`CredentialsError::CredentialsNotLoaded`): no variable, no ECS
/// configuration, IMDS disabled. Never a transient failure.
const NOT_ENABLED: &str = "the credential provider was not enabled";

/// A chain rooted at `credential_source`. aws-config builds the named
/// providers itself, the default chain's included: when it found the
/// source not set up at all here (no variables, IMDS disabled), the app
/// gets no credentials, and that is no pass. Otherwise irsa-doctor does
/// not follow it: a warning.
fn named_source(
    acting: &Acting,
    report: &mut Report,
    selected: &str,
    profile: &str,
    source: &str,
    declared: &str,
) -> ProfileChainSeen {
    if let Ok(ChainOutcome::Failed { message, .. }) = &acting.chain {
        if message.contains(NOT_ENABLED) {
            let problem = Problem::Invalid {
                profile: profile.to_owned(),
                message: format!(
                    "credential_source = {source} gives aws-config no credentials in this \
                     container ({message})"
                ),
            };
            report.findings.push(words::invalid(selected, &problem));
            return ProfileChainSeen::Broken;
        }
    }
    let what = format!("credential_source = {source}");
    report
        .findings
        .push(words::unverifiable(selected, profile, &what, declared));
    not_followed(declared)
}

fn not_followed(declared: &str) -> ProfileChainSeen {
    ProfileChainSeen::NotFollowed {
        final_role: RoleArn::parse(declared).ok(),
    }
}

/// What aws-config's `sts::util::default_session_name` names a session
/// the profile names none for: `<base>-<millis since the epoch>`
/// (`assume-role-from-profile` for a hop, `web-identity-token-profile` for
/// the root), so that a trust conditioned on `sts:RoleSessionName` sees
/// what the Rust SDK sends.
fn sdk_session_name(base: &str) -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{base}-{millis}")
}

/// When the chain's root is not IRSA's own role and token and the chain
/// was followed to its end, the app never asks for `AWS_ROLE_ARN`: IRSA's
/// refusal of it (among `findings`, IRSA's own) is a warning.
fn unused_role_refusals(run: &Run<'_>, chain: &ProfileChain, findings: &mut [Finding]) {
    let Root::WebIdentity { role_arn, .. } = &chain.root else {
        return;
    };
    if irsa_answer_reused(run, &chain.root) {
        return;
    }
    for finding in findings.iter_mut() {
        let refusal = matches!(
            finding.code,
            Code::TrustPolicyDenied | Code::OidcProviderMissing | Code::TokenRejected
        );
        if refusal && finding.severity == Severity::Error {
            *finding = words::unused_role_refused(finding.clone(), &chain.selected, role_arn);
        }
    }
}

/// Whether the chain's web-identity root is IRSA's own role and token, so
/// that IRSA's answer is the root's.
fn irsa_answer_reused(run: &Run<'_>, root: &Root) -> bool {
    let Root::WebIdentity {
        role_arn,
        token_file,
        ..
    } = root
    else {
        return false;
    };
    let same_role = run.env.role_arn.as_deref() == Some(role_arn.as_str());
    let same_token = run
        .env
        .token_file
        .as_deref()
        .is_some_and(|p| p == std::path::Path::new(token_file));
    same_role && same_token
}

/// The web-identity hop, then every `sts:AssumeRole`, in order.
async fn follow(
    run: &Run<'_>,
    chain: &ProfileChain,
    acting: &Acting,
    report: &mut Report,
    shown: &mut ProfileChainReport,
) -> (ProfileChainSeen, Option<Credentials>) {
    let Root::WebIdentity {
        profile, role_arn, ..
    } = &chain.root
    else {
        return (ProfileChainSeen::Broken, None);
    };
    let first = web_identity_hop(run, &chain.root, acting, report).await;
    shown.hops.push(HopReport {
        profile: profile.clone(),
        role_arn: role_arn.clone(),
        via: "web_identity",
        assumed_arn: first.as_ref().map(|(arn, _)| arn.clone()),
    });
    let Some((mut arn, mut creds)) = first else {
        shown
            .hops
            .extend(chain.hops.iter().map(|h| hop_report(h, None)));
        return (ProfileChainSeen::Broken, None);
    };
    let mut previous_role = role_arn.clone();
    for (i, hop) in chain.hops.iter().enumerate() {
        let session = hop
            .session_name
            .clone()
            .unwrap_or_else(|| sdk_session_name("assume-role-from-profile"));
        let asked = RoleHop {
            role_arn: &hop.role_arn,
            session_name: &session,
            external_id: hop.external_id.as_deref(),
        };
        match assume_hop(run, &creds, &asked).await {
            Ok((next_arn, next_creds)) => {
                shown.hops.push(hop_report(hop, Some(next_arn.clone())));
                (arn, creds) = (next_arn, next_creds);
                previous_role = hop.role_arn.clone();
            }
            Err(failed) => {
                report.findings.push(hop_failure(
                    run,
                    &chain.selected,
                    hop,
                    &previous_role,
                    &failed,
                ));
                shown.hops.push(hop_report(hop, None));
                shown
                    .hops
                    .extend(chain.hops[i + 1..].iter().map(|h| hop_report(h, None)));
                return (ProfileChainSeen::Broken, None);
            }
        }
    }
    match RoleArn::parse(&previous_role) {
        Ok(final_role) => (ProfileChainSeen::Assumed { final_role, arn }, Some(creds)),
        Err(_) => (ProfileChainSeen::Broken, None),
    }
}

/// The chain's web-identity hop: IRSA's own answer when the profile names
/// `AWS_ROLE_ARN` and the same token file (its findings are already in the
/// report), else its own `AssumeRoleWithWebIdentity` with the profile's
/// role, token and session name (`role_session_name`, else aws-config's).
async fn web_identity_hop(
    run: &Run<'_>,
    root: &Root,
    acting: &Acting,
    report: &mut Report,
) -> Option<(String, Credentials)> {
    let Root::WebIdentity {
        role_arn,
        token_file,
        session_name,
        ..
    } = root
    else {
        return None;
    };
    if irsa_answer_reused(run, root) {
        return Some((acting.assumed_arn.clone()?, acting.credentials.clone()?));
    }
    let role = match RoleArn::parse(role_arn) {
        Ok(role) => role,
        Err(e) => {
            let finding = crate::findings::role::role_arn_invalid(role_arn, &e.to_string());
            report.findings.push(finding);
            return None;
        }
    };
    let token = match read_token_file(std::path::Path::new(token_file)) {
        Ok(token) => token,
        Err(problem) => {
            let finding =
                crate::findings::token::token_file_finding(problem, &crate::findings::token::IRSA);
            report.findings.push(finding);
            return None;
        }
    };
    let session = session_name
        .clone()
        .unwrap_or_else(|| sdk_session_name("web-identity-token-profile"));
    let outcome = assume_named(run.cfg, run.sts, &role, &token, &session, run.deadline).await;
    match outcome.result {
        Ok(assumed) => Some((assumed.arn, assumed.credentials?)),
        Err(failure) => {
            let attempted = crate::findings::sts::Attempted {
                role: Some(&role),
                claims: None,
                audience: run.cfg.audience.as_deref(),
                endpoint: outcome.endpoint.as_deref(),
                proxy: None,
                region: report.sts.region.as_deref(),
                attempts: outcome.attempts,
                elapsed: run.started.elapsed(),
            };
            report
                .findings
                .push(crate::findings::sts::sts_failure(&failure, &attempted));
            None
        }
    }
}

/// A hop's final failure, with what the attempts showed.
struct HopFailed {
    failure: Failure,
    attempts: u32,
    endpoint: Option<String>,
}

/// One `sts:AssumeRole`, retried as every STS call is (transient trouble
/// until the deadline; a refusal ridden out for `--retry-denied-for`).
async fn assume_hop(
    run: &Run<'_>,
    creds: &Credentials,
    hop: &RoleHop<'_>,
) -> Result<(String, Credentials), HopFailed> {
    let plan = Plan {
        retry_denied_for: run.cfg.retry_denied_for,
        last_answer_stands: true,
        ..Plan::until(Peer::Sts, run.deadline, run.cfg.timeout)
    };
    let mut endpoint = None;
    let retried = retry(
        &plan,
        |remaining| run.sts.assume_role(creds, hop, remaining),
        |attempt| {
            endpoint = attempt.endpoint.or(endpoint.take());
            attempt.result
        },
    )
    .await;
    let failed = |failure| HopFailed {
        failure,
        attempts: retried.attempts,
        endpoint: endpoint.clone(),
    };
    match retried.result {
        Ok(assumed) => match assumed.credentials {
            Some(creds) => Ok((assumed.arn, creds)),
            None => Err(failed(Failure::new(
                FailureKind::Unexpected { retry: false },
                "HTTP 200 without credentials: the answer gives nothing to sign the next call \
                 with"
                    .to_owned(),
            ))),
        },
        Err(failure) => Err(failed(failure)),
    }
}

/// A refused hop names the statement the next role's trust needs; any
/// other failure is told as STS's failures are.
fn hop_failure(
    run: &Run<'_>,
    selected: &str,
    hop: &Hop,
    previous_role: &str,
    failed: &HopFailed,
) -> crate::report::Finding {
    let failure = &failed.failure;
    if failure.kind == FailureKind::AccessDenied {
        let said = match &failure.code {
            Some(code) => format!("{code}: {}", failure.message),
            None => failure.message.clone(),
        };
        return words::hop_denied(&words::RefusedHop {
            selected,
            profile: &hop.profile,
            role_arn: &hop.role_arn,
            previous_role,
            external_id: hop.external_id.as_deref(),
            said: &said,
        });
    }
    let role = RoleArn::parse(&hop.role_arn).ok();
    crate::findings::sts::sts_failure(
        failure,
        &crate::findings::sts::Attempted {
            role: role.as_ref(),
            claims: None,
            audience: None,
            endpoint: failed.endpoint.as_deref(),
            proxy: None,
            region: None,
            attempts: failed.attempts,
            elapsed: run.started.elapsed(),
        },
    )
}

fn hop_report(hop: &Hop, assumed_arn: Option<String>) -> HopReport {
    HopReport {
        profile: hop.profile.clone(),
        role_arn: hop.role_arn.clone(),
        via: "assume_role",
        assumed_arn,
    }
}

/// Where the chain's first credentials come from, as the report says it.
fn root_words(root: &Root) -> String {
    match root {
        Root::WebIdentity { .. } => "web_identity".to_owned(),
        Root::AccessKey { .. } => "static_keys".to_owned(),
        Root::NamedSource { source, .. } => format!("credential_source {source}"),
        Root::Unbuilt { what, .. } => (*what).to_owned(),
    }
}
