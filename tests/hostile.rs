//! A hostile or broken environment: typos in endpoint settings, peers that
//! echo the request or send too much, files that block or never end, a
//! skewed clock, odd token paths. Each test pins one hole that was found
//! by attacking an earlier build, and fails on that build.

use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use base64::Engine as _;

use testkit::fake_aws::{self, FakeAws, Fault};
use testkit::jwt::{Jwt, TokenVolume};
use testkit::world::{NAMESPACE, ROLE_ARN, SERVICE_ACCOUNT};
use testkit::{doctor, imds, mkfifo, Outcome};

fn healthy_token() -> (String, TokenVolume) {
    let token = Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).encode();
    let vol = TokenVolume::new(&token);
    (token, vol)
}

/// A token no segment of which starts with `eyJ`: its header and payload
/// are JSON with a space after the brace (`{ "`, encoded `eyAi`), which
/// STS and every JWT parser accept. Only the registry of secrets can
/// recognise it, not the JWT shape.
fn unshaped_token() -> (String, TokenVolume) {
    let b64 = |s: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let claims = Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).claims.to_string();
    let token = format!(
        "{}.{}.{}",
        b64(r#"{ "alg": "RS256", "kid": "test-key" }"#.to_owned()),
        b64(format!("{{ {}", &claims[1..])),
        testkit::jwt::SIGNATURE
    );
    assert!(!token.split('.').any(|s| s.starts_with("eyJ")), "{token}");
    let vol = TokenVolume::new(&token);
    (token, vol)
}

/// A FIFO with no writer, in a directory of its own.
fn new_fifo() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    (dir, fifo)
}

/// Every way the endpoint setting was seen to go wrong, made from the
/// stand-in's real URL so that a request, if one were sent, would arrive.
fn endpoint_typos(url: &str) -> Vec<String> {
    vec![
        url.trim_start_matches("http://").to_owned(),
        format!(" {url}"),
        format!("{url} "),
        url.replace("http://", "http//"),
        url.replace("http://", "http:/"),
        url.replace("http://", "http:"),
    ]
}

/// No piece of the token longer than 8 characters appears in `text`: every
/// 12-character window of every segment is looked for.
fn assert_no_token_in(text: &str, token: &str, context: &str) {
    for segment in token.split('.').filter(|s| s.len() > 8) {
        let bytes = segment.as_bytes();
        for window in bytes.windows(12.min(bytes.len())) {
            let window = std::str::from_utf8(window).unwrap();
            assert!(
                !text.contains(window),
                "{context}: a piece of the token leaked ({window}):\n{text}"
            );
        }
    }
}

#[tokio::test]
async fn sts_endpoint_typos_are_endpoint_invalid_and_nothing_is_sent() {
    let sts = FakeAws::healthy().await;
    let (_, vol) = healthy_token();
    for typo in endpoint_typos(&sts.url()) {
        let out = doctor!(&typo).irsa(ROLE_ARN, &vol.path()).json().await;
        assert_eq!(out.code, 1, "{typo:?}: {}\n{}", out.stdout, out.stderr);
        let f = out.finding("ENDPOINT_INVALID");
        assert!(
            f["message"]
                .as_str()
                .unwrap()
                .contains("AWS_ENDPOINT_URL_STS"),
            "{typo:?}: {f:#}"
        );
        assert_eq!(
            out.json()["sts"]["attempts"],
            0,
            "not retried as a network error"
        );
    }
    assert_eq!(
        sts.aws.assume_calls(),
        0,
        "nothing was sent, not even by the SDK's chain"
    );
}

