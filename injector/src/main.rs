//! `irsa-doctor-injector`: parses the flags, reads the input, and turns the
//! outcome into an exit code. Two subcommands: `inject`, the offline form,
//! and `serve`, the admission webhook.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use irsa_doctor_injector::lookup;
use irsa_doctor_injector::webhook::server::Limits;
use irsa_doctor_injector::webhook::{serve, ServeConfig};
use irsa_doctor_injector::{error_chain, inject_stream, Mode, Options, Template, MAX_INPUT_BYTES};

/// Exit codes, documented in docs/injector.md because pipelines read them.
/// 2 is clap's own for a usage error, kept so that every wrong flag exits
/// the same way.
const EXIT_OK: u8 = 0;
const EXIT_FAILED: u8 = 1;

/// Puts irsa-doctor beside every pod with an AWS identity.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Add irsa-doctor to the pod templates of a manifest stream and print it
    ///
    /// The stream is YAML documents or JSON values; every document that is
    /// not a workload passes through. A ServiceAccount in the stream with
    /// eks.amazonaws.com/role-arn gives the expected role of the workloads
    /// that run as it. One line per workload on stderr says what was done.
    /// Exit codes: 0 done, 1 nothing printed (the input could not be read
    /// or parsed), 2 a usage error.
    Inject {
        /// The manifests, or - for standard input
        #[arg(
            short = 'f',
            long = "filename",
            default_value = "-",
            env = "IRSA_DOCTOR_INJECTOR_FILENAME"
        )]
        file: String,
        /// The irsa-doctor image, as your registry serves it (required: the
        /// template's own name is served by no registry)
        #[arg(long, env = "IRSA_DOCTOR_INJECTOR_IMAGE", required = true)]
        image: String,
        /// The mode of pods without the irsa-doctor.io/mode annotation
        #[arg(long, value_enum, default_value_t = Mode::Sidecar, env = "IRSA_DOCTOR_INJECTOR_MODE")]
        mode: Mode,
    },
    Serve(ServeArgs),
}

/// Serve the mutating admission webhook over HTTPS
///
/// POST /mutate takes an admission.k8s.io/v1 AdmissionReview for a pod and
/// answers allowed: true, with a JSON patch that adds irsa-doctor when the
/// pod has an AWS identity. GET /healthz, /readyz and /metrics are served
/// on the same port, and on --metrics-listen without TLS. The certificate
/// and key are re-read when their files change. SIGTERM or SIGINT: /readyz
/// answers 503 and reviews are still answered for --shutdown-delay, then
/// stop accepting, finish the reviews in flight (10 s at most), exit 0. Exit
/// codes: 0 stopped by a signal, 1 could not start (a certificate that
/// cannot be read, a port that cannot be bound), 2 a usage error.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// The HTTPS address (the Service maps port 443 to it)
    #[arg(
        long,
        default_value = "0.0.0.0:8443",
        env = "IRSA_DOCTOR_INJECTOR_LISTEN"
    )]
    listen: String,
    /// The serving certificate, PEM (cert-manager's tls.crt)
    #[arg(long, env = "IRSA_DOCTOR_INJECTOR_TLS_CERT", required = true)]
    tls_cert: PathBuf,
    /// The serving key, PEM (cert-manager's tls.key)
    #[arg(long, env = "IRSA_DOCTOR_INJECTOR_TLS_KEY", required = true)]
    tls_key: PathBuf,
    /// The irsa-doctor image, as your registry serves it
    #[arg(long, env = "IRSA_DOCTOR_INJECTOR_IMAGE", required = true)]
    image: String,
    /// The mode of pods without the irsa-doctor.io/mode annotation
    #[arg(long, value_enum, default_value_t = Mode::Sidecar, env = "IRSA_DOCTOR_INJECTOR_MODE")]
    mode: Mode,
    /// The EKS cluster's name; without it, no Pod Identity association is
    /// looked up
    #[arg(long, env = "IRSA_DOCTOR_INJECTOR_CLUSTER_NAME")]
    cluster_name: Option<String>,
    /// A plain-HTTP address for /metrics, /healthz and /readyz
    #[arg(long, env = "IRSA_DOCTOR_INJECTOR_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// The injector's own namespace, never injected (the Deployment sets it
    /// from the Downward API)
    #[arg(long, env = "IRSA_DOCTOR_INJECTOR_NAMESPACE")]
    namespace: Option<String>,
    /// After SIGTERM, how long to keep answering reviews while /readyz
    /// answers 503: the API server sends reviews to a terminating endpoint
    /// for a few seconds, and each one refused admits a pod without the
    /// doctor. The pod's terminationGracePeriodSeconds must exceed it by
    /// the 10 s drain
    #[arg(long, default_value = "5s", value_parser = parse_duration, env = "IRSA_DOCTOR_INJECTOR_SHUTDOWN_DELAY")]
    shutdown_delay: Duration,
    /// The log format. RUST_LOG sets the level (default info); the
    /// dependencies (kube, hyper, rustls, the AWS SDK) stay at info at
    /// most whatever it says, since at debug they print headers and tokens
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "IRSA_DOCTOR_INJECTOR_LOG_FORMAT")]
    log_format: LogFormat,
}

