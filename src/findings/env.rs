//! The environment step's findings: the webhook's variables, the session
//! name and the region.

use crate::findings::chain::{would_act_as, ChainResult};
use crate::report::{Code, Finding, MechanismName};

/// `SESSION_NAME_INVALID`: `AWS_ROLE_SESSION_NAME` breaks STS's rules;
/// `used` is the name irsa-doctor sent instead.
pub fn session_name_invalid(name: &str, used: &str) -> Finding {
    Finding::error(
        Code::SessionNameInvalid,
        format!(
            "AWS_ROLE_SESSION_NAME {name:?} is not a valid STS session name: an app's SDK sends \
             it as it is, and STS answers ValidationError (irsa-doctor itself used {used})"
        ),
        "Set AWS_ROLE_SESSION_NAME to 2-64 characters of letters, digits and _+=,.@- \
         (the pod name usually fits), or remove it to let the SDK choose one: kubectl set env \
         deployment/<name> -n <namespace> AWS_ROLE_SESSION_NAME-",
    )
    .expected("2-64 characters of [A-Za-z0-9_+=,.@-]")
    .found(format!("{name:?}"))
}

/// `REGION_MISSING`: no region anywhere; `region` is the one used anyway.
pub fn region_missing(region: &str) -> Finding {
    Finding::warning(
        Code::RegionMissing,
        format!(
            "no AWS region is configured (AWS_REGION, AWS_DEFAULT_REGION, profile or IMDS); \
             irsa-doctor used {region}, but an app's SDK may refuse to start without one"
        ),
        "Set AWS_REGION in the container spec; the webhook sets it only when it knows the \
         cluster's region.",
    )
    .expected("AWS_REGION set")
    .found("no region")
}

/// One variable of a mechanism's pair set without the other: what
/// `check` finds in the environment and `ENV_NOT_INJECTED` names. Declared
/// here, below `check`, so that both use this one type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Half {
    pub mechanism: MechanismName,
    pub set: &'static str,
    pub missing: &'static str,
}

/// What `ENV_NOT_INJECTED` needs to name: the half-set pairs, if any, and
/// where the fix goes.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotInjected<'a> {
    /// Pairs of which one variable is set; empty when neither mechanism's
    /// variables are there at all.
    pub half: &'a [Half],
    pub namespace: Option<&'a str>,
    pub service_account: Option<&'a str>,
    /// The expected role: `--expected-role-arn`, else `AWS_ROLE_ARN`.
    pub expected_role: Option<&'a str>,
}

/// IRSA's and Pod Identity's variables, as the message names them.
const BOTH_PAIRS: &str = "AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE (IRSA) and \
                          AWS_CONTAINER_CREDENTIALS_FULL_URI and \
                          AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (EKS Pod Identity)";

