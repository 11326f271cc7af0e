//! The verdict as a value: finding codes, the report, and the one place that
//! turns a verdict into an exit code, a summary line and the text a person
//! reads in `kubectl logs`.
//!
//! Finding codes, exit codes and the JSON shape of [`Report`] are a public
//! API (the README documents each): add to them, never rename.

mod codes;
mod log;
mod text;

use serde::Serialize;

use crate::identity::token::Claims;

pub use codes::{exit, Code, Finding, Kind, Severity, Step};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Inconclusive,
}

impl Verdict {
    /// Errors fail, inconclusive errors only when nothing definitive was
    /// found, and warnings never.
    pub fn of(findings: &[Finding]) -> Verdict {
        let errors = findings.iter().filter(|f| f.severity == Severity::Error);
        let mut verdict = Verdict::Pass;
        for f in errors {
            if !f.code.is_inconclusive() {
                return Verdict::Fail;
            }
            verdict = Verdict::Inconclusive;
        }
        verdict
    }

    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Pass => exit::PASS,
            Verdict::Fail => exit::FAIL,
            Verdict::Inconclusive => exit::INCONCLUSIVE,
        }
    }

    /// The HTTP status `serve`'s /readyz answers for the verdict it serves
    /// (see `monitor::state::State::readiness` for which verdict that is).
    pub fn http_status(self) -> u16 {
        match self {
            Verdict::Pass => 200,
            Verdict::Fail | Verdict::Inconclusive => 503,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// The token as the report shows it: where it was read and its claims,
/// never the token itself.
#[derive(Debug, Clone, Serialize)]
pub struct TokenReport {
    pub file: String,
    #[serde(flatten)]
    pub claims: Claims,
}

/// Where and how STS was asked.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StsReport {
    /// The URL of the last request sent, as the SDK resolved it.
    pub endpoint: Option<String>,
    /// IRSA: where the app's SDK sends its own AssumeRoleWithWebIdentity,
    /// when that differs from `endpoint` (`AWS_STS_REGIONAL_ENDPOINTS=legacy`
    /// sends SDKs that read it to the global endpoint).
    pub app_endpoint: Option<String>,
    /// Whether the SDK forms STS's FIPS endpoint (`sts-fips.<region>...`),
    /// as aws-config read the switch.
    pub use_fips: bool,
    /// Where `use_fips` was set: `AWS_USE_FIPS_ENDPOINT`, or `profile` for
    /// the shared config file's `use_fips_endpoint`; null when neither set
    /// it (or aws-config ignored the value).
    pub use_fips_source: Option<String>,
    /// Whether the SDK forms STS's dual-stack endpoint (`...api.aws`).
    pub use_dualstack: bool,
    /// `AWS_USE_DUALSTACK_ENDPOINT`, `profile` (`use_dualstack_endpoint`),
    /// or null.
    pub use_dualstack_source: Option<String>,
    pub region: Option<String>,
    pub request_id: Option<String>,
    pub session_name: Option<String>,
    /// AssumeRoleWithWebIdentity attempts made (retries included).
    pub attempts: u32,
    /// The error code STS answered with, when it refused.
    pub error_code: Option<String>,
    /// STS's clock minus this container's, in seconds, when STS answered.
    pub clock_offset_seconds: Option<i64>,
    /// IRSA: when the credentials of irsa-doctor's own session expire
    /// (`AssumeRoleWithWebIdentity`'s `Expiration`, RFC 3339).
    pub expiration: Option<String>,
    /// The proxy the STS requests went through, as the AWS SDK for Rust
    /// reads the proxy variables: scheme, host and port, never credentials.
    pub proxy: Option<String>,
    /// The `AWS_CA_BUNDLE` file whose certificates were trusted besides the
    /// system's.
    pub ca_bundle: Option<String>,
    /// What STS reported from the token, on success.
    pub subject: Option<String>,
    pub audience: Option<String>,
    pub provider: Option<String>,
}

/// What an AWS SDK's default credential chain in this container lands on.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChainReport {
    /// `environment`, `profile`, `web_identity`, `container` or `imds`;
    /// `null` when the chain found nothing.
    pub provider: Option<String>,
    /// Who those credentials are, from STS.
    pub arn: Option<String>,
    /// Why the chain, or the call naming its identity, failed.
    pub error: Option<String>,
    /// `serve` only: when the chain was last resolved, if this check showed
    /// that outcome again instead of resolving it (nothing it reads had
    /// changed, and irsa-doctor's own call still assumed the same role).
    pub reused_since: Option<String>,
}

