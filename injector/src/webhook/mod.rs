//! The webhook (`serve`): an AdmissionReview in, an AdmissionReview out.
//! This file is the review itself, without sockets: which requests are
//! pods to look at, the lookups under their budget, the plan, the patch,
//! the warnings and the metrics. [`server`] puts it behind HTTPS,
//! [`tls`] serves a certificate that follows its files, [`patch`] turns
//! the plan into JSON patch operations, [`metrics`] counts.
//!
//! Invariant: the answer is always `allowed: true` with the request's
//! `uid`; whatever fails here costs the pod its doctor, never its
//! admission (the webhook's configuration also says `failurePolicy:
//! Ignore`).

pub mod metrics;
pub mod patch;
pub mod server;
pub mod tls;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use json_patch::Patch;
use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;
use tokio::sync::Semaphore;

use crate::lookup::{Resolve, Resolved};
use crate::plan::{plan, Options, Outcome};
use crate::select::{select, Selection, Subject};
use crate::Identity;

pub use metrics::{AdmissionOutcome, Mechanism, Metrics, Rejection};
pub use server::{serve, ServeConfig, ServeError};
pub use tls::{CertError, ReloadingCert};

/// The lookups' share of the API server's 3 s (`timeoutSeconds: 3`): past
/// it the pod is admitted with what its containers show.
/// 1.5 s rather than 2: a review can first wait on another review's
/// lookup of the same ServiceAccount before starting its own, and the
/// answer, parsing and patch included, must still come within 2 s.
pub const LOOKUP_BUDGET: Duration = Duration::from_millis(1500);

/// What the review needs besides the request.
#[derive(Clone)]
pub struct Webhook {
    pub options: Options,
    /// The injector's own namespace, never injected.
    pub own_namespace: Option<String>,
    pub lookup_budget: Duration,
    pub resolver: Arc<dyn Resolve>,
    pub metrics: Arc<Metrics>,
    /// Permits are bytes of the estimated [`cost`] of the pods being
    /// reviewed: see [`Webhook::inspecting`].
    pub inspecting: Arc<Semaphore>,
}

/// The estimated memory of the typed pods under review at once.
pub const MAX_INSPECTING: usize = 48 * 1024 * 1024;

/// One pod's estimated [`cost`] past which it is not read: admitted
/// without the doctor, with a warning. Only the spec's objects are
/// charged as structs (4,000 of them reach it; a pod with 800 variables
/// is 3.2 MiB), the metadata, `managedFields` and all, at its bytes.
pub const MAX_POD_COST: usize = 16 * 1024 * 1024;

/// A body that is no AdmissionReview (the HTTP layer answers 400).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("the body is not an AdmissionReview: {0}")]
    NotJson(String),
    #[error("the AdmissionReview has no request")]
    NoRequest,
}

/// The review as read: only the request's fields the webhook uses, with
/// the object left as the bytes it came in. Not kube's
/// `AdmissionReview<DynamicObject>`: its object is a `#[serde(flatten)]`
/// `Value`, which serde first buffers as a tree of its own and then
/// copies: `{"object":{"x":[0,0,...]}}` in 8 MiB, the old bound, made
/// 4 million nodes of 32 bytes twice over, some 250 MiB for one request.
#[derive(Deserialize)]
struct Review<'a> {
    #[serde(borrow)]
    request: Option<Request<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request<'a> {
    uid: String,
    kind: Kind,
    resource: Resource,
    #[serde(default)]
    sub_resource: Option<String>,
    operation: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    dry_run: bool,
    #[serde(borrow, default)]
    object: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Kind {
    #[serde(default)]
    group: String,
    kind: String,
}

#[derive(Deserialize)]
struct Resource {
    #[serde(default)]
    group: String,
    resource: String,
}

/// The pod's two parts, still as bytes: their costs are estimated apart
/// (see [`cost`]) before either is read.
#[derive(Deserialize)]
struct PodParts<'a> {
    #[serde(borrow, default)]
    metadata: Option<&'a RawValue>,
    #[serde(borrow, default)]
    spec: Option<&'a RawValue>,
}

/// The metadata the plan and the selection read, and nothing else: not
/// k8s-openapi's `ObjectMeta`, whose `managedFields[].fieldsV1` is a free
/// JSON `Value` (the API server fills it on every CREATE), which a hostile
/// body could make a tree of millions of nodes. Every field not named here
/// is skipped as it is read, without being stored. Metadata that does not
/// parse is a review that is not one (400).
#[derive(Deserialize, Default)]
struct Meta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "generateName")]
    generate_name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

