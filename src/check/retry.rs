//! The retry policy: the check's deadline, and the one loop that asks a
//! peer (STS's `AssumeRoleWithWebIdentity` and `GetCallerIdentity`, the
//! EKS Pod Identity agent, IAM's simulator) until an answer is final or
//! the deadline comes, with jittered exponential backoff; and how it logs
//! its retries: once per outage, not once per retry.
//!
//! What differs between the peers is a [`Plan`] (the backoff, how many
//! attempts, whether a refusal is ridden out) and a [`Failed`] (what
//! counts as transient, as a refusal, as an answer); how an attempt is
//! made is the caller's closure. Everything else, the deadline's cut
//! included, is said once, here.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::{debug, info};

use super::CheckConfig;
use crate::identity::arn::RoleArn;
use crate::identity::token::RawToken;
use crate::peers::sts::{Assumed, Failure, FailureKind, Sts};

/// First retry delay; doubles per attempt up to [`MAX_BACKOFF`].
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How much longer than the time left a peer's own client may take: the
/// loop's cut at the deadline then fires first, and says the same for
/// every peer, instead of whichever client's timer won the race.
const CLIENT_SLACK: Duration = Duration::from_millis(250);

/// `started + timeout`, saturating: a huge `--timeout` means "no deadline
/// worth speaking of", not an overflow.
pub fn deadline(started: Instant, timeout: Duration) -> Instant {
    started
        .checked_add(timeout)
        .unwrap_or_else(|| started + Duration::from_secs(86_400 * 365))
}

/// What differs in how the loop retries one peer.
pub(super) struct Plan {
    pub peer: Peer,
    /// When the check must have its answer.
    pub deadline: Instant,
    /// `--timeout`, named when the deadline cuts an attempt off.
    pub timeout: Duration,
    /// The first retry's delay, doubled per attempt ([`backoff`]).
    pub initial_backoff: Duration,
    /// The most attempts: IAM's rate limits, shared by the account, allow
    /// a check two; the others ask until the deadline.
    pub max_attempts: u32,
    /// How long a refusal is asked again (`--retry-denied-for`): a new
    /// association or trust policy takes a moment to reach STS and EKS
    /// Auth. Zero: a refusal is final.
    pub retry_denied_for: Duration,
    /// Whether the last failure that came with an answer stands in for a
    /// final attempt that got none: when a final attempt only runs out of
    /// time, the earlier answer says more than "no answer" (and does not
    /// depend on how busy the machine was when the deadline came).
    pub last_answer_stands: bool,
}

impl Plan {
    /// Transient trouble of `peer` asked again with the check's backoff
    /// until the deadline; a refusal is final.
    pub fn until(peer: Peer, deadline: Instant, timeout: Duration) -> Plan {
        Plan {
            peer,
            deadline,
            timeout,
            initial_backoff: INITIAL_BACKOFF,
            max_attempts: u32::MAX,
            retry_denied_for: Duration::ZERO,
            last_answer_stands: false,
        }
    }
}

/// A peer's failure, as the loop reads it.
pub(super) trait Failed {
    /// Asking again could give another answer.
    fn transient(&self) -> bool;
    /// A refusal that `--retry-denied-for` rides out.
    fn denied(&self) -> bool;
    /// It came with the peer's answer (a status, an error code).
    fn answered(&self) -> bool;
    /// It says less than an earlier answer would (see
    /// [`Plan::last_answer_stands`]).
    fn says_less_than_an_answer(&self) -> bool;
    /// Why the attempt is retried, for the retry's log line.
    fn cause(&self) -> Cause<'_>;
    /// The failure of an attempt the deadline cut off, saying `why`.
    fn cut_off(why: String) -> Self;
}

impl Failed for Failure {
    fn transient(&self) -> bool {
        self.kind.is_transient()
    }

    fn denied(&self) -> bool {
        self.kind == FailureKind::AccessDenied
    }

