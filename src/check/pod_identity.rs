//! EKS Pod Identity's steps: the agent's URI, the projected token as the
//! agent will see it, the agent asked for credentials (the default chain
//! resolved beside it), and `GetCallerIdentity` with those credentials to
//! name the role.

use std::net::IpAddr;
use std::path::Path;
use std::time::SystemTime;

use super::mechanism::PodIdentity;
use super::retry::{ask_agent_with_retries, retry, AgentOutcome, Peer, Plan};
use super::run::{
    credentials_expiry, log_claims, resolve_chain, sts_proxy, subject, Acting, ChainToken, Run,
    Sending, TokenRead,
};
use crate::findings::{pod_identity as words, sts as sts_findings, token, trust};
use crate::identity::token::{decode_claims, read_token_file};
use crate::peers::agent::{Issued, AUDIENCE};
use crate::peers::failure::Failure;
use crate::peers::sts::{ChainOutcome, ChainSource, Known};
use crate::report::{AgentReport, Code, Finding, Report, TokenReport};
use hyper::Uri;

/// IMDS's address: with a proxy set, SDKs falling back to the node's role
/// would send its requests through the proxy too.
const IMDS_URL: &str = "http://169.254.169.254/";

/// Runs Pod Identity's steps, adding their findings, the agent's answer
/// and what STS said to `report`.
pub(super) async fn verify(
    run: &Run<'_>,
    sending: Sending,
    pi: &PodIdentity,
    report: &mut Report,
) -> Acting {
    let association = run.cfg.association_role_arn.as_ref();
    let expected = run.cfg.expected_role_arn.as_ref();
    report.agent = Some(AgentReport {
        uri: pi.uri.clone(),
        association_role_arn: association.map(ToString::to_string),
        target_role_arn: association
            .and(expected)
            .filter(|target| Some(*target) != association)
            .map(ToString::to_string),
        session_tags: run.cfg.session_tags,
        ..AgentReport::default()
    });
    let uri = match judge_uri(&pi.uri) {
        Ok(uri) => {
            if uri.scheme_str() == Some("https") && !uri.host().is_some_and(allowed_host) {
                report
                    .findings
                    .push(words::https_host_not_everywhere(&pi.uri));
            }
            Some(uri)
        }
        Err(problem) => {
            report.findings.push(words::uri_invalid(&pi.uri, &problem));
            None
        }
    };
    let (token, findings, token_report) = read_token(&pi.token_file, run.now);
    report.findings.extend(findings);
    report.token = token_report;
    report.findings.extend(subject(run.cfg, report));
    if let Some(acting) = on_fargate(run, pi, report) {
        return acting;
    }

    // The issuer, with `--verify-issuer`, beside the agent, STS and the
    // chain: the token is a projected service-account token too.
    let steps =
        async |report: &mut Report| ask(run, sending, pi, uri.as_ref(), &token, report).await;
    super::issuer::beside(run, sending, &token, report, steps).await
}

/// On a Fargate node, `POD_IDENTITY_UNSUPPORTED_COMPUTE`, and nothing is
/// sent: there is no agent to ask, and the default chain would ask the same
/// absent agent (an unreachable agent after `--timeout` would only repeat
/// the finding, less clearly). The node is `--node-name`'s, else the one
/// the token names (`kubernetes.io.node.name`, in tokens of Kubernetes
/// 1.30 and later).
fn on_fargate(run: &Run<'_>, pi: &PodIdentity, report: &mut Report) -> Option<Acting> {
    let claimed = report
        .token
        .as_ref()
        .and_then(|t| t.claims.kubernetes.as_ref())
        .and_then(|k| k.node.clone());
    let node = run.cfg.node_name.clone().or(claimed)?;
    let node = node.as_str();
    if !words::is_fargate_node(node) {
        return None;
    }
    let expected = run.cfg.expected_role_arn.as_ref().map(ToString::to_string);
    let pod = words::PodOf {
        namespace: run.cfg.namespace.as_deref(),
        service_account: run.cfg.service_account.as_deref(),
        expected_role: expected.as_deref(),
    };
    report
        .findings
        .push(words::unsupported_compute(node, &pi.uri, &pod));
    Some(Acting {
        role: None,
        assumed_arn: None,
        chain: Err(format!(
            "not resolved: the pod runs on the Fargate node {node}, where the EKS Pod Identity \
             agent it would ask does not run (POD_IDENTITY_UNSUPPORTED_COMPUTE)"
        )),
        memo: None,
        reused: false,
        credentials: None,
        profile_chain: None,
    })
}

