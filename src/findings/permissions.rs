//! What `--require`'s findings say: a denied action and the layer that
//! denied it (the role's policies, its boundary, an SCP, or the Pod Identity
//! association's session policy), with the statement that would allow it
//! where that layer can; the simulator itself out of reach or refused.

use crate::identity::session_policy::{SessionPolicy, MAX_CHARS};
use crate::peers::failure::{Failure, FailureKind};
use crate::peers::iam::{Decision, EvalDecision};
use crate::report::{Code, Finding};

/// The role a simulation was about, for the remedies' commands.
#[derive(Debug, Clone, Copy)]
pub struct Role<'a> {
    /// `arn:PARTITION:iam::ACCOUNT:role/PATH/NAME`.
    pub arn: &'a str,
    pub name: &'a str,
    pub account: &'a str,
}

/// `PERMISSION_DENIED`: one required action and resource IAM's simulator
/// does not allow, told by the layer that denies it. An implicit deny that
/// may come only from conditions the simulation had no value for (the
/// request's context, the cluster's session tags) is a warning: the app's
/// own request carries those values, so it may well be allowed.
pub fn permission_denied(d: &Decision, role: &Role<'_>) -> Finding {
    let r = &d.requirement;
    let undecided = d.decision == EvalDecision::ImplicitDeny
        && !d.missing_context.is_empty()
        && d.boundary_allows != Some(false)
        && d.organizations_allow != Some(false);
    if undecided {
        return undecided_by_context(d, role);
    }
    let layer = if d.organizations_allow == Some(false) {
        "an AWS Organizations service control policy (SCP) does not allow it".to_owned()
    } else if d.boundary_allows == Some(false) {
        "the role's permissions boundary does not allow it".to_owned()
    } else if d.decision == EvalDecision::ExplicitDeny {
        format!(
            "a Deny statement denies it ({})",
            listed(&d.matched, "the statement was not named")
        )
    } else {
        "no statement in the role's policies allows it (an implicit deny)".to_owned()
    };
    let mut found = format!("IAM's policy simulator: {}", d.decision.as_str());
    if !d.matched.is_empty() {
        found.push_str(&format!("; statements: {}", d.matched.join(", ")));
    }
    if d.boundary_allows == Some(false) {
        found.push_str("; permissions boundary: does not allow");
    }
    if d.organizations_allow == Some(false) {
        found.push_str("; SCP: does not allow");
    }
    if !d.missing_context.is_empty() {
        found.push_str(&format!(
            "; conditions on {} were evaluated without a value",
            d.missing_context.join(", ")
        ));
    }
    Finding::error(
        Code::PermissionDenied,
        format!(
            "the role {} may not {} on {}: {layer}",
            role.arn, r.action, r.resource
        ),
        denied_remedy(d, role),
    )
    .expected(format!("{} allowed on {}", r.action, r.resource))
    .found(found)
}

/// `PERMISSION_DENIED` as a warning: no statement allowed the action
/// without values for the condition keys IAM names.
fn undecided_by_context(d: &Decision, role: &Role<'_>) -> Finding {
    let r = &d.requirement;
    let keys = d.missing_context.join(", ");
    Finding::warning(
        Code::PermissionDenied,
        format!(
            "IAM's simulator did not allow {} on {} for the role {}, but only because its \
             policies' conditions on {keys} had no value in the simulation: the app's own \
             requests carry them, so this may well be allowed",
            r.action, r.resource, role.arn
        ),
        format!(
            "irsa-doctor cannot supply these values. To judge the policy with them:\n\
             aws iam simulate-principal-policy --policy-source-arn {} --action-names {} \
             --resource-arns '{}' --context-entries \
             ContextKeyName=KEY,ContextKeyValues=VALUE,ContextKeyType=string\n\
             Or require an action and resource whose policy does not depend on them.",
            role.arn, r.action, r.resource
        ),
    )
    .expected(format!("{} allowed on {}", r.action, r.resource))
    .found(format!(
        "IAM's policy simulator: implicit_deny, with no value for {keys}"
    ))
}

