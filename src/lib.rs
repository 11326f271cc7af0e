//! irsa-doctor proves, from inside a pod and with the pod's own token, that
//! IAM Roles for Service Accounts works, or says exactly why not.
//!
//! Layout:
//! - `config`: the clap flags (every one also an `IRSA_DOCTOR_*` env var).
//! - `env`: the AWS variables that decide the pod's identity.
//! - `endpoint`: endpoint and region settings, judged before sending.
//! - `files`: bounded, non-blocking reads of files settings name.
//! - `profile`: the shared config files, read within bounds for the SDK.
//! - `proxy`: whether SDKs agree on reaching STS through the proxy.
//! - `arn`: role and assumed-role ARNs, and how they compare.
//! - `token`: reading the projected token safely, decoding its claims.
//! - `sts`: the only module that talks to AWS.
//! - `traffic`: counts the STS requests leaving the process, for metrics.
//! - `check`: one verification, step by step, into a `Report`.
//! - `report`: finding codes, the verdict, exit codes, text rendering.
//! - `monitor`: `serve`'s loop of checks, and the state probes read.
//! - `server`: `serve`'s HTTP endpoints, answered from that state.
//! - `metrics`: that state in Prometheus' text format.
//! - `histogram`: check durations in cumulative buckets, for `metrics`.
//! - `app`: each command end to end (flags in, exit code out).
//! - `telemetry`: logging, with the guard that keeps SDK secrets out.
//! - `redact`: removes secrets from the text on its way to every sink.
//! - `time`: Unix seconds and RFC 3339 text.

#![forbid(unsafe_code)]

mod app;
mod arn;
mod check;
mod config;
mod endpoint;
mod env;
mod files;
mod findings;
mod histogram;
mod metrics;
mod monitor;
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

// The public surface: what the binary, the demo and the black-box tests
// use. Everything else is private, so the dead-code lint sees dead code.
pub use app::{main, serve, Exit, ServeSettings};
pub use arn::RoleArn;
pub use config::DEFAULT_LISTEN;
pub use report::{exit, Code, Kind, Step, Verdict};
pub use server::{HEADER_READ_TIMEOUT, MAX_CONNECTIONS, PATHS};
