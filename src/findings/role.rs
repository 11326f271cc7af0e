//! The role steps' findings: the role ARN the webhook injected, and
//! whether the pod acts as the expected role.

use crate::identity::arn::RoleArn;
use crate::report::{Code, Finding};

/// The form of a role ARN, as `expected` says it.
const ROLE_ARN_FORM: &str = "arn:aws:iam::<12-digit account>:role/<optional path/><name>";

/// `ROLE_ARN_INVALID` found locally: `AWS_ROLE_ARN` is `role_text`, and
/// `problem` says why it is not a role ARN.
pub fn role_arn_invalid(role_text: &str, problem: &str) -> Finding {
    Finding::error(
        Code::RoleArnInvalid,
        format!("AWS_ROLE_ARN {role_text:?} {problem}"),
        "Fix the eks.amazonaws.com/role-arn annotation on the ServiceAccount (or \
         AWS_ROLE_ARN in the container spec, which overrides it), then recreate the \
         pod: the webhook only sets the env at pod creation. kubectl annotate \
         serviceaccount -n <namespace> <service account> --overwrite \
         eks.amazonaws.com/role-arn=arn:aws:iam::<account>:role/<name>, then kubectl \
         rollout restart deployment/<name> -n <namespace>.",
    )
    .expected(ROLE_ARN_FORM)
    .found(role_text)
}

/// Why a non-UTF-8 `AWS_ROLE_ARN` is not usable, for [`role_arn_invalid`].
pub const ROLE_ARN_NOT_UTF8: &str = "is not valid UTF-8 text: the AWS SDK for Rust reads it as \
                                     unset, and other SDKs send it to STS garbled";

/// `ROLE_ARN_INVALID` answered by STS.
pub fn role_arn_refused(role_text: &str, answered: &str) -> Finding {
    Finding::error(
        Code::RoleArnInvalid,
        format!("STS says the role ARN {role_text} is invalid"),
        "Fix the eks.amazonaws.com/role-arn annotation on the ServiceAccount and recreate \
         the pod: kubectl annotate serviceaccount -n <namespace> <service account> \
         --overwrite eks.amazonaws.com/role-arn=arn:aws:iam::<account>:role/<name>.",
    )
    .expected(ROLE_ARN_FORM)
    .found(answered)
}

/// `ROLE_MISMATCH`: `found` says who the pod acts as ("this pod acts as
/// ..." or "AWS_ROLE_ARN names ..."), `found_arn` is that ARN alone.
pub fn role_mismatch(expected: &RoleArn, found: &str, found_arn: &str) -> Finding {
    Finding::error(
        Code::RoleMismatch,
        format!("{found}, not the expected role {expected}"),
        format!(
            "Point the ServiceAccount's eks.amazonaws.com/role-arn annotation at the \
             expected role (AWS_ROLE_ARN in the container spec overrides it) and recreate \
             the pod: kubectl annotate serviceaccount -n <namespace> <service account> \
             --overwrite eks.amazonaws.com/role-arn={expected}, then kubectl rollout restart \
             deployment/<name> -n <namespace> (for EKS Pod Identity: aws eks \
             update-pod-identity-association --cluster-name <cluster> --association-id <id> \
             --role-arn {expected}). Or, if the new role is intended, update \
             --expected-role-arn. Partition, account and role name must match; the role's \
             path is not part of the assumed-role ARN."
        ),
    )
    .expected(format!(
        "arn:{}:sts::{}:assumed-role/{}/<session>",
        expected.partition, expected.account, expected.name
    ))
    .found(found_arn)
}

/// What an EKS Pod Identity remedy says about the agent's cache: a
/// changed association reaches a running pod only when its cached
/// credentials expire, or when the pod is recreated.
pub const AGENT_CACHE: &str = "The node's Pod Identity agent caches the credentials it handed \
    out (about 6 hours; 59 minutes with a target role), and editing the association does not \
    reset that cache: a running pod keeps the old role until they expire. Recreating the pod \
    is the fix (kubectl rollout restart deployment/<name> -n <namespace>).";

