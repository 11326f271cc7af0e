//! `irsa-doctor serve`, as a child process or as a task of the test's own
//! (`irsa_doctor::serve`, started by the test), and a raw HTTP/1.1 client
//! for probing it: raw, so tests can also send what no proper client would.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::Doctor;

use crate::http::{exchange, parse};
pub use crate::http::{Answer, WAIT_LIMIT};

/// A running `irsa-doctor serve`.
pub struct Serving {
    pub addr: String,
    run: Run,
}

/// How the server runs.
enum Run {
    /// The binary, as a child process: signals, exit codes and logs.
    Child {
        child: Box<Child>,
        stderr: Arc<Mutex<String>>,
        /// Reads stderr into `stderr` until the process closes it.
        reader: tokio::task::JoinHandle<()>,
        _home: tempfile::TempDir,
    },
    /// `irsa_doctor::serve` on a task; it shuts down when `stop` is sent
    /// or dropped.
    InProcess {
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        task: tokio::task::JoinHandle<()>,
    },
}

impl Doctor {
    /// Runs `irsa-doctor serve` to its end, for runs that must not start.
    pub async fn serve_once(mut self) -> crate::Outcome {
        self.args[0] = "serve".into();
        self.run().await
    }

    /// Starts `irsa-doctor serve` on a free loopback port with JSON logs
    /// (text ones where `IRSA_DOCTOR_LOG_FORMAT=text` is set), and waits
    /// for its startup line.
    pub async fn serve(mut self) -> Serving {
        self.args[0] = "serve".into();
        if !self.env.contains_key("IRSA_DOCTOR_LOG_FORMAT") {
            self.args.extend(["--log-format".into(), "json".into()]);
        }
        let mut cmd = Command::new(&self.binary);
        cmd.env_clear()
            .envs(&self.env)
            .args(&self.args)
            .args(["--listen", "127.0.0.1:0"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("irsa-doctor starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let stderr = Arc::new(Mutex::new(String::new()));
        let addr = tokio::time::timeout(WAIT_LIMIT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                push(&stderr, &line);
                if let Some(text) = line.split(" listen=").nth(1) {
                    return text
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                }
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if let Some(listen) = v["listen"].as_str() {
                    return listen.to_owned();
                }
            }
            panic!(
                "irsa-doctor serve exited before listening:\n{}",
                stderr.lock().unwrap()
            )
        })
        .await
        .expect("irsa-doctor serve did not log its address");
        let sink = stderr.clone();
        let reader = tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                push(&sink, &line);
            }
        });
        Serving {
            addr,
            run: Run::Child {
                child: Box::new(child),
                stderr,
                reader,
                _home: self.home,
            },
        }
    }
}

fn push(buf: &Arc<Mutex<String>>, line: &str) {
    let mut b = buf.lock().unwrap();
    b.push_str(line);
    b.push('\n');
}

impl Serving {
    /// A server the test started in process on `addr`: `task` runs
    /// `irsa_doctor::serve` with a shutdown future that resolves when
    /// `stop` is sent or dropped.
    pub fn in_process(
        addr: std::net::SocketAddr,
        task: tokio::task::JoinHandle<()>,
        stop: tokio::sync::oneshot::Sender<()>,
    ) -> Serving {
        Serving {
            addr: addr.to_string(),
            run: Run::InProcess {
                stop: Some(stop),
                task,
            },
        }
    }

    /// Shuts an in-process server down and waits for `serve` to return.
    pub async fn shut_down(self) {
        let Run::InProcess { mut stop, task } = self.run else {
            panic!("shut_down is for in-process servers; signal a child")
        };
        let _ = stop.take().map(|s| s.send(()));
        tokio::time::timeout(WAIT_LIMIT, task)
            .await
            .expect("serve did not return after its shutdown future resolved")
            .expect("serve's task panicked");
    }

    /// Everything logged so far (a child's stderr; an in-process server's
    /// logs go to the test's own subscriber, so none here).
    pub fn logs(&self) -> String {
        match &self.run {
            Run::Child { stderr, .. } => stderr.lock().unwrap().clone(),
            Run::InProcess { .. } => "(in process: logs are not captured)".to_owned(),
        }
    }

