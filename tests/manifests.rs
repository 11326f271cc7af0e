//! Every manifest in `examples/k8s/` parses, and holds the invariants a
//! platform team relies on when applying it as is: every container non-root
//! with a tight securityContext and resources, the pod's fsGroup set, the
//! init container's termination message policy set, every irsa-doctor
//! setting one that the binary really accepts, and every probe and scrape
//! annotation pointed at a path and port that `serve` really answers on;
//! the NetworkPolicy admits that port only from the node and the
//! monitoring namespace, and keeps the app's own ports open; IRSA's
//! ServiceAccounts name a valid role, and every irsa-doctor container names
//! its ServiceAccount's role in `IRSA_DOCTOR_EXPECTED_ROLE_ARN`; and every
//! manifest passes `kubernetes-validate --strict`. The examples show
//! `IRSA_DOCTOR_REQUIRE` for each way irsa-doctor runs, with entries the
//! binary accepts. The PodMonitor of
//! `examples/monitoring/` selects only `serve` sidecars and their port, and
//! no pod is also scraped through the `prometheus.io/*` annotations. No
//! pod mounts the API token, and irsa-doctor takes the namespace from the
//! Downward API. `kustomization.yaml` lists every manifest and, rendered by
//! `kubectl kustomize`, sets every irsa-doctor image to one registry and
//! digest.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use std::net::SocketAddr;

use irsa_doctor::DEFAULT_LISTEN;
use irsa_doctor::PATHS;
use irsa_doctor::{Requirement, RoleArn};
use yaml_rust2::{Yaml, YamlLoader};

/// The file `kubectl apply -k examples/k8s` reads.
const KUSTOMIZATION: &str = "kustomization.yaml";

fn manifest_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/k8s");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        // Kustomize's own file, not a Kubernetes object: its own test.
        .filter(|p| !p.ends_with(KUSTOMIZATION))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {}", dir.display());
    files
}

fn manifests() -> Vec<(PathBuf, Yaml)> {
    let mut docs = vec![];
    for file in manifest_files() {
        let text = fs::read_to_string(&file).unwrap();
        let parsed =
            YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for doc in parsed {
            assert!(
                !doc["kind"].is_badvalue(),
                "{}: a document without kind",
                file.display()
            );
            docs.push((file.clone(), doc));
        }
    }
    docs
}

/// The pod spec of a Pod, or of a workload's pod template.
fn pod_spec(doc: &Yaml) -> Option<&Yaml> {
    match doc["kind"].as_str()? {
        "Pod" => Some(&doc["spec"]),
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" => {
            Some(&doc["spec"]["template"]["spec"])
        }
        _ => None,
    }
}

fn containers(spec: &Yaml) -> Vec<&Yaml> {
    let mut all = vec![];
    for key in ["initContainers", "containers"] {
        if let Some(list) = spec[key].as_vec() {
            all.extend(list.iter());
        }
    }
    all
}

fn strings(list: &Yaml) -> Vec<&str> {
    list.as_vec()
        .map(|v| v.iter().filter_map(Yaml::as_str).collect())
        .unwrap_or_default()
}

/// A container that runs irsa-doctor: from its image, or as the app
/// container's command (`exec`, from the binary `install` copied).
fn is_irsa_doctor(container: &Yaml) -> bool {
    container["image"]
        .as_str()
        .is_some_and(|i| i.contains("irsa-doctor"))
        || runs_installed_binary(container)
}

/// The app container of `exec`: its command is an installed irsa-doctor.
fn runs_installed_binary(container: &Yaml) -> bool {
    strings(&container["command"])
        .first()
        .is_some_and(|c| c.ends_with("/irsa-doctor"))
}

/// irsa-doctor's arguments in `container`, subcommand first: the image's
/// args, or what follows the installed binary in the command.
fn doctor_args(container: &Yaml) -> Vec<&str> {
    if runs_installed_binary(container) {
        let mut all = strings(&container["command"]);
        all.remove(0);
        all.extend(strings(&container["args"]));
        all
    } else {
        strings(&container["args"])
    }
}

/// The `IRSA_DOCTOR_*` variables `<command> --help` lists.
fn known_env_vars(command: &str) -> Vec<String> {
    let help = Command::new(env!("CARGO_BIN_EXE_irsa-doctor"))
        .args([command, "--help"])
        .output()
        .unwrap();
    String::from_utf8(help.stdout)
        .unwrap()
        .split("[env: ")
        .skip(1)
        .map(|rest| rest.split('=').next().unwrap().to_owned())
        .collect()
}

fn env_value<'a>(container: &'a Yaml, name: &str) -> Option<&'a str> {
    container["env"]
        .as_vec()?
        .iter()
        .find(|v| v["name"].as_str() == Some(name))?["value"]
        .as_str()
}

/// The port `serve` listens on in this container: `--listen`, else
/// `IRSA_DOCTOR_LISTEN`, else the default.
fn listen_port(container: &Yaml) -> u16 {
    let args: Vec<&str> = container["args"]
        .as_vec()
        .map(|v| v.iter().filter_map(Yaml::as_str).collect())
        .unwrap_or_default();
    let flag = args
        .iter()
        .position(|a| *a == "--listen")
        .and_then(|i| args.get(i + 1).copied())
        .or_else(|| args.iter().find_map(|a| a.strip_prefix("--listen=")));
    let listen = flag
        .or_else(|| env_value(container, "IRSA_DOCTOR_LISTEN"))
        .unwrap_or(DEFAULT_LISTEN);
    listen
        .parse::<SocketAddr>()
        .unwrap_or_else(|e| panic!("--listen {listen}: {e}"))
        .port()
}

