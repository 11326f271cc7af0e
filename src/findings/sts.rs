//! The STS step's findings: STS's refusals and silences, the clock
//! offset its answers reveal, and a check that never finished.

use std::time::Duration;

use crate::findings::role::role_arn_refused;
use crate::findings::token::{audience_mismatch, DEFAULT_AUDIENCE};
use crate::identity::arn::RoleArn;
use crate::identity::token::Claims;
use crate::peers::failure::{Failure, FailureKind};
use crate::report::{Code, Finding};
use crate::time::format_unix;

/// `CHECK_TIMEOUT`: no verdict within `--timeout` (`limit`). Every
/// network call is bounded, so this means something blocked where nothing
/// should (a file read the SDK makes itself, say).
pub fn check_timeout(limit: Duration) -> Finding {
    let limit = humantime::format_duration(limit);
    Finding::error(
        Code::CheckTimeout,
        format!(
            "the check did not finish within --timeout {limit}: something it waited on \
             never answered"
        ),
        "Run RUST_LOG=debug irsa-doctor check to see the last step it reached. Look for settings that \
         name files which block when read (a FIFO, a device) or endpoints that accept \
         connections and never answer; raise --timeout only if STS is merely slow.",
    )
    .expected(format!("a verdict within {limit}"))
    .found(format!("no verdict after {limit}"))
}

/// How far this container's clock may be from STS's before SDKs fail.
/// Most SDKs refresh credentials 5 minutes before they expire; with a
/// clock further ahead than that, fresh credentials look stale or expired
/// (botocore refuses them), and further behind, expired ones are still
/// used and refused by AWS.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// `CLOCK_SKEW` when STS's clock minus ours is past
/// [`MAX_CLOCK_SKEW_SECS`] either way.
pub fn clock_skew(offset: i64) -> Option<Finding> {
    if offset.abs() <= MAX_CLOCK_SKEW_SECS {
        return None;
    }
    let ours = if offset < 0 { "ahead of" } else { "behind" };
    // To the minute past ten minutes, where the second is noise; to the
    // second near the threshold, where "5m" would read as within it.
    let secs = offset.unsigned_abs();
    let shown = if secs < 600 {
        secs
    } else {
        (secs + 30) / 60 * 60
    };
    let amount = humantime::format_duration(Duration::from_secs(shown));
    let effect = if offset < 0 {
        "credentials STS issues look expired or about to expire to an app's SDK, which refuses \
         them or refreshes them on every call"
    } else {
        "an app's SDK keeps using credentials after they have expired, and AWS refuses them"
    };
    Some(
        Finding::error(
            Code::ClockSkew,
            format!("this container's clock is {amount} {ours} STS's: {effect}"),
            "Fix the node's time sync (chrony or systemd-timesyncd against the Amazon Time Sync \
             Service, 169.254.169.123). A container shares the node's clock, so a fake clock \
             (faketime, a time namespace) in the image is the other cause. Inspect the node's \
             sync: kubectl debug node/<node> -it --image=busybox -- date -u, against date -u \
             on a machine in sync.",
        )
        .expected(format!(
            "a clock within {} of STS's",
            humantime::format_duration(Duration::from_secs(MAX_CLOCK_SKEW_SECS.unsigned_abs()))
        ))
        .found(format!(
            "this clock {amount} {ours} STS's (offset {offset:+} s)"
        )),
    )
}

/// botocore's advisory refresh (`_DEFAULT_ADVISORY_REFRESH_TIMEOUT`): from
/// 15 minutes before credentials expire, every call of a botocore app
/// (boto3, the AWS CLI) first asks for new ones.
pub const BOTOCORE_REFRESH_AHEAD_SECS: i64 = 15 * 60;

/// botocore's mandatory refresh (`_DEFAULT_MANDATORY_REFRESH_TIMEOUT`):
/// from 10 minutes before, every call blocks until it has new credentials,
/// and fails when the new ones are as old.
pub const BOTOCORE_MUST_REFRESH_SECS: i64 = 10 * 60;

