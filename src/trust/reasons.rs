//! Trust-policy evaluation, offline: does this role's trust policy let
//! this pod in, and if not, which statement and condition refuse it, on
//! what value. Pure: the policy's text and the request in, an
//! [`Evaluation`] out; no I/O, no clock. `explain` and the trust findings
//! of `check` use it.
//!
//! The IAM semantics trust policies actually use: `Effect` (an explicit
//! `Deny` wins), `Principal`/`NotPrincipal` (`Federated`, `Service`, `*`),
//! `Action`/`NotAction` with wildcards, and the string condition
//! operators with their `IgnoreCase`, `IfExists`, `ForAnyValue:` and
//! `ForAllValues:` forms, and `Null`. Values under one key are OR; keys and
//! operators are AND. Anything else (`ArnLike`, `Bool`, policy variables)
//! is reported as not evaluated, never guessed.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::redact::one_line;

/// The most bytes of policy input read: IAM's trust policies are at most
/// 4096 characters, and `aws iam get-role` wraps one in a few KiB more.
pub const MAX_POLICY_BYTES: usize = 64 * 1024;

/// EKS Pod Identity's service principal.
pub const POD_IDENTITY_SERVICE: &str = "pods.eks.amazonaws.com";

/// IRSA's action.
pub const WEB_IDENTITY_ACTION: &str = "sts:AssumeRoleWithWebIdentity";

/// EKS Pod Identity's actions: both are needed, since EKS tags the session.
pub const POD_IDENTITY_ACTIONS: [&str; 2] = ["sts:AssumeRole", "sts:TagSession"];

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

/// One operator, key and its values, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub operator: String,
    pub key: String,
    pub values: Vec<String>,
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

/// A value from the policy or the request as a reason or an error quotes
/// it: one line, at most `redact::MAX_MESSAGE_CHARS` characters, no
/// secret, the way peers' text is shown. A policy's strings may hold line
/// breaks and terminal escapes; the evaluation uses them as written, only
/// the sentences about them are cleaned.
fn shown(text: &str) -> String {
    one_line(text.to_owned())
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

/// Who asks, for what, with which context keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Request {
    /// `irsa` or `pod-identity`.
    pub mechanism: &'static str,
    /// The principal type (`Federated`, `Service`) and value.
    pub principal_type: &'static str,
    pub principal: String,
    /// Each must be allowed.
    pub actions: Vec<String>,
    /// Context keys as IAM names them, with their values; a key absent
    /// here is absent from the request.
    pub context: BTreeMap<String, Vec<String>>,
    /// Keys whose value is not known here (a pod does not know its
    /// cluster's name): conditions on them are assumed to hold, and the
    /// evaluation says so.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub assumed: Vec<String>,
}

/// The IAM OIDC provider's name for an issuer: `HOST/PATH`.
pub fn provider_of(iss: &str) -> String {
    let host = iss.trim().trim_start_matches("https://");
    host.trim_end_matches('/').to_owned()
}

impl Request {
    /// IRSA: the role's partition and account name the provider ARN.
    pub fn web_identity(
        partition: &str,
        account: &str,
        iss: &str,
        sub: Option<&str>,
        aud: &[String],
    ) -> Request {
        let provider = provider_of(iss);
        let mut context = BTreeMap::new();
        if let Some(sub) = sub {
            context.insert(format!("{provider}:sub"), vec![sub.to_owned()]);
        }
        if !aud.is_empty() {
            context.insert(format!("{provider}:aud"), aud.to_vec());
        }
        Request {
            mechanism: "irsa",
            principal_type: "Federated",
            principal: format!("arn:{partition}:iam::{account}:oidc-provider/{provider}"),
            actions: vec![WEB_IDENTITY_ACTION.to_owned()],
            context,
            assumed: vec![],
        }
    }

    /// EKS Pod Identity: EKS asks, with the session tags (name, value) as
    /// `aws:RequestTag/...` and their names as `aws:TagKeys`.
    pub fn pod_identity(tags: &[(&str, &str)]) -> Request {
        let mut context = BTreeMap::new();
        for (name, value) in tags {
            context.insert(format!("aws:RequestTag/{name}"), vec![(*value).to_owned()]);
        }
        let keys: Vec<String> = tags.iter().map(|(name, _)| (*name).to_owned()).collect();
        if !keys.is_empty() {
            context.insert("aws:TagKeys".to_owned(), keys);
        }
        Request {
            mechanism: "pod-identity",
            principal_type: "Service",
            principal: POD_IDENTITY_SERVICE.to_owned(),
            actions: POD_IDENTITY_ACTIONS.map(str::to_owned).to_vec(),
            context,
            assumed: vec![],
        }
    }

