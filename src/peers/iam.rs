//! The only module that talks to IAM: `SimulatePrincipalPolicy` (the
//! role's own policies) and, with `--session-policy`, `SimulateCustomPolicy`
//! (the association's session policy on its own), signed with the pod's own
//! credentials, for `--require`.
//!
//! It goes through `aws-sdk-iam` built from the same configuration as
//! every STS call (`Sts::sdk_config`): the endpoint is resolved as any AWS
//! SDK resolves IAM's (`AWS_ENDPOINT_URL_IAM`, `AWS_ENDPOINT_URL`, else
//! the partition's global endpoint), through the same bounded, counting
//! HTTP client, proxy and CA bundle. Every required action and resource
//! goes in one request; IAM evaluates their cross product, and each
//! requirement's own pair is read from the answer (`ResourceSpecificResults`
//! where IAM gives them). `Marker` is followed, at most [`MAX_PAGES`] pages.
//!
//! Invariant: the credentials are used for this call and dropped; error
//! texts are scrubbed of them. Reduces IAM's answers to [`Decision`]s or a
//! `failure::Failure`; what they mean for the verdict is `check`'s business.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_sdk_iam::types::{
    ContextEntry, ContextKeyTypeEnum, EvaluationResult, PermissionsBoundaryDecisionDetail,
    PolicyEvaluationDecisionType, Statement,
};

use crate::identity::arn::Requirement;
use crate::peers::failure::{Failure, FailureKind};
use crate::peers::sts::{failure_of, scrub_credentials, RecordExchange};

/// The most pages of results followed: each holds up to [`PAGE_SIZE`]
/// results, one per action, so this is far more than any `--require` list.
pub const MAX_PAGES: u32 = 10;

/// Results asked for per page (IAM's default is 100, its maximum 1000).
const PAGE_SIZE: i32 = 1000;

/// What IAM's simulator decided for one required action and resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalDecision {
    Allowed,
    /// No statement allows it.
    ImplicitDeny,
    /// A statement denies it.
    ExplicitDeny,
}

impl EvalDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            EvalDecision::Allowed => "allowed",
            EvalDecision::ImplicitDeny => "implicit_deny",
            EvalDecision::ExplicitDeny => "explicit_deny",
        }
    }

    fn of(decision: &PolicyEvaluationDecisionType) -> Option<Self> {
        match decision {
            PolicyEvaluationDecisionType::Allowed => Some(EvalDecision::Allowed),
            PolicyEvaluationDecisionType::ImplicitDeny => Some(EvalDecision::ImplicitDeny),
            PolicyEvaluationDecisionType::ExplicitDeny => Some(EvalDecision::ExplicitDeny),
            _ => None,
        }
    }
}

/// IAM's decision for one `--require` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub requirement: Requirement,
    pub decision: EvalDecision,
    /// The statements that decided it, as `POLICY_ID (POLICY_TYPE)`.
    pub matched: Vec<String>,
    /// `false` when the role's permissions boundary does not allow it.
    pub boundary_allows: Option<bool>,
    /// `false` when an organisation's SCP does not allow it.
    pub organizations_allow: Option<bool>,
    /// Context keys the policies use that the simulation had no value for.
    pub missing_context: Vec<String>,
}

/// One simulation: a decision per requirement, in their order, or why
/// there are none.
#[derive(Debug, Clone)]
pub struct Simulation {
    pub result: Result<Vec<Decision>, Failure>,
    /// The URL the last request went to, as the SDK resolved it.
    pub endpoint: Option<String>,
    /// Requests made: one per page.
    pub pages: u32,
    pub request_id: Option<String>,
}

/// A condition key's value the simulation is given (`ContextEntries`):
/// `aws:PrincipalTag/kubernetes-namespace` and the like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextValue {
    pub key: String,
    pub value: String,
}

/// Whose policies one simulation judges.
#[derive(Debug, Clone, Copy)]
pub enum Policies<'a> {
    /// The role's, by its ARN (`SimulatePrincipalPolicy`): its identity
    /// policies, its permissions boundary, the organisation's SCPs.
    Role(&'a str),
    /// A policy document alone (`SimulateCustomPolicy`): the association's
    /// session policy. IAM's answer has the same shape.
    Session(&'a str),
}

/// What one simulation asks about.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    pub policies: Policies<'a>,
    pub requirements: &'a [Requirement],
    /// Condition keys' values the pod knows.
    pub context: &'a [ContextValue],
}

