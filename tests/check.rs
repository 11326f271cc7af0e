//! Black-box tests of `irsa-doctor check` against the loopback STS and IMDS
//! stand-ins: at least one per finding code, each provoked the way the real
//! world provokes it, asserting the exit code and the JSON report.

use std::os::unix::fs::PermissionsExt;

use serde_json::json;
use testkit::fake_aws::{self, FakeAws, Fault, Trust};
use testkit::jwt::{Jwt, TokenVolume};
use testkit::world::{ACCOUNT, ISSUER, NAMESPACE, ROLE_ARN, SERVICE_ACCOUNT};
use testkit::{clock, doctor, imds, Doctor, Outcome};

fn healthy_token() -> TokenVolume {
    TokenVolume::new(&Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).encode())
}

/// `irsa-doctor check` for a pod the webhook has mutated: `AWS_ROLE_ARN`
/// names [`ROLE_ARN`] and the token is `vol`'s, against the STS at `sts_url`.
fn pod(sts_url: &str, vol: &TokenVolume) -> Doctor {
    doctor!(sts_url).irsa(ROLE_ARN, &vol.path())
}

/// Runs `check --output json` for a pod with a healthy token against `sts`;
/// `customize` adds the scenario's env, flags and files (in the pod's
/// [`Doctor::home`]).
async fn check_json(
    sts: &fake_aws::FakeAwsServer,
    customize: impl FnOnce(Doctor) -> Doctor,
) -> Outcome {
    let vol = healthy_token();
    customize(pod(&sts.url(), &vol)).json().await
}

/// [`check_json`] with the text report on stdout.
async fn check_text(
    sts: &fake_aws::FakeAwsServer,
    customize: impl FnOnce(Doctor) -> Doctor,
) -> Outcome {
    let vol = healthy_token();
    customize(pod(&sts.url(), &vol)).run().await
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

#[tokio::test]
async fn healthy_pod_passes_with_one_concurrent_round_trip() {
    let sts = FakeAws::healthy().await;
    // Both STS calls (ours and the default chain's) must be in flight at
    // once, or the stand-in answers 500 and the check cannot pass.
    sts.aws.always(Fault::Rendezvous);
    let out = check_json(&sts, |d| d).await;
    let report = out.json();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["findings"], json!([]));
    assert_eq!(report["role_arn"], ROLE_ARN);
    assert_eq!(report["expected_role_arn"], ROLE_ARN);
    assert_eq!(
        report["assumed_role_arn"],
        "arn:aws:sts::111122223333:assumed-role/app/irsa-doctor-app-7d9f8c-x2x4q"
    );
    assert_eq!(report["token"]["sub"], "system:serviceaccount:payments:app");
    assert_eq!(report["token"]["aud"], json!(["sts.amazonaws.com"]));
    assert_eq!(report["token"]["kubernetes"]["namespace"], "payments");
    assert!(report["sts"]["endpoint"]
        .as_str()
        .unwrap()
        .starts_with(&sts.url()));
    assert_eq!(report["sts"]["region"], "us-east-1");
    assert_eq!(report["sts"]["request_id"], "req-assume-0001");
    assert_eq!(report["sts"]["attempts"], 1);
    assert_eq!(report["default_chain"]["provider"], "web_identity");
    assert_eq!(report["default_chain"]["arn"], report["assumed_role_arn"]);
    assert!(report["duration_ms"].is_u64());
    assert_eq!(report["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(sts.aws.assume_calls(), 2, "ours and the default chain's");
    assert_eq!(sts.aws.our_assume_calls(), 1);
    assert!(
        out.termination_log.starts_with("irsa-doctor: pass"),
        "{}",
        out.termination_log
    );
}

#[tokio::test]
async fn text_report_puts_the_verdict_first_and_every_step_after() {
    let sts = FakeAws::healthy().await;
    let out = check_text(&sts, |d| d).await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    let first = out.stdout.lines().next().unwrap();
    assert_eq!(
        first,
        "irsa-doctor: pass: acting as arn:aws:sts::111122223333:assumed-role/app/irsa-doctor-app-7d9f8c-x2x4q"
    );
    for step in [
        "environment",
        "role ARN",
        "token",
        "STS",
        "role",
        "app's view",
    ] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with("  ok") && l.contains(step)),
            "step {step} not ok in:\n{}",
            out.stdout
        );
    }
}

#[tokio::test]
async fn env_not_injected_names_the_node_role_the_pod_falls_back_to() {
    let sts = FakeAws::healthy().await;
    sts.aws.add_key(imds::NODE_KEY, imds::NODE_ASSUMED_ARN);
    let imds = imds::start().await;
    let out = doctor!(&sts.url())
        .unset("AWS_EC2_METADATA_DISABLED")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.url())
        .arg("--expected-role-arn")
        .arg(ROLE_ARN)
        .json()
        .await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let f = out.finding("ENV_NOT_INJECTED");
    assert_eq!(f["severity"], "error");
    let message = f["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("this pod would act as {}", imds::NODE_ASSUMED_ARN)),
        "{message}"
    );
    let remedy = f["remedy"].as_str().unwrap();
    assert!(
        remedy.contains(&format!("eks.amazonaws.com/role-arn={ROLE_ARN}")),
        "{remedy}"
    );
    assert!(remedy.contains("only at creation"), "{remedy}");
    assert!(remedy.contains("webhook"), "{remedy}");
    let report = out.json();
    assert_eq!(report["default_chain"]["provider"], "imds");
    assert_eq!(report["default_chain"]["arn"], imds::NODE_ASSUMED_ARN);
    assert_eq!(sts.aws.our_assume_calls(), 0);
}

