//! Proof, without a Docker engine, that the image's contents work: lay out
//! a root directory holding exactly what the Dockerfile's final stage
//! copies, then run the static binary there (chroot, uid 65532, read-only
//! root, the token bind-mounted as the kubelet would) against the loopback
//! STS stand-in over HTTPS, trusting only the test CA placed where the
//! Dockerfile puts the CA bundle.
//!
//! Needs root (for the mount namespace and chroot) and the musl release
//! binary: `bash .ci/run` builds it and runs these tests as root. The
//! Dockerfiles' own checks (the injector's included) need neither.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use testkit::fake_aws::{FakeAws, Trust};
use testkit::jwt::{Jwt, TokenVolume};
use testkit::world::ISSUER;
use testkit::world::{ACCOUNT, NAMESPACE, ROLE_ARN, SERVICE_ACCOUNT};

/// What the image contains: the destinations of the final stage's COPY
/// lines, in order.
const IMAGE_FILES: [&str; 2] = [
    "/usr/local/bin/irsa-doctor",
    "/etc/ssl/certs/ca-certificates.crt",
];
const BINARY: &str = "/usr/local/bin/irsa-doctor";
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Where the webhook mounts the token volume; the container runtime makes
/// this mount point, the image does not contain it.
const TOKEN_DIR: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount";
const UID: u32 = 65532;
/// The image's size budget: binary plus bundle.
const SIZE_BUDGET: u64 = 8_000_000;

/// The injector's image (injector/Dockerfile): its binary, then the same
/// CA bundle.
const INJECTOR_FILES: [&str; 2] = [
    "/usr/local/bin/irsa-doctor-injector",
    "/etc/ssl/certs/ca-certificates.crt",
];

fn dockerfile_at(path: &str) -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// The instructions before the last stage and those of the last stage,
/// continuation lines joined.
fn stages() -> (Vec<String>, Vec<String>) {
    stages_of("Dockerfile")
}

fn stages_of(path: &str) -> (Vec<String>, Vec<String>) {
    let text = dockerfile_at(path).replace("\\\n", " ");
    let mut lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let start = lines
        .iter()
        .rposition(|l| l.to_ascii_uppercase().starts_with("FROM "))
        .expect("a FROM line");
    let last = lines.split_off(start);
    (lines, last)
}

/// The instructions of the last stage.
fn final_stage() -> Vec<String> {
    stages().1
}

/// The `members` of the `[workspace]` table in Cargo.toml, written on one
/// line.
fn workspace_members() -> Vec<String> {
    let manifest =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let list = manifest
        .split("\n[workspace]\n")
        .nth(1)
        .expect("a [workspace] table")
        .lines()
        .find_map(|l| l.trim().strip_prefix("members = "))
        .expect("members = [...] on one line");
    list.trim_matches(['[', ']'])
        .split(',')
        .map(|m| m.trim().trim_matches('"').to_owned())
        .filter(|m| !m.is_empty())
        .collect()
}

#[test]
fn dockerfile_build_stage_copies_every_workspace_member() {
    // Cargo reads every member's manifest before it builds anything, so a
    // member the build stage leaves out breaks `docker build`, which no
    // test here runs. The injector's image builds in the same workspace.
    let members = workspace_members();
    assert!(!members.is_empty());
    for path in ["Dockerfile", "injector/Dockerfile"] {
        let (build_stage, _) = stages_of(path);
        for member in members.iter().map(String::as_str).chain(["src"]) {
            let copy = format!("COPY {member} ./{member}");
            assert!(
                build_stage.contains(&copy),
                "{path}: no {copy:?} in {build_stage:?}"
            );
        }
        assert!(
            build_stage.contains(&"COPY Cargo.toml Cargo.lock ./".to_owned()),
            "{path}"
        );
    }
}

/// injector/Dockerfile builds the injector alone and ships it as the root
/// image ships irsa-doctor: scratch, its binary and the CA bundle, 65532,
/// no shell, `serve` by default.
#[test]
fn injector_dockerfile_ships_the_injector_alone_on_scratch_as_65532() {
    let (build_stage, stage) = stages_of("injector/Dockerfile");
    assert!(
        build_stage.iter().any(|l| l.contains(
            "cargo build --release --locked --target \"$target\" -p irsa-doctor-injector \
             --bin irsa-doctor-injector"
        )),
        "{build_stage:?}"
    );
    let copies: Vec<&str> = stage
        .iter()
        .filter(|l| l.to_ascii_uppercase().starts_with("COPY "))
        .map(|l| l.split_whitespace().last().unwrap())
        .collect();
    assert_eq!(copies, INJECTOR_FILES);
    assert_eq!(INJECTOR_FILES[1], CA_BUNDLE);
    assert_eq!(stage[0], "FROM scratch");
    for line in [
        "USER 65532:65532",
        "ENV PATH=/usr/local/bin",
        "ENTRYPOINT [\"/usr/local/bin/irsa-doctor-injector\"]",
        "CMD [\"serve\"]",
    ] {
        assert!(stage.contains(&line.to_owned()), "no {line:?} in {stage:?}");
    }
    assert!(!stage
        .iter()
        .any(|l| l.to_ascii_uppercase().starts_with("RUN ")));
}

