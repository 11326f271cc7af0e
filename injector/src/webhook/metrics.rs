//! The webhook's counters and its latency histogram, written in the
//! Prometheus text format by hand: a dozen series with fixed label values
//! do not justify a metrics crate. Every label combination is there from
//! the start (at 0), so that an alert on a rate sees the series before the
//! first event and `absent()` means a dead injector, not a quiet one.
//!
//! The names and label values are fixed: the alert rules and the dashboard
//! (examples/monitoring) are written against them.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::lookup::{LookupKind, LookupOutcome, LookupRecord};

/// `outcome` of `irsa_doctor_injector_admissions_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdmissionOutcome {
    Injected,
    Completed,
    AlreadyPresent,
    NoIdentity,
    OptedOut,
    Skipped,
    Error,
}

impl AdmissionOutcome {
    pub const ALL: [AdmissionOutcome; 7] = [
        AdmissionOutcome::Injected,
        AdmissionOutcome::Completed,
        AdmissionOutcome::AlreadyPresent,
        AdmissionOutcome::NoIdentity,
        AdmissionOutcome::OptedOut,
        AdmissionOutcome::Skipped,
        AdmissionOutcome::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AdmissionOutcome::Injected => "injected",
            AdmissionOutcome::Completed => "completed",
            AdmissionOutcome::AlreadyPresent => "already_present",
            AdmissionOutcome::NoIdentity => "no_identity",
            AdmissionOutcome::OptedOut => "opted_out",
            AdmissionOutcome::Skipped => "skipped",
            AdmissionOutcome::Error => "error",
        }
    }
}

/// `mechanism` of `irsa_doctor_injector_admissions_total`: what the pod is
/// known to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Irsa,
    PodIdentity,
    None,
}

impl Mechanism {
    pub const ALL: [Mechanism; 3] = [Mechanism::Irsa, Mechanism::PodIdentity, Mechanism::None];

    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::Irsa => "irsa",
            Mechanism::PodIdentity => "pod_identity",
            Mechanism::None => "none",
        }
    }
}

/// `reason` of `irsa_doctor_injector_requests_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// 400: not JSON, or a review without a request.
    Malformed,
    /// 413: a body over the bound.
    TooLarge,
    /// 405.
    Method,
    /// 404.
    NotFound,
    /// 503: the bodies in flight stayed at their bound past the wait.
    Busy,
    /// 408: the body took longer than its bound to arrive.
    Timeout,
}

impl Rejection {
    const ALL: [Rejection; 6] = [
        Rejection::Malformed,
        Rejection::TooLarge,
        Rejection::Method,
        Rejection::NotFound,
        Rejection::Busy,
        Rejection::Timeout,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::TooLarge => "too_large",
            Rejection::Method => "method",
            Rejection::NotFound => "not_found",
            Rejection::Busy => "busy",
            Rejection::Timeout => "timeout",
        }
    }
}

const LOOKUP_KINDS: [LookupKind; 2] = [LookupKind::ServiceAccount, LookupKind::Association];
const LOOKUP_OUTCOMES: [LookupOutcome; 6] = [
    LookupOutcome::Found,
    LookupOutcome::NotFound,
    LookupOutcome::Timeout,
    LookupOutcome::Denied,
    LookupOutcome::Throttled,
    LookupOutcome::Error,
];

/// The latency buckets, in seconds (fixed with the alert rules).
pub const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5,
];

/// The counters, lock-free: one admission touches a handful of atomics.
#[derive(Debug, Default)]
pub struct Metrics {
    admissions: [[AtomicU64; 3]; 7],
    lookups: [[AtomicU64; 6]; 2],
    cache_hits: [AtomicU64; 2],
    rejected: [AtomicU64; 6],
    tls_reloads_ok: AtomicU64,
    tls_reloads_error: AtomicU64,
    buckets: [AtomicU64; 12],
    count: AtomicU64,
    /// The sum of the durations, in nanoseconds.
    sum_nanos: AtomicU64,
}

fn index<T: PartialEq>(all: &[T], item: &T) -> usize {
    all.iter().position(|x| x == item).unwrap_or(0)
}

impl Metrics {
    pub fn admission(&self, outcome: AdmissionOutcome, mechanism: Mechanism) {
        let o = index(&AdmissionOutcome::ALL, &outcome);
        let m = index(&Mechanism::ALL, &mechanism);
        self.admissions[o][m].fetch_add(1, Ordering::Relaxed);
    }

