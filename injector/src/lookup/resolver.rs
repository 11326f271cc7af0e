//! [`Lookups`], the webhook's [`Resolve`]: the ServiceAccount and the
//! association looked up side by side, each through its cache, and the
//! answers turned into the pod's identity, one record per lookup and one
//! warning per failed one.

use std::time::Duration;

use super::cache::{Cache, CachePolicy, Got, Wait};
use super::eks::{self, Associations};
use super::kubernetes::{self, RoleAnnotation, ServiceAccounts};
use super::{Answer, LookupKind, LookupOutcome, LookupRecord, Resolve, ResolveFuture, Resolved};
use crate::identity::{Association, Identity};

type SaKey = (String, String);
/// (cluster, namespace, service account).
type AssociationKey = (String, String, String);

/// The lookups behind `serve`; [`super::connect`] builds them from the
/// pod's environment, tests from explicit clients.
pub struct Lookups {
    service_accounts: ServiceAccounts,
    associations: Option<Associations>,
    sa_cache: Cache<SaKey, Answer<RoleAnnotation>>,
    association_cache: Cache<AssociationKey, Answer<Association>>,
}

impl Lookups {
    /// ServiceAccount lookups always; association lookups when given (the
    /// webhook has them with `--cluster-name`).
    pub fn new(service_accounts: ServiceAccounts, associations: Option<Associations>) -> Self {
        Self::with_cache(service_accounts, associations, CachePolicy::default())
    }

    pub fn with_cache(
        service_accounts: ServiceAccounts,
        associations: Option<Associations>,
        policy: CachePolicy,
    ) -> Self {
        Lookups {
            service_accounts,
            associations,
            sa_cache: Cache::new(policy),
            association_cache: Cache::new(policy),
        }
    }

    async fn service_account(&self, namespace: &str, name: &str) -> Got<Answer<RoleAnnotation>> {
        let key = (namespace.to_owned(), name.to_owned());
        self.sa_cache
            .get_or_fetch(key, Answer::is_failure, wait(kubernetes::BUDGET), || {
                self.service_accounts.get(namespace, name)
            })
            .await
    }

    async fn association(
        &self,
        namespace: &str,
        service_account: &str,
    ) -> Option<Got<Answer<Association>>> {
        let associations = self.associations.as_ref()?;
        let key = (
            associations.cluster().to_owned(),
            namespace.to_owned(),
            service_account.to_owned(),
        );
        let got = self
            .association_cache
            .get_or_fetch(key, Answer::is_failure, wait(eks::BUDGET), || {
                associations.get(namespace, service_account)
            })
            .await;
        Some(got)
    }

    fn cluster(&self) -> &str {
        self.associations.as_ref().map_or("", |a| a.cluster())
    }
}

impl Resolve for Lookups {
    fn resolve<'a>(&'a self, namespace: &'a str, service_account: &'a str) -> ResolveFuture<'a> {
        Box::pin(async move {
            let (sa, association) = tokio::join!(
                self.service_account(namespace, service_account),
                self.association(namespace, service_account)
            );
            let mut resolved = Resolved::default();
            record(
                &mut resolved,
                LookupKind::ServiceAccount,
                &sa,
                namespace,
                service_account,
            );
            if sa.value.is_failure() {
                resolved.warnings.push(format!(
                    "ServiceAccount {namespace}/{service_account} could not be read ({}); \
                     the doctor's expected role is not set from its annotation",
                    sa.value.detail
                ));
            }
            if let Some(association) = &association {
                record(
                    &mut resolved,
                    LookupKind::Association,
                    association,
                    namespace,
                    service_account,
                );
                if association.value.is_failure() {
                    // The annotation stands in, but an association would
                    // have overridden it: say so, so that a mismatch the
                    // doctor reports later is read with that in mind.
                    let consequence = match &sa.value.value {
                        Some(Some(_)) => {
                            "the doctor expects the ServiceAccount's annotated role, which an \
                             association would override"
                        }
                        _ => "the doctor's expected role is not set from it",
                    };
                    resolved.warnings.push(format!(
                        "the EKS Pod Identity association of {namespace}/{service_account} in \
                         cluster {} could not be read ({}); {consequence}",
                        self.cluster(),
                        association.value.detail
                    ));
                }
            }
            // EKS gives a pod with an association Pod Identity's variables,
            // whatever its ServiceAccount's annotation says.
            resolved.identity = match (association.and_then(|a| a.value.value), sa.value.value) {
                (Some(association), _) => Identity::Association(association),
                (None, Some(Some(role_arn))) => Identity::ServiceAccount { role_arn },
                _ => Identity::Unknown,
            };
            resolved
        })
    }
}

/// A caller that finds a request for its key under way waits for it a
/// little longer than that request's own budget (which ends it first),
/// then answers a timeout rather than spend another budget.
fn wait<T>(budget: Duration) -> Wait<Answer<T>> {
    Wait {
        limit: budget + Duration::from_millis(100),
        too_slow: || Answer::failed(LookupOutcome::Timeout, "timeout after 1s"),
    }
}

fn record<T>(
    resolved: &mut Resolved,
    kind: LookupKind,
    got: &Got<Answer<T>>,
    namespace: &str,
    name: &str,
) {
    tracing::debug!(
        lookup = kind.as_str(),
        outcome = got.value.outcome.as_str(),
        cached = got.cached,
        namespace,
        name,
        "lookup"
    );
    resolved.records.push(LookupRecord {
        kind,
        outcome: got.value.outcome,
        cached: got.cached,
    });
}
