//! IRSA through a profile's role chain (the EKS user guide's cross-account
//! pattern): `AWS_PROFILE=b` selects `[profile b]` with `role_arn` and
//! `source_profile = a`, and `[profile a]` has `role_arn` and
//! `web_identity_token_file`. The SDK assumes A with the token, then
//! `sts:AssumeRole` into B signed with A's credentials; the app runs as B.
//!
//! Against the STS stand-in, which answers `AssumeRole` only when signed
//! (SigV4) by a session it issued and when the target role's trust names
//! the caller's role. The chain's pass was a false fail
//! (`STATIC_CREDENTIALS_SHADOW` and `DEFAULT_CHAIN_MISMATCH`); a refused
//! hop, a loop and a missing source profile were false passes. botocore
//! (the `.venv`'s, as `agent_answers.rs` uses it) resolves the same files
//! against the same stand-in and must land on the same final role.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use testkit::fake_aws::{self, FakeAws, SECRET_PREFIX, SESSION_TOKEN_PREFIX};
use testkit::jwt::{Jwt, TokenVolume};
use testkit::world::{NAMESPACE, ROLE_ARN, SERVICE_ACCOUNT};
use testkit::{doctor, Doctor, Outcome};

/// The role in the other account the app should finally act as.
const TARGET: &str = "arn:aws:iam::222233334444:role/target";

/// The user guide's two profiles, `b` chaining through `a`, with `extra`
/// appended to `[profile b]`.
fn guide_config(token: &str, extra: &str) -> String {
    format!(
        "[profile b]\nrole_arn = {TARGET}\nsource_profile = a\n{extra}\n\
         [profile a]\nrole_arn = {ROLE_ARN}\nweb_identity_token_file = {token}\n"
    )
}

fn token() -> TokenVolume {
    TokenVolume::new(&Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).encode())
}

/// `check --output json` for an IRSA pod with `config` as its
/// `AWS_CONFIG_FILE` and `AWS_PROFILE=b`; `customize` adds flags.
async fn check(
    sts: &fake_aws::FakeAwsServer,
    vol: &TokenVolume,
    config: &str,
    customize: impl FnOnce(Doctor) -> Doctor,
) -> Outcome {
    let d = doctor!(&sts.url())
        .irsa(ROLE_ARN, &vol.path())
        .env("AWS_PROFILE", "b")
        // Every hop's credentials must stay out of every log line.
        .env("RUST_LOG", "trace");
    std::fs::write(d.home().join("aws-config"), config).unwrap();
    let out = customize(d).json().await;
    assert!(
        !out.all_output().contains(SECRET_PREFIX)
            && !out.all_output().contains(SESSION_TOKEN_PREFIX),
        "a credential leaked:\n{}",
        out.all_output()
    );
    out
}

fn codes(out: &Outcome) -> Vec<String> {
    out.codes()
}