    /// A context key's values; IAM's key names ignore case.
    fn get(&self, key: &str) -> Option<&[String]> {
        self.context
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_slice())
    }

    /// The OIDC provider's `HOST/PATH`, for IRSA.
    fn provider(&self) -> Option<&str> {
        self.principal.split_once(":oidc-provider/").map(|(_, p)| p)
    }

    fn account(&self) -> Option<&str> {
        self.principal.split(':').nth(4)
    }
}

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

/// The verdict on a request, statement by statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    pub allowed: bool,
    /// Why it is denied, in one sentence; `None` when allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub statements: Vec<StatementResult>,
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
        return Some(format!(
            "{} (Deny) matches this request, and an explicit Deny wins over any Allow",
            name(deny)
        ));
    }
    let allows = |action: &String| {
        results
            .iter()
            .any(|r| r.matched && r.effect == Effect::Allow && r.actions.contains(action))
    };
    let missing: Vec<&String> = request.actions.iter().filter(|a| !allows(a)).collect();
    let first = missing.first()?;
    let covered_elsewhere = request.actions.len() > missing.len();
    if covered_elsewhere {
        return Some(format!(
            "no statement allows {}, which {} needs as well as {}",
            join(&missing),
            mechanism_name(request),
            join(
                &request
                    .actions
                    .iter()
                    .filter(|a| allows(a))
                    .collect::<Vec<_>>()
            ),
        ));
    }
    let why = results
        .iter()
        .filter(|r| r.effect == Effect::Allow)
        .find_map(|r| r.reason.as_ref().map(|why| format!("{}: {why}", name(r))));
    Some(match why {
        Some(why) => format!("no statement allows {first}; {why}"),
        None => format!("no statement allows {first}: the policy has no Allow statement"),
    })
}

fn mechanism_name(request: &Request) -> &'static str {
    match request.mechanism {
        "pod-identity" => "EKS Pod Identity",
        _ => "IRSA",
    }
}

fn join(items: &[&String]) -> String {
    items
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" and ")
}

/// "statement 2" or "statement 2 (Sid Foo)".
fn name(r: &StatementResult) -> String {
    match &r.sid {
        Some(sid) if !sid.is_empty() => format!("statement {} ({sid})", r.index),
        _ => format!("statement {}", r.index),
    }
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
                condition_holds(c, request)?;
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
                result.reason = Some(format!(
                    "it covers {} but not {}, which {} also needs",
                    join(&actions.iter().collect::<Vec<_>>()),
                    join(&left_out),
                    mechanism_name(request)
                ));
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
        }),
    }
}

fn principal_matches(s: &Statement, request: &Request) -> Result<(), String> {
    if let Some(not) = &s.not_principal {
        return if principal_listed(not, request) {
            Err(format!(
                "its NotPrincipal excludes {} {}",
                request.principal_type,
                shown(&request.principal)
            ))
        } else {
            Ok(())
        };
    }
    match &s.principal {
        None => Err("it has no Principal".into()),
        Some(p) if principal_listed(p, request) => Ok(()),
        Some(Principals::Any) => Ok(()),
        Some(Principals::Typed(map)) => Err(principal_mismatch(map, request)),
    }
}

/// The most telling reason a typed principal is not this request's.
fn principal_mismatch(map: &BTreeMap<String, Vec<String>>, request: &Request) -> String {
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
    let wanted = join(&request.actions.iter().collect::<Vec<_>>());
    Err(match (&s.action, &s.not_action) {
        (None, None) => format!("it has no Action; it needs {wanted}"),
        (Some(list), _) => format!(
            "its Action {} does not include {wanted}",
            shown(&list.join(", "))
        ),
        (None, Some(not)) => format!("its NotAction {} excludes {wanted}", shown(&not.join(", "))),
    })
}

