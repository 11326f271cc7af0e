//! The webhook over HTTPS, in-process, the way the API server calls it: a
//! client that trusts only the caBundle's CA and checks the Service's
//! name. A certificate rotated while serving, hostile input (bad JSON, a
//! 64 MiB body, slowloris, more connections than the cap), the probes
//! answered throughout, the metrics a Prometheus reads, and shutdown.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use irsa_doctor_injector::webhook::server::Limits;
use serde_json::json;
use support::webhook::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ROLE: &str = "arn:aws:iam::111122223333:role/app";

async fn running(limits: Limits) -> Running {
    let resolver = FakeResolve::default().with("payments", "app", irsa(ROLE));
    Running::start(Arc::new(resolver), limits).await
}

fn metric(text: &str, series_name: &str) -> f64 {
    series(text, series_name)
}

#[tokio::test]
async fn an_admission_review_over_https_is_answered_with_the_uid_and_a_patch() {
    let server = running(Limits::default()).await;
    let answer = server
        .mutate(&review_of(irsa_pod(), "payments", "CREATE"))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.header("content-type").as_deref(),
        Some("application/json")
    );
    let review = answer.json();
    assert_eq!(
        review["response"]["uid"],
        "705ab4f5-6393-11e8-b7cc-42010a800002"
    );
    assert_eq!(review["response"]["allowed"], true);
    let patched = apply_response(&irsa_pod(), &review);
    assert!(
        patched["spec"]["initContainers"][0]["name"] == "irsa-doctor",
        "{patched}"
    );
    for path in ["/healthz", "/readyz"] {
        assert_eq!(server.get(path).await.status, 200, "{path}");
    }
    let text = server.scrape().await;
    assert_eq!(
        metric(
            &text,
            "irsa_doctor_injector_admissions_total{outcome=\"injected\",mechanism=\"irsa\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "irsa_doctor_injector_admission_duration_seconds_count"
        ),
        1.0
    );
    assert_eq!(
        metric(&text, "irsa_doctor_injector_build_info{version=\"0.1.0\"}"),
        1.0
    );
}

