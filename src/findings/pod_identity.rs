//! EKS Pod Identity's findings: the agent's URI, the token as the agent
//! sees it, the agent's answers, and who its credentials turn out to be.

use std::time::Duration;

use crate::identity::arn::RoleArn;
use crate::identity::mechanism::SessionTags;
use crate::identity::token::Claims;
use crate::peers::agent::{Failure, FailureKind, AUDIENCE};
use crate::report::{Code, Finding};

/// Where the webhook mounts the Pod Identity token; named in remedies.
pub const TOKEN_PATH: &str =
    "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token";

/// The agent's address the webhook injects.
pub const AGENT_URI: &str = "http://169.254.170.23/v1/credentials";

/// The trust statement a Pod Identity role needs, as AWS documents it.
pub const TRUST_STATEMENT: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [{
    "Effect": "Allow",
    "Principal": {"Service": "pods.eks.amazonaws.com"},
    "Action": ["sts:AssumeRole", "sts:TagSession"]
  }]
}"#;

/// `POD_IDENTITY_UNUSED`: both mechanisms are configured; every SDK uses
/// IRSA's web identity first.
pub fn unused(uri: &str) -> Finding {
    Finding::warning(
        Code::PodIdentityUnused,
        format!(
            "EKS Pod Identity is configured too (AWS_CONTAINER_CREDENTIALS_FULL_URI={uri}), but \
             every AWS SDK searches web identity first: this pod uses IRSA, and the Pod Identity \
             association goes unused"
        ),
        "Use one mechanism. The webhook never injects both: the IRSA variables were set by \
         hand in the container spec (or the image). To use Pod Identity, remove \
         AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE from the spec; to keep IRSA, delete the \
         association (aws eks delete-pod-identity-association). Recreate the pod either way.",
    )
    .expected("one mechanism configured")
    .found("IRSA and EKS Pod Identity variables both set")
}

/// `POD_IDENTITY_URI_INVALID`: `AWS_CONTAINER_CREDENTIALS_FULL_URI` is
/// `uri`, which `problem` says SDKs refuse.
pub fn uri_invalid(uri: &str, problem: &str) -> Finding {
    Finding::error(
        Code::PodIdentityUriInvalid,
        format!("AWS_CONTAINER_CREDENTIALS_FULL_URI {uri:?} {problem}, so no SDK will ask it"),
        format!(
            "The webhook sets {AGENT_URI} (http://[fd00:ec2::23]/v1/credentials on IPv6 \
             clusters). If the variable was set by hand, remove it and let the webhook set it, \
             or use an http URI on 169.254.170.23, [fd00:ec2::23], 169.254.170.2 or loopback, \
             or an https URI. For a variable in the spec's env: kubectl set env \
             deployment/<name> -n <namespace> AWS_CONTAINER_CREDENTIALS_FULL_URI-"
        ),
    )
    .expected("http://169.254.170.23/v1/credentials, [fd00:ec2::23], loopback or https")
    .found(uri)
}

/// `POD_IDENTITY_URI_INVALID`, as a warning: an https URI on a host only
/// the AWS SDKs for Go v2 and Rust accept.
pub fn https_host_not_everywhere(uri: &str) -> Finding {
    Finding::warning(
        Code::PodIdentityUriInvalid,
        format!(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI {uri:?} is an https URI on a host other than \
             the agents' addresses: only the AWS SDKs for Go v2 and Rust accept it; botocore \
             (boto3, the AWS CLI), JavaScript and Java refuse it"
        ),
        format!(
            "The webhook sets {AGENT_URI}. If the variable was set by hand, remove it and let \
             the webhook set it."
        ),
    )
    .expected("http://169.254.170.23/v1/credentials or [fd00:ec2::23]")
    .found(uri)
}

/// `TOKEN_MALFORMED`: the token file holds bytes (a trailing newline, say)
/// that cannot travel in the `Authorization` header.
pub fn token_not_a_header(path: &str) -> Finding {
    Finding::error(
        Code::TokenMalformed,
        format!(
            "the token file {path} holds a CR, LF or other control character: SDKs send the \
             file's bytes as they are in the Authorization header, and the AWS SDK for Rust \
             and botocore refuse such a token, so the app gets no credentials"
        ),
        format!(
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE must name the projected token the webhook \
             mounts ({TOKEN_PATH}), which holds the JWT alone. A file written by hand (echo adds \
             a newline) needs printf '%s' instead. For a variable in the spec's env: kubectl \
             set env deployment/<name> -n <namespace> AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE-"
        ),
    )
    .expected("a JWT without line breaks or control characters")
    .found("control characters in the file")
}