#[tokio::test]
async fn env_half_injected_says_the_webhook_adds_neither() {
    let sts = FakeAws::healthy().await;
    let out = doctor!(&sts.url())
        .env("AWS_ROLE_ARN", ROLE_ARN)
        .json()
        .await;
    assert_eq!(out.code, 1);
    let f = out.finding("ENV_NOT_INJECTED");
    assert!(f["message"]
        .as_str()
        .unwrap()
        .starts_with("AWS_WEB_IDENTITY_TOKEN_FILE not set"));
    assert!(f["remedy"].as_str().unwrap().contains("adds neither"));
    assert!(f["found"]
        .as_str()
        .unwrap()
        .contains("no AWS credentials at all"));
}

#[tokio::test]
async fn role_arn_invalid_is_caught_before_sts() {
    let sts = FakeAws::healthy().await;
    let out = check_json(&sts, |d| {
        d.env("AWS_ROLE_ARN", "arn:aws:iam::1234:role/app")
    })
    .await;
    assert_eq!(out.code, 1);
    let f = out.finding("ROLE_ARN_INVALID");
    assert!(f["message"]
        .as_str()
        .unwrap()
        .contains("expected 12 digits"));
    assert_eq!(sts.aws.our_assume_calls(), 0);
}

#[tokio::test]
async fn dangling_data_symlink_is_token_file_missing() {
    let sts = FakeAws::healthy().await;
    let vol = healthy_token();
    vol.break_data_link();
    let out = pod(&sts.url(), &vol).json().await;
    assert_eq!(out.code, 1);
    let f = out.finding("TOKEN_FILE_MISSING");
    let message = f["message"].as_str().unwrap();
    assert!(
        message.contains("..data/token") && message.contains("..2026_11_28"),
        "{message}"
    );
    assert_eq!(sts.aws.our_assume_calls(), 0);
}

#[tokio::test]
async fn unmounted_volume_is_token_file_missing() {
    let sts = FakeAws::healthy().await;
    let out = doctor!(&sts.url())
        .irsa(
            ROLE_ARN,
            std::path::Path::new("/var/run/secrets/eks.amazonaws.com/serviceaccount/token"),
        )
        .json()
        .await;
    assert_eq!(out.code, 1);
    assert!(out.finding("TOKEN_FILE_MISSING")["message"]
        .as_str()
        .unwrap()
        .starts_with("no token volume is mounted in this container"));
}

#[tokio::test]
async fn hand_set_variables_without_a_volume_say_the_webhook_skipped_the_container() {
    // A container that sets AWS_ROLE_ARN, a region and
    // AWS_STS_REGIONAL_ENDPOINTS itself leaves the webhook nothing to add:
    // it mounts no volume, and recreating the pod cannot help.
    let sts = FakeAws::healthy().await;
    let out = doctor!(&sts.url())
        .irsa(
            ROLE_ARN,
            std::path::Path::new("/var/run/secrets/eks.amazonaws.com/serviceaccount/token"),
        )
        .env("AWS_STS_REGIONAL_ENDPOINTS", "regional")
        .json()
        .await;
    assert_eq!(out.code, 1);
    assert_eq!(out.codes(), ["TOKEN_FILE_MISSING"]);
    let f = out.finding("TOKEN_FILE_MISSING");
    let remedy = f["remedy"].as_str().unwrap();
    assert!(!remedy.contains("(recreate it)"), "{remedy}");
    assert!(
        remedy.contains("recreating the pod changes nothing"),
        "{remedy}"
    );
    assert!(
        remedy.contains("projected volume named aws-iam-token"),
        "{remedy}"
    );
    assert!(remedy.contains("drop the hand-set variables"), "{remedy}");
    let found = f["found"].as_str().unwrap();
    assert!(
        found.starts_with("no /var/run/secrets/eks.amazonaws.com/serviceaccount; this container sets AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE, AWS_REGION"),
        "{found}"
    );
    assert!(found.ends_with("AWS_STS_REGIONAL_ENDPOINTS"), "{found}");
}

#[tokio::test]
async fn token_owned_by_another_uid_is_unreadable_with_the_fsgroup_remedy() {
    let sts = FakeAws::healthy().await;
    let vol = healthy_token();
    let file = vol.data_file();
    let mut doctor = pod(&sts.url(), &vol);
    if is_root() {
        // Like a kubelet without fsGroup: 0600, owned by root; we run as 65534.
        std::fs::set_permissions(vol.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        doctor = doctor.run_as(65534, 65534);
    } else {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    let out = doctor.json().await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let f = out.finding("TOKEN_FILE_UNREADABLE");
    let found = f["found"].as_str().unwrap();
    assert!(found.contains("file mode 0"), "{found}");
    assert!(found.contains("this process runs as uid"), "{found}");
    assert!(f["remedy"].as_str().unwrap().contains("fsGroup"));
}

#[tokio::test]
async fn a_file_that_is_not_a_jwt_is_token_malformed() {
    let sts = FakeAws::healthy().await;
    let vol = TokenVolume::new("this-is-not-a-jwt\n");
    let out = pod(&sts.url(), &vol).json().await;
    assert_eq!(out.code, 1);
    assert!(out.finding("TOKEN_MALFORMED")["message"]
        .as_str()
        .unwrap()
        .contains("not a JWT"));
    assert_eq!(sts.aws.our_assume_calls(), 0);
}

#[tokio::test]
async fn a_ten_megabyte_token_file_is_refused_not_read_whole() {
    let sts = FakeAws::healthy().await;
    let vol = TokenVolume::new(&"a".repeat(10 * 1024 * 1024));
    let out = pod(&sts.url(), &vol).json().await;
    assert_eq!(out.code, 1);
    assert!(out.finding("TOKEN_MALFORMED")["message"]
        .as_str()
        .unwrap()
        .contains("20000"));
}

#[tokio::test]
async fn expired_token_is_token_expired() {
    let sts = FakeAws::healthy().await;
    let stale = Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).set("exp", json!(clock::now() - 3600));
    let vol = TokenVolume::new(&stale.encode());
    let out = pod(&sts.url(), &vol).json().await;
    assert_eq!(out.code, 1);
    let f = out.finding("TOKEN_EXPIRED");
    assert!(f["remedy"]
        .as_str()
        .unwrap()
        .contains("ip-10-0-1-23.ec2.internal"));
    assert_eq!(
        sts.aws.our_assume_calls(),
        0,
        "an expired token is not sent"
    );
}

#[tokio::test]
async fn wrong_audience_is_one_audience_mismatch_finding() {
    let sts = FakeAws::healthy().await;
    let token = Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).set("aud", json!(["vault"]));
    let vol = TokenVolume::new(&token.encode());
    let out = pod(&sts.url(), &vol)
        .arg("--audience")
        .arg("sts.amazonaws.com")
        .json()
        .await;
    assert_eq!(out.code, 1);
    assert_eq!(
        out.codes(),
        ["TOKEN_AUDIENCE_MISMATCH"],
        "local and STS agree; said once"
    );
    let f = out.finding("TOKEN_AUDIENCE_MISMATCH");
    assert_eq!(f["expected"], "aud containing sts.amazonaws.com");
    assert_eq!(f["found"], "aud [vault]");
}

