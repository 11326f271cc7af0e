//! EKS Pod Identity, black-box: the real binary against the kit's STS and
//! agent stand-ins, each finding provoked the way the real world does, and
//! the two mechanisms told apart.

use testkit::agent::{Agent, AgentServer, Fault};
use testkit::fake_aws::{FakeAws, FakeAwsServer};
use testkit::jwt::{Jwt, TokenVolume};
use testkit::world::{NAMESPACE, ROLE_ARN, SERVICE_ACCOUNT};
use testkit::{doctor, Doctor, Outcome};

fn token() -> String {
    Jwt::for_pod_identity(NAMESPACE, SERVICE_ACCOUNT).encode()
}

/// A Pod Identity pod: the webhook's two variables, pointing at `agent`.
fn pod(sts: &FakeAwsServer, agent: &AgentServer, volume: &TokenVolume) -> Doctor {
    doctor!(&sts.url())
        .pod_identity(&agent.url(), &volume.path())
        .arg("--output")
        .arg("json")
}

async fn healthy() -> (FakeAwsServer, AgentServer, TokenVolume) {
    let sts = FakeAws::healthy().await;
    let agent = Agent::healthy(&sts.aws).await;
    let volume = TokenVolume::pod_identity(&token());
    (sts, agent, volume)
}

#[tokio::test]
async fn a_healthy_pod_passes_with_one_agent_call_and_names_its_role() {
    let (sts, agent, volume) = healthy().await;
    let out = pod(&sts, &agent, &volume)
        .arg("--expected-role-arn")
        .arg(ROLE_ARN)
        .run()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    assert_eq!(report["mechanism"], "pod_identity");
    assert_eq!(report["findings"], serde_json::json!([]));
    let arn = report["assumed_role_arn"].as_str().unwrap();
    assert!(
        arn.starts_with("arn:aws:sts::111122223333:assumed-role/app/eks-"),
        "{arn}"
    );
    assert_eq!(report["agent"]["attempts"], 1);
    assert_eq!(report["agent"]["status"], 200);
    assert_eq!(report["agent"]["account_id"], "111122223333");
    assert_eq!(report["default_chain"]["provider"], "container");
    assert_eq!(
        report["default_chain"]["arn"]
            .as_str()
            .unwrap()
            .split('/')
            .nth(1),
        Some("app")
    );
    // One agent call and one STS call: the default chain's request to the
    // agent is answered with irsa-doctor's answer, below the SDK, and its
    // identity is not asked again.
    assert_eq!(agent.agent.request_count(), 1);
    assert_eq!(sts.aws.caller_identity_calls(), 1);
    let seen = &agent.agent.requests()[0];
    assert_eq!(seen.host(), Some(agent.url().split('/').nth(2).unwrap()));
    let sent = std::fs::read_to_string(volume.path()).unwrap();
    assert_eq!(seen.authorization(), Some(sent.as_str()));
    assert_eq!(sts.aws.our_assume_calls(), 0);
}

/// A run of `pod` with `fault` on every request to the agent.
async fn with_fault(fault: Fault) -> (Outcome, AgentServer) {
    let (sts, agent, volume) = healthy().await;
    agent.agent.always(fault);
    let out = pod(&sts, &agent, &volume)
        .env("IRSA_DOCTOR_TIMEOUT", "3s")
        .run()
        .await;
    (out, agent)
}

#[tokio::test]
async fn an_irsa_role_that_trusts_only_the_oidc_provider_is_trust_denied() {
    let sts = FakeAws::healthy().await;
    // Agent::new leaves the role as FakeAws made it: an IRSA role.
    let agent = Agent::new(&sts.aws).start().await;
    let volume = TokenVolume::pod_identity(&token());
    let out = pod(&sts, &agent, &volume)
        .arg("--expected-role-arn")
        .arg(ROLE_ARN)
        .run()
        .await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    let f = out.finding("POD_IDENTITY_TRUST_DENIED");
    let found = f["found"].as_str().unwrap();
    assert!(found.starts_with("HTTP 400: ["), "{found}");
    assert!(
        found.contains("EKS does not have permissions to assume the associated role"),
        "{found}"
    );
    let remedy = f["remedy"].as_str().unwrap();
    assert!(remedy.contains("pods.eks.amazonaws.com"), "{remedy}");
    assert!(remedy.contains("sts:TagSession"), "{remedy}");
    assert!(remedy.contains("--role-name app"), "{remedy}");
    // A definitive answer: asked once.
    assert_eq!(out.json()["agent"]["attempts"], 1);
}

#[tokio::test]
async fn each_agent_error_has_its_code_and_quotes_the_body() {
    let cases = [
        (Fault::TokenRejected, "POD_IDENTITY_TOKEN_REJECTED", 1, "InvalidTokenException"),
        (Fault::ExpiredToken, "TOKEN_EXPIRED", 1, "ExpiredTokenException"),
        (Fault::AssociationMissing, "POD_IDENTITY_ASSOCIATION_MISSING", 1, "ResourceNotFoundException"),
        (Fault::NodeRoleDenied, "POD_IDENTITY_AGENT_ERROR", 1, "AccessDeniedException"),
        (Fault::TooManyRequests, "POD_IDENTITY_THROTTLED", 3, "Too Many Requests"),
        (Fault::Throttling, "POD_IDENTITY_THROTTLED", 3, "ThrottlingException"),
        (Fault::EksAuthUnreachable, "EKS_AUTH_UNREACHABLE", 3, "HTTP 500: []"),
        (Fault::ServiceUnavailable, "EKS_AUTH_UNREACHABLE", 3, "ServiceUnavailableException"),
        (Fault::InternalServerError, "EKS_AUTH_UNREACHABLE", 3, "InternalServerException"),
        (
            Fault::Status(403, "Access Denied. Called agent through invalid address, please use either [169.254.170.23 fd00:ec2::23] address not 10.1.2.3\n".into()),
            "POD_IDENTITY_AGENT_ERROR",
            1,
            "HTTP 403: Access Denied. Called agent through invalid address",
        ),
    ];
    for (fault, code, exit, quoted) in cases {
        let context = format!("{fault:?}");
        let (out, agent) = with_fault(fault).await;
        assert_eq!(out.code, exit, "{context}:\n{}", out.stdout);
        let f = out.finding(code);
        let found = f["found"].as_str().unwrap();
        assert!(found.contains(quoted), "{context}: {found}");
        assert!(!found.contains('\n'), "{context}: {found}");
        // Transient answers are asked again until the deadline; definitive
        // ones once.
        let attempts = out.json()["agent"]["attempts"].as_u64().unwrap();
        if exit == 3 {
            assert!(attempts > 1, "{context}: {attempts}");
        } else {
            assert_eq!(attempts, 1, "{context}");
        }
        let _ = &agent;
    }
}