/// Who handed out credentials whose expiry is judged.
#[derive(Debug, Clone, Copy)]
pub enum Issuer<'a> {
    /// EKS Pod Identity's agent, at this URI: the app's SDK gets the same
    /// answer.
    Agent(&'a str),
    /// STS (or what answers at its endpoint, shown here), for
    /// irsa-doctor's own 900-second `AssumeRoleWithWebIdentity` session.
    Sts(Option<&'a str>),
}

/// When credentials expire, and how long they had left when checked.
#[derive(Debug, Clone, Copy)]
pub struct Expiry {
    /// The credentials' `Expiration`, in Unix seconds.
    pub expires: i64,
    /// Seconds left (negative: past), by `clock`.
    pub left: i64,
    /// Whose clock `left` is by: STS's when this container's is off it by
    /// more than [`MAX_CLOCK_SKEW_SECS`] (`CLOCK_SKEW` then says so), else
    /// this container's.
    pub by_sts_clock: bool,
    /// Whether this container's clock was compared with STS's at all.
    pub clock_checked: bool,
}

impl Expiry {
    fn clock(&self) -> &'static str {
        if self.by_sts_clock {
            "STS's clock"
        } else {
            "this container's clock"
        }
    }
}

fn secs_text(secs: i64) -> String {
    humantime::format_duration(Duration::from_secs(secs.unsigned_abs())).to_string()
}

/// Where the credentials came from, for a message.
fn issuer_text(issuer: Issuer<'_>) -> String {
    match issuer {
        Issuer::Agent(uri) => format!("the EKS Pod Identity agent at {uri}"),
        Issuer::Sts(endpoint) => format!(
            "STS at {} (AssumeRoleWithWebIdentity)",
            endpoint.unwrap_or("its endpoint")
        ),
    }
}

/// What to do about expired or short-lived credentials, by who handed
/// them out.
fn expiry_remedy(issuer: Issuer<'_>, e: &Expiry) -> String {
    match issuer {
        Issuer::Agent(_) => {
            let clock = if e.clock_checked {
                ""
            } else {
                " Check the node's clock too (chrony or systemd-timesyncd against the Amazon \
                 Time Sync Service): STS could not be asked to compare."
            };
            format!(
                "The agent caches credentials (about 6 hours, 59 minutes with a target role) and \
                 should hand out fresh ones long before they expire. Read the logs of the \
                 eks-pod-identity-agent pod on this node (kubectl -n kube-system get pods -o \
                 wide | grep eks-pod-identity-agent) for EKS Auth errors, and delete that pod \
                 so the DaemonSet starts a fresh one with an empty cache. Make sure nothing else \
                 answers at AWS_CONTAINER_CREDENTIALS_FULL_URI (a sidecar or a proxy replaying an \
                 old answer).{clock}"
            )
        }
        Issuer::Sts(_) => "STS issues a new session for every call, lasting the DurationSeconds \
             asked (900 s by irsa-doctor, 3600 s by default by the app's SDK, up to the role's \
             MaxSessionDuration; a role cannot make it shorter), so what answered is not STS or \
             replays old answers. Check AWS_ENDPOINT_URL_STS and AWS_ENDPOINT_URL (a credentials \
             cache or an STS emulator) and any proxy between the pod and STS (kubectl exec <pod> -- \
             env | grep -E 'AWS_ENDPOINT_URL|_PROXY'), and point the SDK at STS itself \
             (https://sts.<region>.amazonaws.com)."
            .to_owned(),
    }
}

/// `CREDENTIALS_EXPIRED`: credentials handed out already expired. An app's
/// SDK would send them and AWS would refuse them (`ExpiredToken`); botocore
/// fails at once ("Credentials were refreshed, but the refreshed
/// credentials are still expired").
pub fn credentials_expired(issuer: Issuer<'_>, e: &Expiry) -> Finding {
    let when = format_unix(e.expires);
    let ago = secs_text(e.left);
    let effect = match issuer {
        Issuer::Agent(_) => "an app's SDK gets the same answer",
        Issuer::Sts(_) => "an app's SDK asking the same endpoint would get such credentials too",
    };
    Finding::error(
        Code::CredentialsExpired,
        format!(
            "{} handed out credentials that expired at {when}, {ago} ago by {}: {effect}, AWS \
             refuses expired credentials (ExpiredToken), and botocore fails at once \
             (\"Credentials were refreshed, but the refreshed credentials are still expired\")",
            issuer_text(issuer),
            e.clock(),
        ),
        expiry_remedy(issuer, e),
    )
    .expected("credentials that have not expired")
    .found(format!("Expiration {when}, {ago} ago by {}", e.clock()))
}