#[tokio::test]
async fn an_audience_sts_refuses_names_the_token_audience_and_the_provider() {
    let sts = FakeAws::healthy().await;
    let token = Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).set("aud", json!(["vault"]));
    let vol = TokenVolume::new(&token.encode());
    let out = pod(&sts.url(), &vol).json().await;
    assert_eq!(out.code, 1);
    assert_eq!(out.codes(), ["TOKEN_AUDIENCE_MISMATCH"]);
    assert_eq!(sts.aws.our_assume_calls(), 1, "STS is the judge");
    let f = out.finding("TOKEN_AUDIENCE_MISMATCH");
    assert!(
        f["message"].as_str().unwrap().starts_with(
            "STS rejected the token's audience (InvalidIdentityToken: Incorrect token audience)"
        ),
        "{f}"
    );
    assert_eq!(f["found"], "aud [vault]");
    assert_eq!(
        f["expected"],
        format!(
            "aud containing a client ID registered on the IAM OIDC provider for {} (by default \
             sts.amazonaws.com)",
            ISSUER
        )
    );
}

#[tokio::test]
async fn a_custom_audience_sts_accepts_passes_without_audience() {
    // The webhook honours eks.amazonaws.com/audience: the token carries
    // my-aud, the provider registers it, and the app's chain works.
    let aws = FakeAws::empty();
    aws.add_provider(ACCOUNT, ISSUER, &["my-aud"]);
    aws.add_role(
        ROLE_ARN,
        Trust {
            aud: "my-aud".into(),
            ..Trust::for_sa(NAMESPACE, SERVICE_ACCOUNT)
        },
    );
    let sts = aws.start().await;
    let token = Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).set("aud", json!(["my-aud"]));
    let vol = TokenVolume::new(&token.encode());
    let out = pod(&sts.url(), &vol).json().await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(out.json()["sts"]["audience"], "my-aud");
    // An explicit --audience keeps the strict check.
    let strict = pod(&sts.url(), &vol)
        .arg("--audience")
        .arg("sts.amazonaws.com")
        .json()
        .await;
    assert_eq!(strict.code, 1);
    assert_eq!(strict.codes(), ["TOKEN_AUDIENCE_MISMATCH"]);
}

#[tokio::test]
async fn missing_audience_is_audience_mismatch() {
    let sts = FakeAws::healthy().await;
    let vol = TokenVolume::new(
        &Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT)
            .without("aud")
            .encode(),
    );
    let out = pod(&sts.url(), &vol).json().await;
    assert_eq!(out.code, 1);
    assert_eq!(
        out.finding("TOKEN_AUDIENCE_MISMATCH")["found"],
        "no aud claim"
    );
}

#[tokio::test]
async fn custom_audience_passes_when_the_provider_registers_it() {
    let aws = FakeAws::empty();
    aws.add_provider(ACCOUNT, ISSUER, &["irsa.example.com"]);
    aws.add_role(
        ROLE_ARN,
        Trust {
            aud: "irsa.example.com".into(),
            ..Trust::for_sa(NAMESPACE, SERVICE_ACCOUNT)
        },
    );
    let sts = aws.start().await;
    let token = Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).set("aud", json!(["irsa.example.com"]));
    let vol = TokenVolume::new(&token.encode());
    let out = pod(&sts.url(), &vol)
        .arg("--audience")
        .arg("irsa.example.com")
        .json()
        .await;
    assert_eq!(out.code, 0, "{}", out.stdout);
}

#[tokio::test]
async fn no_oidc_provider_in_the_account_is_oidc_provider_missing() {
    let sts = FakeAws::healthy().await;
    sts.aws.remove_providers();
    let out = check_json(&sts, |d| d).await;
    assert_eq!(out.code, 1);
    let f = out.finding("OIDC_PROVIDER_MISSING");
    assert!(f["message"].as_str().unwrap().contains(ISSUER));
    assert!(f["message"].as_str().unwrap().contains(ACCOUNT));
    assert!(f["found"]
        .as_str()
        .unwrap()
        .starts_with("InvalidIdentityToken: No OpenIDConnect provider found"));
    assert!(f["remedy"]
        .as_str()
        .unwrap()
        .contains("associate-iam-oidc-provider"));
    assert_eq!(out.json()["sts"]["error_code"], "InvalidIdentityToken");
}

#[tokio::test]
async fn thumbprint_mismatch_is_token_rejected() {
    let sts = FakeAws::healthy().await;
    sts.aws.always(Fault::Thumbprint);
    let out = check_json(&sts, |d| d).await;
    assert_eq!(out.code, 1);
    assert!(out.finding("TOKEN_REJECTED")["remedy"]
        .as_str()
        .unwrap()
        .contains("thumbprint"));
    assert_eq!(sts.aws.our_assume_calls(), 1, "not retried");
}

