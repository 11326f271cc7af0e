//! The pure function: a pod (metadata and spec) and what is known of its
//! identity in, the changes that put irsa-doctor beside it out. The changes
//! are values, applied by the same code to a typed [`PodSpec`] and to a raw
//! JSON pod (so that fields this crate's Kubernetes version does not know
//! survive `inject`), and later turned into the webhook's JSON patch.
//!
//! Invariant: applying the plan of a pod to that pod, then planning again,
//! gives no change (idempotence; the EKS webhook and ours may each run
//! twice, in either order: `reinvocationPolicy: IfNeeded`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec, VolumeMount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use crate::identity::Identity;
use crate::template::{Template, CONTAINER_NAME};

/// The pod annotation that chooses the mode for one pod.
pub const MODE_ANNOTATION: &str = "irsa-doctor.io/mode";
/// The EKS webhook's annotation: containers it gives no credentials to.
pub const SKIP_CONTAINERS_ANNOTATION: &str = "eks.amazonaws.com/skip-containers";

/// The only `AWS_*` variables copied to the doctor: the ones the EKS pod
/// identity webhook writes (its fixtures, tests/fixtures/eks-webhook, write
/// exactly these). Anything else is either a credential (static keys,
/// `AWS_SECURITY_TOKEN`, `AWS_BEARER_TOKEN_BEDROCK`...) that the doctor
/// must never hold, or a pointer to a file the doctor has no mount for
/// (`AWS_CA_BUNDLE`, `AWS_CONFIG_FILE`, `AWS_PROFILE`), which would make it
/// fail and block the app for a reason that is not the app's.
const COPIED: [&str; 7] = [
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];

/// The variables that point at a projected token; their folder is the
/// mount the doctor needs.
const TOKEN_FILES: [&str; 2] = [
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];

/// The pairs that make an identity: IRSA, and EKS Pod Identity.
const IRSA_PAIR: [&str; 2] = ["AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"];
const POD_IDENTITY_PAIR: [&str; 2] = [
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Mode {
    /// A native sidecar running `serve` (an init container with
    /// `restartPolicy: Always`).
    #[default]
    Sidecar,
    /// An init container running `check`.
    Init,
}

impl Mode {
    fn from_annotation(value: &str) -> Option<Mode> {
        match value {
            "sidecar" => Some(Mode::Sidecar),
            "init" => Some(Mode::Init),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sidecar => "sidecar",
            Mode::Init => "init",
        }
    }
}

/// The injector's settings.
#[derive(Debug, Clone)]
pub struct Options {
    pub template: Template,
    /// Replaces the template's image when given.
    pub image: Option<String>,
    /// The mode of pods without the mode annotation.
    pub mode: Mode,
}

/// Which list a container is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    InitContainers,
    Containers,
}

impl List {
    fn key(self) -> &'static str {
        match self {
            List::InitContainers => "initContainers",
            List::Containers => "containers",
        }
    }
}

/// One change to a pod spec.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Append irsa-doctor to `initContainers`. Last, not first: a mesh's
    /// init containers and sidecars (istio-init, istio-proxy) must run
    /// before anything that calls STS through the mesh.
    AddInitContainer(Box<Container>),
    /// Append variables to the container at `index` of `list`.
    AddEnv {
        list: List,
        index: usize,
        env: Vec<EnvVar>,
    },
    /// Append volume mounts to the container at `index` of `list`.
    AddMounts {
        list: List,
        index: usize,
        mounts: Vec<VolumeMount>,
    },
}

/// What the plan does, for the report and (later) the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// irsa-doctor added, in this mode.
    Injected(Mode),
    /// irsa-doctor was there; it gained the AWS variables or mounts it lacked.
    Completed,
    /// irsa-doctor was there with everything; nothing to do.
    AlreadyPresent,
    /// No identity known and none visible in the containers.
    NoIdentity,
    /// A Windows pod: the irsa-doctor image is Linux only.
    Windows,
    /// A `hostNetwork` pod in sidecar mode: the sidecar's port would be
    /// opened on the node, and two such pods on one node would clash.
    /// `irsa-doctor.io/mode: init` (no port) injects it.
    HostNetwork,
    /// An app container already runs `irsa-doctor exec -- APP` (the exec
    /// form, examples/k8s/exec-deployment.yaml): the doctor is there.
    ExecForm,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub outcome: Outcome,
    pub changes: Vec<Change>,
    /// Things the operator should know, such as an unknown mode annotation.
    pub warnings: Vec<String>,
}