#[tokio::test]
async fn an_agent_that_is_not_there_is_unreachable_and_inconclusive() {
    let (sts, agent, volume) = healthy().await;
    agent.refuse().await;
    let out = pod(&sts, &agent, &volume)
        .env("IRSA_DOCTOR_TIMEOUT", "2s")
        .run()
        .await;
    assert_eq!(out.code, 3, "{}", out.stdout);
    let f = out.finding("POD_IDENTITY_AGENT_UNREACHABLE");
    assert!(f["message"].as_str().unwrap().contains(&agent.url()));
    let remedy = f["remedy"].as_str().unwrap();
    for needle in ["eks-pod-identity-agent", "Fargate", "Windows", "Auto Mode"] {
        assert!(remedy.contains(needle), "{needle}: {remedy}");
    }
}

#[tokio::test]
async fn a_hanging_agent_is_cut_off_at_the_timeout() {
    let (out, agent) = with_fault(Fault::Hang).await;
    agent.agent.release();
    assert_eq!(out.code, 3, "{}", out.stdout);
    let f = out.finding("POD_IDENTITY_AGENT_UNREACHABLE");
    assert!(
        f["found"].as_str().unwrap().contains("no answer within"),
        "{f}"
    );
}

#[tokio::test]
async fn odd_successes_are_agent_errors() {
    for (fault, quoted) in [
        (Fault::HugeBody, "longer than 65536 bytes"),
        (
            Fault::Omit(&["SecretAccessKey"]),
            "without SecretAccessKey, which SDKs refuse",
        ),
        (
            Fault::Omit(&["Token", "Expiration"]),
            "without Token, Expiration",
        ),
    ] {
        let context = format!("{fault:?}");
        let (out, _agent) = with_fault(fault).await;
        assert_eq!(out.code, 1, "{context}:\n{}", out.stdout);
        let f = out.finding("POD_IDENTITY_AGENT_ERROR");
        let text = format!("{} {}", f["message"], f["found"]);
        assert!(text.contains(quoted), "{context}: {text}");
    }
}

#[tokio::test]
async fn an_identity_in_another_account_than_the_agent_s_is_a_warning() {
    // The agent takes AccountId from the role it assumed, so this means
    // something else answers at the URI: worth a warning, not a failed pod.
    let (out, _agent) = with_fault(Fault::AccountId("999999999999".into())).await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    let f = out.finding("POD_IDENTITY_AGENT_ERROR");
    assert_eq!(f["severity"], "warning");
    assert!(f["message"]
        .as_str()
        .unwrap()
        .contains("account 999999999999"));
    let remedy = f["remedy"].as_str().unwrap();
    assert!(
        remedy.contains("takes AccountId from the role it assumed")
            && !remedy.contains("Expected with a cross-account"),
        "{remedy}"
    );
}

#[tokio::test]
async fn sts_refusing_the_agent_s_credentials_fails_and_leaks_nothing() {
    let (sts, agent, volume) = healthy().await;
    sts.aws.fail_signatures();
    let out = pod(&sts, &agent, &volume)
        .env("RUST_LOG", "trace")
        .run()
        .await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    let f = out.finding("POD_IDENTITY_AGENT_ERROR");
    assert!(
        f["found"]
            .as_str()
            .unwrap()
            .contains("SignatureDoesNotMatch"),
        "{f}"
    );
    let all = out.all_output();
    let handed_out = agent.agent.handed_out();
    assert!(!handed_out.is_empty());
    for creds in handed_out {
        assert!(
            !all.contains(&creds.secret_access_key),
            "the secret key leaked"
        );
        assert!(
            !all.contains(&creds.session_token),
            "the session token leaked"
        );
    }
}

#[tokio::test]
async fn an_https_uri_is_judged_by_the_sdk_s_container_provider() {
    let (sts, agent, volume) = healthy().await;
    // The agent speaks plain HTTP: the SDK's TLS handshake fails, so the
    // app gets no credentials, and neither may the check pass.
    let https = agent.url().replace("http://", "https://");
    let out = doctor!(&sts.url())
        .pod_identity(&https, &volume.path())
        .json()
        .await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    let f = out.finding("POD_IDENTITY_AGENT_ERROR");
    assert!(f["message"].as_str().unwrap().contains("https URI"), "{f}");
    // Loopback is an agent address: no warning about the host.
    assert!(!out.codes().contains(&"POD_IDENTITY_URI_INVALID".to_owned()));
}

#[tokio::test]
async fn a_relative_uri_beside_pod_identity_takes_the_apps_elsewhere() {
    let (sts, agent, volume) = healthy().await;
    let out = pod(&sts, &agent, &volume)
        .env(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/v2/credentials/x",
        )
        .run()
        .await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    let f = out.finding("STATIC_CREDENTIALS_SHADOW");
    assert!(
        f["message"].as_str().unwrap().contains("169.254.170.2"),
        "{f}"
    );
}

