//! `irsa-doctor-injector inject` as a pipeline runs it: the binary, a
//! manifest stream on stdin or in a file, the stream on stdout, one line
//! per workload on stderr, and the documented exit codes.

mod support;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use support::{assert_valid, IMAGE};

const ROLE: &str = "arn:aws:iam::111122223333:role/team/payments/app";

/// The binary with the image in its environment, as a pipeline sets it
/// once (`--image` is required, and its variable stands in for it).
fn run(args: &[&str], stdin: &[u8]) -> Output {
    run_with(args, stdin, &[("IRSA_DOCTOR_INJECTOR_IMAGE", IMAGE)])
}

fn run_with(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_irsa-doctor-injector"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // A writer thread: an input larger than the pipe's buffer must not
    // deadlock against a child that stops reading once past the bound.
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn inject(args: &[&str], stdin: &str) -> (Vec<Value>, String) {
    let mut all = vec!["inject", "--image", IMAGE];
    all.extend(args);
    let out = run(&all, stdin.as_bytes());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let docs = if stdout.trim_start().starts_with('{') {
        serde_json::Deserializer::from_str(&stdout)
            .into_iter::<Value>()
            .map(Result::unwrap)
            .collect()
    } else {
        serde_saphyr::from_multiple(&stdout).unwrap()
    };
    (docs, stderr)
}

fn workload(kind: &str, api: &str, name: &str, template_path: &str, labels: &str) -> String {
    let restart = if matches!(kind, "Job" | "CronJob") {
        "OnFailure"
    } else {
        "Always"
    };
    let labels = format!("  labels: {{app: {name}{labels}}}\n");
    let spec = format!(
        "spec:\n  serviceAccountName: app\n  restartPolicy: {restart}\n  containers:\n    - name: app\n      image: registry.example.com/app:1\n"
    );
    let pod = format!("metadata:\n{labels}{spec}");
    let indent = |text: &str, n: usize| {
        text.lines()
            .map(|l| format!("{}{l}\n", " ".repeat(n)))
            .collect::<String>()
    };
    let head = format!(
        "apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: payments\n"
    );
    match template_path {
        "" => format!("{head}{labels}{spec}"),
        "template" => format!("{head}spec:\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n{}", indent(&pod, 4)),
        "job" => format!("{head}spec:\n  template:\n{}", indent(&pod, 4)),
        _ => format!("{head}spec:\n  schedule: \"*/5 * * * *\"\n  jobTemplate:\n    spec:\n      template:\n{}", indent(&pod, 8)),
    }
}

fn stream() -> String {
    let sa = format!("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: app\n  namespace: payments\n  annotations:\n    eks.amazonaws.com/role-arn: {ROLE}\n");
    let others = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: payments\ndata:\n  \"on\": \"yes\"\n  mode: \"0755\"\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: app\n  namespace: payments\nspec:\n  selector: {app: app}\n  ports: [{port: 80, targetPort: 8080}]\n";
    [
        sa,
        workload("Deployment", "apps/v1", "deploy", "template", ""),
        workload("StatefulSet", "apps/v1", "sts", "template", "")
            .replace("spec:\n  selector", "spec:\n  serviceName: sts\n  selector"),
        workload("DaemonSet", "apps/v1", "ds", "template", ""),
        workload("ReplicaSet", "apps/v1", "rs", "template", ""),
        workload("Job", "batch/v1", "job", "job", ""),
        workload("CronJob", "batch/v1", "cron", "cron", ""),
        workload("Pod", "v1", "pod", "", ""),
        others.to_owned(),
    ]
    .join("---\n")
}

fn template_of(doc: &Value) -> &Value {
    match doc["kind"].as_str().unwrap() {
        "Pod" => doc,
        "CronJob" => &doc["spec"]["jobTemplate"]["spec"]["template"],
        _ => &doc["spec"]["template"],
    }
}

fn doctor(doc: &Value) -> Option<&Value> {
    template_of(doc)["spec"]["initContainers"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == "irsa-doctor")
}

fn expected_role(doctor: &Value) -> Option<&str> {
    doctor["env"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == "IRSA_DOCTOR_EXPECTED_ROLE_ARN")?["value"]
        .as_str()
}

#[test]
fn every_workload_kind_is_injected_with_its_service_accounts_role_and_the_rest_passes_through() {
    let input = stream();
    let (docs, stderr) = inject(&[], &input);
    let original: Vec<Value> = serde_saphyr::from_multiple(&input).unwrap();
    assert_eq!(docs.len(), original.len());
    for (doc, before) in docs.iter().zip(&original) {
        match doc["kind"].as_str().unwrap() {
            "ServiceAccount" | "ConfigMap" | "Service" => {
                assert_eq!(doc, before, "passed through unchanged")
            }
            kind => {
                let d = doctor(doc).unwrap_or_else(|| panic!("{kind} not injected: {stderr}"));
                assert_eq!(expected_role(d), Some(ROLE), "{kind}");
                assert_eq!(d["restartPolicy"], "Always", "{kind}: sidecar by default");
                assert_eq!(d["image"], IMAGE);
            }
        }
    }
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.contains(": injected (sidecar), expecting"))
            .count(),
        7,
        "{stderr}"
    );
    assert!(
        stderr.contains("cronjob/cron -n payments: injected"),
        "{stderr}"
    );
    let named: Vec<(String, Value)> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| (format!("doc{i}"), d.clone()))
        .collect();
    assert_valid(&named);

    // Idempotent as a pipeline step: its output in, the same output out.
    let out1 = run(&["inject", "--image", IMAGE], input.as_bytes()).stdout;
    let out2 = run(&["inject", "--image", IMAGE], &out1);
    assert!(out2.status.success());
    assert_eq!(
        String::from_utf8(out1).unwrap(),
        String::from_utf8(out2.stdout).unwrap()
    );
    assert!(String::from_utf8_lossy(&out2.stderr).contains("irsa-doctor already present"));
}

