//! What is known of the role a pod should act as, from outside the pod: the
//! ServiceAccount's `eks.amazonaws.com/role-arn` annotation (IRSA) or the
//! EKS Pod Identity association. It becomes the in-pod variables that
//! irsa-doctor reads (docs/reference.md), so a pod handed the wrong role
//! fails instead of passing against whatever AWS_ROLE_ARN says.

use k8s_openapi::api::core::v1::EnvVar;

/// The ServiceAccount annotation the EKS pod identity webhook reads.
pub const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";

/// The irsa-doctor variable that names the role the pod must act as.
pub const EXPECTED_ROLE_VAR: &str = "IRSA_DOCTOR_EXPECTED_ROLE_ARN";

/// An EKS Pod Identity association, as DescribePodIdentityAssociation
/// returns it (phase 2 reads it; tests and callers build it by hand).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Association {
    /// `roleArn`: the role EKS assumes first, in the cluster's account.
    pub role_arn: String,
    /// `targetRoleArn`: with one, the pod acts as this role (second hop).
    pub target_role_arn: Option<String>,
    /// `disableSessionTags`.
    pub disable_session_tags: bool,
    /// `policy`: the session policy text.
    pub session_policy: Option<String>,
}

/// What the injector knows of a pod's expected identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Identity {
    /// Nothing from outside the pod; the pod may still show an identity
    /// through the AWS variables the EKS webhook gave its containers.
    #[default]
    Unknown,
    /// IRSA: the ServiceAccount's role annotation.
    ServiceAccount { role_arn: String },
    /// EKS Pod Identity.
    Association(Association),
}

impl Identity {
    pub fn is_known(&self) -> bool {
        !matches!(self, Identity::Unknown)
    }

    /// The role the pod must act as: the annotation's, or the association's
    /// target role when it has one, else its role.
    pub fn expected_role_arn(&self) -> Option<&str> {
        match self {
            Identity::Unknown => None,
            Identity::ServiceAccount { role_arn } => Some(role_arn),
            Identity::Association(a) => Some(a.target_role_arn.as_deref().unwrap_or(&a.role_arn)),
        }
    }

    /// The irsa-doctor variables that carry this identity into the pod,
    /// named as docs/reference.md names them.
    pub fn env(&self) -> Vec<EnvVar> {
        let mut env = Vec::new();
        if let Some(role) = self.expected_role_arn() {
            env.push(var(EXPECTED_ROLE_VAR, role));
        }
        if let Identity::Association(a) = self {
            // The first hop matters only with a second one: without a
            // target role the expected role is the association's own.
            if a.target_role_arn.is_some() {
                env.push(var("IRSA_DOCTOR_ASSOCIATION_ROLE_ARN", &a.role_arn));
            }
            if a.disable_session_tags {
                env.push(var("IRSA_DOCTOR_SESSION_TAGS", "disabled"));
            }
            if let Some(policy) = &a.session_policy {
                env.push(var("IRSA_DOCTOR_SESSION_POLICY", policy));
            }
        }
        env
    }
}

fn var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        value_from: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_values(id: &Identity) -> Vec<(String, String)> {
        id.env()
            .into_iter()
            .map(|v| (v.name, v.value.unwrap()))
            .collect()
    }

    #[test]
    fn a_target_role_is_expected_and_the_first_hop_is_named() {
        let id = Identity::Association(Association {
            role_arn: "arn:aws:iam::111122223333:role/hop".into(),
            target_role_arn: Some("arn:aws:iam::444455556666:role/target".into()),
            disable_session_tags: true,
            session_policy: Some("{\"Version\":\"2012-10-17\"}".into()),
        });
        assert_eq!(
            names_values(&id),
            vec![
                (
                    "IRSA_DOCTOR_EXPECTED_ROLE_ARN".into(),
                    "arn:aws:iam::444455556666:role/target".into()
                ),
                (
                    "IRSA_DOCTOR_ASSOCIATION_ROLE_ARN".into(),
                    "arn:aws:iam::111122223333:role/hop".into()
                ),
                ("IRSA_DOCTOR_SESSION_TAGS".into(), "disabled".into()),
                (
                    "IRSA_DOCTOR_SESSION_POLICY".into(),
                    "{\"Version\":\"2012-10-17\"}".into()
                ),
            ]
        );
    }

    #[test]
    fn an_association_without_target_expects_its_own_role_only() {
        let id = Identity::Association(Association {
            role_arn: "arn:aws:iam::111122223333:role/app".into(),
            ..Association::default()
        });
        assert_eq!(
            names_values(&id),
            vec![(
                "IRSA_DOCTOR_EXPECTED_ROLE_ARN".into(),
                "arn:aws:iam::111122223333:role/app".into()
            )]
        );
        assert!(Identity::Unknown.env().is_empty());
    }
}
