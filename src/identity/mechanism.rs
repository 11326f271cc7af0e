//! The mechanism's name, declared once: how a pod gets its credentials,
//! and the two spellings output has shipped with.

use serde::Serialize;

/// How the pod gets its credentials, as its environment says.
///
/// The mechanism's names are declared here and nowhere else. Output spells
/// it two ways, because two outputs shipped with different spellings and
/// each is an API that scripts, dashboards and alerts parse: changing
/// either is a breaking change, not a tidy-up.
/// - [`MechanismName::as_str`], `pod_identity`: `check`'s JSON report and
///   `/status` (`mechanism`), and the `mechanism` label of the metrics.
/// - [`MechanismName::as_flag`], `pod-identity`: `explain`'s JSON
///   (`request.mechanism`), spelled as `explain`'s `--pod-identity` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MechanismName {
    /// IAM Roles for Service Accounts: web identity with the projected token.
    Irsa,
    /// EKS Pod Identity: the node agent, with the projected token.
    PodIdentity,
}

impl MechanismName {
    /// The name in `check`'s report and the metrics' labels.
    pub fn as_str(self) -> &'static str {
        match self {
            MechanismName::Irsa => "irsa",
            MechanismName::PodIdentity => "pod_identity",
        }
    }

    /// The name in `explain`'s JSON, as its flag spells it.
    pub fn as_flag(self) -> &'static str {
        match self {
            MechanismName::Irsa => "irsa",
            MechanismName::PodIdentity => "pod-identity",
        }
    }

    /// The name people know it by.
    pub fn words(self) -> &'static str {
        match self {
            MechanismName::Irsa => "IRSA",
            MechanismName::PodIdentity => "EKS Pod Identity",
        }
    }
}

impl Serialize for MechanismName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Whether an EKS Pod Identity association sends its six session tags
/// (`disableSessionTags` off or on). Nothing inside the pod shows it, so
/// the user says it (`--session-tags`). With tags disabled, trust
/// conditions on `aws:RequestTag/...` fail and ABAC on
/// `aws:PrincipalTag/...` stops matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SessionTags {
    // Plain comments: a doc comment here would turn clap's `--help` into
    // its long form, for every flag.
    // The association's default: EKS tags the session.
    #[default]
    Enabled,
    // `disableSessionTags: true`: no tag is sent.
    Disabled,
}

impl SessionTags {
    pub fn enabled(self) -> bool {
        self == SessionTags::Enabled
    }

    /// As `--session-tags` and the report's JSON spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionTags::Enabled => "enabled",
            SessionTags::Disabled => "disabled",
        }
    }
}

/// EKS Pod Identity's six session tags.
pub const SESSION_TAG_NAMES: [&str; 6] = [
    "eks-cluster-arn",
    "eks-cluster-name",
    "kubernetes-namespace",
    "kubernetes-service-account",
    "kubernetes-pod-name",
    "kubernetes-pod-uid",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The report's JSON, the start log line and the flag spell it alike.
    #[test]
    fn session_tags_are_spelled_as_the_flag_takes_them() {
        for tags in [SessionTags::Enabled, SessionTags::Disabled] {
            assert_eq!(serde_json::to_value(tags).unwrap(), tags.as_str());
            let parsed = <SessionTags as clap::ValueEnum>::from_str(tags.as_str(), false);
            assert_eq!(parsed, Ok(tags));
        }
    }
}
