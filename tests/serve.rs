//! `irsa-doctor serve` over a real socket: endpoint semantics, token
//! rotation, probe traffic that never reaches STS, inconclusive spells
//! shorter and longer than `--stale-after`, definitive failures, signals,
//! and clients that misbehave.
//!
//! Most tests run `irsa_doctor::serve` in process, on a listener they bind
//! and with a shutdown future they hold ([`in_process`]). The binary runs
//! as a child where only a process shows it: signals, exit codes, a port
//! already in use, the log lines, and the default credential chain an app
//! in the container would resolve (which reads the process environment).

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use irsa_doctor::{serve, Exit, ServeSettings, HEADER_READ_TIMEOUT, MAX_CONNECTIONS};
use testkit::fake_aws::{FakeAws, FakeAwsServer, Fault, Trust};
use testkit::jwt::{good_token, other_sa_token, TokenVolume};
use testkit::serving::{metric, until, Conn, HalfHeads, Serving, WAIT_LIMIT};
use testkit::world::{NAMESPACE, ROLE_ARN, SERVICE_ACCOUNT};
use testkit::{doctor, Doctor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn pod(sts: &FakeAwsServer, volume: &TokenVolume) -> Doctor {
    doctor!(&sts.url()).irsa(ROLE_ARN, &volume.path())
}

/// A pod that checks every second and gives each check a second, so that
/// loops are quick to observe.
fn fast_pod(sts: &FakeAwsServer, volume: &TokenVolume) -> Doctor {
    pod(sts, volume)
        .env("IRSA_DOCTOR_TIMEOUT", "3s")
        .arg("--interval")
        .arg("1s")
}

/// [`fast_pod`]'s flags.
const FAST: [&str; 4] = ["--timeout", "3s", "--interval", "1s"];

/// `irsa_doctor::serve` on a task of this test, listening on 127.0.0.1:0,
/// for a pod whose token is in `volume` and whose STS is at `sts_url`,
/// with `flags` as on the command line after `serve`. The AWS variables
/// and the SDK's configuration are handed in, not read from this process;
/// clap still falls back to `IRSA_DOCTOR_*` variables for flags not given,
/// as it does for the binary (CI sets none). The server stops when the returned
/// [`Serving`] is shut down or dropped; it must then return `Stopped`.
async fn in_process(sts_url: &str, volume: &TokenVolume, flags: &[&str]) -> Serving {
    in_process_with(sts_url, volume, flags, &[("AWS_ENDPOINT_URL_STS", sts_url)]).await
}

/// [`in_process`] for a pod whose environment is IRSA's pair, a region
/// (us-east-1) and `vars`; its STS requests go to `sts_url` whatever
/// `vars` say, so a test can leave out the custom endpoint variable that
/// the real endpoint rules cannot be tested without.
async fn in_process_with(
    sts_url: &str,
    volume: &TokenVolume,
    flags: &[&str],
    vars: &[(&str, &str)],
) -> Serving {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = volume.path().display().to_string();
    let mut all = vec![
        ("AWS_ROLE_ARN", ROLE_ARN),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token.as_str()),
        ("AWS_REGION", "us-east-1"),
    ];
    all.extend_from_slice(vars);
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(sts_url)
        .build();
    let settings = ServeSettings::new(flags, &all, sdk).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        assert_eq!(serve(listener, settings, shutdown).await, Exit::Stopped);
    });
    Serving::in_process(addr, task, stop)
}

