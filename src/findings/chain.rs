//! The app's-view step's findings: what the AWS SDK's default credential
//! chain in this container would do, and what shadows web identity.

use crate::peers::sts::{ChainOutcome, ChainSource};
use crate::report::{Code, Finding, MechanismName};
use crate::settings::env::AwsEnv;

/// The default chain's outcome, or why it was not resolved.
pub type ChainResult = Result<ChainOutcome, String>;

/// `STS_GLOBAL_ENDPOINT`: `AWS_STS_REGIONAL_ENDPOINTS=legacy` sends SDKs
/// that read it to STS's `global` endpoint for `region`, while irsa-doctor
/// asked `ours`.
pub fn global_endpoint(global: &str, region: &str, ours: Option<&str>) -> Finding {
    let regional = ours.map_or_else(
        || format!("https://sts.{region}.amazonaws.com"),
        str::to_owned,
    );
    Finding::warning(
        Code::StsGlobalEndpoint,
        format!(
            "AWS_STS_REGIONAL_ENDPOINTS=legacy: an SDK that reads it (botocore, so boto3 and \
             the AWS CLI, among others) sends the app's AssumeRoleWithWebIdentity to {global}, \
             not to {regional}"
        ),
        format!(
            "Since 2025 AWS answers the global endpoint in the caller's own region for the \
             regions enabled by default, {region} among them, so this no longer means \
             us-east-1's latency or outages. What remains is the network: a VPC that reaches \
             STS only through a regional STS interface endpoint cannot reach the global name, \
             so the app fails where irsa-doctor passes. (Opt-in regions still go to us-east-1 \
             on the global name, but legacy keeps them regional.) Set \
             AWS_STS_REGIONAL_ENDPOINTS=regional (the ServiceAccount annotation \
             eks.amazonaws.com/sts-regional-endpoints: \"true\" makes the webhook set it), or \
             remove the legacy value; to see whether the global name is reachable from this \
             pod: curl -sS -o /dev/null -w '%{{http_code}}\\n' {global}. irsa-doctor itself \
             and the SDKs for Rust, Go v2, Java v2 \
             and JavaScript v3 always use {regional}."
        ),
    )
    .expected(format!("AWS_STS_REGIONAL_ENDPOINTS=regional: {regional}"))
    .found(format!(
        "AWS_STS_REGIONAL_ENDPOINTS=legacy: {global} in {region}"
    ))
}

/// "this pod would act as ..." for the default chain's outcome.
pub fn would_act_as(chain: &ChainResult) -> String {
    match chain {
        Ok(ChainOutcome::Other {
            source,
            identity: Ok(arn),
        }) => format!(
            "this pod would act as {arn} (credentials from {})",
            source_words(source)
        ),
        Ok(ChainOutcome::Other {
            source,
            identity: Err(e),
        }) => format!(
            "this pod would use credentials from {}, whose identity STS would not confirm: {e}",
            source_words(source)
        ),
        Ok(ChainOutcome::NoCredentials) => {
            "this pod would find no AWS credentials at all".to_owned()
        }
        Ok(ChainOutcome::Failed { message, .. }) => {
            format!("the default credential chain fails: {message}")
        }
        Ok(ChainOutcome::WebIdentity) => "this pod would use web identity".to_owned(),
        Err(e) => format!("the default credential chain {e}"),
    }
}

/// Where the chain found credentials, in words.
pub fn source_words(source: &ChainSource) -> &'static str {
    match source {
        ChainSource::Environment => "environment variables (AWS_ACCESS_KEY_ID)",
        ChainSource::Profile => "a shared config or credentials file profile",
        ChainSource::WebIdentity => "web identity",
        ChainSource::Container => "the container credentials endpoint (EKS Pod Identity or ECS)",
        ChainSource::Imds => "the node's instance profile through IMDS",
        ChainSource::Unknown => "an unidentified provider",
    }
}

/// The provider of the SDKs' chain a mechanism is reached through, in
/// words.
fn provider(mechanism: MechanismName) -> &'static str {
    match mechanism {
        MechanismName::Irsa => "web identity",
        MechanismName::PodIdentity => "container credentials",
    }
}

