//! The state `serve`'s loop shares with the HTTP layer: the latest checks,
//! what /readyz serves from them, and the loop's counters.
//!
//! Invariant: /readyz serves the latest *conclusive* verdict. An
//! inconclusive check (STS unreachable, throttled) leaves a pass standing
//! until that pass is older than `--stale-after`; a failing check flips
//! readiness at once. [`State::readiness`] is the only place that decides it.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use crate::histogram::Histogram;
use crate::report::{Code, Report, Severity, Verdict};
use crate::traffic::StsCounters;

/// How the loop is paced.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub interval: Duration,
    pub stale_after: Duration,
    /// `--timeout`: the bound on one check.
    pub timeout: Duration,
}

impl Settings {
    /// /livez fails when the loop has shown no progress for this long: two
    /// intervals, or two check timeouts when those are longer (a check in
    /// progress is not a stall).
    pub fn stall_after(&self) -> Duration {
        self.interval.max(self.timeout).saturating_mul(2)
    }
}

/// A check's result as the loop keeps it.
#[derive(Debug)]
pub struct Checked {
    pub report: Report,
    pub checked_at: SystemTime,
    /// When the check started, on the monotonic clock: a verdict's age,
    /// for `--stale-after`, counts from here, as `checked_at` shows it.
    pub started: Instant,
    /// When the check finished, on the monotonic clock.
    pub finished: Instant,
}

/// What the HTTP layer reads, from a copy (see `Shared`).
#[derive(Debug, Clone)]
pub struct State {
    pub settings: Settings,
    /// The latest check, whatever its verdict.
    pub latest: Option<Arc<Checked>>,
    /// The latest check whose verdict was pass or fail.
    pub conclusive: Option<Arc<Checked>>,
    /// When the served verdict or the set of findings last changed.
    pub last_change_at: Option<SystemTime>,
    /// The verdict /readyz served when the last check was recorded, or
    /// when the loop last noticed a pass going stale.
    pub served: Option<Verdict>,
    pub consecutive_inconclusive: u32,
    pub next_check_at: Option<SystemTime>,
    /// When the loop last showed it was alive.
    pub progress_at: Instant,
    /// Checks run, by verdict: pass, fail, inconclusive.
    pub checks: [u64; 3],
    pub durations: Histogram,
    /// STS requests sent, by the loop's AWS configuration.
    pub sts_counters: Arc<StsCounters>,
    /// Connections the HTTP layer closed at its cap to make room for a new
    /// one; counted by `server`, like `sts_counters` outside the loop.
    pub connections_evicted: Arc<AtomicU64>,
}

/// The state behind a lock the HTTP layer holds only to copy from.
#[derive(Debug)]
pub struct Shared(Mutex<State>);

impl Shared {
    pub fn new(settings: Settings) -> Self {
        Shared::starting_at(settings, Instant::now())
    }

    /// A state whose loop last showed progress at `progress_at`.
    pub fn starting_at(settings: Settings, progress_at: Instant) -> Self {
        Shared(Mutex::new(State {
            settings,
            latest: None,
            conclusive: None,
            last_change_at: None,
            served: None,
            consecutive_inconclusive: 0,
            next_check_at: None,
            progress_at,
            checks: [0; 3],
            durations: Histogram::default(),
            sts_counters: Arc::default(),
            connections_evicted: Arc::default(),
        }))
    }

    /// The state. A handler that panicked while holding the lock cannot
    /// have left it half-written (every write is one assignment), so a
    /// poisoned lock is still read.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether /readyz answers 200, and the one line that says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// The verdict /readyz serves: the latest conclusive one while fresh.
    pub verdict: Verdict,
    pub reason: String,
}

