//! The issuer step (`--verify-issuer`): the token's signature checked
//! against what its issuer publishes, by `issuer.rs`, beside the
//! mechanism's own calls (STS, the agent), so that it takes none of their
//! time. Both mechanisms' tokens are projected service-account tokens
//! signed by the cluster's issuer, so the step is the same for both.

use std::sync::Arc;

use super::run::{Acting, Run, Sending, TokenRead};
use crate::findings::issuer as words;
use crate::identity::jwks::Refusal;
use crate::peers::issuer::{Cache, Outcome, Settings};
use crate::report::{Finding, IssuerReport, Report};

/// `--verify-issuer`'s settings, and what was fetched: `serve` keeps one
/// for its life, so that its checks share the cache.
#[derive(Debug, Clone, Default)]
pub struct IssuerCheck {
    /// `--allow-http-issuer`: plain HTTP to a loopback issuer (tests).
    pub allow_http: bool,
    cache: Arc<Cache>,
}

impl IssuerCheck {
    pub fn new(allow_http: bool) -> Self {
        IssuerCheck {
            allow_http,
            cache: Arc::default(),
        }
    }
}

/// What the step found, to be put in the report once the mechanism's
/// steps, which run beside it, are done.
#[derive(Default)]
struct Found {
    findings: Vec<Finding>,
    issuer: Option<IssuerReport>,
}

impl Found {
    fn record(self, report: &mut Report) {
        report.findings.extend(self.findings);
        report.issuer = self.issuer;
    }
}

/// Runs the mechanism's `steps` and, beside them, the issuer step for the
/// token they read (whose claims are in `report`), then records what the
/// issuer step found.
pub(super) async fn beside(
    run: &Run<'_>,
    sending: Sending,
    token: &TokenRead,
    report: &mut Report,
    steps: impl AsyncFnOnce(&mut Report) -> Acting,
) -> Acting {
    let iss = report.token.as_ref().and_then(|t| t.claims.iss.clone());
    let (acting, found) = tokio::join!(steps(report), verify(run, sending, token, iss));
    found.record(report);
    acting
}

/// Asks the token's issuer `iss`, when `--verify-issuer` is on, the token
/// was read, and sending is allowed.
async fn verify(run: &Run<'_>, sending: Sending, token: &TokenRead, iss: Option<String>) -> Found {
    let (Some(check), Some(iss)) = (run.cfg.issuer.as_ref(), iss) else {
        return Found::default();
    };
    let raw = match token {
        TokenRead::Rejected(raw) | TokenRead::Sendable(raw) if !sending.offline => raw,
        _ => return Found::default(),
    };
    let settings = Settings {
        allow_http: check.allow_http,
        tls: run.sts.tls_context().cloned(),
        deadline: run.deadline,
        cache: &check.cache,
    };
    let seen = crate::peers::issuer::verify(&settings, raw, &iss).await;
    tracing::debug!(
        iss = %iss,
        outcome = ?seen.outcome,
        cached = seen.cached,
        "token's issuer checked"
    );
    let signed = words::Signed {
        iss: &iss,
        alg: seen.alg.as_deref(),
        kid: seen.kid.as_deref(),
    };
    let finding = match &seen.outcome {
        Outcome::Verified => None,
        Outcome::Refused(Refusal::KeyUnknown { .. }) => Some(words::signing_key_unknown(
            &signed,
            seen.jwks_uri.as_deref().unwrap_or(""),
            &seen.kids,
        )),
        Outcome::Refused(refusal) => Some(words::token_signature_invalid(&signed, Ok(refusal))),
        Outcome::NotSigned(why) => Some(words::token_signature_invalid(&signed, Err(why))),
        Outcome::Mismatch { url, published } => Some(words::issuer_mismatch(&iss, url, published)),
        Outcome::Unreachable {
            url,
            document,
            why,
            refused,
        } => Some(words::issuer_unreachable(
            &iss,
            document.words(),
            url,
            why,
            *refused,
        )),
    };
    Found {
        findings: finding.into_iter().collect(),
        issuer: Some(IssuerReport {
            url: iss.clone(),
            jwks_uri: seen.jwks_uri,
            alg: seen.alg,
            kid: seen.kid,
            cached: seen.cached,
            signature_verified: seen.outcome == Outcome::Verified,
        }),
    }
}