/// The fix for a denial, by layer: an SCP or a boundary cannot be fixed in
/// the role's own policy; an explicit deny cannot be overridden by an
/// allow; an implicit deny needs the minimal statement.
fn denied_remedy(d: &Decision, role: &Role<'_>) -> String {
    let r = &d.requirement;
    if d.organizations_allow == Some(false) {
        return format!(
            "An SCP of the account's AWS Organization denies {action}; this role's own policies \
             cannot fix that. Ask the organisation's administrators to allow it in the SCP that \
             applies to account {account}. To see which SCPs apply (from the management account):\n\
             aws organizations list-policies-for-target --target-id {account} --filter SERVICE_CONTROL_POLICY",
            action = r.action,
            account = role.account,
        );
    }
    if d.boundary_allows == Some(false) {
        return format!(
            "The role's permissions boundary does not allow {action} on {resource}; this role's \
             own policies cannot fix that. Add it to the boundary policy, or ask whoever owns the \
             boundary. To see the boundary:\n\
             aws iam get-role --role-name {name} --query Role.PermissionsBoundary",
            action = r.action,
            resource = r.resource,
            name = role.name,
        );
    }
    if d.decision == EvalDecision::ExplicitDeny {
        return format!(
            "Remove or narrow the Deny statement ({statements}): an Allow never overrides an \
             explicit Deny. To find it among the role's policies:\n\
             aws iam list-role-policies --role-name {name}\n\
             aws iam list-attached-role-policies --role-name {name}",
            statements = listed(&d.matched, "its policy was not named"),
            name = role.name,
        );
    }
    // IAM judges the resource `*` literally: a role scoped to the app's
    // resources is denied it, rightly.
    let unnamed = if r.resource == "*" {
        format!(
            "The entry names no resource, so IAM judged the resource \"*\" (all of them), which a \
             role scoped to the app's own resources is rightly denied. Name the resource the app \
             uses: --require '{}@RESOURCE_ARN'. If the action takes no resource \
             (sts:GetCallerIdentity, s3:ListAllMyBuckets), allow it on \"*\".\n",
            r.action
        )
    } else {
        String::new()
    };
    format!(
        "{unnamed}Allow it in the role's policy. The smallest statement that does:\n{policy}\n\
         Saved as policy.json:\n\
         aws iam put-role-policy --role-name {name} --policy-name {policy_name} --policy-document file://policy.json",
        policy = minimal_policy(&r.action, &r.resource),
        name = role.name,
        policy_name = policy_name(&r.action),
    )
}

/// A policy document with one statement allowing `action` on `resource`,
/// in the order IAM's console shows its fields.
fn minimal_policy(action: &str, resource: &str) -> String {
    let quoted = |s: &str| serde_json::to_string(s).unwrap_or_default();
    format!(
        "{{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {{\n      \"Effect\": \"Allow\",\n      \
         \"Action\": {},\n      \"Resource\": {}\n    }}\n  ]\n}}",
        quoted(action),
        quoted(resource)
    )
}

/// An inline policy name for `action` that no other action's shares, so
/// pasting one fix does not replace another.
fn policy_name(action: &str) -> String {
    format!("allow-{}", action.replace(':', "-"))
}

fn listed(items: &[String], none: &str) -> String {
    if items.is_empty() {
        none.to_owned()
    } else {
        items.join(", ")
    }
}

/// `PERMISSIONS_UNVERIFIABLE` (a warning): IAM refused the simulation
/// itself. Many teams will not grant it, so it never fails a pod.
pub fn simulation_denied(failure: &Failure, role: &Role<'_>) -> Finding {
    let statement = minimal_policy("iam:SimulatePrincipalPolicy", role.arn);
    Finding::warning(
        Code::PermissionsUnverifiable,
        format!(
            "--require was not checked: the role {} may not call iam:SimulatePrincipalPolicy on \
             itself, so IAM would not say what it allows",
            role.arn
        ),
        format!(
            "To let irsa-doctor check --require, allow the role to simulate its own policies \
             (and nothing else):\n{statement}\n\
             Saved as policy.json:\n\
             aws iam put-role-policy --role-name {name} --policy-name allow-simulate-own-policy --policy-document file://policy.json\n\
             Or drop --require (IRSA_DOCTOR_REQUIRE): this warning never fails the pod.",
            name = role.name,
        ),
    )
    .expected("IAM answers SimulatePrincipalPolicy for the role".to_owned())
    .found(failure_text(failure))
}