/// Asks IAM, as `creds`, how the role's policies judge each requirement;
/// once, without the SDK's retries, each page within `timeout`. An answer
/// that does not cover a requirement is a `Failure`.
pub async fn simulate(
    sdk: &SdkConfig,
    creds: Credentials,
    question: Question<'_>,
    timeout: Duration,
) -> Simulation {
    let recorder = RecordExchange::default();
    let mut sim = Simulation {
        result: Ok(vec![]),
        endpoint: None,
        pages: 0,
        request_id: None,
    };
    let conf = aws_sdk_iam::config::Builder::from(sdk)
        .retry_config(RetryConfig::disabled())
        .timeout_config(TimeoutConfig::builder().operation_timeout(timeout).build())
        .credentials_provider(creds.clone())
        .build();
    let client = aws_sdk_iam::Client::from_conf(conf);
    let results = pages(&client, question, &recorder, &mut sim).await;
    sim.endpoint = recorder.endpoint();
    sim.result = results
        .map_err(|mut failure| {
            failure.message = scrub_credentials(failure.message, &creds);
            failure
        })
        .and_then(|results| {
            let resources = request_lists(question.requirements).1.len();
            question
                .requirements
                .iter()
                .map(|r| decide(r, &results, resources))
                .collect()
        });
    sim
}

/// Every page of IAM's answer, following `Marker`.
async fn pages(
    client: &aws_sdk_iam::Client,
    question: Question<'_>,
    recorder: &RecordExchange,
    sim: &mut Simulation,
) -> Result<Vec<EvaluationResult>, Failure> {
    let (actions, resources) = request_lists(question.requirements);
    let context: Vec<ContextEntry> = question
        .context
        .iter()
        .map(|c| {
            ContextEntry::builder()
                .context_key_name(&c.key)
                .context_key_values(&c.value)
                .context_key_type(ContextKeyTypeEnum::String)
                .build()
        })
        .collect();
    let mut results: Vec<EvaluationResult> = vec![];
    let mut marker: Option<String> = None;
    loop {
        sim.pages += 1;
        let asked = Asked {
            policies: question.policies,
            actions: &actions,
            resources: &resources,
            context: &context,
            marker: marker.take(),
        };
        let page = page(client, asked, recorder).await?;
        sim.request_id = page.request_id;
        results.extend(page.results);
        match page.marker {
            Some(next) if sim.pages < MAX_PAGES => marker = Some(next),
            Some(_) => {
                return Err(unexpected(format!(
                    "IAM's answer was still truncated after {MAX_PAGES} pages"
                )))
            }
            None => return Ok(results),
        }
    }
}

/// One page's request.
struct Asked<'a> {
    policies: Policies<'a>,
    actions: &'a [String],
    resources: &'a [String],
    context: &'a [ContextEntry],
    marker: Option<String>,
}

/// One page of IAM's answer: its results, the marker of the next page
/// when it is truncated, its request ID.
struct Page {
    results: Vec<EvaluationResult>,
    marker: Option<String>,
    request_id: Option<String>,
}

/// Sends one page's request; both operations take the same lists and
/// answer in the same shape.
async fn page(
    client: &aws_sdk_iam::Client,
    asked: Asked<'_>,
    recorder: &RecordExchange,
) -> Result<Page, Failure> {
    use aws_sdk_iam::operation::RequestId;
    let actions = Some(asked.actions.to_vec());
    let resources = Some(asked.resources.to_vec());
    let context = (!asked.context.is_empty()).then(|| asked.context.to_vec());
    let next =
        |truncated: bool, marker: Option<&str>| marker.filter(|_| truncated).map(str::to_owned);
    // The two operations' builders are distinct types with the same
    // setters, and their answers distinct types with the same getters.
    macro_rules! ask {
        ($builder:expr) => {{
            let out = $builder
                .set_action_names(actions)
                .set_resource_arns(resources)
                .set_context_entries(context)
                .max_items(PAGE_SIZE)
                .set_marker(asked.marker)
                .customize()
                .interceptor(recorder.clone())
                .send()
                .await
                .map_err(|err| failure_of(&err, None, "IAM"))?;
            Ok(Page {
                marker: next(out.is_truncated(), out.marker()),
                request_id: out.request_id().map(str::to_owned),
                results: out.evaluation_results().to_vec(),
            })
        }};
    }
    match asked.policies {
        Policies::Role(arn) => ask!(client.simulate_principal_policy().policy_source_arn(arn)),
        Policies::Session(policy) => {
            ask!(client.simulate_custom_policy().policy_input_list(policy))
        }
    }
}

