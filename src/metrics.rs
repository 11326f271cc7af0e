//! /metrics: the loop's state in the Prometheus text exposition format
//! (version 0.0.4), every name under `irsa_doctor_`.
//!
//! Written by hand rather than with a metrics crate: a dozen series, all
//! read from a copy of [`State`] at scrape time, with label values drawn
//! from our own fixed sets (verdicts, finding codes, STS actions) plus the
//! version.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::{Instant, SystemTime};

use crate::histogram::Histogram;
use crate::monitor::state::{Checked, State};
use crate::report::Verdict;
use crate::time::unix_secs_f64;
use crate::traffic::{Action, Outcome, StsCounters};

/// The Content-Type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders every series: the loop's `state`, and the server's count of
/// connections closed at its cap. `now` and `wall` are the scrape's clocks.
pub fn render(state: &State, connections_evicted: u64, now: Instant, wall: SystemTime) -> String {
    let mut out = String::with_capacity(4096);
    let m = &mut out;
    build_info(m);
    mechanism(m, state);
    verdicts(m, state, now);
    check_times(m, state);
    histogram(
        m,
        "check_duration_seconds",
        "How long each check took, retries included.",
        state.durations(),
    );
    traffic(m, state.sts_counters(), connections_evicted);
    token_expiry(m, state.latest(), wall);
    findings(m, state.latest());
    out
}

fn build_info(m: &mut String) {
    header(
        m,
        "build_info",
        "gauge",
        "irsa-doctor's version, as a label.",
    );
    let _ = writeln!(
        m,
        "irsa_doctor_build_info{{version=\"{}\"}} 1",
        escape(env!("CARGO_PKG_VERSION"))
    );
}

/// How the pod gets credentials, by the latest check: `irsa`,
/// `pod_identity`, or `none`; absent before the first check.
fn mechanism(m: &mut String, state: &State) {
    let Some(latest) = state.latest() else {
        return;
    };
    header(
        m,
        "mechanism_info",
        "gauge",
        "How the pod gets credentials by the latest check (irsa, pod_identity or none), as a label.",
    );
    let name = latest.report.mechanism.map_or("none", |n| n.as_str());
    let _ = writeln!(m, "irsa_doctor_mechanism_info{{mechanism=\"{name}\"}} 1");
}

/// Readiness, the latest verdict and the checks run by verdict.
fn verdicts(m: &mut String, state: &State, now: Instant) {
    let ready = state.readiness(now).verdict == Verdict::Pass;
    header(m, "ready", "gauge", "1 while /readyz answers 200, else 0.");
    let _ = writeln!(m, "irsa_doctor_ready {}", u8::from(ready));

    header(
        m,
        "verdict",
        "gauge",
        "The latest check's verdict: 1 on the verdict that holds, 0 on the others (all 0 before \
         the first check).",
    );
    for v in [Verdict::Pass, Verdict::Fail, Verdict::Inconclusive] {
        let on = state.latest().is_some_and(|l| l.report.verdict == v);
        let _ = writeln!(
            m,
            "irsa_doctor_verdict{{verdict=\"{}\"}} {}",
            v.as_str(),
            u8::from(on)
        );
    }

    header(
        m,
        "checks_total",
        "counter",
        "Checks run since start, by verdict.",
    );
    for v in [Verdict::Pass, Verdict::Fail, Verdict::Inconclusive] {
        let _ = writeln!(
            m,
            "irsa_doctor_checks_total{{verdict=\"{}\"}} {}",
            v.as_str(),
            state.checks(v)
        );
    }

    header(
        m,
        "consecutive_inconclusive_checks",
        "gauge",
        "Inconclusive checks since the last conclusive one.",
    );
    let _ = writeln!(
        m,
        "irsa_doctor_consecutive_inconclusive_checks {}",
        state.consecutive_inconclusive()
    );
}

