//! `serve`'s HTTP layer: /livez, /readyz, /status and /metrics over
//! HTTP/1.1, answered from the loop's cached state.
//!
//! Invariant: the HTTP layer never decides a verdict and never causes an
//! STS call; it copies what `monitor` recorded.
//!
//! A misbehaving client must not starve the kubelet's probes: request
//! heads are bounded ([`MAX_HEAD_BYTES`]) and must arrive within
//! [`HEADER_READ_TIMEOUT`], bodies are refused unread, a connection lives
//! at most [`MAX_CONNECTION_AGE`] (so a client that stops reading its
//! answers cannot hold one forever), and at most [`MAX_CONNECTIONS`]
//! connections are open at once.
//!
//! At the cap, a new connection is served and an old one closed to make
//! room ([`victim`]): of the client address that holds the most
//! connections, the one that has waited longest for a request head.
//! Refusing the new connection instead let one client that held every
//! slot with unfinished heads, and reconnected whenever one was freed,
//! fail nearly every probe. Plain oldest-first would already let a probe
//! in, since a probe sends its head at once; preferring the busiest
//! address also means that a client, however fast it reconnects, only
//! ever closes its own connections while it holds the most, so the
//! kubelet's probes from the node's address and Prometheus' scrapes are
//! never the ones closed. Raising the cap or shortening the head timeout
//! would only move the numbers an attacker needs.
//!
//! Two details keep a flood of reconnects from reaching the probes by
//! another way. The kernel's queue of connections not yet accepted is long
//! ([`listen`]), so a burst is queued rather than dropped; a dropped probe
//! would be retried only a second later. And the accept loop yields after
//! each connection, so a probe reads its head before hundreds of newer
//! connections from its own address can make it the longest waiting.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Body;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONNECTION, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::{service_fn, HttpService};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};
use tracing::{debug, info, warn};

use crate::monitor::state::{Shared, State};
use crate::report::{Report, Verdict};
use crate::time::rfc3339;

/// A request head larger than this gets 431. Probes send a few hundred
/// bytes; hyper's smallest buffer is 8 KiB.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// A client must send its whole request head within this time, on a new
/// connection and between keep-alive requests alike.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// At most this many connections are open at once; a new one beyond it
/// takes the place of the one `victim` picks.
pub const MAX_CONNECTIONS: usize = 256;

/// A connection older than this is asked to close after its current
/// request, and dropped a second later if it has not.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(30);

/// How long a connection asked to close may take to finish its request.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Connections the kernel may hold completed for us before we accept them.
/// When that queue is full, the kernel drops new connection attempts, and a
/// dropped probe retries only after TCP's one-second timeout: so room for
/// bursts many times [`MAX_CONNECTIONS`], not the 128 that tokio's `bind`
/// asks for. Linux caps it at `net.core.somaxconn` (4096 since 5.4).
const LISTEN_BACKLOG: u32 = 4096;

/// The paths served, for 404 messages and the README.
pub const PATHS: [&str; 4] = ["/livez", "/readyz", "/status", "/metrics"];

/// A listener on `addr` for [`serve`], with a [`LISTEN_BACKLOG`] queue.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restarted server can listen again
    // while the old one's connections linger in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `shared` on `listener` until `shutdown` resolves, then stops