/// `TOKEN_AUDIENCE_MISMATCH` for the Pod Identity token.
pub fn audience_mismatch(claims: &Claims) -> Finding {
    let found = if claims.aud.is_empty() {
        "no aud claim".to_owned()
    } else {
        format!("aud [{}]", claims.aud.join(", "))
    };
    Finding::error(
        Code::TokenAudienceMismatch,
        format!("the token's audience does not include {AUDIENCE}: it has {found}, and EKS Auth refuses it"),
        format!(
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE must name the token the webhook projects \
             for Pod Identity ({TOKEN_PATH}, audience {AUDIENCE}), not the IRSA token or \
             another service-account token. Remove the variable from the container spec and \
             let the webhook set it, and recreate the pod."
        ),
    )
    .expected(format!("aud containing {AUDIENCE}"))
    .found(found)
}

/// What the agent step knew when it failed.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    pub uri: &'a str,
    pub attempts: u32,
    pub elapsed: Duration,
    /// The role expected, if given, for the trust remedy.
    pub expected_role: Option<&'a str>,
}

/// The finding for the agent's final refusal or silence.
pub fn agent_failure(failure: &Failure, a: &Asked<'_>) -> Finding {
    let found = match failure.status {
        Some(status) => format!("HTTP {status}: {}", failure.detail),
        None => failure.detail.clone(),
    };
    let tried = format!(
        "{} attempt{} over {:.1} s",
        a.attempts,
        if a.attempts == 1 { "" } else { "s" },
        a.elapsed.as_secs_f64()
    );
    let uri = a.uri;
    let role = a.expected_role.unwrap_or("<role>");
    let name = role.rsplit('/').next().unwrap_or(role);
    match failure.kind {
        FailureKind::Unreachable => Finding::error(
            Code::PodIdentityAgentUnreachable,
            format!("the EKS Pod Identity agent at {uri} did not answer ({tried})"),
            "Install the Amazon EKS Pod Identity Agent add-on (aws eks create-addon \
             --addon-name eks-pod-identity-agent) and check that its DaemonSet \
             (kube-system/eks-pod-identity-agent) has a ready pod on this node. Pod Identity \
             does not work on Fargate or Windows nodes. On IPv6 clusters the agent must bind \
             [fd00:ec2::23]; EKS Auto Mode runs the agent itself. On hybrid nodes the agent is \
             a DaemonSet of its own, kube-system/eks-pod-identity-agent-hybrid, off by default \
             in the add-on's configuration (kubectl get daemonset -n kube-system \
             eks-pod-identity-agent-hybrid). A NetworkPolicy or hostNetwork setting that \
             blocks 169.254.170.23:80 has the same effect.",
        )
        .expected(format!("an HTTP answer from {uri}"))
        .found(found),
        FailureKind::TrustDenied => Finding::error(
            Code::PodIdentityTrustDenied,
            "EKS cannot assume the associated role: its trust policy does not admit \
             pods.eks.amazonaws.com"
                .to_owned(),
            format!(
                "Make the role trust EKS Pod Identity, with both actions (aws iam \
                 update-assume-role-policy --role-name {name} --policy-document \
                 file://trust.json), trust.json:\n{TRUST_STATEMENT}\n\
                 A role made for IRSA trusts only the cluster's OIDC provider and gives exactly \
                 this error; add the statement beside the OIDC one to keep both. Conditions on \
                 aws:RequestTag/... (the session tags kubernetes-namespace, \
                 kubernetes-service-account, eks-cluster-name) can also be what refuses. {}",
                crate::findings::role::AGENT_CACHE
            ),
        )
        .expected("a trust policy admitting pods.eks.amazonaws.com with sts:AssumeRole and sts:TagSession")
        .found(found),
        FailureKind::TokenRejected => Finding::error(
            Code::PodIdentityTokenRejected,
            format!("the EKS Pod Identity agent rejected the token ({tried})"),
            format!(
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE must name the token the webhook projects \
                 ({TOKEN_PATH}); the agent wants the JWT itself, with no Bearer prefix, from \
                 this cluster, with audience {AUDIENCE}. Remove hand-set variables (kubectl set \
                 env deployment/<name> -n <namespace> AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE-) \
                 and recreate the pod (kubectl rollout restart deployment/<name> -n \
                 <namespace>)."
            ),
        )
        .expected("a token the agent accepts")
        .found(found),
        FailureKind::TokenExpired => Finding::error(
            Code::TokenExpired,
            "the EKS Pod Identity agent says the token has expired".to_owned(),
            "The kubelet refreshes the projected token well before it expires: an expired one \
             means the refresh stopped or the node's clock is wrong. Restart the pod, and check \
             the kubelet and NTP on the node. An SDK that reads the token once and caches it \
             (boto3 before 1.34.41) fails like this after about a day. Restart: kubectl \
             rollout restart deployment/<name> -n <namespace>."
                .to_owned(),
        )
        .expected("a token the agent considers unexpired")
        .found(found),
        FailureKind::AssociationMissing => Finding::error(
            Code::PodIdentityAssociationMissing,
            format!("the EKS Pod Identity agent found no association for this pod ({tried})"),
            "This answer is not yet confirmed on a live cluster: it most likely means the \
             association for this namespace and service account was deleted after the pod \
             started. Check with aws eks list-pod-identity-associations --cluster-name \
             <cluster> --namespace <namespace>, create it again if it is gone, and recreate \
             the pod. A 404 can also mean the URI's path is not /v1/credentials."
                .to_owned(),
        )
        .expected("an association for this pod's service account")
        .found(found),
        FailureKind::Throttled => Finding::error(
            Code::PodIdentityThrottled,
            format!("the EKS Pod Identity agent or EKS Auth throttled every attempt ({tried})"),
            "Usually transient: the check is retried. If it persists, many pods on this node \
             are asking at once (a rollout, or an app that does not cache its credentials): \
             make apps reuse their SDK clients, or raise --timeout. The agent's own log says \
             what it was answered: kubectl logs -n kube-system -l \
             app.kubernetes.io/name=eks-pod-identity-agent --tail=50"
                .to_owned(),
        )
        .expected(format!("an answer from {uri} within --timeout"))
        .found(found),
        FailureKind::EksAuthUnreachable => Finding::error(
            Code::EksAuthUnreachable,
            format!("the EKS Pod Identity agent could not get credentials from EKS Auth ({tried})"),
            "The agent reached no answer from the EKS Auth API (eks-auth.<region>.api.aws). In \
             a private cluster, create the com.amazonaws.<region>.eks-auth interface VPC \
             endpoint; otherwise check the node's egress (NAT, security groups, DNS) and the \
             agent's own proxy settings (HTTPS_PROXY on the agent's DaemonSet). A 5xx from \
             EKS Auth itself is transient. Look for the endpoint with aws ec2 \
             describe-vpc-endpoints --filters \
             Name=service-name,Values=com.amazonaws.<region>.eks-auth, and at the agent's log \
             with kubectl logs -n kube-system -l app.kubernetes.io/name=eks-pod-identity-agent \
             --tail=50."
                .to_owned(),
        )
        .expected("credentials from EKS Auth through the agent")
        .found(found),
        FailureKind::Other => Finding::error(
            Code::PodIdentityAgentError,
            format!("the EKS Pod Identity agent at {uri} gave no credentials ({tried})"),
            "Read the agent's answer below. A 403 naming an invalid address means the request \
             did not reach the agent by 169.254.170.23 or [fd00:ec2::23] (a proxy, or a \
             hand-set URI); an AccessDeniedException that does not name the role means the \
             node role lacks eks-auth:AssumeRoleForPodIdentity (AmazonEKSWorkerNodePolicy \
             grants it). The agent's logs (kubectl logs -n kube-system ds/eks-pod-identity-agent) \
             say more."
                .to_owned(),
        )
        .expected("HTTP 200 with AccessKeyId, SecretAccessKey, Token, AccountId and Expiration")
        .found(found),
    }
}

