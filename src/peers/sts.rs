//! The only module that talks to AWS STS (`iam.rs` talks to IAM, through
//! the configuration this module holds, which `settings::aws` loads).
//!
//! It makes three kinds of call, all through the AWS SDK so that endpoint,
//! region and credential resolution are exactly what an app in this
//! container gets: the unsigned `AssumeRoleWithWebIdentity` with the pod's
//! token, a resolution of the SDK's default credential chain, and a signed
//! `GetCallerIdentity` to name whoever that chain lands on.
//!
//! Every STS answer is reduced here to a [`Failure`] with a [`FailureKind`];
//! `check/` decides what that means for the verdict. Credentials returned
//! by STS are dropped before these functions return, and STS messages are
//! scrubbed of the token in case a validation error quotes it.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::SdkConfig;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use aws_sdk_sts::config::Region;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::operation::RequestId;

use crate::identity::token::RawToken;
pub use crate::peers::exchange::RecordExchange;
use crate::peers::exchange::StopBeforeSigning;
use crate::peers::traffic::{counting_client, Replay, StsCounters, LENGTH_LIMIT_ERROR};
use crate::report::Finding;
use crate::settings::endpoint::{profile_switches_invalid, SWITCHES};

pub use crate::peers::traffic::MAX_RESPONSE_BYTES;

/// Our `AssumeRoleWithWebIdentity` asks for the shortest session STS
/// allows; the credentials' expiry is then STS's clock plus this.
const SESSION_SECONDS: i32 = 900;

/// 2001-09-09: an expiry before this is not a real one.
const PLAUSIBLE_EPOCH: i64 = 1_000_000_000;

pub use crate::settings::aws::FALLBACK_REGION;

// The text cleaner lives in `redact` (a leaf) so that the pure trust-policy
// evaluator can quote a policy's values through it too.
use crate::guard::redact::one_line;
use crate::guard::text::describe;
use crate::peers::failure::classify;
// Re-exported for the retry code in `check/`, which another change
// rewrites; new code imports them from `failure`.
pub use crate::peers::failure::{Failure, FailureKind};

/// A successful `AssumeRoleWithWebIdentity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assumed {
    pub arn: String,
    /// The session's credentials (registered for redaction; their `Debug`
    /// shows no secret), for the calls `--require` makes as the role.
    pub credentials: Option<Credentials>,
    pub request_id: Option<String>,
    pub subject: Option<String>,
    pub audience: Option<String>,
    pub provider: Option<String>,
}

/// One attempt at `AssumeRoleWithWebIdentity`.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub result: Result<Assumed, Failure>,
    /// The URL the request went to, as the SDK resolved it.
    pub endpoint: Option<String>,
    /// STS's clock minus ours, in seconds, when an answer came: from the
    /// credentials' expiry on success, else from the `Date` header.
    pub clock_offset: Option<i64>,
}

// What the default chain lands on lives beside this file (`chain.rs`), so
// that this one stays the STS calls alone.
pub use crate::peers::chain::{ChainOutcome, ChainSource, Known};

/// The AWS configuration of this container, as an SDK would load it.
pub struct Sts {
    sdk: SdkConfig,
    region_missing: bool,
    /// Files the SDK would read that could not be used (see `profile.rs`).
    file_findings: Vec<Finding>,
    /// The HTTPS client would read an unusable file: nothing may be sent.
    stop_sending: bool,
    /// The default chain would read an unusable file: do not resolve it.
    skip_chain: bool,
    /// The `AWS_CA_BUNDLE` file trusted besides the system's roots.
    ca_bundle: Option<String>,
    /// That file's trust, for the other HTTPS requests the check makes
    /// (the token's issuer, `--verify-issuer`).
    tls: Option<aws_smithy_http_client::tls::TlsContext>,
    /// Answers handed to the SDK's own requests instead of asking again.
    replay: Arc<Replay>,
    /// The files the default chain reads (none for a given configuration).
    chain_files: crate::settings::profile::ChainFiles,
    /// Where this configuration's requests are counted, the agent's too.
    counters: Arc<StsCounters>,
    /// The role chain the selected profile asks for, if it is one.
    profile_chain: Option<ProfileChainRead>,
}

/// The selected profile's role chain, or why the SDK cannot follow it.
pub type ProfileChainRead =
    Result<crate::settings::profile_chain::ProfileChain, crate::settings::profile_chain::Problem>;