#[test]
fn list_items_and_json_streams_are_patched_too() {
    let list = serde_json::json!({
        "apiVersion": "v1", "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "app", "annotations": {"eks.amazonaws.com/role-arn": ROLE}}},
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
             "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
               "spec": {"serviceAccountName": "app", "containers": [{"name": "app", "image": "x", "futureField": 1}]}}}}
        ]
    });
    let input = format!(
        "{list}\n{}",
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}})
    );
    let (docs, _) = inject(&["--mode", "init"], &input);
    assert_eq!(docs.len(), 2, "a JSON stream stays a JSON stream");
    let deployment = &docs[0]["items"][1];
    let d = doctor(deployment).unwrap();
    assert_eq!(expected_role(d), Some(ROLE));
    assert_eq!(d["args"], serde_json::json!(["check"]));
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["futureField"], 1,
        "fields k8s-openapi does not know survive"
    );
    assert_eq!(docs[1]["kind"], "Namespace");
}

#[test]
fn opted_out_unidentified_and_kube_system_workloads_are_left_alone() {
    let sa = format!("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: app\n  namespace: payments\n  annotations:\n    eks.amazonaws.com/role-arn: {ROLE}\n");
    let opted_out = workload(
        "Deployment",
        "apps/v1",
        "out",
        "template",
        ", irsa-doctor.io/inject: disabled",
    );
    let annotated_out = workload("Pod", "v1", "annotated", "", "").replace(
        "  labels: {app: annotated}",
        "  annotations: {irsa-doctor.io/inject: disabled}\n  labels: {app: annotated}",
    );
    let no_identity = workload("Deployment", "apps/v1", "unknown", "template", "")
        .replace("serviceAccountName: app", "serviceAccountName: other");
    let system = workload("DaemonSet", "apps/v1", "sys", "template", "")
        .replace("namespace: payments", "namespace: kube-system");
    let input = [sa, opted_out, annotated_out, no_identity, system].join("---\n");
    let (docs, stderr) = inject(&[], &input);
    let original: Vec<Value> = serde_saphyr::from_multiple(&input).unwrap();
    assert_eq!(docs, original, "nothing changed: {stderr}");
    assert!(
        stderr.contains("deployment/out -n payments: skipped: opted out"),
        "{stderr}"
    );
    assert!(
        stderr.contains("pod/annotated -n payments: skipped: opted out"),
        "{stderr}"
    );
    assert!(
        stderr.contains("deployment/unknown -n payments: skipped: no AWS identity known"),
        "{stderr}"
    );
    assert!(
        stderr.contains("daemonset/sys -n kube-system: skipped: never injected"),
        "{stderr}"
    );
}