/// accepting and gives in-flight requests up to `grace` to finish.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let http = http1_builder();
    // Connections closed at the cap, for /metrics: the server's own count,
    // kept apart from the loop's state, which only the loop writes.
    let evictions = Arc::new(AtomicU64::new(0));
    let open = Arc::new(Mutex::new(Registry::default()));
    // Every connection task, evicted ones included, so that shutdown can
    // wait for all of them.
    let mut tasks = JoinSet::new();
    let (stop, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, usually: back off instead
                    // of spinning on the error.
                    warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        while tasks.try_join_next().is_some() {}
        let evicted = admit(&open, peer.ip(), |registered| {
            let shared = shared.clone();
            let evictions = evictions.clone();
            let service = service_fn(move |req: Request<Incoming>| {
                // After this answer the connection waits for its next head.
                registered.touch();
                let evicted = evictions.load(Ordering::Relaxed);
                let response = respond(&shared, evicted, &req);
                async move { Ok::<_, Infallible>(response) }
            });
            let conn = http.serve_connection(TokioIo::new(stream), service);
            tasks.spawn(drive(conn, stopping.clone()))
        });
        if let Some(evicted) = evicted {
            evicted.task.abort();
            evictions.fetch_add(1, Ordering::Relaxed);
            // Debug only: under attack this happens at the attacker's rate.
            debug!(
                peer = %evicted.peer,
                waited_ms = evicted.waiting_since.elapsed().as_millis(),
                "connection cap reached; closed a connection waiting for a request head"
            );
        }
        // Let the new connection read a head that is already there before
        // accepting more. A flood from the probe's own address could
        // otherwise accept hundreds of connections behind the probe before
        // its task ran once, and the probe, its head unread, would then be
        // the longest waiting.
        tokio::task::yield_now().await;
    }
    drop(listener);
    info!("stopped accepting connections; finishing in-flight requests");
    let _ = stop.send(true);
    let all_done = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, all_done).await.is_err() {
        warn!(
            grace = %humantime::format_duration(grace),
            "in-flight requests did not finish within the grace period; closing them"
        );
    }
}

/// HTTP/1 as `serve` speaks it: bounded heads that must arrive in time,
/// keep-alive. The fuzz target of the request handling uses it too.
pub(crate) fn http1_builder() -> http1::Builder {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    http
}

/// Drives one connection until it ends, the server stops, or it grows too
/// old. Eviction aborts the task instead, which drops the connection and
/// so closes the socket; the service, dropped with it, gives up the
/// connection's place in the registry.
async fn drive<S>(
    conn: http1::Connection<TokioIo<TcpStream>, S>,
    mut stopping: watch::Receiver<bool>,
) where
    S: HttpService<Incoming, ResBody = Full<Bytes>, Error = Infallible>,
{
    tokio::pin!(conn);
    let ended = tokio::select! {
        ended = conn.as_mut() => ended,
        // Idle connections close at once; one mid-request closes after
        // its answer, within the server's grace period.
        () = async { drop(stopping.wait_for(|s| *s).await) } => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
        // Likewise, but a client that will not take its answer loses the
        // connection a second later.
        () = tokio::time::sleep(MAX_CONNECTION_AGE) => {
            conn.as_mut().graceful_shutdown();
            tokio::time::timeout(CLOSE_GRACE, conn).await.unwrap_or(Ok(()))
        }
    };
    if let Err(e) = ended {
        debug!(error = %e, "connection ended with an error");
    }
}

/// The open connections, by id: what [`victim`] chooses from.
#[derive(Default)]
struct Registry {
    next_id: u64,
    open: HashMap<u64, Open>,
}

struct Open {
    peer: IpAddr,
    /// Since its accept, or since its latest request: after an answer a
    /// connection waits for the next head.
    waiting_since: Instant,
    task: AbortHandle,
}

/// Registers a connection from `peer` and starts its task with `spawn`;
/// at the cap, first takes the [`victim`] out and returns it for closing.
fn admit(
    open: &Arc<Mutex<Registry>>,
    peer: IpAddr,
    spawn: impl FnOnce(Registered) -> AbortHandle,
) -> Option<Open> {
    // Held until the entry is in: a task that ended at once could
    // otherwise remove its entry before it was inserted.
    let mut registry = lock(open);
    let evicted = registry.make_room();
    let id = registry.next_id;
    registry.next_id += 1;
    let task = spawn(Registered {
        open: open.clone(),
        id,
    });
    let entry = Open {
        // A listener on [::] sees IPv4 clients as ::ffff:a.b.c.d.
        peer: peer.to_canonical(),
        waiting_since: Instant::now(),
        task,
    };
    registry.open.insert(id, entry);
    evicted
}

impl Registry {
    /// At the cap, takes the victim out and returns it for closing.
    fn make_room(&mut self) -> Option<Open> {
        if self.open.len() < MAX_CONNECTIONS {
            return None;
        }
        let id = victim(
            self.open
                .iter()
                .map(|(id, o)| (*id, o.peer, o.waiting_since)),
        )?;
        self.open.remove(&id)
    }
}