    fn answered(&self) -> bool {
        self.code.is_some() || self.http_status.is_some()
    }

    fn says_less_than_an_answer(&self) -> bool {
        self.timed_out
    }

    fn cause(&self) -> Cause<'_> {
        Cause {
            error_code: self.code.as_deref(),
            status: self.http_status,
            error: &self.message,
        }
    }

    fn cut_off(why: String) -> Self {
        Failure {
            timed_out: true,
            ..Failure::new(FailureKind::Unreachable, why)
        }
    }
}

impl Failed for crate::peers::agent::Failure {
    fn transient(&self) -> bool {
        self.kind.is_transient()
    }

    fn denied(&self) -> bool {
        use crate::peers::agent::FailureKind::{AssociationMissing, TrustDenied};
        matches!(self.kind, TrustDenied | AssociationMissing)
    }

    fn answered(&self) -> bool {
        self.status.is_some()
    }

    fn says_less_than_an_answer(&self) -> bool {
        self.status.is_none()
    }

    fn cause(&self) -> Cause<'_> {
        Cause {
            error_code: None,
            status: self.status,
            error: &self.detail,
        }
    }

    fn cut_off(why: String) -> Self {
        crate::peers::agent::Failure {
            kind: crate::peers::agent::FailureKind::Unreachable,
            status: None,
            detail: why,
        }
    }
}

/// What the loop ends with.
pub(super) struct Retried<T, F> {
    pub result: Result<T, F>,
    pub attempts: u32,
    /// The last attempt was cut off by the deadline (always the last: no
    /// time is left for another), so the caller's closure did not see its
    /// end.
    pub cut_off: bool,
}

/// The one retry loop: `attempt` (given the time left) until its answer
/// is final, the attempts run out, or the next try would start after the
/// deadline. Each attempt is cut off at the deadline; `read` takes what an
/// attempt that finished gave (recording what it tells besides its
/// result) and returns its result.
pub(super) async fn retry<A, T, F: Failed, Fut>(
    plan: &Plan,
    mut attempt: impl FnMut(Duration) -> Fut,
    mut read: impl FnMut(A) -> Result<T, F>,
) -> Retried<T, F>
where
    Fut: Future<Output = A>,
{
    let started = Instant::now();
    let mut attempts = 0u32;
    let mut last_answered: Option<F> = None;
    loop {
        attempts += 1;
        let remaining = plan.deadline.saturating_duration_since(Instant::now());
        let cut = tokio::time::timeout_at(plan.deadline.into(), attempt(remaining + CLIENT_SLACK));
        let (result, cut_off) = match cut.await {
            Ok(answer) => (read(answer), false),
            Err(_) => (Err(F::cut_off(no_answer(plan.timeout))), true),
        };
        let failure = match result {
            Ok(ok) => {
                log_answered(plan.peer);
                let result = Ok(ok);
                return Retried {
                    result,
                    attempts,
                    cut_off,
                };
            }
            Err(failure) => failure,
        };
        let retry_denied = failure.denied() && started.elapsed() < plan.retry_denied_for;
        let delay = backoff(plan.initial_backoff, attempts);
        let again = (failure.transient() || retry_denied)
            && attempts < plan.max_attempts
            && Instant::now() + delay < plan.deadline;
        if !again {
            if !failure.transient() {
                log_answered(plan.peer);
            }
            let failure = match last_answered {
                Some(answered) if plan.last_answer_stands && failure.says_less_than_an_answer() => {
                    answered
                }
                _ => failure,
            };
            return Retried {
                result: Err(failure),
                attempts,
                cut_off,
            };
        }
        log_retry(plan.peer, attempts, &failure.cause(), delay);
        if failure.answered() {
            last_answered = Some(failure);
        }
        tokio::time::sleep(delay).await;
    }
}

