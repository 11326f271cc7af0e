//! One source of truth for the irsa-doctor container: the template the
//! injector embeds (template/irsa-doctor.yaml) and the manifests in
//! examples/k8s must run the same container, so a change to one that is
//! not made to the other fails here. Compared: args, restartPolicy, ports,
//! probes, securityContext, resources, termination message, and the
//! Downward API variables; the examples' other variables are their own
//! (a role, a --require list).

use std::path::Path;

use irsa_doctor_injector::Template;
use k8s_openapi::api::core::v1::{Container, EnvVar, PodTemplateSpec};
use serde_json::Value;

fn examples(file: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/k8s")
        .join(file);
    serde_saphyr::from_multiple(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The irsa-doctor container of the first Pod or workload in the file.
fn doctor_in(file: &str) -> Container {
    for doc in examples(file) {
        let template = match doc["kind"].as_str() {
            Some("Pod") => doc.clone(),
            Some("Deployment") => doc["spec"]["template"].clone(),
            _ => continue,
        };
        let template: PodTemplateSpec = serde_json::from_value(template).unwrap();
        let spec = template.spec.unwrap();
        if let Some(c) = spec
            .init_containers
            .into_iter()
            .flatten()
            .chain(spec.containers)
            .find(|c| c.name == "irsa-doctor")
        {
            return c;
        }
    }
    panic!("{file} has no irsa-doctor container");
}

fn downward(c: &Container) -> Vec<EnvVar> {
    let mut v: Vec<EnvVar> = c
        .env
        .iter()
        .flatten()
        .filter(|v| v.value_from.as_ref().is_some_and(|f| f.field_ref.is_some()))
        .cloned()
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

fn assert_same(template: &Container, example: &Container, file: &str) {
    assert_eq!(template.args, example.args, "{file}: args");
    assert_eq!(
        template.restart_policy, example.restart_policy,
        "{file}: restartPolicy"
    );
    assert_eq!(template.ports, example.ports, "{file}: ports");
    assert_eq!(
        template.startup_probe, example.startup_probe,
        "{file}: startupProbe"
    );
    assert_eq!(
        template.readiness_probe, example.readiness_probe,
        "{file}: readinessProbe"
    );
    assert_eq!(
        template.liveness_probe, example.liveness_probe,
        "{file}: livenessProbe"
    );
    assert_eq!(
        template.security_context, example.security_context,
        "{file}: securityContext"
    );
    assert_eq!(template.resources, example.resources, "{file}: resources");
    assert_eq!(
        template.termination_message_policy, example.termination_message_policy,
        "{file}: terminationMessagePolicy"
    );
    assert_eq!(
        downward(template),
        downward(example),
        "{file}: the Downward API variables"
    );
    assert_eq!(
        downward(template).len(),
        4,
        "pod name, namespace, service account, node name"
    );
}

#[test]
fn the_native_sidecar_example_runs_the_templates_sidecar() {
    let t = Template::embedded().unwrap();
    assert_same(
        &t.sidecar,
        &doctor_in("native-sidecar-pod.yaml"),
        "native-sidecar-pod.yaml",
    );
}

#[test]
fn the_init_container_examples_run_the_templates_init_container() {
    let t = Template::embedded().unwrap();
    for file in ["init-container-pod.yaml", "pod-identity-deployment.yaml"] {
        assert_same(&t.init, &doctor_in(file), file);
    }
}

#[test]
fn the_template_listens_where_the_probes_look() {
    // serve's port and the probes' named port must meet; the example sets
    // IRSA_DOCTOR_LISTEN to the same address.
    let t = Template::embedded().unwrap();
    let example = doctor_in("native-sidecar-pod.yaml");
    let listen = |c: &Container| {
        c.env
            .iter()
            .flatten()
            .find(|v| v.name == "IRSA_DOCTOR_LISTEN")
            .and_then(|v| v.value.clone())
    };
    assert_eq!(listen(&t.sidecar), listen(&example));
    assert_eq!(listen(&t.sidecar).as_deref(), Some("0.0.0.0:8475"));
}