/// The pod spec with irsa-doctor injected, and the plan that made it.
pub fn inject(
    meta: &ObjectMeta,
    spec: &PodSpec,
    identity: &Identity,
    options: &Options,
) -> (PodSpec, Plan) {
    let plan = plan(meta, spec, identity, options);
    let mut patched = spec.clone();
    for change in &plan.changes {
        apply(&mut patched, change);
    }
    (patched, plan)
}

/// What to change in `spec` so that it runs irsa-doctor with the app's AWS
/// variables and token mounts and the expected identity.
pub fn plan(meta: &ObjectMeta, spec: &PodSpec, identity: &Identity, options: &Options) -> Plan {
    let annotations = meta.annotations.clone().unwrap_or_default();
    let skipped = skip_containers(&annotations);
    // The user's choice: skip-containers naming irsa-doctor means no AWS
    // variables for it, from EKS or from us.
    let source = source_container(spec, &skipped).filter(|_| !names(&skipped, CONTAINER_NAME));
    let nothing = |outcome| Plan {
        outcome,
        changes: Vec::new(),
        warnings: Vec::new(),
    };
    if is_windows(spec) {
        return nothing(Outcome::Windows);
    }
    if spec.containers.iter().any(runs_exec) {
        return nothing(Outcome::ExecForm);
    }
    if let Some((list, index, doctor)) = find_doctor(spec) {
        return complete(spec, list, index, doctor, source);
    }
    let mut warnings = Vec::new();
    let identity = &real_identity(identity, source, &mut warnings);
    // Without an identity from outside and without variables to copy (none
    // shown, or skip-containers names the doctor), the doctor could only
    // fail, and block the app with it.
    if !identity.is_known() && source.is_none() {
        return nothing(Outcome::NoIdentity);
    }
    let mode = match annotations.get(MODE_ANNOTATION) {
        None => options.mode,
        Some(value) => Mode::from_annotation(value).unwrap_or_else(|| {
            warnings.push(format!(
                "{MODE_ANNOTATION}={value:?} is neither sidecar nor init; using {}",
                options.mode.as_str()
            ));
            options.mode
        }),
    };
    if mode == Mode::Sidecar && spec.host_network == Some(true) {
        return Plan {
            outcome: Outcome::HostNetwork,
            changes: Vec::new(),
            warnings,
        };
    }
    let doctor = new_doctor(spec, identity, options, mode, source);
    Plan {
        outcome: Outcome::Injected(mode),
        changes: vec![Change::AddInitContainer(Box::new(doctor))],
        warnings,
    }
}

/// The identity the pod will really act as. The EKS webhook gives a pod
/// only Pod Identity's variables when its ServiceAccount has both an
/// association and the IRSA annotation (pod-identity-facts.md §1), so a
/// source with Pod Identity's variables and not IRSA's runs as the
/// association's role, not the annotation's. With both pairs (IRSA set by
/// hand), web identity wins in every SDK (irsa-facts.md §6): the
/// annotation stands.
fn real_identity(
    identity: &Identity,
    source: Option<&Container>,
    warnings: &mut Vec<String>,
) -> Identity {
    let pod_identity_only =
        source.is_some_and(|c| has_pair(c, &POD_IDENTITY_PAIR) && !has_pair(c, &IRSA_PAIR));
    if matches!(identity, Identity::ServiceAccount { .. }) && pod_identity_only {
        warnings.push(
            "the ServiceAccount's eks.amazonaws.com/role-arn is unused: the pod has EKS Pod \
             Identity's variables, whose association wins; expecting the role they give"
                .into(),
        );
        return Identity::Unknown;
    }
    identity.clone()
}