#[tokio::test]
async fn trust_policy_for_another_namespace_is_denied_with_the_statement_that_would_work() {
    let sts = FakeAws::healthy().await;
    sts.aws
        .set_trust(ROLE_ARN, Trust::for_sa("other-namespace", SERVICE_ACCOUNT));
    let out = check_json(&sts, |d| d).await;
    assert_eq!(out.code, 1);
    assert_eq!(out.codes(), ["TRUST_POLICY_DENIED"]);
    let f = out.finding("TRUST_POLICY_DENIED");
    let found = f["found"].as_str().unwrap();
    assert!(
        found.contains("sub system:serviceaccount:payments:app"),
        "{found}"
    );
    assert!(found.contains(&format!("iss {}", ISSUER)), "{found}");
    assert!(found.contains("aud [sts.amazonaws.com]"), "{found}");
    let remedy = f["remedy"].as_str().unwrap();
    let provider = fake_aws::strip_scheme(ISSUER);
    assert!(
        remedy.contains(&format!(
            "\"Federated\": \"arn:aws:iam::{ACCOUNT}:oidc-provider/{provider}\""
        )),
        "{remedy}"
    );
    assert!(
        remedy.contains(&format!(
            "\"{provider}:sub\": \"system:serviceaccount:payments:app\""
        )),
        "{remedy}"
    );
    assert!(remedy.contains("--role-name app"), "{remedy}");
}

#[tokio::test]
async fn trust_denied_text_report_shows_expected_found_and_fix() {
    let sts = FakeAws::healthy().await;
    sts.aws
        .set_trust(ROLE_ARN, Trust::for_sa("other-namespace", SERVICE_ACCOUNT));
    let out = check_text(&sts, |d| d).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .starts_with("irsa-doctor: fail: TRUST_POLICY_DENIED: "),
        "{}",
        out.stdout
    );
    for label in ["expected: ", "found:    ", "fix:      "] {
        assert!(
            out.stdout.contains(label),
            "{label} missing:\n{}",
            out.stdout
        );
    }
    assert!(out
        .stdout
        .contains("\"Action\": \"sts:AssumeRoleWithWebIdentity\""));
    assert!(out
        .termination_log
        .starts_with("irsa-doctor: fail: TRUST_POLICY_DENIED"));
    assert!(!out.termination_log.contains('\n'));
}

#[tokio::test]
async fn access_denied_during_iam_propagation_passes_with_retry_denied_for() {
    let sts = FakeAws::healthy().await;
    sts.aws.fail_next(2, Fault::AccessDenied);
    let out = check_json(&sts, |d| d.arg("--retry-denied-for").arg("15s")).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.codes(), Vec::<String>::new(), "{}", out.stdout);
    // The chain's own call may take one of the two denials; ours retries.
    assert!(out.json()["sts"]["attempts"].as_u64().unwrap() >= 2);
}

#[tokio::test]
async fn access_denied_is_final_by_default() {
    let sts = FakeAws::healthy().await;
    sts.aws.always(Fault::AccessDenied);
    let out = check_json(&sts, |d| d).await;
    assert_eq!(out.code, 1);
    assert_eq!(out.json()["sts"]["attempts"], 1);
}

#[tokio::test]
async fn sts_off_in_the_region_is_region_disabled() {
    let sts = FakeAws::healthy().await;
    sts.aws.always(Fault::RegionDisabled);
    let out = check_json(&sts, |d| d.env("AWS_REGION", "ap-east-1")).await;
    assert_eq!(out.code, 1);
    let f = out.finding("REGION_DISABLED");
    assert!(f["message"].as_str().unwrap().contains("ap-east-1"));
}

#[tokio::test]
async fn no_region_anywhere_is_a_warning_not_a_failure() {
    let sts = FakeAws::healthy().await;
    let out = check_json(&sts, |d| d.unset("AWS_REGION")).await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(out.finding("REGION_MISSING")["severity"], "warning");
}

#[tokio::test]
async fn closed_port_is_sts_unreachable_and_inconclusive() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let vol = healthy_token();
    let out = pod(&url, &vol)
        .env("IRSA_DOCTOR_TIMEOUT", "2s")
        .json()
        .await;
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    assert_eq!(report["verdict"], "inconclusive");
    assert!(
        report["sts"]["attempts"].as_u64().unwrap() > 1,
        "retried until the deadline"
    );
    let f = out.finding("STS_UNREACHABLE");
    assert!(f["message"].as_str().unwrap().contains(&url), "{f}");
}

#[tokio::test]
async fn sts_slower_than_the_deadline_is_sts_unreachable() {
    let sts = FakeAws::healthy().await;
    sts.aws
        .always(Fault::Delay(std::time::Duration::from_secs(30)));
    let out = check_json(&sts, |d| d.env("IRSA_DOCTOR_TIMEOUT", "2s")).await;
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    out.finding("STS_UNREACHABLE");
}

#[tokio::test]
async fn throttled_until_the_deadline_is_sts_throttled() {
    let sts = FakeAws::healthy().await;
    sts.aws.always(Fault::Throttle);
    let out = check_json(&sts, |d| d.env("IRSA_DOCTOR_TIMEOUT", "2s")).await;
    assert_eq!(out.code, 3);
    assert!(out.finding("STS_THROTTLED")["found"]
        .as_str()
        .unwrap()
        .contains("Rate exceeded"));
}

#[tokio::test]
async fn a_throttling_spell_is_ridden_out_by_retries() {
    let sts = FakeAws::healthy().await;
    sts.aws.fail_next(3, Fault::Throttle);
    let out = check_json(&sts, |d| d).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.codes(), Vec::<String>::new(), "{}", out.stdout);
    assert!(out.json()["sts"]["attempts"].as_u64().unwrap() >= 2);
}

