//! `cargo run --example demo`: irsa-doctor against the loopback STS and EKS
//! Pod Identity agent stand-ins the tests use (testkit's): an IRSA pod that
//! is healthy and three broken ones, a Pod Identity pod that is healthy and
//! one whose role trusts only the OIDC provider, then the healthy IRSA
//! pod's app started through `exec` (and refused with static keys in the
//! app's own env), then its sidecar (`serve`) while its trust policy breaks,
//! and last `irsa-doctor-injector inject` on a Deployment and its
//! ServiceAccount, whose role becomes the one the doctor expects. Each pod is a
//! child process with its own environment and token volume, running
//! exactly what the `irsa-doctor` binary runs; the demo prints each report
//! and exit code, and what the sidecar's endpoints answer. Nothing leaves
//! 127.0.0.1, and IMDS is disabled.

use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use testkit::agent::Agent;
use testkit::fake_aws::{self, FakeAws, Stmt, Trust};
use testkit::jwt::{Jwt, TokenVolume};
use testkit::world::{ACCOUNT, ISSUER, ROLE_ARN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Set in a child's environment: run irsa-doctor instead of the demo.
const CHILD: &str = "IRSA_DOCTOR_DEMO_CHILD";

/// An IRSA role that trusts only the OIDC provider, associated with
/// `orders/app` through Pod Identity: what EKS Auth refuses.
const IRSA_ONLY_ROLE_ARN: &str = "arn:aws:iam::111122223333:role/orders-app";

struct Pod {
    title: &'static str,
    namespace: &'static str,
    how: How,
    /// The exit code this pod must get, and the finding code its report
    /// must lead with (none for a pass).
    expect: (i32, Option<&'static str>),
    extra_env: Vec<(&'static str, &'static str)>,
}

/// What the webhook injected into the pod.
enum How {
    /// `AWS_ROLE_ARN` (this role) and `AWS_WEB_IDENTITY_TOKEN_FILE`.
    Irsa(&'static str),
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI` (this agent's URL) and
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`; `IRSA_DOCTOR_EXPECTED_ROLE_ARN`
    /// names the role, as Pod Identity has no `AWS_ROLE_ARN`.
    PodIdentity {
        agent_url: String,
        expected_role: &'static str,
    },
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
    // Pod Identity: payments/app's association reaches ROLE_ARN, which
    // trusts pods.eks.amazonaws.com; orders/app's reaches an IRSA role.
    aws.add_role(IRSA_ONLY_ROLE_ARN, Trust::for_sa("orders", "app"));
    // IAM's policy simulator (--require): payments/app's role may send to
    // its queue, but no statement lets it read its invoices bucket.
    aws.set_permissions(
        ROLE_ARN,
        vec![Stmt::allow(
            "payments-queue",
            "sqs:SendMessage",
            "arn:aws:sqs:us-east-1:111122223333:payments",
        )],
    );
    let sts = aws.start().await;
    let agent = Agent::healthy(&sts.aws).await;
    let irsa_role_agent = Agent::new(&sts.aws);
    irsa_role_agent.associate("orders", "app", IRSA_ONLY_ROLE_ARN);
    let irsa_role_agent = irsa_role_agent.start().await;
    println!("loopback STS stand-in at {}", sts.url());
    println!(
        "loopback EKS Pod Identity agent stand-ins at {} and {}\n",
        agent.url(),
        irsa_role_agent.url()
    );

    let pods = [
        Pod {
            title: "healthy pod: payments/app, role team/payments/app",
            namespace: "payments",
            how: How::Irsa(ROLE_ARN),
            expect: (0, None),
            extra_env: vec![],
        },
        Pod {
            title: "no IAM OIDC provider: the role is in account 444455556666, the provider is not",
            namespace: "payments",
            how: How::Irsa("arn:aws:iam::444455556666:role/app"),
            expect: (1, Some("OIDC_PROVIDER_MISSING")),
            extra_env: vec![],
        },
        Pod {
            title: "trust policy for another namespace: checkout/app, trust names checkout-staging",
            namespace: "checkout",
            how: How::Irsa("arn:aws:iam::111122223333:role/checkout-app"),
            expect: (1, Some("TRUST_POLICY_DENIED")),
            extra_env: vec![],
        },
        Pod {
            title: "static keys shadowing IRSA: AWS_ACCESS_KEY_ID left in the Deployment",
            namespace: "payments",
            how: How::Irsa(ROLE_ARN),
            expect: (1, Some("STATIC_CREDENTIALS_SHADOW")),
            extra_env: vec![
                ("AWS_ACCESS_KEY_ID", "AKIALEGACYDEPLOYBOT1"),
                ("AWS_SECRET_ACCESS_KEY", "demo-secret-never-printed"),
            ],
        },
        Pod {
            title: "the role lacks s3:GetObject on its bucket: payments/app with --require",
            namespace: "payments",
            how: How::Irsa(ROLE_ARN),
            expect: (1, Some("PERMISSION_DENIED")),
            extra_env: vec![(
                "IRSA_DOCTOR_REQUIRE",
                "sqs:SendMessage@arn:aws:sqs:us-east-1:111122223333:payments,\
                 s3:GetObject@arn:aws:s3:::payments-invoices/*",
            )],
        },
        Pod {
            title: "healthy EKS Pod Identity pod: payments/app, associated with team/payments/app",
            namespace: "payments",
            how: How::PodIdentity {
                agent_url: agent.url(),
                expected_role: ROLE_ARN,
            },
            expect: (0, None),
            extra_env: vec![],
        },
        Pod {
            title: "EKS Pod Identity with an IRSA role: orders/app's role trusts only the OIDC provider",
            namespace: "orders",
            how: How::PodIdentity {
                agent_url: irsa_role_agent.url(),
                expected_role: IRSA_ONLY_ROLE_ARN,
            },
            expect: (1, Some("POD_IDENTITY_TRUST_DENIED")),
            extra_env: vec![],
        },
    ];

    let me = std::env::current_exe().expect("own path");
    let mut results = vec![];
    let mut unexpected = vec![];
    for pod in &pods {
        let home = tempfile::tempdir().expect("temp dir");
        println!("=== {} ===\n", pod.title);
        let mut command = tokio::process::Command::new(&me);
        command.arg("check").env_clear();
        // Held until the pod has run: dropping it removes the token.
        let _volume = match &pod.how {
            How::Irsa(role_arn) => {
                let volume = TokenVolume::new(&Jwt::for_sa(pod.namespace, "app").encode());
                command
                    .env("AWS_ROLE_ARN", role_arn)
                    .env("AWS_WEB_IDENTITY_TOKEN_FILE", volume.path());
                volume
            }
            How::PodIdentity {
                agent_url,
                expected_role,
            } => {
                let token = Jwt::for_pod_identity(pod.namespace, "app").encode();
                let volume = TokenVolume::pod_identity(&token);
                command
                    .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", agent_url)
                    .env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", volume.path())
                    .env("IRSA_DOCTOR_EXPECTED_ROLE_ARN", expected_role);
                volume
            }
        };
        let output = command
            .env(CHILD, "1")
            .env("AWS_ENDPOINT_URL_STS", sts.url())
            // IAM (for --require) is the same loopback stand-in.
            .env("AWS_ENDPOINT_URL_IAM", sts.url())
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
            .stderr(Stdio::inherit())
            .output()
            .await
            .expect("run irsa-doctor");
        let report = String::from_utf8_lossy(&output.stdout);
        print!("{report}");
        let code = output.status.code().unwrap_or(-1);
        println!("exit code: {code}\n");
        let (want_code, want_finding) = pod.expect;
        let summary = report.lines().next().unwrap_or_default();
        let led_by = |finding: &str| summary.starts_with(&format!("irsa-doctor: fail: {finding}:"));
        if code != want_code || !want_finding.is_none_or(led_by) {
            let want = want_finding.unwrap_or("a pass");
            unexpected.push(format!(
                "{}: exit {code}, wanted {want_code} with {want}",
                pod.title
            ));
        }
        results.push((pod.title, code));
    }
    let exec = exec_in_the_app_container(&me, &sts).await;
    let sidecar = sidecar(&me, &sts).await;
    let injected = inject_offline();
    println!("=== summary ===");
    for (title, code) in &results {
        println!("  exit {code}  {title}");
    }
    match &exec {
        Ok(()) => println!(
            "  exec    the healthy pod's app started; with AWS_ACCESS_KEY_ID in the app's own env, exit 1 and no app"
        ),
        Err(e) => println!("  exec    unexpected: {e}"),
    }
    match &sidecar {
        Ok(()) => println!(
            "  serve   /readyz 200 while healthy, 503 once the trust policy broke, exit 0 on SIGTERM"
        ),
        Err(e) => println!("  serve   unexpected: {e}"),
    }
    match &injected {
        Ok(()) => println!(
            "  inject  the Deployment gained irsa-doctor (sidecar), expecting its ServiceAccount's role"
        ),
        Err(e) => println!("  inject  unexpected: {e}"),
    }
    if unexpected.is_empty() && exec.is_ok() && sidecar.is_ok() && injected.is_ok() {
        ExitCode::SUCCESS
    } else {
        for line in unexpected {
            println!("unexpected: {line}");
        }
        ExitCode::FAILURE
    }
}

/// The healthy IRSA pod's environment (payments/app), as the webhook and
/// the demo set it, for a child that runs irsa-doctor. The caller clears
/// the rest of the environment.
fn healthy_pod_env(
    sts: &fake_aws::FakeAwsServer,
    volume: &TokenVolume,
    home: &tempfile::TempDir,
) -> Vec<(&'static str, std::ffi::OsString)> {
    vec![
        (CHILD, "1".into()),
        ("AWS_ROLE_ARN", ROLE_ARN.into()),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", volume.path().into()),
        ("AWS_ENDPOINT_URL_STS", sts.url().into()),
        ("AWS_ENDPOINT_URL_IAM", sts.url().into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("HOME", home.path().into()),
        ("IRSA_DOCTOR_POD_NAME", "payments-7d9f8c-x2x4q".into()),
        ("IRSA_DOCTOR_TIMEOUT", "10s".into()),
    ]
}

/// `irsa-doctor exec -- echo ...` in the healthy pod's app container: the
/// app starts once the check passes. Then the same container with static
/// keys in its own env, which an init container or a sidecar would not
/// see: the check fails and the app does not start.
async fn exec_in_the_app_container(
    me: &std::path::Path,
    sts: &fake_aws::FakeAwsServer,
) -> Result<(), String> {
    println!("=== exec: irsa-doctor in the app's own container, then the app ===\n");
    sts.aws.add_key(
        "AKIADEMOEXAMPLE00002",
        "arn:aws:iam::999988887777:user/ci-bot",
    );
    let volume = TokenVolume::new(&Jwt::for_sa("payments", "app").encode());
    let home = tempfile::tempdir().map_err(|e| e.to_string())?;
    for (keys, want) in [(false, 0), (true, 1)] {
        let mut command = tokio::process::Command::new(me);
        command
            .args([
                "exec",
                "--",
                "echo",
                "the app started: it runs as the pod's role",
            ])
            .env_clear()
            .envs(healthy_pod_env(sts, &volume, &home))
            .env("PATH", "/usr/bin:/bin")
            .env("RUST_LOG", "off")
            .stdin(Stdio::null());
        if keys {
            println!(
                "(the app container's own env sets AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)\n"
            );
            command
                .env("AWS_ACCESS_KEY_ID", "AKIADEMOEXAMPLE00002")
                .env("AWS_SECRET_ACCESS_KEY", "demo-secret-not-shown");
        }
        let output = command.output().await.map_err(|e| e.to_string())?;
        print!("{}", String::from_utf8_lossy(&output.stderr));
        let app = String::from_utf8_lossy(&output.stdout);
        let code = output.status.code().unwrap_or(-1);
        println!("app's stdout: {:?}\nexit code: {code}\n", app.trim_end());
        if code != want || app.is_empty() == (want == 0) {
            return Err(format!(
                "exit {code} and app output {app:?}, wanted exit {want}"
            ));
        }
    }
    Ok(())
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
        .envs(healthy_pod_env(sts, &volume, &home))
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

/// A GitOps repository's manifests: payments/app's ServiceAccount, with
/// its IRSA role, and the Deployment that runs as it. The app has no AWS
/// variable yet: the EKS webhook adds them when the pod is created.
const MANIFESTS: &str = "\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: app
  namespace: payments
  annotations:
    eks.amazonaws.com/role-arn: arn:aws:iam::111122223333:role/team/payments/app
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: payments
spec:
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels: {app: app}
    spec:
      serviceAccountName: app
      containers:
        - name: app
          image: registry.example.com/payments/app:1.2.3
";

/// `irsa-doctor-injector inject`, through its library (the same function
/// the command runs): the Deployment before and after, by its containers,
/// and the role the injected doctor expects, which only the
/// ServiceAccount's annotation says.
fn inject_offline() -> Result<(), String> {
    use irsa_doctor_injector::{inject_stream, Mode, Options, Template};
    println!("\n=== inject: irsa-doctor-injector on a Deployment and its ServiceAccount ===\n");
    let options = Options {
        template: Template::embedded().map_err(|e| e.to_string())?,
        image: Some("registry.example.com/platform/irsa-doctor:0.1.0".to_owned()),
        mode: Mode::Sidecar,
    };
    println!("before: deployment/app -n payments runs [app]; its ServiceAccount names {ROLE_ARN}");
    let (output, report) =
        inject_stream(MANIFESTS.as_bytes(), &options).map_err(|e| e.to_string())?;
    for entry in &report.entries {
        println!("inject: {}: {}", entry.workload, entry.result);
    }
    let docs = yaml_rust2::YamlLoader::load_from_str(&output).map_err(|e| e.to_string())?;
    let deployment = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("Deployment"))
        .ok_or("no Deployment in the output")?;
    let spec = &deployment["spec"]["template"]["spec"];
    let names = |key: &str| -> Vec<&str> {
        spec[key]
            .as_vec()
            .map(|v| v.iter().filter_map(|c| c["name"].as_str()).collect())
            .unwrap_or_default()
    };
    println!(
        "after:  initContainers {:?}, containers {:?}",
        names("initContainers"),
        names("containers")
    );
    let doctor = spec["initContainers"]
        .as_vec()
        .and_then(|v| v.iter().find(|c| c["name"].as_str() == Some("irsa-doctor")))
        .ok_or("no irsa-doctor container was injected")?;
    let native_sidecar = doctor["restartPolicy"].as_str() == Some("Always");
    let command = doctor["args"][0].as_str().unwrap_or("?");
    let expected = doctor["env"]
        .as_vec()
        .and_then(|v| {
            v.iter()
                .find(|e| e["name"].as_str() == Some("IRSA_DOCTOR_EXPECTED_ROLE_ARN"))
        })
        .and_then(|e| e["value"].as_str())
        .unwrap_or("(none)");
    let mode = if native_sidecar {
        "native sidecar"
    } else {
        "init container"
    };
    println!("        irsa-doctor: {mode} running `{command}`, IRSA_DOCTOR_EXPECTED_ROLE_ARN={expected}\n");
    if !native_sidecar || command != "serve" || expected != ROLE_ARN {
        return Err(format!(
            "irsa-doctor as {mode} running {command}, expecting {expected}"
        ));
    }
    Ok(())
}
