//! Endpoint abuse against `irsa-doctor serve` (the binary, as a child) on
//! loopback: slowloris, thousands of idle connections, oversized heads,
//! pipelining, bytes that are not HTTP/1, bodies, HTTP/1.0. While each
//! runs, fresh `/readyz` probes are answered within the kubelet's 1 s
//! timeout; afterwards the server's file descriptors come back to what
//! they were, and its peak RSS stays under [`RSS_LIMIT_KIB`]. Every load
//! loop is bounded in count and in time. The figures (latency, RSS) are
//! bench/abuse.py's; these are functional bounds.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use irsa_doctor::{HEADER_READ_TIMEOUT, MAX_CONNECTIONS};
use testkit::fake_aws::{FakeAws, FakeAwsServer};
use testkit::jwt::{Jwt, TokenVolume};
use testkit::serving::{Serving, WAIT_LIMIT};
use testkit::world::{NAMESPACE, ROLE_ARN, SERVICE_ACCOUNT};
use testkit::{doctor, http};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// The kubelet's default probe timeout.
const PROBE_LIMIT: Duration = Duration::from_secs(1);
/// Peak RSS of the (debug) server under any of these abuses. The release
/// build's figures are in docs/reliability.md.
const RSS_LIMIT_KIB: u64 = 64 * 1024;
/// Connections the 2,000-idle case opens: the test process and the server
/// each need about this many descriptors.
const IDLE: usize = 2000;

/// A healthy pod's `serve`, ready, with its STS and token kept alive.
async fn ready_server() -> (Serving, FakeAwsServer, TokenVolume) {
    let sts = FakeAws::healthy().await;
    let volume = TokenVolume::new(&Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).encode());
    let serving = doctor!(&sts.url())
        .irsa(ROLE_ARN, &volume.path())
        .serve()
        .await;
    serving.wait_for("/readyz", |a| a.status == 200).await;
    (serving, sts, volume)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// The soft limit on this process's open files.
fn open_files_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        .expect("Max open files in /proc/self/limits")
}

