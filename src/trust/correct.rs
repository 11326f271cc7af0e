//! The correction `explain` and the trust findings hand out: the statement
//! that admits exactly this request, and the policy with the statements
//! that refused it fixed. What it builds is evaluated again by the tests
//! (and the `trust_policy` fuzz target): a correction must be allowed.

use serde_json::{json, Map, Value};

use super::evaluate::Evaluation;
use super::parse::{Document, Effect, Principals, Statement};
use super::request::Request;
use crate::identity::mechanism::MechanismName;

/// The statement that admits exactly this request.
pub fn corrected_statement(request: &Request) -> Value {
    let mut conditions = Map::new();
    let wanted: Vec<(&String, &Vec<String>)> = match request.mechanism {
        MechanismName::PodIdentity => request
            .context
            .iter()
            .filter(|(k, _)| {
                k.ends_with("/eks-cluster-arn")
                    || k.ends_with("/kubernetes-namespace")
                    || k.ends_with("/kubernetes-service-account")
                    || k.as_str() == "sts:ExternalId"
            })
            .collect(),
        MechanismName::Irsa => request.context.iter().collect(),
    };
    for (key, values) in wanted {
        let value = match values.as_slice() {
            [one] => Value::from(one.as_str()),
            _ if key.ends_with(":aud") => Value::from(preferred_audience(values)),
            many => Value::from(many.to_vec()),
        };
        conditions.insert(key.clone(), value);
    }
    let action = match request.actions.as_slice() {
        [one] => Value::from(one.as_str()),
        many => Value::from(many.to_vec()),
    };
    let mut statement = json!({
        "Effect": "Allow",
        "Principal": {request.principal_type: request.principal},
        "Action": action,
    });
    if !conditions.is_empty() {
        statement["Condition"] = json!({ "StringEquals": conditions });
    }
    statement
}

/// Of a token's audiences, the one an `aud` condition should name: the
/// webhook's default when present, else the first.
fn preferred_audience(values: &[String]) -> &str {
    values
        .iter()
        .find(|v| *v == "sts.amazonaws.com")
        .or(values.first())
        .map_or("sts.amazonaws.com", String::as_str)
}

/// The policy with the statements that refused this request fixed: every
/// Deny that matched is dropped, and the first Allow statement for the
/// mechanism's principal type is replaced by [`corrected_statement`], or
/// it is added (so a role trusted by both mechanisms keeps the other's).
pub fn corrected_document(doc: &Document, eval: &Evaluation, request: &Request) -> Value {
    let fixed = corrected_statement(request);
    let is_deny_match = |i: usize| {
        eval.statements
            .get(i)
            .is_some_and(|r| r.matched && r.effect == Effect::Deny)
    };
    let same_kind = |s: &Statement| match &s.principal {
        Some(Principals::Typed(map)) => map.contains_key(request.principal_type),
        _ => false,
    };
    let allows_all = request.actions.iter().all(|a| eval.allows(a));
    let target = doc
        .statements
        .iter()
        .position(|s| s.effect == Effect::Allow && same_kind(s))
        .filter(|_| !allows_all);
    let mut statements: Vec<Value> = vec![];
    for (i, s) in doc.statements.iter().enumerate() {
        if is_deny_match(i) {
            continue;
        }
        statements.push(if Some(i) == target {
            fixed.clone()
        } else {
            s.raw.clone()
        });
    }
    if target.is_none() && !allows_all {
        statements.push(fixed);
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::{evaluate, parse};

    #[test]
    fn the_corrected_document_drops_the_deny_and_replaces_the_allow() {
        let r = Request::web_identity(
            "aws",
            "111122223333",
            "https://oidc.eks.eu-west-1.amazonaws.com/id/AB",
            Some("system:serviceaccount:shop:cart"),
            &["sts.amazonaws.com".into()],
        );
        let doc = parse(r#"{"Statement":[
            {"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/AB"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"oidc.eks.eu-west-1.amazonaws.com/id/AB:sub":"system:serviceaccount:shop:web"}}},
            {"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"},
            {"Effect":"Deny","Principal":"*","Action":"*"}]}"#).unwrap();
        let eval = evaluate(&doc, &r);
        let fixed = corrected_document(&doc, &eval, &r);
        let statements = fixed["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[1], doc.statements[1].raw);
        let again = parse(&fixed.to_string()).unwrap();
        assert!(evaluate(&again, &r).allowed);
        assert_eq!(
            statements[0]["Condition"]["StringEquals"]
                ["oidc.eks.eu-west-1.amazonaws.com/id/AB:sub"],
            "system:serviceaccount:shop:cart"
        );
    }
}
