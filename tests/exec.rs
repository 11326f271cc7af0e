//! `exec` and `install`, black-box: the real binary checks, then becomes
//! the app. The app here is a small Python probe that reports what it got:
//! its PID, its argv and environment as raw bytes (from /proc), its working
//! directory, the identity of its standard descriptors, and a line read
//! from stdin.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::MetadataExt;
use std::process::Stdio;

use serde_json::Value;
use testkit::agent::Agent;
use testkit::fake_aws::FakeAws;
use testkit::jwt::{Jwt, TokenVolume};
use testkit::world::{NAMESPACE, ROLE_ARN, SERVICE_ACCOUNT};
use testkit::{doctor, Doctor, Outcome};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The probe: one JSON line on stdout, one line on stderr.
const PROBE: &str = r#"
import json, os, sys
def ident(fd):
    st = os.fstat(fd)
    return [st.st_dev, st.st_ino]
out = {
    "pid": os.getpid(),
    "cmdline": open("/proc/self/cmdline", "rb").read().hex(),
    "environ": open("/proc/self/environ", "rb").read().hex(),
    "cwd": os.getcwd(),
    "fds": [ident(0), ident(1), ident(2)],
    "stdin": sys.stdin.readline(),
}
print(json.dumps(out), flush=True)
sys.stderr.write("probe on stderr\n")
"#;

/// Where the probe's interpreter is, so that the test does not depend on
/// `PATH` lookups it is not about.
fn python() -> String {
    for candidate in ["/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"] {
        if std::path::Path::new(candidate).exists() {
            return candidate.to_owned();
        }
    }
    panic!("no python3 for the probe");
}

/// A healthy IRSA pod running `exec` with the token in `volume`.
fn exec_pod(sts_url: &str, volume: &TokenVolume) -> Doctor {
    doctor!(sts_url)
        .irsa(ROLE_ARN, &volume.path())
        .subcommand("exec")
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
}

fn healthy_volume() -> TokenVolume {
    TokenVolume::new(&Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).encode())
}

