//! `--require`: once the pod's identity is proven, IAM's policy simulator
//! is asked, with the pod's own credentials, whether the role may do what
//! the app needs (`SimulatePrincipalPolicy` on the role itself, which
//! evaluates its identity policies, its permissions boundary and the
//! organisation's SCPs).
//!
//! In `serve`, an answer is shown again ([`PermissionsMemo`]) for an hour,
//! or five minutes when IAM could not be asked; a token rotation or a
//! changed shared config file drops it (`monitor`), and a check that does
//! not ask IAM (the identity not proven this time) passes it on untouched.
//! IAM's rate limits are far below STS's and shared by the account: a
//! check asks at most twice (one retry of transient trouble).
//!
//! For EKS Pod Identity, the session tags the pod knows from its token
//! (namespace, service account, pod name) are given to the simulation as
//! `aws:PrincipalTag/...` context values, so that policies scoped by them
//! are judged as they are for the pod.

use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;

use super::retry::{retry, Peer, Plan};
use super::run::{Acting, CheckConfig, Run};
use crate::findings::permissions::{self as words, Role};
use crate::identity::arn::{AssumedRoleArn, RoleArn};
use crate::peers::iam::{ContextValue, Decision, EvalDecision, Simulation};
use crate::peers::sts::FailureKind;
use crate::report::{
    Code, Finding, MechanismName, PermissionResult, PermissionsReport, Report, SessionTags,
    PERMISSIONS_NOT_COVERED,
};

/// How long `serve` shows IAM's answer again before asking anew.
pub const REUSE_ANSWER_FOR: Duration = Duration::from_secs(3600);

/// How long `serve` waits before asking IAM again after it could not be
/// asked (unreachable, throttled): the check stays inconclusive meanwhile.
pub const RETRY_FAILURE_AFTER: Duration = Duration::from_secs(300);

/// Requests a check makes at most: one, and one retry of transient
/// trouble (throttling, no answer, a 5xx).
const MAX_ATTEMPTS: u32 = 2;

/// What `serve` keeps of the last simulation, to show again until `due`.
#[derive(Debug, Clone)]
pub struct PermissionsMemo {
    source_arn: String,
    /// When IAM was asked, for the report.
    asked_at: SystemTime,
    /// When to ask again: monotonic, so a clock stepped back cannot keep
    /// an old answer alive.
    due: Instant,
    findings: Vec<Finding>,
    report: PermissionsReport,
}

/// Step 6: the permissions. Adds `report.permissions` and its findings;
/// returns what `serve` may show again.
pub(super) async fn verify(
    run: &Run<'_>,
    acting: &Acting,
    report: &mut Report,
) -> Option<PermissionsMemo> {
    let required = &run.cfg.require;
    if required.is_empty() {
        return None;
    }
    let mut shown = section(required);
    // An IAM endpoint that cannot be used exactly is not asked: a port
    // `http::Uri` cannot read sent the signed request to port 80.
    if let Some(finding) = &run.env.settings.iam_endpoint_invalid {
        report.findings.push(finding.clone());
        shown.not_evaluated_reason = Some("AWS_ENDPOINT_URL_IAM cannot be used".to_owned());
        report.permissions = Some(shown);
        return None;
    }
    // Not asked in this check: what `serve` kept stays for the next one.
    let untouched = run.kept_permissions.cloned();
    let source = match source_role(run, acting, report) {
        Ok(source) => source,
        Err(reason) => {
            shown.not_evaluated_reason = Some(reason);
            report.permissions = Some(shown);
            return untouched;
        }
    };
    shown.source_arn = Some(source.to_string());
    if let Some(memo) = run.kept_permissions.filter(|m| m.stands_for(&source)) {
        tracing::debug!("IAM's last answer to --require still stands; not asked again");
        report.findings.extend(memo.findings.iter().cloned());
        report.permissions = Some(PermissionsReport {
            requests: 0,
            reused_since: Some(crate::time::rfc3339(memo.asked_at)),
            ..memo.report.clone()
        });
        return Some(memo.clone());
    }
    let role = Role {
        arn: &shown.source_arn.clone().unwrap_or_default(),
        name: &source.name,
        account: &source.account,
    };
    let Some(creds) = acting.credentials.clone() else {
        report.findings.push(words::no_credentials(role.arn));
        shown.not_evaluated_reason = Some("no credentials of irsa-doctor's own".to_owned());
        report.permissions = Some(shown);
        return untouched;
    };
    let context = session_tags(report, run.cfg.session_tags);
    let question = crate::peers::iam::Question {
        source_arn: role.arn,
        requirements: required,
        context: &context,
    };
    let (sim, requests) = simulate_with_retries(run, creds, question).await;
    shown.requests = requests;
    let findings = judge(sim, &role, tags_of(report, run.cfg), &mut shown);
    let conclusive = !findings.iter().any(|f| f.code.is_inconclusive());
    report.findings.extend(findings.iter().cloned());
    report.permissions = Some(shown.clone());
    let wait = if conclusive {
        REUSE_ANSWER_FOR
    } else {
        RETRY_FAILURE_AFTER
    };
    Some(PermissionsMemo {
        source_arn: role.arn.to_owned(),
        asked_at: run.now,
        due: Instant::now() + wait,
        findings,
        report: shown,
    })
}

