//! The fleet's monitoring in `examples/monitoring/`, proven with
//! Prometheus's own `promtool`: the alert rules pass `check rules` and
//! their unit tests (every alert firing, silent, and on both sides of its
//! boundary), the PrometheusRule holds the same groups as the plain rules
//! file, every runbook link names a section of the docs, every PromQL query of
//! the dashboard parses, and every metric the rules and the dashboard name
//! is one a running `serve` serves. `promtool check metrics` finds nothing
//! to say about a live scrape before the first check, at a pass, a fail,
//! an inconclusive check and just after a token rotation. The dashboard's
//! failing, not-ready and stale panels are evaluated by promtool over
//! series the tests define, against what the verdict and the alerts say.
//!
//! promtool comes from Debian's `prometheus` package, which `bash .ci/run`
//! installs; `PROMTOOL` names another. The tests fail, not skip, without
//! it. The PodMonitor is checked against the sidecar manifests in
//! `tests/manifests.rs`.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use testkit::fake_aws::{FakeAws, FakeAwsServer, Fault};
use testkit::jwt::{good_token, other_sa_token, TokenVolume};
use testkit::serving::Serving;
use testkit::world::ROLE_ARN;
use testkit::{doctor, Doctor};
use yaml_rust2::{Yaml, YamlEmitter, YamlLoader};

fn monitoring(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/monitoring")
        .join(file)
}

fn yaml(file: &str) -> Yaml {
    let text = fs::read_to_string(monitoring(file)).unwrap();
    let mut docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(docs.len(), 1, "{file}: one document");
    docs.remove(0)
}

/// Runs promtool with `args`, `stdin` as its input; its exit status and
/// everything it said. Panics when promtool cannot be started.
fn promtool(args: &[&str], stdin: &str) -> (bool, String) {
    let tool = std::env::var_os("PROMTOOL").unwrap_or_else(|| "promtool".into());
    let mut child = Command::new(&tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run promtool ({}): {e}. Install Debian's `prometheus` package \
                 (`bash .ci/run` does), or set PROMTOOL",
                Path::new(&tool).display()
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// `promtool check rules` on `groups` (a rules file's root), written to a
/// temporary file.
fn check_rules(groups: &Yaml) -> String {
    let mut text = String::new();
    YamlEmitter::new(&mut text).dump(groups).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.yaml");
    fs::write(&path, &text).unwrap();
    let (ok, said) = promtool(&["check", "rules", path.to_str().unwrap()], "");
    assert!(ok, "promtool check rules:\n{said}\n{text}");
    said
}

/// Every rule of a rules file's groups.
fn rules(groups: &Yaml) -> Vec<&Yaml> {
    groups["groups"]
        .as_vec()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_vec().expect("rules").iter())
        .collect()
}

#[test]
fn the_alert_rules_pass_promtool_check_rules() {
    let plain = yaml("irsa-doctor.rules.yaml");
    let said = check_rules(&plain);
    assert!(said.contains("SUCCESS: 6 rules found"), "{said}");
    let operator = yaml("prometheusrule.yaml");
    let said = check_rules(&operator["spec"]);
    assert!(said.contains("SUCCESS: 6 rules found"), "{said}");
}

/// The PrometheusRule is the Operator's wrapping of the rules file, with
/// nothing added or left out. The Operator's CRD has no schema that
/// kubernetes-validate ships (it warns and passes), so its fields are
/// checked here.
#[test]
fn the_prometheusrule_holds_the_same_groups_as_the_rules_file() {
    let operator = yaml("prometheusrule.yaml");
    assert_eq!(
        operator["apiVersion"].as_str(),
        Some("monitoring.coreos.com/v1")
    );
    assert_eq!(operator["kind"].as_str(), Some("PrometheusRule"));
    assert_eq!(operator["metadata"]["name"].as_str(), Some("irsa-doctor"));
    assert!(operator["metadata"]["namespace"].as_str().is_some());
    let spec = operator["spec"].as_hash().expect("spec");
    assert_eq!(spec.len(), 1, "spec holds groups alone");
    assert_eq!(operator["spec"], yaml("irsa-doctor.rules.yaml"));
}

#[test]
fn the_alert_unit_tests_pass() {
    let tests = monitoring("irsa-doctor.rules.test.yaml");
    // promtool resolves rule_files from the test file's directory.
    let (ok, said) = promtool(&["test", "rules", tests.to_str().unwrap()], "");
    assert!(ok, "promtool test rules:\n{said}");
    assert!(said.contains("SUCCESS"), "{said}");
}

/// Each alert has unit tests where it fires and where it stays silent,
/// and carries the annotations an on-call engineer reads.
#[test]
fn every_alert_is_tested_firing_and_silent_and_annotated() {
    let plain = yaml("irsa-doctor.rules.yaml");
    let tests = yaml("irsa-doctor.rules.test.yaml");
    let cases: Vec<&Yaml> = tests["tests"]
        .as_vec()
        .unwrap()
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_vec().unwrap().iter())
        .collect();
    let alerts: Vec<&Yaml> = rules(&plain)
        .into_iter()
        .filter(|r| !r["alert"].is_badvalue())
        .collect();
    assert_eq!(alerts.len(), 6);
    for alert in alerts {
        let name = alert["alert"].as_str().unwrap();
        for key in ["summary", "description", "runbook_url"] {
            let text = alert["annotations"][key].as_str().unwrap_or_default();
            assert!(!text.is_empty(), "{name}: no {key}");
        }
        assert!(
            alert["labels"]["severity"].as_str().is_some(),
            "{name}: no severity"
        );
        let mine: Vec<&&Yaml> = cases
            .iter()
            .filter(|c| c["alertname"].as_str() == Some(name))
            .collect();
        let fires = |c: &&&Yaml| c["exp_alerts"].as_vec().is_some_and(|v| !v.is_empty());
        assert!(mine.iter().any(fires), "{name}: no test where it fires");
        assert!(
            mine.iter().any(|c| !fires(c)),
            "{name}: no test where it stays silent"
        );
    }
}