/// Who the pod is, for the remedy's commands; `None` where unknown.
#[derive(Debug, Clone, Copy)]
pub struct PodOf<'a> {
    pub namespace: Option<&'a str>,
    pub service_account: Option<&'a str>,
    pub expected_role: Option<&'a str>,
}

/// `POD_IDENTITY_UNSUPPORTED_COMPUTE`: the pod uses EKS Pod Identity on a
/// Fargate node (`fargate-*`), where there is no agent and Pod Identity
/// does not work. IRSA does.
pub fn unsupported_compute(node: &str, uri: &str, pod: &PodOf<'_>) -> Finding {
    let namespace = pod.namespace.unwrap_or("<namespace>");
    let sa = pod.service_account.unwrap_or("<service-account>");
    let role = pod.expected_role.unwrap_or("<role-arn>");
    Finding::error(
        Code::PodIdentityUnsupportedCompute,
        format!(
            "this pod uses EKS Pod Identity but runs on the Fargate node {node}: Pod Identity \
             does not work on Fargate (there is no agent at {uri}), so the app gets no \
             credentials"
        ),
        format!(
            "Use IRSA on Fargate: give the role a trust policy for the cluster's OIDC provider \
             (aws eks describe-cluster --name <cluster> --query cluster.identity.oidc.issuer \
             names it), annotate the service account, and recreate the pod:\n\
             kubectl annotate serviceaccount -n {namespace} {sa} eks.amazonaws.com/role-arn={role}\n\
             SDKs prefer IRSA's variables when the webhook injects both; the association, now \
             unused, can go (aws eks list-pod-identity-associations --cluster-name <cluster> \
             --namespace {namespace} --service-account {sa} gives its id). Or run the pod on EC2 \
             nodes: it is on Fargate because a Fargate profile selects its namespace."
        ),
    )
    .expected("a node where the EKS Pod Identity agent runs (not Fargate)")
    .found(format!("spec.nodeName {node}"))
}

