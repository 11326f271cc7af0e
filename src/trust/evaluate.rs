//! The evaluation, as IAM does it for a trust policy: each statement's
//! principal, actions and conditions against the request; an explicit
//! `Deny` wins; the request is allowed when every one of its actions is
//! allowed by some statement and denied by none. The reasons are worded
//! by `reasons`.

use serde::Serialize;

use super::conditions::{self, glob};
use super::parse::{Document, Effect, Principals, Statement};
use super::reasons::{self, shown};
use super::request::Request;

/// What one statement made of the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementResult {
    /// 1-based, as people count statements.
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub effect: Effect,
    /// Principal, action and every condition matched, for at least one
    /// of the request's actions.
    pub matched: bool,
    /// The request's actions it covers when it matched.
    pub actions: Vec<String>,
    /// The first reason it did not match; for a match that covers only
    /// some of the actions, which ones it leaves out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl StatementResult {
    /// "statement 2" or "statement 2 (Sid Foo)".
    fn name(&self) -> String {
        reasons::statement_name(self.index, self.sid.as_deref())
    }
}

/// The verdict on a request, statement by statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    pub allowed: bool,
    /// Why it is denied, in one sentence; `None` when allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub statements: Vec<StatementResult>,
}

impl Evaluation {
    /// Whether some statement that matched allows `action` (a matching
    /// Deny aside).
    pub(super) fn allows(&self, action: &String) -> bool {
        allows(&self.statements, action)
    }
}

fn allows(results: &[StatementResult], action: &String) -> bool {
    results
        .iter()
        .any(|r| r.matched && r.effect == Effect::Allow && r.actions.contains(action))
}

/// Evaluates `request` against `doc` as IAM does: allowed when every
/// action is allowed by some statement and denied by none.
pub fn evaluate(doc: &Document, request: &Request) -> Evaluation {
    let statements: Vec<StatementResult> = doc
        .statements
        .iter()
        .enumerate()
        .map(|(i, s)| judge(i + 1, s, request))
        .collect();
    let reason = denial(&statements, request);
    Evaluation {
        allowed: reason.is_none(),
        reason,
        statements,
    }
}

/// Why the request is denied, from the statements' results; `None` when
/// every action is allowed and none is denied.
fn denial(results: &[StatementResult], request: &Request) -> Option<String> {
    let deny = results
        .iter()
        .find(|r| r.matched && r.effect == Effect::Deny);
    if let Some(deny) = deny {
        return Some(reasons::deny_wins(&deny.name()));
    }
    let (allowed, missing): (Vec<&String>, Vec<&String>) =
        request.actions.iter().partition(|a| allows(results, a));
    let first = missing.first()?;
    if !allowed.is_empty() {
        return Some(reasons::needed_as_well(&missing, &allowed, request));
    }
    let why = results
        .iter()
        .filter(|r| r.effect == Effect::Allow)
        .find_map(|r| r.reason.as_deref().map(|why| (r.name(), why)));
    Some(reasons::no_statement_allows(first, why))
}

fn judge(index: usize, s: &Statement, request: &Request) -> StatementResult {
    let mut result = StatementResult {
        index,
        sid: s.sid.as_deref().map(shown),
        effect: s.effect,
        matched: false,
        actions: vec![],
        reason: None,
    };
    let outcome = principal_matches(s, request)
        .and_then(|()| covered_actions(s, request))
        .and_then(|actions| {
            for c in &s.conditions {
                conditions::holds(c, request).map_err(|unmet| reasons::unmet(c, unmet, request))?;
            }
            Ok(actions)
        });
    match outcome {
        Ok(actions) => {
            let left_out: Vec<&String> = request
                .actions
                .iter()
                .filter(|a| !actions.contains(a))
                .collect();
            if !left_out.is_empty() {
                result.reason = Some(reasons::covers_only(&actions, &left_out, request));
            }
            result.matched = true;
            result.actions = actions;
        }
        Err(reason) => result.reason = Some(reason),
    }
    result
}