    fn child(&self) -> &Child {
        match &self.run {
            Run::Child { child, .. } => child,
            Run::InProcess { .. } => panic!("a child-process method on an in-process server"),
        }
    }

    /// Waits until the logs hold `needle`. The loop publishes a verdict
    /// before it logs about it, so a probe can see it first.
    pub async fn wait_for_log(&self, needle: &str) {
        let limit = Instant::now() + WAIT_LIMIT;
        while !self.logs().contains(needle) {
            assert!(
                Instant::now() < limit,
                "the logs never said {needle:?}:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.request(&format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        ))
        .await
    }

    /// Sends `raw` on a new connection and reads until the server closes it.
    pub async fn request(&self, raw: &str) -> Answer {
        self.request_bytes(raw.as_bytes()).await
    }

    pub async fn request_bytes(&self, raw: &[u8]) -> Answer {
        exchange(&self.addr, raw).await
    }

    /// GETs `path` on a new connection, as the kubelet probes: the status,
    /// or why there was none (refused, reset, closed without an answer, no
    /// answer within `limit`). Never panics, so a test can count failures.
    pub async fn probe(&self, path: &str, limit: Duration) -> Result<u16, String> {
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        let exchange = async {
            let mut conn = TcpStream::connect(&self.addr).await?;
            conn.write_all(req.as_bytes()).await?;
            let mut bytes = vec![];
            conn.read_to_end(&mut bytes).await?;
            Ok::<_, std::io::Error>(bytes)
        };
        match tokio::time::timeout(limit, exchange).await {
            Err(_) => Err(format!("no answer within {limit:?}")),
            Ok(Err(e)) => Err(e.to_string()),
            Ok(Ok(bytes)) if bytes.is_empty() => Err("closed without an answer".into()),
            Ok(Ok(bytes)) => Ok(parse(&bytes).status),
        }
    }

    /// Polls `path` until `done` holds for its answer; panics after
    /// [`WAIT_LIMIT`] with the last answer and the logs.
    pub async fn wait_for(&self, path: &str, done: impl Fn(&Answer) -> bool) -> Answer {
        let limit = Instant::now() + WAIT_LIMIT;
        loop {
            let answer = self.get(path).await;
            if done(&answer) {
                return answer;
            }
            assert!(
                Instant::now() < limit,
                "{path} never reached the expected state; last answer: {answer:?}\nlogs:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the first verdict and returns /status.
    pub async fn first_verdict(&self) -> Value {
        self.wait_for("/status", |a| !a.json()["verdict"].is_null())
            .await
            .json()
    }

    /// The sum of `irsa_doctor_sts_requests_total` over all labels.
    pub async fn sts_requests(&self) -> u64 {
        let metrics = self.get("/metrics").await.body;
        metrics
            .lines()
            .filter(|l| l.starts_with("irsa_doctor_sts_requests_total{"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    }

    pub fn pid(&self) -> u32 {
        self.child().id().expect("still running")
    }

    /// Sends `signal` (as `kill` names it) and waits for the exit; returns
    /// the exit code and the logs.
    pub async fn stop(self, signal: &str) -> (i32, String) {
        let (code, logs, _) = self.stop_timed(signal).await;
        (code, logs)
    }

    /// Waits for the exit after [`Serving::signal`].
    pub async fn stop_after_signal(self) -> (i32, String) {
        let (code, logs, _) = self.wait_exit().await;
        (code, logs)
    }

    /// [`Serving::stop`], also returning how long the exit took.
    pub async fn stop_timed(self, signal: &str) -> (i32, String, Duration) {
        self.signal(signal);
        self.wait_exit().await
    }

    async fn wait_exit(self) -> (i32, String, Duration) {
        let Run::Child {
            mut child,
            stderr,
            mut reader,
            _home,
        } = self.run
        else {
            panic!("a child-process method on an in-process server")
        };
        let sent_at = Instant::now();
        let status = tokio::time::timeout(WAIT_LIMIT, child.wait())
            .await
            .expect("irsa-doctor serve did not exit after the signal")
            .unwrap();
        let took = sent_at.elapsed();
        // The exit closed stderr: the reader ends once it has read it all.
        tokio::time::timeout(WAIT_LIMIT, &mut reader)
            .await
            .expect("stderr was not closed")
            .unwrap();
        let mut stdout = String::new();
        if let Some(mut out) = child.stdout.take() {
            let _ = out.read_to_string(&mut stdout).await;
        }
        let logs = stderr.lock().unwrap().clone();
        (status.code().unwrap_or(-1), logs + &stdout, took)
    }

    /// Sends `signal` (as `kill` names it) without waiting.
    pub fn signal(&self, signal: &str) {
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }
}

/// Clients that each hold a connection with half a request head and
/// reopen it as soon as the server closes it: the attack that starved the
/// probes when `serve` refused connections over its cap. They stop when
/// told, or by themselves after twice [`WAIT_LIMIT`].
pub struct HalfHeads {
    stop: watch::Sender<bool>,
    clients: JoinSet<u64>,
}

impl HalfHeads {
    /// Opens `n` connections to `addr` from the loopback address `source`,
    /// and returns once each has sent its half head.
    pub async fn open(addr: &str, source: IpAddr, n: usize) -> HalfHeads {
        let addr: SocketAddr = addr.parse().unwrap();
        assert!(source.is_loopback() && addr.ip().is_loopback());
        let (stop, stopped) = watch::channel(false);
        let (opened, mut all_opened) = tokio::sync::mpsc::channel(n);
        let mut clients = JoinSet::new();
        for _ in 0..n {
            let mut stopped = stopped.clone();
            let opened = opened.clone();
            clients.spawn(async move {
                let until = tokio::time::Instant::now() + 2 * WAIT_LIMIT;
                let mut conn = half_head(source, addr).await.expect("the first connect");
                opened.send(()).await.unwrap();
                let mut reopened = 0;
                loop {
                    let mut buf = [0; 512];
                    tokio::select! {
                        _ = stopped.wait_for(|s| *s) => break,
                        () = tokio::time::sleep_until(until) => break,
                        // Closed (or answered, which no half head is):
                        // come straight back, as the attack does.
                        _ = conn.read(&mut buf) => {}
                    }
                    match half_head(source, addr).await {
                        Ok(c) => conn = c,
                        // Out of ports, say: nothing more to attack with.
                        Err(_) => break,
                    }
                    reopened += 1;
                }
                reopened
            });
        }
        for _ in 0..n {
            all_opened.recv().await.unwrap();
        }
        HalfHeads { stop, clients }
    }

    /// Stops the clients; returns how many times they reopened a
    /// connection the server had closed.
    pub async fn stop(mut self) -> u64 {
        let _ = self.stop.send(true);
        let mut reopened = 0;
        while let Some(n) = self.clients.join_next().await {
            reopened += n.unwrap();
        }
        reopened
    }
}

/// A connection from `source` to `addr` with a request head that never ends.
async fn half_head(source: IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = match source {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(source, 0))?;
    let mut conn = socket.connect(addr).await?;
    conn.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\n")
        .await?;
    Ok(conn)
}

/// A keep-alive connection for many requests in a row.
pub struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    pub async fn open(addr: &str) -> Conn {
        Conn {
            reader: BufReader::new(TcpStream::connect(addr).await.unwrap()),
        }
    }

    pub async fn get(&mut self, path: &str) -> Answer {
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        self.reader
            .get_mut()
            .write_all(req.as_bytes())
            .await
            .unwrap();
        let mut head = String::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).await.unwrap();
            assert!(n > 0, "connection closed mid-response");
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let answer = parse(head.as_bytes());
        let len: usize = answer
            .header("content-length")
            .expect("a content-length")
            .parse()
            .unwrap();
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body).await.unwrap();
        Answer {
            body: String::from_utf8(body).unwrap(),
            ..answer
        }
    }
}

/// Polls `done` until it holds; panics with `what` after [`WAIT_LIMIT`].
pub async fn until(what: &str, done: impl Fn() -> bool) {
    let limit = std::time::Instant::now() + WAIT_LIMIT;
    while !done() {
        assert!(std::time::Instant::now() < limit, "{what} never happened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of one series (name and labels, as printed) in a /metrics
/// body; panics when the series is absent.
pub fn metric(metrics: &str, series: &str) -> i64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series}:\n{metrics}"))
        .parse()
        .unwrap()
}
