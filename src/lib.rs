//! irsa-doctor proves, from inside a pod and with the pod's own token, that
//! IAM Roles for Service Accounts works, or says exactly why not.
//!
//! Layout:
//! - `config`: the clap flags (every one also an `IRSA_DOCTOR_*` env var).
//! - `env`: the AWS variables that decide the pod's identity.
//! - `arn`: role and assumed-role ARNs, and how they compare.
//! - `token`: reading the projected token safely, decoding its claims.
//! - `sts`: the only module that talks to AWS.
//! - `check`: one verification, step by step, into a `Report`.
//! - `report`: finding codes, the verdict, exit codes, text rendering.
//! - `app`: the `check` command end to end (flags in, exit code out).
//! - `telemetry`: logging, with the guard that keeps SDK secrets out.

#![forbid(unsafe_code)]

pub mod app;
pub mod arn;
pub mod check;
pub mod config;
pub mod env;
pub mod report;
pub mod sts;
pub mod telemetry;
pub mod token;