/// `ls -l`'s view of a descriptor's identity: device and inode.
fn ident(fd: &impl std::os::fd::AsRawFd) -> Value {
    let meta = std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
    serde_json::json!([meta.dev(), meta.ino()])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn a_pass_becomes_the_app_with_the_same_pid_argv_environment_cwd_and_descriptors() {
    let sts = FakeAws::healthy().await;
    let volume = healthy_volume();
    let cwd = tempfile::tempdir().unwrap();
    // Spaces, quotes, an empty argument and bytes that are not UTF-8.
    let odd: Vec<OsString> = vec![
        "two words".into(),
        "it's \"quoted\"".into(),
        "".into(),
        OsString::from_vec(vec![b'x', 0xff, 0xfe, b'y']),
    ];
    let mut doctor = exec_pod(&sts.url(), &volume)
        .env_os(
            "APP_SETTING",
            OsString::from_vec(vec![b'v', 0xc3, 0x28, b'=']),
        )
        .arg("--")
        .arg(&python())
        .arg("-c")
        .arg(PROBE);
    for a in &odd {
        doctor = doctor.arg_os(a.clone());
    }
    let mut argv: Vec<u8> = vec![];
    for a in [python().into(), "-c".into(), OsString::from(PROBE)]
        .iter()
        .chain(&odd)
    {
        argv.extend_from_slice(a.as_encoded_bytes());
        argv.push(0);
    }
    let mut environ: Vec<u8> = vec![];
    for (k, v) in doctor.environment() {
        environ.extend_from_slice(k.as_bytes());
        environ.push(b'=');
        environ.extend_from_slice(v.as_encoded_bytes());
        environ.push(0);
    }

    let mut child = doctor
        .command()
        .current_dir(cwd.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let fds = serde_json::json!([ident(&stdin), ident(&stdout), ident(&stderr)]);
    stdin.write_all(b"hello from stdin\n").await.unwrap();
    drop(stdin);
    let (mut out, mut err) = (String::new(), String::new());
    let (mut stdout, mut stderr) = (stdout, stderr);
    let read = async {
        tokio::try_join!(
            stdout.read_to_string(&mut out),
            stderr.read_to_string(&mut err)
        )
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), read)
        .await
        .expect("the app ran too long")
        .unwrap();
    let status = child.wait().await.unwrap();
    assert_eq!(status.code(), Some(0), "stdout:\n{out}\nstderr:\n{err}");

    // The report is on stderr; stdout is the app's alone.
    assert!(err.contains("irsa-doctor: pass"), "{err}");
    assert!(err.ends_with("probe on stderr\n"), "{err}");
    let probe: Value = serde_json::from_str(out.trim_end()).unwrap_or_else(|e| {
        panic!("stdout is not the probe's one line ({e}):\n{out}\nstderr:\n{err}")
    });
    assert_eq!(probe["pid"], pid, "the same process");
    assert_eq!(probe["cmdline"], hex(&argv), "argv byte for byte");
    assert_eq!(probe["environ"], hex(&environ), "environment byte for byte");
    assert_eq!(probe["cwd"], cwd.path().to_str().unwrap());
    assert_eq!(probe["fds"], fds, "stdin, stdout and stderr are ours");
    assert_eq!(probe["stdin"], "hello from stdin\n");
}

/// Runs `doctor`'s `exec` with `echo APP-STARTED` as the app.
async fn exec_echo(doctor: Doctor) -> Outcome {
    doctor.arg("--").arg("echo").arg("APP-STARTED").run().await
}

#[tokio::test]
async fn a_failing_pod_does_not_start_the_app_unless_on_fail_is_warn() {
    let sts = FakeAws::healthy().await;
    let volume = TokenVolume::new(&Jwt::for_sa(NAMESPACE, "other-sa").encode());
    let out = exec_echo(exec_pod(&sts.url(), &volume)).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(!out.stdout.contains("APP-STARTED"), "{}", out.stdout);
    assert!(out.stderr.contains("TRUST_POLICY_DENIED"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("not starting the app: the check did not pass"),
        "{}",
        out.stderr
    );

    let warned = exec_echo(exec_pod(&sts.url(), &volume).arg("--on-fail").arg("warn")).await;
    assert_eq!(warned.code, 0, "{}", warned.stderr);
    assert_eq!(warned.stdout, "APP-STARTED\n");
    assert!(
        warned
            .stderr
            .contains("starting the app although the check did not pass"),
        "{}",
        warned.stderr
    );
}

#[tokio::test]
async fn an_inconclusive_check_starts_the_app_unless_on_inconclusive_is_exit() {
    // Nothing listens on the discard port: STS is unreachable.
    let volume = healthy_volume();
    let unreachable = || {
        exec_pod("http://127.0.0.1:9", &volume)
            .env("IRSA_DOCTOR_TIMEOUT", "2s")
            .env("AWS_MAX_ATTEMPTS", "1")
    };
    let out = exec_echo(unreachable()).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "APP-STARTED\n");
    assert!(out.stderr.contains("STS_UNREACHABLE"), "{}", out.stderr);

    let stopped = exec_echo(unreachable().arg("--on-inconclusive").arg("exit")).await;
    assert_eq!(stopped.code, 3, "{}", stopped.stderr);
    assert_eq!(stopped.stdout, "");
}

#[tokio::test]
async fn static_keys_only_in_the_app_container_are_caught_by_exec_not_by_a_separate_check() {
    let sts = FakeAws::healthy().await;
    sts.aws.add_key(
        "AKIASTATICEXAMPLE001",
        "arn:aws:iam::999988887777:user/ci-bot",
    );
    let volume = healthy_volume();
    // The init container or sidecar: its own env, without the app's keys.
    let separate = doctor!(&sts.url())
        .irsa(ROLE_ARN, &volume.path())
        .json()
        .await;
    assert_eq!(separate.code, 0, "{}", separate.stdout);
    assert_eq!(separate.json()["seen_from"], "own_container");

    // The app's container: the keys its env sets.
    let app = exec_pod(&sts.url(), &volume)
        .env("AWS_ACCESS_KEY_ID", "AKIASTATICEXAMPLE001")
        .env("AWS_SECRET_ACCESS_KEY", "STATICSECRETDONOTLOG")
        .arg("--output")
        .arg("json");
    let out = exec_echo(app).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(!out.stdout.contains("APP-STARTED"));
    let report: Value = out
        .stderr
        .lines()
        .find_map(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .filter(|v| v["verdict"].is_string())
        })
        .unwrap_or_else(|| panic!("no JSON report on stderr:\n{}", out.stderr));
    assert_eq!(report["seen_from"], "app_container");
    let shadow = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "STATIC_CREDENTIALS_SHADOW")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert!(
        shadow["message"]
            .as_str()
            .unwrap()
            .ends_with("(seen from the app's container)"),
        "{shadow}"
    );
    assert!(!out.all_output().contains("STATICSECRETDONOTLOG"));
}

#[tokio::test]
async fn a_finding_from_a_separate_container_says_what_it_could_not_see_and_points_to_exec() {
    let sts = FakeAws::healthy().await;
    sts.aws.add_key(
        "AKIASTATICEXAMPLE001",
        "arn:aws:iam::999988887777:user/ci-bot",
    );
    let volume = healthy_volume();
    let out = doctor!(&sts.url())
        .irsa(ROLE_ARN, &volume.path())
        .env("AWS_ACCESS_KEY_ID", "AKIASTATICEXAMPLE001")
        .env("AWS_SECRET_ACCESS_KEY", "STATICSECRETDONOTLOG")
        .json()
        .await;
    assert_eq!(out.code, 1);
    let remedy = out.finding("STATIC_CREDENTIALS_SHADOW")["remedy"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        remedy.contains("Seen from irsa-doctor's own container, not the app's")
            && remedy.contains("irsa-doctor exec -- <app command>"),
        "{remedy}"
    );
}

