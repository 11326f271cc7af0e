//! `serve`'s verification loop: a check at start, then every interval
//! (jittered), sooner after a token rotation, with backoff while checks are
//! inconclusive.
//!
//! The loop is the only writer of [`State`]; the HTTP handlers only read
//! it, so a probe never causes an STS call: STS traffic depends on the
//! interval, on token rotations and on inconclusive retries, never on how
//! often anyone asks.

mod limiter;
mod rotation;
pub mod state;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::info;

use crate::check::{check, deadline, CheckConfig};
use crate::env::AwsEnv;
use crate::report::Verdict;
use crate::sts::Sts;
use limiter::LogLimiter;
use rotation::RotationWatch;
pub use state::{Checked, Settings, Shared, State};

/// The first retry after an inconclusive check; doubles up to the interval.
pub const FIRST_INCONCLUSIVE_RETRY: Duration = Duration::from_secs(5);

/// Runs checks for as long as the returned future is polled: once at
/// start, then every interval (jittered), sooner after a token rotation,
/// and with backoff while checks are inconclusive.
pub async fn run(cfg: CheckConfig, env: AwsEnv, shared: Arc<Shared>) {
    let settings = shared.lock().settings;
    let counters = shared.lock().sts_counters.clone();
    let sts = Sts::from_env(deadline(Instant::now(), cfg.timeout), counters).await;
    let mut rotation = RotationWatch::new(env.token_file.clone());
    let mut retry = FIRST_INCONCLUSIVE_RETRY;
    let mut log = LogLimiter::default();
    loop {
        let started = Instant::now();
        shared.lock().progress_at = started;
        let checked_at = SystemTime::now();
        let report = check(&cfg, &env, &sts, checked_at, started).await;
        let duration = started.elapsed();
        let verdict = report.verdict;
        let wait = if verdict == Verdict::Inconclusive {
            let wait = retry.min(settings.interval);
            retry = retry.saturating_mul(2);
            wait
        } else {
            retry = FIRST_INCONCLUSIVE_RETRY;
            settings.interval
        };
        let (latest, change, wait) = {
            let mut state = shared.lock();
            let change = state.record(
                Checked {
                    report,
                    checked_at,
                    started,
                    finished: Instant::now(),
                },
                duration,
            );
            // A pass that inconclusive checks ride on is checked again when
            // it goes stale, so that the flip is logged when it happens.
            let now = Instant::now();
            let wait = match state.stale_at() {
                Some(at) if at > now => jitter(wait).min(at - now + STALE_MARGIN),
                _ => jitter(wait),
            };
            state.next_check_at = SystemTime::now().checked_add(wait);
            state.progress_at = now;
            (state.latest.clone(), change, wait)
        };
        if let Some(latest) = latest {
            log.after_check(&latest.report, &change, wait);
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = rotation.rotated(started) => {
                info!("the token volume changed (a kubelet rotation); checking again now");
            }
        }
    }
}

/// How long after a pass goes stale the check that notices it starts.
const STALE_MARGIN: Duration = Duration::from_millis(100);

/// `d` ±10%, so that a fleet rolled out together spreads its checks.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(0.9 + fastrand::f64() * 0.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let d = jitter(Duration::from_secs(300));
            assert!(d >= Duration::from_secs(270) && d <= Duration::from_secs(330));
        }
    }
}
