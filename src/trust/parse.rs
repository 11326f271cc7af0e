//! A trust policy's text, parsed into statements, from any of the forms
//! people have at hand: plain JSON, the whole `aws iam get-role` output,
//! its `Role.AssumeRolePolicyDocument`, or the URL-encoded text IAM's API
//! returns. Says what is wrong with a text that is not a policy.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::conditions::Condition;
use super::reasons::shown;

/// The most bytes of policy input read: IAM's trust policies are at most
/// 4096 characters, and `aws iam get-role` wraps one in a few KiB more.
pub const MAX_POLICY_BYTES: usize = 64 * 1024;

/// How deep the input may nest documents in strings (`get-role` output
/// holding a URL-encoded document holding JSON).
const MAX_WRAPPING: u8 = 4;

/// Why a text is not a trust policy; completes "the policy ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("is not JSON: {0}")]
    NotJson(String),
    #[error("is URL-encoded but does not decode to text")]
    BadEncoding,
    #[error("is not a policy document: {0}")]
    NotAPolicy(String),
    #[error("statement {index} is invalid: {problem}")]
    BadStatement { index: usize, problem: String },
}

/// A trust policy, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub statements: Vec<Statement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Effect {
    Allow,
    Deny,
}

/// Who a statement names: everyone (`"*"`), or values by principal type
/// (`Federated`, `Service`, `AWS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principals {
    Any,
    Typed(BTreeMap<String, Vec<String>>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub principal: Option<Principals>,
    pub not_principal: Option<Principals>,
    pub action: Option<Vec<String>>,
    pub not_action: Option<Vec<String>>,
    pub conditions: Vec<Condition>,
    /// The statement as written, for the corrected document.
    pub raw: Value,
}

/// Parses a trust policy in any of the forms people have at hand: plain
/// JSON, the whole `aws iam get-role` output, its
/// `Role.AssumeRolePolicyDocument`, or the URL-encoded text IAM's API
/// returns.
pub fn parse(text: &str) -> Result<Document, PolicyError> {
    parse_nested(text, 0)
}

fn parse_nested(text: &str, depth: u8) -> Result<Document, PolicyError> {
    let text = text.trim_start_matches('\u{feff}').trim();
    if depth > MAX_WRAPPING {
        return Err(PolicyError::NotAPolicy("nested too deeply".into()));
    }
    let value: Value = if text.starts_with('%') {
        return parse_nested(&url_decode(text)?, depth + 1);
    } else {
        serde_json::from_str(text).map_err(|e| PolicyError::NotJson(e.to_string()))?
    };
    document(value, depth)
}

/// IAM's URL encoding escapes every `&`, `=` and `+`, so the text is one
/// form key; form decoding also turns a `+` some encoders write for a space
/// back into one.
fn url_decode(text: &str) -> Result<String, PolicyError> {
    if text.contains(['&', '=']) {
        return Err(PolicyError::BadEncoding);
    }
    url::form_urlencoded::parse(text.as_bytes())
        .next()
        .map(|(key, _)| key.into_owned())
        .filter(|decoded| !decoded.contains('\u{fffd}'))
        .ok_or(PolicyError::BadEncoding)
}

fn document(value: Value, depth: u8) -> Result<Document, PolicyError> {
    match value {
        Value::String(inner) => parse_nested(&inner, depth + 1),
        Value::Object(mut map) => {
            for wrapper in ["Role", "AssumeRolePolicyDocument"] {
                if let Some(inner) = map.remove(wrapper) {
                    return document(inner, depth + 1);
                }
            }
            let statements = match map.remove("Statement") {
                Some(Value::Array(list)) => list,
                Some(one @ Value::Object(_)) => vec![one],
                Some(_) => return Err(PolicyError::NotAPolicy("Statement is not a list".into())),
                None => return Err(PolicyError::NotAPolicy("it has no Statement".into())),
            };
            let statements = statements
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    statement(s).map_err(|problem| PolicyError::BadStatement {
                        index: i + 1,
                        problem,
                    })
                })
                .collect::<Result<_, _>>()?;
            Ok(Document { statements })
        }
        _ => Err(PolicyError::NotAPolicy("it is not a JSON object".into())),
    }
}

