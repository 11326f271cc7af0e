//! The fault matrix (docs/reliability.md): each fault a pod meets on the
//! way to its credentials, in `check` and in `serve`. For every fault,
//! `check` ends by its deadline (`--timeout` plus the watchdog's grace)
//! with the verdict, exit code and finding the matrix states; `serve`
//! answers every probe within the kubelet's 1 s timeout, applies its
//! readiness policy, recovers by itself when the fault is switched off,
//! and exits 0 on SIGTERM while a check is stuck in the fault. No output
//! of either holds a secret. One test per family of faults; the faults of
//! a family run one after another, each in both modes at once.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use testkit::agent::{Agent, AgentServer};
use testkit::fake_aws::{FakeAws, FakeAwsServer};
use testkit::faulty::{Faulty, Wire};
use testkit::jwt::{Jwt, TokenVolume};
use testkit::leaks::assert_no_secret;
use testkit::serving::{Answer, Serving, WAIT_LIMIT};
use testkit::world::{NAMESPACE, NODE_ROLE, ROLE_ARN, SERVICE_ACCOUNT};
use testkit::{doctor, imds, Doctor, Outcome};

/// Every check in the matrix gets this `--timeout`.
const TIMEOUT: Duration = Duration::from_secs(2);
/// The watchdog's grace beyond `--timeout`, plus a second for starting the
/// process on a loaded two-core machine: `check` must be over by then.
const DEADLINE: Duration = Duration::from_millis(2000 + 500 + 1000);
/// The kubelet's default probe timeout: every probe is answered within it.
const PROBE_LIMIT: Duration = Duration::from_secs(1);
/// SIGTERM ends `serve` within this, whatever a check is stuck on.
const EXIT_LIMIT: Duration = Duration::from_secs(3);

/// The socket-level faults, each with the verdict's exit code and the
/// finding `check` leads with, when STS is behind them.
fn sts_wire_faults() -> Vec<(Wire, i32, &'static str)> {
    vec![
        (Wire::Refuse, 3, "STS_UNREACHABLE"),
        (Wire::Silent, 3, "STS_UNREACHABLE"),
        (Wire::HeadThenStall, 3, "STS_UNREACHABLE"),
        (Wire::Trickle, 3, "STS_UNREACHABLE"),
        (Wire::Endless, 3, "STS_ERROR"),
        (Wire::ResetMidBody, 3, "STS_ERROR"),
    ]
}

fn token() -> String {
    Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).encode()
}

fn addr_of(url: &str) -> SocketAddr {
    url.split('/').nth(2).unwrap().parse().unwrap()
}

/// An IRSA pod whose STS is behind a front with `fault` (none: healthy).
struct IrsaPod {
    _sts: FakeAwsServer,
    front: Faulty,
    volume: TokenVolume,
    token: String,
}

impl IrsaPod {
    async fn new(fault: Option<Wire>) -> IrsaPod {
        let sts = FakeAws::healthy().await;
        let front = Faulty::front(sts.server.addr, fault).await;
        let token = token();
        IrsaPod {
            volume: TokenVolume::new(&token),
            _sts: sts,
            front,
            token,
        }
    }

    fn run(&self) -> Run<'_> {
        Run {
            doctor: doctor!(&self.front.url()).irsa(ROLE_ARN, &self.volume.path()),
            front: &self.front,
            token: &self.token,
        }
    }
}

/// A Pod Identity pod whose agent is behind a front with `fault`.
struct PodIdentityPod {
    _sts: FakeAwsServer,
    _agent: AgentServer,
    front: Faulty,
    volume: TokenVolume,
    token: String,
    sts_url: String,
}

impl PodIdentityPod {
    async fn new(fault: Option<Wire>) -> PodIdentityPod {
        let sts = FakeAws::healthy().await;
        let agent = Agent::healthy(&sts.aws).await;
        let front = Faulty::front(addr_of(&agent.url()), fault).await;
        let token = Jwt::for_pod_identity(NAMESPACE, SERVICE_ACCOUNT).encode();
        PodIdentityPod {
            sts_url: sts.url(),
            volume: TokenVolume::pod_identity(&token),
            _sts: sts,
            _agent: agent,
            front,
            token,
        }
    }

