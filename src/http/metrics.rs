//! /metrics: the loop's state in the Prometheus text exposition format
//! (version 0.0.4), every name under `irsa_doctor_`.
//!
//! Written by hand rather than with a metrics crate: a dozen series, all
//! read from a copy of [`State`] at scrape time, with label values drawn
//! from our own fixed sets (verdicts, finding codes, STS actions) plus the
//! version and revision. The `process_*` families are the ones every
//! Prometheus client library serves, from [`crate::http::process`].
//!
//! Every family is served in every state, its `HELP` and `TYPE` included,
//! so that `promtool check metrics` and dashboards see the same names
//! before the first check, with no findings, and after; only the series
//! that have no value yet (the timestamps, the token's expiry and
//! lifetime, the credentials' expiry) are left out until they do.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::{Instant, SystemTime};

use crate::http::process;
use crate::monitor::histogram::Histogram;
use crate::monitor::state::{Checked, State};
use crate::peers::traffic::{Action, Outcome, StsCounters};
use crate::report::Verdict;
use crate::time::unix_secs_f64;

/// The Content-Type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders every series: the loop's `state`, and the server's count of
/// connections closed at its cap. `now` and `wall` are the scrape's clocks.
pub fn render(state: &State, connections_evicted: u64, now: Instant, wall: SystemTime) -> String {
    let mut out = String::with_capacity(4096);
    let m = &mut out;
    build_info(m, state);
    mechanism(m, state);
    verdicts(m, state, now);
    liveness(m, state, now);
    check_times(m, state);
    histogram(
        m,
        "check_duration_seconds",
        "How long each check took, retries included.",
        state.durations(),
    );
    traffic(m, state.sts_counters(), connections_evicted);
    token_expiry(m, state.latest(), wall);
    credentials_expiry(m, state.latest(), wall);
    findings(m, state.latest());
    process_figures(m, process::read());
    out
}

/// The source revision the binary was built from: `IRSA_DOCTOR_REVISION`
/// at compile time (the Dockerfile's build argument), else `unknown`.
pub const REVISION: &str = match option_env!("IRSA_DOCTOR_REVISION") {
    Some(r) => r,
    None => "unknown",
};

/// Version, revision, and the mechanism the latest check chose (`unknown`
/// before the first check), so that one join tells what runs where.
fn build_info(m: &mut String, state: &State) {
    header(
        m,
        "build_info",
        "gauge",
        "irsa-doctor's version, source revision and the mechanism in use (irsa, pod_identity, \
         none; unknown before the first check), as labels.",
    );
    let mechanism = state.latest().map_or("unknown", |l| {
        l.report.mechanism.map_or("none", |n| n.as_str())
    });
    let _ = writeln!(
        m,
        "irsa_doctor_build_info{{version=\"{}\",revision=\"{}\",mechanism=\"{mechanism}\"}} 1",
        escape(env!("CARGO_PKG_VERSION")),
        escape(REVISION)
    );
}