#[tokio::test]
async fn a_uri_sdks_refuse_is_invalid_and_never_asked() {
    let (sts, agent, volume) = healthy().await;
    let out = doctor!(&sts.url())
        .pod_identity("http://10.1.2.3/v1/credentials", &volume.path())
        .json()
        .await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    let f = out.finding("POD_IDENTITY_URI_INVALID");
    assert!(f["message"].as_str().unwrap().contains("10.1.2.3"));
    assert_eq!(agent.agent.request_count(), 0);
}

#[tokio::test]
async fn the_ipv6_form_of_the_uri_is_asked() {
    let (sts, agent, volume) = healthy().await;
    assert!(agent.has_ipv6(), "no IPv6 loopback on this machine");
    let out = doctor!(&sts.url())
        .pod_identity(&agent.url_v6(), &volume.path())
        .json()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let seen = &agent.agent.requests()[0];
    assert!(seen.host().unwrap().starts_with("[::1]"), "{seen:?}");
}

#[tokio::test]
async fn a_token_file_with_a_trailing_newline_is_malformed_and_not_sent() {
    let (sts, agent, _) = healthy().await;
    let volume = TokenVolume::pod_identity(&format!("{}\n", token()));
    let out = pod(&sts, &agent, &volume).run().await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    let f = out.finding("TOKEN_MALFORMED");
    assert!(f["message"]
        .as_str()
        .unwrap()
        .contains("Authorization header"));
    assert_eq!(
        agent.agent.request_count(),
        0,
        "irsa-doctor did not send it"
    );
}

#[tokio::test]
async fn an_irsa_token_in_the_pod_identity_variable_has_the_wrong_audience() {
    let (sts, agent, _) = healthy().await;
    let volume = TokenVolume::pod_identity(&Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).encode());
    let out = pod(&sts, &agent, &volume).run().await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    let f = out.finding("TOKEN_AUDIENCE_MISMATCH");
    assert!(f["message"]
        .as_str()
        .unwrap()
        .contains("pods.eks.amazonaws.com"));
    // The agent agrees.
    out.finding("POD_IDENTITY_TOKEN_REJECTED");
}

#[tokio::test]
async fn an_expired_token_is_caught_before_the_agent() {
    let (sts, agent, _) = healthy().await;
    let expired = Jwt::for_pod_identity(NAMESPACE, SERVICE_ACCOUNT)
        .set("exp", serde_json::json!(1_000_000_000))
        .encode();
    let volume = TokenVolume::pod_identity(&expired);
    let out = pod(&sts, &agent, &volume).run().await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    out.finding("TOKEN_EXPIRED");
    // irsa-doctor did not ask; the default chain's SDK, which does not look
    // at the expiry, did.
    assert_eq!(out.json()["agent"]["attempts"], 0);
    assert_eq!(agent.agent.request_count(), 1);
}

#[tokio::test]
async fn both_mechanisms_check_irsa_and_warn_that_the_association_is_unused() {
    let (sts, agent, volume) = healthy().await;
    let irsa_volume = TokenVolume::new(&Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).encode());
    let out = pod(&sts, &agent, &volume)
        .irsa(ROLE_ARN, &irsa_volume.path())
        .run()
        .await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    let report = out.json();
    assert_eq!(report["mechanism"], "irsa");
    let f = out.finding("POD_IDENTITY_UNUSED");
    assert_eq!(f["severity"], "warning");
    assert!(!out
        .codes()
        .contains(&"STATIC_CREDENTIALS_SHADOW".to_owned()));
    assert_eq!(report["default_chain"]["provider"], "web_identity");
    assert_eq!(agent.agent.request_count(), 0);
}

#[tokio::test]
async fn half_a_pod_identity_pair_names_the_missing_variable() {
    let sts = FakeAws::healthy().await;
    let out = doctor!(&sts.url())
        .env(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://169.254.170.23/v1/credentials",
        )
        .json()
        .await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    let f = out.finding("ENV_NOT_INJECTED");
    let message = f["message"].as_str().unwrap();
    assert!(
        message.starts_with("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE not set in this container, so EKS Pod Identity is not in use"),
        "{message}"
    );
    assert!(f["remedy"]
        .as_str()
        .unwrap()
        .contains("create-pod-identity-association"));
    assert!(out.json()["mechanism"].is_null());
}

#[tokio::test]
async fn static_keys_shadow_pod_identity_and_name_who_the_app_is() {
    let (sts, agent, volume) = healthy().await;
    sts.aws.add_key(
        "AKIASTATICPODID0001",
        "arn:aws:iam::999988887777:user/ci-bot",
    );
    let out = pod(&sts, &agent, &volume)
        .env("AWS_ACCESS_KEY_ID", "AKIASTATICPODID0001")
        .env("AWS_SECRET_ACCESS_KEY", "STATICPODIDSECRETDONOTLOG")
        .run()
        .await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    let shadow = out.finding("STATIC_CREDENTIALS_SHADOW");
    assert!(shadow["message"]
        .as_str()
        .unwrap()
        .contains("ignores EKS Pod Identity"));
    let mismatch = out.finding("DEFAULT_CHAIN_MISMATCH");
    assert!(mismatch["message"]
        .as_str()
        .unwrap()
        .contains("would not use EKS Pod Identity"));
    assert!(mismatch["found"].as_str().unwrap().contains("user/ci-bot"));
    assert!(!out.all_output().contains("STATICPODIDSECRETDONOTLOG"));
}

#[tokio::test]
async fn a_credentials_profile_shadows_pod_identity() {
    let (sts, agent, volume) = healthy().await;
    sts.aws.add_key(
        "AKIAPROFILEPODID001",
        "arn:aws:iam::111122223333:user/dev-laptop",
    );
    let doctor = pod(&sts, &agent, &volume);
    std::fs::write(
        doctor.home().join("aws-credentials"),
        "[default]\naws_access_key_id = AKIAPROFILEPODID001\naws_secret_access_key = PODIDPROFILESECRET\n",
    )
    .unwrap();
    let out = doctor.run().await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.finding("STATIC_CREDENTIALS_SHADOW")["message"]
        .as_str()
        .unwrap()
        .contains("profile \"default\""));
    assert_eq!(out.json()["default_chain"]["provider"], "profile");
    assert!(!out.all_output().contains("PODIDPROFILESECRET"));
}

