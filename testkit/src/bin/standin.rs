//! `cargo run -p testkit --bin standin`: the loopback stand-ins on their
//! own, for the benchmarks (`bench/standin.py`) and for trying `check` and
//! `serve` by hand. It serves a healthy account: the STS stand-in (the
//! cluster's OIDC provider and the role `team/payments/app` trusting
//! `payments/app`, and EKS Pod Identity too), and the EKS Pod Identity
//! agent stand-in (`payments/app` associated with that role). It writes a
//! matching token volume for each mechanism and prints the environment a
//! pod would have:
//!
//! - the IRSA pod's, as `KEY=VALUE` lines;
//! - the Pod Identity pod's, as `pod-identity KEY=VALUE` lines (with
//!   `IRSA_DOCTOR_EXPECTED_ROLE_ARN`, as the example pod sets it);
//! - then `READY`.
//!
//! It runs until its standard input closes, then writes the calls it served
//! to standard error. Each `counts` line on standard input is answered on
//! standard output, at once, with the calls served so far:
//! `assume_role_with_web_identity=N get_caller_identity=N agent=N
//! chain_assume_role_with_web_identity=N` (the last: those of the first
//! that the default chain made, not irsa-doctor itself).
//! `fail access-denied` makes every AssumeRoleWithWebIdentity answer
//! `AccessDenied` (a trust policy that does not admit the pod: a
//! persistent, definitive failure), `fail server-error` a 500 (an STS
//! outage, retried), until `heal` or another `fail`; each is answered
//! `ok`.

use testkit::agent::Agent;
use testkit::{fake_aws, jwt, world};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() {
    let sts = fake_aws::FakeAws::healthy().await;
    let volume =
        jwt::TokenVolume::new(&jwt::Jwt::for_sa(world::NAMESPACE, world::SERVICE_ACCOUNT).encode());
    // The role trusts Pod Identity as well as the OIDC provider, so both
    // pods are healthy against the same STS stand-in.
    let agent = Agent::healthy(&sts.aws).await;
    let pod_identity_volume = jwt::TokenVolume::pod_identity(
        &jwt::Jwt::for_pod_identity(world::NAMESPACE, world::SERVICE_ACCOUNT).encode(),
    );

    println!("AWS_ENDPOINT_URL_STS={}", sts.url());
    println!("AWS_ENDPOINT_URL_IAM={}", sts.url());
    println!("AWS_ROLE_ARN={}", world::ROLE_ARN);
    println!("AWS_WEB_IDENTITY_TOKEN_FILE={}", volume.path().display());
    println!("AWS_REGION=us-east-1");
    println!("AWS_DEFAULT_REGION=us-east-1");
    println!("AWS_EC2_METADATA_DISABLED=true");

    for (key, value) in [
        ("AWS_ENDPOINT_URL_STS", sts.url()),
        ("AWS_ENDPOINT_URL_IAM", sts.url()),
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", agent.url()),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            pod_identity_volume.path().display().to_string(),
        ),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        // Pod Identity has no AWS_ROLE_ARN to compare with; the example
        // pod (examples/k8s) names the role it expects.
        ("IRSA_DOCTOR_EXPECTED_ROLE_ARN", world::ROLE_ARN.into()),
    ] {
        println!("pod-identity {key}={value}");
    }
    println!("READY");

    // Serve until whoever started us closes our stdin, answering `counts`.
    let counts = || {
        format!(
            "assume_role_with_web_identity={} get_caller_identity={} agent={} \
             chain_assume_role_with_web_identity={}",
            sts.aws.assume_calls(),
            sts.aws.caller_identity_calls(),
            agent.agent.request_count(),
            sts.aws.chain_assume_calls()
        )
    };
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        match line.trim() {
            "counts" => println!("{}", counts()),
            "fail access-denied" => {
                sts.aws.always(fake_aws::Fault::AccessDenied);
                println!("ok");
            }
            "fail server-error" => {
                sts.aws.always(fake_aws::Fault::ServerError);
                println!("ok");
            }
            "heal" => {
                sts.aws.clear_always();
                println!("ok");
            }
            "" => {}
            other => eprintln!(
                "stand-in: unknown command {other:?} (known: counts, fail access-denied, \
                 fail server-error, heal)"
            ),
        }
    }
    eprintln!(
        "stand-in served {} AssumeRoleWithWebIdentity and {} GetCallerIdentity calls, \
         and {} Pod Identity agent requests",
        sts.aws.assume_calls(),
        sts.aws.caller_identity_calls(),
        agent.agent.request_count()
    );
}