    fn run(&self) -> Run<'_> {
        let uri = format!("{}/v1/credentials", self.front.url());
        Run {
            doctor: doctor!(&self.sts_url).pod_identity(&uri, &self.volume.path()),
            front: &self.front,
            token: &self.token,
        }
    }
}

/// Runs `check` (JSON report, trace logs) and holds it to the matrix:
/// over by [`DEADLINE`], exit `exit` (a signal, such as the OOM killer's,
/// fails it), `code` among the findings, no panic, no secret anywhere.
async fn check_case(context: &str, doctor: Doctor, exit: i32, code: &str, token: &str) -> Outcome {
    let out = run_check(context, doctor, exit, token).await;
    assert!(
        out.codes().iter().any(|c| c == code),
        "{context}: no {code} in {:?}",
        out.codes()
    );
    out
}

/// [`check_case`] without a finding to look for.
async fn run_check(context: &str, doctor: Doctor, exit: i32, token: &str) -> Outcome {
    let started = Instant::now();
    let out = doctor
        .env("IRSA_DOCTOR_TIMEOUT", &format!("{}s", TIMEOUT.as_secs()))
        .env("RUST_LOG", "trace")
        .json()
        .await;
    let took = started.elapsed();
    assert!(took <= DEADLINE, "{context}: check took {took:?}");
    assert_eq!(out.code, exit, "{context}:\n{}\n{}", out.stdout, out.stderr);
    assert!(
        !out.stderr.contains("panicked"),
        "{context}: {}",
        out.stderr
    );
    assert_no_secret(&out.all_output(), token, context);
    out
}

/// What brings a pod in `serve` back after the fault is switched off.
enum Recovery {
    /// `/readyz` answers 200 again.
    Ready,
    /// `/status` shows this text (the verdict stays a fail).
    Status(&'static str),
    /// Nothing can: the fault is fixed for the life of the process.
    Never,
}

/// How one fault plays out in `serve`.
struct ServeCase<'a> {
    context: String,
    /// The pod passes (and `/readyz` is 200) before the fault is on.
    healthy_first: bool,
    /// The finding `/status` shows while the fault is on.
    code: &'a str,
    recovery: Recovery,
    /// The front a check gets stuck in: SIGTERM is sent once a check has
    /// connected to it with the fault on.
    stuck_in: Option<&'a Faulty>,
    token: &'a str,
}

/// Probes a running `serve`, holding every answer to [`PROBE_LIMIT`] and
/// `/livez` to 200, and keeps every answer for the leak check.
struct Prober<'a> {
    serving: &'a Serving,
    context: &'a str,
    seen: String,
}