/// IAM's wildcards: `*` any run of characters, `?` any one.
pub fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let fold = |c: char| {
        if ignore_case {
            c.to_ascii_lowercase()
        } else {
            c
        }
    };
    let p: Vec<char> = pattern.chars().map(fold).collect();
    let t: Vec<char> = text.chars().map(fold).collect();
    // Iterative matching with one backtrack point: linear in practice,
    // never exponential on a pattern full of stars.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A condition operator, taken apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Operator {
    set: Option<SetQualifier>,
    base: Base,
    negated: bool,
    ignore_case: bool,
    if_exists: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetQualifier {
    AnyValue,
    AllValues,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    Equals,
    Like,
    Null,
}

fn operator(name: &str) -> Option<Operator> {
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

fn condition_holds(c: &Condition, request: &Request) -> Result<(), String> {
    let Some(op) = operator(&c.operator) else {
        return Err(format!(
            "its condition operator {} is not one irsa-doctor evaluates (string operators and \
             Null only), so this statement was not counted as matching",
            shown(&c.operator)
        ));
    };
    if request
        .assumed
        .iter()
        .any(|k| k.eq_ignore_ascii_case(&c.key))
    {
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
        Err(condition_failure(c, op, found, request))
    }
}

fn string_holds(op: Operator, values: &[String], found: Option<&[String]>) -> bool {
    let one = |v: &String| {
        values.iter().any(|p| match op.base {
            Base::Like => glob(p, v, false),
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
    let hint = value_hint(c, op, found, request)
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
    if lower.starts_with("aws:requesttag/") {
        return "the request has no such session tag".to_owned();
    }
    "this request has no value for it (irsa-doctor knows the token's sub and aud, and Pod \
     Identity's session tags)"
        .to_owned()
}

/// The known mistakes behind a value that did not match.
fn value_hint(c: &Condition, op: Operator, found: &[String], request: &Request) -> Option<String> {
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
    if lower.ends_with(":aud") && c.values.iter().any(|v| v == "sts.amazon.com") {
        return Some("sts.amazon.com is a typo for sts.amazonaws.com".to_owned());
    }
    if lower.ends_with(":sub") {
        return subject_hint(&c.values, found);
    }
    let tag = lower.strip_prefix("aws:requesttag/")?;
    let _ = request;
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

/// The statement that admits exactly this request.
pub fn corrected_statement(request: &Request) -> Value {
    let mut conditions = Map::new();
    let wanted: Vec<(&String, &Vec<String>)> = match request.mechanism {
        "pod-identity" => request
            .context
            .iter()
            .filter(|(k, _)| {
                k.ends_with("/eks-cluster-arn")
                    || k.ends_with("/kubernetes-namespace")
                    || k.ends_with("/kubernetes-service-account")
            })
            .collect(),
        _ => request.context.iter().collect(),
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
    let allows_all = request.actions.iter().all(|a| {
        eval.statements
            .iter()
            .any(|r| r.matched && r.effect == Effect::Allow && r.actions.contains(a))
    });
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

    /// Found by the `trust_policy` fuzz target: an operator name with a
    /// multi-byte character where `ForAnyValue:` would end panicked.
    #[test]
    fn an_operator_name_with_a_multi_byte_character_is_unknown_not_a_panic() {
        assert_eq!(operator("FyAnoVralNu%\u{fffd}eRolws:ue:StringLike"), None);
        assert_eq!(operator("ForAnyValu\u{e9}:StringLike"), None);
        assert!(operator("forAnyValue:stringlike").is_some());
    }

    /// Found by the `trust_policy` fuzz target
    /// (`fuzz/regressions/trust_policy/newline-in-an-action`): an `Action`
    /// holding a line break was quoted verbatim, so the denial's reason,
    /// which `check` prints as one finding line, spanned two.
    #[test]
    fn a_reason_quoting_an_action_with_a_line_break_is_one_line() {
        let text = include_str!("../../fuzz/regressions/trust_policy/newline-in-an-action");
        let doc = parse(text).unwrap();
        let eval = evaluate(&doc, &pod(&[("kubernetes-namespace", "shop")]));
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
                text.chars().count() < 2 * crate::redact::MAX_MESSAGE_CHARS,
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
        assert!(operator("ArnLike").is_none());
        assert!(operator("StringLikeIgnoreCase").is_none());
    }

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
        let doc = statement_with(r#"{"ArnLike":{"aws:SourceArn":"arn:aws:eks:*"}}"#);
        let eval = evaluate(&doc, &r);
        assert!(!eval.allowed);
        assert!(eval.statements[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("ArnLike is not one"));
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
