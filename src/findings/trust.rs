//! The trust findings (`TRUST_POLICY_DENIED`, `POD_IDENTITY_TRUST_DENIED`)
//! told with the policy `--trust-policy` names: which statement and
//! condition refuse the pod, on what value, and the corrected policy.

use serde_json::Value;

use crate::report::Finding;
use crate::trust::Evaluation;

/// A trust policy evaluated against what the pod sent.
#[derive(Debug, Clone)]
pub struct Explained {
    pub evaluation: Evaluation,
    /// The policy with the refusing statements fixed.
    pub corrected: Value,
}

/// `finding`, a trust refusal, told with the policy at `path`: its
/// evaluation, or why it could not be used (then the finding keeps the
/// statement built from the token's claims).
pub fn with_policy(
    mut finding: Finding,
    path: &str,
    explained: &Result<Explained, String>,
    role_name: &str,
) -> Finding {
    let e = match explained {
        Err(why) => {
            finding.remedy.push_str(&format!(
                "\n--trust-policy {path} could not be used ({why}): the statement above is \
                 built from the token's claims instead."
            ));
            return finding;
        }
        Ok(e) => e,
    };
    let statements = statement_lines(&e.evaluation);
    match &e.evaluation.reason {
        Some(reason) => {
            finding.message = format!("{}: {path} refuses it: {reason}", finding.message);
            let corrected = serde_json::to_string_pretty(&e.corrected).unwrap_or_default();
            finding.remedy = format!(
                "The trust policy in {path}, evaluated against this pod:\n{statements}\
                 Install the corrected policy (aws iam update-assume-role-policy --role-name \
                 {role_name} --policy-document file://trust.json), with trust.json:\n\
                 {corrected}\n\
                 Then update {path} to match. IAM is eventually consistent: right after a \
                 change, the role may be refused for 10-30 s (--retry-denied-for 30s rides \
                 that out)."
            );
        }
        None => {
            finding.message = format!(
                "{}; yet {path} admits this pod, so the role's trust policy in IAM is not that \
                 file (or changed seconds ago, or the role does not exist)",
                finding.message
            );
            finding.remedy = format!(
                "Compare the role's policy with {path}: aws iam get-role --role-name \
                 {role_name} --query Role.AssumeRolePolicyDocument, then irsa-doctor explain \
                 --policy - on it shows which condition refuses. {path}, evaluated:\n\
                 {statements}\n{}",
                finding.remedy
            );
        }
    }
    finding
}

/// One line per statement: matched, or the first reason it did not.
fn statement_lines(evaluation: &Evaluation) -> String {
    let mut out = String::new();
    for s in &evaluation.statements {
        let line = match (&s.matched, &s.reason) {
            (true, None) => format!("matches ({})", s.actions.join(", ")),
            (true, Some(why)) => format!("matches, but {why}"),
            (false, why) => format!("no match: {}", why.as_deref().unwrap_or("")),
        };
        out.push_str(&format!(
            "  statement {} ({:?}): {line}\n",
            s.index, s.effect
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Code;
    use crate::trust::{self, Request};

    fn denied() -> Finding {
        Finding::error(
            Code::TrustPolicyDenied,
            "STS denied",
            "the claims' statement",
        )
    }

    fn explained(policy_text: &str) -> Result<Explained, String> {
        let doc = trust::parse(policy_text).map_err(|e| e.to_string())?;
        let request = Request::pod_identity(&[("kubernetes-namespace", "shop")]);
        let evaluation = trust::evaluate(&doc, &request);
        let corrected = trust::corrected_document(&doc, &evaluation, &request);
        Ok(Explained {
            evaluation,
            corrected,
        })
    }

    #[test]
    fn a_refusing_policy_names_its_reason_and_the_fix() {
        let e = explained(
            r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        );
        let f = with_policy(denied(), "/etc/trust/policy.json", &e, "app");
        assert_eq!(
            f.message,
            "STS denied: /etc/trust/policy.json refuses it: no statement allows \
             sts:TagSession, which EKS Pod Identity needs as well as sts:AssumeRole"
        );
        assert!(f.remedy.contains(
            "  statement 1 (Allow): matches, but it covers sts:AssumeRole but not sts:TagSession"
        ));
        assert!(f.remedy.contains(
            "aws iam update-assume-role-policy --role-name app --policy-document file://trust.json"
        ));
        assert!(f.remedy.contains("\"sts:TagSession\""), "{}", f.remedy);
    }

    #[test]
    fn an_admitting_or_unusable_policy_keeps_the_claims_statement() {
        let e = explained(
            r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:*"}]}"#,
        );
        let f = with_policy(denied(), "p.json", &e, "app");
        assert!(f.message.contains("yet p.json admits this pod"));
        assert!(f.remedy.ends_with("the claims' statement"));
        assert!(f.remedy.contains("aws iam get-role --role-name app"));
        let f = with_policy(denied(), "p.json", &explained("nope"), "app");
        assert_eq!(f.message, "STS denied");
        assert!(f
            .remedy
            .contains("--trust-policy p.json could not be used (is not JSON"));
    }
}
