//! Which pods get the doctor at all, before identity is asked: the
//! `irsa-doctor.io/inject` label on the namespace or the pod opts in, the
//! same label or annotation set to `disabled` on the pod opts out, and
//! kube-system and the injector's own namespace are never touched (a broken
//! injector must not be able to wedge the pods that would repair it).

use std::collections::BTreeMap;

pub const INJECT_KEY: &str = "irsa-doctor.io/inject";

/// Why a pod is or is not a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    Selected,
    /// `irsa-doctor.io/inject=disabled` on the pod.
    OptedOut,
    /// Neither the namespace nor the pod opted in.
    NotOptedIn,
    /// kube-system or the injector's own namespace.
    ProtectedNamespace,
}

/// What select() looks at; labels and annotations as Kubernetes keeps them.
#[derive(Debug, Default, Clone, Copy)]
pub struct Subject<'a> {
    pub namespace: Option<&'a str>,
    pub namespace_labels: Option<&'a BTreeMap<String, String>>,
    pub pod_labels: Option<&'a BTreeMap<String, String>>,
    pub pod_annotations: Option<&'a BTreeMap<String, String>>,
}

/// `opted_in_by_caller`: the offline `inject` command is itself the opt-in,
/// as with `linkerd inject`. The webhook passes true too: its configuration's
/// namespace and object selectors send it only the pods of a namespace or
/// with a label that opted in, and it cannot read the namespace's labels.
pub fn select(
    subject: Subject<'_>,
    own_namespace: Option<&str>,
    opted_in_by_caller: bool,
) -> Selection {
    if let Some(ns) = subject.namespace {
        if ns == "kube-system" || Some(ns) == own_namespace {
            return Selection::ProtectedNamespace;
        }
    }
    let says = |map: Option<&BTreeMap<String, String>>, value: &str| {
        map.and_then(|m| m.get(INJECT_KEY))
            .is_some_and(|v| v == value)
    };
    if says(subject.pod_labels, "disabled") || says(subject.pod_annotations, "disabled") {
        return Selection::OptedOut;
    }
    if opted_in_by_caller
        || says(subject.namespace_labels, "enabled")
        || says(subject.pod_labels, "enabled")
    {
        return Selection::Selected;
    }
    Selection::NotOptedIn
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(k: &str, v: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(k.to_owned(), v.to_owned())])
    }

    #[test]
    fn the_namespace_or_the_pod_label_opts_in() {
        let enabled = map(INJECT_KEY, "enabled");
        let ns = Subject {
            namespace: Some("payments"),
            namespace_labels: Some(&enabled),
            ..Subject::default()
        };
        assert_eq!(select(ns, None, false), Selection::Selected);
        let pod = Subject {
            namespace: Some("payments"),
            pod_labels: Some(&enabled),
            ..Subject::default()
        };
        assert_eq!(select(pod, None, false), Selection::Selected);
        let neither = Subject {
            namespace: Some("payments"),
            ..Subject::default()
        };
        assert_eq!(select(neither, None, false), Selection::NotOptedIn);
        assert_eq!(select(neither, None, true), Selection::Selected);
    }

    #[test]
    fn the_pod_label_or_annotation_opts_out_even_in_an_enabled_namespace() {
        let enabled = map(INJECT_KEY, "enabled");
        let disabled = map(INJECT_KEY, "disabled");
        let by_label = Subject {
            namespace: Some("payments"),
            namespace_labels: Some(&enabled),
            pod_labels: Some(&disabled),
            ..Subject::default()
        };
        assert_eq!(select(by_label, None, true), Selection::OptedOut);
        let by_annotation = Subject {
            namespace: Some("payments"),
            namespace_labels: Some(&enabled),
            pod_annotations: Some(&disabled),
            ..Subject::default()
        };
        assert_eq!(select(by_annotation, None, true), Selection::OptedOut);
    }

    #[test]
    fn kube_system_and_the_injectors_namespace_are_never_injected() {
        let enabled = map(INJECT_KEY, "enabled");
        let sys = Subject {
            namespace: Some("kube-system"),
            pod_labels: Some(&enabled),
            ..Subject::default()
        };
        assert_eq!(select(sys, None, true), Selection::ProtectedNamespace);
        let own = Subject {
            namespace: Some("irsa-doctor"),
            pod_labels: Some(&enabled),
            ..Subject::default()
        };
        assert_eq!(
            select(own, Some("irsa-doctor"), true),
            Selection::ProtectedNamespace
        );
    }
}