/// Whether `node` (the Downward API's `spec.nodeName`) is a Fargate node:
/// EKS names them `fargate-ip-...`. A name that merely contains the word
/// is not one.
pub fn is_fargate_node(node: &str) -> bool {
    node.starts_with("fargate-")
}

/// An association with a target role, as the user described it
/// (`--association-role-arn`, `--expected-role-arn`, `--session-tags`).
#[derive(Debug, Clone, Copy)]
pub struct Hops<'a> {
    /// The association's own role, assumed first, in the cluster's account.
    pub association: &'a RoleArn,
    /// The target role, assumed second with the first one's session.
    pub target: Option<&'a RoleArn>,
    pub tags: SessionTags,
}

/// `POD_IDENTITY_TRUST_DENIED` for an association with a target role:
/// which hop most likely failed, from the agent's answer (`body`), and the
/// trust statement that hop needs. A refusal that names the target role
/// is the second hop's; any other is the first's, since EKS's verified
/// message names "the associated role" (whether it says otherwise for the
/// second hop is unverified, so the remedy names the other hop too).
pub fn trust_denied_hop(body: &str, hops: &Hops<'_>) -> Finding {
    let first = hops.association;
    let second = second_hop_refused(body, hops);
    let (message, remedy) = match second {
        Some(target) => (
            format!(
                "EKS assumed the association's role {first} but most likely could not assume \
                 the target role {target} with it: the target's trust policy does not admit \
                 the first role"
            ),
            format!(
                "Make the target role trust the association's role (in the target's account: \
                 aws iam update-assume-role-policy --role-name {} --policy-document \
                 file://trust.json), trust.json:\n{}\n\
                 The association's role also needs an identity policy allowing {} on {target}. \
                 {}",
                target.name,
                second_hop_statement(first, hops.tags),
                if hops.tags.enabled() {
                    "sts:AssumeRole and sts:TagSession"
                } else {
                    "sts:AssumeRole"
                },
                crate::findings::role::AGENT_CACHE
            ),
        ),
        None => (
            format!(
                "EKS cannot assume the association's role {first} (the first of two hops, most \
                 likely, as the agent's answer names the associated role): its trust policy \
                 does not admit pods.eks.amazonaws.com"
            ),
            format!(
                "Make the association's role trust EKS Pod Identity, with both actions (aws iam \
                 update-assume-role-policy --role-name {} --policy-document file://trust.json), \
                 trust.json:\n{TRUST_STATEMENT}\n\
                 If it already does, the second hop is the one: the target role{} must trust \
                 {first} (Principal AWS) for {}. {}",
                first.name,
                hops.target.map(|t| format!(" {t}")).unwrap_or_default(),
                if hops.tags.enabled() {
                    "sts:AssumeRole and sts:TagSession"
                } else {
                    "sts:AssumeRole, with an sts:ExternalId condition"
                },
                crate::findings::role::AGENT_CACHE
            ),
        ),
    };
    Finding::error(Code::PodIdentityTrustDenied, message, remedy)
        .expected(match second {
            Some(_) => "a target role trust policy admitting the association's role",
            None => "a trust policy admitting pods.eks.amazonaws.com with sts:AssumeRole and sts:TagSession",
        })
        .found(body.trim())
}

