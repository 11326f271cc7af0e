//! Finding codes (one table), their kinds and steps, the finding as a
//! value, and the exit codes. A public API: add to them, never rename.

use serde::Serialize;

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
    ProfileChainInvalid => "PROFILE_CHAIN_INVALID", Definitive, Environment;
    ProfileHopDenied => "PROFILE_HOP_DENIED", Definitive, Sts;
    ProfileChainUnverifiable => "PROFILE_CHAIN_UNVERIFIABLE", Warning, AppView;
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
    PodIdentityUnsupportedCompute => "POD_IDENTITY_UNSUPPORTED_COMPUTE", Definitive, Environment;
    ProxyInterceptsCredentials => "PROXY_INTERCEPTS_CREDENTIALS", Warning, AppView;
    CaBundleInvalid => "CA_BUNDLE_INVALID", Definitive, Environment;
    ProxyUnreachable => "PROXY_UNREACHABLE", Inconclusive, Sts;
    StsGlobalEndpoint => "STS_GLOBAL_ENDPOINT", Warning, AppView;
    FipsEndpointUnavailable => "FIPS_ENDPOINT_UNAVAILABLE", Definitive, Sts;
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
