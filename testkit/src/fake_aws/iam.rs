//! IAM's `SimulatePrincipalPolicy`, emulated from configured policies: a
//! role's identity statements, its permissions boundary and the
//! organisation's SCPs; and `SimulateCustomPolicy`, which judges the policy
//! document it is sent (`PolicyInputList.member.1`, the JSON an EKS Pod
//! Identity association's session policy is) on its own. Each with `Allow` and `Deny`, IAM's `*` and `?` in
//! actions and resources, and an optional `StringEquals` condition on one
//! key, judged against the request's `ContextEntries` (a key with no value
//! makes the statement not apply, and is named in `MissingContextValues`,
//! as IAM does). An explicit deny anywhere wins; each layer that is present
//! must allow. Requests must be SigV4-signed for `iam` with a session the
//! stand-in issued, as IAM requires.
//!
//! Answers have IAM's current shape: one `EvaluationResult` per action,
//! its top-level decision the most restrictive across the resources asked
//! about, and a `ResourceSpecificResult` per resource; or, after
//! [`FakeAws::iam_per_pair_answers`], the older shape of one result per
//! action and resource. Pages follow `MaxItems` and `Marker` (or
//! [`FakeAws::iam_page_size`], smaller).

use std::collections::{HashMap, VecDeque};

use super::{error, xml_escape, FakeAws};
use crate::http::{response, Req, Resp};

/// One statement of a policy: `Allow` or `Deny` of an action pattern on a
/// resource pattern.
#[derive(Clone, Debug)]
pub struct Stmt {
    pub id: String,
    pub allow: bool,
    pub action: String,
    pub resource: String,
    /// `StringEquals` on one condition key: the key and the value.
    pub condition: Option<(String, String)>,
}

impl Stmt {
    pub fn allow(id: &str, action: &str, resource: &str) -> Self {
        Stmt {
            id: id.into(),
            allow: true,
            action: action.into(),
            resource: resource.into(),
            condition: None,
        }
    }

    /// This statement, applying only when `key` equals `value`.
    pub fn when(mut self, key: &str, value: &str) -> Self {
        self.condition = Some((key.into(), value.into()));
        self
    }

    pub fn deny(id: &str, action: &str, resource: &str) -> Self {
        Stmt {
            allow: false,
            ..Stmt::allow(id, action, resource)
        }
    }

    /// Whether the statement applies: its action and resource match, and
    /// its condition holds. A condition key without a value is pushed to
    /// `missing`, and the statement does not apply.
    fn covers(&self, ask: &Ask<'_>, missing: &mut Vec<String>) -> bool {
        let matches = glob(
            &self.action.to_ascii_lowercase(),
            &ask.action.to_ascii_lowercase(),
        ) && glob(&self.resource, ask.resource);
        match &self.condition {
            Some((key, want)) if matches => match ask.context.get(key) {
                Some(values) => values.contains(want),
                None => {
                    if !missing.contains(key) {
                        missing.push(key.clone());
                    }
                    false
                }
            },
            _ => matches,
        }
    }
}

/// One action on one resource, with the request's context values.
struct Ask<'a> {
    action: &'a str,
    resource: &'a str,
    context: &'a HashMap<String, Vec<String>>,
}

/// A fault injected into `SimulatePrincipalPolicy` answers.
#[derive(Clone, Debug)]
pub enum IamFault {
    Throttle,
    ServerError,
    /// A 200 that is not IAM's XML.
    Garbage,
}

#[derive(Default)]
pub(super) struct IamState {
    /// Role ARN -> its identity statements.
    identity: HashMap<String, Vec<Stmt>>,
    boundary: HashMap<String, Vec<Stmt>>,
    /// The organisation's SCPs, for every role when set.
    scp: Option<Vec<Stmt>>,
    /// Whether `iam:SimulatePrincipalPolicy` itself is refused.
    refuse_simulation: bool,
    /// Whether `iam:SimulateCustomPolicy` itself is refused.
    refuse_custom: bool,
    /// `SimulateCustomPolicy` requests, pages included.
    custom_calls: u64,
    /// Each `SimulateCustomPolicy` request's policy document, as sent.
    policies: Vec<String>,
    faults: VecDeque<IamFault>,
    page_size: Option<usize>,
    /// Answer in the older shape: one result per action and resource.
    per_pair: bool,
    calls: u64,
    /// Each call's `PolicySourceArn`.
    sources: Vec<String>,
}