/// `PERMISSIONS_UNVERIFIABLE` for a pod whose credentials irsa-doctor did
/// not get itself (an https container-credentials URI): nothing to sign
/// the simulation with.
pub fn no_credentials(role_arn: &str) -> Finding {
    Finding::warning(
        Code::PermissionsUnverifiable,
        format!(
            "--require was not checked: irsa-doctor did not get the pod's credentials itself \
             (the identity {role_arn} came from the SDK's container provider), so it has none to \
             ask IAM's policy simulator with"
        ),
        "Use the EKS Pod Identity agent's http URI, or check the permissions with the AWS CLI: \
         aws iam simulate-principal-policy --policy-source-arn ROLE_ARN --action-names ACTION \
         --resource-arns RESOURCE",
    )
    .expected("the pod's own credentials, to sign SimulatePrincipalPolicy")
    .found("credentials resolved only by the SDK's default chain")
}

/// `IAM_UNREACHABLE`, `IAM_THROTTLED` or `IAM_ERROR`: the simulator could
/// not be asked, or answered something irsa-doctor cannot read. Inconclusive:
/// the permissions are unknown, not missing.
pub fn iam_failure(
    failure: &Failure,
    endpoint: Option<&str>,
    role: &Role<'_>,
    operation: &str,
) -> Finding {
    let at = endpoint.unwrap_or("IAM's endpoint");
    let found = failure_text(failure);
    let (code, message, remedy) = match failure.kind {
        FailureKind::Throttled => (
            Code::IamThrottled,
            format!("IAM throttled {operation} at {at}"),
            "IAM's API rate limits are far below STS's and are shared by the whole account: \
             stagger rollouts of pods with --require, and find what else calls IAM (serve asks \
             at most hourly while IAM answers, every 5 minutes while it does not, and each \
             check at most twice). To see the account's IAM calls:\n\
             aws cloudtrail lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=SimulatePrincipalPolicy --max-results 20"
                .to_owned(),
        ),
        FailureKind::Unreachable | FailureKind::TlsUntrusted => (
            Code::IamUnreachable,
            format!("IAM could not be reached at {at}"),
            format!(
                "IAM is a global service with one endpoint per partition ({} for this role's \
                 partition; iam-fips and dual-stack names with AWS_USE_FIPS_ENDPOINT and \
                 AWS_USE_DUALSTACK_ENDPOINT), separate from STS's regional one, so a private \
                 cluster whose egress reaches STS may still not reach IAM. Allow egress to it \
                 (directly or through HTTPS_PROXY), set AWS_ENDPOINT_URL_IAM, or drop \
                 --require. To test from the pod:\n\
                 curl -sS -o /dev/null -w '%{{http_code}}\\n' {}",
                iam_endpoint_of(role.arn),
                endpoint.unwrap_or(iam_endpoint_of(role.arn))
            ),
        ),
        _ if failure.code.as_deref() == Some("NoSuchEntity")
            && operation == "SimulatePrincipalPolicy" =>
        {
            (
            Code::IamError,
            format!("IAM does not know the role {} it was asked about", role.arn),
            format!(
                "EKS Pod Identity does not say the role's path, and STS's assumed-role ARN drops \
                 it: for a role with a path, give its full ARN with --expected-role-arn. To see \
                 it:\n\
                 aws iam get-role --role-name {} --query Role.Arn",
                role.name
            ),
            )
        }
        _ => (
            Code::IamError,
            format!("IAM's answer to {operation} at {at} could not be used"),
            format!(
                "Check that {at} is IAM (AWS_ENDPOINT_URL_IAM, AWS_ENDPOINT_URL) and not a proxy's \
                 page; then try the same question with the AWS CLI:\n{}",
                cli_question(operation, role.arn)
            ),
        ),
    };
    Finding::error(code, message, remedy)
        .expected("IAM's policy simulator answers for every --require entry".to_owned())
        .found(found)
}

