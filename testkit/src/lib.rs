//! The test kit: everything irsa-doctor's black-box tests, its demo and the
//! kit's own binaries share, so that each builds its scenario in a few lines
//! and runs the real binary against it. The binaries (`src/bin/`) are the
//! benchmarks' helpers: `standin`, the stand-ins on their own, and `stamp`,
//! the app `bench/exec.py` runs.
//!
//! Layout (the stand-ins learn who the pod is and what time it is from
//! `world` and `clock`, not from each other, so the kit's imports have no
//! cycle; `tests/kit_layout.rs` checks that):
//! - `world`: the fixed values every stand-in and test agrees on (the
//!   account, the role, the pod's namespace and service account, the
//!   cluster's issuer, the audiences, the cluster, the node role).
//! - `clock`: the wall clock the stand-ins stamp answers and tokens with.
//! - `fake_aws`: the STS stand-in, a small model of IAM with fault injection.
//! - `agent`: the EKS Pod Identity agent stand-in, handing out sessions the
//!   STS stand-in (or moto) minted, with fault injection.
//! - `imds`: the IMDSv2 stand-in, serving a node role's credentials.
//! - `jwt`: kubelet-like tokens and projected token volumes.
//! - `http`: the loopback HTTP/1 server the stand-ins answer through, and a
//!   raw client.
//! - `faulty`: a loopback TCP front for a stand-in that misbehaves at the
//!   socket level on command (refuses, stalls, trickles, streams 100 MB,
//!   resets), and relays to the stand-in when told to stop.
//! - `oidc`: a loopback OIDC issuer (discovery document and key set, with
//!   faults and a request count) and keys that sign real RS256 and ES256
//!   tokens.
//! - `leaks`: the assertion that no secret the kit hands out is in a text.
//! - `proxy`: a loopback HTTP proxy that forwards everything to one
//!   stand-in (plain or `CONNECT`), or refuses everything.
//! - `kube_api`: the Kubernetes API server stand-in (ServiceAccounts,
//!   bearer tokens, faults) and a kubeconfig for it, for the injector.
//! - `eks_api`: the EKS API stand-in (Pod Identity associations, SigV4
//!   checked, faults), for the injector.
//! - `sigv4`: verifying the binary's signatures, signing the kit's own calls.
//! - `serving`: `irsa-doctor serve` as a child process or as a task the
//!   test started (`irsa_doctor::serve`), and a raw HTTP client to probe it.
//! - here: [`Doctor`], `irsa-doctor` as a child process with a cleared
//!   environment (made with [`doctor!`]), moto's server as a third-party
//!   STS, the Python tools in `.venv`, and a throwaway CA for HTTPS.
//!
//! Invariant: every endpoint a test hands the binary is on loopback
//! (127.0.0.1, or ::1 for the agent's IPv6 form), and IMDS is either a
//! loopback stand-in or disabled. Nothing leaves the machine.

#![forbid(unsafe_code)]

pub mod agent;
pub mod clock;
pub mod eks_api;
pub mod fake_aws;
pub mod faulty;
pub mod http;
pub mod imds;
pub mod jwt;
pub mod kube_api;
pub mod leaks;
pub mod oidc;
pub mod proxy;
pub mod serving;
pub mod sigv4;
pub mod world;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// No single run of the binary may take longer than this; a hang fails the
/// test instead of stalling CI.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// The binary under test: `built` (the one Cargo built for the tests), or
/// the one `IRSA_DOCTOR_TEST_BINARY` names, so that the black-box tests can
/// be run against an older build to show that a regression test fails there.
pub fn binary(built: &str) -> PathBuf {
    std::env::var_os("IRSA_DOCTOR_TEST_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(built))
}

/// A [`Doctor`] for the binary under test (see [`binary`]), whose STS
/// endpoint is the given URL.
///
/// A macro, so that `env!("CARGO_BIN_EXE_irsa-doctor")` is read where it is
/// used: Cargo sets that variable only while it compiles the integration
/// tests of the package that has the `irsa-doctor` binary, never while it
/// compiles this library.
#[macro_export]
macro_rules! doctor {
    ($sts_url:expr) => {
        $crate::Doctor::new($crate::binary(env!("CARGO_BIN_EXE_irsa-doctor")), $sts_url)
    };
}

/// `irsa-doctor` as a child process, with nothing inherited from the
/// developer's environment.
pub struct Doctor {
    binary: PathBuf,
    env: BTreeMap<String, std::ffi::OsString>,
    args: Vec<std::ffi::OsString>,
    /// A command the binary runs under (`faketime +2h`), if any.
    wrapper: Vec<String>,
    home: tempfile::TempDir,
    user: Option<(u32, u32)>,
}

/// What one run of the binary left behind.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub termination_log: String,
}

