//! What is known of a pod's identity from outside the pod, looked up for
//! the webhook: the ServiceAccount's `eks.amazonaws.com/role-arn`
//! annotation through the Kubernetes API, and with `--cluster-name` the EKS
//! Pod Identity association through the EKS API. Each lookup is bounded
//! (1 s) and cached; a failed or slow one is a record and a warning, never
//! an error: the webhook admits the pod whatever happens here.
//!
//! This file is the interface `serve` builds on, and [`connect`], which
//! builds the lookups from the pod's environment. Beside it:
//! - `resolver`: [`Lookups`], the two lookups side by side through caches;
//! - `kubernetes`: the ServiceAccount lookup (kube);
//! - `eks`: the association lookup (aws-sdk-eks);
//! - `cache`: answers kept 60 s, failures 5 s, one request per key.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::identity::Identity;

mod cache;
mod eks;
mod kubernetes;
mod resolver;

pub use cache::CachePolicy;
pub use eks::Associations;
pub use kubernetes::ServiceAccounts;
pub use resolver::Lookups;

/// An error and its sources, outermost first: where `kubernetes` and `eks`
/// look for the limit or timeout a client's error wraps.
fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |e| e.source())
}

/// Which lookup a record is about (the `lookup` label of the metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LookupKind {
    /// `get serviceaccounts/NAME -n NAMESPACE`.
    ServiceAccount,
    /// `ListPodIdentityAssociations` then `DescribePodIdentityAssociation`.
    Association,
}

impl LookupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LookupKind::ServiceAccount => "service_account",
            LookupKind::Association => "association",
        }
    }
}

/// How a lookup ended (the `outcome` label of the metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LookupOutcome {
    /// The object exists (an annotated or unannotated ServiceAccount, an
    /// association).
    Found,
    /// The API said there is none (404, an empty list).
    NotFound,
    /// No answer within the lookup's budget.
    Timeout,
    /// 401 or 403: the injector's own identity may not ask.
    Denied,
    /// 429, or EKS's throttling errors.
    Throttled,
    /// Anything else: a 5xx, garbage, a refused connection.
    Error,
}

impl LookupOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            LookupOutcome::Found => "found",
            LookupOutcome::NotFound => "not_found",
            LookupOutcome::Timeout => "timeout",
            LookupOutcome::Denied => "denied",
            LookupOutcome::Throttled => "throttled",
            LookupOutcome::Error => "error",
        }
    }

    /// Whether the lookup failed (the answer is unknown, not "none").
    pub fn failed(self) -> bool {
        !matches!(self, LookupOutcome::Found | LookupOutcome::NotFound)
    }
}

/// One lookup made for one admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupRecord {
    pub kind: LookupKind,
    pub outcome: LookupOutcome,
    /// Answered from the cache, without a request.
    pub cached: bool,
}

/// What the lookups for one pod found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolved {
    /// The association when there is one (the EKS webhook gives such a pod
    /// Pod Identity's variables), else the ServiceAccount's annotation,
    /// else unknown.
    pub identity: Identity,
    pub records: Vec<LookupRecord>,
    /// For the AdmissionReview's `warnings` and the log: each failed
    /// lookup, in a sentence that names what failed and what to do.
    pub warnings: Vec<String>,
}

impl Resolved {
    /// Whether any lookup failed, so that a pod admitted without the
    /// doctor was perhaps one that has an identity.
    pub fn any_failed(&self) -> bool {
        self.records.iter().any(|r| r.outcome.failed())
    }
}

pub type ResolveFuture<'a> = Pin<Box<dyn Future<Output = Resolved> + Send + 'a>>;

/// The lookups behind the webhook. An implementation returns within about
/// 1 s (each lookup bounded to 1 s, the two run side by side) and never
/// fails: a failure is a record and a warning.
pub trait Resolve: Send + Sync {
    fn resolve<'a>(&'a self, namespace: &'a str, service_account: &'a str) -> ResolveFuture<'a>;
}

/// No lookups: every identity comes from the pod's own containers.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLookups;

impl Resolve for NoLookups {
    fn resolve<'a>(&'a self, _namespace: &'a str, _service_account: &'a str) -> ResolveFuture<'a> {
        Box::pin(async { Resolved::default() })
    }
}

/// The lookups for `serve`: the Kubernetes client from the pod's
/// environment (in-cluster, or `KUBECONFIG`), and with `cluster_name` the
/// EKS client from the AWS SDK's default chain (the injector's own IRSA or
/// Pod Identity role; `AWS_ENDPOINT_URL_EKS` is honoured by the SDK).
pub async fn connect(cluster_name: Option<String>) -> Result<Arc<dyn Resolve>, String> {
    // kube's rustls needs a process-wide provider when more than one is
    // compiled in; an already installed one is kept.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let config = kube::Config::infer().await.map_err(|e| {
        format!(
            "no Kubernetes configuration: not in a cluster (KUBERNETES_SERVICE_HOST and the \
             ServiceAccount token) and no KUBECONFIG or ~/.kube/config ({e})"
        )
    })?;
    let service_accounts = ServiceAccounts::new(ServiceAccounts::client(config)?);
    let associations = match cluster_name {
        None => None,
        Some(cluster) => {
            let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .load()
                .await;
            if sdk.region().is_none() {
                return Err(format!(
                    "--cluster-name {cluster} needs an AWS region for the EKS API: set AWS_REGION \
                     (the EKS webhook sets it for the injector's own role)"
                ));
            }
            Some(Associations::new((&sdk).into(), cluster))
        }
    };
    Ok(Arc::new(Lookups::new(service_accounts, associations)))
}

/// One lookup's answer before it becomes a record: its outcome, the value
/// when found, and for a failure a detail for the warning (no secret).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer<T> {
    pub outcome: LookupOutcome,
    pub value: Option<T>,
    pub detail: String,
}

impl<T> Answer<T> {
    pub fn found(value: T) -> Self {
        Answer {
            outcome: LookupOutcome::Found,
            value: Some(value),
            detail: String::new(),
        }
    }

    pub fn not_found() -> Self {
        Answer {
            outcome: LookupOutcome::NotFound,
            value: None,
            detail: String::new(),
        }
    }

    pub fn failed(outcome: LookupOutcome, detail: &str) -> Self {
        Answer {
            outcome,
            value: None,
            detail: detail.to_owned(),
        }
    }

    pub fn is_failure(&self) -> bool {
        self.outcome.failed()
    }
}