    /// A record answered from the cache is a cache hit, not a lookup: the
    /// lookups counter is about requests that went to an API.
    pub fn lookup(&self, record: &LookupRecord) {
        let k = index(&LOOKUP_KINDS, &record.kind);
        if record.cached {
            self.cache_hits[k].fetch_add(1, Ordering::Relaxed);
        } else {
            let o = index(&LOOKUP_OUTCOMES, &record.outcome);
            self.lookups[k][o].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn rejected(&self, reason: Rejection) {
        self.rejected[index(&Rejection::ALL, &reason)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn tls_reload(&self, ok: bool) {
        let counter = if ok {
            &self.tls_reloads_ok
        } else {
            &self.tls_reloads_error
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn duration(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The exposition text (`text/plain; version=0.0.4`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        header(
            &mut out,
            "admissions_total",
            "counter",
            "AdmissionReviews for pods, by what was done and the identity mechanism the pod is known to use.",
        );
        for (o, outcome) in AdmissionOutcome::ALL.iter().enumerate() {
            for (m, mechanism) in Mechanism::ALL.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "irsa_doctor_injector_admissions_total{{outcome=\"{}\",mechanism=\"{}\"}} {}",
                    outcome.as_str(),
                    mechanism.as_str(),
                    get(&self.admissions[o][m])
                );
            }
        }
        self.render_lookups(&mut out);
        self.render_histogram(&mut out);
        self.render_rest(&mut out);
        out
    }

    fn render_lookups(&self, out: &mut String) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        header(
            out,
            "lookups_total",
            "counter",
            "Lookups that went to the Kubernetes or EKS API, by how they ended.",
        );
        for (k, kind) in LOOKUP_KINDS.iter().enumerate() {
            for (o, outcome) in LOOKUP_OUTCOMES.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "irsa_doctor_injector_lookups_total{{lookup=\"{}\",outcome=\"{}\"}} {}",
                    kind.as_str(),
                    outcome.as_str(),
                    get(&self.lookups[k][o])
                );
            }
        }
        header(
            out,
            "lookup_cache_hits_total",
            "counter",
            "Lookups answered from the cache.",
        );
        for (k, kind) in LOOKUP_KINDS.iter().enumerate() {
            let _ = writeln!(
                out,
                "irsa_doctor_injector_lookup_cache_hits_total{{lookup=\"{}\"}} {}",
                kind.as_str(),
                get(&self.cache_hits[k])
            );
        }
    }

    fn render_rest(&self, out: &mut String) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        header(
            out,
            "requests_rejected_total",
            "counter",
            "Requests refused before any review: bad body, too large, wrong method or path.",
        );
        for (r, reason) in Rejection::ALL.iter().enumerate() {
            let _ = writeln!(
                out,
                "irsa_doctor_injector_requests_rejected_total{{reason=\"{}\"}} {}",
                reason.as_str(),
                get(&self.rejected[r])
            );
        }
        header(
            out,
            "tls_reloads_total",
            "counter",
            "Reloads of the serving certificate after its files changed.",
        );
        let _ = writeln!(
            out,
            "irsa_doctor_injector_tls_reloads_total{{outcome=\"ok\"}} {}",
            get(&self.tls_reloads_ok)
        );
        let _ = writeln!(
            out,
            "irsa_doctor_injector_tls_reloads_total{{outcome=\"error\"}} {}",
            get(&self.tls_reloads_error)
        );
        header(
            out,
            "build_info",
            "gauge",
            "Always 1; the version of the injector.",
        );
        let _ = writeln!(
            out,
            "irsa_doctor_injector_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
    }

    fn render_histogram(&self, out: &mut String) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let name = "irsa_doctor_injector_admission_duration_seconds";
        header(
            out,
            "admission_duration_seconds",
            "histogram",
            "Time from the body read to the answer written, per AdmissionReview.",
        );
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", get(bucket));
        }
        let count = get(&self.count);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = get(&self.sum_nanos) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {count}");
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP irsa_doctor_injector_{name} {help}");
    let _ = writeln!(out, "# TYPE irsa_doctor_injector_{name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_lands_in_its_bucket_and_every_larger_one() {
        let m = Metrics::default();
        m.duration(Duration::from_millis(3));
        let text = m.render();
        assert!(text.contains("_bucket{le=\"0.0025\"} 0\n"), "{text}");
        assert!(text.contains("_bucket{le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("_bucket{le=\"+Inf\"} 1\n"), "{text}");
        assert!(text.contains("_count 1\n"), "{text}");
    }

    #[test]
    fn cached_records_count_as_hits_not_lookups() {
        let m = Metrics::default();
        m.lookup(&LookupRecord {
            kind: LookupKind::Association,
            outcome: LookupOutcome::Found,
            cached: true,
        });
        let text = m.render();
        assert!(text.contains("lookup_cache_hits_total{lookup=\"association\"} 1\n"));
        assert!(text.contains("lookups_total{lookup=\"association\",outcome=\"found\"} 0\n"));
    }
}
