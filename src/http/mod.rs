//! What `serve` answers: the HTTP endpoints, the Prometheus text and the
//! process figures beside it.
//!
//! Invariant: answered from a copy of the loop's state; nothing here runs a
//! check, reaches AWS or decides a verdict.

pub mod metrics;
pub mod process;
pub mod server;