#[tokio::test]
async fn a_chain_into_another_account_passes_as_its_last_role() {
    let sts = FakeAws::healthy().await;
    sts.aws.trust_role(TARGET, ROLE_ARN, None);
    let vol = token();
    let config = guide_config(vol.path().to_str().unwrap(), "");
    let out = check(&sts, &vol, &config, |d| d).await;
    let report = out.json();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(report["findings"], serde_json::json!([]), "{}", out.stdout);
    // Without --expected-role-arn, the role the chain names last.
    assert_eq!(report["expected_role_arn"], TARGET);
    let chain = &report["profile_chain"];
    assert_eq!(chain["profile"], "b");
    assert_eq!(chain["root"], "web_identity");
    assert_eq!(chain["hops"][0]["via"], "web_identity");
    assert_eq!(chain["hops"][0]["role_arn"], ROLE_ARN);
    assert_eq!(chain["hops"][1]["via"], "assume_role");
    assert_eq!(chain["hops"][1]["role_arn"], TARGET);
    let last = chain["final_arn"].as_str().unwrap();
    assert!(
        last.starts_with("arn:aws:sts::222233334444:assumed-role/target/"),
        "{last}"
    );
    // The app's own SDK (aws-config) followed the same chain.
    assert_eq!(report["default_chain"]["provider"], "profile");
    assert!(report["default_chain"]["arn"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws:sts::222233334444:assumed-role/target/"));
    // Ours and the default chain's.
    assert_eq!(sts.aws.assume_role_calls(), 2);

    // The same chain with --expected-role-arn naming the web-identity role:
    // the app does not act as it.
    let out = check(&sts, &vol, &config, |d| {
        d.args(&["--expected-role-arn", ROLE_ARN])
    })
    .await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert_eq!(codes(&out), ["ROLE_MISMATCH"], "{}", out.stdout);
    assert!(out.finding("ROLE_MISMATCH")["found"]
        .as_str()
        .unwrap()
        .contains("assumed-role/target/"));
    // And naming the target: a pass.
    let out = check(&sts, &vol, &config, |d| {
        d.args(&["--expected-role-arn", TARGET])
    })
    .await;
    assert_eq!(out.code, 0, "{}", out.stdout);

    // The text report's role row names the hops.
    let d = doctor!(&sts.url())
        .irsa(ROLE_ARN, &vol.path())
        .env("AWS_PROFILE", "b");
    std::fs::write(d.home().join("aws-config"), &config).unwrap();
    let out = d.run().await;
    let role_row = out
        .stdout
        .lines()
        .find(|l| l.contains(" role ") && l.contains("assumed"))
        .unwrap_or_default();
    assert!(
        out.stdout.starts_with(
            "irsa-doctor: pass: acting as arn:aws:sts::222233334444:assumed-role/target/"
        ),
        "{}",
        out.stdout
    );
    assert!(
        role_row.starts_with("  ok")
            && role_row.contains("assumed arn:aws:sts::222233334444:assumed-role/target/")
            && role_row.contains(&format!(
                "; through profile b (web_identity): {ROLE_ARN} (web_identity) -> {TARGET} (assume_role)"
            )),
        "{}",
        out.stdout
    );
}

#[tokio::test]
async fn a_hop_the_target_role_does_not_trust_fails_with_the_statement_it_needs() {
    let sts = FakeAws::healthy().await;
    // The target trusts someone else.
    sts.aws
        .trust_role(TARGET, "arn:aws:iam::111122223333:role/other", None);
    let vol = token();
    let config = guide_config(vol.path().to_str().unwrap(), "");
    let out = check(&sts, &vol, &config, |d| d).await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(codes(&out), ["PROFILE_HOP_DENIED"], "{}", out.stdout);
    let f = out.finding("PROFILE_HOP_DENIED");
    let remedy = f["remedy"].as_str().unwrap();
    assert!(
        remedy.contains(&format!(
            r#"{{"Effect": "Allow", "Principal": {{"AWS": "{ROLE_ARN}"}}, "Action": "sts:AssumeRole"}}"#
        )),
        "{remedy}"
    );
    assert!(remedy.contains("aws iam update-assume-role-policy --role-name target"));
    let chain = &out.json()["profile_chain"];
    assert!(chain["hops"][0]["assumed_arn"].is_string());
    assert!(chain["hops"][1]["assumed_arn"].is_null());
    assert!(chain["final_arn"].is_null());
}

#[tokio::test]
async fn an_external_id_the_trust_requires_is_sent_as_the_profile_names_it() {
    let sts = FakeAws::healthy().await;
    sts.aws.trust_role(TARGET, ROLE_ARN, Some("partner-7"));
    let vol = token();
    let with = guide_config(vol.path().to_str().unwrap(), "external_id = partner-7");
    let out = check(&sts, &vol, &with, |d| d).await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    let without = guide_config(vol.path().to_str().unwrap(), "");
    let out = check(&sts, &vol, &without, |d| d).await;
    assert_eq!(codes(&out), ["PROFILE_HOP_DENIED"], "{}", out.stdout);
}

#[tokio::test]
async fn a_loop_and_a_missing_source_profile_are_errors() {
    let sts = FakeAws::healthy().await;
    let vol = token();
    let looped = format!(
        "[profile b]\nrole_arn = {TARGET}\nsource_profile = c\n\
         [profile c]\nrole_arn = {ROLE_ARN}\nsource_profile = b\n"
    );
    let out = check(&sts, &vol, &looped, |d| d).await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    let f = out.finding("PROFILE_CHAIN_INVALID");
    assert!(
        f["message"].as_str().unwrap().contains("(b -> c -> b)"),
        "{f}"
    );
    // aws-config skips a profile whose source is missing, and the app
    // falls through to AWS_ROLE_ARN's web identity: not the chain's role.
    let missing = format!("[profile b]\nrole_arn = {TARGET}\nsource_profile = gone\n");
    let out = check(&sts, &vol, &missing, |d| d).await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.finding("PROFILE_CHAIN_INVALID")["message"]
        .as_str()
        .unwrap()
        .contains("source_profile \"gone\""));
}

#[tokio::test]
async fn credential_process_and_sso_roots_are_a_warning_not_a_verdict() {
    let sts = FakeAws::healthy().await;
    let vol = token();
    for (root, words) in [
        ("credential_process = /bin/false", "credential_process"),
        (
            "sso_session = corp\nsso_account_id = 111122223333\nsso_role_name = dev\n\
             [sso-session corp]\nsso_region = us-east-1\nsso_start_url = https://corp.invalid/start",
            "SSO",
        ),
    ] {
        let config = format!(
            "[profile b]\nrole_arn = {TARGET}\nsource_profile = a\n[profile a]\n{root}\n"
        );
        let out = check(&sts, &vol, &config, |d| d).await;
        assert_eq!(out.code, 0, "{root}: {}", out.stdout);
        assert_eq!(codes(&out), ["PROFILE_CHAIN_UNVERIFIABLE"], "{}", out.stdout);
        let f = out.finding("PROFILE_CHAIN_UNVERIFIABLE");
        assert_eq!(f["severity"], "warning");
        assert!(f["message"].as_str().unwrap().contains(words), "{f}");
        assert!(out.json()["profile_chain"]["final_arn"].is_null());
    }
    // Expecting a role the chain does not name is still a mismatch.
    let config = format!(
        "[profile b]\nrole_arn = {TARGET}\nsource_profile = a\n[profile a]\ncredential_process = /bin/false\n"
    );
    let out = check(&sts, &vol, &config, |d| {
        d.args(&["--expected-role-arn", "arn:aws:iam::222233334444:role/else"])
    })
    .await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    let f = out.finding("ROLE_MISMATCH");
    assert_eq!(f["found"], TARGET);
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains(&format!("profile b's role chain ends in {TARGET}")),
        "{f}"
    );
}

