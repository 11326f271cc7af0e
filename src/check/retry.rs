//! The retry policy: the check's deadline, and retrying
//! `AssumeRoleWithWebIdentity` and the EKS Pod Identity agent with
//! jittered exponential backoff until an answer is final or the deadline
//! comes.

use std::time::{Duration, Instant};

use tracing::{debug, info};

use super::CheckConfig;
use crate::arn::RoleArn;
use crate::sts::{Assumed, Failure, FailureKind, Sts};
use crate::token::RawToken;

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
                return tally.outcome(Ok(assumed));
            }
            Err(failure) => failure,
        };
        let retry_denied =
            failure.kind == FailureKind::AccessDenied && started.elapsed() < cfg.retry_denied_for;
        let delay = backoff(INITIAL_BACKOFF, tally.attempts);
        if !(failure.kind.is_transient() || retry_denied) || Instant::now() + delay >= deadline {
            let failure = match last_answered {
                Some(answered) if failure.timed_out => answered,
                _ => failure,
            };
            return tally.outcome(Err(failure));
        }
        info!(
            attempt = tally.attempts,
            error_code = failure.code.as_deref().unwrap_or(""),
            error = %failure.message,
            retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            "STS did not give a final answer; retrying"
        );
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
    pub result: Result<crate::agent::Issued, crate::agent::Failure>,
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
    replay: &crate::traffic::Replay,
    counters: &crate::traffic::StsCounters,
) -> AgentOutcome {
    let started = Instant::now();
    let mut attempts = 0u32;
    let mut last_answered = None;
    loop {
        attempts += 1;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let answer = crate::agent::ask(uri, token, remaining).await;
        let status = match &answer {
            crate::agent::Answer::Http { status, body, cut } => {
                if !cut {
                    replay.set(uri, *status, body.clone());
                }
                Some(*status)
            }
            crate::agent::Answer::NoAnswer(_) => None,
        };
        counters.count_agent(status);
        let failure = match crate::agent::judge(answer) {
            Ok(issued) => {
                debug!(
                    attempts,
                    "the EKS Pod Identity agent handed out credentials"
                );
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
            crate::agent::FailureKind::TrustDenied | crate::agent::FailureKind::AssociationMissing
        ) && started.elapsed() < cfg.retry_denied_for;
        let delay = backoff(INITIAL_BACKOFF, attempts);
        if !(failure.kind.is_transient() || retry_denied) || Instant::now() + delay >= deadline {
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
        info!(
            attempt = attempts,
            status = status.unwrap_or(0),
            error = %failure.detail,
            retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            "the EKS Pod Identity agent did not give a final answer; retrying"
        );
        if status.is_some() {
            last_answered = Some((failure, status));
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
    fn a_huge_timeout_saturates_instead_of_overflowing() {
        let now = Instant::now();
        assert!(deadline(now, Duration::MAX) > now + Duration::from_secs(86_400));
        assert_eq!(
            deadline(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
    }
}
