//! `examples/injector/`, the admission webhook as a platform team applies
//! it, holds what the issue and the API server need: every built-in
//! resource passes `kubernetes-validate --strict` and `kubectl kustomize`
//! renders the directory with the injector's image pinned by registry and
//! digest; the MutatingWebhookConfiguration never blocks a pod
//! (`failurePolicy: Ignore`, 3 s) and sends each opted-in pod once, through
//! two entries whose selectors cannot both match; RBAC grants get and
//! watch on ServiceAccounts and nothing else; the Deployment passes only
//! flags `serve` accepts, probes readiness on the HTTPS port and liveness
//! on the metrics port, mounts the Secret the
//! cert-manager Certificate writes, and runs under the restricted Pod
//! Security profile its namespace enforces; the IAM policy grants the two
//! EKS reads, scoped to one cluster.
//!
//! cert-manager's Issuer and Certificate have no schema kubernetes-validate
//! ships (it warns and passes), so their fields are checked here by hand.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

const KUSTOMIZATION: &str = "kustomization.yaml";
const NAMESPACE: &str = "irsa-doctor";
const SERVICE_ACCOUNT: &str = "irsa-doctor-injector";
const OPT_IN: &str = "irsa-doctor.io/inject";
/// The name of EKS's own MutatingWebhookConfiguration, the one that adds
/// the AWS variables to the app's containers.
const EKS_WEBHOOK_CONFIGURATION: &str = "pod-identity-webhook";

/// The flags of `irsa-doctor-injector serve` and their environment
/// variables, from its `--help` as docs/injector.md pastes it
/// (injector/tests/serve_command.rs keeps that paste equal to the binary's
/// output, so this is the binary's own list).
fn serve_flags() -> Vec<(String, String)> {
    let doc =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/injector.md")).unwrap();
    let start = doc.find("### `serve --help`").expect("serve --help pasted");
    let block = &doc[start..];
    let block = &block[..block[3..].find("\n## ").map_or(block.len(), |i| i + 3)];
    let mut flags: Vec<(String, String)> = Vec::new();
    for line in block.lines().map(str::trim) {
        if let Some(flag) = line.split_whitespace().find(|w| w.starts_with("--")) {
            if line.starts_with('-') {
                flags.push((flag.to_owned(), String::new()));
            }
        }
        if let Some(env) = line.strip_prefix("[env: ") {
            let name = env.split('=').next().unwrap().to_owned();
            flags.last_mut().expect("a flag before its [env: ]").1 = name;
        }
    }
    assert!(flags.len() >= 9, "{flags:?}");
    flags
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/injector")
}

/// The YAML files of the directory, kustomization.yaml left out.
fn manifest_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| !p.ends_with(KUSTOMIZATION))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "{files:?}");
    files
}

/// Every document of every manifest.
fn documents() -> Vec<Yaml> {
    let mut docs = vec![];
    for file in manifest_files() {
        let text = fs::read_to_string(&file).unwrap();
        let parsed =
            YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        docs.extend(parsed);
    }
    docs
}

/// The one document of `kind` (named `name`, when given).
fn find<'a>(docs: &'a [Yaml], kind: &str, name: Option<&str>) -> &'a Yaml {
    let found: Vec<&Yaml> = docs
        .iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .filter(|d| name.is_none() || d["metadata"]["name"].as_str() == name)
        .collect();
    assert_eq!(found.len(), 1, "one {kind} {name:?}");
    found[0]
}

fn strings(list: &Yaml) -> Vec<&str> {
    list.as_vec()
        .map(|v| v.iter().filter_map(Yaml::as_str).collect())
        .unwrap_or_default()
}

fn is_cert_manager(doc: &Yaml) -> bool {
    doc["apiVersion"]
        .as_str()
        .is_some_and(|v| v.starts_with("cert-manager.io/"))
}

