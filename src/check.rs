//! One verification, step by step, each step adding findings to one report:
//! environment, role ARN, token file, claims, STS, comparison with the
//! expected role, and the app's view of the default credential chain.
//!
//! The STS call and the default-chain resolution are independent and run
//! concurrently, so a healthy pod's verdict waits for one STS round trip.
//! Transient STS trouble is retried with jittered exponential backoff until
//! the deadline; definitive answers are final.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use tracing::{debug, info};

use crate::arn::is_valid_session_name;
use crate::arn::{AssumedRoleArn, RoleArn};
use crate::env::AwsEnv;
use crate::files::NotAFile;
use crate::report::{ChainReport, Code, Finding, Report, StsReport, TokenReport, Verdict};
use crate::sts::{Assumed, ChainOutcome, ChainSource, Failure, FailureKind, Sts};
use crate::time::format_unix;
use crate::token::{decode_claims, read_token_file, Claims, RawToken, TokenFileProblem};

/// Where the webhook mounts the token; named in remedies.
pub const WEBHOOK_TOKEN_PATH: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token";

/// What one check needs besides the environment and STS.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    pub expected_role_arn: Option<RoleArn>,
    pub audience: String,
    pub session_name: String,
    pub namespace: Option<String>,
    pub service_account: Option<String>,
    pub timeout: Duration,
    pub retry_denied_for: Duration,
}

/// First retry delay; doubles per attempt up to [`MAX_BACKOFF`].
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Runs one check. `now` is the wall clock used for token expiry;
/// `started` is when the command started, so that `--timeout` also covers
/// loading the AWS configuration.
pub async fn check(
    cfg: &CheckConfig,
    env: &AwsEnv,
    sts: &Sts,
    now: SystemTime,
    started: Instant,
) -> Report {
    let deadline = deadline(started, cfg.timeout);
    let mut report = empty_report(cfg, env, Some(sts.region()));
    if sts.region_missing() {
        report.findings.push(region_missing(&sts.region()));
    }
    // Settings judged before anything is sent. When the STS endpoint
    // cannot be built, nothing is sent at all: an SDK handed it logs and
    // retries requests it could not send.
    report
        .findings
        .extend(env.settings.findings.iter().cloned());
    report.findings.extend(sts.file_findings().iter().cloned());
    // A region from the shared config file, which the variables' judge
    // could not see.
    let profile_region_bad =
        !report.has(Code::RegionInvalid) && !crate::endpoint::is_valid_region(&sts.region());
    if profile_region_bad {
        report
            .findings
            .push(crate::endpoint::profile_region_invalid(&sts.region()));
    }
    let offline = env.settings.stop_sending
        || sts.stop_sending()
        || (profile_region_bad && !env.settings.custom_sts_endpoint);
    let not_sent = || Err(NOT_SENT.to_owned());
    let no_chain = offline || sts.skip_chain();

    // Step 1: was IRSA injected at all? If not, name who the pod is instead.
    let (Some(role_text), Some(token_file)) = (&env.role_arn, &env.token_file) else {
        let chain = if no_chain {
            not_sent()
        } else {
            resolve_chain(sts, deadline, None).await
        };
        report
            .findings
            .push(env_not_injected(cfg, env, &report, &chain));
        record_chain(&mut report, &chain, None);
        return finish(report, started);
    };

    // Step 2: the role ARN.
    let parsed = if env.role_arn_not_utf8 {
        Err(
            "is not valid UTF-8 text: the AWS SDK for Rust reads it as unset, and other SDKs \
             send it to STS garbled"
                .to_owned(),
        )
    } else {
        RoleArn::parse(role_text).map_err(|e| e.to_string())
    };
    let role = match parsed {
        Ok(role) => Some(role),
        Err(e) => {
            report.findings.push(
                Finding::error(
                    Code::RoleArnInvalid,
                    format!("AWS_ROLE_ARN {role_text:?} {e}"),
                    "Fix the eks.amazonaws.com/role-arn annotation on the ServiceAccount (or \
                     AWS_ROLE_ARN in the container spec, which overrides it), then recreate the \
                     pod: the webhook only sets the env at pod creation.",
                )
                .expected("arn:aws:iam::<12-digit account>:role/<optional path/><name>")
                .found(role_text.clone()),
            );
            None
        }
    };

    if let Some(name) = env.role_session_name.as_deref() {
        if !is_valid_session_name(name) {
            report
                .findings
                .push(session_name_invalid(name, &cfg.session_name));
        }
    }

    // Steps 3 and 4: the token file and its claims.
    let token = read_token(cfg, token_file, now, &mut report);

    // Step 5 and 7, concurrently: STS with the token, and the default chain.
    let assume = async {
        match (&role, token.sendable()) {
            _ if offline => None,
            (Some(role), Some(token)) => {
                Some(assume_with_retries(cfg, sts, role, token, deadline).await)
            }
            _ => None,
        }
    };
    let chain = async {
        match &token {
            _ if no_chain => not_sent(),
            // The SDK would read an unusable file itself, without our size
            // limit or our check for a FIFO: do not let it.
            TokenRead::Unusable => {
                Err("not resolved: the token file cannot be used (see the token step)".to_owned())
            }
            TokenRead::Rejected(raw) | TokenRead::Sendable(raw) => {
                resolve_chain(sts, deadline, Some(raw)).await
            }
        }
    };
    let (assumed, chain) = tokio::join!(assume, chain);

    let mut assumed_arn = None;
    if let Some(outcome) = assumed {
        report.sts.attempts = outcome.attempts;
        report.sts.endpoint = outcome.endpoint.clone();
        report.sts.clock_offset_seconds = outcome.clock_offset;
        if let Some(finding) = outcome.clock_offset.and_then(clock_skew) {
            report.findings.push(finding);
        }
        match outcome.result {
            Ok(ok) => {
                report.sts.request_id = ok.request_id.clone();
                report.sts.subject = ok.subject.clone();
                report.sts.audience = ok.audience.clone();
                report.sts.provider = ok.provider.clone();
                report.assumed_role_arn = Some(ok.arn.clone());
                assumed_arn = Some(ok.arn.clone());
            }
            Err(failure) => {
                report.sts.request_id = failure.request_id.clone();
                report.sts.error_code = failure.code.clone();
                let finding = sts_finding(
                    cfg,
                    &failure,
                    role.as_ref(),
                    report.token.as_ref().map(|t| &t.claims),
                    &report.sts,
                    outcome.attempts,
                    started.elapsed(),
                );
                // The local claim check may already have said the same thing.
                if !report.has(finding.code) {
                    report.findings.push(finding);
                }
            }
        }
    }

    // Step 6: is it the expected role? Compared on what STS assumed, or,
    // when STS refused, on the role the webhook injected: a refusal of the
    // wrong role is first of all the wrong role.
    if let Some(expected) = cfg.expected_role_arn.as_ref().or(role.as_ref()) {
        let found = match (&assumed_arn, &role) {
            (Some(arn), _) => AssumedRoleArn::parse(arn)
                .is_none_or(|a| !expected.matches(&a))
                .then(|| format!("this pod acts as {arn}")),
            (None, Some(role)) => {
                (!expected.same_role(role)).then(|| format!("AWS_ROLE_ARN names {role}"))
            }
            (None, None) => None,
        };
        if let Some(found) = found {
            report.findings.push(
                Finding::error(
                    Code::RoleMismatch,
                    format!("{found}, not the expected role {expected}"),
                    "Point the ServiceAccount's eks.amazonaws.com/role-arn annotation at the \
                     expected role (AWS_ROLE_ARN in the container spec overrides it) and \
                     recreate the pod; or, if the new role is intended, update \
                     --expected-role-arn. Partition, account and role name must match; the \
                     role's path is not part of the assumed-role ARN.",
                )
                .expected(format!(
                    "arn:{}:sts::{}:assumed-role/{}/<session>",
                    expected.partition, expected.account, expected.name
                ))
                .found(
                    assumed_arn
                        .clone()
                        .unwrap_or_else(|| env.role_arn.clone().unwrap_or_default()),
                ),
            );
        }
    }

    // Step 7: the app's view.
    shadow_findings(env, &chain, &mut report);
    if let Some(endpoint) = report.sts.endpoint.as_deref() {
        if let Some(finding) = crate::proxy::finding(|n| env.proxy_var(n), endpoint) {
            report.findings.push(finding);
        }
    }
    let ours_passed = assumed_arn.is_some();
    record_chain(&mut report, &chain, assumed_arn.as_deref());
    if let Some(finding) = chain_mismatch(&chain, ours_passed, &report) {
        report.findings.push(finding);
    }
    finish(report, started)
}