/// A profile's role chain, hop by hop, as irsa-doctor followed it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProfileChainReport {
    /// The profile `AWS_PROFILE` selects.
    pub profile: String,
    /// Where the first credentials come from: `web_identity`,
    /// `static_keys`, `credential_source <name>`, `credential_process`,
    /// `login_session` or SSO.
    pub root: String,
    /// Every hop in the order the SDK takes them.
    pub hops: Vec<HopReport>,
    /// Who the app acts as at the end: the last hop's session, when every
    /// hop was assumed.
    pub final_arn: Option<String>,
}

/// One hop of a profile's role chain.
#[derive(Debug, Clone, Serialize)]
pub struct HopReport {
    /// The profile that names the role.
    pub profile: String,
    pub role_arn: String,
    /// `web_identity` (the token) or `assume_role` (the previous hop's
    /// credentials).
    pub via: &'static str,
    /// The session STS gave; `null` when the hop was refused, not asked,
    /// or not followed.
    pub assumed_arn: Option<String>,
}

/// Whose container a check saw. The app's environment, profile files and
/// image are visible only from the app's own container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeenFrom {
    /// A container of irsa-doctor's own: `check` as an init container,
    /// `serve` as a sidecar.
    #[default]
    OwnContainer,
    /// The app's container: `exec`.
    AppContainer,
}

pub use crate::identity::mechanism::{MechanismName, SessionTags};