/// A typo in the global `AWS_ENDPOINT_URL` is a finding too (botocore
/// refuses to start on it), but the STS-specific variable still decides
/// where STS requests go, so the check goes on.
#[tokio::test]
async fn a_global_endpoint_typo_is_endpoint_invalid_beside_a_good_sts_endpoint() {
    let sts = FakeAws::healthy().await;
    let (_, vol) = healthy_token();
    for typo in endpoint_typos(&sts.url()) {
        let out = doctor!(&sts.url())
            .env("AWS_ENDPOINT_URL", &typo)
            .irsa(ROLE_ARN, &vol.path())
            .json()
            .await;
        assert_eq!(out.code, 1, "{typo:?}: {}\n{}", out.stdout, out.stderr);
        assert_eq!(out.codes(), ["ENDPOINT_INVALID"], "{typo:?}");
        let f = out.finding("ENDPOINT_INVALID");
        assert!(
            f["message"].as_str().unwrap().contains("AWS_ENDPOINT_URL "),
            "{f:#}"
        );
        assert_eq!(out.json()["sts"]["attempts"], 1);
    }
}

#[tokio::test]
async fn an_invalid_region_is_region_invalid() {
    let sts = FakeAws::healthy().await;
    let (_, vol) = healthy_token();
    for region in ["us west 2", "us-west-2/", "-x"] {
        let out = doctor!(&sts.url())
            .env("AWS_REGION", region)
            .irsa(ROLE_ARN, &vol.path())
            .json()
            .await;
        assert_eq!(out.code, 1, "{region:?}: {}\n{}", out.stdout, out.stderr);
        let f = out.finding("REGION_INVALID");
        assert!(f["found"].as_str().unwrap().contains("AWS_REGION"), "{f:#}");
    }
}

/// The leak matrix: every endpoint typo and an endpoint that echoes the
/// request, in `check` and `serve`, at `info` and `trace`, with text and
/// JSON logs and reports. No piece of the token may reach any output,
/// `/status` and the other endpoints included.
#[tokio::test]
async fn no_part_of_the_token_reaches_any_output_whatever_the_endpoint_does() {
    let sts = FakeAws::healthy().await;
    sts.aws.always(Fault::Echo);
    let (token, vol) = unshaped_token();
    let mut endpoints = endpoint_typos(&sts.url());
    endpoints.push(sts.url());
    for endpoint in &endpoints {
        for level in ["info", "trace"] {
            for format in ["text", "json"] {
                let context = format!("check, endpoint {endpoint:?}, {level}, {format}");
                let out = doctor!(endpoint)
                    .irsa(ROLE_ARN, &vol.path())
                    .env("RUST_LOG", level)
                    .arg("--output")
                    .arg(format)
                    .arg("--log-format")
                    .arg(format)
                    .run()
                    .await;
                assert!(
                    out.code == 1 || out.code == 3,
                    "{context}: {}",
                    out.all_output()
                );
                assert_no_token_in(&out.all_output(), &token, &context);

                let context = format!("serve, endpoint {endpoint:?}, {level}, {format}");
                let serving = doctor!(endpoint)
                    .irsa(ROLE_ARN, &vol.path())
                    .env("RUST_LOG", level)
                    .env("IRSA_DOCTOR_LOG_FORMAT", format)
                    .serve()
                    .await;
                serving.first_verdict().await;
                let mut answers = String::new();
                for path in ["/status", "/readyz", "/livez", "/metrics"] {
                    let a = serving.get(path).await;
                    answers.push_str(&a.head);
                    answers.push_str(&a.body);
                }
                let (code, logs) = serving.stop("TERM").await;
                assert_eq!(code, 0, "{context}");
                assert_no_token_in(&answers, &token, &context);
                assert_no_token_in(&logs, &token, &context);
            }
        }
    }
    assert!(
        sts.aws.assume_calls() > 0,
        "the echoing endpoint was really asked, token and all"
    );
}