fn principal_listed(p: &Principals, request: &Request) -> bool {
    match p {
        Principals::Any => true,
        Principals::Typed(map) => map.iter().any(|(kind, values)| {
            (kind == "AWS" && values.iter().any(|v| v == "*"))
                || (kind == request.principal_type && values.contains(&request.principal))
                || (kind == "AWS"
                    && request.principal_type == "AWS"
                    && names_account(values, request))
        }),
    }
}

/// An `AWS` principal naming the asking role's account (`ACCOUNT` or
/// `arn:PARTITION:iam::ACCOUNT:root`) admits it as far as the trust policy
/// goes: the account's own policies then decide.
fn names_account(values: &[String], request: &Request) -> bool {
    let Some(account) = request.account() else {
        return false;
    };
    let partition = request.principal.split(':').nth(1).unwrap_or("aws");
    let root = format!("arn:{partition}:iam::{account}:root");
    values.iter().any(|v| v == account || *v == root)
}

/// Whether a `NotPrincipal` spares the request's principal. A role's
/// session (an `AWS` request) is checked by IAM as its account, its role
/// and the session: the account alone, or the role alone, does not spare
/// it; the role with its account (`ACCOUNT` or its `root`) does, as IAM's
/// guide advises writing it.
fn not_principal_spares(not: &Principals, request: &Request) -> bool {
    if request.principal_type != "AWS" {
        return principal_listed(not, request);
    }
    match not {
        Principals::Any => true,
        Principals::Typed(map) => map.get("AWS").is_some_and(|values| {
            values.iter().any(|v| v == "*")
                || (values.contains(&request.principal) && names_account(values, request))
        }),
    }
}

fn principal_matches(s: &Statement, request: &Request) -> Result<(), String> {
    if let Some(not) = &s.not_principal {
        return if not_principal_spares(not, request) {
            Err(reasons::not_principal_excludes(request))
        } else {
            Ok(())
        };
    }
    match &s.principal {
        None => Err(reasons::no_principal()),
        Some(p) if principal_listed(p, request) => Ok(()),
        Some(Principals::Any) => Ok(()),
        Some(Principals::Typed(map)) => Err(reasons::principal_mismatch(map, request)),
    }
}