#[tokio::test]
async fn pod_identity_passes_and_starts_the_app() {
    let sts = FakeAws::healthy().await;
    let agent = Agent::healthy(&sts.aws).await;
    let volume =
        TokenVolume::pod_identity(&Jwt::for_pod_identity(NAMESPACE, SERVICE_ACCOUNT).encode());
    let out = exec_echo(
        doctor!(&sts.url())
            .pod_identity(&agent.url(), &volume.path())
            .subcommand("exec")
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .arg("--expected-role-arn")
            .arg(ROLE_ARN),
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "APP-STARTED\n");
    assert!(out.stderr.contains("EKS Pod Identity"), "{}", out.stderr);
}

#[tokio::test]
async fn the_command_is_found_through_path_as_execvp_finds_it() {
    let sts = FakeAws::healthy().await;
    let volume = healthy_volume();
    let bin = tempfile::tempdir().unwrap();
    let app = bin.path().join("my-app");
    std::fs::write(&app, "#!/bin/sh\necho \"my-app $1\"\n").unwrap();
    std::fs::set_permissions(&app, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.path().display());
    let out = exec_pod(&sts.url(), &volume)
        .env("PATH", &path)
        .arg("--")
        .arg("my-app")
        .arg("ran")
        .run()
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "my-app ran\n");
}

#[tokio::test]
async fn a_missing_command_is_127_an_unexecutable_one_126_and_no_command_a_usage_error() {
    let sts = FakeAws::healthy().await;
    let volume = healthy_volume();
    let missing = exec_pod(&sts.url(), &volume)
        .arg("--")
        .arg("irsa-doctor-test-no-such-app")
        .run()
        .await;
    assert_eq!(missing.code, 127, "{}", missing.stderr);
    assert!(
        missing
            .stderr
            .contains("cannot start the app: command not found")
            && missing.stderr.contains("irsa-doctor-test-no-such-app"),
        "{}",
        missing.stderr
    );

    let dir = tempfile::tempdir().unwrap();
    let not_executable = dir.path().join("app");
    std::fs::write(&not_executable, "#!/bin/sh\necho no\n").unwrap();
    let denied = exec_pod(&sts.url(), &volume)
        .arg("--")
        .arg(not_executable.to_str().unwrap())
        .run()
        .await;
    assert_eq!(denied.code, 126, "{}", denied.stderr);
    assert!(
        denied
            .stderr
            .contains("cannot start the app: not executable"),
        "{}",
        denied.stderr
    );
    assert_eq!(denied.stdout, "");

    for args in [&["--"][..], &["echo", "no"][..], &[][..]] {
        let mut doctor = exec_pod(&sts.url(), &volume);
        for a in args {
            doctor = doctor.arg(a);
        }
        let out = doctor.run().await;
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert_eq!(out.stdout, "", "{args:?}");
    }
    assert_eq!(
        sts.aws.our_assume_calls(),
        2,
        "the usage errors checked nothing"
    );
}

#[tokio::test]
async fn install_copies_the_binary_read_only_prints_its_path_and_can_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("bin");
    let install = || {
        doctor!("http://127.0.0.1:9")
            .subcommand("install")
            .arg(target.to_str().unwrap())
    };
    let installed = target.join("irsa-doctor");
    for _ in 0..2 {
        let out = install().run().await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(out.stdout, format!("{}\n", installed.display()));
        let meta = std::fs::metadata(&installed).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o555);
        assert_eq!(
            std::fs::read(&installed).unwrap(),
            std::fs::read(env!("CARGO_BIN_EXE_irsa-doctor")).unwrap()
        );
        assert_eq!(std::fs::read_dir(&target).unwrap().count(), 1);
    }
    // The copy runs.
    let help = tokio::process::Command::new(&installed)
        .arg("--version")
        .output()
        .await
        .unwrap();
    assert!(help.status.success());

    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let failed = doctor!("http://127.0.0.1:9")
        .subcommand("install")
        .arg(file.to_str().unwrap())
        .run()
        .await;
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(
        failed.stderr.contains("could not install irsa-doctor"),
        "{}",
        failed.stderr
    );
}

