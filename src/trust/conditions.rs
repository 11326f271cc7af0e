//! A statement's conditions, judged as IAM does: the string operators with
//! their `IgnoreCase`, `IfExists`, `ForAnyValue:` and `ForAllValues:`
//! forms, the ARN operators, and `Null`; IAM's wildcards. Values under one key are OR; keys
//! and operators are AND (the caller asks each condition in turn). Any
//! other operator is not evaluated, never guessed. Says which condition
//! failed and on what value; `reasons` puts that into words.

use super::request::Request;

/// One operator, key and its values, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub operator: String,
    pub key: String,
    pub values: Vec<String>,
}

/// A condition operator, taken apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Operator {
    pub set: Option<SetQualifier>,
    pub base: Base,
    pub negated: bool,
    pub ignore_case: bool,
    pub if_exists: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SetQualifier {
    AnyValue,
    AllValues,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Base {
    Equals,
    Like,
    /// The ARN operators: IAM splits both ARNs into their six
    /// colon-separated components and matches each on its own.
    Arn,
    Null,
}

/// Why a condition does not hold.
pub(super) enum Unmet<'r> {
    /// An operator irsa-doctor does not evaluate (`Bool`, dates, ...).
    UnknownOperator,
    /// The operator, and the request's values for the key (`None`: the
    /// request has no such key).
    Failed {
        op: Operator,
        found: Option<&'r [String]>,
    },
}

// IAM's wildcards, shared with the session policy's own reading.
pub use crate::identity::wildcard::glob;

/// IAM's ARN operators: both ARNs are split into their six
/// colon-separated components (`arn`, partition, service, region, account,
/// resource; the resource keeps any further colons) and each pattern
/// component is matched, with wildcards, against its own component only, so
/// a `*` never crosses a `:` and `arn:aws:iam::*` (four components) matches
/// no role ARN. Case-sensitive, as IAM documents.
pub fn arn_matches(pattern: &str, arn: &str) -> bool {
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let a: Vec<&str> = arn.splitn(6, ':').collect();
    p.len() == 6 && a.len() == 6 && p.iter().zip(&a).all(|(p, a)| glob(p, a, false))
}

pub(super) fn operator(name: &str) -> Option<Operator> {
    // `get`, not indexing: the operator's name is the policy author's, and
    // may put a multi-byte character where the prefix would end.
    let strip = |s: &'static str, text: &str| -> Option<String> {
        let (head, tail) = (text.get(..s.len())?, text.get(s.len()..)?);
        head.eq_ignore_ascii_case(s).then(|| tail.to_owned())
    };
    let (set, rest) = match (strip("ForAnyValue:", name), strip("ForAllValues:", name)) {
        (Some(rest), _) => (Some(SetQualifier::AnyValue), rest),
        (_, Some(rest)) => (Some(SetQualifier::AllValues), rest),
        _ => (None, name.to_owned()),
    };
    let lower = rest.to_ascii_lowercase();
    let (base, if_exists) = match lower.strip_suffix("ifexists") {
        Some(base) => (base.to_owned(), true),
        None => (lower, false),
    };
    let (base, negated, ignore_case) = match base.as_str() {
        "stringequals" => (Base::Equals, false, false),
        "stringnotequals" => (Base::Equals, true, false),
        "stringequalsignorecase" => (Base::Equals, false, true),
        "stringnotequalsignorecase" => (Base::Equals, true, true),
        "stringlike" => (Base::Like, false, false),
        "stringnotlike" => (Base::Like, true, false),
        // IAM's ARN operators take wildcards, both of them, and match
        // case-sensitively (`aws:PrincipalArn` in a target role's trust).
        "arnequals" | "arnlike" => (Base::Arn, false, false),
        "arnnotequals" | "arnnotlike" => (Base::Arn, true, false),
        "null" if !if_exists && set.is_none() => (Base::Null, false, false),
        _ => return None,
    };
    Some(Operator {
        set,
        base,
        negated,
        ignore_case,
        if_exists,
    })
}

/// Whether `c` holds for `request`; a condition on a key the request
/// assumes holds.
pub(super) fn holds<'r>(c: &Condition, request: &'r Request) -> Result<(), Unmet<'r>> {
    let Some(op) = operator(&c.operator) else {
        return Err(Unmet::UnknownOperator);
    };
    if request.assumes(&c.key) {
        return Ok(());
    }
    let found = request.get(&c.key);
    let holds = match op.base {
        Base::Null => {
            let want_absent = c.values.iter().any(|v| v.eq_ignore_ascii_case("true"));
            found.is_some() != want_absent
        }
        _ => string_holds(op, &c.values, found),
    };
    if holds {
        Ok(())
    } else {
        Err(Unmet::Failed { op, found })
    }
}