/// `ENV_NOT_INJECTED`: neither mechanism's variables are there in full;
/// `chain` says who the pod is instead. The remedy covers both.
pub fn env_not_injected(n: &NotInjected<'_>, chain: &ChainResult) -> Finding {
    let missing = if n.half.is_empty() {
        BOTH_PAIRS.to_owned()
    } else {
        n.half
            .iter()
            .map(|h| h.missing)
            .collect::<Vec<_>>()
            .join(" and ")
    };
    let consequence = match n.half {
        [one] => format!("{} is not in use", one.mechanism.words()),
        _ => "neither IRSA nor EKS Pod Identity is in use".to_owned(),
    };
    let partial: String = n
        .half
        .iter()
        .map(|h| match h.mechanism {
            MechanismName::Irsa => " One of the two is set: when the container spec sets \
                either, the webhook adds neither, so set both by hand or remove the one that is \
                there."
                .to_owned(),
            MechanismName::PodIdentity => format!(
                " {} is set without {}: the webhook sets both or neither (and neither when the \
                 container spec sets one), so set both by hand or remove the one that is there.",
                h.set, h.missing
            ),
        })
        .collect();
    let ns = n.namespace.unwrap_or("<namespace>");
    let sa = n.service_account.unwrap_or("<service account>");
    let role = n
        .expected_role
        .unwrap_or("arn:aws:iam::<account>:role/<name>");
    Finding::error(
        Code::EnvNotInjected,
        format!(
            "{missing} not set in this container, so {consequence}: {}",
            would_act_as(chain)
        ),
        format!(
            "1. Give the pod a role, one of two ways. IRSA: annotate the ServiceAccount: \
             kubectl annotate serviceaccount -n {ns} {sa} eks.amazonaws.com/role-arn={role} \
             (the role trusts the cluster's OIDC provider). EKS Pod Identity: install the \
             eks-pod-identity-agent add-on and associate the role: aws eks \
             create-pod-identity-association --cluster-name <cluster> --namespace {ns} \
             --service-account {sa} --role-arn {role} (the role trusts pods.eks.amazonaws.com).\n\
             2. Make sure the pod's spec.serviceAccountName is that ServiceAccount.\n\
             3. Recreate the pod (kubectl rollout restart): the webhook mutates pods only at \
             creation, so a pod created before the annotation or association, together with \
             the association (a race), or while the webhook was down, never gets the env.\n\
             4. Check that the pod identity webhook is running, that the pod does not carry \
             the label eks.amazonaws.com/skip-pod-identity-webhook (the webhook's opt-out), and \
             that this container is not listed in the pod annotation \
             eks.amazonaws.com/skip-containers.{partial}"
        ),
    )
    .expected(match n.expected_role {
        Some(role) => format!("IRSA's or EKS Pod Identity's variables injected, acting as {role}"),
        None => "IRSA's or EKS Pod Identity's variables injected by the webhook".to_owned(),
    })
    .found(would_act_as(chain))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::sts::{ChainOutcome, ChainSource};
    use crate::report::Severity;

    #[test]
    fn an_invalid_session_name_names_it_and_the_one_used() {
        let f = session_name_invalid("a b", "pod-1");
        assert_eq!(
            (f.code, f.severity),
            (Code::SessionNameInvalid, Severity::Error)
        );
        assert!(f.message.contains("\"a b\"") && f.message.contains("used pod-1"));
        assert_eq!(f.found.as_deref(), Some("\"a b\""));
        assert!(f.remedy.contains("2-64 characters"), "{}", f.remedy);
    }

    #[test]
    fn a_missing_region_is_a_warning_naming_the_region_used() {
        let f = region_missing("us-east-1");
        assert_eq!(
            (f.code, f.severity),
            (Code::RegionMissing, Severity::Warning)
        );
        assert!(f.message.contains("used us-east-1"), "{}", f.message);
        assert!(f.remedy.contains("AWS_REGION"));
    }

    #[test]
    fn not_injected_names_the_missing_variables_the_fix_and_who_the_pod_is() {
        let chain = Ok(ChainOutcome::Other {
            source: ChainSource::Imds,
            identity: Ok("arn:aws:sts::111122223333:assumed-role/node/i-0".into()),
        });
        let f = env_not_injected(
            &NotInjected {
                half: &[Half {
                    mechanism: MechanismName::Irsa,
                    set: "AWS_WEB_IDENTITY_TOKEN_FILE",
                    missing: "AWS_ROLE_ARN",
                }],
                namespace: Some("pay"),
                service_account: Some("app"),
                expected_role: Some("arn:aws:iam::111122223333:role/app"),
            },
            &chain,
        );
        assert_eq!(
            (f.code, f.severity),
            (Code::EnvNotInjected, Severity::Error)
        );
        assert!(
            f.message.starts_with("AWS_ROLE_ARN not set"),
            "{}",
            f.message
        );
        assert!(
            f.remedy.contains(
                "kubectl annotate serviceaccount -n pay app \
                 eks.amazonaws.com/role-arn=arn:aws:iam::111122223333:role/app"
            ),
            "{}",
            f.remedy
        );
        assert!(
            f.remedy
                .contains("eks.amazonaws.com/skip-pod-identity-webhook")
                && f.remedy.contains("together with the association"),
            "{}",
            f.remedy
        );
        assert!(f.remedy.contains("One of the two is set"), "{}", f.remedy);
        assert_eq!(
            f.found.as_deref(),
            Some(
                "this pod would act as arn:aws:sts::111122223333:assumed-role/node/i-0 \
                 (credentials from the node's instance profile through IMDS)"
            )
        );
        assert!(f
            .expected
            .unwrap()
            .contains("acting as arn:aws:iam::111122223333:role/app"));
    }

    #[test]
    fn not_injected_without_names_uses_placeholders() {
        let f = env_not_injected(&NotInjected::default(), &Ok(ChainOutcome::NoCredentials));
        assert!(
            f.remedy.contains("-n <namespace> <service account>"),
            "{}",
            f.remedy
        );
        assert!(!f.remedy.contains("One of the two"), "{}", f.remedy);
        assert!(f
            .message
            .contains("AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE (IRSA)"));
        assert!(
            f.message.ends_with("no AWS credentials at all"),
            "{}",
            f.message
        );
    }
}