/// Where the AWS configuration comes from.
#[derive(Debug, Clone)]
pub enum AwsSource {
    /// This process's environment and shared config files, as any AWS SDK
    /// in this container would read them.
    Environment,
    /// A configuration the caller loaded: tests point it at a loopback
    /// stand-in. Its HTTP client is replaced by the counting, bounded one.
    Given(Box<SdkConfig>),
}

impl Sts {
    /// Loads the configuration from `source`; see [`Sts::from_env`].
    pub async fn load(source: &AwsSource, deadline: Instant, counters: Arc<StsCounters>) -> Self {
        match source {
            AwsSource::Environment => Self::from_env(deadline, counters).await,
            AwsSource::Given(sdk) => {
                let replay = Arc::new(Replay::default());
                let mut sdk = SdkConfig::clone(sdk).into_builder();
                // A configuration handed in carries no AWS_CA_BUNDLE: that
                // is the environment's, read by `from_env`.
                if let Some(client) = counting_client(counters.clone(), replay.clone(), None) {
                    sdk.set_http_client(Some(client));
                }
                Sts {
                    replay,
                    counters,
                    ..Self::from_sdk_config(sdk.build())
                }
            }
        }
    }

    /// Loads region, endpoints and the credential chain from the
    /// environment and shared config files, like any AWS SDK in this
    /// container, with the SDK's default retries for the chain's own calls
    /// (as the app gets them). Loading may ask IMDS for the region; if that
    /// does not finish by `deadline`, [`FALLBACK_REGION`] is used and
    /// reported as missing.
    ///
    /// Every STS request made through this configuration, the default
    /// chain's included, is counted in `counters`.
    ///
    /// The files the SDK would read are judged within bounds first, by
    /// `profile.rs`; the shared config files are handed to aws-config as
    /// contents, so that it never reads them itself. When the HTTPS client
    /// would read an unusable CA file, or `AWS_CA_BUNDLE` is unusable,
    /// nothing is loaded that could build it: the region comes from the
    /// environment alone. A usable `AWS_CA_BUNDLE` is added to the system's
    /// roots for every call, the default chain's included.
    pub async fn from_env(deadline: Instant, counters: Arc<StsCounters>) -> Self {
        let loaded = crate::settings::profile::load(|name| std::env::var(name).ok());
        // The profile's FIPS and dual-stack switches, judged as the
        // variables are (`settings::endpoint::judge`).
        let env_var = |name: &str| std::env::var(name).ok();
        let keys = SWITCHES.map(|(_, key, _)| key);
        let switch_findings =
            crate::settings::profile_chain::selected_values(&loaded.files, env_var, &keys)
                .await
                .map(|(profile, values)| profile_switches_invalid(&profile, &values, env_var))
                .unwrap_or_default();
        let with_files = |mut sts: Sts| {
            sts.ca_bundle = loaded
                .ca_bundle
                .as_ref()
                .map(|b| b.path().display().to_string());
            sts.tls = loaded.ca_bundle.as_ref().map(|b| b.tls_context());
            sts.file_findings = loaded.findings.clone();
            sts.file_findings.extend(switch_findings.iter().cloned());
            sts.stop_sending = loaded.stop_sending;
            sts.skip_chain = loaded.skip_chain;
            sts.chain_files = loaded.chain_files.clone();
            sts
        };
        let replay = Arc::new(Replay::default());
        let tls = loaded.ca_bundle.as_ref().map(|b| b.tls_context());
        let client = || counting_client(counters.clone(), replay.clone(), tls.clone());
        let config = crate::settings::aws::load(&loaded, client, deadline).await;
        let mut sts = Self::from_sdk_config(config.sdk);
        sts.profile_chain =
            crate::settings::profile_chain::load(&loaded.files, |n| std::env::var(n).ok()).await;
        // A region IMDS did not give in time is missing, though
        // `FALLBACK_REGION` was put in its place to load.
        sts.region_missing |= config.region_missing;
        if loaded.stop_sending {
            return with_files(Sts { counters, ..sts });
        }
        with_files(Sts {
            replay,
            counters,
            ..sts
        })
    }

    /// The configuration every client is built from: region, endpoints
    /// (`AWS_ENDPOINT_URL_<SERVICE>` included), the bounded, counting HTTP
    /// client with its proxy and CA bundle.
    pub fn sdk_config(&self) -> &SdkConfig {
        &self.sdk
    }