/// IAM's endpoint in the partition of `arn` (`arn:PARTITION:iam::...`)
/// with both switches off, as the IAM SDK's endpoint rules name it: for a
/// remedy when no request recorded the endpoint actually used.
fn iam_endpoint_of(arn: &str) -> &'static str {
    match arn.split(':').nth(1) {
        Some("aws-cn") => "https://iam.cn-north-1.amazonaws.com.cn",
        Some("aws-us-gov") => "https://iam.us-gov.amazonaws.com",
        _ => "https://iam.amazonaws.com",
    }
}

/// The AWS CLI command that asks IAM what `operation` asked.
fn cli_question(operation: &str, role_arn: &str) -> String {
    if operation == "SimulateCustomPolicy" {
        "aws iam simulate-custom-policy --policy-input-list file://session-policy.json \
         --action-names ACTION --resource-arns RESOURCE"
            .to_owned()
    } else {
        format!("aws iam simulate-principal-policy --policy-source-arn {role_arn} --action-names ACTION")
    }
}

/// `PERMISSION_DENIED` where the role's policies allow the entry and the
/// Pod Identity association's session policy does not: the session policy
/// is the layer that decides. A warning when only conditions without a
/// value in the simulation explain the deny, as for the role's policies.
pub fn session_policy_denied(d: &Decision, role: &Role<'_>, policy: &SessionPolicy) -> Finding {
    session_policy_decides(d, role, policy, &[])
}

/// [`session_policy_denied`], where the role's own answer may also be
/// undecided (`role_missing`: the condition keys its policies had no
/// value for): a session policy that denies whatever the request carries
/// decides alone, and the finding does not claim the role allows it.
pub fn session_policy_decides(
    d: &Decision,
    role: &Role<'_>,
    policy: &SessionPolicy,
    role_missing: &[String],
) -> Finding {
    let r = &d.requirement;
    let explicit = d.decision == EvalDecision::ExplicitDeny;
    if !explicit && !d.missing_context.is_empty() {
        let keys = d.missing_context.join(", ");
        return Finding::warning(
            Code::PermissionDenied,
            format!(
                "the association's session policy did not allow {} on {}, but only because its \
                 conditions on {keys} had no value in the simulation: the app's own requests \
                 carry them, so this may well be allowed",
                r.action, r.resource
            ),
            format!(
                "irsa-doctor cannot supply these values. To judge the session policy with them, \
                 saved as session-policy.json:\n\
                 aws iam simulate-custom-policy --policy-input-list file://session-policy.json \
                 --action-names {} --resource-arns '{}' --context-entries \
                 ContextKeyName=KEY,ContextKeyValues=VALUE,ContextKeyType=string",
                r.action, r.resource
            ),
        )
        .expected(format!("{} allowed on {}", r.action, r.resource))
        .found(format!(
            "session policy: implicit_deny, with no value for {keys}"
        ));
    }
    let denying = policy.denying(&r.action, &r.resource);
    let layer = if explicit {
        format!(
            "a Deny statement in the EKS Pod Identity association's session policy denies it \
             ({})",
            listed(&denying, "the statement was not found in the text given")
        )
    } else {
        "the EKS Pod Identity association's session policy does not allow it (an implicit deny), \
         though the role's own policies do"
            .to_owned()
    };
    let (layer, role_said) = if role_missing.is_empty() {
        (layer, "allowed".to_owned())
    } else {
        let keys = role_missing.join(", ");
        let layer = layer.replace(", though the role's own policies do", "");
        (
            format!(
                "{layer}, whatever the request carries (the role's own policies allow it only \
                 with values for {keys}, which the simulation did not have)"
            ),
            format!("implicit_deny, with no value for {keys}"),
        )
    };
    Finding::error(
        Code::PermissionDenied,
        format!(
            "the role {} may not {} on {} in this pod: {layer}",
            role.arn, r.action, r.resource
        ),
        session_remedy(d, policy, &denying),
    )
    .expected(format!(
        "{} allowed on {} by the role's policies and by the session policy",
        r.action, r.resource
    ))
    .found(format!(
        "role's policies: {role_said}; session policy (SimulateCustomPolicy): {}{}",
        d.decision.as_str(),
        if d.matched.is_empty() {
            String::new()
        } else {
            format!("; statements: {}", d.matched.join(", "))
        }
    ))
}