/// What every peer's failure says when the deadline cut its attempt off.
fn no_answer(timeout: Duration) -> String {
    format!(
        "no answer within the --timeout deadline ({})",
        humantime::format_duration(timeout)
    )
}

/// The result of retrying `AssumeRoleWithWebIdentity` until an answer is final.
pub(super) struct AssumeOutcome {
    pub result: Result<Assumed, Failure>,
    pub attempts: u32,
    pub endpoint: Option<String>,
    /// STS's clock minus ours, from the last attempt that got an answer.
    pub clock_offset: Option<i64>,
}

/// Asks STS to assume `role` with `token` until an answer is final:
/// transient trouble (and, for `--retry-denied-for`, a denial) is retried
/// with jittered backoff until the deadline.
pub(super) async fn assume_with_retries(
    cfg: &CheckConfig,
    sts: &Sts,
    role: &RoleArn,
    token: &RawToken,
    deadline: Instant,
) -> AssumeOutcome {
    assume_named(cfg, sts, role, token, &cfg.session_name, deadline).await
}

/// [`assume_with_retries`] with another session name than irsa-doctor's:
/// a profile chain's root sends the one aws-config would.
pub(super) async fn assume_named(
    cfg: &CheckConfig,
    sts: &Sts,
    role: &RoleArn,
    token: &RawToken,
    session_name: &str,
    deadline: Instant,
) -> AssumeOutcome {
    let plan = Plan {
        retry_denied_for: cfg.retry_denied_for,
        last_answer_stands: true,
        ..Plan::until(Peer::Sts, deadline, cfg.timeout)
    };
    let role_arn = &role.to_string();
    // What the attempts so far have shown, besides their results.
    let (mut endpoint, mut clock_offset) = (None, None);
    let retried = retry(
        &plan,
        |remaining| sts.assume_role_with_web_identity(role_arn, token, session_name, remaining),
        |attempt| {
            endpoint = attempt.endpoint.or(endpoint.take());
            clock_offset = attempt.clock_offset.or(clock_offset);
            let at = endpoint.as_deref();
            attempt
                .result
                .map_err(|f| super::endpoints::fips_missing(sts, at, f))
        },
    )
    .await;
    if let Ok(assumed) = &retried.result {
        debug!(attempts = retried.attempts, arn = %assumed.arn, "AssumeRoleWithWebIdentity succeeded");
    }
    AssumeOutcome {
        result: retried.result,
        attempts: retried.attempts,
        endpoint,
        clock_offset,
    }
}

/// The result of asking the EKS Pod Identity agent until an answer is
/// final.
pub(super) struct AgentOutcome {
    pub result: Result<crate::peers::agent::Issued, crate::peers::agent::Failure>,
    pub attempts: u32,
    /// The HTTP status of the last answer, if any.
    pub status: Option<u16>,
}

/// Asks the agent at `uri` until its answer is final: no answer, a 429
/// and EKS Auth's transient failures are retried with the same jittered
/// backoff as STS, until the deadline.
///
/// Every answer is also kept in `replay`, so that the default chain's own
/// request to the agent, which follows, gets the last one instead of
/// asking again.
pub(super) async fn ask_agent_with_retries(
    cfg: &CheckConfig,
    uri: &hyper::Uri,
    token: &RawToken,
    deadline: Instant,
    replay: &crate::peers::traffic::Replay,
    counters: &crate::peers::traffic::StsCounters,
) -> AgentOutcome {
    let plan = Plan {
        retry_denied_for: cfg.retry_denied_for,
        last_answer_stands: true,
        ..Plan::until(Peer::Agent, deadline, cfg.timeout)
    };
    let mut last_status = None;
    let retried = retry(
        &plan,
        |remaining| crate::peers::agent::ask(uri, token, remaining),
        |answer| {
            last_status = match &answer {
                crate::peers::agent::Answer::Http { status, body, cut } => {
                    if !cut {
                        replay.set(uri, *status, body.clone());
                    }
                    Some(*status)
                }
                crate::peers::agent::Answer::NoAnswer(_) => None,
            };
            counters.count_agent(last_status);
            crate::peers::agent::judge(answer)
        },
    )
    .await;
    if retried.cut_off {
        // A request without an answer all the same.
        counters.count_agent(None);
    }
    let status = match &retried.result {
        Ok(_) => {
            let attempts = retried.attempts;
            debug!(
                attempts,
                "the EKS Pod Identity agent handed out credentials"
            );
            last_status
        }
        // The failure that stands: the last, or the last answered.
        Err(failure) => failure.status,
    };
    AgentOutcome {
        result: retried.result,
        attempts: retried.attempts,
        status,
    }
}

