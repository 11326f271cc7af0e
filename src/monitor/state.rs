//! The state `serve`'s loop shares with the HTTP layer: the latest checks,
//! what /readyz serves from them, and the loop's counters.
//!
//! Invariant: the loop is the only writer. [`Shared::new`] makes the one
//! [`Recorder`], which is not `Clone` and alone can change the state;
//! everyone else holds an `Arc<Shared>`, which can only take a copy.
//!
//! Invariant: /readyz serves the latest *conclusive* verdict. An
//! inconclusive check (STS unreachable, throttled) leaves a pass standing
//! until that pass is older than `--stale-after`; a failing check flips
//! readiness at once. [`State::readiness`] is the only place that decides it.
//!
//! Imports `report`, `histogram` and `traffic`'s counters; never `server`,
//! `metrics` or `cli`, which read it.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use crate::monitor::histogram::Histogram;
use crate::peers::traffic::StsCounters;
use crate::report::{Code, Report, Severity, Verdict};

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

/// A check's result as the loop keeps it. Shared, never changed, once
/// recorded.
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

/// What the HTTP layer reads, from a copy ([`Shared::snapshot`]).
#[derive(Debug, Clone)]
pub struct State {
    settings: Settings,
    /// The latest check, whatever its verdict.
    latest: Option<Arc<Checked>>,
    /// The latest check whose verdict was pass or fail.
    conclusive: Option<Arc<Checked>>,
    /// When the served verdict or the set of findings last changed.
    last_change_at: Option<SystemTime>,
    /// The verdict /readyz served when the last check was recorded, or
    /// when the loop last noticed a pass going stale.
    served: Option<Verdict>,
    consecutive_inconclusive: u32,
    next_check_at: Option<SystemTime>,
    /// When the loop last showed it was alive.
    progress_at: Instant,
    /// Checks run, by verdict: pass, fail, inconclusive.
    checks: [u64; 3],
    durations: Histogram,
    /// STS requests sent, counted by the loop's own HTTP client: a copy
    /// of the state reads the live counters.
    sts_counters: Arc<StsCounters>,
}

/// The state behind a lock that readers hold only to copy from.
#[derive(Debug)]
pub struct Shared(Mutex<State>);

impl Shared {
    /// The state of a loop that has not checked yet: the handle readers
    /// share, and the loop's one [`Recorder`].
    pub fn new(settings: Settings) -> (Arc<Shared>, Recorder) {
        Shared::starting_at(settings, Instant::now())
    }

    /// Like [`Shared::new`], for a loop that last showed progress at
    /// `progress_at`.
    pub fn starting_at(settings: Settings, progress_at: Instant) -> (Arc<Shared>, Recorder) {
        let shared = Arc::new(Shared(Mutex::new(State {
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
        })));
        let recorder = Recorder {
            shared: shared.clone(),
        };
        (shared, recorder)
    }

    /// A copy of the state to answer from. The lock is held for the copy
    /// alone, never while an answer is rendered: the loop waits on it to
    /// record a check.
    pub fn snapshot(&self) -> State {
        self.lock().clone()
    }

    /// The state. Readers hold the lock only to copy, and the one writer
    /// is the loop: a panic there ends the process in a release build
    /// (`panic = "abort"`), and in a debug build leaves the state as it
    /// was, with /livez reporting the stall; so a poisoned lock is still
    /// read.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The loop's handle on the state, and the only way to change it: not
/// `Clone`, and made only by [`Shared::new`] with the state it writes.
#[derive(Debug)]
pub struct Recorder {
    shared: Arc<Shared>,
}

/// How long after a pass goes stale the check that notices it starts.
const STALE_MARGIN: Duration = Duration::from_millis(100);

impl Recorder {
    pub(super) fn settings(&self) -> Settings {
        self.shared.lock().settings
    }

    /// The counters the loop's STS client adds to.
    pub(super) fn sts_counters(&self) -> Arc<StsCounters> {
        self.shared.lock().sts_counters.clone()
    }

    /// The loop is alive at `at`: /livez counts a stall from here.
    pub(super) fn note_progress(&mut self, at: Instant) {
        self.shared.lock().progress_at = at;
    }

    /// Records a finished check, and when the next one starts: in `wait`,
    /// or sooner, just after the pass that inconclusive checks ride on
    /// goes stale, so that the flip is logged when it happens. One step
    /// under the lock, so a copy never has a check without its schedule.
    pub(super) fn record(&mut self, checked: Checked, wait: Duration) -> Recorded {
        let checked = Arc::new(checked);
        let mut state = self.shared.lock();
        let change = state.record(checked.clone());
        let now = Instant::now();
        let wait = match state.stale_at() {
            Some(at) if at > now => wait.min(at - now + STALE_MARGIN),
            _ => wait,
        };
        state.next_check_at = SystemTime::now().checked_add(wait);
        state.progress_at = now;
        Recorded {
            checked,
            change,
            wait,
        }
    }

    /// Records `report` as a check that started and finished at `at`,
    /// without a schedule, for tests of the readers.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn record_at(&mut self, report: Report, at: Instant) {
        self.shared.lock().record(Arc::new(Checked {
            report,
            checked_at: SystemTime::now(),
            started: at,
            finished: at,
        }));
    }
}

