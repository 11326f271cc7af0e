//! The token and every credential stay out of stdout, stderr and the
//! termination log, even at `RUST_LOG=trace`, in passing and failing runs.

use testkit::fake_aws::{FakeAws, Trust, SECRET_PREFIX, SESSION_TOKEN_PREFIX};
use testkit::jwt::{Jwt, TokenVolume, SIGNATURE};
use testkit::oidc::{Issuer, Signer};
use testkit::world::{NAMESPACE, ROLE_ARN, SERVICE_ACCOUNT};
use testkit::{doctor, imds, Doctor, Outcome};

const STATIC_KEY_ID: &str = "AKIASTATICEXAMPLE002";
const STATIC_SECRET: &str = "STATICSECRETKEYDONOTLOG";
const STATIC_SESSION_TOKEN: &str = "STATICSESSIONTOKENDONOTLOG";

/// Static keys with a session token, for the signed GetCallerIdentity.
fn with_static_keys(doctor: Doctor) -> Doctor {
    doctor
        .env("AWS_ACCESS_KEY_ID", STATIC_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", STATIC_SECRET)
        .env("AWS_SESSION_TOKEN", STATIC_SESSION_TOKEN)
}

fn assert_no_secrets(out: &Outcome, token: &str) {
    // The run really logged at trace level, so silence proves nothing less.
    assert!(
        out.stderr.contains("TRACE"),
        "no trace output:\n{}",
        out.stderr
    );
    assert_no_secret_in(out, token);
}

fn assert_no_secret_in(out: &Outcome, token: &str) {
    let all = out.all_output();
    for secret in [
        token,
        SIGNATURE,
        SECRET_PREFIX,
        SESSION_TOKEN_PREFIX,
        STATIC_SECRET,
        STATIC_SESSION_TOKEN,
        imds::NODE_SECRET,
        imds::NODE_SESSION_TOKEN,
    ] {
        assert!(!all.contains(secret), "{secret} leaked:\n{all}");
    }
}

async fn run_all_formats(doctor: impl Fn() -> Doctor, token: &str) {
    for (output, log_format) in [("text", "text"), ("json", "json"), ("json-pretty", "json")] {
        let out = doctor()
            .env("RUST_LOG", "trace")
            .arg("--output")
            .arg(output)
            .arg("--log-format")
            .arg(log_format)
            .run()
            .await;
        assert_no_secrets(&out, token);
    }
}

#[tokio::test]
async fn healthy_run_at_trace_leaks_nothing() {
    let sts = FakeAws::healthy().await;
    let token = Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).encode();
    let vol = TokenVolume::new(&token);
    run_all_formats(|| doctor!(&sts.url()).irsa(ROLE_ARN, &vol.path()), &token).await;
    assert!(
        sts.aws.assume_calls() >= 4,
        "STS really answered with credentials"
    );
}

#[tokio::test]
async fn denied_run_at_trace_leaks_nothing() {
    let sts = FakeAws::healthy().await;
    sts.aws
        .set_trust(ROLE_ARN, Trust::for_sa("elsewhere", SERVICE_ACCOUNT));
    let token = Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).encode();
    let vol = TokenVolume::new(&token);
    run_all_formats(|| doctor!(&sts.url()).irsa(ROLE_ARN, &vol.path()), &token).await;
}

#[tokio::test]
async fn signed_calls_with_static_keys_at_trace_leak_nothing() {
    let sts = FakeAws::healthy().await;
    sts.aws
        .add_key(STATIC_KEY_ID, "arn:aws:iam::999988887777:user/ci-bot");
    let token = Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).encode();
    let vol = TokenVolume::new(&token);
    run_all_formats(
        || with_static_keys(doctor!(&sts.url()).irsa(ROLE_ARN, &vol.path())),
        &token,
    )
    .await;
    assert!(
        sts.aws.caller_identity_calls() >= 2,
        "the signed call was made"
    );
}

