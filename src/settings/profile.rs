//! The files the SDK would read itself, judged within bounds first: the
//! shared config and credentials files (read here and handed to aws-config
//! as contents), the CA bundle, and the token files the default chain
//! would open.
//!
//! aws-config and the HTTPS client read these with plain blocking reads
//! and no size limit: `AWS_CONFIG_FILE=/dev/zero` once made the check read
//! 517 MiB and then pass, and a FIFO made it hang past `--timeout` and
//! ignore SIGTERM. So each is opened here through [`read_bounded`]:
//! - `AWS_CONFIG_FILE` and `AWS_SHARED_CREDENTIALS_FILE` (else
//!   `~/.aws/config` and `~/.aws/credentials`, `~` being `$HOME`), as
//!   aws-config finds them. A missing, unreadable or non-UTF-8 one counts
//!   as empty, as it does for aws-config. aws-config never reads them.
//! - `SSL_CERT_FILE` and the files in `SSL_CERT_DIR`, which the HTTPS
//!   client reads when it is built. One that is not usable means nothing
//!   is sent, so the client is never built.
//! - `AWS_CA_BUNDLE`, which the AWS SDK for Rust ignores and irsa-doctor
//!   reads as the other SDKs do (see `ca_bundle.rs`). One that is not
//!   usable is `CA_BUNDLE_INVALID`, and nothing is sent: the other SDKs
//!   fail with it, so a pass on the system's roots alone would be false.
//! - `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` and every profile's
//!   `web_identity_token_file`, which the default chain would read. One
//!   that is not usable means the chain is not resolved. Their contents are
//!   registered for redaction.
//!
//! A file that is not a regular file or is over its limit is a
//! `SETTING_FILE_INVALID` finding: an app's SDK would hang on it or exhaust
//! its memory.

use std::path::{Component, Path, PathBuf};

use aws_runtime::env_config::file::{
    EnvConfigFileKind as ProfileFileKind, EnvConfigFiles as ProfileFiles,
};
use tracing::debug;

use crate::guard::files::{check_bounded, read_bounded, ReadProblem};
use crate::report::{Code, Finding};
use crate::settings::ca_bundle::CaBundle;

/// The most of a config or credentials file read. Real ones are a few KiB;
/// a generated one with hundreds of profiles stays well under this.
pub const MAX_PROFILE_BYTES: usize = 1024 * 1024;

/// The most of one CA bundle file read. Debian's whole bundle is about
/// 220 KiB; a corporate bundle a few MiB.
pub const MAX_CA_BYTES: usize = 16 * 1024 * 1024;

/// The most entries of `SSL_CERT_DIR` looked at.
pub const MAX_CA_DIR_ENTRIES: usize = 4096;

/// The most of a token file the chain would read: STS's limit on a
/// `WebIdentityToken`, which also covers the Pod Identity token.
const MAX_TOKEN_FILE_BYTES: usize = crate::identity::token::MAX_TOKEN_BYTES;

/// The two shared config files, as aws-config would find them.
const FILES: [(&str, &str, ProfileFileKind); 2] = [
    ("AWS_CONFIG_FILE", "~/.aws/config", ProfileFileKind::Config),
    (
        "AWS_SHARED_CREDENTIALS_FILE",
        "~/.aws/credentials",
        ProfileFileKind::Credentials,
    ),
];

/// What judging the files gave.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The shared config files' contents, for aws-config.
    pub files: ProfileFiles,
    pub findings: Vec<Finding>,
    /// `AWS_CA_BUNDLE`'s certificates, proven loadable, when it is set.
    pub ca_bundle: Option<CaBundle>,
    /// The HTTPS client would read an unusable CA file, or
    /// `AWS_CA_BUNDLE` is unusable: send nothing.
    pub stop_sending: bool,
    /// The default chain would read an unusable token file: do not
    /// resolve it.
    pub skip_chain: bool,
    /// The files the default chain reads, for `serve` to notice a change.
    pub chain_files: ChainFiles,
}

/// The files behind the default chain's outcome that can change while the
/// container runs (its environment cannot).
#[derive(Debug, Clone, Default)]
pub struct ChainFiles {
    /// The shared config and credentials files, as found.
    pub profiles: Vec<PathBuf>,
    /// The token files profiles name (`web_identity_token_file`).
    pub tokens: Vec<PathBuf>,
}

