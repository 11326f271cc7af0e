//! Which of the loop's checks are worth a log line, so that a failure that
//! persists for hours is a line every ten minutes, not one per check.

use std::time::{Duration, Instant};

use tracing::{debug, error, info, warn};

use super::state::{round_secs, Change};
use crate::report::{Report, Verdict};

/// While a failure persists unchanged, its reason is logged again at most
/// this often.
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(600);

/// While the served verdict stays the same, changed findings of failing or
/// inconclusive checks (throttled, then unreachable, then throttled) are
/// logged at most this often.
const FINDINGS_LOG_EVERY: Duration = Duration::from_secs(60);

/// Decides which checks are worth a log line: every change of the served
/// verdict; changed findings while it holds, at most every
/// [`FINDINGS_LOG_EVERY`]; and a reminder of a failure that persists, at
/// most every [`FAILURE_LOG_EVERY`]. Quiet while nothing changes.
#[derive(Debug, Default)]
pub(super) struct LogLimiter {
    last_log: Option<Instant>,
}

impl LogLimiter {
    pub(super) fn after_check(&mut self, report: &Report, change: &Change, wait: Duration) {
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
