//! The HTTP connector below the SDK: it bounds every response body and
//! counts the STS requests that leave this process, by action and outcome,
//! for `serve`'s metrics.
//!
//! Both happen at the connector because the default credential chain makes
//! its own calls (STS `AssumeRoleWithWebIdentity` with the SDK's retries,
//! IMDS, the container credentials endpoint) through clients irsa-doctor
//! cannot add interceptors to. The connector is the SDK's default HTTPS
//! client, wrapped; it is handed to the config loader, so every client
//! built from that configuration, the chain's and IMDS's included, goes
//! through it. A peer that streams without end therefore costs at most
//! [`MAX_RESPONSE_BYTES`], whoever asked.
//!
//! With `AWS_CA_BUNDLE` set, the client is the same one built here, its
//! trust the system's roots and the bundle's certificates.
//!
//! It also replays: the default chain's request to the EKS Pod Identity
//! agent gets the answer irsa-doctor's own request just got ([`Replay`]),
//! so a healthy Pod Identity check asks the agent once. The SDK still
//! builds the request and parses the answer itself.
//!
//! And it refuses: a request whose URL names a port no connection can use
//! exactly (`:0`, `:65536`, `:99999`, `:8o80`) is answered with an error
//! before anything connects ([`named_port`]). `http::Uri` keeps such a
//! port, and hyper-util then connects to the scheme's default port instead,
//! so a typo would hand the request, credentials and all, to whatever
//! listens on port 80 or 443.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use aws_config::BehaviorVersion;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext};
use aws_smithy_http_client::ConnectorBuilder;
use aws_smithy_runtime::client::defaults::default_http_client_plugin_v2;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_runtime_api::client::runtime_plugin::RuntimePlugin;
use aws_smithy_runtime_api::shared::IntoShared;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;

/// The most of any response body the SDK may read, ours and the default
/// chain's alike. Real STS, IMDS and container-credential answers are a few
/// KiB; a proxy or wrong endpoint that streams without end must cost a
/// bounded amount of memory and time.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// What a body cut at [`MAX_RESPONSE_BYTES`] reports, in the error chain
/// the SDK returns (http-body-util's `LengthLimitError`).
pub const LENGTH_LIMIT_ERROR: &str = "length limit exceeded";

/// The STS actions irsa-doctor's checks cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    AssumeRoleWithWebIdentity,
    GetCallerIdentity,
    /// Any other STS action (a profile's `AssumeRole`, for example).
    Other,
}

impl Action {
    pub const ALL: [Action; 3] = [
        Action::AssumeRoleWithWebIdentity,
        Action::GetCallerIdentity,
        Action::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::AssumeRoleWithWebIdentity => "AssumeRoleWithWebIdentity",
            Action::GetCallerIdentity => "GetCallerIdentity",
            Action::Other => "other",
        }
    }
}

/// How a request ended, as the connector sees it: by HTTP status class,
/// or no answer at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx.
    Success,
    /// 4xx: refused, throttled or invalid (the report says which), or
    /// any other status that is neither 2xx nor 5xx.
    ClientError,
    /// 5xx.
    ServerError,
    /// No HTTP answer: connect error, TLS, or given up on (a timeout, or
    /// the check's deadline) before one came.
    TransportError,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Success,
        Outcome::ClientError,
        Outcome::ServerError,
        Outcome::TransportError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::ClientError => "client_error",
            Outcome::ServerError => "server_error",
            Outcome::TransportError => "transport_error",
        }
    }

    fn of_status(status: u16) -> Self {
        match status {
            200..=299 => Outcome::Success,
            500..=599 => Outcome::ServerError,
            _ => Outcome::ClientError,
        }
    }
}

