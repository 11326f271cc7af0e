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
//!
//! With `--session-policy` (a Pod Identity association's session policy),
//! an entry the role allows is also asked of `SimulateCustomPolicy` with
//! that policy alone: the pod gets the intersection. EKS requires session
//! tags off with a session policy, so no tag is given as context then. The
//! second simulation has the same retry plan, bounds and credentials, and
//! counts in the same `requests`.

use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;

use super::retry::{retry, Peer, Plan};
use super::run::{Acting, CheckConfig, Run};
use crate::findings::permissions::{self as words, Role};
use crate::identity::arn::{AssumedRoleArn, RoleArn};
use crate::identity::session_policy::SessionPolicy;
use crate::peers::iam::{ContextValue, Decision, EvalDecision, Policies, Question, Simulation};
use crate::peers::sts::FailureKind;
use crate::report::{
    Code, Finding, MechanismName, PermissionResult, PermissionsReport, Report, SessionTags,
    Severity, PERMISSIONS_NOT_COVERED, PERMISSIONS_NOT_COVERED_WITH_SESSION_POLICY,
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
    let session_policy = session_policy(run.cfg, report.mechanism);
    let mut shown = section(run.cfg, report.mechanism);
    // IAM's client is built from the same configuration, switches included.
    shown.use_fips = report.sts.use_fips;
    shown.use_dualstack = report.sts.use_dualstack;
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
    let findings = ask_iam(run, creds, &role, session_policy, report, &mut shown).await;
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

/// The session policy that applies: `--session-policy`'s, unless the pod
/// uses IRSA, whose session carries no association's policy.
fn session_policy(cfg: &CheckConfig, mechanism: Option<MechanismName>) -> Option<&SessionPolicy> {
    cfg.session_policy
        .as_ref()
        .filter(|_| mechanism != Some(MechanismName::Irsa))
}

/// Asks IAM about the role's policies and, when one applies and the role's
/// answer came, about the session policy; records both in `shown` and
/// returns the findings.
async fn ask_iam(
    run: &Run<'_>,
    creds: Credentials,
    role: &Role<'_>,
    session_policy: Option<&SessionPolicy>,
    report: &Report,
    shown: &mut PermissionsReport,
) -> Vec<Finding> {
    let required = &run.cfg.require;
    // EKS refuses a session policy unless session tags are off: the pod
    // has none then, and an ABAC allow on them must not pass here.
    let tags = match session_policy {
        Some(_) => SessionTags::Disabled,
        None => tags_of(report, run.cfg),
    };
    let context = session_tags(report, tags);
    let question = Question {
        policies: Policies::Role(role.arn),
        requirements: required,
        context: &context,
    };
    let (sim, requests) = simulate_with_retries(run, creds.clone(), question).await;
    shown.requests = requests;
    let session = match (&sim.result, session_policy) {
        (Ok(_), Some(policy)) => {
            let question = Question {
                policies: Policies::Session(policy.text()),
                ..question
            };
            let (session, requests) = simulate_with_retries(run, creds, question).await;
            shown.requests += requests;
            Some((session, policy))
        }
        _ => None,
    };
    judge(sim, session, tags, role, shown)
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
/// nor for a session without them (`--session-tags disabled`, or a session
/// policy, which EKS allows only with tags off): an ABAC allow on them would
/// pass here and deny the app. The cluster's name and ARN and the pod's UID
/// are not in the token.
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
        ..section(cfg, None)
    })
}

/// The section for `--require`, before IAM is asked: what the simulation
/// will cover, with the session policy or without.
fn section(cfg: &CheckConfig, mechanism: Option<MechanismName>) -> PermissionsReport {
    let (session_policy, not_covered) = match (&cfg.session_policy, mechanism) {
        (None, _) => ("not_given", PERMISSIONS_NOT_COVERED),
        (Some(_), Some(MechanismName::Irsa)) => ("not_used", PERMISSIONS_NOT_COVERED),
        (Some(_), _) => ("given", PERMISSIONS_NOT_COVERED_WITH_SESSION_POLICY),
    };
    PermissionsReport {
        required: cfg.require.iter().map(ToString::to_string).collect(),
        not_covered,
        session_policy,
        ..PermissionsReport::default()
    }
}

impl PermissionsMemo {
    /// Whether the kept answer is still the answer for `source`. The
    /// session policy is not compared: it is configuration, read once when
    /// `serve` starts (`ServeSettings`), so a changed one means a new
    /// process with nothing kept.
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
    question: Question<'_>,
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

/// The findings of the role's simulation and, when asked, the session
/// policy's, recorded in `shown`; `tags` as the pod's session carries them (none with a session policy). An entry passes only if both allow it:
/// the role's denial is told first (with a note when the session policy
/// denies too); the session policy's only for entries the role allows.
fn judge(
    sim: Simulation,
    session: Option<(Simulation, &SessionPolicy)>,
    tags: SessionTags,
    role: &Role<'_>,
    shown: &mut PermissionsReport,
) -> Vec<Finding> {
    shown.endpoint = sim.endpoint;
    shown.request_id = sim.request_id;
    let decisions = match sim.result {
        Ok(decisions) => decisions,
        Err(failure) => return vec![not_asked(&failure, role, shown, false)],
    };
    shown.evaluated = true;
    shown.results = decisions.iter().map(result_of).collect();
    let session_policy_given = session.is_some();
    let (session_decisions, policy, mut findings) = match session {
        None => (None, None, vec![]),
        Some((sim, policy)) => {
            shown.endpoint = sim.endpoint.or(shown.endpoint.take());
            shown.request_id = sim.request_id.or(shown.request_id.take());
            match sim.result {
                Ok(decisions) => (Some(decisions), Some(policy), vec![]),
                Err(failure) => {
                    shown.evaluated = false;
                    let finding = not_asked(&failure, role, shown, true);
                    (None, None, vec![finding])
                }
            }
        }
    };
    for (i, d) in decisions.iter().enumerate() {
        let by_session = session_decisions.as_ref().and_then(|s| s.get(i));
        if let Some(s) = by_session {
            let result = &mut shown.results[i];
            result.session_policy_decision = Some(s.decision.as_str());
            result.decision = combined(d.decision, s.decision).as_str();
        }
        let judged = Judged {
            role,
            policy,
            tags,
            session_policy_given,
        };
        findings.extend(judged.entry(d, by_session));
    }
    findings
}

/// What one entry is judged with: the role, the session policy when one
/// was simulated, and whether the session carries EKS's tags.
struct Judged<'a> {
    role: &'a Role<'a>,
    policy: Option<&'a SessionPolicy>,
    tags: SessionTags,
    session_policy_given: bool,
}

