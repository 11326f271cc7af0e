//! `cargo run --example demo`: irsa-doctor against the loopback STS
//! stand-in the tests use (testkit's), for one healthy pod and three broken
//! ones, then the healthy pod's sidecar (`serve`) while its trust policy
//! breaks. Each pod is a child process with its own environment and token
//! volume, running exactly what the `irsa-doctor` binary runs; the demo
//! prints each report and exit code, and what the sidecar's endpoints
//! answer. Nothing leaves 127.0.0.1, and IMDS is disabled.

use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use testkit::fake_aws::{self, FakeAws, Trust, ACCOUNT, ROLE_ARN};
use testkit::jwt::{Jwt, TokenVolume, ISSUER};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Set in a child's environment: run irsa-doctor instead of the demo.
const CHILD: &str = "IRSA_DOCTOR_DEMO_CHILD";

struct Pod {
    title: &'static str,
    namespace: &'static str,
    role_arn: &'static str,
    extra_env: Vec<(&'static str, &'static str)>,
}

fn main() -> ExitCode {
    if std::env::var_os(CHILD).is_some() {
        return irsa_doctor::main(std::env::args_os());
    }
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(demo())
}

async fn demo() -> ExitCode {
    let aws = FakeAws::empty();
    aws.add_provider(ACCOUNT, ISSUER, &["sts.amazonaws.com"]);
    aws.add_role(ROLE_ARN, Trust::for_sa("payments", "app"));
    aws.add_role(
        "arn:aws:iam::111122223333:role/checkout-app",
        Trust::for_sa("checkout-staging", "app"),
    );
    aws.add_key(
        "AKIALEGACYDEPLOYBOT1",
        "arn:aws:iam::111122223333:user/legacy-deploy-bot",
    );
    let sts = aws.start().await;
    println!("loopback STS stand-in at {}\n", sts.url());

    let pods = [
        Pod {
            title: "healthy pod: payments/app, role team/payments/app",
            namespace: "payments",
            role_arn: ROLE_ARN,
            extra_env: vec![],
        },
        Pod {
            title: "no IAM OIDC provider: the role is in account 444455556666, the provider is not",
            namespace: "payments",
            role_arn: "arn:aws:iam::444455556666:role/app",
            extra_env: vec![],
        },
        Pod {
            title: "trust policy for another namespace: checkout/app, trust names checkout-staging",
            namespace: "checkout",
            role_arn: "arn:aws:iam::111122223333:role/checkout-app",
            extra_env: vec![],
        },
        Pod {
            title: "static keys shadowing IRSA: AWS_ACCESS_KEY_ID left in the Deployment",
            namespace: "payments",
            role_arn: ROLE_ARN,
            extra_env: vec![
                ("AWS_ACCESS_KEY_ID", "AKIALEGACYDEPLOYBOT1"),
                ("AWS_SECRET_ACCESS_KEY", "demo-secret-never-printed"),
            ],
        },
    ];

    let me = std::env::current_exe().expect("own path");
    let mut results = vec![];
    for pod in &pods {
        let volume = TokenVolume::new(&Jwt::for_sa(pod.namespace, "app").encode());
        let home = tempfile::tempdir().expect("temp dir");
        println!("=== {} ===\n", pod.title);
        let status = tokio::process::Command::new(&me)
            .arg("check")
            .env_clear()
            .env(CHILD, "1")
            .env("AWS_ROLE_ARN", pod.role_arn)
            .env("AWS_WEB_IDENTITY_TOKEN_FILE", volume.path())
            .env("AWS_ENDPOINT_URL_STS", sts.url())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("HOME", home.path())
            .env(
                "IRSA_DOCTOR_POD_NAME",
                format!("{}-7d9f8c-x2x4q", pod.namespace),
            )
            .env("IRSA_DOCTOR_TERMINATION_LOG", "off")
            .env("IRSA_DOCTOR_TIMEOUT", "10s")
            .env("RUST_LOG", "off")
            .envs(pod.extra_env.iter().copied())
            .stdin(Stdio::null())
            .status()
            .await
            .expect("run irsa-doctor");
        let code = status.code().unwrap_or(-1);
        println!("exit code: {code}\n");
        results.push((pod.title, code));
    }
    let sidecar = sidecar(&me, &sts).await;
    println!("=== summary ===");
    for (title, code) in &results {
        println!("  exit {code}  {title}");
    }
    match &sidecar {
        Ok(()) => println!(
            "  serve   /readyz 200 while healthy, 503 once the trust policy broke, exit 0 on SIGTERM"
        ),
        Err(e) => println!("  serve   unexpected: {e}"),
    }
    let expected = [0, 1, 1, 1];
    if results.iter().map(|(_, c)| *c).eq(expected) && sidecar.is_ok() {
        ExitCode::SUCCESS
    } else {
        println!("unexpected exit codes: wanted {expected:?}");
        ExitCode::FAILURE
    }
}