/// A probe's or annotation's port, by number or by the container's port name.
fn resolve_port(container: &Yaml, port: &Yaml) -> Option<u16> {
    if let Some(n) = port.as_i64() {
        return u16::try_from(n).ok();
    }
    let name = port.as_str()?;
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    container["ports"]
        .as_vec()?
        .iter()
        .find(|p| p["name"].as_str() == Some(name))?["containerPort"]
        .as_i64()
        .and_then(|n| u16::try_from(n).ok())
}

/// The metadata that carries the pod's annotations.
fn pod_metadata(doc: &Yaml) -> &Yaml {
    match doc["kind"].as_str() {
        Some("Pod") => &doc["metadata"],
        _ => &doc["spec"]["template"]["metadata"],
    }
}

#[test]
fn every_container_runs_non_root_with_a_tight_security_context() {
    let mut pods = 0;
    for (file, doc) in manifests() {
        let Some(spec) = pod_spec(&doc) else { continue };
        pods += 1;
        let where_ = file.display();
        assert!(
            spec["securityContext"]["fsGroup"].as_i64().is_some(),
            "{where_}: no pod fsGroup"
        );
        let pod_ctx = &spec["securityContext"];
        for c in containers(spec) {
            let name = c["name"].as_str().unwrap_or("?");
            let ctx = &c["securityContext"];
            let non_root = ctx["runAsNonRoot"]
                .as_bool()
                .or(pod_ctx["runAsNonRoot"].as_bool());
            assert_eq!(non_root, Some(true), "{where_}/{name}: runAsNonRoot");
            assert_ne!(
                ctx["runAsUser"].as_i64().or(pod_ctx["runAsUser"].as_i64()),
                Some(0),
                "{where_}/{name}: uid 0"
            );
            assert_eq!(
                ctx["readOnlyRootFilesystem"].as_bool(),
                Some(true),
                "{where_}/{name}: readOnlyRootFilesystem"
            );
            assert_eq!(
                ctx["allowPrivilegeEscalation"].as_bool(),
                Some(false),
                "{where_}/{name}: allowPrivilegeEscalation"
            );
            let drops: Vec<&str> = ctx["capabilities"]["drop"]
                .as_vec()
                .map(|v| v.iter().filter_map(Yaml::as_str).collect())
                .unwrap_or_default();
            assert!(
                drops.contains(&"ALL"),
                "{where_}/{name}: capabilities.drop ALL"
            );
            let seccomp = ctx["seccompProfile"]["type"]
                .as_str()
                .or(pod_ctx["seccompProfile"]["type"].as_str());
            assert_eq!(seccomp, Some("RuntimeDefault"), "{where_}/{name}: seccomp");
            for kind in ["requests", "limits"] {
                assert!(
                    c["resources"][kind]["memory"].as_str().is_some(),
                    "{where_}/{name}: resources.{kind}.memory"
                );
            }
        }
    }
    assert!(pods > 0, "no pod specs among the manifests");
}

#[test]
fn irsa_doctor_containers_use_real_commands_and_settings() {
    let known_check = known_env_vars("check");
    let known_serve = known_env_vars("serve");
    let known_exec = known_env_vars("exec");
    let known = &known_check;
    assert!(
        known.contains(&"IRSA_DOCTOR_TIMEOUT".to_owned()),
        "{known:?}"
    );
    let mut found = 0;
    for (file, doc) in manifests() {
        let Some(spec) = pod_spec(&doc) else { continue };
        let inits: Vec<&Yaml> = spec["initContainers"]
            .as_vec()
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        for c in containers(spec).into_iter().filter(|c| is_irsa_doctor(c)) {
            found += 1;
            let where_ = format!("{}/{}", file.display(), c["name"].as_str().unwrap_or("?"));
            let command = doctor_args(c).first().copied();
            let known = match command {
                Some("check") => known,
                Some("serve") => &known_serve,
                Some("exec") => &known_exec,
                Some("install") => &vec![],
                other => {
                    panic!("{where_}: the command {other:?} is not check, serve, exec or install")
                }
            };
            let sidecar = c["restartPolicy"].as_str() == Some("Always");
            assert!(
                !(sidecar && command == Some("check")),
                "{where_}: `check` exits; as a sidecar it would restart forever"
            );
            assert!(
                c["terminationMessagePolicy"].as_str().is_some(),
                "{where_}: terminationMessagePolicy"
            );
            for var in c["env"].as_vec().into_iter().flatten() {
                let name = var["name"].as_str().unwrap();
                if name.starts_with("IRSA_DOCTOR_") {
                    assert!(
                        known.contains(&name.to_owned()),
                        "{where_}: {name} is not a setting irsa-doctor reads"
                    );
                }
            }
            if inits.iter().any(|i| std::ptr::eq(*i, c)) && command == Some("check") {
                assert_eq!(
                    c["terminationMessagePolicy"].as_str(),
                    Some("File"),
                    "{where_}: terminationMessagePolicy"
                );
                assert_eq!(
                    c["terminationMessagePath"].as_str(),
                    Some("/dev/termination-log"),
                    "{where_}"
                );
            }
        }
    }
    assert!(found > 0, "no irsa-doctor container in the manifests");
}

