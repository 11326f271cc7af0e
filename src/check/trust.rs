//! The trust policy `--trust-policy` names, read when STS or the Pod
//! Identity agent refuses the role, and evaluated against what this pod
//! sent. Read afresh on every refusal, so an edited ConfigMap counts.

use std::path::Path;

use super::run::CheckConfig;
use crate::findings::trust::Explained;
use crate::guard::files::read_bounded;
use crate::identity::arn::RoleArn;
use crate::identity::token::Claims;
use crate::trust::{self, Request, MAX_POLICY_BYTES};

/// The policy at `path` evaluated against `request`, or why it could not
/// be.
pub fn explain(path: &Path, request: &Request) -> Result<Explained, String> {
    let bytes = read_bounded(path, MAX_POLICY_BYTES).map_err(|e| e.describe())?;
    let text = String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_owned())?;
    let doc = trust::parse(&text).map_err(|e| format!("the policy {e}"))?;
    let evaluation = trust::evaluate(&doc, request);
    let corrected = trust::corrected_document(&doc, &evaluation, request);
    Ok(Explained {
        evaluation,
        corrected,
    })
}

/// IRSA's request: the token's issuer, subject and audiences, through the
/// provider in the role's account.
pub fn irsa_request(role: &RoleArn, claims: &Claims) -> Option<Request> {
    Some(Request::web_identity(
        &role.partition,
        &role.account,
        claims.iss.as_deref()?,
        claims.sub.as_deref(),
        &claims.aud,
    ))
}

/// EKS Pod Identity's request: the session tags this pod can know (from
/// its token's `kubernetes.io` claims, else the flags). The cluster's name
/// and ARN are not known inside the pod: conditions on them are assumed to
/// hold.
/// With the association's session tags disabled, no tag at all.
pub fn pod_identity_request(claims: Option<&Claims>, cfg: &CheckConfig) -> Request {
    if !cfg.session_tags.enabled() {
        return Request::pod_identity_untagged();
    }
    let k8s = claims.and_then(|c| c.kubernetes.as_ref());
    let namespace = k8s
        .and_then(|k| k.namespace.as_deref())
        .or(cfg.namespace.as_deref());
    let service_account = k8s
        .and_then(|k| k.service_account.as_deref())
        .or(cfg.service_account.as_deref());
    let pod = k8s.and_then(|k| k.pod.as_deref());
    let tags: Vec<(&str, &str)> = [
        ("kubernetes-namespace", namespace),
        ("kubernetes-service-account", service_account),
        ("kubernetes-pod-name", pod),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.map(|v| (name, v)))
    .collect();
    let mut request = Request::pod_identity(&tags);
    request.assumed = ["eks-cluster-arn", "eks-cluster-name", "kubernetes-pod-uid"]
        .into_iter()
        .map(|tag| format!("aws:RequestTag/{tag}"))
        .collect();
    request
}
