//! Which of the loop's checks are worth a log line, so that a failure that
//! persists for a day is a dozen lines, not one per check.

use std::time::{Duration, Instant};

use tracing::{debug, error, info, warn};

use super::state::{round_secs, Change};
use crate::report::{Report, Verdict};

/// While a failure persists unchanged, its reason is logged again this
/// long after the line that reported it, then after twice as long each
/// time, up to [`FAILURE_LOG_MAX`]: a reminder that it still stands, at a
/// cost of about 9 lines a day (at the default interval), not 144.
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(600);

/// The longest wait between two reminders of an unchanged failure.
const FAILURE_LOG_MAX: Duration = Duration::from_secs(4 * 3600);

/// While the served verdict stays the same, changed findings of failing or
/// inconclusive checks (throttled, then unreachable, then throttled) are
/// logged at most this often.
const FINDINGS_LOG_EVERY: Duration = Duration::from_secs(60);

/// Decides which checks are worth a log line: every change of the served
/// verdict; changed findings while it holds, at most every
/// [`FINDINGS_LOG_EVERY`]; and a reminder of a failure that persists,
/// after [`FAILURE_LOG_EVERY`], then at doubling intervals up to
/// [`FAILURE_LOG_MAX`]. Quiet while nothing changes.
#[derive(Debug)]
pub(super) struct LogLimiter {
    /// When the last line that counts against the limits was written.
    last_log: Option<Instant>,
    /// How long after `last_log` an unchanged failure is due a reminder.
    failure_gap: Duration,
}

impl Default for LogLimiter {
    fn default() -> Self {
        LogLimiter {
            last_log: None,
            failure_gap: FAILURE_LOG_EVERY,
        }
    }
}

/// What one check is worth in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// The first check: its report, and what /readyz now answers.
    First,
    /// The served verdict changed: the report, and the change.
    ReadinessChanged,
    /// A pass whose findings changed (a warning came or went): the report.
    PassChanged,
    /// A pass like the one before: a debug line.
    PassUnchanged,
    /// A failing or inconclusive check due for a line: its report if its
    /// findings changed, then where readiness stands.
    Reminder { findings_changed: bool },
    /// A failing or inconclusive check soon after the last line: a debug
    /// line.
    Recent,
}

impl LogLimiter {
    /// Logs what a recorded check is worth; `wait` is the time until the
    /// next one.
    pub(super) fn after_check(&mut self, report: &Report, change: &Change, wait: Duration) {
        let entry = self.entry(report.verdict, change, Instant::now());
        write(entry, report, change, wait);
    }

    /// Which entry a check with `verdict` that made `change` is worth at
    /// `now`; remembers when it wrote a line that counts against the
    /// limits (a pass's lines do not).
    fn entry(&mut self, verdict: Verdict, change: &Change, now: Instant) -> Entry {
        let entry = if change.first {
            Entry::First
        } else if change.served_before != change.served.verdict {
            Entry::ReadinessChanged
        } else if verdict == Verdict::Pass {
            if change.changed {
                Entry::PassChanged
            } else {
                Entry::PassUnchanged
            }
        } else {
            let due = if change.changed {
                FINDINGS_LOG_EVERY
            } else {
                self.failure_gap
            };
            let since_last = self.last_log.map(|at| now.saturating_duration_since(at));
            if since_last.is_some_and(|s| s < due) {
                Entry::Recent
            } else {
                Entry::Reminder {
                    findings_changed: change.changed,
                }
            }
        };
        match entry {
            Entry::Reminder {
                findings_changed: false,
            } => {
                self.last_log = Some(now);
                self.failure_gap = (self.failure_gap * 2).min(FAILURE_LOG_MAX);
            }
            Entry::First | Entry::ReadinessChanged | Entry::Reminder { .. } => {
                self.last_log = Some(now);
                self.failure_gap = FAILURE_LOG_EVERY;
            }
            _ => {}
        }
        entry
    }
}

