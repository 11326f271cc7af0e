//! A minimal loopback HTTP/1 server for stand-ins: one handler closure,
//! bound to 127.0.0.1:0 (or a loopback address of the caller's), plain or
//! TLS, stopped with its connections when the returned handle drops or is
//! closed. Also a raw
//! HTTP/1.1 client, raw so that tests can send what no proper client would.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How long a test waits for a server to answer or reach a state before
/// failing. Generous: it bounds a hang, it is not a performance claim.
pub const WAIT_LIMIT: Duration = Duration::from_secs(30);

/// A request with its body read.
pub struct Req {
    pub method: hyper::Method,
    pub path: String,
    /// The query string as sent (no `?`), empty when there is none.
    pub query: String,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

pub type Resp = Response<Full<Bytes>>;
pub type Handler = Arc<dyn Fn(Req) -> Pin<Box<dyn Future<Output = Resp> + Send>> + Send + Sync>;

pub struct Server {
    pub addr: SocketAddr,
    tls: bool,
    task: JoinHandle<()>,
}

impl Server {
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }
}

impl Server {
    /// Stops accepting and returns once the listening socket and every
    /// connection are closed, so that the next connection to `addr` is
    /// refused. Requests in progress get no answer.
    pub async fn close(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn serve(handler: Handler) -> Server {
    serve_with(handler, None).await
}

/// Serves on `addr`, which must be a loopback address (port 0 for any
/// free port); fails when it cannot be bound (the port is taken, or the
/// machine has no IPv6 loopback).
pub async fn serve_at(addr: SocketAddr, handler: Handler) -> std::io::Result<Server> {
    assert!(
        addr.ip().is_loopback(),
        "stand-ins stay on loopback: {addr}"
    );
    let listener = TcpListener::bind(addr).await?;
    Ok(serve_on(listener, handler, None))
}

/// Serves HTTPS with `acceptor`'s certificate.
pub async fn serve_tls(handler: Handler, acceptor: tokio_rustls::TlsAcceptor) -> Server {
    serve_with(handler, Some(acceptor)).await
}

async fn serve_with(handler: Handler, tls: Option<tokio_rustls::TlsAcceptor>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    serve_on(listener, handler, tls)
}

fn serve_on(
    listener: TcpListener,
    handler: Handler,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> Server {
    let addr = listener.local_addr().expect("local addr");
    let is_tls = tls.is_some();
    let task = accept_each(listener, move |stream| {
        let handler = handler.clone();
        let tls = tls.clone();
        async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let handler = handler.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let req = Req {
                        method: parts.method,
                        path: parts.uri.path().to_owned(),
                        query: parts.uri.query().unwrap_or_default().to_owned(),
                        headers: parts.headers,
                        body,
                    };
                    Ok::<_, Infallible>(handler(req).await)
                }
            });
            match tls {
                None => {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                }
                Some(acceptor) => {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                }
            }
        }
    });
    Server {
        addr,
        tls: is_tls,
        task,
    }
}

/// Accepts connections on `listener` until the returned task is aborted,
/// running `serve` on each. The connections live no longer than the accept
/// loop: a closed or dropped server keeps no kept-alive connection open.
pub(crate) fn accept_each<F, Fut>(listener: TcpListener, mut serve: F) -> JoinHandle<()>
where
    F: FnMut(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            while connections.try_join_next().is_some() {}
            connections.spawn(serve(stream));
        }
    })
}

pub fn response(status: u16, content_type: &str, body: impl Into<Bytes>) -> Resp {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body.into()))
        .expect("valid response")
}

/// `response` sent chunked, with no `Content-Length`: a client learns its
/// size only by reading it to the end.
pub fn chunked(mut response: Resp) -> Resp {
    response.headers_mut().insert(
        "transfer-encoding",
        hyper::header::HeaderValue::from_static("chunked"),
    );
    response
}

/// One HTTP response, as a raw client read it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// Sends `raw` to `addr` on a new connection and reads until the server
/// closes it (send `Connection: close`); panics when that takes longer
/// than [`WAIT_LIMIT`].
pub async fn exchange(addr: &str, raw: &[u8]) -> Answer {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(raw).await.unwrap();
    let mut bytes = vec![];
    tokio::time::timeout(WAIT_LIMIT, conn.read_to_end(&mut bytes))
        .await
        .expect("the server did not close the connection")
        .ok();
    parse(&bytes)
}

/// Splits a raw response into status, head and body (not de-chunked).
pub fn parse(bytes: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}
