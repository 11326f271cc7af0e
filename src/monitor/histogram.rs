//! `Histogram`: check durations counted into Prometheus-style cumulative
//! buckets. The loop's state holds one; `metrics` renders it.
//!
//! A leaf: it imports nothing from the crate, so that `monitor` can hold a
//! histogram without depending on `metrics`, which reads `monitor`.

use std::time::Duration;

/// Check durations, as a Prometheus histogram.
#[derive(Debug, Default, Clone)]
pub struct Histogram {
    /// Cumulative counts per bound in [`Histogram::BOUNDS`].
    pub buckets: [u64; 13],
    pub count: u64,
    pub sum_secs: f64,
}

impl Histogram {
    /// Upper bounds in seconds: a healthy check is one STS round trip
    /// (milliseconds); a check riding out throttling can take `--timeout`
    /// (60 s by default).
    pub const BOUNDS: [f64; 13] = [
        0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
    ];

    pub(crate) fn observe(&mut self, d: Duration) {
        let secs = d.as_secs_f64();
        for (bucket, bound) in self.buckets.iter_mut().zip(Self::BOUNDS) {
            if secs <= bound {
                *bucket += 1;
            }
        }
        self.count += 1;
        self.sum_secs += secs;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut h = Histogram::default();
        h.observe(Duration::from_millis(20));
        h.observe(Duration::from_secs(40));
        assert_eq!(h.buckets[0], 0);
        assert_eq!(h.buckets[1], 1);
        assert_eq!(h.buckets[10], 1);
        assert_eq!(h.count, 2);
    }
}