#[tokio::test]
async fn an_error_quoting_the_canonical_request_leaks_nothing() {
    let sts = FakeAws::healthy().await;
    sts.aws.fail_signatures();
    let token = Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).encode();
    let vol = TokenVolume::new(&token);
    let doctor = || with_static_keys(doctor!(&sts.url()).irsa(ROLE_ARN, &vol.path()));
    run_all_formats(doctor, &token).await;
    let out = doctor().json().await;
    // The error is reported, without the token it quoted, on one line.
    let error = out.json()["default_chain"]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.contains("SignatureDoesNotMatch") && error.contains("** redacted **"),
        "{error}"
    );
    assert!(!out.termination_log.contains('\n'));
}

#[tokio::test]
async fn node_role_credentials_from_imds_at_trace_leak_nothing() {
    let sts = FakeAws::healthy().await;
    sts.aws.add_key(imds::NODE_KEY, imds::NODE_ASSUMED_ARN);
    let imds = imds::start().await;
    run_all_formats(
        || {
            doctor!(&sts.url())
                .unset("AWS_EC2_METADATA_DISABLED")
                .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.url())
        },
        "no token in this run",
    )
    .await;
    assert!(
        sts.aws.caller_identity_calls() >= 2,
        "the signed call was made"
    );
}

/// Reads every endpoint of `serving` into `answers`, heads and bodies.
async fn read_every_endpoint(serving: &testkit::serving::Serving, answers: &mut String) {
    for path in ["/livez", "/readyz", "/status", "/metrics"] {
        let a = serving.get(path).await;
        answers.push_str(&a.head);
        answers.push_str(&a.body);
    }
}

/// `serve` at trace, through a pass, a rotation to a refused token and
/// back, with every endpoint read along the way: neither the logs nor
/// any answer holds a secret.
#[tokio::test]
async fn serve_at_trace_leaks_nothing_in_logs_or_endpoints() {
    let sts = FakeAws::healthy().await;
    let token = Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).encode();
    let refused = Jwt::for_sa(NAMESPACE, "batch-job").encode();
    let mut vol = TokenVolume::new(&token);
    let serving = doctor!(&sts.url())
        .irsa(ROLE_ARN, &vol.path())
        .env("RUST_LOG", "trace")
        .serve()
        .await;
    let mut answers = String::new();
    serving.first_verdict().await;
    read_every_endpoint(&serving, &mut answers).await;
    vol.rotate(&refused);
    serving.wait_for("/readyz", |a| a.status == 503).await;
    read_every_endpoint(&serving, &mut answers).await;
    vol.rotate(&token);
    serving.wait_for("/readyz", |a| a.status == 200).await;
    read_every_endpoint(&serving, &mut answers).await;
    let (code, logs) = serving.stop("TERM").await;
    assert_eq!(code, 0);
    let out = Outcome {
        code,
        stdout: answers,
        stderr: logs,
        termination_log: String::new(),
    };
    assert!(
        out.stderr.contains("\"level\":\"TRACE\""),
        "no trace output"
    );
    for secret in [
        refused.as_str(),
        SIGNATURE,
        SECRET_PREFIX,
        SESSION_TOKEN_PREFIX,
    ] {
        assert!(!out.all_output().contains(secret), "{secret} leaked");
    }
    assert_no_secret_in(&out, &token);
}

#[tokio::test]
async fn exec_at_trace_leaks_nothing_whether_or_not_it_starts_the_app() {
    let sts = FakeAws::healthy().await;
    sts.aws
        .add_key(STATIC_KEY_ID, "arn:aws:iam::999988887777:user/ci-bot");
    let token = Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).encode();
    let vol = TokenVolume::new(&token);
    let exec = || {
        doctor!(&sts.url())
            .irsa(ROLE_ARN, &vol.path())
            .subcommand("exec")
            .env("PATH", "/usr/bin:/bin")
    };
    // A pass that becomes the app, and a fail (static keys) that does not.
    for keys in [false, true] {
        for (output, log_format) in [("text", "text"), ("json", "json")] {
            let doctor = if keys {
                with_static_keys(exec())
            } else {
                exec()
            };
            let out = doctor
                .env("RUST_LOG", "trace")
                .arg("--output")
                .arg(output)
                .arg("--log-format")
                .arg(log_format)
                .arg("--")
                .arg("echo")
                .arg("APP-STARTED")
                .run()
                .await;
            let started = out.stdout == "APP-STARTED\n";
            assert_eq!(started, !keys, "{}", out.stderr);
            assert_no_secrets(&out, &token);
        }
    }
}