/// The target role, when the agent's refusal (`body`) names it or a
/// target role: the second hop failed.
pub fn second_hop_refused<'a>(body: &str, hops: &Hops<'a>) -> Option<&'a RoleArn> {
    hops.target.filter(|t| {
        let lower = body.to_ascii_lowercase();
        lower.contains("target role") || body.contains(&t.to_string()) || names_role(body, &t.name)
    })
}

/// Whether `body` names the role `name` as a word of its own: a short
/// name ("a", "client") inside other words of EKS's message is not it.
fn names_role(body: &str, name: &str) -> bool {
    let role_char = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
    !name.is_empty()
        && body.match_indices(name).any(|(at, _)| {
            let before = body[..at].chars().next_back();
            let after = body[at + name.len()..].chars().next();
            !before.is_some_and(role_char) && !after.is_some_and(role_char)
        })
}

/// The statement a target role's trust policy needs: the association's
/// role as `Principal` `AWS`; with session tags, `sts:AssumeRole` and
/// `sts:TagSession`; without, `sts:AssumeRole` with the association's
/// `externalId`.
fn second_hop_statement(first: &RoleArn, tags: SessionTags) -> String {
    let statement = if tags.enabled() {
        serde_json::json!({"Effect": "Allow", "Principal": {"AWS": first.to_string()},
            "Action": ["sts:AssumeRole", "sts:TagSession"]})
    } else {
        serde_json::json!({"Effect": "Allow", "Principal": {"AWS": first.to_string()},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId":
                "<externalId from aws eks describe-pod-identity-association>"}}})
    };
    let doc = serde_json::json!({"Version": "2012-10-17", "Statement": [statement]});
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// `POD_IDENTITY_AGENT_ERROR`, as a warning: STS names an account other
/// than the one the agent said the credentials belong to. The agent
/// derives `AccountId` from the role it assumed (the target role, for a
/// cross-account association), so the two agree whenever the EKS Pod
/// Identity agent answers: a mismatch means something else answers at the
/// URI. STS's identity is the one the app acts as, so this does not fail
/// the check, but an SDK that routes by the account ID may use the wrong
/// one.
pub fn account_mismatch(arn: &str, account_id: &str) -> Finding {
    Finding::warning(
        Code::PodIdentityAgentError,
        format!(
            "the agent said its credentials belong to account {account_id}, but STS says they \
             are {arn}"
        ),
        "The EKS Pod Identity agent takes AccountId from the role it assumed, so it always \
         names the account STS names, a cross-account target role included. Something other \
         than the agent answers at the URI (a proxy, a sidecar, or a stand-in left in the \
         image): check AWS_CONTAINER_CREDENTIALS_FULL_URI and what listens there, e.g. \
         kubectl get pod -n <namespace> <pod> -o yaml. An SDK that routes requests by the \
         account ID (DynamoDB's account-based endpoints) may use the wrong one."
            .to_owned(),
    )
    .expected(format!("an identity in account {account_id}"))
    .found(arn)
}

