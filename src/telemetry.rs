//! Logging setup: `tracing` to stderr, text or JSON, `RUST_LOG` for the level.
//!
//! Invariant: no token and no credential reaches a log line, at any level.
//! Our own code never logs them, but a dependency may: aws-config once
//! logged whole requests, token included, at WARN. So every formatted line
//! goes through `redact.rs` on its way to stderr, whatever crate wrote it.
//! On top of that, the AWS SDK's trace events, which print whole requests,
//! responses and signing inputs through other projects' `Debug` impls, are
//! dropped whatever `RUST_LOG` asks for; their debug events still show.

use tracing::{Level, Metadata};
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Log format on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// True for events that may carry secrets: trace-level events of the AWS
/// SDK's crates.
pub fn is_secret_bearing(meta: &Metadata<'_>) -> bool {
    *meta.level() == Level::TRACE && meta.target().starts_with("aws_")
}

/// Installs the global subscriber. Call once, before anything logs.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let guard = filter_fn(|meta| !is_secret_bearing(meta));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(crate::redact::MakeRedactingStderr)
        .with_target(true);
    let layer = match format {
        LogFormat::Text => fmt.with_ansi(false).boxed(),
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
    };
    // try_init: a second call (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(guard).with_filter(filter))
        .try_init();
}