/// An irsa-doctor that is already there gets only the AWS variables and
/// mounts it lacks; everything else about it is the user's.
fn complete(
    spec: &PodSpec,
    list: List,
    index: usize,
    doctor: &Container,
    source: Option<&Container>,
) -> Plan {
    let (env, mounts) = source.map_or_else(Default::default, |src| missing_aws(src, doctor, spec));
    let mut changes = Vec::new();
    if !env.is_empty() {
        changes.push(Change::AddEnv { list, index, env });
    }
    if !mounts.is_empty() {
        changes.push(Change::AddMounts {
            list,
            index,
            mounts,
        });
    }
    let outcome = if changes.is_empty() {
        Outcome::AlreadyPresent
    } else {
        Outcome::Completed
    };
    Plan {
        outcome,
        changes,
        warnings: Vec::new(),
    }
}

/// The template's container for `mode`, with the image, the identity's
/// variables, and the app's AWS variables and token mounts.
fn new_doctor(
    spec: &PodSpec,
    identity: &Identity,
    options: &Options,
    mode: Mode,
    source: Option<&Container>,
) -> Container {
    let mut doctor = match mode {
        Mode::Sidecar => options.template.sidecar.clone(),
        Mode::Init => options.template.init.clone(),
    };
    if let Some(image) = &options.image {
        doctor.image = Some(image.clone());
    }
    let identity_env = identity.env();
    let mut env = doctor.env.take().unwrap_or_default();
    env.retain(|v| !identity_env.iter().any(|i| i.name == v.name));
    env.extend(identity_env);
    doctor.env = Some(env);
    if let Some(src) = source {
        let (aws, mounts) = missing_aws(src, &doctor, spec);
        doctor.env.get_or_insert_with(Vec::new).extend(aws);
        if !mounts.is_empty() {
            doctor
                .volume_mounts
                .get_or_insert_with(Vec::new)
                .extend(mounts);
        }
    }
    doctor
}

/// A pod bound to Windows nodes, by `spec.os` or by the node selector the
/// EKS webhook itself looks at (both the current and the beta label).
fn is_windows(spec: &PodSpec) -> bool {
    let by_os = spec.os.as_ref().is_some_and(|os| os.name == "windows");
    let by_selector = spec.node_selector.as_ref().is_some_and(|s| {
        ["kubernetes.io/os", "beta.kubernetes.io/os"]
            .iter()
            .any(|k| s.get(*k).is_some_and(|v| v == "windows"))
    });
    by_os || by_selector
}

/// Whether the container's command line is `.../irsa-doctor exec ...`.
fn runs_exec(c: &Container) -> bool {
    let line: Vec<&str> = c
        .command
        .iter()
        .flatten()
        .chain(c.args.iter().flatten())
        .map(String::as_str)
        .collect();
    line.windows(2)
        .any(|w| (w[0] == "irsa-doctor" || w[0].ends_with("/irsa-doctor")) && w[1] == "exec")
}

/// The names in `eks.amazonaws.com/skip-containers`, comma-separated as the
/// EKS webhook reads them.
fn skip_containers(annotations: &BTreeMap<String, String>) -> Vec<String> {
    annotations
        .get(SKIP_CONTAINERS_ANNOTATION)
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn names(skipped: &[String], name: &str) -> bool {
    skipped.iter().any(|s| s == name)
}

fn find_doctor(spec: &PodSpec) -> Option<(List, usize, &Container)> {
    let lists = [
        (List::InitContainers, spec.init_containers.as_deref()),
        (List::Containers, Some(spec.containers.as_slice())),
    ];
    lists.into_iter().find_map(|(list, containers)| {
        let (index, c) = containers?
            .iter()
            .enumerate()
            .find(|(_, c)| c.name == CONTAINER_NAME)?;
        Some((list, index, c))
    })
}

/// The first app container that shows an identity (the pair of IRSA or of
/// Pod Identity variables, as the EKS webhook writes them): the app's own
/// containers first, then its init containers (the EKS webhook gives both
/// the same), never one that skip-containers names. A lone `AWS_REGION`
/// or a pair of static keys is no identity the doctor can check.
fn source_container<'a>(spec: &'a PodSpec, skipped: &[String]) -> Option<&'a Container> {
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .filter(|c| c.name != CONTAINER_NAME && !names(skipped, &c.name))
        .find(|c| has_pair(c, &IRSA_PAIR) || has_pair(c, &POD_IDENTITY_PAIR))
}

