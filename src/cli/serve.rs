//! `serve`: probes answered on a listener until SIGTERM or SIGINT, with
//! the check's loop on a thread of its own.

use aws_config::SdkConfig;
use clap::Parser;
use tracing::{error, info, warn};

use super::check::{log_start, Serving};
use super::signals::shutdown_signal;
use super::{runtime, Exit, RUNTIME_SHUTDOWN};
use crate::check::CheckConfig;
use crate::cli::config::{Cli, Command, Host, ServeArgs};
use crate::monitor::{Settings, Shared};
use crate::peers::sts::AwsSource;
use crate::settings::env::AwsEnv;

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
    let listener = match crate::http::server::listen(args.listen) {
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
    crate::http::server::serve(listener, shared, shutdown, args.shutdown_grace).await;
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