#[tokio::test]
async fn idp_communication_error_until_the_deadline_is_idp_unreachable() {
    let sts = FakeAws::healthy().await;
    sts.aws.always(Fault::IdpCommunication);
    let out = check_json(&sts, |d| d.env("IRSA_DOCTOR_TIMEOUT", "2s")).await;
    assert_eq!(out.code, 3);
    out.finding("IDP_UNREACHABLE");
}

#[tokio::test]
async fn couldnt_retrieve_verification_key_is_transient_and_retried() {
    let sts = FakeAws::healthy().await;
    sts.aws.fail_next(3, Fault::VerificationKey);
    let out = check_json(&sts, |d| d).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.codes(), Vec::<String>::new(), "{}", out.stdout);
}

#[tokio::test]
async fn a_body_that_is_not_sts_xml_is_sts_error() {
    for fault in [Fault::Garbage, Fault::HtmlError] {
        let sts = FakeAws::healthy().await;
        sts.aws.always(fault.clone());
        let out = check_json(&sts, |d| d.env("IRSA_DOCTOR_TIMEOUT", "2s")).await;
        assert_eq!(out.code, 3, "{fault:?}: {}\n{}", out.stdout, out.stderr);
        out.finding("STS_ERROR");
    }
}

/// Regression: the verdict's class once depended on how busy the machine
/// was. When the last attempt only ran out of time, an earlier answer
/// without an STS error code (a proxy's HTML 502) was forgotten and the
/// report said STS_UNREACHABLE instead of STS_ERROR.
#[tokio::test]
async fn a_last_attempt_that_runs_out_of_time_keeps_the_last_answer() {
    let sts = FakeAws::healthy().await;
    sts.aws.fail_next(1, Fault::HtmlError);
    sts.aws
        .always(Fault::Delay(std::time::Duration::from_secs(30)));
    let out = check_json(&sts, |d| d.env("IRSA_DOCTOR_TIMEOUT", "2s")).await;
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    out.finding("STS_ERROR");
    assert!(
        !out.codes().contains(&"STS_UNREACHABLE".to_owned()),
        "{}",
        out.stdout
    );
}

#[tokio::test]
async fn an_endless_answer_is_cut_at_the_body_limit() {
    let sts = FakeAws::healthy().await;
    sts.aws.always(Fault::HugeBody);
    // Long enough for the default chain's own retries (the SDK's standard
    // three attempts with backoff) to end on their own.
    let out = check_json(&sts, |d| d.env("IRSA_DOCTOR_TIMEOUT", "20s")).await;
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let found = out.finding("STS_ERROR")["found"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(found.contains("larger than 1048576 bytes"), "{found}");
    // The default chain's own call is cut at the same limit: it goes
    // through the same connector.
    let chain = out.json()["default_chain"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(chain.contains("larger than 1048576 bytes"), "{chain}");
}

#[tokio::test]
async fn a_passing_5xx_is_retried() {
    let sts = FakeAws::healthy().await;
    sts.aws.fail_next(2, Fault::ServerError);
    let out = check_json(&sts, |d| d).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.codes(), Vec::<String>::new(), "{}", out.stdout);
}

#[tokio::test]
async fn another_role_than_expected_is_role_mismatch() {
    let sts = FakeAws::healthy().await;
    let out = check_json(&sts, |d| {
        d.arg("--expected-role-arn")
            .arg("arn:aws:iam::111122223333:role/billing")
    })
    .await;
    assert_eq!(out.code, 1);
    let f = out.finding("ROLE_MISMATCH");
    assert_eq!(
        f["expected"],
        "arn:aws:sts::111122223333:assumed-role/billing/<session>"
    );
    assert!(f["found"].as_str().unwrap().contains("assumed-role/app/"));
}

#[tokio::test]
async fn a_refused_role_that_is_not_the_expected_one_is_role_mismatch_too() {
    let sts = FakeAws::healthy().await;
    sts.aws
        .set_trust(ROLE_ARN, Trust::for_sa("elsewhere", SERVICE_ACCOUNT));
    let out = check_json(&sts, |d| {
        d.env(
            "IRSA_DOCTOR_EXPECTED_ROLE_ARN",
            "arn:aws:iam::111122223333:role/billing",
        )
    })
    .await;
    assert_eq!(out.code, 1);
    assert_eq!(out.codes(), ["TRUST_POLICY_DENIED", "ROLE_MISMATCH"]);
    let f = out.finding("ROLE_MISMATCH");
    assert!(f["message"]
        .as_str()
        .unwrap()
        .starts_with(&format!("AWS_ROLE_ARN names {ROLE_ARN}")));
}

#[tokio::test]
async fn a_node_clock_behind_sts_gets_token_expired_from_sts() {
    let sts = FakeAws::healthy().await;
    sts.aws.always(Fault::ExpiredToken);
    let out = check_json(&sts, |d| d).await;
    assert_eq!(out.code, 1);
    let f = out.finding("TOKEN_EXPIRED");
    assert!(f["found"]
        .as_str()
        .unwrap()
        .starts_with("ExpiredTokenException: Token expired"));
    assert_eq!(sts.aws.our_assume_calls(), 1, "definitive: not retried");
}

/// Issue 22: an `AssumeRoleWithWebIdentity` answer whose credentials had
/// already expired (an endpoint replaying an old answer) was a pass.
#[tokio::test]
async fn sts_credentials_already_expired_are_credentials_expired() {
    let sts = FakeAws::healthy().await;
    sts.aws.fail_next(1, Fault::ExpiresIn(-600));
    let out = check_json(&sts, |d| d).await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let f = out.finding("CREDENTIALS_EXPIRED");
    assert_eq!(f["severity"], "error", "{f:#}");
    let message = f["message"].as_str().unwrap();
    assert!(
        message.starts_with("STS at http://127.0.0.1:")
            && message.contains("ago by this container's clock"),
        "{message}"
    );
    assert!(
        f["remedy"]
            .as_str()
            .unwrap()
            .contains("AWS_ENDPOINT_URL_STS"),
        "{f:#}"
    );
    // The session's expiry is in the report; STS's Date header says the
    // clock is right, so it is the credentials, not the clock.
    let report = out.json();
    let expiration = report["sts"]["expiration"].as_str().unwrap();
    assert!(expiration.ends_with('Z'), "{expiration}");
    assert!(
        !out.codes().contains(&"CLOCK_SKEW".to_owned()),
        "{:?}",
        out.codes()
    );
    assert_eq!(sts.aws.our_assume_calls(), 1, "definitive: not retried");
}

/// A session 5 minutes from expiry when 15 were asked: inside botocore's
/// must-refresh window. A warning; the text report shows the expiry.
#[tokio::test]
async fn sts_credentials_about_to_expire_are_a_warning() {
    let sts = FakeAws::healthy().await;
    sts.aws.fail_next(1, Fault::ExpiresIn(300));
    let out = check_json(&sts, |d| d).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.codes(), ["CREDENTIALS_EXPIRING"], "{}", out.stdout);
    let f = out.finding("CREDENTIALS_EXPIRING");
    assert_eq!(f["severity"], "warning");
    assert_eq!(f["expected"], "credentials with more than 10m left");

    sts.aws.fail_next(1, Fault::ExpiresIn(300));
    let out = check_text(&sts, |d| d).await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    let sts_row = out
        .stdout
        .lines()
        .find(|l| l.contains("AssumeRoleWithWebIdentity at"));
    assert!(
        sts_row.is_some_and(
            |l| l.trim_start().starts_with("warn") && l.contains("session expiring 20")
        ),
        "{}",
        out.stdout
    );
}