impl Prober<'_> {
    async fn get(&mut self, path: &str) -> Answer {
        let answer = tokio::time::timeout(PROBE_LIMIT, self.serving.get(path))
            .await
            .unwrap_or_else(|_| panic!("{}: {path} not answered within 1 s", self.context));
        self.seen.push_str(&answer.head);
        self.seen.push_str(&answer.body);
        answer
    }

    /// Polls `path` until `done` holds, probing `/livez` between polls.
    async fn until(&mut self, path: &str, what: &str, done: impl Fn(&Answer) -> bool) {
        let limit = Instant::now() + WAIT_LIMIT;
        loop {
            if done(&self.get(path).await) {
                return;
            }
            let livez = self.get("/livez").await;
            assert_eq!(livez.status, 200, "{}: /livez {livez:?}", self.context);
            assert!(
                Instant::now() < limit,
                "{}: {path} never {what}; logs:\n{}",
                self.context,
                self.serving.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Runs `serve --interval 1s --stale-after 2s` through the fault:
/// healthy (if the case says so), fault on (`switch(true)`), the finding
/// shown and `/readyz` 503, fault off and recovered, fault on again and
/// SIGTERM, which must end it with 0 within [`EXIT_LIMIT`].
async fn serve_case(case: ServeCase<'_>, doctor: Doctor, switch: impl Fn(bool)) {
    let context = format!("serve, {}", case.context);
    if !case.healthy_first {
        switch(true);
    }
    let serving = doctor
        .env("IRSA_DOCTOR_TIMEOUT", &format!("{}s", TIMEOUT.as_secs()))
        .env("RUST_LOG", "debug")
        .arg("--interval")
        .arg("1s")
        .arg("--stale-after")
        .arg("2s")
        .serve()
        .await;
    let mut p = Prober {
        serving: &serving,
        context: &context,
        seen: String::new(),
    };
    if case.healthy_first {
        p.until("/readyz", "turned 200", |a| a.status == 200).await;
        switch(true);
    }
    let shown = format!("\"{}\"", case.code);
    p.until("/status", &format!("showed {shown}"), |a| {
        a.body.contains(&shown)
    })
    .await;
    p.until("/readyz", "turned 503", |a| a.status == 503).await;
    match case.recovery {
        Recovery::Ready => {
            switch(false);
            p.until("/readyz", "recovered", |a| a.status == 200).await;
            switch(true);
        }
        Recovery::Status(text) => {
            switch(false);
            p.until("/status", &format!("showed {text}"), |a| {
                a.body.contains(text)
            })
            .await;
            switch(true);
        }
        Recovery::Never => {}
    }
    if let Some(front) = case.stuck_in {
        front.wait_for_connection_after(front.accepted()).await;
    }
    let seen = std::mem::take(&mut p.seen);
    let (code, logs, took) = serving.stop_timed("TERM").await;
    assert_eq!(code, 0, "{context}: exit {code}:\n{logs}");
    assert!(took <= EXIT_LIMIT, "{context}: SIGTERM took {took:?}");
    assert!(!logs.contains("panicked"), "{context}: {logs}");
    assert_no_secret(&format!("{seen}\n{logs}"), case.token, &context);
}

/// A pod, as `check` and `serve` see it: how to run the binary for it, the
/// front its fault sits behind, and its token.
struct Run<'a> {
    doctor: Doctor,
    front: &'a Faulty,
    token: &'a str,
}

/// One fault of a front in both modes at once: `check` against a pod whose
/// front has had the fault from the start, `serve` against another that
/// gets it after a pass, and recovers when it is switched off.
async fn front_fault(
    context: &str,
    wire: &Wire,
    exit: i32,
    code: &str,
    checked: Run<'_>,
    served: Run<'_>,
) {
    let case = ServeCase {
        context: context.to_owned(),
        healthy_first: true,
        code,
        recovery: Recovery::Ready,
        stuck_in: hangs(wire).then_some(served.front),
        token: served.token,
    };
    let switch = |on: bool| served.front.set(on.then(|| wire.clone()));
    tokio::join!(
        check_case(context, checked.doctor, exit, code, checked.token),
        serve_case(case, served.doctor, switch),
    );
}

/// The hanging faults: a check is stuck in them when SIGTERM comes.
fn hangs(wire: &Wire) -> bool {
    matches!(wire, Wire::Silent | Wire::HeadThenStall | Wire::Trickle)
}

#[tokio::test(flavor = "multi_thread")]
async fn sts_socket_faults_in_check_and_serve() {
    for (wire, exit, code) in sts_wire_faults() {
        let context = format!("STS {}", short(&wire));
        let checked = IrsaPod::new(Some(wire.clone())).await;
        let served = IrsaPod::new(None).await;
        front_fault(&context, &wire, exit, code, checked.run(), served.run()).await;
    }
}

/// A fault's name without its payload, for messages.
fn short(wire: &Wire) -> String {
    let name = format!("{wire:?}");
    name.split('(').next().unwrap_or_default().to_owned()
}

/// Answers that are not STS's: a 200 that is not XML, a proxy's HTML page
/// with a 200, and STS's own answer cut short, credentials and all.
fn sts_content_faults() -> Vec<(&'static str, Wire)> {
    let cut = format!(
        "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
         <AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIACUTSHORT00000001\
         </AccessKeyId><SecretAccessKey>{}cutshort",
        testkit::fake_aws::SECRET_PREFIX
    );
    vec![
        (
            "non-XML 200",
            Wire::canned("200 OK", "text/plain", "this is not xml at all {"),
        ),
        (
            "HTML 200 from a proxy",
            Wire::canned(
                "200 OK",
                "text/html",
                "<html><head><title>Access blocked</title></head><body>This site is blocked by \
                 your organisation's web filter.</body></html>",
            ),
        ),
        ("truncated XML", Wire::canned("200 OK", "text/xml", &cut)),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_that_are_not_sts_xml_in_check_and_serve() {
    for (name, wire) in sts_content_faults() {
        let context = format!("STS {name}");
        let checked = IrsaPod::new(Some(wire.clone())).await;
        let served = IrsaPod::new(None).await;
        front_fault(&context, &wire, 3, "STS_ERROR", checked.run(), served.run()).await;
    }
}

/// The socket-level faults against the EKS Pod Identity agent: STS is
/// healthy, the agent is behind the front.
#[tokio::test(flavor = "multi_thread")]
async fn agent_socket_faults_in_check_and_serve() {
    let faults = [
        (Wire::Refuse, 3, "POD_IDENTITY_AGENT_UNREACHABLE"),
        (Wire::Silent, 3, "POD_IDENTITY_AGENT_UNREACHABLE"),
        (Wire::HeadThenStall, 3, "POD_IDENTITY_AGENT_UNREACHABLE"),
        (Wire::Trickle, 3, "POD_IDENTITY_AGENT_UNREACHABLE"),
        (Wire::Endless, 1, "POD_IDENTITY_AGENT_ERROR"),
        (Wire::ResetMidBody, 3, "POD_IDENTITY_AGENT_UNREACHABLE"),
        (
            Wire::canned("200 OK", "text/html", "<html><body>blocked</body></html>"),
            1,
            "POD_IDENTITY_AGENT_ERROR",
        ),
    ];
    for (wire, exit, code) in faults {
        let context = format!("agent {}", short(&wire));
        let checked = PodIdentityPod::new(Some(wire.clone())).await;
        let served = PodIdentityPod::new(None).await;
        front_fault(&context, &wire, exit, code, checked.run(), served.run()).await;
    }
}

/// An endpoint whose name does not resolve (`.invalid` never does): the
/// setting is fixed for the life of the process, so `serve` cannot recover
/// by itself; it stays up, not ready, and stops on SIGTERM.
#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_name_that_does_not_resolve_in_check_and_serve() {
    let volume = TokenVolume::new(&token());
    let sts_url = "http://sts.example.invalid";
    let pod = || doctor!(sts_url).irsa(ROLE_ARN, &volume.path());
    let token = std::fs::read_to_string(volume.path()).unwrap();
    let case = ServeCase {
        context: "DNS failure".into(),
        healthy_first: false,
        code: "STS_UNREACHABLE",
        recovery: Recovery::Never,
        stuck_in: None,
        token: &token,
    };
    tokio::join!(
        check_case("DNS failure", pod(), 3, "STS_UNREACHABLE", &token),
        serve_case(case, pod(), |_| {}),
    );
}

/// No IRSA or Pod Identity variables, so the default chain falls back to
/// IMDS, which accepts and never answers. When IMDS answers again, `serve`
/// names the node role the pod would use.
#[tokio::test(flavor = "multi_thread")]
async fn imds_hanging_while_the_pod_falls_back_to_it_in_check_and_serve() {
    let sts = FakeAws::healthy().await;
    sts.aws.add_key(imds::NODE_KEY, imds::NODE_ASSUMED_ARN);
    let node = imds::start().await;
    let fronts = [
        Faulty::front(node.addr, Some(Wire::Silent)).await,
        Faulty::front(node.addr, None).await,
    ];
    let pod = |front: &Faulty| {
        doctor!(&sts.url())
            .unset("AWS_EC2_METADATA_DISABLED")
            .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &front.url())
    };
    let case = ServeCase {
        context: "IMDS silent".into(),
        healthy_first: false,
        code: "ENV_NOT_INJECTED",
        recovery: Recovery::Status(NODE_ROLE),
        stuck_in: Some(&fronts[1]),
        token: "no token in this pod",
    };
    let switch = |on: bool| fronts[1].set(on.then_some(Wire::Silent));
    let (out, ()) = tokio::join!(
        check_case(
            "IMDS silent",
            pod(&fronts[0]),
            1,
            "ENV_NOT_INJECTED",
            "no token"
        ),
        serve_case(case, pod(&fronts[1]), switch),
    );
    assert!(
        !out.stdout.contains(NODE_ROLE),
        "a silent IMDS named no role: {}",
        out.stdout
    );
}

/// Puts what `make` builds at the token's path in a new `..data`
/// directory, swapped in as the kubelet swaps a rotation in.
fn swap_in(volume: &TokenVolume, generation: &str, make: impl FnOnce(&std::path::Path)) {
    let root = volume.dir.path();
    let data = format!("..hostile.{generation}");
    std::fs::create_dir(root.join(&data)).unwrap();
    make(&root.join(&data).join("token"));
    let tmp = root.join("..data_tmp");
    std::os::unix::fs::symlink(&data, &tmp).unwrap();
    std::fs::rename(&tmp, root.join("..data")).unwrap();
}

/// What the token may be replaced by, with the finding each gets.
type Hostile = (&'static str, &'static str, fn(&std::path::Path));

fn hostile_tokens() -> Vec<Hostile> {
    use std::os::unix::fs::symlink;
    vec![
        ("an empty file", "TOKEN_MALFORMED", |p| {
            std::fs::write(p, "").unwrap()
        }),
        ("a directory", "TOKEN_FILE_UNREADABLE", |p| {
            std::fs::create_dir(p).unwrap()
        }),
        ("a symlink loop", "TOKEN_FILE_UNREADABLE", |p| {
            symlink("token", p).unwrap()
        }),
        ("a symlink to /dev/zero", "TOKEN_FILE_UNREADABLE", |p| {
            symlink("/dev/zero", p).unwrap()
        }),
        ("a symlink to /dev/urandom", "TOKEN_FILE_UNREADABLE", |p| {
            symlink("/dev/urandom", p).unwrap()
        }),
        ("a FIFO with no writer", "TOKEN_FILE_UNREADABLE", |p| {
            testkit::mkfifo(p)
        }),
        ("a 50 MB file", "TOKEN_MALFORMED", |p| {
            std::fs::write(p, vec![b'a'; 50 * 1024 * 1024]).unwrap()
        }),
    ]
}

/// The token replaced by something that is not a token: `check` fails at
/// once with the finding; `serve` turns not ready at the next check and
/// ready again when a good token is rotated back in.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_token_files_in_check_and_serve() {
    let sts = FakeAws::healthy().await;
    for (i, (name, code, make)) in hostile_tokens().into_iter().enumerate() {
        let context = format!("token as {name}");
        let token = token();
        let checked = TokenVolume::new(&token);
        swap_in(&checked, &format!("{i}"), make);
        let served = std::sync::Mutex::new(TokenVolume::new(&token));
        let path = served.lock().unwrap().path();
        let case = ServeCase {
            context: context.clone(),
            healthy_first: true,
            code,
            recovery: Recovery::Ready,
            stuck_in: None,
            token: &token,
        };
        let generation = std::sync::atomic::AtomicU32::new(0);
        let switch = |on: bool| {
            let mut volume = served.lock().unwrap();
            if on {
                let n = generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                swap_in(&volume, &format!("{i}.{n}"), make);
            } else {
                volume.rotate(&token);
            }
        };
        let doctor = |path: &std::path::Path| doctor!(&sts.url()).irsa(ROLE_ARN, path);
        tokio::join!(
            check_case(&context, doctor(&checked.path()), 1, code, &token),
            serve_case(case, doctor(&path), switch),
        );
    }
}

/// Rotates `volume` between two good tokens every few milliseconds, the
/// kubelet's way, until `stop` is set; returns the volume.
fn rotation_storm(
    mut volume: TokenVolume,
    tokens: [String; 2],
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<TokenVolume> {
    std::thread::spawn(move || {
        let limit = Instant::now() + 2 * WAIT_LIMIT;
        let mut n = 0;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < limit {
            volume.rotate(&tokens[n % 2]);
            n += 1;
            std::thread::sleep(Duration::from_millis(3));
        }
        volume
    })
}

/// The token rotating while it is read: every read sees one whole token,
/// so `check` passes every time and `serve` stays ready throughout.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_rotating_during_reads_in_check_and_serve() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let sts = FakeAws::healthy().await;
    let tokens = [0, 1].map(|n| {
        Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT)
            .set("jti", serde_json::json!(format!("storm-{n}")))
            .encode()
    });
    let volume = TokenVolume::new(&tokens[0]);
    let path = volume.path();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let pod = || doctor!(&sts.url()).irsa(ROLE_ARN, &path);
    let serving = pod()
        .arg("--interval")
        .arg("1s")
        .env("IRSA_DOCTOR_TIMEOUT", "2s")
        .serve()
        .await;
    serving.wait_for("/readyz", |a| a.status == 200).await;
    let storm = rotation_storm(volume, tokens.clone(), stop.clone());
    let mut p = Prober {
        serving: &serving,
        context: "rotation storm",
        seen: String::new(),
    };
    for run in 0..4 {
        let context = format!("check {run} during a rotation storm");
        let out = run_check(&context, pod(), 0, &tokens[run % 2]).await;
        assert_no_secret(&out.all_output(), &tokens[1 - run % 2], &context);
        let ready = p.get("/readyz").await;
        assert_eq!(ready.status, 200, "{context}: {ready:?}");
    }
    stop.store(true, Ordering::SeqCst);
    let _volume = storm.join().unwrap();
    let status = p.get("/status").await.json();
    assert_eq!(status["verdict"], "pass", "{status:#}");
    let seen = std::mem::take(&mut p.seen);
    let (code, logs) = serving.stop("TERM").await;
    assert_eq!(code, 0);
    for token in &tokens {
        assert_no_secret(&format!("{seen}\n{logs}"), token, "serve in a storm");
    }
}

