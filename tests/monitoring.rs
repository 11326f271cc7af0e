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
//! The injector's rules (irsa-doctor-injector.rules.yaml) get the same
//! checks, its coverage stat is evaluated against its recording rule, and
//! its ServiceMonitor is checked against examples/injector's Service.
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

/// The plain rules files, each with its promtool unit tests and the
/// number of alerts it holds: irsa-doctor's sidecars, then the injector's.
const RULE_FILES: [(&str, &str, usize); 2] = [
    ("irsa-doctor.rules.yaml", "irsa-doctor.rules.test.yaml", 6),
    (
        "irsa-doctor-injector.rules.yaml",
        "irsa-doctor-injector.rules.test.yaml",
        5,
    ),
];

/// Every rule of every plain rules file.
fn all_rules() -> Vec<Yaml> {
    RULE_FILES
        .iter()
        .flat_map(|(file, _, _)| rules(&yaml(file)).into_iter().cloned().collect::<Vec<_>>())
        .collect()
}

#[test]
fn the_alert_rules_pass_promtool_check_rules() {
    let plain = yaml("irsa-doctor.rules.yaml");
    let said = check_rules(&plain);
    assert!(said.contains("SUCCESS: 6 rules found"), "{said}");
    // Three recording rules and five alerts.
    let injector = yaml("irsa-doctor-injector.rules.yaml");
    let said = check_rules(&injector);
    assert!(said.contains("SUCCESS: 8 rules found"), "{said}");
    let operator = yaml("prometheusrule.yaml");
    let said = check_rules(&operator["spec"]);
    assert!(said.contains("SUCCESS: 14 rules found"), "{said}");
}

/// The PrometheusRule is the Operator's wrapping of the rules files, their
/// groups in order, with nothing added or left out. The Operator's CRD has no schema that
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
    let mut groups = vec![];
    for (file, _, _) in RULE_FILES {
        groups.extend(yaml(file)["groups"].as_vec().unwrap().iter().cloned());
    }
    assert_eq!(operator["spec"]["groups"], Yaml::Array(groups));
}

#[test]
fn the_alert_unit_tests_pass() {
    for (rules_file, test_file, _) in RULE_FILES {
        let tests = monitoring(test_file);
        assert_eq!(
            strings_of(&yaml(test_file)["rule_files"]),
            [rules_file],
            "{test_file}"
        );
        // promtool resolves rule_files from the test file's directory.
        let (ok, said) = promtool(&["test", "rules", tests.to_str().unwrap()], "");
        assert!(ok, "promtool test rules {test_file}:\n{said}");
        assert!(said.contains("SUCCESS"), "{said}");
    }
}

fn strings_of(list: &Yaml) -> Vec<&str> {
    list.as_vec()
        .map(|v| v.iter().filter_map(Yaml::as_str).collect())
        .unwrap_or_default()
}

/// Each alert has unit tests where it fires and where it stays silent,
/// and carries the annotations an on-call engineer reads.
#[test]
fn every_alert_is_tested_firing_and_silent_and_annotated() {
    for (rules_file, test_file, count) in RULE_FILES {
        assert_alerts_tested_and_annotated(rules_file, test_file, count);
    }
}

