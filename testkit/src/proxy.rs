//! A loopback HTTP proxy for the proxy tests: it forwards every request to
//! one upstream address, whatever host the request names (so an endpoint
//! under `.invalid`, which cannot resolve, is reachable only through it),
//! or refuses every request with one status.
//!
//! A forwarded request (absolute-form, `GET http://host/ HTTP/1.1`) is
//! passed to the upstream as it came: a hyper server accepts the absolute
//! form. A `CONNECT` is answered `200` and the connection is then piped to
//! the upstream, which does the TLS.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The most of a request head the proxy reads.
const MAX_HEAD: usize = 64 * 1024;

/// What the proxy does with each request.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// Passes everything to this address.
    Forward(SocketAddr),
    /// Answers every request, `CONNECT` included, with this status.
    Refuse(u16),
}

pub struct Proxy {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Starts a proxy on 127.0.0.1.
    pub async fn start(mode: Mode) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let seen = Arc::new(Mutex::new(vec![]));
        let log = seen.clone();
        let task =
            crate::http::accept_each(listener, move |stream| handle(stream, mode, log.clone()));
        Proxy { addr, seen, task }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The request line of the first request on each connection the proxy
    /// got (`CONNECT host:port HTTP/1.1`, `POST http://host/ HTTP/1.1`),
    /// and whether it carried `Proxy-Authorization`, as `<line>
    /// auth=<bool>`.
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

async fn handle(mut client: TcpStream, mode: Mode, seen: Arc<Mutex<Vec<String>>>) {
    let Some((head, rest)) = read_head(&mut client).await else {
        return;
    };
    let text = String::from_utf8_lossy(&head).into_owned();
    let line = text.lines().next().unwrap_or("").to_owned();
    let auth = text
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("proxy-authorization:"));
    seen.lock().unwrap().push(format!("{line} auth={auth}"));
    let upstream = match mode {
        Mode::Refuse(status) => {
            let answer = format!(
                "HTTP/1.1 {status} Refused\r\ncontent-type: text/html\r\ncontent-length: 23\r\n\
                 connection: close\r\n\r\n<h1>proxy refused</h1>\n"
            );
            let _ = client.write_all(answer.as_bytes()).await;
            return;
        }
        Mode::Forward(upstream) => upstream,
    };
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        let _ = client
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    };
    if line.starts_with("CONNECT ") {
        if client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
    } else if server.write_all(&head).await.is_err() {
        return;
    }
    if server.write_all(&rest).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

/// The request head up to its blank line, and whatever came after it.
async fn read_head(stream: &mut TcpStream) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Some((buf, rest));
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
    }
}