/// `CREDENTIALS_EXPIRING`: credentials handed out that expire within
/// `window` seconds, so that an app's SDK refreshes on every call.
pub fn credentials_expiring(issuer: Issuer<'_>, e: &Expiry, window: i64) -> Finding {
    let when = format_unix(e.expires);
    let left = secs_text(e.left);
    let (what, effect) = match issuer {
        Issuer::Agent(_) => (
            "credentials that",
            "every call of a boto3 or AWS CLI app asks the agent for credentials again \
             (botocore refreshes 15 minutes before expiry, and from 10 minutes before blocks \
             each call until it has fresh ones); the AWS SDK for Rust refreshes 5 to 10 seconds \
             before expiry and is not affected until then",
        ),
        Issuer::Sts(_) => (
            "a 15-minute session whose credentials",
            "a session that short is not STS's doing; an app's SDK getting such credentials from \
             the same endpoint would be inside botocore's must-refresh window (10 minutes before \
             expiry) and block every call on a refresh",
        ),
    };
    Finding::warning(
        Code::CredentialsExpiring,
        format!(
            "{} handed out {what} expire in {left}, at {when} by {}: {effect}",
            issuer_text(issuer),
            e.clock(),
        ),
        expiry_remedy(issuer, e),
    )
    .expected(format!(
        "credentials with more than {} left",
        secs_text(window)
    ))
    .found(format!("Expiration {when}, {left} left by {}", e.clock()))
}

/// The trust-policy statement that would admit this token into `role`.
pub fn trust_policy(role: &RoleArn, claims: &Claims, audience: &str) -> String {
    let provider = claims
        .iss
        .as_deref()
        .map(|iss| iss.trim_start_matches("https://").trim_end_matches('/'))
        .unwrap_or("oidc.eks.<region>.amazonaws.com/id/<id>");
    let sub = claims
        .sub
        .as_deref()
        .unwrap_or("system:serviceaccount:<namespace>:<service account>");
    // Written out by hand to keep the key order of AWS's documentation;
    // values go through serde_json for escaping.
    let q = |v: &str| serde_json::Value::from(v).to_string();
    let federated = format!(
        "arn:{}:iam::{}:oidc-provider/{provider}",
        role.partition, role.account
    );
    format!(
        r#"{{
  "Version": "2012-10-17",
  "Statement": [{{
    "Effect": "Allow",
    "Principal": {{"Federated": {}}},
    "Action": "sts:AssumeRoleWithWebIdentity",
    "Condition": {{"StringEquals": {{
      {}: {},
      {}: {}
    }}}}
  }}]
}}"#,
        q(&federated),
        q(&format!("{provider}:sub")),
        q(sub),
        q(&format!("{provider}:aud")),
        q(audience),
    )
}

/// The audience a trust policy's `aud` condition should name: the one
/// required, else the token's own when it has exactly one, else the
/// webhook's default.
fn policy_audience<'a>(required: Option<&'a str>, claims: &'a Claims) -> &'a str {
    match (required, claims.aud.as_slice()) {
        (Some(required), _) => required,
        (None, [only]) => only,
        (None, _) => DEFAULT_AUDIENCE,
    }
}

/// What STS's step knew when it failed, for the wording of its finding.
#[derive(Debug, Clone, Copy)]
pub struct Attempted<'a> {
    /// The role asked for, when `AWS_ROLE_ARN` parsed.
    pub role: Option<&'a RoleArn>,
    /// The token's claims, when it decoded.
    pub claims: Option<&'a Claims>,
    /// The audience the token must carry, when known: `--audience`, or
    /// Pod Identity's fixed one. `None` leaves it to the provider.
    pub audience: Option<&'a str>,
    /// The endpoint the SDK really used, when known.
    pub endpoint: Option<&'a str>,
    /// The proxy the requests to `endpoint` went through, as the AWS SDK
    /// for Rust reads the proxy variables (shown without credentials).
    pub proxy: Option<&'a str>,
    pub region: Option<&'a str>,
    pub attempts: u32,
    pub elapsed: Duration,
}

