//! irsa-doctor proves, from inside a pod and with the pod's own token, that
//! IAM Roles for Service Accounts works, or says exactly why not.
//!
//! Layout, top down (ARCHITECTURE.md has each module's invariant):
//! - `app`: each command end to end (flags in, [`Exit`] out); `serve` takes
//!   its listener and shutdown future.
//! - `launch`: `install`'s copy of the binary and `exec`'s `execve` into
//!   the app.
//! - `config`: the clap flags (every one also an `IRSA_DOCTOR_*` env var),
//!   and the check's configuration from flags, AWS variables and `Host`.
//! - `server`, `metrics`: `serve`'s HTTP endpoints and Prometheus text,
//!   answered from a copy of the loop's state.
//! - `monitor`: `serve`'s loop of checks, its state (one writer), the
//!   token-rotation watch and the log limiter.
//! - `check`: one verification as named steps into a `Report`: the
//!   settings, the mechanism (IRSA or EKS Pod Identity), its steps, the
//!   expected role, the app's view and `--require`'s permissions; the retry
//!   policy.
//! - `explain`: `explain`'s inputs read within bounds, and its rendering.
//! - `findings`: what each finding says, as pure functions per step.
//! - `sts`: the only module that talks to AWS STS.
//! - `iam`: the only module that talks to IAM (`--require`'s simulation).
//! - `issuer`: the only module that talks to the token's OIDC issuer
//!   (`--verify-issuer`): discovery and key set, bounded and cached.
//! - `jwks`: discovery documents and key sets parsed, RS256 and ES256
//!   signatures checked; pure.
//! - `endpoint`, `profile`, `proxy`: settings judged before sending.
//! - `ca_bundle`: `AWS_CA_BUNDLE`, read within bounds and proven loadable,
//!   added to the system's roots.
//! - `env`: the AWS variables that decide the pod's identity.
//! - `token`: reading the projected token safely, decoding its claims.
//! - `trust`: trust-policy evaluation, offline and pure (`explain`).
//! - `arn`: role and assumed-role ARNs, how they compare, session names,
//!   `--require`'s entries.
//! - `report`: finding codes (one table), the verdict, exit codes, the text
//!   rendering and the log lines of a report.
//! - `traffic`: the bounded HTTPS client that counts STS requests.
//! - `histogram`: check durations in cumulative buckets.
//! - `process`: the `process_*` figures (CPU, memory, descriptors) from
//!   `/proc`, for /metrics.
//! - `files`: bounded, non-blocking reads of files settings name.
//! - `telemetry`: logging, with the guard that keeps SDK secrets out.
//! - `redact`: removes secrets from the text on its way to every sink.
//! - `time`: Unix seconds and RFC 3339 text.
//! - `fuzzing` (feature `fuzzing` only): entry points for the fuzz targets
//!   in `fuzz/`.

// `deny`, not `forbid`: one function, `launch::restore`, needs `unsafe`
// (ARCHITECTURE.md says why) and allows it for itself alone.
#![deny(unsafe_code)]

mod agent;
mod app;
mod arn;
mod ca_bundle;
mod check;
mod config;
mod endpoint;
mod env;
mod explain;
mod files;
mod findings;
mod histogram;
mod iam;
mod issuer;
mod jwks;
mod launch;
mod metrics;
mod monitor;
mod process;
mod profile;
mod proxy;
mod redact;
mod report;
mod server;
mod sts;
mod telemetry;
mod time;
mod token;
mod traffic;
mod trust;

// The fuzz targets' entry points (fuzz/), only with the `fuzzing` feature.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

// The public surface: what the binary, the demo and the black-box tests
// use. Everything else is private, so the dead-code lint sees dead code.
pub use app::{main, main_inheriting, serve, Exit, ServeSettings};
pub use arn::{Requirement, RoleArn};
pub use config::DEFAULT_LISTEN;
pub use launch::Inherited;
pub use report::{exit, Code, Kind, Step, Verdict};
pub use server::{HEADER_READ_TIMEOUT, MAX_CONNECTIONS, PATHS};