/// What to say of SDKs that predate the mechanism.
fn sdk_advice(mechanism: MechanismName) -> &'static str {
    match mechanism {
        MechanismName::Irsa => {
            "irsa-doctor cannot see the app's SDK: old SDKs have no web identity at all \
             (minimums: boto3 1.9.220, AWS CLI 1.16.232, Java v2 2.10.11, Java v1 1.11.704 with \
             the STS module, Go v1 1.23.13, JS v2 2.525.0 / v3 3.27.0, Ruby 3.58.0, .NET \
             3.3.659.1, PHP 3.110.7)."
        }
        MechanismName::PodIdentity => {
            "irsa-doctor cannot see the app's SDK: old SDKs refuse the agent's address or do \
             not send the token (minimums for EKS Pod Identity: Java v2 2.21.30, Java v1 \
             1.12.746, Go v1 1.47.11, Go v2 release-2023-11-14, boto3 and botocore 1.34.41, AWS \
             CLI 1.30.0 / 2.15.0, JS v2 2.1550.0, JS v3 3.458.0, Ruby 3.188.0, Rust aws-config \
             1.1.8, .NET 3.7.734.0, PHP 3.287.1, C++ 1.11.263, Kotlin 1.0.1)."
        }
    }
}

/// `STATIC_CREDENTIALS_SHADOW`, for each way credentials the SDKs read
/// before the mechanism's provider are present: static keys in the
/// environment, container credentials beside IRSA (when Pod Identity is
/// not configured in full: that is `POD_IDENTITY_UNUSED`), a profile with
/// credentials.
pub fn shadows(env: &AwsEnv, chain: &ChainResult, mechanism: MechanismName) -> Vec<Finding> {
    let mut findings: Vec<Finding> = static_keys(env, mechanism).into_iter().collect();
    if mechanism == MechanismName::Irsa {
        findings.extend(container_beside_irsa(env));
    }
    if let Ok(ChainOutcome::Other {
        source: ChainSource::Profile,
        ..
    }) = chain
    {
        findings.push(profile_shadow(env.profile.as_deref(), mechanism));
    }
    findings
}

/// Static keys in the environment, which every SDK uses first.
fn static_keys(env: &AwsEnv, mechanism: MechanismName) -> Option<Finding> {
    let (p, m) = (provider(mechanism), mechanism.words());
    let has = |name: &str| env.static_keys.contains(&name);
    let unset: Vec<String> = env.static_keys.iter().map(|k| format!("{k}-")).collect();
    let remove = format!(
        "Remove these variables from the container spec; look in env, envFrom Secrets and \
         ConfigMaps, and the image's own ENV. For a variable in the spec's env: kubectl set \
         env deployment/<name> -n <namespace> {}",
        unset.join(" ")
    );
    let set = format!("{} set", env.static_keys.join(", "));
    let finding = match (has("AWS_ACCESS_KEY_ID"), has("AWS_SECRET_ACCESS_KEY")) {
        (true, true) => Some(Finding::error(
            Code::StaticCredentialsShadow,
            format!(
                "{set} in this container: every AWS SDK uses static keys from the environment \
                 before {p}, so the app ignores {m}"
            ),
            remove.clone(),
        )),
        (true, false) | (false, true) => Some(Finding::error(
            Code::StaticCredentialsShadow,
            format!(
                "{set} in this container, half a key pair: botocore (boto3, the AWS CLI) fails \
                 with PartialCredentialsError instead of using {m}; other SDKs skip it"
            ),
            remove.clone(),
        )),
        (false, false) if has("AWS_SESSION_TOKEN") => Some(Finding::warning(
            Code::StaticCredentialsShadow,
            format!(
                "{set} in this container without a key pair: SDKs ignore it, but it is a leftover"
            ),
            remove,
        )),
        (false, false) => None,
    };
    finding.map(|f| {
        f.expected("no AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or AWS_SESSION_TOKEN")
            .found(set)
    })
}

/// Container credentials beside IRSA: the SDKs search web identity first.
/// With EKS Pod Identity configured in full, that is `POD_IDENTITY_UNUSED`.
fn container_beside_irsa(env: &AwsEnv) -> Option<Finding> {
    let pod_identity_whole = env.container_full_uri.is_some() && env.container_token_file.is_some();
    if !env.container_credentials.is_empty() && !pod_identity_whole {
        // The EKS user guide: the container provider comes after web identity
        // in the SDKs' chains, so credentials earlier in the chain keep being
        // used even with a Pod Identity association.
        return Some(
            Finding::warning(
                Code::StaticCredentialsShadow,
                format!(
                    "{} set in this container beside IRSA: EKS Pod Identity (or ECS) is \
                     configured too. Current AWS SDKs search web identity first and keep using \
                     IRSA; a client without web-identity support uses Pod Identity instead",
                    env.container_credentials.join(", ")
                ),
                "Use one mechanism: delete the EKS Pod Identity association for this service \
                 account (aws eks delete-pod-identity-association), or drop the IRSA \
                 annotation and verify Pod Identity instead.",
            )
            .expected("no AWS_CONTAINER_CREDENTIALS_* variables beside IRSA")
            .found(format!("{} set", env.container_credentials.join(", "))),
        );
    }
    None
}