/// A report with no findings yet.
fn empty_report(cfg: &CheckConfig, env: &AwsEnv, region: Option<String>) -> Report {
    Report {
        verdict: Verdict::Pass,
        findings: vec![],
        role_arn: env.role_arn.clone(),
        expected_role_arn: cfg
            .expected_role_arn
            .as_ref()
            .map(ToString::to_string)
            .or_else(|| env.role_arn.clone()),
        assumed_role_arn: None,
        token: None,
        sts: StsReport {
            region,
            session_name: Some(cfg.session_name.clone()),
            ..StsReport::default()
        },
        default_chain: ChainReport::default(),
        duration_ms: 0,
        version: env!("CARGO_PKG_VERSION"),
    }
}

/// The report for a check that did not finish by its deadline: every
/// network call is bounded, so this means something blocked where nothing
/// should (a file read the SDK makes itself, say).
pub fn timed_out(cfg: &CheckConfig, env: &AwsEnv, started: Instant) -> Report {
    let limit = humantime::format_duration(cfg.timeout);
    let mut report = empty_report(cfg, env, None);
    report.findings.push(
        Finding::error(
            Code::CheckTimeout,
            format!(
                "the check did not finish within --timeout {limit}: something it waited on \
                 never answered"
            ),
            "Run with RUST_LOG=debug to see the last step it reached. Look for settings that \
             name files which block when read (a FIFO, a device) or endpoints that accept \
             connections and never answer; raise --timeout only if STS is merely slow.",
        )
        .expected(format!("a verdict within {limit}"))
        .found(format!("no verdict after {limit}")),
    );
    finish(report, started)
}

/// `started + timeout`, saturating: a huge `--timeout` means "no deadline
/// worth speaking of", not an overflow.
pub fn deadline(started: Instant, timeout: Duration) -> Instant {
    started
        .checked_add(timeout)
        .unwrap_or_else(|| started + Duration::from_secs(86_400 * 365))
}

/// Why the default chain was not resolved when a setting stopped all
/// sending.
const NOT_SENT: &str = "not resolved: a setting it would use is not usable (see the environment \
                        step)";

/// How far this container's clock may be from STS's before SDKs fail.
/// Most SDKs refresh credentials 5 minutes before they expire; with a
/// clock further ahead than that, fresh credentials look stale or expired
/// (botocore refuses them), and further behind, expired ones are still
/// used and refused by AWS.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// `CLOCK_SKEW` when STS's clock minus ours is past
/// [`MAX_CLOCK_SKEW_SECS`] either way.
pub fn clock_skew(offset: i64) -> Option<Finding> {
    if offset.abs() <= MAX_CLOCK_SKEW_SECS {
        return None;
    }
    let ours = if offset < 0 { "ahead of" } else { "behind" };
    // To the minute past ten minutes, where the second is noise; to the
    // second near the threshold, where "5m" would read as within it.
    let secs = offset.unsigned_abs();
    let shown = if secs < 600 {
        secs
    } else {
        (secs + 30) / 60 * 60
    };
    let amount = humantime::format_duration(Duration::from_secs(shown));
    let effect = if offset < 0 {
        "credentials STS issues look expired or about to expire to an app's SDK, which refuses \
         them or refreshes them on every call"
    } else {
        "an app's SDK keeps using credentials after they have expired, and AWS refuses them"
    };
    Some(
        Finding::error(
            Code::ClockSkew,
            format!("this container's clock is {amount} {ours} STS's: {effect}"),
            "Fix the node's time sync (chrony or systemd-timesyncd against the Amazon Time Sync \
             Service, 169.254.169.123). A container shares the node's clock, so a fake clock \
             (faketime, a time namespace) in the image is the other cause.",
        )
        .expected(format!(
            "a clock within {} of STS's",
            humantime::format_duration(Duration::from_secs(MAX_CLOCK_SKEW_SECS.unsigned_abs()))
        ))
        .found(format!(
            "this clock {amount} {ours} STS's (offset {offset:+} s)"
        )),
    )
}