/// What /livez answers, and the interval the loop keeps: with the
/// timestamps, a rule can tell a loop that stopped checking.
fn liveness(m: &mut String, state: &State, now: Instant) {
    header(m, "live", "gauge", "1 while /livez answers 200, else 0.");
    let live = state.stalled(now).is_none();
    let _ = writeln!(m, "irsa_doctor_live {}", u8::from(live));
    header(
        m,
        "check_interval_seconds",
        "gauge",
        "--interval: the time between checks while nothing changes.",
    );
    let _ = writeln!(
        m,
        "irsa_doctor_check_interval_seconds {}",
        state.settings().interval.as_secs_f64()
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
        "agent_requests_total",
        "counter",
        "Requests irsa-doctor sent to the EKS Pod Identity agent since start, retries included, by \
         outcome: success (2xx), client_error (4xx), server_error (5xx), transport_error (no HTTP \
         answer). The default chain's own request is answered with irsa-doctor's answer and is \
         not counted.",
    );
    for outcome in Outcome::ALL {
        let _ = writeln!(
            m,
            "irsa_doctor_agent_requests_total{{outcome=\"{}\"}} {}",
            outcome.as_str(),
            sts.agent(outcome)
        );
    }

    header(
        m,
        "iam_requests_total",
        "counter",
        "IAM SimulatePrincipalPolicy (and, with --session-policy, SimulateCustomPolicy) requests \
         sent since start for --require, pages and retries \
         included, by outcome: success (2xx), client_error (4xx: refused, throttled), \
         server_error (5xx), transport_error (no HTTP answer). serve asks at start, after a token \
         rotation, and at most hourly.",
    );
    for outcome in Outcome::ALL {
        let _ = writeln!(
            m,
            "irsa_doctor_iam_requests_total{{outcome=\"{}\"}} {}",
            outcome.as_str(),
            sts.iam(outcome)
        );
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

/// The token's time left, and its lifetime (`iat` to `exp`): the kubelet
/// rotates at 80% of the lifetime, so a healthy token of one hour has
/// between 720 s and an hour left, and only the fraction left tells a
/// rotation that has stopped (the `IrsaDoctorTokenExpiring` alert).
fn token_expiry(m: &mut String, latest: Option<&Checked>, wall: SystemTime) {
    let claims = latest.and_then(|l| Some(&l.report.token.as_ref()?.claims));
    let Some(exp) = claims.and_then(|c| c.exp) else {
        return;
    };
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
    // A token without `iat`, or one that expires before it was issued, has
    // no lifetime to speak of: the series is left out rather than made up.
    let lifetime = claims
        .and_then(|c| c.iat)
        .map(|iat| exp.saturating_sub(iat))
        .filter(|secs| *secs > 0);
    if let Some(lifetime) = lifetime {
        header(
            m,
            "token_lifetime_seconds",
            "gauge",
            "The lifetime of the token the latest check read, from its iat to its exp claim \
             (eks.amazonaws.com/token-expiration; 86400 by default).",
        );
        let _ = writeln!(m, "irsa_doctor_token_lifetime_seconds {lifetime}");
    }
}

/// The time left on the credentials the latest check got as the pod
/// (IRSA's session from STS, or what the Pod Identity agent handed out),
/// by mechanism. The agent hands the same cached credentials to the pod
/// until they expire (about 6 hours; 59 minutes with a target role), and
/// a changed association reaches a running pod no sooner: this says when.
fn credentials_expiry(m: &mut String, latest: Option<&Checked>, wall: SystemTime) {
    let Some(report) = latest.map(|l| &l.report) else {
        return;
    };
    let Some(mechanism) = report.mechanism else {
        return;
    };
    let expiration = match mechanism {
        crate::report::MechanismName::PodIdentity => {
            report.agent.as_ref().and_then(|a| a.expiration.as_deref())
        }
        crate::report::MechanismName::Irsa => report.sts.expiration.as_deref(),
    };
    let expires = expiration.and_then(|e| {
        let format = aws_smithy_types::date_time::Format::DateTime;
        aws_smithy_types::DateTime::from_str(e.trim(), format).ok()
    });
    // Like the token's expiry, left out until there is one: a family
    // with no sample is not well formed.
    let Some(expires) = expires else {
        return;
    };
    header(
        m,
        "credentials_expires_in_seconds",
        "gauge",
        "Seconds until the credentials the latest check got as the pod expire (negative once \
         expired), by mechanism. The Pod Identity agent hands out the same cached credentials \
         until then, so an association edited since reaches a running pod no sooner.",
    );
    let left = expires.secs().saturating_sub(crate::time::unix_secs(wall));
    let _ = writeln!(
        m,
        "irsa_doctor_credentials_expires_in_seconds{{mechanism=\"{}\"}} {left}",
        mechanism.as_str()
    );
}

fn findings(m: &mut String, latest: Option<&Checked>) {
    // One series per code and severity, however many findings share them.
    let active: BTreeSet<(&str, &str)> = latest
        .iter()
        .flat_map(|l| &l.report.findings)
        .map(|f| (f.code.as_str(), f.severity.as_str()))
        .collect();
    // The family stays, HELP and TYPE, while there is no finding.
    header(
        m,
        "finding_active",
        "gauge",
        "1 for each finding of the latest check, by code and severity; codes not found are \
         absent.",
    );
    for (code, severity) in active {
        let _ = writeln!(
            m,
            "irsa_doctor_finding_active{{code=\"{code}\",severity=\"{severity}\"}} 1"
        );
    }
}

/// The `process_*` families, under their standard names (no prefix);
/// none off Linux.
fn process_figures(m: &mut String, figures: Option<process::Figures>) {
    let Some(f) = figures else {
        return;
    };
    let families: [(&str, &str, &str, f64); 5] = [
        (
            "start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch, in seconds.",
            f.start_time_seconds,
        ),
        (
            "cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent, in seconds.",
            f.cpu_seconds,
        ),
        (
            "resident_memory_bytes",
            "gauge",
            "Resident memory size, in bytes.",
            f.resident_memory_bytes as f64,
        ),
        (
            "virtual_memory_bytes",
            "gauge",
            "Virtual memory size, in bytes.",
            f.virtual_memory_bytes as f64,
        ),
        (
            "open_fds",
            "gauge",
            "Number of open file descriptors.",
            f.open_fds as f64,
        ),
    ];
    let max = f.max_fds.map(|max| {
        (
            "max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            max as f64,
        )
    });
    for (name, kind, help, value) in families.into_iter().chain(max) {
        let _ = writeln!(m, "# HELP process_{name} {help}");
        let _ = writeln!(m, "# TYPE process_{name} {kind}");
        let _ = writeln!(m, "process_{name} {value}");
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
    /// one HELP and one TYPE, before its samples, and at least one sample
    /// (but `finding_active`, which has none while nothing is found);
    /// samples belong to the family above them; no series twice; every
    /// value a number.
    fn assert_well_formed(text: &str) {
        let mut families: HashSet<String> = HashSet::new();
        let mut current: Option<(String, String, usize)> = None; // name, type, samples
        let mut series = HashSet::new();
        let close = |current: &Option<(String, String, usize)>| {
            if let Some((name, _, samples)) = current {
                let may_be_empty = name == "irsa_doctor_finding_active";
                assert!(
                    may_be_empty || *samples > 0,
                    "{name} has no samples:\n{text}"
                );
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
        // The family is there without a series.
        assert!(
            text.contains("# TYPE irsa_doctor_finding_active gauge\n"),
            "{text}"
        );
        assert!(!text.contains("irsa_doctor_finding_active{"), "{text}");
        assert!(text.contains("irsa_doctor_live 1\n"), "{text}");
        assert!(
            text.contains("irsa_doctor_check_interval_seconds 300\n"),
            "{text}"
        );
        assert!(text.contains(&format!(
            "irsa_doctor_build_info{{version=\"{}\",revision=\"{REVISION}\",mechanism=\"unknown\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )));
    }

    #[test]
    fn a_stalled_loop_is_not_live() {
        let settings = Settings::serve_defaults();
        let long_ago = Instant::now() - settings.stall_after() - Duration::from_secs(1);
        let (shared, _recorder) = Shared::starting_at(settings, long_ago);
        let text = render(&shared.snapshot(), 0, Instant::now(), SystemTime::now());
        assert_well_formed(&text);
        assert!(text.contains("irsa_doctor_live 0\n"), "{text}");
    }

    #[test]
    fn build_info_names_the_mechanism_of_the_latest_check() {
        let (shared, mut recorder) = Shared::new(Settings::serve_defaults());
        recorder.record_at(report(vec![]), Instant::now());
        let text = render(&shared.snapshot(), 0, Instant::now(), SystemTime::now());
        let line = text
            .lines()
            .find(|l| l.starts_with("irsa_doctor_build_info{"))
            .unwrap();
        assert!(line.contains(",mechanism=\"irsa\"}"), "{line}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_process_families_are_served_under_their_standard_names() {
        let (shared, _recorder) = Shared::new(Settings::serve_defaults());
        let text = render(&shared.snapshot(), 0, Instant::now(), SystemTime::now());
        for family in [
            "process_start_time_seconds gauge",
            "process_cpu_seconds_total counter",
            "process_resident_memory_bytes gauge",
            "process_virtual_memory_bytes gauge",
            "process_open_fds gauge",
        ] {
            assert!(
                text.contains(&format!("# TYPE {family}\n")),
                "{family}:\n{text}"
            );
        }
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

    /// A scrape after a check that read a token with these claims.
    fn scrape_with_token(iat: Option<i64>, exp: i64, wall: SystemTime) -> String {
        let (shared, mut recorder) = Shared::new(Settings::serve_defaults());
        let mut checked = report(vec![]);
        checked.token = Some(crate::report::TokenReport {
            file: "/var/run/secrets/eks.amazonaws.com/serviceaccount/token".into(),
            claims: crate::identity::token::Claims {
                iat,
                exp: Some(exp),
                ..Default::default()
            },
        });
        recorder.record_at(checked, Instant::now());
        let text = render(&shared.snapshot(), 0, Instant::now(), wall);
        assert_well_formed(&text);
        text
    }

    /// With `eks.amazonaws.com/token-expiration: "3600"` a healthy token
    /// has at most an hour left: the time left alone cannot tell a
    /// rotation that stopped, the fraction of the lifetime can.
    #[test]
    fn the_token_lifetime_is_served_beside_the_time_left() {
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + 2_880);
        let text = scrape_with_token(Some(1_000_000), 1_003_600, wall);
        assert!(
            text.contains("irsa_doctor_token_expires_in_seconds 720\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE irsa_doctor_token_lifetime_seconds gauge\n"),
            "{text}"
        );
        assert!(
            text.contains("irsa_doctor_token_lifetime_seconds 3600\n"),
            "{text}"
        );
    }

    #[test]
    fn a_token_without_a_sensible_lifetime_serves_none() {
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for iat in [None, Some(1_003_600), Some(1_009_999)] {
            let text = scrape_with_token(iat, 1_003_600, wall);
            assert!(
                text.contains("irsa_doctor_token_expires_in_seconds 3600\n"),
                "{text}"
            );
            assert!(!text.contains("token_lifetime"), "{iat:?}:\n{text}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