/// Judges every file the SDK would read, and reads the shared config files
/// for aws-config.
pub fn load(lookup: impl Fn(&str) -> Option<String>) -> Loaded {
    let set = |name: &str| lookup(name).filter(|v| !v.is_empty());
    let mut findings = vec![];
    let (files, config_text, profiles) = shared_files(&lookup, &mut findings);
    let mut stop_sending = judge_ca_files(&set, &mut findings);
    let ca_bundle = set(crate::settings::ca_bundle::VAR).and_then(|path| {
        CaBundle::read(Path::new(&path))
            .inspect(|bundle| {
                tracing::info!(
                    ca_bundle = %path,
                    certificates = bundle.certificates(),
                    "AWS_CA_BUNDLE's certificates are trusted besides the system's roots"
                );
            })
            .map_err(|problem| {
                findings.push(crate::settings::ca_bundle::invalid(&path, &problem));
                stop_sending = true;
            })
            .ok()
    });
    let skip_chain = judge_token_files(&set, &config_text, &mut findings);
    let tokens = profile_token_files(&config_text)
        .into_iter()
        .map(PathBuf::from)
        .collect();
    Loaded {
        files,
        findings,
        ca_bundle,
        stop_sending,
        skip_chain,
        chain_files: ChainFiles { profiles, tokens },
    }
}

/// Reads the shared config and credentials files within bounds, as
/// aws-config would read them; returns them for aws-config, their text
/// together, to find the token files profiles name, and their paths.
fn shared_files(
    lookup: &impl Fn(&str) -> Option<String>,
    findings: &mut Vec<Finding>,
) -> (ProfileFiles, String, Vec<PathBuf>) {
    let home = lookup("HOME");
    let mut files = ProfileFiles::builder();
    let mut config_text = String::new();
    let mut paths = vec![];
    for (var, default, kind) in FILES {
        let named = lookup(var);
        let path = expand_home(named.as_deref().unwrap_or(default), home.as_deref());
        let source = match named {
            Some(_) => format!("{var} names {}", path.display()),
            None => format!("the default file {}", path.display()),
        };
        let contents = match read_bounded(&path, MAX_PROFILE_BYTES) {
            Ok(bytes) => String::from_utf8(bytes).unwrap_or_else(|_| {
                debug!(path = %path.display(), "not UTF-8; read as empty, as aws-config does");
                String::new()
            }),
            Err(problem @ (ReadProblem::NotAFile(_) | ReadProblem::TooLarge { .. })) => {
                findings.push(unusable(&source, var, &path, &problem, MAX_PROFILE_BYTES));
                String::new()
            }
            Err(problem) => {
                debug!(path = %path.display(), problem = %problem.describe(), "read as empty, as aws-config does");
                String::new()
            }
        };
        config_text.push_str(&contents);
        config_text.push('\n');
        files = files.with_contents(kind, contents);
        paths.push(path);
    }
    (files.build(), config_text, paths)
}

/// Judges the CA files the HTTPS client would read; true when one is
/// unusable and nothing may be sent.
fn judge_ca_files(set: &impl Fn(&str) -> Option<String>, findings: &mut Vec<Finding>) -> bool {
    let mut stop_sending = false;
    let mut ca_files: Vec<(String, PathBuf)> = vec![];
    if let Some(file) = set("SSL_CERT_FILE") {
        ca_files.push((format!("SSL_CERT_FILE names {file}"), PathBuf::from(file)));
    }
    if let Some(dir) = set("SSL_CERT_DIR") {
        // A colon-separated list, as OpenSSL reads it.
        for dir in dir.split(':').filter(|d| !d.is_empty()) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            // rustls-native-certs reads only the entries whose metadata
            // (symlinks followed) says regular file, and skips the rest: a
            // subdirectory or a FIFO there is harmless, a huge file is not.
            for entry in entries.flatten().take(MAX_CA_DIR_ENTRIES) {
                let path = entry.path();
                if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                    ca_files.push((format!("SSL_CERT_DIR holds {}", path.display()), path));
                }
            }
        }
    }
    for (source, path) in ca_files {
        if let Err(problem @ (ReadProblem::NotAFile(_) | ReadProblem::TooLarge { .. })) =
            check_bounded(&path, MAX_CA_BYTES)
        {
            let var = source.split_whitespace().next().unwrap_or("SSL_CERT_FILE");
            findings.push(unusable(&source, var, &path, &problem, MAX_CA_BYTES));
            stop_sending = true;
        }
    }
    stop_sending
}

/// Judges the token files the default chain would read, registering
/// their contents for redaction; true when one is unusable and the chain
/// must not be resolved.
fn judge_token_files(
    set: &impl Fn(&str) -> Option<String>,
    config_text: &str,
    findings: &mut Vec<Finding>,
) -> bool {
    let mut skip_chain = false;
    let mut token_files: Vec<(String, &str, PathBuf)> = vec![];
    if let Some(file) = set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
        token_files.push((
            format!("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE names {file}"),
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            PathBuf::from(file),
        ));
    }
    for file in profile_token_files(config_text) {
        token_files.push((
            format!("a profile's web_identity_token_file names {file}"),
            "web_identity_token_file",
            PathBuf::from(file),
        ));
    }
    for (source, var, path) in token_files {
        match read_bounded(&path, MAX_TOKEN_FILE_BYTES) {
            Ok(bytes) => {
                crate::guard::redact::register_token(String::from_utf8_lossy(&bytes).trim())
            }
            Err(problem @ (ReadProblem::NotAFile(_) | ReadProblem::TooLarge { .. })) => {
                findings.push(unusable(
                    &source,
                    var,
                    &path,
                    &problem,
                    MAX_TOKEN_FILE_BYTES,
                ));
                skip_chain = true;
            }
            // Missing or unreadable: the SDK fails on it at once, and the
            // chain says so.
            Err(_) => {}
        }
    }
    skip_chain
}