#[test]
fn dockerfile_final_stage_copies_exactly_the_image_files() {
    let copies: Vec<String> = final_stage()
        .iter()
        .filter(|l| l.to_ascii_uppercase().starts_with("COPY "))
        .map(|l| l.split_whitespace().last().unwrap().to_owned())
        .collect();
    assert_eq!(copies, IMAGE_FILES);
}

#[test]
fn dockerfile_final_stage_is_scratch_non_root_with_no_shell() {
    let stage = final_stage();
    assert_eq!(stage[0], "FROM scratch");
    assert!(stage.contains(&"USER 65532:65532".to_owned()), "{stage:?}");
    assert!(stage
        .iter()
        .any(|l| l.starts_with("ENTRYPOINT [\"/usr/local/bin/irsa-doctor\"]")));
    assert!(
        stage.contains(&"ENV PATH=/usr/local/bin".to_owned()),
        "{stage:?}"
    );
    assert!(stage
        .iter()
        .any(|l| l.contains("org.opencontainers.image.title")));
    // Nothing runs in the final stage: there is no shell to run it with.
    assert!(!stage
        .iter()
        .any(|l| l.to_ascii_uppercase().starts_with("RUN ")));
}

fn musl_binary() -> PathBuf {
    let path = std::env::var_os("IRSA_DOCTOR_MUSL_BINARY").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/x86_64-unknown-linux-musl/release/irsa-doctor")
        },
        PathBuf::from,
    );
    let built = fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| {
            panic!(
                "no musl binary at {} ({e}): cargo build --release --target \
                 x86_64-unknown-linux-musl --bin irsa-doctor (bash .ci/run does)",
                path.display()
            )
        });
    // A binary older than the sources would prove nothing about them.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in fs::read_dir(src).unwrap() {
        let modified = entry.unwrap().metadata().unwrap().modified().unwrap();
        assert!(
            modified <= built,
            "{} is older than src/: rebuild it",
            path.display()
        );
    }
    path
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap()
}

fn mkdirs(root: &Path, dir: &str) {
    let path = root.join(dir.trim_start_matches('/'));
    fs::create_dir_all(&path).unwrap();
    // Every level must be searchable by uid 65532 after chroot.
    let mut p = path.as_path();
    while p != root {
        fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
        p = p.parent().unwrap();
    }
}

/// Lays out the image's files: `sources` maps each of [`IMAGE_FILES`] to
/// what to put there; `None` leaves it out.
fn rootfs(sources: &[(&str, Option<&Path>)]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
    for (dest, source) in sources {
        assert!(IMAGE_FILES.contains(dest), "{dest} is not in the image");
        let Some(source) = source else { continue };
        let target = root.path().join(dest.trim_start_matches('/'));
        mkdirs(
            root.path(),
            Path::new(dest).parent().unwrap().to_str().unwrap(),
        );
        fs::copy(source, &target).unwrap();
        let mode = if *dest == BINARY { 0o755 } else { 0o644 };
        fs::set_permissions(&target, fs::Permissions::from_mode(mode)).unwrap();
    }
    // The runtime's mount point for the token volume, and nothing else.
    mkdirs(root.path(), TOKEN_DIR);
    root
}

