//! The ServiceAccount lookup through the Kubernetes API (kube): `get
//! serviceaccounts/NAME -n NAMESPACE`, bounded to [`BUDGET`], and its
//! `eks.amazonaws.com/role-arn` annotation. Every way it can end is a
//! [`Answer`], never an error; the details say what went wrong in words
//! that hold no token (kube's own error texts are not passed on: an API
//! server's message may echo what it was sent).
//!
//! What kube reads of an answer is bounded in time (the client's read
//! timeout and the budget) and in bytes: the client's responses are wrapped
//! in a [`MAX_ANSWER_BYTES`] limit, so that a peer that streams without end
//! costs at most that much memory, whether it announces a length or not.

use std::time::Duration;

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::Api;

use super::{causes, Answer, LookupOutcome};
use crate::identity::ROLE_ARN_ANNOTATION;

/// Each lookup's budget, as the issue sets it: the webhook answers within
/// 2 s with both lookups side by side.
pub const BUDGET: Duration = Duration::from_secs(1);

/// The kube client's own timeouts, below [`BUDGET`] so that a connection
/// that cannot be made or a peer that stops answering is seen as such
/// rather than as the budget running out.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
pub const READ_TIMEOUT: Duration = Duration::from_millis(900);

/// The longest answer kube is let read: a ServiceAccount is a few hundred
/// bytes, and an object of the API server's is at most about 1.5 MiB
/// (etcd's request limit) only when it holds data, which a ServiceAccount
/// does not.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// The role annotation of a ServiceAccount that exists (`None`: it has
/// none).
pub type RoleAnnotation = Option<String>;

/// The ServiceAccount lookups.
#[derive(Clone)]
pub struct ServiceAccounts {
    client: kube::Client,
}

impl ServiceAccounts {
    pub fn new(client: kube::Client) -> Self {
        ServiceAccounts { client }
    }

    /// The kube client for `config`, with the timeouts above and its
    /// answers cut at [`MAX_ANSWER_BYTES`].
    pub fn client(mut config: kube::Config) -> Result<kube::Client, String> {
        config.connect_timeout = Some(CONNECT_TIMEOUT);
        config.read_timeout = Some(READ_TIMEOUT);
        config.write_timeout = Some(READ_TIMEOUT);
        let bounded = tower::util::MapResponseLayer::new(
            |response: hyper::Response<Box<kube::client::DynBody>>| {
                response.map(|body| http_body_util::Limited::new(body, MAX_ANSWER_BYTES))
            },
        );
        let builder = kube::client::ClientBuilder::try_from(config)
            .map_err(|e| format!("cannot build the Kubernetes client: {e}"))?;
        Ok(builder.with_layer(&bounded).build())
    }

    /// The ServiceAccount `namespace/name`'s role annotation.
    pub async fn get(&self, namespace: &str, name: &str) -> Answer<RoleAnnotation> {
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        match tokio::time::timeout(BUDGET, api.get_opt(name)).await {
            Err(_) => Answer::failed(LookupOutcome::Timeout, "timeout after 1s"),
            Ok(Ok(Some(sa))) => {
                let role = sa
                    .metadata
                    .annotations
                    .and_then(|mut a| a.remove(ROLE_ARN_ANNOTATION))
                    .filter(|r| !r.trim().is_empty());
                Answer::found(role)
            }
            Ok(Ok(None)) => Answer::not_found(),
            Ok(Err(error)) => classify(&error),
        }
    }
}

fn classify(error: &kube::Error) -> Answer<RoleAnnotation> {
    use LookupOutcome::*;
    match error {
        kube::Error::Api(status) => match status.code {
            404 => Answer::not_found(),
            401 | 403 => Answer::failed(
                Denied,
                &format!(
                    "denied, HTTP {}: the injector's ServiceAccount needs RBAC get on serviceaccounts",
                    status.code
                ),
            ),
            429 => Answer::failed(Throttled, "throttled by the API server, HTTP 429"),
            code => Answer::failed(Error, &format!("the API server answered HTTP {code}")),
        },
        kube::Error::SerdeError(_) | kube::Error::FromUtf8(_) => {
            Answer::failed(Error, "the API server's answer is not a ServiceAccount")
        }
        other if is_too_large(other) => Answer::failed(
            Error,
            &format!("the API server's answer is past the {MAX_ANSWER_BYTES} bytes the injector reads"),
        ),
        other if is_timeout(other) => Answer::failed(Timeout, "timeout after 1s"),
        _ => Answer::failed(Error, "the API server could not be reached"),
    }
}

/// Whether kube's error is the [`MAX_ANSWER_BYTES`] limit's.
fn is_too_large(error: &kube::Error) -> bool {
    causes(error).any(|e| e.is::<http_body_util::LengthLimitError>())
}

/// Whether kube's error comes from its own connect or read timeout.
fn is_timeout(error: &kube::Error) -> bool {
    causes(error).any(|e| {
        e.is::<tokio::time::error::Elapsed>()
            || e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
            || e.to_string().to_ascii_lowercase().contains("timed out")
    })
}