/// Starts the rest of its arguments (a program and its arguments) the way
/// a parent sets them up: `inherited` ignores SIGPIPE, SIGHUP, SIGINT and
/// SIGUSR2, blocks SIGUSR1 and SIGWINCH, and closes stdin (as `nohup`, a
/// shell's `trap '' PIPE` or `<&-`, or a supervisor would); `defaults`
/// leaves every signal default and unblocked. Python, because a shell can
/// neither block a signal nor exec with stdin closed portably.
const PARENT: &str = r#"
import os, signal, sys
# Python itself ignores SIGPIPE and SIGXFSZ at start: undo that first.
for s in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT):
    signal.signal(s, signal.SIG_DFL)
if sys.argv[1] == "inherited":
    for s in (signal.SIGPIPE, signal.SIGHUP, signal.SIGINT, signal.SIGUSR2):
        signal.signal(s, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1, signal.SIGWINCH})
    os.close(0)
os.execvp(sys.argv[2], sys.argv[2:])
"#;

/// An app that prints its ignored and blocked signals: `grep`, which
/// changes neither, reading its own /proc/self/status (a shell would not
/// do: dash clears the mask).
const SIGNALS: [&str; 3] = ["grep", "-E", "^Sig(Ign|Blk):"];

/// An app that says whether its stdin is open: the shell's own
/// /proc/self/fd/0, opening nothing.
const STDIN: [&str; 3] = [
    "/bin/sh",
    "-c",
    "if [ -e /proc/self/fd/0 ]; then echo stdin open; else echo stdin closed; fi",
];

/// `app` under `PARENT`'s `mode`, directly and through `irsa-doctor
/// exec`: what each printed.
async fn app_sees(mode: &str, app: &[&str]) -> (String, String) {
    let direct = tokio::process::Command::new(python())
        .args(["-c", PARENT, mode])
        .args(app)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(direct.status.success(), "{direct:?}");
    let sts = FakeAws::healthy().await;
    let volume = healthy_volume();
    let python = python();
    let through = exec_pod(&sts.url(), &volume)
        .under(&[&python, "-c", PARENT, mode])
        .arg("--")
        .args(app)
        .run()
        .await;
    assert_eq!(through.code, 0, "{}", through.stderr);
    assert!(
        through.stderr.contains("irsa-doctor: pass"),
        "{}",
        through.stderr
    );
    (String::from_utf8(direct.stdout).unwrap(), through.stdout)
}

/// The mask on the `field:` line (`SigIgn`, `SigBlk`) of [`SIGNALS`]'s
/// output.
fn mask(output: &str, field: &str) -> u64 {
    let line = output
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(":\t"))
        .unwrap_or_else(|| panic!("no {field}:\n{output}"));
    u64::from_str_radix(line, 16).unwrap()
}

/// SIGHUP (1), SIGINT (2), SIGUSR2 (12), SIGPIPE (13): what `PARENT`
/// ignores; SIGUSR1 (10), SIGWINCH (28): what it blocks.
const IGNORED: u64 = 1 | 1 << 1 | 1 << 11 | 1 << 12;
const BLOCKED: u64 = 1 << 9 | 1 << 27;

/// [`SIGNALS`] with /proc/self/status as its file.
fn signals() -> Vec<&'static str> {
    let mut app = SIGNALS.to_vec();
    app.push("/proc/self/status");
    app
}

#[tokio::test]
async fn the_app_gets_the_signal_dispositions_mask_and_closed_stdin_its_parent_gave() {
    let (direct, through) = app_sees("inherited", &signals()).await;
    // The parent really set them up (the test's own process may ignore
    // more, such as the C library's signals 32 and 33: compared whole
    // below).
    assert_eq!(mask(&direct, "SigIgn") & IGNORED, IGNORED, "{direct}");
    assert_eq!(mask(&direct, "SigBlk") & BLOCKED, BLOCKED, "{direct}");
    // Before, the app got SIGPIPE default and nothing blocked.
    assert_eq!(through, direct, "through irsa-doctor exec, and directly");

    let (direct, through) = app_sees("inherited", &STDIN).await;
    assert_eq!(direct, "stdin closed\n");
    // Before, std's runtime had opened /dev/null there.
    assert_eq!(through, direct, "through irsa-doctor exec, and directly");
}

#[tokio::test]
async fn the_app_gets_default_signals_when_its_parent_gave_defaults() {
    let (direct, through) = app_sees("defaults", &signals()).await;
    assert_eq!(mask(&direct, "SigIgn") & IGNORED, 0, "{direct}");
    assert_eq!(mask(&direct, "SigBlk") & BLOCKED, 0, "{direct}");
    assert_eq!(through, direct, "through irsa-doctor exec, and directly");
    let (direct, through) = app_sees("defaults", &STDIN).await;
    assert_eq!(
        (direct.as_str(), through.as_str()),
        ("stdin open\n", "stdin open\n")
    );
}