    /// Uses an already-loaded configuration (tests, or callers that load
    /// their own).
    pub fn from_sdk_config(sdk: SdkConfig) -> Self {
        let region_missing = sdk.region().is_none();
        let sdk = if region_missing {
            sdk.into_builder()
                .region(Region::from_static(FALLBACK_REGION))
                .build()
        } else {
            sdk
        };
        Sts {
            sdk,
            region_missing,
            file_findings: vec![],
            stop_sending: false,
            skip_chain: false,
            ca_bundle: None,
            tls: None,
            replay: Arc::default(),
            chain_files: crate::settings::profile::ChainFiles::default(),
            counters: Arc::default(),
            profile_chain: None,
        }
    }

    /// The role chain the selected profile asks for (`AWS_PROFILE` with
    /// `role_arn` and `source_profile`), if it is one.
    pub fn profile_chain(&self) -> Option<&ProfileChainRead> {
        self.profile_chain.as_ref()
    }

    /// The counters every request made through this configuration is
    /// counted in; `agent.rs`'s requests are counted here by their caller.
    pub fn counters(&self) -> &StsCounters {
        &self.counters
    }

    /// Answers the SDK's own next request for a URI with an answer
    /// irsa-doctor already got (the Pod Identity agent's); see
    /// `traffic::Replay`.
    pub fn replay(&self) -> &Replay {
        &self.replay
    }

    /// The files the default chain reads, which `serve` watches: a change
    /// means the chain must be resolved again, and for a profile file, the
    /// configuration loaded again.
    pub fn chain_files(&self) -> &crate::settings::profile::ChainFiles {
        &self.chain_files
    }

    /// Findings about the files the SDK would read, found while loading.
    pub fn file_findings(&self) -> &[Finding] {
        &self.file_findings
    }

    /// Whether a file the HTTPS client would read forbids sending anything.
    pub fn stop_sending(&self) -> bool {
        self.stop_sending
    }

    /// The `AWS_CA_BUNDLE` file whose certificates every call trusts
    /// besides the system's roots, when one is set and usable.
    pub fn ca_bundle(&self) -> Option<&str> {
        self.ca_bundle.as_deref()
    }

    /// `AWS_CA_BUNDLE`'s trust, when one is set and usable: what an HTTPS
    /// request outside the SDK (the token's issuer) trusts besides the
    /// system's roots.
    pub fn tls_context(&self) -> Option<&aws_smithy_http_client::tls::TlsContext> {
        self.tls.as_ref()
    }

    /// Whether a file the default chain would read forbids resolving it.
    pub fn skip_chain(&self) -> bool {
        self.skip_chain
    }

    pub fn region(&self) -> String {
        self.sdk
            .region()
            .map_or_else(|| FALLBACK_REGION.to_owned(), |r| r.to_string())
    }

    /// `AWS_USE_FIPS_ENDPOINT` / `use_fips_endpoint` and the dual-stack
    /// switch, as aws-config read them (`None`: not set, or ignored).
    pub fn switches(&self) -> (Option<bool>, Option<bool>) {
        (self.sdk.use_fips(), self.sdk.use_dual_stack())
    }

    /// The URL the SDK resolves for STS from this configuration, or the
    /// SDK's reason it cannot (STS's endpoint rules refuse FIPS beside a
    /// custom endpoint): an unsigned call stopped before signing, so
    /// nothing is sent.
    pub async fn resolved_endpoint(&self) -> Result<String, String> {
        let mut conf = aws_sdk_sts::config::Builder::from(&self.sdk);
        conf.set_credentials_provider(None);
        let stop = StopBeforeSigning::default();
        let sent = aws_sdk_sts::Client::from_conf(conf.build())
            .assume_role_with_web_identity()
            .role_arn("arn:aws:iam::000000000000:role/resolve-only")
            .role_session_name("resolve-only")
            .web_identity_token("resolve-only")
            .customize()
            .interceptor(stop.clone())
            .send();
        let refused = sent.await.err().map(|e| one_line(describe(&e)));
        stop.resolved().ok_or_else(|| refused.unwrap_or_default())
    }

    /// True when no region was configured and [`FALLBACK_REGION`] is in use.
    pub fn region_missing(&self) -> bool {
        self.region_missing
    }