/// The distinct actions and resources of `requirements`, in first-seen
/// order: IAM evaluates every action on every resource.
fn request_lists(requirements: &[Requirement]) -> (Vec<String>, Vec<String>) {
    let mut actions: Vec<String> = vec![];
    let mut resources: Vec<String> = vec![];
    for r in requirements {
        if !actions.contains(&r.action) {
            actions.push(r.action.clone());
        }
        if !resources.contains(&r.resource) {
            resources.push(r.resource.clone());
        }
    }
    (actions, resources)
}

/// The decision for `requirement` in IAM's `results`: the per-resource
/// result for its resource where IAM gives one (one result per action, with
/// `ResourceSpecificResults`); else a result for exactly its action and
/// resource that is not such an aggregate (IAM's older shape, one result
/// per pair); else, when only one resource was asked about, the action's
/// own result. The SCP's verdict comes with the result the decision is
/// read from.
fn decide(
    requirement: &Requirement,
    results: &[EvaluationResult],
    resources_asked: usize,
) -> Result<Decision, Failure> {
    let for_action: Vec<&EvaluationResult> = results
        .iter()
        .filter(|r| {
            r.eval_action_name()
                .eq_ignore_ascii_case(&requirement.action)
        })
        .collect();
    let organizations = |r: &EvaluationResult| {
        r.organizations_decision_detail()
            .map(|d| d.allowed_by_organizations())
    };
    let specific = for_action.iter().find_map(|r| {
        r.resource_specific_results()
            .iter()
            .find(|s| s.eval_resource_name() == requirement.resource)
            .map(|s| (r, s))
    });
    let decision = if let Some((parent, s)) = specific {
        read(
            requirement,
            s.eval_resource_decision(),
            s.matched_statements(),
            s.permissions_boundary_decision_detail(),
            organizations(parent),
            s.missing_context_values(),
        )
    } else {
        let exact = for_action.iter().find(|r| {
            r.resource_specific_results().is_empty()
                && r.eval_resource_name() == Some(requirement.resource.as_str())
        });
        let only = (resources_asked == 1).then(|| for_action.first()).flatten();
        exact.or(only).and_then(|r| {
            read(
                requirement,
                r.eval_decision(),
                r.matched_statements(),
                r.permissions_boundary_decision_detail(),
                organizations(r),
                r.missing_context_values(),
            )
        })
    };
    decision.ok_or_else(|| {
        unexpected(format!(
            "IAM's answer has no decision for {requirement}: it named no such action and \
             resource, or a decision this version of irsa-doctor does not know"
        ))
    })
}

/// A [`Decision`] from the fields a per-resource result and a per-pair
/// result share; `None` for a decision this version does not know.
fn read(
    requirement: &Requirement,
    decision: &PolicyEvaluationDecisionType,
    matched: &[Statement],
    boundary: Option<&PermissionsBoundaryDecisionDetail>,
    organizations_allow: Option<bool>,
    missing_context: &[String],
) -> Option<Decision> {
    Some(Decision {
        requirement: requirement.clone(),
        decision: EvalDecision::of(decision)?,
        matched: statements(matched),
        boundary_allows: boundary.map(|d| d.allowed_by_permissions_boundary()),
        organizations_allow,
        missing_context: missing_context.to_vec(),
    })
}

/// The statements as `POLICY_ID (POLICY_TYPE)`, once each.
fn statements(matched: &[Statement]) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for s in matched {
        let id = s.source_policy_id().unwrap_or("(unnamed policy)");
        let shown = match s.source_policy_type() {
            Some(kind) => format!("{id} ({})", kind.as_str()),
            None => id.to_owned(),
        };
        if !out.contains(&shown) {
            out.push(crate::guard::redact::one_line(shown));
        }
    }
    out
}

