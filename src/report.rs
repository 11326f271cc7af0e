//! The verdict as a value: finding codes, the report, and the one place that
//! turns a verdict into an exit code, a summary line and the text a person
//! reads in `kubectl logs`.
//!
//! Finding codes, exit codes and the JSON shape of [`Report`] are a public
//! API (the README documents each): add to them, never rename.

use std::fmt::Write as _;

use serde::Serialize;
use tracing::{error, info, warn};

use crate::time::format_unix;
use crate::token::Claims;

/// Exit codes, read by kubelet (`kubectl describe pod` shows them) and by
/// scripts. 2 is also what clap uses for a usage error.
pub mod exit {
    /// IRSA works and the pod acts as the expected role.
    pub const PASS: u8 = 0;
    /// At least one definitive error finding.
    pub const FAIL: u8 = 1;
    /// Bad flags or values; nothing was checked.
    pub const USAGE: u8 = 2;
    /// No definitive error, but the check could not finish (STS unreachable,
    /// throttled, deadline reached).
    pub const INCONCLUSIVE: u8 = 3;
    /// `exec`: the app's command exists but cannot be executed (a shell's
    /// 126).
    pub const NOT_EXECUTABLE: u8 = 126;
    /// `exec`: the app's command was not found (a shell's 127).
    pub const NOT_FOUND: u8 = 127;
}

/// How a finding code counts toward the verdict, as the README's table
/// says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An error with it fails the check (some are also raised as warnings).
    Definitive,
    /// "Could not find out": an error with it makes the verdict
    /// `inconclusive`, unless something definitive was found.
    Inconclusive,
    /// Only ever a warning.
    Warning,
}

impl Kind {
    /// The word the README's table starts its kind column with.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Definitive => "definitive",
            Kind::Inconclusive => "inconclusive",
            Kind::Warning => "warning",
        }
    }
}

/// The steps of a check, in the order the text report lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Environment,
    RoleArn,
    Token,
    /// The token's OIDC issuer, asked what it publishes (`--verify-issuer`).
    Issuer,
    /// EKS Pod Identity's agent, asked for credentials.
    Agent,
    Sts,
    Role,
    AppView,
    /// `--require`: IAM's policy simulator asked about the app's actions.
    Permissions,
}

impl Step {
    /// The step's name, as in the text report and the README.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Environment => "environment",
            Step::RoleArn => "role ARN",
            Step::Token => "token",
            Step::Issuer => "issuer",
            Step::Agent => "agent",
            Step::Sts => "STS",
            Step::Role => "role",
            Step::AppView => "app's view",
            Step::Permissions => "permissions",
        }
    }
}

/// The one declaration of every finding code: its variant, its stable
/// name, how it counts, and the step it belongs to. `Code`, `Code::ALL`,
/// `as_str`, `kind` and `step` all come from this table, so a new code is
/// one line here (plus its wording, its test and its README row, which
/// tests/readme.rs checks against this table).
macro_rules! codes {
    ($($variant:ident => $name:literal, $kind:ident, $step:ident;)*) => {
        /// Every finding irsa-doctor can report. Serialized as its name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum Code {
            $(#[serde(rename = $name)] $variant,)*
        }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The stable name, as in the JSON and the README.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $name,)*
                }
            }

            /// How the code counts toward the verdict.
            pub fn kind(self) -> Kind {
                match self {
                    $(Code::$variant => Kind::$kind,)*
                }
            }

            /// The step of the check the code belongs to.
            pub fn step(self) -> Step {
                match self {
                    $(Code::$variant => Step::$step,)*
                }
            }
        }
    };
}