/// `POD_IDENTITY_AGENT_ERROR` for an `https` URI, which irsa-doctor does
/// not ask itself, when the SDK's container provider got no identity
/// either (`found` says what the default chain did).
pub fn https_no_identity(found: &str) -> Finding {
    Finding::error(
        Code::PodIdentityAgentError,
        format!(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI is an https URI, which irsa-doctor does not ask \
             itself, and the SDK's container provider got no identity from it: {found}"
        ),
        "The EKS Pod Identity agent answers on http://169.254.170.23/v1/credentials: remove \
         the hand-set variable and let the webhook set it. Only the AWS SDKs for Go v2 and \
         Rust accept an https host other than the agent's addresses."
            .to_owned(),
    )
    .expected("credentials from the container credentials provider")
    .found(found)
}

/// `STATIC_CREDENTIALS_SHADOW`: `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`
/// (ECS) is set beside Pod Identity's full URI, and SDKs use it first.
pub fn relative_uri_first() -> Finding {
    Finding::error(
        Code::StaticCredentialsShadow,
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is set: every AWS SDK uses it before \
         AWS_CONTAINER_CREDENTIALS_FULL_URI, so apps ask 169.254.170.2 (the ECS endpoint), not \
         the EKS Pod Identity agent irsa-doctor asked"
            .to_owned(),
        "Remove AWS_CONTAINER_CREDENTIALS_RELATIVE_URI from the container spec or the image: \
         on EKS it only leads SDKs away from the Pod Identity agent."
            .to_owned(),
    )
    .expected("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI not set beside EKS Pod Identity")
    .found("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI set")
}

/// `POD_IDENTITY_AGENT_ERROR` when STS refuses the agent's credentials
/// (its code and message are in `answered`).
pub fn credentials_refused(answered: &str) -> Finding {
    Finding::error(
        Code::PodIdentityAgentError,
        "STS refused the credentials the EKS Pod Identity agent handed out".to_owned(),
        "The agent's credentials should always work at once. Check the node's clock (NTP), \
         that AWS_ENDPOINT_URL_STS (if set) points at STS, and what answers at \
         AWS_CONTAINER_CREDENTIALS_FULL_URI."
            .to_owned(),
    )
    .expected("GetCallerIdentity to succeed with the agent's credentials")
    .found(answered)
}

