//! A refused or failed call to a peer as a value: what kind of refusal it
//! was, as far as the verdict and retrying care, and what the peer said.
//! STS's answers are classified here by the messages it is known to send;
//! IAM's and the agent's failures reuse the same kinds.

/// How STS answered a refused or failed call, reduced to what matters for
/// the verdict and for retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// `InvalidIdentityToken`: no IAM OIDC provider for the token's issuer.
    OidcProviderMissing,
    /// `InvalidIdentityToken`: the token's `aud` is not a registered client ID.
    AudienceMismatch,
    /// `InvalidIdentityToken`: thumbprint mismatch.
    Thumbprint,
    /// `InvalidIdentityToken` for any other reason, or `IDPRejectedClaim`.
    TokenRejected,
    /// `ExpiredTokenException`.
    TokenExpired,
    /// `AccessDenied`: the trust policy does not admit this token (or the
    /// role does not exist). Final, unless `--retry-denied-for` says wait.
    AccessDenied,
    /// `RegionDisabledException`.
    RegionDisabled,
    /// `ValidationError` about the role ARN.
    InvalidRoleArn,
    /// `Throttling` and friends. Transient.
    Throttled,
    /// `IDPCommunicationError`, or the "couldn't retrieve verification key"
    /// `InvalidIdentityToken`. Transient.
    IdpUnreachable,
    /// No HTTP answer: connect error, timeout, DNS. Transient.
    Unreachable,
    /// No HTTP answer from a name the SDK formed that AWS does not serve:
    /// STS's FIPS name in a region without one (`check/` decides that it
    /// is, from the region and the switches). Final: the app's SDK forms
    /// the same name and fails the same way.
    EndpointMissing,
    /// The endpoint's TLS certificate is not trusted here. Retrying cannot
    /// help; a CA bundle can.
    TlsUntrusted,
    /// A 5xx, a body that is not STS XML, an unknown code. `retry` says
    /// whether trying again could help.
    Unexpected { retry: bool },
}

impl FailureKind {
    /// Whether another attempt may get a different answer.
    pub fn is_transient(self) -> bool {
        match self {
            FailureKind::Throttled | FailureKind::IdpUnreachable | FailureKind::Unreachable => true,
            FailureKind::Unexpected { retry } => retry,
            _ => false,
        }
    }
}

/// A failed STS call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    /// STS's error code, when it answered with one.
    pub code: Option<String>,
    /// STS's message, or a description of the transport failure: one
    /// line, at most [`crate::guard::redact::MAX_MESSAGE_CHARS`], never a secret.
    pub message: String,
    pub http_status: Option<u16>,
    pub request_id: Option<String>,
    /// No answer came before the deadline.
    pub timed_out: bool,
}

impl Failure {
    /// A failure of `kind`, without an answer from STS.
    pub fn new(kind: FailureKind, message: String) -> Self {
        Failure {
            kind,
            code: None,
            message,
            http_status: None,
            request_id: None,
            timed_out: false,
        }
    }
}

/// Classifies an STS error answer by code, message and HTTP status, using
/// the messages STS is known to send (see `shared/irsa-facts.md`).
pub fn classify(code: Option<&str>, message: &str, status: u16) -> FailureKind {
    let msg = message.to_ascii_lowercase();
    match code {
        Some("InvalidIdentityToken") => {
            if msg.contains("no openidconnect provider found") {
                FailureKind::OidcProviderMissing
            } else if msg.contains("incorrect token audience")
                || msg.contains("missing a required claim: aud")
            {
                FailureKind::AudienceMismatch
            } else if msg.contains("couldn't retrieve verification key") {
                // Known to pass on retry (aws-cli#7194): the JWKS fetch failed.
                FailureKind::IdpUnreachable
            } else if msg.contains("thumbprint") {
                FailureKind::Thumbprint
            } else {
                FailureKind::TokenRejected
            }
        }
        Some("IDPRejectedClaim") => FailureKind::TokenRejected,
        Some("ExpiredTokenException") => FailureKind::TokenExpired,
        Some("AccessDenied") => FailureKind::AccessDenied,
        Some("RegionDisabledException") => FailureKind::RegionDisabled,
        Some("IDPCommunicationError") => FailureKind::IdpUnreachable,
        Some(
            "Throttling"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "TooManyRequestsException",
        ) => FailureKind::Throttled,
        Some("ValidationError")
            if msg.contains("request arn is invalid") || msg.contains("'rolearn'") =>
        {
            FailureKind::InvalidRoleArn
        }
        _ if status == 429 => FailureKind::Throttled,
        _ => FailureKind::Unexpected {
            retry: status >= 500,
        },
    }
}