/// Writes the lines of `entry`.
fn write(entry: Entry, report: &Report, change: &Change, wait: Duration) {
    let next = humantime::format_duration(round_secs(wait));
    let served = &change.served;
    match entry {
        Entry::First => {
            report.log();
            info!(
                ready = served.verdict == Verdict::Pass,
                "first check done; /readyz now answers {}; next check in {next}",
                served.verdict.http_status()
            );
        }
        Entry::ReadinessChanged => {
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
        }
        Entry::PassChanged => report.log(),
        Entry::PassUnchanged => debug!("check passed; nothing changed; next check in {next}"),
        Entry::Recent => debug!("still {}; logged recently", report.verdict.as_str()),
        Entry::Reminder { findings_changed } => {
            if findings_changed {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::state::Readiness;

    /// A check's change, as `State::record` reports it.
    fn change(first: bool, before: Verdict, served: Verdict, changed: bool) -> Change {
        Change {
            first,
            served_before: before,
            served: Readiness {
                verdict: served,
                reason: "why".to_owned(),
            },
            changed,
        }
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// A limiter that logged a first, failing check at `t0`; and the
    /// change a check with the same failure makes.
    fn failing(t0: Instant) -> (LogLimiter, Change) {
        let mut log = LogLimiter::default();
        let first = change(true, Verdict::Inconclusive, Verdict::Fail, true);
        assert_eq!(log.entry(Verdict::Fail, &first, t0), Entry::First);
        (log, change(false, Verdict::Fail, Verdict::Fail, false))
    }

    #[test]
    fn the_same_failure_is_logged_again_only_every_failure_log_every() {
        let t0 = Instant::now();
        let (mut log, same) = failing(t0);
        let fail = Verdict::Fail;
        assert_eq!(log.entry(fail, &same, t0 + secs(300)), Entry::Recent);
        let just_before = t0 + FAILURE_LOG_EVERY - secs(1);
        assert_eq!(log.entry(fail, &same, just_before), Entry::Recent);
        let due = Entry::Reminder {
            findings_changed: false,
        };
        assert_eq!(log.entry(fail, &same, t0 + FAILURE_LOG_EVERY), due);
        // The reminder starts the next period, twice as long.
        let after = t0 + FAILURE_LOG_EVERY + secs(300);
        assert_eq!(log.entry(fail, &same, after), Entry::Recent);
        let next = t0 + FAILURE_LOG_EVERY * 3;
        assert_eq!(log.entry(fail, &same, next - secs(1)), Entry::Recent);
        assert_eq!(log.entry(fail, &same, next), due);
    }

    /// An unchanged failure was a line every ten minutes, 144 a day.
    #[test]
    fn a_day_of_the_same_failure_at_the_default_interval_is_nine_reminders() {
        let t0 = Instant::now();
        let (mut log, same) = failing(t0);
        let fail = Verdict::Fail;
        let reminders = (1..288)
            .map(|n| log.entry(fail, &same, t0 + secs(300 * n)))
            .filter(|e| matches!(e, Entry::Reminder { .. }))
            .count();
        assert_eq!(reminders, 9);
        assert_eq!(log.failure_gap, FAILURE_LOG_MAX);

        // A change starts over at ten minutes.
        let t1 = t0 + secs(86_400);
        let recovered = change(false, fail, Verdict::Pass, true);
        assert_eq!(
            log.entry(Verdict::Pass, &recovered, t1),
            Entry::ReadinessChanged
        );
        let failed = change(false, Verdict::Pass, fail, true);
        assert_eq!(
            log.entry(fail, &failed, t1 + secs(300)),
            Entry::ReadinessChanged
        );
        let due = t1 + secs(300) + FAILURE_LOG_EVERY;
        assert!(matches!(
            log.entry(fail, &same, due),
            Entry::Reminder { .. }
        ));
    }

    #[test]
    fn a_change_of_readiness_is_always_logged() {
        let mut log = LogLimiter::default();
        let t0 = Instant::now();
        let first = change(true, Verdict::Inconclusive, Verdict::Fail, true);
        assert_eq!(log.entry(Verdict::Fail, &first, t0), Entry::First);
        let recovered = change(false, Verdict::Fail, Verdict::Pass, true);
        let entry = log.entry(Verdict::Pass, &recovered, t0 + secs(1));
        assert_eq!(entry, Entry::ReadinessChanged);
        let failed_again = change(false, Verdict::Pass, Verdict::Fail, true);
        let entry = log.entry(Verdict::Fail, &failed_again, t0 + secs(2));
        assert_eq!(entry, Entry::ReadinessChanged);
    }

    #[test]
    fn changed_findings_of_a_failure_are_logged_at_most_every_findings_log_every() {
        let mut log = LogLimiter::default();
        let t0 = Instant::now();
        let first = change(true, Verdict::Inconclusive, Verdict::Inconclusive, true);
        assert_eq!(log.entry(Verdict::Inconclusive, &first, t0), Entry::First);
        // Throttled, then unreachable: the served verdict holds.
        let churn = change(false, Verdict::Inconclusive, Verdict::Inconclusive, true);
        let soon = t0 + FINDINGS_LOG_EVERY - secs(1);
        assert_eq!(
            log.entry(Verdict::Inconclusive, &churn, soon),
            Entry::Recent
        );
        let due = Entry::Reminder {
            findings_changed: true,
        };
        let later = t0 + FINDINGS_LOG_EVERY;
        assert_eq!(log.entry(Verdict::Inconclusive, &churn, later), due);
    }

    #[test]
    fn a_pass_is_quiet_unless_its_findings_changed() {
        let mut log = LogLimiter::default();
        let t0 = Instant::now();
        let same = change(false, Verdict::Pass, Verdict::Pass, false);
        assert_eq!(log.entry(Verdict::Pass, &same, t0), Entry::PassUnchanged);
        let warned = change(false, Verdict::Pass, Verdict::Pass, true);
        assert_eq!(log.entry(Verdict::Pass, &warned, t0), Entry::PassChanged);
        assert_eq!(log.last_log, None, "passes do not count against the limits");
    }
}
