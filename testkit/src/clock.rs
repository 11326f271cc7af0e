//! The kit's clock: the wall-clock time the stand-ins stamp their answers
//! and tokens with, and the RFC 3339 form AWS writes an expiration in.
//! One module, so that the stand-ins share a clock without importing each
//! other (the token builders used to own it).
//!
//! Invariant: this module imports nothing from the kit.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs() as i64
}

/// `epoch_secs` as RFC 3339 (`2026-11-29T17:00:00Z`), as AWS writes an
/// expiration.
pub fn rfc3339(epoch_secs: i64) -> String {
    aws_smithy_types::DateTime::from_secs(epoch_secs)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .expect("a time in range")
}
