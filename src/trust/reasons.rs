//! The English of the evaluation: why a statement does not match, why a
//! request is denied, and, where the mistake is a known one, what it is.
//! Pure functions from what `evaluate` and `conditions` found to one
//! sentence each; nothing here decides.
//!
//! Every value quoted from the policy or the request goes through
//! [`shown`]: one line, bounded, no secret. A policy's strings may hold
//! line breaks and terminal escapes; the evaluation uses them as written,
//! only the sentences about them are cleaned.

use std::collections::BTreeMap;

use super::conditions::{glob, Base, Condition, Operator, Unmet};
use super::request::{Request, POD_IDENTITY_SERVICE};
use crate::guard::redact::one_line;

/// A value from the policy or the request as a reason or an error quotes
/// it: one line, at most `redact::MAX_MESSAGE_CHARS` characters, no
/// secret, the way peers' text is shown.
pub(super) fn shown(text: &str) -> String {
    one_line(text.to_owned())
}

/// "statement 2" or "statement 2 (Sid Foo)"; `sid` already [`shown`].
pub(super) fn statement_name(index: usize, sid: Option<&str>) -> String {
    match sid {
        Some(sid) if !sid.is_empty() => format!("statement {index} ({sid})"),
        _ => format!("statement {index}"),
    }
}

/// A matching Deny, named by [`statement_name`].
pub(super) fn deny_wins(deny: &str) -> String {
    format!("{deny} (Deny) matches this request, and an explicit Deny wins over any Allow")
}

/// Some of the mechanism's actions are allowed, `missing` are not.
pub(super) fn needed_as_well(
    missing: &[&String],
    allowed: &[&String],
    request: &Request,
) -> String {
    format!(
        "no statement allows {}, which {} needs as well as {}",
        join(missing),
        request.mechanism.words(),
        join(allowed),
    )
}

/// None of the actions is allowed: `first` is not, and `why` is the first
/// Allow statement's reason, with its name.
pub(super) fn no_statement_allows(first: &str, why: Option<(String, &str)>) -> String {
    match why {
        Some((name, why)) => format!("no statement allows {first}; {name}: {why}"),
        None => format!("no statement allows {first}: the policy has no Allow statement"),
    }
}

/// A statement that matches for `actions` only, leaving out `left_out`.
pub(super) fn covers_only(actions: &[String], left_out: &[&String], request: &Request) -> String {
    format!(
        "it covers {} but not {}, which {} also needs",
        join(&actions.iter().collect::<Vec<_>>()),
        join(left_out),
        request.mechanism.words()
    )
}

fn join(items: &[&String]) -> String {
    items
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" and ")
}

/// A statement whose `NotPrincipal` lists the request's principal.
pub(super) fn not_principal_excludes(request: &Request) -> String {
    format!(
        "its NotPrincipal excludes {} {}",
        request.principal_type,
        shown(&request.principal)
    )
}

/// A statement with neither `Principal` nor `NotPrincipal`.
pub(super) fn no_principal() -> String {
    "it has no Principal".into()
}

/// The most telling reason a typed principal is not this request's.
pub(super) fn principal_mismatch(map: &BTreeMap<String, Vec<String>>, request: &Request) -> String {
    let named = |kind: &str| map.get(kind).map(Vec::as_slice).unwrap_or_default();
    let ours = shown(&request.principal);
    if request.principal_type == "Service" {
        if let Some(provider) = named("Federated").first().map(|p| shown(p)) {
            return format!(
                "it trusts the OIDC provider {provider} (a role made for IRSA), not the \
                 Service {POD_IDENTITY_SERVICE} that EKS Pod Identity assumes roles as"
            );
        }
        return format!(
            "its Principal does not name the Service {POD_IDENTITY_SERVICE}, which EKS Pod \
             Identity assumes roles as"
        );
    }
    if request.principal_type == "AWS" {
        // A Pod Identity target role's hop: the association's role asks.
        let account = request.account().unwrap_or_default();
        return match named("AWS") {
            [] => format!(
                "its Principal does not name the association's role {ours} (Principal AWS), \
                 which asks for this hop"
            ),
            written => format!(
                "its Principal AWS is {}, not the association's role {ours} nor its account {}",
                written
                    .iter()
                    .map(|w| shown(w))
                    .collect::<Vec<_>>()
                    .join(", "),
                shown(account)
            ),
        };
    }
    if named("Service").iter().any(|s| s == POD_IDENTITY_SERVICE) && named("Federated").is_empty() {
        return format!(
            "it trusts the Service {POD_IDENTITY_SERVICE} (a role made for EKS Pod Identity), \
             not the OIDC provider {ours} that IRSA's token comes from"
        );
    }
    let federated = named("Federated");
    let hint = federated
        .iter()
        .find_map(|f| provider_hint(f, request))
        .unwrap_or_default();
    match federated.first() {
        Some(f) => format!("its Principal Federated is {}, not {ours}{hint}", shown(f)),
        None => format!("its Principal does not name the Federated provider {ours}"),
    }
}

