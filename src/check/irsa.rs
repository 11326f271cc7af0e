//! IRSA's steps: the role ARN the webhook injected, the projected token
//! and its claims, and `AssumeRoleWithWebIdentity` with that token, the
//! default chain resolved beside it (or, in `serve`, its outcome shown
//! again while it stands: see `ChainMemo`).

use std::path::Path;

use super::mechanism::WebIdentity;
use super::retry::{assume_with_retries, AssumeOutcome};
use super::run::{
    credentials_expiry, log_claims, resolve_chain, sts_proxy, subject, Acting, ChainMemo,
    ChainToken, CheckConfig, Run, Sending, TokenRead,
};
use crate::findings::{
    chain as chain_findings, env as env_findings, role as role_findings, sts as sts_findings,
    token, trust,
};
use crate::identity::arn::{is_valid_session_name, RoleArn};
use crate::identity::token::{decode_claims, read_token_file, TokenFileProblem};
use crate::peers::sts::ChainOutcome;
use crate::report::{Code, Finding, Report, TokenReport};
use crate::settings::endpoint::{uses_global_sts, GLOBAL_STS_ENDPOINT};
use crate::settings::env::AwsEnv;

/// Runs IRSA's steps, adding their findings and what STS said to `report`.
pub(super) async fn verify(
    run: &Run<'_>,
    sending: Sending,
    irsa: &WebIdentity,
    report: &mut Report,
) -> Acting {
    let (role, findings) = role(run, irsa);
    report.findings.extend(findings);

    let (token, findings, token_report) = read_token(run.cfg, run.env, &irsa.token_file, run.now);
    report.findings.extend(findings);
    report.token = token_report;
    report.findings.extend(subject(run.cfg, report));

    // The issuer, with `--verify-issuer`, beside STS and the chain.
    let steps = async |report: &mut Report| send(run, sending, role, &token, report).await;
    super::issuer::beside(run, sending, &token, report, steps).await
}

/// STS with the token and the default chain (or, in `serve`, the chain's
/// kept outcome), and what they said.
async fn send(
    run: &Run<'_>,
    sending: Sending,
    role: Option<RoleArn>,
    token: &TokenRead,
    report: &mut Report,
) -> Acting {
    let chain_token = match token {
        TokenRead::Unusable => ChainToken::Unusable,
        TokenRead::Rejected(raw) | TokenRead::Sendable(raw) => ChainToken::Read(raw),
    };
    let sendable = match (&role, token.sendable()) {
        (Some(role), Some(token)) if !sending.offline => Some((role, token)),
        _ => None,
    };
    let (assumed, chain, reused) = match (sendable, run.memo) {
        // `serve`, with the chain's outcome kept: our call first, and the
        // chain only if our call no longer says what it said then.
        (Some((role, raw)), Some(memo)) if !sending.no_chain => {
            let outcome = assume_with_retries(run.cfg, run.sts, role, raw, run.deadline).await;
            if memo.holds_for(&outcome) {
                tracing::debug!("the default chain's outcome still stands; not resolved again");
                (Some(outcome), Ok(ChainOutcome::WebIdentity), Some(memo))
            } else {
                let chain = resolve_chain(run, sending, chain_token, None).await;
                (Some(outcome), chain, None)
            }
        }
        // STS with the token, and the default chain, concurrently: a
        // healthy pod's verdict waits for one round trip.
        (sendable, _) => {
            let assume = async {
                match sendable {
                    Some((role, raw)) => {
                        Some(assume_with_retries(run.cfg, run.sts, role, raw, run.deadline).await)
                    }
                    None => None,
                }
            };
            let (assumed, chain) =
                tokio::join!(assume, resolve_chain(run, sending, chain_token, None));
            (assumed, chain, None)
        }
    };

    let (assumed_arn, credentials) = assumed
        .and_then(|outcome| assume_step(run, role.as_ref(), outcome, report))
        .unzip();
    global_endpoint_step(run, report);
    let memo = match (&chain, &assumed_arn) {
        (Ok(ChainOutcome::WebIdentity), Some(arn)) => Some(ChainMemo {
            assumed_arn: arn.clone(),
            resolved_at: reused.map_or(run.now, |m| m.resolved_at),
        }),
        _ => None,
    };
    Acting {
        role,
        assumed_arn,
        chain,
        memo,
        reused: reused.is_some(),
        // Kept only for `--require`'s signed call, and for a profile
        // chain's next hop to be signed with.
        credentials: credentials
            .flatten()
            .filter(|_| !run.cfg.require.is_empty() || starts_at_web_identity(run)),
        profile_chain: None,
    }
}