/// Whom to close to make room, from `(id, peer, waiting since)`: of the
/// peers holding the most connections, the connection that has waited
/// longest for a request head. A probe has one connection and sends its
/// head at once, so it is never chosen while a client holds more.
fn victim<K: Copy>(open: impl Iterator<Item = (K, IpAddr, Instant)> + Clone) -> Option<K> {
    let mut held: HashMap<IpAddr, usize> = HashMap::new();
    for (_, peer, _) in open.clone() {
        *held.entry(peer).or_default() += 1;
    }
    open.max_by_key(|(_, peer, since)| {
        let held = held.get(peer).copied().unwrap_or_default();
        (held, std::cmp::Reverse(*since))
    })
    .map(|(id, _, _)| id)
}

/// A connection's place in the registry, given up when its task ends or
/// is aborted.
struct Registered {
    open: Arc<Mutex<Registry>>,
    id: u64,
}

impl Registered {
    fn touch(&self) {
        if let Some(o) = lock(&self.open).open.get_mut(&self.id) {
            o.waiting_since = Instant::now();
        }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        lock(&self.open).open.remove(&self.id);
    }
}

/// Every change to the registry is a single insert, remove or assignment,
/// so one that panicked cannot have left it half-written.
fn lock(open: &Mutex<Registry>) -> MutexGuard<'_, Registry> {
    open.lock().unwrap_or_else(|e| e.into_inner())
}