/// The venv's Python, beside moto's server.
fn python() -> PathBuf {
    let moto = testkit::venv_tool("MOTO_SERVER", "moto_server");
    let python = moto.with_file_name("python3");
    let found = Command::new(&python)
        .args(["-c", "import botocore"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(found, "no botocore at {}", python.display());
    python
}

/// Who botocore says profile `b` is, against the stand-in at `sts_url`,
/// with nothing from this environment: its ARN, or its error.
async fn botocore_caller(sts_url: &str, config: &std::path::Path) -> Result<String, String> {
    botocore_env_caller(sts_url, config, &[("AWS_PROFILE", "b")]).await
}

/// The role part of an assumed-role ARN (the session names differ).
fn role_of(assumed: &str) -> &str {
    assumed.rsplit_once('/').map_or(assumed, |(role, _)| role)
}

#[tokio::test]
async fn botocore_lands_on_the_same_final_role_and_fails_on_the_same_hop() {
    let sts = FakeAws::healthy().await;
    sts.aws.trust_role(TARGET, ROLE_ARN, None);
    let vol = token();
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("config");
    let config = guide_config(vol.path().to_str().unwrap(), "");
    std::fs::write(&config_path, &config).unwrap();
    let theirs = botocore_caller(&sts.url(), &config_path).await.unwrap();
    let out = check(&sts, &vol, &config, |d| d).await;
    let report: Value = out.json();
    let ours = report["profile_chain"]["final_arn"].as_str().unwrap();
    assert_eq!(role_of(ours), role_of(&theirs), "{}", out.stdout);
    assert_eq!(out.code, 0);

    // A target that does not trust the first role: both refused.
    let refusing = FakeAws::healthy().await;
    let theirs = botocore_caller(&refusing.url(), &config_path).await;
    assert_eq!(theirs, Err("ClientError".to_owned()));
    let out = check(&refusing, &vol, &config, |d| d).await;
    assert_eq!(codes(&out), ["PROFILE_HOP_DENIED"], "{}", out.stdout);

    // A loop and a missing source profile: botocore refuses both, and
    // irsa-doctor fails both.
    for (config, error) in [
        (
            format!(
                "[profile b]\nrole_arn = {TARGET}\nsource_profile = c\n\
                 [profile c]\nrole_arn = {ROLE_ARN}\nsource_profile = b\n"
            ),
            "InfiniteLoopConfigError",
        ),
        (
            format!("[profile b]\nrole_arn = {TARGET}\nsource_profile = gone\n"),
            "InvalidConfigError",
        ),
    ] {
        std::fs::write(&config_path, &config).unwrap();
        let theirs = botocore_caller(&sts.url(), &config_path).await;
        assert_eq!(theirs, Err(error.to_owned()), "{config}");
        let out = check(&sts, &vol, &config, |d| d).await;
        assert_eq!(out.code, 1, "{}", out.stdout);
        assert!(codes(&out).contains(&"PROFILE_CHAIN_INVALID".to_owned()));
    }
}

#[tokio::test]
async fn a_root_profile_naming_another_role_than_aws_role_arn_is_assumed_itself() {
    let sts = FakeAws::healthy().await;
    // The root profile's role, trusted for the same service account, is
    // not the one the webhook injected.
    let first = "arn:aws:iam::111122223333:role/hub";
    sts.aws
        .add_role(first, fake_aws::Trust::for_sa(NAMESPACE, SERVICE_ACCOUNT));
    sts.aws.trust_role(TARGET, first, None);
    let vol = token();
    let config = format!(
        "[profile b]\nrole_arn = {TARGET}\nsource_profile = a\n\
         [profile a]\nrole_arn = {first}\nweb_identity_token_file = {}\n",
        vol.path().display()
    );
    let out = check(&sts, &vol, &config, |d| d).await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    let chain = &out.json()["profile_chain"];
    assert!(chain["hops"][0]["assumed_arn"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws:sts::111122223333:assumed-role/hub/"));
    // The target trusting only the injected role refuses the hub.
    let refusing = FakeAws::healthy().await;
    refusing
        .aws
        .add_role(first, fake_aws::Trust::for_sa(NAMESPACE, SERVICE_ACCOUNT));
    refusing.aws.trust_role(TARGET, ROLE_ARN, None);
    let out = check(&refusing, &vol, &config, |d| d).await;
    assert_eq!(codes(&out), ["PROFILE_HOP_DENIED"], "{}", out.stdout);
    assert!(out.finding("PROFILE_HOP_DENIED")["remedy"]
        .as_str()
        .unwrap()
        .contains(&format!(r#""Principal": {{"AWS": "{first}"}}"#)));
}

#[tokio::test]
async fn require_asks_about_the_chains_last_role() {
    let sts = FakeAws::healthy().await;
    sts.aws.trust_role(TARGET, ROLE_ARN, None);
    sts.aws.set_permissions(
        TARGET,
        vec![fake_aws::Stmt::allow(
            "orders-read",
            "s3:GetObject",
            "arn:aws:s3:::orders/*",
        )],
    );
    let vol = token();
    let config = guide_config(vol.path().to_str().unwrap(), "");
    let out = check(&sts, &vol, &config, |d| {
        d.args(&["--require", "s3:GetObject@arn:aws:s3:::orders/1"])
    })
    .await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(out.json()["permissions"]["source_arn"], TARGET);
    // The web-identity role has no such permission: asking about it would
    // have failed.
    let out = check(&sts, &vol, &config, |d| {
        d.args(&["--require", "s3:PutObject@arn:aws:s3:::orders/1"])
    })
    .await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert_eq!(codes(&out), ["PERMISSION_DENIED"], "{}", out.stdout);
}

#[tokio::test]
async fn a_hop_sts_keeps_throttling_is_inconclusive_not_a_pass() {
    let sts = FakeAws::healthy().await;
    sts.aws.trust_role(TARGET, ROLE_ARN, None);
    sts.aws.throttle_assume_role();
    let vol = token();
    let config = guide_config(vol.path().to_str().unwrap(), "");
    // The default chain (aws-config's own three attempts, up to 3 s of
    // backoff) is resolved before the hops are followed: 6 s leaves the
    // hops time to be retried and throttled, not just cut off.
    let out = check(&sts, &vol, &config, |d| d.env("IRSA_DOCTOR_TIMEOUT", "6s")).await;
    assert_eq!(out.code, 3, "{}", out.stdout);
    assert_eq!(codes(&out), ["STS_THROTTLED"], "{}", out.stdout);
    assert!(out.json()["profile_chain"]["final_arn"].is_null());
    // Retried, not given up at the first answer.
    assert!(
        sts.aws.assume_role_calls() > 2,
        "{}",
        sts.aws.assume_role_calls()
    );
}

#[tokio::test]
async fn a_stray_session_token_beside_web_identity_is_not_static_keys() {
    // aws-config and botocore take static keys only with an access key ID
    // and its secret: both follow a's web identity and land on the target.
    // Was STATIC_CREDENTIALS_SHADOW and DEFAULT_CHAIN_MISMATCH.
    let sts = FakeAws::healthy().await;
    sts.aws.trust_role(TARGET, ROLE_ARN, None);
    let vol = token();
    let config = format!(
        "{}aws_session_token = stale\n",
        guide_config(vol.path().to_str().unwrap(), "")
    );
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("config");
    std::fs::write(&config_path, &config).unwrap();
    let theirs = botocore_caller(&sts.url(), &config_path).await.unwrap();
    let out = check(&sts, &vol, &config, |d| d).await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    let report = out.json();
    assert_eq!(report["profile_chain"]["root"], "web_identity");
    let ours = report["profile_chain"]["final_arn"].as_str().unwrap();
    assert_eq!(role_of(ours), role_of(&theirs), "{}", out.stdout);
}

#[tokio::test]
async fn mfa_serial_and_a_duration_sts_refuses_are_named_not_passed_silently() {
    let sts = FakeAws::healthy().await;
    sts.aws.trust_role(TARGET, ROLE_ARN, None);
    let vol = token();
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("config");
    // botocore prompts for the code and, with no terminal, fails; the
    // stand-in does not enforce role chaining's one-hour limit, so the
    // duration is asserted on the finding alone.
    let mfa = guide_config(
        vol.path().to_str().unwrap(),
        "mfa_serial = arn:aws:iam::111122223333:mfa/dev",
    );
    std::fs::write(&config_path, &mfa).unwrap();
    let theirs = botocore_caller(&sts.url(), &config_path).await;
    assert_eq!(theirs, Err("EOFError".to_owned()));
    for (extra, words) in [
        (
            "mfa_serial = arn:aws:iam::111122223333:mfa/dev",
            "mfa_serial",
        ),
        ("duration_seconds = 43200", "at most 3600"),
        ("duration_seconds = 600", "at least 900"),
    ] {
        let config = guide_config(vol.path().to_str().unwrap(), extra);
        let out = check(&sts, &vol, &config, |d| d).await;
        assert_eq!(out.code, 0, "{extra}: {}", out.stdout);
        assert_eq!(
            codes(&out),
            ["PROFILE_CHAIN_UNVERIFIABLE"],
            "{}",
            out.stdout
        );
        let f = out.finding("PROFILE_CHAIN_UNVERIFIABLE");
        assert_eq!(f["severity"], "warning");
        assert!(f["message"].as_str().unwrap().contains(words), "{f}");
    }
    // A duration STS takes is nothing to say.
    let config = guide_config(vol.path().to_str().unwrap(), "duration_seconds = 3600");
    let out = check(&sts, &vol, &config, |d| d).await;
    assert_eq!(codes(&out), Vec::<String>::new(), "{}", out.stdout);
}

#[tokio::test]
async fn a_chain_from_static_keys_fails_whether_or_not_its_hop_is_refused() {
    // Static keys in profile k, refused by STS (the stand-in issued none):
    // the app with AWS_PROFILE=b gets no credentials at all. Was a pass
    // with a DEFAULT_CHAIN_MISMATCH warning, while the same chain that
    // worked was STATIC_CREDENTIALS_SHADOW.
    let sts = FakeAws::healthy().await;
    sts.aws.trust_role(TARGET, ROLE_ARN, None);
    let vol = token();
    let config = format!(
        "[profile b]\nrole_arn = {TARGET}\nsource_profile = k\n\
         [profile k]\naws_access_key_id = AKIAEXAMPLESTATIC\n\
         aws_secret_access_key = {SECRET_PREFIX}static\n\
         aws_session_token = {SESSION_TOKEN_PREFIX}static\n"
    );
    let out = check(&sts, &vol, &config, |d| d).await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    let f = out.finding("STATIC_CREDENTIALS_SHADOW");
    assert_eq!(f["severity"], "error");
    assert!(f["message"].as_str().unwrap().contains("\"b\""), "{f}");
    assert_eq!(out.json()["profile_chain"]["root"], "static_keys");
}

#[tokio::test]
async fn a_credential_source_that_gives_the_sdk_nothing_is_no_pass() {
    // aws-config builds these providers itself: with no variables, no ECS
    // configuration and IMDS disabled, the app gets no credentials at all.
    // Was a pass with PROFILE_CHAIN_UNVERIFIABLE.
    let sts = FakeAws::healthy().await;
    let vol = token();
    for source in ["Ec2InstanceMetadata", "Environment", "EcsContainer"] {
        let config = format!("[profile b]\nrole_arn = {TARGET}\ncredential_source = {source}\n");
        let out = check(&sts, &vol, &config, |d| {
            d.env("AWS_EC2_METADATA_DISABLED", "true")
        })
        .await;
        assert_eq!(out.code, 1, "{source}: {}", out.stdout);
        assert_eq!(codes(&out), ["PROFILE_CHAIN_INVALID"], "{}", out.stdout);
        let f = out.finding("PROFILE_CHAIN_INVALID");
        assert!(
            f["message"]
                .as_str()
                .unwrap()
                .contains(&format!("credential_source = {source}")),
            "{f}"
        );
        assert_eq!(out.json()["expected_role_arn"], TARGET);
    }
}

/// Who botocore says the app is with `env` (AWS_PROFILE,
/// AWS_DEFAULT_PROFILE) deciding the profile, as an app's `boto3.client()`
/// does: its ARN, or its error.
async fn botocore_env_caller(
    sts_url: &str,
    config: &std::path::Path,
    env: &[(&str, &str)],
) -> Result<String, String> {
    const WHO: &str = r#"
import botocore.session
try:
    s = botocore.session.Session()
    print("arn", s.create_client("sts", region_name="us-east-1").get_caller_identity()["Arn"])
except Exception as e:
    print("error", type(e).__name__)
"#;
    let out = tokio::process::Command::new(python())
        .args(["-c", WHO])
        .env_clear()
        .envs(env.iter().copied())
        .env("AWS_CONFIG_FILE", config)
        .env("AWS_SHARED_CREDENTIALS_FILE", config.with_file_name("none"))
        .env("AWS_ENDPOINT_URL_STS", sts_url)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", "us-east-1")
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    match said.split_once(' ') {
        Some(("arn", arn)) => Ok(arn.to_owned()),
        Some(("error", e)) => Err(e.to_owned()),
        _ => panic!(
            "botocore said {said:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// The hub role a root profile names instead of `AWS_ROLE_ARN`, trusted
/// for this pod's service account.
const HUB: &str = "arn:aws:iam::111122223333:role/hub";

fn hub_config(token: &str, extra_a: &str) -> String {
    format!(
        "[profile b]\nrole_arn = {TARGET}\nsource_profile = a\n\
         [profile a]\nrole_arn = {HUB}\nweb_identity_token_file = {token}\n{extra_a}\n"
    )
}

#[tokio::test]
async fn a_refused_aws_role_arn_the_chain_does_not_use_is_a_warning_not_a_fail() {
    // The app (AWS_PROFILE=b) assumes the hub with the token, then the
    // target: it never asks for AWS_ROLE_ARN, which STS refuses. Was exit
    // 1 with TRUST_POLICY_DENIED, although botocore lands on the target.
    let sts = FakeAws::healthy().await;
    sts.aws.set_trust(
        ROLE_ARN,
        fake_aws::Trust::for_sa("elsewhere", SERVICE_ACCOUNT),
    );
    sts.aws
        .add_role(HUB, fake_aws::Trust::for_sa(NAMESPACE, SERVICE_ACCOUNT));
    sts.aws.trust_role(TARGET, HUB, None);
    let vol = token();
    let config = hub_config(vol.path().to_str().unwrap(), "");
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("config");
    std::fs::write(&config_path, &config).unwrap();
    let theirs = botocore_caller(&sts.url(), &config_path).await.unwrap();
    let out = check(&sts, &vol, &config, |d| d).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(codes(&out), ["TRUST_POLICY_DENIED"], "{}", out.stdout);
    let f = out.finding("TRUST_POLICY_DENIED");
    assert_eq!(f["severity"], "warning", "{f}");
    let message = f["message"].as_str().unwrap();
    assert!(
        message.contains("AWS_PROFILE") && message.contains("without AWS_PROFILE"),
        "{message}"
    );
    let ours = out.json()["profile_chain"]["final_arn"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(role_of(&ours), role_of(&theirs), "{}", out.stdout);

    // The chain failing too (the target refuses the hub): no pass, and
    // the refusal of AWS_ROLE_ARN stays an error.
    let refusing = FakeAws::healthy().await;
    refusing.aws.set_trust(
        ROLE_ARN,
        fake_aws::Trust::for_sa("elsewhere", SERVICE_ACCOUNT),
    );
    refusing
        .aws
        .add_role(HUB, fake_aws::Trust::for_sa(NAMESPACE, SERVICE_ACCOUNT));
    let out = check(&refusing, &vol, &config, |d| d).await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert_eq!(
        codes(&out),
        ["TRUST_POLICY_DENIED", "PROFILE_HOP_DENIED"],
        "{}",
        out.stdout
    );
    assert_eq!(out.finding("TRUST_POLICY_DENIED")["severity"], "error");

    // The chain rooted at AWS_ROLE_ARN itself: the app does use it.
    let guide = guide_config(vol.path().to_str().unwrap(), "");
    let out = check(&sts, &vol, &guide, |d| d).await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert_eq!(out.finding("TRUST_POLICY_DENIED")["severity"], "error");
}

#[tokio::test]
async fn aws_default_profile_botocore_prefers_is_named() {
    // botocore reads AWS_DEFAULT_PROFILE before AWS_PROFILE; aws-config
    // never reads it. Was a silent pass while a Python app runs as
    // another role.
    let sts = FakeAws::healthy().await;
    sts.aws.trust_role(TARGET, ROLE_ARN, None);
    let vol = token();
    let config = guide_config(vol.path().to_str().unwrap(), "");
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("config");
    std::fs::write(&config_path, &config).unwrap();
    // Both set: botocore follows a (the web-identity role), the Rust SDK b.
    let both = [("AWS_PROFILE", "b"), ("AWS_DEFAULT_PROFILE", "a")];
    let theirs = botocore_env_caller(&sts.url(), &config_path, &both)
        .await
        .unwrap();
    assert!(theirs.contains(":assumed-role/app/"), "{theirs}");
    let out = check(&sts, &vol, &config, |d| d.env("AWS_DEFAULT_PROFILE", "a")).await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(
        codes(&out),
        ["PROFILE_CHAIN_UNVERIFIABLE"],
        "{}",
        out.stdout
    );
    let f = out.finding("PROFILE_CHAIN_UNVERIFIABLE");
    assert_eq!(f["severity"], "warning");
    let message = f["message"].as_str().unwrap();
    assert!(
        message.contains("AWS_DEFAULT_PROFILE") && message.contains("\"a\""),
        "{message}"
    );
    // The same profile in both: nothing to say.
    let out = check(&sts, &vol, &config, |d| d.env("AWS_DEFAULT_PROFILE", "b")).await;
    assert_eq!(codes(&out), Vec::<String>::new(), "{}", out.stdout);
}

#[tokio::test]
async fn aws_default_profile_alone_is_named_though_the_rust_sdk_ignores_it() {
    // No AWS_PROFILE: aws-config uses IRSA's variables (profile "default"
    // does not exist), botocore follows b into the target.
    let sts = FakeAws::healthy().await;
    sts.aws.trust_role(TARGET, ROLE_ARN, None);
    let vol = token();
    let config = guide_config(vol.path().to_str().unwrap(), "");
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("config");
    std::fs::write(&config_path, &config).unwrap();
    let theirs = botocore_env_caller(&sts.url(), &config_path, &[("AWS_DEFAULT_PROFILE", "b")])
        .await
        .unwrap();
    assert!(theirs.contains("assumed-role/target/"), "{theirs}");
    let d = doctor!(&sts.url())
        .irsa(ROLE_ARN, &vol.path())
        .env("AWS_DEFAULT_PROFILE", "b");
    std::fs::write(d.home().join("aws-config"), &config).unwrap();
    let out = d.json().await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(
        codes(&out),
        ["PROFILE_CHAIN_UNVERIFIABLE"],
        "{}",
        out.stdout
    );
    let message = out.finding("PROFILE_CHAIN_UNVERIFIABLE")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("\"default\""), "{message}");
}

#[tokio::test]
async fn hops_send_the_session_names_aws_config_sends() {
    // A trust conditioned on sts:RoleSessionName sees aws-config's
    // `assume-role-from-profile-<millis>`; irsa-doctor sent its own name.
    let sts = FakeAws::healthy().await;
    sts.aws.trust_role(TARGET, ROLE_ARN, None);
    let vol = token();
    let config = guide_config(vol.path().to_str().unwrap(), "");
    let out = check(&sts, &vol, &config, |d| {
        d.args(&["--session-name", "probe-x"])
    })
    .await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    let names = sts.aws.session_names();
    let ours = names.iter().filter(|n| *n == "probe-x").count();
    let profile_hops = names
        .iter()
        .filter(|n| {
            n.strip_prefix("assume-role-from-profile-")
                .is_some_and(|ms| ms.len() >= 13 && ms.bytes().all(|b| b.is_ascii_digit()))
        })
        .count();
    // IRSA's own call keeps ours; the hop (ours and the default chain's)
    // is aws-config's.
    assert_eq!((ours, profile_hops), (1, 2), "{names:?}");
    let last = out.json()["profile_chain"]["final_arn"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(last.contains("/target/assume-role-from-profile-"), "{last}");
    // botocore, as docs/profile-chains.md says, sends its own name.
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("config");
    std::fs::write(&config_path, &config).unwrap();
    let theirs = botocore_caller(&sts.url(), &config_path).await.unwrap();
    assert!(theirs.contains("/target/botocore-session-"), "{theirs}");

    // A root naming another role than AWS_ROLE_ARN: its own
    // role_session_name is sent (was irsa-doctor's).
    let sts = FakeAws::healthy().await;
    sts.aws
        .add_role(HUB, fake_aws::Trust::for_sa(NAMESPACE, SERVICE_ACCOUNT));
    sts.aws.trust_role(TARGET, HUB, None);
    let config = hub_config(vol.path().to_str().unwrap(), "role_session_name = hub-s");
    let out = check(&sts, &vol, &config, |d| {
        d.args(&["--session-name", "probe-x"])
    })
    .await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    let names = sts.aws.session_names();
    assert_eq!(
        names.iter().filter(|n| *n == "hub-s").count(),
        2,
        "{names:?}"
    );
    assert_eq!(
        names.iter().filter(|n| *n == "probe-x").count(),
        1,
        "{names:?}"
    );
    // And without one, aws-config's web-identity-token-profile-<millis>.
    let sts = FakeAws::healthy().await;
    sts.aws
        .add_role(HUB, fake_aws::Trust::for_sa(NAMESPACE, SERVICE_ACCOUNT));
    sts.aws.trust_role(TARGET, HUB, None);
    let config = hub_config(vol.path().to_str().unwrap(), "");
    let out = check(&sts, &vol, &config, |d| {
        d.args(&["--session-name", "probe-x"])
    })
    .await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    let names = sts.aws.session_names();
    assert_eq!(
        names
            .iter()
            .filter(|n| n.starts_with("web-identity-token-profile-"))
            .count(),
        2,
        "{names:?}"
    );
}