/// Layers' verdicts on one action and resource.
struct Evaluated {
    decision: &'static str,
    matched: Vec<String>,
    boundary_allows: Option<bool>,
    organizations_allow: Option<bool>,
    missing: Vec<String>,
}

impl FakeAws {
    /// The role's identity policy (replacing any before).
    pub fn set_permissions(&self, role_arn: &str, statements: Vec<Stmt>) {
        let mut s = self.state.lock().unwrap();
        s.iam.identity.insert(role_arn.into(), statements);
    }

    /// The role's permissions boundary.
    pub fn set_boundary(&self, role_arn: &str, statements: Vec<Stmt>) {
        let mut s = self.state.lock().unwrap();
        s.iam.boundary.insert(role_arn.into(), statements);
    }

    /// The organisation's SCPs, applied to every role.
    pub fn set_scp(&self, statements: Vec<Stmt>) {
        self.state.lock().unwrap().iam.scp = Some(statements);
    }

    /// Refuse `iam:SimulatePrincipalPolicy` itself with AccessDenied.
    pub fn refuse_simulation(&self) {
        self.state.lock().unwrap().iam.refuse_simulation = true;
    }

    /// Refuse `iam:SimulateCustomPolicy` itself with AccessDenied.
    pub fn refuse_custom_simulation(&self) {
        self.state.lock().unwrap().iam.refuse_custom = true;
    }

    /// `SimulateCustomPolicy` requests received, pages included.
    pub fn simulate_custom_calls(&self) -> u64 {
        self.state.lock().unwrap().iam.custom_calls
    }

    /// Each `SimulateCustomPolicy` request's policy document, as sent.
    pub fn simulated_policies(&self) -> Vec<String> {
        self.state.lock().unwrap().iam.policies.clone()
    }

    /// The next `n` simulation requests (either operation) get `fault`.
    pub fn fail_iam_next(&self, n: usize, fault: IamFault) {
        let mut s = self.state.lock().unwrap();
        s.iam.faults.extend(std::iter::repeat_n(fault, n));
    }

    /// Answers in IAM's older shape, one result per action and resource.
    pub fn iam_per_pair_answers(&self) {
        self.state.lock().unwrap().iam.per_pair = true;
    }

    /// At most `n` results per page, whatever `MaxItems` asks.
    pub fn iam_page_size(&self, n: usize) {
        self.state.lock().unwrap().iam.page_size = Some(n);
    }

    /// `SimulatePrincipalPolicy` requests received, pages included.
    pub fn simulate_calls(&self) -> u64 {
        self.state.lock().unwrap().iam.calls
    }

    /// Each request's `PolicySourceArn`.
    pub fn simulated_sources(&self) -> Vec<String> {
        self.state.lock().unwrap().iam.sources.clone()
    }

    pub(super) fn simulate(&self, req: &Req, form: &HashMap<String, String>) -> Resp {
        let fault = {
            let mut s = self.state.lock().unwrap();
            s.iam.calls += 1;
            s.iam
                .sources
                .push(form.get("PolicySourceArn").cloned().unwrap_or_default());
            s.iam.faults.pop_front()
        };
        let caller = match self.caller_unless_faulted(fault, req) {
            Ok(caller) => caller,
            Err(resp) => return *resp,
        };
        let source = form.get("PolicySourceArn").cloned().unwrap_or_default();
        let s = self.state.lock().unwrap();
        if s.iam.refuse_simulation {
            return error(
                403,
                "AccessDenied",
                &format!(
                    "User: {caller} is not authorized to perform: iam:SimulatePrincipalPolicy on \
                     resource: {source} because no identity-based policy allows the \
                     iam:SimulatePrincipalPolicy action"
                ),
            );
        }
        if !s.roles.contains_key(&source) && !s.iam.identity.contains_key(&source) {
            let name = source.rsplit('/').next().unwrap_or_default();
            return error(
                404,
                "NoSuchEntity",
                &format!("The role with name {name} cannot be found."),
            );
        }
        let layers = Layers {
            identity: s.iam.identity.get(&source).map_or(&[], Vec::as_slice),
            boundary: s.iam.boundary.get(&source),
            scp: s.iam.scp.as_ref(),
        };
        s.iam.answer("SimulatePrincipalPolicy", &layers, form)
    }

