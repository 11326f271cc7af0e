//! `exec` and `install`: irsa-doctor in the app's own container.
//!
//! `install` copies the running binary into a directory an init container
//! shares with the app (an `emptyDir`). `exec`, run as the app container's
//! command, checks with the app's own environment and files, then replaces
//! itself with the app through `execve`: same PID, argv, environment (byte
//! for byte), working directory and inherited descriptors. irsa-doctor's
//! own descriptors are close-on-exec (std and tokio open every one that
//! way), so none of them, and none of its memory, reaches the app.
//!
//! This module owns the two process-level operations and nothing else:
//! which verdicts start the app is `app.rs`'s decision.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

/// The installed binary's name inside `install`'s directory.
pub const INSTALLED_NAME: &str = "irsa-doctor";

/// The installed binary's mode: anyone may run it, nobody may change it.
pub const INSTALLED_MODE: u32 = 0o555;

/// Copies the running binary to `dir`/[`INSTALLED_NAME`] with mode
/// [`INSTALLED_MODE`], creating `dir` if missing. The copy is written under
/// a temporary name in `dir` and renamed into place, so a reader sees the
/// old file or the whole new one, never a part; running it again replaces
/// the file with an identical one. Returns the installed path.
pub fn install(dir: &Path) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let target = dir.join(INSTALLED_NAME);
    let temporary = dir.join(format!(".{INSTALLED_NAME}.{}.tmp", std::process::id()));
    let written = copy_self(&temporary).and_then(|()| std::fs::rename(&temporary, &target));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written.map(|()| target)
}

/// Writes this process's executable to `to`, mode [`INSTALLED_MODE`],
/// flushed to disk. `/proc/self/exe` names the running binary even when
/// its path has been replaced or removed since.
fn copy_self(to: &Path) -> io::Result<()> {
    let mut source = std::fs::File::open("/proc/self/exe")?;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)?;
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let n = source.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        out.write_all(&buffer[..n])?;
    }
    out.set_permissions(std::fs::Permissions::from_mode(INSTALLED_MODE))?;
    out.sync_all()
}

/// Why the app could not be started, as a shell would say it.
#[derive(Debug)]
pub enum NotStarted {
    /// No such file, on `PATH` or at the path given: a shell's 127.
    NotFound(io::Error),
    /// Found, but not something this process may execute: a shell's 126.
    NotExecutable(io::Error),
}

/// Replaces this process with `command` (program, then arguments), found
/// through `PATH` as `execvp` finds it. Returns only when that fails.
///
/// argv is `command` as given, non-UTF-8 bytes included; the environment,
/// the working directory and the inherited descriptors are left as they
/// are. std resets the signal mask and SIGPIPE's disposition (which the
/// Rust runtime set to ignore) to what a freshly started program has.
pub fn become_app(command: &[OsString]) -> NotStarted {
    let Some((program, args)) = command.split_first() else {
        return NotStarted::NotFound(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no command given",
        ));
    };
    let error = std::process::Command::new(program).args(args).exec();
    match error.kind() {
        io::ErrorKind::NotFound => NotStarted::NotFound(error),
        _ => NotStarted::NotExecutable(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn install_writes_this_binary_read_only_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("bin");
        let first = install(&inside).unwrap();
        assert_eq!(first, inside.join(INSTALLED_NAME));
        let meta = std::fs::metadata(&first).unwrap();
        assert_eq!(meta.mode() & 0o7777, INSTALLED_MODE);
        let running = std::fs::read("/proc/self/exe").unwrap();
        assert_eq!(std::fs::read(&first).unwrap(), running);
        let again = install(&inside).unwrap();
        assert_eq!(again, first);
        assert_eq!(std::fs::read(&again).unwrap(), running);
        let names: Vec<_> = std::fs::read_dir(&inside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [INSTALLED_NAME], "no temporary file is left");
    }

    #[test]
    fn install_into_a_file_fails_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        assert!(install(&file).is_err());
        assert_eq!(std::fs::read(&file).unwrap(), b"x");
    }

    #[test]
    fn a_missing_program_is_not_found_and_a_directory_is_not_executable() {
        let missing = become_app(&["irsa-doctor-no-such-program".into()]);
        assert!(matches!(missing, NotStarted::NotFound(_)), "{missing:?}");
        let dir = tempfile::tempdir().unwrap();
        let not_exec = become_app(&[dir.path().as_os_str().to_owned()]);
        assert!(
            matches!(not_exec, NotStarted::NotExecutable(_)),
            "{not_exec:?}"
        );
    }
}