#[test]
fn the_examples_show_require_with_entries_the_binary_accepts() {
    let mut shown = vec![];
    for (file, doc) in manifests() {
        let Some(spec) = pod_spec(&doc) else { continue };
        for c in containers(spec).into_iter().filter(|c| is_irsa_doctor(c)) {
            let Some(value) = env_value(c, "IRSA_DOCTOR_REQUIRE") else {
                continue;
            };
            for entry in value.split(',') {
                if let Err(e) = Requirement::parse(entry) {
                    panic!("{}: the entry {entry:?} {e}", file.display());
                }
            }
            let command = doctor_args(c).first().copied().unwrap_or("").to_owned();
            shown.push(command);
        }
    }
    for command in ["check", "serve"] {
        assert!(
            shown.iter().any(|c| c == command),
            "no `{command}` example sets IRSA_DOCTOR_REQUIRE: {shown:?}"
        );
    }
}

#[test]
fn serve_probes_and_scrape_annotations_match_what_serve_exposes() {
    let mut found = 0;
    for (file, doc) in manifests() {
        let Some(spec) = pod_spec(&doc) else { continue };
        let annotations = &pod_metadata(&doc)["annotations"];
        for c in containers(spec).into_iter().filter(|c| is_irsa_doctor(c)) {
            if c["args"][0].as_str() != Some("serve") {
                continue;
            }
            found += 1;
            let where_ = format!("{}/{}", file.display(), c["name"].as_str().unwrap_or("?"));
            let port = listen_port(c);
            let declared: Vec<i64> = c["ports"]
                .as_vec()
                .map(|v| {
                    v.iter()
                        .filter_map(|p| p["containerPort"].as_i64())
                        .collect()
                })
                .unwrap_or_default();
            assert!(
                declared.contains(&i64::from(port)),
                "{where_}: serve listens on {port}, ports declare {declared:?}"
            );
            let sidecar = c["restartPolicy"].as_str() == Some("Always");
            let mut probes = vec![("readinessProbe", "/readyz"), ("livenessProbe", "/livez")];
            if sidecar {
                // The app must wait for the first pass.
                probes.push(("startupProbe", "/readyz"));
            }
            for (probe, path) in probes {
                let get = &c[probe]["httpGet"];
                assert_eq!(get["path"].as_str(), Some(path), "{where_}: {probe} path");
                assert!(PATHS.contains(&path));
                assert_eq!(
                    resolve_port(c, &get["port"]),
                    Some(port),
                    "{where_}: {probe} port"
                );
            }
            if annotations["prometheus.io/scrape"].as_str() == Some("true") {
                let scraped = resolve_port(c, &annotations["prometheus.io/port"]);
                assert_eq!(scraped, Some(port), "{where_}: prometheus.io/port");
                assert_eq!(
                    annotations["prometheus.io/path"].as_str(),
                    Some("/metrics"),
                    "{where_}: prometheus.io/path"
                );
            }
        }
    }
    assert!(
        found >= 2,
        "the native and classic sidecar examples run serve"
    );
}

/// The Prometheus Operator's PodMonitor (examples/monitoring) scrapes every
/// `serve` sidecar here: its selector matches the pod's labels, and the
/// port it names is the container's port that serve listens on. The CRD
/// has no schema kubernetes-validate ships (it warns and passes), so its
/// fields are checked here.
#[test]
fn the_podmonitor_scrapes_every_serve_sidecar() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/monitoring/podmonitor.yaml");
    let monitor = YamlLoader::load_from_str(&fs::read_to_string(path).unwrap())
        .unwrap()
        .remove(0);
    assert_eq!(
        monitor["apiVersion"].as_str(),
        Some("monitoring.coreos.com/v1")
    );
    assert_eq!(monitor["kind"].as_str(), Some("PodMonitor"));
    assert!(monitor["metadata"]["name"].as_str().is_some());
    let spec = &monitor["spec"];
    assert_eq!(spec["namespaceSelector"]["any"].as_bool(), Some(true));
    let wanted = spec["selector"]["matchLabels"]
        .as_hash()
        .expect("matchLabels");
    assert!(!wanted.is_empty());
    let endpoints = spec["podMetricsEndpoints"].as_vec().expect("endpoints");
    assert_eq!(endpoints.len(), 1);
    let endpoint = &endpoints[0];
    assert_eq!(endpoint["path"].as_str(), Some("/metrics"));
    assert!(PATHS.contains(&"/metrics"));
    let port_name = endpoint["port"].as_str().expect("a port name");
    let mut found = 0;
    for (file, doc) in manifests() {
        let Some(pod) = pod_spec(&doc) else { continue };
        let labels = &pod_metadata(&doc)["labels"];
        let selected = wanted
            .iter()
            .all(|(k, v)| &labels[k.as_str().unwrap()] == v);
        for c in containers(pod).into_iter().filter(|c| is_irsa_doctor(c)) {
            let serves = c["args"][0].as_str() == Some("serve");
            // A serve pod may be scraped through the annotations instead:
            // `every_serve_pod_is_scraped_one_way`.
            assert!(
                serves || !selected,
                "{}: selected by the PodMonitor without serve",
                file.display()
            );
            if selected {
                found += 1;
                assert_eq!(
                    resolve_port(c, &Yaml::String(port_name.to_owned())),
                    Some(listen_port(c)),
                    "{}: port {port_name}",
                    file.display()
                );
            }
        }
    }
    assert!(found >= 1, "no serve sidecar is selected by the PodMonitor");
}