fn session_name_invalid(name: &str, used: &str) -> Finding {
    Finding::error(
        Code::SessionNameInvalid,
        format!(
            "AWS_ROLE_SESSION_NAME {name:?} is not a valid STS session name: an app's SDK sends \
             it as it is, and STS answers ValidationError (irsa-doctor itself used {used})"
        ),
        "Set AWS_ROLE_SESSION_NAME to 2-64 characters of letters, digits and _+=,.@- \
         (the pod name usually fits), or remove it to let the SDK choose one.",
    )
    .expected("2-64 characters of [A-Za-z0-9_+=,.@-]")
    .found(format!("{name:?}"))
}

fn finish(mut report: Report, started: Instant) -> Report {
    report.verdict = Verdict::of(&report.findings);
    report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    report
}

fn region_missing(region: &str) -> Finding {
    Finding::warning(
        Code::RegionMissing,
        format!(
            "no AWS region is configured (AWS_REGION, AWS_DEFAULT_REGION, profile or IMDS); \
             irsa-doctor used {region}, but an app's SDK may refuse to start without one"
        ),
        "Set AWS_REGION in the container spec; the webhook sets it only when it knows the \
         cluster's region.",
    )
    .expected("AWS_REGION set")
    .found("no region")
}

/// What reading the token gave.
enum TokenRead {
    /// The file could not be read within our bounds.
    Unusable,
    /// Read, but not worth sending: malformed or expired.
    Rejected(RawToken),
    /// Read and decoded; STS may see it.
    Sendable(RawToken),
}

impl TokenRead {
    fn sendable(&self) -> Option<&RawToken> {
        match self {
            TokenRead::Sendable(token) => Some(token),
            _ => None,
        }
    }
}

/// Reads and decodes the token, recording findings and the claims.
fn read_token(cfg: &CheckConfig, path: &Path, now: SystemTime, report: &mut Report) -> TokenRead {
    let token = match read_token_file(path) {
        Ok(token) => token,
        Err(problem) => {
            report.findings.push(token_file_finding(problem));
            return TokenRead::Unusable;
        }
    };
    let claims = match decode_claims(&token) {
        Ok(claims) => claims,
        Err(e) => {
            report.findings.push(
                Finding::error(
                    Code::TokenMalformed,
                    format!("the token in {} {e}", path.display()),
                    format!(
                        "AWS_WEB_IDENTITY_TOKEN_FILE must name the projected service-account \
                         token the webhook mounts ({WEBHOOK_TOKEN_PATH}), not another file. If \
                         the env is set by hand in the container spec, remove it and let the \
                         webhook set it."
                    ),
                )
                .expected("a JWT: three base64url segments, header.payload.signature")
                .found(format!("a token that {e}")),
            );
            return TokenRead::Rejected(token);
        }
    };
    let now_secs = crate::time::unix_secs(now);
    let mut usable = true;
    if let Some(exp) = claims.exp.filter(|&exp| exp <= now_secs) {
        usable = false;
        report
            .findings
            .push(token_expired_locally(exp, now_secs, &claims));
    }
    if !claims.aud.iter().any(|a| a == &cfg.audience) {
        report
            .findings
            .push(audience_mismatch(&cfg.audience, &claims, None));
    }
    debug!(
        iss = claims.iss.as_deref().unwrap_or(""),
        sub = claims.sub.as_deref().unwrap_or(""),
        aud = ?claims.aud,
        exp = claims.exp,
        "token claims decoded"
    );
    report.token = Some(TokenReport {
        file: path.display().to_string(),
        claims,
    });
    // An expired token cannot succeed at STS; asking would only repeat it.
    if usable {
        TokenRead::Sendable(token)
    } else {
        TokenRead::Rejected(token)
    }
}

