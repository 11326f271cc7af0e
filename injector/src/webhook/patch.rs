//! The plan's changes as RFC 6902 operations on the pod the API server
//! sent, made against the pod's [`shape`] (which lists it has) rather than
//! a copy of it. Each operation is written against the pod as the operations before
//! it left it: `add /spec/initContainers` with the whole list when the list
//! is absent or null (adding under a missing parent fails), else one
//! `add .../-` per item, so that nothing already in a list is replaced.
//! The operations are applied to a working copy as they are made, so the
//! next change sees the list the previous one created.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use k8s_openapi::api::core::v1::{Container, PodSpec};
use serde_json::{Map, Value};

use crate::plan::{Change, List};

/// Why no patch could be made: the pod is not the shape the plan was made
/// for. A bug, never the user's fault; the pod is admitted unpatched.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("the pod has no container {0} to patch")]
    NoContainer(String),
    #[error("{0} is not a list")]
    NotAList(String),
    #[error("cannot serialize a change")]
    Serialize(#[source] serde_json::Error),
    #[error("the patch does not apply to the pod")]
    Apply(#[source] json_patch::PatchError),
}

fn list_key(list: List) -> &'static str {
    match list {
        List::InitContainers => "initContainers",
        List::Containers => "containers",
    }
}

/// The pod's lists as the patch sees them: `spec.initContainers` and
/// `spec.containers`, each container with `env` and `volumeMounts` where
/// the pod has them, every list empty. That is all [`patch_for`] reads: an
/// operation depends only on whether a list is there, so the webhook does
/// not copy the pod (whose size the sender chooses) to make its patch.
/// An absent list and a null one are both `None` in the typed spec and
/// both absent here, which is right for both: RFC 6902's `add` on an
/// existing member replaces it, so adding the whole list replaces a null.
pub fn shape(spec: &PodSpec) -> Value {
    fn container(c: &Container) -> Value {
        let mut object = Map::new();
        if c.env.is_some() {
            object.insert("env".to_owned(), Value::Array(Vec::new()));
        }
        if c.volume_mounts.is_some() {
            object.insert("volumeMounts".to_owned(), Value::Array(Vec::new()));
        }
        Value::Object(object)
    }
    let list = |cs: &[Container]| Value::Array(cs.iter().map(container).collect());
    let mut spec_shape = Map::new();
    spec_shape.insert("containers".to_owned(), list(&spec.containers));
    if let Some(init) = &spec.init_containers {
        spec_shape.insert("initContainers".to_owned(), list(init));
    }
    let mut pod = Map::new();
    pod.insert("spec".to_owned(), Value::Object(spec_shape));
    Value::Object(pod)
}

/// The patch that makes `changes` to `pod` (the whole object, with `spec`).
pub fn patch_for(pod: &Value, changes: &[Change]) -> Result<Patch, PatchError> {
    let mut doc = pod.clone();
    let mut ops = Vec::new();
    for change in changes {
        let (parent, key, items) = match change {
            Change::AddInitContainer(c) => (
                vec!["spec".to_owned()],
                "initContainers",
                vec![serde_json::to_value(c).map_err(PatchError::Serialize)?],
            ),
            Change::AddEnv { list, index, env } => {
                (container_path(*list, *index), "env", to_values(env)?)
            }
            Change::AddMounts {
                list,
                index,
                mounts,
            } => (
                container_path(*list, *index),
                "volumeMounts",
                to_values(mounts)?,
            ),
        };
        let new = add_ops(&doc, &parent, key, items)?;
        json_patch::patch(&mut doc, &new).map_err(PatchError::Apply)?;
        ops.extend(new);
    }
    Ok(Patch(ops))
}

fn to_values<T: serde::Serialize>(items: &[T]) -> Result<Vec<Value>, PatchError> {
    items
        .iter()
        .map(|i| serde_json::to_value(i).map_err(PatchError::Serialize))
        .collect()
}

fn container_path(list: List, index: usize) -> Vec<String> {
    vec![
        "spec".to_owned(),
        list_key(list).to_owned(),
        index.to_string(),
    ]
}