/// kubernetes-validate --strict on `files`, at 1.29 (native sidecars on by
/// default) and the newest it knows; what it said at each.
fn kubernetes_validate(files: &[PathBuf]) -> Vec<String> {
    let tool = testkit::venv_tool("KUBERNETES_VALIDATE", "kubernetes-validate");
    let mut said = vec![];
    for version in ["1.29.0", "1.37.0"] {
        let out = Command::new(&tool)
            .args(["--strict", "--kubernetes-version", version])
            .args(files)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", tool.display()));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "Kubernetes {version}:\n{text}");
        said.push(text);
    }
    said
}

/// Every built-in resource passes; the only documents without a schema
/// are cert-manager's, whose fields `cert_manager_chain_...` checks.
#[test]
fn every_built_in_resource_passes_kubernetes_validate_strict() {
    let docs = documents();
    let built_in = docs.iter().filter(|d| !is_cert_manager(d)).count();
    let cert_manager = docs.len() - built_in;
    assert!(built_in >= 9, "{built_in} built-in resources");
    for said in kubernetes_validate(&manifest_files()) {
        assert_eq!(
            said.matches(" passed for resource ").count(),
            built_in,
            "not every built-in resource was checked:\n{said}"
        );
        let unknown: Vec<&str> = said
            .lines()
            .filter(|l| l.contains("Couldn't find schema"))
            .collect();
        assert_eq!(unknown.len(), cert_manager, "{said}");
        assert!(
            unknown.iter().all(|l| l.contains("cert-manager.io/v1")),
            "{unknown:?}"
        );
    }
}