/// `PROXY_INTERCEPTS_CREDENTIALS`: SDKs named in `who` would send requests
/// for `urls` (the agent's, IMDS's) through the proxy, token included.
pub fn proxy_intercepts(urls: &[&str], who: &[&str], no_proxy: Option<&str>) -> Finding {
    let hosts: Vec<&str> = urls
        .iter()
        .filter_map(|u| u.split("//").nth(1))
        .map(|rest| rest.split('/').next().unwrap_or(rest))
        .collect();
    Finding::warning(
        Code::ProxyInterceptsCredentials,
        format!(
            "a proxy is set and NO_PROXY does not cover {}: {} would send the request for \
             credentials, with the pod's token, through the proxy",
            hosts.join(" and "),
            who.join(", ")
        ),
        format!(
            "Add the agent's and IMDS's addresses to NO_PROXY, as the EKS documentation says: \
             NO_PROXY=169.254.170.23,[fd00:ec2::23],169.254.169.254,{} plus what is there \
             already.",
            hosts.join(",")
        ),
    )
    .expected(format!("NO_PROXY covering {}", hosts.join(", ")))
    .found(format!("NO_PROXY={}", no_proxy.unwrap_or("(unset)")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Severity;

    fn failure(kind: FailureKind, status: Option<u16>) -> Failure {
        Failure {
            kind,
            status,
            detail: "the body".into(),
        }
    }

    fn asked() -> Asked<'static> {
        Asked {
            uri: AGENT_URI,
            attempts: 2,
            elapsed: Duration::from_millis(1500),
            expected_role: Some("arn:aws:iam::111122223333:role/team/app"),
        }
    }

    /// The hop a refusal names: the target role (by name, ARN or "target
    /// role") is the second; anything else, the verified "associated
    /// role" among it, the first.
    #[test]
    fn a_trust_refusal_is_told_by_the_hop_it_names() {
        let first = RoleArn::parse("arn:aws:iam::111122223333:role/eks-hop").unwrap();
        let target = RoleArn::parse("arn:aws:iam::444455556666:role/data-reader").unwrap();
        let hops = Hops {
            association: &first,
            target: Some(&target),
            tags: SessionTags::Enabled,
        };
        let verified = "[r]: (AccessDeniedException): Unauthorized Exception! EKS does not \
                        have permissions to assume the associated role., fault: client";
        let f = trust_denied_hop(verified, &hops);
        assert_eq!(f.code, Code::PodIdentityTrustDenied);
        assert!(f.message.contains("the first of two hops"), "{}", f.message);
        assert!(f.remedy.contains("pods.eks.amazonaws.com"), "{}", f.remedy);
        assert!(f.remedy.contains("Recreating the pod"), "{}", f.remedy);
        for naming in ["... assume the target role.", "... role/data-reader ..."] {
            let f = trust_denied_hop(naming, &hops);
            assert!(f.message.contains("could not assume"), "{}", f.message);
            assert!(f
                .remedy
                .contains(r#""AWS": "arn:aws:iam::111122223333:role/eks-hop""#));
        }
        let untagged = Hops {
            tags: SessionTags::Disabled,
            ..hops
        };
        let f = trust_denied_hop("the target role", &untagged);
        assert!(f.remedy.contains("sts:ExternalId"), "{}", f.remedy);
        // A short target name inside the words of EKS's verified message
        // does not make it the second hop's refusal.
        for name in ["a", "role", "sum", "ted"] {
            let short = RoleArn::parse(&format!("arn:aws:iam::444455556666:role/{name}")).unwrap();
            let hops = Hops {
                target: Some(&short),
                ..hops
            };
            let f = trust_denied_hop(verified, &hops);
            assert!(
                f.message.contains("the first of two hops"),
                "{name}: {}",
                f.message
            );
        }
    }

    #[test]
    fn each_agent_failure_has_its_code_and_quotes_the_body() {
        let cases = [
            (
                FailureKind::Unreachable,
                None,
                Code::PodIdentityAgentUnreachable,
            ),
            (
                FailureKind::TrustDenied,
                Some(400),
                Code::PodIdentityTrustDenied,
            ),
            (
                FailureKind::TokenRejected,
                Some(400),
                Code::PodIdentityTokenRejected,
            ),
            (FailureKind::TokenExpired, Some(400), Code::TokenExpired),
            (
                FailureKind::AssociationMissing,
                Some(404),
                Code::PodIdentityAssociationMissing,
            ),
            (
                FailureKind::Throttled,
                Some(429),
                Code::PodIdentityThrottled,
            ),
            (
                FailureKind::EksAuthUnreachable,
                Some(500),
                Code::EksAuthUnreachable,
            ),
            (FailureKind::Other, Some(403), Code::PodIdentityAgentError),
        ];
        for (kind, status, code) in cases {
            let f = agent_failure(&failure(kind, status), &asked());
            assert_eq!((f.code, f.severity), (code, Severity::Error), "{kind:?}");
            let found = f.found.unwrap();
            assert!(found.ends_with("the body"), "{kind:?}: {found}");
            if let Some(status) = status {
                assert!(found.starts_with(&format!("HTTP {status}: ")), "{found}");
            }
        }
    }

    #[test]
    fn the_trust_remedy_prints_the_statement_with_both_actions_and_names_the_role() {
        let f = agent_failure(&failure(FailureKind::TrustDenied, Some(400)), &asked());
        assert!(
            f.remedy.contains("\"Service\": \"pods.eks.amazonaws.com\""),
            "{}",
            f.remedy
        );
        assert!(f
            .remedy
            .contains("[\"sts:AssumeRole\", \"sts:TagSession\"]"));
        assert!(f.remedy.contains("--role-name app"), "{}", f.remedy);
        assert!(f.remedy.contains("trusts only the cluster's OIDC provider"));
        assert!(f.remedy.contains("aws:RequestTag"));
        let _: serde_json::Value = serde_json::from_str(TRUST_STATEMENT).unwrap();
    }

    #[test]
    fn the_unreachable_remedy_names_the_add_on_fargate_ipv6_and_auto_mode() {
        let f = agent_failure(&failure(FailureKind::Unreachable, None), &asked());
        for needle in [
            "eks-pod-identity-agent",
            "Fargate",
            "Windows",
            "[fd00:ec2::23]",
            "Auto Mode",
        ] {
            assert!(f.remedy.contains(needle), "{needle}: {}", f.remedy);
        }
        assert!(
            f.message.contains("(2 attempts over 1.5 s)"),
            "{}",
            f.message
        );
    }

    #[test]
    fn fargate_is_told_by_the_node_name_s_prefix_and_the_remedy_is_irsa() {
        assert!(is_fargate_node(
            "fargate-ip-10-0-1-23.eu-west-1.compute.internal"
        ));
        for other in [
            "ip-10-0-0-1.fargate-like",
            "ip-10-0-0-1.eu-west-1.compute.internal",
            "my-fargate-node",
            "Fargate-ip-10-0-0-1",
            "",
        ] {
            assert!(!is_fargate_node(other), "{other}");
        }
        let pod = PodOf {
            namespace: Some("pay"),
            service_account: Some("app"),
            expected_role: Some("arn:aws:iam::111122223333:role/app"),
        };
        let f = unsupported_compute("fargate-ip-10-0-1-23", AGENT_URI, &pod);
        assert_eq!(f.code, Code::PodIdentityUnsupportedCompute);
        assert!(f.message.contains("fargate-ip-10-0-1-23"), "{}", f.message);
        assert!(
            f.remedy.contains(
                "kubectl annotate serviceaccount -n pay app \
                 eks.amazonaws.com/role-arn=arn:aws:iam::111122223333:role/app"
            ),
            "{}",
            f.remedy
        );
    }

    #[test]
    fn the_unreachable_remedy_names_the_hybrid_nodes_daemonset() {
        let f = agent_failure(&failure(FailureKind::Unreachable, None), &asked());
        assert!(
            f.remedy.contains("eks-pod-identity-agent-hybrid"),
            "{}",
            f.remedy
        );
    }

    #[test]
    fn the_association_remedy_says_it_is_unverified_and_eks_auth_names_the_endpoint() {
        let f = agent_failure(
            &failure(FailureKind::AssociationMissing, Some(404)),
            &asked(),
        );
        assert!(f.remedy.contains("not yet confirmed"), "{}", f.remedy);
        let f = agent_failure(
            &failure(FailureKind::EksAuthUnreachable, Some(500)),
            &asked(),
        );
        assert!(
            f.remedy.contains("eks-auth interface VPC endpoint"),
            "{}",
            f.remedy
        );
    }

    #[test]
    fn the_environment_findings_name_the_values() {
        let f = unused(AGENT_URI);
        assert_eq!(
            (f.code, f.severity),
            (Code::PodIdentityUnused, Severity::Warning)
        );
        assert!(f.message.contains(AGENT_URI));
        let f = uri_invalid("http://10.0.0.1/creds", "names a host SDKs refuse");
        assert_eq!(f.code, Code::PodIdentityUriInvalid);
        assert_eq!(f.found.as_deref(), Some("http://10.0.0.1/creds"));
        let f = token_not_a_header("/t");
        assert_eq!(f.code, Code::TokenMalformed);
        assert!(f.remedy.contains("printf"));
        let f = audience_mismatch(&Claims {
            aud: vec!["sts.amazonaws.com".into()],
            ..Claims::default()
        });
        assert_eq!(f.code, Code::TokenAudienceMismatch);
        assert_eq!(f.found.as_deref(), Some("aud [sts.amazonaws.com]"));
    }

    #[test]
    fn identity_findings_name_both_sides() {
        let f = account_mismatch("arn:aws:sts::999999999999:assumed-role/x/y", "111122223333");
        assert_eq!(f.code, Code::PodIdentityAgentError);
        assert!(f.message.contains("account 111122223333") && f.message.contains("999999999999"));
        let f = credentials_refused("InvalidClientTokenId: no");
        assert_eq!(f.found.as_deref(), Some("InvalidClientTokenId: no"));
        let f = proxy_intercepts(
            &[
                "http://169.254.170.23/v1/credentials",
                "http://169.254.169.254/",
            ],
            &["botocore (boto3, the AWS CLI)"],
            Some("localhost"),
        );
        assert_eq!(
            (f.code, f.severity),
            (Code::ProxyInterceptsCredentials, Severity::Warning)
        );
        assert!(
            f.message.contains("169.254.170.23 and 169.254.169.254"),
            "{}",
            f.message
        );
        assert_eq!(f.found.as_deref(), Some("NO_PROXY=localhost"));
    }
}