#[tokio::test]
async fn the_wrong_role_is_a_mismatch_and_no_expected_role_is_said_so() {
    let (sts, agent, volume) = healthy().await;
    let out = pod(&sts, &agent, &volume)
        .arg("--expected-role-arn")
        .arg("arn:aws:iam::111122223333:role/other")
        .run()
        .await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    out.finding("ROLE_MISMATCH");
    let text = doctor!(&sts.url())
        .pod_identity(&agent.url(), &volume.path())
        .run()
        .await;
    assert_eq!(text.code, 0, "{}", text.stdout);
    assert!(
        text.stdout
            .contains("EKS Pod Identity: AWS_CONTAINER_CREDENTIALS_FULL_URI="),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("agent"), "{}", text.stdout);
    assert!(
        text.stdout.contains("none given: pass --expected-role-arn"),
        "{}",
        text.stdout
    );
    assert!(!text.stdout.contains("role ARN "), "{}", text.stdout);
}

#[tokio::test]
async fn a_proxy_that_would_see_the_request_for_credentials_is_not_used_by_irsa_doctor_but_by_the_sdk(
) {
    let (sts, agent, volume) = healthy().await;
    // The agent by a loopback name NO_PROXY does not cover, and a proxy
    // nothing listens on.
    let by_name = agent.url().replace("127.0.0.1", "localhost");
    let out = doctor!(&sts.url())
        .pod_identity(&by_name, &volume.path())
        .env("HTTP_PROXY", &testkit::agent::refused_url())
        .env("NO_PROXY", "127.0.0.1")
        .json()
        .await;
    let f = out.finding("PROXY_INTERCEPTS_CREDENTIALS");
    assert_eq!(f["severity"], "warning");
    let message = f["message"].as_str().unwrap();
    assert!(message.contains("localhost"), "{message}");
    assert!(message.contains("169.254.169.254"), "{message}");
    // irsa-doctor asked the agent directly and got credentials...
    assert_eq!(out.json()["agent"]["status"], 200, "{}", out.stdout);
    assert_eq!(agent.agent.request_count(), 1);
    // ...but an SDK for Rust goes through the proxy, and fails: so does
    // the check.
    assert_eq!(out.code, 1, "{}", out.stdout);
    let mismatch = out.finding("DEFAULT_CHAIN_MISMATCH");
    assert_eq!(mismatch["severity"], "error");
}

#[tokio::test]
async fn nothing_secret_reaches_any_output_at_trace_level() {
    for fault in [None, Some(Fault::TrustDenied)] {
        let (sts, agent, volume) = healthy().await;
        if let Some(fault) = fault.clone() {
            agent.agent.always(fault);
        }
        for (output, format) in [("text", "text"), ("json", "json")] {
            let out = doctor!(&sts.url())
                .pod_identity(&agent.url(), &volume.path())
                .env("RUST_LOG", "trace")
                .arg("--output")
                .arg(output)
                .arg("--log-format")
                .arg(format)
                .run()
                .await;
            // Trace level is on (a failing run may emit no event at that
            // level: the SDK's own trace events are dropped by design).
            assert!(
                out.stderr.contains("DEBUG"),
                "no verbose output:\n{}",
                out.stderr
            );
            let all = out.all_output();
            let token = token();
            let signature = token.rsplit('.').next().unwrap();
            assert!(
                !all.contains(signature),
                "{fault:?}: the token leaked:\n{all}"
            );
            for creds in agent.agent.handed_out() {
                assert!(
                    !all.contains(&creds.secret_access_key),
                    "{fault:?}: the secret key leaked"
                );
                assert!(
                    !all.contains(&creds.session_token),
                    "{fault:?}: the session token leaked"
                );
            }
            for prefix in [
                testkit::fake_aws::SECRET_PREFIX,
                testkit::fake_aws::SESSION_TOKEN_PREFIX,
            ] {
                assert!(!all.contains(prefix), "{fault:?}: {prefix} leaked:\n{all}");
            }
        }
    }
}

#[tokio::test]
async fn moto_names_the_role_the_agent_s_credentials_belong_to() {
    let moto = testkit::start_moto().await;
    let role = "arn:aws:iam::123456789012:role/platform/moto-app";
    let agent = Agent::from_moto(&moto, role).await;
    let volume = TokenVolume::pod_identity(&token());
    let out = doctor!(&moto.url)
        .pod_identity(&agent.url(), &volume.path())
        .arg("--expected-role-arn")
        .arg(role)
        .json()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let arn = out.json()["assumed_role_arn"].as_str().unwrap().to_owned();
    assert!(
        arn.starts_with("arn:aws:sts::123456789012:assumed-role/moto-app/"),
        "{arn}"
    );
}

#[tokio::test]
async fn serve_follows_a_rotated_pod_identity_token_and_exports_the_mechanism() {
    let (sts, agent, mut volume) = healthy().await;
    let serving = doctor!(&sts.url())
        .pod_identity(&agent.url(), &volume.path())
        .serve()
        .await;
    let status = serving.first_verdict().await;
    assert_eq!(status["verdict"], "pass", "{status:#}");
    assert_eq!(status["mechanism"], "pod_identity");
    let metrics = serving.get("/metrics").await.body;
    assert!(
        metrics.contains("irsa_doctor_mechanism_info{mechanism=\"pod_identity\"} 1\n"),
        "{metrics}"
    );
    // A token for a service account without an association. The interval
    // is the default 5 minutes, so only the `..data` watch can notice it
    // within the wait.
    volume.rotate(&Jwt::for_pod_identity(NAMESPACE, "batch-job").encode());
    let ready = serving.wait_for("/readyz", |a| a.status == 503).await;
    assert!(
        ready.body.contains("POD_IDENTITY_ASSOCIATION_MISSING"),
        "{}",
        ready.body
    );
    volume.rotate(&token());
    serving.wait_for("/readyz", |a| a.status == 200).await;
    let (code, logs) = serving.stop("TERM").await;
    assert_eq!(code, 0, "{logs}");
}