#[tokio::test]
async fn an_echoed_request_is_reported_without_the_request() {
    let sts = FakeAws::healthy().await;
    sts.aws.always(Fault::Echo);
    let (token, vol) = unshaped_token();
    let out = doctor!(&sts.url()).irsa(ROLE_ARN, &vol.path()).json().await;
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let found = out.finding("STS_ERROR")["found"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(found.starts_with("InvalidParameterValue"), "{found}");
    assert!(found.contains("WebIdentityToken=** redacted **"), "{found}");
    assert_no_token_in(&out.all_output(), &token, "echo");
}

#[tokio::test]
async fn a_200_without_an_assumed_role_is_inconclusive_not_a_role_mismatch() {
    let sts = FakeAws::healthy().await;
    sts.aws.always(Fault::NoAssumedRole);
    let (_, vol) = healthy_token();
    let out = doctor!(&sts.url()).irsa(ROLE_ARN, &vol.path()).json().await;
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    assert!(
        !out.codes().contains(&"ROLE_MISMATCH".to_owned()),
        "{:?}",
        out.codes()
    );
    let f = out.finding("STS_ERROR");
    assert!(
        f["found"].as_str().unwrap().contains("AssumedRoleUser"),
        "{f:#}"
    );
}

#[tokio::test]
async fn in_serve_a_200_without_an_assumed_role_leaves_a_fresh_pass_standing() {
    let sts = FakeAws::healthy().await;
    let (_, vol) = healthy_token();
    let serving = doctor!(&sts.url())
        .irsa(ROLE_ARN, &vol.path())
        .arg("--interval")
        .arg("1s")
        .arg("--stale-after")
        .arg("1h")
        .serve()
        .await;
    assert_eq!(serving.first_verdict().await["verdict"], "pass");
    sts.aws.always(Fault::NoAssumedRole);
    serving
        .wait_for("/status", |a| a.json()["verdict"] == "inconclusive")
        .await;
    let ready = serving.get("/readyz").await;
    assert_eq!(ready.status, 200, "{ready:?}");
    let (code, _) = serving.stop("TERM").await;
    assert_eq!(code, 0);
}

#[tokio::test]
async fn a_huge_imds_answer_is_cut_at_the_body_limit() {
    let sts = FakeAws::healthy().await;
    let imds = imds::start_huge().await;
    let out = doctor!(&sts.url())
        .unset("AWS_EC2_METADATA_DISABLED")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.url())
        .json()
        .await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let chain = out.json()["default_chain"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        chain.contains("larger than 1048576 bytes"),
        "{chain}\n{}",
        out.stderr
    );
}

#[tokio::test]
async fn config_files_that_block_or_never_end_are_findings_and_do_not_hang() {
    let sts = FakeAws::healthy().await;
    let (_, vol) = healthy_token();
    let (dir, fifo) = new_fifo();
    // A CA file far over the limit, sparse so that it costs no disk.
    let cert_dir = tempfile::tempdir().unwrap();
    std::fs::File::create(cert_dir.path().join("ca.pem"))
        .unwrap()
        .set_len(64 * 1024 * 1024)
        .unwrap();
    let profile = dir.path().join("config");
    std::fs::write(
        &profile,
        format!(
            "[default]\nrole_arn = {ROLE_ARN}\nWEB_IDENTITY_TOKEN_FILE = {}\n",
            fifo.display()
        ),
    )
    .unwrap();
    for (var, path) in [
        ("AWS_CONFIG_FILE", Path::new("/dev/zero")),
        ("AWS_CONFIG_FILE", fifo.as_path()),
        ("AWS_SHARED_CREDENTIALS_FILE", fifo.as_path()),
        ("AWS_SHARED_CREDENTIALS_FILE", dir.path()),
        ("SSL_CERT_FILE", fifo.as_path()),
        ("SSL_CERT_FILE", Path::new("/dev/zero")),
        ("SSL_CERT_DIR", cert_dir.path()),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", fifo.as_path()),
        // The default chain would read the FIFO a profile names.
        ("AWS_CONFIG_FILE", profile.as_path()),
    ] {
        let out = doctor!(&sts.url())
            .irsa(ROLE_ARN, &vol.path())
            .env(var, path.to_str().unwrap())
            .env("IRSA_DOCTOR_TIMEOUT", "5s")
            .json()
            .await;
        assert_eq!(
            out.code,
            1,
            "{var}={}: {}\n{}",
            path.display(),
            out.stdout,
            out.stderr
        );
        let f = out.finding("SETTING_FILE_INVALID");
        let message = f["message"].as_str().unwrap();
        assert!(
            message.contains(var) || message.contains("web_identity_token_file"),
            "{f:#}"
        );
        // The chain reads token files itself: it is not resolved at all.
        if var == "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE" || path == profile {
            let chain = out.json()["default_chain"]["error"].clone();
            assert!(
                chain.as_str().unwrap().starts_with("not resolved"),
                "{chain}"
            );
        }
    }
}