/// Whether `AWS_PROFILE` selects a role chain that starts at web identity,
/// whose first hop is signed with this step's session.
fn starts_at_web_identity(run: &Run<'_>) -> bool {
    use crate::settings::profile_chain::Root;
    matches!(run.sts.profile_chain(), Some(Ok(chain)) if matches!(chain.root, Root::WebIdentity { .. }))
}

/// `STS_GLOBAL_ENDPOINT`: `AWS_STS_REGIONAL_ENDPOINTS=legacy` sends the
/// app's SDK, if it reads the variable, to the global endpoint, while
/// irsa-doctor asked the regional one.
fn global_endpoint_step(run: &Run<'_>, report: &mut Report) {
    let region = run.sts.region();
    let settings = &run.env.settings;
    // STS's rules use the global endpoint only with both switches off: a
    // FIPS or dual-stack name is always regional.
    let switched = report.sts.use_fips || report.sts.use_dualstack;
    if !switched
        && uses_global_sts(
            run.env.sts_regional_endpoints.as_deref(),
            &region,
            settings.custom_sts_endpoint,
        )
    {
        let ours = report.sts.endpoint.as_deref();
        report.findings.push(chain_findings::global_endpoint(
            GLOBAL_STS_ENDPOINT,
            &region,
            ours,
        ));
        report.sts.app_endpoint = Some(GLOBAL_STS_ENDPOINT.to_owned());
    }
}

/// The role ARN and the session name, as the webhook (or the spec) set them.
fn role(run: &Run<'_>, irsa: &WebIdentity) -> (Option<RoleArn>, Vec<Finding>) {
    let mut findings = Vec::new();
    let parsed = if irsa.role_not_utf8 {
        Err(role_findings::ROLE_ARN_NOT_UTF8.to_owned())
    } else {
        RoleArn::parse(&irsa.role_text).map_err(|e| e.to_string())
    };
    let role = parsed
        .map_err(|e| findings.push(role_findings::role_arn_invalid(&irsa.role_text, &e)))
        .ok();
    if let Some(name) = run.env.role_session_name.as_deref() {
        if !is_valid_session_name(name) {
            findings.push(env_findings::session_name_invalid(
                name,
                &run.cfg.session_name,
            ));
        }
    }
    (role, findings)
}

/// Reads and decodes the token: what it gave, the findings, and the claims
/// for the report.
fn read_token(
    cfg: &CheckConfig,
    env: &AwsEnv,
    path: &Path,
    now: std::time::SystemTime,
) -> (TokenRead, Vec<Finding>, Option<TokenReport>) {
    let raw = match read_token_file(path) {
        Ok(raw) => raw,
        Err(TokenFileProblem::Missing { path, detail }) => {
            return (TokenRead::Unusable, vec![missing(env, &path, detail)], None)
        }
        Err(problem) => {
            return (
                TokenRead::Unusable,
                vec![token::token_file_finding(problem, &token::IRSA)],
                None,
            )
        }
    };
    let claims = match decode_claims(&raw) {
        Ok(claims) => claims,
        Err(e) => {
            let finding = token::token_malformed(path, &e.to_string(), &token::IRSA);
            return (TokenRead::Rejected(raw), vec![finding], None);
        }
    };
    let now_secs = crate::time::unix_secs(now);
    let mut findings = Vec::new();
    let expired = claims.exp.filter(|&exp| exp <= now_secs);
    if let Some(exp) = expired {
        findings.push(token::token_expired_locally(exp, now_secs, &claims));
    }
    // Only an audience the user named is checked here: the webhook sets a
    // custom one from the eks.amazonaws.com/audience annotation, and STS
    // accepts any client ID of the provider, so without `--audience` STS
    // alone decides, as it does for the app.
    if let Some(expected) = cfg.audience.as_deref() {
        if !claims.aud.iter().any(|a| a == expected) {
            findings.push(token::audience_mismatch(Some(expected), &claims, None));
        }
    }
    log_claims(&claims);
    let token_report = TokenReport {
        file: path.display().to_string(),
        claims,
    };
    // An expired token cannot succeed at STS; asking would only repeat it.
    let read = if expired.is_some() {
        TokenRead::Rejected(raw)
    } else {
        TokenRead::Sendable(raw)
    };
    (read, findings, Some(token_report))
}