fn token_file_finding(problem: TokenFileProblem) -> Finding {
    match problem {
        TokenFileProblem::Missing { path, detail } => Finding::error(
            Code::TokenFileMissing,
            format!("the token file {} does not exist: {detail}", path.display()),
            format!(
                "The webhook mounts the projected token at {WEBHOOK_TOKEN_PATH}. If \
                 AWS_WEB_IDENTITY_TOKEN_FILE was set by hand, point it there; if the volume \
                 is missing, the pod was mutated only in part (recreate it); a dangling \
                 ..data symlink means the kubelet's token volume is broken (restart the pod)."
            ),
        )
        .expected(format!(
            "a projected service-account token at {}",
            path.display()
        ))
        .found(detail),
        TokenFileProblem::Unreadable {
            path,
            detail,
            file,
            process,
        } => {
            let found = match (&file, &process) {
                (Some((mode, uid, gid)), Some(p)) => format!(
                    "file mode {mode:04o}, owner uid {uid} gid {gid}; this process runs as uid {} \
                     gid {} groups {:?}",
                    p.uid, p.gid, p.groups
                ),
                (Some((mode, uid, gid)), None) => {
                    format!("file mode {mode:04o}, owner uid {uid} gid {gid}")
                }
                _ => detail.clone(),
            };
            // fsGroup: 0 would "work" for a root process, by handing the
            // token to the root group; never suggest it.
            let gid = match &process {
                Some(p) if p.gid != 0 => p.gid.to_string(),
                Some(_) => "65532 (any non-zero GID)".to_owned(),
                None => "<the app's gid>".to_owned(),
            };
            Finding::error(
                Code::TokenFileUnreadable,
                format!("cannot read the token file {}: {detail}", path.display()),
                format!(
                    "Set the pod's securityContext.fsGroup (for example fsGroup: {gid}): the \
                     kubelet then makes the token readable by that group. Without fsGroup the \
                     token is readable only by root or by the single UID all containers share \
                     (external-dns#1185)."
                ),
            )
            .expected(format!("{} readable by this process", path.display()))
            .found(found)
        }
        TokenFileProblem::NotAFile { path, kind } => {
            let fix = match kind {
                NotAFile::Directory => {
                    let inside = path.join("token");
                    format!(
                        "AWS_WEB_IDENTITY_TOKEN_FILE must name the token file, not the volume's \
                         directory: point it at {} (the webhook's default is \
                         {WEBHOOK_TOKEN_PATH}), or remove it from the container spec and let \
                         the webhook set it. fsGroup does not help here.",
                        inside.display()
                    )
                }
                NotAFile::SymlinkLoop => format!(
                    "{} is a chain of symlinks that never ends. The kubelet's projected volume \
                     never does this: if the path was made by hand (in the image, or by an init \
                     container), fix or remove the links; otherwise point \
                     AWS_WEB_IDENTITY_TOKEN_FILE at {WEBHOOK_TOKEN_PATH} and recreate the pod.",
                    path.display()
                ),
                _ => format!(
                    "AWS_WEB_IDENTITY_TOKEN_FILE must name the projected token, a regular file; \
                     point it at {WEBHOOK_TOKEN_PATH}, or remove it from the container spec and \
                     let the webhook set it. fsGroup does not help here."
                ),
            };
            Finding::error(
                Code::TokenFileUnreadable,
                format!(
                    "the token path {} is {}, not a file",
                    path.display(),
                    kind.describe()
                ),
                fix,
            )
            .expected(format!(
                "a regular file holding a JWT at {}",
                path.display()
            ))
            .found(kind.describe())
        }
        TokenFileProblem::Malformed { path, detail } => Finding::error(
            Code::TokenMalformed,
            format!(
                "the token file {} is not a usable token: {detail}",
                path.display()
            ),
            format!(
                "AWS_WEB_IDENTITY_TOKEN_FILE must name the projected service-account token \
                 the webhook mounts ({WEBHOOK_TOKEN_PATH}), not another file."
            ),
        )
        .expected("a JWT of at most 20000 characters")
        .found(detail),
    }
}

fn token_expired_locally(exp: i64, now: i64, claims: &Claims) -> Finding {
    let node = claims
        .kubernetes
        .as_ref()
        .and_then(|k| k.node.as_deref())
        .map_or(String::new(), |n| format!(" on node {n}"));
    Finding::error(
        Code::TokenExpired,
        format!(
            "the token expired at {} ({} s ago)",
            format_unix(exp),
            now.saturating_sub(exp)
        ),
        format!(
            "The kubelet refreshes the projected token when it is 80% through its lifetime, so \
             an expired token means the refresh stopped: check the kubelet{node} and that the \
             file is the projected volume, not a copy baked into the image or a Secret. \
             Restarting the pod gets a fresh token. If the node's clock is wrong, fix NTP."
        ),
    )
    .expected(format!("exp after now ({})", format_unix(now)))
    .found(format!("exp {}", format_unix(exp)))
}

fn audience_mismatch(expected: &str, claims: &Claims, sts_message: Option<&str>) -> Finding {
    let found = if claims.aud.is_empty() {
        "no aud claim".to_owned()
    } else {
        format!("aud [{}]", claims.aud.join(", "))
    };
    let message = match sts_message {
        Some(m) => format!("STS rejected the token's audience ({m}); the token has {found}"),
        None => format!("the token's audience does not include {expected}: it has {found}"),
    };
    Finding::error(
        Code::TokenAudienceMismatch,
        message,
        format!(
            "The IAM OIDC provider accepts only its registered client IDs (normally \
             sts.amazonaws.com). Set the ServiceAccount annotation \
             eks.amazonaws.com/audience={expected} (or remove it for the default) and recreate \
             the pod, or register the token's audience on the provider: aws iam \
             add-client-id-to-open-id-connect-provider --open-id-connect-provider-arn <provider \
             ARN> --client-id <audience>. If your provider really uses another audience, pass \
             --audience."
        ),
    )
    .expected(format!("aud containing {expected}"))
    .found(found)
}

/// The result of retrying `AssumeRoleWithWebIdentity` until an answer is final.
struct AssumeOutcome {
    result: Result<Assumed, Failure>,
    attempts: u32,
    endpoint: Option<String>,
    /// STS's clock minus ours, from the last attempt that got an answer.
    clock_offset: Option<i64>,
}

