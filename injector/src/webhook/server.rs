//! The webhook behind HTTPS: `POST /mutate`, `GET /healthz`, `/readyz`,
//! `/metrics` on the TLS port, and the last three on an optional plain
//! port for Prometheus and the kubelet. Everything a client controls is
//! bounded: the TLS handshake, the time to send the headers (slowloris),
//! the time and size of the body (read through `Limited`, never more than
//! the bound held), the bytes of all bodies held at once, and the number
//! of connections at once. Beyond the connection cap new ones wait in the
//! kernel's backlog until a slot frees; the header timeout frees a slot a
//! slow client holds. Beyond the bytes bound a body waits, unread, for the
//! ones before it to be answered.
//!
//! Readiness: the certificate is loaded before the first connection is
//! accepted (a missing one is a startup error), so a server that answers
//! is ready; `/readyz` says so once it answers at all, until shutdown
//! starts. Then it answers 503 for `shutdown_delay` while reviews are
//! still answered, so that the endpoint is removed before the socket
//! closes: the API server keeps sending reviews to an old endpoint for a
//! few seconds, and with `failurePolicy: Ignore` each one refused would
//! be a pod admitted without the doctor, uncounted.

use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::{Metrics, Rejection, ReloadingCert, Webhook, LOOKUP_BUDGET};
use crate::lookup::Resolve;
use crate::plan::Options;

/// The largest AdmissionReview read: 3 MiB, the API server's own cap on a
/// request body (etcd's on an object is 1.5 MiB), so no pod the API
/// server accepts makes a larger review.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// How long a review waits for room among the bodies in flight before it
/// is answered 503.
pub const BUSY_WAIT: Duration = Duration::from_millis(500);

/// The bytes of bodies held at once, by their Content-Length (the bound,
/// for a chunked one), from before the body is read until it is answered:
/// four reviews of the largest size. What a body costs to review is a
/// small multiple of its size, so this bounds the memory that reviews
/// can take whatever the number of connections.
pub const MAX_BODIES_IN_FLIGHT: usize = 12 * 1024 * 1024;

/// The bounds a client cannot stretch.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body: usize,
    /// At least `max_body`.
    pub max_bodies_in_flight: usize,
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    pub header_timeout: Duration,
    /// From the headers read to the whole body read.
    pub body_timeout: Duration,
    /// How long, after the shutdown signal, new connections and reviews
    /// are still taken while `/readyz` answers 503.
    pub shutdown_delay: Duration,
    /// How long shutdown waits for the reviews in flight.
    pub drain: Duration,
    pub lookup_budget: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: MAX_BODY,
            max_bodies_in_flight: MAX_BODIES_IN_FLIGHT,
            max_connections: 1024,
            // Short: a handshake holds a connection slot, and 1024 idle
            // TCP connections would hold them all for this long.
            handshake_timeout: Duration::from_secs(3),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            shutdown_delay: Duration::from_secs(5),
            drain: Duration::from_secs(10),
            lookup_budget: LOOKUP_BUDGET,
        }
    }
}

/// What `serve` needs besides its sockets and the lookups.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub options: Options,
    pub own_namespace: Option<String>,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub limits: Limits,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot load the serving certificate")]
    Cert(#[from] super::CertError),
    #[error("cannot set up TLS")]
    Tls(#[source] rustls::Error),
}

struct State {
    webhook: Webhook,
    metrics: Arc<Metrics>,
    limits: Limits,
    /// Permits are bytes of bodies (see [`MAX_BODIES_IN_FLIGHT`]).
    bodies: Arc<Semaphore>,
    /// Set when shutdown starts: `/readyz` answers 503.
    stopping: AtomicBool,
}

type Body = Full<Bytes>;

/// Serves until `shutdown` completes, then stops accepting, lets the
/// requests in flight finish (at most `limits.drain`), and returns.
pub async fn serve(
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    config: ServeConfig,
    resolver: Arc<dyn Resolve>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let metrics = Arc::new(Metrics::default());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cert = ReloadingCert::load(
        &config.tls_cert,
        &config.tls_key,
        provider.clone(),
        metrics.clone(),
    )?;
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(ServeError::Tls)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(cert));
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    // The bound addresses, not the flags: with port 0 (the tests) this is
    // the only place that says where to connect.
    let local = |l: &TcpListener| l.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(
        https = %local(&listener),
        metrics = metrics_listener.as_ref().map(local).unwrap_or_default(),
        "listening"
    );
    let state = Arc::new(State {
        webhook: Webhook {
            options: config.options,
            own_namespace: config.own_namespace,
            lookup_budget: config.limits.lookup_budget,
            resolver,
            metrics: metrics.clone(),
            inspecting: Webhook::inspecting(),
        },
        metrics,
        bodies: Arc::new(Semaphore::new(
            config
                .limits
                .max_bodies_in_flight
                .max(config.limits.max_body),
        )),
        stopping: AtomicBool::new(false),
        limits: config.limits,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    if let Some(plain) = metrics_listener {
        tasks.spawn(accept_loop(plain, None, state.clone(), stop_rx.clone()));
    }
    tasks.spawn(accept_loop(
        listener,
        Some(acceptor),
        state.clone(),
        stop_rx,
    ));
    shutdown.await;
    state.stopping.store(true, Ordering::Relaxed);
    if !state.limits.shutdown_delay.is_zero() {
        tracing::info!(
            delay = ?state.limits.shutdown_delay,
            "shutting down: /readyz answers 503, reviews still answered until the delay ends"
        );
        tokio::time::sleep(state.limits.shutdown_delay).await;
    }
    tracing::info!("shutting down: no new connections, finishing the reviews in flight");
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(state.limits.drain, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("shutdown: connections still open after the drain limit, closed");
    }
    Ok(())
}

/// Accepts until told to stop, one task per connection, at most
/// `max_connections` at once; then waits for its connections to finish.
async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: Arc<State>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(state.limits.max_connections));
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            accepted = async {
                let permit = slots.clone().acquire_owned().await;
                (permit, listener.accept().await)
            } => accepted,
        };
        let (Ok(permit), result) = accepted else {
            break;
        };
        let stream = match result {
            Ok((stream, _)) => stream,
            Err(error) => {
                // EMFILE and the like: give the process a moment rather
                // than spinning on the same error.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = state.clone();
        let tls = tls.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            let _permit = permit;
            match tls {
                None => connection(stream, state, stop, false).await,
                Some(acceptor) => {
                    let timeout = state.limits.handshake_timeout;
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(timeout, acceptor.accept(stream)).await
                    {
                        connection(stream, state, stop, true).await;
                    }
                }
            }
        });
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