/// `FIPS_ENDPOINT_UNAVAILABLE`: FIPS is on, and STS has no FIPS endpoint
/// in `region`, so the name the SDK forms (`endpoint`) does not resolve or
/// answer; `found` is how the attempt failed. Every SDK forms that name
/// and fails the same way (aws/aws-sdk-go-v2#2686, aws/aws-cli#8750): the
/// app cannot get credentials either.
pub fn fips_unavailable(region: &str, endpoint: &str, found: &str) -> Finding {
    Finding::error(
        Code::FipsEndpointUnavailable,
        format!(
            "FIPS endpoints are on (AWS_USE_FIPS_ENDPOINT or the profile's use_fips_endpoint), \
             but STS has no FIPS endpoint in {region}: the SDKs form {endpoint}, which does not \
             answer, so the app gets no credentials either"
        ),
        format!(
            "STS serves FIPS endpoints only in us-east-1, us-east-2, us-west-1, us-west-2 and \
             GovCloud (us-gov-east-1, us-gov-west-1), and by AWS's FIPS page in Canada's \
             regions. Either run in such a region \
             (AWS_REGION), or turn FIPS off for this pod: kubectl set env deployment/<name> -n \
             <namespace> AWS_USE_FIPS_ENDPOINT=false (and remove use_fips_endpoint from the \
             profile). To see that the name does not exist: nslookup {}",
            endpoint
                .trim_start_matches("https://")
                .trim_end_matches('/')
        ),
    )
    .expected(format!("a FIPS endpoint for STS in {region}"))
    .found(format!("{endpoint}: {found}"))
}