/// How the EKS Pod Identity agent was asked, and what it answered; never
/// the credentials.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AgentReport {
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI`, as asked.
    pub uri: String,
    /// Requests made (retries included).
    pub attempts: u32,
    /// The HTTP status of the last answer, if any.
    pub status: Option<u16>,
    /// The account the agent's credentials belong to (`AccountId`).
    pub account_id: Option<String>,
    /// When the agent's credentials expire (`Expiration`). The agent
    /// hands the same cached credentials out until then: about 6 hours,
    /// 59 minutes with a target role.
    pub expiration: Option<String>,
    /// `--association-role-arn`: the association's own role, the first
    /// hop when the association has a target role.
    pub association_role_arn: Option<String>,
    /// With `--association-role-arn`: the role EKS assumes second and
    /// the pod acts as (`--expected-role-arn`), when it names another role.
    pub target_role_arn: Option<String>,
    /// `--session-tags`: `enabled` or `disabled`, as the user said.
    pub session_tags: SessionTags,
}

/// What `--require` asked IAM's policy simulator, and what it answered.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PermissionsReport {
    /// The `--require` entries, as given.
    pub required: Vec<String>,
    /// The role whose policies were simulated (`PolicySourceArn`).
    pub source_arn: Option<String>,
    /// Whether IAM answered for every entry.
    pub evaluated: bool,
    /// Why not, when it did not (not a finding when the identity step
    /// already failed).
    pub not_evaluated_reason: Option<String>,
    /// The URL of the last request, as the SDK resolved it.
    pub endpoint: Option<String>,
    /// The FIPS and dual-stack switches IAM's client read, the same as
    /// STS's (`sts.use_fips`, `sts.use_dualstack`): `iam-fips.amazonaws.com`,
    /// `iam.global.api.aws` in the aws partition.
    pub use_fips: bool,
    pub use_dualstack: bool,
    /// `SimulatePrincipalPolicy` requests made in this check (pages and
    /// retries included); 0 when an earlier answer was shown again.
    pub requests: u32,
    pub request_id: Option<String>,
    /// `serve` only: when IAM was last asked, if this check showed that
    /// answer again (see the README's per-pod call budget).
    pub reused_since: Option<String>,
    pub results: Vec<PermissionResult>,
    /// What IAM's simulator does not evaluate, so that a pass is never
    /// read as "every call will succeed".
    pub not_covered: &'static str,
    /// `--session-policy`: `not_given`; `given` (each entry must be
    /// allowed by it too, asked of `SimulateCustomPolicy`); or `not_used`
    /// (given, but the pod uses IRSA, whose session carries none).
    pub session_policy: &'static str,
}

/// IAM's decision for one `--require` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PermissionResult {
    pub action: String,
    pub resource: String,
    /// `allowed`, `implicit_deny` or `explicit_deny`.
    pub decision: &'static str,
    pub matched_statements: Vec<String>,
    /// `false` when the role's permissions boundary does not allow it.
    pub permissions_boundary_allows: Option<bool>,
    /// `false` when an AWS Organizations SCP does not allow it.
    pub organizations_allow: Option<bool>,
    pub missing_context_values: Vec<String>,
    /// With `--session-policy`, what the session policy alone decided
    /// (`decision` is then the intersection of the two); else `null`.
    pub session_policy_decision: Option<&'static str>,
}

/// What [`PermissionsReport::not_covered`] says when no session policy was
/// given.
pub const PERMISSIONS_NOT_COVERED: &str = "IAM's policy simulator evaluates the role's own \
    policies, its permissions boundary and the organisation's SCPs. It does not evaluate \
    resource-based policies (S3 bucket policies, KMS key policies, SQS queue policies), session \
    policies (an EKS Pod Identity association's session policy, if it has one, is evaluated \
    only when given with --session-policy), or conditions on the request's context (source IP \
    or VPC endpoint, encryption headers, tags on the request): a call allowed here can still be \
    denied there.";

/// What [`PermissionsReport::not_covered`] says when the association's
/// session policy was given and evaluated too.
pub const PERMISSIONS_NOT_COVERED_WITH_SESSION_POLICY: &str = "IAM's policy simulator \
    evaluates the role's own policies, its permissions boundary and the organisation's SCPs, and \
    the association's session policy given with --session-policy. It does not evaluate \
    resource-based policies (S3 bucket policies, KMS key policies, SQS queue policies), or \
    conditions on the request's context (source IP or VPC endpoint, encryption headers, tags on \
    the request): a call allowed here can still be denied there.";

/// What the token's issuer was asked (`--verify-issuer`), and what its
/// keys said of the token's signature.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IssuerReport {
    /// The token's `iss`.
    pub url: String,
    /// The key set's URL, from the discovery document.
    pub jwks_uri: Option<String>,
    /// The token header's `alg` and `kid`.
    pub alg: Option<String>,
    pub kid: Option<String>,
    /// The discovery document and key set came from `serve`'s cache.
    pub cached: bool,
    /// The signature verified with the issuer's key.
    pub signature_verified: bool,
}

/// The whole result of one check. Serialized as-is by `--output json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub verdict: Verdict,
    /// Whose container the check saw: the app's (`exec`) or one of
    /// irsa-doctor's own (`check`, `serve`).
    pub seen_from: SeenFrom,
    /// `irsa`, `pod_identity`, or `null` when neither is configured.
    pub mechanism: Option<MechanismName>,
    pub findings: Vec<Finding>,
    pub role_arn: Option<String>,
    pub expected_role_arn: Option<String>,
    pub assumed_role_arn: Option<String>,
    pub token: Option<TokenReport>,
    /// The token's issuer; absent unless `--verify-issuer` asked it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<IssuerReport>,
    /// EKS Pod Identity's agent; absent for IRSA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentReport>,
    pub sts: StsReport,
    pub default_chain: ChainReport,
    /// The role chain `AWS_PROFILE` selects (a profile with `role_arn` and
    /// `source_profile`); absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_chain: Option<ProfileChainReport>,
    /// `--require`'s evaluation; absent without `--require`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<PermissionsReport>,
    pub duration_ms: u64,
    pub version: &'static str,
}

impl Report {
    /// Whether any finding carries `code`.
    pub fn has(&self, code: Code) -> bool {
        self.findings.iter().any(|f| f.code == code)
    }

    /// Who the app acts as: the last session of the profile's role chain
    /// when `AWS_PROFILE` selects one, else what STS (or the agent) gave.
    pub fn acting_as(&self) -> Option<&str> {
        match &self.profile_chain {
            Some(chain) => chain.final_arn.as_deref(),
            None => self.assumed_role_arn.as_deref(),
        }
    }

