//! `cargo run --example standin`: the loopback STS stand-in on its own, for
//! benchmarks and manual poking. It serves a healthy account (the cluster's
//! OIDC provider and the role `team/payments/app` trusting `payments/app`),
//! writes a matching token volume, prints the environment a pod would have,
//! and runs until its standard input closes.

use testkit::{fake_aws, jwt};
use tokio::io::AsyncReadExt;

#[tokio::main]
async fn main() {
    let sts = fake_aws::FakeAws::healthy().await;
    let volume = jwt::TokenVolume::new(
        &jwt::Jwt::for_sa(fake_aws::NAMESPACE, fake_aws::SERVICE_ACCOUNT).encode(),
    );
    println!("AWS_ENDPOINT_URL_STS={}", sts.url());
    println!("AWS_ROLE_ARN={}", fake_aws::ROLE_ARN);
    println!("AWS_WEB_IDENTITY_TOKEN_FILE={}", volume.path().display());
    println!("AWS_REGION=us-east-1");
    println!("AWS_DEFAULT_REGION=us-east-1");
    println!("AWS_EC2_METADATA_DISABLED=true");
    println!("READY");
    // Serve until whoever started us closes our stdin.
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    eprintln!(
        "stand-in served {} AssumeRoleWithWebIdentity and {} GetCallerIdentity calls",
        sts.aws.assume_calls(),
        sts.aws.caller_identity_calls()
    );
}