#[tokio::test]
async fn retry_denied_for_rides_out_a_new_association_or_trust_policy() {
    let (sts, agent, volume) = healthy().await;
    agent.agent.fail_next(1, Fault::AssociationMissing);
    agent.agent.fail_next(1, Fault::TrustDenied);
    let out = pod(&sts, &agent, &volume)
        .arg("--retry-denied-for")
        .arg("30s")
        .run()
        .await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(out.json()["agent"]["attempts"], 3);
    // Without it, the first answer is final.
    agent.agent.fail_next(1, Fault::TrustDenied);
    let out = pod(&sts, &agent, &volume).run().await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    out.finding("POD_IDENTITY_TRUST_DENIED");
}

#[tokio::test]
async fn half_of_irsa_s_pair_beside_pod_identity_is_skipped_by_the_sdk_s_chain() {
    let (sts, agent, volume) = healthy().await;
    let irsa_volume = TokenVolume::new(&Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).encode());
    // AWS_WEB_IDENTITY_TOKEN_FILE without AWS_ROLE_ARN: the AWS SDK for
    // Rust's web identity provider is not enabled by half the pair, and the
    // chain goes on to the container provider. (Whether every SDK skips it
    // is not verified; irsa-doctor judges it by the SDK it runs.)
    let out = pod(&sts, &agent, &volume)
        .env(
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            irsa_volume.path().to_str().unwrap(),
        )
        .run()
        .await;
    let report = out.json();
    assert_eq!(report["mechanism"], "pod_identity");
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(report["default_chain"]["provider"], "container");
}

/// As for STS: a last request that only runs out of time does not hide the
/// agent's last answer.
#[tokio::test]
async fn a_last_agent_request_that_runs_out_of_time_keeps_the_last_answer() {
    let (sts, agent, volume) = healthy().await;
    agent
        .agent
        .fail_next(1, Fault::Status(502, "Bad Gateway\n".into()));
    agent.agent.always(Fault::Hang);
    let out = pod(&sts, &agent, &volume)
        .env("IRSA_DOCTOR_TIMEOUT", "2s")
        .run()
        .await;
    agent.agent.release();
    assert_eq!(out.code, 3, "{}", out.stdout);
    let f = out.finding("EKS_AUTH_UNREACHABLE");
    assert!(
        f["found"]
            .as_str()
            .unwrap()
            .starts_with("HTTP 502: Bad Gateway"),
        "{f}"
    );
    assert!(!out
        .codes()
        .contains(&"POD_IDENTITY_AGENT_UNREACHABLE".to_owned()));
}

#[tokio::test]
async fn serve_counts_its_agent_requests_by_outcome_as_the_agent_saw_them() {
    let (sts, agent, volume) = healthy().await;
    let serving = doctor!(&sts.url())
        .pod_identity(&agent.url(), &volume.path())
        .env("IRSA_DOCTOR_TIMEOUT", "2s")
        .arg("--interval")
        .arg("1s")
        .serve()
        .await;
    serving.wait_for("/readyz", |a| a.status == 200).await;
    agent.agent.always(Fault::TrustDenied);
    serving.wait_for("/readyz", |a| a.status == 503).await;
    let before = agent.agent.request_count();
    let metrics = serving.get("/metrics").await.body;
    let after = agent.agent.request_count();
    let (code, _) = serving.stop("TERM").await;
    assert_eq!(code, 0);
    let count = |outcome: &str| -> usize {
        let series = format!("irsa_doctor_agent_requests_total{{outcome=\"{outcome}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&series))
            .unwrap_or_else(|| panic!("no {series} in:\n{metrics}"))
            .parse()
            .unwrap()
    };
    assert!(count("success") >= 1, "{metrics}");
    assert!(count("client_error") >= 1, "{metrics}");
    assert_eq!(count("transport_error"), 0, "{metrics}");
    // Every request the agent saw is counted once (one may still be in
    // flight at the scrape), and the default chain's replayed request is
    // not a request.
    let counted = count("success") + count("client_error") + count("server_error");
    assert!(counted <= after, "{counted} counted, the agent saw {after}");
    assert!(
        counted + 1 >= before,
        "{counted} counted, the agent saw {before}"
    );
}

#[tokio::test]
async fn trust_policy_flag_says_an_irsa_role_does_not_trust_pod_identity() {
    let (sts, agent, volume) = healthy().await;
    agent.agent.fail_next(1, Fault::TrustDenied);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trust.json");
    let irsa_only = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/X"},
        "Action":"sts:AssumeRoleWithWebIdentity"}]}"#;
    std::fs::write(&path, irsa_only).unwrap();
    let out = pod(&sts, &agent, &volume)
        .arg("--trust-policy")
        .arg(path.to_str().unwrap())
        .arg("--expected-role-arn")
        .arg(ROLE_ARN)
        .run()
        .await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    let f = out.finding("POD_IDENTITY_TRUST_DENIED");
    let message = f["message"].as_str().unwrap();
    assert!(message.contains("(a role made for IRSA)"), "{message}");
    let remedy = f["remedy"].as_str().unwrap();
    // The corrected policy keeps the IRSA statement and adds Pod Identity's,
    // limited to this pod's namespace and service account.
    assert!(
        remedy.contains("\"AssumeRoleWithWebIdentity\"")
            || remedy.contains("sts:AssumeRoleWithWebIdentity"),
        "{remedy}"
    );
    assert!(
        remedy.contains(&format!(
            "\"aws:RequestTag/kubernetes-namespace\": \"{NAMESPACE}\""
        )),
        "{remedy}"
    );
    assert!(remedy.contains("--role-name app"), "{remedy}");
}