#[tokio::test]
async fn serve_with_a_fifo_for_a_config_file_answers_and_stops_on_sigterm() {
    let sts = FakeAws::healthy().await;
    let (_, vol) = healthy_token();
    let (_dir, fifo) = new_fifo();
    let serving = doctor!(&sts.url())
        .irsa(ROLE_ARN, &vol.path())
        .env("AWS_CONFIG_FILE", fifo.to_str().unwrap())
        .serve()
        .await;
    let status = serving.first_verdict().await;
    assert_eq!(status["verdict"], "fail", "{status:#}");
    assert_eq!(serving.get("/readyz").await.status, 503);
    assert_eq!(serving.get("/livez").await.status, 200);
    let (code, _) = serving.stop("TERM").await;
    assert_eq!(code, 0);
}

/// A CA file that would block the HTTPS client as it is built: nothing is
/// sent, `check` answers at once, and `serve` answers probes and stops on
/// SIGTERM.
#[tokio::test]
async fn a_ca_file_that_blocks_is_a_finding_and_nothing_is_sent() {
    let sts = FakeAws::healthy().await;
    let (_, vol) = healthy_token();
    let (_dir, fifo) = new_fifo();
    let out = doctor!(&sts.url())
        .irsa(ROLE_ARN, &vol.path())
        .env("SSL_CERT_FILE", fifo.to_str().unwrap())
        .json()
        .await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    out.finding("SETTING_FILE_INVALID");

    let serving = doctor!(&sts.url())
        .irsa(ROLE_ARN, &vol.path())
        .env("SSL_CERT_FILE", fifo.to_str().unwrap())
        .serve()
        .await;
    assert_eq!(serving.first_verdict().await["verdict"], "fail");
    assert_eq!(serving.get("/livez").await.status, 200);
    let (code, _) = serving.stop("TERM").await;
    assert_eq!(code, 0);
    assert_eq!(sts.aws.assume_calls(), 0);
}