impl Outcome {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    pub fn codes(&self) -> Vec<String> {
        self.json()["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["code"].as_str().unwrap().to_owned())
            .collect()
    }

    pub fn finding(&self, code: &str) -> Value {
        self.json()["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["code"] == code)
            .cloned()
            .unwrap_or_else(|| {
                panic!(
                    "no {code} finding in:\n{}\nstderr:\n{}",
                    self.stdout, self.stderr
                )
            })
    }

    /// Everything the binary wrote anywhere.
    pub fn all_output(&self) -> String {
        format!("{}\n{}\n{}", self.stdout, self.stderr, self.termination_log)
    }
}

impl Doctor {
    /// `binary check` for a pod whose STS endpoint is `sts_url`, region
    /// us-east-1, IMDS off, and an empty HOME (no shared config or
    /// credentials files). [`doctor!`] passes the binary under test.
    pub fn new(binary: PathBuf, sts_url: &str) -> Self {
        let home = tempfile::tempdir().unwrap();
        let mut d = Doctor {
            binary,
            env: BTreeMap::new(),
            args: vec!["check".into()],
            wrapper: vec![],
            home,
            user: None,
        };
        let h = d.home.path().to_owned();
        d = d
            .env("AWS_ENDPOINT_URL_STS", sts_url)
            // IAM's simulator (`--require`) is the same stand-in: no test
            // may reach the real IAM endpoint.
            .env("AWS_ENDPOINT_URL_IAM", sts_url)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("HOME", h.to_str().unwrap())
            .env("AWS_CONFIG_FILE", h.join("aws-config").to_str().unwrap())
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                h.join("aws-credentials").to_str().unwrap(),
            )
            .env(
                "IRSA_DOCTOR_TERMINATION_LOG",
                h.join("termination-log").to_str().unwrap(),
            )
            .env("IRSA_DOCTOR_POD_NAME", "app-7d9f8c-x2x4q")
            .env("IRSA_DOCTOR_TIMEOUT", "20s")
            .env("RUST_LOG", "info");
        d
    }