/// A peer the check retries: each has its own outage episodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Peer {
    /// `AssumeRoleWithWebIdentity` and `GetCallerIdentity`.
    Sts,
    /// EKS Pod Identity's agent.
    Agent,
    /// IAM's policy simulator (`--require`).
    Iam,
}

impl Peer {
    fn as_str(self) -> &'static str {
        match self {
            Peer::Sts => "STS",
            Peer::Agent => "the EKS Pod Identity agent",
            Peer::Iam => "IAM",
        }
    }

    fn index(self) -> usize {
        match self {
            Peer::Sts => 0,
            Peer::Agent => 1,
            Peer::Iam => 2,
        }
    }
}

/// An outage as the log tells it: the retries of one peer from the first
/// one after it last answered for good to the next time it does, across
/// `serve`'s checks. In a one-minute outage at `--interval 1s` that is
/// some 60 checks, each retrying; one line when it starts and one when it
/// ends keep the log within its budget (10 KB a failing pod-day).
#[derive(Debug)]
struct Episode {
    /// Retries so far; 0 outside an episode.
    retries: u64,
    /// Calls (one per check and peer) that retried.
    calls: u64,
    /// When the first retry was logged.
    started: Option<Instant>,
}

impl Episode {
    const NONE: Episode = Episode {
        retries: 0,
        calls: 0,
        started: None,
    };

    /// Notes a retry (`first_of_call`: its call's first); whether it is the
    /// episode's first, the one worth a line at INFO.
    fn retry(&mut self, first_of_call: bool, now: Instant) -> bool {
        let first = self.retries == 0;
        if first {
            self.started = Some(now);
        }
        self.retries += 1;
        self.calls += u64::from(first_of_call || first);
        first
    }

    /// Notes that the peer answered for good: the retries, calls and
    /// length of the episode this ends, if one was under way.
    fn answered(&mut self, now: Instant) -> Option<(u64, u64, Duration)> {
        if self.retries == 0 {
            return None;
        }
        let ended = std::mem::replace(self, Episode::NONE);
        let lasted = ended.started.map_or(Duration::ZERO, |s| now - s);
        Some((ended.retries, ended.calls, lasted))
    }
}

/// Each peer's episode. Process-wide, because an episode spans checks and
/// every call of the loop for that peer shares it; `check` runs one check, so there it is
/// one call's.
static EPISODES: Mutex<[Episode; 3]> = Mutex::new([Episode::NONE; 3]);

fn with_episode<T>(peer: Peer, f: impl FnOnce(&mut Episode) -> T) -> T {
    // A panic elsewhere while holding the lock leaves counters, nothing
    // worth refusing to log over.
    let mut episodes = EPISODES.lock().unwrap_or_else(|e| e.into_inner());
    f(&mut episodes[peer.index()])
}

/// Why an attempt is retried, as the retry's log line gives it.
pub(super) struct Cause<'a> {
    /// The peer's own error code (STS's, IAM's), as in the JSON report.
    pub error_code: Option<&'a str>,
    /// The HTTP status of the answer, if any.
    pub status: Option<u16>,
    pub error: &'a str,
}

