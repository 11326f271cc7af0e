//! The EKS Pod Identity association lookup (aws-sdk-eks):
//! `ListPodIdentityAssociations` for the cluster, namespace and service
//! account, then `DescribePodIdentityAssociation` for the match (EKS allows
//! at most one per namespace and service account), the two together bounded
//! to [`BUDGET`]. Every way it can end is an [`Answer`]; the details name
//! the error code EKS gave, never the SDK's full error (which can carry
//! the request).
//!
//! Retries are off: a retry after a throttle or a 5xx would not fit in the
//! budget with any backoff worth the name, and the failure is kept 5 s by
//! the cache, which is the retry (the next pod after that asks again).
//! What the SDK buffers of an answer is not bounded here: the endpoint is
//! EKS's (or one the operator set with `AWS_ENDPOINT_URL_EKS`), and the 1 s
//! budget bounds the time it can take; bounding the bytes would need an
//! interceptor naming `aws-smithy-types`' body type, a dependency of its
//! own (the root crate does it in `src/peers/traffic.rs`).

use std::time::Duration;

use aws_sdk_eks::config::retry::RetryConfig;
use aws_sdk_eks::config::timeout::TimeoutConfig;
use aws_sdk_eks::error::{ProvideErrorMetadata, SdkError};

use super::{Answer, LookupOutcome};
use crate::identity::Association;

/// The budget of the two calls together.
pub const BUDGET: Duration = Duration::from_secs(1);

/// The association lookups of one cluster.
#[derive(Clone)]
pub struct Associations {
    client: aws_sdk_eks::Client,
    cluster: String,
}

impl Associations {
    /// The lookups for `cluster`, with a client built from `config` (the
    /// default chain's in the webhook, an explicit endpoint and static
    /// credentials in tests) and the timeouts and retries set here.
    pub fn new(config: aws_sdk_eks::config::Builder, cluster: String) -> Self {
        let config = config
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(BUDGET)
                    .connect_timeout(Duration::from_millis(500))
                    .read_timeout(Duration::from_millis(900))
                    .build(),
            )
            .retry_config(RetryConfig::disabled())
            .build();
        Associations {
            client: aws_sdk_eks::Client::from_conf(config),
            cluster,
        }
    }

    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The association of `namespace/service_account`, if there is one.
    pub async fn get(&self, namespace: &str, service_account: &str) -> Answer<Association> {
        match tokio::time::timeout(BUDGET, self.fetch(namespace, service_account)).await {
            Ok(answer) => answer,
            Err(_) => Answer::failed(LookupOutcome::Timeout, "timeout after 1s"),
        }
    }

    async fn fetch(&self, namespace: &str, service_account: &str) -> Answer<Association> {
        let listed = self
            .client
            .list_pod_identity_associations()
            .cluster_name(&self.cluster)
            .namespace(namespace)
            .service_account(service_account)
            .send()
            .await;
        let listed = match listed {
            Ok(listed) => listed,
            Err(error) => return classify(&error, "ListPodIdentityAssociations"),
        };
        // The API filters already; checked again so that a summary for
        // another service account is never taken for this one.
        let id = listed
            .associations()
            .iter()
            .find(|a| {
                a.namespace() == Some(namespace) && a.service_account() == Some(service_account)
            })
            .and_then(|a| a.association_id());
        let Some(id) = id else {
            return Answer::not_found();
        };
        let described = self
            .client
            .describe_pod_identity_association()
            .cluster_name(&self.cluster)
            .association_id(id)
            .send()
            .await;
        let described = match described {
            Ok(described) => described,
            // Deleted between the two calls: there is none.
            Err(error) if error.code() == Some("ResourceNotFoundException") => {
                return Answer::not_found()
            }
            Err(error) => return classify(&error, "DescribePodIdentityAssociation"),
        };
        let Some(a) = described.association() else {
            return Answer::failed(
                LookupOutcome::Error,
                "DescribePodIdentityAssociation answered without the association",
            );
        };
        let Some(role_arn) = a.role_arn().filter(|r| !r.is_empty()) else {
            return Answer::failed(
                LookupOutcome::Error,
                "DescribePodIdentityAssociation answered without a roleArn",
            );
        };
        Answer::found(Association {
            role_arn: role_arn.to_owned(),
            target_role_arn: a
                .target_role_arn()
                .filter(|r| !r.is_empty())
                .map(Into::into),
            disable_session_tags: a.disable_session_tags().unwrap_or(false),
            session_policy: a.policy().filter(|p| !p.is_empty()).map(Into::into),
        })
    }
}

/// The outcome of a failed call, with a detail that names the call and
/// EKS's error code (never the message, which could quote the request).
fn classify<E: ProvideErrorMetadata>(error: &SdkError<E>, call: &str) -> Answer<Association> {
    use LookupOutcome::*;
    let (status, code) = match error {
        SdkError::TimeoutError(_) => return Answer::failed(Timeout, "timeout after 1s"),
        SdkError::DispatchFailure(failure) if failure.is_timeout() => {
            return Answer::failed(Timeout, "timeout after 1s")
        }
        SdkError::DispatchFailure(_) => {
            return Answer::failed(Error, &format!("{call}: the EKS API could not be reached"))
        }
        SdkError::ResponseError(_) => {
            return Answer::failed(
                Error,
                &format!("{call}: the EKS API's answer is unreadable"),
            )
        }
        SdkError::ServiceError(service) => (service.raw().status().as_u16(), error.code()),
        _ => return Answer::failed(Error, &format!("{call} could not be sent")),
    };
    let code = code.unwrap_or("");
    let throttled = status == 429
        || code.contains("Throttl")
        || code.contains("TooManyRequests")
        || code == "RequestLimitExceeded";
    let denied = matches!(status, 401 | 403)
        || code.starts_with("AccessDenied")
        || matches!(
            code,
            "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "ExpiredTokenException"
                | "InvalidClientTokenId"
                | "SignatureDoesNotMatch"
        );
    let named = match code {
        "" => format!("HTTP {status}"),
        code => format!("{code}, HTTP {status}"),
    };
    if throttled {
        Answer::failed(Throttled, &format!("{call} throttled ({named})"))
    } else if denied {
        Answer::failed(
            Denied,
            &format!(
                "{call} denied ({named}): the injector's role needs eks:ListPodIdentityAssociations \
                 and eks:DescribePodIdentityAssociation on the cluster"
            ),
        )
    } else if code == "ResourceNotFoundException" {
        Answer::failed(
            Error,
            &format!("{call}: no such cluster ({named}); check --cluster-name and the region"),
        )
    } else {
        Answer::failed(Error, &format!("{call} failed ({named})"))
    }
}