/// The values of every `web_identity_token_file` key in the config text,
/// whatever profile holds it: the chain may be pointed at any of them.
fn profile_token_files(config: &str) -> Vec<&str> {
    config
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once('=')?;
            // aws-config reads keys without regard to case.
            key.trim()
                .eq_ignore_ascii_case("web_identity_token_file")
                .then(|| value.trim())
        })
        .filter(|v| !v.is_empty())
        .collect()
}

/// `~/x` with `home` for `~`, as aws-config expands it; other paths as
/// they are.
fn expand_home(path: &str, home: Option<&str>) -> PathBuf {
    let path = Path::new(path);
    let mut components = path.components();
    match (components.next(), home) {
        (Some(Component::Normal(first)), Some(home)) if first == "~" => {
            let mut expanded = PathBuf::from(home);
            expanded.extend(components);
            expanded
        }
        _ => path.to_owned(),
    }
}

fn unusable(source: &str, var: &str, path: &Path, problem: &ReadProblem, limit: usize) -> Finding {
    Finding::error(
        Code::SettingFileInvalid,
        format!(
            "{source}: {}; an app's AWS SDK reads this file whole, with a blocking read, and \
             would hang or exhaust its memory",
            problem.describe()
        ),
        format!(
            "Point {var} at a regular file (at most {limit} bytes), or remove the setting. \
             irsa-doctor did not let the SDK read it."
        ),
    )
    .expected("a regular file, or nothing at that path")
    .found(format!("{}: {}", path.display(), problem.describe()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_is_expanded_like_aws_config() {
        assert_eq!(
            expand_home("~/.aws/config", Some("/home/app")),
            Path::new("/home/app/.aws/config")
        );
        assert_eq!(
            expand_home("~/.aws/config", None),
            Path::new("~/.aws/config")
        );
        assert_eq!(expand_home("/etc/aws", Some("/h")), Path::new("/etc/aws"));
    }

    #[test]
    fn a_device_or_fifo_is_a_finding_and_read_as_empty() {
        let loaded = load(|name| match name {
            "AWS_CONFIG_FILE" => Some("/dev/zero".into()),
            "AWS_SHARED_CREDENTIALS_FILE" => Some("/nonexistent/credentials".into()),
            _ => None,
        });
        let findings = loaded.findings;
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].code, Code::SettingFileInvalid);
        assert!(
            findings[0]
                .message
                .contains("AWS_CONFIG_FILE names /dev/zero"),
            "{}",
            findings[0].message
        );
        assert!(
            findings[0].message.contains("character device"),
            "{}",
            findings[0].message
        );
        assert!(!loaded.stop_sending && !loaded.skip_chain);
    }

    #[test]
    fn an_unusable_ca_file_stops_sending_and_a_token_file_the_chain_would_read_skips_it() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            "[profile x]\nrole_arn = arn:aws:iam::1:role/r\nweb_identity_token_file = /dev/zero\n",
        )
        .unwrap();
        let loaded = load(|name| match name {
            "AWS_CONFIG_FILE" => Some(config.to_str().unwrap().into()),
            "SSL_CERT_FILE" => Some("/dev/zero".into()),
            _ => None,
        });
        assert!(
            loaded.stop_sending && loaded.skip_chain,
            "{:?}",
            loaded.findings
        );
        let messages: Vec<_> = loaded.findings.iter().map(|f| f.message.as_str()).collect();
        assert!(
            messages[0].starts_with("SSL_CERT_FILE names /dev/zero"),
            "{messages:?}"
        );
        assert!(
            messages[1].starts_with("a profile's web_identity_token_file names /dev/zero"),
            "{messages:?}"
        );
    }

    #[test]
    fn token_files_in_any_profile_are_found() {
        let config =
            "[default]\nregion=us-east-1\n[profile a]\n web_identity_token_file = /a/token \n\
                      [profile b]\nWEB_IDENTITY_TOKEN_FILE=/b/token\n";
        assert_eq!(profile_token_files(config), ["/a/token", "/b/token"]);
    }

    #[test]
    fn a_normal_cert_dir_with_subdirectories_is_no_finding() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("java")).unwrap();
        std::fs::write(dir.path().join("ca.pem"), "-----BEGIN CERTIFICATE-----\n").unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(dir.path().join("fifo"))
            .status()
            .unwrap();
        assert!(status.success());
        let loaded =
            load(|name| (name == "SSL_CERT_DIR").then(|| dir.path().to_str().unwrap().to_owned()));
        assert!(loaded.findings.is_empty(), "{:?}", loaded.findings);
        assert!(!loaded.stop_sending);
    }
}