fn unexpected(message: String) -> Failure {
    Failure::new(FailureKind::Unexpected { retry: false }, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_iam::types::{
        OrganizationsDecisionDetail, PermissionsBoundaryDecisionDetail, ResourceSpecificResult,
    };

    fn req(text: &str) -> Requirement {
        Requirement::parse(text).unwrap()
    }

    fn statement(id: &str) -> Statement {
        Statement::builder().source_policy_id(id).build()
    }

    #[test]
    fn each_requirement_reads_its_own_resource_from_the_per_resource_results() {
        // One result per action, its top-level decision the most
        // restrictive across both resources asked about.
        let result = EvaluationResult::builder()
            .eval_action_name("s3:GetObject")
            .eval_resource_name("*")
            .eval_decision(PolicyEvaluationDecisionType::ImplicitDeny)
            .resource_specific_results(
                ResourceSpecificResult::builder()
                    .eval_resource_name("arn:aws:s3:::orders/*")
                    .eval_resource_decision(PolicyEvaluationDecisionType::Allowed)
                    .matched_statements(statement("orders-read"))
                    .build()
                    .unwrap(),
            )
            .resource_specific_results(
                ResourceSpecificResult::builder()
                    .eval_resource_name("arn:aws:sqs:eu-west-1:111122223333:q")
                    .eval_resource_decision(PolicyEvaluationDecisionType::ImplicitDeny)
                    .build()
                    .unwrap(),
            )
            .organizations_decision_detail(
                OrganizationsDecisionDetail::builder()
                    .allowed_by_organizations(true)
                    .build(),
            )
            .build()
            .unwrap();
        let d = decide(&req("s3:GetObject@arn:aws:s3:::orders/*"), &[result], 2).unwrap();
        assert_eq!(d.decision, EvalDecision::Allowed);
        assert_eq!(d.matched, ["orders-read"]);
        assert_eq!(d.organizations_allow, Some(true));
    }

    #[test]
    fn the_older_shape_of_one_result_per_pair_is_read_too() {
        let pair = |resource: &str, decision| {
            EvaluationResult::builder()
                .eval_action_name("s3:GetObject")
                .eval_resource_name(resource)
                .eval_decision(decision)
                .permissions_boundary_decision_detail(
                    PermissionsBoundaryDecisionDetail::builder()
                        .allowed_by_permissions_boundary(false)
                        .build(),
                )
                .build()
                .unwrap()
        };
        let results = [
            pair("arn:aws:s3:::a/*", PolicyEvaluationDecisionType::Allowed),
            pair(
                "arn:aws:s3:::b/*",
                PolicyEvaluationDecisionType::ExplicitDeny,
            ),
        ];
        let d = decide(&req("s3:GetObject@arn:aws:s3:::b/*"), &results, 2).unwrap();
        assert_eq!(d.decision, EvalDecision::ExplicitDeny);
        assert_eq!(d.boundary_allows, Some(false));
        // Neither shape covers a resource IAM did not name: not a decision.
        let none = decide(&req("s3:GetObject@arn:aws:s3:::c/*"), &results, 3);
        assert!(none.is_err());
        // An action IAM did not answer for is not a pass.
        let none = decide(&req("sqs:SendMessage"), &results, 1);
        assert!(none.is_err());
    }

    #[test]
    fn a_per_action_aggregate_is_never_read_as_the_answer_for_a_star_entry() {
        // IAM's aggregate over two resources, named `*`, denies because of
        // the other resource; its per-resource results do not include `*`.
        let aggregate = EvaluationResult::builder()
            .eval_action_name("s3:GetObject")
            .eval_resource_name("*")
            .eval_decision(PolicyEvaluationDecisionType::ImplicitDeny)
            .resource_specific_results(
                ResourceSpecificResult::builder()
                    .eval_resource_name("arn:aws:s3:::a/*")
                    .eval_resource_decision(PolicyEvaluationDecisionType::ImplicitDeny)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        assert!(decide(&req("s3:GetObject"), &[aggregate], 2).is_err());
    }

    #[test]
    fn the_request_names_each_action_and_resource_once() {
        let (actions, resources) = request_lists(&[
            req("s3:GetObject@arn:aws:s3:::a/*"),
            req("s3:PutObject@arn:aws:s3:::a/*"),
            req("s3:GetObject@arn:aws:s3:::b/*"),
            req("sts:GetCallerIdentity"),
        ]);
        assert_eq!(
            actions,
            ["s3:GetObject", "s3:PutObject", "sts:GetCallerIdentity"]
        );
        assert_eq!(resources, ["arn:aws:s3:::a/*", "arn:aws:s3:::b/*", "*"]);
    }
}