async fn assume_with_retries(
    cfg: &CheckConfig,
    sts: &Sts,
    role: &RoleArn,
    token: &RawToken,
    deadline: Instant,
) -> AssumeOutcome {
    let started = Instant::now();
    let role_arn = role.to_string();
    let mut attempts = 0u32;
    let mut endpoint = None;
    let mut clock_offset = None;
    // The last failure STS itself answered: when a final attempt only runs
    // out of time, this says more than "no answer".
    let mut last_answered: Option<Failure> = None;
    loop {
        attempts += 1;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let attempt = tokio::time::timeout(
            remaining,
            sts.assume_role_with_web_identity(&role_arn, token, &cfg.session_name, remaining),
        )
        .await;
        let result = match attempt {
            Ok(attempt) => {
                endpoint = attempt.endpoint.or(endpoint);
                clock_offset = attempt.clock_offset.or(clock_offset);
                attempt.result
            }
            Err(_) => Err(Failure {
                kind: FailureKind::Unreachable,
                code: None,
                message: format!(
                    "no answer within the {} deadline",
                    humantime::format_duration(cfg.timeout)
                ),
                http_status: None,
                request_id: None,
                timed_out: true,
            }),
        };
        let failure = match result {
            Ok(assumed) => {
                debug!(attempts, arn = %assumed.arn, "AssumeRoleWithWebIdentity succeeded");
                return AssumeOutcome {
                    result: Ok(assumed),
                    attempts,
                    endpoint,
                    clock_offset,
                };
            }
            Err(failure) => failure,
        };
        let retry_denied =
            failure.kind == FailureKind::AccessDenied && started.elapsed() < cfg.retry_denied_for;
        let delay = backoff(INITIAL_BACKOFF, attempts);
        if !(failure.kind.is_transient() || retry_denied) || Instant::now() + delay >= deadline {
            let failure = match last_answered {
                Some(answered) if failure.timed_out => answered,
                _ => failure,
            };
            return AssumeOutcome {
                result: Err(failure),
                attempts,
                endpoint,
                clock_offset,
            };
        }
        info!(
            attempt = attempts,
            code = failure.code.as_deref().unwrap_or(""),
            error = %failure.message,
            retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            "STS did not give a final answer; retrying"
        );
        if failure.code.is_some() {
            last_answered = Some(failure);
        }
        tokio::time::sleep(delay).await;
    }
}

/// Exponential backoff with "equal jitter": half the step fixed, half
/// random, so a fleet started together spreads out.
pub fn backoff(initial: Duration, attempt: u32) -> Duration {
    let step = initial
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    let half = step / 2;
    half + half.mul_f64(fastrand::f64())
}

async fn resolve_chain(
    sts: &Sts,
    deadline: Instant,
    token: Option<&RawToken>,
) -> Result<ChainOutcome, String> {
    tokio::time::timeout_at(deadline.into(), sts.default_chain(token))
        .await
        .map_err(|_| "did not finish before the --timeout deadline".to_owned())
}

fn record_chain(
    report: &mut Report,
    chain: &Result<ChainOutcome, String>,
    web_identity_arn: Option<&str>,
) {
    report.default_chain = match chain {
        Err(e) => ChainReport {
            error: Some(e.clone()),
            ..ChainReport::default()
        },
        Ok(ChainOutcome::NoCredentials) => ChainReport::default(),
        Ok(ChainOutcome::Failed { message, .. }) => ChainReport {
            error: Some(message.clone()),
            ..ChainReport::default()
        },
        Ok(ChainOutcome::WebIdentity) => ChainReport {
            provider: Some(ChainSource::WebIdentity.as_str().to_owned()),
            arn: web_identity_arn.map(str::to_owned),
            error: None,
        },
        Ok(ChainOutcome::Other { source, identity }) => ChainReport {
            provider: Some(source.as_str().to_owned()),
            arn: identity.as_ref().ok().cloned(),
            error: identity.as_ref().err().cloned(),
        },
    };
}

/// "this pod would act as ..." for the default chain's outcome.
fn would_act_as(chain: &Result<ChainOutcome, String>) -> String {
    match chain {
        Ok(ChainOutcome::Other {
            source,
            identity: Ok(arn),
        }) => format!(
            "this pod would act as {arn} (credentials from {})",
            source_words(source)
        ),
        Ok(ChainOutcome::Other {
            source,
            identity: Err(e),
        }) => format!(
            "this pod would use credentials from {}, whose identity STS would not confirm: {e}",
            source_words(source)
        ),
        Ok(ChainOutcome::NoCredentials) => {
            "this pod would find no AWS credentials at all".to_owned()
        }
        Ok(ChainOutcome::Failed { message, .. }) => {
            format!("the default credential chain fails: {message}")
        }
        Ok(ChainOutcome::WebIdentity) => "this pod would use web identity".to_owned(),
        Err(e) => format!("the default credential chain {e}"),
    }
}

fn source_words(source: &ChainSource) -> &'static str {
    match source {
        ChainSource::Environment => "environment variables (AWS_ACCESS_KEY_ID)",
        ChainSource::Profile => "a shared config or credentials file profile",
        ChainSource::WebIdentity => "web identity",
        ChainSource::Container => "the container credentials endpoint (EKS Pod Identity or ECS)",
        ChainSource::Imds => "the node's instance profile through IMDS",
        ChainSource::Unknown => "an unidentified provider",
    }
}

fn env_not_injected(
    cfg: &CheckConfig,
    env: &AwsEnv,
    report: &Report,
    chain: &Result<ChainOutcome, String>,
) -> Finding {
    let missing: Vec<&str> = [
        ("AWS_ROLE_ARN", env.role_arn.is_none()),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", env.token_file.is_none()),
    ]
    .into_iter()
    .filter_map(|(name, missing)| missing.then_some(name))
    .collect();
    let partial = if missing.len() == 1 {
        " One of the two is set: when the container spec sets either, the webhook adds \
         neither, so set both by hand or remove the one that is there."
    } else {
        ""
    };
    let ns = cfg.namespace.as_deref().unwrap_or("<namespace>");
    let sa = cfg
        .service_account
        .as_deref()
        .unwrap_or("<service account>");
    let role = report
        .expected_role_arn
        .as_deref()
        .unwrap_or("arn:aws:iam::<account>:role/<name>");
    Finding::error(
        Code::EnvNotInjected,
        format!(
            "{} not set in this container, so IRSA is not in use: {}",
            missing.join(" and "),
            would_act_as(chain)
        ),
        format!(
            "1. Annotate the ServiceAccount: kubectl annotate serviceaccount -n {ns} {sa} \
             eks.amazonaws.com/role-arn={role}\n\
             2. Make sure the pod's spec.serviceAccountName is that ServiceAccount.\n\
             3. Recreate the pod (kubectl rollout restart): the webhook mutates pods only at \
             creation, so a pod created before the annotation, or while the webhook was down, \
             never gets the env.\n\
             4. Check that the pod identity webhook is running and that this container is not \
             listed in the pod annotation eks.amazonaws.com/skip-containers.{partial}"
        ),
    )
    .expected(match &report.expected_role_arn {
        Some(role) => {
            format!("AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE injected, acting as {role}")
        }
        None => "AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE injected by the webhook".to_owned(),
    })
    .found(would_act_as(chain))
}