/// The smallest change to the session policy, and how to apply it.
fn session_remedy(d: &Decision, policy: &SessionPolicy, denying: &[String]) -> String {
    let r = &d.requirement;
    let update = "aws eks update-pod-identity-association --cluster-name <cluster> \
                  --association-id <id> --policy file://session-policy.json\n\
                  (aws eks list-pod-identity-associations --cluster-name <cluster> --namespace \
                  <namespace> --service-account <service-account> gives the id.) Then give \
                  irsa-doctor the same text (--session-policy, IRSA_DOCTOR_SESSION_POLICY), and \
                  recreate the pod: the agent keeps the credentials it got with the old policy \
                  until they expire.";
    let change = if d.decision == EvalDecision::ExplicitDeny {
        format!(
            "Remove or narrow the Deny statement in the association's session policy ({}): an \
             Allow never overrides an explicit Deny. Saved as session-policy.json:\n",
            listed(denying, "find it in the policy's text")
        )
    } else {
        let (corrected, chars) = policy.with_allow(&r.action, &r.resource);
        let fits = if chars > MAX_CHARS {
            format!(
                "Compact, it is {chars} characters, past the {MAX_CHARS} EKS allows: widen an \
                 existing statement (a wildcard, a list of actions) instead of adding one.\n"
            )
        } else {
            String::new()
        };
        format!(
            "The pod's permissions are the intersection of the role's policies and the \
             association's session policy. Allow it in the session policy; the smallest change \
             adds one statement:\n{corrected}\n{fits}Saved as session-policy.json:\n"
        )
    };
    format!("{change}{update}")
}

/// The note a role's own denial gets when the session policy does not
/// allow the entry either: fixing the role alone is not enough.
pub fn also_denied_by_session_policy(mut finding: Finding) -> Finding {
    finding.remedy.push_str(
        "\nThe association's session policy (--session-policy) does not allow it either: allow \
         it there too (aws eks update-pod-identity-association --cluster-name <cluster> \
         --association-id <id> --policy file://session-policy.json).",
    );
    finding
}

/// A denial whose policies have conditions on session tags (`keys`) that
/// cannot hold: EKS sends no session tags with a session policy, nor with
/// `--session-tags disabled`, where turning them back on is a way out.
pub fn no_session_tags(mut finding: Finding, keys: &[String], session_policy: bool) -> Finding {
    if keys.is_empty() {
        return finding;
    }
    let keys = keys.join(", ");
    if session_policy {
        finding.message.push_str(&format!(
            " (conditions on {keys} cannot hold: EKS sends no session tags for an association \
             with a session policy)"
        ));
        return finding;
    }
    finding.message.push_str(&format!(
        " (conditions on {keys} cannot hold: this EKS Pod Identity association sends no session \
         tags, --session-tags disabled, so the app's requests carry no such tag and are denied)"
    ));
    finding.remedy.push_str(
        "\nOr turn the association's session tags back on (a session policy needs them off):\n\
         aws eks update-pod-identity-association --cluster-name CLUSTER --association-id ID \
         --no-disable-session-tags",
    );
    finding
}

/// `PERMISSIONS_UNVERIFIABLE` (a warning): IAM refused
/// `SimulateCustomPolicy`, so the entries were judged against the role's
/// policies only, not against the association's session policy.
pub fn custom_simulation_denied(failure: &Failure, role: &Role<'_>) -> Finding {
    // SimulateCustomPolicy takes no resource-level permission: "*" it is.
    let statement = minimal_policy("iam:SimulateCustomPolicy", "*");
    Finding::warning(
        Code::PermissionsUnverifiable,
        format!(
            "--require was checked against the role {}'s policies but not against the session \
             policy given with --session-policy: the role may not call iam:SimulateCustomPolicy",
            role.arn
        ),
        format!(
            "To let irsa-doctor judge the session policy, allow the role to simulate a policy \
             document (it reads no policy of the account's):\n{statement}\n\
             Saved as policy.json:\n\
             aws iam put-role-policy --role-name {name} --policy-name allow-simulate-custom-policy --policy-document file://policy.json\n\
             Or leave --session-policy out: this warning never fails the pod.",
            name = role.name,
        ),
    )
    .expected("IAM answers SimulateCustomPolicy for the session policy".to_owned())
    .found(failure_text(failure))
}

