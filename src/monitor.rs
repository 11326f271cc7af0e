//! `serve`'s verification loop, and the state it shares with the HTTP layer.
//!
//! The loop is the only writer of [`State`]; the HTTP handlers only read
//! it, so a probe never causes an STS call: STS traffic depends on the
//! interval, on token rotations and on inconclusive retries, never on how
//! often anyone asks.
//!
//! Invariant: /readyz serves the latest *conclusive* verdict. An
//! inconclusive check (STS unreachable, throttled) leaves a pass standing
//! until that pass is older than `--stale-after`; a failing check flips
//! readiness at once.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tracing::{debug, error, info, warn};

use crate::check::{check, deadline, CheckConfig};
use crate::env::AwsEnv;
use crate::histogram::Histogram;
use crate::report::{Code, Report, Severity, Verdict};
use crate::sts::Sts;
use crate::traffic::StsCounters;

/// The first retry after an inconclusive check; doubles up to the interval.
pub const FIRST_INCONCLUSIVE_RETRY: Duration = Duration::from_secs(5);

/// How often the token file is looked at for a rotation: one `readlink`
/// and one `stat`, cheap enough to be invisible in idle CPU.
pub const ROTATION_POLL: Duration = Duration::from_secs(1);

/// A rotation is acted on once the token volume has been still this long,
/// so a swap in progress is not read half-done.
pub const ROTATION_DEBOUNCE: Duration = Duration::from_secs(1);

/// Rotation-triggered checks start at least this long after the previous
/// check: a volume that keeps changing must not turn into STS traffic.
pub const ROTATION_MIN_GAP: Duration = Duration::from_secs(5);

/// While a failure persists unchanged, its reason is logged again at most
/// this often.
pub const FAILURE_LOG_EVERY: Duration = Duration::from_secs(600);

/// While the served verdict stays the same, changed findings of failing or
/// inconclusive checks (throttled, then unreachable, then throttled) are
/// logged at most this often.
pub const FINDINGS_LOG_EVERY: Duration = Duration::from_secs(60);

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

fn round_secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

/// What one check changed, for the log.
#[derive(Debug)]
pub(crate) struct Change {
    first: bool,
    served_before: Verdict,
    served: Readiness,
    changed: bool,
}

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

/// Decides which checks are worth a log line: every change of the served
/// verdict; changed findings while it holds, at most every
/// [`FINDINGS_LOG_EVERY`]; and a reminder of a failure that persists, at
/// most every [`FAILURE_LOG_EVERY`]. Quiet while nothing changes.
#[derive(Debug, Default)]
struct LogLimiter {
    last_log: Option<Instant>,
}

impl LogLimiter {
    fn after_check(&mut self, report: &Report, change: &Change, wait: Duration) {
        let next = humantime::format_duration(round_secs(wait));
        let served = &change.served;
        let since_last = self.last_log.map(|at| at.elapsed());
        if change.first {
            report.log();
            info!(
                ready = served.verdict == Verdict::Pass,
                "first check done; /readyz now answers {}; next check in {next}",
                served.verdict.http_status()
            );
        } else if change.served_before != served.verdict {
            report.log();
            let line = format!(
                "readiness changed: {} -> {}: {}",
                change.served_before.as_str(),
                served.verdict.as_str(),
                served.reason
            );
            if served.verdict == Verdict::Pass {
                info!(ready = true, "{line}");
            } else {
                error!(ready = false, "{line}");
            }
        } else if report.verdict == Verdict::Pass {
            if change.changed {
                report.log();
            } else {
                debug!("check passed; nothing changed; next check in {next}");
            }
            return;
        } else {
            let due = if change.changed {
                FINDINGS_LOG_EVERY
            } else {
                FAILURE_LOG_EVERY
            };
            if since_last.is_some_and(|s| s < due) {
                debug!("still {}; logged recently", report.verdict.as_str());
                return;
            }
            if change.changed {
                report.log();
            }
            if served.verdict == Verdict::Pass {
                warn!(
                    ready = true,
                    "still ready: {}; next check in {next}", served.reason
                );
            } else {
                error!(
                    ready = false,
                    "still {}: {}; next check in {next}",
                    report.verdict.as_str(),
                    served.reason
                );
            }
        }
        self.last_log = Some(Instant::now());
    }
}

/// Notices the kubelet rotating the token. The kubelet writes a projected
/// volume atomically: a new timestamped directory, then a rename of the
/// `..data` symlink onto it. Polling that link (and the file, for tokens
/// not in such a volume) needs no inotify and cannot miss a swap.
struct RotationWatch {
    file: Option<PathBuf>,
    seen: Option<Fingerprint>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    data_link: Option<PathBuf>,
    file: Option<(u64, u64, i64, i64, u64)>,
}

impl Fingerprint {
    fn of(file: &Path) -> Self {
        use std::os::unix::fs::MetadataExt;
        let data_link = file
            .parent()
            .and_then(|dir| std::fs::read_link(dir.join("..data")).ok());
        let file = std::fs::metadata(file)
            .ok()
            .map(|m| (m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.size()));
        Fingerprint { data_link, file }
    }
}