/// Says how a written provider ARN differs from the request's: another
/// account, another cluster, another partition, or `oidc.REGION.eks`.
fn provider_hint(written: &str, request: &Request) -> Option<String> {
    let (prefix, host_path) = written.split_once(":oidc-provider/")?;
    let ours = request.provider()?;
    let account = prefix.split(':').nth(4)?;
    let our_account = request.account()?;
    if let Some(fixed) = region_typo(host_path) {
        return Some(format!(
            ": {} has the region before eks; the issuer is {}",
            shown(host_path),
            shown(&fixed)
        ));
    }
    if host_path == ours && account != our_account {
        return Some(format!(
            ": that is the provider in account {}, but the role is in account {}, and STS \
             looks for the provider in the role's account",
            shown(account),
            shown(our_account)
        ));
    }
    if host_path == ours {
        return Some(": the partition differs from the role's".into());
    }
    let (host, _) = host_path.split_once('/')?;
    let (our_host, _) = ours.split_once('/')?;
    if host == our_host {
        return Some(format!(
            ": the provider of another cluster; this token's issuer is {}",
            shown(ours)
        ));
    }
    None
}

/// `oidc.us-east-1.eks.amazonaws.com/...` written for
/// `oidc.eks.us-east-1.amazonaws.com/...`: the fixed name.
fn region_typo(host_path: &str) -> Option<String> {
    let rest = host_path.strip_prefix("oidc.")?;
    let (region, rest) = rest.split_once(".eks.")?;
    (!region.is_empty() && !region.contains('.')).then(|| format!("oidc.eks.{region}.{rest}"))
}

/// A statement whose `Action` (or `NotAction`) covers none of the
/// request's actions.
pub(super) fn actions_not_covered(
    action: Option<&[String]>,
    not_action: Option<&[String]>,
    request: &Request,
) -> String {
    let wanted = join(&request.actions.iter().collect::<Vec<_>>());
    match (action, not_action) {
        (None, None) => format!("it has no Action; it needs {wanted}"),
        (Some(list), _) => format!(
            "its Action {} does not include {wanted}",
            shown(&list.join(", "))
        ),
        (None, Some(not)) => format!("its NotAction {} excludes {wanted}", shown(&not.join(", "))),
    }
}

/// Why the condition `c` does not hold, as `conditions` found.
pub(super) fn unmet(c: &Condition, unmet: Unmet<'_>, request: &Request) -> String {
    match unmet {
        Unmet::UnknownOperator => format!(
            "its condition operator {} is not one irsa-doctor evaluates (string and ARN \
             operators and Null only), so this statement was not counted as matching",
            shown(&c.operator)
        ),
        Unmet::Failed { op, found } => condition_failure(c, op, found, request),
    }
}

/// The sentence for a failed condition, with the value it saw and, where
/// the mistake is a known one, what it is.
fn condition_failure(
    c: &Condition,
    op: Operator,
    found: Option<&[String]>,
    request: &Request,
) -> String {
    let expected = list(&c.values);
    let (operator, key) = (shown(&c.operator), shown(&c.key));
    let Some(found) = found else {
        let why = absent_key(&c.key, request);
        return match op.base {
            Base::Null => format!("Null on {key} requires it to be set, but {why}"),
            _ => format!("{operator} on {key} expects {expected}, but {why}"),
        };
    };
    let seen = list(found);
    if op.base == Base::Null {
        return format!("Null on {key} requires it to be absent, but it is {seen}");
    }
    if op.negated {
        return format!("{operator} on {key} excludes {expected}, and it is {seen}");
    }
    let hint = value_hint(c, op, found)
        .map(|h| format!(": {h}"))
        .unwrap_or_default();
    format!("{operator} on {key} expects {expected} but found {seen}{hint}")
}

/// Values as a reason quotes them, cleaned.
fn list(values: &[String]) -> String {
    match values {
        [one] => shown(one),
        many => format!("one of [{}]", shown(&many.join(", "))),
    }
}

