//! What the SDK's default credential chain landed on, read from the
//! credential-source tags aws-config puts on what it returns. Beside
//! `sts.rs`, which resolves the chain and re-exports these.

use aws_credential_types::credential_feature::AwsCredentialFeature;
use aws_credential_types::Credentials;

/// What the default credential chain landed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainSource {
    Environment,
    Profile,
    WebIdentity,
    Container,
    Imds,
    Unknown,
}

impl ChainSource {
    pub fn as_str(&self) -> &'static str {
        match self {
            ChainSource::Environment => "environment",
            ChainSource::Profile => "profile",
            ChainSource::WebIdentity => "web_identity",
            ChainSource::Container => "container",
            ChainSource::Imds => "imds",
            ChainSource::Unknown => "unknown",
        }
    }

    /// Reads the credential-source tags aws-config puts on what it returns.
    pub(crate) fn of(creds: &Credentials) -> Self {
        use AwsCredentialFeature as F;
        let Some(tags) = creds.get_property::<Vec<AwsCredentialFeature>>() else {
            return ChainSource::Unknown;
        };
        let any = |wanted: &[F]| tags.iter().any(|t| wanted.contains(t));
        if any(&[
            F::CredentialsStsAssumeRoleWebId,
            F::CredentialsEnvVarsStsWebIdToken,
            F::CredentialsProfileStsWebIdToken,
        ]) {
            ChainSource::WebIdentity
        } else if any(&[F::CredentialsHttp]) {
            ChainSource::Container
        } else if any(&[F::CredentialsImds]) {
            ChainSource::Imds
        } else if any(&[
            F::CredentialsProfile,
            F::CredentialsProfileSourceProfile,
            F::CredentialsProfileNamedProvider,
            F::CredentialsProfileSso,
            F::CredentialsProfileProcess,
            F::CredentialsProfileLogin,
            F::CredentialsSso,
            F::CredentialsProcess,
        ]) {
            ChainSource::Profile
        } else if any(&[F::CredentialsEnvVars]) {
            ChainSource::Environment
        } else {
            ChainSource::Unknown
        }
    }
}

/// The outcome of resolving the default chain.
#[derive(Debug, Clone)]
pub enum ChainOutcome {
    /// The chain found nothing at all.
    NoCredentials,
    /// The chain failed: a broken profile, an IMDS that answered nonsense,
    /// or its own web-identity call refused (`web_identity`).
    Failed { message: String, web_identity: bool },
    /// The chain landed on web identity: the app uses IRSA.
    WebIdentity,
    /// The chain landed elsewhere; `identity` is who STS says it is.
    Other {
        source: ChainSource,
        identity: Result<String, String>,
    },
}

/// An identity irsa-doctor established, and the key ID of the credentials
/// it was established with.
#[derive(Debug, Clone)]
pub struct Known {
    pub access_key_id: String,
    pub arn: String,
}