#[tokio::test]
async fn a_fifo_as_the_termination_log_does_not_hang_after_the_verdict() {
    let sts = FakeAws::healthy().await;
    let (_, vol) = healthy_token();
    let (_dir, fifo) = new_fifo();
    let out = doctor!(&sts.url())
        .irsa(ROLE_ARN, &vol.path())
        .env("IRSA_DOCTOR_TERMINATION_LOG", fifo.to_str().unwrap())
        .json()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("could not write the termination log"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn token_paths_that_are_not_files_say_what_they_are_and_how_to_fix_it() {
    let sts = FakeAws::healthy().await;
    let (_, vol) = healthy_token();
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    let volume_dir = vol.dir.path().to_owned();
    for (path, what, fix) in [
        (
            volume_dir.clone(),
            "a directory",
            volume_dir.join("token").display().to_string(),
        ),
        (a.clone(), "a symlink loop", "symlinks".to_owned()),
        (
            "/dev/zero".into(),
            "a character device",
            "/var/run/secrets/eks.amazonaws.com/serviceaccount/token".to_owned(),
        ),
    ] {
        let out = doctor!(&sts.url()).irsa(ROLE_ARN, &path).json().await;
        assert_eq!(
            out.code,
            1,
            "{}: {}\n{}",
            path.display(),
            out.stdout,
            out.stderr
        );
        let f = out.finding("TOKEN_FILE_UNREADABLE");
        assert!(f["message"].as_str().unwrap().contains(what), "{f:#}");
        let remedy = f["remedy"].as_str().unwrap();
        assert!(remedy.contains(&fix), "{remedy}");
        assert!(
            !remedy.contains("fsGroup:"),
            "fsGroup cannot fix this: {remedy}"
        );
    }
    assert_eq!(sts.aws.assume_calls(), 0);
}

#[tokio::test]
async fn a_token_missing_from_an_existing_data_dir_is_not_called_a_gone_dir() {
    let sts = FakeAws::healthy().await;
    let (_, vol) = healthy_token();
    std::fs::remove_file(vol.data_file()).unwrap();
    let out = doctor!(&sts.url()).irsa(ROLE_ARN, &vol.path()).json().await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let found = out.finding("TOKEN_FILE_MISSING")["found"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(found.contains("exists but holds no such file"), "{found}");
    assert!(!found.contains("gone"), "{found}");
}

#[tokio::test]
async fn a_role_arn_that_is_not_utf8_is_invalid_not_unset() {
    let sts = FakeAws::healthy().await;
    let (_, vol) = healthy_token();
    let mut arn = ROLE_ARN.as_bytes().to_vec();
    arn.push(0xff);
    let out = doctor!(&sts.url())
        .irsa(ROLE_ARN, &vol.path())
        .env_os("AWS_ROLE_ARN", std::ffi::OsString::from_vec(arn))
        .json()
        .await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        !out.codes().contains(&"ENV_NOT_INJECTED".to_owned()),
        "{:?}",
        out.codes()
    );
    let f = out.finding("ROLE_ARN_INVALID");
    assert!(f["message"].as_str().unwrap().contains("UTF-8"), "{f:#}");
}

/// Runs the check with the container's clock shifted by `offset`
/// (faketime's syntax), against the stand-in, which keeps real time.
async fn check_with_clock(
    sts: &fake_aws::FakeAwsServer,
    vol: &TokenVolume,
    offset: &str,
) -> Outcome {
    doctor!(&sts.url())
        .irsa(ROLE_ARN, &vol.path())
        .under(&["/usr/bin/faketime", "-f", offset])
        .json()
        .await
}

#[tokio::test]
async fn a_clock_hours_off_is_clock_skew_not_a_pass() {
    let sts = FakeAws::healthy().await;
    let (_, vol) = healthy_token();
    for (offset, words, sign) in [
        ("+2h", "2h ahead of", -1),
        ("+23h", "23h ahead of", -1),
        ("-2h", "2h behind", 1),
    ] {
        let out = check_with_clock(&sts, &vol, offset).await;
        assert_eq!(out.code, 1, "{offset}: {}\n{}", out.stdout, out.stderr);
        let f = out.finding("CLOCK_SKEW");
        assert!(
            f["message"].as_str().unwrap().contains(words),
            "{offset}: {f:#}"
        );
        let measured = out.json()["sts"]["clock_offset_seconds"].as_i64().unwrap();
        assert!(
            measured.signum() == sign && measured.abs() > 3600,
            "{offset}: {measured}"
        );
    }
    // A minute off is within what every SDK tolerates.
    let out = check_with_clock(&sts, &vol, "+1m").await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
}

/// A clock far enough ahead that the credentials look expired (STS's
/// 15-minute session to a clock 20 minutes ahead; the agent's 6-hour
/// credentials to one 6 h 10 min ahead) is `CLOCK_SKEW` alone: the
/// expiry is judged by STS's clock then, not told again as
/// `CREDENTIALS_EXPIRED` (whose fix, restarting the agent or checking the
/// STS endpoint, would mislead).
#[tokio::test]
async fn a_skewed_clock_is_clock_skew_not_expired_credentials() {
    let sts = FakeAws::healthy().await;
    let (_, vol) = healthy_token();
    let out = check_with_clock(&sts, &vol, "+20m").await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.codes(), ["CLOCK_SKEW"], "{}", out.stdout);

    let agent = testkit::agent::Agent::healthy(&sts.aws).await;
    let token = Jwt::for_pod_identity(NAMESPACE, SERVICE_ACCOUNT).encode();
    let volume = TokenVolume::pod_identity(&token);
    let out = doctor!(&sts.url())
        .pod_identity(&agent.url(), &volume.path())
        .under(&["/usr/bin/faketime", "-f", "+370m"])
        .json()
        .await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.codes(), ["CLOCK_SKEW"], "{}", out.stdout);
    let measured = out.json()["sts"]["clock_offset_seconds"].as_i64().unwrap();
    assert!(measured < -6 * 3600, "{measured}");
}

