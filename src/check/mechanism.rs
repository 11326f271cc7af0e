//! Which mechanism gives this pod its credentials, chosen from the
//! environment before any step that depends on it.
//!
//! Invariant: this is the only place that decides the mechanism; the later
//! steps consume the [`Mechanism`]. A second mechanism (EKS Pod Identity)
//! is a variant here and a module beside `irsa`.

use std::path::PathBuf;

use crate::findings::env::Half;
use crate::report::MechanismName;
use crate::settings::env::AwsEnv;

/// How this pod gets credentials, as the webhook's variables say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    /// No mechanism is configured in full. `half` names, for each pair of
    /// which one variable is set, the one that is missing.
    None { half: Vec<Half> },
    /// IRSA: `AWS_ROLE_ARN` and `AWS_WEB_IDENTITY_TOKEN_FILE` are both set.
    /// `pod_identity_too` holds Pod Identity's URI when it is configured in
    /// full as well: every SDK searches web identity first, so IRSA is
    /// checked and the association goes unused.
    WebIdentity(WebIdentity),
    /// EKS Pod Identity: `AWS_CONTAINER_CREDENTIALS_FULL_URI` and
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` are both set, and IRSA's
    /// pair is not.
    PodIdentity(PodIdentity),
}

/// IRSA's two variables, as set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebIdentity {
    /// `AWS_ROLE_ARN`, as text (lossy when it is not UTF-8).
    pub role_text: String,
    /// `AWS_ROLE_ARN` is not UTF-8, which the AWS SDK for Rust reads as
    /// unset.
    pub role_not_utf8: bool,
    /// `AWS_WEB_IDENTITY_TOKEN_FILE`.
    pub token_file: PathBuf,
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI`, when Pod Identity is
    /// configured in full beside IRSA.
    pub pod_identity_too: Option<String>,
}

/// EKS Pod Identity's two variables, as set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodIdentity {
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
    pub uri: String,
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`.
    pub token_file: PathBuf,
}

impl Mechanism {
    /// The mechanism's name, for the report.
    pub fn name(&self) -> Option<MechanismName> {
        match self {
            Mechanism::None { .. } => None,
            Mechanism::WebIdentity(_) => Some(MechanismName::Irsa),
            Mechanism::PodIdentity(_) => Some(MechanismName::PodIdentity),
        }
    }

    /// The token file the mechanism reads, which `serve` watches.
    pub fn token_file(&self) -> Option<&PathBuf> {
        match self {
            Mechanism::None { .. } => None,
            Mechanism::WebIdentity(w) => Some(&w.token_file),
            Mechanism::PodIdentity(p) => Some(&p.token_file),
        }
    }
}

/// Chooses the mechanism from the environment, in the SDKs' order: web
/// identity is searched before container credentials.
pub fn choose(env: &AwsEnv) -> Mechanism {
    let pod_identity = match (&env.container_full_uri, &env.container_token_file) {
        (Some(uri), Some(token_file)) => Some(PodIdentity {
            uri: uri.clone(),
            token_file: token_file.clone(),
        }),
        _ => None,
    };
    if let (Some(role_text), Some(token_file)) = (&env.role_arn, &env.token_file) {
        return Mechanism::WebIdentity(WebIdentity {
            role_text: role_text.clone(),
            role_not_utf8: env.role_arn_not_utf8,
            token_file: token_file.clone(),
            pod_identity_too: pod_identity.map(|p| p.uri),
        });
    }
    if let Some(pod_identity) = pod_identity {
        return Mechanism::PodIdentity(pod_identity);
    }
    let half = |mechanism, a: (&'static str, bool), b: (&'static str, bool)| match (a.1, b.1) {
        (true, false) => Some(Half {
            mechanism,
            set: a.0,
            missing: b.0,
        }),
        (false, true) => Some(Half {
            mechanism,
            set: b.0,
            missing: a.0,
        }),
        _ => None,
    };
    let half = [
        half(
            MechanismName::Irsa,
            ("AWS_ROLE_ARN", env.role_arn.is_some()),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", env.token_file.is_some()),
        ),
        half(
            MechanismName::PodIdentity,
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                env.container_full_uri.is_some(),
            ),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                env.container_token_file.is_some(),
            ),
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    Mechanism::None { half }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn env(vars: &[(&str, &str)]) -> AwsEnv {
        AwsEnv::from_lookup(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    const IRSA: [(&str, &str); 2] = [
        ("AWS_ROLE_ARN", "arn:aws:iam::111122223333:role/app"),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
    ];
    const POD_IDENTITY: [(&str, &str); 2] = [
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://169.254.170.23/v1/credentials",
        ),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/p"),
    ];

    #[test]
    fn irsa_s_pair_means_web_identity() {
        assert!(matches!(
            choose(&env(&IRSA)),
            Mechanism::WebIdentity(w) if w.token_file == Path::new("/t") && w.pod_identity_too.is_none()
        ));
    }

    #[test]
    fn pod_identity_s_pair_alone_means_pod_identity() {
        let m = choose(&env(&POD_IDENTITY));
        assert_eq!(m.name(), Some(MechanismName::PodIdentity));
        assert_eq!(m.token_file().map(PathBuf::as_path), Some(Path::new("/p")));
    }

    #[test]
    fn both_pairs_mean_web_identity_with_pod_identity_unused() {
        let both = [IRSA, POD_IDENTITY].concat();
        assert!(matches!(
            choose(&env(&both)),
            Mechanism::WebIdentity(w) if w.pod_identity_too.as_deref() == Some("http://169.254.170.23/v1/credentials")
        ));
    }

    #[test]
    fn half_a_pair_names_the_missing_variable() {
        assert_eq!(
            choose(&env(&IRSA[1..])),
            Mechanism::None {
                half: vec![Half {
                    mechanism: MechanismName::Irsa,
                    set: "AWS_WEB_IDENTITY_TOKEN_FILE",
                    missing: "AWS_ROLE_ARN"
                }]
            }
        );
        assert_eq!(
            choose(&env(&POD_IDENTITY[..1])),
            Mechanism::None {
                half: vec![Half {
                    mechanism: MechanismName::PodIdentity,
                    set: "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                    missing: "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
                }]
            }
        );
        assert_eq!(choose(&env(&[])), Mechanism::None { half: vec![] });
    }
}
