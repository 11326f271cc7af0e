//! The offline `inject`: a stream of manifests (YAML documents, or JSON
//! values one after another) in, the same stream out, with the pod template
//! of every Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job and
//! CronJob patched, `List` items included. Every other document is passed
//! through as it was parsed. A ServiceAccount in the stream with
//! `eks.amazonaws.com/role-arn` names the expected role of the workloads
//! that run as it, which is how a GitOps repository usually holds them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use crate::identity::{Identity, EXPECTED_ROLE_VAR, ROLE_ARN_ANNOTATION};
use crate::plan::{apply_to_json, plan, Change, Options, Outcome, Plan};
use crate::select::{select, Selection, Subject};

/// The most `inject` reads: far above any real manifest set, low enough
/// that a runaway pipe cannot take the machine's memory.
pub const MAX_INPUT_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("the input is larger than {MAX_INPUT_BYTES} bytes")]
    TooLarge,
    #[error("the input is not UTF-8")]
    NotUtf8,
    #[error("the input is not valid YAML")]
    Yaml(#[source] serde_saphyr::Error),
    #[error("the input is not a valid JSON stream")]
    Json(#[source] serde_json::Error),
    #[error("document {index} ({what}): its pod template is not a valid pod")]
    Template {
        index: usize,
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("document {index} ({what}): the patch does not fit its pod template")]
    Shape { index: usize, what: String },
    #[error("a patched document could not be written as YAML")]
    WriteYaml(#[source] serde_saphyr::SerializeError),
    #[error("a patched document could not be written as JSON")]
    WriteJson(#[source] serde_json::Error),
}

/// What happened to one workload, for the line `inject` prints on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `kind/name`, with ` -n namespace` when the manifest names one.
    pub workload: String,
    pub result: String,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StreamReport {
    pub entries: Vec<Entry>,
}

/// Reads `input` (checked against [`MAX_INPUT_BYTES`] by the caller and
/// again here), patches it, and returns the text to print.
pub fn inject_stream(
    input: &[u8],
    options: &Options,
) -> Result<(String, StreamReport), StreamError> {
    if input.len() > MAX_INPUT_BYTES {
        return Err(StreamError::TooLarge);
    }
    let text = std::str::from_utf8(input).map_err(|_| StreamError::NotUtf8)?;
    let json = text.trim_start().starts_with(['{', '[']);
    let mut documents = if json {
        read_json(text)?
    } else {
        read_yaml(text)?
    };
    let roles = service_account_roles(&documents);
    let mut report = StreamReport::default();
    for (index, doc) in documents.iter_mut().enumerate() {
        patch_document(index + 1, doc, &roles, options, &mut report)?;
    }
    let out = if json {
        write_json(&documents)?
    } else {
        write_yaml(&documents)?
    };
    Ok((out, report))
}

fn read_json(text: &str) -> Result<Vec<Value>, StreamError> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .map_err(StreamError::Json)
}

fn read_yaml(text: &str) -> Result<Vec<Value>, StreamError> {
    // The parser's default budget suits a configuration file; a rendered
    // cluster (`kustomize build`, `helm template`) can hold thousands of
    // documents and deep CRD schemas. The input is already bounded to
    // 64 MiB, so these bound work, not size; the alias limits, which stop
    // an expansion bomb, stay at their defaults. Octal as kubectl's YAML
    // 1.1 reader has it: `defaultMode: 0644` is 420, not 644.
    let options = serde_saphyr::options! {
        legacy_octal_numbers: true,
        budget: serde_saphyr::budget! {
            max_documents: 100_000,
            max_events: 32_000_000,
            max_nodes: 16_000_000,
            max_depth: 256,
        },
    };
    let docs: Vec<Value> =
        serde_saphyr::from_multiple_with_options(text, options).map_err(StreamError::Yaml)?;
    // An empty document (a trailing `---`) is nothing to kubectl either.
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

fn write_json(docs: &[Value]) -> Result<String, StreamError> {
    let mut out = String::new();
    for doc in docs {
        out.push_str(&serde_json::to_string_pretty(doc).map_err(StreamError::WriteJson)?);
        out.push('\n');
    }
    Ok(out)
}

fn write_yaml(docs: &[Value]) -> Result<String, StreamError> {
    let mut out = String::new();
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&serde_saphyr::to_string(doc).map_err(StreamError::WriteYaml)?);
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

/// (namespace, name) → role, from every ServiceAccount in the stream, List
/// items included. A manifest without a namespace is keyed by "".
fn service_account_roles(docs: &[Value]) -> BTreeMap<(String, String), String> {
    let mut roles = BTreeMap::new();
    let mut stack: Vec<&Value> = docs.iter().collect();
    while let Some(doc) = stack.pop() {
        if let Some(items) = list_items(doc) {
            stack.extend(items);
            continue;
        }
        if str_at(doc, &["kind"]) != Some("ServiceAccount") {
            continue;
        }
        let role = str_at(doc, &["metadata", "annotations", ROLE_ARN_ANNOTATION]);
        let name = str_at(doc, &["metadata", "name"]);
        if let (Some(role), Some(name)) = (role, name) {
            let ns = str_at(doc, &["metadata", "namespace"]).unwrap_or("");
            roles.insert((ns.to_owned(), name.to_owned()), role.to_owned());
        }
    }
    roles
}

fn list_items(doc: &Value) -> Option<&Vec<Value>> {
    let kind = str_at(doc, &["kind"])?;
    (kind == "List" || kind.ends_with("List")).then(|| doc.get("items")?.as_array())?
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// Where the pod template sits in a workload of this kind and API group;
/// `None` for anything else, which passes through.
fn template_path(api_version: &str, kind: &str) -> Option<&'static [&'static str]> {
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    match (group, kind) {
        ("", "Pod") => Some(&[]),
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet") | ("batch", "Job") => {
            Some(&["spec", "template"])
        }
        ("batch", "CronJob") => Some(&["spec", "jobTemplate", "spec", "template"]),
        _ => None,
    }
}

fn patch_document(
    index: usize,
    doc: &mut Value,
    roles: &BTreeMap<(String, String), String>,
    options: &Options,
    report: &mut StreamReport,
) -> Result<(), StreamError> {
    if list_items(doc).is_some() {
        if let Some(Value::Array(items)) = doc.get_mut("items") {
            for item in items {
                patch_document(index, item, roles, options, report)?;
            }
        }
        return Ok(());
    }
    let kind = str_at(doc, &["kind"]).unwrap_or_default().to_owned();
    let api_version = str_at(doc, &["apiVersion"]).unwrap_or_default();
    let Some(path) = template_path(api_version, &kind) else {
        return Ok(());
    };
    let namespace = str_at(doc, &["metadata", "namespace"]).map(str::to_owned);
    let name = str_at(doc, &["metadata", "name"]).unwrap_or("?");
    let what = match &namespace {
        Some(ns) => format!("{}/{name} -n {ns}", kind.to_lowercase()),
        None => format!("{}/{name}", kind.to_lowercase()),
    };
    let Some(template) = path.iter().try_fold(&mut *doc, |v, k| v.get_mut(*k)) else {
        report.entries.push(Entry {
            workload: what,
            result: "skipped: no pod template".into(),
        });
        return Ok(());
    };
    let (meta, spec) = typed_template(template, index, &what)?;
    let subject = Subject {
        namespace: namespace.as_deref(),
        namespace_labels: None,
        pod_labels: meta.labels.as_ref(),
        pod_annotations: meta.annotations.as_ref(),
    };
    let result = match select(subject, None, true) {
        Selection::Selected => {
            let identity = identity_of(&spec, namespace.as_deref(), roles);
            let plan = plan(&meta, &spec, &identity, options);
            let Some(spec_json) = template.get_mut("spec") else {
                return Err(StreamError::Shape { index, what });
            };
            for change in &plan.changes {
                if !apply_to_json(spec_json, change) {
                    return Err(StreamError::Shape { index, what });
                }
            }
            describe(&plan)
        }
        Selection::OptedOut => "skipped: opted out (irsa-doctor.io/inject=disabled)".into(),
        Selection::ProtectedNamespace => "skipped: never injected in this namespace".into(),
        Selection::NotOptedIn => "skipped: not opted in".into(),
    };
    report.entries.push(Entry {
        workload: what,
        result,
    });
    Ok(())
}

/// The template's metadata and spec as the plan reads them, typed.
fn typed_template(
    template: &Value,
    index: usize,
    what: &str,
) -> Result<(ObjectMeta, PodSpec), StreamError> {
    let invalid = |source| StreamError::Template {
        index,
        what: what.to_owned(),
        source,
    };
    let meta: ObjectMeta = match template.get("metadata") {
        Some(m) => serde_json::from_value(m.clone()).map_err(invalid)?,
        None => ObjectMeta::default(),
    };
    let mut spec_value = template.get("spec").cloned().unwrap_or(Value::Null);
    // On the copy for the typed parse only: the output keeps the user's.
    quantities_as_strings(&mut spec_value);
    let spec: PodSpec = serde_json::from_value(spec_value).map_err(invalid)?;
    Ok((meta, spec))
}

fn identity_of(
    spec: &PodSpec,
    namespace: Option<&str>,
    roles: &BTreeMap<(String, String), String>,
) -> Identity {
    // `serviceAccount` is the deprecated spelling Kubernetes still honours.
    let sa = spec
        .service_account_name
        .as_deref()
        .or(spec.service_account.as_deref())
        .unwrap_or("default");
    roles
        .get(&(namespace.unwrap_or("").to_owned(), sa.to_owned()))
        .map_or(Identity::Unknown, |role| Identity::ServiceAccount {
            role_arn: role.clone(),
        })
}

/// Kubernetes reads a quantity written as a number (`cpu: 1`,
/// `nvidia.com/gpu: 1`, `cpu: 0.5`); k8s-openapi's `Quantity` takes only a
/// string. Turns the numbers into strings where a pod spec holds
/// quantities: every container's resources, the pod's resources and
/// overhead, and emptyDir size limits.
fn quantities_as_strings(spec: &mut Value) {
    fn stringify_values(map: Option<&mut Value>) {
        if let Some(Value::Object(map)) = map {
            for value in map.values_mut() {
                if let Value::Number(n) = value {
                    *value = Value::String(n.to_string());
                }
            }
        }
    }
    fn resources(resources: Option<&mut Value>) {
        if let Some(r) = resources {
            stringify_values(r.get_mut("limits"));
            stringify_values(r.get_mut("requests"));
        }
    }
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        if let Some(Value::Array(containers)) = spec.get_mut(list) {
            for c in containers {
                resources(c.get_mut("resources"));
            }
        }
    }
    resources(spec.get_mut("resources"));
    stringify_values(spec.get_mut("overhead"));
    if let Some(Value::Array(volumes)) = spec.get_mut("volumes") {
        for v in volumes {
            if let Some(Value::Object(empty_dir)) = v.get_mut("emptyDir") {
                if let Some(limit @ Value::Number(_)) = empty_dir.get_mut("sizeLimit") {
                    *limit = Value::String(limit.to_string());
                }
            }
        }
    }
}

/// The role the added doctor expects, as the plan set it (the plan may
/// drop the annotation's role when the pod will not act as it).
fn planned_role(plan: &Plan) -> Option<&str> {
    plan.changes.iter().find_map(|change| match change {
        Change::AddInitContainer(c) => c
            .env
            .iter()
            .flatten()
            .find(|v| v.name == EXPECTED_ROLE_VAR)?
            .value
            .as_deref(),
        _ => None,
    })
}

fn describe(plan: &Plan) -> String {
    let mut text = match plan.outcome {
        Outcome::Injected(mode) => match planned_role(plan) {
            Some(role) => format!("injected ({}), expecting {role}", mode.as_str()),
            None => format!("injected ({}), expecting the role its AWS variables name", mode.as_str()),
        },
        Outcome::Completed => "irsa-doctor already present; gave it the AWS variables or mounts it lacked".into(),
        Outcome::AlreadyPresent => "irsa-doctor already present".into(),
        Outcome::ExecForm => "irsa-doctor already present (exec form)".into(),
        Outcome::Windows => "skipped: a Windows pod (the irsa-doctor image is Linux only)".into(),
        Outcome::HostNetwork => "skipped: a hostNetwork pod (the sidecar's port would open on the node; annotate it irsa-doctor.io/mode: init to inject the check, which opens none)".into(),
        Outcome::NoIdentity => "skipped: no AWS identity known (put its ServiceAccount, with eks.amazonaws.com/role-arn, in the stream)".into(),
    };
    for w in &plan.warnings {
        text.push_str("; warning: ");
        text.push_str(w);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_core_workload_kinds_have_a_pod_template() {
        assert_eq!(template_path("v1", "Pod"), Some(&[][..]));
        for kind in ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"] {
            assert_eq!(
                template_path("apps/v1", kind),
                Some(&["spec", "template"][..]),
                "{kind}"
            );
        }
        assert_eq!(
            template_path("batch/v1", "Job"),
            Some(&["spec", "template"][..])
        );
        assert_eq!(
            template_path("batch/v1", "CronJob"),
            Some(&["spec", "jobTemplate", "spec", "template"][..])
        );
        // A custom resource that reuses a core kind's name is not ours to patch.
        assert_eq!(template_path("example.com/v1", "Deployment"), None);
        assert_eq!(template_path("v1", "ConfigMap"), None);
        assert_eq!(template_path("apps/v1", "Pod"), None);
    }

    #[test]
    fn a_service_account_is_keyed_by_namespace_and_name() {
        let docs: Vec<Value> = vec![
            serde_json::json!({"kind": "ServiceAccount", "metadata": {"name": "a", "namespace": "x", "annotations": {ROLE_ARN_ANNOTATION: "arn:1"}}}),
            serde_json::json!({"kind": "ServiceAccountList", "items": [{"kind": "ServiceAccount", "metadata": {"name": "b", "annotations": {ROLE_ARN_ANNOTATION: "arn:2"}}}]}),
            serde_json::json!({"kind": "ServiceAccount", "metadata": {"name": "c"}}),
        ];
        let roles = service_account_roles(&docs);
        assert_eq!(roles.len(), 2);
        assert_eq!(roles[&("x".to_owned(), "a".to_owned())], "arn:1");
        assert_eq!(roles[&(String::new(), "b".to_owned())], "arn:2");
    }
}