/// With the association's session tags disabled, `--trust-policy` is
/// evaluated with no tag: a condition on the namespace's request tag is
/// named as what refuses (with the tags, the same file admits the pod,
/// and the finding could only say the file is not IAM's policy).
#[tokio::test]
async fn trust_policy_flag_with_session_tags_disabled_names_the_tag_condition() {
    let (sts, agent, volume) = healthy().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trust.json");
    let by_namespace = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow",
        "Principal":{{"Service":"pods.eks.amazonaws.com"}},
        "Action":["sts:AssumeRole","sts:TagSession"],
        "Condition":{{"StringEquals":{{"aws:RequestTag/kubernetes-namespace":"{NAMESPACE}"}}}}}}]}}"#
    );
    std::fs::write(&path, by_namespace).unwrap();
    agent.agent.fail_next(1, Fault::TrustDenied);
    let out = pod(&sts, &agent, &volume)
        .env("IRSA_DOCTOR_SESSION_TAGS", "disabled")
        .args(&["--trust-policy", path.to_str().unwrap()])
        .run()
        .await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    let f = out.finding("POD_IDENTITY_TRUST_DENIED");
    let text = format!("{}\n{}", f["message"], f["remedy"]);
    assert!(
        text.contains("session tags are disabled (--session-tags disabled)"),
        "{text}"
    );
    assert_eq!(out.json()["agent"]["session_tags"], "disabled");
}

#[tokio::test]
async fn a_token_of_another_service_account_is_subject_mismatch() {
    let (sts, agent, volume) = healthy().await;
    let out = pod(&sts, &agent, &volume)
        .arg("--service-account")
        .arg("web")
        .run()
        .await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    let message = out.finding("SUBJECT_MISMATCH")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.starts_with("the token's service account is not this pod's"),
        "{message}"
    );
}

/// The codes of a `/status` answer's findings.
fn status_codes(status: &serde_json::Value) -> Vec<String> {
    status["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect()
}

/// Issue 22: an agent 200 whose `Expiration` had passed was a pass (exit
/// 0, no finding), though botocore fails on the same answer ("the
/// refreshed credentials are still expired") and AWS refuses them.
#[tokio::test]
async fn expired_agent_credentials_fail_with_credentials_expired() {
    let (out, _agent) = with_fault(Fault::ExpiresIn(-600)).await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    assert_eq!(report["verdict"], "fail");
    let f = out.finding("CREDENTIALS_EXPIRED");
    assert_eq!(f["severity"], "error", "{f:#}");
    let message = f["message"].as_str().unwrap();
    assert!(
        message.contains("the EKS Pod Identity agent at http://")
            && message.contains("ago by this container's clock")
            && message.contains("still expired"),
        "{message}"
    );
    assert!(
        f["remedy"]
            .as_str()
            .unwrap()
            .contains("eks-pod-identity-agent"),
        "{f:#}"
    );
    // The expiry is in the report, and STS's clock was compared with ours
    // (GetCallerIdentity's Date header): no CLOCK_SKEW on a clock in time.
    assert!(report["agent"]["expiration"].is_string(), "{report:#}");
    assert!(report["sts"]["clock_offset_seconds"].is_i64(), "{report:#}");
    assert!(!out.codes().contains(&"CLOCK_SKEW".to_owned()));
}

/// Credentials 5 minutes from expiry: inside botocore's refresh window, so
/// every call of a boto3 app would ask the agent again. A warning; the pod
/// still passes. A healthy agent's 6-hour credentials say nothing.
#[tokio::test]
async fn agent_credentials_about_to_expire_are_a_warning() {
    let (out, _agent) = with_fault(Fault::ExpiresIn(300)).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.codes(), ["CREDENTIALS_EXPIRING"], "{}", out.stdout);
    let f = out.finding("CREDENTIALS_EXPIRING");
    assert_eq!(f["severity"], "warning", "{f:#}");
    let message = f["message"].as_str().unwrap();
    assert!(
        message.contains("botocore refreshes 15 minutes before expiry")
            && message.contains("AWS SDK for Rust"),
        "{message}"
    );
    assert_eq!(f["expected"], "credentials with more than 15m left");

    let (out, _agent) = with_fault(Fault::ExpiresIn(20 * 60)).await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(out.codes(), Vec::<String>::new(), "{}", out.stdout);
}

/// In `serve`, the expired credentials fail the check: `/status` says why.
#[tokio::test]
async fn serve_shows_expired_agent_credentials_in_status() {
    let (sts, agent, volume) = healthy().await;
    agent.agent.always(Fault::ExpiresIn(-600));
    let serving = doctor!(&sts.url())
        .pod_identity(&agent.url(), &volume.path())
        .serve()
        .await;
    let status = serving.first_verdict().await;
    assert_eq!(status["verdict"], "fail", "{status:#}");
    assert!(
        status_codes(&status).contains(&"CREDENTIALS_EXPIRED".to_owned()),
        "{status:#}"
    );
    let (code, logs) = serving.stop("TERM").await;
    assert_eq!(code, 0, "{logs}");
}

// Issue 24 §6: where the pod runs. EKS Pod Identity does not work on
// Fargate (no agent runs there); IRSA does. The node's name, from the
// Downward API's spec.nodeName, tells: Fargate's start with `fargate-`.