/// `NO_PROXY=*` with an IP-literal endpoint: the AWS SDK for Rust (and so
/// irsa-doctor) still goes through the proxy, botocore and Go go direct.
/// The stand-in doubles as the proxy, so the check passes either way; the
/// warning says who would go where.
#[tokio::test]
async fn sdks_that_read_no_proxy_differently_are_named() {
    let sts = FakeAws::healthy().await;
    let (_, vol) = healthy_token();
    let out = doctor!(&sts.url())
        .irsa(ROLE_ARN, &vol.path())
        .env("HTTP_PROXY", &sts.url())
        .env("NO_PROXY", "*")
        .json()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let f = out.finding("PROXY_BYPASS_DIFFERS");
    assert_eq!(f["severity"], "warning");
    let found = f["found"].as_str().unwrap();
    assert!(
        found.starts_with(
            "through the proxy: the AWS SDK for Rust and irsa-doctor; directly: botocore"
        ),
        "{found}"
    );

    let out = doctor!(&sts.url())
        .irsa(ROLE_ARN, &vol.path())
        .env("HTTP_PROXY", &sts.url())
        .env("NO_PROXY", "127.0.0.1")
        .json()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        !out.codes().contains(&"PROXY_BYPASS_DIFFERS".to_owned()),
        "{:?}",
        out.codes()
    );
}

/// A peer that echoes the token cut short: the registered token is masked
/// to its cut, not left with its tail showing.
#[tokio::test]
async fn a_token_echoed_cut_short_is_masked_to_the_cut() {
    let sts = FakeAws::healthy().await;
    sts.aws.always(Fault::EchoTokenCut);
    let (token, vol) = unshaped_token();
    let out = doctor!(&sts.url())
        .irsa(ROLE_ARN, &vol.path())
        .env("RUST_LOG", "trace")
        .json()
        .await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert_no_token_in(&out.all_output(), &token, "cut echo");
}

/// A region from the shared config file that cannot be a region is judged
/// too; with a custom STS endpoint the check still goes on.
#[tokio::test]
async fn a_bad_region_in_the_config_file_is_region_invalid() {
    let sts = FakeAws::healthy().await;
    let (_, vol) = healthy_token();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(&config, "[default]\nregion = us west 2\n").unwrap();
    let out = doctor!(&sts.url())
        .unset("AWS_REGION")
        .env("AWS_CONFIG_FILE", config.to_str().unwrap())
        .irsa(ROLE_ARN, &vol.path())
        .json()
        .await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let f = out.finding("REGION_INVALID");
    assert!(
        f["found"].as_str().unwrap().contains("shared config file"),
        "{f:#}"
    );
}

/// clap quotes a bad value back in its usage error; that goes through the
/// redaction like every other output.
#[tokio::test]
async fn a_usage_error_does_not_quote_a_token_back() {
    let sts = FakeAws::healthy().await;
    let (token, _vol) = healthy_token();
    let out = doctor!(&sts.url())
        .arg("--session-name")
        .arg(&token)
        .run()
        .await;
    assert_eq!(out.code, 2, "{}", out.all_output());
    assert!(out.stderr.contains("--session-name"), "{}", out.stderr);
    assert_no_token_in(&out.all_output(), &token, "usage error");
}