#[tokio::test]
async fn json_logs_are_one_object_per_line() {
    let sts = FakeAws::healthy().await;
    sts.aws
        .set_trust(ROLE_ARN, Trust::for_sa("elsewhere", SERVICE_ACCOUNT));
    let out = check_text(&sts, |d| d.arg("--log-format").arg("json")).await;
    assert_eq!(out.code, 1);
    let lines: Vec<serde_json::Value> = out
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines
        .iter()
        .any(|l| l["message"] == "irsa-doctor check starting"
            && l["version"] == env!("CARGO_PKG_VERSION")));
    assert!(lines
        .iter()
        .any(|l| l["code"] == "TRUST_POLICY_DENIED" && l["level"] == "ERROR"));
}

#[tokio::test]
async fn expected_role_with_another_path_but_same_name_matches() {
    let sts = FakeAws::healthy().await;
    let out = check_json(&sts, |d| {
        d.env(
            "IRSA_DOCTOR_EXPECTED_ROLE_ARN",
            "arn:aws:iam::111122223333:role/app",
        )
    })
    .await;
    assert_eq!(out.code, 0, "{}", out.stdout);
}

#[tokio::test]
async fn static_keys_in_env_shadow_irsa_and_name_who_the_app_is() {
    let sts = FakeAws::healthy().await;
    sts.aws.add_key(
        "AKIASTATICEXAMPLE001",
        "arn:aws:iam::999988887777:user/ci-bot",
    );
    let out = check_json(&sts, |d| {
        d.env("AWS_ACCESS_KEY_ID", "AKIASTATICEXAMPLE001")
            .env("AWS_SECRET_ACCESS_KEY", "STATICSECRETDONOTLOG")
    })
    .await;
    assert_eq!(out.code, 1);
    let shadow = out.finding("STATIC_CREDENTIALS_SHADOW");
    assert!(shadow["message"]
        .as_str()
        .unwrap()
        .starts_with("AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY set"));
    let mismatch = out.finding("DEFAULT_CHAIN_MISMATCH");
    assert!(mismatch["found"]
        .as_str()
        .unwrap()
        .contains("arn:aws:iam::999988887777:user/ci-bot"));
    let report = out.json();
    assert_eq!(report["default_chain"]["provider"], "environment");
    assert_eq!(
        report["default_chain"]["arn"],
        "arn:aws:iam::999988887777:user/ci-bot"
    );
    assert_eq!(report["verdict"], "fail");
    assert!(!out.all_output().contains("STATICSECRETDONOTLOG"));
}

#[tokio::test]
async fn a_credentials_file_profile_shadows_irsa() {
    let sts = FakeAws::healthy().await;
    sts.aws.add_key(
        "AKIAPROFILEEXAMPLE01",
        "arn:aws:iam::111122223333:user/dev-laptop",
    );
    let out = check_json(&sts, |d| {
        std::fs::write(
            d.home().join("aws-credentials"),
            "[default]\naws_access_key_id = AKIAPROFILEEXAMPLE01\naws_secret_access_key = PROFILESECRETDONOTLOG\n",
        )
        .unwrap();
        d
    })
    .await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.finding("STATIC_CREDENTIALS_SHADOW")["message"]
        .as_str()
        .unwrap()
        .contains("profile \"default\""));
    assert!(out.finding("DEFAULT_CHAIN_MISMATCH")["found"]
        .as_str()
        .unwrap()
        .contains("user/dev-laptop"));
    assert_eq!(out.json()["default_chain"]["provider"], "profile");
    assert!(!out.all_output().contains("PROFILESECRETDONOTLOG"));
}

