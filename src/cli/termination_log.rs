//! The summary written where the kubelet reads a container's termination
//! message, bounded and never blocking.

use std::fs;
use std::io::Write;
use std::path::Path;

use tracing::warn;

use crate::cli::config::{DEFAULT_TERMINATION_LOG, TERMINATION_LOG_OFF};

/// Kubernetes truncates termination messages at 4096 bytes.
pub const TERMINATION_MESSAGE_LIMIT: usize = 4096;

/// Whether `--termination-log` says not to write one.
fn is_off(path: &Path) -> bool {
    path.as_os_str().is_empty() || path == Path::new(TERMINATION_LOG_OFF)
}

/// Writes the summary where kubelet reads the termination message. The
/// default path is skipped silently outside Kubernetes; a path the user
/// chose that cannot be written is worth a warning. Only a regular file is
/// written, and it is opened without blocking: a FIFO there once hung the
/// process after its verdict.
pub fn write_termination_log(path: &Path, summary: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    if is_off(path) {
        return;
    }
    let is_default = path == Path::new(DEFAULT_TERMINATION_LOG);
    let summary = crate::guard::redact::redact(summary);
    let mut end = summary.len().min(TERMINATION_MESSAGE_LIMIT);
    while !summary.is_char_boundary(end) {
        end -= 1;
    }
    let result = fs::OpenOptions::new()
        .write(true)
        .create(!is_default)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .and_then(|f| {
            if f.metadata()?.is_file() {
                Ok(f)
            } else {
                Err(std::io::Error::other("it is not a regular file"))
            }
        })
        .and_then(|mut f| {
            f.set_len(0)?;
            f.write_all(&summary.as_bytes()[..end])
        });
    if let Err(e) = result {
        if !is_default {
            warn!(path = %path.display(), error = %e, "could not write the termination log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn termination_log_is_truncated_on_a_char_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("termination-log");
        let long = "é".repeat(3000);
        write_termination_log(&path, &long);
        let written = fs::read_to_string(&path).unwrap();
        assert!(written.len() <= TERMINATION_MESSAGE_LIMIT);
        assert!(written.len() >= TERMINATION_MESSAGE_LIMIT - 1);
    }

    #[test]
    fn off_disables_the_termination_log() {
        assert!(is_off(Path::new("off")));
        assert!(is_off(Path::new("")));
        assert!(!is_off(Path::new("/dev/termination-log")));
    }
}