/// Whether `policy` selects the pods that `doc` runs: the same namespace,
/// and every label of its `podSelector`.
fn selects(policy: &Yaml, doc: &Yaml) -> bool {
    let selector = &policy["spec"]["podSelector"];
    assert!(
        selector["matchExpressions"].is_badvalue(),
        "this test reads matchLabels only"
    );
    let labels = &pod_metadata(doc)["labels"];
    policy["metadata"]["namespace"] == doc["metadata"]["namespace"]
        && selector["matchLabels"].as_hash().is_none_or(|wanted| {
            wanted
                .iter()
                .all(|(k, v)| k.as_str().is_some_and(|k| labels[k] == *v))
        })
}

/// Whether an ingress rule admits TCP to `port` of the pod `spec`. No
/// `ports` means every port; a named port is the pod's containerPort of
/// that name.
fn admits_port(rule: &Yaml, spec: &Yaml, port: u16) -> bool {
    let Some(ports) = rule["ports"].as_vec() else {
        return true;
    };
    ports.iter().any(|p| {
        if p["protocol"].as_str().unwrap_or("TCP") != "TCP" {
            return false;
        }
        if p["port"].is_badvalue() {
            return true;
        }
        let first = containers(spec)
            .into_iter()
            .find_map(|c| resolve_port(c, &p["port"]));
        let last = p["endPort"]
            .as_i64()
            .and_then(|n| u16::try_from(n).ok())
            .or(first);
        first
            .zip(last)
            .is_some_and(|(a, b)| (a..=b).contains(&port))
    })
}

/// What an ingress peer stands for: `node` (an ipBlock alone), `monitoring`
/// (exactly the monitoring namespace, optionally narrowed to some of its
/// pods), or `other`.
fn peer_kind(peer: &Yaml) -> &'static str {
    let keys = peer.as_hash().map_or(0, |h| h.len());
    let namespaces = &peer["namespaceSelector"];
    let labels = &namespaces["matchLabels"];
    if keys == 1 && peer["ipBlock"]["cidr"].as_str().is_some() {
        "node"
    } else if labels["kubernetes.io/metadata.name"].as_str() == Some("monitoring")
        && labels.as_hash().map(|h| h.len()) == Some(1)
        && namespaces["matchExpressions"].is_badvalue()
    {
        "monitoring"
    } else {
        "other"
    }
}

#[test]
fn the_network_policy_admits_serve_only_from_the_node_and_monitoring_and_keeps_the_apps_ports() {
    let docs = manifests();
    let policies: Vec<&Yaml> = docs
        .iter()
        .map(|(_, d)| d)
        .filter(|d| d["kind"].as_str() == Some("NetworkPolicy"))
        .collect();
    assert!(!policies.is_empty(), "no NetworkPolicy among the manifests");
    let mut covered = 0;
    for (file, doc) in &docs {
        let Some(spec) = pod_spec(doc) else { continue };
        let is_serve = |c: &&Yaml| is_irsa_doctor(c) && c["args"][0].as_str() == Some("serve");
        let Some(serve) = containers(spec).into_iter().find(is_serve) else {
            continue;
        };
        let where_ = file.display();
        // No policyTypes means Ingress (and Egress if it has egress rules).
        let ingress_policies: Vec<&&Yaml> = policies
            .iter()
            .filter(|p| selects(p, doc))
            .filter(|p| {
                let types = p["spec"]["policyTypes"].as_vec();
                types.is_none_or(|t| t.iter().any(|t| t.as_str() == Some("Ingress")))
            })
            .collect();
        assert!(
            !ingress_policies.is_empty(),
            "{where_}: no NetworkPolicy selects this pod for ingress"
        );
        covered += 1;
        let rules: Vec<&Yaml> = ingress_policies
            .iter()
            .flat_map(|p| p["spec"]["ingress"].as_vec().into_iter().flatten())
            .collect();
        let port = listen_port(serve);
        let mut peers = vec![];
        for rule in rules.iter().filter(|r| admits_port(r, spec, port)) {
            let from = rule["from"]
                .as_vec()
                .filter(|f| !f.is_empty())
                .unwrap_or_else(|| panic!("{where_}: a rule admits port {port} from anywhere"));
            for peer in from {
                let kind = peer_kind(peer);
                assert_ne!(kind, "other", "{where_}: port {port} from {peer:?}");
                peers.push(kind);
            }
        }
        assert!(
            peers.contains(&"node") && peers.contains(&"monitoring"),
            "{where_}: serve's port {port} is admitted from {peers:?}, not the node and monitoring"
        );
        // Selecting the pod closes every port no rule admits: the app's
        // own ports need their rules too.
        for c in containers(spec) {
            for declared in c["ports"].as_vec().into_iter().flatten() {
                let n = resolve_port(c, &declared["containerPort"]).unwrap();
                assert!(
                    n == port || rules.iter().any(|r| admits_port(r, spec, n)),
                    "{where_}: the NetworkPolicy closes {}'s port {n}",
                    c["name"].as_str().unwrap_or("?")
                );
            }
        }
    }
    assert!(
        covered >= 2,
        "the native and classic sidecar examples are both covered"
    );
}