/// `kubectl kustomize DIR`'s output, parsed.
fn kustomize(dir: &Path) -> (String, Vec<Yaml>) {
    let tool = testkit::venv_tool("KUBECTL", "kubectl");
    let out = Command::new(&tool)
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run kubectl ({}): {e}", tool.display()));
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

/// `kubectl apply -k examples/injector` applies every manifest, with the
/// injector's image from the kustomization's one `images` entry: a
/// registry and a digest, never a bare tag. The render validates too.
#[test]
fn the_kustomization_renders_every_manifest_with_a_pinned_injector_image() {
    let text = fs::read_to_string(dir().join(KUSTOMIZATION)).unwrap();
    let kustomization = YamlLoader::load_from_str(&text).unwrap().remove(0);
    let mut listed = strings(&kustomization["resources"]);
    listed.sort();
    let files: Vec<String> = manifest_files()
        .iter()
        .map(|f| f.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, files, "the kustomization lists every manifest");

    let (rendered, docs) = kustomize(&dir());
    assert_eq!(docs.len(), documents().len(), "{rendered}");
    let deployment = find(&docs, "Deployment", Some(SERVICE_ACCOUNT));
    let image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap();
    let (repository, digest) = image
        .split_once("@sha256:")
        .unwrap_or_else(|| panic!("{image}: not pinned by digest"));
    assert_eq!(digest.len(), 64, "{image}");
    assert!(repository.ends_with("/irsa-doctor-injector"), "{image}");
    assert!(
        repository.split('/').next().unwrap().contains('.'),
        "{image}"
    );

    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("rendered.yaml");
    fs::write(&file, &rendered).unwrap();
    let built_in = docs.iter().filter(|d| !is_cert_manager(d)).count();
    for said in kubernetes_validate(&[file]) {
        assert_eq!(
            said.matches(" passed for resource ").count(),
            built_in,
            "{said}"
        );
    }
}

/// A label selector's `matchExpressions` as (key, operator, values).
fn expressions(selector: &Yaml) -> Vec<(String, String, Vec<String>)> {
    assert!(
        selector["matchLabels"].is_badvalue(),
        "matchExpressions only, so that every condition is read here"
    );
    selector["matchExpressions"]
        .as_vec()
        .expect("matchExpressions")
        .iter()
        .map(|e| {
            (
                e["key"].as_str().unwrap().to_owned(),
                e["operator"].as_str().unwrap().to_owned(),
                strings(&e["values"])
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
            )
        })
        .collect()
}

fn expr(key: &str, operator: &str, values: &[&str]) -> (String, String, Vec<String>) {
    (
        key.to_owned(),
        operator.to_owned(),
        values.iter().map(|v| (*v).to_owned()).collect(),
    )
}

/// The settings the issue fixes, in both entries, and the call to the
/// Service's HTTPS port on `/mutate`.
fn assert_webhook_settings(hook: &Yaml, service: &Yaml) {
    let name = hook["name"].as_str().unwrap();
    assert_eq!(hook["failurePolicy"].as_str(), Some("Ignore"), "{name}");
    assert_eq!(hook["timeoutSeconds"].as_i64(), Some(3), "{name}");
    assert_eq!(hook["sideEffects"].as_str(), Some("None"), "{name}");
    assert_eq!(
        hook["reinvocationPolicy"].as_str(),
        Some("IfNeeded"),
        "{name}"
    );
    assert_eq!(hook["matchPolicy"].as_str(), Some("Equivalent"), "{name}");
    assert_eq!(strings(&hook["admissionReviewVersions"]), ["v1"], "{name}");
    let rules = hook["rules"].as_vec().unwrap();
    assert_eq!(rules.len(), 1, "{name}");
    assert_eq!(strings(&rules[0]["operations"]), ["CREATE"], "{name}");
    assert_eq!(strings(&rules[0]["apiGroups"]), [""], "{name}");
    assert_eq!(strings(&rules[0]["resources"]), ["pods"], "{name}");
    let call = &hook["clientConfig"]["service"];
    assert_eq!(call["name"], service["metadata"]["name"], "{name}");
    assert_eq!(call["namespace"].as_str(), Some(NAMESPACE), "{name}");
    assert_eq!(call["path"].as_str(), Some("/mutate"), "{name}");
    let port = call["port"].as_i64().unwrap_or(443);
    let https = service["spec"]["ports"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|p| p["port"].as_i64() == Some(port))
        .unwrap_or_else(|| panic!("{name}: the Service has no port {port}"));
    assert_eq!(https["targetPort"].as_str(), Some("https"), "{name}");
    assert!(hook["clientConfig"]["caBundle"].is_badvalue(), "{name}");
}

/// Namespace opt-in in one entry, pod opt-in in the other, and a pod in
/// a labelled namespace that is labelled too goes only to the first: the
/// second's namespaceSelector refuses what the first's takes. The
/// configuration sorts after EKS's, so it runs after it.
#[test]
fn the_webhook_configuration_sends_every_opted_in_pod_once_and_never_blocks() {
    let docs = documents();
    let config = find(&docs, "MutatingWebhookConfiguration", None);
    let service = find(&docs, "Service", Some(SERVICE_ACCOUNT));
    let certificate = find(&docs, "Certificate", Some(SERVICE_ACCOUNT));
    assert_eq!(
        config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].as_str(),
        Some(
            format!(
                "{NAMESPACE}/{}",
                certificate["metadata"]["name"].as_str().unwrap()
            )
            .as_str()
        )
    );
    // The API server calls mutating configurations in the order of their
    // names: after EKS's, the app's AWS variables are there on the first
    // call. The docs' commands name this configuration.
    let name = config["metadata"]["name"].as_str().unwrap();
    assert!(name > EKS_WEBHOOK_CONFIGURATION, "{name} runs before EKS's");
    let docs_page =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/injector.md")).unwrap();
    assert_eq!(
        docs_page
            .matches(&format!("mutatingwebhookconfiguration {name}"))
            .count(),
        2,
        "docs/injector.md's get and delete"
    );
    let hooks = config["webhooks"].as_vec().unwrap();
    assert_eq!(hooks.len(), 2);
    for hook in hooks {
        assert_webhook_settings(hook, service);
    }
    let protected = expr(
        "kubernetes.io/metadata.name",
        "NotIn",
        &["kube-system", NAMESPACE],
    );
    let (by_namespace, by_pod) = (&hooks[0], &hooks[1]);
    assert_eq!(
        expressions(&by_namespace["namespaceSelector"]),
        [expr(OPT_IN, "In", &["enabled"]), protected.clone()]
    );
    assert_eq!(
        expressions(&by_namespace["objectSelector"]),
        [expr(OPT_IN, "NotIn", &["disabled"])]
    );
    assert_eq!(
        expressions(&by_pod["namespaceSelector"]),
        [expr(OPT_IN, "NotIn", &["enabled"]), protected]
    );
    // In, not NotIn: a pod labelled `disabled` is never `enabled`.
    assert_eq!(
        expressions(&by_pod["objectSelector"]),
        [expr(OPT_IN, "In", &["enabled"])]
    );
    let names: Vec<&str> = hooks.iter().filter_map(|h| h["name"].as_str()).collect();
    assert_ne!(names[0], names[1]);
}