/// A recorded check, for the loop's log and its sleep.
#[derive(Debug)]
pub(super) struct Recorded {
    pub(super) checked: Arc<Checked>,
    pub(super) change: Change,
    /// How long until the next check.
    pub(super) wait: Duration,
}

/// Whether /readyz answers 200, and the one line that says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// The verdict /readyz serves: the latest conclusive one while fresh.
    pub verdict: Verdict,
    pub reason: String,
}

impl State {
    /// How the loop is paced (`--interval`, `--stale-after`, `--timeout`).
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The latest check, whatever its verdict.
    pub fn latest(&self) -> Option<&Checked> {
        self.latest.as_deref()
    }

    /// The latest check whose verdict was pass or fail.
    pub fn conclusive(&self) -> Option<&Checked> {
        self.conclusive.as_deref()
    }

    /// When the served verdict or the set of findings last changed.
    pub fn last_change_at(&self) -> Option<SystemTime> {
        self.last_change_at
    }

    pub fn next_check_at(&self) -> Option<SystemTime> {
        self.next_check_at
    }

    /// Inconclusive checks since the last conclusive one.
    pub fn consecutive_inconclusive(&self) -> u32 {
        self.consecutive_inconclusive
    }

    /// Checks run since start with `verdict`.
    pub fn checks(&self, verdict: Verdict) -> u64 {
        self.checks[slot(verdict)]
    }

    /// How long the checks took.
    pub fn durations(&self) -> &Histogram {
        &self.durations
    }

    /// STS requests sent since start, by action and outcome.
    pub fn sts_counters(&self) -> &StsCounters {
        &self.sts_counters
    }

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
    fn stale_at(&self) -> Option<Instant> {
        let latest = self.latest.as_ref()?;
        let pass = self.conclusive.as_ref()?;
        (latest.report.verdict == Verdict::Inconclusive && pass.report.verdict == Verdict::Pass)
            .then(|| pass.started.checked_add(self.settings.stale_after))
            .flatten()
    }

    /// Records a finished check; returns what changed, for the log.
    fn record(&mut self, checked: Arc<Checked>) -> Change {
        let served_before = self.served;
        let before_codes = self.latest.as_ref().map(|l| codes(&l.report));
        let verdict = checked.report.verdict;
        self.checks[slot(verdict)] += 1;
        self.durations
            .observe(checked.finished.saturating_duration_since(checked.started));
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

/// Where [`State::checks`] counts `verdict`.
fn slot(verdict: Verdict) -> usize {
    match verdict {
        Verdict::Pass => 0,
        Verdict::Fail => 1,
        Verdict::Inconclusive => 2,
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
pub(super) struct Change {
    pub(super) first: bool,
    pub(super) served_before: Verdict,
    pub(super) served: Readiness,
    pub(super) changed: bool,
}

/// `serve`'s defaults (`--interval 5m`, `--stale-after` three intervals,
/// `--timeout 60s`), for tests of the state and its readers.
#[cfg(test)]
impl Settings {
    pub(crate) fn serve_defaults() -> Self {
        Settings {
            interval: Duration::from_secs(300),
            stale_after: Duration::from_secs(900),
            timeout: Duration::from_secs(60),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample::{denied, pass, throttled};

    fn settings() -> Settings {
        Settings::serve_defaults()
    }

    fn checked(report: Report, at: Instant) -> Checked {
        Checked {
            report,
            checked_at: SystemTime::now(),
            started: at,
            finished: at,
        }
    }

    fn record(state: &mut State, report: Report, at: Instant) -> Change {
        state.record(Arc::new(checked(report, at)))
    }

    #[test]
    fn not_ready_before_the_first_verdict() {
        let (shared, _recorder) = Shared::new(settings());
        let r = shared.snapshot().readiness(Instant::now());
        assert_eq!(r.verdict.http_status(), 503);
        assert!(r.reason.contains("first check"), "{}", r.reason);
    }

    #[test]
    fn an_inconclusive_check_keeps_a_fresh_pass_ready_until_stale_after() {
        let (shared, _recorder) = Shared::new(settings());
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
        let (shared, _recorder) = Shared::new(settings());
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
        let (shared, _recorder) = Shared::new(settings());
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
        let (shared, _recorder) = Shared::new(settings());
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
        let (shared, _recorder) = Shared::new(settings());
        let state = shared.snapshot();
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

    #[test]
    fn a_pass_riding_on_inconclusive_checks_is_checked_again_when_it_goes_stale() {
        let (shared, mut recorder) = Shared::new(settings());
        let t0 = Instant::now();
        let first = recorder.record(checked(pass(), t0), Duration::from_secs(300));
        assert_eq!(first.wait, Duration::from_secs(300));
        let riding = recorder.record(checked(throttled(), t0), Duration::from_secs(3600));
        // The pass of t0 goes stale at t0 + 900 s (--stale-after).
        let wait = riding.wait;
        assert!(wait <= Duration::from_secs(900) + STALE_MARGIN, "{wait:?}");
        assert!(wait > Duration::from_secs(899), "{wait:?}");
        let copy = shared.snapshot();
        let latest = copy.latest().map(|l| l.report.verdict);
        assert_eq!(latest, Some(Verdict::Inconclusive));
        assert!(copy.next_check_at().is_some());
        assert_eq!(copy.checks(Verdict::Pass), 1);
    }
}