    /// Calls `AssumeRoleWithWebIdentity` once, unsigned, for the shortest
    /// session STS allows, giving up after `timeout`. The credentials in the
    /// answer are dropped here.
    pub async fn assume_role_with_web_identity(
        &self,
        role_arn: &str,
        token: &RawToken,
        session_name: &str,
        timeout: Duration,
    ) -> Attempt {
        let recorder = RecordExchange::default();
        // Unsigned: the operation's auth scheme is "none", and no credentials
        // provider means the default chain is not resolved as a side effect.
        // SDK retries off: check.rs retries with its own deadline and
        // classification.
        let mut conf = aws_sdk_sts::config::Builder::from(&self.sdk)
            .retry_config(RetryConfig::disabled())
            .timeout_config(TimeoutConfig::builder().operation_timeout(timeout).build());
        conf.set_credentials_provider(None);
        let conf = conf.build();
        let client = aws_sdk_sts::Client::from_conf(conf);
        let result = client
            .assume_role_with_web_identity()
            .role_arn(role_arn)
            .role_session_name(session_name)
            .web_identity_token(token.expose())
            .duration_seconds(SESSION_SECONDS)
            .customize()
            .interceptor(recorder.clone())
            .send()
            .await;
        let exchange = recorder.get();
        // STS's clock, by the answer's Date header; failing that, by the
        // credentials' expiry, which STS set from its own clock at issue
        // time.
        let mut clock_offset = exchange.date_offset();
        let result = match result {
            Ok(out) => {
                let (assumed, expiry_offset) = read_answer(&out, exchange.received_at);
                clock_offset = clock_offset.or(expiry_offset);
                assumed
            }
            Err(err) => Err(failure_of(&err, Some(token), "STS")),
        };
        // Only STS's own answers say what STS's clock is: not a proxy's
        // error page, nor a 200 that is not STS's answer.
        let from_sts = match &result {
            Ok(_) => true,
            Err(failure) => failure.code.is_some(),
        };
        Attempt {
            result,
            endpoint: exchange
                .endpoint
                .map(|e| crate::settings::endpoint::shown(&e)),
            clock_offset: clock_offset.filter(|_| from_sts),
        }
    }

    /// `sts:AssumeRole` into `hop`'s role, signed with `creds` (the previous
    /// hop's), once, without the SDK's retries, as aws-config's profile
    /// provider asks it: the profile's `external_id`, no duration (STS's
    /// default, as the SDK's). The new credentials are registered for
    /// redaction; `creds` are scrubbed from any error text.
    pub async fn assume_role(
        &self,
        creds: &Credentials,
        hop: &RoleHop<'_>,
        timeout: Duration,
    ) -> Attempt {
        let recorder = RecordExchange::default();
        let conf = aws_sdk_sts::config::Builder::from(&self.sdk)
            .retry_config(RetryConfig::disabled())
            .timeout_config(TimeoutConfig::builder().operation_timeout(timeout).build())
            .credentials_provider(creds.clone())
            .build();
        let result = aws_sdk_sts::Client::from_conf(conf)
            .assume_role()
            .role_arn(hop.role_arn)
            .role_session_name(hop.session_name)
            .set_external_id(hop.external_id.map(str::to_owned))
            .customize()
            .interceptor(recorder.clone())
            .send()
            .await;
        let exchange = recorder.get();
        let result = match result {
            Ok(out) => assumed_from(
                out.credentials().map(session_credentials),
                out.assumed_role_user().map(|u| u.arn()),
                out.request_id(),
            ),
            Err(err) => {
                let mut f = failure_of(&err, None, "STS");
                f.message = scrub_credentials(f.message, creds);
                Err(f)
            }
        };
        Attempt {
            result,
            endpoint: exchange
                .endpoint
                .as_deref()
                .map(crate::settings::endpoint::shown),
            clock_offset: exchange.date_offset(),
        }
    }