/// `TOKEN_FILE_MISSING`, told by what is around the missing file: the
/// webhook's token at its own path (the variable was set by hand to
/// another), no volume at all (the container's own variables made the
/// webhook skip it), or a volume without the file.
fn missing(env: &AwsEnv, path: &Path, detail: String) -> Finding {
    let exists = |p: &Path| std::fs::symlink_metadata(p).is_ok();
    let webhook = Path::new(token::WEBHOOK_TOKEN_PATH);
    if path != webhook && exists(webhook) {
        return token::token_at_webhook_path(path, &detail);
    }
    match path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        Some(dir) if !exists(dir) => {
            let mut set: Vec<&str> = ["AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"].to_vec();
            set.extend(env.region_vars.iter().copied());
            if env.sts_regional_endpoints.is_some() {
                set.push("AWS_STS_REGIONAL_ENDPOINTS");
            }
            token::token_volume_missing(path, dir, &set)
        }
        _ => token::token_file_finding(
            TokenFileProblem::Missing {
                path: path.to_owned(),
                detail,
            },
            &token::IRSA,
        ),
    }
}

/// Records what STS answered in `report`, with its findings; returns the
/// assumed-role ARN and the session's credentials when STS assumed the
/// role.
fn assume_step(
    run: &Run<'_>,
    role: Option<&RoleArn>,
    outcome: AssumeOutcome,
    report: &mut Report,
) -> Option<(String, Option<aws_credential_types::Credentials>)> {
    report.sts.attempts = outcome.attempts;
    report.sts.endpoint = outcome.endpoint.clone();
    report.sts.proxy = sts_proxy(run.env, outcome.endpoint.as_deref());
    report.sts.clock_offset_seconds = outcome.clock_offset;
    report
        .findings
        .extend(outcome.clock_offset.and_then(sts_findings::clock_skew));
    match outcome.result {
        Ok(ok) => {
            report.sts.request_id = ok.request_id;
            report.sts.subject = ok.subject;
            report.sts.audience = ok.audience;
            report.sts.provider = ok.provider;
            report.assumed_role_arn = Some(ok.arn.clone());
            let expiry = ok.credentials.as_ref().and_then(|c| c.expiry());
            if let Some(expiry) = expiry {
                report.sts.expiration = Some(crate::time::rfc3339(expiry));
                // Our session is asked for 900 s, botocore's advisory
                // window itself: judged against its must-refresh window.
                let issuer = sts_findings::Issuer::Sts(report.sts.endpoint.as_deref());
                let window = sts_findings::BOTOCORE_MUST_REFRESH_SECS;
                let finding =
                    credentials_expiry(issuer, expiry, run.now, outcome.clock_offset, window);
                report.findings.extend(finding);
            }
            Some((ok.arn, ok.credentials))
        }
        Err(failure) => {
            report.sts.request_id = failure.request_id.clone();
            report.sts.error_code = failure.code.clone();
            let finding = sts_findings::sts_failure(
                &failure,
                &sts_findings::Attempted {
                    role,
                    claims: report.token.as_ref().map(|t| &t.claims),
                    audience: run.cfg.audience.as_deref(),
                    endpoint: report.sts.endpoint.as_deref(),
                    proxy: report.sts.proxy.as_deref(),
                    region: report.sts.region.as_deref(),
                    attempts: outcome.attempts,
                    elapsed: run.started.elapsed(),
                },
            );
            let finding = explain_refusal(run, role, report, finding);
            // The local claim check may already have said the same thing.
            if !report.has(finding.code) {
                report.findings.push(finding);
            }
            None
        }
    }
}

/// `TRUST_POLICY_DENIED` told with `--trust-policy`'s policy, when given.
fn explain_refusal(
    run: &Run<'_>,
    role: Option<&RoleArn>,
    report: &Report,
    finding: Finding,
) -> Finding {
    let claims = report.token.as_ref().map(|t| &t.claims);
    let (Some(path), Some(role), Some(claims)) = (&run.cfg.trust_policy, role, claims) else {
        return finding;
    };
    if finding.code != Code::TrustPolicyDenied {
        return finding;
    }
    let Some(request) = super::trust::irsa_request(role, claims) else {
        return finding;
    };
    let explained = super::trust::explain(path, &request);
    trust::with_policy(finding, &path.display().to_string(), &explained, &role.name)
}