/// `serve` for an EKS Pod Identity pod at trace, with text and with JSON
/// logs, through a pass, the agent refusing (trust denied) and back: the
/// token and the agent's credentials are in neither the logs nor any
/// endpoint's answer.
#[tokio::test]
async fn serve_for_pod_identity_at_trace_leaks_nothing_in_logs_or_endpoints() {
    use testkit::agent::{Agent, Fault};
    let sts = FakeAws::healthy().await;
    let agent = Agent::healthy(&sts.aws).await;
    let token = Jwt::for_pod_identity(NAMESPACE, SERVICE_ACCOUNT).encode();
    let vol = TokenVolume::pod_identity(&token);
    for format in ["text", "json"] {
        let serving = doctor!(&sts.url())
            .pod_identity(&agent.url(), &vol.path())
            .env("RUST_LOG", "trace")
            .env("IRSA_DOCTOR_LOG_FORMAT", format)
            .env("IRSA_DOCTOR_TIMEOUT", "2s")
            .arg("--interval")
            .arg("1s")
            .serve()
            .await;
        let mut answers = String::new();
        serving.wait_for("/readyz", |a| a.status == 200).await;
        read_every_endpoint(&serving, &mut answers).await;
        agent.agent.always(Fault::TrustDenied);
        serving.wait_for("/readyz", |a| a.status == 503).await;
        read_every_endpoint(&serving, &mut answers).await;
        agent.agent.clear_always();
        serving.wait_for("/readyz", |a| a.status == 200).await;
        read_every_endpoint(&serving, &mut answers).await;
        let (code, logs) = serving.stop("TERM").await;
        assert_eq!(code, 0);
        assert!(logs.contains("TRACE"), "{format}: no trace output");
        let all = format!("{answers}\n{logs}");
        let handed_out = agent.agent.handed_out();
        assert!(!handed_out.is_empty(), "the agent handed out credentials");
        for creds in handed_out {
            assert!(
                !all.contains(&creds.secret_access_key),
                "{format}: the agent's secret key leaked"
            );
            assert!(
                !all.contains(&creds.session_token),
                "{format}: the agent's session token leaked"
            );
        }
        testkit::leaks::assert_no_secret(&all, &token, format);
    }
}

/// `--verify-issuer`'s findings name the issuer, its key set and the
/// token's `kid`: never a piece of the token, in any format, at trace.
#[tokio::test]
async fn issuer_findings_at_trace_leak_no_piece_of_the_token() {
    let ours = Signer::rs256("k1");
    let issuer = Issuer::start(&[&ours]).await;
    let jwt = issuer.jwt(NAMESPACE, SERVICE_ACCOUNT);
    let sts = FakeAws::healthy_for_issuer(&issuer.url()).await;
    // Signed by a key the issuer does not publish; and a payload swapped
    // under a valid signature.
    let signed: Vec<String> = ours.sign(&jwt).split('.').map(str::to_owned).collect();
    let other: Vec<String> = Signer::rs256("k1")
        .sign(&jwt.clone().set("sub", serde_json::json!("x")))
        .split('.')
        .map(str::to_owned)
        .collect();
    let tampered = format!("{}.{}.{}", signed[0], other[1], signed[2]);
    for (token, code) in [
        (Signer::rs256("unknown").sign(&jwt), "SIGNING_KEY_UNKNOWN"),
        (tampered, "TOKEN_SIGNATURE_INVALID"),
    ] {
        let vol = TokenVolume::new(&token);
        let pod = || {
            doctor!(&sts.url())
                .irsa(ROLE_ARN, &vol.path())
                .arg("--verify-issuer")
                .arg("--allow-http-issuer")
        };
        let out = pod().env("RUST_LOG", "trace").json().await;
        assert!(out.codes().iter().any(|c| c == code), "{}", out.stdout);
        testkit::leaks::assert_no_secret(&out.all_output(), &token, code);
        run_all_formats(pod, &token).await;
    }
}