fn assert_alerts_tested_and_annotated(rules_file: &str, test_file: &str, count: usize) {
    let plain = yaml(rules_file);
    let tests = yaml(test_file);
    let cases: Vec<&Yaml> = tests["tests"]
        .as_vec()
        .unwrap()
        .iter()
        // A test of recording rules alone has no alert_rule_test.
        .flat_map(|t| t["alert_rule_test"].as_vec().into_iter().flatten())
        .collect();
    let alerts: Vec<&Yaml> = rules(&plain)
        .into_iter()
        .filter(|r| !r["alert"].is_badvalue())
        .collect();
    assert_eq!(alerts.len(), count, "{rules_file}");
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
    let alerts = all_rules()
        .into_iter()
        .filter(|r| !r["alert"].is_badvalue());
    for alert in alerts {
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
    for rule in all_rules() {
        named.extend(metric_names(rule["expr"].as_str().unwrap()));
    }
    // The injector's series are served by irsa-doctor-injector, not by
    // irsa-doctor: checked against its fixed names instead.
    let (injector, named): (BTreeSet<String>, BTreeSet<String>) = named
        .into_iter()
        .partition(|n| n.starts_with("irsa_doctor_injector"));
    let unknown: Vec<&String> = injector
        .iter()
        .filter(|n| !injector_series().contains(n))
        .collect();
    assert!(unknown.is_empty(), "not injector metrics: {unknown:?}");
    assert!(injector.len() >= 5, "{injector:?}");
    assert!(named.len() >= 11, "{named:?}");
    let missing: Vec<&String> = named.difference(&served).collect();
    assert!(
        missing.is_empty(),
        "not served: {missing:?}\nserved: {served:?}"
    );
}

/// The series irsa-doctor-injector serves: its own exposition (every
/// label combination is there from the start, at 0), rendered by the
/// injector's code (a dev-dependency of this package).
fn injector_series() -> Vec<String> {
    served_names(&irsa_doctor_injector::webhook::Metrics::default().render())
        .into_iter()
        .collect()
}

/// Every label value an injector rule matches on (`outcome="error"`,
/// `outcome=~"timeout|denied"`) is one the injector exports.
#[test]
fn the_injector_rules_match_label_values_the_injector_exports() {
    let exposition = irsa_doctor_injector::webhook::Metrics::default().render();
    let mut checked = 0;
    for rule in all_rules() {
        let expr = rule["expr"].as_str().unwrap();
        if !expr.contains("irsa_doctor_injector") {
            continue;
        }
        for (label, values) in label_matchers(expr) {
            for value in values
                .split('|')
                .filter(|v| !v.is_empty() && !v.contains(['.', '*']))
            {
                let pair = format!("{label}=\"{value}\"");
                assert!(exposition.contains(&pair), "{pair} in {expr}\n{exposition}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 3, "{checked}");
}

/// `label="v"`, `label=~"a|b"` and `label!="v"` matchers of an expression.
fn label_matchers(expr: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = expr;
    while let Some(q) = rest.find('"') {
        let before = rest[..q].trim_end_matches(['=', '~', '!']);
        let label: String = before
            .chars()
            .rev()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let after = &rest[q + 1..];
        let Some(end) = after.find('"') else { break };
        if !label.is_empty() && before.len() < rest[..q].len() {
            found.push((label, after[..end].to_owned()));
        }
        rest = &after[end + 1..];
    }
    found
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

/// The "Injector" row holds coverage, admissions by outcome and
/// mechanism, lookups by outcome and the latency's p50 and p99, each on
/// the injector's own metrics.
#[test]
fn the_injector_row_shows_coverage_admissions_lookups_and_latency() {
    let text = fs::read_to_string(monitoring("irsa-doctor-dashboard.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    let row = panels
        .iter()
        .position(|p| p["type"] == "row" && p["title"] == "Injector")
        .expect("an Injector row");
    let below: Vec<&Value> = panels[row + 1..]
        .iter()
        .take_while(|p| p["type"] != "row")
        .collect();
    for (title, wanted) in [
        (
            "Injector coverage, last hour",
            "irsa_doctor_injector_admissions_total",
        ),
        (
            "Admissions per second, by outcome and mechanism",
            "sum by (outcome, mechanism)",
        ),
        (
            "Injector lookups per second, by outcome",
            "irsa_doctor_injector_lookups_total",
        ),
        (
            "Admission latency, p50 and p99",
            "irsa_doctor_injector_admission_duration_seconds_bucket",
        ),
    ] {
        let panel = below
            .iter()
            .find(|p| p["title"] == title)
            .unwrap_or_else(|| panic!("no panel {title:?} in the Injector row"));
        let mut queries = vec![];
        collect_exprs(panel, &mut queries);
        assert!(
            queries.iter().any(|q| q.contains(wanted)),
            "{title}: {queries:?}"
        );
        // The injector runs in its own namespace: the app filter would hide it.
        assert!(!queries.iter().any(|q| q.contains("$namespace")), "{title}");
    }
    let (_, latency) = panel("Admission latency, p50 and p99");
    assert!(latency[0].starts_with("histogram_quantile(0.5,"));
    assert!(latency[1].starts_with("histogram_quantile(0.99,"));
}

/// Coverage, as the issue defines it: of the admissions of pods with an
/// identity, those that leave the doctor in the pod (injected, completed,
/// already present); pods without an identity do not count, the
/// admissions that failed do (the injector counts them with mechanism
/// none, as it emits them). The stat and the recording rule agree, and
/// the stat reads 0, not "no data", when no pod got the doctor.
#[test]
fn the_coverage_stat_counts_the_doctor_among_pods_with_an_identity() {
    let (_, queries) = panel("Injector coverage, last hour");
    let admissions = |outcome: &str, mechanism: &str, per_minute: u32| {
        (
            format!(
                r#"irsa_doctor_injector_admissions_total{{outcome="{outcome}",mechanism="{mechanism}",namespace="irsa-doctor",pod="inj-1"}}"#
            ),
            format!("0+{per_minute}x60"),
        )
    };
    let series = [
        admissions("injected", "irsa", 5),
        admissions("completed", "pod_identity", 1),
        admissions("already_present", "irsa", 2),
        admissions("opted_out", "irsa", 1),
        admissions("no_identity", "none", 50),
        admissions("error", "none", 1),
    ];
    let series: Vec<(&str, &str)> = series
        .iter()
        .map(|(s, v)| (s.as_str(), v.as_str()))
        .collect();
    let rule = all_rules()
        .into_iter()
        .find(|r| r["record"].as_str() == Some("irsa_doctor_injector:coverage:ratio_rate1h"))
        .expect("the coverage recording rule");
    // (5 + 1 + 2) of (5 + 1 + 2 + 1 + 1).
    assert_promql(&series, &queries[0], "60m", &[("{}", 0.8)]);
    assert_promql(
        &series,
        rule["expr"].as_str().unwrap(),
        "60m",
        &[("{}", 0.8)],
    );
    // Admitted without the doctor in the last hour: 1 a minute.
    assert_promql(&series, &queries[1], "60m", &[("{}", 60.0)]);

    let none_injected = [series[3], series[4], series[5]];
    assert_promql(&none_injected, &queries[0], "60m", &[("{}", 0.0)]);
    assert_promql(
        &none_injected,
        rule["expr"].as_str().unwrap(),
        "60m",
        &[("{}", 0.0)],
    );
}

/// The API server's fail-open counter is matched by the injector's own
/// webhook names, the `name:` fields of examples/injector's configuration
/// (the label the API server sets), and no other webhook's: promtool
/// evaluates the alert over one failure for each, and for EKS's.
#[test]
fn the_failing_open_alert_matches_the_webhooks_of_the_configuration() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/injector/mutatingwebhookconfiguration.yaml");
    let text = fs::read_to_string(path).unwrap();
    let config = &YamlLoader::load_from_str(&text).unwrap()[0];
    let hooks: Vec<&str> = config["webhooks"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(hooks.len(), 2);
    let rule = all_rules()
        .into_iter()
        .find(|r| r["alert"].as_str() == Some("IrsaDoctorInjectorFailingOpen"))
        .expect("the fail-open alert");
    let failure = |name: &str, kind: &str| {
        (
            format!(
                r#"apiserver_admission_webhook_fail_open_count{{name="{name}",type="{kind}",instance="10.0.0.1:443"}}"#
            ),
            "0x20 1x20".to_owned(),
        )
    };
    let mut series: Vec<(String, String)> = hooks.iter().map(|h| failure(h, "admit")).collect();
    series.push(failure("pod-identity-webhook.amazonaws.com", "admit"));
    series.push(failure(
        "vpc-resource-validating-webhook.k8s.aws",
        "validating",
    ));
    let series: Vec<(&str, &str)> = series
        .iter()
        .map(|(s, v)| (s.as_str(), v.as_str()))
        .collect();
    let expected: Vec<String> = hooks.iter().map(|h| format!(r#"{{name="{h}"}}"#)).collect();
    let expected: Vec<(&str, f64)> = expected.iter().map(|l| (l.as_str(), 1.0)).collect();
    assert_promql(&series, rule["expr"].as_str().unwrap(), "25m", &expected);
}

/// The ServiceMonitor scrapes the injector's plain-HTTP metrics port
/// through its Service (examples/injector/), in the injector's namespace.
#[test]
fn the_injector_servicemonitor_scrapes_the_metrics_port_of_its_service() {
    let monitor = yaml("injector-servicemonitor.yaml");
    assert_eq!(
        monitor["apiVersion"].as_str(),
        Some("monitoring.coreos.com/v1")
    );
    assert_eq!(monitor["kind"].as_str(), Some("ServiceMonitor"));
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/injector/service.yaml");
    let service = YamlLoader::load_from_str(&fs::read_to_string(path).unwrap())
        .unwrap()
        .remove(0);
    let spec = &monitor["spec"];
    assert_eq!(
        spec["namespaceSelector"]["matchNames"][0],
        service["metadata"]["namespace"]
    );
    let wanted = spec["selector"]["matchLabels"]
        .as_hash()
        .expect("matchLabels");
    assert!(!wanted.is_empty());
    for (k, v) in wanted {
        assert_eq!(&service["metadata"]["labels"][k.as_str().unwrap()], v);
    }
    let endpoints = spec["endpoints"].as_vec().unwrap();
    assert_eq!(endpoints.len(), 1);
    let port = endpoints[0]["port"].as_str().unwrap();
    assert_eq!(endpoints[0]["path"].as_str(), Some("/metrics"));
    assert_eq!(endpoints[0]["scheme"].as_str(), Some("http"));
    let ports = service["spec"]["ports"].as_vec().unwrap();
    let served = ports
        .iter()
        .find(|p| p["name"].as_str() == Some(port))
        .unwrap_or_else(|| panic!("the Service has no port {port}"));
    // The Deployment's --metrics-listen port, by name.
    assert_eq!(served["targetPort"].as_str(), Some("metrics"));
}