/// The port `authority` (`[user@]host[:port]`, as in a URL) names: `None`
/// when it names none (the scheme's default is meant), else the port, or
/// why no connection can use it. Every URL irsa-doctor connects to passes
/// here first: `http::Uri` accepts `host:99999` and `host:x` and reads
/// their port as absent, and hyper-util then connects to the scheme's
/// default port, so a refused port is never sent anywhere.
pub fn named_port(authority: &str) -> Result<Option<u16>, String> {
    // The userinfo may hold `:` and `@`; the host starts after the last `@`.
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let port = match host_port.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((_, "")) => return Ok(None),
            Some((_, rest)) => match rest.strip_prefix(':') {
                Some(port) => port,
                None => return Err(format!("{rest:?} follows its IPv6 address")),
            },
            None => return Err("its IPv6 address has no closing ]".to_owned()),
        },
        None => match host_port.rsplit_once(':') {
            Some((_, port)) => port,
            None => return Ok(None),
        },
    };
    if port.is_empty() {
        return Ok(None);
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("its port {port:?} is not a number"));
    }
    match port.parse::<u16>() {
        Ok(0) => Err("its port is 0, which no connection can use".to_owned()),
        Ok(n) => Ok(Some(n)),
        Err(_) => Err(format!("its port {port} is above 65535, the highest port")),
    }
}

/// [`named_port`]'s verdict on a whole URL: `Ok` for a URL without an
/// authority too (the connector then refuses it itself).
pub fn url_port(url: &str) -> Result<Option<u16>, String> {
    let Some((_, rest)) = url.split_once("://") else {
        return Ok(None);
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    named_port(&rest[..end])
}

/// STS requests sent since start, by action and outcome.
#[derive(Debug, Default)]
pub struct StsCounters {
    counts: [[AtomicU64; 4]; 3],
    /// Requests to the EKS Pod Identity agent, by outcome. They do not go
    /// through the SDK's client (`agent.rs` asks the agent itself), so they
    /// are counted where they are made; the default chain's own request,
    /// answered by [`Replay`], is not a request and is not counted.
    agent: [AtomicU64; 4],
    /// IAM `SimulatePrincipalPolicy` requests (`--require`), by outcome:
    /// they go through the same client, and are told from STS's by their
    /// action.
    iam: [AtomicU64; 4],
}

impl StsCounters {
    pub fn get(&self, action: Action, outcome: Outcome) -> u64 {
        self.counts[action as usize][outcome as usize].load(Ordering::Relaxed)
    }

    /// IAM `SimulatePrincipalPolicy` requests that ended in `outcome`.
    pub fn iam(&self, outcome: Outcome) -> u64 {
        self.iam[outcome as usize].load(Ordering::Relaxed)
    }

    /// Requests to the Pod Identity agent that ended in `outcome`.
    pub fn agent(&self, outcome: Outcome) -> u64 {
        self.agent[outcome as usize].load(Ordering::Relaxed)
    }

    /// Counts one request to the agent: its HTTP status, or `None` when it
    /// gave no answer.
    pub fn count_agent(&self, status: Option<u16>) {
        let outcome = status.map_or(Outcome::TransportError, Outcome::of_status);
        self.agent[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn add(&self, counted: Counted, outcome: Outcome) {
        let slot = match counted {
            Counted::Sts(action) => &self.counts[action as usize][outcome as usize],
            Counted::Iam => &self.iam[outcome as usize],
        };
        slot.fetch_add(1, Ordering::Relaxed);
    }
}

/// An answer irsa-doctor already got for a `GET`, handed to the SDK's own
/// `GET` of the same URI instead of asking again, once. It may hold
/// credentials: it is never shown, and is cleared once used.
#[derive(Default)]
pub struct Replay(Mutex<Option<Recorded>>);

struct Recorded {
    uri: hyper::Uri,
    status: u16,
    body: Bytes,
}

impl fmt::Debug for Replay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Replay(..)")
    }
}

impl Replay {
    /// Keeps `status` and `body` for the next `GET` of `uri`.
    pub fn set(&self, uri: &hyper::Uri, status: u16, body: Bytes) {
        *self.slot() = Some(Recorded {
            uri: uri.clone(),
            status,
            body,
        });
    }

    /// Forgets the answer, used or not.
    pub fn clear(&self) {
        *self.slot() = None;
    }

    /// The answer for a `GET` of `uri`, if one is kept for it; it is then
    /// gone.
    fn take_for(&self, uri: &str) -> Option<(u16, Bytes)> {
        let asked: hyper::Uri = uri.parse().ok()?;
        let mut slot = self.slot();
        let kept = slot.as_ref()?;
        let same = kept.uri.scheme() == asked.scheme()
            && kept.uri.authority() == asked.authority()
            && kept.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
                == asked.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        same.then(|| slot.take().map(|r| (r.status, r.body)))?
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Recorded>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The SDK's default HTTPS client, counting the STS requests it sends into
/// `counters` and answering from `replay` where it can; with `tls`, the
/// same client trusting what `tls` says. `None` when this build of the SDK
/// has no default client.
pub fn counting_client(
    counters: Arc<StsCounters>,
    replay: Arc<Replay>,
    tls: Option<TlsContext>,
) -> Option<SharedHttpClient> {
    let inner = match tls {
        Some(context) => https_client(context),
        None => default_http_client_plugin_v2(BehaviorVersion::latest())?
            .runtime_components(&RuntimeComponentsBuilder::new("irsa-doctor"))
            .http_client()?,
    };
    Some(
        Counting {
            inner,
            counters,
            replay,
        }
        .into_shared(),
    )
}

/// The client `default_http_client_plugin_v2` builds for the latest
/// behaviour version (aws-smithy-runtime's `default_https_client`), with
/// `context`'s trust: rustls on aws-lc, the connector settings and sleep
/// the SDK hands it, and the proxy from the environment (`HTTP_PROXY`,
/// `HTTPS_PROXY`, `NO_PROXY`), as the SDK reads it since behaviour version
/// 2025-08-07.
fn https_client(context: TlsContext) -> SharedHttpClient {
    aws_smithy_http_client::Builder::new().build_with_connector_fn(move |settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.set_tls_context(context.clone());
        connector.build()
    })
}

/// The same HTTPS stack as the SDK's client (rustls on aws-lc, the proxy
/// from the environment), as a bare connector for a plain `GET` outside
/// the SDK: the token's issuer's documents (`issuer.rs`). With `tls`, its
/// trust (`AWS_CA_BUNDLE`'s certificates beside the system's roots); else
/// the system's roots. It follows no redirect.
pub fn plain_connector(tls: Option<TlsContext>) -> SharedHttpConnector {
    let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
        tls::rustls_provider::CryptoMode::AwsLc,
    ));
    connector.set_proxy_config(Some(ProxyConfig::from_env()));
    if let Some(context) = tls {
        connector.set_tls_context(context);
    }
    SharedHttpConnector::new(connector.build())
}