/// The agent, `GetCallerIdentity` and the default chain, and what they
/// said.
async fn ask(
    run: &Run<'_>,
    sending: Sending,
    pi: &PodIdentity,
    uri: Option<&Uri>,
    token: &TokenRead,
    report: &mut Report,
) -> Acting {
    // The agent first, then the default chain, whose own request to the
    // agent gets the same answer replayed below the SDK: a healthy pod
    // costs one agent call and one STS call. An https URI is not the EKS
    // agent's: irsa-doctor asks only http agents itself, and takes such a
    // pod's identity from the chain's container provider.
    let http = uri.filter(|u| u.scheme_str() == Some("http"));
    // The kept answer holds credentials: gone when this step ends, however
    // it ends.
    let _forget = ForgetReplay(run.sts.replay());
    let asked = match (http, token.sendable()) {
        (Some(uri), Some(raw)) if !sending.offline => {
            let (replay, counters) = (run.sts.replay(), run.sts.counters());
            Some(ask_agent_with_retries(run.cfg, uri, raw, run.deadline, replay, counters).await)
        }
        _ => None,
    };
    let mut known = None;
    let (assumed_arn, credentials) = match asked {
        Some(outcome) => agent_step(run, outcome, report, &mut known).await.unzip(),
        None => (None, None),
    };
    // An SDK for Rust that sends the agent's request through a proxy must
    // be seen doing so: no replayed answer then.
    let lookup = |name: &str| run.env.proxy_var(name);
    if crate::settings::proxy::proxied_by(lookup, &pi.uri).contains(&crate::settings::proxy::RUST) {
        run.sts.replay().clear();
    }
    let chain_token = match token {
        TokenRead::Unusable => ChainToken::Unusable,
        TokenRead::Rejected(raw) | TokenRead::Sendable(raw) => ChainToken::Read(raw),
    };
    let chain = resolve_chain(run, sending, chain_token, known.as_ref()).await;
    let assumed_arn = match assumed_arn {
        None if uri.is_some() && http.is_none() => https_identity(&chain, report),
        found => found,
    };
    report.findings.extend(proxy_step(run, &pi.uri));
    report.findings.extend(relative_uri_first(run));
    // The chain is resolved on every check, in `serve` too: its request to
    // the agent is answered by the replay and, on the same credentials, its
    // identity by `known`, so it costs no call; and what it lands on is the
    // agent's answer of this very check.
    Acting {
        role: None,
        assumed_arn,
        chain,
        memo: None,
        reused: false,
        credentials: credentials.filter(|_| !run.cfg.require.is_empty()),
        profile_chain: None,
    }
}

/// Clears the kept answer when dropped.
struct ForgetReplay<'a>(&'a crate::peers::traffic::Replay);

impl Drop for ForgetReplay<'_> {
    fn drop(&mut self) {
        self.0.clear();
    }
}

