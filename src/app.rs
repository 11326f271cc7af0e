//! The command line end to end: flags in, report out (or a server up until
//! SIGTERM), exit code back.
//! `main.rs` is one call to [`main`]; it lives here so that the demo
//! (`examples/demo.rs`) runs exactly what the binary runs.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::Parser;
use std::time::Instant;

use tracing::{error, info, warn};

use crate::check::{check, CheckConfig};
use crate::config::{
    CheckArgs, Cli, Command, ExecArgs, ExplainArgs, Host, OnVerdict, Output, ServeArgs, VerifyArgs,
    DEFAULT_TERMINATION_LOG, TERMINATION_LOG_OFF,
};
use crate::env::AwsEnv;
use crate::launch::{Inherited, NotStarted};
use crate::monitor::{Settings, Shared};
use crate::report::{exit, Verdict};
use crate::report::{Report, SeenFrom};
use crate::sts::{AwsSource, Sts};
use crate::telemetry::LogFormat;
use aws_config::SdkConfig;

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
            crate::telemetry::init(LogFormat::Json);
            error!(error = %e.render().to_string().trim_end(), "invalid command line");
            return ExitCode::from(Exit::Usage.code());
        }
        Err(e) => {
            let text = e.render().to_string();
            let text = crate::redact::redact(&text);
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
        let _ = std::io::stderr().write_all(crate::redact::redact(&text).as_bytes());
    }));
    crate::telemetry::init(cli.log_format);
    let exit = match cli.command {
        Command::Check(args) => run_check(&args),
        Command::Exec(args) => run_exec(&args, inherited),
        Command::Install(args) => run_install(&args.dir),
        Command::Explain(args) => run_explain(&args),
        Command::Serve(args) => match runtime() {
            Ok(runtime) => {
                let exit = runtime.block_on(run_serve(&args));
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
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// How long blocking work left behind may delay the exit.
const RUNTIME_SHUTDOWN: Duration = Duration::from_millis(500);

/// How far past `--timeout` a `check` may run before its watchdog gives
/// up on it: the check's own deadline covers every network call, so this
/// only matters when something blocks where nothing should.
pub const WATCHDOG_GRACE: Duration = Duration::from_millis(500);

/// Runs `work` on a thread of its own with its own runtime. `serve`'s
/// checks run this way, so that nothing a check does, a blocking read
/// included, can hold up the HTTP side or the signal handling, which stay
/// on a thread no check touches.
fn on_check_thread(
    work: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let runtime = runtime()?;
    std::thread::Builder::new()
        .name("irsa-doctor-check".into())
        .spawn(move || {
            runtime.block_on(work);
            runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
        })?;
    Ok(())
}

/// Kubernetes truncates termination messages at 4096 bytes.
pub const TERMINATION_MESSAGE_LIMIT: usize = 4096;

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
    match crate::launch::become_app(command, inherited) {
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

/// Runs `explain`: the evaluation on stdout; 0 when allowed, 1 when
/// denied, 2 when the inputs cannot be used.
fn run_explain(args: &ExplainArgs) -> Exit {
    match crate::explain::explain(args) {
        Ok(explained) => {
            let text = crate::explain::render(&explained, args.output);
            let mut out = std::io::stdout();
            if out
                .write_all(crate::redact::redact(&text).as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                return Exit::Internal;
            }
            Exit::Verdict(if explained.evaluation.allowed {
                Verdict::Pass
            } else {
                Verdict::Fail
            })
        }
        Err(e) => {
            error!(error = %e, "explain: nothing evaluated");
            Exit::Usage
        }
    }
}

/// Runs `install`: prints the installed path on stdout.
fn run_install(dir: &Path) -> Exit {
    match crate::launch::install(dir) {
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

/// Runs one check for `command` and hands its report to `finish`, whose
/// exit code it returns. The whole run, loading the AWS configuration
/// included, ends within `--timeout` plus [`WATCHDOG_GRACE`]: a check that
/// is not done by then is reported as `CHECK_TIMEOUT` to `finish`, on the
/// watchdog's thread, and left behind.
fn run_once(
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
struct Sink {
    output: Output,
    stream: Stream,
    termination_log: Option<std::path::PathBuf>,
}

/// The standard stream the report is written to: `exec` leaves stdout to
/// the app.
#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// Logs the report, writes it to the sink's stream and the summary to its
/// termination log, all redacted; returns the exit code.
fn emit(report: &Report, sink: &Sink) -> Exit {
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
    let redacted = crate::redact::redact(&rendered);
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
fn log_start(command: &str, env: &AwsEnv, cfg: &CheckConfig, serving: Option<Serving<'_>>) {
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
        audience = cfg.audience.as_deref().unwrap_or(""),
        session_name = %cfg.session_name,
        timeout = %humantime::format_duration(cfg.timeout),
        retry_denied_for = %humantime::format_duration(cfg.retry_denied_for),
        "irsa-doctor {command} starting"
    );
}

/// `serve`'s part of the start line.
struct Serving<'a> {
    listen: &'a str,
    monitor: &'a Settings,
    shutdown_grace: Duration,
}

/// Gives up on a check at a limit: a thread that waits for the check to
/// finish and, if it does not by then, runs `on_timeout`. Exactly one of
/// the check and the watchdog gets to report: [`Watchdog::claim`] says
/// whether the check did.
struct Watchdog {
    claimed: Arc<AtomicBool>,
    done: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Watchdog {
    fn start(limit: Duration, on_timeout: impl FnOnce() + Send + 'static) -> std::io::Result<Self> {
        let claimed = Arc::new(AtomicBool::new(false));
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let ours = claimed.clone();
        let thread = std::thread::Builder::new()
            .name("irsa-doctor-watchdog".into())
            .spawn(move || {
                let timed_out =
                    matches!(finished.recv_timeout(limit), Err(RecvTimeoutError::Timeout));
                if timed_out && !ours.swap(true, Ordering::SeqCst) {
                    on_timeout();
                }
            })?;
        Ok(Watchdog {
            claimed,
            done,
            thread,
        })
    }

    /// Called when the check is done: true if it is the check's to report,
    /// false if the watchdog already gave up on it.
    fn claim(self) -> bool {
        let won = !self.claimed.swap(true, Ordering::SeqCst);
        let _ = self.done.send(());
        if won {
            // It wakes at once and ends; nothing is left running.
            let _ = self.thread.join();
        }
        won
    }
}

/// Runs `serve` until SIGTERM or SIGINT; returns [`Exit::Stopped`] then,
/// or [`Exit::Usage`] when it cannot listen.
pub async fn run_serve(args: &ServeArgs) -> Exit {
    // Handlers first: a SIGTERM that arrives while starting up must still
    // mean a clean exit, not the default action of dying by the signal.
    let shutdown = match shutdown_signal() {
        Ok(shutdown) => shutdown,
        Err(e) => {
            error!(error = %e, "could not install the SIGTERM and SIGINT handlers");
            return Exit::Internal;
        }
    };
    let listener = match crate::server::listen(args.listen) {
        Ok(listener) => listener,
        Err(e) => {
            error!(
                listen = %args.listen,
                error = %e,
                "could not listen; choose another --listen (IRSA_DOCTOR_LISTEN) address"
            );
            return Exit::Usage;
        }
    };
    let settings = ServeSettings::from_process(args.clone());
    serve(listener, settings, shutdown).await
}

/// Everything `serve` runs with besides its listener and its shutdown
/// future: the flags, the AWS environment, the check's configuration and
/// where the AWS configuration comes from.
pub struct ServeSettings {
    args: ServeArgs,
    env: AwsEnv,
    cfg: CheckConfig,
    aws: AwsSource,
}

impl ServeSettings {
    /// This process's: its AWS variables, its host, and AWS as an SDK in
    /// this container would reach it.
    fn from_process(args: ServeArgs) -> Self {
        let env = AwsEnv::from_process();
        let cfg = args.verify.check_config(&env, &Host::read());
        ServeSettings {
            args,
            env,
            cfg,
            aws: AwsSource::Environment,
        }
    }

    /// Settings handed in, for tests and embedders: `flags` as they would
    /// follow `irsa-doctor serve` on the command line (`--listen` and
    /// `--log-format` are ignored: the caller binds and sets up logging;
    /// clap falls back to `IRSA_DOCTOR_*` variables for flags not given),
    /// `vars` as the AWS environment (the process's AWS variables are not
    /// read), no host, and AWS reached through `sdk`. A flag clap refuses
    /// is an error, with clap's message.
    pub fn new(flags: &[&str], vars: &[(&str, &str)], sdk: SdkConfig) -> Result<Self, String> {
        let argv = ["irsa-doctor", "serve"].iter().chain(flags);
        let args = match Cli::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .command
        {
            Command::Serve(args) => args,
            // Unreachable: `serve` is the subcommand parsed.
            _ => return Err("not serve's flags".to_owned()),
        };
        let vars: std::collections::HashMap<&str, &str> = vars.iter().copied().collect();
        let env = AwsEnv::from_lookup(|name| vars.get(name).map(|v| (*v).to_owned()));
        let cfg = args.verify.check_config(&env, &Host::default());
        Ok(ServeSettings {
            args,
            env,
            cfg,
            aws: AwsSource::Given(Box::new(sdk)),
        })
    }

    fn monitor(&self) -> Settings {
        Settings {
            interval: self.args.interval,
            stale_after: self.args.stale_after(),
            timeout: self.cfg.timeout,
        }
    }
}

/// Serves probes on `listener` until `shutdown` resolves, with checks
/// running on a thread of their own; then lets open requests finish, up to
/// `--shutdown-grace`, and stops the checks. Takes its I/O as parameters,
/// so that tests run it in process on `127.0.0.1:0`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    settings: ServeSettings,
    shutdown: impl std::future::Future<Output = ()>,
) -> Exit {
    let monitor = settings.monitor();
    let ServeSettings {
        args,
        env,
        cfg,
        aws,
    } = settings;
    log_serve_start(&listener, &args, &env, &cfg, monitor);
    let (shared, recorder) = Shared::new(monitor);
    // The loop gets a thread of its own: a check parsing a large answer or
    // stuck in a blocking read cannot delay a probe or the SIGTERM handler.
    // Dropping `_stop` when serving ends stops the loop at its next await;
    // a process that exits does not wait for it.
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let checks = async move {
        tokio::select! {
            () = crate::monitor::run(cfg, env, aws, recorder) => {}
            _ = stopped => {}
        }
    };
    if let Err(e) = on_check_thread(checks) {
        error!(error = %e, "could not start the check's thread");
        return Exit::Internal;
    }
    crate::server::serve(listener, shared, shutdown, args.shutdown_grace).await;
    info!("irsa-doctor serve stopped");
    Exit::Stopped
}

/// `serve`'s start line: the check's configuration, the address and the
/// loop's timing, in one event.
fn log_serve_start(
    listener: &tokio::net::TcpListener,
    args: &ServeArgs,
    env: &AwsEnv,
    cfg: &CheckConfig,
    monitor: Settings,
) {
    let listen = listener
        .local_addr()
        .map_or_else(|_| args.listen.to_string(), |a| a.to_string());
    let serving = Serving {
        listen: &listen,
        monitor: &monitor,
        shutdown_grace: args.shutdown_grace,
    };
    log_start("serve", env, cfg, Some(serving));
    if monitor.stale_after < monitor.interval {
        warn!(
            "--stale-after is shorter than --interval: a single inconclusive check (STS \
             throttled or unreachable) will make /readyz answer 503"
        );
    }
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
/// chose that cannot be written is worth a warning. Only a regular file is
/// written, and it is opened without blocking: a FIFO there once hung the
/// process after its verdict.
pub fn write_termination_log(path: &Path, summary: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    if is_off(path) {
        return;
    }
    let is_default = path == Path::new(DEFAULT_TERMINATION_LOG);
    let summary = crate::redact::redact(summary);
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
    fn the_watchdog_reports_a_check_that_does_not_finish_in_time() {
        let (fired, told) = std::sync::mpsc::channel();
        let watchdog = Watchdog::start(Duration::from_millis(20), move || {
            let _ = fired.send(());
        })
        .unwrap();
        told.recv_timeout(Duration::from_secs(60))
            .expect("the watchdog fired");
        assert!(!watchdog.claim(), "the check lost: it must not report");
    }

    #[test]
    fn a_check_done_in_time_reports_and_the_watchdog_never_fires() {
        let watchdog = Watchdog::start(Duration::from_secs(3600), || {
            panic!("the watchdog fired for a check that finished")
        })
        .unwrap();
        // claim() joins the watchdog's thread: it ended without firing.
        assert!(watchdog.claim());
    }

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

    #[test]
    fn off_disables_the_termination_log() {
        assert!(is_off(Path::new("off")));
        assert!(is_off(Path::new("")));
        assert!(!is_off(Path::new("/dev/termination-log")));
    }
}
