//! The one-shot commands' watchdog: gives up on a check that does not end
//! within `--timeout` plus a grace, so that a call stuck where nothing
//! should block cannot hold the pod's start forever.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::Duration;

/// How far past `--timeout` a `check` may run before its watchdog gives
/// up on it: the check's own deadline covers every network call, so this
/// only matters when something blocks where nothing should.
pub const WATCHDOG_GRACE: Duration = Duration::from_millis(500);

/// Gives up on a check at a limit: a thread that waits for the check to
/// finish and, if it does not by then, runs `on_timeout`. Exactly one of
/// the check and the watchdog gets to report: [`Watchdog::claim`] says
/// whether the check did.
pub(super) struct Watchdog {
    claimed: Arc<AtomicBool>,
    done: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Watchdog {
    pub(super) fn start(
        limit: Duration,
        on_timeout: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Self> {
        let claimed = Arc::new(AtomicBool::new(false));
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let ours = claimed.clone();
        let thread = std::thread::Builder::new()
            .name("irsa-doctor-watchdog".into())
            .spawn(move || {
                let timed_out =
                    matches!(finished.recv_timeout(limit), Err(RecvTimeoutError::Timeout));
                if timed_out && !ours.swap(true, Ordering::SeqCst) {
                    on_timeout();
                }
            })?;
        Ok(Watchdog {
            claimed,
            done,
            thread,
        })
    }

    /// Called when the check is done: true if it is the check's to report,
    /// false if the watchdog already gave up on it.
    pub(super) fn claim(self) -> bool {
        let won = !self.claimed.swap(true, Ordering::SeqCst);
        let _ = self.done.send(());
        if won {
            // It wakes at once and ends; nothing is left running.
            let _ = self.thread.join();
        }
        won
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_reports_a_check_that_does_not_finish_in_time() {
        let (fired, told) = std::sync::mpsc::channel();
        let watchdog = Watchdog::start(Duration::from_millis(20), move || {
            let _ = fired.send(());
        })
        .unwrap();
        told.recv_timeout(Duration::from_secs(60))
            .expect("the watchdog fired");
        assert!(!watchdog.claim(), "the check lost: it must not report");
    }

    #[test]
    fn a_check_done_in_time_reports_and_the_watchdog_never_fires() {
        let watchdog = Watchdog::start(Duration::from_secs(3600), || {
            panic!("the watchdog fired for a check that finished")
        })
        .unwrap();
        // claim() joins the watchdog's thread: it ended without firing.
        assert!(watchdog.claim());
    }
}