impl RotationWatch {
    fn new(file: Option<PathBuf>) -> Self {
        let seen = file.as_deref().map(Fingerprint::of);
        RotationWatch { file, seen }
    }

    /// Resolves once the token has changed and has then been still for
    /// [`ROTATION_DEBOUNCE`], no sooner than [`ROTATION_MIN_GAP`] after
    /// `last_check`. Never resolves without a token file.
    async fn rotated(&mut self, last_check: Instant) {
        let Some(file) = self.file.clone() else {
            return std::future::pending().await;
        };
        loop {
            tokio::time::sleep(ROTATION_POLL).await;
            let now = Fingerprint::of(&file);
            if Some(&now) == self.seen.as_ref() {
                continue;
            }
            // Changed: wait until it holds still.
            let mut settled = now;
            loop {
                tokio::time::sleep(ROTATION_DEBOUNCE).await;
                let again = Fingerprint::of(&file);
                if again == settled {
                    break;
                }
                settled = again;
            }
            self.seen = Some(settled);
            tokio::time::sleep_until((last_check + ROTATION_MIN_GAP).into()).await;
            return;
        }
    }
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

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let d = jitter(Duration::from_secs(300));
            assert!(d >= Duration::from_secs(270) && d <= Duration::from_secs(330));
        }
    }

    /// A token volume as the kubelet lays it out, with one token.
    fn volume() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("..2026_1")).unwrap();
        std::fs::write(d.join("..2026_1/token"), "a").unwrap();
        std::os::unix::fs::symlink("..2026_1", d.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/token", d.join("token")).unwrap();
        dir
    }

    /// Swaps `..data` to a new directory, as the kubelet rotates.
    fn swap(d: &Path, generation: u32) {
        let data = format!("..2026_{generation}");
        std::fs::create_dir(d.join(&data)).unwrap();
        std::fs::write(d.join(&data).join("token"), "b").unwrap();
        std::os::unix::fs::symlink(&data, d.join("..data_tmp")).unwrap();
        std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_rotation_is_noticed_after_the_minimum_gap() {
        let dir = volume();
        let mut watch = RotationWatch::new(Some(dir.path().join("token")));
        let last_check = Instant::now();
        swap(dir.path(), 2);
        let started = tokio::time::Instant::now();
        watch.rotated(last_check).await;
        let waited = started.elapsed();
        assert!(waited >= ROTATION_MIN_GAP, "{waited:?}");
        assert!(
            waited < ROTATION_MIN_GAP + ROTATION_POLL + ROTATION_DEBOUNCE,
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_rotation_long_after_the_last_check_waits_only_for_the_debounce() {
        let dir = volume();
        let mut watch = RotationWatch::new(Some(dir.path().join("token")));
        let last_check = Instant::now();
        tokio::time::advance(Duration::from_secs(60)).await;
        swap(dir.path(), 2);
        let started = tokio::time::Instant::now();
        watch.rotated(last_check).await;
        let waited = started.elapsed();
        assert!(waited >= ROTATION_DEBOUNCE, "{waited:?}");
        assert!(waited <= ROTATION_POLL + ROTATION_DEBOUNCE, "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn no_rotation_means_no_recheck() {
        let dir = volume();
        let mut watch = RotationWatch::new(Some(dir.path().join("token")));
        let quiet = tokio::time::timeout(Duration::from_secs(3600), watch.rotated(Instant::now()));
        assert!(
            quiet.await.is_err(),
            "a still volume never triggers a check"
        );
        let mut none = RotationWatch::new(None);
        let never = tokio::time::timeout(Duration::from_secs(3600), none.rotated(Instant::now()));
        assert!(never.await.is_err(), "no token file, no rotation");
    }

    #[tokio::test(start_paused = true)]
    async fn one_rotation_is_one_recheck() {
        let dir = volume();
        let mut watch = RotationWatch::new(Some(dir.path().join("token")));
        swap(dir.path(), 2);
        watch.rotated(Instant::now()).await;
        let again = tokio::time::timeout(Duration::from_secs(3600), watch.rotated(Instant::now()));
        assert!(
            again.await.is_err(),
            "the same rotation is not acted on twice"
        );
    }

    #[test]
    fn a_kubelet_style_swap_changes_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("..2026_1")).unwrap();
        std::fs::write(d.join("..2026_1/token"), "a").unwrap();
        std::os::unix::fs::symlink("..2026_1", d.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/token", d.join("token")).unwrap();
        let before = Fingerprint::of(&d.join("token"));
        std::fs::create_dir(d.join("..2026_2")).unwrap();
        std::fs::write(d.join("..2026_2/token"), "b").unwrap();
        std::os::unix::fs::symlink("..2026_2", d.join("..data_tmp")).unwrap();
        std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
        let after = Fingerprint::of(&d.join("token"));
        assert_ne!(before, after);
        assert_eq!(after, Fingerprint::of(&d.join("token")));
    }
}