    /// Resolves the SDK's default credential chain, as an app in this
    /// container would, and names the identity it lands on unless that is
    /// web identity (which the explicit call already names). `token`, when
    /// known, is scrubbed from any error text.
    ///
    /// `known` is an identity irsa-doctor has already established, with
    /// the access key ID of its credentials: when the chain lands on the
    /// same credentials, STS is not asked again who they are.
    pub async fn default_chain(
        &self,
        token: Option<&RawToken>,
        known: Option<&Known>,
    ) -> ChainOutcome {
        let Some(provider) = self.sdk.credentials_provider() else {
            return ChainOutcome::NoCredentials;
        };
        let creds = match provider.provide_credentials().await {
            Ok(creds) => creds,
            Err(CredentialsError::CredentialsNotLoaded(_)) => return ChainOutcome::NoCredentials,
            Err(e) => {
                let mut message = one_line(describe(&e));
                if message.contains(LENGTH_LIMIT_ERROR) {
                    message = format!(
                        "an answer was larger than {MAX_RESPONSE_BYTES} bytes, which irsa-doctor \
                         stopped reading ({message})"
                    );
                }
                return ChainOutcome::Failed {
                    message: token.map_or(message.clone(), |t| scrub_token(message, t)),
                    web_identity: is_web_identity_failure(&e),
                };
            }
        };
        crate::guard::redact::register(
            crate::guard::redact::Kind::Credential,
            creds.secret_access_key(),
        );
        if let Some(session_token) = creds.session_token() {
            crate::guard::redact::register(crate::guard::redact::Kind::Credential, session_token);
        }
        let source = ChainSource::of(&creds);
        if source == ChainSource::WebIdentity {
            return ChainOutcome::WebIdentity;
        }
        let identity = match known {
            Some(k) if k.access_key_id == creds.access_key_id() => Ok(k.arn.clone()),
            _ => self.caller_identity(creds).await,
        };
        ChainOutcome::Other { source, identity }
    }

    /// `GetCallerIdentity` signed with `creds`, which are dropped afterwards.
    async fn caller_identity(&self, creds: Credentials) -> Result<String, String> {
        self.identity_with(creds)
            .await
            .map(|i| i.arn)
            .map_err(|f| match f.code {
                Some(code) => format!("GetCallerIdentity failed: {code}: {}", f.message),
                None => format!("GetCallerIdentity failed: {}", f.message),
            })
    }

    /// Who `creds` are: `GetCallerIdentity` signed with them, once, without
    /// the SDK's retries; the credentials are dropped afterwards, and
    /// scrubbed from any error text.
    pub async fn identity_with(&self, creds: Credentials) -> Result<Identity, Failure> {
        let conf = aws_sdk_sts::config::Builder::from(&self.sdk)
            .retry_config(RetryConfig::disabled())
            .credentials_provider(creds.clone())
            .build();
        let client = aws_sdk_sts::Client::from_conf(conf);
        let recorder = RecordExchange::default();
        let result = client
            .get_caller_identity()
            .customize()
            .interceptor(recorder.clone())
            .send()
            .await;
        let exchange = recorder.get();
        let endpoint = exchange
            .endpoint
            .as_deref()
            .map(crate::settings::endpoint::shown);
        match result {
            Ok(out) => match out.arn() {
                Some(arn) => Ok(Identity {
                    arn: arn.to_owned(),
                    account: out.account().map(str::to_owned),
                    request_id: out.request_id().map(str::to_owned),
                    endpoint,
                    clock_offset: exchange.date_offset(),
                }),
                None => Err(Failure::new(
                    FailureKind::Unexpected { retry: false },
                    "GetCallerIdentity answered without an ARN".to_owned(),
                )),
            },
            Err(err) => {
                let mut f = failure_of(&err, None, "STS");
                // A SignatureDoesNotMatch message can quote the canonical
                // request, session token included.
                f.message = scrub_credentials(f.message, &creds);
                Err(f)
            }
        }
    }
}

/// One `sts:AssumeRole` of a profile's chain.
#[derive(Debug, Clone, Copy)]
pub struct RoleHop<'a> {
    pub role_arn: &'a str,
    pub session_name: &'a str,
    pub external_id: Option<&'a str>,
}

/// Who a set of credentials is, by `GetCallerIdentity`.
#[derive(Debug, Clone)]
pub struct Identity {
    pub arn: String,
    pub account: Option<String>,
    pub request_id: Option<String>,
    /// The endpoint the SDK really used.
    pub endpoint: Option<String>,
    /// STS's clock minus ours, in seconds, by the answer's `Date` header:
    /// EKS Pod Identity's only measure of the clock.
    pub clock_offset: Option<i64>,
}

