//! What each finding says: pure functions from what a step learned to a
//! [`Finding`](crate::report::Finding) with its message, expected, found
//! and remedy, one file per step. No I/O, no clock, no network: each is
//! unit-tested with plain values.
//!
//! Invariant: the check's steps decide *whether* a finding applies; these
//! functions decide only *what it says*. Settings judged before sending
//! word their own findings beside their rules (`endpoint`, `profile`,
//! `proxy`).

pub mod chain;
pub mod env;
pub mod issuer;
pub mod permissions;
pub mod pod_identity;
pub mod profile_chain;
pub mod role;
pub mod sts;
pub mod token;
pub mod trust;

use crate::report::{Code, Finding, SeenFrom, Step};

/// Whether a finding is about what the app's container holds (its
/// environment, profile files, image), which a separate container cannot
/// see.
fn about_the_app_container(code: Code) -> bool {
    code.step() == Step::AppView || matches!(code, Code::EnvNotInjected | Code::PodIdentityUnused)
}

/// Says in each finding about the app's container where it was seen from:
/// from the app's own container (`exec`) the message says so; from a
/// container of irsa-doctor's own, the remedy says what it could not see
/// and points to `exec`.
pub fn seen_from(findings: &mut [Finding], from: SeenFrom) {
    for f in findings
        .iter_mut()
        .filter(|f| about_the_app_container(f.code))
    {
        match from {
            SeenFrom::AppContainer => f.message.push_str(" (seen from the app's container)"),
            SeenFrom::OwnContainer => f.remedy.push_str(
                "\nSeen from irsa-doctor's own container, not the app's: the app container's \
                 env, envFrom and image (a ~/.aws baked in, a container named in \
                 eks.amazonaws.com/skip-containers) were not visible. Run the check in the \
                 app's container to judge what the app sees: irsa-doctor exec -- <app command>.",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Every finding code is worded somewhere: a code added to the table in
    //! `report/codes.rs` without a wording function (and a sample here) fails.

    use std::collections::BTreeSet;
    use std::path::Path;
    use std::time::Duration;

    use crate::identity::arn::RoleArn;
    use crate::identity::token::{Claims, TokenFileProblem};
    use crate::peers::agent::FailureKind as AgentKind;
    use crate::peers::failure::{Failure, FailureKind};
    use crate::peers::sts::ChainOutcome;
    use crate::report::{Code, Finding};

    fn samples() -> Vec<Finding> {
        let role = RoleArn::parse("arn:aws:iam::111122223333:role/app").unwrap();
        let claims = Claims::default();
        let chain = Ok(ChainOutcome::NoCredentials);
        let imds = Ok(ChainOutcome::Other {
            source: crate::peers::sts::ChainSource::Imds,
            identity: Ok("arn".into()),
        });
        let sts_via = |kind, proxy| {
            super::sts::sts_failure(
                &Failure {
                    kind,
                    code: None,
                    message: "m".into(),
                    http_status: None,
                    request_id: None,
                    timed_out: false,
                },
                &super::sts::Attempted {
                    role: Some(&role),
                    claims: None,
                    audience: Some("sts.amazonaws.com"),
                    endpoint: None,
                    proxy,
                    region: None,
                    attempts: 1,
                    elapsed: Duration::ZERO,
                },
            )
        };
        let sts = |kind| sts_via(kind, None);
        let no_proxy = |name: &str| match name {
            "HTTPS_PROXY" => Some("http://proxy.invalid:3128".to_owned()),
            "NO_PROXY" => Some("10.0.0.0/8".to_owned()),
            _ => None,
        };
        let bad_settings = crate::settings::endpoint::judge(|name| match name {
            "AWS_ENDPOINT_URL_STS" => Some("https//sts.invalid".to_owned()),
            "AWS_REGION" => Some("eu west 1".to_owned()),
            _ => None,
        });
        let bad_file = crate::settings::profile::load(|name| {
            (name == "AWS_CONFIG_FILE").then(|| "/dev/zero".to_owned())
        });
        let expiry = super::sts::Expiry {
            expires: 1_800_000_000,
            left: -60,
            by_sts_clock: false,
            clock_checked: true,
        };
        let mut all = vec![
            super::env::env_not_injected(&super::env::NotInjected::default(), &chain),
            super::env::session_name_invalid("x", "y"),
            super::env::region_missing("us-east-1"),
            super::role::role_arn_invalid("x", "is not an ARN"),
            super::role::role_mismatch(&role, "found", "arn"),
            super::token::token_file_finding(
                TokenFileProblem::Missing {
                    path: "/t".into(),
                    detail: "d".into(),
                },
                &super::token::IRSA,
            ),
            super::token::token_file_finding(
                TokenFileProblem::Unreadable {
                    path: "/t".into(),
                    detail: "d".into(),
                    file: None,
                    process: None,
                },
                &super::token::IRSA,
            ),
            super::token::token_malformed(Path::new("/t"), "is not a JWT", &super::token::IRSA),
            super::token::token_expired_locally(1, 2, &claims),
            super::token::audience_mismatch(Some("sts.amazonaws.com"), &claims, None),
            super::token::subject_mismatch(
                Some("shop"),
                None,
                &Claims {
                    sub: Some("system:serviceaccount:payments:app".into()),
                    ..Claims::default()
                },
            )
            .expect("another namespace"),
            sts(FailureKind::OidcProviderMissing),
            sts(FailureKind::TokenRejected),
            sts(FailureKind::AccessDenied),
            sts(FailureKind::RegionDisabled),
            sts(FailureKind::Unreachable),
            sts_via(FailureKind::Unreachable, Some("http://127.0.0.1:3128")),
            crate::settings::ca_bundle::invalid(
                "/ca.pem",
                &crate::settings::ca_bundle::Invalid::Empty,
            ),
            sts(FailureKind::Throttled),
            sts(FailureKind::IdpUnreachable),
            sts(FailureKind::Unexpected { retry: true }),
            super::sts::clock_skew(3600).unwrap(),
            super::sts::credentials_expired(super::sts::Issuer::Sts(None), &expiry),
            super::sts::credentials_expiring(
                super::sts::Issuer::Agent(super::pod_identity::AGENT_URI),
                &expiry,
                900,
            ),
            super::sts::check_timeout(Duration::from_secs(1)),
            super::chain::chain_mismatch(&imds, crate::report::MechanismName::Irsa, None, None)
                .unwrap(),
            crate::settings::proxy::finding(no_proxy, "https://10.1.2.3").unwrap(),
            crate::settings::endpoint::profile_region_invalid("eu west 1"),
            crate::settings::endpoint::profile_switches_invalid(
                "default",
                &[("use_fips_endpoint", "yes".to_owned())],
                |_| None,
            )
            .remove(0),
            super::sts::fips_unavailable(
                "eu-west-1",
                "https://sts-fips.eu-west-1.amazonaws.com",
                "dns error",
            ),
            crate::settings::endpoint::switch_with_custom_endpoint(
                "AWS_USE_FIPS_ENDPOINT",
                "Invalid Configuration: FIPS and custom endpoint are not supported",
            ),
            super::chain::global_endpoint("https://sts.amazonaws.com", "us-west-2", None),
        ];
        let asked = super::pod_identity::Asked {
            uri: super::pod_identity::AGENT_URI,
            attempts: 1,
            elapsed: Duration::ZERO,
            expected_role: None,
        };
        for kind in [
            AgentKind::Unreachable,
            AgentKind::TrustDenied,
            AgentKind::TokenRejected,
            AgentKind::AssociationMissing,
            AgentKind::Throttled,
            AgentKind::EksAuthUnreachable,
            AgentKind::Other,
        ] {
            let failure = crate::peers::agent::Failure {
                kind,
                status: Some(400),
                detail: "d".into(),
            };
            all.push(super::pod_identity::agent_failure(&failure, &asked));
        }
        all.push(super::pod_identity::unused(super::pod_identity::AGENT_URI));
        all.push(super::pod_identity::uri_invalid(
            "ftp://x",
            "has the scheme ftp",
        ));
        all.push(super::pod_identity::unsupported_compute(
            "fargate-ip-10-0-1-23.eu-west-1.compute.internal",
            super::pod_identity::AGENT_URI,
            &super::pod_identity::PodOf {
                namespace: None,
                service_account: None,
                expected_role: None,
            },
        ));
        all.push(super::pod_identity::proxy_intercepts(
            &[super::pod_identity::AGENT_URI],
            &["the AWS SDK for Go"],
            None,
        ));
        all.extend(super::chain::shadows(
            &crate::settings::env::AwsEnv {
                static_keys: vec!["AWS_ACCESS_KEY_ID"],
                ..crate::settings::env::AwsEnv::default()
            },
            &chain,
            crate::report::MechanismName::Irsa,
        ));
        let signed = super::issuer::Signed {
            iss: "https://oidc.example/id/X",
            alg: Some("RS256"),
            kid: Some("k1"),
        };
        all.push(super::issuer::issuer_unreachable(
            signed.iss,
            "discovery document",
            "https://oidc.example/id/X/.well-known/openid-configuration",
            "gave no answer in time",
            false,
        ));
        all.push(super::issuer::issuer_mismatch(
            signed.iss,
            "u",
            "https://other",
        ));
        all.push(super::issuer::signing_key_unknown(
            &signed,
            "u",
            &["k2".into()],
        ));
        for refusal in [
            crate::identity::jwks::Refusal::Alg(Some("none".into())),
            crate::identity::jwks::Refusal::Invalid { kid: None },
            crate::identity::jwks::Refusal::KeyUnfit {
                kid: None,
                why: "w".into(),
            },
        ] {
            all.push(super::issuer::token_signature_invalid(
                &signed,
                Ok(&refusal),
            ));
        }
        all.push(super::issuer::token_signature_invalid(
            &signed,
            Err("is not signed"),
        ));
        all.extend(bad_settings.findings);
        all.extend(bad_file.findings);
        all.extend(permission_samples());
        all.extend(profile_chain_samples());
        all
    }

    /// A profile chain's findings: a refused hop, each problem, a root
    /// irsa-doctor cannot follow.
    fn profile_chain_samples() -> Vec<Finding> {
        use super::profile_chain as p;
        use crate::settings::profile_chain::Problem;
        let mut all = vec![
            p::hop_denied(&p::RefusedHop {
                selected: "b",
                profile: "b",
                role_arn: "arn:aws:iam::222233334444:role/b",
                previous_role: "arn:aws:iam::111122223333:role/a",
                external_id: None,
                said: "AccessDenied: m",
            }),
            p::unverifiable("b", "a", "credential_process", "arn:aws:iam::1:role/b"),
            p::default_profile("a", "b"),
        ];
        for problem in [
            Problem::Loop {
                profiles: vec!["a".into(), "b".into()],
                next: "a".into(),
            },
            Problem::MissingSource {
                missing: "c".into(),
                from: "b".into(),
            },
            Problem::Invalid {
                profile: "b".into(),
                message: "m".into(),
            },
        ] {
            all.push(p::invalid("b", &problem));
        }
        all
    }

    /// `--require`'s findings, every layer and failure.
    fn permission_samples() -> Vec<Finding> {
        use super::permissions as p;
        use crate::peers::iam::{Decision, EvalDecision};
        let role = p::Role {
            arn: "arn:aws:iam::111122223333:role/app",
            name: "app",
            account: "111122223333",
        };
        let decision = |decision, boundary, organizations| Decision {
            requirement: crate::identity::arn::Requirement::parse("s3:GetObject@arn:aws:s3:::b/*")
                .unwrap(),
            decision,
            matched: vec![],
            boundary_allows: Some(boundary),
            organizations_allow: Some(organizations),
            missing_context: vec![],
        };
        let failure = |kind, code: Option<&str>| Failure {
            code: code.map(str::to_owned),
            ..Failure::new(kind, "m".into())
        };
        let mut all = vec![
            p::permission_denied(&decision(EvalDecision::ImplicitDeny, true, true), &role),
            p::permission_denied(&decision(EvalDecision::ExplicitDeny, true, true), &role),
            p::permission_denied(&decision(EvalDecision::ImplicitDeny, false, true), &role),
            p::permission_denied(&decision(EvalDecision::ImplicitDeny, true, false), &role),
            p::simulation_denied(
                &failure(FailureKind::AccessDenied, Some("AccessDenied")),
                &role,
            ),
            p::no_credentials(role.arn),
        ];
        for (kind, code) in [
            (FailureKind::Throttled, None),
            (FailureKind::Unreachable, None),
            (
                FailureKind::Unexpected { retry: false },
                Some("NoSuchEntity"),
            ),
            (FailureKind::Unexpected { retry: false }, None),
        ] {
            all.push(p::iam_failure(
                &failure(kind, code),
                None,
                &role,
                "SimulatePrincipalPolicy",
            ));
            all.push(p::iam_failure(
                &failure(kind, code),
                None,
                &role,
                "SimulateCustomPolicy",
            ));
        }
        let policy = crate::identity::session_policy::SessionPolicy::parse(
            r#"{"Statement":[{"Effect":"Deny","Action":"s3:*","Resource":"*"}]}"#,
        )
        .unwrap();
        for d in [EvalDecision::ImplicitDeny, EvalDecision::ExplicitDeny] {
            all.push(p::session_policy_denied(
                &decision(d, true, true),
                &role,
                &policy,
            ));
        }
        let mut undecided = decision(EvalDecision::ImplicitDeny, true, true);
        undecided.missing_context = vec!["aws:SourceVpce".into()];
        all.push(p::session_policy_denied(&undecided, &role, &policy));
        all.push(p::also_denied_by_session_policy(p::permission_denied(
            &decision(EvalDecision::ImplicitDeny, true, true),
            &role,
        )));
        all.push(p::custom_simulation_denied(
            &failure(FailureKind::AccessDenied, Some("AccessDenied")),
            &role,
        ));
        all
    }

    #[test]
    fn every_code_has_wording_with_a_message_and_a_remedy() {
        let samples = samples();
        for f in &samples {
            assert!(!f.message.is_empty() && !f.remedy.is_empty(), "{f:?}");
            assert!(f.expected.is_some() && f.found.is_some(), "{f:?}");
        }
        let worded: BTreeSet<&str> = samples.iter().map(|f| f.code.as_str()).collect();
        let all: BTreeSet<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        let missing: Vec<&&str> = all.difference(&worded).collect();
        assert!(missing.is_empty(), "codes without a sample: {missing:?}");
    }

    /// What a remedy's command starts with: a tool people paste into a
    /// shell.
    const COMMANDS: [&str; 6] = [
        "aws ",
        "kubectl ",
        "eksctl ",
        "irsa-doctor ",
        "chmod ",
        "curl ",
    ];

    #[test]
    fn every_error_remedy_carries_a_command_to_paste() {
        // Every sample of every error code, each wording variant included.
        let without: Vec<String> = samples()
            .into_iter()
            .filter(|f| f.severity == crate::report::Severity::Error)
            .filter(|f| !COMMANDS.iter().any(|c| f.remedy.contains(c)))
            .map(|f| format!("{}: {}", f.code.as_str(), f.remedy))
            .collect();
        assert!(
            without.is_empty(),
            "remedies without a command: {without:#?}"
        );
    }
}