/// "500ms", "5s", "1m": humantime's form, as the root crate's flags.
fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("{e} (examples: 0s, 500ms, 5s)"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(message) => {
            eprintln!("irsa-doctor-injector: {message}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    match args.command {
        Command::Inject { file, image, mode } => run_inject(&file, image, mode),
        Command::Serve(args) => run_serve(args),
    }
}

fn run_inject(file: &str, image: String, mode: Mode) -> Result<(), String> {
    let template = Template::embedded().map_err(|e| error_chain(&e))?;
    let options = Options {
        template,
        image: Some(image),
        mode,
    };
    let input = read_bounded(file)?;
    let (output, report) = inject_stream(&input, &options).map_err(|e| error_chain(&e))?;
    for entry in &report.entries {
        eprintln!("{}: {}", entry.workload, entry.result);
    }
    std::io::stdout()
        .lock()
        .write_all(output.as_bytes())
        .map_err(|e| format!("cannot write the output: {e}"))
}

fn run_serve(args: ServeArgs) -> Result<(), String> {
    init_logging(args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    // The error, if any, is printed by main, once.
    runtime.block_on(serve_until_signal(args))
}

async fn serve_until_signal(args: ServeArgs) -> Result<(), String> {
    let template = Template::embedded().map_err(|e| error_chain(&e))?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        listen = %args.listen,
        metrics_listen = args.metrics_listen.as_deref().unwrap_or("-"),
        image = %args.image,
        mode = args.mode.as_str(),
        cluster_name = args.cluster_name.as_deref().unwrap_or("-"),
        namespace = args.namespace.as_deref().unwrap_or("-"),
        tls_cert = %args.tls_cert.display(),
        "irsa-doctor-injector serve starting"
    );
    let listener = bind(&args.listen).await?;
    let metrics_listener = match &args.metrics_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let resolver = lookup::connect(args.cluster_name.clone()).await?;
    let config = ServeConfig {
        options: Options {
            template,
            image: Some(args.image),
            mode: args.mode,
        },
        own_namespace: args.namespace,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        limits: Limits {
            shutdown_delay: args.shutdown_delay,
            ..Limits::default()
        },
    };
    serve(listener, metrics_listener, config, resolver, shutdown())
        .await
        .map_err(|e| error_chain(&e))?;
    tracing::info!("stopped");
    Ok(())
}

async fn bind(addr: &str) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}

/// Completes on SIGTERM (the kubelet stopping the pod: finish the reviews
/// in flight, the API server has stopped sending new ones to this
/// endpoint) or SIGINT (a terminal). If the handlers cannot be installed,
/// never completes: the pod is then killed after its grace period, as any
/// process that ignores SIGTERM.
async fn shutdown() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot install the signal handlers; SIGTERM will not drain");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = int.recv() => tracing::info!("SIGINT"),
    }
}

/// Logs to stderr, text or JSON. RUST_LOG chooses the level (info when
/// unset or unreadable), but only this crate may go below info: kube,
/// hyper, rustls and the AWS SDK print request headers, and with them
/// bearer tokens and signatures, at debug and trace.
fn init_logging(format: LogFormat) {
    use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let level = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let cap = Targets::new()
        .with_default(LevelFilter::INFO)
        .with_target("irsa_doctor_injector", LevelFilter::TRACE);
    let registry = tracing_subscriber::registry().with(level).with(cap);
    let writer = std::io::stderr;
    // Colours only for a person at a terminal, not in the pod's log.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(writer)
                    .with_ansi(ansi),
            )
            .init(),
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json().with_writer(writer))
            .init(),
    }
}

/// Reads at most one byte past the bound, so an oversized input is refused
/// without being held in memory.
fn read_bounded(file: &str) -> Result<Vec<u8>, String> {
    let limit = MAX_INPUT_BYTES as u64 + 1;
    let mut buf = Vec::new();
    let result = if file == "-" {
        std::io::stdin().lock().take(limit).read_to_end(&mut buf)
    } else {
        std::fs::File::open(file)
            .map_err(|e| format!("cannot open {file}: {e}"))?
            .take(limit)
            .read_to_end(&mut buf)
    };
    result.map_err(|e| format!("cannot read {file}: {e}"))?;
    if buf.len() > MAX_INPUT_BYTES {
        return Err(format!(
            "{file} is larger than {MAX_INPUT_BYTES} bytes; split it"
        ));
    }
    Ok(buf)
}