/// Get and watch on core ServiceAccounts, bound to the injector's own
/// ServiceAccount, which the Deployment runs as; no other Role or binding.
#[test]
fn rbac_grants_only_get_and_watch_on_service_accounts() {
    let docs = documents();
    for kind in ["Role", "RoleBinding"] {
        assert!(
            !docs.iter().any(|d| d["kind"].as_str() == Some(kind)),
            "a {kind}"
        );
    }
    let roles: Vec<&Yaml> = docs
        .iter()
        .filter(|d| d["kind"].as_str() == Some("ClusterRole"))
        .collect();
    assert_eq!(roles.len(), 1);
    let role = roles[0];
    assert!(role["aggregationRule"].is_badvalue());
    let rules = role["rules"].as_vec().unwrap();
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(strings(&rules[0]["apiGroups"]), [""]);
    assert_eq!(strings(&rules[0]["resources"]), ["serviceaccounts"]);
    assert_eq!(strings(&rules[0]["verbs"]), ["get", "watch"]);
    assert!(rules[0]["resourceNames"].is_badvalue());
    assert!(rules[0]["nonResourceURLs"].is_badvalue());

    let binding = find(&docs, "ClusterRoleBinding", None);
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(binding["roleRef"]["kind"].as_str(), Some("ClusterRole"));
    let subjects = binding["subjects"].as_vec().unwrap();
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0]["kind"].as_str(), Some("ServiceAccount"));
    assert_eq!(subjects[0]["name"].as_str(), Some(SERVICE_ACCOUNT));
    assert_eq!(subjects[0]["namespace"].as_str(), Some(NAMESPACE));
    find(&docs, "ServiceAccount", Some(SERVICE_ACCOUNT));
    let deployment = find(&docs, "Deployment", None);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["serviceAccountName"].as_str(),
        Some(SERVICE_ACCOUNT)
    );
}

/// `--flag value` pairs of `args`, after the subcommand.
fn flags(args: &[&str]) -> Vec<(String, String)> {
    let mut pairs = vec![];
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let (flag, value) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), v.to_owned()),
            None => (
                (*arg).to_owned(),
                rest.next()
                    .unwrap_or_else(|| panic!("{arg}: no value"))
                    .to_string(),
            ),
        };
        assert!(flag.starts_with("--"), "{flag}: not a flag");
        pairs.push((flag, value));
    }
    pairs
}

fn flag<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(f, _)| f == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name}"))
}

