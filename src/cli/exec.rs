//! `exec`: the check, its report on stderr, then the app in this process's
//! place when the verdict and `--on-fail`/`--on-inconclusive` allow it.

use std::ffi::OsString;

use tracing::error;

use super::check::{emit, run_once, Sink, Stream};
use super::Exit;
use crate::cli::config::{ExecArgs, OnVerdict};
use crate::cli::launch::{Inherited, NotStarted};
use crate::report::{SeenFrom, Verdict};

/// Runs `exec`: the check, with the report on stderr, then the app in this
/// process's place when the verdict and `--on-fail`/`--on-inconclusive`
/// allow it. Returns only when the app was not started.
pub fn run_exec(args: &ExecArgs, inherited: Option<Inherited>) -> Exit {
    let sink = Sink {
        output: args.output,
        stream: Stream::Stderr,
        termination_log: args.termination_log.clone(),
    };
    let args = args.clone();
    run_once(
        "exec",
        &args.verify.clone(),
        SeenFrom::AppContainer,
        move |report| {
            let exit = emit(report, &sink);
            let policy = match report.verdict {
                Verdict::Pass => OnVerdict::Warn,
                Verdict::Fail => args.on_fail,
                Verdict::Inconclusive => args.on_inconclusive,
            };
            if exit == Exit::Internal || policy == OnVerdict::Exit {
                if exit != Exit::Internal {
                    error!(
                        verdict = report.verdict.as_str(),
                        "not starting the app: the check did not pass"
                    );
                }
                return exit;
            }
            if report.verdict != Verdict::Pass {
                error!(
                    verdict = report.verdict.as_str(),
                    "starting the app although the check did not pass"
                );
            }
            start_app(&args.command, inherited)
        },
    )
}

/// Becomes the app; returns the exit code a shell would give when that
/// fails.
fn start_app(command: &[OsString], inherited: Option<Inherited>) -> Exit {
    let program = command.first().map(|p| p.to_string_lossy().into_owned());
    let program = program.unwrap_or_default();
    match crate::cli::launch::become_app(command, inherited) {
        NotStarted::NotFound(e) => {
            error!(command = %program, error = %e, "cannot start the app: command not found");
            Exit::CommandNotFound
        }
        NotStarted::NotExecutable(e) => {
            error!(command = %program, error = %e, "cannot start the app: not executable");
            Exit::CommandNotExecutable
        }
    }
}