/// Whether both variables of `pair` are set to plain values in `c`, as
/// Kubernetes resolves a repeated name (the last one wins).
fn has_pair(c: &Container, pair: &[&str; 2]) -> bool {
    let effective = effective_env(c);
    pair.iter()
        .all(|name| effective.iter().any(|v| v.name == *name && copyable(v)))
}

/// The container's variables with each name once, the last occurrence
/// (the one Kubernetes uses), in the order of those occurrences.
fn effective_env(c: &Container) -> Vec<&EnvVar> {
    let env: Vec<&EnvVar> = c.env.iter().flatten().collect();
    env.iter()
        .enumerate()
        .filter(|(i, v)| !env[i + 1..].iter().any(|later| later.name == v.name))
        .map(|(_, v)| *v)
        .collect()
}

/// One of the variables the EKS webhook writes ([`COPIED`]), as a plain
/// value.
fn copyable(var: &EnvVar) -> bool {
    COPIED.contains(&var.name.as_str()) && var.value.is_some() && var.value_from.is_none()
}

/// A volume that carries a projected ServiceAccount token for AWS: every
/// source a token with an audience. The API token volume
/// (kube-api-access-*) has no audience and a ConfigMap, so it is not one.
fn is_token_volume(spec: &PodSpec, name: &str) -> bool {
    let Some(volume) = spec.volumes.iter().flatten().find(|v| v.name == name) else {
        return false;
    };
    let Some(sources) = volume.projected.as_ref().and_then(|p| p.sources.as_ref()) else {
        return false;
    };
    !sources.is_empty()
        && sources.iter().all(|s| {
            s.service_account_token
                .as_ref()
                .is_some_and(|t| t.audience.is_some())
                && s.config_map.is_none()
                && s.secret.is_none()
                && s.downward_api.is_none()
        })
}

/// The source's AWS variables and token mounts that `doctor` lacks, by name
/// for variables and by name or path for mounts, in the source's order.
/// A mount is copied only if it is a token volume mounted where one of the
/// source's `*_TOKEN_FILE` variables points: a token for another audience
/// (Vault, SPIFFE) is not the doctor's to read.
fn missing_aws(
    source: &Container,
    doctor: &Container,
    spec: &PodSpec,
) -> (Vec<EnvVar>, Vec<VolumeMount>) {
    let has_var = |name: &str| doctor.env.iter().flatten().any(|v| v.name == name);
    let source_env: Vec<&EnvVar> = effective_env(source)
        .into_iter()
        .filter(|v| copyable(v))
        .collect();
    let env = source_env
        .iter()
        .filter(|v| !has_var(&v.name))
        .map(|v| (*v).clone())
        .collect();
    let token_files: Vec<&str> = source_env
        .iter()
        .filter(|v| TOKEN_FILES.contains(&v.name.as_str()))
        .filter_map(|v| v.value.as_deref())
        .collect();
    let has_mount = |m: &VolumeMount| {
        doctor
            .volume_mounts
            .iter()
            .flatten()
            .any(|d| d.name == m.name || d.mount_path == m.mount_path)
    };
    let mounts = source
        .volume_mounts
        .iter()
        .flatten()
        .filter(|m| {
            is_token_volume(spec, &m.name)
                && token_files.iter().any(|f| holds(&m.mount_path, f))
                && !has_mount(m)
        })
        .cloned()
        .collect();
    (env, mounts)
}

/// Whether a mount at `mount_path` is the folder of `file` (or, with a
/// `subPath`, the file itself).
fn holds(mount_path: &str, file: &str) -> bool {
    let mount = mount_path.trim_end_matches('/');
    let folder = file.rsplit_once('/').map_or("", |(folder, _)| folder);
    mount == file || mount == folder.trim_end_matches('/')
}

/// Applies one change to a typed pod spec.
pub fn apply(spec: &mut PodSpec, change: &Change) {
    fn container(spec: &mut PodSpec, list: List, index: usize) -> Option<&mut Container> {
        match list {
            List::InitContainers => spec.init_containers.as_mut()?.get_mut(index),
            List::Containers => spec.containers.get_mut(index),
        }
    }
    match change {
        Change::AddInitContainer(c) => spec
            .init_containers
            .get_or_insert_with(Vec::new)
            .push((**c).clone()),
        Change::AddEnv { list, index, env } => {
            if let Some(c) = container(spec, *list, *index) {
                c.env
                    .get_or_insert_with(Vec::new)
                    .extend(env.iter().cloned());
            }
        }
        Change::AddMounts {
            list,
            index,
            mounts,
        } => {
            if let Some(c) = container(spec, *list, *index) {
                c.volume_mounts
                    .get_or_insert_with(Vec::new)
                    .extend(mounts.iter().cloned());
            }
        }
    }
}

