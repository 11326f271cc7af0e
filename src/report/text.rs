//! The report as a person reads it in `kubectl logs`: verdict first, then
//! each step, then every finding with expected, found and fix.

use std::fmt::Write as _;

use super::{IssuerReport, MechanismName, PermissionsReport, Report, Severity, Step, StsReport};
use crate::time::format_unix;

impl Report {
    /// The report for a person: verdict first, then each step, then every
    /// finding with expected, found and fix.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.summary());
        let _ = writeln!(out);
        let _ = writeln!(out, "steps:");
        for (name, status, detail) in self.steps() {
            let _ = writeln!(out, "  {status:<12}  {name:<12} {detail}");
        }
        if !self.findings.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(out, "findings:");
        }
        for f in &self.findings {
            let severity = match f.severity {
                Severity::Error if f.code.is_inconclusive() => "inconclusive",
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Info => "info",
            };
            let _ = writeln!(out, "  [{severity}] {}: {}", f.code.as_str(), f.message);
            if let Some(expected) = &f.expected {
                let _ = writeln!(out, "    expected: {expected}");
            }
            if let Some(found) = &f.found {
                let _ = writeln!(out, "    found:    {found}");
            }
            let mut lines = f.remedy.lines();
            if let Some(first) = lines.next() {
                let _ = writeln!(out, "    fix:      {first}");
            }
            for line in lines {
                let _ = writeln!(out, "              {line}");
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "took {} ms; irsa-doctor {}",
            self.duration_ms, self.version
        );
        out
    }

    /// `(step, status, detail)` rows, derived from the report's fields and
    /// the step each finding code belongs to; Pod Identity has an agent
    /// row where IRSA has a role ARN row.
    fn steps(&self) -> Vec<(&'static str, &'static str, String)> {
        // STS refused, but the finding belongs to another step (an expired
        // token, a wrong audience): the STS row still says it refused.
        let sts_status = match (
            self.status(Step::Sts, self.sts.attempts > 0),
            &self.sts.error_code,
        ) {
            ("ok", Some(_)) => "FAIL",
            (status, _) => status,
        };
        let row =
            |step: Step, status: &'static str, detail: String| (step.as_str(), status, detail);
        let pod_identity = self.mechanism == Some(MechanismName::PodIdentity);
        let mut rows = vec![row(
            Step::Environment,
            self.status(Step::Environment, true),
            self.environment_detail(),
        )];
        if pod_identity {
            rows.push(row(
                Step::Token,
                self.status(Step::Token, self.token.is_some()),
                self.token_detail(),
            ));
            rows.push(row(
                Step::Agent,
                self.status(
                    Step::Agent,
                    self.agent.as_ref().is_some_and(|a| a.attempts > 0),
                ),
                self.agent_detail(),
            ));
        } else {
            rows.push(row(
                Step::RoleArn,
                self.status(Step::RoleArn, self.role_arn.is_some()),
                self.role_arn.clone().unwrap_or_else(|| "not set".into()),
            ));
            rows.push(row(
                Step::Token,
                self.status(Step::Token, self.token.is_some()),
                self.token_detail(),
            ));
        }
        rows.extend(self.issuer_row());
        rows.push(row(Step::Sts, sts_status, self.sts_detail()));
        rows.push(row(
            Step::Role,
            self.status(Step::Role, self.acting_as().is_some()),
            format!(
                "assumed {}, expected {}{}",
                self.acting_as().unwrap_or("(nothing)"),
                self.expected_role_arn
                    .as_deref()
                    .unwrap_or(if pod_identity {
                        "(none given: pass --expected-role-arn to compare)"
                    } else {
                        "(unset)"
                    }),
                self.profile_chain_detail()
            ),
        ));
        rows.push(row(
            Step::AppView,
            self.status(Step::AppView, self.default_chain.error.is_none()),
            self.chain_detail(),
        ));
        if let Some(p) = &self.permissions {
            rows.push(row(
                Step::Permissions,
                self.status(Step::Permissions, p.evaluated),
                permissions_detail(p),
            ));
        }
        rows
    }

    /// The issuer's row, when `--verify-issuer` asked the issuer.
    fn issuer_row(&self) -> Option<(&'static str, &'static str, String)> {
        let issuer = self.issuer.as_ref()?;
        let status = self.status(Step::Issuer, true);
        Some((Step::Issuer.as_str(), status, issuer_detail(issuer)))
    }

    fn environment_detail(&self) -> String {
        match self.mechanism {
            Some(MechanismName::PodIdentity) => format!(
                "EKS Pod Identity: AWS_CONTAINER_CREDENTIALS_FULL_URI={}",
                self.agent.as_ref().map_or("(unset)", |a| a.uri.as_str())
            ),
            Some(MechanismName::Irsa) => format!(
                "IRSA: AWS_ROLE_ARN={}",
                self.role_arn.as_deref().unwrap_or("(unset)")
            ),
            None => format!(
                "no mechanism: AWS_ROLE_ARN={}",
                self.role_arn.as_deref().unwrap_or("(unset)")
            ),
        }
    }

    fn agent_detail(&self) -> String {
        match &self.agent {
            Some(a) => format!(
                "GET {} ({} attempt{}{}{}{}){}",
                a.uri,
                a.attempts,
                if a.attempts == 1 { "" } else { "s" },
                a.status
                    .map_or(String::new(), |s| format!(", answered HTTP {s}")),
                a.account_id
                    .as_deref()
                    .map_or(String::new(), |id| format!(", account {id}")),
                a.expiration
                    .as_deref()
                    .map_or(String::new(), |e| format!(", expiring {e}")),
                association_detail(a),
            ),
            None => "not asked".to_owned(),
        }
    }

    /// A step's status: its worst finding, else whether it ran.
    fn status(&self, step: Step, ran: bool) -> &'static str {
        let worst = self
            .findings
            .iter()
            .filter(|f| f.code.step() == step)
            .map(|f| (f.severity, f.code.is_inconclusive()))
            .min();
        match worst {
            Some((Severity::Error, false)) => "FAIL",
            Some((Severity::Error, true)) => "inconclusive",
            Some((Severity::Warning, _)) => "warn",
            _ if !ran => "skipped",
            _ => "ok",
        }
    }

    fn token_detail(&self) -> String {
        match &self.token {
            Some(t) => format!(
                "{}: sub {}, aud [{}], exp {}",
                t.file,
                t.claims.sub.as_deref().unwrap_or("(none)"),
                t.claims.aud.join(", "),
                t.claims.exp.map_or("(none)".to_owned(), format_unix)
            ),
            None => "not read".to_owned(),
        }
    }

    fn sts_detail(&self) -> String {
        let sts = &self.sts;
        let pod_identity = self.mechanism == Some(MechanismName::PodIdentity);
        if pod_identity && sts.attempts == 0 {
            return "GetCallerIdentity not sent: irsa-doctor got no credentials from the agent"
                .to_owned();
        }
        let action = if pod_identity {
            "GetCallerIdentity"
        } else {
            "AssumeRoleWithWebIdentity"
        };
        let via = |label: &str, value: &Option<String>| {
            value
                .as_deref()
                .map_or(String::new(), |v| format!(", {label} {v}"))
        };
        format!(
            "{action} at {} (region {}, {} attempt{}{}{}{}{}{})",
            sts.endpoint.as_deref().unwrap_or("(no request sent)"),
            sts.region.as_deref().unwrap_or("unknown"),
            sts.attempts,
            if sts.attempts == 1 { "" } else { "s" },
            via("through proxy", &sts.proxy),
            via("trusting AWS_CA_BUNDLE", &sts.ca_bundle),
            via("answered", &sts.error_code),
            via("request id", &sts.request_id),
            via("session expiring", &sts.expiration),
        ) + &switches_detail(sts)
            + &sts.app_endpoint.as_deref().map_or(String::new(), |e| {
                format!("; the app's SDK may use {e} (AWS_STS_REGIONAL_ENDPOINTS=legacy)")
            })
    }

    /// `; through profile b (web_identity): A (web_identity) -> B
    /// (assume_role)`, when `AWS_PROFILE` selects a role chain.
    fn profile_chain_detail(&self) -> String {
        let Some(chain) = &self.profile_chain else {
            return String::new();
        };
        let hops: Vec<String> = chain
            .hops
            .iter()
            .map(|h| format!("{} ({})", h.role_arn, h.via))
            .collect();
        format!(
            "; through profile {} ({}): {}",
            chain.profile,
            chain.root,
            hops.join(" -> ")
        )
    }

    fn chain_detail(&self) -> String {
        let chain = &self.default_chain;
        match (&chain.provider, &chain.arn, &chain.error) {
            (Some(p), Some(arn), _) => format!(
                "default credential chain uses {p}: {arn}{}",
                chain
                    .reused_since
                    .as_deref()
                    .map_or(String::new(), |t| format!(" (as resolved at {t})"))
            ),
            (Some(p), None, _) => format!("default credential chain uses {p}"),
            (None, _, Some(e)) => format!("default credential chain fails: {e}"),
            (None, _, None) => "default credential chain finds no credentials".to_owned(),
        }
    }
}

