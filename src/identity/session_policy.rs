//! An EKS Pod Identity association's session policy (`--session-policy`):
//! the policy text itself, judged as EKS would take it (JSON, at most
//! 2,048 characters, a `Statement` whose entries say `Allow` or `Deny`),
//! and what the findings need of it: the statements that deny an action,
//! and the policy with one more statement allowing it.
//!
//! The pod's effective permissions are the intersection of the role's
//! policies and this policy. Nothing inside the pod shows it (the agent's
//! answer and the token look the same), so the user has to say it.
//!
//! Invariant: pure; the text is never a secret but still goes through the
//! usual redaction wherever it is printed.

use crate::identity::wildcard::glob;
use serde_json::{Map, Value};

/// The most characters EKS accepts in an association's `policy`.
pub const MAX_CHARS: usize = 2048;

/// A session policy as given, known to be a policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPolicy {
    text: String,
}

impl SessionPolicy {
    /// The policy, or why EKS would not take it as one.
    pub fn parse(text: &str) -> Result<Self, String> {
        let chars = text.chars().count();
        if chars > MAX_CHARS {
            return Err(format!(
                "is {chars} characters long; EKS allows at most {MAX_CHARS} in an association's \
                 session policy"
            ));
        }
        let doc: Value = serde_json::from_str(text)
            .map_err(|e| format!("is not JSON ({e}); give the policy document itself"))?;
        let Some(doc) = doc.as_object() else {
            return Err("is not a policy document (a JSON object with a Statement)".to_owned());
        };
        let statements = statements_of(doc).ok_or(
            "has no Statement (an object, or a non-empty list of objects) and is not a policy \
             document",
        )?;
        for (i, s) in statements.iter().enumerate() {
            let effect = s.get("Effect").and_then(Value::as_str);
            if !matches!(effect, Some("Allow" | "Deny")) {
                return Err(format!(
                    "has a statement (number {}) whose Effect is not \"Allow\" or \"Deny\"",
                    i + 1
                ));
            }
            if s.get("Action").is_none() && s.get("NotAction").is_none() {
                return Err(format!(
                    "has a statement (number {}) with neither Action nor NotAction",
                    i + 1
                ));
            }
        }
        Ok(SessionPolicy {
            text: text.to_owned(),
        })
    }

    /// The policy text as given.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The `Deny` statements that may apply to `action` on `resource`, as
    /// compact JSON: those whose `Action` names it (IAM's `*` and `?`
    /// understood) and whose `Resource` may cover it, and any with
    /// `NotAction` or `NotResource`, which are not judged here.
    pub fn denying(&self, action: &str, resource: &str) -> Vec<String> {
        let doc: Value = serde_json::from_str(&self.text).unwrap_or_default();
        let Some(statements) = doc.as_object().and_then(statements_of) else {
            return vec![];
        };
        statements
            .into_iter()
            .filter(|s| s.get("Effect").and_then(Value::as_str) == Some("Deny"))
            .filter(|s| {
                let action_hit = s.contains_key("NotAction")
                    || any_matches(s.get("Action"), &action.to_ascii_lowercase(), true);
                let resource_hit = s.contains_key("NotResource")
                    || s.get("Resource").is_none()
                    || resource == "*"
                    || any_matches(s.get("Resource"), resource, false);
                action_hit && resource_hit
            })
            .map(|s| serde_json::to_string(s).unwrap_or_default())
            .collect()
    }

    /// The policy with one more statement allowing `action` on
    /// `resource`, indented, and its length in characters.
    pub fn with_allow(&self, action: &str, resource: &str) -> (String, usize) {
        let mut doc: Value = serde_json::from_str(&self.text).unwrap_or_default();
        let added = serde_json::json!({
            "Effect": "Allow",
            "Action": action,
            "Resource": resource,
        });
        if let Some(obj) = doc.as_object_mut() {
            let mut list = match obj.remove("Statement") {
                Some(Value::Array(list)) => list,
                Some(one) => vec![one],
                None => vec![],
            };
            list.push(added);
            obj.insert("Statement".to_owned(), Value::Array(list));
        }
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        // EKS counts the text as sent; the compact form is what fits.
        let compact = serde_json::to_string(&doc).unwrap_or_default();
        (text, compact.chars().count())
    }
}