/// The anchors GitHub gives a document's headings (`path` from the
/// repository's root): lower case, spaces to hyphens, punctuation other
/// than `-` and `_` dropped. Headings inside code blocks are not headings.
fn doc_anchors(path: &str) -> BTreeSet<String> {
    let text = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut in_code = false;
    let mut anchors = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        let Some(heading) = line.strip_prefix('#').filter(|_| !in_code) else {
            continue;
        };
        let slug: String = heading
            .trim_start_matches('#')
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        anchors.insert(slug);
    }
    anchors
}

#[test]
fn every_runbook_url_points_at_a_documented_section() {
    assert!(doc_anchors("docs/reference.md").contains("finding-codes"));
    assert!(doc_anchors("docs/proxies-and-tls.md")
        .contains("behind-a-tls-inspecting-proxy-aws_ca_bundle"));
    for alert in rules(&yaml("irsa-doctor.rules.yaml")) {
        let url = alert["annotations"]["runbook_url"].as_str().unwrap();
        let (page, anchor) = url.split_once('#').expect("an anchor");
        let (_, path) = page.split_once("/blob/main/").expect("a page on main");
        assert!(path.ends_with(".md"), "{url}");
        assert!(
            doc_anchors(path).contains(anchor),
            "{url}: no such heading in {path}"
        );
    }
}