/// The FIPS and dual-stack switches that chose STS's endpoint, and where
/// each was set; nothing when neither is on.
fn switches_detail(sts: &StsReport) -> String {
    let on = |what: &str, on: bool, source: &Option<String>| {
        on.then(|| format!("{what} on ({})", source.as_deref().unwrap_or("profile")))
    };
    let switches: Vec<String> = [
        on("FIPS", sts.use_fips, &sts.use_fips_source),
        on("dual-stack", sts.use_dualstack, &sts.use_dualstack_source),
    ]
    .into_iter()
    .flatten()
    .collect();
    if switches.is_empty() {
        String::new()
    } else {
        format!("; endpoint chosen by {}", switches.join(", "))
    }
}

/// The issuer row: what was asked, and what its keys said.
fn issuer_detail(issuer: &IssuerReport) -> String {
    format!(
        "{} (keys {}{}; {} kid {}: {})",
        issuer.url,
        issuer.jwks_uri.as_deref().unwrap_or("not fetched"),
        if issuer.cached { ", cached" } else { "" },
        issuer.alg.as_deref().unwrap_or("(no alg)"),
        issuer.kid.as_deref().unwrap_or("(none)"),
        if issuer.signature_verified {
            "signature verified"
        } else {
            "signature not verified"
        }
    )
}