/// Whether the pod's session carries EKS's tags as `--session-tags` says:
/// they are Pod Identity's, and an IRSA session's missing tags stay
/// undecided, as before.
fn tags_of(report: &Report, cfg: &CheckConfig) -> SessionTags {
    match report.mechanism {
        Some(MechanismName::PodIdentity) => cfg.session_tags,
        _ => SessionTags::Enabled,
    }
}

/// EKS Pod Identity's session tags that the pod's token names, as the
/// simulation's context values; none for IRSA, whose session has no tags,
/// nor for an association whose session tags are disabled (an ABAC allow
/// on them would pass here and deny the app).
/// The cluster's name and ARN and the pod's UID are not in the token.
fn session_tags(report: &Report, tags: SessionTags) -> Vec<ContextValue> {
    if report.mechanism != Some(MechanismName::PodIdentity) || !tags.enabled() {
        return vec![];
    }
    let k8s = report
        .token
        .as_ref()
        .and_then(|t| t.claims.kubernetes.as_ref());
    let Some(k8s) = k8s else { return vec![] };
    [
        ("kubernetes-namespace", &k8s.namespace),
        ("kubernetes-service-account", &k8s.service_account),
        ("kubernetes-pod-name", &k8s.pod),
    ]
    .into_iter()
    .filter_map(|(tag, value)| {
        value.as_ref().map(|v| ContextValue {
            key: format!("aws:PrincipalTag/{tag}"),
            value: v.clone(),
        })
    })
    .collect()
}

/// The permissions section of a report whose pod has no mechanism at
/// all: nothing to ask IAM as.
pub(super) fn not_evaluated(cfg: &CheckConfig) -> Option<PermissionsReport> {
    (!cfg.require.is_empty()).then(|| PermissionsReport {
        not_evaluated_reason: Some("the pod has no IAM role to act as".to_owned()),
        ..section(&cfg.require)
    })
}

/// The section for `required`, before IAM is asked.
fn section(required: &[crate::identity::arn::Requirement]) -> PermissionsReport {
    PermissionsReport {
        required: required.iter().map(ToString::to_string).collect(),
        not_covered: PERMISSIONS_NOT_COVERED,
        ..PermissionsReport::default()
    }
}

impl PermissionsMemo {
    fn stands_for(&self, source: &RoleArn) -> bool {
        self.source_arn == source.to_string() && Instant::now() < self.due
    }
}