/// The trust-policy statement that would admit this token into `role`.
fn trust_policy(role: &RoleArn, claims: &Claims, audience: &str) -> String {
    let provider = claims
        .iss
        .as_deref()
        .map(|iss| iss.trim_start_matches("https://").trim_end_matches('/'))
        .unwrap_or("oidc.eks.<region>.amazonaws.com/id/<id>");
    let sub = claims
        .sub
        .as_deref()
        .unwrap_or("system:serviceaccount:<namespace>:<service account>");
    // Written out by hand to keep the key order of AWS's documentation;
    // values go through serde_json for escaping.
    let q = |v: &str| serde_json::Value::from(v).to_string();
    let federated = format!(
        "arn:{}:iam::{}:oidc-provider/{provider}",
        role.partition, role.account
    );
    format!(
        r#"{{
  "Version": "2012-10-17",
  "Statement": [{{
    "Effect": "Allow",
    "Principal": {{"Federated": {}}},
    "Action": "sts:AssumeRoleWithWebIdentity",
    "Condition": {{"StringEquals": {{
      {}: {},
      {}: {}
    }}}}
  }}]
}}"#,
        q(&federated),
        q(&format!("{provider}:sub")),
        q(sub),
        q(&format!("{provider}:aud")),
        q(audience),
    )
}

fn sts_finding(
    cfg: &CheckConfig,
    failure: &Failure,
    role: Option<&RoleArn>,
    claims: Option<&Claims>,
    sts: &StsReport,
    attempts: u32,
    elapsed: Duration,
) -> Finding {
    let default_claims = Claims::default();
    let claims = claims.unwrap_or(&default_claims);
    let iss = claims.iss.as_deref().unwrap_or("(no iss claim)");
    let endpoint = sts.endpoint.as_deref().unwrap_or("(unknown endpoint)");
    let region = sts.region.as_deref().unwrap_or("(unknown region)");
    let role_text = role.map_or_else(String::new, ToString::to_string);
    let account = role.map_or("<account>", |r| r.account.as_str());
    let answered = match (&failure.code, failure.http_status) {
        (Some(code), _) => format!("{code}: {}", failure.message),
        (None, Some(status)) => format!("HTTP {status}: {}", failure.message),
        (None, None) => failure.message.clone(),
    };
    let tried = format!(
        "{attempts} attempt{} over {:.1} s",
        if attempts == 1 { "" } else { "s" },
        elapsed.as_secs_f64()
    );
    match failure.kind {
        FailureKind::OidcProviderMissing => Finding::error(
            Code::OidcProviderMissing,
            format!("account {account} has no IAM OIDC provider for the token's issuer {iss}"),
            format!(
                "Create the provider in the role's account ({account}): eksctl utils \
                 associate-iam-oidc-provider --cluster <cluster> --approve, or aws iam \
                 create-open-id-connect-provider --url {iss} --client-id-list sts.amazonaws.com. \
                 If the role lives in another account than the cluster, the provider must exist \
                 in the role's account."
            ),
        )
        .expected(format!("an IAM OIDC provider for {iss} in account {account}"))
        .found(answered),
        FailureKind::AudienceMismatch => audience_mismatch(&cfg.audience, claims, Some(&answered)),
        FailureKind::Thumbprint => Finding::error(
            Code::TokenRejected,
            format!("STS rejected the token: the IAM OIDC provider's thumbprint does not match {iss}'s certificate"),
            "Update the provider's thumbprint (aws iam update-open-id-connect-provider-thumbprint), \
             or recreate it with eksctl utils associate-iam-oidc-provider.",
        )
        .expected(format!("the provider's thumbprint matching {iss}'s TLS certificate"))
        .found(answered),
        FailureKind::TokenRejected => Finding::error(
            Code::TokenRejected,
            format!("STS rejected the token from {iss}"),
            "Check that the token comes from this cluster's issuer and that the IAM OIDC \
             provider for that issuer exists in the role's account with client ID \
             sts.amazonaws.com; a token copied from another cluster or a hand-made JWT is \
             refused.",
        )
        .expected(format!("a token STS validates against the IAM OIDC provider for {iss}"))
        .found(answered),
        FailureKind::TokenExpired => Finding::error(
            Code::TokenExpired,
            "STS says the token has expired".to_owned(),
            "The kubelet refreshes the projected token at 80% of its lifetime: if STS calls it \
             expired, the refresh stopped or the node's clock is wrong. Restart the pod and \
             check the kubelet and NTP on the node.",
        )
        .expected(format!(
            "a token STS considers unexpired (exp {})",
            claims.exp.map_or("(none)".to_owned(), format_unix)
        ))
        .found(answered),
        FailureKind::AccessDenied => {
            let policy = role.map_or_else(String::new, |r| trust_policy(r, claims, &cfg.audience));
            let name = role.map_or("<role>", |r| r.name.as_str());
            Finding::error(
                Code::TrustPolicyDenied,
                format!(
                    "STS denied AssumeRoleWithWebIdentity on {role_text}: its trust policy does \
                     not admit this token, or the role does not exist"
                ),
                format!(
                    "Make the role's trust policy admit this pod (aws iam update-assume-role-policy \
                     --role-name {name} --policy-document file://trust.json), with trust.json:\n\
                     {policy}\n\
                     Common mistakes: a sub naming another namespace or service account; \
                     StringEquals with a * (use StringLike); oidc.<region>.eks instead of \
                     oidc.eks.<region>; an aud of sts.amazon.com; the provider of another account \
                     or cluster. IAM is eventually consistent: right after a change, STS may deny \
                     for 10-30 s (--retry-denied-for 30s rides that out)."
                ),
            )
            .expected(format!(
                "a trust policy on {role_text} admitting sub {}",
                claims.sub.as_deref().unwrap_or("(no sub claim)")
            ))
            .found(format!(
                "{answered}; token iss {iss}, sub {}, aud [{}]",
                claims.sub.as_deref().unwrap_or("(none)"),
                claims.aud.join(", ")
            ))
        }
        FailureKind::RegionDisabled => Finding::error(
            Code::RegionDisabled,
            format!("STS is not activated in {region} for account {account}"),
            format!(
                "Activate STS in {region} (IAM console, Account settings, Security Token Service \
                 endpoints), or set AWS_REGION to a region where it is active."
            ),
        )
        .expected(format!("STS activated in {region} for account {account}"))
        .found(answered),
        FailureKind::InvalidRoleArn => Finding::error(
            Code::RoleArnInvalid,
            format!("STS says the role ARN {role_text} is invalid"),
            "Fix the eks.amazonaws.com/role-arn annotation on the ServiceAccount and recreate \
             the pod.",
        )
        .expected("arn:aws:iam::<12-digit account>:role/<optional path/><name>")
        .found(answered),
        FailureKind::Throttled => Finding::error(
            Code::StsThrottled,
            format!("STS throttled every attempt ({tried})"),
            "Usually transient: the check is retried. If it persists, find what else in this \
             account calls STS so often (CloudTrail), or raise --timeout.",
        )
        .expected("an answer from STS within --timeout")
        .found(answered),
        FailureKind::IdpUnreachable => Finding::error(
            Code::IdpUnreachable,
            format!("STS could not fetch the signing keys of the token's issuer {iss} ({tried})"),
            "Usually transient on AWS's side, and retried. If it persists, check that the \
             issuer's /.well-known/openid-configuration and JWKS are reachable from the \
             internet (self-managed clusters must publish them).",
        )
        .expected(format!("STS able to fetch {iss}'s signing keys"))
        .found(answered),
        FailureKind::TlsUntrusted => Finding::error(
            Code::StsUnreachable,
            format!("could not reach STS at {endpoint}: the TLS handshake failed ({tried})"),
            "The container must trust the endpoint's certificate: put a CA bundle at \
             /etc/ssl/certs/ca-certificates.crt (or name one with SSL_CERT_FILE). Behind a \
             TLS-intercepting proxy, that bundle must hold the proxy's CA.",
        )
        .expected(format!("a certificate for {endpoint} that this container trusts"))
        .found(answered),
        FailureKind::Unreachable => Finding::error(
            Code::StsUnreachable,
            format!("could not reach STS at {endpoint} ({tried})"),
            format!(
                "From a private VPC, create an STS interface endpoint \
                 (com.amazonaws.{region}.sts) or allow HTTPS egress to it; check \
                 NetworkPolicies, security groups, DNS and HTTPS_PROXY/NO_PROXY. \
                 AWS_ENDPOINT_URL_STS, when set, overrides the endpoint."
            ),
        )
        .expected(format!("an HTTP answer from {endpoint} within --timeout"))
        .found(answered),
        FailureKind::Unexpected { .. } => Finding::error(
            Code::StsError,
            format!("STS at {endpoint} answered unexpectedly ({tried})"),
            "Check what answers at that endpoint: a proxy, a captive portal or a wrong \
             AWS_ENDPOINT_URL_STS gives answers that are not STS's. A 5xx from STS itself is \
             transient.",
        )
        .expected("an STS XML answer")
        .found(answered),
    }
}

