//! A snapshot of the AWS environment variables that decide a pod's identity.
//!
//! These are variables the AWS SDK owns; irsa-doctor's own settings come
//! from clap (`config.rs`). Secret values are never kept: for keys and
//! tokens the snapshot records only which variables are set.

use std::path::PathBuf;

/// Variables holding static keys; every SDK uses them before web identity.
pub const STATIC_KEY_VARS: [&str; 3] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// Variables that point the SDK at container credentials (EKS Pod Identity,
/// ECS).
pub const CONTAINER_VARS: [&str; 2] = [
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
];

/// Variables whose values are secrets, registered for redaction as soon
/// as the environment is read (`AWS_ACCESS_KEY_ID` is not secret).
const SECRET_VARS: [&str; 3] = [
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsEnv {
    /// `AWS_ROLE_ARN`; a value that is not UTF-8 is kept lossily and
    /// flagged in `role_arn_not_utf8`.
    pub role_arn: Option<String>,
    /// `AWS_ROLE_ARN` is set to bytes that are not UTF-8, which the AWS
    /// SDK for Rust reads as unset.
    pub role_arn_not_utf8: bool,
    pub token_file: Option<PathBuf>,
    pub role_session_name: Option<String>,
    /// Names of the [`STATIC_KEY_VARS`] that are set (values not kept).
    pub static_keys: Vec<&'static str>,
    /// Names of the [`CONTAINER_VARS`] that are set.
    pub container_credentials: Vec<&'static str>,
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI`: EKS Pod Identity's agent.
    pub container_full_uri: Option<String>,
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`: EKS Pod Identity's token.
    pub container_token_file: Option<PathBuf>,
    pub profile: Option<String>,
    /// `AWS_DEFAULT_PROFILE`: botocore reads it before `AWS_PROFILE`;
    /// aws-config never reads it.
    pub default_profile: Option<String>,
    /// The endpoint and region settings, judged (see `endpoint.rs`).
    pub settings: crate::settings::endpoint::Judged,
    /// The proxy variables that are set, by name (see `proxy.rs`).
    pub proxy_vars: Vec<(&'static str, String)>,
    /// The region variables that are set, by name: with
    /// `AWS_STS_REGIONAL_ENDPOINTS`, they decide whether the webhook has
    /// anything left to add to a container.
    pub region_vars: Vec<&'static str>,
    /// `AWS_STS_REGIONAL_ENDPOINTS`, as set.
    pub sts_regional_endpoints: Option<String>,
}

/// The variables the SDKs read for an HTTP(S) proxy.
pub const PROXY_VARS: [&str; 8] = [
    "ALL_PROXY",
    "all_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "NO_PROXY",
    "no_proxy",
];

impl AwsEnv {
    /// A proxy variable's value, if set.
    pub fn proxy_var(&self, name: &str) -> Option<String> {
        self.proxy_vars
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    }

    /// Reads the process environment, registering secret values for
    /// redaction.
    pub fn from_process() -> Self {
        for name in SECRET_VARS {
            if let Some(value) = std::env::var_os(name) {
                crate::guard::redact::register(
                    crate::guard::redact::Kind::Environment,
                    &value.to_string_lossy(),
                );
            }
        }
        // Every setting that holds a URL irsa-doctor or the SDK connects
        // to: a password in its userinfo is masked in whatever form a
        // dependency prints it (hyper-util's pool key has no `://`).
        for (name, value) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if is_url_setting(&name) {
                crate::guard::redact::register_url_userinfo(&value.to_string_lossy());
            }
        }
        let mut env = Self::from_lookup(|name| std::env::var(name).ok());
        if env.role_arn.is_none() {
            if let Some(raw) = std::env::var_os("AWS_ROLE_ARN").filter(|v| !v.is_empty()) {
                env.role_arn = Some(raw.to_string_lossy().into_owned());
                env.role_arn_not_utf8 = true;
            }
        }
        if env.token_file.is_none() {
            env.token_file = std::env::var_os("AWS_WEB_IDENTITY_TOKEN_FILE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from);
        }
        env
    }

    /// Builds the snapshot from any lookup; empty values count as unset,
    /// as they do for the SDKs.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let set = |names: &[&'static str]| -> Vec<&'static str> {
            names.iter().copied().filter(|n| get(n).is_some()).collect()
        };
        AwsEnv {
            // Kept as the SDK reads them: not trimmed, and a set-but-empty
            // session name is still set (the SDK sends it, STS refuses it).
            role_arn: get("AWS_ROLE_ARN"),
            role_arn_not_utf8: false,
            token_file: get("AWS_WEB_IDENTITY_TOKEN_FILE").map(PathBuf::from),
            role_session_name: lookup("AWS_ROLE_SESSION_NAME"),
            static_keys: set(&STATIC_KEY_VARS),
            container_credentials: set(&CONTAINER_VARS),
            container_full_uri: get("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
            container_token_file: get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE").map(PathBuf::from),
            profile: get("AWS_PROFILE"),
            default_profile: get("AWS_DEFAULT_PROFILE"),
            settings: crate::settings::endpoint::judge(&lookup),
            proxy_vars: PROXY_VARS
                .iter()
                .filter_map(|n| lookup(n).map(|v| (*n, v)))
                .collect(),
            region_vars: set(&crate::settings::endpoint::REGION_VARS),
            sts_regional_endpoints: get("AWS_STS_REGIONAL_ENDPOINTS"),
        }
    }
}

/// Whether the variable `name` holds a URL that is connected to: the
/// endpoints (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`, IMDS's),
/// the container credentials URI and the proxies.
fn is_url_setting(name: &str) -> bool {
    name.starts_with("AWS_ENDPOINT_URL")
        || name == "AWS_EC2_METADATA_SERVICE_ENDPOINT"
        || CONTAINER_VARS.contains(&name)
        || crate::settings::endpoint::PROXY_URL_VARS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_count_as_unset_and_secrets_are_not_kept() {
        let env = AwsEnv::from_lookup(|name| match name {
            "AWS_ROLE_ARN" => Some("".into()),
            "AWS_ACCESS_KEY_ID" => Some("AKIAEXAMPLE".into()),
            "AWS_SECRET_ACCESS_KEY" => Some("secret".into()),
            _ => None,
        });
        assert_eq!(env.role_arn, None);
        assert_eq!(
            env.static_keys,
            ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
        );
        assert!(!format!("{env:?}").contains("secret\""));
    }
}