/// The container runs `serve` with flags (and `IRSA_DOCTOR_INJECTOR_*`
/// variables) that it accepts, listens where the ports, the probes and the
/// Service say, reads its certificate from the Secret the Certificate
/// writes, and takes its namespace from the Downward API.
#[test]
fn the_deployment_runs_serve_with_real_flags_on_the_ports_it_declares() {
    let docs = documents();
    let spec = &find(&docs, "Deployment", None)["spec"]["template"]["spec"];
    let containers = spec["containers"].as_vec().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let args = strings(&c["args"]);
    assert_eq!(args.first(), Some(&"serve"));
    let pairs = flags(&args[1..]);
    let serve_flags = serve_flags();
    for (f, _) in &pairs {
        assert!(
            serve_flags.iter().any(|(known, _)| known == f),
            "{f} is not a flag of serve"
        );
    }
    for var in c["env"].as_vec().unwrap() {
        let name = var["name"].as_str().unwrap();
        if name.starts_with("IRSA_DOCTOR_INJECTOR_") {
            assert!(serve_flags.iter().any(|(_, v)| v == name), "{name}");
        }
    }
    let namespace = c["env"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|v| v["name"].as_str() == Some("IRSA_DOCTOR_INJECTOR_NAMESPACE"))
        .expect("the namespace, from the Downward API");
    assert_eq!(
        namespace["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        Some("metadata.namespace")
    );
    assert!(flag(&pairs, "--image").contains("@sha256:"));
    assert_eq!(flag(&pairs, "--mode"), "sidecar");
    assert!(!flag(&pairs, "--cluster-name").is_empty());

    let port_of = |name: &str| -> i64 {
        c["ports"]
            .as_vec()
            .unwrap()
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no port {name}"))["containerPort"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(
        flag(&pairs, "--listen"),
        format!("0.0.0.0:{}", port_of("https"))
    );
    assert_eq!(
        flag(&pairs, "--metrics-listen"),
        format!("0.0.0.0:{}", port_of("metrics"))
    );
    // Readiness on the port the API server calls; liveness on the plain
    // metrics port, whose connection slots a flood of TLS connections
    // cannot take (a full 8443 must not get a healthy process restarted).
    for (probe, path, port, scheme) in [
        ("readinessProbe", "/readyz", "https", "HTTPS"),
        ("livenessProbe", "/healthz", "metrics", "HTTP"),
    ] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"].as_str(), Some(path), "{probe}");
        assert_eq!(get["port"].as_str(), Some(port), "{probe}");
        assert_eq!(get["scheme"].as_str(), Some(scheme), "{probe}");
    }
    assert_tls_from_the_certificate(&docs, c, &pairs);
}