/// Applies one change to a raw JSON pod spec, keeping every field it does
/// not touch as it was, known to k8s-openapi or not. Returns false when the
/// spec does not have the shape the plan was made for (a bug, or a spec
/// that changed between planning and applying).
pub fn apply_to_json(spec: &mut Value, change: &Change) -> bool {
    fn push_all(target: Option<&mut Value>, key: &str, items: Vec<Value>) -> bool {
        let Some(Value::Object(container)) = target else {
            return false;
        };
        // `initContainers: null` (Helm renders it), `env: null` and
        // `volumeMounts: null` mean an empty list to Kubernetes.
        let slot = container
            .entry(key)
            .or_insert_with(|| Value::Array(Vec::new()));
        if slot.is_null() {
            *slot = Value::Array(Vec::new());
        }
        match slot {
            Value::Array(existing) => {
                existing.extend(items);
                true
            }
            _ => false,
        }
    }
    let to_values = |items: Vec<Result<Value, serde_json::Error>>| {
        items.into_iter().collect::<Result<Vec<_>, _>>().ok()
    };
    match change {
        Change::AddInitContainer(c) => {
            let Some(value) = to_values(vec![serde_json::to_value(c)]) else {
                return false;
            };
            push_all(Some(spec), "initContainers", value)
        }
        Change::AddEnv { list, index, env } => {
            let Some(values) = to_values(env.iter().map(serde_json::to_value).collect()) else {
                return false;
            };
            push_all(
                spec.get_mut(list.key()).and_then(|l| l.get_mut(*index)),
                "env",
                values,
            )
        }
        Change::AddMounts {
            list,
            index,
            mounts,
        } => {
            let Some(values) = to_values(mounts.iter().map(serde_json::to_value).collect()) else {
                return false;
            };
            push_all(
                spec.get_mut(list.key()).and_then(|l| l.get_mut(*index)),
                "volumeMounts",
                values,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(value: serde_json::Value) -> Container {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_exec_form_is_recognised_by_its_command_line_only() {
        let exec = container(
            serde_json::json!({"name": "w", "command": ["/irsa-doctor/bin/irsa-doctor", "exec", "--", "/app"]}),
        );
        assert!(runs_exec(&exec));
        let in_args = container(
            serde_json::json!({"name": "w", "args": ["irsa-doctor", "exec", "--", "/app"]}),
        );
        assert!(runs_exec(&in_args));
        let other = container(
            serde_json::json!({"name": "w", "command": ["/bin/not-irsa-doctor", "exec"]}),
        );
        assert!(!runs_exec(&other));
        let check = container(serde_json::json!({"name": "w", "args": ["check"]}));
        assert!(!runs_exec(&check));
    }

    #[test]
    fn skip_containers_is_read_as_the_eks_webhook_reads_it() {
        let annotations = BTreeMap::from([(
            SKIP_CONTAINERS_ANNOTATION.to_owned(),
            " a, b ,,c".to_owned(),
        )]);
        assert_eq!(skip_containers(&annotations), ["a", "b", "c"]);
        assert!(skip_containers(&BTreeMap::new()).is_empty());
    }

    #[test]
    fn windows_is_read_from_spec_os_or_either_node_selector_label() {
        let spec = |v: serde_json::Value| -> PodSpec { serde_json::from_value(v).unwrap() };
        assert!(is_windows(&spec(
            serde_json::json!({"containers": [], "os": {"name": "windows"}})
        )));
        assert!(is_windows(&spec(
            serde_json::json!({"containers": [], "nodeSelector": {"beta.kubernetes.io/os": "windows"}})
        )));
        assert!(!is_windows(&spec(
            serde_json::json!({"containers": [], "nodeSelector": {"kubernetes.io/os": "linux"}})
        )));
    }
}