    /// The injected fault's answer, else the caller of a request signed
    /// with a session the stand-in issued, else IAM's refusal.
    fn caller_unless_faulted(
        &self,
        fault: Option<IamFault>,
        req: &Req,
    ) -> Result<String, Box<Resp>> {
        match fault {
            Some(IamFault::Throttle) => Err(Box::new(error(400, "Throttling", "Rate exceeded"))),
            Some(IamFault::ServerError) => Err(Box::new(error(
                500,
                "ServiceFailure",
                "An internal error occurred",
            ))),
            Some(IamFault::Garbage) => Err(Box::new(response(200, "text/plain", "not xml {"))),
            None => self.signed_by_a_session(req, "iam"),
        }
    }

    /// `SimulateCustomPolicy`: the policy document sent, judged alone (no
    /// boundary, no SCP), its statements named `PolicyInputList.1` as IAM
    /// names them. A document this stand-in cannot read is
    /// `MalformedPolicyDocument`, as IAM answers.
    pub(super) fn simulate_custom(&self, req: &Req, form: &HashMap<String, String>) -> Resp {
        let policy = form
            .get("PolicyInputList.member.1")
            .cloned()
            .unwrap_or_default();
        let fault = {
            let mut s = self.state.lock().unwrap();
            s.iam.custom_calls += 1;
            s.iam.policies.push(policy.clone());
            s.iam.faults.pop_front()
        };
        let caller = match self.caller_unless_faulted(fault, req) {
            Ok(caller) => caller,
            Err(resp) => return *resp,
        };
        let s = self.state.lock().unwrap();
        if s.iam.refuse_custom {
            return error(
                403,
                "AccessDenied",
                &format!(
                    "User: {caller} is not authorized to perform: iam:SimulateCustomPolicy \
                     because no identity-based policy allows the iam:SimulateCustomPolicy action"
                ),
            );
        }
        let statements = match parse_policy(&policy) {
            Ok(statements) => statements,
            Err(why) => return error(400, "MalformedPolicyDocument", &why),
        };
        let layers = Layers {
            identity: &statements,
            boundary: None,
            scp: None,
        };
        s.iam.answer("SimulateCustomPolicy", &layers, form)
    }
}

/// The policies one simulation judges.
struct Layers<'a> {
    identity: &'a [Stmt],
    boundary: Option<&'a Vec<Stmt>>,
    scp: Option<&'a Vec<Stmt>>,
}

impl IamState {
    /// One page of `operation`'s answer for `layers`, as the request's
    /// `ActionNames`, `ResourceArns`, `ContextEntries`, `MaxItems` and
    /// `Marker` ask.
    fn answer(&self, operation: &str, layers: &Layers<'_>, form: &HashMap<String, String>) -> Resp {
        let context = context_entries(form);
        let actions = members(form, "ActionNames");
        let mut resources = members(form, "ResourceArns");
        if resources.is_empty() {
            resources.push("*".into());
        }
        let max = form
            .get("MaxItems")
            .and_then(|m| m.parse::<usize>().ok())
            .unwrap_or(100);
        let page = self.page_size.map_or(max, |p| p.min(max)).max(1);
        let start = form
            .get("Marker")
            .and_then(|m| m.parse::<usize>().ok())
            .unwrap_or(0);
        let end = (start + page).min(actions.len());
        let mut members_xml = String::new();
        for action in &actions[start.min(end)..end] {
            members_xml.push_str(&self.result_xml(layers, action, &resources, &context));
        }
        let truncated = end < actions.len();
        let marker = if truncated {
            format!("<Marker>{end}</Marker>")
        } else {
            String::new()
        };
        response(
            200,
            "text/xml",
            format!(
                r#"<{operation}Response xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <{operation}Result>
    <IsTruncated>{truncated}</IsTruncated>{marker}
    <EvaluationResults>{members_xml}</EvaluationResults>
  </{operation}Result>
  <ResponseMetadata><RequestId>req-simulate-0001</RequestId></ResponseMetadata>
</{operation}Response>"#
            ),
        )
    }