/// `ROLE_MISMATCH` for EKS Pod Identity: the association names another
/// role, or, with a target role, the pod got the association's own role
/// (`association`, the first hop) instead of the target.
pub fn role_mismatch_pod_identity(
    expected: &RoleArn,
    found: &str,
    found_arn: &str,
    association: Option<&RoleArn>,
) -> Finding {
    let first_hop = association.filter(|a| {
        crate::identity::arn::AssumedRoleArn::parse(found_arn).is_some_and(|f| a.matches(&f))
    });
    let why = match first_hop {
        Some(a) => format!(
            " It acts as the association's own role {a}, the first hop: the association has \
             no target role (targetRoleArn), or not this one. Set it: aws eks \
             update-pod-identity-association --cluster-name <cluster> --association-id <id> \
             --target-role-arn {expected}."
        ),
        None => format!(
            " Point the association at the expected role: aws eks \
             update-pod-identity-association --cluster-name <cluster> --association-id <id> \
             --role-arn <role in the cluster's account> (with --target-role-arn {expected} \
             when it is in another account). See the association with aws eks \
             list-pod-identity-associations --cluster-name <cluster> --namespace <namespace>."
        ),
    };
    Finding::error(
        Code::RoleMismatch,
        format!("{found}, not the expected role {expected}"),
        format!(
            "{}{why} Or, if the new role is intended, update --expected-role-arn (with a \
             target role, it names the target role).",
            AGENT_CACHE
        ),
    )
    .expected(format!(
        "arn:{}:sts::{}:assumed-role/{}/<session>",
        expected.partition, expected.account, expected.name
    ))
    .found(found_arn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Severity;

    #[test]
    fn an_invalid_role_arn_quotes_it_and_shows_the_form() {
        let f = role_arn_invalid(
            "arn:aws:iam::1:role/x",
            "has an account ID that is not 12 digits",
        );
        assert_eq!(
            (f.code, f.severity),
            (Code::RoleArnInvalid, Severity::Error)
        );
        assert_eq!(
            f.message,
            "AWS_ROLE_ARN \"arn:aws:iam::1:role/x\" has an account ID that is not 12 digits"
        );
        assert_eq!(f.expected.as_deref(), Some(ROLE_ARN_FORM));
        assert_eq!(f.found.as_deref(), Some("arn:aws:iam::1:role/x"));
        assert!(f.remedy.contains("eks.amazonaws.com/role-arn"));
    }

    #[test]
    fn a_role_arn_sts_refuses_shows_its_answer() {
        let f = role_arn_refused("arn:aws:iam::111122223333:role/x", "ValidationError: bad");
        assert_eq!(f.code, Code::RoleArnInvalid);
        assert!(f.message.contains("arn:aws:iam::111122223333:role/x"));
        assert_eq!(f.found.as_deref(), Some("ValidationError: bad"));
    }

    #[test]
    fn a_mismatch_expects_the_assumed_role_form_of_the_expected_role() {
        let expected = RoleArn::parse("arn:aws:iam::111122223333:role/path/app").unwrap();
        let arn = "arn:aws:sts::111122223333:assumed-role/other/s";
        let f = role_mismatch(&expected, &format!("this pod acts as {arn}"), arn);
        assert_eq!((f.code, f.severity), (Code::RoleMismatch, Severity::Error));
        assert_eq!(
            f.message,
            format!("this pod acts as {arn}, not the expected role {expected}")
        );
        assert_eq!(
            f.expected.as_deref(),
            Some("arn:aws:sts::111122223333:assumed-role/app/<session>")
        );
        assert_eq!(f.found.as_deref(), Some(arn));
        assert!(f.remedy.contains("--expected-role-arn"));
    }
}
