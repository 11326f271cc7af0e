//! Notices the kubelet rotating the projected token, so that the loop
//! checks a new token soon after it appears instead of an interval later.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often the token file is looked at for a rotation: one `readlink`
/// and one `stat`, cheap enough to be invisible in idle CPU.
const ROTATION_POLL: Duration = Duration::from_secs(1);

/// A rotation is acted on once the token volume has been still this long,
/// so a swap in progress is not read half-done.
const ROTATION_DEBOUNCE: Duration = Duration::from_secs(1);

/// Rotation-triggered checks start at least this long after the previous
/// check: a volume that keeps changing must not turn into STS traffic.
const ROTATION_MIN_GAP: Duration = Duration::from_secs(5);

/// Notices the kubelet rotating the token. The kubelet writes a projected
/// volume atomically: a new timestamped directory, then a rename of the
/// `..data` symlink onto it. Polling that link (and the file, for tokens
/// not in such a volume) needs no inotify and cannot miss a swap.
pub(super) struct RotationWatch {
    file: Option<PathBuf>,
    seen: Option<Fingerprint>,
}

/// What a file looks like from outside: the `..data` link beside it and
/// its metadata (symlinks followed). A kubelet swap or a rewrite changes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fingerprint {
    data_link: Option<PathBuf>,
    file: Option<(u64, u64, i64, i64, u64)>,
}

impl Fingerprint {
    pub(super) fn of(file: &Path) -> Self {
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
    pub(super) fn new(file: Option<PathBuf>) -> Self {
        let seen = file.as_deref().map(Fingerprint::of);
        RotationWatch { file, seen }
    }

    /// Resolves once the token has changed and has then been still for
    /// [`ROTATION_DEBOUNCE`], no sooner than [`ROTATION_MIN_GAP`] after
    /// `last_check`. Never resolves without a token file.
    pub(super) async fn rotated(&mut self, last_check: Instant) {
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
mod tests {
    use super::*;

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
        let dir = volume();
        let d = dir.path();
        let before = Fingerprint::of(&d.join("token"));
        swap(d, 2);
        let after = Fingerprint::of(&d.join("token"));
        assert_ne!(before, after);
        assert_eq!(after, Fingerprint::of(&d.join("token")));
    }
}