impl State {
    /// The verdict /readyz serves, and why. See the module invariant.
    pub fn readiness(&self, now: Instant) -> Readiness {
        let Some(latest) = &self.latest else {
            return Readiness {
                verdict: Verdict::Inconclusive,
                reason: "no verdict yet: the first check is still running".to_owned(),
            };
        };
        if latest.report.verdict != Verdict::Inconclusive {
            return Readiness {
                verdict: latest.report.verdict,
                reason: latest.report.summary(),
            };
        }
        let summary = latest.report.summary();
        match &self.conclusive {
            Some(pass) if pass.report.verdict == Verdict::Pass => {
                let age = now.saturating_duration_since(pass.started);
                let age_text = humantime::format_duration(round_secs(age));
                let stale_text = humantime::format_duration(self.settings.stale_after);
                if age < self.settings.stale_after {
                    Readiness {
                        verdict: Verdict::Pass,
                        reason: format!(
                            "{}; the last pass was {age_text} ago and stays valid for \
                             --stale-after {stale_text} while checks are inconclusive \
                             ({} in a row, latest: {summary})",
                            pass.report.summary(),
                            self.consecutive_inconclusive
                        ),
                    }
                } else {
                    Readiness {
                        verdict: Verdict::Inconclusive,
                        reason: format!(
                            "the last pass was {age_text} ago, longer than --stale-after \
                             {stale_text}, and every check since was inconclusive \
                             ({} in a row, latest: {summary})",
                            self.consecutive_inconclusive
                        ),
                    }
                }
            }
            Some(fail) => Readiness {
                verdict: Verdict::Fail,
                reason: format!(
                    "{} (later checks were inconclusive: {summary})",
                    fail.report.summary()
                ),
            },
            None => Readiness {
                verdict: Verdict::Inconclusive,
                reason: summary,
            },
        }
    }

    /// `None` while the loop is alive; otherwise why /livez fails.
    pub fn stalled(&self, now: Instant) -> Option<String> {
        let quiet = now.saturating_duration_since(self.progress_at);
        let limit = self.settings.stall_after();
        (quiet > limit).then(|| {
            format!(
                "the verification loop has shown no progress for {}, more than {}; restart \
                 the container",
                humantime::format_duration(round_secs(quiet)),
                humantime::format_duration(limit)
            )
        })
    }

    /// When a pass that inconclusive checks are riding on goes stale, if
    /// that is what /readyz serves now.
    pub fn stale_at(&self) -> Option<Instant> {
        let latest = self.latest.as_ref()?;
        let pass = self.conclusive.as_ref()?;
        (latest.report.verdict == Verdict::Inconclusive && pass.report.verdict == Verdict::Pass)
            .then(|| pass.started.checked_add(self.settings.stale_after))
            .flatten()
    }

    /// Records a finished check; returns what changed, for the log.
    pub(crate) fn record(&mut self, checked: Checked, duration: Duration) -> Change {
        let served_before = self.served;
        let before_codes = self.latest.as_ref().map(|l| codes(&l.report));
        let verdict = checked.report.verdict;
        let checked = Arc::new(checked);
        let slot = match verdict {
            Verdict::Pass => 0,
            Verdict::Fail => 1,
            Verdict::Inconclusive => 2,
        };
        self.checks[slot] += 1;
        self.durations.observe(duration);
        if verdict == Verdict::Inconclusive {
            self.consecutive_inconclusive += 1;
        } else {
            self.consecutive_inconclusive = 0;
            self.conclusive = Some(checked.clone());
        }
        let first = self.latest.is_none();
        self.latest = Some(checked.clone());
        let after = self.readiness(checked.finished);
        self.served = Some(after.verdict);
        let findings_changed = before_codes.as_ref() != Some(&codes(&checked.report));
        let changed = served_before != Some(after.verdict) || findings_changed;
        if changed {
            self.last_change_at = Some(checked.checked_at);
        }
        Change {
            first,
            served_before: served_before.unwrap_or(Verdict::Inconclusive),
            served: after,
            changed,
        }
    }
}

/// The findings that make a report different from another, for deciding
/// whether anything changed: codes with their severity, in order.
fn codes(report: &Report) -> Vec<(Code, Severity)> {
    let mut codes: Vec<_> = report
        .findings
        .iter()
        .map(|f| (f.code, f.severity))
        .collect();
    codes.sort_by_key(|(c, s)| (c.as_str(), *s));
    codes
}

pub(super) fn round_secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

/// What one check changed, for the log.
#[derive(Debug)]
pub(crate) struct Change {
    pub(super) first: bool,
    pub(super) served_before: Verdict,
    pub(super) served: Readiness,
    pub(super) changed: bool,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::report::sample::{denied, pass, throttled};

    pub(crate) fn settings() -> Settings {
        Settings {
            interval: Duration::from_secs(300),
            stale_after: Duration::from_secs(900),
            timeout: Duration::from_secs(60),
        }
    }

    pub(crate) fn record(state: &mut State, report: Report, at: Instant) -> Change {
        state.record(
            Checked {
                report,
                checked_at: SystemTime::now(),
                started: at,
                finished: at,
            },
            Duration::from_millis(5),
        )
    }