/// Answers one request from a copy of the state and, for /metrics, the
/// count of connections closed at the cap so far. `HEAD` gets `GET`'s
/// status and headers; hyper leaves the body out.
pub fn respond<B: Body>(
    shared: &Shared,
    connections_evicted: u64,
    req: &Request<B>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if !PATHS.contains(&path) {
        return text(
            StatusCode::NOT_FOUND,
            format!(
                "not found: {path}; irsa-doctor serves {}\n",
                PATHS.join(", ")
            ),
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!(
                "{} is not allowed on {path}; use GET or HEAD\n",
                req.method()
            ),
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    if !req.body().is_end_stream() {
        // Never read: a body could be any size. Close, since it is unread.
        let mut response = text(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request bodies are not accepted\n".to_owned(),
        );
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    let now = Instant::now();
    // A copy, so that the lock is held for the copy alone, never for the
    // rendering of an answer (the checks' thread waits on it to record).
    let state = shared.snapshot();
    match path {
        "/livez" => match state.stalled(now) {
            None => text(
                StatusCode::OK,
                "ok: the verification loop is running\n".into(),
            ),
            Some(reason) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
        },
        "/readyz" => {
            let r = state.readiness(now);
            let status = StatusCode::from_u16(r.verdict.http_status())
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let word = if r.verdict == Verdict::Pass {
                "ready"
            } else {
                "not ready"
            };
            text(status, format!("{word}: {}\n", r.reason))
        }
        "/status" => with_type(StatusCode::OK, "application/json", status_json(&state, now)),
        _ => with_type(
            StatusCode::OK,
            crate::http::metrics::CONTENT_TYPE,
            crate::http::metrics::render(&state, connections_evicted, now, SystemTime::now()),
        ),
    }
}

/// /status: the latest report, as `check --output json` prints it, plus
/// the loop's view.
#[derive(Serialize)]
struct Status<'a> {
    #[serde(flatten)]
    report: Option<&'a Report>,
    ready: bool,
    ready_reason: String,
    checked_at: Option<String>,
    next_check_at: Option<String>,
    last_change_at: Option<String>,
    last_conclusive_at: Option<String>,
    consecutive_inconclusive: u32,
}

fn status_json(state: &State, now: Instant) -> String {
    let readiness = state.readiness(now);
    let latest = state.latest();
    let status = Status {
        report: latest.map(|l| &l.report),
        ready: readiness.verdict == Verdict::Pass,
        ready_reason: readiness.reason,
        checked_at: latest.map(|l| rfc3339(l.checked_at)),
        next_check_at: state.next_check_at().map(rfc3339),
        last_change_at: state.last_change_at().map(rfc3339),
        last_conclusive_at: state.conclusive().map(|c| rfc3339(c.checked_at)),
        consecutive_inconclusive: state.consecutive_inconclusive(),
    };
    let mut json = serde_json::to_value(&status).unwrap_or_default();
    // Before the first check there is no report; say so in its first field.
    if latest.is_none() {
        if let Some(obj) = json.as_object_mut() {
            obj.insert("verdict".into(), serde_json::Value::Null);
        }
    }
    let mut body = serde_json::to_string_pretty(&json).unwrap_or_else(|_| "{}".to_owned());
    body.push('\n');
    body
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    with_type(status, "text/plain; charset=utf-8", body)
}

/// Every answer is built here, so every body passes through the secret
/// redaction on its way out (see `redact.rs`).
fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: String,
) -> Response<Full<Bytes>> {
    let body = crate::guard::redact::redact_string(body);
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    //! The service itself, without a socket: each request is one call.

    use super::*;
    use crate::monitor::state::Settings;
    use crate::report::sample::pass;
    use http_body_util::{BodyExt, Empty};

    fn call(shared: &Shared, method: Method, path: &str) -> (u16, String, Response<Full<Bytes>>) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = respond(shared, 0, &req);
        let status = response.status().as_u16();
        let body = body_text(&response);
        (status, body, response)
    }

    fn body_text(response: &Response<Full<Bytes>>) -> String {
        let body = response.body().clone();
        let bytes = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(body.collect())
            .unwrap()
            .to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn passed() -> Arc<Shared> {
        let (shared, mut recorder) = Shared::new(Settings::serve_defaults());
        recorder.record_at(pass(), Instant::now());
        shared
    }

    #[test]
    fn before_the_first_verdict_readyz_is_503_and_status_has_no_verdict() {
        let (shared, _recorder) = Shared::new(Settings::serve_defaults());
        let (status, body, _) = call(&shared, Method::GET, "/readyz");
        assert_eq!(status, 503);
        assert!(body.starts_with("not ready: no verdict yet"), "{body}");
        let (status, body, r) = call(&shared, Method::GET, "/status");
        assert_eq!(status, 200);
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(json["verdict"].is_null(), "{json:#}");
        assert_eq!(json["ready"], false);
        assert_eq!(call(&shared, Method::GET, "/livez").0, 200);
    }

    #[test]
    fn after_a_pass_every_endpoint_answers_200() {
        let shared = passed();
        for path in PATHS {
            let (status, _, r) = call(&shared, Method::GET, path);
            assert_eq!(status, 200, "{path}");
            assert_eq!(r.headers()[CACHE_CONTROL], "no-store", "{path}");
        }
        let (_, body, _) = call(&shared, Method::GET, "/status");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["verdict"], "pass");
        assert_eq!(json["ready"], true);
        assert_eq!(json["consecutive_inconclusive"], 0);
    }

    #[test]
    fn head_answers_like_get() {
        let shared = passed();
        for path in PATHS {
            let (get, _, _) = call(&shared, Method::GET, path);
            let (head, _, _) = call(&shared, Method::HEAD, path);
            assert_eq!(get, head, "{path}");
        }
    }

    #[test]
    fn other_methods_get_405_with_allow_and_unknown_paths_404() {
        let shared = passed();
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            let (status, _, r) = call(&shared, method.clone(), "/readyz");
            assert_eq!(status, 405, "{method}");
            assert_eq!(r.headers()[ALLOW], "GET, HEAD");
        }
        let (status, body, _) = call(&shared, Method::GET, "/readyz/extra");
        assert_eq!(status, 404);
        assert!(
            body.contains("/livez, /readyz, /status, /metrics"),
            "{body}"
        );
        assert_eq!(call(&shared, Method::POST, "/nope").0, 404);
    }

    #[test]
    fn a_request_body_is_refused_unread() {
        let shared = passed();
        let req = Request::builder()
            .uri("/readyz")
            .body(Full::new(Bytes::from_static(b"hello")))
            .unwrap();
        let response = respond(&shared, 0, &req);
        assert_eq!(response.status(), 413);
        assert_eq!(response.headers()[CONNECTION], "close");
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// `(id, peer, waiting since)` for connections given as `(peer, the
    /// second it started waiting)`, with its index as id.
    fn waiting(conns: &[(&str, u64)]) -> Vec<(usize, IpAddr, Instant)> {
        let start = Instant::now();
        conns
            .iter()
            .enumerate()
            .map(|(i, (peer, at))| (i, ip(peer), start + Duration::from_secs(*at)))
            .collect()
    }

    #[test]
    fn the_victim_is_the_longest_waiting_connection_of_the_busiest_peer() {
        // The kubelet's probe (10.0.0.1) has waited longest of all, but
        // 10.0.9.9 holds the most connections.
        let open = waiting(&[
            ("10.0.0.1", 0),
            ("10.0.9.9", 3),
            ("10.0.9.9", 1),
            ("10.0.9.9", 2),
            ("10.0.5.5", 1),
            ("10.0.5.5", 1),
        ]);
        assert_eq!(victim(open.into_iter()), Some(2));
    }

    #[test]
    fn among_equally_busy_peers_the_longest_waiting_connection_is_the_victim() {
        let open = waiting(&[("10.0.0.1", 4), ("10.0.0.2", 0), ("10.0.0.3", 3)]);
        assert_eq!(victim(open.into_iter()), Some(1));
        // Two from one address outweigh any wait.
        let open = waiting(&[("10.0.0.1", 0), ("10.0.0.2", 9), ("10.0.0.2", 9)]);
        assert!(matches!(victim(open.into_iter()), Some(1 | 2)));
        assert_eq!(victim(waiting(&[]).into_iter()), None);
    }

    /// The attack of the issue at the registry: one address holds every
    /// slot and reconnects as fast as it likes. A probe from another
    /// address is never the one closed, even once it has waited longest.
    #[tokio::test]
    async fn an_attacker_reconnecting_at_the_cap_only_ever_closes_its_own_connections() {
        let open = Arc::new(Mutex::new(Registry::default()));
        let mut tasks = JoinSet::new();
        // A connection that never sends a head.
        let mut connect = |peer: &str| {
            let mut id = None;
            let evicted = admit(&open, ip(peer), |registered| {
                id = Some(registered.id);
                tasks.spawn(async move {
                    let _registered = registered;
                    std::future::pending::<()>().await;
                })
            });
            (id.unwrap(), evicted.map(|o| o.peer))
        };
        for _ in 0..MAX_CONNECTIONS {
            assert_eq!(connect("10.0.9.9").1, None);
        }
        let (probe, evicted) = connect("10.0.0.1");
        assert_eq!(evicted, Some(ip("10.0.9.9")));
        for i in 0..10 * MAX_CONNECTIONS {
            assert_eq!(connect("10.0.9.9").1, Some(ip("10.0.9.9")), "{i}");
            let registry = lock(&open);
            assert!(registry.open.contains_key(&probe), "{i}");
            assert_eq!(registry.open.len(), MAX_CONNECTIONS);
        }
        tasks.abort_all();
    }

    /// A burst of connections far beyond the cap, while nothing accepts:
    /// every handshake completes, because the kernel queues them. With a
    /// short queue the rest would be dropped and their connects would hang
    /// on TCP's retries.
    #[tokio::test]
    async fn the_listen_queue_holds_a_burst_far_beyond_the_cap() {
        let listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let burst = 4 * MAX_CONNECTIONS;
        let mut connects = JoinSet::new();
        for _ in 0..burst {
            connects.spawn(TcpStream::connect(addr));
        }
        let all = async {
            let mut open = vec![];
            while let Some(conn) = connects.join_next().await {
                open.push(conn.unwrap().unwrap());
            }
            open
        };
        // Bounds a hang; a queued handshake takes microseconds.
        let open = tokio::time::timeout(Duration::from_secs(20), all)
            .await
            .expect("connections were dropped instead of queued");
        assert_eq!(open.len(), burst);
    }

    #[test]
    fn a_stalled_loop_fails_livez_but_not_readyz() {
        let quick = Settings {
            interval: Duration::from_secs(1),
            stale_after: Duration::from_secs(3),
            timeout: Duration::from_secs(1),
        };
        let Some(long_ago) = Instant::now().checked_sub(Duration::from_secs(3)) else {
            return; // the machine booted less than 3 s ago
        };
        let (shared, mut recorder) = Shared::starting_at(quick, long_ago);
        recorder.record_at(pass(), Instant::now());
        let (status, body, _) = call(&shared, Method::GET, "/livez");
        assert_eq!(status, 503);
        assert!(body.contains("no progress"), "{body}");
        assert_eq!(call(&shared, Method::GET, "/readyz").0, 200);
    }
}