impl Judged<'_> {
    /// The finding for one entry: the role's answer `d` and, when asked,
    /// the session policy's `by_session`; `None` when both allow it.
    fn entry(&self, d: &Decision, by_session: Option<&Decision>) -> Option<Finding> {
        let (role, tags) = (self.role, self.tags);
        let session_denies = by_session.filter(|s| s.decision != EvalDecision::Allowed);
        let (d, d_tags) = without_session_tags(d, tags);
        let finding = match (d.decision, session_denies, self.policy) {
            (EvalDecision::Allowed, Some(s), Some(policy)) => {
                let (s, s_tags) = without_session_tags(s, tags);
                let finding = words::session_policy_denied(&s, role, policy);
                return Some(self.untagged(finding, &s_tags));
            }
            (EvalDecision::Allowed, _, _) => return None,
            (_, Some(s), policy) => {
                let role_finding = words::permission_denied(&d, role);
                let (s, s_tags) = without_session_tags(s, tags);
                let session_certain =
                    s.decision == EvalDecision::ExplicitDeny || s.missing_context.is_empty();
                match policy {
                    // The role's answer is undecided (a warning), but the
                    // session policy denies whatever the request carries:
                    // the app is denied, so it is the deciding layer.
                    Some(policy) if role_finding.severity != Severity::Error && session_certain => {
                        let finding =
                            words::session_policy_decides(&s, role, policy, &d.missing_context);
                        return Some(self.untagged(finding, &s_tags));
                    }
                    _ => words::also_denied_by_session_policy(role_finding),
                }
            }
            _ => words::permission_denied(&d, role),
        };
        Some(self.untagged(finding, &d_tags))
    }

    /// `finding`, saying why conditions on the session tags `keys` cannot
    /// hold.
    fn untagged(&self, finding: Finding, keys: &[String]) -> Finding {
        words::no_session_tags(finding, keys, self.session_policy_given)
    }
}

/// `d` for its wording when session tags are off (a session policy makes
/// EKS send none), and the session-tag keys taken out: a condition on a
/// session tag is then known to have no value in the app's requests too,
/// so it must not soften a deny into "the app's own requests carry it" (a
/// warning). The report still lists the keys as IAM named them.
fn without_session_tags(d: &Decision, tags: SessionTags) -> (Decision, Vec<String>) {
    let mut d = d.clone();
    if tags.enabled() {
        return (d, vec![]);
    }
    let (tags, others) = d.missing_context.into_iter().partition(|k| {
        let lower = k.to_ascii_lowercase();
        lower
            .strip_prefix("aws:principaltag/")
            .is_some_and(|tag| crate::identity::mechanism::SESSION_TAG_NAMES.contains(&tag))
    });
    d.missing_context = others;
    (d, tags)
}

/// The finding when IAM refused or could not answer the role's question
/// (or, `session`, the session policy's), with the reason recorded in
/// `shown`.
fn not_asked(
    failure: &crate::peers::failure::Failure,
    role: &Role<'_>,
    shown: &mut PermissionsReport,
    session: bool,
) -> Finding {
    let operation = if session {
        "SimulateCustomPolicy"
    } else {
        "SimulatePrincipalPolicy"
    };
    if failure.kind == FailureKind::AccessDenied {
        shown.not_evaluated_reason = Some(format!(
            "IAM refused {operation} (PERMISSIONS_UNVERIFIABLE)"
        ));
        return if session {
            words::custom_simulation_denied(failure, role)
        } else {
            words::simulation_denied(failure, role)
        };
    }
    let finding = words::iam_failure(failure, shown.endpoint.as_deref(), role, operation);
    shown.not_evaluated_reason = Some(format!(
        "IAM could not be asked ({})",
        finding.code.as_str()
    ));
    finding
}

/// The pod's decision when both the role's policies and the session
/// policy judge an entry: an explicit deny in either wins, then any deny.
fn combined(role: EvalDecision, session: EvalDecision) -> EvalDecision {
    use EvalDecision::{Allowed, ExplicitDeny, ImplicitDeny};
    match (role, session) {
        (ExplicitDeny, _) | (_, ExplicitDeny) => ExplicitDeny,
        (Allowed, Allowed) => Allowed,
        _ => ImplicitDeny,
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
        session_policy_decision: None,
    }
}
