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
//!
//! The app also gets what irsa-doctor's parent gave it and the Rust
//! runtime changed: which signals are ignored, the signal mask, and closed
//! standard descriptors ([`Inherited`], recorded by `main.rs` before the
//! runtime starts, put back by [`restore`] just before `execve`). This is
//! the crate's one `unsafe` function: std offers no safe way to run code
//! between its own reset of the signals and `execve`.

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

/// What irsa-doctor's parent gave it, as it was before the Rust runtime
/// started, for the app to get the same: std ignores SIGPIPE before `main`
/// and reopens closed standard descriptors on `/dev/null`; its `exec` then
/// sets SIGPIPE to default (and some versions clear the signal mask: it is
/// set explicitly all the same). Signals handled in this process (tokio's)
/// would become default at `execve`, an inherited `SIG_IGN` lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Inherited {
    /// Bit `n - 1` set: signal `n` was ignored (`SIG_IGN`).
    pub ignored: u64,
    /// Bit `n - 1` set: signal `n` was blocked.
    pub blocked: u64,
    /// Bit `fd` set: descriptor 0, 1 or 2 was closed.
    pub closed: u8,
}

/// The highest signal number on Linux (`SIGRTMAX`; `_NSIG` is 65).
const LAST_SIGNAL: libc::c_int = 64;

/// Replaces this process with `command` (program, then arguments), found
/// through `PATH` as `execvp` finds it. Returns only when that fails.
///
/// argv is `command` as given, non-UTF-8 bytes included; the environment,
/// the working directory and the inherited descriptors are left as they
/// are. With `inherited`, the signal dispositions, the signal mask and the
/// closed standard descriptors are put back as irsa-doctor found them
/// (without, what std's `exec` leaves: SIGPIPE default). They are put back
/// in this process, so when `execve` then fails, irsa-doctor reports that
/// with them (a closed stderr is closed again).
pub fn become_app(command: &[OsString], inherited: Option<Inherited>) -> NotStarted {
    let Some((program, args)) = command.split_first() else {
        return NotStarted::NotFound(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no command given",
        ));
    };
    let mut app = std::process::Command::new(program);
    app.args(args);
    if let Some(inherited) = inherited {
        restore(&mut app, inherited);
    }
    let error = app.exec();
    match error.kind() {
        io::ErrorKind::NotFound => NotStarted::NotFound(error),
        _ => NotStarted::NotExecutable(error),
    }
}

/// Has `command` put `inherited` back just before `execve`, after std's
/// own reset of the signals (std runs `pre_exec` closures after it).
///
/// Through the system calls themselves, not the C library's wrappers:
/// glibc refuses to touch its own signals 32 and 33 (and its threads put a
/// handler on 33, which `execve` turns into default), yet they are the
/// app's to inherit like any other.
#[allow(unsafe_code)]
fn restore(command: &mut std::process::Command, inherited: Inherited) {
    let restore = move || {
        // SAFETY: plain system calls on values owned by this closure
        // (rt_sigaction with SIG_IGN or SIG_DFL, which is a kernel
        // `struct sigaction` with every other field zero: 4 words covers
        // it on every 64-bit Linux; rt_sigprocmask on the 8-byte kernel
        // set; close). All are async-signal-safe and allocate nothing. The
        // closure runs in this very process just before execve, and the
        // descriptors it closes are the ones std reopened on /dev/null at
        // start, which nothing else holds.
        unsafe {
            for signal in 1..=LAST_SIGNAL {
                if signal == libc::SIGKILL || signal == libc::SIGSTOP {
                    continue;
                }
                let handler = if inherited.ignored & bit(signal) != 0 {
                    libc::SIG_IGN
                } else {
                    libc::SIG_DFL
                };
                let action: [usize; 4] = [handler, 0, 0, 0];
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    libc::c_long::from(signal),
                    action.as_ptr(),
                    std::ptr::null_mut::<usize>(),
                    SIGSET_BYTES,
                );
            }
            let mask: u64 = inherited.blocked;
            let set = libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::c_long::from(libc::SIG_SETMASK),
                &mask as *const u64,
                std::ptr::null_mut::<u64>(),
                SIGSET_BYTES,
            );
            if set != 0 {
                return Err(io::Error::last_os_error());
            }
            for fd in 0..3 {
                if inherited.closed & (1 << fd) != 0 {
                    libc::close(fd);
                }
            }
        }
        Ok(())
    };
    // SAFETY: `restore` is async-signal-safe, as `pre_exec` requires (see
    // above), and this is exec, not spawn: no fork happens.
    unsafe {
        command.pre_exec(restore);
    }
}

/// The kernel's signal set, in bytes: 64 signals.
const SIGSET_BYTES: libc::c_long = 8;

/// The bit of [`Inherited`]'s masks for `signal`.
const fn bit(signal: libc::c_int) -> u64 {
    1 << (signal - 1)
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
        let missing = become_app(&["irsa-doctor-no-such-program".into()], None);
        assert!(matches!(missing, NotStarted::NotFound(_)), "{missing:?}");
        let dir = tempfile::tempdir().unwrap();
        let not_exec = become_app(&[dir.path().as_os_str().to_owned()], None);
        assert!(
            matches!(not_exec, NotStarted::NotExecutable(_)),
            "{not_exec:?}"
        );
    }
}