    #[test]
    fn not_ready_before_the_first_verdict() {
        let shared = Shared::new(settings());
        let r = shared.lock().readiness(Instant::now());
        assert_eq!(r.verdict.http_status(), 503);
        assert!(r.reason.contains("first check"), "{}", r.reason);
    }

    #[test]
    fn an_inconclusive_check_keeps_a_fresh_pass_ready_until_stale_after() {
        let shared = Shared::new(settings());
        let mut state = shared.lock();
        let t0 = Instant::now();
        record(&mut state, pass(), t0);
        let change = record(&mut state, throttled(), t0 + Duration::from_secs(300));
        assert_eq!(change.served_before, Verdict::Pass);
        assert_eq!(
            change.served.verdict,
            Verdict::Pass,
            "{}",
            change.served.reason
        );
        assert!(change.changed, "the findings changed");
        assert_eq!(state.stale_at(), Some(t0 + Duration::from_secs(900)));
        let ready = state.readiness(t0 + Duration::from_secs(899));
        assert_eq!(ready.verdict, Verdict::Pass, "{}", ready.reason);
        assert!(ready.reason.contains("--stale-after"), "{}", ready.reason);
        let stale = state.readiness(t0 + Duration::from_secs(900));
        assert_eq!(stale.verdict, Verdict::Inconclusive, "{}", stale.reason);
        assert_eq!(state.consecutive_inconclusive, 1);
    }

    #[test]
    fn a_pass_going_stale_is_a_change_even_with_the_same_findings() {
        let shared = Shared::new(settings());
        let mut state = shared.lock();
        let t0 = Instant::now();
        record(&mut state, pass(), t0);
        record(&mut state, throttled(), t0 + Duration::from_secs(300));
        let still = record(&mut state, throttled(), t0 + Duration::from_secs(600));
        assert!(!still.changed, "same findings, still served pass");
        let before = state.last_change_at;
        let stale = record(&mut state, throttled(), t0 + Duration::from_secs(901));
        assert!(stale.changed);
        assert_eq!(stale.served_before, Verdict::Pass);
        assert_eq!(stale.served.verdict, Verdict::Inconclusive);
        assert_ne!(state.last_change_at, None);
        assert!(state.last_change_at >= before);
        assert_eq!(state.stale_at(), Some(t0 + Duration::from_secs(900)));
    }

    #[test]
    fn a_definitive_failure_flips_readiness_at_once() {
        let shared = Shared::new(settings());
        let mut state = shared.lock();
        let t0 = Instant::now();
        record(&mut state, pass(), t0);
        let change = record(&mut state, denied(), t0 + Duration::from_secs(1));
        assert!(change.changed);
        assert_eq!(change.served_before, Verdict::Pass);
        assert_eq!(change.served.verdict, Verdict::Fail);
        // And an inconclusive check after a failure does not make it ready.
        record(&mut state, throttled(), t0 + Duration::from_secs(2));
        let r = state.readiness(t0 + Duration::from_secs(3));
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.reason);
        assert!(r.reason.contains("TRUST_POLICY_DENIED"), "{}", r.reason);
    }

    #[test]
    fn an_unchanged_pass_is_not_a_change() {
        let shared = Shared::new(settings());
        let mut state = shared.lock();
        let t0 = Instant::now();
        assert!(record(&mut state, pass(), t0).first);
        let change = record(&mut state, pass(), t0 + Duration::from_secs(300));
        assert!(!change.changed);
        assert_eq!(state.checks, [2, 0, 0]);
        assert_eq!(state.durations.count, 2);
    }

    #[test]
    fn the_loop_is_stalled_after_two_intervals_without_progress() {
        let shared = Shared::new(settings());
        let state = shared.lock();
        let t0 = state.progress_at;
        assert_eq!(state.stalled(t0 + Duration::from_secs(600)), None);
        let stalled = state.stalled(t0 + Duration::from_secs(601)).unwrap();
        assert!(stalled.contains("no progress"), "{stalled}");
    }

    #[test]
    fn a_check_longer_than_the_interval_is_not_a_stall() {
        let s = Settings {
            interval: Duration::from_secs(10),
            stale_after: Duration::from_secs(30),
            timeout: Duration::from_secs(60),
        };
        assert_eq!(s.stall_after(), Duration::from_secs(120));
    }
}
