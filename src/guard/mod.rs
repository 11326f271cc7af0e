//! The safety code every layer leans on: secrets redacted on their way to
//! every sink, files read within bounds, and logging that keeps SDK secrets
//! out, and
//! peers' error text made one clean line.
//!
//! Invariant: a leaf; imports nothing else from the crate.

pub mod files;
pub mod redact;
pub mod telemetry;
pub mod text;