#[test]
fn yaml_1_1_words_stay_strings_for_kubectl() {
    // kubectl's YAML reader is YAML 1.1: an unquoted on/yes/0755 would turn
    // into a boolean or a number there.
    let (docs, _) = inject(&[], &stream());
    let out = run(&["inject"], stream().as_bytes());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("\"on\": \"yes\""), "{text}");
    assert!(text.contains("\"0755\""), "{text}");
    assert!(docs.iter().any(|d| d["data"]["on"] == "yes"));
}

#[test]
fn errors_exit_1_and_say_where() {
    let dup = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  serviceAccountName: a\n  containers: []\n  serviceAccountName: b\n";
    let out = run(&["inject"], dup.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not valid YAML") && stderr.contains("line 8"),
        "{stderr}"
    );

    let bad_pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers: nope\n";
    let out = run(&["inject"], bad_pod.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("document 1 (pod/p): its pod template is not a valid pod"));

    let out = run(&["inject", "-f", "/nonexistent/manifests.yaml"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot open /nonexistent/manifests.yaml")
    );

    let out = run(&["inject"], &[0xff, 0xfe, b'a']);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not UTF-8"));

    let out = run(&["inject", "--mode", "both"], b"");
    assert_eq!(out.status.code(), Some(2), "a usage error is clap's 2");
}

#[test]
fn an_input_past_64_mib_is_refused_without_being_parsed() {
    let big = vec![b'#'; irsa_doctor_injector::MAX_INPUT_BYTES + 1];
    let out = run(&["inject"], &big);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("larger than 67108864 bytes"));
    assert!(out.stdout.is_empty());
}

#[test]
fn a_file_works_like_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.yaml");
    std::fs::write(&path, stream()).unwrap();
    let from_file = run(&["inject", "-f", path.to_str().unwrap()], b"");
    let from_stdin = run(&["inject", "-f", "-"], stream().as_bytes());
    assert!(from_file.status.success());
    assert_eq!(from_file.stdout, from_stdin.stdout);
}

#[test]
fn a_rendered_cluster_of_thousands_of_documents_is_read() {
    // Past the YAML parser's default budget (1,024 documents), which suits
    // a configuration file, not `kustomize build` of a cluster.
    let one = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n";
    let input = vec![one; 3000].join("---\n");
    let out = run(&["inject"], input.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout)
            .unwrap()
            .matches("kind: ConfigMap")
            .count(),
        3000
    );
}

#[test]
fn an_alias_bomb_is_refused() {
    let mut bomb = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\nx0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..12 {
        let p = i - 1;
        bomb.push_str(&format!(
            "x{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let out = run(&["inject"], bomb.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid YAML"));
}

#[test]
fn numbers_and_booleans_mean_what_kubectl_reads() {
    // kubectl's YAML reader is YAML 1.1: a leading 0 is octal (the usual
    // `defaultMode: 0644`), yes/on are booleans. Read otherwise, a file mode
    // would silently change on the way through.
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: ns}\nspec:\n  containers: [{name: app, image: x}]\n  volumes:\n    - name: c\n      configMap: {name: c, defaultMode: 0644}\n  hostNetwork: no\n";
    let (docs, _) = inject(&[], pod);
    assert_eq!(
        docs[0]["spec"]["volumes"][0]["configMap"]["defaultMode"],
        420
    );
    assert_eq!(docs[0]["spec"]["hostNetwork"], false);
}

#[test]
fn the_examples_already_run_the_doctor_and_pass_through_unchanged() {
    // Every manifest of examples/k8s with its ServiceAccount: each workload
    // already runs irsa-doctor (as a container or in the exec form), so
    // nothing changes: applying the injector to them is applying it twice.
    let dir = support::manifest_dir().join("../examples/k8s");
    let mut input = Vec::new();
    for file in [
        "serviceaccount.yaml",
        "native-sidecar-pod.yaml",
        "init-container-pod.yaml",
        "classic-sidecar-deployment.yaml",
        "exec-deployment.yaml",
        "pod-identity-deployment.yaml",
    ] {
        input.push(std::fs::read_to_string(dir.join(file)).unwrap());
    }
    let input = input.join("\n---\n");
    let (docs, stderr) = inject(&[], &input);
    let original: Vec<Value> = serde_saphyr::from_multiple(&input).unwrap();
    assert_eq!(docs, original, "{stderr}");
    let workloads: Vec<&str> = stderr.lines().collect();
    assert_eq!(workloads.len(), 5, "{stderr}");
    assert!(
        workloads
            .iter()
            .all(|l| l.contains("irsa-doctor already present")),
        "{stderr}"
    );
    assert!(
        stderr.contains("deployment/worker -n payments: irsa-doctor already present (exec form)"),
        "{stderr}"
    );
}

