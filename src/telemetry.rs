//! Logging setup: `tracing` to stderr, text or JSON, `RUST_LOG` for the level.
//!
//! Invariant: no token and no credential reaches a log line, even at
//! `RUST_LOG=trace`. Our own code never logs them. The AWS SDK's trace events
//! print whole requests, responses and signing inputs through their `Debug`
//! impls; in the SDK versions we build with, bodies are opaque and sensitive
//! fields redacted, so nothing secret shows (tests/secrets.rs checks), but
//! that rests on another project's `Debug` impls. So trace events from the
//! SDK's crates are dropped here whatever `RUST_LOG` asks for; their debug
//! events, which carry no request contents, still show.

use tracing::{Level, Metadata};
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::config::LogFormat;

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
        .with_writer(std::io::stderr)
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
