//! The command line end to end: flags in, report out (or a server up until
//! SIGTERM), exit code back.
//! `main.rs` is one call to [`main`]; it lives here so that the demo
//! (`examples/demo.rs`) runs exactly what the binary runs.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::Parser;
use std::time::Instant;

use tracing::{error, info, warn};

use crate::check::{check, CheckConfig};
use crate::config::{
    resolve_session_name, CheckArgs, Cli, Command, Output, ServeArgs, VerifyArgs,
    DEFAULT_TERMINATION_LOG, TERMINATION_LOG_OFF,
};
use crate::env::AwsEnv;
use crate::monitor::{Settings, Shared};
use crate::report::{Report, Severity, Verdict};
use crate::sts::Sts;

/// Parses `args` (program name first), sets up logging, runs the command
/// and maps its outcome to the process exit code.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        // --help and --version land here too, with exit code 0.
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(crate::report::exit::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    crate::telemetry::init(cli.log_format);
    // One thread is plenty: a check is a handful of concurrent requests.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!(%e, "could not start the async runtime");
            return ExitCode::from(crate::report::exit::INCONCLUSIVE);
        }
    };
    let code = match cli.command {
        Command::Check(args) => runtime.block_on(run_check(&args, &mut std::io::stdout())),
        Command::Serve(args) => runtime.block_on(run_serve(&args)),
    };
    // Dropping a runtime waits for its blocking tasks (a DNS lookup, a file
    // read by the SDK) without limit; the verdict is already out.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    ExitCode::from(code)
}

/// How long blocking work left behind may delay the exit.
const RUNTIME_SHUTDOWN: Duration = Duration::from_millis(500);

/// Kubernetes truncates termination messages at 4096 bytes.
pub const TERMINATION_MESSAGE_LIMIT: usize = 4096;

/// The in-pod file that names the pod's namespace.
const NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Builds the check's configuration from flags, the AWS env and the host.
pub fn check_config(args: &VerifyArgs, env: &AwsEnv) -> CheckConfig {
    let pod_name = args.pod_name.clone().or_else(hostname);
    CheckConfig {
        expected_role_arn: args.expected_role_arn.clone(),
        audience: args.audience.clone(),
        session_name: resolve_session_name(
            args.session_name.as_deref(),
            env.role_session_name.as_deref(),
            pod_name.as_deref(),
        ),
        namespace: args
            .namespace
            .clone()
            .or_else(|| read_small(NAMESPACE_FILE)),
        service_account: args.service_account.clone(),
        timeout: args.timeout,
        retry_denied_for: args.retry_denied_for,
    }
}

fn hostname() -> Option<String> {
    read_small("/proc/sys/kernel/hostname")
}

fn read_small(path: &str) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty() && text.len() <= 253).then(|| text.to_owned())
}

/// Runs `check`, writes the report to `out`, the summary to the termination
/// log, and returns the exit code.
pub async fn run_check(args: &CheckArgs, out: &mut impl Write) -> u8 {
    let started = Instant::now();
    let env = AwsEnv::from_process();
    let cfg = check_config(&args.verify, &env);
    info!(
        version = env!("CARGO_PKG_VERSION"),
        role_arn = env.role_arn.as_deref().unwrap_or(""),
        token_file = %env.token_file.as_deref().map(Path::display).map(|d| d.to_string()).unwrap_or_default(),
        expected_role_arn = %cfg.expected_role_arn.as_ref().map(ToString::to_string).unwrap_or_default(),
        audience = %cfg.audience,
        session_name = %cfg.session_name,
        timeout = %humantime::format_duration(cfg.timeout),
        retry_denied_for = %humantime::format_duration(cfg.retry_denied_for),
        "irsa-doctor check starting"
    );
    let sts = Sts::from_env(crate::check::deadline(started, cfg.timeout), Arc::default()).await;
    let report = check(&cfg, &env, &sts, SystemTime::now(), started).await;
    log_report(&report);
    let rendered = match args.output {
        Output::Text => report.to_text(),
        Output::Json => match serde_json::to_string_pretty(&report) {
            Ok(json) => json + "\n",
            Err(e) => {
                error!(%e, "could not serialize the report");
                return crate::report::exit::INCONCLUSIVE;
            }
        },
    };
    if let Err(e) = out
        .write_all(rendered.as_bytes())
        .and_then(|()| out.flush())
    {
        error!(%e, "could not write the report to stdout");
    }
    write_termination_log(&args.termination_log, &report.summary());
    report.verdict.exit_code()
}