fn covered_actions(s: &Statement, request: &Request) -> Result<Vec<String>, String> {
    let covered = |a: &String| match (&s.action, &s.not_action) {
        (Some(list), _) => list.iter().any(|p| glob(p, a, true)),
        (None, Some(not)) => !not.iter().any(|p| glob(p, a, true)),
        (None, None) => false,
    };
    let actions: Vec<String> = request
        .actions
        .iter()
        .filter(|a| covered(a))
        .cloned()
        .collect();
    if !actions.is_empty() {
        return Ok(actions);
    }
    Err(reasons::actions_not_covered(
        s.action.as_deref(),
        s.not_action.as_deref(),
        request,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::parse;

    fn pod(tags: &[(&str, &str)]) -> Request {
        Request::pod_identity(tags)
    }

    fn statement_with(condition: &str) -> Document {
        parse(&format!(
            r#"{{"Statement":[{{"Effect":"Allow","Principal":{{"Service":"pods.eks.amazonaws.com"}},
               "Action":["sts:AssumeRole","sts:TagSession"],"Condition":{condition}}}]}}"#
        ))
        .unwrap()
    }

    fn allowed(condition: &str, request: &Request) -> bool {
        evaluate(&statement_with(condition), request).allowed
    }

    /// Each condition (as JSON) and whether it lets `request` in.
    fn assert_table(request: &Request, table: &[(&str, bool)]) {
        for (condition, want) in table {
            assert_eq!(allowed(condition, request), *want, "{condition}");
        }
    }

    #[test]
    fn string_operators_follow_iam() {
        let r = pod(&[
            ("kubernetes-namespace", "shop"),
            ("kubernetes-service-account", "cart"),
        ]);
        let ns = r#""aws:RequestTag/kubernetes-namespace""#;
        let table: Vec<(String, bool)> = vec![
            (format!(r#"{{"StringEquals":{{{ns}:["x","shop"]}}}}"#), true),
            (format!(r#"{{"StringEquals":{{{ns}:"SHOP"}}}}"#), false),
            (
                format!(r#"{{"StringEqualsIgnoreCase":{{{ns}:"SHOP"}}}}"#),
                true,
            ),
            (format!(r#"{{"StringNotEquals":{{{ns}:"dev"}}}}"#), true),
            (format!(r#"{{"StringNotEquals":{{{ns}:"shop"}}}}"#), false),
            (
                format!(r#"{{"StringNotEqualsIgnoreCase":{{{ns}:"SHOP"}}}}"#),
                false,
            ),
            (format!(r#"{{"StringLike":{{{ns}:"sh?p"}}}}"#), true),
            (format!(r#"{{"StringNotLike":{{{ns}:"s*"}}}}"#), false),
            // Key names ignore case; several keys and operators are AND.
            (
                r#"{"StringEquals":{"AWS:REQUESTTAG/KUBERNETES-NAMESPACE":"shop"}}"#.into(),
                true,
            ),
            (
                format!(
                    r#"{{"StringEquals":{{{ns}:"shop"}},
                    "StringLike":{{"aws:RequestTag/kubernetes-service-account":"web*"}}}}"#
                ),
                false,
            ),
        ];
        let table: Vec<(&str, bool)> = table.iter().map(|(c, w)| (c.as_str(), *w)).collect();
        assert_table(&r, &table);
    }

    #[test]
    fn missing_keys_if_exists_null_and_set_qualifiers() {
        let r = pod(&[("kubernetes-namespace", "shop")]);
        assert_table(
            &r,
            &[
                (
                    r#"{"StringEquals":{"aws:RequestTag/kubernetes-pod-name":"a"}}"#,
                    false,
                ),
                (
                    r#"{"StringEqualsIfExists":{"aws:RequestTag/kubernetes-pod-name":"a"}}"#,
                    true,
                ),
                (
                    r#"{"StringNotEquals":{"aws:RequestTag/kubernetes-pod-name":"a"}}"#,
                    true,
                ),
                (
                    r#"{"Null":{"aws:RequestTag/kubernetes-pod-name":"true"}}"#,
                    true,
                ),
                (
                    r#"{"Null":{"aws:RequestTag/kubernetes-pod-name":"false"}}"#,
                    false,
                ),
                (
                    r#"{"Null":{"aws:RequestTag/kubernetes-namespace":"false"}}"#,
                    true,
                ),
            ],
        );
        // aws:TagKeys is multi-valued. Absent, ForAllValues holds
        // (vacuously) and ForAnyValue does not.
        let r = pod(&[("kubernetes-namespace", "shop"), ("eks-cluster-name", "c")]);
        assert_table(
            &r,
            &[
                (
                    r#"{"ForAllValues:StringLike":{"aws:TagKeys":["kubernetes-*","eks-*"]}}"#,
                    true,
                ),
                (
                    r#"{"ForAllValues:StringLike":{"aws:TagKeys":["kubernetes-*"]}}"#,
                    false,
                ),
                (
                    r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":"eks-cluster-name"}}"#,
                    true,
                ),
                (
                    r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":"nope"}}"#,
                    false,
                ),
                (
                    r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":"eks-cluster-name"}}"#,
                    true,
                ),
                (r#"{"ForAllValues:StringEquals":{"aws:Nope":"x"}}"#, true),
                (r#"{"ForAnyValue:StringEquals":{"aws:Nope":"x"}}"#, false),
            ],
        );
    }

    #[test]
    fn conditions_on_assumed_keys_hold() {
        let mut r = pod(&[("kubernetes-namespace", "shop")]);
        let cond = r#"{"StringEquals":{"aws:RequestTag/eks-cluster-name":"prod"}}"#;
        assert!(!allowed(cond, &r));
        r.assumed = vec!["aws:RequestTag/eks-cluster-name".into()];
        assert!(allowed(cond, &r));
    }

    #[test]
    fn an_unknown_operator_is_reported_not_guessed() {
        let r = pod(&[]);
        let doc =
            statement_with(r#"{"DateGreaterThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}}"#);
        let eval = evaluate(&doc, &r);
        assert!(!eval.allowed);
        assert!(eval.statements[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("DateGreaterThan is not one"));
    }

    #[test]
    fn not_action_and_not_principal() {
        let r = pod(&[]);
        let doc = parse(
            r#"{"Statement":[{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::1:root"},"NotAction":"iam:*"}]}"#,
        )
        .unwrap();
        assert!(evaluate(&doc, &r).allowed);
        let doc =
            parse(r#"{"Statement":[{"Effect":"Allow","Principal":"*","NotAction":"sts:Tag*"}]}"#)
                .unwrap();
        let eval = evaluate(&doc, &r);
        assert!(!eval.allowed);
        assert_eq!(
            eval.reason.as_deref(),
            Some("no statement allows sts:TagSession, which EKS Pod Identity needs as well as sts:AssumeRole")
        );
    }

    /// A Deny with `NotPrincipal` spares a role's session only when it
    /// names the role and its account (IAM checks the account, the role
    /// and the session each): the account alone, or the role alone, does
    /// not, and the Deny applies to the target role's hop.
    #[test]
    fn a_not_principal_deny_spares_a_role_only_named_with_its_account() {
        let first = "arn:aws:iam::111122223333:role/eks-hop";
        let r = Request::target_hop(first, Some(&[]), None);
        let with_deny = |not: &str| {
            parse(&format!(
                r#"{{"Statement":[
                {{"Effect":"Allow","Principal":{{"AWS":"{first}"}},"Action":["sts:AssumeRole","sts:TagSession"]}},
                {{"Effect":"Deny","NotPrincipal":{{"AWS":{not}}},"Action":"sts:*"}}]}}"#
            ))
            .unwrap()
        };
        for not in [
            r#""arn:aws:iam::111122223333:root""#,
            r#""111122223333""#,
            &format!(r#""{first}""#),
            r#"["arn:aws:iam::111122223333:role/other","arn:aws:iam::111122223333:root"]"#,
        ] {
            assert!(!evaluate(&with_deny(not), &r).allowed, "{not}");
        }
        for not in [
            format!(r#"["{first}","arn:aws:iam::111122223333:root"]"#),
            format!(r#"["{first}","111122223333"]"#),
            r#""*""#.to_owned(),
        ] {
            assert!(evaluate(&with_deny(&not), &r).allowed, "{not}");
        }
    }

    /// The target hop's principal is the association's role: a mismatch
    /// names it as such, not as IRSA's OIDC provider.
    #[test]
    fn a_target_hop_s_principal_mismatch_names_the_association_s_role() {
        let first = "arn:aws:iam::111122223333:role/eks-hop";
        let r = Request::target_hop(first, Some(&[]), None);
        for (principal, says) in [
            (
                r#"{"Service":"pods.eks.amazonaws.com"}"#,
                "does not name the association's role arn:aws:iam::111122223333:role/eks-hop",
            ),
            (
                r#"{"AWS":"arn:aws:iam::111122223333:role/other"}"#,
                "its Principal AWS is arn:aws:iam::111122223333:role/other, not the association's role",
            ),
        ] {
            let doc = parse(&format!(
                r#"{{"Statement":[{{"Effect":"Allow","Principal":{principal},"Action":["sts:AssumeRole","sts:TagSession"]}}]}}"#
            ))
            .unwrap();
            let reason = evaluate(&doc, &r).reason.unwrap();
            assert!(reason.contains(says), "{reason}");
            assert!(!reason.contains("OIDC"), "{reason}");
        }
    }
}