/// What a counted request is: an STS action, or IAM's simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counted {
    Sts(Action),
    Iam,
}

/// The action of a request: STS's and IAM's query protocol posts it as
/// `Action=...` in a form body. Requests that are neither (IMDS, container
/// credentials) have no such body.
fn action_of(request: &HttpRequest) -> Option<Counted> {
    let body = request.body().bytes()?;
    let action = body
        .split(|&b| b == b'&')
        .find_map(|pair| pair.strip_prefix(b"Action="))?;
    Some(match action {
        b"AssumeRoleWithWebIdentity" => Counted::Sts(Action::AssumeRoleWithWebIdentity),
        b"GetCallerIdentity" => Counted::Sts(Action::GetCallerIdentity),
        b"SimulatePrincipalPolicy" | b"SimulateCustomPolicy" => Counted::Iam,
        _ => Counted::Sts(Action::Other),
    })
}

struct Counting {
    inner: SharedHttpClient,
    counters: Arc<StsCounters>,
    replay: Arc<Replay>,
}

impl fmt::Debug for Counting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Counting")
            .field("inner", &self.inner)
            .finish()
    }
}

impl HttpClient for Counting {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(CountingConnector {
            inner: self.inner.http_connector(settings, components),
            counters: self.counters.clone(),
            replay: self.replay.clone(),
        })
    }

    fn validate_base_client_config(
        &self,
        runtime_components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner
            .validate_base_client_config(runtime_components, cfg)
    }

    fn validate_final_config(
        &self,
        runtime_components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.validate_final_config(runtime_components, cfg)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

#[derive(Debug)]
struct CountingConnector {
    inner: SharedHttpConnector,
    counters: Arc<StsCounters>,
    replay: Arc<Replay>,
}

impl HttpConnector for CountingConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        // The SDK's clients (STS, IAM, the default chain's container and
        // IMDS providers) connect to the default port for a port `http::Uri`
        // cannot read: refused here, whatever built the URL.
        if let Err(why) = url_port(request.uri()) {
            let error = format!("irsa-doctor sent nothing to this URL: {why}");
            return HttpConnectorFuture::ready(Err(
                aws_smithy_runtime_api::client::result::ConnectorError::user(error.into()),
            ));
        }
        if request.method() == "GET" {
            if let Some((status, body)) = self.replay.take_for(request.uri()) {
                return HttpConnectorFuture::ready(replayed(status, body));
            }
        }
        let Some(action) = action_of(&request) else {
            let response = self.inner.call(request);
            return HttpConnectorFuture::new(async move { response.await.map(limit_body) });
        };
        let response = self.inner.call(request);
        // Counted when the answer comes, or, if the request is abandoned
        // first (a timeout drops this future), when it is dropped.
        let mut pending = Pending {
            counters: self.counters.clone(),
            action,
            outcome: Outcome::TransportError,
        };
        HttpConnectorFuture::new(async move {
            let response = response.await;
            if let Ok(r) = &response {
                pending.outcome = Outcome::of_status(r.status().as_u16());
            }
            drop(pending);
            response.map(limit_body)
        })
    }
}