/// The operations that append `items` to the list `key` of the object at
/// `parent` in `doc`.
fn add_ops(
    doc: &Value,
    parent: &[String],
    key: &str,
    items: Vec<Value>,
) -> Result<Vec<PatchOperation>, PatchError> {
    let pointer = PointerBuf::from_tokens(parent.iter().map(String::as_str));
    let shown = pointer.to_string();
    let Some(Value::Object(object)) = doc.pointer(&shown).filter(|_| !parent.is_empty()) else {
        return Err(PatchError::NoContainer(shown));
    };
    let mut path = pointer.clone();
    path.push_back(key);
    let add = |path: PointerBuf, value: Value| PatchOperation::Add(AddOperation { path, value });
    match object.get(key) {
        None | Some(Value::Null) => Ok(vec![add(path, Value::Array(items))]),
        Some(Value::Array(_)) => {
            path.push_back("-");
            Ok(items.into_iter().map(|v| add(path.clone(), v)).collect())
        }
        Some(_) => Err(PatchError::NotAList(path.to_string())),
    }
}

/// Standard base64 with padding, the form Kubernetes gives a `[]byte`
/// field in JSON: the API server reads `patch` so.
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, EnvVar};
    use serde_json::json;

    fn env(name: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some("v".into()),
            value_from: None,
        }
    }

    fn paths(patch: &Patch) -> Vec<String> {
        patch
            .0
            .iter()
            .map(|op| match op {
                PatchOperation::Add(a) => a.path.to_string(),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn base64_is_the_standard_padded_form() {
        // RFC 4648 section 10's test vectors.
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn an_absent_or_null_list_is_added_whole_and_an_existing_one_appended_to() {
        let doctor = Change::AddInitContainer(Box::new(Container {
            name: "irsa-doctor".into(),
            ..Container::default()
        }));
        for pod in [
            json!({"spec": {"containers": []}}),
            json!({"spec": {"initContainers": null}}),
        ] {
            let patch = patch_for(&pod, std::slice::from_ref(&doctor)).unwrap();
            assert_eq!(paths(&patch), ["/spec/initContainers"]);
        }
        let pod = json!({"spec": {"initContainers": [{"name": "a"}]}});
        let patch = patch_for(&pod, std::slice::from_ref(&doctor)).unwrap();
        assert_eq!(paths(&patch), ["/spec/initContainers/-"]);
        // The same from the typed spec's shape, where absent and null
        // both read as None.
        for spec in [
            json!({"containers": []}),
            json!({"containers": [], "initContainers": null}),
        ] {
            let spec: PodSpec = serde_json::from_value(spec).unwrap();
            let patch = patch_for(&shape(&spec), std::slice::from_ref(&doctor)).unwrap();
            assert_eq!(paths(&patch), ["/spec/initContainers"]);
        }
        let spec: PodSpec =
            serde_json::from_value(json!({"containers": [], "initContainers": [{"name": "a"}]}))
                .unwrap();
        let patch = patch_for(&shape(&spec), &[doctor]).unwrap();
        assert_eq!(paths(&patch), ["/spec/initContainers/-"]);
    }

    #[test]
    fn the_shape_keeps_which_lists_a_container_has_and_nothing_else() {
        let spec: PodSpec = serde_json::from_value(json!({"containers": [
            {"name": "a", "image": "i", "args": ["x"], "env": [{"name": "X", "value": "v"}]},
            {"name": "b", "env": null, "volumeMounts": [{"name": "m", "mountPath": "/m"}]}
        ]}))
        .unwrap();
        assert_eq!(
            shape(&spec),
            json!({"spec": {"containers": [{"env": []}, {"volumeMounts": []}]}})
        );
    }

    #[test]
    fn env_goes_to_the_indexed_container_one_op_per_variable() {
        let pod =
            json!({"spec": {"containers": [{"name": "a"}, {"name": "b", "env": [{"name": "X"}]}]}});
        let change = Change::AddEnv {
            list: List::Containers,
            index: 1,
            env: vec![env("A"), env("B")],
        };
        let patch = patch_for(&pod, &[change]).unwrap();
        assert_eq!(
            paths(&patch),
            ["/spec/containers/1/env/-", "/spec/containers/1/env/-"]
        );
        let missing = Change::AddEnv {
            list: List::InitContainers,
            index: 0,
            env: vec![env("A")],
        };
        assert!(matches!(
            patch_for(&pod, &[missing]),
            Err(PatchError::NoContainer(_))
        ));
    }
}
