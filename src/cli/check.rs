//! `check`: one verification, its report written to stdout and its summary
//! to the termination log. [`run_once`] is also `exec`'s first half.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::{error, info};

use super::termination_log::write_termination_log;
use super::watchdog::{Watchdog, WATCHDOG_GRACE};
use super::{runtime, Exit, RUNTIME_SHUTDOWN};
use crate::check::{check, CheckConfig};
use crate::cli::config::{CheckArgs, Host, Output, VerifyArgs};
use crate::monitor::Settings;
use crate::peers::sts::Sts;
use crate::report::{Report, SeenFrom};
use crate::settings::env::AwsEnv;

/// Runs `check`, writes the report to stdout, the summary to the
/// termination log, and returns the exit code.
pub fn run_check(args: &CheckArgs) -> Exit {
    let sink = Sink {
        output: args.output,
        stream: Stream::Stdout,
        termination_log: Some(args.termination_log.clone()),
    };
    run_once(
        "check",
        &args.verify,
        SeenFrom::OwnContainer,
        move |report| emit(report, &sink),
    )
}

/// Runs one check for `command` and hands its report to `finish`, whose
/// exit code it returns. The whole run, loading the AWS configuration
/// included, ends within `--timeout` plus [`WATCHDOG_GRACE`]: a check that
/// is not done by then is reported as `CHECK_TIMEOUT` to `finish`, on the
/// watchdog's thread, and left behind.
pub(super) fn run_once(
    command: &'static str,
    verify: &VerifyArgs,
    seen_from: SeenFrom,
    finish: impl Fn(&Report) -> Exit + Send + Sync + 'static,
) -> Exit {
    let started = Instant::now();
    let env = AwsEnv::from_process();
    let mut cfg = verify.check_config(&env, &Host::read());
    cfg.seen_from = seen_from;
    log_start(command, &env, &cfg, None);
    let finish = Arc::new(finish);
    // The check runs on this thread; a watchdog thread gives up on it at
    // the limit. Whichever finishes first reports; the other stays quiet.
    let limit = cfg.timeout.saturating_add(WATCHDOG_GRACE);
    let watchdog = {
        let (cfg, env, finish) = (cfg.clone(), env.clone(), finish.clone());
        Watchdog::start(limit, move || {
            let report = crate::check::timed_out(&cfg, &env, started);
            let exit = finish(&report);
            // This thread's exit is the process's, the one exit not taken
            // through `main`: the check's thread is stuck in a call that
            // will not return, and std's exit still flushes stdout, which
            // `emit` has done anyway.
            std::process::exit(i32::from(exit.code()));
        })
    };
    let watchdog = match watchdog {
        Ok(watchdog) => watchdog,
        Err(e) => {
            error!(error = %e, "could not start the check's watchdog");
            return Exit::Internal;
        }
    };
    let report = match runtime() {
        Ok(runtime) => {
            let report = runtime.block_on(async {
                let sts =
                    Sts::from_env(crate::check::deadline(started, cfg.timeout), Arc::default())
                        .await;
                check(&cfg, &env, &sts, SystemTime::now(), started).await
            });
            // Blocking work left behind (a DNS lookup) may delay the exit
            // this long at most; the verdict is in hand.
            runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
            report
        }
        Err(e) => {
            error!(error = %e, "could not start the async runtime");
            return Exit::Internal;
        }
    };
    if !watchdog.claim() {
        // The watchdog is reporting CHECK_TIMEOUT and ends the process.
        loop {
            std::thread::park();
        }
    }
    finish(&report)
}

/// Where a one-shot check's report goes.
pub(super) struct Sink {
    pub(super) output: Output,
    pub(super) stream: Stream,
    pub(super) termination_log: Option<std::path::PathBuf>,
}

/// The standard stream the report is written to: `exec` leaves stdout to
/// the app.
#[derive(Clone, Copy)]
pub(super) enum Stream {
    Stdout,
    Stderr,
}

/// Logs the report, writes it to the sink's stream and the summary to its
/// termination log, all redacted; returns the exit code.
pub(super) fn emit(report: &Report, sink: &Sink) -> Exit {
    report.log();
    let rendered = match sink.output {
        Output::Text => report.to_text(),
        // One line: the kubelet makes each line of stdout its own log
        // record.
        Output::Json => match serde_json::to_string(report) {
            Ok(json) => json + "\n",
            Err(e) => {
                error!(error = %e, "could not serialize the report");
                return Exit::Internal;
            }
        },
        Output::JsonPretty => match serde_json::to_string_pretty(report) {
            Ok(json) => json + "\n",
            Err(e) => {
                error!(error = %e, "could not serialize the report");
                return Exit::Internal;
            }
        },
    };
    let redacted = crate::guard::redact::redact(&rendered);
    let written = match sink.stream {
        Stream::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(redacted.as_bytes())
                .and_then(|()| out.flush())
        }
        Stream::Stderr => std::io::stderr().lock().write_all(redacted.as_bytes()),
    };
    if let Err(e) = written {
        error!(error = %e, "could not write the report");
    }
    if let Some(path) = &sink.termination_log {
        write_termination_log(path, &report.summary());
    }
    Exit::Verdict(report.verdict)
}

/// The version and the effective configuration, logged once at start.
/// `serve` adds its own settings to the same line.
pub(super) fn log_start(
    command: &str,
    env: &AwsEnv,
    cfg: &CheckConfig,
    serving: Option<Serving<'_>>,
) {
    let fmt = |d: Duration| humantime::format_duration(d).to_string();
    let serving = serving.as_ref();
    info!(
        version = env!("CARGO_PKG_VERSION"),
        listen = serving.map(|s| display(s.listen)),
        interval = serving.map(|s| display(fmt(s.monitor.interval))),
        stale_after = serving.map(|s| display(fmt(s.monitor.stale_after))),
        shutdown_grace = serving.map(|s| display(fmt(s.shutdown_grace))),
        role_arn = env.role_arn.as_deref().unwrap_or(""),
        full_uri = env.container_full_uri.as_deref().unwrap_or(""),
        token_file = %crate::check::watched_token_file(env).as_deref().map(Path::display).map(|d| d.to_string()).unwrap_or_default(),
        expected_role_arn = %cfg.expected_role_arn.as_ref().map(ToString::to_string).unwrap_or_default(),
        association_role_arn = %cfg.association_role_arn.as_ref().map(ToString::to_string).unwrap_or_default(),
        session_tags = cfg.session_tags.as_str(),
        audience = cfg.audience.as_deref().unwrap_or(""),
        session_name = %cfg.session_name,
        node_name = cfg.node_name.as_deref().unwrap_or(""),
        session_policy = cfg.session_policy.is_some(),
        timeout = %humantime::format_duration(cfg.timeout),
        retry_denied_for = %humantime::format_duration(cfg.retry_denied_for),
        "irsa-doctor {command} starting"
    );
}

/// `serve`'s part of the start line.
pub(super) struct Serving<'a> {
    pub(super) listen: &'a str,
    pub(super) monitor: &'a Settings,
    pub(super) shutdown_grace: Duration,
}
