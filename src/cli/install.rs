//! `install`: the binary copied into a shared volume, its path printed.

use std::io::Write;
use std::path::Path;

use tracing::error;

use super::Exit;

/// Runs `install`: prints the installed path on stdout.
pub(super) fn run_install(dir: &Path) -> Exit {
    match crate::cli::launch::install(dir) {
        Ok(path) => {
            let mut out = std::io::stdout();
            let _ = writeln!(out, "{}", path.display()).and_then(|()| out.flush());
            Exit::Installed
        }
        Err(e) => {
            error!(dir = %dir.display(), error = %e, "could not install irsa-doctor");
            Exit::NotInstalled
        }
    }
}