/// Runs `abuse` while fresh connections probe `/readyz` every 20 ms, each
/// of which must be answered 200 within [`PROBE_LIMIT`]; then checks that
/// the server's descriptors come back and its peak RSS stayed bounded.
async fn while_probed<T>(serving: &Serving, context: &str, abuse: impl Future<Output = T>) -> T {
    let pid = serving.pid();
    let before = open_fds(pid);
    let done = AtomicBool::new(false);
    let probes = async {
        let mut answered = 0;
        while !done.load(Ordering::SeqCst) {
            let probe = serving.probe("/readyz", PROBE_LIMIT).await;
            assert_eq!(probe, Ok(200), "{context}: a probe failed");
            answered += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        answered
    };
    let abuse = async {
        let out = abuse.await;
        done.store(true, Ordering::SeqCst);
        out
    };
    let (answered, out) = tokio::join!(probes, abuse);
    assert!(answered >= 1, "{context}: no probe ran");
    let limit = Instant::now() + WAIT_LIMIT;
    while open_fds(pid) > before {
        assert!(
            Instant::now() < limit,
            "{context}: {} descriptors open, {before} before",
            open_fds(pid)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss = peak_rss_kib(pid);
    assert!(rss < RSS_LIMIT_KIB, "{context}: peak RSS {rss} KiB");
    out
}

/// Sends `raw` and reads what comes back until the server closes the
/// connection or `limit` passes: the bytes, and whether it closed. A
/// write the server cut short (it answered and closed first) is not an
/// error.
async fn send(addr: &str, raw: &[u8], limit: Duration) -> (Vec<u8>, bool) {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = conn.split();
    let mut got = vec![];
    let write = async {
        let _ = wr.write_all(raw).await;
    };
    let read = tokio::time::timeout(limit, async {
        let mut buf = [0; 8192];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    });
    let (_, closed) = tokio::join!(write, read);
    (got, closed.is_ok())
}

/// Slowloris: 600 connections (over twice [`MAX_CONNECTIONS`]) each send a
/// request head a byte every 250 ms and never finish it. Each is closed by
/// the server, evicted at the cap or cut at [`HEADER_READ_TIMEOUT`],
/// however steadily it trickles.
#[tokio::test(flavor = "multi_thread")]
async fn slowloris_holds_no_probe_up_and_is_cut_at_the_head_timeout() {
    let (serving, _sts, _volume) = ready_server().await;
    let clients = 600;
    assert!(clients > 2 * MAX_CONNECTIONS);
    let cut = Arc::new(AtomicUsize::new(0));
    let abuse = async {
        let mut set = JoinSet::new();
        for _ in 0..clients {
            let addr = serving.addr.clone();
            let cut = cut.clone();
            set.spawn(async move {
                let opened = Instant::now();
                let mut conn = TcpStream::connect(&addr).await.unwrap();
                let head = b"GET /readyz HTTP/1.1\r\nHost: x\r\nX-Slow: ".iter();
                let endless = head.chain(std::iter::repeat(&b'a'));
                for byte in endless {
                    let late = opened.elapsed() > HEADER_READ_TIMEOUT + Duration::from_secs(5);
                    assert!(!late, "a slowloris connection outlived the head timeout");
                    if conn.write_all(&[*byte]).await.is_err() {
                        break;
                    }
                    let mut buf = [0; 256];
                    let read =
                        tokio::time::timeout(Duration::from_millis(250), conn.read(&mut buf));
                    if let Ok(Ok(_) | Err(_)) = read.await {
                        break;
                    }
                }
                cut.fetch_add(1, Ordering::SeqCst);
            });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
    };
    while_probed(&serving, "slowloris", abuse).await;
    assert_eq!(cut.load(Ordering::SeqCst), clients);
    let (code, _) = serving.stop("TERM").await;
    assert_eq!(code, 0);
}

/// 2,000 connections opened and left idle, without a byte sent: the
/// server keeps at most [`MAX_CONNECTIONS`] of them and still answers.
#[tokio::test(flavor = "multi_thread")]
async fn two_thousand_idle_connections_hold_no_probe_up() {
    let limit = open_files_limit();
    assert!(
        limit >= 2 * IDLE as u64 + 256,
        "this test needs `ulimit -n` of at least {} (it is {limit})",
        2 * IDLE + 256
    );
    let (serving, _sts, _volume) = ready_server().await;
    let pid = serving.pid();
    let abuse = async {
        let mut idle = Vec::with_capacity(IDLE);
        for _ in 0..IDLE {
            idle.push(TcpStream::connect(&serving.addr).await.unwrap());
        }
        // Once the server has accepted them all, it holds no more than its
        // cap (plus the listener, the probes' and its own descriptors).
        let limit = Instant::now() + WAIT_LIMIT;
        let mut held = open_fds(pid);
        while held > MAX_CONNECTIONS + 64 {
            assert!(Instant::now() < limit, "{held} descriptors held");
            tokio::time::sleep(Duration::from_millis(50)).await;
            held = open_fds(pid);
        }
        for _ in 0..20 {
            let probe = serving.probe("/livez", PROBE_LIMIT).await;
            assert_eq!(probe, Ok(200), "/livez with {IDLE} idle connections");
        }
        idle
    };
    let idle = while_probed(&serving, "2,000 idle connections", abuse).await;
    drop(idle);
    let (code, _) = serving.stop("TERM").await;
    assert_eq!(code, 0);
}

/// One abusive request: what it is, its bytes, and the status the server
/// must answer with (0: it closes without an answer).
type Odd = (&'static str, Vec<u8>, u16);

fn odd_requests() -> Vec<Odd> {
    let mb = 1024 * 1024;
    let long_line = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(mb));
    let long_headers = format!(
        "GET /readyz HTTP/1.1\r\nHost: x\r\n{}\r\n",
        "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
            .repeat(mb / 74)
    );
    let mut client_hello = vec![
        0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03,
    ];
    client_hello.extend(std::iter::repeat_n(0x42, 0xa1 - 2));
    let chunked = format!(
        "GET /readyz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{}0\r\n\r\n",
        format!("10000\r\n{}\r\n", "b".repeat(0x10000)).repeat(16)
    );
    let mut big_body = format!(
        "GET /readyz HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        10 * mb
    )
    .into_bytes();
    big_body.extend(vec![b'c'; mb]);
    vec![
        ("a 1 MB request line", long_line.into_bytes(), 431),
        ("1 MB of headers", long_headers.into_bytes(), 431),
        (
            "garbage bytes",
            (0..=255u8).cycle().take(4096).collect(),
            400,
        ),
        ("a TLS ClientHello", client_hello, 400),
        // HTTP/1 only: hyper answers the preface by closing.
        (
            "an HTTP/2 preface",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
            0,
        ),
        ("a 10 MB body", big_body, 413),
        ("a 1 MB chunked body", chunked.into_bytes(), 413),
        ("HTTP/1.0", b"GET /readyz HTTP/1.0\r\n\r\n".to_vec(), 200),
        (
            "Connection: close",
            b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
            200,
        ),
    ]
}

/// Each odd request 20 times at once: each gets its answer and the
/// connection closed, well within the head timeout, and no probe waits.
#[tokio::test(flavor = "multi_thread")]
async fn oversized_and_non_http1_requests_are_answered_and_closed() {
    let (serving, _sts, _volume) = ready_server().await;
    for (what, raw, expected) in odd_requests() {
        let raw = Arc::new(raw);
        let abuse = async {
            let mut set = JoinSet::new();
            for _ in 0..20 {
                let (addr, raw) = (serving.addr.clone(), raw.clone());
                set.spawn(async move { send(&addr, &raw, HEADER_READ_TIMEOUT).await });
            }
            set.join_all().await
        };
        for (got, closed) in while_probed(&serving, what, abuse).await {
            assert!(closed, "{what}: the server did not close the connection");
            let answer = http::parse(&got);
            assert_eq!(answer.status, expected, "{what}: {answer:?}");
        }
    }
    let (code, _) = serving.stop("TERM").await;
    assert_eq!(code, 0);
}

/// 100 requests in one write on one connection: 100 answers, in order,
/// and the connection closes after the last, which asks it to.
#[tokio::test(flavor = "multi_thread")]
async fn pipelined_requests_are_all_answered_in_order() {
    let (serving, _sts, _volume) = ready_server().await;
    let mut raw = String::new();
    for i in 0..100 {
        let path = ["/readyz", "/livez", "/nope"][i % 3];
        raw.push_str(&format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
    }
    raw.push_str("GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let abuse = async {
        let mut set = JoinSet::new();
        for _ in 0..20 {
            let (addr, raw) = (serving.addr.clone(), raw.clone());
            set.spawn(async move { send(&addr, raw.as_bytes(), WAIT_LIMIT).await });
        }
        set.join_all().await
    };
    for (got, closed) in while_probed(&serving, "pipelining", abuse).await {
        assert!(closed);
        let text = String::from_utf8_lossy(&got);
        let statuses: Vec<&str> = text
            .match_indices("HTTP/1.1 ")
            .map(|(i, _)| &text[i + 9..i + 12])
            .collect();
        let expected: Vec<&str> = (0..101).map(|i| ["200", "200", "404"][i % 3]).collect();
        assert_eq!(statuses, expected);
    }
    let (code, _) = serving.stop("TERM").await;
    assert_eq!(code, 0);
}