/// Why a key has no value in this request.
fn absent_key(key: &str, request: &Request) -> String {
    let lower = key.to_ascii_lowercase();
    // Only an IAM principal (the target hop's role) has an organization;
    // a service or federated request carries no such key at all.
    let org_key = lower == "aws:principalorgid" || lower == "aws:principalorgpaths";
    if org_key && request.principal_type == "AWS" {
        return "irsa-doctor cannot know the asking account's AWS Organizations ID or path \
                from a pod (it is not guessed): run `aws organizations describe-organization \
                --query Organization.Id` in the association role's account and judge this \
                condition yourself"
            .to_owned();
    }
    if request.principal_type == "AWS" && lower.starts_with("aws:principaltag/") {
        return if request.untagged {
            "the association's session tags are disabled (--session-tags disabled), so the \
             association role's session has no tag and no condition on one can hold"
                .to_owned()
        } else {
            "the association role's session has no such tag (EKS tags it with the six session \
             tags; give their values with --namespace, --service-account and the like)"
                .to_owned()
        };
    }
    if let Some(tag) = lower.strip_prefix("aws:principaltag/") {
        return format!(
            "this request has no principal tags: the session tags EKS sets are request tags, \
             so test aws:RequestTag/{}",
            shown(tag)
        );
    }
    if let (Some((provider, _)), Some(ours)) = (key.rsplit_once(':'), request.provider()) {
        if provider.contains('/') && !provider.eq_ignore_ascii_case(ours) {
            let what = match region_typo(provider) {
                Some(fixed) => format!("the region before eks (the issuer is {})", shown(&fixed)),
                None => "another provider, another cluster's".to_owned(),
            };
            return format!(
                "the key names {what}; this token's keys start with {}:",
                shown(ours)
            );
        }
    }
    let tag_key = lower.starts_with("aws:requesttag/") || lower == "aws:tagkeys";
    if tag_key && request.untagged {
        return "the association's session tags are disabled (--session-tags disabled), so EKS \
                sends no tag and no condition on a tag can hold"
            .to_owned();
    }
    if lower.starts_with("aws:requesttag/") {
        return "the request has no such session tag".to_owned();
    }
    if lower == "sts:externalid" {
        return "no external ID is known here: give the association's externalId with \
                --external-id"
            .to_owned();
    }
    "this request has no value for it (irsa-doctor knows the token's sub and aud, and Pod \
     Identity's session tags)"
        .to_owned()
}

/// The known mistakes behind a value that did not match.
fn value_hint(c: &Condition, op: Operator, found: &[String]) -> Option<String> {
    let lower = c.key.to_ascii_lowercase();
    let wildcard = c.values.iter().any(|p| p.contains(['*', '?']));
    if op.base == Base::Equals && wildcard {
        let would = found
            .iter()
            .any(|v| c.values.iter().any(|p| glob(p, v, op.ignore_case)));
        let base = if op.set.is_some() || op.if_exists {
            shown(&c.operator)
        } else {
            "StringEquals".to_owned()
        };
        return Some(format!(
            "{base} does not expand wildcards; use StringLike{}",
            if would { ", which matches" } else { "" }
        ));
    }
    let whole = |p: &String| found.iter().any(|v| glob(p, v, false));
    if op.base == Base::Arn && c.values.iter().any(whole) {
        return Some(
            "ARN operators match each of the six colon-separated components on its own, so a \
             * does not cross a :; write every component (arn:aws:iam::*:role/NAME)"
                .to_owned(),
        );
    }
    if lower.ends_with(":aud") && c.values.iter().any(|v| v == "sts.amazon.com") {
        return Some("sts.amazon.com is a typo for sts.amazonaws.com".to_owned());
    }
    if lower.ends_with(":sub") {
        return subject_hint(&c.values, found);
    }
    let tag = lower.strip_prefix("aws:requesttag/")?;
    Some(format!(
        "the pod's {} session tag is {}",
        shown(tag),
        list(found)
    ))
}