impl Meta {
    fn object_meta(self) -> ObjectMeta {
        ObjectMeta {
            name: self.name,
            generate_name: self.generate_name,
            namespace: self.namespace,
            labels: self.labels,
            annotations: self.annotations,
            ..ObjectMeta::default()
        }
    }
}

impl Request<'_> {
    /// A pod being created: the only request there is anything to do for.
    fn is_pod_create(&self) -> bool {
        self.kind.group.is_empty()
            && self.kind.kind == "Pod"
            && self.resource.group.is_empty()
            && self.resource.resource == "pods"
            && self.sub_resource.as_deref().unwrap_or("").is_empty()
            && self.operation == "CREATE"
    }
}

/// What one review decided, for the log and the tests.
#[derive(Debug, Clone)]
pub struct Decision {
    pub outcome: AdmissionOutcome,
    pub mechanism: Mechanism,
    pub patch: Option<Patch>,
    pub warnings: Vec<String>,
}

impl Decision {
    fn skip(outcome: AdmissionOutcome, mechanism: Mechanism) -> Decision {
        Decision {
            outcome,
            mechanism,
            patch: None,
            warnings: Vec::new(),
        }
    }
}

impl Webhook {
    /// The semaphore for [`Webhook::inspecting`], of [`MAX_INSPECTING`].
    pub fn inspecting() -> Arc<Semaphore> {
        Arc::new(Semaphore::new(MAX_INSPECTING))
    }

    /// Reviews one body; the answer's JSON, or why there is none.
    pub async fn review(&self, body: &[u8]) -> Result<Vec<u8>, ReviewError> {
        let not_json = |e: serde_json::Error| ReviewError::NotJson(short(&e.to_string()));
        let review: Review = serde_json::from_slice(body).map_err(not_json)?;
        let request = review.request.ok_or(ReviewError::NoRequest)?;
        // One deadline for the wait below and the lookups together, so that
        // the answer comes within 2 s whatever each of them takes.
        let deadline = tokio::time::Instant::now() + self.lookup_budget;
        let decision = match request.object.filter(|_| request.is_pod_create()) {
            None => Decision::skip(AdmissionOutcome::Skipped, Mechanism::None),
            Some(raw) => {
                let parts = serde_json::from_str::<PodParts>(raw.get()).map_err(not_json)?;
                let cost = parts.spec.map_or(0, |s| cost(s.get()))
                    + parts.metadata.map_or(0, |m| flat_cost(m.get()));
                let bytes = u32::try_from(cost).unwrap_or(u32::MAX);
                // The typed pod lives across the lookups: the estimate is
                // held until the answer is made, so that many small bodies
                // that read into large pods cannot add up.
                let permit = if cost > MAX_POD_COST {
                    Err(format!(
                        "the pod is too large to inspect ({cost} bytes estimated once read)"
                    ))
                } else {
                    let wait = self.inspecting.acquire_many(bytes);
                    match tokio::time::timeout_at(deadline, wait).await {
                        Ok(Ok(permit)) => Ok(permit),
                        _ => Err("too many pods under review at once".to_owned()),
                    }
                };
                match permit {
                    Ok(_permit) => {
                        let meta = match parts.metadata {
                            Some(m) => serde_json::from_str::<Meta>(m.get()).map_err(not_json)?,
                            None => Meta::default(),
                        };
                        self.decide(&request, meta.object_meta(), parts.spec, deadline)
                            .await
                    }
                    Err(why) => self.failed(&request.uid, &why),
                }
            }
        };
        self.metrics.admission(decision.outcome, decision.mechanism);
        tracing::info!(
            uid = %request.uid,
            namespace = request.namespace.as_deref().unwrap_or(""),
            name = %request.name,
            outcome = decision.outcome.as_str(),
            mechanism = decision.mechanism.as_str(),
            dry_run = request.dry_run,
            patched = decision.patch.is_some(),
            "admission reviewed"
        );
        Ok(answer(&request.uid, &decision))
    }