/// Whether a chain error is its web-identity provider's STS call failing.
fn is_web_identity_failure(err: &(dyn std::error::Error + 'static)) -> bool {
    type ArwwiError = SdkError<
        aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityError,
    >;
    let mut next = Some(err);
    while let Some(e) = next {
        if e.downcast_ref::<ArwwiError>().is_some() {
            return true;
        }
        next = e.source();
    }
    false
}

/// Removes the secret key and session token of `creds` from `text`.
pub fn scrub_credentials(text: String, creds: &Credentials) -> String {
    let mut text = text.replace(creds.secret_access_key(), crate::guard::redact::MASK);
    if let Some(token) = creds.session_token().filter(|t| !t.is_empty()) {
        text = text.replace(token, crate::guard::redact::MASK);
    }
    text
}

/// Reduces an SDK error from `service` (`STS`, `IAM`) to a [`Failure`],
/// scrubbing `token` from any text.
pub fn failure_of<E>(err: &SdkError<E>, token: Option<&RawToken>, service: &str) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let scrub = |text: String| match token {
        Some(t) => scrub_token(text, t),
        None => text,
    };
    let failure = match err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = se.err().code().map(str::to_owned);
            let message = scrub(one_line(se.err().message().unwrap_or("").to_owned()));
            let kind = classify(code.as_deref(), &message, status);
            let message = if code.is_none() && message.is_empty() {
                format!("HTTP {status} with a body that is not an {service} error document")
            } else {
                message
            };
            Failure {
                code,
                http_status: Some(status),
                ..Failure::new(kind, message)
            }
        }
        SdkError::ResponseError(re) => {
            let status = re.raw().status().as_u16();
            let detail = scrub(one_line(describe(err)));
            let message = if detail.contains(LENGTH_LIMIT_ERROR) {
                format!(
                    "HTTP {status} with a body larger than {MAX_RESPONSE_BYTES} bytes, which \
                     irsa-doctor stopped reading: {service} answers are a few KiB"
                )
            } else {
                format!(
                    "HTTP {status} with a body that is not an {service} response document ({detail})"
                )
            };
            let kind = FailureKind::Unexpected {
                retry: status >= 500,
            };
            Failure {
                http_status: Some(status),
                ..Failure::new(kind, message)
            }
        }
        SdkError::TimeoutError(_) => Failure {
            timed_out: true,
            ..Failure::new(FailureKind::Unreachable, "the request timed out".to_owned())
        },
        SdkError::DispatchFailure(dispatch) => {
            let message = scrub(one_line(describe(err)));
            let kind = if dispatch.is_user() || message.contains(NOT_APPLIED) {
                // The request could not even be built or sent as asked (a
                // bad URL, say): nothing was sent, and trying again cannot
                // help.
                FailureKind::Unexpected { retry: false }
            } else if message.contains(PROXY_AUTH_REQUIRED) {
                // The proxy answered CONNECT with 407: asking again without
                // credentials cannot help.
                FailureKind::Unexpected { retry: false }
            } else if message.to_ascii_lowercase().contains("certificate") {
                FailureKind::TlsUntrusted
            } else {
                FailureKind::Unreachable
            };
            Failure::new(kind, message)
        }
        _ => Failure::new(
            FailureKind::Unexpected { retry: false },
            scrub(one_line(describe(err))),
        ),
    };
    Failure {
        request_id: err.request_id().map(str::to_owned),
        ..failure
    }
}

/// What hyper-util's tunnel says when the proxy answers CONNECT with 407.
const PROXY_AUTH_REQUIRED: &str = "tunnel error: proxy authorization required";

/// What the SDK says when it cannot put the endpoint on a request; the
/// request was never sent.
const NOT_APPLIED: &str = "failed to apply endpoint";

/// Replaces the token, and its signature alone, wherever `text` quotes them.
pub fn scrub_token(text: String, token: &RawToken) -> String {
    let whole = token.expose();
    let mut text = text.replace(whole, crate::guard::redact::MASK);
    if let Some(sig) = whole.rsplit('.').next().filter(|s| s.len() >= 8) {
        text = text.replace(sig, crate::guard::redact::MASK);
    }
    text
}