/// Every manifest against the API's own OpenAPI schemas, which
/// kubernetes-validate ships (it needs no cluster and no network).
/// `--strict` rejects unknown fields, such as a misspelt securityContext
/// setting that the API server would drop without a word. Two versions:
/// 1.29, the first with native sidecars on by default, and the newest the
/// pinned kubernetes-validate knows. Fails, not skips, when the tool is
/// missing.
#[test]
fn every_manifest_passes_kubernetes_validate_strict() {
    let tool = testkit::venv_tool("KUBERNETES_VALIDATE", "kubernetes-validate");
    let files = manifest_files();
    for version in ["1.29.0", "1.37.0"] {
        let out = Command::new(&tool)
            .args(["--strict", "--kubernetes-version", version])
            .args(&files)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run kubernetes-validate ({}): {e}. Install it with `bash .ci/run` or \
                     `python3 -m venv .venv && .venv/bin/pip install kubernetes-validate==1.37.0`",
                    tool.display()
                )
            });
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "Kubernetes {version}:\n{said}");
        for file in &files {
            assert!(
                said.contains(&format!("{} passed", file.display())),
                "Kubernetes {version}: {} was not checked:\n{said}",
                file.display()
            );
        }
    }
}

/// The IRSA annotation the webhook reads on a ServiceAccount.
const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";

/// An `aws eks create-pod-identity-association` command shown in a
/// manifest's comments: the service account it names and its role.
#[derive(Debug)]
struct Association {
    namespace: String,
    service_account: String,
    role_arn: String,
}

/// Every `aws eks create-pod-identity-association` command in the
/// manifests' comments, continued over lines that end in `\`.
fn associations() -> Vec<Association> {
    let mut found = vec![];
    for file in manifest_files() {
        let text = fs::read_to_string(&file).unwrap();
        let comments: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix('#'))
            .collect();
        for (i, line) in comments.iter().enumerate() {
            if !line.contains("aws eks create-pod-identity-association") {
                continue;
            }
            let mut command = String::new();
            for part in &comments[i..] {
                let part = part.trim();
                command.push_str(part.trim_end_matches('\\'));
                command.push(' ');
                if !part.ends_with('\\') {
                    break;
                }
            }
            let words: Vec<&str> = command.split_whitespace().collect();
            let flag = |name: &str| {
                let at = words.iter().position(|w| *w == name);
                at.and_then(|i| words.get(i + 1)).map(|v| (*v).to_owned())
            };
            let (Some(namespace), Some(service_account), Some(role_arn)) = (
                flag("--namespace"),
                flag("--service-account"),
                flag("--role-arn"),
            ) else {
                panic!(
                    "{}: the association command lacks --namespace, --service-account or \
                     --role-arn: {command}",
                    file.display()
                );
            };
            assert!(
                flag("--cluster-name").is_some(),
                "{}: {command}",
                file.display()
            );
            found.push(Association {
                namespace,
                service_account,
                role_arn,
            });
        }
    }
    found
}

/// The association command naming `namespace/service_account`, if any.
fn association_for<'a>(
    associations: &'a [Association],
    namespace: &str,
    service_account: &str,
) -> Option<&'a Association> {
    associations
        .iter()
        .find(|a| a.namespace == namespace && a.service_account == service_account)
}

/// IRSA's ServiceAccounts name a valid role in the annotation; EKS Pod
/// Identity's carry no annotation (with an association the webhook ignores
/// it, so it would only mislead) and are named by an association command
/// with a valid role.
#[test]
fn service_accounts_name_valid_roles_by_annotation_or_association() {
    let associations = associations();
    let (mut irsa, mut pod_identity) = (0, 0);
    for (file, doc) in manifests() {
        if doc["kind"].as_str() != Some("ServiceAccount") {
            continue;
        }
        let where_ = file.display();
        let (namespace, name) = (
            doc["metadata"]["namespace"].as_str().unwrap(),
            doc["metadata"]["name"].as_str().unwrap(),
        );
        match doc["metadata"]["annotations"][ROLE_ARN_ANNOTATION].as_str() {
            Some(arn) => {
                irsa += 1;
                RoleArn::parse(arn).unwrap_or_else(|e| panic!("{where_}: the role ARN {e}"));
                assert!(
                    association_for(&associations, namespace, name).is_none(),
                    "{where_}: {namespace}/{name} has a Pod Identity association and the \
                     {ROLE_ARN_ANNOTATION} annotation, which the webhook then ignores"
                );
            }
            None => {
                pod_identity += 1;
                let association =
                    association_for(&associations, namespace, name).unwrap_or_else(|| {
                        panic!(
                            "{where_}: {namespace}/{name} has neither the {ROLE_ARN_ANNOTATION} \
                             annotation nor a create-pod-identity-association command: \
                             {associations:?}"
                        )
                    });
                RoleArn::parse(&association.role_arn)
                    .unwrap_or_else(|e| panic!("{where_}: the association's role ARN {e}"));
            }
        }
    }
    assert!(
        irsa > 0 && pod_identity > 0,
        "{irsa} IRSA and {pod_identity} Pod Identity service accounts"
    );
}