/// The statements of a policy document: its `Statement` object, or its
/// non-empty list of objects.
fn statements_of(doc: &Map<String, Value>) -> Option<Vec<&Map<String, Value>>> {
    match doc.get("Statement")? {
        Value::Object(one) => Some(vec![one]),
        Value::Array(list) if !list.is_empty() => list.iter().map(Value::as_object).collect(),
        _ => None,
    }
}

/// Whether a string or a list of strings in a statement matches `text`;
/// actions are matched without regard to case, as IAM does.
fn any_matches(field: Option<&Value>, text: &str, fold_case: bool) -> bool {
    let patterns: Vec<&str> = match field {
        Some(Value::String(one)) => vec![one],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    patterns.into_iter().any(|p| glob(p, text, fold_case))
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ_ORDERS: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::orders/*"}]}"#;

    #[test]
    fn a_policy_document_is_taken_as_given() {
        let p = SessionPolicy::parse(READ_ORDERS).unwrap();
        assert_eq!(p.text(), READ_ORDERS);
        let one = r#"{"Statement":{"Effect":"Deny","NotAction":"s3:*","Resource":"*"}}"#;
        assert!(SessionPolicy::parse(one).is_ok());
    }

    #[test]
    fn what_eks_would_refuse_is_refused_with_the_reason() {
        let long = format!(
            r#"{{"Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"{}"}}]}}"#,
            "a".repeat(MAX_CHARS)
        );
        for (bad, why) in [
            (long.as_str(), "at most 2048"),
            ("s3:GetObject", "is not JSON"),
            ("[]", "not a policy document"),
            (r#"{"Version":"2012-10-17"}"#, "has no Statement"),
            (r#"{"Statement":[]}"#, "has no Statement"),
            (r#"{"Statement":["x"]}"#, "has no Statement"),
            (
                r#"{"Statement":[{"Effect":"allow","Action":"s3:*"}]}"#,
                "number 1",
            ),
            (r#"{"Statement":[{"Effect":"Allow"}]}"#, "neither Action"),
        ] {
            let err = SessionPolicy::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad:.40}: {err}");
        }
        // Exactly the limit is fine: EKS counts characters, not bytes.
        let pad = MAX_CHARS - READ_ORDERS.chars().count();
        let at_limit = format!("{READ_ORDERS}{}", " ".repeat(pad));
        assert!(SessionPolicy::parse(&at_limit).is_ok());
    }

    #[test]
    fn the_deny_statements_that_may_apply_are_found() {
        let p = SessionPolicy::parse(
            r#"{"Statement":[
                {"Sid":"all","Effect":"Allow","Action":"*","Resource":"*"},
                {"Sid":"no-put","Effect":"Deny","Action":["S3:Put*"],"Resource":"arn:aws:s3:::orders/*"},
                {"Sid":"no-sqs","Effect":"Deny","Action":"sqs:*","Resource":"*"}
            ]}"#,
        )
        .unwrap();
        let found = p.denying("s3:PutObject", "arn:aws:s3:::orders/a");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("no-put"), "{found:?}");
        assert!(p.denying("s3:PutObject", "arn:aws:s3:::other/a").is_empty());
        assert!(p.denying("s3:GetObject", "*").is_empty());
    }

    #[test]
    fn the_corrected_policy_adds_one_statement_and_counts_its_length() {
        let p = SessionPolicy::parse(READ_ORDERS).unwrap();
        let (text, chars) = p.with_allow("sqs:SendMessage", "arn:aws:sqs:eu-west-1:1:q");
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["Statement"].as_array().unwrap().len(), 2);
        assert_eq!(doc["Statement"][1]["Action"], "sqs:SendMessage");
        assert_eq!(doc["Version"], "2012-10-17");
        assert!(chars > READ_ORDERS.len() && chars < text.len(), "{chars}");
        let single = SessionPolicy::parse(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#,
        )
        .unwrap();
        let (text, _) = single.with_allow("s3:PutObject", "*");
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["Statement"].as_array().unwrap().len(), 2);
    }
}