codes! {
    EnvNotInjected => "ENV_NOT_INJECTED", Definitive, Environment;
    RoleArnInvalid => "ROLE_ARN_INVALID", Definitive, RoleArn;
    SessionNameInvalid => "SESSION_NAME_INVALID", Definitive, Environment;
    TokenFileMissing => "TOKEN_FILE_MISSING", Definitive, Token;
    TokenFileUnreadable => "TOKEN_FILE_UNREADABLE", Definitive, Token;
    TokenMalformed => "TOKEN_MALFORMED", Definitive, Token;
    TokenExpired => "TOKEN_EXPIRED", Definitive, Token;
    TokenAudienceMismatch => "TOKEN_AUDIENCE_MISMATCH", Definitive, Token;
    OidcProviderMissing => "OIDC_PROVIDER_MISSING", Definitive, Sts;
    TokenRejected => "TOKEN_REJECTED", Definitive, Sts;
    TrustPolicyDenied => "TRUST_POLICY_DENIED", Definitive, Sts;
    RegionDisabled => "REGION_DISABLED", Definitive, Sts;
    RegionMissing => "REGION_MISSING", Warning, Environment;
    StsUnreachable => "STS_UNREACHABLE", Inconclusive, Sts;
    StsThrottled => "STS_THROTTLED", Inconclusive, Sts;
    IdpUnreachable => "IDP_UNREACHABLE", Inconclusive, Sts;
    StsError => "STS_ERROR", Inconclusive, Sts;
    RoleMismatch => "ROLE_MISMATCH", Definitive, Role;
    StaticCredentialsShadow => "STATIC_CREDENTIALS_SHADOW", Definitive, AppView;
    DefaultChainMismatch => "DEFAULT_CHAIN_MISMATCH", Definitive, AppView;
    EndpointInvalid => "ENDPOINT_INVALID", Definitive, Environment;
    RegionInvalid => "REGION_INVALID", Definitive, Environment;
    SettingFileInvalid => "SETTING_FILE_INVALID", Definitive, Environment;
    ClockSkew => "CLOCK_SKEW", Definitive, Sts;
    CredentialsExpired => "CREDENTIALS_EXPIRED", Definitive, Sts;
    CredentialsExpiring => "CREDENTIALS_EXPIRING", Warning, Sts;
    CheckTimeout => "CHECK_TIMEOUT", Inconclusive, Sts;
    ProxyBypassDiffers => "PROXY_BYPASS_DIFFERS", Warning, AppView;
    PodIdentityUnused => "POD_IDENTITY_UNUSED", Warning, Environment;
    PodIdentityUriInvalid => "POD_IDENTITY_URI_INVALID", Definitive, Environment;
    PodIdentityAgentUnreachable => "POD_IDENTITY_AGENT_UNREACHABLE", Inconclusive, Agent;
    PodIdentityTrustDenied => "POD_IDENTITY_TRUST_DENIED", Definitive, Agent;
    PodIdentityTokenRejected => "POD_IDENTITY_TOKEN_REJECTED", Definitive, Agent;
    PodIdentityAssociationMissing => "POD_IDENTITY_ASSOCIATION_MISSING", Definitive, Agent;
    PodIdentityThrottled => "POD_IDENTITY_THROTTLED", Inconclusive, Agent;
    EksAuthUnreachable => "EKS_AUTH_UNREACHABLE", Inconclusive, Agent;
    PodIdentityAgentError => "POD_IDENTITY_AGENT_ERROR", Definitive, Agent;
    ProxyInterceptsCredentials => "PROXY_INTERCEPTS_CREDENTIALS", Warning, AppView;
    CaBundleInvalid => "CA_BUNDLE_INVALID", Definitive, Environment;
    ProxyUnreachable => "PROXY_UNREACHABLE", Inconclusive, Sts;
    StsGlobalEndpoint => "STS_GLOBAL_ENDPOINT", Warning, AppView;
    SubjectMismatch => "SUBJECT_MISMATCH", Definitive, Token;
    PermissionDenied => "PERMISSION_DENIED", Definitive, Permissions;
    PermissionsUnverifiable => "PERMISSIONS_UNVERIFIABLE", Warning, Permissions;
    IamUnreachable => "IAM_UNREACHABLE", Inconclusive, Permissions;
    IamThrottled => "IAM_THROTTLED", Inconclusive, Permissions;
    IamError => "IAM_ERROR", Inconclusive, Permissions;
    IssuerUnreachable => "ISSUER_UNREACHABLE", Warning, Issuer;
    IssuerMismatch => "ISSUER_MISMATCH", Definitive, Issuer;
    SigningKeyUnknown => "SIGNING_KEY_UNKNOWN", Definitive, Issuer;
    TokenSignatureInvalid => "TOKEN_SIGNATURE_INVALID", Definitive, Issuer;
}

impl Code {
    /// Inconclusive codes mean "could not find out", not "broken": they make
    /// the verdict `inconclusive` rather than `fail`.
    pub fn is_inconclusive(self) -> bool {
        self.kind() == Kind::Inconclusive
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    /// Documented in the README's JSON schema, and handled by every
    /// rendering, though no finding uses it yet.
    #[allow(dead_code)]
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One thing found wrong (or worth knowing), told so a person can act on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: Code,
    pub severity: Severity,
    /// What is wrong, in one sentence with the real values.
    pub message: String,
    /// What was expected, where that is a value.
    pub expected: Option<String>,
    /// What was found instead.
    pub found: Option<String>,
    /// What to change. May span lines (a trust policy, say).
    pub remedy: String,
}

impl Finding {
    pub fn error(code: Code, message: impl Into<String>, remedy: impl Into<String>) -> Self {
        Finding {
            code,
            severity: Severity::Error,
            message: message.into(),
            expected: None,
            found: None,
            remedy: remedy.into(),
        }
    }