/// Every pod runs as a ServiceAccount of the manifests, and every
/// irsa-doctor container names the role the pod must act as in
/// `IRSA_DOCTOR_EXPECTED_ROLE_ARN`: the ServiceAccount's role annotation
/// (IRSA) or its association's role (EKS Pod Identity). Without it the
/// expected role is whatever `AWS_ROLE_ARN` says, so a pod pointed at the
/// wrong role passes; and Pod Identity injects no `AWS_ROLE_ARN` at all.
/// No container may set the variables the webhook injects (it skips a
/// container that sets one, and a hand-set IRSA pair makes every SDK use
/// IRSA), and a Pod Identity pod carries no role annotation either.
#[test]
fn every_irsa_doctor_container_expects_its_service_account_s_role() {
    let docs = manifests();
    let associations = associations();
    let (mut irsa, mut pod_identity) = (0, 0);
    for (file, doc) in &docs {
        let Some(spec) = pod_spec(doc) else { continue };
        let namespace = doc["metadata"]["namespace"].as_str().unwrap();
        let sa_name = spec["serviceAccountName"].as_str().unwrap_or("default");
        let where_ = format!("{}: {namespace}/{sa_name}", file.display());
        let sa = docs
            .iter()
            .map(|(_, d)| d)
            .find(|d| {
                d["kind"].as_str() == Some("ServiceAccount")
                    && d["metadata"]["namespace"].as_str() == Some(namespace)
                    && d["metadata"]["name"].as_str() == Some(sa_name)
            })
            .unwrap_or_else(|| {
                panic!("{where_}: the pod's ServiceAccount is not in the manifests")
            });
        let role = match sa["metadata"]["annotations"][ROLE_ARN_ANNOTATION].as_str() {
            Some(annotated) => {
                irsa += 1;
                annotated.to_owned()
            }
            None => {
                pod_identity += 1;
                assert!(
                    pod_metadata(doc)["annotations"][ROLE_ARN_ANNOTATION].is_badvalue(),
                    "{where_}: a Pod Identity pod with the {ROLE_ARN_ANNOTATION} annotation"
                );
                association_for(&associations, namespace, sa_name)
                    .unwrap_or_else(|| panic!("{where_}: no association command names it"))
                    .role_arn
                    .clone()
            }
        };
        let mut doctors = 0;
        for c in containers(spec) {
            let name = c["name"].as_str().unwrap_or("?");
            for var in [
                "AWS_ROLE_ARN",
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            ] {
                let set = c["env"]
                    .as_vec()
                    .into_iter()
                    .flatten()
                    .any(|v| v["name"].as_str() == Some(var));
                assert!(
                    !set,
                    "{where_}/{name}: sets {var}, which the webhook injects"
                );
            }
            if !is_irsa_doctor(c) || doctor_args(c).first() == Some(&"install") {
                continue;
            }
            doctors += 1;
            let expected = env_value(c, "IRSA_DOCTOR_EXPECTED_ROLE_ARN").unwrap_or_else(|| {
                panic!(
                    "{where_}/{name}: no IRSA_DOCTOR_EXPECTED_ROLE_ARN value: a pod pointed at \
                     the wrong role would pass"
                )
            });
            RoleArn::parse(expected)
                .unwrap_or_else(|e| panic!("{where_}/{name}: IRSA_DOCTOR_EXPECTED_ROLE_ARN {e}"));
            assert_eq!(
                expected, role,
                "{where_}/{name}: IRSA_DOCTOR_EXPECTED_ROLE_ARN is not the ServiceAccount's role"
            );
        }
        assert!(doctors > 0, "{where_}: no irsa-doctor container");
    }
    assert!(
        irsa >= 3 && pod_identity > 0,
        "{irsa} IRSA and {pod_identity} EKS Pod Identity pods among the manifests"
    );
}

/// `exec`'s wiring: an init container from the image runs `install DIR`
/// into an emptyDir; the app container mounts that volume read-only at the
/// same DIR, and its command is DIR/irsa-doctor, `exec`, `--`, then the
/// app's own command.
#[test]
fn exec_pods_install_into_a_shared_volume_and_exec_the_app_from_it() {
    let mut found = 0;
    for (file, doc) in manifests() {
        let Some(spec) = pod_spec(&doc) else { continue };
        let all = containers(spec);
        for app in all.iter().filter(|c| runs_installed_binary(c)) {
            found += 1;
            let where_ = format!("{}/{}", file.display(), app["name"].as_str().unwrap_or("?"));
            let command = strings(&app["command"]);
            assert_eq!(
                command.get(1..3),
                Some(&["exec", "--"][..]),
                "{where_}: the command must start with `irsa-doctor exec --`: {command:?}"
            );
            assert!(
                command.len() > 3,
                "{where_}: no app command after `exec --`"
            );
            let dir = command[0].strip_suffix("/irsa-doctor").unwrap();
            let installer = spec["initContainers"]
                .as_vec()
                .into_iter()
                .flatten()
                .find(|c| is_irsa_doctor(c) && strings(&c["args"]) == ["install", dir])
                .unwrap_or_else(|| panic!("{where_}: no init container runs `install {dir}`"));
            let mount = |c: &Yaml| -> Option<(String, bool)> {
                c["volumeMounts"].as_vec()?.iter().find_map(|m| {
                    (m["mountPath"].as_str() == Some(dir)).then(|| {
                        (
                            m["name"].as_str().unwrap_or("").to_owned(),
                            m["readOnly"].as_bool() == Some(true),
                        )
                    })
                })
            };
            let (installed_into, installer_read_only) = mount(installer)
                .unwrap_or_else(|| panic!("{where_}: the installer mounts nothing at {dir}"));
            assert!(
                !installer_read_only,
                "{where_}: the installer cannot write {dir}"
            );
            let (app_volume, app_read_only) = mount(app)
                .unwrap_or_else(|| panic!("{where_}: the app container mounts nothing at {dir}"));
            assert_eq!(app_volume, installed_into, "{where_}: not the same volume");
            assert!(app_read_only, "{where_}: mount {dir} read-only in the app");
            let volume = spec["volumes"]
                .as_vec()
                .into_iter()
                .flatten()
                .find(|v| v["name"].as_str() == Some(app_volume.as_str()))
                .unwrap_or_else(|| panic!("{where_}: no volume {app_volume}"));
            assert!(
                !volume["emptyDir"].is_badvalue(),
                "{where_}: {app_volume} must be an emptyDir"
            );
        }
    }
    assert!(found > 0, "no manifest runs `exec`");
}

