//! EKS Pod Identity, black-box: the real binary against the kit's STS and
//! agent stand-ins, each finding provoked the way the real world does, and
//! the two mechanisms told apart.

use testkit::agent::{Agent, AgentServer};
use testkit::fake_aws::{FakeAws, FakeAwsServer, NAMESPACE, ROLE_ARN, SERVICE_ACCOUNT};
use testkit::jwt::{Jwt, TokenVolume};
use testkit::{doctor, Doctor};

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
    // irsa-doctor's own request, and the default chain's.
    assert_eq!(agent.agent.request_count(), 2);
    let seen = &agent.agent.requests()[0];
    assert_eq!(seen.host(), Some(agent.url().split('/').nth(2).unwrap()));
    assert_eq!(seen.authorization(), Some(token().as_str()));
    assert_eq!(sts.aws.our_assume_calls(), 0);
}
