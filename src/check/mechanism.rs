//! Which mechanism gives this pod its credentials, chosen from the
//! environment before any step that depends on it.
//!
//! Invariant: this is the only place that decides the mechanism; the later
//! steps consume the [`Mechanism`]. A second mechanism (EKS Pod Identity)
//! is a variant here and a module beside `irsa`.

use std::path::PathBuf;

use crate::env::AwsEnv;

/// How this pod gets credentials, as the webhook's variables say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    /// No mechanism is configured in full. `missing` names the IRSA
    /// variables that are not set.
    None { missing: Vec<&'static str> },
    /// IRSA: `AWS_ROLE_ARN` and `AWS_WEB_IDENTITY_TOKEN_FILE` are both set.
    WebIdentity(WebIdentity),
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
}

/// Chooses the mechanism from the environment.
pub fn choose(env: &AwsEnv) -> Mechanism {
    match (&env.role_arn, &env.token_file) {
        (Some(role_text), Some(token_file)) => Mechanism::WebIdentity(WebIdentity {
            role_text: role_text.clone(),
            role_not_utf8: env.role_arn_not_utf8,
            token_file: token_file.clone(),
        }),
        (role, token) => Mechanism::None {
            missing: [
                ("AWS_ROLE_ARN", role.is_none()),
                ("AWS_WEB_IDENTITY_TOKEN_FILE", token.is_none()),
            ]
            .into_iter()
            .filter_map(|(name, missing)| missing.then_some(name))
            .collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn both_variables_mean_web_identity() {
        let env = AwsEnv {
            role_arn: Some("arn:aws:iam::111122223333:role/app".into()),
            token_file: Some("/t".into()),
            ..AwsEnv::default()
        };
        assert!(
            matches!(choose(&env), Mechanism::WebIdentity(w) if w.token_file == Path::new("/t"))
        );
    }

    #[test]
    fn a_missing_variable_is_named() {
        let env = AwsEnv {
            token_file: Some("/t".into()),
            ..AwsEnv::default()
        };
        assert_eq!(
            choose(&env),
            Mechanism::None {
                missing: vec!["AWS_ROLE_ARN"]
            }
        );
        assert_eq!(
            choose(&AwsEnv::default()),
            Mechanism::None {
                missing: vec!["AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"]
            }
        );
    }
}