#[test]
fn the_docs_show_the_init_container_manifest_as_it_is() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = fs::read_to_string(root.join("docs/check.md")).unwrap();
    let manifest = fs::read_to_string(root.join("examples/k8s/init-container-pod.yaml")).unwrap();
    assert!(
        page.contains(&format!("```yaml\n{manifest}```")),
        "docs/check.md's copy of examples/k8s/init-container-pod.yaml differs from the file"
    );
}

/// The PodMonitor's `matchLabels`, as (label, value) pairs.
fn podmonitor_labels() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/monitoring/podmonitor.yaml");
    let monitor = YamlLoader::load_from_str(&fs::read_to_string(path).unwrap())
        .unwrap()
        .remove(0);
    monitor["spec"]["selector"]["matchLabels"]
        .as_hash()
        .expect("matchLabels")
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().into(), v.as_str().unwrap().into()))
        .collect()
}

/// A pod with the PodMonitor's label and the `prometheus.io/*`
/// annotations is scraped twice (once by the Operator, once by the
/// annotations' job), which doubles every count the alerts and the
/// dashboard make. Each `serve` example is scraped one way, and the
/// examples show both ways between them.
#[test]
fn every_serve_pod_is_scraped_one_way() {
    let wanted = podmonitor_labels();
    let (mut by_monitor, mut by_annotations) = (0, 0);
    for (file, doc) in manifests() {
        let Some(spec) = pod_spec(&doc) else { continue };
        let serves = containers(spec)
            .into_iter()
            .any(|c| is_irsa_doctor(c) && c["args"][0].as_str() == Some("serve"));
        if !serves {
            continue;
        }
        let metadata = pod_metadata(&doc);
        let selected = wanted
            .iter()
            .all(|(k, v)| metadata["labels"][k.as_str()].as_str() == Some(v));
        let annotated = metadata["annotations"]["prometheus.io/scrape"].as_str() == Some("true");
        assert!(
            selected != annotated,
            "{}: scraped by the PodMonitor: {selected}, by the prometheus.io annotations: \
             {annotated}; one of the two",
            file.display()
        );
        by_monitor += usize::from(selected);
        by_annotations += usize::from(annotated);
    }
    assert!(
        by_monitor > 0 && by_annotations > 0,
        "{by_monitor} examples scraped by the PodMonitor, {by_annotations} by the annotations"
    );
}

/// irsa-doctor needs no Kubernetes API token: the token it checks is a
/// projected volume of its own. So every example pod turns the API
/// token's automount off; then the namespace file that volume holds is
/// gone, and every irsa-doctor container that checks takes its namespace
/// (for `SUBJECT_MISMATCH`) from the Downward API instead.
#[test]
fn pods_mount_no_api_token_and_take_the_namespace_from_the_downward_api() {
    let mut pods = 0;
    for (file, doc) in manifests() {
        let Some(spec) = pod_spec(&doc) else { continue };
        pods += 1;
        let where_ = file.display();
        assert_eq!(
            spec["automountServiceAccountToken"].as_bool(),
            Some(false),
            "{where_}: automountServiceAccountToken"
        );
        for c in containers(spec).into_iter().filter(|c| is_irsa_doctor(c)) {
            if doctor_args(c).first() == Some(&"install") {
                continue;
            }
            let from = c["env"]
                .as_vec()
                .into_iter()
                .flatten()
                .find(|v| v["name"].as_str() == Some("IRSA_DOCTOR_NAMESPACE"))
                .map(|v| &v["valueFrom"]["fieldRef"]["fieldPath"]);
            assert_eq!(
                from.and_then(Yaml::as_str),
                Some("metadata.namespace"),
                "{where_}/{}: IRSA_DOCTOR_NAMESPACE from the Downward API",
                c["name"].as_str().unwrap_or("?")
            );
            // Issue 24: EKS Pod Identity does not work on Fargate, which
            // only the node's name tells (POD_IDENTITY_UNSUPPORTED_COMPUTE).
            let node = c["env"]
                .as_vec()
                .into_iter()
                .flatten()
                .find(|v| v["name"].as_str() == Some("IRSA_DOCTOR_NODE_NAME"))
                .map(|v| &v["valueFrom"]["fieldRef"]["fieldPath"]);
            assert_eq!(
                node.and_then(Yaml::as_str),
                Some("spec.nodeName"),
                "{where_}/{}: IRSA_DOCTOR_NODE_NAME from the Downward API",
                c["name"].as_str().unwrap_or("?")
            );
        }
    }
    assert!(pods >= 5, "{pods} pod specs");
}