/// One log line per finding and one for the verdict: structured fields
/// for log pipelines, never a token or credential (the report holds none).
pub(crate) fn log_report(report: &Report) {
    for f in &report.findings {
        match f.severity {
            Severity::Error => error!(
                code = f.code.as_str(),
                expected = f.expected.as_deref().unwrap_or(""),
                found = f.found.as_deref().unwrap_or(""),
                remedy = %f.remedy,
                "{}", f.message
            ),
            Severity::Warning => warn!(code = f.code.as_str(), remedy = %f.remedy, "{}", f.message),
            Severity::Info => info!(code = f.code.as_str(), "{}", f.message),
        }
    }
    let summary = report.summary();
    match report.verdict {
        Verdict::Pass => info!(
            verdict = "pass",
            duration_ms = report.duration_ms,
            "{summary}"
        ),
        v => error!(
            verdict = v.as_str(),
            duration_ms = report.duration_ms,
            "{summary}"
        ),
    }
}

/// Runs `serve` until SIGTERM or SIGINT; returns 0 then, or
/// [`exit::USAGE`](crate::report::exit::USAGE) when it cannot listen.
pub async fn run_serve(args: &ServeArgs) -> u8 {
    // Handlers first: a SIGTERM that arrives while starting up must still
    // mean a clean exit, not the default action of dying by the signal.
    let shutdown = match shutdown_signal() {
        Ok(shutdown) => shutdown,
        Err(e) => {
            error!(%e, "could not install the SIGTERM and SIGINT handlers");
            return crate::report::exit::INCONCLUSIVE;
        }
    };
    let listener = match crate::server::listen(args.listen) {
        Ok(listener) => listener,
        Err(e) => {
            error!(
                listen = %args.listen,
                %e,
                "could not listen; choose another --listen (IRSA_DOCTOR_LISTEN) address"
            );
            return crate::report::exit::USAGE;
        }
    };
    let listen = listener
        .local_addr()
        .map_or_else(|_| args.listen.to_string(), |a| a.to_string());
    let env = AwsEnv::from_process();
    let cfg = check_config(&args.verify, &env);
    let settings = Settings {
        interval: args.interval,
        stale_after: args.stale_after(),
        timeout: cfg.timeout,
    };
    info!(
        version = env!("CARGO_PKG_VERSION"),
        %listen,
        interval = %humantime::format_duration(settings.interval),
        stale_after = %humantime::format_duration(settings.stale_after),
        shutdown_grace = %humantime::format_duration(args.shutdown_grace),
        role_arn = env.role_arn.as_deref().unwrap_or(""),
        token_file = %env.token_file.as_deref().map(Path::display).map(|d| d.to_string()).unwrap_or_default(),
        expected_role_arn = %cfg.expected_role_arn.as_ref().map(ToString::to_string).unwrap_or_default(),
        audience = %cfg.audience,
        session_name = %cfg.session_name,
        timeout = %humantime::format_duration(cfg.timeout),
        retry_denied_for = %humantime::format_duration(cfg.retry_denied_for),
        "irsa-doctor serve starting"
    );
    if settings.stale_after < settings.interval {
        warn!(
            "--stale-after is shorter than --interval: a single inconclusive check (STS \
             throttled or unreachable) will make /readyz answer 503"
        );
    }
    let shared = Arc::new(Shared::new(settings));
    let monitor = tokio::spawn(crate::monitor::run(cfg, env, shared.clone()));
    crate::server::serve(listener, shared, shutdown, args.shutdown_grace).await;
    monitor.abort();
    info!("irsa-doctor serve stopped");
    crate::report::exit::PASS
}

/// Resolves on the first SIGTERM (what the kubelet sends a container it
/// stops, a sidecar included, once the app has exited) or SIGINT (Ctrl-C
/// when run by hand).
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        info!(signal = name, "shutting down");
    })
}

/// Whether `--termination-log` says not to write one.
fn is_off(path: &Path) -> bool {
    path.as_os_str().is_empty() || path == Path::new(TERMINATION_LOG_OFF)
}

/// Writes the summary where kubelet reads the termination message. The
/// default path is skipped silently outside Kubernetes; a path the user
/// chose that cannot be written is worth a warning.
pub fn write_termination_log(path: &Path, summary: &str) {
    if is_off(path) {
        return;
    }
    let is_default = path == Path::new(DEFAULT_TERMINATION_LOG);
    let mut end = summary.len().min(TERMINATION_MESSAGE_LIMIT);
    while !summary.is_char_boundary(end) {
        end -= 1;
    }
    let result = fs::OpenOptions::new()
        .write(true)
        .create(!is_default)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(&summary.as_bytes()[..end]));
    if let Err(e) = result {
        if !is_default {
            warn!(path = %path.display(), %e, "could not write the termination log");
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