async fn connection<S>(stream: S, state: Arc<State>, mut stop: watch::Receiver<bool>, https: bool)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let header_timeout = state.limits.header_timeout;
    let service = service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(route(&state, req, https).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

async fn route(state: &State, req: Request<Incoming>, https: bool) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let known = matches!(path.as_str(), "/healthz" | "/readyz" | "/metrics")
        || (https && path == "/mutate");
    if !known {
        return reject(
            state,
            Rejection::NotFound,
            StatusCode::NOT_FOUND,
            "not found",
        );
    }
    let method = req.method().clone();
    match (path.as_str(), method) {
        ("/mutate", Method::POST) => mutate(state, req).await,
        ("/readyz", Method::GET | Method::HEAD) if state.stopping.load(Ordering::Relaxed) => {
            text(StatusCode::SERVICE_UNAVAILABLE, "shutting down")
        }
        ("/healthz" | "/readyz", Method::GET | Method::HEAD) => text(StatusCode::OK, "ok"),
        ("/metrics", Method::GET) => {
            let mut resp = text(StatusCode::OK, &state.metrics.render());
            resp.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
        _ => reject(
            state,
            Rejection::Method,
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed",
        ),
    }
}

async fn mutate(state: &State, req: Request<Incoming>) -> Response<Body> {
    let max = state.limits.max_body;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return too_large(state);
    }
    // Held until this function returns with the answer, when the body and
    // what was made from it are freed. The wait for it is short: the API
    // server gives the whole review 3 s, and the lookups get 1.5 s after
    // the body is in, so a review that cannot start soon is better answered
    // 503 (the API server then admits the pod, failurePolicy: Ignore, and
    // counts it in apiserver_admission_webhook_fail_open_count).
    let weight = declared.map_or(max, |n| n as usize);
    let bytes = u32::try_from(weight).unwrap_or(u32::MAX);
    let acquire = state.bodies.clone().acquire_many_owned(bytes);
    let wait = state.limits.body_timeout.min(BUSY_WAIT);
    let _permit = match tokio::time::timeout(wait, acquire).await {
        Ok(Ok(permit)) => permit,
        _ => {
            return reject(
                state,
                Rejection::Busy,
                StatusCode::SERVICE_UNAVAILABLE,
                "too many reviews at once",
            )
        }
    };
    let read = Limited::new(req.into_body(), max).collect();
    let body = match tokio::time::timeout(state.limits.body_timeout, read).await {
        Err(_) => {
            return reject(
                state,
                Rejection::Timeout,
                StatusCode::REQUEST_TIMEOUT,
                "the body took too long",
            )
        }
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return too_large(state)
        }
        Ok(Err(_)) => {
            return reject(
                state,
                Rejection::Malformed,
                StatusCode::BAD_REQUEST,
                "the body could not be read",
            )
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let started = Instant::now();
    let answer = state.webhook.review(&body).await;
    let resp = match answer {
        Ok(json) => {
            let mut resp = Response::new(Full::new(Bytes::from(json)));
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
        Err(error) => {
            tracing::warn!(%error, "refused a body that is no AdmissionReview");
            reject(
                state,
                Rejection::Malformed,
                StatusCode::BAD_REQUEST,
                &error.to_string(),
            )
        }
    };
    state.metrics.duration(started.elapsed());
    resp
}

fn too_large(state: &State) -> Response<Body> {
    let message = format!("the body is over {} bytes", state.limits.max_body);
    reject(
        state,
        Rejection::TooLarge,
        StatusCode::PAYLOAD_TOO_LARGE,
        &message,
    )
}

fn reject(state: &State, reason: Rejection, status: StatusCode, message: &str) -> Response<Body> {
    state.metrics.rejected(reason);
    text(status, message)
}

fn text(status: StatusCode, message: &str) -> Response<Body> {
    let mut body = message.to_owned();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
