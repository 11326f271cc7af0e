//! The command line: each command from its flags to an [`Exit`], one file
//! a command, and the process-level work around them (the watchdog, the
//! signals, the termination log, `exec`'s `execve`).
//!
//! `main.rs` is one call to [`main`]; it lives here so that the demo
//! (`examples/demo.rs`) runs exactly what the binary runs.
//!
//! Invariant: nothing below this folder parses flags or decides an exit
//! code; the commands call down into `check`, `monitor` and `http`.

mod check;
pub mod config;
mod exec;
pub mod explain;
mod install;
pub mod launch;
mod serve;
mod signals;
mod termination_log;
mod watchdog;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tracing::error;

use crate::cli::config::{Cli, Command};
use crate::cli::launch::Inherited;
use crate::guard::telemetry::LogFormat;
use crate::report::{exit, Verdict};

pub use serve::{serve, ServeSettings};

/// How a command ended. Turned into the process's exit code in one place,
/// [`Exit::code`], whose numbers the README documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// `check`'s verdict: 0, 1 or 3.
    Verdict(Verdict),
    /// `serve` stopped on SIGTERM or SIGINT: 0.
    Stopped,
    /// `--help` or `--version` was printed: 0.
    Help,
    /// Bad flags or values, or a `--listen` address that cannot be bound:
    /// 2, as clap uses.
    Usage,
    /// irsa-doctor itself could not run (no runtime, thread or signal
    /// handler; a report it could not write): 3, like any other "could not
    /// find out".
    Internal,
    /// `install` wrote its copy: 0.
    Installed,
    /// `install` could not write its copy: 1.
    NotInstalled,
    /// `exec`'s command does not exist: 127, as a shell says it.
    CommandNotFound,
    /// `exec`'s command exists but cannot be executed: 126, as a shell
    /// says it.
    CommandNotExecutable,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Verdict(verdict) => verdict.exit_code(),
            Exit::Stopped | Exit::Help | Exit::Installed => exit::PASS,
            Exit::Usage => exit::USAGE,
            Exit::Internal => exit::INCONCLUSIVE,
            Exit::NotInstalled => exit::FAIL,
            Exit::CommandNotFound => exit::NOT_FOUND,
            Exit::CommandNotExecutable => exit::NOT_EXECUTABLE,
        }
    }
}

/// Parses `args` (program name first), sets up logging, runs the command
/// and maps its outcome to the process exit code. `exec`'s app gets the
/// signal state std's own `exec` leaves (see [`main_inheriting`]).
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    main_inheriting(args, None)
}

/// [`main`], with what the process inherited before the Rust runtime
/// started (`inherited`, recorded by the binary's `main.rs`), which
/// `exec` hands on to the app.
pub fn main_inheriting(
    args: impl IntoIterator<Item = OsString>,
    inherited: Option<Inherited>,
) -> ExitCode {
    let args: Vec<OsString> = args.into_iter().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        // --help and --version land here too, with exit code 0. A bad
        // value is quoted back, so it is redacted like any other output.
        Err(e) if e.use_stderr() && requested_log_format(&args) == LogFormat::Json => {
            // One JSON line, as every other line on stderr: a log pipeline
            // that parses JSON keeps it whole.
            crate::guard::telemetry::init(LogFormat::Json);
            error!(error = %e.render().to_string().trim_end(), "invalid command line");
            return ExitCode::from(Exit::Usage.code());
        }
        Err(e) => {
            let text = e.render().to_string();
            let text = crate::guard::redact::redact(&text);
            let exit = if e.use_stderr() {
                let _ = std::io::stderr().write_all(text.as_bytes());
                Exit::Usage
            } else {
                let _ = std::io::stdout().write_all(text.as_bytes());
                Exit::Help
            };
            return ExitCode::from(exit.code());
        }
    };
    // A panic's message can quote whatever it was handed: it goes through
    // the redaction too, like every other output.
    std::panic::set_hook(Box::new(|info| {
        let text = format!("irsa-doctor: internal error: {info}\n");
        let _ = std::io::stderr().write_all(crate::guard::redact::redact(&text).as_bytes());
    }));
    crate::guard::telemetry::init(cli.log_format);
    let exit = match cli.command {
        Command::Check(args) => check::run_check(&args),
        Command::Exec(args) => exec::run_exec(&args, inherited),
        Command::Install(args) => install::run_install(&args.dir),
        Command::Explain(args) => explain::run_explain(&args),
        Command::Serve(args) => match runtime() {
            Ok(runtime) => {
                let exit = runtime.block_on(serve::run_serve(&args));
                // Dropping a runtime waits for its blocking tasks without
                // limit; the server is already down.
                runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
                exit
            }
            Err(e) => {
                error!(error = %e, "could not start the async runtime");
                Exit::Internal
            }
        },
    };
    ExitCode::from(exit.code())
}

/// The `--log-format` a command line asks for, read as clap reads it (the
/// last flag, else `IRSA_DOCTOR_LOG_FORMAT`) but past any other error in
/// it: clap's own lenient parse stops at the first bad value.
fn requested_log_format(args: &[OsString]) -> LogFormat {
    let mut asked = None;
    let mut rest = args.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(arg) = rest.next() {
        if arg == "--" {
            break;
        }
        if arg == "--log-format" {
            asked = rest.next().map(|v| v.into_owned());
        } else if let Some(value) = arg.strip_prefix("--log-format=") {
            asked = Some(value.to_owned());
        }
    }
    let asked = asked.or_else(|| std::env::var("IRSA_DOCTOR_LOG_FORMAT").ok());
    match asked.as_deref() {
        Some("json") => LogFormat::Json,
        _ => LogFormat::Text,
    }
}

/// A current-thread runtime: one thread is plenty, a check is a handful of
/// concurrent requests and the server answers from memory.
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// How long blocking work left behind may delay the exit.
pub(crate) const RUNTIME_SHUTDOWN: Duration = Duration::from_millis(500);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_outcome_has_its_documented_exit_code() {
        assert_eq!(Exit::Verdict(Verdict::Pass).code(), 0);
        assert_eq!(Exit::Verdict(Verdict::Fail).code(), 1);
        assert_eq!(Exit::Usage.code(), 2);
        assert_eq!(Exit::Verdict(Verdict::Inconclusive).code(), 3);
        assert_eq!(Exit::Internal.code(), 3);
        assert_eq!(Exit::Stopped.code(), 0);
        assert_eq!(Exit::Help.code(), 0);
    }
}
