//! The request a trust policy is asked about: who asks (the principal),
//! for which actions, with which context keys, as IRSA and EKS Pod
//! Identity send it to STS.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

use crate::identity::mechanism::MechanismName;

/// EKS Pod Identity's service principal.
pub const POD_IDENTITY_SERVICE: &str = "pods.eks.amazonaws.com";

/// IRSA's action.
pub const WEB_IDENTITY_ACTION: &str = "sts:AssumeRoleWithWebIdentity";

/// EKS Pod Identity's actions: both are needed, since EKS tags the session.
pub const POD_IDENTITY_ACTIONS: [&str; 2] = ["sts:AssumeRole", "sts:TagSession"];

/// Who asks, for what, with which context keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Request {
    /// `irsa` or `pod-identity` in `explain`'s JSON
    /// ([`MechanismName::as_flag`]).
    #[serde(serialize_with = "as_flag")]
    pub mechanism: MechanismName,
    /// The principal type (`Federated`, `Service`) and value.
    pub principal_type: &'static str,
    pub principal: String,
    /// Each must be allowed.
    pub actions: Vec<String>,
    /// Context keys as IAM names them, with their values; a key absent
    /// here is absent from the request.
    pub context: BTreeMap<String, Vec<String>>,
    /// Keys whose value is not known here (a pod does not know its
    /// cluster's name): conditions on them are assumed to hold, and the
    /// evaluation says so.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub assumed: Vec<String>,
    /// EKS Pod Identity with the association's session tags disabled: no
    /// tag is sent, which the reasons name.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub untagged: bool,
}

/// `explain`'s spelling of the mechanism, an API since it shipped.
fn as_flag<S: Serializer>(mechanism: &MechanismName, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(mechanism.as_flag())
}

/// The IAM OIDC provider's name for an issuer: `HOST/PATH`.
pub fn provider_of(iss: &str) -> String {
    let host = iss.trim().trim_start_matches("https://");
    host.trim_end_matches('/').to_owned()
}

impl Request {
    /// IRSA: the role's partition and account name the provider ARN.
    pub fn web_identity(
        partition: &str,
        account: &str,
        iss: &str,
        sub: Option<&str>,
        aud: &[String],
    ) -> Request {
        let provider = provider_of(iss);
        let mut context = BTreeMap::new();
        if let Some(sub) = sub {
            context.insert(format!("{provider}:sub"), vec![sub.to_owned()]);
        }
        if !aud.is_empty() {
            context.insert(format!("{provider}:aud"), aud.to_vec());
        }
        Request {
            mechanism: MechanismName::Irsa,
            principal_type: "Federated",
            principal: format!("arn:{partition}:iam::{account}:oidc-provider/{provider}"),
            actions: vec![WEB_IDENTITY_ACTION.to_owned()],
            context,
            assumed: vec![],
            untagged: false,
        }
    }

    /// EKS Pod Identity: EKS asks, with the session tags (name, value) as
    /// `aws:RequestTag/...` and their names as `aws:TagKeys`.
    pub fn pod_identity(tags: &[(&str, &str)]) -> Request {
        let mut context = BTreeMap::new();
        for (name, value) in tags {
            context.insert(format!("aws:RequestTag/{name}"), vec![(*value).to_owned()]);
        }
        let keys: Vec<String> = tags.iter().map(|(name, _)| (*name).to_owned()).collect();
        if !keys.is_empty() {
            context.insert("aws:TagKeys".to_owned(), keys);
        }
        Request {
            mechanism: MechanismName::PodIdentity,
            principal_type: "Service",
            principal: POD_IDENTITY_SERVICE.to_owned(),
            actions: POD_IDENTITY_ACTIONS.map(str::to_owned).to_vec(),
            context,
            assumed: vec![],
            untagged: false,
        }
    }

    /// EKS Pod Identity with the association's session tags disabled: EKS
    /// asks for `sts:AssumeRole` with no tag, and STS asks for
    /// `sts:TagSession` only of a request that carries tags.
    pub fn pod_identity_untagged() -> Request {
        Request {
            actions: vec![POD_IDENTITY_ACTIONS[0].to_owned()],
            untagged: true,
            ..Request::pod_identity(&[])
        }
    }

    /// A Pod Identity target role's hop: the association's role (`first`,
    /// `arn:PARTITION:iam::ACCOUNT:role/PATH/NAME`) asks, as `Principal`
    /// `AWS` and `aws:PrincipalArn`; with session tags on, for
    /// `sts:AssumeRole` and `sts:TagSession` with the tags (as request tags,
    /// and as the first session's `aws:PrincipalTag/...`); with them off,
    /// for `sts:AssumeRole` with `sts:ExternalId` (when known).
    pub fn target_hop(
        first: &str,
        tags: Option<&[(&str, &str)]>,
        external_id: Option<&str>,
    ) -> Request {
        let mut request = match tags {
            Some(tags) => Request::pod_identity(tags),
            None => Request::pod_identity_untagged(),
        };
        request.principal_type = "AWS";
        request.principal = first.to_owned();
        let ctx = &mut request.context;
        // The asker is the first hop's session, which EKS tagged with the
        // same tags: STS gives them to the second hop as principal tags.
        // With tags off, the first session has none either.
        for (name, value) in tags.unwrap_or_default() {
            ctx.insert(
                format!("aws:PrincipalTag/{name}"),
                vec![(*value).to_owned()],
            );
        }
        ctx.insert("aws:PrincipalArn".to_owned(), vec![first.to_owned()]);
        if let Some(account) = first.split(':').nth(4) {
            ctx.insert("aws:PrincipalAccount".to_owned(), vec![account.to_owned()]);
        }
        if let Some(id) = external_id {
            ctx.insert("sts:ExternalId".to_owned(), vec![id.to_owned()]);
        }
        request
    }

    /// A context key's values; IAM's key names ignore case.
    pub(super) fn get(&self, key: &str) -> Option<&[String]> {
        self.context
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_slice())
    }

    /// The OIDC provider's `HOST/PATH`, for IRSA.
    pub(super) fn provider(&self) -> Option<&str> {
        self.principal.split_once(":oidc-provider/").map(|(_, p)| p)
    }

    pub(super) fn account(&self) -> Option<&str> {
        self.principal.split(':').nth(4)
    }

    /// Whether `key` is one whose value is not known here, so that a
    /// condition on it is assumed to hold.
    pub(super) fn assumes(&self, key: &str) -> bool {
        self.assumed.iter().any(|k| k.eq_ignore_ascii_case(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `explain`'s JSON and `check`'s report spell the mechanism each its
    /// own way, and both are an API (`report::MechanismName`).
    #[test]
    fn explain_spells_the_mechanism_as_its_flag_and_the_report_as_before() {
        let pod = serde_json::to_value(Request::pod_identity(&[])).unwrap();
        assert_eq!(pod["mechanism"], "pod-identity");
        let irsa = Request::web_identity("aws", "1", "https://x", None, &[]);
        assert_eq!(serde_json::to_value(irsa).unwrap()["mechanism"], "irsa");
        let report = serde_json::to_value(MechanismName::PodIdentity).unwrap();
        assert_eq!(report, "pod_identity");
    }
}
