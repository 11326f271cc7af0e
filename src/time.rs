//! Time helpers, in one place: Unix seconds from a `SystemTime` (whole,
//! rounded or fractional) and RFC 3339 text for people.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Whole seconds since the epoch, truncated; 0 before it.
pub fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Whole seconds since the epoch, rounded to the nearest.
pub fn unix_secs_rounded(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| {
        i64::try_from(d.as_millis().saturating_add(500) / 1000).unwrap_or(i64::MAX)
    })
}

/// Seconds since the epoch with their fraction, for /status and /metrics.
pub fn unix_secs_f64(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A Unix time as RFC 3339, for people; values before the epoch or
/// unrepresentably far ahead print raw.
pub fn format_unix(secs: i64) -> String {
    u64::try_from(secs)
        .ok()
        .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)))
        .filter(|t| unix_secs(*t) < 253_402_300_800) // year 10000
        .map_or_else(
            || secs.to_string(),
            |t| humantime::format_rfc3339_seconds(t).to_string(),
        )
}

/// A `SystemTime` as RFC 3339, to the second.
pub fn rfc3339(t: SystemTime) -> String {
    format_unix(unix_secs(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_times_format_as_rfc3339() {
        assert_eq!(format_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_unix(1795910400), "2026-11-29T00:00:00Z");
        assert_eq!(format_unix(-5), "-5");
        assert_eq!(format_unix(i64::MAX), i64::MAX.to_string());
    }

    #[test]
    fn rounding_goes_to_the_nearest_second() {
        let t = UNIX_EPOCH + Duration::from_millis(1_600);
        assert_eq!(unix_secs(t), 1);
        assert_eq!(unix_secs_rounded(t), 2);
        assert!((unix_secs_f64(t) - 1.6).abs() < 1e-9);
    }
}