/// The permissions row: how many entries IAM allows, and where it was
/// asked; or why it was not.
fn permissions_detail(p: &PermissionsReport) -> String {
    if !p.evaluated {
        return format!(
            "not evaluated: {}",
            p.not_evaluated_reason
                .as_deref()
                .unwrap_or("see the findings")
        );
    }
    let allowed = p.results.iter().filter(|r| r.decision == "allowed").count();
    let asked = match (&p.reused_since, &p.endpoint) {
        (Some(since), _) => format!("IAM's answer of {since}, shown again"),
        (None, Some(endpoint)) => format!("SimulatePrincipalPolicy at {endpoint}"),
        (None, None) => "SimulatePrincipalPolicy".to_owned(),
    };
    // The session policy narrows what the role allows: say whether it was
    // judged, so a pass without it is not read as covering it.
    let session = match p.session_policy {
        "given" => "; session policy judged too",
        _ => "",
    };
    format!(
        "{allowed} of {} required allowed for {} ({asked}){session}; resource policies not \
         evaluated",
        p.results.len(),
        p.source_arn.as_deref().unwrap_or("the role"),
    )
}

/// The association's options the user gave: its two hops, and session
/// tags when they are off.
fn association_detail(a: &super::AgentReport) -> String {
    let mut out = String::new();
    match (&a.association_role_arn, &a.target_role_arn) {
        (Some(first), Some(target)) => {
            out += &format!("; hops: association role {first}, then target role {target}");
        }
        (Some(first), None) => out += &format!("; association role {first}"),
        _ => {}
    }
    if !a.session_tags.enabled() {
        out += "; session tags disabled (none sent)";
    }
    out
}