#[tokio::test]
async fn pod_identity_env_beside_irsa_is_a_static_credentials_shadow_warning() {
    let sts = FakeAws::healthy().await;
    let out = check_json(&sts, |d| {
        d.env(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://127.0.0.1:9/v1/credentials",
        )
    })
    .await;
    // SDKs search web identity before container credentials: IRSA still
    // wins, so this warns rather than fails.
    assert_eq!(out.code, 0, "{}", out.stdout);
    let f = out.finding("STATIC_CREDENTIALS_SHADOW");
    assert_eq!(f["severity"], "warning");
    assert!(f["message"]
        .as_str()
        .unwrap()
        .contains("AWS_CONTAINER_CREDENTIALS_FULL_URI"));
    assert_eq!(out.json()["default_chain"]["provider"], "web_identity");
}

#[tokio::test]
async fn session_name_comes_from_flag_then_aws_role_session_name() {
    let sts = FakeAws::healthy().await;
    let out = check_json(&sts, |d| d.env("AWS_ROLE_SESSION_NAME", "from-env")).await;
    assert_eq!(out.code, 0);
    assert_eq!(out.json()["sts"]["session_name"], "from-env");
    let out = check_json(&sts, |d| d.arg("--session-name").arg("from-flag")).await;
    assert_eq!(out.json()["sts"]["session_name"], "from-flag");
    assert!(sts.aws.session_names().contains(&"from-flag".to_owned()));
}

#[tokio::test]
async fn a_fifo_at_the_token_path_is_unreadable_and_does_not_hang() {
    let sts = FakeAws::healthy().await;
    let vol = healthy_token();
    let data = vol.data_file();
    std::fs::remove_file(&data).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&data)
        .status()
        .unwrap();
    assert!(made.success());
    let out = pod(&sts.url(), &vol).json().await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let f = out.finding("TOKEN_FILE_UNREADABLE");
    assert!(f["message"].as_str().unwrap().contains("a FIFO"), "{f:#}");
    assert!(!f["remedy"].as_str().unwrap().contains("fsGroup:"), "{f:#}");
    assert_eq!(
        sts.aws.assume_calls(),
        0,
        "neither we nor the SDK's chain opened it"
    );
}

#[tokio::test]
async fn idp_rejected_claim_and_unvalidated_tokens_are_token_rejected() {
    for fault in [Fault::IdpRejectedClaim, Fault::InvalidToken] {
        let sts = FakeAws::healthy().await;
        sts.aws.always(fault.clone());
        let out = check_json(&sts, |d| d).await;
        assert_eq!(out.code, 1, "{fault:?}: {}", out.stdout);
        assert_eq!(out.codes(), ["TOKEN_REJECTED"], "{fault:?}");
    }
}

#[tokio::test]
async fn an_invalid_aws_role_session_name_is_session_name_invalid() {
    let sts = FakeAws::healthy().await;
    let out = check_json(&sts, |d| d.env("AWS_ROLE_SESSION_NAME", "payments app")).await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    let f = out.finding("SESSION_NAME_INVALID");
    assert_eq!(f["found"], "\"payments app\"");
    // Our own call used a valid name, and reached STS.
    assert_eq!(
        out.json()["sts"]["session_name"],
        "irsa-doctor-app-7d9f8c-x2x4q"
    );
    assert!(out.json()["assumed_role_arn"].is_string());
}

#[tokio::test]
async fn a_role_arn_with_a_trailing_newline_is_role_arn_invalid() {
    let sts = FakeAws::healthy().await;
    let out = check_json(&sts, |d| d.env("AWS_ROLE_ARN", &format!("{ROLE_ARN}\n"))).await;
    assert_eq!(out.code, 1);
    assert!(out.finding("ROLE_ARN_INVALID")["message"]
        .as_str()
        .unwrap()
        .contains("whitespace"));
}

#[tokio::test]
async fn a_broken_profile_before_web_identity_is_an_invalid_chain_and_a_chain_warning() {
    let sts = FakeAws::healthy().await;
    let out = check_json(&sts, |d| {
        // A role profile with a credential_source no SDK knows: the chain's
        // profile provider fails before web identity is reached.
        std::fs::write(
            d.home().join("aws-config"),
            "[default]\nrole_arn = arn:aws:iam::111122223333:role/other\ncredential_source = Bogus\n",
        )
        .unwrap();
        d
    })
    .await;
    // The app's SDK refuses the profile and gets no credentials at all
    // (aws-config: UnknownProvider; botocore: InvalidConfigError): an
    // error, beside the chain's own warning.
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.finding("PROFILE_CHAIN_INVALID")["message"]
        .as_str()
        .unwrap()
        .contains("credential_source Bogus"));
    let f = out.finding("DEFAULT_CHAIN_MISMATCH");
    assert_eq!(f["severity"], "warning");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .starts_with("the default credential chain fails before it reaches web identity"),
        "{f}"
    );
}