/// What IAM said, or what went wrong on the way.
fn failure_text(failure: &Failure) -> String {
    let status = failure
        .http_status
        .map_or(String::new(), |s| format!("HTTP {s}: "));
    match &failure.code {
        Some(code) => format!("{status}{code}: {}", failure.message),
        None => format!("{status}{}", failure.message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::arn::Requirement;

    fn role() -> Role<'static> {
        Role {
            arn: "arn:aws:iam::111122223333:role/team/app",
            name: "app",
            account: "111122223333",
        }
    }

    fn decision(decision: EvalDecision) -> Decision {
        Decision {
            requirement: Requirement::parse("s3:GetObject@arn:aws:s3:::orders/*").unwrap(),
            decision,
            matched: vec![],
            boundary_allows: Some(true),
            organizations_allow: Some(true),
            missing_context: vec![],
        }
    }

    #[test]
    fn an_implicit_deny_gives_the_minimal_statement_and_the_command() {
        let f = permission_denied(&decision(EvalDecision::ImplicitDeny), &role());
        assert!(
            f.message
                .contains("may not s3:GetObject on arn:aws:s3:::orders/*"),
            "{}",
            f.message
        );
        assert!(f.message.contains("implicit deny"), "{}", f.message);
        assert!(
            f.remedy.contains(r#""Action": "s3:GetObject""#),
            "{}",
            f.remedy
        );
        assert!(
            f.remedy.contains(r#""Resource": "arn:aws:s3:::orders/*""#),
            "{}",
            f.remedy
        );
        assert!(
            f.remedy.contains(
                "aws iam put-role-policy --role-name app --policy-name allow-s3-GetObject"
            ),
            "{}",
            f.remedy
        );
    }

    #[test]
    fn the_minimal_policy_is_json_iam_accepts() {
        let text = minimal_policy("s3:GetObject", "arn:aws:s3:::a\"b/*");
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["Version"], "2012-10-17");
        assert_eq!(doc["Statement"][0]["Resource"], "arn:aws:s3:::a\"b/*");
        assert!(text.starts_with("{\n  \"Version\""), "{text}");
    }

    #[test]
    fn with_session_tags_disabled_a_tag_condition_is_named_with_the_way_back() {
        let d = decision(EvalDecision::ImplicitDeny);
        let keys = vec!["aws:PrincipalTag/kubernetes-namespace".to_owned()];
        let f = no_session_tags(permission_denied(&d, &role()), &keys, false);
        assert_eq!(f.severity, crate::report::Severity::Error);
        assert!(
            f.message.contains("--session-tags disabled"),
            "{}",
            f.message
        );
        assert!(
            f.remedy.contains("--no-disable-session-tags"),
            "{}",
            f.remedy
        );
        let f = no_session_tags(permission_denied(&d, &role()), &keys, true);
        assert!(f.message.contains("session policy"), "{}", f.message);
        assert!(
            !f.remedy.contains("--no-disable-session-tags"),
            "{}",
            f.remedy
        );
        let f = no_session_tags(permission_denied(&d, &role()), &[], false);
        assert!(!f.message.contains("session tags"), "{}", f.message);
    }

    #[test]
    fn a_deny_that_only_missing_context_explains_is_a_warning_without_a_grant() {
        let mut d = decision(EvalDecision::ImplicitDeny);
        d.missing_context = vec!["aws:ResourceTag/team".into()];
        let f = permission_denied(&d, &role());
        assert_eq!(f.severity, crate::report::Severity::Warning);
        assert!(f.message.contains("aws:ResourceTag/team"), "{}", f.message);
        assert!(!f.remedy.contains("put-role-policy"), "{}", f.remedy);
        assert!(f.remedy.contains("--context-entries"), "{}", f.remedy);
        // A boundary that denies is definitive whatever the context.
        d.boundary_allows = Some(false);
        assert_eq!(
            permission_denied(&d, &role()).severity,
            crate::report::Severity::Error
        );
    }

    #[test]
    fn an_entry_without_a_resource_is_told_to_name_one() {
        let mut d = decision(EvalDecision::ImplicitDeny);
        d.requirement = Requirement::parse("s3:GetObject").unwrap();
        let f = permission_denied(&d, &role());
        assert!(
            f.remedy.starts_with("The entry names no resource"),
            "{}",
            f.remedy
        );
        assert!(
            f.remedy.contains("--require 's3:GetObject@RESOURCE_ARN'"),
            "{}",
            f.remedy
        );
    }

    #[test]
    fn an_explicit_deny_names_its_statement_and_says_an_allow_cannot_fix_it() {
        let mut d = decision(EvalDecision::ExplicitDeny);
        d.matched = vec!["deny-orders (IAM Policy)".into()];
        let f = permission_denied(&d, &role());
        assert!(
            f.message
                .contains("a Deny statement denies it (deny-orders (IAM Policy))"),
            "{}",
            f.message
        );
        assert!(
            f.remedy
                .contains("an Allow never overrides an explicit Deny"),
            "{}",
            f.remedy
        );
        assert!(!f.remedy.contains("put-role-policy"), "{}", f.remedy);
    }

    #[test]
    fn a_boundary_or_an_scp_denial_says_the_role_s_policy_cannot_fix_it() {
        let mut d = decision(EvalDecision::ImplicitDeny);
        d.boundary_allows = Some(false);
        let f = permission_denied(&d, &role());
        assert!(f.message.contains("permissions boundary"), "{}", f.message);
        assert!(
            f.remedy
                .contains("this role's own policies cannot fix that"),
            "{}",
            f.remedy
        );
        assert!(f
            .remedy
            .contains("aws iam get-role --role-name app --query Role.PermissionsBoundary"));
        d.organizations_allow = Some(false);
        let f = permission_denied(&d, &role());
        assert!(
            f.message.contains("service control policy"),
            "{}",
            f.message
        );
        assert!(
            f.remedy.contains("--target-id 111122223333"),
            "{}",
            f.remedy
        );
    }

    fn session_policy(text: &str) -> SessionPolicy {
        SessionPolicy::parse(text).unwrap()
    }

    #[test]
    fn a_session_policy_denial_names_that_layer_and_gives_the_policy_with_the_statement() {
        let policy = session_policy(
            r#"{"Statement":[{"Sid":"queue","Effect":"Allow","Action":"sqs:*","Resource":"*"}]}"#,
        );
        let f = session_policy_denied(&decision(EvalDecision::ImplicitDeny), &role(), &policy);
        assert_eq!(f.severity, crate::report::Severity::Error);
        assert!(
            f.message.contains("session policy does not allow it"),
            "{}",
            f.message
        );
        assert!(
            f.message.contains("though the role's own policies do"),
            "{}",
            f.message
        );
        let corrected = f.remedy.split("adds one statement:\n").nth(1).unwrap();
        let corrected = &corrected[..corrected.find("\nSaved as").unwrap()];
        let doc: serde_json::Value = serde_json::from_str(corrected).unwrap();
        assert_eq!(doc["Statement"][0]["Sid"], "queue");
        assert_eq!(doc["Statement"][1]["Action"], "s3:GetObject");
        assert_eq!(doc["Statement"][1]["Resource"], "arn:aws:s3:::orders/*");
        assert!(f.remedy.contains("aws eks update-pod-identity-association"));
        assert!(f.remedy.contains("recreate the pod"), "{}", f.remedy);
        assert!(!f.remedy.contains("2048 EKS allows"), "{}", f.remedy);
    }

    #[test]
    fn a_corrected_session_policy_past_eks_s_limit_says_to_widen_a_statement() {
        let long = format!(
            r#"{{"Statement":[{{"Effect":"Allow","Action":"sqs:SendMessage","Resource":"arn:aws:sqs:eu-west-1:111122223333:{}"}}]}}"#,
            "q".repeat(1930)
        );
        let f = session_policy_denied(
            &decision(EvalDecision::ImplicitDeny),
            &role(),
            &session_policy(&long),
        );
        assert!(
            f.remedy.contains("past the 2048 EKS allows"),
            "{}",
            f.remedy
        );
    }

    #[test]
    fn a_deny_in_the_session_policy_is_quoted_and_never_answered_with_an_allow() {
        let policy = session_policy(
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Sid":"no-s3","Effect":"Deny","Action":"s3:Get*","Resource":"*"}]}"#,
        );
        let f = session_policy_denied(&decision(EvalDecision::ExplicitDeny), &role(), &policy);
        assert!(f.message.contains("no-s3"), "{}", f.message);
        assert!(
            f.remedy.contains("an Allow never overrides"),
            "{}",
            f.remedy
        );
        assert!(!f.remedy.contains("adds one statement"), "{}", f.remedy);
    }

    #[test]
    fn a_refused_simulation_is_a_warning_with_the_statement_scoped_to_the_role() {
        let failure = Failure {
            code: Some("AccessDenied".into()),
            http_status: Some(403),
            ..Failure::new(FailureKind::AccessDenied, "not authorized".into())
        };
        let f = simulation_denied(&failure, &role());
        assert_eq!(f.severity, crate::report::Severity::Warning);
        assert!(
            f.remedy
                .contains(r#""Resource": "arn:aws:iam::111122223333:role/team/app""#),
            "{}",
            f.remedy
        );
        assert!(
            f.remedy
                .contains(r#""Action": "iam:SimulatePrincipalPolicy""#),
            "{}",
            f.remedy
        );
    }

    #[test]
    fn iam_remedies_name_the_roles_partition_and_the_endpoint_used() {
        let unreachable = Failure::new(FailureKind::Unreachable, "dns error".into());
        for (arn, want) in [
            (
                "arn:aws-cn:iam::111122223333:role/app",
                "https://iam.cn-north-1.amazonaws.com.cn",
            ),
            (
                "arn:aws-us-gov:iam::111122223333:role/app",
                "https://iam.us-gov.amazonaws.com",
            ),
            (
                "arn:aws:iam::111122223333:role/app",
                "https://iam.amazonaws.com",
            ),
        ] {
            let role = Role {
                arn,
                name: "app",
                account: "111122223333",
            };
            let f = iam_failure(&unreachable, None, &role, "SimulatePrincipalPolicy");
            assert!(f.remedy.ends_with(want), "{arn}: {}", f.remedy);
            let old_wording = f.remedy.contains("iam.amazonaws.com/");
            assert!(!old_wording, "{arn}: {}", f.remedy);
        }
        let f = iam_failure(
            &unreachable,
            Some("https://iam-fips.amazonaws.com/"),
            &role(),
            "SimulatePrincipalPolicy",
        );
        assert!(
            f.remedy.ends_with("https://iam-fips.amazonaws.com/"),
            "{}",
            f.remedy
        );
    }

    #[test]
    fn iam_failures_are_told_apart() {
        let kinds = [
            (FailureKind::Throttled, None, Code::IamThrottled),
            (FailureKind::Unreachable, None, Code::IamUnreachable),
            (FailureKind::TlsUntrusted, None, Code::IamUnreachable),
            (
                FailureKind::Unexpected { retry: false },
                Some("NoSuchEntity"),
                Code::IamError,
            ),
            (
                FailureKind::Unexpected { retry: true },
                None,
                Code::IamError,
            ),
        ];
        for (kind, code, want) in kinds {
            let failure = Failure {
                code: code.map(str::to_owned),
                ..Failure::new(kind, "m".into())
            };
            let f = iam_failure(
                &failure,
                Some("https://iam.amazonaws.com/"),
                &role(),
                "SimulatePrincipalPolicy",
            );
            assert_eq!(f.code, want, "{kind:?}");
            assert!(f.code.is_inconclusive());
        }
    }
}