#[test]
fn the_pasted_help_is_the_real_help() {
    let out = run_with(&["inject", "--help"], b"", &[]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let doc = std::fs::read_to_string(support::manifest_dir().join("../docs/injector.md")).unwrap();
    assert!(
        doc.contains(&format!("```text\n{}\n```", help.trim_end())),
        "docs/injector.md's pasted help is stale:\n{help}"
    );
}

fn deployment(spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: app\n  namespace: payments\n  annotations:\n    eks.amazonaws.com/role-arn: {ROLE}\n---\n\
         apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\n  namespace: payments\nspec:\n  selector:\n    matchLabels: {{app: app}}\n  template:\n    metadata:\n      labels: {{app: app}}\n    spec:\n      serviceAccountName: app\n{spec}"
    )
}

#[test]
fn numeric_quantities_are_read_as_kubernetes_reads_them_and_kept() {
    let input = deployment(
        "      overhead: {cpu: 0.25}\n      containers:\n        - name: app\n          image: app\n          resources:\n            requests: {cpu: 0.5, memory: 128Mi}\n            limits: {cpu: 1, nvidia.com/gpu: 1}\n      volumes:\n        - name: scratch\n          emptyDir: {sizeLimit: 1000}\n",
    );
    let (docs, stderr) = inject(&[], &input);
    assert!(
        stderr.contains("deployment/app -n payments: injected"),
        "{stderr}"
    );
    let app = &docs[1]["spec"]["template"]["spec"]["containers"][0]["resources"];
    assert_eq!(app["limits"]["cpu"], 1, "the user's value is kept");
    assert_eq!(app["limits"]["nvidia.com/gpu"], 1);
    assert_eq!(app["requests"]["cpu"], 0.5);
    assert_eq!(docs[1]["spec"]["template"]["spec"]["overhead"]["cpu"], 0.25);
    assert!(doctor(&docs[1]).is_some());
}

#[test]
fn null_lists_as_helm_renders_them_are_empty_lists() {
    let app = "        - name: app\n          image: app\n          env:\n            - {name: AWS_ROLE_ARN, value: arn:aws:iam::111122223333:role/team/payments/app}\n            - {name: AWS_WEB_IDENTITY_TOKEN_FILE, value: /var/run/secrets/eks.amazonaws.com/serviceaccount/token}\n";
    // A new doctor into `initContainers: null`.
    let input = deployment(&format!(
        "      initContainers: null\n      containers:\n{app}"
    ));
    let (docs, stderr) = inject(&[], &input);
    assert!(stderr.contains("injected"), "{stderr}");
    assert!(doctor(&docs[1]).is_some());
    // A doctor already there with `env: null` and `volumeMounts: null`.
    let input = deployment(&format!(
        "      initContainers:\n        - name: irsa-doctor\n          image: mine\n          env: null\n          volumeMounts: null\n      containers:\n{app}"
    ));
    let (docs, stderr) = inject(&[], &input);
    assert!(stderr.contains("gave it the AWS variables"), "{stderr}");
    let d = doctor(&docs[1]).unwrap();
    assert_eq!(d["env"][0]["name"], "AWS_ROLE_ARN");
}

#[test]
fn a_host_network_pod_is_skipped_in_sidecar_mode_and_says_why() {
    let input = deployment(
        "      hostNetwork: true\n      containers:\n        - name: app\n          image: app\n",
    );
    let (docs, stderr) = inject(&[], &input);
    assert!(doctor(&docs[1]).is_none(), "{stderr}");
    assert!(
        stderr.contains("deployment/app -n payments: skipped: a hostNetwork pod"),
        "{stderr}"
    );
    let (docs, _) = inject(&["--mode", "init"], &input);
    assert!(doctor(&docs[1]).unwrap()["ports"].is_null());
}

#[test]
fn without_an_image_it_is_a_usage_error_naming_the_flag() {
    let input = deployment("      containers:\n        - name: app\n          image: app\n");
    let out = run_with(&["inject"], input.as_bytes(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--image"), "{stderr}");
    // The variable stands in for the flag.
    let out = run(&["inject"], input.as_bytes());
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(IMAGE));
}