/// The false pass: a Pod Identity pod on a Fargate node. Whatever answers
/// at the agent's address (here a healthy stand-in, which the binary
/// before issue 24 asked and passed on), the pod gets
/// POD_IDENTITY_UNSUPPORTED_COMPUTE and nothing is asked. With nothing
/// listening, as on a real Fargate node, the same one finding comes at
/// once, not an unreachable agent after --timeout.
#[tokio::test]
async fn a_pod_identity_pod_on_fargate_fails_with_one_finding_and_asks_nothing() {
    let node = "fargate-ip-10-0-1-23.eu-west-1.compute.internal";
    let (sts, agent, volume) = healthy().await;
    let out = pod(&sts, &agent, &volume)
        .env("IRSA_DOCTOR_NODE_NAME", node)
        .env("IRSA_DOCTOR_NAMESPACE", NAMESPACE)
        .env("IRSA_DOCTOR_SERVICE_ACCOUNT", SERVICE_ACCOUNT)
        .args(&["--expected-role-arn", ROLE_ARN])
        .run()
        .await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.codes(), ["POD_IDENTITY_UNSUPPORTED_COMPUTE"]);
    let f = out.finding("POD_IDENTITY_UNSUPPORTED_COMPUTE");
    let remedy = f["remedy"].as_str().unwrap();
    assert!(
        remedy.contains(&format!(
            "kubectl annotate serviceaccount -n {NAMESPACE} {SERVICE_ACCOUNT} \
             eks.amazonaws.com/role-arn={ROLE_ARN}"
        )),
        "{remedy}"
    );
    assert!(f["message"].as_str().unwrap().contains(node), "{f:#}");
    assert_eq!(agent.agent.request_count(), 0, "the agent is not asked");
    assert_eq!(sts.aws.caller_identity_calls(), 0);
    let report = out.json();
    assert_eq!(report["agent"]["attempts"], 0);
    assert!(
        report["default_chain"]["error"]
            .as_str()
            .unwrap()
            .contains("Fargate"),
        "{report:#}"
    );

    // Nothing at the agent's address: still the one finding, well before
    // the 20 s --timeout.
    let started = std::time::Instant::now();
    let out = doctor!(&sts.url())
        .pod_identity("http://127.0.0.1:1/v1/credentials", &volume.path())
        .env("IRSA_DOCTOR_NODE_NAME", node)
        .env("IRSA_DOCTOR_TIMEOUT", "20s")
        .args(&["--output", "json"])
        .run()
        .await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.codes(), ["POD_IDENTITY_UNSUPPORTED_COMPUTE"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

/// The false fail's guard: IRSA works on Fargate, and a node whose name
/// only contains the word is not a Fargate node.
#[tokio::test]
async fn irsa_on_fargate_and_a_fargate_like_node_name_pass() {
    let (sts, agent, volume) = healthy().await;
    let out = pod(&sts, &agent, &volume)
        .args(&[
            "--node-name",
            "ip-10-0-0-1.fargate-like",
            "--expected-role-arn",
            ROLE_ARN,
        ])
        .run()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(agent.agent.request_count(), 1);

    let irsa_volume = TokenVolume::new(&testkit::jwt::good_token());
    let out = doctor!(&sts.url())
        .irsa(ROLE_ARN, &irsa_volume.path())
        .args(&[
            "--output",
            "json",
            "--node-name",
            "fargate-ip-10-0-1-23.eu-west-1.compute.internal",
        ])
        .run()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.json()["findings"], serde_json::json!([]));
}

/// Without IRSA_DOCTOR_NODE_NAME, the node the token names (Kubernetes
/// 1.30 and later put it in `kubernetes.io.node.name`) tells the same.
#[tokio::test]
async fn the_token_s_node_claim_tells_fargate_when_the_node_name_is_not_given() {
    let (sts, agent, _) = healthy().await;
    let mut jwt = Jwt::for_pod_identity(NAMESPACE, SERVICE_ACCOUNT);
    jwt.claims["kubernetes.io"]["node"]["name"] =
        serde_json::json!("fargate-ip-10-0-1-23.ec2.internal");
    let volume = TokenVolume::pod_identity(&jwt.encode());
    let out = pod(&sts, &agent, &volume).run().await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.codes(), ["POD_IDENTITY_UNSUPPORTED_COMPUTE"]);
    assert_eq!(agent.agent.request_count(), 0);
}

/// The association's own role in the cluster's account, and a target role
/// in another account (issue 24, section 1).
const ASSOCIATION_ROLE: &str = "arn:aws:iam::111122223333:role/eks-hop";
const TARGET_ROLE: &str = "arn:aws:iam::444455556666:role/data-reader";

/// An agent whose association assumes `ASSOCIATION_ROLE`, then the target
/// role with it; `target_trusts` says whether the target admits the first.
async fn cross_account(target_trusts: bool) -> (FakeAwsServer, AgentServer, TokenVolume) {
    let sts = FakeAws::healthy().await;
    sts.aws.trust_pod_identity(ASSOCIATION_ROLE);
    if target_trusts {
        sts.aws.trust_role(TARGET_ROLE, ASSOCIATION_ROLE, None);
    }
    let agent = Agent::new(&sts.aws).start().await;
    agent
        .agent
        .associate(NAMESPACE, SERVICE_ACCOUNT, ASSOCIATION_ROLE);
    agent.agent.target(TARGET_ROLE);
    (sts, agent, TokenVolume::pod_identity(&token()))
}

/// The pod gets the target role's credentials: GetCallerIdentity names
/// the target, `--expected-role-arn` is the target, and the report shows
/// both hops.
#[tokio::test]
async fn a_target_role_association_passes_as_the_target_and_shows_both_hops() {
    let (sts, agent, volume) = cross_account(true).await;
    let out = pod(&sts, &agent, &volume)
        .env("IRSA_DOCTOR_ASSOCIATION_ROLE_ARN", ASSOCIATION_ROLE)
        .args(&["--expected-role-arn", TARGET_ROLE])
        .run()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    let arn = report["assumed_role_arn"].as_str().unwrap();
    assert!(
        arn.starts_with("arn:aws:sts::444455556666:assumed-role/data-reader/eks-"),
        "{arn}"
    );
    assert_eq!(report["agent"]["association_role_arn"], ASSOCIATION_ROLE);
    assert_eq!(report["agent"]["target_role_arn"], TARGET_ROLE);
    assert_eq!(report["agent"]["session_tags"], "enabled");
    let text = doctor!(&sts.url())
        .pod_identity(&agent.url(), &volume.path())
        .env("IRSA_DOCTOR_ASSOCIATION_ROLE_ARN", ASSOCIATION_ROLE)
        .args(&["--expected-role-arn", TARGET_ROLE])
        .run()
        .await;
    assert!(
        text.stdout.contains(&format!(
            "hops: association role {ASSOCIATION_ROLE}, then target role {TARGET_ROLE}"
        )),
        "{}",
        text.stdout
    );
}