    pub fn warning(code: Code, message: impl Into<String>, remedy: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Warning,
            ..Finding::error(code, message, remedy)
        }
    }

    pub fn expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }

    pub fn found(mut self, found: impl Into<String>) -> Self {
        self.found = Some(found.into());
        self
    }
}

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

/// How the pod gets its credentials, as its environment says.
///
/// The mechanism's names are declared here and nowhere else. Output spells
/// it two ways, because two outputs shipped with different spellings and
/// each is an API that scripts, dashboards and alerts parse: changing
/// either is a breaking change, not a tidy-up.
/// - [`MechanismName::as_str`], `pod_identity`: `check`'s JSON report and
///   `/status` (`mechanism`), and the `mechanism` label of the metrics.
/// - [`MechanismName::as_flag`], `pod-identity`: `explain`'s JSON
///   (`request.mechanism`), spelled as `explain`'s `--pod-identity` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MechanismName {
    /// IAM Roles for Service Accounts: web identity with the projected token.
    Irsa,
    /// EKS Pod Identity: the node agent, with the projected token.
    PodIdentity,
}

impl MechanismName {
    /// The name in `check`'s report and the metrics' labels.
    pub fn as_str(self) -> &'static str {
        match self {
            MechanismName::Irsa => "irsa",
            MechanismName::PodIdentity => "pod_identity",
        }
    }

    /// The name in `explain`'s JSON, as its flag spells it.
    pub fn as_flag(self) -> &'static str {
        match self {
            MechanismName::Irsa => "irsa",
            MechanismName::PodIdentity => "pod-identity",
        }
    }

    /// The name people know it by.
    pub fn words(self) -> &'static str {
        match self {
            MechanismName::Irsa => "IRSA",
            MechanismName::PodIdentity => "EKS Pod Identity",
        }
    }
}

impl Serialize for MechanismName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

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
    /// When the agent's credentials expire (`Expiration`).
    pub expiration: Option<String>,
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
}

/// What [`PermissionsReport::not_covered`] says.
pub const PERMISSIONS_NOT_COVERED: &str = "IAM's policy simulator evaluates the role's own \
    policies, its permissions boundary and the organisation's SCPs. It does not evaluate \
    resource-based policies (S3 bucket policies, KMS key policies, SQS queue policies), session \
    policies, or conditions on the request's context (source IP or VPC endpoint, encryption \
    headers, tags on the request): a call allowed here can still be denied there.";

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

