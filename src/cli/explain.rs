//! `explain`: a trust policy evaluated offline against a pod's identity.
//! This module does `explain`'s I/O (the policy from a file or stdin and
//! the token, both within bounds) and renders the evaluation; `trust`
//! decides. Nothing here talks to the network.

use std::io::{Read, Write};
use std::path::Path;

use serde::Serialize;
use serde_json::Value;
use tracing::error;

use crate::cli::config::{ExplainArgs, Output};
use crate::guard::files::read_bounded;
use crate::identity::arn::RoleArn;
use crate::identity::token::{decode_claims, read_token_file, TokenFileProblem};
use crate::report::Verdict;
use crate::trust::{self, Evaluation, Request, MAX_POLICY_BYTES};

use super::Exit;

/// Why `explain` could not evaluate anything: a usage error (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("cannot read the policy {0}: {1}")]
    PolicyUnreadable(String, String),
    #[error("the policy {0}")]
    Policy(#[from] trust::PolicyError),
    #[error("cannot use the token file {0}: {1}")]
    Token(String, String),
    #[error("{0}")]
    RoleUnknown(&'static str),
    #[error("{0}")]
    Usage(&'static str),
}

/// What `explain` found, rendered by [`render`].
#[derive(Debug, Serialize)]
pub struct Explained {
    /// `allowed` or `denied`: with a target role, denied when either hop
    /// is.
    pub verdict: &'static str,
    pub role_arn: String,
    /// With a target role: which hop denies (`association role` or
    /// `target role`), the first that does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denied_hop: Option<&'static str>,
    /// What the inputs said that the user should know (another role in
    /// the policy's `Role.Arn` than `--role-arn`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// `--target-role-arn`: the second hop, the target role's trust policy
    /// asked for the association's role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Hop>,
    pub request: Request,
    #[serde(flatten)]
    pub evaluation: Evaluation,
    /// When denied: the statement that admits exactly this request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrected_statement: Option<Value>,
    /// When denied: the policy with that statement in place and the
    /// matching Deny statements removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrected_policy: Option<Value>,
    /// When denied: the command that installs `corrected_policy`, saved as
    /// trust.json.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

/// One hop of a Pod Identity target role: the target role's trust policy
/// asked for the association's role.
#[derive(Debug, Serialize)]
pub struct Hop {
    pub role_arn: String,
    pub request: Request,
    #[serde(flatten)]
    pub evaluation: Evaluation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrected_statement: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrected_policy: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

impl Hop {
    /// `doc` evaluated for `request`, with the correction when denied.
    fn judge(role: Option<&RoleArn>, doc: &trust::Document, request: Request) -> Hop {
        let evaluation = trust::evaluate(doc, &request);
        let denied = !evaluation.allowed;
        Hop {
            role_arn: role.map(ToString::to_string).unwrap_or_default(),
            corrected_statement: denied.then(|| trust::corrected_statement(&request)),
            corrected_policy: denied.then(|| trust::corrected_document(doc, &evaluation, &request)),
            command: denied.then(|| update_command_for(role.map(|r| r.name.as_str()))),
            request,
            evaluation,
        }
    }
}

/// Reads the inputs `args` name, evaluates, and returns the result.
pub fn explain(args: &ExplainArgs) -> Result<Explained, ExplainError> {
    let text = read_policy(&args.policy)?;
    let doc = trust::parse(&text)?;
    let mut notes = vec![];
    let role = role_of(args.role_arn.as_ref(), &text, "--role-arn", &mut notes);
    if role.is_none() && !args.pod_identity {
        return Err(ExplainError::RoleUnknown(
            "--role-arn is required for IRSA (its account names the OIDC provider), unless \
             --policy is `aws iam get-role` output",
        ));
    }
    let request = request(args, role.as_ref())?;
    let first = Hop::judge(role.as_ref(), &doc, request);
    let target = target_hop(args, role.as_ref(), &mut notes)?;
    let denied_hop = match (&target, first.evaluation.allowed) {
        (Some(_), false) => Some("association role"),
        (Some(t), true) if !t.evaluation.allowed => Some("target role"),
        _ => None,
    };
    let denied = !first.evaluation.allowed || denied_hop.is_some();
    Ok(Explained {
        verdict: if denied { "denied" } else { "allowed" },
        role_arn: first.role_arn,
        denied_hop,
        notes,
        target,
        request: first.request,
        command: first.command,
        evaluation: first.evaluation,
        corrected_statement: first.corrected_statement,
        corrected_policy: first.corrected_policy,
    })
}

/// The role a policy belongs to: `Role.Arn` when the text is `aws iam
/// get-role` output (a note when `given` names another role), else
/// `given`.
fn role_of(
    given: Option<&RoleArn>,
    text: &str,
    flag: &str,
    notes: &mut Vec<String>,
) -> Option<RoleArn> {
    let in_policy = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v["Role"]["Arn"].as_str().map(str::to_owned))
        .and_then(|arn| RoleArn::parse(arn.trim()).ok());
    match (given, in_policy) {
        (Some(given), Some(found)) if !given.same_role(&found) => {
            notes.push(format!(
                "the policy given is the trust policy of {found} (its Role.Arn), not of {given} \
                 ({flag}): evaluated as {found}'s"
            ));
            Some(found)
        }
        (_, Some(found)) => Some(found),
        (given, None) => given.cloned(),
    }
}

/// The second hop, with `--target-role-arn`: the target role's trust
/// policy asked for the association's role.
fn target_hop(
    args: &ExplainArgs,
    first: Option<&RoleArn>,
    notes: &mut Vec<String>,
) -> Result<Option<Hop>, ExplainError> {
    let Some(path) = &args.target_policy else {
        return Ok(None);
    };
    if path.as_os_str() == "-" && args.policy.as_os_str() == "-" {
        // The first read took all of stdin: the second would see nothing.
        return Err(ExplainError::Usage(
            "--policy and --target-policy cannot both read stdin (-): give one of them as a file",
        ));
    }
    let Some(first) = first else {
        return Err(ExplainError::RoleUnknown(
            "--target-policy needs the association's role: give --role-arn, or --policy as \
             `aws iam get-role` output",
        ));
    };
    let text = read_policy(path)?;
    let doc = trust::parse(&text)?;
    let target = role_of(
        args.target_role_arn.as_ref(),
        &text,
        "--target-role-arn",
        notes,
    );
    let tags = tags(args);
    let request = Request::target_hop(
        &first.to_string(),
        args.session_tags.enabled().then_some(tags.as_slice()),
        args.external_id.as_deref(),
    );
    Ok(Some(Hop::judge(target.as_ref(), &doc, request)))
}

/// The command that replaces the named role's trust policy with
/// trust.json.
fn update_command_for(name: Option<&str>) -> String {
    format!(
        "aws iam update-assume-role-policy --role-name {} --policy-document file://trust.json",
        name.unwrap_or("ROLE_NAME")
    )
}

/// The session tags the flags give, by name.
fn tags(args: &ExplainArgs) -> Vec<(&'static str, &str)> {
    [
        ("eks-cluster-arn", &args.cluster_arn),
        ("eks-cluster-name", &args.cluster_name),
        ("kubernetes-namespace", &args.namespace),
        ("kubernetes-service-account", &args.service_account),
        ("kubernetes-pod-name", &args.pod_name),
        ("kubernetes-pod-uid", &args.pod_uid),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
    .collect()
}

/// The policy's text from `path`, or stdin for `-`, at most
/// [`MAX_POLICY_BYTES`] either way.
fn read_policy(path: &Path) -> Result<String, ExplainError> {
    let shown = path.display().to_string();
    let unreadable = |why: String| ExplainError::PolicyUnreadable(shown.clone(), why);
    let bytes = if path == Path::new("-") {
        let mut buf = vec![];
        std::io::stdin()
            .lock()
            .take(MAX_POLICY_BYTES as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(|e| unreadable(e.to_string()))?;
        if buf.len() > MAX_POLICY_BYTES {
            return Err(unreadable(format!(
                "stdin holds more than {MAX_POLICY_BYTES} bytes, the most irsa-doctor reads"
            )));
        }
        buf
    } else {
        read_bounded(path, MAX_POLICY_BYTES).map_err(|e| unreadable(e.describe()))?
    };
    String::from_utf8(bytes).map_err(|_| unreadable("it is not UTF-8 text".into()))
}

/// The request the flags describe: IRSA from a token or its claims, or
/// EKS Pod Identity from its session tags.
/// With session tags disabled, Pod Identity's request carries none.
fn request(args: &ExplainArgs, role: Option<&RoleArn>) -> Result<Request, ExplainError> {
    if args.pod_identity {
        if !args.session_tags.enabled() {
            return Ok(Request::pod_identity_untagged());
        }
        return Ok(Request::pod_identity(&tags(args)));
    }
    let Some(role) = role else {
        return Err(ExplainError::RoleUnknown("--role-arn is required for IRSA"));
    };
    let Some(path) = &args.token else {
        // clap requires --sub and --aud with --iss, and one of the three
        // ways; --iss is there.
        let iss = args.iss.as_deref().unwrap_or_default();
        return Ok(Request::web_identity(
            &role.partition,
            &role.account,
            iss,
            args.sub.as_deref(),
            &args.aud,
        ));
    };
    let shown = path.display().to_string();
    let token =
        read_token_file(path).map_err(|p| ExplainError::Token(shown.clone(), token_problem(&p)))?;
    let claims = decode_claims(&token)
        .map_err(|e| ExplainError::Token(shown.clone(), format!("the token {e}")))?;
    let iss = claims
        .iss
        .as_deref()
        .ok_or_else(|| ExplainError::Token(shown, "the token has no iss claim".into()))?;
    Ok(Request::web_identity(
        &role.partition,
        &role.account,
        iss,
        claims.sub.as_deref(),
        &claims.aud,
    ))
}

fn token_problem(p: &TokenFileProblem) -> String {
    match p {
        TokenFileProblem::Missing { detail, .. } => format!("it does not exist ({detail})"),
        TokenFileProblem::NotAFile { kind, .. } => {
            format!("it is {}, not a regular file", kind.describe())
        }
        TokenFileProblem::Unreadable { detail, .. } => format!("permission denied ({detail})"),
        TokenFileProblem::Malformed { detail, .. } => detail.clone(),
    }
}

/// The result as `output` asks: text for a person, or JSON.
pub fn render(e: &Explained, output: Output) -> String {
    match output {
        Output::Json => serde_json::to_string(e).unwrap_or_default() + "\n",
        Output::JsonPretty => serde_json::to_string_pretty(e).unwrap_or_default() + "\n",
        Output::Text => text(e),
    }
}

fn text(e: &Explained) -> String {
    let mut out = format!(
        "irsa-doctor explain: {} for {}\n",
        e.verdict.to_uppercase(),
        if e.role_arn.is_empty() {
            "the role"
        } else {
            &e.role_arn
        }
    );
    for note in &e.notes {
        out += &format!("note: {}\n", crate::guard::redact::one_line(note.clone()));
    }
    let first = HopView {
        request: &e.request,
        evaluation: &e.evaluation,
        corrected_statement: e.corrected_statement.as_ref(),
        corrected_policy: e.corrected_policy.as_ref(),
        command: e.command.as_deref(),
    };
    let Some(target) = &e.target else {
        return out + &hop_text(&first);
    };
    out += &format!("\nhop 1, the association's role {}:\n", e.role_arn);
    out += &hop_text(&first);
    out += &format!(
        "\nhop 2, the target role {} (the pod acts as it), asked by the association's role:\n",
        if target.role_arn.is_empty() {
            "(not named)"
        } else {
            &target.role_arn
        }
    );
    out += &hop_text(&HopView {
        request: &target.request,
        evaluation: &target.evaluation,
        corrected_statement: target.corrected_statement.as_ref(),
        corrected_policy: target.corrected_policy.as_ref(),
        command: target.command.as_deref(),
    });
    if let Some(hop) = e.denied_hop {
        out += &format!("\ndenied at the {hop}'s hop\n");
    }
    out
}

/// One hop's evaluation, as [`text`] shows it.
struct HopView<'a> {
    request: &'a Request,
    evaluation: &'a Evaluation,
    corrected_statement: Option<&'a Value>,
    corrected_policy: Option<&'a Value>,
    command: Option<&'a str>,
}

fn hop_text(e: &HopView<'_>) -> String {
    let mut out = String::new();
    // The request's values come from the token's claims or the flags: one
    // line each, as the reasons quote them, so a claim holding a line
    // break cannot forge a line of this report.
    let shown = |text: &str| crate::guard::redact::one_line(text.to_owned());
    let r = e.request;
    out += &format!(
        "request: {} {} asks for {}\n",
        r.principal_type,
        shown(&r.principal),
        r.actions.join(" and ")
    );
    if r.untagged {
        out += "  (session tags disabled: no tag is sent)\n";
    }
    for (key, values) in &r.context {
        out += &format!("  {} = {}\n", shown(key), shown(&values.join(", ")));
    }
    for s in &e.evaluation.statements {
        let sid = s
            .sid
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        let head = format!("statement {}{sid}, {:?}", s.index, s.effect);
        out += &match (&s.matched, &s.reason) {
            (true, None) => format!("{head}: matches ({})\n", s.actions.join(", ")),
            (true, Some(why)) => format!("{head}: matches, but {why}\n"),
            (false, why) => format!("{head}: no match: {}\n", why.as_deref().unwrap_or("")),
        };
    }
    if let Some(reason) = &e.evaluation.reason {
        out += &format!("denied: {reason}\n");
    }
    if let (Some(statement), Some(policy), Some(command)) =
        (e.corrected_statement, e.corrected_policy, e.command)
    {
        let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
        out += &format!(
            "\nThe statement that admits exactly this request:\n{}\n\n\
             Fix: save the corrected policy as trust.json, then run\n  {command}\n\
             trust.json:\n{}\n",
            pretty(statement),
            pretty(policy)
        );
    }
    out
}

/// Runs `explain`: the evaluation on stdout; 0 when allowed, 1 when
/// denied, 2 when the inputs cannot be used.
pub(super) fn run_explain(args: &ExplainArgs) -> Exit {
    match explain(args) {
        Ok(explained) => {
            let text = render(&explained, args.output);
            let mut out = std::io::stdout();
            if out
                .write_all(crate::guard::redact::redact(&text).as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                return Exit::Internal;
            }
            Exit::Verdict(if explained.verdict == "allowed" {
                Verdict::Pass
            } else {
                Verdict::Fail
            })
        }
        Err(e) => {
            error!(error = %e, "explain: nothing evaluated");
            Exit::Usage
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token's `sub` or `iss` holding a line break was printed as it
    /// was, so it could add a line to the report that `explain` did not
    /// write.
    #[test]
    fn a_claim_with_a_line_break_stays_on_its_line() {
        let request = Request::web_identity(
            "aws",
            "111122223333",
            "https://oidc.example/id/X\ndenied: forged",
            Some("system:serviceaccount:shop:cart\nALLOWED"),
            &["sts.amazonaws.com".to_owned()],
        );
        let doc =
            trust::parse(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:*"}]}"#)
                .unwrap();
        let e = Explained {
            verdict: "allowed",
            role_arn: "arn:aws:iam::111122223333:role/app".to_owned(),
            denied_hop: None,
            notes: vec![],
            target: None,
            evaluation: trust::evaluate(&doc, &request),
            request,
            corrected_statement: None,
            corrected_policy: None,
            command: None,
        };
        let out = render(&e, Output::Text);
        for line in out.lines() {
            assert!(
                !line.starts_with("denied:") && !line.starts_with("ALLOWED"),
                "{out}"
            );
        }
        assert!(out.contains("cart ALLOWED"), "{out}");
    }
}