/// A termination log that cannot be written changes neither the verdict
/// nor the exit code, and holds nothing up.
#[tokio::test(flavor = "multi_thread")]
async fn an_unwritable_termination_log_keeps_the_verdict() {
    let pod = IrsaPod::new(None).await;
    let dir = tempfile::tempdir().unwrap();
    for (name, path) in [
        ("a directory", dir.path().to_owned()),
        (
            "in a missing directory",
            dir.path().join("missing/termination-log"),
        ),
        ("a read-only file of /proc", "/proc/version".into()),
    ] {
        let context = format!("termination log {name}");
        let doctor = pod
            .run()
            .doctor
            .env("IRSA_DOCTOR_TERMINATION_LOG", path.to_str().unwrap());
        let out = run_check(&context, doctor, 0, &pod.token).await;
        assert_eq!(out.json()["verdict"], "pass", "{context}");
        assert!(
            out.stderr.contains("termination log"),
            "{context}: the log does not say so:\n{}",
            out.stderr
        );
    }
    assert!(dir.path().is_dir());
}

/// libfaketime's preload, with the offset read from `file` at every call
/// to the clock, so a test can skew a running process and set it right.
fn skewed(doctor: Doctor, file: &std::path::Path) -> Doctor {
    doctor
        .env(
            "LD_PRELOAD",
            "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        )
        .env("FAKETIME_TIMESTAMP_FILE", file.to_str().unwrap())
        .env("FAKETIME_NO_CACHE", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
}

/// The container's wall clock hours away from STS's (and so from the
/// token's `iat`, `nbf` and `exp`): `check` fails with `CLOCK_SKEW`;
/// `serve` turns not ready and ready again once the clock is set right,
/// without a restart. (tests/hostile.rs holds the wording and the
/// offsets of `check`.)
#[tokio::test(flavor = "multi_thread")]
async fn a_skewed_clock_in_check_and_serve() {
    let dir = tempfile::tempdir().unwrap();
    for offset in ["+2h", "-2h"] {
        let context = format!("clock {offset}");
        let checked = IrsaPod::new(None).await;
        let served = IrsaPod::new(None).await;
        let fixed = dir.path().join(format!("checked{offset}"));
        std::fs::write(&fixed, offset).unwrap();
        let moving = dir.path().join(format!("served{offset}"));
        std::fs::write(&moving, "+0").unwrap();
        let case = ServeCase {
            context: context.clone(),
            healthy_first: true,
            code: "CLOCK_SKEW",
            recovery: Recovery::Ready,
            stuck_in: None,
            token: &served.token,
        };
        let switch = |on: bool| std::fs::write(&moving, if on { offset } else { "+0" }).unwrap();
        tokio::join!(
            check_case(
                &context,
                skewed(checked.run().doctor, &fixed),
                1,
                "CLOCK_SKEW",
                &checked.token
            ),
            serve_case(case, skewed(served.run().doctor, &moving), switch),
        );
    }
}