/// The role whose policies are simulated: the role the pod asked for (its
/// path included) when STS assumed it, else the one `--expected-role-arn`
/// names when the pod acts as it, else the assumed role's name with no
/// path (Pod Identity says no path). Why not, when the identity is not
/// proven or is not a role.
fn source_role(run: &Run<'_>, acting: &Acting, report: &Report) -> Result<RoleArn, String> {
    let Some(arn) = acting.assumed_arn.as_deref() else {
        return Err("the pod's identity was not proven (see the steps above)".to_owned());
    };
    if report.has(Code::RoleMismatch) {
        return Err("the pod acts as another role than expected (ROLE_MISMATCH)".to_owned());
    }
    let Some(assumed) = AssumedRoleArn::parse(arn) else {
        return Err(format!("{arn} is not an assumed role"));
    };
    let known = [acting.role.as_ref(), run.cfg.expected_role_arn.as_ref()];
    if let Some(role) = known.into_iter().flatten().find(|r| r.matches(&assumed)) {
        return Ok(role.clone());
    }
    Ok(RoleArn {
        partition: assumed.partition,
        account: assumed.account,
        path: "/".to_owned(),
        name: assumed.role_name,
    })
}

/// Asks IAM, retrying transient trouble (throttling among it) once, with
/// STS's backoff, within the deadline; returns the last simulation and the
/// requests made.
async fn simulate_with_retries(
    run: &Run<'_>,
    creds: Credentials,
    question: crate::peers::iam::Question<'_>,
) -> (Simulation, u32) {
    let sdk = run.sts.sdk_config();
    let plan = Plan {
        max_attempts: MAX_ATTEMPTS,
        ..Plan::until(Peer::Iam, run.deadline, run.cfg.timeout)
    };
    let mut requests = 0u32;
    // The last simulation's endpoint, pages and request ID.
    let mut last = (None, 0, None);
    let creds = &creds;
    let retried = retry(
        &plan,
        |left| crate::peers::iam::simulate(sdk, creds.clone(), question, left),
        |sim| {
            requests += sim.pages;
            last = (sim.endpoint, sim.pages, sim.request_id);
            sim.result
        },
    )
    .await;
    if retried.cut_off {
        // One request sent, and no answer to tell of.
        requests += 1;
        last = (None, 1, None);
    }
    let (endpoint, pages, request_id) = last;
    let sim = Simulation {
        result: retried.result,
        endpoint,
        pages,
        request_id,
    };
    (sim, requests)
}

/// The findings of a simulation's result, recorded in `shown`.
/// With session tags disabled, a deny only EKS's missing tags explain is
/// certain, not undecided.
fn judge(
    sim: Simulation,
    role: &Role<'_>,
    tags: SessionTags,
    shown: &mut PermissionsReport,
) -> Vec<Finding> {
    shown.endpoint = sim.endpoint;
    shown.request_id = sim.request_id;
    match sim.result {
        Ok(decisions) => {
            shown.evaluated = true;
            shown.results = decisions.iter().map(result_of).collect();
            decisions
                .iter()
                .filter(|d| d.decision != EvalDecision::Allowed)
                .map(|d| {
                    (!tags.enabled())
                        .then(|| words::permission_denied_untagged(d, role))
                        .flatten()
                        .unwrap_or_else(|| words::permission_denied(d, role))
                })
                .collect()
        }
        Err(failure) if failure.kind == FailureKind::AccessDenied => {
            shown.not_evaluated_reason =
                Some("IAM refused SimulatePrincipalPolicy (PERMISSIONS_UNVERIFIABLE)".to_owned());
            vec![words::simulation_denied(&failure, role)]
        }
        Err(failure) => {
            let finding = words::iam_failure(&failure, shown.endpoint.as_deref(), role);
            shown.not_evaluated_reason = Some(format!(
                "IAM could not be asked ({})",
                finding.code.as_str()
            ));
            vec![finding]
        }
    }
}

fn result_of(d: &Decision) -> PermissionResult {
    PermissionResult {
        action: d.requirement.action.clone(),
        resource: d.requirement.resource.clone(),
        decision: d.decision.as_str(),
        matched_statements: d.matched.clone(),
        permissions_boundary_allows: d.boundary_allows,
        organizations_allow: d.organizations_allow,
        missing_context_values: d.missing_context.clone(),
    }
}