#[tokio::test]
async fn every_endpoint_answers_over_a_socket() {
    let sts = FakeAws::healthy().await;
    let volume = TokenVolume::new(&good_token());
    let serving = in_process(&sts.url(), &volume, &[]).await;
    let status = serving.first_verdict().await;
    assert_eq!(status["verdict"], "pass", "{status:#}");

    let ready = serving.get("/readyz").await;
    assert_eq!(ready.status, 200, "{ready:?}");
    assert!(
        ready.body.starts_with(
            "ready: irsa-doctor: pass: acting as arn:aws:sts::111122223333:assumed-role/app/"
        ),
        "{}",
        ready.body
    );
    assert_eq!(ready.body.lines().count(), 1);
    assert_eq!(serving.get("/livez").await.status, 200);

    // /status is the check's JSON report plus the loop's view.
    let check = pod(&sts, &volume).json().await.json();
    for key in check.as_object().unwrap().keys() {
        assert!(
            status.get(key).is_some(),
            "/status lacks the report's {key}: {status:#}"
        );
    }
    for key in [
        "checked_at",
        "next_check_at",
        "last_change_at",
        "last_conclusive_at",
    ] {
        assert!(
            status[key].as_str().unwrap().ends_with('Z'),
            "{key}: {status:#}"
        );
    }
    assert_eq!(status["consecutive_inconclusive"], 0);
    assert_eq!(status["ready"], true);

    let metrics = serving.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.header("content-type").unwrap(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    for line in [
        "irsa_doctor_ready 1",
        "irsa_doctor_verdict{verdict=\"pass\"} 1",
        "irsa_doctor_checks_total{verdict=\"pass\"} 1",
        "irsa_doctor_check_duration_seconds_count 1",
    ] {
        assert!(
            metrics.body.lines().any(|l| l == line),
            "no {line}:\n{}",
            metrics.body
        );
    }
    let expires_in = metric(&metrics.body, "irsa_doctor_token_expires_in_seconds");
    assert!((80_000..=86_400).contains(&expires_in), "{expires_in}");
    // The count is taken below the SDK: it matches what the stand-in saw.
    // In process there is no default chain to resolve (it reads the
    // process environment), so the server made one request; the extra
    // `check` above made two (its own and its chain's), hence the
    // subtraction. serve_against_moto counts the chain's request too.
    let seen = sts.aws.assume_calls() + sts.aws.caller_identity_calls();
    assert_eq!(serving.sts_requests().await, seen - 2);

    // HEAD gets GET's status and headers without the body.
    let head = serving
        .request("HEAD /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length").unwrap(),
        ready.body.len().to_string()
    );
    assert_eq!(head.body, "");
    let head = serving
        .request("HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(head.status, 200);

    // Query strings do not change the path.
    assert_eq!(serving.get("/readyz?verbose=1").await.status, 200);

    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        let answer = serving
            .request(&format!(
                "{method} /readyz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ))
            .await;
        assert_eq!(answer.status, 405, "{method}: {answer:?}");
        assert_eq!(answer.header("allow").unwrap(), "GET, HEAD");
    }
    let missing = serving.get("/healthz").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("/readyz"), "{}", missing.body);
}

#[tokio::test]
async fn readiness_is_503_until_the_first_verdict() {
    let sts = FakeAws::healthy().await;
    sts.aws.always(Fault::Hold);
    let volume = TokenVolume::new(&good_token());
    let serving = in_process(&sts.url(), &volume, &[]).await;

    let ready = serving.get("/readyz").await;
    assert_eq!(ready.status, 503, "{ready:?}");
    assert!(ready.body.contains("first check"), "{}", ready.body);
    assert_eq!(serving.get("/livez").await.status, 200);
    let status = serving.get("/status").await;
    assert_eq!(status.status, 200);
    assert!(status.json()["verdict"].is_null(), "{}", status.body);
    assert!(serving
        .get("/metrics")
        .await
        .body
        .contains("irsa_doctor_ready 0\n"));

    sts.aws.release();
    serving.wait_for("/readyz", |a| a.status == 200).await;
}

#[tokio::test]
async fn a_rotated_token_is_used_and_readiness_follows_within_seconds() {
    let sts = FakeAws::healthy().await;
    let mut volume = TokenVolume::new(&good_token());
    // The default interval (5 minutes): only the rotation can cause the
    // checks that follow.
    let serving = pod(&sts, &volume).serve().await;
    assert_eq!(serving.first_verdict().await["verdict"], "pass");

    volume.rotate(&other_sa_token());
    let ready = serving.wait_for("/readyz", |a| a.status == 503).await;
    assert!(ready.body.contains("TRUST_POLICY_DENIED"), "{}", ready.body);
    let status = serving.get("/status").await.json();
    assert_eq!(
        status["token"]["sub"], "system:serviceaccount:payments:batch-job",
        "the new token was read: {status:#}"
    );

    volume.rotate(&good_token());
    serving.wait_for("/readyz", |a| a.status == 200).await;
    serving.wait_for_log("the token volume changed").await;
    serving
        .wait_for_log("readiness changed: pass -> fail")
        .await;
    serving
        .wait_for_log("readiness changed: fail -> pass")
        .await;
}

#[tokio::test]
async fn thousands_of_probes_cause_no_sts_calls() {
    let sts = FakeAws::healthy().await;
    let volume = TokenVolume::new(&good_token());
    let serving = in_process(&sts.url(), &volume, &[]).await;
    serving.first_verdict().await;
    let before = (sts.aws.assume_calls(), sts.aws.caller_identity_calls());
    let counted = serving.sts_requests().await;
    assert!(counted > 0);

    let mut conn = Conn::open(&serving.addr).await;
    for i in 0..5000 {
        let path = ["/readyz", "/livez", "/status", "/metrics"][i % 4];
        let answer = conn.get(path).await;
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
    }
    for _ in 0..200 {
        assert_eq!(serving.get("/readyz").await.status, 200);
    }

    assert_eq!(
        (sts.aws.assume_calls(), sts.aws.caller_identity_calls()),
        before
    );
    assert_eq!(serving.sts_requests().await, counted);
    let status = serving.get("/status").await.json();
    assert_eq!(status["consecutive_inconclusive"], 0);
    let metrics = serving.get("/metrics").await.body;
    assert!(
        metrics.contains("irsa_doctor_check_duration_seconds_count 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_throttling_spell_shorter_than_stale_after_keeps_the_pod_ready() {
    let sts = FakeAws::healthy().await;
    let volume = TokenVolume::new(&good_token());
    let flags = [&FAST[..], &["--stale-after", "5m"]].concat();
    let serving = in_process(&sts.url(), &volume, &flags).await;
    assert_eq!(serving.first_verdict().await["verdict"], "pass");

    sts.aws.always(Fault::Throttle);
    let status = serving
        .wait_for("/status", |a| {
            a.json()["consecutive_inconclusive"].as_u64() >= Some(2)
        })
        .await
        .json();
    assert_eq!(status["verdict"], "inconclusive", "{status:#}");
    assert_eq!(status["ready"], true, "{status:#}");
    let ready = serving.get("/readyz").await;
    assert_eq!(ready.status, 200, "{ready:?}");
    assert!(ready.body.contains("--stale-after 5m"), "{}", ready.body);
    assert!(ready.body.contains("STS_THROTTLED"), "{}", ready.body);
    let metrics = serving.get("/metrics").await.body;
    assert!(metrics.contains("irsa_doctor_ready 1\n"), "{metrics}");
    assert!(
        metrics.contains("irsa_doctor_verdict{verdict=\"inconclusive\"} 1\n"),
        "{metrics}"
    );
    let throttled = metric(
        &metrics,
        "irsa_doctor_sts_requests_total{action=\"AssumeRoleWithWebIdentity\",outcome=\"client_error\"}",
    );
    assert!(
        throttled >= 2,
        "the throttled requests are counted:\n{metrics}"
    );

    sts.aws.clear_always();
    serving
        .wait_for("/status", |a| {
            let s = a.json();
            s["verdict"] == "pass" && s["consecutive_inconclusive"] == 0
        })
        .await;
    assert_eq!(serving.get("/readyz").await.status, 200);
}

#[tokio::test]
async fn a_throttling_spell_longer_than_stale_after_takes_the_pod_out() {
    let sts = FakeAws::healthy().await;
    let volume = TokenVolume::new(&good_token());
    let flags = [&FAST[..], &["--stale-after", "2s"]].concat();
    let serving = in_process(&sts.url(), &volume, &flags).await;
    assert_eq!(serving.first_verdict().await["verdict"], "pass");

    sts.aws.always(Fault::Throttle);
    let ready = serving.wait_for("/readyz", |a| a.status == 503).await;
    assert!(
        ready.body.contains("longer than --stale-after 2s"),
        "{}",
        ready.body
    );
    assert!(ready.body.contains("STS_THROTTLED"), "{}", ready.body);
}

#[tokio::test]
async fn a_definitive_failure_flips_readiness_at_the_check_that_finds_it() {
    let sts = FakeAws::healthy().await;
    let volume = TokenVolume::new(&good_token());
    let serving = fast_pod(&sts, &volume).serve().await;
    assert_eq!(serving.first_verdict().await["verdict"], "pass");

    sts.aws
        .set_trust(ROLE_ARN, Trust::for_sa(NAMESPACE, "someone-else"));
    let ready = serving.wait_for("/readyz", |a| a.status == 503).await;
    assert!(
        ready
            .body
            .starts_with("not ready: irsa-doctor: fail: TRUST_POLICY_DENIED"),
        "{}",
        ready.body
    );
    let status = serving.get("/status").await.json();
    assert_eq!(status["verdict"], "fail");
    assert_eq!(status["ready"], false);
    let metrics = serving.get("/metrics").await.body;
    assert!(
        metrics.contains(
            "irsa_doctor_finding_active{code=\"TRUST_POLICY_DENIED\",severity=\"error\"} 1\n"
        ),
        "{metrics}"
    );

    sts.aws
        .set_trust(ROLE_ARN, Trust::for_sa(NAMESPACE, SERVICE_ACCOUNT));
    serving.wait_for("/readyz", |a| a.status == 200).await;
    serving
        .wait_for_log("readiness changed: pass -> fail")
        .await;
    serving
        .wait_for_log("readiness changed: fail -> pass")
        .await;
}

#[tokio::test]
async fn sigterm_and_sigint_exit_zero() {
    let sts = FakeAws::healthy().await;
    let volume = TokenVolume::new(&good_token());
    for signal in ["TERM", "INT"] {
        let serving = pod(&sts, &volume)
            .arg("--shutdown-grace")
            .arg("1h")
            .serve()
            .await;
        serving.first_verdict().await;
        // An idle keep-alive connection is closed at once, not waited for:
        // with an hour of grace, only that lets the exit come before the
        // 5 s head timeout would have closed the connection anyway.
        let mut conn = Conn::open(&serving.addr).await;
        assert_eq!(conn.get("/readyz").await.status, 200);
        let (code, logs, took) = serving.stop_timed(signal).await;
        assert_eq!(code, 0, "SIG{signal}:\n{logs}");
        assert!(took < HEADER_READ_TIMEOUT, "SIG{signal}: {took:?}");
        assert!(logs.contains(&format!("SIG{signal}")), "{logs}");
        assert!(logs.contains("irsa-doctor serve stopped"), "{logs}");
    }
}

/// A healthy `serve` with `--shutdown-grace grace`, after its first
/// verdict, and a connection that has sent all of a request head but its
/// final blank line: a request in flight.
async fn half_a_request_with_grace(
    grace: &str,
) -> (FakeAwsServer, TokenVolume, Serving, tokio::net::TcpStream) {
    let sts = FakeAws::healthy().await;
    let volume = TokenVolume::new(&good_token());
    let serving = pod(&sts, &volume)
        .arg("--shutdown-grace")
        .arg(grace)
        .serve()
        .await;
    serving.first_verdict().await;
    let mut conn = tokio::net::TcpStream::connect(&serving.addr).await.unwrap();
    conn.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Connected is not accepted: a signal that closes the listener first
    // makes the kernel reset a connection still in its queue. The accept
    // queue is first in, first out, so once a later connection is
    // answered, the server holds this one.
    assert_eq!(serving.get("/livez").await.status, 200);
    (sts, volume, serving, conn)
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish() {
    let (_sts, _volume, serving, mut conn) = half_a_request_with_grace("1h").await;
    serving.signal("TERM");
    serving.wait_for_log("stopped accepting connections").await;
    assert!(
        tokio::net::TcpStream::connect(&serving.addr).await.is_err(),
        "new connections are refused"
    );
    conn.write_all(b"\r\n").await.unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.contains("ready: irsa-doctor: pass"), "{answer}");
    let (code, logs) = serving.stop_after_signal().await;
    assert_eq!(code, 0, "{logs}");
}

/// The shutdown future is `serve`'s only way to stop: in process, with no
/// signal, a request in flight still gets its answer and `serve` returns
/// `Stopped` (asserted by [`in_process`]'s task).
#[tokio::test]
async fn the_shutdown_future_stops_serve_after_the_request_in_flight() {
    let sts = FakeAws::healthy().await;
    let volume = TokenVolume::new(&good_token());
    let serving = in_process(&sts.url(), &volume, &["--shutdown-grace", "1h"]).await;
    serving.first_verdict().await;
    let mut conn = tokio::net::TcpStream::connect(&serving.addr).await.unwrap();
    conn.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // The accept queue is first in, first out: once a later connection is
    // answered, the server has taken this one and read what it sent.
    assert_eq!(serving.get("/livez").await.status, 200);
    let addr = serving.addr.clone();
    let stopping = tokio::spawn(serving.shut_down());
    // Connections are refused once the listener is closed (polled, as
    // the kit polls for states); the request in flight is still answered.
    let limit = Instant::now() + WAIT_LIMIT;
    while let Ok(probe) = tokio::net::TcpStream::connect(&addr).await {
        drop(probe);
        assert!(Instant::now() < limit, "the listener was never closed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    conn.write_all(b"\r\n").await.unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.contains("ready: irsa-doctor: pass"), "{answer}");
    stopping.await.unwrap();
}

#[tokio::test]
async fn a_request_that_never_finishes_is_cut_off_after_the_grace_period() {
    let (_sts, _volume, serving, _conn) = half_a_request_with_grace("1s").await;
    let (code, logs) = serving.stop("TERM").await;
    assert_eq!(code, 0, "{logs}");
    assert!(
        logs.contains("did not finish within the grace period"),
        "{logs}"
    );
}

#[tokio::test]
async fn sigterm_during_a_hanging_sts_call_still_exits_zero() {
    let sts = FakeAws::healthy().await;
    sts.aws.always(Fault::Hold);
    let volume = TokenVolume::new(&good_token());
    let serving = pod(&sts, &volume).serve().await;
    assert_eq!(serving.get("/readyz").await.status, 503);
    let (code, logs, took) = serving.stop_timed("TERM").await;
    assert_eq!(code, 0, "{logs}");
    // The check is abandoned, not awaited: well within the default grace.
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn malformed_requests_get_4xx_and_the_server_keeps_serving() {
    let sts = FakeAws::healthy().await;
    let volume = TokenVolume::new(&good_token());
    let serving = in_process(&sts.url(), &volume, &[]).await;
    serving.first_verdict().await;

    let huge_header = format!(
        "GET /readyz HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let many_headers = format!(
        "GET /readyz HTTP/1.1\r\nHost: x\r\n{}\r\n",
        (0..200)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect::<String>()
    );
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("not HTTP", b"HELLO THERE\r\n\r\n".to_vec(), 400),
        ("binary", vec![0, 159, 146, 150, 13, 10, 13, 10], 400),
        ("bad version", b"GET /readyz HTTP/9.9\r\n\r\n".to_vec(), 400),
        ("huge header", huge_header.into_bytes(), 431),
        ("too many headers", many_headers.into_bytes(), 431),
        (
            "a body",
            b"GET /readyz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
            413,
        ),
        (
            "a chunked body",
            b"GET /readyz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                .to_vec(),
            413,
        ),
        (
            "an absurd content-length",
            b"POST /readyz HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n".to_vec(),
            405,
        ),
    ];
    for (what, raw, expected) in cases {
        let answer = serving.request_bytes(&raw).await;
        assert_eq!(answer.status, expected, "{what}: {answer:?}");
        assert_eq!(serving.get("/livez").await.status, 200, "after {what}");
    }

    // A client that sends half a request head holds no one else up, and is
    // disconnected once the head read timeout passes.
    let mut slow = tokio::net::TcpStream::connect(&serving.addr).await.unwrap();
    slow.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nX-Slow:")
        .await
        .unwrap();
    for _ in 0..20 {
        assert_eq!(serving.get("/readyz").await.status, 200);
    }
    let mut rest = vec![];
    let closed = tokio::time::timeout(Duration::from_secs(30), slow.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "a slow client was never disconnected");
    assert_eq!(serving.get("/readyz").await.status, 200);
}

/// The attack: a client holds every connection slot with an
/// unfinished request head and reopens each connection the server drops.
/// When the cap refused new connections, the kubelet's probes failed almost
/// every time; now each fresh probe must be answered. The attacker first
/// connects from 127.0.0.2 and the probes from 127.0.0.1, as an attacking
/// pod and the kubelet on the node have different addresses; then from
/// 127.0.0.1 too, as a pod on the node's network would.
#[tokio::test]
async fn probes_are_answered_while_a_client_holds_every_connection() {
    let sts = FakeAws::healthy().await;
    let volume = TokenVolume::new(&good_token());
    let serving = in_process(&sts.url(), &volume, &[]).await;
    serving.first_verdict().await;

    let mut evicted_before = 0;
    for attacker in [Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::LOCALHOST] {
        let attack = HalfHeads::open(&serving.addr, IpAddr::V4(attacker), MAX_CONNECTIONS).await;
        // Bounds a hang, not the latency: the probes share this deadline.
        let deadline = Instant::now() + WAIT_LIMIT;
        let mut failed = vec![];
        for i in 0..100 {
            let path = ["/readyz", "/livez"][i % 2];
            let limit = deadline.saturating_duration_since(Instant::now());
            match serving.probe(path, limit).await {
                Ok(200) => {}
                other => failed.push(format!("{path}: {other:?}")),
            }
        }
        let reopened = attack.stop().await;
        assert!(
            failed.is_empty(),
            "attacker {attacker}: {} of 100 probes failed: {failed:#?}",
            failed.len()
        );
        // The cap was reached: probes took the attacker's places, and the
        // attacker came back for them.
        let metrics = serving.get("/metrics").await.body;
        let evicted = metric(&metrics, "irsa_doctor_http_connections_evicted_total");
        assert!(evicted > evicted_before, "attacker {attacker}:\n{metrics}");
        assert!(reopened > 0, "attacker {attacker}");
        evicted_before = evicted;
    }
}

#[tokio::test]
async fn a_port_in_use_is_a_clear_usage_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = doctor!("http://127.0.0.1:9")
        .arg("--listen")
        .arg(&addr)
        .serve_once()
        .await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("could not listen"), "{}", out.stderr);
    assert!(out.stderr.contains("IRSA_DOCTOR_LISTEN"), "{}", out.stderr);
}

#[tokio::test]
async fn serve_against_moto_passes_and_counts_its_requests() {
    let moto = testkit::start_moto().await;
    let volume = TokenVolume::new(&good_token());
    let serving = doctor!(&moto.url)
        .irsa(
            "arn:aws:iam::123456789012:role/platform/moto-app",
            &volume.path(),
        )
        .serve()
        .await;
    let status = serving.first_verdict().await;
    assert_eq!(status["verdict"], "pass", "{status:#}");
    assert_eq!(serving.get("/readyz").await.status, 200);
    let metrics = serving.get("/metrics").await.body;
    assert!(
        metrics.contains("irsa_doctor_sts_requests_total{action=\"AssumeRoleWithWebIdentity\",outcome=\"success\"} 2\n"),
        "ours and the default chain's:\n{metrics}"
    );
}

#[tokio::test]
async fn sts_requests_given_up_on_are_counted_as_transport_errors() {
    let sts = FakeAws::healthy().await;
    sts.aws.always(Fault::Delay(Duration::from_secs(20)));
    let volume = TokenVolume::new(&good_token());
    let serving = in_process(&sts.url(), &volume, &["--timeout", "1s"]).await;
    let status = serving.first_verdict().await;
    assert_eq!(status["verdict"], "inconclusive", "{status:#}");
    let metrics = serving.get("/metrics").await.body;
    let abandoned = metric(
        &metrics,
        "irsa_doctor_sts_requests_total{action=\"AssumeRoleWithWebIdentity\",outcome=\"transport_error\"}",
    );
    assert!(abandoned >= 1, "{metrics}");
}

#[tokio::test]
async fn legacy_sts_regional_endpoints_warns_that_the_app_may_use_the_global_endpoint() {
    let sts = FakeAws::healthy().await;
    let volume = TokenVolume::new(&good_token());
    let legacy = in_process_with(
        &sts.url(),
        &volume,
        &[],
        &[("AWS_STS_REGIONAL_ENDPOINTS", "legacy")],
    )
    .await;
    let status = legacy.first_verdict().await;
    assert_eq!(status["verdict"], "pass", "a warning: {status:#}");
    let codes: Vec<&str> = status["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["STS_GLOBAL_ENDPOINT"], "{status:#}");
    assert_eq!(status["sts"]["app_endpoint"], "https://sts.amazonaws.com");
    legacy.shut_down().await;

    let regional = in_process_with(
        &sts.url(),
        &volume,
        &[],
        &[("AWS_STS_REGIONAL_ENDPOINTS", "regional")],
    )
    .await;
    let status = regional.first_verdict().await;
    assert_eq!(status["findings"], serde_json::json!([]), "{status:#}");
    assert!(status["sts"]["app_endpoint"].is_null());
    regional.shut_down().await;
}

/// The log lines (JSON) whose target is not irsa-doctor's own.
fn dependency_lines(logs: &str) -> Vec<&str> {
    logs.lines()
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| {
                !v["target"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("irsa_doctor"))
            })
        })
        .collect()
}

/// aws-config and aws-runtime logged two WARN lines on every check of a
/// persistent failure (about 1.8 KB each, with `Debug` dumps of the SDK's
/// error, raw headers and XML body), beside irsa-doctor's own lines, which
/// are limited to changes.
#[tokio::test]
async fn a_persistent_failure_does_not_repeat_the_sdks_warnings() {
    let sts = FakeAws::healthy().await;
    sts.aws.always(Fault::AccessDenied);
    let volume = TokenVolume::new(&good_token());
    // RUST_LOG unset: the default level.
    let serving = fast_pod(&sts, &volume).unset("RUST_LOG").serve().await;
    until("five checks", || sts.aws.our_assume_calls() >= 5).await;
    let (code, logs) = serving.stop("TERM").await;
    assert_eq!(code, 0, "{logs}");
    let lines = dependency_lines(&logs);
    assert!(
        lines.len() <= 1,
        "{} SDK lines:\n{}",
        lines.len(),
        lines.join("\n")
    );
    assert!(logs.contains("TRUST_POLICY_DENIED"), "{logs}");

    // Asked for by name, they are there.
    let serving = fast_pod(&sts, &volume)
        .env("RUST_LOG", "aws_config=warn")
        .serve()
        .await;
    let before = sts.aws.our_assume_calls();
    until("two checks", || sts.aws.our_assume_calls() >= before + 2).await;
    let (_, logs) = serving.stop("TERM").await;
    assert!(!dependency_lines(&logs).is_empty(), "{logs}");
    assert!(
        logs.contains("TRUST_POLICY_DENIED"),
        "our own lines too: {logs}"
    );
}

/// Waits for `n` more of irsa-doctor's own AssumeRoleWithWebIdentity calls
/// (one per healthy check) than `before`.
async fn checks_after(sts: &FakeAwsServer, before: u64, n: u64) -> u64 {
    until(&format!("{n} more checks"), || {
        sts.aws.our_assume_calls() >= before + n
    })
    .await;
    sts.aws.our_assume_calls()
}

/// Every healthy check cost two STS calls: irsa-doctor's own
/// AssumeRoleWithWebIdentity and the default chain's. STS quotas are per
/// account and region, shared with the apps.
#[tokio::test]
async fn n_healthy_checks_cost_n_plus_one_sts_calls() {
    let sts = FakeAws::healthy().await;
    let volume = TokenVolume::new(&good_token());
    let serving = fast_pod(&sts, &volume).serve().await;
    let checks = checks_after(&sts, 0, 5).await;
    assert_eq!(sts.aws.chain_assume_calls(), 1, "{}", serving.logs());
    assert_eq!(sts.aws.assume_calls(), checks + 1);
    assert_eq!(sts.aws.caller_identity_calls(), 0);

    // The report still shows the app's view, and says since when.
    let status = serving.get("/status").await.json();
    assert_eq!(status["verdict"], "pass", "{status:#}");
    let chain = &status["default_chain"];
    assert_eq!(chain["provider"], "web_identity", "{status:#}");
    assert_eq!(chain["arn"], status["assumed_role_arn"], "{status:#}");
    assert!(
        chain["reused_since"].as_str().unwrap().ends_with('Z'),
        "{status:#}"
    );
}

#[tokio::test]
async fn a_token_rotation_resolves_the_default_chain_again() {
    let sts = FakeAws::healthy().await;
    let mut volume = TokenVolume::new(&good_token());
    let serving = fast_pod(&sts, &volume).serve().await;
    let checks = checks_after(&sts, 0, 3).await;
    assert_eq!(sts.aws.chain_assume_calls(), 1, "{}", serving.logs());

    volume.rotate(&good_token());
    until("the chain resolved again", || {
        sts.aws.chain_assume_calls() == 2
    })
    .await;
    let checks = checks_after(&sts, checks, 3).await;
    assert_eq!(sts.aws.chain_assume_calls(), 2, "{}", serving.logs());
    assert_eq!(sts.aws.assume_calls(), checks + 2);
}

#[tokio::test]
async fn a_changed_profile_file_resolves_the_default_chain_again() {
    let sts = FakeAws::healthy().await;
    let volume = TokenVolume::new(&good_token());
    let pod = fast_pod(&sts, &volume);
    // The file AWS_CONFIG_FILE names; absent at first.
    let config = pod.home().join("aws-config");
    let serving = pod.serve().await;
    let checks = checks_after(&sts, 0, 3).await;
    assert_eq!(sts.aws.chain_assume_calls(), 1, "{}", serving.logs());

    std::fs::write(&config, "[default]\nregion = us-east-1\n").unwrap();
    until("the chain resolved again", || {
        sts.aws.chain_assume_calls() == 2
    })
    .await;
    serving
        .wait_for_log("a shared config or credentials file changed")
        .await;
    checks_after(&sts, checks, 3).await;
    assert_eq!(sts.aws.chain_assume_calls(), 2, "{}", serving.logs());
}

/// A chain outcome that failed (STS throttled the chain's own call) is not
/// kept: the next check resolves the chain again, and a pass is kept.
#[tokio::test]
async fn a_default_chain_that_failed_is_resolved_again_at_the_next_check() {
    let sts = FakeAws::healthy().await;
    sts.aws.fail_chain(Fault::Throttle);
    let volume = TokenVolume::new(&good_token());
    let serving = fast_pod(&sts, &volume).serve().await;
    let status = serving.first_verdict().await;
    assert!(status["default_chain"]["error"].is_string(), "{status:#}");

    sts.aws.clear_chain_fault();
    serving
        .wait_for("/status", |a| {
            a.json()["default_chain"]["reused_since"].is_string()
        })
        .await;
    let resolved = sts.aws.chain_assume_calls();
    checks_after(&sts, sts.aws.our_assume_calls(), 3).await;
    assert_eq!(sts.aws.chain_assume_calls(), resolved, "{}", serving.logs());
    let status = serving.get("/status").await.json();
    assert_eq!(
        status["default_chain"]["provider"], "web_identity",
        "{status:#}"
    );
    assert!(status["default_chain"]["error"].is_null(), "{status:#}");
}

/// Issue 22: in a one-minute STS outage at `--interval 1s`, 22 of 29 log
/// lines were INFO retries, one per retry. Now an outage is two INFO
/// lines however many checks it spans: its first retry, and its end with
/// the count; the other retries are at debug.
#[tokio::test]
async fn an_sts_outage_logs_its_first_retry_and_its_end_once() {
    let sts = FakeAws::healthy().await;
    let volume = TokenVolume::new(&good_token());
    // About four attempts fit in each check's 3 s: several checks fail.
    const FAILING: u64 = 16;
    sts.aws.fail_next(FAILING as usize, Fault::ServerError);
    let serving = fast_pod(&sts, &volume).serve().await;
    until("STS to answer again", || {
        sts.aws.our_assume_calls() > FAILING
    })
    .await;
    serving
        .wait_for("/status", |a| a.json()["verdict"] == "pass")
        .await;
    let (code, logs) = serving.stop("TERM").await;
    assert_eq!(code, 0, "{logs}");
    let info = |needle: &str| -> Vec<serde_json::Value> {
        logs.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["level"] == "INFO")
            .filter(|v| v["message"].as_str().is_some_and(|m| m.contains(needle)))
            .collect()
    };
    let retries = info("did not give a final answer; retrying");
    assert_eq!(retries.len(), 1, "{logs}");
    assert_eq!(retries[0]["peer"], "STS", "{logs}");
    let ended = info("STS answered again after");
    assert_eq!(ended.len(), 1, "{logs}");
    let fields = &ended[0];
    let (retried, checks) = (fields["retries"].as_u64(), fields["checks"].as_u64());
    assert!(
        retried.is_some_and(|r| (checks.unwrap_or(0)..FAILING).contains(&r))
            && checks.is_some_and(|c| c >= 2),
        "{fields:#}"
    );
}
