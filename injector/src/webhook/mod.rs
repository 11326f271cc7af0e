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

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::DynamicObject;
use serde_json::Value;

use crate::lookup::{Resolve, Resolved};
use crate::plan::{plan, Options, Outcome};
use crate::select::{select, Selection, Subject};
use crate::Identity;

pub use metrics::{AdmissionOutcome, Mechanism, Metrics, Rejection};
pub use server::{serve, ServeConfig, ServeError};
pub use tls::{CertError, ReloadingCert};

/// The lookups' share of the API server's 3 s (`timeoutSeconds: 3`): past
/// it the pod is admitted with what its containers show.
pub const LOOKUP_BUDGET: Duration = Duration::from_secs(2);

/// What the review needs besides the request.
#[derive(Clone)]
pub struct Webhook {
    pub options: Options,
    /// The injector's own namespace, never injected.
    pub own_namespace: Option<String>,
    pub lookup_budget: Duration,
    pub resolver: Arc<dyn Resolve>,
    pub metrics: Arc<Metrics>,
}

/// A body that is no AdmissionReview (the HTTP layer answers 400).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("the body is not an AdmissionReview: {0}")]
    NotJson(String),
    #[error("the AdmissionReview has no request")]
    NoRequest,
}

/// What one review decided, for the log and the tests.
#[derive(Debug, Clone)]
pub struct Decision {
    pub outcome: AdmissionOutcome,
    pub mechanism: Mechanism,
    pub response: AdmissionResponse,
}

impl Webhook {
    /// Reviews one body; the answer's JSON, or why there is none.
    pub async fn review(&self, body: &[u8]) -> Result<Vec<u8>, ReviewError> {
        let review: AdmissionReview<DynamicObject> = serde_json::from_slice(body)
            .map_err(|e| ReviewError::NotJson(short(&e.to_string())))?;
        let request: AdmissionRequest<DynamicObject> =
            review.try_into().map_err(|_| ReviewError::NoRequest)?;
        let decision = self.decide(&request).await;
        self.metrics.admission(decision.outcome, decision.mechanism);
        tracing::info!(
            uid = %request.uid,
            namespace = request.namespace.as_deref().unwrap_or(""),
            name = %request.name,
            outcome = decision.outcome.as_str(),
            mechanism = decision.mechanism.as_str(),
            dry_run = request.dry_run,
            patched = decision.response.patch.is_some(),
            "admission reviewed"
        );
        Ok(answer(decision.response))
    }

    /// The decision for one request: never an error, only outcomes.
    pub async fn decide(&self, request: &AdmissionRequest<DynamicObject>) -> Decision {
        let base = AdmissionResponse::from(request);
        let skip = |outcome, response| Decision {
            outcome,
            mechanism: Mechanism::None,
            response,
        };
        let is_pod = request.kind.group.is_empty()
            && request.kind.kind == "Pod"
            && request.resource.resource == "pods"
            && request.sub_resource.as_deref().unwrap_or("").is_empty()
            && request.operation == Operation::Create;
        let Some(object) = request.object.as_ref().filter(|_| is_pod) else {
            return skip(AdmissionOutcome::Skipped, base);
        };
        let namespace = request
            .namespace
            .clone()
            .or_else(|| object.metadata.namespace.clone())
            .unwrap_or_default();
        let meta = &object.metadata;
        let subject = Subject {
            namespace: Some(&namespace),
            namespace_labels: None,
            pod_labels: meta.labels.as_ref(),
            pod_annotations: meta.annotations.as_ref(),
        };
        let spec = object
            .data
            .get("spec")
            .cloned()
            .map(serde_json::from_value::<PodSpec>);
        let selection = select(subject, self.own_namespace.as_deref(), true);
        if selection != Selection::Selected {
            // Counted with what the containers show, so that the coverage
            // of pods with an identity counts the opted-out ones too.
            let shown = match &spec {
                Some(Ok(spec)) => mechanism(spec, &Identity::Unknown),
                _ => Mechanism::None,
            };
            let outcome = match selection {
                Selection::OptedOut => AdmissionOutcome::OptedOut,
                _ => AdmissionOutcome::Skipped,
            };
            return Decision {
                mechanism: shown,
                ..skip(outcome, base)
            };
        }
        let spec = match spec {
            Some(Ok(spec)) => spec,
            Some(Err(e)) => return self.failed(base, &format!("the pod spec does not parse: {e}")),
            None => return self.failed(base, "the pod has no spec"),
        };
        let pod = match serde_json::to_value(object) {
            Ok(pod) => pod,
            Err(e) => return self.failed(base, &format!("cannot read the pod: {e}")),
        };
        self.plan_pod(base, &namespace, meta, &spec, &pod).await
    }

    async fn plan_pod(
        &self,
        base: AdmissionResponse,
        namespace: &str,
        meta: &ObjectMeta,
        spec: &PodSpec,
        pod: &Value,
    ) -> Decision {
        let service_account = spec
            .service_account_name
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| spec.service_account.clone().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| "default".to_owned());
        let (resolved, timed_out) = self.resolve(namespace, &service_account).await;
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
        let mut response = base;
        if !planned.changes.is_empty() {
            let patched = patch::patch_for(pod, &planned.changes)
                .map_err(|e| crate_error(&e))
                .and_then(|p| response.clone().with_patch(p).map_err(|e| crate_error(&e)));
            match patched {
                Ok(with_patch) => response = with_patch,
                Err(e) => return self.failed(response, &e),
            }
        }
        response.warnings = (!warnings.is_empty()).then_some(warnings);
        Decision {
            outcome,
            mechanism,
            response,
        }
    }

    /// The lookups under the budget; past it, nothing known from outside.
    async fn resolve(&self, namespace: &str, service_account: &str) -> (Resolved, bool) {
        let lookups = self.resolver.resolve(namespace, service_account);
        match tokio::time::timeout(self.lookup_budget, lookups).await {
            Ok(resolved) => (resolved, false),
            Err(_) => (Resolved::default(), true),
        }
    }

    fn failed(&self, base: AdmissionResponse, why: &str) -> Decision {
        tracing::error!(uid = %base.uid, error = why, "admitted without irsa-doctor");
        let mut response = base;
        response.warnings = Some(vec![warning(&format!(
            "admitted without irsa-doctor: {why}"
        ))]);
        Decision {
            outcome: AdmissionOutcome::Error,
            mechanism: Mechanism::None,
            response,
        }
    }
}

/// The AdmissionReview answer, with the patch as base64 (see
/// [`patch::base64`]). Serializing kube's own types cannot fail; if it
/// ever did, an empty answer would make the API server apply
/// `failurePolicy: Ignore`, which also admits the pod.
fn answer(response: AdmissionResponse) -> Vec<u8> {
    let patch = response.patch.as_deref().map(patch::base64);
    let mut review = serde_json::to_value(response.into_review()).unwrap_or_default();
    if let (Some(patch), Some(slot)) = (patch, review.pointer_mut("/response/patch")) {
        *slot = Value::String(patch);
    }
    serde_json::to_vec(&review).unwrap_or_default()
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

/// The error and its causes on one line.
fn crate_error(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
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
