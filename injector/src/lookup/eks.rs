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
//! What the SDK reads of an answer is bounded to [`MAX_ANSWER_BYTES`]: an
//! answer that announces more is refused before its body is read, and every
//! body is wrapped in that limit before the SDK reads it, as the root crate
//! does in `src/peers/traffic.rs`, so that one without a length (chunked)
//! cannot cost more either.

use std::time::Duration;

use aws_sdk_eks::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeDeserializationInterceptorContextRef,
};
use aws_sdk_eks::config::retry::RetryConfig;
use aws_sdk_eks::config::timeout::TimeoutConfig;
use aws_sdk_eks::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_eks::error::{BoxError, ProvideErrorMetadata, SdkError};
use aws_smithy_types::body::SdkBody;

use super::{causes, Answer, LookupOutcome};
use crate::identity::Association;

/// The budget of the two calls together.
pub const BUDGET: Duration = Duration::from_secs(1);

/// The longest answer the SDK is let read: EKS answers these calls in a
/// few KiB (a session policy is at most 2,048 characters).
pub const MAX_ANSWER_BYTES: u64 = 1024 * 1024;

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
            .interceptor(BoundedAnswers)
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

/// Refuses an answer that announces more than [`MAX_ANSWER_BYTES`], before
/// the SDK reads its body, and cuts any other at that many bytes.
#[derive(Debug)]
struct BoundedAnswers;

impl Intercept for BoundedAnswers {
    fn name(&self) -> &'static str {
        "BoundedAnswers"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response_mut();
        let body = response.take_body();
        *response.body_mut() = body.map(|inner| {
            SdkBody::from_body_1_x(http_body_util::Limited::new(
                inner,
                MAX_ANSWER_BYTES as usize,
            ))
        });
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let length = context
            .response()
            .headers()
            .get("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        match length {
            Some(n) if n > MAX_ANSWER_BYTES => Err(Box::new(TooLarge(n))),
            _ => Ok(()),
        }
    }
}

/// An answer [`BoundedAnswers`] refused, found again in the SDK's error.
#[derive(Debug)]
struct TooLarge(u64);

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "an answer of {} bytes, past the {MAX_ANSWER_BYTES} the injector reads",
            self.0
        )
    }
}

impl std::error::Error for TooLarge {}

/// Why an answer was too large, if it was: refused on its announced length,
/// or cut while it was read.
fn too_large(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    causes(error).find_map(|e| {
        if let Some(t) = e.downcast_ref::<TooLarge>() {
            Some(t.to_string())
        } else if e.is::<http_body_util::LengthLimitError>() {
            Some(format!(
                "an answer past the {MAX_ANSWER_BYTES} bytes the injector reads"
            ))
        } else {
            None
        }
    })
}

/// The outcome of a failed call, with a detail that names the call and
/// EKS's error code (never the message, which could quote the request).
fn classify<E>(error: &SdkError<E>, call: &str) -> Answer<Association>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
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
            let detail = match too_large(error) {
                Some(t) => format!("{call}: {t}"),
                None => format!("{call}: the EKS API's answer is unreadable"),
            };
            return Answer::failed(Error, &detail);
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