/// What a 200 answer to `AssumeRoleWithWebIdentity` says: the assumed
/// role and its session's credentials, or why the answer is not STS's;
/// and STS's clock offset by the credentials' expiry, from `received_at`.
/// The credentials are registered for redaction.
fn read_answer(
    out: &aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityOutput,
    received_at: Option<SystemTime>,
) -> (Result<Assumed, Failure>, Option<i64>) {
    let mut offset = None;
    if let Some(creds) = out.credentials() {
        // An expiry the SDK defaulted (a missing <Expiration> reads as 1970)
        // is no measure of anything.
        let issued = creds.expiration().secs() - i64::from(SESSION_SECONDS);
        if issued > PLAUSIBLE_EPOCH {
            offset = received_at.map(|r| issued - crate::time::unix_secs_rounded(r));
        }
    }
    let credentials = out.credentials().map(session_credentials);
    let arn = out.assumed_role_user().map(|u| u.arn());
    let result = assumed_from(credentials, arn, out.request_id()).map(|assumed| Assumed {
        subject: out.subject_from_web_identity_token().map(str::to_owned),
        audience: out.audience().map(str::to_owned),
        provider: out.provider().map(str::to_owned),
        ..assumed
    });
    (result, offset)
}

/// The session's credentials in an STS answer, registered for redaction.
fn session_credentials(creds: &aws_sdk_sts::types::Credentials) -> Credentials {
    use crate::guard::redact::{register, Kind};
    register(Kind::Credential, creds.secret_access_key());
    register(Kind::Credential, creds.session_token());
    Credentials::new(
        creds.access_key_id(),
        creds.secret_access_key(),
        Some(creds.session_token().to_owned()),
        SystemTime::try_from(*creds.expiration()).ok(),
        "irsa-doctor",
    )
}

