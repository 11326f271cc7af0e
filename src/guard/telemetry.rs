//! Logging setup: `tracing` to stderr, text or JSON, `RUST_LOG` for the level.
//!
//! Invariant: no token and no credential reaches a log line, at any level.
//! Our own code never logs them, but a dependency may: aws-config once
//! logged whole requests, token included, at WARN. So every formatted line
//! goes through `redact.rs` on its way to stderr, whatever crate wrote it.
//! On top of that, the AWS SDK's trace events, which print whole requests,
//! responses and signing inputs through other projects' `Debug` impls, are
//! dropped whatever `RUST_LOG` asks for; their debug events still show.
//!
//! Only irsa-doctor's own lines are rate-limited to changes (`monitor`'s
//! limiter). Dependencies' INFO and WARN events (aws-config's "provider
//! failed", with a `Debug` dump of the error, raw headers and XML body
//! included) would repeat on every check of a persistent failure, and say
//! nothing the report does not. So they count as debug: a bare level in
//! `RUST_LOG` (`info`, the default) applies to irsa-doctor's own events;
//! a dependency's INFO and WARN show only at a bare `debug` or `trace`, or
//! when `RUST_LOG` names the dependency (`aws_config=warn`). Their ERROR
//! events show as before.

use tracing::level_filters::LevelFilter;
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

/// The target prefix of irsa-doctor's own events.
const OURS: &str = "irsa_doctor";

/// True for events that may carry secrets: trace-level events of the AWS
/// SDK's crates.
pub fn is_secret_bearing(meta: &Metadata<'_>) -> bool {
    *meta.level() == Level::TRACE && meta.target().starts_with("aws_")
}

/// What `RUST_LOG` says beyond the levels `EnvFilter` applies: which
/// dependencies it names, and whether its bare level reaches debug.
#[derive(Debug, Clone, Default)]
pub struct Quiet {
    /// The targets `RUST_LOG`'s directives name (`aws_config` in
    /// `aws_config=warn`).
    named: Vec<String>,
    /// A bare `debug` or `trace`: the dependencies' INFO and WARN events,
    /// counted as debug, show.
    verbose: bool,
}

impl Quiet {
    /// Reads `RUST_LOG`'s value (`None` when unset: the default, `info`).
    pub fn from_directives(rust_log: Option<&str>) -> Self {
        let mut quiet = Quiet::default();
        for directive in rust_log.unwrap_or("").split(',').map(str::trim) {
            let target = directive.split(['=', '[', '{']).next().unwrap_or("").trim();
            match target.parse::<LevelFilter>() {
                Ok(level) if !directive.contains('=') => {
                    quiet.verbose = level >= LevelFilter::DEBUG;
                }
                _ if !target.is_empty() => quiet.named.push(target.to_owned()),
                _ => {}
            }
        }
        quiet
    }

    /// Whether an event of `target` at `level` may be written (`EnvFilter`
    /// still decides by level): irsa-doctor's own always; a dependency's
    /// INFO and WARN when `RUST_LOG` names it or asks for debug.
    pub fn allows(&self, target: &str, level: Level) -> bool {
        target.starts_with(OURS)
            || !(level == Level::INFO || level == Level::WARN)
            || self.verbose
            || self.named.iter().any(|t| target.starts_with(t.as_str()))
    }
}

/// The level filter for `RUST_LOG`'s value: `info` when it is unset or
/// invalid, and `info` in front of directives that set no bare level, so
/// that `RUST_LOG=aws_config=warn` adds aws-config's warnings to
/// irsa-doctor's own lines instead of silencing them.
fn env_filter(rust_log: Option<&str>) -> EnvFilter {
    let Some(value) = rust_log.filter(|v| !v.trim().is_empty()) else {
        return EnvFilter::new("info");
    };
    let bare = value.split(',').any(|d| {
        let d = d.trim();
        !d.contains('=') && d.parse::<LevelFilter>().is_ok()
    });
    let directives = if bare {
        value.to_owned()
    } else {
        format!("info,{value}")
    };
    EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Installs the global subscriber. Call once, before anything logs.
pub fn init(format: LogFormat) {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = env_filter(rust_log.as_deref());
    let quiet = Quiet::from_directives(rust_log.as_deref());
    let guard = filter_fn(move |meta| {
        !is_secret_bearing(meta) && (!meta.is_event() || quiet.allows(meta.target(), *meta.level()))
    });
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(crate::guard::redact::MakeRedactingStderr)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_default_level_dependencies_info_and_warn_are_quiet() {
        let quiet = Quiet::from_directives(None);
        assert!(quiet.allows("irsa_doctor::monitor::limiter", Level::INFO));
        assert!(!quiet.allows("aws_config::meta::credentials::chain", Level::WARN));
        assert!(!quiet.allows("aws_runtime::env_config", Level::INFO));
        assert!(quiet.allows("hyper_util::client", Level::ERROR));
        assert!(quiet.allows("aws_smithy_runtime::client", Level::DEBUG));
        let quiet = Quiet::from_directives(Some("info"));
        assert!(!quiet.allows("aws_config::meta::credentials::chain", Level::WARN));
    }

    #[test]
    fn naming_a_dependency_or_asking_for_debug_lets_its_warnings_through() {
        let named = Quiet::from_directives(Some("aws_config=warn"));
        assert!(named.allows("aws_config::meta::credentials::chain", Level::WARN));
        assert!(!named.allows("aws_runtime::env_config", Level::WARN));
        let verbose = Quiet::from_directives(Some("debug,hyper=off"));
        assert!(verbose.allows("aws_runtime::env_config", Level::WARN));
        let ours = Quiet::from_directives(Some("irsa_doctor=debug"));
        assert!(!ours.allows("aws_config::imds", Level::WARN));
    }

    #[test]
    fn directives_without_a_bare_level_keep_our_own_lines_at_info() {
        use tracing_subscriber::filter::LevelFilter as F;
        assert_eq!(env_filter(None).max_level_hint(), Some(F::INFO));
        assert_eq!(
            env_filter(Some("aws_config=warn")).to_string(),
            EnvFilter::new("info,aws_config=warn").to_string()
        );
        assert_eq!(env_filter(Some("warn")).max_level_hint(), Some(F::WARN));
        assert_eq!(env_filter(Some("not a level ===")).to_string(), "info");
    }
}