    /// The decision for a pod being created: never an error, only outcomes.
    async fn decide(
        &self,
        request: &Request<'_>,
        meta: ObjectMeta,
        spec: Option<&RawValue>,
        deadline: tokio::time::Instant,
    ) -> Decision {
        let namespace = request
            .namespace
            .clone()
            .or_else(|| meta.namespace.clone())
            .unwrap_or_default();
        let subject = Subject {
            namespace: Some(&namespace),
            namespace_labels: None,
            pod_labels: meta.labels.as_ref(),
            pod_annotations: meta.annotations.as_ref(),
        };
        let spec = spec.map(|raw| serde_json::from_str::<Option<PodSpec>>(raw.get()));
        let selection = select(subject, self.own_namespace.as_deref(), true);
        if selection != Selection::Selected {
            // Counted with what the containers show, so that the coverage
            // of pods with an identity counts the opted-out ones too.
            let shown = match &spec {
                Some(Ok(Some(spec))) => mechanism(spec, &Identity::Unknown),
                _ => Mechanism::None,
            };
            let outcome = match selection {
                Selection::OptedOut => AdmissionOutcome::OptedOut,
                _ => AdmissionOutcome::Skipped,
            };
            return Decision::skip(outcome, shown);
        }
        let spec = match spec {
            Some(Ok(Some(spec))) => spec,
            Some(Err(e)) => {
                return self.failed(&request.uid, &format!("the pod spec does not parse: {e}"))
            }
            Some(Ok(None)) | None => return self.failed(&request.uid, "the pod has no spec"),
        };
        self.plan_pod(&request.uid, &namespace, &meta, &spec, deadline)
            .await
    }

    async fn plan_pod(
        &self,
        uid: &str,
        namespace: &str,
        meta: &ObjectMeta,
        spec: &PodSpec,
        deadline: tokio::time::Instant,
    ) -> Decision {
        let service_account = spec
            .service_account_name
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| spec.service_account.clone().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| "default".to_owned());
        let (resolved, timed_out) = self.resolve(namespace, &service_account, deadline).await;
        for record in &resolved.records {
            self.metrics.lookup(record);
        }
        let mut warnings: Vec<String> = resolved.warnings.iter().map(|w| warning(w)).collect();
        if timed_out {
            warnings.push(warning(&format!(
                "the lookups for serviceaccount {namespace}/{service_account} took over {}s; \
                 injected from the containers alone",
                self.lookup_budget.as_secs_f32()
            )));
        }
        let planned = plan(meta, spec, &resolved.identity, &self.options);
        warnings.extend(planned.warnings.iter().map(|w| warning(w)));
        let mechanism = mechanism(spec, &resolved.identity);
        let failed = timed_out || resolved.any_failed();
        let outcome = match planned.outcome {
            Outcome::Injected(_) => AdmissionOutcome::Injected,
            Outcome::Completed => AdmissionOutcome::Completed,
            Outcome::AlreadyPresent => AdmissionOutcome::AlreadyPresent,
            Outcome::NoIdentity if failed => AdmissionOutcome::Error,
            Outcome::NoIdentity => AdmissionOutcome::NoIdentity,
            Outcome::Windows | Outcome::HostNetwork | Outcome::ExecForm => {
                AdmissionOutcome::Skipped
            }
        };
        for warning in &warnings {
            tracing::warn!(namespace, service_account, "{warning}");
        }
        let mut patch = None;
        if !planned.changes.is_empty() {
            // Made against the lists' shape alone, not a copy of the pod:
            // that is all an `add` needs to know (see patch::shape).
            match patch::patch_for(&patch::shape(spec), &planned.changes) {
                Ok(made) => patch = Some(made),
                Err(e) => return self.failed(uid, &crate::error_chain(&e)),
            }
        }
        Decision {
            outcome,
            mechanism,
            patch,
            warnings,
        }
    }

    /// The lookups until the review's deadline; past it, nothing known
    /// from outside.
    async fn resolve(
        &self,
        namespace: &str,
        service_account: &str,
        deadline: tokio::time::Instant,
    ) -> (Resolved, bool) {
        let lookups = self.resolver.resolve(namespace, service_account);
        match tokio::time::timeout_at(deadline, lookups).await {
            Ok(resolved) => (resolved, false),
            Err(_) => (Resolved::default(), true),
        }
    }

    fn failed(&self, uid: &str, why: &str) -> Decision {
        tracing::error!(uid, error = why, "admitted without irsa-doctor");
        Decision {
            warnings: vec![warning(&format!("admitted without irsa-doctor: {why}"))],
            ..Decision::skip(AdmissionOutcome::Error, Mechanism::None)
        }
    }
}

