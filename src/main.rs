//! The `irsa-doctor` binary. Flag parsing, logging setup and the mapping
//! of outcome to exit code live in `irsa_doctor::main_inheriting`, which
//! the demo runs too (as `irsa_doctor::main`).
//!
//! Its one job of its own: recording, before the Rust runtime changes them,
//! the signal dispositions, the signal mask and the closed standard
//! descriptors irsa-doctor's parent gave it, so that `exec` hands the app
//! the same ([`inherited`]).

// `deny`, not `forbid`: `inherited` must run before std's runtime, which
// only a constructor in `.init_array` does, and allows `unsafe` for itself.
#![deny(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    irsa_doctor::main_inheriting(std::env::args_os(), inherited::at_start())
}

/// What the process inherited, read by a constructor the C library runs
/// before `main` and so before std's runtime, which ignores SIGPIPE and
/// opens `/dev/null` on a closed descriptor 0, 1 or 2 (on stable Rust
/// neither can be turned off: `#[unix_sigpipe]` and `-Zon-broken-pipe`
/// are nightly-only).
#[allow(unsafe_code)]
mod inherited {
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

    /// The kernel's signal set, in bytes: 64 signals.
    const SIGSET_BYTES: libc::c_long = 8;

    static RECORDED: AtomicBool = AtomicBool::new(false);
    static IGNORED: AtomicU64 = AtomicU64::new(0);
    static BLOCKED: AtomicU64 = AtomicU64::new(0);
    static CLOSED: AtomicU8 = AtomicU8::new(0);

    /// What [`record`] saw; `None` if it did not run.
    pub fn at_start() -> Option<irsa_doctor::Inherited> {
        RECORDED
            .load(Ordering::Acquire)
            .then(|| irsa_doctor::Inherited {
                ignored: IGNORED.load(Ordering::Relaxed),
                blocked: BLOCKED.load(Ordering::Relaxed),
                closed: CLOSED.load(Ordering::Relaxed),
            })
    }

    // SAFETY: a function pointer in `.init_array` is what the C library
    // (glibc and musl alike) calls before `main`; `record` takes no
    // arguments it does not ignore and cannot unwind.
    #[used]
    #[link_section = ".init_array"]
    static RECORD: extern "C" fn() = record;

    extern "C" fn record() {
        let (mut ignored, mut blocked, mut closed) = (0u64, 0u64, 0u8);
        // SAFETY: queries only (no new action, no new mask, F_GETFD) into
        // values owned here, large enough for what the kernel writes (a
        // kernel `struct sigaction` is at most 4 words on 64-bit Linux, its
        // set 8 bytes). The system calls themselves, not the C library's
        // wrappers, which hide glibc's own signals 32 and 33.
        unsafe {
            let mut mask = 0u64;
            let masked = libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::c_long::from(libc::SIG_BLOCK),
                std::ptr::null::<u64>(),
                &mut mask as *mut u64,
                SIGSET_BYTES,
            ) == 0;
            if masked {
                blocked = mask;
            }
            for signal in 1..=64 {
                let mut action = [0usize; 4];
                let asked = libc::syscall(
                    libc::SYS_rt_sigaction,
                    libc::c_long::from(signal),
                    std::ptr::null::<usize>(),
                    action.as_mut_ptr(),
                    SIGSET_BYTES,
                );
                if asked == 0 && action[0] == libc::SIG_IGN {
                    ignored |= 1 << (signal - 1);
                }
            }
            for fd in 0..3 {
                if libc::fcntl(fd, libc::F_GETFD) == -1
                    && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF)
                {
                    closed |= 1 << fd;
                }
            }
        }
        IGNORED.store(ignored, Ordering::Relaxed);
        BLOCKED.store(blocked, Ordering::Relaxed);
        CLOSED.store(closed, Ordering::Relaxed);
        RECORDED.store(true, Ordering::Release);
    }
}