fn shadow_findings(env: &AwsEnv, chain: &Result<ChainOutcome, String>, report: &mut Report) {
    let has = |name: &str| env.static_keys.contains(&name);
    let remove = "Remove these variables from the container spec; look in env, envFrom Secrets \
                  and ConfigMaps, and the image's own ENV.";
    let set = format!("{} set", env.static_keys.join(", "));
    let finding = match (has("AWS_ACCESS_KEY_ID"), has("AWS_SECRET_ACCESS_KEY")) {
        (true, true) => Some(Finding::error(
            Code::StaticCredentialsShadow,
            format!(
                "{set} in this container: every AWS SDK uses static keys from the environment \
                 before web identity, so the app ignores IRSA"
            ),
            remove,
        )),
        (true, false) | (false, true) => Some(Finding::error(
            Code::StaticCredentialsShadow,
            format!(
                "{set} in this container, half a key pair: botocore (boto3, the AWS CLI) fails \
                 with PartialCredentialsError instead of using IRSA; other SDKs skip it"
            ),
            remove,
        )),
        (false, false) if has("AWS_SESSION_TOKEN") => Some(Finding::warning(
            Code::StaticCredentialsShadow,
            format!(
                "{set} in this container without a key pair: SDKs ignore it, but it is a leftover"
            ),
            remove,
        )),
        (false, false) => None,
    };
    if let Some(f) = finding {
        report.findings.push(
            f.expected("no AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or AWS_SESSION_TOKEN")
                .found(set),
        );
    }
    if !env.container_credentials.is_empty() {
        // The EKS user guide: the container provider comes after web identity
        // in the SDKs' chains, so credentials earlier in the chain keep being
        // used even with a Pod Identity association.
        report.findings.push(
            Finding::warning(
                Code::StaticCredentialsShadow,
                format!(
                    "{} set in this container beside IRSA: EKS Pod Identity (or ECS) is \
                     configured too. Current AWS SDKs search web identity first and keep using \
                     IRSA; a client without web-identity support uses Pod Identity instead",
                    env.container_credentials.join(", ")
                ),
                "Use one mechanism: delete the EKS Pod Identity association for this service \
                 account (aws eks delete-pod-identity-association), or drop the IRSA \
                 annotation and verify Pod Identity instead.",
            )
            .expected("no AWS_CONTAINER_CREDENTIALS_* variables beside IRSA")
            .found(format!("{} set", env.container_credentials.join(", "))),
        );
    }
    if let Ok(ChainOutcome::Other {
        source: ChainSource::Profile,
        ..
    }) = chain
    {
        let profile = env.profile.as_deref().unwrap_or("default");
        report.findings.push(
            Finding::error(
                Code::StaticCredentialsShadow,
                format!(
                    "the shared config profile {profile:?} provides credentials: SDKs read \
                     profiles before web identity, so the app ignores IRSA"
                ),
                "Remove the credentials from ~/.aws/credentials or ~/.aws/config in the image \
                 (or the files AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE name), or unset \
                 AWS_PROFILE.",
            )
            .expected("no profile with credentials")
            .found(format!("profile {profile} with credentials")),
        );
    }
}