/// Wraps a response's body in a [`MAX_RESPONSE_BYTES`] limit before the
/// SDK reads it: past the limit, reading fails with [`LENGTH_LIMIT_ERROR`].
/// A kept answer as the SDK's response.
fn replayed(
    status: u16,
    body: Bytes,
) -> Result<
    aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    aws_smithy_runtime_api::client::result::ConnectorError,
> {
    let status = aws_smithy_runtime_api::http::StatusCode::try_from(status).map_err(|e| {
        aws_smithy_runtime_api::client::result::ConnectorError::other(e.into(), None)
    })?;
    let mut response = aws_smithy_runtime_api::client::orchestrator::HttpResponse::new(
        status,
        SdkBody::from(body),
    );
    response
        .headers_mut()
        .insert("content-type", "application/json");
    Ok(response)
}

fn limit_body(
    mut response: aws_smithy_runtime_api::client::orchestrator::HttpResponse,
) -> aws_smithy_runtime_api::client::orchestrator::HttpResponse {
    let body = response.take_body();
    *response.body_mut() = body.map(|inner| {
        SdkBody::from_body_1_x(http_body_util::Limited::new(inner, MAX_RESPONSE_BYTES))
    });
    response
}

/// One request in flight; counts itself when dropped.
struct Pending {
    counters: Arc<StsCounters>,
    action: Counted,
    outcome: Outcome,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.counters.add(self.action, self.outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_answer_is_given_once_and_only_for_its_uri() {
        let replay = Replay::default();
        let uri: hyper::Uri = "http://127.0.0.1:9/v1/credentials".parse().unwrap();
        replay.set(&uri, 200, Bytes::from_static(b"{}"));
        assert!(replay.take_for("http://127.0.0.1:9/other").is_none());
        assert!(replay
            .take_for("http://127.0.0.2:9/v1/credentials")
            .is_none());
        assert_eq!(
            replay.take_for("http://127.0.0.1:9/v1/credentials"),
            Some((200, Bytes::from_static(b"{}")))
        );
        assert!(replay
            .take_for("http://127.0.0.1:9/v1/credentials")
            .is_none());
        replay.set(&uri, 400, Bytes::new());
        replay.clear();
        assert!(replay
            .take_for("http://127.0.0.1:9/v1/credentials")
            .is_none());
        assert_eq!(format!("{replay:?}"), "Replay(..)");
    }

    fn request(body: &'static str) -> HttpRequest {
        HttpRequest::new(SdkBody::from(body))
    }

    #[test]
    fn the_action_is_read_from_the_form_body() {
        let arwwi = request("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=x");
        let sts = |action| Some(Counted::Sts(action));
        assert_eq!(action_of(&arwwi), sts(Action::AssumeRoleWithWebIdentity));
        let gci = request("Version=2011-06-15&Action=GetCallerIdentity");
        assert_eq!(action_of(&gci), sts(Action::GetCallerIdentity));
        assert_eq!(action_of(&request("Action=AssumeRole")), sts(Action::Other));
        let iam = request("Action=SimulatePrincipalPolicy&Version=2010-05-08");
        assert_eq!(action_of(&iam), Some(Counted::Iam));
        let custom = request("Action=SimulateCustomPolicy&Version=2010-05-08");
        assert_eq!(action_of(&custom), Some(Counted::Iam));
        assert_eq!(action_of(&request("")), None, "an IMDS GET has no body");
        assert_eq!(action_of(&request("NotAction=GetCallerIdentity")), None);
    }

    #[test]
    fn outcomes_follow_the_status_class() {
        assert_eq!(Outcome::of_status(200), Outcome::Success);
        assert_eq!(Outcome::of_status(400), Outcome::ClientError);
        assert_eq!(Outcome::of_status(403), Outcome::ClientError);
        assert_eq!(Outcome::of_status(503), Outcome::ServerError);
        assert_eq!(Outcome::of_status(302), Outcome::ClientError);
    }

    #[test]
    fn the_sdk_default_client_is_there_to_wrap() {
        let counters = Arc::new(StsCounters::default());
        assert!(counting_client(counters.clone(), Arc::default(), None).is_some());
        let trusting = counting_client(counters, Arc::default(), Some(TlsContext::default()));
        assert!(trusting.is_some());
    }

    #[test]
    fn only_a_port_a_connection_can_use_exactly_is_named() {
        for (authority, port) in [
            ("127.0.0.1", None),
            ("127.0.0.1:", None),
            ("127.0.0.1:8080", Some(8080)),
            ("127.0.0.1:65535", Some(65535)),
            ("u:p@ss:w@127.0.0.1:1", Some(1)),
            ("[::1]", None),
            ("[::1]:443", Some(443)),
        ] {
            assert_eq!(named_port(authority), Ok(port), "{authority}");
        }
        for (authority, words) in [
            ("127.0.0.1:0", "0"),
            ("127.0.0.1:65536", "above 65535"),
            ("127.0.0.1:99999", "above 65535"),
            ("127.0.0.1:8o80", "not a number"),
            ("127.0.0.1:+80", "not a number"),
            ("u:p@127.0.0.1:-1", "not a number"),
            ("[::1]:99999", "above 65535"),
            ("[::1]x", "follows"),
        ] {
            let why = named_port(authority).unwrap_err();
            assert!(why.contains(words), "{authority}: {why}");
        }
        assert!(url_port("http://u:pw@127.0.0.1:99999/v1?x=:1").is_err());
        assert_eq!(url_port("http://127.0.0.1/a:99999"), Ok(None));
    }

    /// A connector that records that it was called.
    #[derive(Debug, Default)]
    struct Recording(Arc<AtomicU64>);

    impl HttpConnector for Recording {
        fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
            self.0.fetch_add(1, Ordering::Relaxed);
            HttpConnectorFuture::ready(replayed(200, Bytes::new()))
        }
    }

    #[tokio::test]
    async fn a_url_whose_port_is_unusable_is_refused_before_anything_connects() {
        // http::Uri reads these ports as absent, and hyper-util then
        // connected to port 80 with the request, token and all.
        let calls = Arc::new(AtomicU64::new(0));
        let connector = CountingConnector {
            inner: SharedHttpConnector::new(Recording(calls.clone())),
            counters: Arc::default(),
            replay: Arc::default(),
        };
        for url in [
            "http://127.0.0.1:0/v1/credentials",
            "http://127.0.0.1:65536/v1/credentials",
            "http://127.0.0.1:99999/v1/credentials",
            "http://127.0.0.1:http/v1/credentials",
            "https://sts.invalid:99999/",
        ] {
            let request = HttpRequest::get(url).unwrap();
            let error = connector.call(request).await.unwrap_err();
            assert!(
                format!("{error:?}").contains("sent nothing"),
                "{url}: {error:?}"
            );
        }
        assert_eq!(calls.load(Ordering::Relaxed), 0, "nothing connected");
        let fine = HttpRequest::get("http://127.0.0.1:9/v1/credentials").unwrap();
        assert!(connector.call(fine).await.is_ok());
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }
}