/// The pod still gets the association's own role (the agent's cache from
/// before the target was set, or no target at all): ROLE_MISMATCH says it
/// is the first hop, how to set the target, and that recreating the pod
/// is the fix while the agent's cache lasts.
#[tokio::test]
async fn the_association_s_own_role_instead_of_the_target_is_a_mismatch_naming_the_cache() {
    let sts = FakeAws::healthy().await;
    sts.aws.trust_pod_identity(ASSOCIATION_ROLE);
    let agent = Agent::new(&sts.aws).start().await;
    agent
        .agent
        .associate(NAMESPACE, SERVICE_ACCOUNT, ASSOCIATION_ROLE);
    let volume = TokenVolume::pod_identity(&token());
    let out = pod(&sts, &agent, &volume)
        .env("IRSA_DOCTOR_ASSOCIATION_ROLE_ARN", ASSOCIATION_ROLE)
        .args(&["--expected-role-arn", TARGET_ROLE])
        .run()
        .await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    let f = out.finding("ROLE_MISMATCH");
    let remedy = f["remedy"].as_str().unwrap();
    assert!(remedy.contains("the first hop"), "{remedy}");
    assert!(
        remedy.contains(&format!("--target-role-arn {TARGET_ROLE}")),
        "{remedy}"
    );
    assert!(remedy.contains("59 minutes with a target role"), "{remedy}");
    assert!(remedy.contains("Recreating the pod is the fix"), "{remedy}");
}

/// The target's trust policy does not admit the association's role: the
/// finding names the second hop and prints the statement it needs
/// (`Principal` `AWS` the first role; with session tags disabled,
/// `sts:ExternalId` and no `sts:TagSession`).
#[tokio::test]
async fn a_target_that_does_not_trust_the_first_role_is_the_second_hop_s_refusal() {
    let (sts, agent, volume) = cross_account(false).await;
    for (tags, wanted, unwanted) in [
        ("enabled", "sts:TagSession", "sts:ExternalId"),
        ("disabled", "sts:ExternalId", "sts:TagSession"),
    ] {
        let out = pod(&sts, &agent, &volume)
            .env("IRSA_DOCTOR_ASSOCIATION_ROLE_ARN", ASSOCIATION_ROLE)
            .env("IRSA_DOCTOR_SESSION_TAGS", tags)
            .args(&["--expected-role-arn", TARGET_ROLE])
            .run()
            .await;
        assert_eq!(out.code, 1, "{}", out.stdout);
        let f = out.finding("POD_IDENTITY_TRUST_DENIED");
        let message = f["message"].as_str().unwrap();
        assert!(
            message.contains("could not assume the target role"),
            "{message}"
        );
        let remedy = f["remedy"].as_str().unwrap();
        assert!(
            remedy.contains(&format!("\"AWS\": \"{ASSOCIATION_ROLE}\"")),
            "{remedy}"
        );
        assert!(remedy.contains("--role-name data-reader"), "{remedy}");
        let statement = remedy.split("trust.json:").nth(1).unwrap();
        let statement = statement.split("\n}").next().unwrap();
        assert!(statement.contains(wanted), "{tags}: {remedy}");
        assert!(!statement.contains(unwanted), "{tags}: {remedy}");
    }
}

/// The association's role does not trust Pod Identity: the first hop,
/// with the pods.eks.amazonaws.com statement, and the second hop named as
/// the other suspect.
#[tokio::test]
async fn an_association_role_that_does_not_trust_pod_identity_is_the_first_hop_s_refusal() {
    let (sts, agent, volume) = cross_account(true).await;
    let other = FakeAws::healthy().await;
    // A fresh stand-in whose association role trusts nothing.
    let agent_untrusted = Agent::new(&other.aws).start().await;
    agent_untrusted
        .agent
        .associate(NAMESPACE, SERVICE_ACCOUNT, ASSOCIATION_ROLE);
    agent_untrusted.agent.target(TARGET_ROLE);
    drop((sts, agent));
    let out = pod(&other, &agent_untrusted, &volume)
        .env("IRSA_DOCTOR_ASSOCIATION_ROLE_ARN", ASSOCIATION_ROLE)
        .args(&["--expected-role-arn", TARGET_ROLE])
        .run()
        .await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    let f = out.finding("POD_IDENTITY_TRUST_DENIED");
    let message = f["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "cannot assume the association's role {ASSOCIATION_ROLE}"
        )),
        "{message}"
    );
    let remedy = f["remedy"].as_str().unwrap();
    assert!(remedy.contains("pods.eks.amazonaws.com"), "{remedy}");
    assert!(remedy.contains("--role-name eks-hop"), "{remedy}");
    assert!(remedy.contains(TARGET_ROLE), "{remedy}");
}

/// The agent's credentials' expiry, in /status and as a metric: the time
/// a changed association needs to reach this running pod.
#[tokio::test]
async fn serve_shows_when_the_agent_s_cached_credentials_expire() {
    let (sts, agent, volume) = healthy().await;
    let serving = doctor!(&sts.url())
        .pod_identity(&agent.url(), &volume.path())
        .serve()
        .await;
    let status = serving.first_verdict().await;
    assert!(
        status["agent"]["expiration"].as_str().is_some(),
        "{status:#}"
    );
    let metrics = serving.get("/metrics").await.body;
    let left = testkit::serving::metric(
        &metrics,
        "irsa_doctor_credentials_expires_in_seconds{mechanism=\"pod_identity\"}",
    );
    // The stand-in mints six-hour sessions.
    assert!((6 * 3600 - 120..=6 * 3600).contains(&left), "{left}");
    let (code, _) = serving.stop("TERM").await;
    assert_eq!(code, 0);
}