/// `STATIC_CREDENTIALS_SHADOW` when `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`
/// is set too: every SDK uses it before the full URI, so apps ask
/// 169.254.170.2 (ECS), not the Pod Identity agent.
fn relative_uri_first(run: &Run<'_>) -> Option<Finding> {
    run.env
        .container_credentials
        .contains(&"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .then(words::relative_uri_first)
}

/// Whether SDKs accept `uri` as `AWS_CONTAINER_CREDENTIALS_FULL_URI`: an
/// http URI on loopback, 169.254.170.2, 169.254.170.23 or fd00:ec2::23,
/// or any https URI. Says why not.
fn judge_uri(uri: &str) -> Result<Uri, String> {
    if !uri.contains("://") {
        return Err("has no scheme (http://)".to_owned());
    }
    let parsed: Uri = uri.parse().map_err(|e| format!("is not a URI ({e})"))?;
    let host = parsed.host().ok_or("has no host")?;
    // `http::Uri` keeps a port it cannot read (`:99999`, `:x`), and the
    // client then used port 80: the token went to whatever listens there.
    let authority = parsed.authority().map_or("", |a| a.as_str());
    if let Err(why) = crate::peers::traffic::named_port(authority) {
        return Err(format!(
            "names a port no connection can use exactly ({why}; the AWS SDK for Rust \
             would send the token to port 80 instead, and irsa-doctor sent nothing)"
        ));
    }
    match parsed.scheme_str() {
        Some("https") => return Ok(parsed),
        Some("http") => {}
        Some(other) => return Err(format!("has the scheme {other}, not http or https")),
        None => return Err("has no scheme (http://)".to_owned()),
    }
    if allowed_host(host) {
        Ok(parsed)
    } else {
        Err(format!(
            "names the host {host}, which SDKs refuse for an http URI (only loopback, \
             169.254.170.2, 169.254.170.23 and fd00:ec2::23 are allowed)"
        ))
    }
}

/// Reads and decodes the token with IRSA's bounds, judging it as the agent
/// and the SDKs will.
fn read_token(path: &Path, now: SystemTime) -> (TokenRead, Vec<Finding>, Option<TokenReport>) {
    let raw = match read_token_file(path) {
        Ok(raw) => raw,
        Err(problem) => {
            let finding = token::token_file_finding(problem, &token::POD_IDENTITY);
            return (TokenRead::Unusable, vec![finding], None);
        }
    };
    let claims = match decode_claims(&raw) {
        Ok(claims) => claims,
        Err(e) => {
            let finding = token::token_malformed(path, &e.to_string(), &token::POD_IDENTITY);
            return (TokenRead::Rejected(raw), vec![finding], None);
        }
    };
    let mut findings = Vec::new();
    if !raw.header_safe() {
        findings.push(words::token_not_a_header(&path.display().to_string()));
    }
    let now_secs = crate::time::unix_secs(now);
    let expired = claims.exp.filter(|&exp| exp <= now_secs);
    if let Some(exp) = expired {
        findings.push(token::token_expired_locally(exp, now_secs, &claims));
    }
    if !claims.aud.iter().any(|a| a == AUDIENCE) {
        findings.push(words::audience_mismatch(&claims));
    }
    log_claims(&claims);
    let rejected = expired.is_some() || !raw.header_safe();
    let token_report = TokenReport {
        file: path.display().to_string(),
        claims,
    };
    let read = if rejected {
        TokenRead::Rejected(raw)
    } else {
        TokenRead::Sendable(raw)
    };
    (read, findings, Some(token_report))
}

/// Records the agent's answer; with credentials, asks STS who they are,
/// and returns that identity and the credentials (for `--require`).
/// `known` receives the identity and its key ID, for the default chain.
async fn agent_step(
    run: &Run<'_>,
    outcome: AgentOutcome,
    report: &mut Report,
    known: &mut Option<Known>,
) -> Option<(String, aws_credential_types::Credentials)> {
    let agent = report.agent.get_or_insert_with(AgentReport::default);
    agent.attempts = outcome.attempts;
    agent.status = outcome.status;
    let uri = agent.uri.clone();
    match outcome.result {
        Ok(issued) => {
            agent.account_id = issued.account_id.clone();
            agent.expiration = issued.expiration.clone();
            let access_key_id = issued.credentials.access_key_id().to_owned();
            let credentials = issued.credentials.clone();
            let expiry = issued.credentials.expiry();
            let arn = identity_step(run, issued, report).await;
            // After GetCallerIdentity, whose Date header tells whether this
            // container's clock can be trusted to judge the expiry.
            if let Some(expiry) = expiry {
                let issuer = sts_findings::Issuer::Agent(&uri);
                let offset = report.sts.clock_offset_seconds;
                let window = sts_findings::BOTOCORE_REFRESH_AHEAD_SECS;
                let finding = credentials_expiry(issuer, expiry, run.now, offset, window);
                report.findings.extend(finding);
            }
            let arn = arn?;
            *known = Some(Known {
                access_key_id,
                arn: arn.clone(),
            });
            Some((arn, credentials))
        }
        Err(failure) => {
            let asked = words::Asked {
                uri: &uri,
                attempts: outcome.attempts,
                elapsed: run.started.elapsed(),
                expected_role: run.cfg.expected_role_arn.as_ref().map(|r| r.name.as_str()),
            };
            let mut finding = words::agent_failure(&failure, &asked);
            let hops = run.cfg.association_role_arn.as_ref().map(|association| {
                let target = run.cfg.expected_role_arn.as_ref();
                words::Hops {
                    association,
                    target: target.filter(|t| !t.same_role(association)),
                    tags: run.cfg.session_tags,
                }
            });
            if let (Code::PodIdentityTrustDenied, Some(hops)) = (finding.code, &hops) {
                finding = words::trust_denied_hop(&failure.detail, hops);
            }
            // `--trust-policy` is a copy of the role EKS assumes first.
            let first_hop = hops
                .as_ref()
                .is_none_or(|h| words::second_hop_refused(&failure.detail, h).is_none());
            if let (Code::PodIdentityTrustDenied, Some(path), true) =
                (finding.code, &run.cfg.trust_policy, first_hop)
            {
                let claims = report.token.as_ref().map(|t| &t.claims);
                let request = super::trust::pod_identity_request(claims, run.cfg);
                let explained = super::trust::explain(path, &request);
                let role = asked.expected_role.unwrap_or("<role>");
                let path = path.display().to_string();
                finding = trust::with_policy(finding, &path, &explained, role);
            }
            // The local claim check may already have said the same thing.
            if !report.has(finding.code) {
                report.findings.push(finding);
            }
            None
        }
    }
}

/// `GetCallerIdentity` signed with the agent's credentials: who the pod
/// is. Its copy of the credentials is dropped when it returns (`agent_step`
/// keeps one for `--require`, dropped with the check).
async fn identity_step(run: &Run<'_>, issued: Issued, report: &mut Report) -> Option<String> {
    // Transient trouble (throttling, a 5xx, no answer) is retried with the
    // same backoff as IRSA's STS call, until the deadline.
    let plan = Plan::until(Peer::Sts, run.deadline, run.cfg.timeout);
    let credentials = &issued.credentials;
    let ask = |_| run.sts.identity_with(credentials.clone());
    // A failure does not say where it went; the SDK resolves the same URL
    // for every call made with this configuration (nothing is sent).
    let fips = run.sts.switches().0 == Some(true);
    let resolved = if fips {
        run.sts.resolved_endpoint().await.ok()
    } else {
        None
    };
    let at = resolved.as_deref();
    let read = |identity: Result<_, _>| {
        identity.map_err(|f| super::endpoints::fips_missing(run.sts, at, f))
    };
    let retried = retry(&plan, ask, read).await;
    let (result, attempts) = (retried.result, retried.attempts);
    let account_id = issued.account_id.clone();
    // This copy of the credentials is not needed any more.
    drop(issued);
    report.sts.attempts = attempts;
    match result {
        Ok(identity) => {
            report.sts.endpoint = identity.endpoint.clone();
            report.sts.proxy = sts_proxy(run.env, identity.endpoint.as_deref());
            report.sts.request_id = identity.request_id.clone();
            report.sts.clock_offset_seconds = identity.clock_offset;
            report
                .findings
                .extend(identity.clock_offset.and_then(sts_findings::clock_skew));
            report.assumed_role_arn = Some(identity.arn.clone());
            let account = identity
                .account
                .as_deref()
                .or_else(|| identity.arn.split(':').nth(4));
            if let (Some(said), Some(account)) = (account_id.as_deref(), account) {
                if said != account {
                    report
                        .findings
                        .push(words::account_mismatch(&identity.arn, said));
                }
            }
            Some(identity.arn)
        }
        Err(failure) => {
            report.sts.request_id = failure.request_id.clone();
            report.sts.error_code = failure.code.clone();
            report.sts.endpoint = match resolved {
                Some(endpoint) => Some(endpoint),
                None => run.sts.resolved_endpoint().await.ok(),
            };
            report
                .findings
                .push(identity_failure(run, &failure, report));
            None
        }
    }
}

/// STS could not be asked (inconclusive, worded as for IRSA), or refused
/// the agent's credentials (definitive).
fn identity_failure(run: &Run<'_>, failure: &Failure, report: &Report) -> Finding {
    let attempts = report.sts.attempts;
    let answered = match (&failure.code, failure.http_status) {
        (Some(code), _) => format!("{code}: {}", failure.message),
        (None, Some(status)) => format!("HTTP {status}: {}", failure.message),
        (None, None) => failure.message.clone(),
    };
    if failure.code.is_some() && !failure.kind.is_transient() {
        return words::credentials_refused(&answered);
    }
    sts_findings::sts_failure(
        failure,
        &sts_findings::Attempted {
            role: None,
            claims: report.token.as_ref().map(|t| &t.claims),
            audience: Some(AUDIENCE),
            endpoint: report.sts.endpoint.as_deref(),
            proxy: report.sts.proxy.as_deref(),
            region: report.sts.region.as_deref(),
            attempts,
            elapsed: run.started.elapsed(),
        },
    )
}

/// For an https URI, which irsa-doctor does not ask itself: the identity
/// the default chain's container provider found, if any.
fn https_identity(
    chain: &crate::findings::chain::ChainResult,
    report: &mut Report,
) -> Option<String> {
    match chain {
        Ok(ChainOutcome::Other {
            source: ChainSource::Container,
            identity: Ok(arn),
        }) => {
            report.assumed_role_arn = Some(arn.clone());
            Some(arn.clone())
        }
        _ => {
            report.findings.push(words::https_no_identity(
                &crate::findings::chain::would_act_as(chain),
            ));
            None
        }
    }
}

/// `PROXY_INTERCEPTS_CREDENTIALS` when an SDK would send the request for
/// credentials (the agent's, or IMDS's on fallback) through a proxy.
fn proxy_step(run: &Run<'_>, uri: &str) -> Option<Finding> {
    let lookup = |name: &str| run.env.proxy_var(name);
    let mut urls = vec![];
    let mut who: Vec<&str> = vec![];
    for url in [uri, IMDS_URL] {
        let proxied = crate::settings::proxy::proxied_by(lookup, url);
        if !proxied.is_empty() {
            urls.push(url);
        }
        for sdk in proxied {
            if !who.contains(&sdk) {
                who.push(sdk);
            }
        }
    }
    (!urls.is_empty()).then(|| {
        words::proxy_intercepts(
            &urls,
            &who,
            lookup("NO_PROXY").or_else(|| lookup("no_proxy")).as_deref(),
        )
    })
}

/// Whether every SDK accepts `host` for an http URI: loopback or one of
/// the ECS and EKS agents' addresses.
fn allowed_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => {
            ip.is_loopback()
                || ["169.254.170.2", "169.254.170.23", "fd00:ec2::23"]
                    .iter()
                    .any(|a| a.parse::<IpAddr>().is_ok_and(|a| a == ip))
        }
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_addresses_loopback_and_https_are_accepted() {
        for ok in [
            "http://169.254.170.23/v1/credentials",
            "http://[fd00:ec2::23]/v1/credentials",
            "http://169.254.170.2/creds",
            "http://127.0.0.1:8080/v1/credentials",
            "http://[::1]:9/v1/credentials",
            "http://localhost/v1/credentials",
            "https://creds.example.invalid/v1/credentials",
        ] {
            assert!(judge_uri(ok).is_ok(), "{ok}: {:?}", judge_uri(ok));
        }
    }

    #[test]
    fn other_hosts_schemes_and_garbage_are_refused() {
        for (bad, why) in [
            ("http://10.0.0.1/v1/credentials", "names the host 10.0.0.1"),
            (
                "http://agent.example.invalid/v1/credentials",
                "names the host",
            ),
            ("ftp://169.254.170.23/v1/credentials", "scheme ftp"),
            ("169.254.170.23/v1/credentials", "no scheme"),
            ("http://exa mple/", "is not a URI"),
            ("http://127.0.0.1:0/v1/credentials", "port is 0"),
            ("http://127.0.0.1:65536/v1/credentials", "above 65535"),
            ("http://127.0.0.1:99999/v1/credentials", "above 65535"),
            (
                "http://169.254.170.23:99999/v1/credentials",
                "port 80 instead",
            ),
            ("http://127.0.0.1:eighty/v1/credentials", "not a number"),
            ("https://creds.example.invalid:99999/v1", "above 65535"),
        ] {
            let problem = judge_uri(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad} passed"));
            assert!(problem.contains(why), "{bad}: {problem}");
        }
    }
}