/// A token volume as the kubelet makes it with `fsGroup: 65532`: the file
/// group-owned by 65532, mode 0640.
fn token_volume() -> TokenVolume {
    let vol = TokenVolume::new(&Jwt::for_sa(NAMESPACE, SERVICE_ACCOUNT).encode());
    fs::set_permissions(vol.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let file = vol.data_file();
    std::os::unix::fs::chown(&file, Some(0), Some(UID)).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
    vol
}

/// Runs `irsa-doctor check` chrooted into `root`, as 65532, with the root
/// read-only and the token volume bind-mounted read-only.
async fn run_in_image(
    root: &Path,
    vol: &TokenVolume,
    sts_url: &str,
    timeout: &str,
) -> testkit::Outcome {
    let token_mount = root.join(TOKEN_DIR.trim_start_matches('/'));
    let script = r#"set -e
chroot_bin=$(command -v chroot)
mount --bind "$ROOT" "$ROOT"
mount --bind "$VOLUME" "$TOKEN_MOUNT"
mount -o remount,bind,ro "$TOKEN_MOUNT"
mount -o remount,bind,ro "$ROOT"
exec env -i AWS_ROLE_ARN="$ROLE" \
  AWS_WEB_IDENTITY_TOKEN_FILE="$TOKEN_DIR/token" \
  AWS_ENDPOINT_URL_STS="$STS" AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
  IRSA_DOCTOR_TIMEOUT="$TIMEOUT" IRSA_DOCTOR_POD_NAME=app-7d9f8c-x2x4q \
  "$chroot_bin" --userspec=65532:65532 "$ROOT" /usr/local/bin/irsa-doctor check --output json"#;
    let output = tokio::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("ROOT", root)
        .env("VOLUME", vol.dir.path())
        .env("TOKEN_MOUNT", &token_mount)
        .env("TOKEN_DIR", TOKEN_DIR)
        .env("ROLE", ROLE_ARN)
        .env("STS", sts_url)
        .env("TIMEOUT", timeout)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), output)
        .await
        .expect("the chrooted run finished")
        .expect("unshare starts");
    testkit::Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        termination_log: String::new(),
    }
}

/// What both image runs need: root, the musl binary, and the STS stand-in
/// over HTTPS, with the PEM of the CA that signed its certificate.
async fn image_binary_and_https_sts() -> (PathBuf, String, testkit::fake_aws::FakeAwsServer) {
    assert!(
        is_root(),
        "this test needs root for chroot and a mount namespace (bash .ci/run runs as root)"
    );
    let binary = musl_binary();
    let (ca_pem, acceptor) = testkit::test_ca_and_acceptor();
    let aws = FakeAws::empty();
    aws.add_provider(ACCOUNT, ISSUER, &["sts.amazonaws.com"]);
    aws.add_role(ROLE_ARN, Trust::for_sa(NAMESPACE, SERVICE_ACCOUNT));
    let sts = aws.start_tls(acceptor).await;
    assert!(sts.url().starts_with("https://127.0.0.1:"));
    (binary, ca_pem, sts)
}

#[tokio::test]
async fn image_contents_pass_over_https_as_65532_on_a_read_only_root() {
    let (binary, ca_pem, sts) = image_binary_and_https_sts().await;
    let ca_file = tempfile::NamedTempFile::new().unwrap();
    fs::write(ca_file.path(), &ca_pem).unwrap();

    let root = rootfs(&[(BINARY, Some(&binary)), (CA_BUNDLE, Some(ca_file.path()))]);
    let vol = token_volume();
    let out = run_in_image(root.path(), &vol, &sts.url(), "20s").await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    assert_eq!(report["verdict"], "pass");
    assert!(report["sts"]["endpoint"]
        .as_str()
        .unwrap()
        .starts_with(&sts.url()));
    assert!(sts.aws.our_assume_calls() >= 1);

    // The root stayed exactly the image's files (and the mount point).
    let mut found = vec![];
    for entry in walk(root.path()) {
        found.push(format!(
            "/{}",
            entry.strip_prefix(root.path()).unwrap().display()
        ));
    }
    found.sort();
    let mut expected: Vec<String> = IMAGE_FILES.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(found, expected, "the run wrote to the image's root");

    let size: u64 = IMAGE_FILES
        .iter()
        .map(|f| {
            fs::metadata(root.path().join(f.trim_start_matches('/')))
                .unwrap()
                .len()
        })
        .sum();
    assert!(size <= SIZE_BUDGET, "image contents are {size} bytes");
}

#[tokio::test]
async fn without_the_ca_bundle_tls_to_sts_fails() {
    let (binary, _, sts) = image_binary_and_https_sts().await;
    let root = rootfs(&[(BINARY, Some(&binary)), (CA_BUNDLE, None)]);
    let vol = token_volume();
    let out = run_in_image(root.path(), &vol, &sts.url(), "3s").await;
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let f = out.finding("STS_UNREACHABLE");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("TLS handshake failed"),
        "{f}"
    );
    assert!(f["remedy"]
        .as_str()
        .unwrap()
        .contains("/etc/ssl/certs/ca-certificates.crt"));
    assert_eq!(sts.aws.assume_calls(), 0, "no request got through TLS");
}

/// Regular files and symlinks under `dir`, recursively.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() && !path.is_symlink() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