    /// The env the webhook injects.
    pub fn irsa(self, role_arn: &str, token_file: &Path) -> Self {
        self.env("AWS_ROLE_ARN", role_arn)
            .env("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap())
    }

    /// The env the Pod Identity webhook injects: the agent's URI and the
    /// token file. Leaves the IRSA pair as it is, so that `.irsa(..)` with
    /// this gives a pod with both.
    pub fn pod_identity(self, full_uri: &str, token_file: &Path) -> Self {
        self.env("AWS_CONTAINER_CREDENTIALS_FULL_URI", full_uri)
            .env(
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                token_file.to_str().unwrap(),
            )
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Sets a variable to bytes that need not be UTF-8.
    pub fn env_os(mut self, key: &str, value: std::ffi::OsString) -> Self {
        self.env.insert(key.into(), value);
        self
    }

    /// Runs the binary under `command` (its path and arguments), as in
    /// `faketime +2h irsa-doctor ...`.
    pub fn under(mut self, command: &[&str]) -> Self {
        self.wrapper = command.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    pub fn unset(mut self, key: &str) -> Self {
        self.env.remove(key);
        self
    }

    /// Each of `args`, in order.
    pub fn args(self, args: &[&str]) -> Self {
        args.iter().fold(self, |d, a| d.arg(a))
    }

    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.into());
        self
    }

    /// An argument that need not be UTF-8.
    pub fn arg_os(mut self, arg: impl Into<std::ffi::OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Runs another subcommand than `check` (`exec`, `install`), with the
    /// same environment.
    pub fn subcommand(mut self, name: &str) -> Self {
        self.args[0] = name.into();
        self
    }

    /// The environment the binary gets, as set so far.
    pub fn environment(&self) -> &BTreeMap<String, std::ffi::OsString> {
        &self.env
    }

    /// The command [`Doctor::run`] would run (stdin, stdout and stderr
    /// left for the caller to set), for tests that need the child itself:
    /// its PID, its stdin. Keep the `Doctor` alive while it runs: it owns
    /// the pod's HOME.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.env_clear()
            .envs(&self.env)
            .args(&self.args)
            .kill_on_drop(true);
        cmd
    }

    /// Runs the binary as another user (the test must run as root), with a
    /// HOME that user can write.
    pub fn run_as(mut self, uid: u32, gid: u32) -> Self {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(self.home.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        self.user = Some((uid, gid));
        self
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    pub async fn json(self) -> Outcome {
        self.arg("--output").arg("json").run().await
    }

    pub async fn run(self) -> Outcome {
        let mut binary = self.binary.clone();
        if self.user.is_some() {
            // The checkout may sit in a directory only root can enter (a
            // mktemp -d clone): give the other user a copy it can reach.
            let copy = self.home.path().join("irsa-doctor");
            if std::fs::hard_link(&binary, &copy).is_err() {
                std::fs::copy(&binary, &copy).unwrap();
            }
            binary = copy;
        }
        let mut cmd = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(&binary);
                cmd
            }
            None => Command::new(&binary),
        };
        cmd.env_clear()
            .envs(&self.env)
            .args(&self.args)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid);
        }
        let output = tokio::time::timeout(RUN_LIMIT, cmd.output())
            .await
            .expect("irsa-doctor ran longer than the test limit")
            .expect("irsa-doctor starts");
        let termination_log =
            std::fs::read_to_string(self.home.path().join("termination-log")).unwrap_or_default();
        Outcome {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            termination_log,
        }
    }
}

/// moto's server (PyPI `moto[server]`), a third-party STS, on loopback.
pub struct Moto {
    child: Child,
    pub url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A Python tool that `bash .ci/run` installs into `.venv` (moto's server,
/// kubernetes-validate): the path the variable `var` names, as `.ci/run`
/// sets it, else the one in the workspace root's `.venv`, else `name` on
/// PATH.
pub fn venv_tool(var: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var) {
        return p.into();
    }
    // The workspace root is this crate's parent.
    let venv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.venv/bin")
        .join(name);
    if venv.exists() {
        return venv;
    }
    name.into()
}

/// Starts moto's server on a free loopback port and waits for its
/// "Running on" line. Fails (does not skip) when moto is not installed:
/// `bash .ci/run` installs it into `.venv`.
pub async fn start_moto() -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = venv_tool("MOTO_SERVER", "moto_server");
    let mut child = Command::new(&path)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start moto's server ({}): {e}. Install it with `bash .ci/run` or \
                 `python3 -m venv .venv && .venv/bin/pip install 'moto[server]'`",
                path.display()
            )
        });
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let ready = async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("Running on") {
                return true;
            }
        }
        false
    };
    let ready = tokio::time::timeout(Duration::from_secs(60), ready).await;
    assert!(
        matches!(ready, Ok(true)),
        "moto's server did not start: {ready:?}"
    );
    // Keep draining stderr so moto never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// Makes a FIFO (named pipe) at `path`: what a setting may name to make a
/// reader block.
pub fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo {}", path.display());
}

/// A throwaway CA and a server certificate for 127.0.0.1 signed by it:
/// `(CA certificate PEM, TLS acceptor)`.
pub fn test_ca_and_acceptor() -> (String, tokio_rustls::TlsAcceptor) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
    use tokio_rustls::rustls;

    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "irsa-doctor test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse().unwrap())];
    let server_cert = params.signed_by(&server_key, &issuer).unwrap();

    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![server_cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
        )
        .unwrap();
    (
        ca_cert.pem(),
        tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)),
    )
}