/// The finding for STS's final refusal or silence, by [`FailureKind`].
pub fn sts_failure(failure: &Failure, a: &Attempted<'_>) -> Finding {
    let default_claims = Claims::default();
    let claims = a.claims.unwrap_or(&default_claims);
    let iss = claims.iss.as_deref().unwrap_or("(no iss claim)");
    let endpoint = a.endpoint.unwrap_or("(unknown endpoint)");
    let region = a.region.unwrap_or("(unknown region)");
    let role = a.role;
    let role_text = role.map_or_else(String::new, ToString::to_string);
    let account = role.map_or("<account>", |r| r.account.as_str());
    let answered = match (&failure.code, failure.http_status) {
        (Some(code), _) => format!("{code}: {}", failure.message),
        (None, Some(status)) => format!("HTTP {status}: {}", failure.message),
        (None, None) => failure.message.clone(),
    };
    let attempts = a.attempts;
    let tried = format!(
        "{attempts} attempt{} over {:.1} s",
        if attempts == 1 { "" } else { "s" },
        a.elapsed.as_secs_f64()
    );
    if let Some(finding) = a
        .proxy
        .and_then(|proxy| proxy_failure(failure, proxy, endpoint, &answered, &tried))
    {
        return finding;
    }
    match failure.kind {
        FailureKind::OidcProviderMissing => Finding::error(
            Code::OidcProviderMissing,
            format!("account {account} has no IAM OIDC provider for the token's issuer {iss}"),
            format!(
                "Create the provider in the role's account ({account}): eksctl utils \
                 associate-iam-oidc-provider --cluster <cluster> --approve, or aws iam \
                 create-open-id-connect-provider --url {iss} --client-id-list sts.amazonaws.com. \
                 If the role lives in another account than the cluster, the provider must exist \
                 in the role's account."
            ),
        )
        .expected(format!("an IAM OIDC provider for {iss} in account {account}"))
        .found(answered),
        FailureKind::AudienceMismatch => audience_mismatch(a.audience, claims, Some(&answered)),
        FailureKind::Thumbprint => Finding::error(
            Code::TokenRejected,
            format!("STS rejected the token: the IAM OIDC provider's thumbprint does not match {iss}'s certificate"),
            "Update the provider's thumbprint (aws iam update-open-id-connect-provider-thumbprint), \
             or recreate it with eksctl utils associate-iam-oidc-provider.",
        )
        .expected(format!("the provider's thumbprint matching {iss}'s TLS certificate"))
        .found(answered),
        FailureKind::TokenRejected => Finding::error(
            Code::TokenRejected,
            format!("STS rejected the token from {iss}"),
            "Check that the token comes from this cluster's issuer and that the IAM OIDC \
             provider for that issuer exists in the role's account with client ID \
             sts.amazonaws.com; a token copied from another cluster or a hand-made JWT is \
             refused. List the account's providers: aws iam list-open-id-connect-providers.",
        )
        .expected(format!("a token STS validates against the IAM OIDC provider for {iss}"))
        .found(answered),
        FailureKind::TokenExpired => Finding::error(
            Code::TokenExpired,
            "STS says the token has expired".to_owned(),
            "The kubelet refreshes the projected token at 80% of its lifetime: if STS calls it \
             expired, the refresh stopped or the node's clock is wrong. Restart the pod \
             (kubectl rollout restart deployment/<name> -n <namespace>) and check the kubelet \
             and NTP on the node.",
        )
        .expected(format!(
            "a token STS considers unexpired (exp {})",
            claims.exp.map_or("(none)".to_owned(), format_unix)
        ))
        .found(answered),
        FailureKind::AccessDenied => {
            let policy = role.map_or_else(String::new, |r| trust_policy(r, claims, policy_audience(a.audience, claims)));
            let name = role.map_or("<role>", |r| r.name.as_str());
            Finding::error(
                Code::TrustPolicyDenied,
                format!(
                    "STS denied AssumeRoleWithWebIdentity on {role_text}: its trust policy does \
                     not admit this token, or the role does not exist"
                ),
                format!(
                    "Make the role's trust policy admit this pod (aws iam update-assume-role-policy \
                     --role-name {name} --policy-document file://trust.json), with trust.json:\n\
                     {policy}\n\
                     Common mistakes: a sub naming another namespace or service account; \
                     StringEquals with a * (use StringLike); oidc.<region>.eks instead of \
                     oidc.eks.<region>; an aud of sts.amazon.com; the provider of another account \
                     or cluster. IAM is eventually consistent: right after a change, STS may deny \
                     for 10-30 s (--retry-denied-for 30s rides that out)."
                ),
            )
            .expected(format!(
                "a trust policy on {role_text} admitting sub {}",
                claims.sub.as_deref().unwrap_or("(no sub claim)")
            ))
            .found(format!(
                "{answered}; token iss {iss}, sub {}, aud [{}]",
                claims.sub.as_deref().unwrap_or("(none)"),
                claims.aud.join(", ")
            ))
        }
        FailureKind::RegionDisabled => Finding::error(
            Code::RegionDisabled,
            format!("STS is not activated in {region} for account {account}"),
            format!(
                "Activate STS in {region} (IAM console, Account settings, Security Token Service \
                 endpoints), or set AWS_REGION to a region where it is active. Then verify: \
                 aws sts get-caller-identity --region {region}."
            ),
        )
        .expected(format!("STS activated in {region} for account {account}"))
        .found(answered),
        FailureKind::InvalidRoleArn => role_arn_refused(&role_text, &answered),
        FailureKind::Throttled => Finding::error(
            Code::StsThrottled,
            format!("STS throttled every attempt ({tried})"),
            "Usually transient: the check is retried. If it persists, find what else in this \
             account calls STS so often (aws cloudtrail lookup-events --lookup-attributes \
             AttributeKey=EventSource,AttributeValue=sts.amazonaws.com), or raise --timeout.",
        )
        .expected("an answer from STS within --timeout")
        .found(answered),
        FailureKind::IdpUnreachable => Finding::error(
            Code::IdpUnreachable,
            format!("STS could not fetch the signing keys of the token's issuer {iss} ({tried})"),
            format!(
                "Usually transient on AWS's side, and retried. If it persists, check that the \
                 issuer's /.well-known/openid-configuration and JWKS are reachable from the \
                 internet (self-managed clusters must publish them): curl -sf \
                 {iss}/.well-known/openid-configuration"
            ),
        )
        .expected(format!("STS able to fetch {iss}'s signing keys"))
        .found(answered),
        FailureKind::TlsUntrusted => Finding::error(
            Code::StsUnreachable,
            format!("could not reach STS at {endpoint}: the TLS handshake failed ({tried})"),
            format!(
                "The container must trust the endpoint's certificate: put a CA bundle at \
             /etc/ssl/certs/ca-certificates.crt (or name one with SSL_CERT_FILE), or name the \
             extra CA in AWS_CA_BUNDLE (botocore, the AWS CLI and the AWS SDKs for Go, Java \
             and JavaScript read it; the AWS SDK for Rust does not). Behind a \
             TLS-intercepting proxy, that bundle must hold the proxy's CA. See whose \
             certificate answers: curl -v {endpoint}"
            ),
        )
        .expected(format!("a certificate for {endpoint} that this container trusts"))
        .found(answered),
        FailureKind::Unreachable => Finding::error(
            Code::StsUnreachable,
            format!("could not reach STS at {endpoint} ({tried})"),
            format!(
                "From a private VPC, create an STS interface endpoint \
                 (com.amazonaws.{region}.sts) or allow HTTPS egress to it; check \
                 NetworkPolicies, security groups, DNS and HTTPS_PROXY/NO_PROXY. \
                 AWS_ENDPOINT_URL_STS, when set, overrides the endpoint. Try it from this \
                 pod: curl -sv {endpoint}"
            ),
        )
        .expected(format!("an HTTP answer from {endpoint} within --timeout"))
        .found(answered),
        FailureKind::EndpointMissing => fips_unavailable(region, endpoint, &answered),
        FailureKind::Unexpected { .. } => Finding::error(
            Code::StsError,
            format!("STS at {endpoint} answered unexpectedly ({tried})"),
            format!(
                "Check what answers at that endpoint: a proxy, a captive portal or a wrong \
             AWS_ENDPOINT_URL_STS gives answers that are not STS's. A 5xx from STS itself is \
             transient. See what answers: curl -sv {endpoint}"
            ),
        )
        .expected("an STS XML answer")
        .found(answered),
    }
}

