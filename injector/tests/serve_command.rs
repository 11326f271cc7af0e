//! `irsa-doctor-injector serve` as the Deployment runs it: the binary, its
//! flags from the environment, a certificate in a Secret volume, a review
//! over HTTPS, SIGTERM, and the documented exit codes. KUBECONFIG names a
//! loopback stand-in that answers 404, so no test reaches a real cluster
//! once the lookups are connected.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::webhook::*;
use support::IMAGE;

/// AWS's documented example secret key: fake, and unmistakable in a log.
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn command(kubeconfig: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_irsa-doctor-injector"));
    cmd.env_clear()
        .env("KUBECONFIG", kubeconfig)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("IRSA_DOCTOR_INJECTOR_IMAGE", IMAGE)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Waits for the child to exit, within the bound.
fn wait_exit(child: &mut Child) -> i32 {
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "serve did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_pasted_help_is_the_real_help() {
    let out = Command::new(env!("CARGO_BIN_EXE_irsa-doctor-injector"))
        .args(["serve", "--help"])
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let doc = std::fs::read_to_string(support::manifest_dir().join("../docs/injector.md")).unwrap();
    assert!(
        doc.contains(&format!("```text\n{}\n```", help.trim_end())),
        "docs/injector.md's pasted help is stale:\n{help}"
    );
}

#[tokio::test]
async fn an_unreadable_certificate_stops_serve_at_start_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let (_api, kubeconfig) = kubeconfig(dir.path()).await;
    let missing = dir.path().join("tls.crt");
    let out = command(&kubeconfig)
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-key"])
        .arg(dir.path().join("tls.key"))
        .arg("--tls-cert")
        .arg(&missing)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot load the serving certificate"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&missing.display().to_string()),
        "names the file: {stderr}"
    );
}

#[tokio::test]
async fn serve_answers_over_https_and_exits_0_on_sigterm_without_dependency_debug_logs() {
    let dir = tempfile::tempdir().unwrap();
    let (_api, kubeconfig) = kubeconfig(dir.path()).await;
    let ca = Ca::new("serve command CA");
    let (cert, key, _) = ca.serving("serve");
    let volume = SecretVolume::new(&cert, &key);
    let mut child = command(&kubeconfig)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--shutdown-delay",
            "0s",
        ])
        .env("IRSA_DOCTOR_INJECTOR_TLS_CERT", volume.cert())
        .env("IRSA_DOCTOR_INJECTOR_TLS_KEY", volume.key())
        .env("IRSA_DOCTOR_INJECTOR_NAMESPACE", "irsa-doctor")
        .env("RUST_LOG", "trace")
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let listening: Value = loop {
        let line = rx
            .recv_timeout(WAIT_LIMIT)
            .expect("serve never said where it listens");
        lines.push(line.clone());
        let value: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if value["fields"]["message"] == "listening" {
            break value;
        }
    };
    let addr = listening["fields"]["https"].as_str().unwrap().to_owned();
    let metrics_addr = listening["fields"]["metrics"].as_str().unwrap().to_owned();

    let mut tls = connect_tls(&addr, &ca.der).await;
    // A static key in the app's environment (a mistake people make): it
    // must reach neither the doctor nor the log, even at trace.
    let mut pod = irsa_pod();
    pod["spec"]["containers"][0]["env"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "AWS_SECRET_ACCESS_KEY", "value": SECRET}));
    let body = serde_json::to_vec(&review_of(pod, "payments", "CREATE")).unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut tls, &post("/mutate", &body))
        .await
        .unwrap();
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(
        WAIT_LIMIT,
        tokio::io::AsyncReadExt::read_to_end(&mut tls, &mut bytes),
    )
    .await
    .unwrap();
    let answer = testkit::http::parse(&bytes);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let patch = patch_of(&answer.json()).expect("patched");
    assert!(
        !patch.to_string().contains(SECRET),
        "the key was copied: {patch}"
    );
    let ready = testkit::http::exchange(
        &metrics_addr,
        b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(ready.status, 200);

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert_eq!(wait_exit(&mut child), 0, "SIGTERM is a clean stop");
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    for line in &lines {
        let value: Value = serde_json::from_str(line).unwrap();
        let target = value["target"].as_str().unwrap_or("");
        let level = value["level"].as_str().unwrap_or("");
        assert!(
            target.starts_with("irsa_doctor_injector") || !matches!(level, "DEBUG" | "TRACE"),
            "a dependency logged below info: {line}"
        );
    }
    assert!(
        lines.iter().any(|l| l.contains("admission reviewed")),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l.contains("SIGTERM")), "{lines:?}");
    assert!(
        !lines.iter().any(|l| l.contains(SECRET)),
        "the key was logged"
    );
}