#[tokio::test]
async fn a_client_that_trusts_another_ca_refuses_the_certificate() {
    let server = running(Limits::default()).await;
    let other = Ca::new("another CA");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(other.der.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(SERVICE_NAME).unwrap();
    assert!(connector.connect(name, tcp).await.is_err());
}

#[tokio::test]
async fn a_certificate_rotated_while_serving_is_shown_on_the_next_connection() {
    let mut server = running(Limits::default()).await;
    let (_, first_peer) = server
        .https(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(first_peer, server.leaf);
    // cert-manager renews: a new pair, the `..data` symlink swapped.
    let (cert, key, second) = server.ca.serving("second");
    server.volume.rotate(&cert, &key);
    let (answer, peer) = server
        .https(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(peer, second, "the new certificate, without a restart");
    // A broken rotation (a key of another pair): the last good
    // certificate stays, the failure is counted.
    let (_, other_key, _) = server.ca.serving("third");
    let (third_cert, _, _) = server.ca.serving("third");
    server.volume.rotate(&third_cert, &other_key);
    let (answer, peer) = server
        .https(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(peer, second, "kept the last good certificate");
    let text = server.scrape().await;
    assert_eq!(
        metric(
            &text,
            "irsa_doctor_injector_tls_reloads_total{outcome=\"ok\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "irsa_doctor_injector_tls_reloads_total{outcome=\"error\"}"
        ),
        1.0
    );
    server.stop();
}

#[tokio::test]
async fn bad_requests_get_short_answers_and_are_counted_by_reason() {
    let server = running(Limits::default()).await;
    let malformed = server.https(&post("/mutate", b"{\"apiVersion\": ")).await.0;
    assert_eq!(malformed.status, 400);
    assert!(malformed.body.len() < 300, "{}", malformed.body);
    let no_request = server
        .https(&post(
            "/mutate",
            b"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\"}",
        ))
        .await
        .0;
    assert_eq!(no_request.status, 400);
    assert!(
        no_request.body.contains("no request"),
        "{}",
        no_request.body
    );
    assert_eq!(server.get("/mutate").await.status, 405);
    assert_eq!(server.https(&post("/healthz", b"")).await.0.status, 405);
    assert_eq!(server.get("/admin").await.status, 404);
    assert_eq!(server.https(&post("/validate", b"{}")).await.0.status, 404);
    let text = server.scrape().await;
    let rejected = |reason: &str| {
        metric(
            &text,
            &format!("irsa_doctor_injector_requests_rejected_total{{reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(rejected("malformed"), 2.0);
    assert_eq!(rejected("method"), 2.0);
    assert_eq!(rejected("not_found"), 2.0);
    // The plain port serves no /mutate at all.
    let plain = testkit::http::exchange(&server.metrics_addr, &post("/mutate", b"{}")).await;
    assert_eq!(plain.status, 404);
}

/// Reads until the end of a response head (or the connection closes).
async fn read_head<R: tokio::io::AsyncRead + Unpin>(reader: &mut R) -> String {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(WAIT_LIMIT, async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
            }
            if bytes.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    })
    .await
    .expect("no answer");
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn a_64_mib_body_is_refused_before_it_is_sent() {
    let server = running(Limits::default()).await;
    let mut tls = server.connect().await;
    let head = "POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 67108864\r\n\r\n";
    tls.write_all(head.as_bytes()).await.unwrap();
    // Not one byte of the body sent: the answer comes from the length.
    let answer = read_head(&mut tls).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(server.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn a_chunked_body_past_the_bound_is_refused_while_it_is_still_being_sent() {
    let server = running(Limits::default()).await;
    let tls = server.connect().await;
    let (mut reader, mut writer) = tokio::io::split(tls);
    let head = "POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    writer.write_all(head.as_bytes()).await.unwrap();
    // 64 chunks of 1 MiB; the answer comes once 3 MiB are read, and the
    // sender stops when the server closes.
    let sender = tokio::spawn(async move {
        let chunk = vec![b' '; 1 << 20];
        let mut sent = 0;
        for _ in 0..64 {
            let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
            if writer.write_all(&frame).await.is_err() {
                break;
            }
            sent += 1;
        }
        let _ = writer.write_all(b"0\r\n\r\n").await;
        sent
    });
    let answer = read_head(&mut reader).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let sent = tokio::time::timeout(WAIT_LIMIT, sender)
        .await
        .unwrap()
        .unwrap();
    assert!(
        sent < 64,
        "the server read all {sent} MiB instead of stopping at 8"
    );
    let text = server.scrape().await;
    assert_eq!(
        metric(
            &text,
            "irsa_doctor_injector_requests_rejected_total{reason=\"too_large\"}"
        ),
        1.0
    );
}

#[tokio::test]
async fn slowloris_loses_its_connection_and_healthz_answers_meanwhile() {
    let limits = Limits {
        header_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let server = running(limits).await;
    let mut slow = server.connect().await;
    slow.write_all(b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Le")
        .await
        .unwrap();
    assert_eq!(
        server.get("/healthz").await.status,
        200,
        "answered while the slow one waits"
    );
    // Never completes its header: the server closes it (EOF, or a 408).
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(WAIT_LIMIT, slow.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the half-sent header held its connection");
}

#[tokio::test]
async fn past_the_connection_cap_a_new_client_waits_for_a_slot_and_gets_the_next_one() {
    let limits = Limits {
        max_connections: 2,
        ..Limits::default()
    };
    let server = running(limits).await;
    // Two slow clients hold both slots (TLS done, half a header).
    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut slow = server.connect().await;
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHo")
            .await
            .unwrap();
        holders.push(slow);
    }
    // The third is connected by the kernel but not accepted: its TLS
    // handshake gets no answer while both slots are held.
    let third = tokio::spawn({
        let addr = server.addr.clone();
        let ca = server.ca.der.clone();
        async move { connect_tls(&addr, &ca).await }
    });
    let waited = tokio::time::timeout(Duration::from_millis(500), async {
        while !third.is_finished() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        waited.is_err(),
        "a third connection was served past the cap"
    );
    // One slow client goes away: its slot goes to the waiting one.
    drop(holders.pop());
    let mut tls = tokio::time::timeout(WAIT_LIMIT, third)
        .await
        .expect("never got a slot")
        .unwrap();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let bytes = read_until_closed(&mut tls).await;
    assert_eq!(testkit::http::parse(&bytes).status, 200);
}

#[tokio::test]
async fn the_header_timeout_frees_a_slot_a_slow_client_holds() {
    let limits = Limits {
        header_timeout: Duration::from_secs(1),
        max_connections: 1,
        ..Limits::default()
    };
    let server = running(limits).await;
    let mut slow = server.connect().await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHo")
        .await
        .unwrap();
    let answer = tokio::time::timeout(WAIT_LIMIT, server.get("/healthz"))
        .await
        .expect("never got a slot");
    assert_eq!(answer.status, 200);
}

#[tokio::test]
async fn each_outcome_is_counted_with_its_mechanism_and_promtool_accepts_the_scrape() {
    let server = running(Limits::default()).await;
    let mut opted_out = irsa_pod();
    opted_out["metadata"]["labels"] = json!({"irsa-doctor.io/inject": "disabled"});
    let mut windows = irsa_pod();
    windows["spec"]["nodeSelector"] = json!({"kubernetes.io/os": "windows"});
    let reviews = [
        review_of(irsa_pod(), "payments", "CREATE"),
        review_of(plain_pod("app"), "payments", "CREATE"),
        review_of(plain_pod("nobody"), "payments", "CREATE"),
        review_of(opted_out, "payments", "CREATE"),
        review_of(windows, "payments", "CREATE"),
        review_of(irsa_pod(), "payments", "UPDATE"),
    ];
    for review in &reviews {
        assert_eq!(server.mutate(review).await.status, 200);
    }
    let text = server.scrape().await;
    let count = |outcome: &str, mechanism: &str| {
        metric(&text, &format!("irsa_doctor_injector_admissions_total{{outcome=\"{outcome}\",mechanism=\"{mechanism}\"}}"))
    };
    assert_eq!(
        count("injected", "irsa"),
        2.0,
        "the IRSA pod and the annotated ServiceAccount"
    );
    assert_eq!(count("no_identity", "none"), 1.0);
    assert_eq!(count("opted_out", "irsa"), 1.0);
    assert_eq!(count("skipped", "irsa"), 1.0, "Windows, known to use IRSA");
    assert_eq!(count("skipped", "none"), 1.0, "not a CREATE");
    assert_eq!(
        metric(
            &text,
            "irsa_doctor_injector_admission_duration_seconds_count"
        ),
        6.0
    );
    assert_eq!(
        metric(
            &text,
            "irsa_doctor_injector_admission_duration_seconds_bucket{le=\"+Inf\"}"
        ),
        6.0
    );

    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is on PATH");
    std::io::Write::write_all(&mut promtool.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn shutdown_finishes_the_review_in_flight_and_returns() {
    let mut server = running(Limits {
        shutdown_delay: Duration::ZERO,
        ..Limits::default()
    })
    .await;
    let mut tls = server.connect().await;
    let body = serde_json::to_vec(&review_of(irsa_pod(), "payments", "CREATE")).unwrap();
    let request = post("/mutate", &body);
    // Everything but the last byte: the request is in flight.
    let (head, last) = request.split_at(request.len() - 1);
    tls.write_all(head).await.unwrap();
    assert_eq!(server.get("/healthz").await.status, 200, "serving");
    server.stop();
    tls.write_all(last).await.unwrap();
    let bytes = read_until_closed(&mut tls).await;
    let answer = testkit::http::parse(&bytes);
    assert_eq!(answer.status, 200, "the review in flight is answered");
    let result = tokio::time::timeout(WAIT_LIMIT, &mut server.task)
        .await
        .expect("serve returned");
    assert!(result.unwrap().is_ok());
    assert!(
        tokio::net::TcpStream::connect(&server.addr).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn a_client_that_never_starts_tls_is_dropped_after_the_handshake_bound() {
    let limits = Limits {
        handshake_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let server = running(limits).await;
    let mut silent = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(WAIT_LIMIT, silent.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "a silent client held its connection");
    assert!(rest.is_empty());
}

#[tokio::test]
async fn a_body_that_stops_halfway_gets_a_408_within_the_bound() {
    let limits = Limits {
        body_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let server = running(limits).await;
    let mut tls = server.connect().await;
    let head = "POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"apiVersion\"";
    tls.write_all(head.as_bytes()).await.unwrap();
    let answer = read_head(&mut tls).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[tokio::test]
async fn the_api_server_may_send_several_reviews_on_one_kept_alive_connection() {
    let server = running(Limits::default()).await;
    let mut tls = server.connect().await;
    let body = serde_json::to_vec(&review_of(irsa_pod(), "payments", "CREATE")).unwrap();
    let keep_alive = |body: &[u8]| {
        let mut raw = format!(
            "POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(body);
        raw
    };
    tls.write_all(&keep_alive(&body)).await.unwrap();
    tls.write_all(&post("/mutate", &body)).await.unwrap();
    let bytes = read_until_closed(&mut tls).await;
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
}

#[tokio::test]
async fn after_the_signal_reviews_are_answered_for_the_delay_while_readyz_says_503() {
    let delay = Duration::from_secs(5);
    let mut server = running(Limits {
        shutdown_delay: delay,
        ..Limits::default()
    })
    .await;
    assert_eq!(server.get("/readyz").await.status, 200);
    let stopped = Instant::now();
    server.stop();
    // The signal reaches the server task when it next runs: ask until it
    // has, within the bound.
    tokio::time::timeout(WAIT_LIMIT, async {
        while server.get("/readyz").await.status != 503 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("/readyz never answered 503 after the signal");
    assert_eq!(server.get("/healthz").await.status, 200, "alive, not ready");
    let answer = server
        .mutate(&review_of(irsa_pod(), "payments", "CREATE"))
        .await;
    assert_eq!(answer.status, 200, "a review sent during the delay");
    assert!(patch_of(&answer.json()).is_some());
    let result = tokio::time::timeout(WAIT_LIMIT, &mut server.task)
        .await
        .expect("serve returned after the delay");
    assert!(result.unwrap().is_ok());
    assert!(stopped.elapsed() >= delay, "stopped before the delay ended");
    assert!(tokio::net::TcpStream::connect(&server.addr).await.is_err());
}

/// `review` as one JSON body of exactly `size` bytes: the string
/// `"FILL"` in it becomes `[item,item,...]`, and spaces (valid after a
/// JSON value) make up the rest.
fn padded(review: &serde_json::Value, item: &str, size: usize) -> Vec<u8> {
    let text = review.to_string();
    let room = size - (text.len() - "\"FILL\"".len()) - 2;
    let count = room / (item.len() + 1);
    let items = vec![item; count].join(",");
    let mut body = text
        .replacen("\"FILL\"", &format!("[{items}]"), 1)
        .into_bytes();
    assert!(body.len() <= size);
    body.resize(size, b' ');
    body
}

#[tokio::test]
async fn pathological_reviews_just_under_3_mib_from_8_clients_are_answered_and_healthz_meanwhile() {
    // Room for all 8 bodies at once, so that all 8 are read and reviewed
    // side by side whatever the machine's speed. With the default 12 MiB
    // only 4 fit, and the others' answer (200 after a wait, or 503) would
    // depend on how fast the first 4 are done: that wait is
    // a_body_past_the_bytes_in_flight_waits_and_past_the_body_timeout_gets_503.
    let size = 3 * 1024 * 1024 - 1024;
    let limits = Limits {
        max_bodies_in_flight: 8 * size,
        ..Limits::default()
    };
    let server = Arc::new(running(limits).await);
    // A flat array of numbers in a field no pod has (a tree of millions of
    // nodes if it were kept), and a million empty arguments where a pod
    // has arguments (kept, as the typed pod keeps them).
    let mut zeros = review_of(irsa_pod(), "payments", "CREATE");
    zeros["request"]["object"]["x"] = json!("FILL");
    let mut args = review_of(irsa_pod(), "payments", "CREATE");
    args["request"]["object"]["spec"]["containers"][0]["args"] = json!("FILL");
    let bodies = [padded(&zeros, "0", size), padded(&args, "\"\"", size)];
    let mut clients = tokio::task::JoinSet::new();
    for i in 0..8 {
        let server = server.clone();
        let body = bodies[i % 2].clone();
        clients.spawn(async move { (i, server.https(&post("/mutate", &body)).await.0) });
    }
    assert_eq!(
        server.get("/healthz").await.status,
        200,
        "while they are read"
    );
    // Both are answered allowed. The zeros are skipped as they are read:
    // the pod gets the doctor. A million arguments would read into more
    // than a pod may cost (webhook::MAX_POD_COST): admitted without the
    // doctor, with a warning.
    while let Some(done) = clients.join_next().await {
        let (i, answer) = done.unwrap();
        let start = &answer.body[..answer.body.len().min(300)];
        assert_eq!(answer.status, 200, "client {i}: {start}");
        let review = answer.json();
        assert_eq!(review["response"]["allowed"], true);
        if i % 2 == 0 {
            assert!(patch_of(&review).is_some(), "client {i}");
        } else {
            assert_eq!(patch_of(&review), None, "client {i}");
            let warning = review["response"]["warnings"][0].as_str().unwrap();
            assert!(warning.contains("too large to inspect"), "{warning}");
        }
    }
    let text = server.scrape().await;
    assert_eq!(
        metric(
            &text,
            "irsa_doctor_injector_admissions_total{outcome=\"injected\",mechanism=\"irsa\"}"
        ),
        4.0
    );
    // The bound is the API server's own 3 MiB: one byte more is refused,
    // from its length. Only the head is sent: the server closes the
    // connection with the body unread, and a client still writing 3 MiB
    // into it could get a reset before the answer.
    let mut tls = server.connect().await;
    let head = format!(
        "POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        3 * 1024 * 1024 + 1
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    let answer = read_head(&mut tls).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[tokio::test]
async fn a_body_past_the_bytes_in_flight_waits_and_past_the_body_timeout_gets_503() {
    let limits = Limits {
        max_body: 4096,
        max_bodies_in_flight: 4096,
        body_timeout: Duration::from_secs(1),
        lookup_budget: Duration::from_secs(3),
        ..Limits::default()
    };
    // Lookups that never answer: a review holds its bytes for the whole
    // lookup budget.
    let server = Running::start(Arc::new(FakeResolve::hanging()), limits).await;
    // A takes all 4096 bytes: `100 Continue` comes when the server starts
    // reading the body, which it does only once the bytes are its.
    let mut holder = server.connect().await;
    let head = "POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 4096\r\nConnection: close\r\n\r\n";
    holder.write_all(head.as_bytes()).await.unwrap();
    let continued = read_head(&mut holder).await;
    assert!(continued.starts_with("HTTP/1.1 100"), "{continued}");
    let review = review_of(irsa_pod(), "payments", "CREATE");
    holder.write_all(&padded(&review, "0", 4096)).await.unwrap();
    // B waits for A's bytes for at most the body timeout, then is told.
    let answer = server.mutate(&review).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(server.get("/healthz").await.status, 200);
    // A is answered when its budget runs out, and gives the bytes back.
    let bytes = read_until_closed(&mut holder).await;
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("HTTP/1.1 200"), "{text}");
    let answer = server.mutate(&review).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}
