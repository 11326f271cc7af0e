//! irsa-doctor proves, from inside a pod and with the pod's own token, that
//! IAM Roles for Service Accounts and EKS Pod Identity work, or says exactly
//! why not.
//!
//! The crate is a stack of folders, each with one job; every import points
//! down (`tests/layout.rs` checks it; ARCHITECTURE.md has each folder's
//! invariants). Top down:
//! - `cli/`: the commands, flags in and an `Exit` out, one file each, with
//!   the watchdog, the signals and the termination log.
//! - `http/`: what `serve` answers, from a copy of the loop's state.
//! - `monitor/`: `serve`'s loop of checks and its state.
//! - `check/`: one verification as named steps into a report.
//! - `findings/`: what each finding says; pure.
//! - `trust/`: the trust-policy evaluator; pure.
//! - `peers/`: STS, IAM, the Pod Identity Agent, the OIDC issuer, and the
//!   bounded HTTPS client; each file the only one that talks to its peer.
//! - `settings/`: what the SDK would read, judged before sending, and the
//!   AWS configuration loaded from it.
//! - `report/`: the verdict as a value, the finding codes, the text and the
//!   log lines.
//! - `identity/`: ARNs, the projected token, key sets and signatures.
//! - `guard/`: redaction, bounded files, logging, text cleaning.
//! - `time.rs`: Unix seconds and RFC 3339 text.
//! - `fuzzing.rs` (feature `fuzzing` only): the fuzz targets' entry points.

// `deny`, not `forbid`: one function, `launch::restore`, needs `unsafe`
// (ARCHITECTURE.md says why) and allows it for itself alone.
#![deny(unsafe_code)]

mod check;
mod cli;
mod findings;
mod guard;
mod http;
mod identity;
mod monitor;
mod peers;
mod report;
mod settings;
mod time;
mod trust;

// The fuzz targets' entry points (fuzz/), only with the `fuzzing` feature.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

// The public surface: what the binary, the demo and the black-box tests
// use. Everything else is private, so the dead-code lint sees dead code.
pub use cli::config::DEFAULT_LISTEN;
pub use cli::launch::Inherited;
pub use cli::{main, main_inheriting, serve, Exit, ServeSettings};
pub use http::server::{HEADER_READ_TIMEOUT, MAX_CONNECTIONS, PATHS};
pub use identity::arn::{Requirement, RoleArn};
pub use report::{exit, Code, Kind, Step, Verdict};