    fn evaluate(&self, layers: &Layers<'_>, ask: &Ask<'_>) -> Evaluated {
        let mut missing = vec![];
        let mut layer = |stmts: &[Stmt]| -> (Option<String>, Vec<String>) {
            let hits: Vec<&Stmt> = stmts
                .iter()
                .filter(|s| s.covers(ask, &mut missing))
                .collect();
            let deny = hits.iter().find(|s| !s.allow).map(|s| s.id.clone());
            let allows = hits
                .iter()
                .filter(|s| s.allow)
                .map(|s| s.id.clone())
                .collect();
            (deny, allows)
        };
        let (deny, allows) = layer(layers.identity);
        let mut judge = |stmts: Option<&Vec<Stmt>>| match stmts {
            Some(stmts) => {
                let (deny, allows) = layer(stmts);
                let allowed = deny.is_none() && !allows.is_empty();
                (deny, Some(allowed))
            }
            None => (None, None),
        };
        let (boundary_deny, boundary_allows) = judge(layers.boundary);
        let (scp_deny, organizations_allow) = judge(layers.scp);
        let (decision, matched) = if let Some(d) = deny.or(boundary_deny).or(scp_deny) {
            ("explicitDeny", vec![d])
        } else if allows.is_empty()
            || boundary_allows == Some(false)
            || organizations_allow == Some(false)
        {
            ("implicitDeny", vec![])
        } else {
            ("allowed", allows)
        };
        Evaluated {
            decision,
            matched,
            boundary_allows,
            organizations_allow,
            missing,
        }
    }

    fn result_xml(
        &self,
        layers: &Layers<'_>,
        action: &str,
        resources: &[String],
        context: &HashMap<String, Vec<String>>,
    ) -> String {
        let mut specific = String::new();
        let mut pairs = String::new();
        let mut worst = "allowed";
        let mut organizations = None;
        for resource in resources {
            let ask = Ask {
                action,
                resource,
                context,
            };
            let e = self.evaluate(layers, &ask);
            worst = match (worst, e.decision) {
                (_, "explicitDeny") | ("explicitDeny", _) => "explicitDeny",
                (_, "implicitDeny") | ("implicitDeny", _) => "implicitDeny",
                _ => "allowed",
            };
            organizations = organizations.or(e.organizations_allow);
            let common = format!(
                "<MatchedStatements>{}</MatchedStatements><MissingContextValues>{}</MissingContextValues>{}",
                statements_xml(&e.matched),
                missing_xml(&e.missing),
                boundary_xml(e.boundary_allows),
            );
            specific.push_str(&format!(
                "<member><EvalResourceName>{}</EvalResourceName><EvalResourceDecision>{}</EvalResourceDecision>{common}</member>",
                xml_escape(resource),
                e.decision,
            ));
            pairs.push_str(&format!(
                "<member><EvalActionName>{}</EvalActionName><EvalResourceName>{}</EvalResourceName><EvalDecision>{}</EvalDecision>{common}{}</member>",
                xml_escape(action),
                xml_escape(resource),
                e.decision,
                organizations_xml(e.organizations_allow),
            ));
        }
        if self.per_pair {
            return pairs;
        }
        format!(
            "<member><EvalActionName>{}</EvalActionName><EvalResourceName>*</EvalResourceName><EvalDecision>{worst}</EvalDecision><MatchedStatements/><MissingContextValues/>{}<ResourceSpecificResults>{specific}</ResourceSpecificResults></member>",
            xml_escape(action),
            organizations_xml(organizations),
        )
    }
}