/// What a 200 that assumed a role says, or why it is not STS's answer.
fn assumed_from(
    credentials: Option<Credentials>,
    arn: Option<&str>,
    request_id: Option<&str>,
) -> Result<Assumed, Failure> {
    match arn.filter(|a| !a.is_empty()) {
        Some(arn) => Ok(Assumed {
            arn: arn.to_owned(),
            credentials,
            request_id: request_id.map(str::to_owned),
            subject: None,
            audience: None,
            provider: None,
        }),
        // A 200 that names no role proves nothing either way.
        None => Err(Failure {
            http_status: Some(200),
            request_id: request_id.map(str::to_owned),
            ..Failure::new(
                FailureKind::Unexpected { retry: false },
                "HTTP 200 without an AssumedRoleUser ARN: the answer does not say which role \
                 was assumed, so this is not STS's answer"
                    .to_owned(),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::DateTime;

    fn answer(
        expiry_secs: i64,
        arn: Option<&str>,
    ) -> aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityOutput
    {
        let creds = aws_sdk_sts::types::Credentials::builder()
            .access_key_id("ASIAEXAMPLE")
            .secret_access_key("READANSWERSECRET0123456789")
            .session_token("READANSWERTOKEN0123456789")
            .expiration(DateTime::from_secs(expiry_secs))
            .build()
            .unwrap();
        let mut out = aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityOutput::builder()
            .credentials(creds);
        if let Some(arn) = arn {
            out = out.assumed_role_user(
                aws_sdk_sts::types::AssumedRoleUser::builder()
                    .arn(arn)
                    .assumed_role_id("AROA:x")
                    .build()
                    .unwrap(),
            );
        }
        out.build()
    }

    #[test]
    fn an_answer_names_the_role_and_gives_the_offset_by_its_expiry() {
        let received = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let arn = "arn:aws:sts::111122223333:assumed-role/app/s";
        // STS issued the credentials 60 s after our clock's "now".
        let (result, offset) = read_answer(
            &answer(1_800_000_060 + i64::from(SESSION_SECONDS), Some(arn)),
            Some(received),
        );
        assert_eq!(result.unwrap().arn, arn);
        assert_eq!(offset, Some(60));
        let shown =
            crate::guard::redact::redact("READANSWERSECRET0123456789 READANSWERTOKEN0123456789");
        assert!(!shown.contains("READANSWER"), "{shown}");
    }

    #[test]
    fn a_defaulted_expiry_gives_no_offset_and_no_role_is_not_a_pass() {
        let received = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        // A missing <Expiration> reads as 1970: no measure of STS's clock.
        let (result, offset) = read_answer(&answer(0, None), Some(received));
        assert_eq!(offset, None);
        let failure = result.err().unwrap();
        assert_eq!(failure.kind, FailureKind::Unexpected { retry: false });
        assert_eq!(failure.http_status, Some(200));
    }

    #[test]
    fn verbatim_sts_messages_classify() {
        use FailureKind::*;
        let cases = [
            ("InvalidIdentityToken", "No OpenIDConnect provider found in your account for https://oidc.eks.us-east-1.amazonaws.com/id/ABC", 400, OidcProviderMissing),
            ("InvalidIdentityToken", "Incorrect token audience", 400, AudienceMismatch),
            ("InvalidIdentityToken", "Missing a required claim: aud", 400, AudienceMismatch),
            ("InvalidIdentityToken", "OpenIDConnect provider's HTTPS certificate doesn't match configured thumbprint", 400, Thumbprint),
            ("InvalidIdentityToken", "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements", 400, IdpUnreachable),
            ("InvalidIdentityToken", "The web identity token provided could not be validated", 400, TokenRejected),
            ("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", 403, AccessDenied),
            ("ExpiredTokenException", "Token expired: current date/time 1624482533 must be before the expiration date/time1624482335", 400, TokenExpired),
            ("IDPCommunicationError", "", 400, IdpUnreachable),
            ("IDPRejectedClaim", "", 403, TokenRejected),
            ("RegionDisabledException", "STS is not activated in this region for account:01234567890. Your account administrator can activate STS in this region using the IAM Console.", 403, RegionDisabled),
            ("Throttling", "Rate exceeded", 400, Throttled),
            ("ValidationError", "Request ARN is invalid", 400, InvalidRoleArn),
            ("ValidationError", "1 validation error detected: Value 'x' at 'roleSessionName' failed to satisfy constraint", 400, Unexpected { retry: false }),
            ("InternalFailure", "", 500, Unexpected { retry: true }),
        ];
        for (code, message, status, want) in cases {
            assert_eq!(
                classify(Some(code), message, status),
                want,
                "{code}: {message}"
            );
        }
        assert_eq!(classify(None, "", 502), Unexpected { retry: true });
        assert_eq!(classify(None, "", 429), Throttled);
    }

    #[test]
    fn validation_errors_about_other_fields_are_not_arn_errors() {
        let msg = "1 validation error detected: Value 'learning-app' at 'roleSessionName' failed to satisfy constraint";
        assert_eq!(
            classify(Some("ValidationError"), msg, 400),
            FailureKind::Unexpected { retry: false }
        );
    }

    #[test]
    fn one_line_folds_newlines_and_caps_length() {
        assert_eq!(one_line("a\n\n  b\tc".into()), "a b c");
        let long = one_line("é".repeat(2000));
        assert_eq!(
            long.chars().count(),
            crate::guard::redact::MAX_MESSAGE_CHARS + 3
        );
    }

    #[test]
    fn caller_identity_errors_lose_the_credentials_they_quote() {
        let creds = Credentials::new(
            "AKIAEXAMPLE",
            "SECRETKEY123",
            Some("SESSIONTOKEN456".into()),
            None,
            "test",
        );
        let text = scrub_credentials(
            "SignatureDoesNotMatch: x-amz-security-token:SESSIONTOKEN456 key SECRETKEY123".into(),
            &creds,
        );
        assert!(
            !text.contains("SESSIONTOKEN456") && !text.contains("SECRETKEY123"),
            "{text}"
        );
    }

    #[test]
    fn transient_kinds_are_exactly_the_retryable_ones() {
        assert!(FailureKind::Throttled.is_transient());
        assert!(FailureKind::IdpUnreachable.is_transient());
        assert!(FailureKind::Unreachable.is_transient());
        assert!(!FailureKind::AccessDenied.is_transient());
        assert!(!FailureKind::OidcProviderMissing.is_transient());
        assert!(!FailureKind::Unexpected { retry: false }.is_transient());
        assert!(!FailureKind::TlsUntrusted.is_transient());
    }

    #[test]
    fn scrub_removes_token_and_signature() {
        let token =
            crate::identity::token::tests_support::raw("aGVhZGVy.cGF5bG9hZA.c2lnbmF0dXJlc2VjcmV0");
        let text = scrub_token(
            "Value 'aGVhZGVy.cGF5bG9hZA.c2lnbmF0dXJlc2VjcmV0' and c2lnbmF0dXJlc2VjcmV0".into(),
            &token,
        );
        assert!(!text.contains("c2lnbmF0dXJlc2VjcmV0"), "{text}");
    }
}