/// A profile with credentials, which SDKs read before the mechanism's
/// provider.
pub fn profile_shadow(profile: Option<&str>, mechanism: MechanismName) -> Finding {
    let (p, m) = (provider(mechanism), mechanism.words());
    let profile = profile.unwrap_or("default");
    Finding::error(
        Code::StaticCredentialsShadow,
        format!(
            "the shared config profile {profile:?} provides credentials: SDKs read profiles \
             before {p}, so the app ignores {m}"
        ),
        "Remove the credentials from ~/.aws/credentials or ~/.aws/config in the image \
                 (or the files AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE name), or unset \
                 AWS_PROFILE. To see what the app's container holds: kubectl exec -n \
                 <namespace> <pod> -c <container> -- irsa-doctor check (with the binary \
                 installed, or exec in the app's command; README: exec).",
    )
    .expected("no profile with credentials")
    .found(format!("profile {profile} with credentials"))
}

/// `DEFAULT_CHAIN_MISMATCH`: an SDK's default chain would not use the
/// mechanism's provider (an error), or that provider failed where ours
/// passed (`ours_passed`; a warning). `expected_role` names the role it
/// should act as.
pub fn chain_mismatch(
    chain: &ChainResult,
    mechanism: MechanismName,
    ours: Option<&str>,
    expected_role: Option<&str>,
) -> Option<Finding> {
    let ours_passed = ours.is_some();
    let (p, m) = (provider(mechanism), mechanism.words());
    let expected = expected_role.map_or_else(|| format!("the {m} role"), str::to_owned);
    let advice = sdk_advice(mechanism);
    match (chain, mechanism) {
        // The container provider, as it should: but with another identity
        // than irsa-doctor's (another endpoint answered, or STS refused its
        // credentials), the app is not who irsa-doctor says.
        (
            Ok(ChainOutcome::Other {
                source: ChainSource::Container,
                identity,
            }),
            MechanismName::PodIdentity,
        ) => container_mismatch(chain, identity, ours, &expected, advice),
        (Ok(ChainOutcome::Other { source, .. }), _) => Some(
            Finding::error(
                Code::DefaultChainMismatch,
                format!(
                    "an AWS SDK in this container would not use {m}: {}",
                    would_act_as(chain)
                ),
                format!(
                    "Remove the credentials the chain found first ({}) so that {p} is \
                     reached. {advice}",
                    source_words(source)
                ),
            )
            .expected(format!(
                "the default credential chain uses {p}, acting as {expected}"
            ))
            .found(would_act_as(chain)),
        ),
        (Ok(ChainOutcome::WebIdentity), MechanismName::PodIdentity) => Some(
            Finding::error(
                Code::DefaultChainMismatch,
                "an AWS SDK in this container would use web identity, not EKS Pod Identity"
                    .to_owned(),
                format!("Remove the web identity settings the chain found. {advice}"),
            )
            .expected(format!(
                "the default credential chain uses {p}, acting as {expected}"
            ))
            .found(would_act_as(chain)),
        ),
        (
            Ok(ChainOutcome::Failed {
                message,
                web_identity,
            }),
            _,
        ) if ours_passed => {
            let (what, remedy) = failed_chain(mechanism, *web_identity);
            // For EKS Pod Identity the SDK was handed irsa-doctor's own
            // answer from the agent: its failure is the app's, not luck.
            let finding = match mechanism {
                MechanismName::Irsa => Finding::warning,
                MechanismName::PodIdentity => Finding::error,
            };
            Some(
                finding(
                    Code::DefaultChainMismatch,
                    format!("{what}: {message}"),
                    format!("{remedy} {advice}"),
                )
                .expected(format!("the default credential chain uses {p}"))
                .found(message.clone()),
            )
        }
        _ => None,
    }
}

/// For EKS Pod Identity, a chain on the container provider with another
/// identity than irsa-doctor's, or whose identity STS would not confirm.
fn container_mismatch(
    chain: &ChainResult,
    identity: &Result<String, String>,
    ours: Option<&str>,
    expected: &str,
    advice: &str,
) -> Option<Finding> {
    match (identity, ours) {
        (Ok(arn), Some(ours)) if arn != ours => Some(
            Finding::error(
                Code::DefaultChainMismatch,
                format!(
                    "an AWS SDK in this container gets other credentials from the container \
                     provider than irsa-doctor got from the agent: {}",
                    would_act_as(chain)
                ),
                format!(
                    "Check AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and \
                     AWS_CONTAINER_CREDENTIALS_FULL_URI: SDKs use the relative URI first. \
                     {advice}"
                ),
            )
            .expected(format!("the container provider acting as {ours}"))
            .found(would_act_as(chain)),
        ),
        (Err(_), Some(_)) => Some(
            Finding::error(
                Code::DefaultChainMismatch,
                format!(
                    "an AWS SDK in this container would fail: {}",
                    would_act_as(chain)
                ),
                format!("Compare with irsa-doctor's own answer from the agent above. {advice}"),
            )
            .expected(format!("the container provider acting as {expected}"))
            .found(would_act_as(chain)),
        ),
        _ => None,
    }
}