/// `--tls-cert` and `--tls-key` are the Secret's `tls.crt` and `tls.key`,
/// mounted read-only as a directory (a subPath would never be updated),
/// and the Secret is the one the serving Certificate writes.
fn assert_tls_from_the_certificate(docs: &[Yaml], c: &Yaml, pairs: &[(String, String)]) {
    let spec = &find(docs, "Deployment", None)["spec"]["template"]["spec"];
    let mount = c["volumeMounts"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|m| flag(pairs, "--tls-cert").starts_with(m["mountPath"].as_str().unwrap()))
        .expect("a mount holding the certificate");
    let dir = mount["mountPath"].as_str().unwrap();
    assert_eq!(flag(pairs, "--tls-cert"), format!("{dir}/tls.crt"));
    assert_eq!(flag(pairs, "--tls-key"), format!("{dir}/tls.key"));
    assert_eq!(mount["readOnly"].as_bool(), Some(true));
    assert!(mount["subPath"].is_badvalue());
    let volume = spec["volumes"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    let certificate = find(docs, "Certificate", Some(SERVICE_ACCOUNT));
    assert_eq!(
        volume["secret"]["secretName"],
        certificate["spec"]["secretName"]
    );
}

/// The serving Certificate names the Service's DNS name and comes from a
/// CA Issuer whose CA a self-signed Issuer signed: the chain cert-manager's
/// CA injector reads the `caBundle` from.
#[test]
fn cert_manager_chain_signs_the_service_name() {
    let docs = documents();
    let service = find(&docs, "Service", Some(SERVICE_ACCOUNT));
    let serving = find(&docs, "Certificate", Some(SERVICE_ACCOUNT));
    let dns = strings(&serving["spec"]["dnsNames"]);
    let name = format!(
        "{}.{NAMESPACE}.svc",
        service["metadata"]["name"].as_str().unwrap()
    );
    assert!(dns.contains(&name.as_str()), "{dns:?}");
    assert!(strings(&serving["spec"]["usages"]).contains(&"server auth"));
    for doc in docs.iter().filter(|d| is_cert_manager(d)) {
        assert_eq!(doc["apiVersion"].as_str(), Some("cert-manager.io/v1"));
        assert_eq!(doc["metadata"]["namespace"].as_str(), Some(NAMESPACE));
    }
    let issuer_of = |certificate: &Yaml| -> &Yaml {
        let reference = &certificate["spec"]["issuerRef"];
        assert_eq!(reference["kind"].as_str(), Some("Issuer"));
        find(&docs, "Issuer", reference["name"].as_str())
    };
    let ca_issuer = issuer_of(serving);
    let ca_secret = ca_issuer["spec"]["ca"]["secretName"]
        .as_str()
        .expect("a CA Issuer");
    let ca = docs
        .iter()
        .find(|d| {
            d["kind"].as_str() == Some("Certificate")
                && d["spec"]["secretName"].as_str() == Some(ca_secret)
        })
        .expect("the CA's Certificate");
    assert_eq!(ca["spec"]["isCA"].as_bool(), Some(true));
    assert!(issuer_of(ca)["spec"]["selfSigned"].as_hash().is_some());
}

/// The Pod Security Standard "restricted", for the namespace that
/// enforces it: non-root, no privilege escalation, every capability
/// dropped, RuntimeDefault seccomp; plus a read-only root, 65532, small
/// resources, two replicas spread across nodes and a PodDisruptionBudget.
#[test]
fn the_deployment_is_restricted_replicated_and_budgeted() {
    let docs = documents();
    let namespace = find(&docs, "Namespace", Some(NAMESPACE));
    assert_eq!(
        namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"].as_str(),
        Some("restricted")
    );
    let deployment = find(&docs, "Deployment", None);
    assert_eq!(
        deployment["metadata"]["namespace"].as_str(),
        Some(NAMESPACE)
    );
    assert_eq!(deployment["spec"]["replicas"].as_i64(), Some(2));
    let spec = &deployment["spec"]["template"]["spec"];
    let pod = &spec["securityContext"];
    assert_eq!(pod["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(
        pod["seccompProfile"]["type"].as_str(),
        Some("RuntimeDefault")
    );
    assert!(spec["hostNetwork"].is_badvalue() && spec["volumes"][0]["hostPath"].is_badvalue());
    for c in spec["containers"].as_vec().unwrap() {
        let ctx = &c["securityContext"];
        assert_eq!(ctx["runAsNonRoot"].as_bool(), Some(true));
        assert_eq!(ctx["runAsUser"].as_i64(), Some(65532));
        assert_eq!(ctx["readOnlyRootFilesystem"].as_bool(), Some(true));
        assert_eq!(ctx["allowPrivilegeEscalation"].as_bool(), Some(false));
        assert_eq!(strings(&ctx["capabilities"]["drop"]), ["ALL"]);
        assert!(ctx["capabilities"]["add"].is_badvalue());
        assert!(ctx["privileged"].is_badvalue());
        assert_eq!(
            ctx["seccompProfile"]["type"].as_str(),
            Some("RuntimeDefault")
        );
        assert!(c["ports"][0]["hostPort"].is_badvalue());
        assert_eq!(c["resources"]["limits"]["memory"].as_str(), Some("128Mi"));
        assert!(c["resources"]["requests"]["cpu"].as_str().is_some());
    }
    let labels = &spec["topologySpreadConstraints"];
    let keys: Vec<&str> = labels
        .as_vec()
        .expect("topologySpreadConstraints")
        .iter()
        .filter_map(|t| t["topologyKey"].as_str())
        .collect();
    assert!(keys.contains(&"kubernetes.io/hostname"), "{keys:?}");
    let budget = find(&docs, "PodDisruptionBudget", None);
    assert_eq!(budget["spec"]["minAvailable"].as_i64(), Some(1));
    assert_eq!(
        budget["spec"]["selector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
}

/// Ingress to the webhook port from anywhere (the API server cannot be
/// selected), the metrics port from `monitoring` only; egress to DNS and
/// HTTPS, for the Kubernetes and EKS APIs, and to the Pod Identity agent.
#[test]
fn the_network_policy_admits_the_api_server_and_reaches_the_apis() {
    let docs = documents();
    let policy = find(&docs, "NetworkPolicy", None);
    let deployment = find(&docs, "Deployment", None);
    assert_eq!(
        policy["spec"]["podSelector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(
        strings(&policy["spec"]["policyTypes"]),
        ["Ingress", "Egress"]
    );
    let port_rule = |list: &str, port: i64| -> Yaml {
        policy["spec"][list]
            .as_vec()
            .unwrap()
            .iter()
            .find(|r| {
                r["ports"]
                    .as_vec()
                    .unwrap()
                    .iter()
                    .any(|p| p["port"].as_i64() == Some(port))
            })
            .unwrap_or_else(|| panic!("no {list} rule for {port}"))
            .clone()
    };
    assert!(
        port_rule("ingress", 8443)["from"].is_badvalue(),
        "from anywhere"
    );
    let metrics = port_rule("ingress", 8080);
    assert_eq!(
        metrics["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            .as_str(),
        Some("monitoring")
    );
    assert!(!port_rule("egress", 53)["to"].is_badvalue());
    assert!(
        port_rule("egress", 443)["to"].is_badvalue(),
        "to any address"
    );
    // The Pod Identity agent, on IPv4 and IPv6 clusters.
    let agent_rule = port_rule("egress", 80);
    let agent: Vec<&str> = agent_rule["to"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|to| to["ipBlock"]["cidr"].as_str())
        .collect();
    assert_eq!(agent, ["169.254.170.23/32", "fd00:ec2::23/128"]);
}

/// The two EKS reads and nothing else, each on the resource type the
/// Service Authorization Reference gives it: ListPodIdentityAssociations on
/// the cluster, DescribePodIdentityAssociation on its associations.
#[test]
fn the_iam_policy_grants_the_two_eks_reads_on_one_cluster() {
    let text = fs::read_to_string(dir().join("iam-policy.json")).unwrap();
    let policy: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(policy["Version"], "2012-10-17");
    let statements = policy["Statement"].as_array().unwrap();
    let mut granted = vec![];
    for s in statements {
        assert_eq!(s["Effect"], "Allow");
        assert!(s["NotAction"].is_null() && s["NotResource"].is_null());
        let action = s["Action"].as_str().expect("one action a statement");
        let resource = s["Resource"].as_str().expect("one resource a statement");
        assert!(!resource.contains(":*:") && resource != "*", "{resource}");
        let (_, rest) = resource.split_once(":eks:").unwrap();
        let scope = rest.splitn(3, ':').nth(2).unwrap();
        match action {
            "eks:ListPodIdentityAssociations" => {
                assert!(
                    scope.starts_with("cluster/") && !scope.contains('*'),
                    "{scope}"
                )
            }
            "eks:DescribePodIdentityAssociation" => {
                let cluster = scope.strip_prefix("podidentityassociation/").unwrap();
                assert!(
                    cluster.ends_with("/*") && !cluster.starts_with('*'),
                    "{scope}"
                )
            }
            other => panic!("{other}: not an action the injector needs"),
        }
        granted.push(action);
    }
    granted.sort();
    assert_eq!(
        granted,
        [
            "eks:DescribePodIdentityAssociation",
            "eks:ListPodIdentityAssociations"
        ]
    );
}

/// The README's "Inject into every pod" applies this directory and opts a
/// namespace in with the label the first webhook entry selects; the opt-out
/// it names is the value the entries leave out.
#[test]
fn the_readme_installs_and_opts_in_as_the_manifests_select() {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme
        .split_once("\n## Inject into every pod\n")
        .expect("the README's section")
        .1
        .split("\n## ")
        .next()
        .unwrap();
    assert!(section.contains("kubectl apply -k examples/injector\n"));
    assert!(dir().join(KUSTOMIZATION).is_file());
    assert!(section.contains(&format!(
        "kubectl label namespace payments {OPT_IN}=enabled"
    )));
    assert!(section.contains(&format!("`{OPT_IN}: disabled`")));
    let lines = section.lines().count();
    assert!(
        (25..=45).contains(&lines),
        "{lines} lines: keep it the user's path"
    );
}