/// The healthy pod with irsa-doctor as a sidecar, checking every second:
/// ready, then its role's trust policy is changed to admit another service
/// account, and readiness flips at the next check. Its logs show on stderr.
async fn sidecar(me: &std::path::Path, sts: &fake_aws::FakeAwsServer) -> Result<(), String> {
    println!("=== sidecar: the healthy pod under `irsa-doctor serve --interval 1s` ===\n");
    let volume = TokenVolume::new(&Jwt::for_sa("payments", "app").encode());
    let home = tempfile::tempdir().map_err(|e| e.to_string())?;
    // A free port, found by binding and letting go; the demo is alone on it.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .to_string();
    let mut child = tokio::process::Command::new(me)
        .args(["serve", "--listen", &addr, "--interval", "1s"])
        .env_clear()
        .env(CHILD, "1")
        .env("AWS_ROLE_ARN", ROLE_ARN)
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", volume.path())
        .env("AWS_ENDPOINT_URL_STS", sts.url())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("HOME", home.path())
        .env("IRSA_DOCTOR_POD_NAME", "payments-7d9f8c-x2x4q")
        .env("IRSA_DOCTOR_TIMEOUT", "10s")
        .env("RUST_LOG", "irsa_doctor=info")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| e.to_string())?;

    let (status, body) = wait_for(&addr, "/readyz", 200).await?;
    println!("\nGET /readyz -> {status} {body}");
    let (_, metrics) = get(&addr, "/metrics").await?;
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("irsa_doctor_ready ") || l.starts_with("irsa_doctor_verdict{"))
    {
        println!("GET /metrics: {line}");
    }

    println!("\n(the role's trust policy now admits payments/someone-else instead)\n");
    sts.aws
        .set_trust(ROLE_ARN, Trust::for_sa("payments", "someone-else"));
    let (status, body) = wait_for(&addr, "/readyz", 503).await?;
    println!("\nGET /readyz -> {status} {body}");

    let pid = child.id().ok_or("serve exited early")?;
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .map_err(|e| format!("kill: {e}"))?;
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .map_err(|_| "serve did not exit after SIGTERM")?
        .map_err(|e| e.to_string())?;
    println!("SIGTERM -> exit code {}\n", exit.code().unwrap_or(-1));
    if exit.success() {
        Ok(())
    } else {
        Err(format!("serve exited with {exit} after SIGTERM"))
    }
}

/// Polls `path` until it answers `want`, for up to 30 s.
async fn wait_for(addr: &str, path: &str, want: u16) -> Result<(u16, String), String> {
    let limit = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(answer) = get(addr, path).await {
            if answer.0 == want {
                return Ok(answer);
            }
        }
        if Instant::now() > limit {
            return Err(format!("{path} never answered {want}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A one-shot HTTP/1.1 GET: status and body.
async fn get(addr: &str, path: &str) -> Result<(u16, String), String> {
    let mut conn = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    conn.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut raw = String::new();
    conn.read_to_string(&mut raw)
        .await
        .map_err(|e| e.to_string())?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no HTTP status")?;
    Ok((status, body.trim_end().to_owned()))
}