fn string_holds(op: Operator, values: &[String], found: Option<&[String]>) -> bool {
    let one = |v: &String| {
        values.iter().any(|p| match op.base {
            Base::Like => glob(p, v, false),
            Base::Arn => arn_matches(p, v),
            _ if op.ignore_case => p.eq_ignore_ascii_case(v),
            _ => p == v,
        })
    };
    let Some(found) = found else {
        return op.if_exists
            || match op.set {
                Some(SetQualifier::AllValues) => true,
                Some(SetQualifier::AnyValue) => false,
                None => op.negated,
            };
    };
    match op.set {
        Some(SetQualifier::AllValues) => found.iter().all(|v| one(v) != op.negated),
        Some(SetQualifier::AnyValue) => found.iter().any(|v| one(v) != op.negated),
        None => found.iter().any(one) != op.negated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `trust_policy` fuzz target: an operator name with a
    /// multi-byte character where `ForAnyValue:` would end panicked.
    #[test]
    fn an_operator_name_with_a_multi_byte_character_is_unknown_not_a_panic() {
        assert_eq!(operator("FyAnoVralNu%\u{fffd}eRolws:ue:StringLike"), None);
        assert_eq!(operator("ForAnyValu\u{e9}:StringLike"), None);
        assert!(operator("forAnyValue:stringlike").is_some());
    }

    #[test]
    fn glob_follows_iam_wildcards() {
        assert!(glob(
            "system:serviceaccount:shop:*",
            "system:serviceaccount:shop:cart",
            false
        ));
        assert!(glob("a?c", "abc", false));
        assert!(!glob("a?c", "ac", false));
        assert!(glob("*", "", false));
        assert!(glob("sts:*", "STS:AssumeRole", true));
        assert!(!glob("sts:*", "STS:AssumeRole", false));
        assert!(!glob("a*b*c", "aXbY", false));
        assert!(glob("a*b*c", "aXbYc", false));
        // A pattern full of stars against a long text stays quick.
        assert!(!glob(&"*a".repeat(50), &"a".repeat(40), false));
    }

    #[test]
    fn operators_are_taken_apart() {
        let op = operator("ForAllValues:StringNotEqualsIgnoreCaseIfExists").unwrap();
        assert_eq!(op.set, Some(SetQualifier::AllValues));
        assert!(op.negated && op.ignore_case && op.if_exists);
        assert_eq!(operator("StringLike").unwrap().base, Base::Like);
        assert_eq!(operator("Null").unwrap().base, Base::Null);
        assert_eq!(operator("ArnLike").unwrap().base, Base::Arn);
        assert_eq!(operator("ArnEquals").unwrap().base, Base::Arn);
        assert!(operator("ArnNotEquals").unwrap().negated);
        assert!(operator("Bool").is_none());
        assert!(operator("StringLikeIgnoreCase").is_none());
    }

    const ROLE: &str = "arn:aws:iam::111122223333:role/eks/target";

    /// False pass: a whole-string glob let `arn:aws:*` (three components)
    /// and `arn:aws:iam::*` (four) match a role ARN; IAM does not.
    #[test]
    fn an_arn_pattern_with_fewer_components_matches_no_role() {
        assert!(!arn_matches("arn:aws:*", ROLE));
        assert!(!arn_matches("arn:aws:iam::*", ROLE));
        assert!(!arn_matches("arn:*", ROLE));
        // A `*` in the account does not swallow the resource's colon-free
        // text across the `:` either.
        assert!(!arn_matches("arn:aws:iam::*role/eks/target", ROLE));
        assert!(!arn_matches("arn:aws:iam::111122223333:role/other", ROLE));
        assert!(!arn_matches(
            "arn:aws:IAM::111122223333:role/eks/target",
            ROLE
        ));
    }

    /// False fail guard: per-component wildcards, and a resource that
    /// carries colons of its own, match as IAM matches them.
    #[test]
    fn an_arn_pattern_matches_component_by_component() {
        assert!(arn_matches("arn:aws:iam::*:role/eks/target", ROLE));
        assert!(arn_matches("arn:*:iam::111122223333:role/*", ROLE));
        assert!(arn_matches("arn:aws:iam:*:*:*", ROLE));
        assert!(arn_matches(ROLE, ROLE));
        assert!(arn_matches(
            "arn:aws:iam::111122223333:role/eks/t?rget",
            ROLE
        ));
        assert!(arn_matches(
            "arn:aws:sns:*:1:topic:*",
            "arn:aws:sns:eu-west-1:1:topic:sub"
        ));
        assert!(!arn_matches(ROLE, "not-an-arn"));
    }

    fn arn_condition(operator: &str, value: &str) -> Condition {
        Condition {
            operator: operator.to_owned(),
            key: "aws:PrincipalArn".to_owned(),
            values: vec![value.to_owned()],
        }
    }

    /// False pass: `ArnLike`/`ArnEquals` on `arn:aws:iam::*` held for a
    /// role under the whole-string match; IAM's per-component one fails.
    #[test]
    fn arn_like_on_a_short_pattern_does_not_hold() {
        let request = Request::target_hop(ROLE, None, None);
        let holds = |op: &str, v: &str| holds(&arn_condition(op, v), &request).is_ok();
        assert!(!holds("ArnLike", "arn:aws:iam::*"));
        assert!(!holds("ArnEquals", "arn:aws:*"));
        assert!(holds("ArnLike", "arn:aws:iam::*:role/eks/*"));
    }

    /// False fail: `ArnNotLike` on `arn:aws:iam::*` failed for a role under
    /// the whole-string match (it "matched"); per component it matches no
    /// role, so the negation holds.
    #[test]
    fn arn_not_like_on_a_short_pattern_holds() {
        let request = Request::target_hop(ROLE, None, None);
        let holds = |op: &str, v: &str| holds(&arn_condition(op, v), &request).is_ok();
        assert!(holds("ArnNotLike", "arn:aws:iam::*"));
        assert!(holds("ArnNotEquals", "arn:*"));
        assert!(!holds("ArnNotEquals", "arn:aws:iam::*:role/eks/*"));
    }
}