fn check_times(m: &mut String, state: &State) {
    if let Some(latest) = state.latest() {
        header(
            m,
            "last_check_timestamp_seconds",
            "gauge",
            "When the latest check started, in Unix seconds.",
        );
        let _ = writeln!(
            m,
            "irsa_doctor_last_check_timestamp_seconds {:.3}",
            unix_secs_f64(latest.checked_at)
        );
    }
    if let Some(conclusive) = state.conclusive() {
        header(
            m,
            "last_conclusive_check_timestamp_seconds",
            "gauge",
            "When the latest pass or fail check started, in Unix seconds.",
        );
        let _ = writeln!(
            m,
            "irsa_doctor_last_conclusive_check_timestamp_seconds {:.3}",
            unix_secs_f64(conclusive.checked_at)
        );
    }
}

/// The requests that left the process, and the connections closed at
/// the cap.
fn traffic(m: &mut String, sts: &StsCounters, connections_evicted: u64) {
    header(
        m,
        "sts_requests_total",
        "counter",
        "STS requests sent since start (the SDK default chain's included), by action and \
         outcome: success (2xx), client_error (4xx: refused, throttled, invalid), server_error \
         (5xx), transport_error (no HTTP answer).",
    );
    for action in Action::ALL {
        for outcome in Outcome::ALL {
            let _ = writeln!(
                m,
                "irsa_doctor_sts_requests_total{{action=\"{}\",outcome=\"{}\"}} {}",
                action.as_str(),
                outcome.as_str(),
                sts.get(action, outcome)
            );
        }
    }

    header(
        m,
        "http_connections_evicted_total",
        "counter",
        "Connections closed to make room for a new one at the cap of open connections: of the \
         client address holding the most, the one that had waited longest for a request head.",
    );
    let _ = writeln!(
        m,
        "irsa_doctor_http_connections_evicted_total {connections_evicted}"
    );
}

fn token_expiry(m: &mut String, latest: Option<&Checked>, wall: SystemTime) {
    let exp = latest.and_then(|l| l.report.token.as_ref()?.claims.exp);
    if let Some(exp) = exp {
        let now_secs = crate::time::unix_secs(wall);
        header(
            m,
            "token_expires_in_seconds",
            "gauge",
            "Seconds until the token the latest check read expires (negative once expired). The \
             kubelet rotates it at 80% of its lifetime.",
        );
        let _ = writeln!(
            m,
            "irsa_doctor_token_expires_in_seconds {}",
            exp.saturating_sub(now_secs)
        );
    }
}

fn findings(m: &mut String, latest: Option<&Checked>) {
    // One series per code and severity, however many findings share them.
    let active: BTreeSet<(&str, &str)> = latest
        .iter()
        .flat_map(|l| &l.report.findings)
        .map(|f| (f.code.as_str(), f.severity.as_str()))
        .collect();
    if !active.is_empty() {
        header(
            m,
            "finding_active",
            "gauge",
            "1 for each finding of the latest check, by code and severity; codes not found are \
             absent.",
        );
    }
    for (code, severity) in active {
        let _ = writeln!(
            m,
            "irsa_doctor_finding_active{{code=\"{code}\",severity=\"{severity}\"}} 1"
        );
    }
}

fn header(m: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(m, "# HELP irsa_doctor_{name} {help}");
    let _ = writeln!(m, "# TYPE irsa_doctor_{name} {kind}");
}

