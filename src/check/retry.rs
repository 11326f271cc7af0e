//! The retry policy: the check's deadline, and retrying
//! `AssumeRoleWithWebIdentity` and the EKS Pod Identity agent with
//! jittered exponential backoff until an answer is final or the deadline
//! comes; and how every retry loop (these two, `GetCallerIdentity`'s and
//! IAM's) logs its retries: once per outage, not once per retry.

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

/// `started + timeout`, saturating: a huge `--timeout` means "no deadline
/// worth speaking of", not an overflow.
pub fn deadline(started: Instant, timeout: Duration) -> Instant {
    started
        .checked_add(timeout)
        .unwrap_or_else(|| started + Duration::from_secs(86_400 * 365))
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
    let started = Instant::now();
    let role_arn = role.to_string();
    let mut tally = Tally::default();
    // The last failure that came with an HTTP answer: when a final attempt
    // only runs out of time, this says more than "no answer" (and does not
    // depend on how busy the machine was when the deadline came).
    let mut last_answered: Option<Failure> = None;
    loop {
        let attempt = tally.attempt(cfg, sts, &role_arn, token, deadline).await;
        let failure = match attempt {
            Ok(assumed) => {
                debug!(attempts = tally.attempts, arn = %assumed.arn, "AssumeRoleWithWebIdentity succeeded");
                log_answered(Peer::Sts);
                return tally.outcome(Ok(assumed));
            }
            Err(failure) => failure,
        };
        let retry_denied =
            failure.kind == FailureKind::AccessDenied && started.elapsed() < cfg.retry_denied_for;
        let delay = backoff(INITIAL_BACKOFF, tally.attempts);
        if !(failure.kind.is_transient() || retry_denied) || Instant::now() + delay >= deadline {
            if !failure.kind.is_transient() {
                log_answered(Peer::Sts);
            }
            let failure = match last_answered {
                Some(answered) if failure.timed_out => answered,
                _ => failure,
            };
            return tally.outcome(Err(failure));
        }
        let cause = Cause {
            error_code: failure.code.as_deref(),
            status: failure.http_status,
            error: &failure.message,
        };
        log_retry(Peer::Sts, tally.attempts, &cause, delay);
        if failure.code.is_some() || failure.http_status.is_some() {
            last_answered = Some(failure);
        }
        tokio::time::sleep(delay).await;
    }
}

/// The failure of a call cut off at the `--timeout` deadline.
pub(super) fn no_answer(timeout: Duration) -> Failure {
    Failure {
        timed_out: true,
        ..Failure::new(
            FailureKind::Unreachable,
            format!(
                "no answer within the {} deadline",
                humantime::format_duration(timeout)
            ),
        )
    }
}

/// What the attempts so far have shown, besides their results.
#[derive(Default)]
struct Tally {
    attempts: u32,
    endpoint: Option<String>,
    clock_offset: Option<i64>,
}

impl Tally {
    /// One attempt, cut off at the deadline.
    async fn attempt(
        &mut self,
        cfg: &CheckConfig,
        sts: &Sts,
        role_arn: &str,
        token: &RawToken,
        deadline: Instant,
    ) -> Result<Assumed, Failure> {
        self.attempts += 1;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let attempt = tokio::time::timeout(
            remaining,
            sts.assume_role_with_web_identity(role_arn, token, &cfg.session_name, remaining),
        )
        .await;
        match attempt {
            Ok(attempt) => {
                self.endpoint = attempt.endpoint.or(self.endpoint.take());
                self.clock_offset = attempt.clock_offset.or(self.clock_offset);
                attempt.result
            }
            Err(_) => Err(no_answer(cfg.timeout)),
        }
    }

    fn outcome(self, result: Result<Assumed, Failure>) -> AssumeOutcome {
        AssumeOutcome {
            result,
            attempts: self.attempts,
            endpoint: self.endpoint,
            clock_offset: self.clock_offset,
        }
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
    let started = Instant::now();
    let mut attempts = 0u32;
    let mut last_answered = None;
    loop {
        attempts += 1;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let answer = crate::peers::agent::ask(uri, token, remaining).await;
        let status = match &answer {
            crate::peers::agent::Answer::Http { status, body, cut } => {
                if !cut {
                    replay.set(uri, *status, body.clone());
                }
                Some(*status)
            }
            crate::peers::agent::Answer::NoAnswer(_) => None,
        };
        counters.count_agent(status);
        let failure = match crate::peers::agent::judge(answer) {
            Ok(issued) => {
                debug!(
                    attempts,
                    "the EKS Pod Identity agent handed out credentials"
                );
                log_answered(Peer::Agent);
                return AgentOutcome {
                    result: Ok(issued),
                    attempts,
                    status,
                };
            }
            Err(failure) => failure,
        };
        // A new association or trust policy takes a moment to reach EKS
        // Auth: --retry-denied-for rides that out, as for STS.
        let retry_denied = matches!(
            failure.kind,
            crate::peers::agent::FailureKind::TrustDenied
                | crate::peers::agent::FailureKind::AssociationMissing
        ) && started.elapsed() < cfg.retry_denied_for;
        let delay = backoff(INITIAL_BACKOFF, attempts);
        if !(failure.kind.is_transient() || retry_denied) || Instant::now() + delay >= deadline {
            if !failure.kind.is_transient() {
                log_answered(Peer::Agent);
            }
            // A last attempt that only ran out of time says less than the
            // last answer the agent gave.
            let (failure, status) = match last_answered {
                Some(answered) if status.is_none() => answered,
                _ => (failure, status),
            };
            return AgentOutcome {
                result: Err(failure),
                attempts,
                status,
            };
        }
        let cause = Cause {
            error_code: None,
            status,
            error: &failure.detail,
        };
        log_retry(Peer::Agent, attempts, &cause, delay);
        if status.is_some() {
            last_answered = Some((failure, status));
        }
        tokio::time::sleep(delay).await;
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
/// the three retry loops share it; `check` runs one check, so there it is
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
pub(super) fn log_retry(peer: Peer, attempt: u32, cause: &Cause<'_>, delay: Duration) {
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
pub(super) fn log_answered(peer: Peer) {
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