/// `kubectl kustomize DIR`'s output, parsed: Kustomize as kubectl ships
/// it, offline. `KUBECTL` names another kubectl; fails, not skips,
/// without one.
fn kustomize(dir: &Path) -> (String, Vec<Yaml>) {
    let tool = testkit::venv_tool("KUBECTL", "kubectl");
    let out = Command::new(&tool)
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run kubectl ({}): {e}. `bash .ci/run` installs it when missing, or set \
                 KUBECTL",
                tool.display()
            )
        });
    assert!(
        out.status.success(),
        "kubectl kustomize {}:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let docs = YamlLoader::load_from_str(&text).unwrap();
    (text, docs)
}

/// Every irsa-doctor container's image in rendered documents.
fn irsa_doctor_images(docs: &[Yaml], image_name: &str) -> Vec<String> {
    let mut images = vec![];
    for doc in docs {
        let Some(spec) = pod_spec(doc) else { continue };
        for c in containers(spec) {
            let image = c["image"].as_str().unwrap();
            if image.contains(image_name) {
                images.push(image.to_owned());
            }
        }
    }
    images
}

/// `kubectl apply -k examples/k8s` applies every example, and the
/// kustomization's `images` entry is the one place that says where
/// irsa-doctor's image is: set to a registry and a digest (what
/// `kustomize edit set image irsa-doctor=REGISTRY/irsa-doctor@sha256:...`
/// writes), every irsa-doctor container of the render runs exactly that,
/// and the render passes `kubernetes-validate --strict`. The placeholder
/// as committed names a registry and a digest too, never a bare tag.
#[test]
fn the_kustomization_sets_every_irsa_doctor_image_to_one_registry_and_digest() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/k8s");
    let text = fs::read_to_string(source.join(KUSTOMIZATION)).unwrap();
    let mut kustomization = YamlLoader::load_from_str(&text).unwrap().remove(0);
    let listed: Vec<&str> = strings(&kustomization["resources"]);
    let mut files: Vec<String> = manifest_files()
        .iter()
        .map(|f| f.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    files.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(sorted, files, "the kustomization lists every manifest");
    let images = kustomization["images"].as_vec().expect("images");
    assert_eq!(images.len(), 1, "one images entry: irsa-doctor's");
    let name = images[0]["name"].as_str().unwrap().to_owned();
    let doctors: usize = manifests()
        .iter()
        .filter_map(|(_, d)| pod_spec(d))
        .map(|s| {
            containers(s)
                .into_iter()
                .filter(|c| is_irsa_doctor(c) && !runs_installed_binary(c))
                .count()
        })
        .sum();
    assert!(doctors >= 5, "{doctors} irsa-doctor containers");

    // As committed: a registry and a digest.
    let (_, docs) = kustomize(&source);
    let committed = irsa_doctor_images(&docs, &name);
    assert_eq!(committed.len(), doctors, "{committed:?}");
    for image in &committed {
        let (repository, digest) = image
            .split_once("@sha256:")
            .unwrap_or_else(|| panic!("{image}: not pinned by digest"));
        assert_eq!(digest.len(), 64, "{image}");
        let registry = repository.split('/').next().unwrap();
        assert!(
            repository.contains('/') && registry.contains('.'),
            "{image}: no registry"
        );
    }

    // Set to another registry and digest, in a copy of the directory.
    let copy = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        fs::copy(&path, copy.path().join(path.file_name().unwrap())).unwrap();
    }
    let registry = "registry.test.invalid/platform/irsa-doctor";
    let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
    let entry = kustomization["images"].as_mut_vec().unwrap()[0]
        .as_mut_hash()
        .expect("the images entry is a mapping");
    entry.insert(
        Yaml::String("newName".into()),
        Yaml::String(registry.into()),
    );
    entry.insert(Yaml::String("digest".into()), Yaml::String(digest.clone()));
    entry.remove(&Yaml::String("newTag".into()));
    let mut edited = String::new();
    yaml_rust2::YamlEmitter::new(&mut edited)
        .dump(&kustomization)
        .unwrap();
    fs::write(copy.path().join(KUSTOMIZATION), edited).unwrap();
    let (rendered, docs) = kustomize(copy.path());
    let set = irsa_doctor_images(&docs, "irsa-doctor");
    assert_eq!(set.len(), doctors, "{set:?}");
    for image in &set {
        assert_eq!(image, &format!("{registry}@{digest}"));
    }
    assert!(!rendered.contains(&committed[0]), "{rendered}");

    // The render is what the API server gets: it must validate too.
    let out_file = copy.path().join("rendered.yaml");
    fs::write(&out_file, &rendered).unwrap();
    let tool = testkit::venv_tool("KUBERNETES_VALIDATE", "kubernetes-validate");
    for version in ["1.29.0", "1.37.0"] {
        let out = Command::new(&tool)
            .args(["--strict", "--kubernetes-version", version])
            .arg(&out_file)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "Kubernetes {version}:\n{said}");
        assert_eq!(
            said.matches(" passed for resource ").count(),
            docs.len(),
            "Kubernetes {version}: not every document was checked:\n{said}"
        );
    }
}