    /// One line for the termination message and the log: the verdict and
    /// the first error, with a count of the rest.
    pub fn summary(&self) -> String {
        let errors: Vec<&Finding> = self
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .collect();
        match (self.verdict, errors.first()) {
            (Verdict::Pass, _) | (_, None) => match (self.acting_as(), &self.profile_chain) {
                (Some(arn), _) => format!("irsa-doctor: pass: acting as {arn}"),
                // A chain irsa-doctor could not follow: say so, not a role.
                (None, Some(chain)) => format!(
                    "irsa-doctor: pass: the role chain of profile {} is not verified past its \
                     {} (see the warnings)",
                    chain.profile, chain.root
                ),
                (None, None) => "irsa-doctor: pass: acting as the expected role".to_owned(),
            },
            (verdict, Some(first)) => {
                let more = match errors.len() - 1 {
                    0 => String::new(),
                    n => format!(" (+{n} more)"),
                };
                format!(
                    "irsa-doctor: {}: {}: {}{more}",
                    verdict.as_str(),
                    first.code.as_str(),
                    first.message
                )
            }
        }
    }
}

/// Reports as a check would make them, for the unit tests of the modules
/// that keep, serve or count reports (`monitor`, `server`, `metrics`).
#[cfg(any(test, feature = "fuzzing"))]
// The fuzz target of `serve` uses only `pass`.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod sample {
    use super::{ChainReport, Code, Finding, MechanismName, Report, StsReport, Verdict};

    /// A report of `findings`, with the verdict they give.
    pub(crate) fn report(findings: Vec<Finding>) -> Report {
        Report {
            seen_from: super::SeenFrom::OwnContainer,
            verdict: Verdict::of(&findings),
            mechanism: Some(MechanismName::Irsa),
            agent: None,
            findings,
            role_arn: None,
            expected_role_arn: None,
            assumed_role_arn: Some("arn:aws:sts::111122223333:assumed-role/app/s".into()),
            token: None,
            issuer: None,
            sts: StsReport::default(),
            default_chain: ChainReport::default(),
            profile_chain: None,
            permissions: None,
            duration_ms: 1,
            version: "test",
        }
    }

    /// A pass without findings.
    pub(crate) fn pass() -> Report {
        report(vec![])
    }

    /// An inconclusive check: STS throttled it.
    pub(crate) fn throttled() -> Report {
        report(vec![Finding::error(
            Code::StsThrottled,
            "Rate exceeded",
            "wait",
        )])
    }

    /// A failed check: the role's trust policy refused the token.
    pub(crate) fn denied() -> Report {
        report(vec![Finding::error(
            Code::TrustPolicyDenied,
            "no",
            "fix it",
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(code: Code, severity: Severity) -> Finding {
        Finding {
            severity,
            ..Finding::error(code, "m", "r")
        }
    }

    #[test]
    fn verdict_orders_fail_over_inconclusive_over_pass() {
        assert_eq!(Verdict::of(&[]), Verdict::Pass);
        assert_eq!(
            Verdict::of(&[finding(Code::RegionMissing, Severity::Warning)]),
            Verdict::Pass
        );
        assert_eq!(
            Verdict::of(&[finding(Code::StsThrottled, Severity::Error)]),
            Verdict::Inconclusive
        );
        assert_eq!(
            Verdict::of(&[
                finding(Code::StsThrottled, Severity::Error),
                finding(Code::TrustPolicyDenied, Severity::Error)
            ]),
            Verdict::Fail
        );
    }

    #[test]
    fn exit_codes_are_the_documented_ones() {
        assert_eq!(Verdict::Pass.exit_code(), 0);
        assert_eq!(Verdict::Fail.exit_code(), 1);
        assert_eq!(Verdict::Inconclusive.exit_code(), 3);
        assert_eq!(Verdict::Pass.http_status(), 200);
        assert_eq!(Verdict::Fail.http_status(), 503);
        assert_eq!(Verdict::Inconclusive.http_status(), 503);
    }

    #[test]
    fn code_names_match_their_serde_names() {
        for code in Code::ALL {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::String(code.as_str().to_owned())
            );
        }
    }
}