/// The issuer row: what was asked, and what its keys said.
fn issuer_detail(issuer: &IssuerReport) -> String {
    format!(
        "{} (keys {}{}; {} kid {}: {})",
        issuer.url,
        issuer.jwks_uri.as_deref().unwrap_or("not fetched"),
        if issuer.cached { ", cached" } else { "" },
        issuer.alg.as_deref().unwrap_or("(no alg)"),
        issuer.kid.as_deref().unwrap_or("(none)"),
        if issuer.signature_verified {
            "signature verified"
        } else {
            "signature not verified"
        }
    )
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

    /// One line for the termination message and the log: the verdict and
    /// the first error, with a count of the rest.
    pub fn summary(&self) -> String {
        let errors: Vec<&Finding> = self
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .collect();
        match (self.verdict, errors.first()) {
            (Verdict::Pass, _) | (_, None) => format!(
                "irsa-doctor: pass: acting as {}",
                self.assumed_role_arn
                    .as_deref()
                    .unwrap_or("the expected role")
            ),
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

    /// The report for a person: verdict first, then each step, then every
    /// finding with expected, found and fix.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.summary());
        let _ = writeln!(out);
        let _ = writeln!(out, "steps:");
        for (name, status, detail) in self.steps() {
            let _ = writeln!(out, "  {status:<12}  {name:<12} {detail}");
        }
        if !self.findings.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(out, "findings:");
        }
        for f in &self.findings {
            let severity = match f.severity {
                Severity::Error if f.code.is_inconclusive() => "inconclusive",
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Info => "info",
            };
            let _ = writeln!(out, "  [{severity}] {}: {}", f.code.as_str(), f.message);
            if let Some(expected) = &f.expected {
                let _ = writeln!(out, "    expected: {expected}");
            }
            if let Some(found) = &f.found {
                let _ = writeln!(out, "    found:    {found}");
            }
            let mut lines = f.remedy.lines();
            if let Some(first) = lines.next() {
                let _ = writeln!(out, "    fix:      {first}");
            }
            for line in lines {
                let _ = writeln!(out, "              {line}");
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "took {} ms; irsa-doctor {}",
            self.duration_ms, self.version
        );
        out
    }

    /// One log line per finding and one for the verdict: structured
    /// fields for log pipelines, never a token or credential (the report
    /// holds none, and the log writer redacts whatever else comes).
    pub fn log(&self) {
        for f in &self.findings {
            match f.severity {
                Severity::Error => error!(
                    code = f.code.as_str(),
                    expected = f.expected.as_deref().unwrap_or(""),
                    found = f.found.as_deref().unwrap_or(""),
                    remedy = %f.remedy,
                    "{}", f.message
                ),
                Severity::Warning => {
                    warn!(code = f.code.as_str(), remedy = %f.remedy, "{}", f.message)
                }
                Severity::Info => info!(code = f.code.as_str(), "{}", f.message),
            }
        }
        let summary = self.summary();
        match self.verdict {
            Verdict::Pass => info!(
                verdict = "pass",
                duration_ms = self.duration_ms,
                "{summary}"
            ),
            v => error!(
                verdict = v.as_str(),
                duration_ms = self.duration_ms,
                "{summary}"
            ),
        }
    }

    /// `(step, status, detail)` rows, derived from the report's fields and
    /// the step each finding code belongs to; Pod Identity has an agent
    /// row where IRSA has a role ARN row.
    fn steps(&self) -> Vec<(&'static str, &'static str, String)> {
        // STS refused, but the finding belongs to another step (an expired
        // token, a wrong audience): the STS row still says it refused.
        let sts_status = match (
            self.status(Step::Sts, self.sts.attempts > 0),
            &self.sts.error_code,
        ) {
            ("ok", Some(_)) => "FAIL",
            (status, _) => status,
        };
        let row =
            |step: Step, status: &'static str, detail: String| (step.as_str(), status, detail);
        let pod_identity = self.mechanism == Some(MechanismName::PodIdentity);
        let mut rows = vec![row(
            Step::Environment,
            self.status(Step::Environment, true),
            self.environment_detail(),
        )];
        if pod_identity {
            rows.push(row(
                Step::Token,
                self.status(Step::Token, self.token.is_some()),
                self.token_detail(),
            ));
            rows.push(row(
                Step::Agent,
                self.status(
                    Step::Agent,
                    self.agent.as_ref().is_some_and(|a| a.attempts > 0),
                ),
                self.agent_detail(),
            ));
        } else {
            rows.push(row(
                Step::RoleArn,
                self.status(Step::RoleArn, self.role_arn.is_some()),
                self.role_arn.clone().unwrap_or_else(|| "not set".into()),
            ));
            rows.push(row(
                Step::Token,
                self.status(Step::Token, self.token.is_some()),
                self.token_detail(),
            ));
        }
        rows.extend(self.issuer_row());
        rows.push(row(Step::Sts, sts_status, self.sts_detail()));
        rows.push(row(
            Step::Role,
            self.status(Step::Role, self.assumed_role_arn.is_some()),
            format!(
                "assumed {}, expected {}",
                self.assumed_role_arn.as_deref().unwrap_or("(nothing)"),
                self.expected_role_arn
                    .as_deref()
                    .unwrap_or(if pod_identity {
                        "(none given: pass --expected-role-arn to compare)"
                    } else {
                        "(unset)"
                    })
            ),
        ));
        rows.push(row(
            Step::AppView,
            self.status(Step::AppView, self.default_chain.error.is_none()),
            self.chain_detail(),
        ));
        if let Some(p) = &self.permissions {
            rows.push(row(
                Step::Permissions,
                self.status(Step::Permissions, p.evaluated),
                permissions_detail(p),
            ));
        }
        rows
    }

    /// The issuer's row, when `--verify-issuer` asked the issuer.
    fn issuer_row(&self) -> Option<(&'static str, &'static str, String)> {
        let issuer = self.issuer.as_ref()?;
        let status = self.status(Step::Issuer, true);
        Some((Step::Issuer.as_str(), status, issuer_detail(issuer)))
    }

    fn environment_detail(&self) -> String {
        match self.mechanism {
            Some(MechanismName::PodIdentity) => format!(
                "EKS Pod Identity: AWS_CONTAINER_CREDENTIALS_FULL_URI={}",
                self.agent.as_ref().map_or("(unset)", |a| a.uri.as_str())
            ),
            Some(MechanismName::Irsa) => format!(
                "IRSA: AWS_ROLE_ARN={}",
                self.role_arn.as_deref().unwrap_or("(unset)")
            ),
            None => format!(
                "no mechanism: AWS_ROLE_ARN={}",
                self.role_arn.as_deref().unwrap_or("(unset)")
            ),
        }
    }

    fn agent_detail(&self) -> String {
        match &self.agent {
            Some(a) => format!(
                "GET {} ({} attempt{}{}{}{})",
                a.uri,
                a.attempts,
                if a.attempts == 1 { "" } else { "s" },
                a.status
                    .map_or(String::new(), |s| format!(", answered HTTP {s}")),
                a.account_id
                    .as_deref()
                    .map_or(String::new(), |id| format!(", account {id}")),
                a.expiration
                    .as_deref()
                    .map_or(String::new(), |e| format!(", expiring {e}")),
            ),
            None => "not asked".to_owned(),
        }
    }

    /// A step's status: its worst finding, else whether it ran.
    fn status(&self, step: Step, ran: bool) -> &'static str {
        let worst = self
            .findings
            .iter()
            .filter(|f| f.code.step() == step)
            .map(|f| (f.severity, f.code.is_inconclusive()))
            .min();
        match worst {
            Some((Severity::Error, false)) => "FAIL",
            Some((Severity::Error, true)) => "inconclusive",
            Some((Severity::Warning, _)) => "warn",
            _ if !ran => "skipped",
            _ => "ok",
        }
    }

    fn token_detail(&self) -> String {
        match &self.token {
            Some(t) => format!(
                "{}: sub {}, aud [{}], exp {}",
                t.file,
                t.claims.sub.as_deref().unwrap_or("(none)"),
                t.claims.aud.join(", "),
                t.claims.exp.map_or("(none)".to_owned(), format_unix)
            ),
            None => "not read".to_owned(),
        }
    }

    fn sts_detail(&self) -> String {
        let sts = &self.sts;
        let pod_identity = self.mechanism == Some(MechanismName::PodIdentity);
        if pod_identity && sts.attempts == 0 {
            return "GetCallerIdentity not sent: irsa-doctor got no credentials from the agent"
                .to_owned();
        }
        let action = if pod_identity {
            "GetCallerIdentity"
        } else {
            "AssumeRoleWithWebIdentity"
        };
        let via = |label: &str, value: &Option<String>| {
            value
                .as_deref()
                .map_or(String::new(), |v| format!(", {label} {v}"))
        };
        format!(
            "{action} at {} (region {}, {} attempt{}{}{}{}{}{})",
            sts.endpoint.as_deref().unwrap_or("(no request sent)"),
            sts.region.as_deref().unwrap_or("unknown"),
            sts.attempts,
            if sts.attempts == 1 { "" } else { "s" },
            via("through proxy", &sts.proxy),
            via("trusting AWS_CA_BUNDLE", &sts.ca_bundle),
            via("answered", &sts.error_code),
            via("request id", &sts.request_id),
            via("session expiring", &sts.expiration),
        ) + &sts.app_endpoint.as_deref().map_or(String::new(), |e| {
            format!("; the app's SDK may use {e} (AWS_STS_REGIONAL_ENDPOINTS=legacy)")
        })
    }

    fn chain_detail(&self) -> String {
        let chain = &self.default_chain;
        match (&chain.provider, &chain.arn, &chain.error) {
            (Some(p), Some(arn), _) => format!(
                "default credential chain uses {p}: {arn}{}",
                chain
                    .reused_since
                    .as_deref()
                    .map_or(String::new(), |t| format!(" (as resolved at {t})"))
            ),
            (Some(p), None, _) => format!("default credential chain uses {p}"),
            (None, _, Some(e)) => format!("default credential chain fails: {e}"),
            (None, _, None) => "default credential chain finds no credentials".to_owned(),
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

/// The permissions row: how many entries IAM allows, and where it was
/// asked; or why it was not.
fn permissions_detail(p: &PermissionsReport) -> String {
    if !p.evaluated {
        return format!(
            "not evaluated: {}",
            p.not_evaluated_reason
                .as_deref()
                .unwrap_or("see the findings")
        );
    }
    let allowed = p.results.iter().filter(|r| r.decision == "allowed").count();
    let asked = match (&p.reused_since, &p.endpoint) {
        (Some(since), _) => format!("IAM's answer of {since}, shown again"),
        (None, Some(endpoint)) => format!("SimulatePrincipalPolicy at {endpoint}"),
        (None, None) => "SimulatePrincipalPolicy".to_owned(),
    };
    format!(
        "{allowed} of {} required allowed for {} ({asked}); resource policies not evaluated",
        p.results.len(),
        p.source_arn.as_deref().unwrap_or("the role"),
    )
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