/// The AdmissionReview answer: `allowed: true` with the request's `uid`,
/// and the patch as base64, the form Kubernetes gives a `[]byte` field in
/// JSON (see [`patch::base64`]). Written here rather than with kube's
/// `AdmissionResponse`, which can only be made from its own request type.
/// Serializing a patch cannot fail; if it ever did, an empty answer would
/// make the API server apply `failurePolicy: Ignore`, which also admits
/// the pod.
fn answer(uid: &str, decision: &Decision) -> Vec<u8> {
    let mut response = json!({"uid": uid, "allowed": true});
    if let Some(patch) = &decision.patch {
        let bytes = serde_json::to_vec(patch).unwrap_or_default();
        response["patchType"] = json!("JSONPatch");
        response["patch"] = json!(patch::base64(&bytes));
    }
    if !decision.warnings.is_empty() {
        response["warnings"] = json!(decision.warnings);
    }
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    });
    serde_json::to_vec(&review).unwrap_or_default()
}

/// An upper bound, roughly, on the memory the typed pod read from `raw`
/// takes: every object as the largest one the pod has (a `Volume`, 3 KiB;
/// a `Container`, 2 KiB), every string as a `String` with its contents,
/// every other byte as an 8-byte number. Typed reading skips unknown
/// fields, but a 3 MiB body of `{"name":""}` volumes would otherwise make
/// 800 MiB. One pass, no allocation.
pub fn cost(raw: &str) -> usize {
    const OBJECT: usize = 4096;
    const STRING: usize = 32;
    let (mut objects, mut strings) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for byte in raw.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else if byte == b'"' {
            in_string = true;
            strings += 1;
        } else if byte == b'{' {
            objects += 1;
        }
    }
    raw.len()
        .saturating_mul(4)
        .saturating_add(objects.saturating_mul(OBJECT))
        .saturating_add(strings.saturating_mul(STRING))
}

/// [`cost`] for the metadata, read into [`Meta`]: strings and the maps
/// that hold them, and no structs, so an object is no dearer than its
/// bytes (the API server's `managedFields` is mostly empty objects, which
/// `Meta` skips).
pub fn flat_cost(raw: &str) -> usize {
    const STRING: usize = 64;
    let strings = raw.bytes().filter(|b| *b == b'"').count() / 2 + 1;
    raw.len()
        .saturating_mul(4)
        .saturating_add(strings.saturating_mul(STRING))
}

/// What the pod is known to use: the variables a container shows (the EKS
/// webhook ran first; Pod Identity's win over the annotation, as in
/// `plan`), else what the lookups found.
fn mechanism(spec: &PodSpec, identity: &Identity) -> Mechanism {
    let has = |name: &str| {
        spec.containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .any(|c| c.env.iter().flatten().any(|v| v.name == name))
    };
    if has("AWS_CONTAINER_CREDENTIALS_FULL_URI") && !has("AWS_ROLE_ARN") {
        return Mechanism::PodIdentity;
    }
    if has("AWS_ROLE_ARN") && has("AWS_WEB_IDENTITY_TOKEN_FILE") {
        return Mechanism::Irsa;
    }
    match identity {
        Identity::Association(_) => Mechanism::PodIdentity,
        Identity::ServiceAccount { .. } => Mechanism::Irsa,
        Identity::Unknown if has("AWS_CONTAINER_CREDENTIALS_FULL_URI") => Mechanism::PodIdentity,
        Identity::Unknown => Mechanism::None,
    }
}

/// A warning for the answer: kubectl prints it as "Warning: TEXT", so it
/// names its source, on one short line.
fn warning(text: &str) -> String {
    const SOURCE: &str = "irsa-doctor-injector: ";
    if text.starts_with(SOURCE) {
        short(text)
    } else {
        short(&format!("{SOURCE}{text}"))
    }
}

/// One line of at most 200 characters: the API server shows warnings to
/// kubectl users and truncates long ones, and a parse error may quote the
/// body.
fn short(text: &str) -> String {
    let line: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_of_tiny_objects_costs_more_than_a_pod_may_and_a_real_pod_little() {
        let volumes = vec![r#"{"name":""}"#; 250_000].join(",");
        let hostile = format!(r#"{{"spec":{{"volumes":[{volumes}]}}}}"#);
        assert!(hostile.len() < 3 * 1024 * 1024);
        assert!(cost(&hostile) > MAX_POD_COST, "{}", cost(&hostile));
        let pod =
            r#"{"metadata":{"name":"app"},"spec":{"containers":[{"name":"app","image":"i"}]}}"#;
        assert!(cost(pod) < 64 * 1024, "{}", cost(pod));
    }

    #[test]
    fn braces_and_quotes_inside_strings_are_not_counted() {
        let plain = r#"{"a":"xxxxxxxxxx"}"#;
        let quoted = r#"{"a":"{{\"{{{\"{"}"#;
        assert_eq!(plain.len(), quoted.len());
        assert_eq!(cost(plain), cost(quoted));
    }
}