/// `PROXY_UNREACHABLE` when the failure is the proxy's: no connection to
/// it (every connection the client makes goes to the proxy), a tunnel it
/// would not open, or a forwarded request it refused (407, or a 403 that is
/// not STS's). `None` for anything STS itself may have said or not said.
fn proxy_failure(
    failure: &Failure,
    proxy: &str,
    endpoint: &str,
    answered: &str,
    tried: &str,
) -> Option<Finding> {
    let refused_status = failure.code.is_none()
        && matches!(failure.http_status, Some(403 | 407))
        && !failure.kind.is_transient();
    // hyper-util's tunnel errors: the proxy answered CONNECT with something
    // other than 200 (407 has its own wording), or hung up. "failed to
    // create underlying connection" is no connection at all.
    let tunnel = [
        "tunnel error: unsuccessful",
        "tunnel error: proxy authorization required",
        "tunnel error: unexpected end of file",
    ]
    .iter()
    .any(|t| failure.message.contains(t));
    let what = if refused_status {
        format!("the proxy {proxy} refused to forward the request to STS at {endpoint} ({tried})")
    } else if tunnel {
        format!(
            "the proxy {proxy} would not open a tunnel (CONNECT) to STS at {endpoint} ({tried})"
        )
    } else if failure.kind == FailureKind::Unreachable && !failure.timed_out {
        format!("could not connect to the proxy {proxy} on the way to STS at {endpoint} ({tried})")
    } else {
        return None;
    };
    let auth = failure.http_status == Some(407) || answered.contains("authorization required");
    let remedy = if auth {
        format!(
            "The proxy {proxy} asks for credentials: give them in the proxy variable \
             (HTTPS_PROXY=http://user:password@host:port, HTTP_PROXY for http endpoints), or \
             have the proxy admit this pod. If STS should be reached directly (an STS VPC \
             endpoint), add its host to NO_PROXY. Try it from the pod: curl -sv -x {proxy} \
             -U <user>:<password> {endpoint}"
        )
    } else {
        format!(
            "Check that the proxy {proxy} is up, reachable from this pod (NetworkPolicies, \
             security groups) and allows {endpoint}; the proxy comes from HTTPS_PROXY (or \
             HTTP_PROXY for an http endpoint, or ALL_PROXY). If STS should be reached \
             directly (an STS VPC endpoint), add its host to NO_PROXY. Try it from the pod: \
             curl -sv -x {proxy} {endpoint}"
        )
    };
    Some(
        Finding::error(Code::ProxyUnreachable, what, remedy)
            .expected(format!("the proxy {proxy} passing requests to {endpoint}"))
            .found(answered.to_owned()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Severity;

    fn failure(kind: FailureKind, code: Option<&str>) -> Failure {
        Failure {
            kind,
            code: code.map(str::to_owned),
            message: "the message".into(),
            http_status: Some(400),
            request_id: None,
            timed_out: false,
        }
    }

    fn finding(kind: FailureKind) -> Finding {
        let role = RoleArn::parse("arn:aws:iam::111122223333:role/app").unwrap();
        let claims = Claims {
            iss: Some("https://oidc.eks.eu-west-1.amazonaws.com/id/ABC".into()),
            sub: Some("system:serviceaccount:pay:app".into()),
            aud: vec!["sts.amazonaws.com".into()],
            ..Claims::default()
        };
        sts_failure(
            &failure(kind, Some("Code")),
            &Attempted {
                role: Some(&role),
                claims: Some(&claims),
                audience: Some("sts.amazonaws.com"),
                endpoint: Some("https://sts.eu-west-1.amazonaws.com/"),
                proxy: None,
                region: Some("eu-west-1"),
                attempts: 3,
                elapsed: Duration::from_millis(1500),
            },
        )
    }

    #[test]
    fn each_failure_kind_has_its_code_and_shows_stss_answer() {
        let cases = [
            (FailureKind::OidcProviderMissing, Code::OidcProviderMissing),
            (FailureKind::AudienceMismatch, Code::TokenAudienceMismatch),
            (FailureKind::Thumbprint, Code::TokenRejected),
            (FailureKind::TokenRejected, Code::TokenRejected),
            (FailureKind::TokenExpired, Code::TokenExpired),
            (FailureKind::AccessDenied, Code::TrustPolicyDenied),
            (FailureKind::RegionDisabled, Code::RegionDisabled),
            (FailureKind::InvalidRoleArn, Code::RoleArnInvalid),
            (FailureKind::Throttled, Code::StsThrottled),
            (FailureKind::IdpUnreachable, Code::IdpUnreachable),
            (FailureKind::TlsUntrusted, Code::StsUnreachable),
            (FailureKind::Unreachable, Code::StsUnreachable),
            (FailureKind::Unexpected { retry: true }, Code::StsError),
        ];
        for (kind, code) in cases {
            let f = finding(kind);
            assert_eq!((f.code, f.severity), (code, Severity::Error), "{kind:?}");
            let found = f.found.clone().unwrap_or_default();
            assert!(
                found.contains("Code: the message") || f.message.contains("Code: the message"),
                "{kind:?}: {f:?}"
            );
            assert!(!f.remedy.is_empty() && f.expected.is_some(), "{kind:?}");
        }
    }

    #[test]
    fn remedies_name_the_real_account_region_endpoint_and_issuer() {
        let missing = finding(FailureKind::OidcProviderMissing);
        assert!(missing.message.contains("account 111122223333"));
        assert!(missing
            .remedy
            .contains("--url https://oidc.eks.eu-west-1.amazonaws.com/id/ABC"));
        let disabled = finding(FailureKind::RegionDisabled);
        assert!(disabled.remedy.contains("Activate STS in eu-west-1"));
        let unreachable = finding(FailureKind::Unreachable);
        assert!(unreachable
            .message
            .contains("https://sts.eu-west-1.amazonaws.com/ (3 attempts over 1.5 s)"));
        assert!(unreachable.remedy.contains("com.amazonaws.eu-west-1.sts"));
        let denied = finding(FailureKind::AccessDenied);
        assert!(
            denied.remedy.contains("--role-name app"),
            "{}",
            denied.remedy
        );
        assert!(denied
            .found
            .unwrap()
            .contains("sub system:serviceaccount:pay:app"));
    }

    #[test]
    fn issuer_and_retry_findings_name_the_issuer_and_the_attempts() {
        let iss = "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC";
        let thumbprint = finding(FailureKind::Thumbprint);
        assert!(thumbprint.message.contains(iss), "{}", thumbprint.message);
        assert!(thumbprint
            .remedy
            .contains("update-open-id-connect-provider-thumbprint"));
        let idp = finding(FailureKind::IdpUnreachable);
        assert!(idp.message.contains(iss), "{}", idp.message);
        assert!(
            idp.message.contains("3 attempts over 1.5 s"),
            "{}",
            idp.message
        );
        assert_eq!(
            idp.expected,
            Some(format!("STS able to fetch {iss}'s signing keys"))
        );
        let throttled = finding(FailureKind::Throttled);
        assert!(
            throttled.message.contains("3 attempts over 1.5 s"),
            "{}",
            throttled.message
        );
        assert!(
            throttled.remedy.contains("--timeout"),
            "{}",
            throttled.remedy
        );
    }

    #[test]
    fn an_answer_without_a_code_shows_the_http_status() {
        let f = sts_failure(
            &failure(FailureKind::Unexpected { retry: false }, None),
            &Attempted {
                role: None,
                claims: None,
                audience: Some("sts.amazonaws.com"),
                endpoint: None,
                proxy: None,
                region: None,
                attempts: 1,
                elapsed: Duration::ZERO,
            },
        );
        assert_eq!(f.found.as_deref(), Some("HTTP 400: the message"));
        assert!(f
            .message
            .contains("(unknown endpoint) answered unexpectedly (1 attempt over"));
    }

    #[test]
    fn through_a_proxy_the_proxys_own_failures_name_it() {
        let via_proxy = |failure: Failure| {
            sts_failure(
                &failure,
                &Attempted {
                    role: None,
                    claims: None,
                    audience: Some("sts.amazonaws.com"),
                    endpoint: Some("https://sts.eu-west-1.amazonaws.com/"),
                    proxy: Some("http://proxy.invalid:3128"),
                    region: None,
                    attempts: 2,
                    elapsed: Duration::ZERO,
                },
            )
        };
        let refused = Failure {
            http_status: None,
            ..failure(FailureKind::Unreachable, None)
        };
        let f = via_proxy(refused.clone());
        assert_eq!(f.code, Code::ProxyUnreachable);
        assert!(
            f.message
                .starts_with("could not connect to the proxy http://proxy.invalid:3128"),
            "{}",
            f.message
        );
        assert!(f.remedy.contains("NO_PROXY"), "{}", f.remedy);

        let tunnel = Failure {
            message: "io error: tunnel error: unsuccessful".into(),
            ..refused.clone()
        };
        assert!(via_proxy(tunnel)
            .message
            .contains("would not open a tunnel (CONNECT)"));

        let auth = Failure {
            http_status: Some(407),
            ..failure(FailureKind::Unexpected { retry: false }, None)
        };
        let f = via_proxy(auth);
        assert_eq!(f.code, Code::ProxyUnreachable);
        assert!(f.message.contains("refused to forward"), "{}", f.message);
        assert!(f.remedy.contains("asks for credentials"), "{}", f.remedy);

        // STS's own answers, and silences, stay STS's.
        let denied = failure(FailureKind::AccessDenied, Some("AccessDenied"));
        assert_eq!(via_proxy(denied).code, Code::TrustPolicyDenied);
        let slow = Failure {
            timed_out: true,
            ..refused
        };
        assert_eq!(via_proxy(slow).code, Code::StsUnreachable);
    }

    #[test]
    fn clock_skew_is_past_five_minutes_either_way() {
        assert!(clock_skew(300).is_none());
        assert!(clock_skew(-300).is_none());
        let ahead = clock_skew(-7200).unwrap();
        assert!(ahead.message.contains("2h ahead of"), "{}", ahead.message);
        let behind = clock_skew(301).unwrap();
        assert!(behind.message.contains("behind"), "{}", behind.message);
        assert_eq!(behind.code, Code::ClockSkew);
        assert_eq!(
            behind.found.as_deref(),
            Some("this clock 5m 1s behind STS's (offset +301 s)")
        );
    }

    #[test]
    fn a_timeout_names_the_limit() {
        let f = check_timeout(Duration::from_secs(30));
        assert_eq!((f.code, f.severity), (Code::CheckTimeout, Severity::Error));
        assert!(f.message.contains("--timeout 30s"), "{}", f.message);
        assert_eq!(f.found.as_deref(), Some("no verdict after 30s"));
    }

    #[test]
    fn trust_policy_names_real_account_provider_and_subject() {
        let role = RoleArn::parse("arn:aws:iam::111122223333:role/app").unwrap();
        let claims = Claims {
            iss: Some("https://oidc.eks.eu-west-1.amazonaws.com/id/ABC".into()),
            sub: Some("system:serviceaccount:pay:app".into()),
            ..Claims::default()
        };
        let policy: serde_json::Value =
            serde_json::from_str(&trust_policy(&role, &claims, "sts.amazonaws.com")).unwrap();
        let statement = &policy["Statement"][0];
        assert_eq!(
            statement["Principal"]["Federated"],
            "arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC"
        );
        assert_eq!(
            statement["Condition"]["StringEquals"]["oidc.eks.eu-west-1.amazonaws.com/id/ABC:sub"],
            "system:serviceaccount:pay:app"
        );
    }
}