fn organizations_xml(allowed: Option<bool>) -> String {
    allowed.map_or(String::new(), |allowed| {
        format!("<OrganizationsDecisionDetail><AllowedByOrganizations>{allowed}</AllowedByOrganizations></OrganizationsDecisionDetail>")
    })
}

fn missing_xml(keys: &[String]) -> String {
    keys.iter()
        .map(|k| format!("<member>{}</member>", xml_escape(k)))
        .collect()
}

/// `ContextEntries.member.N.ContextKeyName` and its
/// `ContextKeyValues.member.M`, by key.
fn context_entries(form: &HashMap<String, String>) -> HashMap<String, Vec<String>> {
    let mut out = HashMap::new();
    for i in 1.. {
        let Some(key) = form.get(&format!("ContextEntries.member.{i}.ContextKeyName")) else {
            break;
        };
        let values = members(form, &format!("ContextEntries.member.{i}.ContextKeyValues"));
        out.insert(key.clone(), values);
    }
    out
}

fn statements_xml(ids: &[String]) -> String {
    ids.iter()
        .map(|id| {
            format!(
                "<member><SourcePolicyId>{}</SourcePolicyId><SourcePolicyType>IAM Policy</SourcePolicyType></member>",
                xml_escape(id)
            )
        })
        .collect()
}

fn boundary_xml(allowed: Option<bool>) -> String {
    allowed.map_or(String::new(), |a| {
        format!("<PermissionsBoundaryDecisionDetail><AllowedByPermissionsBoundary>{a}</AllowedByPermissionsBoundary></PermissionsBoundaryDecisionDetail>")
    })
}

/// A policy document's statements, as this stand-in reads them: `Effect`,
/// `Action` and `Resource` (a string or a list; no `Resource` is `*`), and
/// at most a `StringEquals` on one key. `NotAction` and `NotResource` are
/// refused rather than misjudged.
fn parse_policy(text: &str) -> Result<Vec<Stmt>, String> {
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("Syntax errors in policy: {e}"))?;
    let statements = match &doc["Statement"] {
        serde_json::Value::Array(list) => list.clone(),
        one @ serde_json::Value::Object(_) => vec![one.clone()],
        _ => return Err("Policy has no Statement".into()),
    };
    let strings = |v: &serde_json::Value| -> Vec<String> {
        match v {
            serde_json::Value::String(one) => vec![one.clone()],
            serde_json::Value::Array(list) => list
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => vec![],
        }
    };
    let mut out = vec![];
    for st in &statements {
        if st.get("NotAction").is_some() || st.get("NotResource").is_some() {
            return Err("the stand-in does not evaluate NotAction or NotResource".into());
        }
        let allow = match st["Effect"].as_str() {
            Some("Allow") => true,
            Some("Deny") => false,
            _ => return Err("Statement has no valid Effect".into()),
        };
        let condition = st["Condition"]["StringEquals"]
            .as_object()
            .and_then(|c| c.iter().next())
            .and_then(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())));
        let mut resources = strings(&st["Resource"]);
        if resources.is_empty() {
            resources.push("*".into());
        }
        for action in strings(&st["Action"]) {
            for resource in &resources {
                let mut stmt = Stmt::allow("PolicyInputList.1", &action, resource);
                stmt.allow = allow;
                stmt.condition = condition.clone();
                out.push(stmt);
            }
        }
    }
    Ok(out)
}

/// `NAME.member.1`, `NAME.member.2`, ... in order.
fn members(form: &HashMap<String, String>, name: &str) -> Vec<String> {
    (1..)
        .map_while(|i| form.get(&format!("{name}.member.{i}")).cloned())
        .collect()
}

/// IAM's wildcard match: `*` any run, `?` any one character.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs_match_as_iam_does() {
        assert!(glob("arn:aws:s3:::orders/*", "arn:aws:s3:::orders/a/b"));
        assert!(glob("s3:get*", "s3:getobject"));
        assert!(glob("*", "anything"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("arn:aws:s3:::orders/*", "arn:aws:s3:::other/a"));
        assert!(!glob("a?c", "ac"));
    }
}