fn chain_mismatch(
    chain: &Result<ChainOutcome, String>,
    ours_passed: bool,
    report: &Report,
) -> Option<Finding> {
    let expected = report
        .expected_role_arn
        .clone()
        .unwrap_or_else(|| "the IRSA role".to_owned());
    const SDK_ADVICE: &str = "irsa-doctor cannot see the app's SDK: old SDKs have no web \
        identity at all (minimums: boto3 1.9.220, AWS CLI 1.16.232, Java v2 2.10.11, Java v1 \
        1.11.704 with the STS module, Go v1 1.23.13, JS v2 2.525.0 / v3 3.27.0, Ruby 3.58.0, \
        .NET 3.3.659.1, PHP 3.110.7).";
    match chain {
        Ok(ChainOutcome::Other { source, .. }) => Some(
            Finding::error(
                Code::DefaultChainMismatch,
                format!(
                    "an AWS SDK in this container would not use IRSA: {}",
                    would_act_as(chain)
                ),
                format!(
                    "Remove the credentials the chain found first ({}) so that web identity is \
                     reached. {SDK_ADVICE}",
                    source_words(source)
                ),
            )
            .expected(format!(
                "the default credential chain uses web identity, acting as {expected}"
            ))
            .found(would_act_as(chain)),
        ),
        Ok(ChainOutcome::Failed {
            message,
            web_identity,
        }) if ours_passed => {
            let (what, remedy) = if *web_identity {
                (
                    "the default credential chain's own AssumeRoleWithWebIdentity failed where \
                     irsa-doctor's succeeded",
                    format!(
                        "Usually transient (throttling, a 5xx, IAM propagation): an app's SDK \
                         retries the same way. If it persists, compare the two calls: the SDK \
                         uses AWS_ROLE_SESSION_NAME or its own session name and the default \
                         session duration. {SDK_ADVICE}"
                    ),
                )
            } else {
                (
                    "the default credential chain fails before it reaches web identity",
                    format!(
                        "A provider before web identity stops the chain: usually a broken \
                         profile in ~/.aws/config (or the files AWS_CONFIG_FILE and \
                         AWS_SHARED_CREDENTIALS_FILE name). {SDK_ADVICE}"
                    ),
                )
            };
            Some(
                Finding::warning(
                    Code::DefaultChainMismatch,
                    format!("{what}: {message}"),
                    remedy,
                )
                .expected("the default credential chain uses web identity")
                .found(message.clone()),
            )
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let initial = Duration::from_millis(200);
        for _ in 0..100 {
            let first = backoff(initial, 1);
            assert!(
                first >= Duration::from_millis(100) && first <= initial,
                "{first:?}"
            );
            let third = backoff(initial, 3);
            assert!(third >= Duration::from_millis(400) && third <= Duration::from_millis(800));
            assert!(backoff(initial, 40) <= MAX_BACKOFF);
        }
    }

    #[test]
    fn a_root_process_is_never_told_to_set_fsgroup_zero() {
        let finding = token_file_finding(TokenFileProblem::Unreadable {
            path: "/var/run/secrets/eks.amazonaws.com/serviceaccount/token".into(),
            detail: "open failed: Permission denied".into(),
            file: Some((0o600, 65534, 65534)),
            process: Some(crate::token::ProcessIds {
                uid: 0,
                gid: 0,
                groups: vec![],
            }),
        });
        assert!(!finding.remedy.contains("fsGroup: 0"), "{}", finding.remedy);
        assert!(
            finding.remedy.contains("fsGroup: 65532"),
            "{}",
            finding.remedy
        );
    }

    #[test]
    fn clock_skew_is_past_five_minutes_either_way() {
        assert!(clock_skew(300).is_none());
        assert!(clock_skew(-300).is_none());
        let ahead = clock_skew(-7200).unwrap();
        assert!(ahead.message.contains("2h ahead of"), "{}", ahead.message);
        let behind = clock_skew(301).unwrap();
        assert!(behind.message.contains("behind"), "{}", behind.message);
        assert_eq!(behind.code, Code::ClockSkew);
    }

    #[test]
    fn trust_policy_names_real_account_provider_and_subject() {
        let role = RoleArn::parse("arn:aws:iam::111122223333:role/app").unwrap();
        let claims = Claims {
            iss: Some("https://oidc.eks.eu-west-1.amazonaws.com/id/ABC".into()),
            sub: Some("system:serviceaccount:pay:app".into()),
            ..Claims::default()
        };
        let policy: serde_json::Value =
            serde_json::from_str(&trust_policy(&role, &claims, "sts.amazonaws.com")).unwrap();
        let statement = &policy["Statement"][0];
        assert_eq!(
            statement["Principal"]["Federated"],
            "arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC"
        );
        assert_eq!(
            statement["Condition"]["StringEquals"]["oidc.eks.eu-west-1.amazonaws.com/id/ABC:sub"],
            "system:serviceaccount:pay:app"
        );
    }
}
