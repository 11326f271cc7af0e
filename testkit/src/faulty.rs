//! A loopback TCP front for a stand-in, which misbehaves at the socket level
//! on command: it refuses connections, accepts and never answers, sends a
//! head and stalls, trickles a byte a second, streams 100 MB, resets in the
//! middle of a body, or answers a canned response. With no fault it relays
//! each connection to the stand-in behind it, so a test can switch a fault
//! off and watch the client recover. Every switch closes the connections
//! open at the time, kept-alive ones included, so the next request meets
//! the new behaviour.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::http::WAIT_LIMIT;

/// What [`Wire::Endless`] promises and streams: 100 MB.
pub const ENDLESS_BYTES: usize = 100 * 1024 * 1024;

/// A socket-level fault.
#[derive(Clone, Debug)]
pub enum Wire {
    /// Nothing listens: connections are refused.
    Refuse,
    /// Accepts, reads the request, never answers.
    Silent,
    /// Sends `200 OK` and its headers (a body of 1000 bytes promised), then
    /// nothing.
    HeadThenStall,
    /// Sends a whole `200 OK` answer one byte a second.
    Trickle,
    /// A `200 OK` of [`ENDLESS_BYTES`] of XML-looking bytes, at full speed.
    Endless,
    /// Sends a head and half the promised body, then resets the connection.
    ResetMidBody,
    /// This raw response (head and body), then closes.
    Canned(String),
}

impl Wire {
    /// A complete response with this status, type and body.
    pub fn canned(status: &str, content_type: &str, body: &str) -> Wire {
        Wire::Canned(format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        ))
    }
}

/// The front, listening on 127.0.0.1 and relaying to `upstream` while no
/// fault is set. Stops when dropped.
pub struct Faulty {
    pub addr: SocketAddr,
    fault: watch::Sender<Option<Wire>>,
    accepted: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Drop for Faulty {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Faulty {
    /// A front for the stand-in at `upstream`, with `fault` set from the
    /// start (or none).
    pub async fn front(upstream: SocketAddr, fault: Option<Wire>) -> Faulty {
        assert!(upstream.ip().is_loopback(), "stand-ins stay on loopback");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = watch::channel(fault);
        let accepted = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(run(listener, upstream, rx, accepted.clone()));
        Faulty {
            addr,
            fault: tx,
            accepted,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Switches to `fault` (none: relay), closing every open connection.
    pub fn set(&self, fault: Option<Wire>) {
        self.fault.send_replace(fault);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Waits until more than `seen` connections have been accepted.
    pub async fn wait_for_connection_after(&self, seen: u64) {
        let limit = Instant::now() + WAIT_LIMIT;
        while self.accepted() <= seen {
            assert!(Instant::now() < limit, "no connection reached the front");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn run(
    first: TcpListener,
    upstream: SocketAddr,
    mut fault: watch::Receiver<Option<Wire>>,
    accepted: Arc<AtomicU64>,
) {
    let addr = first.local_addr().expect("local addr");
    let mut listener = Some(first);
    let mut connections = JoinSet::new();
    loop {
        let refusing = matches!(*fault.borrow_and_update(), Some(Wire::Refuse));
        if refusing {
            listener = None;
        } else if listener.is_none() {
            listener = Some(rebind(addr).await);
        }
        let Some(open) = &listener else {
            if fault.changed().await.is_err() {
                return;
            }
            connections.abort_all();
            continue;
        };
        tokio::select! {
            changed = fault.changed() => {
                if changed.is_err() {
                    return;
                }
                connections.abort_all();
            }
            Ok((stream, _)) = open.accept() => {
                accepted.fetch_add(1, Ordering::SeqCst);
                let now = fault.borrow().clone();
                connections.spawn(handle(stream, now, upstream));
            }
        }
        while connections.try_join_next().is_some() {}
    }
}

/// Listens on `addr` again after a spell of refusing.
async fn rebind(addr: SocketAddr) -> TcpListener {
    let limit = Instant::now() + WAIT_LIMIT;
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return l,
            Err(e) => assert!(Instant::now() < limit, "cannot listen on {addr} again: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const XML_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n";

async fn handle(mut conn: TcpStream, fault: Option<Wire>, upstream: SocketAddr) {
    let Some(fault) = fault else {
        if let Ok(mut up) = TcpStream::connect(upstream).await {
            let _ = tokio::io::copy_bidirectional(&mut conn, &mut up).await;
        }
        return;
    };
    let _ = read_head(&mut conn).await;
    match fault {
        Wire::Refuse | Wire::Silent => {}
        Wire::HeadThenStall => {
            let head = format!("{XML_HEAD}Content-Length: 1000\r\n\r\n");
            let _ = conn.write_all(head.as_bytes()).await;
        }
        Wire::Trickle => {
            let body = "<AssumeRoleWithWebIdentityResponse>";
            let answer = format!("{XML_HEAD}Content-Length: {}\r\n\r\n{body}", body.len());
            for byte in answer.bytes() {
                if conn.write_all(&[byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        Wire::Endless => {
            let head = format!("{XML_HEAD}Content-Length: {ENDLESS_BYTES}\r\n\r\n<a>");
            let chunk = vec![b'a'; 64 * 1024];
            let mut sent = 0;
            let _ = conn.write_all(head.as_bytes()).await;
            while sent < ENDLESS_BYTES && conn.write_all(&chunk).await.is_ok() {
                sent += chunk.len();
            }
        }
        Wire::ResetMidBody => {
            let body = format!("<AssumeRoleWithWebIdentityResponse>{}", " ".repeat(1000));
            let head = format!("{XML_HEAD}Content-Length: 2000\r\n\r\n");
            let _ = conn.write_all(head.as_bytes()).await;
            let _ = conn.write_all(body.as_bytes()).await;
            let _ = conn.flush().await;
            // A reset, not a close: SO_LINGER 0 makes the drop send RST.
            let _ = conn.set_zero_linger();
            return;
        }
        Wire::Canned(raw) => {
            let _ = conn.write_all(raw.as_bytes()).await;
            let _ = conn.shutdown().await;
        }
    }
    // Hold the connection open, reading whatever comes, until the client
    // goes or the fault is switched.
    let mut sink = [0; 4096];
    while matches!(conn.read(&mut sink).await, Ok(n) if n > 0) {}
}

/// Reads until the end of a request head (or 64 KiB, or the client goes).
async fn read_head(conn: &mut TcpStream) -> std::io::Result<()> {
    let mut seen = Vec::new();
    let mut buf = [0; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") && seen.len() < 64 * 1024 {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    Ok(())
}
