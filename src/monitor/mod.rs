//! `serve`'s verification loop: a check at start, then every interval
//! (jittered), sooner after a token rotation, with backoff while checks are
//! inconclusive.
//!
//! The default chain is resolved at the first check and again only when
//! something it reads changed ([`inputs`]) or when its kept outcome no
//! longer stands (`check::ChainMemo`): a healthy IRSA pod makes one STS
//! call per check, not two.
//!
//! Invariant: the loop is the only writer of the [`state`] (it holds the
//! one [`Recorder`]); the HTTP handlers only read copies, so a probe never
//! causes an STS call: STS traffic depends on the interval, on token
//! rotations and on inconclusive retries, never on how often anyone asks.
//!
//! Imports `check`, `report`, `sts` and its own submodules; never
//! `server`, `metrics` or `cli`.

pub mod histogram;
mod inputs;
mod limiter;
mod rotation;
pub mod state;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::{debug, info};

use crate::check::{check_reusing, deadline, CheckConfig, Kept};
use crate::peers::sts::{AwsSource, Sts};
use crate::peers::traffic::StsCounters;
use crate::report::Verdict;
use crate::settings::env::AwsEnv;
use inputs::{ChainInputs, Changed};
use limiter::LogLimiter;
use rotation::RotationWatch;
use state::{Checked, Recorder};
// What `serve` needs to start the loop.
pub use state::{Settings, Shared};

/// The first retry after an inconclusive check; doubles up to the interval.
pub const FIRST_INCONCLUSIVE_RETRY: Duration = Duration::from_secs(5);

/// Runs checks against AWS as `aws` says, for as long as the returned
/// future is polled, recording each with `recorder`: once at start, then
/// every interval (jittered), sooner after a token rotation, and with
/// backoff while checks are inconclusive.
pub async fn run(cfg: CheckConfig, env: AwsEnv, aws: AwsSource, mut recorder: Recorder) {
    let counters = recorder.sts_counters();
    let token_file = crate::check::watched_token_file(&env);
    let mut aws = Aws::load(aws, counters, &cfg, &token_file, Instant::now()).await;
    let mut pacing = Pacing::new(recorder.settings().interval);
    let mut rotation = RotationWatch::new(token_file.clone());
    let mut log = LogLimiter::default();
    loop {
        let started = Instant::now();
        recorder.note_progress(started);
        aws.notice_changes(&cfg, &token_file, started).await;
        let checked = check_once(&cfg, &env, &mut aws, started).await;
        let wait = jitter(pacing.after(checked.report.verdict));
        let recorded = recorder.record(checked, wait);
        log.after_check(&recorded.checked.report, &recorded.change, recorded.wait);
        next_check(recorded.wait, &mut rotation, started).await;
    }
}

/// The AWS configuration the checks use, and what the loop keeps of the
/// default chain between checks.
struct Aws {
    source: AwsSource,
    counters: Arc<StsCounters>,
    sts: Sts,
    /// The chain's files as they were when `kept` was made.
    inputs: ChainInputs,
    /// The chain's outcome and IAM's answer to `--require`, shown again
    /// while they stand.
    kept: Kept,
}

impl Aws {
    async fn load(
        source: AwsSource,
        counters: Arc<StsCounters>,
        cfg: &CheckConfig,
        token_file: &Option<PathBuf>,
        started: Instant,
    ) -> Self {
        let sts = Sts::load(&source, deadline(started, cfg.timeout), counters.clone()).await;
        let inputs = ChainInputs::look(&sts, token_file.as_ref());
        Aws {
            source,
            counters,
            sts,
            inputs,
            kept: Kept::default(),
        }
    }

    /// Before a check: drops the kept chain outcome and IAM's answer when
    /// a file the chain reads changed (a token rotation re-simulates), and loads the configuration again when that file is
    /// a shared config or credentials file (the SDK was handed their
    /// contents at load).
    async fn notice_changes(
        &mut self,
        cfg: &CheckConfig,
        token_file: &Option<PathBuf>,
        started: Instant,
    ) {
        let now = ChainInputs::look(&self.sts, token_file.as_ref());
        match self.inputs.changed(&now) {
            Changed::Nothing => return,
            Changed::Token => {
                debug!("a token file the default chain reads changed; resolving it again");
                self.inputs = now;
            }
            Changed::Profile => {
                info!("a shared config or credentials file changed; loading the AWS configuration again");
                let deadline = deadline(started, cfg.timeout);
                self.sts = Sts::load(&self.source, deadline, self.counters.clone()).await;
                self.inputs = ChainInputs::look(&self.sts, token_file.as_ref());
            }
        }
        self.kept = Kept::default();
    }
}

/// One check, started at `started`, as the state keeps it.
async fn check_once(cfg: &CheckConfig, env: &AwsEnv, aws: &mut Aws, started: Instant) -> Checked {
    let checked_at = SystemTime::now();
    let report = check_reusing(cfg, env, &aws.sts, checked_at, started, &mut aws.kept).await;
    Checked {
        report,
        checked_at,
        started,
        finished: Instant::now(),
    }
}

/// Waits `wait`, or less if the kubelet rotates the token meanwhile.
async fn next_check(wait: Duration, rotation: &mut RotationWatch, last_check: Instant) {
    tokio::select! {
        () = tokio::time::sleep(wait) => {}
        () = rotation.rotated(last_check) => {
            info!("the token volume changed (a kubelet rotation); checking again now");
        }
    }
}

/// The wait after a check, before jitter: the interval after a conclusive
/// check; while checks are inconclusive, [`FIRST_INCONCLUSIVE_RETRY`],
/// doubling up to the interval.
#[derive(Debug)]
struct Pacing {
    interval: Duration,
    retry: Duration,
}

impl Pacing {
    fn new(interval: Duration) -> Self {
        Pacing {
            interval,
            retry: FIRST_INCONCLUSIVE_RETRY,
        }
    }

    fn after(&mut self, verdict: Verdict) -> Duration {
        if verdict == Verdict::Inconclusive {
            let wait = self.retry.min(self.interval);
            self.retry = self.retry.saturating_mul(2);
            wait
        } else {
            self.retry = FIRST_INCONCLUSIVE_RETRY;
            self.interval
        }
    }
}

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

    #[test]
    fn inconclusive_checks_back_off_from_five_seconds_up_to_the_interval() {
        let mut pacing = Pacing::new(Duration::from_secs(30));
        let waits: Vec<u64> = [
            Verdict::Inconclusive,
            Verdict::Inconclusive,
            Verdict::Inconclusive,
            Verdict::Inconclusive,
            Verdict::Inconclusive,
            Verdict::Fail,
            Verdict::Inconclusive,
            Verdict::Pass,
        ]
        .into_iter()
        .map(|v| pacing.after(v).as_secs())
        .collect();
        assert_eq!(waits, [5, 10, 20, 30, 30, 30, 5, 30]);
    }
}