/// What a failing chain means, and what to do, when ours passed.
fn failed_chain(mechanism: MechanismName, web_identity: bool) -> (&'static str, &'static str) {
    match (mechanism, web_identity) {
        (MechanismName::Irsa, true) => (
            "the default credential chain's own AssumeRoleWithWebIdentity failed where \
             irsa-doctor's succeeded",
            "Usually transient (throttling, a 5xx, IAM propagation): an app's SDK retries the \
             same way. If it persists, compare the two calls: the SDK uses \
             AWS_ROLE_SESSION_NAME or its own session name and the default session duration.",
        ),
        (MechanismName::Irsa, false) => (
            "the default credential chain fails before it reaches web identity",
            "A provider before web identity stops the chain: usually a broken profile in \
             ~/.aws/config (or the files AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE \
             name).",
        ),
        (MechanismName::PodIdentity, _) => (
            "the default credential chain fails where irsa-doctor's request to the EKS Pod \
             Identity agent succeeded",
            "The SDK got the agent's answer irsa-doctor got (or went through the proxy), so \
             the failure is on the SDK's side: a provider before the container provider stops \
             the chain (a broken profile in ~/.aws/config, or the files AWS_CONFIG_FILE and \
             AWS_SHARED_CREDENTIALS_FILE name, or half of IRSA's variables), the token file \
             holds bytes the SDK will not send, or a proxy the SDK uses for the agent's \
             address.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_global_endpoint_is_worded_as_it_runs_since_2025() {
        let f = global_endpoint("https://sts.amazonaws.com", "eu-west-1", None);
        assert!(f.remedy.contains("caller's own region"), "{}", f.remedy);
        assert!(f.remedy.contains("interface endpoint"), "{}", f.remedy);
        assert!(!f.remedy.contains("served from us-east-1"), "{}", f.remedy);
        assert!(f.remedy.contains("curl"), "{}", f.remedy);
    }
    use crate::report::Severity;

    fn env(static_keys: Vec<&'static str>, container: Vec<&'static str>) -> AwsEnv {
        AwsEnv {
            static_keys,
            container_credentials: container,
            ..AwsEnv::default()
        }
    }

    fn imds() -> ChainResult {
        Ok(ChainOutcome::Other {
            source: ChainSource::Imds,
            identity: Ok("arn:aws:sts::111122223333:assumed-role/node/i-0".into()),
        })
    }

    #[test]
    fn a_key_pair_in_the_environment_is_an_error_and_half_a_pair_too() {
        let both = shadows(
            &env(vec!["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"], vec![]),
            &Ok(ChainOutcome::WebIdentity),
            crate::report::MechanismName::Irsa,
        );
        assert_eq!(both.len(), 1);
        assert_eq!(
            (both[0].code, both[0].severity),
            (Code::StaticCredentialsShadow, Severity::Error)
        );
        assert_eq!(
            both[0].found.as_deref(),
            Some("AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY set")
        );
        let half = shadows(
            &env(vec!["AWS_ACCESS_KEY_ID"], vec![]),
            &Ok(ChainOutcome::WebIdentity),
            crate::report::MechanismName::Irsa,
        );
        assert!(
            half[0].message.contains("PartialCredentialsError"),
            "{}",
            half[0].message
        );
        assert_eq!(half[0].severity, Severity::Error);
    }

    #[test]
    fn a_lone_session_token_and_container_credentials_are_warnings() {
        let found = shadows(
            &env(
                vec!["AWS_SESSION_TOKEN"],
                vec!["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
            ),
            &Ok(ChainOutcome::WebIdentity),
            crate::report::MechanismName::Irsa,
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().all(|f| f.severity == Severity::Warning));
        assert!(found[1].remedy.contains("delete-pod-identity-association"));
    }

    #[test]
    fn a_profile_with_credentials_names_the_profile() {
        let mut e = env(vec![], vec![]);
        e.profile = Some("ci".into());
        let found = shadows(
            &e,
            &Ok(ChainOutcome::Other {
                source: ChainSource::Profile,
                identity: Ok("arn:aws:iam::111122223333:user/ci".into()),
            }),
            crate::report::MechanismName::Irsa,
        );
        assert_eq!(found.len(), 1);
        assert!(
            found[0].message.contains("profile \"ci\""),
            "{}",
            found[0].message
        );
        assert!(shadows(
            &env(vec![], vec![]),
            &imds(),
            crate::report::MechanismName::Irsa
        )
        .is_empty());
    }

    #[test]
    fn a_chain_landing_elsewhere_is_an_error_naming_both_roles() {
        let f = chain_mismatch(
            &imds(),
            crate::report::MechanismName::Irsa,
            Some("arn"),
            Some("arn:aws:iam::111122223333:role/app"),
        )
        .unwrap();
        assert_eq!(
            (f.code, f.severity),
            (Code::DefaultChainMismatch, Severity::Error)
        );
        assert_eq!(
            f.expected.as_deref(),
            Some(
                "the default credential chain uses web identity, acting as \
                 arn:aws:iam::111122223333:role/app"
            )
        );
        assert!(f.found.unwrap().contains("assumed-role/node/i-0"));
        assert!(f
            .remedy
            .contains("the node's instance profile through IMDS"));
        assert!(f.remedy.contains("boto3 1.9.220"));
    }

    #[test]
    fn a_failing_chain_is_a_warning_only_when_ours_passed() {
        let failed = Ok(ChainOutcome::Failed {
            message: "throttled".into(),
            web_identity: true,
        });
        let f = chain_mismatch(
            &failed,
            crate::report::MechanismName::Irsa,
            Some("arn"),
            None,
        )
        .unwrap();
        assert_eq!(f.severity, Severity::Warning);
        assert!(f
            .message
            .contains("failed where irsa-doctor's succeeded: throttled"));
        assert!(chain_mismatch(&failed, crate::report::MechanismName::Irsa, None, None).is_none());
        let before = Ok(ChainOutcome::Failed {
            message: "bad profile".into(),
            web_identity: false,
        });
        let f = chain_mismatch(
            &before,
            crate::report::MechanismName::Irsa,
            Some("arn"),
            None,
        )
        .unwrap();
        assert!(f.message.contains("fails before it reaches web identity"));
        assert!(chain_mismatch(
            &Ok(ChainOutcome::WebIdentity),
            crate::report::MechanismName::Irsa,
            Some("arn"),
            None
        )
        .is_none());
    }

    #[test]
    fn for_pod_identity_the_container_provider_must_name_our_identity() {
        let pi = crate::report::MechanismName::PodIdentity;
        let container = |identity: Result<String, String>| {
            Ok(ChainOutcome::Other {
                source: ChainSource::Container,
                identity,
            })
        };
        let ours = "arn:aws:sts::111122223333:assumed-role/app/eks-x";
        assert!(chain_mismatch(&container(Ok(ours.into())), pi, Some(ours), None).is_none());
        let other = chain_mismatch(
            &container(Ok("arn:aws:sts::1:assumed-role/ecs/x".into())),
            pi,
            Some(ours),
            None,
        )
        .unwrap();
        assert_eq!(
            (other.code, other.severity),
            (Code::DefaultChainMismatch, Severity::Error)
        );
        assert!(other
            .remedy
            .contains("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"));
        let refused =
            chain_mismatch(&container(Err("denied".into())), pi, Some(ours), None).unwrap();
        assert!(
            refused.message.contains("would fail"),
            "{}",
            refused.message
        );
        // A failing chain after irsa-doctor's own answer was replayed to it
        // is an error for Pod Identity, a warning for IRSA.
        let failed = Ok(ChainOutcome::Failed {
            message: "StatusCode(400)".into(),
            web_identity: false,
        });
        assert_eq!(
            chain_mismatch(&failed, pi, Some(ours), None)
                .unwrap()
                .severity,
            Severity::Error
        );
        assert_eq!(
            chain_mismatch(
                &failed,
                crate::report::MechanismName::Irsa,
                Some(ours),
                None
            )
            .unwrap()
            .severity,
            Severity::Warning
        );
    }

    #[test]
    fn would_act_as_says_each_outcome() {
        assert!(would_act_as(&imds()).starts_with("this pod would act as arn:aws:sts::"));
        assert_eq!(
            would_act_as(&Err("did not finish".into())),
            "the default credential chain did not finish"
        );
        let unconfirmed = Ok(ChainOutcome::Other {
            source: ChainSource::Container,
            identity: Err("denied".into()),
        });
        assert!(would_act_as(&unconfirmed).contains("would not confirm: denied"));
    }
}