fn statement(raw: Value) -> Result<Statement, String> {
    let Value::Object(map) = &raw else {
        return Err("it is not a JSON object".into());
    };
    let effect = match map.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        other => {
            let other = shown(&format!("{other:?}"));
            return Err(format!("Effect must be Allow or Deny, not {other}"));
        }
    };
    Ok(Statement {
        sid: map.get("Sid").and_then(Value::as_str).map(str::to_owned),
        effect,
        principal: map.get("Principal").map(principals).transpose()?,
        not_principal: map.get("NotPrincipal").map(principals).transpose()?,
        action: map
            .get("Action")
            .map(|v| strings(v, "Action"))
            .transpose()?,
        not_action: map
            .get("NotAction")
            .map(|v| strings(v, "NotAction"))
            .transpose()?,
        conditions: map
            .get("Condition")
            .map(conditions)
            .transpose()?
            .unwrap_or_default(),
        raw,
    })
}

/// A string, or a list of strings; numbers and booleans are condition
/// values as IAM reads them, as text.
fn strings(value: &Value, what: &str) -> Result<Vec<String>, String> {
    let one = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(format!(
            "{} holds {}, not a string",
            shown(what),
            shown(&v.to_string())
        )),
    };
    match value {
        Value::Array(list) => list.iter().map(one).collect(),
        v => Ok(vec![one(v)?]),
    }
}

fn principals(value: &Value) -> Result<Principals, String> {
    match value {
        Value::String(s) if s == "*" => Ok(Principals::Any),
        Value::Object(map) => map
            .iter()
            .map(|(kind, v)| Ok((kind.clone(), strings(v, kind)?)))
            .collect::<Result<_, String>>()
            .map(Principals::Typed),
        v => Err(format!(
            "Principal is {}, neither \"*\" nor an object",
            shown(&v.to_string())
        )),
    }
}

fn conditions(value: &Value) -> Result<Vec<Condition>, String> {
    let Value::Object(operators) = value else {
        return Err("Condition is not an object".into());
    };
    let mut out = vec![];
    for (operator, keys) in operators {
        let Value::Object(keys) = keys else {
            return Err(format!("Condition {} is not an object", shown(operator)));
        };
        for (key, values) in keys {
            out.push(Condition {
                operator: operator.clone(),
                key: key.clone(),
                values: strings(values, key)?,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_form_parses_to_the_same_statements() {
        let plain = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;
        let doc = parse(plain).unwrap();
        let get_role =
            format!(r#"{{"Role":{{"RoleName":"r","AssumeRolePolicyDocument":{plain}}}}}"#);
        assert_eq!(parse(&get_role).unwrap(), doc);
        let encoded: String = url::form_urlencoded::byte_serialize(plain.as_bytes()).collect();
        assert_eq!(parse(&encoded).unwrap(), doc);
        let in_get_role = format!(
            r#"{{"Role":{{"AssumeRolePolicyDocument":{}}}}}"#,
            Value::from(encoded.clone())
        );
        assert_eq!(parse(&in_get_role).unwrap(), doc);
        // `--query Role.AssumeRolePolicyDocument --output text` of a string.
        assert_eq!(parse(&format!("\u{feff}{encoded}\n")).unwrap(), doc);
        let one = r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"*"}}"#;
        assert_eq!(parse(one).unwrap().statements.len(), 1);
    }

    #[test]
    fn bad_input_is_an_error_that_says_what_is_wrong() {
        assert!(matches!(parse("not json"), Err(PolicyError::NotJson(_))));
        assert!(matches!(parse("%7B%ZZ&x=1"), Err(PolicyError::BadEncoding)));
        assert!(matches!(parse("[1]"), Err(PolicyError::NotAPolicy(_))));
        assert!(matches!(parse("{}"), Err(PolicyError::NotAPolicy(_))));
        let e = parse(r#"{"Statement":[{"Effect":"Maybe"}]}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "statement 1 is invalid: Effect must be Allow or Deny, not Some(\"Maybe\")"
        );
        let e =
            parse(r#"{"Statement":[{"Effect":"Allow","Condition":{"StringEquals":{"k":null}}}]}"#)
                .unwrap_err();
        assert!(e.to_string().contains("k holds null"), "{e}");
        // A string that wraps itself is cut off, not followed forever.
        let mut nested = Value::from("{}");
        for _ in 0..10 {
            nested = Value::from(nested.to_string());
        }
        assert!(parse(&nested.to_string()).is_err());
    }
}