#[tokio::test]
async fn a_huge_timeout_is_a_usage_error_not_a_panic() {
    let sts = FakeAws::healthy().await;
    let out = doctor!(&sts.url())
        .arg("--timeout")
        .arg("10000000000000000000s")
        .run()
        .await;
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[tokio::test]
async fn bad_flags_are_usage_errors() {
    let sts = FakeAws::healthy().await;
    for args in [
        vec!["--timeout", "0s"],
        vec!["--timeout", "soon"],
        vec!["--expected-role-arn", "not-an-arn"],
        vec!["--output", "yaml"],
        vec!["--session-name", "has space"],
    ] {
        let mut doctor = doctor!(&sts.url());
        for a in &args {
            doctor = doctor.arg(a);
        }
        let out = doctor.run().await;
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
    }
    assert_eq!(sts.aws.our_assume_calls(), 0);
}

#[tokio::test]
async fn json_output_is_one_line_and_json_pretty_is_the_same_report_indented() {
    // The kubelet makes each line of stdout its own log record.
    let sts = FakeAws::healthy().await;
    // One token for both runs, so that its claims are the same.
    let vol = healthy_token();
    let out = pod(&sts.url(), &vol).json().await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    assert!(out.stdout.ends_with('\n'));
    let pretty = pod(&sts.url(), &vol)
        .arg("--output")
        .arg("json-pretty")
        .run()
        .await;
    assert!(pretty.stdout.lines().count() > 20, "{}", pretty.stdout);
    let mut one = out.json();
    let mut other = pretty.json();
    for report in [&mut one, &mut other] {
        // The fields that differ between two runs.
        report["duration_ms"] = serde_json::Value::Null;
        report["sts"]["clock_offset_seconds"] = serde_json::Value::Null;
        report["sts"]["request_id"] = serde_json::Value::Null;
        report["sts"]["expiration"] = serde_json::Value::Null;
    }
    assert_eq!(one, other);
}

#[tokio::test]
async fn a_usage_error_with_json_logs_is_one_json_line_on_stderr() {
    let sts = FakeAws::healthy().await;
    for (flag, env) in [(true, false), (false, true)] {
        let mut doctor = doctor!(&sts.url()).arg("--timeout").arg("soon");
        if flag {
            doctor = doctor.arg("--log-format=json");
        }
        if env {
            doctor = doctor.env("IRSA_DOCTOR_LOG_FORMAT", "json");
        }
        let out = doctor.run().await;
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        let line: serde_json::Value = serde_json::from_str(&out.stderr).unwrap();
        assert_eq!(line["level"], "ERROR");
        assert_eq!(line["message"], "invalid command line");
        assert!(
            line["error"]
                .as_str()
                .unwrap()
                .contains("invalid value 'soon'"),
            "{line}"
        );
    }
}

/// The trust policy a role would have for `sub`, as a file in `dir`.
fn trust_policy_file(dir: &std::path::Path, sub: &str) -> String {
    let provider = fake_aws::strip_scheme(ISSUER);
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{provider}")},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {format!("{provider}:sub"): sub}}}]});
    let path = dir.join("trust.json");
    std::fs::write(&path, policy.to_string()).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn trust_policy_flag_names_the_condition_that_refuses_and_the_corrected_policy() {
    let sts = FakeAws::healthy().await;
    sts.aws
        .set_trust(ROLE_ARN, Trust::for_sa("other-namespace", SERVICE_ACCOUNT));
    let dir = tempfile::tempdir().unwrap();
    let path = trust_policy_file(dir.path(), "system:serviceaccount:other-namespace:app");
    let out = check_json(&sts, |d| d.arg("--trust-policy").arg(&path)).await;
    assert_eq!(out.code, 1);
    let f = out.finding("TRUST_POLICY_DENIED");
    let message = f["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "{path} refuses it: no statement allows sts:AssumeRoleWithWebIdentity; statement 1: \
             StringEquals on {}:sub expects system:serviceaccount:other-namespace:app but found \
             system:serviceaccount:payments:app: the namespace differs (the policy names \
             other-namespace, the pod runs in payments)",
            fake_aws::strip_scheme(ISSUER)
        )),
        "{message}"
    );
    let remedy = f["remedy"].as_str().unwrap();
    assert!(
        remedy.contains("aws iam update-assume-role-policy --role-name app"),
        "{remedy}"
    );
    assert!(
        remedy.contains("\"system:serviceaccount:payments:app\""),
        "{remedy}"
    );
}

#[tokio::test]
async fn a_trust_policy_file_that_admits_the_pod_or_cannot_be_read_is_said_so() {
    let sts = FakeAws::healthy().await;
    sts.aws
        .set_trust(ROLE_ARN, Trust::for_sa("other-namespace", SERVICE_ACCOUNT));
    let dir = tempfile::tempdir().unwrap();
    // A stale copy: the file admits the pod, IAM's policy does not.
    let path = trust_policy_file(dir.path(), "system:serviceaccount:payments:app");
    let out = check_json(&sts, |d| d.arg("--trust-policy").arg(&path)).await;
    let f = out.finding("TRUST_POLICY_DENIED");
    let message = f["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("yet {path} admits this pod")),
        "{message}"
    );
    assert!(f["remedy"]
        .as_str()
        .unwrap()
        .contains("aws iam get-role --role-name app --query Role.AssumeRolePolicyDocument"));
    // A file that is no policy: the statement from the token's claims.
    std::fs::write(&path, "not json").unwrap();
    let out = check_json(&sts, |d| d.arg("--trust-policy").arg(&path)).await;
    let remedy = out.finding("TRUST_POLICY_DENIED")["remedy"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        remedy.contains(&format!(
            "--trust-policy {path} could not be used (the policy is not JSON"
        )),
        "{remedy}"
    );
    assert!(remedy.contains("\"Federated\""), "{remedy}");
}

#[tokio::test]
async fn a_token_of_another_namespace_than_the_pod_s_is_subject_mismatch() {
    let sts = FakeAws::healthy().await;
    // The pod's own namespace and service account, as the Downward API
    // gives them: the token agrees, and the check passes.
    let out = check_json(&sts, |d| {
        d.env("IRSA_DOCTOR_NAMESPACE", NAMESPACE)
            .env("IRSA_DOCTOR_SERVICE_ACCOUNT", SERVICE_ACCOUNT)
    })
    .await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    // A token copied from a pod in another namespace: STS still takes it
    // (the role trusts that subject), but it is not this pod's.
    let out = check_json(&sts, |d| d.arg("--namespace").arg("shop")).await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert_eq!(out.codes(), ["SUBJECT_MISMATCH"]);
    let f = out.finding("SUBJECT_MISMATCH");
    assert_eq!(f["expected"], "sub system:serviceaccount:shop:app");
    assert_eq!(
        f["found"],
        "sub system:serviceaccount:payments:app; kubernetes.io namespace payments, service account app"
    );
}