/// Passwords a URL setting carries, long enough to be registered and too
/// short to be (only the `user:password@` pattern masks that one).
const URL_PASSWORDS: [&str; 2] = ["s3cr3tpassw0rd-in-url", "Kx7Qz"];

fn with_userinfo(url: &str, password: &str) -> String {
    url.replacen("://", &format!("://u:{password}@"), 1)
}

/// A password in `AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL_IAM` (with
/// `--require`), the token's issuer (`--verify-issuer`) and the agent's
/// URI, at trace: hyper-util logs its pool key as `("http",
/// u:password@host:port)`, with no `://` for the old pattern to find. In
/// no output of `check`, nor of `serve` (its logs, `/status`, `/metrics`),
/// and never in the `Host` irsa-doctor sends the agent.
#[tokio::test]
async fn passwords_in_url_settings_at_trace_leak_nowhere() {
    use testkit::agent::Agent;
    for password in URL_PASSWORDS {
        let signer = Signer::rs256("k1");
        let issuer = Issuer::start(&[&signer]).await;
        let iss = with_userinfo(&issuer.url(), password);
        let jwt = issuer
            .jwt(NAMESPACE, SERVICE_ACCOUNT)
            .set("iss", serde_json::json!(iss));
        let token = signer.sign(&jwt);
        let sts = FakeAws::healthy_for_issuer(&iss).await;
        let vol = TokenVolume::new(&token);
        let sts_url = with_userinfo(&sts.url(), password);
        let irsa = || {
            doctor!(&sts_url)
                .env("AWS_ENDPOINT_URL_IAM", &sts_url)
                .irsa(ROLE_ARN, &vol.path())
                .arg("--verify-issuer")
                .arg("--allow-http-issuer")
                .arg("--require")
                .arg("s3:GetObject@arn:aws:s3:::orders/*")
        };
        let agent = Agent::healthy(&sts.aws).await;
        let pi_token = Jwt::for_pod_identity(NAMESPACE, SERVICE_ACCOUNT).encode();
        let pi_vol = TokenVolume::pod_identity(&pi_token);
        let agent_url = with_userinfo(&agent.url(), password);
        let pod_identity = || doctor!(&sts_url).pod_identity(&agent_url, &pi_vol.path());
        let mut all = String::new();
        for (name, pod, secret) in [
            ("irsa", &irsa as &dyn Fn() -> testkit::Doctor, &token),
            ("pod identity", &pod_identity, &pi_token),
        ] {
            for format in ["text", "json"] {
                let out = pod()
                    .env("RUST_LOG", "trace")
                    .arg("--output")
                    .arg("json")
                    .arg("--log-format")
                    .arg(format)
                    .run()
                    .await;
                assert!(out.stderr.contains("TRACE"), "{name}: no trace output");
                assert!(
                    !out.all_output().contains(password),
                    "{name} {format}:\n{}",
                    out.all_output()
                );
                assert_no_secret_in(&out, secret);
                all.push_str(&out.all_output());
            }
            let serving = pod().env("RUST_LOG", "trace").serve().await;
            serving.first_verdict().await;
            let mut answers = String::new();
            read_every_endpoint(&serving, &mut answers).await;
            let (_, logs) = serving.stop("TERM").await;
            let seen = format!("{answers}\n{logs}");
            assert!(!seen.contains(password), "{name} serve:\n{seen}");
            all.push_str(&seen);
        }
        // hyper-util's pool key was printed, and masked: the leak the old
        // pattern missed is really exercised.
        assert!(
            all.contains(", u:** redacted **@127.0.0.1:"),
            "no pool key seen:\n{all}"
        );
        let requests = agent.agent.requests();
        assert!(!requests.is_empty(), "the agent was asked");
        for seen in requests {
            let host = seen.host().unwrap_or_default();
            assert!(
                !host.contains('@') && !host.contains(password),
                "Host: {host}"
            );
        }
    }
}