fn histogram(m: &mut String, name: &str, help: &str, h: &Histogram) {
    header(m, name, "histogram", help);
    for (bound, count) in Histogram::BOUNDS.iter().zip(h.buckets) {
        let _ = writeln!(m, "irsa_doctor_{name}_bucket{{le=\"{bound}\"}} {count}");
    }
    let _ = writeln!(m, "irsa_doctor_{name}_bucket{{le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(m, "irsa_doctor_{name}_sum {}", h.sum_secs);
    let _ = writeln!(m, "irsa_doctor_{name}_count {}", h.count);
}

/// A label value as the exposition format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::state::{Settings, Shared};
    use std::time::Duration;

    use crate::report::sample::report;
    use crate::report::{Code, Finding};
    use std::collections::HashSet;

    /// Checks the exposition rules a scraper relies on: every family has
    /// one HELP and one TYPE, before its samples, and at least one sample;
    /// samples belong to the family above them; no series twice; every
    /// value a number.
    fn assert_well_formed(text: &str) {
        let mut families: HashSet<String> = HashSet::new();
        let mut current: Option<(String, String, usize)> = None; // name, type, samples
        let mut series = HashSet::new();
        let close = |current: &Option<(String, String, usize)>| {
            if let Some((name, _, samples)) = current {
                assert!(*samples > 0, "{name} has no samples:\n{text}");
            }
        };
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                close(&current);
                let name = rest.split(' ').next().unwrap().to_owned();
                assert!(families.insert(name.clone()), "{name} twice:\n{text}");
                current = Some((name, String::new(), 0));
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                let cur = current.as_mut().expect("TYPE after HELP");
                assert_eq!(cur.0, name, "TYPE for another family");
                assert!(["gauge", "counter", "histogram"].contains(&kind), "{line}");
                cur.1 = kind.to_owned();
            } else {
                let cur = current.as_mut().expect("a sample after HELP and TYPE");
                let (key, value) = line.rsplit_once(' ').unwrap();
                assert!(value.parse::<f64>().is_ok(), "{line}");
                let name = key.split('{').next().unwrap();
                let belongs = if cur.1 == "histogram" {
                    ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| name == format!("{}{s}", cur.0))
                } else {
                    name == cur.0
                };
                assert!(belongs, "{line} is not in family {}", cur.0);
                assert!(series.insert(key.to_owned()), "{key} twice:\n{text}");
                cur.2 += 1;
            }
        }
        close(&current);
    }

    #[test]
    fn before_the_first_check_every_series_is_well_formed() {
        let (shared, _recorder) = Shared::new(Settings {
            interval: Duration::from_secs(300),
            stale_after: Duration::from_secs(900),
            timeout: Duration::from_secs(60),
        });
        let text = render(&shared.snapshot(), 0, Instant::now(), SystemTime::now());
        assert_well_formed(&text);
        assert!(text.contains("irsa_doctor_ready 0\n"), "{text}");
        assert!(text.contains("irsa_doctor_verdict{verdict=\"pass\"} 0\n"));
        assert!(text.contains("irsa_doctor_check_duration_seconds_bucket{le=\"+Inf\"} 0\n"));
        assert!(text.contains(
            "irsa_doctor_sts_requests_total{action=\"AssumeRoleWithWebIdentity\",outcome=\"success\"} 0\n"
        ));
        assert!(text.contains("irsa_doctor_http_connections_evicted_total 0\n"));
        assert!(!text.contains("finding_active"), "{text}");
    }

    #[test]
    fn findings_sharing_a_code_and_severity_are_one_series() {
        let (shared, mut recorder) = Shared::new(Settings::serve_defaults());
        let shadow = |m: &str| Finding::warning(Code::StaticCredentialsShadow, m, "r");
        let denied = Finding::error(Code::TrustPolicyDenied, "no", "fix");
        recorder.record_at(
            report(vec![shadow("session token"), shadow("container"), denied]),
            Instant::now(),
        );
        let text = render(&shared.snapshot(), 0, Instant::now(), SystemTime::now());
        assert_well_formed(&text);
        assert!(text.contains(
            "irsa_doctor_finding_active{code=\"STATIC_CREDENTIALS_SHADOW\",severity=\"warning\"} 1\n"
        ));
        assert!(text.contains("irsa_doctor_verdict{verdict=\"fail\"} 1\n"));
        assert!(text.contains("irsa_doctor_last_check_timestamp_seconds "));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
