//! `cargo run --example demo`: irsa-doctor against the embedded loopback
//! STS stand-in, for one healthy pod and three broken ones. Each pod is a
//! child process with its own environment and token volume, running
//! exactly what the `irsa-doctor` binary runs; the demo prints each report
//! and exit code. Nothing leaves 127.0.0.1, and IMDS is disabled.

use std::process::{ExitCode, Stdio};

// The stand-ins the black-box tests use (tests/support), as siblings so
// that their `super::` paths resolve the same way.
#[allow(dead_code)]
#[path = "../tests/support/fake_aws.rs"]
mod fake_aws;
#[allow(dead_code)]
#[path = "../tests/support/http.rs"]
mod http;
#[allow(dead_code)]
#[path = "../tests/support/jwt.rs"]
mod jwt;

use fake_aws::{FakeAws, Trust, ACCOUNT, ROLE_ARN};
use jwt::{Jwt, TokenVolume, ISSUER};

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
        return irsa_doctor::app::main(std::env::args_os());
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
    println!("=== summary ===");
    for (title, code) in &results {
        println!("  exit {code}  {title}");
    }
    let expected = [0, 1, 1, 1];
    if results.iter().map(|(_, c)| *c).eq(expected) {
        ExitCode::SUCCESS
    } else {
        println!("unexpected exit codes: wanted {expected:?}");
        ExitCode::FAILURE
    }
}