/// Logs a retry of `peer` after `attempt` failed with `cause`: the first
/// of an episode at INFO, the rest at debug.
fn log_retry(peer: Peer, attempt: u32, cause: &Cause<'_>, delay: Duration) {
    let first = with_episode(peer, |e| e.retry(attempt == 1, Instant::now()));
    let retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    let name = peer.as_str();
    let (error_code, status, error) = (
        cause.error_code.unwrap_or(""),
        cause.status.unwrap_or(0),
        cause.error,
    );
    if first {
        info!(
            peer = name,
            attempt,
            error_code,
            status,
            error,
            retry_in_ms,
            "{name} did not give a final answer; retrying (further retries are logged at debug \
             until it answers)"
        );
    } else {
        debug!(
            peer = name,
            attempt,
            error_code,
            status,
            error,
            retry_in_ms,
            "{name} did not give a final answer; retrying"
        );
    }
}

/// Notes that `peer` answered for good (a success, or a refusal that is
/// not retried) and logs the end of the episode this ends, if any, at
/// INFO, with its count.
fn log_answered(peer: Peer) {
    let ended = with_episode(peer, |e| e.answered(Instant::now()));
    if let Some((retries, checks, lasted)) = ended {
        let name = peer.as_str();
        let lasted = humantime::format_duration(Duration::from_secs(lasted.as_secs()));
        info!(
            peer = name,
            retries,
            checks,
            "{name} answered again after {retries} retries in {checks} check(s) over {lasted}"
        );
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

    /// A one-minute outage at `--interval 1s`: 60 checks of 4 retries
    /// each were 240 INFO lines; now the first retry, then the end.
    #[test]
    fn an_outage_is_one_line_when_it_starts_and_one_when_it_ends() {
        let t0 = Instant::now();
        let mut episode = Episode::NONE;
        assert_eq!(episode.answered(t0), None, "no episode, no end line");
        let mut worth_info = 0;
        for check in 0..60u64 {
            for attempt in 1..=4u32 {
                let now = t0 + Duration::from_secs(check);
                worth_info += u32::from(episode.retry(attempt == 1, now));
            }
        }
        assert_eq!(worth_info, 1);
        let end = episode.answered(t0 + Duration::from_secs(61));
        assert_eq!(end, Some((240, 60, Duration::from_secs(61))));
        assert_eq!(episode.answered(t0 + Duration::from_secs(62)), None);
        // The next outage is a new episode, logged again.
        assert!(episode.retry(true, t0 + Duration::from_secs(70)));
    }

    /// STS, the agent and IAM said three different things when the
    /// deadline cut them off; the one loop says one.
    #[tokio::test]
    async fn a_deadline_cuts_every_peer_off_with_the_same_words() {
        let plan = |peer| Plan {
            max_attempts: 1,
            ..Plan::until(
                peer,
                Instant::now() + Duration::from_millis(50),
                Duration::from_secs(2),
            )
        };
        let words = "no answer within the --timeout deadline (2s)";
        for peer in [Peer::Sts, Peer::Iam] {
            let never = |_| std::future::pending::<Result<(), Failure>>();
            let cut = retry(&plan(peer), never, |r| r).await;
            assert!(cut.cut_off);
            let failure = cut.result.unwrap_err();
            assert!(failure.timed_out && failure.kind == FailureKind::Unreachable);
            assert_eq!(failure.message, words);
        }
        let never = |_| std::future::pending::<Result<(), crate::peers::agent::Failure>>();
        let cut = retry(&plan(Peer::Agent), never, |r| r).await;
        let failure = cut.result.unwrap_err();
        assert_eq!(failure.kind, crate::peers::agent::FailureKind::Unreachable);
        assert_eq!(failure.detail, words);
    }

    #[test]
    fn a_huge_timeout_saturates_instead_of_overflowing() {
        let now = Instant::now();
        assert!(deadline(now, Duration::MAX) > now + Duration::from_secs(86_400));
        assert_eq!(
            deadline(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
    }
}
