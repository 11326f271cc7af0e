//! What is known of a pod's identity from outside the pod, looked up for
//! the webhook: the ServiceAccount's `eks.amazonaws.com/role-arn`
//! annotation through the Kubernetes API, and with `--cluster-name` the EKS
//! Pod Identity association through the EKS API. Each lookup is bounded
//! (1 s) and cached; a failed or slow one is a record and a warning, never
//! an error: the webhook admits the pod whatever happens here.
//!
//! This file is the interface `serve` builds on; the Kubernetes and EKS
//! implementations live beside it.

use std::future::Future;
use std::pin::Pin;

use crate::identity::Identity;

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