/// Which part of `system:serviceaccount:NS:SA` differs.
fn subject_hint(values: &[String], found: &[String]) -> Option<String> {
    let split = |s: &str| -> Option<(String, String)> {
        let rest = s.strip_prefix("system:serviceaccount:")?;
        let (ns, sa) = rest.split_once(':')?;
        Some((ns.to_owned(), sa.to_owned()))
    };
    let (ns, sa) = split(found.first()?)?;
    let (want_ns, want_sa) = values.iter().find_map(|v| split(v))?;
    if !glob(&want_ns, &ns, false) {
        Some(format!(
            "the namespace differs (the policy names {}, the pod runs in {})",
            shown(&want_ns),
            shown(&ns)
        ))
    } else if !glob(&want_sa, &sa, false) {
        Some(format!(
            "the service account differs (the policy names {}, the pod uses {})",
            shown(&want_sa),
            shown(&sa)
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::trust::request::{Request, WEB_IDENTITY_ACTION};
    use crate::trust::{corrected_document, corrected_statement, evaluate, parse};

    /// Found by the `trust_policy` fuzz target
    /// (`fuzz/regressions/trust_policy/newline-in-an-action`): an `Action`
    /// holding a line break was quoted verbatim, so the denial's reason,
    /// which `check` prints as one finding line, spanned two.
    #[test]
    fn a_reason_quoting_an_action_with_a_line_break_is_one_line() {
        let text = include_str!("../../fuzz/regressions/trust_policy/newline-in-an-action");
        let doc = parse(text).unwrap();
        let eval = evaluate(
            &doc,
            &Request::pod_identity(&[("kubernetes-namespace", "shop")]),
        );
        let reason = eval.reason.unwrap();
        assert!(!reason.contains('\n'), "{reason:?}");
        assert!(
            reason.contains("its Action sts:AssumeRolhhhhhhhhhh"),
            "{reason}"
        );
    }

    /// Every value a reason or an error quotes from the policy or the
    /// request (Sid, Action, operator, key, values, the token's claims) is
    /// one line without control characters, and bounded.
    #[test]
    fn every_quoted_value_is_cleaned_and_bounded() {
        let long = "v".repeat(5000);
        let doc = parse(&format!(
            r#"{{"Statement":[
              {{"Sid":"a\nb","Effect":"Allow","Principal":{{"Federated":"x\u001b[31m"}},
                "Action":"sts:AssumeRoleWithWebIdentity"}},
              {{"Sid":"s\r2","Effect":"Allow","Principal":"*","Action":"sts:Assume\nRole*"}},
              {{"Effect":"Allow","Principal":"*","Action":"sts:*",
                "Condition":{{"StringEquals":{{"k\ney":"{long}"}}}}}},
              {{"Effect":"Allow","Principal":"*","Action":"sts:*",
                "Condition":{{"StringL\nike":{{"k":"v"}}}}}},
              {{"Effect":"Allow","Principal":"*","Action":"sts:*",
                "Condition":{{"StringEquals":{{"oidc.eks.eu-west-1.amazonaws.com/id/X:sub":
                  "system:serviceaccount:a\tb:c"}}}}}}]}}"#
        ))
        .unwrap();
        let request = Request::web_identity(
            "aws",
            "111122223333",
            "https://oidc.eks.eu-west-1.amazonaws.com/id/X",
            Some("system:serviceaccount:sh\nop:ca\u{1b}rt"),
            &["sts.amazonaws.com".to_owned()],
        );
        let eval = evaluate(&doc, &request);
        assert!(!eval.allowed);
        let mut texts: Vec<String> = eval
            .statements
            .iter()
            .filter_map(|s| s.reason.clone())
            .collect();
        texts.extend(eval.statements.iter().filter_map(|s| s.sid.clone()));
        texts.extend(eval.reason.clone());
        assert_eq!(texts.len(), 5 + 2 + 1, "{texts:#?}");
        for text in &texts {
            assert!(!text.contains(|c: char| c.is_control()), "{text:?}");
            assert!(
                text.chars().count() < 2 * crate::guard::redact::MAX_MESSAGE_CHARS,
                "{text}"
            );
        }
        // Cleaned, not dropped: the operator still sees which value it is.
        assert!(
            texts
                .iter()
                .any(|t| t.contains("its Action sts:Assume Role*")),
            "{texts:#?}"
        );
        let errors = [
            r#"{"Statement":[{"Effect":"Allow","Condition":{"Strin\ngEquals":1}}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Condition":{"S":{"k\ney":null}}}]}"#,
        ];
        for text in errors {
            let e = parse(text).unwrap_err().to_string();
            assert!(!e.contains(|c: char| c.is_control()), "{e:?}");
        }
    }

    const P: &str = "oidc.eks.eu-west-1.amazonaws.com/id/5C0FFEE";
    const ARN: &str =
        "arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/5C0FFEE";

    fn irsa() -> Request {
        Request::web_identity(
            "aws",
            "111122223333",
            &format!("https://{P}"),
            Some("system:serviceaccount:shop:cart"),
            &["sts.amazonaws.com".into()],
        )
    }

    fn pod_request() -> Request {
        Request::pod_identity(&[
            (
                "eks-cluster-arn",
                "arn:aws:eks:eu-west-1:111122223333:cluster/prod",
            ),
            ("eks-cluster-name", "prod"),
            ("kubernetes-namespace", "shop"),
            ("kubernetes-service-account", "cart"),
        ])
    }

    /// An IRSA statement with `principal`, `action` and `condition`
    /// spliced in as JSON.
    fn irsa_policy(principal: &str, action: &str, condition: &str) -> String {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow",
            "Principal":{{"Federated":"{principal}"}}{action},
            "Condition":{condition}}}]}}"#
        )
    }

    fn sub_aud(op: &str, sub: &str, aud: &str) -> String {
        format!(r#"{{"{op}":{{"{P}:sub":"{sub}","{P}:aud":"{aud}"}}}}"#)
    }

    const ACTION: &str = r#","Action":"sts:AssumeRoleWithWebIdentity""#;

    /// Real-world trust-policy mistakes, each with the explanation people
    /// need: (what, policy, request, a phrase the reason must hold).
    fn mistakes() -> Vec<(&'static str, String, Request, &'static str)> {
        let ok_cond = sub_aud(
            "StringEquals",
            "system:serviceaccount:shop:cart",
            "sts.amazonaws.com",
        );
        vec![
            (
                "the wrong namespace",
                irsa_policy(ARN, ACTION, &sub_aud("StringEquals", "system:serviceaccount:default:cart", "sts.amazonaws.com")),
                irsa(),
                "expects system:serviceaccount:default:cart but found system:serviceaccount:shop:cart: the namespace differs (the policy names default, the pod runs in shop)",
            ),
            (
                "the wrong service account",
                irsa_policy(ARN, ACTION, &sub_aud("StringEquals", "system:serviceaccount:shop:web", "sts.amazonaws.com")),
                irsa(),
                "the service account differs (the policy names web, the pod uses cart)",
            ),
            (
                "StringEquals with a *",
                irsa_policy(ARN, ACTION, &sub_aud("StringEquals", "system:serviceaccount:shop:*", "sts.amazonaws.com")),
                irsa(),
                "StringEquals on oidc.eks.eu-west-1.amazonaws.com/id/5C0FFEE:sub expects system:serviceaccount:shop:* but found system:serviceaccount:shop:cart: StringEquals does not expand wildcards; use StringLike",
            ),
            (
                "aud sts.amazon.com",
                irsa_policy(ARN, ACTION, &sub_aud("StringEquals", "system:serviceaccount:shop:cart", "sts.amazon.com")),
                irsa(),
                "sts.amazon.com is a typo for sts.amazonaws.com",
            ),
            (
                "oidc.REGION.eks in the provider ARN",
                irsa_policy(&ARN.replace("oidc.eks.eu-west-1", "oidc.eu-west-1.eks"), ACTION, &ok_cond),
                irsa(),
                "has the region before eks; the issuer is oidc.eks.eu-west-1.amazonaws.com/id/5C0FFEE",
            ),
            (
                "oidc.REGION.eks in the condition keys",
                irsa_policy(ARN, ACTION, &ok_cond.replace("oidc.eks.eu-west-1", "oidc.eu-west-1.eks")),
                irsa(),
                "the key names the region before eks (the issuer is oidc.eks.eu-west-1.amazonaws.com/id/5C0FFEE)",
            ),
            (
                "another account's provider",
                irsa_policy(&ARN.replace("111122223333", "444455556666"), ACTION, &ok_cond),
                irsa(),
                "that is the provider in account 444455556666, but the role is in account 111122223333",
            ),
            (
                "another cluster's provider",
                irsa_policy(&ARN.replace("5C0FFEE", "DECAF00"), ACTION, &ok_cond.replace("5C0FFEE", "DECAF00")),
                irsa(),
                "the provider of another cluster; this token's issuer is oidc.eks.eu-west-1.amazonaws.com/id/5C0FFEE",
            ),
            (
                "a missing Action",
                irsa_policy(ARN, "", &ok_cond),
                irsa(),
                "statement 1: it has no Action; it needs sts:AssumeRoleWithWebIdentity",
            ),
            (
                "sts:AssumeRole for IRSA",
                irsa_policy(ARN, r#","Action":"sts:AssumeRole""#, &ok_cond),
                irsa(),
                "its Action sts:AssumeRole does not include sts:AssumeRoleWithWebIdentity",
            ),
            (
                "a Deny statement",
                format!(
                    r#"{{"Statement":[{},{{"Sid":"NoShop","Effect":"Deny","Principal":"*","Action":"sts:*",
                    "Condition":{{"StringLike":{{"{P}:sub":"system:serviceaccount:shop:*"}}}}}}]}}"#,
                    irsa_policy(ARN, ACTION, &ok_cond)
                        .trim_start_matches(r#"{"Version":"2012-10-17","Statement":["#)
                        .trim_end_matches("]}")
                ),
                irsa(),
                "statement 2 (NoShop) (Deny) matches this request, and an explicit Deny wins over any Allow",
            ),
            (
                "an IRSA role used for Pod Identity",
                irsa_policy(ARN, ACTION, &ok_cond),
                pod_request(),
                "it trusts the OIDC provider arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/5C0FFEE (a role made for IRSA)",
            ),
            (
                "a Pod Identity role used for IRSA",
                TRUST.to_owned(),
                irsa(),
                "it trusts the Service pods.eks.amazonaws.com (a role made for EKS Pod Identity)",
            ),
            (
                "a Pod Identity role without sts:TagSession",
                TRUST.replace(r#"["sts:AssumeRole", "sts:TagSession"]"#, r#""sts:AssumeRole""#),
                pod_request(),
                "no statement allows sts:TagSession, which EKS Pod Identity needs as well as sts:AssumeRole",
            ),
            (
                "a failing aws:RequestTag/kubernetes-namespace",
                TRUST.replace(
                    r#""Action""#,
                    r#""Condition":{"StringEquals":{"aws:RequestTag/kubernetes-namespace":"payments"}},"Action""#,
                ),
                pod_request(),
                "StringEquals on aws:RequestTag/kubernetes-namespace expects payments but found shop: the pod's kubernetes-namespace session tag is shop",
            ),
            (
                "aws:PrincipalTag where a request tag is meant",
                TRUST.replace(
                    r#""Action""#,
                    r#""Condition":{"StringEquals":{"aws:PrincipalTag/kubernetes-namespace":"shop"}},"Action""#,
                ),
                pod_request(),
                "so test aws:RequestTag/kubernetes-namespace",
            ),
        ]
    }

    const TRUST: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "pods.eks.amazonaws.com"},
        "Action": ["sts:AssumeRole", "sts:TagSession"]}]}"#;

    #[test]
    fn real_world_mistakes_are_denied_and_explained() {
        for (what, policy, request, phrase) in mistakes() {
            let doc = parse(&policy).unwrap_or_else(|e| panic!("{what}: the policy {e}"));
            let eval = evaluate(&doc, &request);
            assert!(!eval.allowed, "{what}: allowed");
            let reason = eval.reason.clone().unwrap();
            assert!(reason.contains(phrase), "{what}: {reason}");
            // The corrected document admits exactly this request.
            let fixed = corrected_document(&doc, &eval, &request);
            let again = evaluate(&parse(&fixed.to_string()).unwrap(), &request);
            assert!(
                again.allowed,
                "{what}: the correction is still denied: {:?}",
                again.reason
            );
        }
    }

    #[test]
    fn the_templates_allow() {
        let ok = irsa_policy(
            ARN,
            ACTION,
            &sub_aud(
                "StringEquals",
                "system:serviceaccount:shop:cart",
                "sts.amazonaws.com",
            ),
        );
        let eval = evaluate(&parse(&ok).unwrap(), &irsa());
        assert!(eval.allowed, "{:?}", eval.reason);
        assert_eq!(eval.statements[0].actions, [WEB_IDENTITY_ACTION]);
        let like = irsa_policy(
            ARN,
            ACTION,
            &sub_aud("StringLike", "system:serviceaccount:shop:*", "sts.*"),
        );
        assert!(evaluate(&parse(&like).unwrap(), &irsa()).allowed);
        assert!(evaluate(&parse(TRUST).unwrap(), &pod_request()).allowed);
        let fixed = corrected_statement(&pod_request());
        assert_eq!(
            fixed["Condition"]["StringEquals"]["aws:RequestTag/kubernetes-namespace"],
            "shop"
        );
        assert!(fixed["Condition"]["StringEquals"]
            .get("aws:RequestTag/eks-cluster-name")
            .is_none());
    }
}