/// The dashboard's PromQL queries, with Grafana's variables replaced by
/// what they stand for at their widest.
fn dashboard_queries() -> Vec<String> {
    let text = fs::read_to_string(monitoring("irsa-doctor-dashboard.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    let mut queries = vec![];
    collect_exprs(&dashboard, &mut queries);
    queries
        .into_iter()
        .map(|q| {
            q.replace("$namespace", ".*")
                .replace("$__rate_interval", "5m")
        })
        .collect()
}

fn collect_exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", Value::String(q)) => out.push(q.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

#[test]
fn every_dashboard_query_parses() {
    let queries = dashboard_queries();
    assert!(queries.len() >= 10, "{queries:?}");
    for q in &queries {
        assert!(!q.contains('$'), "a Grafana variable left in {q}");
    }
    let rules: Vec<String> = queries
        .iter()
        .enumerate()
        .map(|(i, q)| {
            format!(
                "      - record: irsa_doctor_dashboard_query_{i}\n        expr: {}\n",
                serde_json::to_string(q).unwrap()
            )
        })
        .collect();
    let text = format!(
        "groups:\n  - name: dashboard\n    rules:\n{}",
        rules.concat()
    );
    let groups = YamlLoader::load_from_str(&text).unwrap().remove(0);
    let said = check_rules(&groups);
    assert!(
        said.contains(&format!("SUCCESS: {} rules found", queries.len())),
        "{said}"
    );
}

/// The metric names a query uses: its identifiers under irsa-doctor's
/// prefix or `process_`, outside string literals.
fn metric_names(query: &str) -> BTreeSet<String> {
    let unquoted: String = query.split('"').step_by(2).collect::<Vec<_>>().join(" ");
    unquoted
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("irsa_doctor_") || w.starts_with("process_"))
        .map(str::to_owned)
        .collect()
}

/// A pod at the default interval: after the first check, only a token
/// rotation causes another.
fn pod(sts: &FakeAwsServer, volume: &TokenVolume) -> Doctor {
    doctor!(&sts.url()).irsa(ROLE_ARN, &volume.path())
}

/// The names of the samples in a scrape.
fn served_names(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn every_metric_the_rules_and_the_dashboard_name_is_served() {
    let sts = FakeAws::healthy().await;
    let mut volume = TokenVolume::new(&good_token());
    let serving = pod(&sts, &volume).serve().await;
    assert_eq!(serving.first_verdict().await["verdict"], "pass");
    // A failing pod serves every series: findings, the token's expiry.
    volume.rotate(&other_sa_token());
    serving.wait_for("/readyz", |a| a.status == 503).await;
    let served = served_names(&serving.get("/metrics").await.body);
    assert!(served.contains("irsa_doctor_finding_active"), "{served:?}");

    let mut named = BTreeSet::new();
    for q in dashboard_queries() {
        named.extend(metric_names(&q));
    }
    for rule in rules(&yaml("irsa-doctor.rules.yaml")) {
        named.extend(metric_names(rule["expr"].as_str().unwrap()));
    }
    assert!(named.len() >= 11, "{named:?}");
    let missing: Vec<&String> = named.difference(&served).collect();
    assert!(
        missing.is_empty(),
        "not served: {missing:?}\nserved: {served:?}"
    );
}

#[test]
fn metric_names_skip_label_values_and_functions() {
    let q = r#"sum by (code) (rate(irsa_doctor_checks_total{verdict="irsa_doctor_x"}[5m])) > process_open_fds"#;
    let names: Vec<String> = metric_names(q).into_iter().collect();
    assert_eq!(names, ["irsa_doctor_checks_total", "process_open_fds"]);
}

/// `promtool check metrics` on the scrape `serving` serves now: no lint
/// problem at all.
async fn assert_lint_clean(serving: &Serving, state: &str) -> String {
    let scrape = serving.get("/metrics").await.body;
    let (ok, said) = promtool(&["check", "metrics"], &scrape);
    assert!(ok && said.trim().is_empty(), "{state}:\n{said}\n{scrape}");
    scrape
}

#[tokio::test]
async fn promtool_check_metrics_is_clean_in_every_state() {
    let sts = FakeAws::healthy().await;
    sts.aws.always(Fault::Hold);
    let mut volume = TokenVolume::new(&good_token());
    let serving = pod(&sts, &volume).serve().await;
    let before = assert_lint_clean(&serving, "before the first check").await;
    assert!(before.contains("irsa_doctor_ready 0\n"), "{before}");
    assert!(before.contains("mechanism=\"unknown\""), "{before}");

    sts.aws.release();
    assert_eq!(serving.first_verdict().await["verdict"], "pass");
    let pass = assert_lint_clean(&serving, "pass").await;
    assert!(pass.contains("# TYPE irsa_doctor_finding_active gauge\n"));
    assert!(pass.contains("# TYPE process_resident_memory_bytes gauge\n"));
    assert!(pass.contains("mechanism=\"irsa\""), "{pass}");

    volume.rotate(&other_sa_token());
    serving.wait_for("/readyz", |a| a.status == 503).await;
    let fail = assert_lint_clean(&serving, "fail, just after a rotation").await;
    assert!(fail.contains("code=\"TRUST_POLICY_DENIED\""), "{fail}");

    volume.rotate(&good_token());
    serving.wait_for("/readyz", |a| a.status == 200).await;
    assert_lint_clean(&serving, "pass, just after a rotation").await;

    // The next check, caused by a rotation, is throttled.
    sts.aws.always(Fault::Throttle);
    volume.rotate(&good_token());
    serving
        .wait_for("/status", |a| a.json()["verdict"] == "inconclusive")
        .await;
    let inconclusive = assert_lint_clean(&serving, "inconclusive").await;
    assert!(
        inconclusive.contains("irsa_doctor_verdict{verdict=\"inconclusive\"} 1\n"),
        "{inconclusive}"
    );
}

/// The panel titled `title`, and its targets' queries with Grafana's
/// variables replaced as in [`dashboard_queries`].
fn panel(title: &str) -> (Value, Vec<String>) {
    let text = fs::read_to_string(monitoring("irsa-doctor-dashboard.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    let panel = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["title"] == title)
        .unwrap_or_else(|| panic!("no panel titled {title:?}"))
        .clone();
    let mut queries = vec![];
    collect_exprs(&panel, &mut queries);
    let queries = queries
        .into_iter()
        .map(|q| q.replace("$namespace", ".*"))
        .collect();
    (panel, queries)
}

/// One `promql_expr_test` of `promtool test rules`: `expr` evaluated at
/// `eval_time` over `series` (each a selector and its values, sampled
/// every minute) must give exactly `expected` (labels, value). Panics with
/// promtool's account when it does not.
fn assert_promql(series: &[(&str, &str)], expr: &str, eval_time: &str, expected: &[(&str, f64)]) {
    let input: String = series
        .iter()
        .map(|(s, v)| format!("      - series: '{s}'\n        values: '{v}'\n"))
        .collect();
    let samples: String = expected
        .iter()
        .map(|(labels, value)| {
            format!("          - labels: '{labels}'\n            value: {value}\n")
        })
        .collect();
    let samples = if samples.is_empty() {
        " []\n".to_owned()
    } else {
        format!("\n{samples}")
    };
    let text = format!(
        "rule_files: []\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n\
         {input}    promql_expr_test:\n      - expr: {}\n        eval_time: {eval_time}\n        \
         exp_samples:{samples}",
        serde_json::to_string(expr).unwrap()
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("query.test.yaml");
    fs::write(&path, &text).unwrap();
    let (ok, said) = promtool(&["test", "rules", path.to_str().unwrap()], "");
    assert!(ok, "{expr} at {eval_time}:\n{said}\n{text}");
}

/// The "Pods failing" table lists a pod whose verdict is fail, with its
/// error findings, and not an inconclusive pod, whose error findings (STS
/// throttled, unreachable) do not make it fail: `Verdict::of`'s rule, read
/// from `irsa_doctor_verdict` as the IrsaDoctorNotPassing alert reads it.
#[test]
fn the_failing_pods_table_lists_no_inconclusive_pod() {
    let (_, queries) = panel("Pods failing, with their findings");
    assert_eq!(queries.len(), 1, "{queries:?}");
    let series = [
        // app-1 fails: the role is not the expected one.
        (
            r#"irsa_doctor_verdict{verdict="fail",namespace="payments",pod="app-1"}"#,
            "1x10",
        ),
        (
            r#"irsa_doctor_verdict{verdict="inconclusive",namespace="payments",pod="app-1"}"#,
            "0x10",
        ),
        (
            r#"irsa_doctor_finding_active{code="ROLE_MISMATCH",severity="error",namespace="payments",pod="app-1"}"#,
            "1x10",
        ),
        (
            r#"irsa_doctor_finding_active{code="STS_GLOBAL_ENDPOINT",severity="warning",namespace="payments",pod="app-1"}"#,
            "1x10",
        ),
        // app-2 is inconclusive: STS throttles it.
        (
            r#"irsa_doctor_verdict{verdict="fail",namespace="payments",pod="app-2"}"#,
            "0x10",
        ),
        (
            r#"irsa_doctor_verdict{verdict="inconclusive",namespace="payments",pod="app-2"}"#,
            "1x10",
        ),
        (
            r#"irsa_doctor_finding_active{code="STS_THROTTLED",severity="error",namespace="payments",pod="app-2"}"#,
            "1x10",
        ),
        // app-3 passes.
        (
            r#"irsa_doctor_verdict{verdict="pass",namespace="payments",pod="app-3"}"#,
            "1x10",
        ),
    ];
    assert_promql(
        &series,
        &queries[0],
        "5m",
        &[(
            r#"{namespace="payments",pod="app-1",code="ROLE_MISMATCH"}"#,
            1.0,
        )],
    );
}

/// The "not ready" number of "Pods by verdict" is 0 while every pod is
/// ready, not "no data", and counts the pods that are not.
#[test]
fn the_not_ready_stat_is_zero_when_every_pod_is_ready() {
    let (panel, queries) = panel("Pods by verdict");
    let targets = panel["targets"].as_array().unwrap();
    let at = targets
        .iter()
        .position(|t| t["legendFormat"] == "not ready")
        .expect("a \"not ready\" target");
    let series = [
        (
            r#"irsa_doctor_ready{namespace="payments",pod="app-1"}"#,
            "1x10",
        ),
        // app-2's /readyz turns 503 at minute 5.
        (
            r#"irsa_doctor_ready{namespace="jobs",pod="app-2"}"#,
            "1x4 0x5",
        ),
    ];
    assert_promql(&series, &queries[at], "3m", &[("{}", 0.0)]);
    assert_promql(&series, &queries[at], "7m", &[("{}", 1.0)]);
}

/// "Pods not checked recently" lists a pod whose latest check is over
/// three intervals old, and not one at two and a half: the threshold of
/// the IrsaDoctorStalled alert, whose expression gives the same pods over
/// the same series.
#[test]
fn the_stale_pods_table_uses_the_stalled_alert_s_threshold() {
    let (_, queries) = panel("Pods not checked recently");
    let stale = queries
        .iter()
        .find(|q| q.contains("irsa_doctor_last_check_timestamp_seconds"))
        .expect("a query on the latest check's age");
    let stalled = rules(&yaml("irsa-doctor.rules.yaml"))
        .into_iter()
        .find(|r| r["alert"].as_str() == Some("IrsaDoctorStalled"))
        .unwrap()["expr"]
        .as_str()
        .unwrap()
        .to_owned();
    // At 30 minutes (1800 s), with a 300 s interval: app-1's latest check
    // is 750 s old (2.5 intervals), app-2's 1050 s (3.5), app-3's fresh.
    let mut series = vec![];
    for (pod, checked_at) in [("app-1", 1050), ("app-2", 750), ("app-3", 1790)] {
        series.push((
            format!(
                r#"irsa_doctor_last_check_timestamp_seconds{{namespace="payments",pod="{pod}"}}"#
            ),
            format!("{checked_at}x40"),
        ));
        series.push((
            format!(r#"irsa_doctor_check_interval_seconds{{namespace="payments",pod="{pod}"}}"#),
            "300x40".to_owned(),
        ));
        series.push((
            format!(r#"irsa_doctor_live{{namespace="payments",pod="{pod}"}}"#),
            "1x40".to_owned(),
        ));
    }
    let series: Vec<(&str, &str)> = series
        .iter()
        .map(|(s, v)| (s.as_str(), v.as_str()))
        .collect();
    let expected = [(r#"{namespace="payments",pod="app-2"}"#, 1050.0)];
    assert_promql(&series, stale, "30m", &expected);
    assert_promql(&series, &stalled, "30m", &expected);
}
